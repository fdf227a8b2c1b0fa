"""Answering: a click, a select, a comment, or a reaction on the prompt; changing one's
mind, and withdrawing by removing the reaction. The latest answer counts until the close.

An answer is stored under the person's respondent key (an HMAC under the run's secret),
never their id, and with no time of its own. The prompt is then edited in place, through
the outbox, to show the person what is recorded; the close deletes those edits.
What is not taken (after the close, from someone not invited, an emoji that is no answer)
raises `NotTaken` with a short private note for the person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot import home
from bot.blocks import surveys as views
from bot.platform import outbox
from bot.platform.work import Work
from bot.surveys.keys import prompt_ref, respondent_key
from bot.surveys.templates import SCALE5, SCALE10, TEXT, Question
from storage import surveys as queries
from storage.models import SurveyAnswer, SurveyQuestion, SurveyRun
from storage.outbox import get_first_post, list_first_posts, rewrite_pending
from storage.people import get_person

# The names Slack sends for the keycap digits (:one: is 1️⃣) and for 🔟.
NUMBERS = {name: n for n, name in enumerate(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))}
NUMBERS["keycap_ten"] = 10
NUMBERS.update({f"keycap_{n}": n for n in range(10)})  # how some clients name the same keycaps
RECENT_RUNS = 6  # closed runs whose prompts still get a "closed" note when reacted to


class NotTaken(Exception):
    """Not counted; `note` tells the person why (privately)."""

    def __init__(self, note: dict[str, Any]):
        super().__init__(note["text"])
        self.note = note


@dataclass(frozen=True)
class Prompt:
    """The question someone acts on, and their place in the run."""

    run: SurveyRun
    survey: str
    question: SurveyQuestion
    count: int
    key: str
    user: str
    person_id: int  # whose Home shows the question as waiting


def prompt(work: Work, user: str, run_id: int, position: int) -> Prompt:
    """The prompt a click names, if the person may still answer it."""
    session, team_id = work.session, work.team_id
    run = queries.get_run_to_answer(session, run_id)
    if run is None or run.team_id != team_id:
        raise NotTaken(views.note("That survey no longer exists."))
    survey = queries.get_survey_key(session, run.survey_id)
    if run.state != "open":
        raise NotTaken(views.closed_note(survey))
    person = get_person(session, team_id, user)
    if person is None or queries.get_invite(session, run.id, person.id) is None:
        raise NotTaken(views.not_invited_note(survey))
    questions = queries.list_questions(session, run.id)
    question = next((q for q in questions if q.position == position), None)
    if question is None:
        raise NotTaken(views.note("That question is not part of the survey."))
    return Prompt(run, survey, question, len(questions), respondent_key(run.secret, person.id),
                  user, person.id)


def answer(work: Work, p: Prompt, *, value: int | None = None, text: str | None = None) -> None:
    """Record (or replace) the person's answer; an empty comment withdraws theirs."""
    q = Question.of(p.question)
    if q.type == TEXT:
        text = (text or "").strip()
        if not text:
            return withdraw(work, p)
    elif value not in q.values:
        raise NotTaken(views.not_an_answer_note(p.survey, views.REACTIONS.get(q.type, "")))
    row = queries.get_answer(work.session, p.question.id, p.key)
    if row is None:
        row = SurveyAnswer(team_id=p.run.team_id, run_id=p.run.id, question_id=p.question.id,
                           respondent_key=p.key)
        work.session.add(row)
    row.value, row.text = (None, text) if q.type == TEXT else (value, None)
    home.mark_stale(work, [p.person_id])  # the question may leave "Surveys waiting for you"
    _show(work, p, text if q.type == TEXT else q.label(value))


def withdraw(work: Work, p: Prompt, *, value: int | None = None) -> None:
    """Forget the person's answer (only if it is still `value`, when given: removing an old
    reaction leaves a newer answer alone)."""
    row = queries.get_answer(work.session, p.question.id, p.key)
    if row is None or (value is not None and row.value != value):
        return
    work.session.delete(row)
    home.mark_stale(work, [p.person_id])  # the question may wait again
    _show(work, p, None)


def current_comment(work: Work, p: Prompt) -> str | None:
    row = queries.get_answer(work.session, p.question.id, p.key)
    return row.text if row is not None else None


def view(p: Prompt, shown: str | None) -> views.PromptView:
    return views.PromptView(p.survey, p.run.id, p.question.position, p.count,
                            Question.of(p.question), p.run.closes_at, p.run.k, shown)


def _show(work: Work, p: Prompt, shown: str | None) -> None:
    """The prompt, edited in place to show what is recorded now (it is the person's own DM):
    one edit queued, replacing any still queued. (`outbox.revise` finds those by their
    parent, which no index serves; the prompt's ref finds them in the ref index.)"""
    session, ref = work.session, prompt_ref(p.run.id, p.question.position, p.user)
    post = get_first_post(session, p.run.team_id, ref)
    if post is None:
        return
    message = views.prompt(view(p, shown))
    queries.supersede_queued_edits(session, p.run.team_id, ref)
    if not rewrite_pending(session, post.id, {"channel": p.user, **message}):
        outbox.update(session, post, message, now=work.now)


# ------------------------------------------------------------------ reactions


def react(work: Work, user: str, channel: str, ts: str, emoji: str, *, added: bool) -> None:
    """A reaction added (or removed) on a message: an answer when it is on one of the
    person's prompts; else nothing, or NotTaken when it is on a survey prompt."""
    number = NUMBERS.get(emoji.split("::")[0])  # "+1::skin-tone-2": the tone is no part of it
    found = _own_prompt(work, user, channel, ts)
    if found is None:
        return _not_theirs(work, channel, ts) if number is not None else None
    run, position = found
    if run.state != "open":
        raise NotTaken(views.closed_note(queries.get_survey_key(work.session, run.survey_id)))
    p = prompt(work, user, run.id, position)
    q = Question.of(p.question)
    if q.type == TEXT:
        raise NotTaken(views.use_the_button_note(p.survey))
    if number not in q.values:
        if not added:
            return None  # removing a reaction that never counted changes nothing
        raise NotTaken(views.not_an_answer_note(p.survey, views.REACTIONS[q.type]
                                                if q.type in (SCALE5, SCALE10) else
                                                f"a number from 1 to {len(q.options)}"))
    if added:
        answer(work, p, value=number)
    else:
        withdraw(work, p, value=number)


def _own_prompt(work: Work, user: str, channel: str, ts: str) -> tuple[SurveyRun, int] | None:
    """Which of the person's prompts (open runs, and a few recent closed ones) `ts` is."""
    session, team_id = work.session, work.team_id
    person = get_person(session, team_id, user)
    if person is None:
        return None
    invites = queries.list_person_invites(session, person.id, state="open") + \
        queries.list_person_invites(session, person.id, state="closed", limit=RECENT_RUNS)
    refs = {prompt_ref(run.id, q.position, user): (run, q.position)
            for _, run, _ in invites for q in queries.list_questions(session, run.id)}
    for ref, post in list_first_posts(session, team_id, list(refs)).items():
        if post.ts == ts and channel in (post.posted_channel, post.channel):
            return refs[ref]
    return None


def _not_theirs(work: Work, channel: str, ts: str) -> None:
    """A number reaction by someone on a message that is not their prompt: a note when it is
    someone else's prompt in an open run; any other message is none of alignbot's business."""
    for run, name in queries.list_open_runs(work.session, work.team_id):
        if queries.find_prompt_by_ts(work.session, work.team_id, run.id, channel, ts) is not None:
            raise NotTaken(views.not_invited_note(name))
