"""Builders for pulse surveys: the prompts, the comment modal, reminders, results, status,
the App Home sections and the short private notes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.blocks.handoff import when
from bot.blocks.kit import (
    MESSAGE_JSON,
    SECTION_LIMIT,
    actions,
    button,
    clip,
    context,
    escape,
    header,
    json_clip,
    message,
    plain,
    section,
)
from bot.surveys.templates import CHOICE, SCALE5, SCALE10, TEXT, Question

if TYPE_CHECKING:
    from bot.surveys.results import Group, QuestionResult, Results

ANSWER = "survey.answer"  # + ".<value>": one button per value, each id unique in its message
CHOOSE = "survey.choose"
COMMENT = "survey.comment"  # the button, and the modal's callback id
MAX_BLOCKS = 50  # Slack's most in one message
COMMENT_CHARS = 400  # a comment in the results; the CLI shows it whole
QUESTION_JSON = 1_200  # a question's text as JSON in the results: 200 CJK characters
INTRO_JSON = 2_000  # the participation line, however many roles
COMMENT_BLOCK = "comment"
COMMENT_ACTION = "comment"
REACTIONS = {SCALE5: ":one: … :five:", SCALE10: ":zero: … :keycap_ten:", CHOICE: ":one:, :two: …"}


@dataclass(frozen=True)
class PromptView:
    """One question of a run, as its DM shows it to one person."""

    survey: str
    run_id: int
    position: int
    count: int  # questions in the run
    question: Question
    closes_at: datetime
    k: int
    answer: str | None = None  # their recorded answer, as it reads

    @property
    def token(self) -> str:
        return f"{self.run_id}:{self.position}"


@dataclass(frozen=True)
class PendingSurvey:
    """Questions someone has not answered yet in an open run."""

    survey: str
    closes_at: datetime
    unanswered: tuple[str, ...]  # the questions' texts
    k: int


@dataclass(frozen=True)
class RunStatus:
    """An open run's progress: participation only, never answers."""

    survey: str
    number: int
    opened_at: datetime
    closes_at: datetime
    invited: int
    prompted: int
    responded: int
    k: int


def privacy_line(k: int) -> str:
    return (f":lock: Anonymous: results show groups of {k} or more answers only. Nobody sees "
            "who answered what, admins included; after the survey closes, not even alignbot "
            "can tell.")


def prompt(v: PromptView) -> dict[str, Any]:
    """The DM of one question: buttons (a select, or a comment button) and what counts."""
    q = v.question
    head = f"*{escape(v.survey)}* · question {v.position + 1} of {v.count}\n{escape(q.text)}"
    blocks = [section(head), _answer_element(v)]
    if v.answer is not None:
        status = (f":white_check_mark: Your answer: *{escape(clip(v.answer, 500))}*. You can change "
                  f"it until {when(v.closes_at)}.")
    elif q.type == TEXT:
        status = f"Optional. Open until {when(v.closes_at)}."
    else:
        status = f"Click, or react with {REACTIONS[q.type]}. Open until {when(v.closes_at)}."
    blocks += [context(status), context(privacy_line(v.k))]
    return {"text": f"{escape(v.survey)}: {escape(clip(q.text, 200))}", "blocks": blocks}


def _answer_element(v: PromptView) -> dict[str, Any]:
    q, block_id = v.question, f"survey-{v.token}"
    if q.type == TEXT:
        label = "Edit your comment" if v.answer else "Write a comment"
        return actions(button(label, COMMENT, v.token), block_id=block_id)
    if q.type == CHOICE:
        options = [{"text": plain(q.label(n), 75), "value": f"{v.token}:{n}"} for n in q.values]
        return actions({"type": "static_select", "action_id": CHOOSE, "options": options,
                        "placeholder": plain("Pick one")}, block_id=block_id)
    return actions(*(button(q.label(n), f"{ANSWER}.{n}", f"{v.token}:{n}") for n in q.values),
                   block_id=block_id)


def comment_modal(v: PromptView) -> dict[str, Any]:
    """The modal a text question's button opens; empty withdraws the comment."""
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": COMMENT_ACTION,
                               "multiline": True, "max_length": 2000}
    if v.answer:
        element["initial_value"] = v.answer
    return {
        "type": "modal", "callback_id": COMMENT, "private_metadata": v.token,
        "title": plain("Your comment", 24), "submit": plain("Save", 24),
        "close": plain("Cancel", 24),
        "blocks": [section(escape(v.question.text)),
                   {"type": "input", "block_id": COMMENT_BLOCK, "optional": True,
                    "label": plain(f"{v.survey}: comment"), "element": element},
                   context(privacy_line(v.k) + " Comments are shown only when more than "
                           f"{v.k} people wrote one, in random order.")],
    }


def reminder(p: PendingSurvey) -> dict[str, Any]:
    count = len(p.unanswered)
    lines = "\n".join(f"• {escape(clip(t, 200))}" for t in p.unanswered[:10])
    text = (f":wave: *{escape(p.survey)}* closes {when(p.closes_at)} and {count} question"
            f"{'s are' if count != 1 else ' is'} still waiting for you, in the messages above:\n"
            f"{lines}")
    return {"text": f"Reminder: {count} question(s) of {escape(p.survey)} are waiting for you",
            "blocks": [section(text), context(privacy_line(p.k))]}


def note(text: str) -> dict[str, Any]:
    """A short private line for someone whose click or reaction was not taken."""
    return message(text)


def closed_note(survey: str) -> dict[str, Any]:
    return note(f"*{escape(survey)}* has closed: answers are no longer taken, and this one "
                "changed nothing.")


def closed_prompt(survey: str) -> dict[str, Any]:
    """What a prompt or reminder of a closed run reads as if it reached someone only as
    (or after) the run closed."""
    return message(f":checkered_flag: *{escape(survey)}* has closed: this question is no "
                   "longer asked. Answers given before the close count; no more are taken.")


def not_invited_note(survey: str) -> dict[str, Any]:
    return note(f"This question of *{escape(survey)}* was sent to someone else; your reaction "
                "is not counted.")


def not_an_answer_note(survey: str, allowed: str) -> dict[str, Any]:
    return note(f"That reaction is not an answer to this question of *{escape(survey)}*: react "
                f"with {escape(allowed)}, or use the buttons.")


def use_the_button_note(survey: str) -> dict[str, Any]:
    return note(f"This question of *{escape(survey)}* takes words: use its *Write a comment* "
                "button.")


def opening(survey: str) -> dict[str, Any]:
    return message(f":hourglass_flowing_sand: Opening *{escape(survey)}*: asking Slack who is in "
                   f"its user groups. I'll tell you here when it is open.")


def run_opened(s: RunStatus) -> dict[str, Any]:
    return message(f":mega: *{escape(s.survey)}* run {s.number} is open: {s.invited} people "
                   f"invited, each prompted in their own working hours. It closes "
                   f"{when(s.closes_at)}; `/align survey status` shows participation.")


def run_closed(r: Results) -> dict[str, Any]:
    return message(f":checkered_flag: *{escape(r.survey)}* run {r.number} is closed: "
                   f"{r.responded} of {r.invited} answered. Its results are posted; "
                   f"`/align survey results {escape(r.survey)}` shows them again.")


def status(runs: Sequence[RunStatus]) -> dict[str, Any]:
    """`/align survey status`: open runs and participation so far."""
    if not runs:
        return message("No survey is open. `/align survey results` shows the latest results.")
    lines = [f"*{escape(s.survey)}* run {s.number}: {s.responded} of {s.invited} have answered "
             f"({_pct(s.responded, s.invited)}); {s.invited - s.prompted} not yet prompted "
             f"(waiting for their working hours). Closes {when(s.closes_at)}."
             for s in runs]
    return message("\n".join(lines), [header("Open surveys"), section("\n".join(lines)),
                                      context("Answers are never shown before a run closes.")])


def results_message(r: Results) -> dict[str, Any]:
    """A run's results: per question everyone and each role (hidden below k), comments.
    As many questions, then comments, as fit one message; a last line counts the rest."""
    title = f"{r.survey} — run {r.number} results"
    if r.state != "closed":
        return message(f"*{escape(r.survey)}* run {r.number} is still open ({r.responded} of "
                       f"{r.invited} have answered). Results come when it closes, "
                       f"{when(r.closes_at)}.")
    intro = (f"Closed {when(r.closed_at)}: *{r.responded} of {r.invited}* answered "
             f"({_pct(r.responded, r.invited)}). " +
             " · ".join(f"{escape(role)} {resp}/{inv}"
                        for role, (inv, resp) in sorted(r.participation.items())))
    hidden = "comments are shown only when more than k were written" if r.comments is None \
        else "comments in random order"
    note = context(f"Groups with fewer than {r.k} answers show as “hidden”, and so "
                   f"does any group that would let a smaller one be worked out; {hidden}. "
                   "Change is against the previous run.")
    comments = [f"> {escape(clip(c, COMMENT_CHARS))}" for c in r.comments or ()]
    blocks = [header(clip(title, 150)), section(json_clip(intro, INTRO_JSON))]
    fixed = [*blocks, note, _not_shown(r, len(r.questions), len(comments))]  # its longest
    questions = [_question(q, r.k) for q in r.questions]
    n_questions = _fitting(fixed, questions)
    blocks += questions[:n_questions]
    more_comments, n_comments = _comment_sections(fixed + questions[:n_questions], comments)
    blocks += [*more_comments, note]
    if n_questions < len(questions) or n_comments < len(comments):
        blocks.append(_not_shown(r, len(questions) - n_questions, len(comments) - n_comments))
    return {"text": escape(title), "blocks": blocks}


def _question(q: QuestionResult, k: int) -> dict[str, Any]:
    fields = [_group_field("Everyone", q.overall, k)] + [
        _group_field(role, g, k) for role, g in sorted(q.by_role.items())]
    return section(f"*{json_clip(escape(q.text), QUESTION_JSON)}*", fields=fields)


def _fitting(fixed: list[dict[str, Any]], more: list[dict[str, Any]]) -> int:
    """How many of `more`, in order, fit one message after `fixed`."""
    n = 0
    while n < len(more) and _fits([*fixed, *more[:n + 1]]):
        n += 1
    return n


def _fits(blocks: list[dict[str, Any]]) -> bool:
    return len(blocks) <= MAX_BLOCKS and len(json.dumps(blocks)) <= MESSAGE_JSON


def _comment_sections(fixed: list[dict[str, Any]],
                      lines: list[str]) -> tuple[list[dict[str, Any]], int]:
    """Comment lines packed into sections of up to 3,000 characters, while they fit one
    message after `fixed`: the sections and how many lines they hold."""
    texts: list[str] = []
    for n, line in enumerate(lines):
        if texts and len(texts[-1]) + 1 + len(line) <= SECTION_LIMIT:
            grown = [*texts[:-1], f"{texts[-1]}\n{line}"]
        else:
            grown = [*texts, line if texts else f"*Comments* (random order)\n{line}"]
        if not _fits([*fixed, *map(section, grown)]):
            return [section(t) for t in texts], n
        texts = grown
    return [section(t) for t in texts], len(lines)


def _not_shown(r: Results, questions: int, comments: int) -> dict[str, Any]:
    missing = " and ".join(f"{n} more {what}{'' if n == 1 else 's'}"
                           for n, what in ((questions, "question"), (comments, "comment")) if n)
    return context(f"{missing} did not fit this message: `alignbot survey results "
                   f"{escape(r.survey)} --run {r.number}` lists every question and comment.")


def _group_field(name: str, g: Group | None, k: int) -> str:
    if g is None:
        return f"*{escape(name)}*: hidden"
    change = f" ({g.change:+.2f})" if g.change is not None else ""
    mean = f"{g.mean:.2f}{change} · " if g.mean is not None else ""
    spread = " ".join(f"{escape(v)}:{n}" for v, n in g.distribution.items())
    return f"*{escape(name)}* n={g.n}: {mean}{spread}"


HOME_SURVEYS, HOME_QUESTIONS = 5, 8  # what the Home lists; the rest are counted


def home_questions(pending: Sequence[PendingSurvey]) -> list[dict[str, Any]]:
    """The App Home's "waiting for you": open surveys the person has not finished."""
    if not pending:
        return []
    blocks = [header("Surveys waiting for you")]
    for p in pending[:HOME_SURVEYS]:
        lines = [f"• {escape(clip(t, 150))}" for t in p.unanswered[:HOME_QUESTIONS]]
        lines += _more(len(p.unanswered) - HOME_QUESTIONS, "question")
        blocks.append(section(f"*{escape(p.survey)}* — closes {when(p.closes_at)}; answer in "
                              "your DMs with alignbot:\n" + "\n".join(lines)))
    blocks += [context(line) for line in _more(len(pending) - HOME_SURVEYS, "survey")]
    blocks.append(context(privacy_line(pending[0].k)))
    return blocks


def _more(hidden: int, noun: str) -> list[str]:
    """A line saying how many more a list left out, if any."""
    return [f"…and {hidden} more {noun}{'s' if hidden > 1 else ''}"] if hidden > 0 else []


def home_results(r: Results) -> list[dict[str, Any]]:
    """The App Home's latest results: everyone's mean per question, and participation."""
    lines = [f"• {escape(clip(q.text, 120))}: " + (
        f"*{q.overall.mean:.2f}*" + (f" ({q.overall.change:+.2f})"
                                     if q.overall.change is not None else "")
        if q.overall and q.overall.mean is not None else
        "see the results" if q.overall else "hidden") for q in r.questions]
    return [header(clip(f"Latest pulse: {r.survey}, run {r.number}", 150)),
            section(f"{r.responded} of {r.invited} answered "
                    f"({_pct(r.responded, r.invited)}), closed {when(r.closed_at)}.\n"
                    + "\n".join(lines[:20])),
            context(f"`/align survey results {escape(r.survey)}` shows every group and the "
                    "comments.")]


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "n/a"

