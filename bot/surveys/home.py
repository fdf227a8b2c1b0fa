"""The App Home's survey sections: what waits for the person, and the latest results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.blocks import surveys as views
from bot.blocks.kit import Block
from bot.surveys.keys import respondent_key
from bot.surveys.results import results
from bot.surveys.templates import Question
from storage import surveys as queries
from storage.models import Person

if TYPE_CHECKING:
    from bot.home import Context


def waiting(ctx: Context, person: Person | None) -> list[Block]:
    """The person's unanswered questions of the open runs they have been prompted for."""
    if person is None:
        return []
    pending = []
    for invite, run, name in queries.list_person_invites(ctx.session, person.id, state="open"):
        if invite.prompted_at is None:
            continue  # their prompts wait for their working hours
        key = respondent_key(run.secret, person.id)
        done = queries.list_answered(ctx.session, run.id, [key]).get(key, set())
        left = [q.text for q in queries.list_questions(ctx.session, run.id)
                if q.id not in done and Question.of(q).required]
        if left:
            pending.append(views.PendingSurvey(name, run.closes_at, tuple(left), run.k))
    return views.home_questions(pending)


def latest_results(ctx: Context, person: Person | None) -> list[Block]:
    """The newest closed run's results: the same for everyone, computed once a refresh."""
    if "survey_results" not in ctx.shared:
        shown = None
        named = queries.list_surveys_with_runs(ctx.session, ctx.team_id)
        closed = [(run.closed_at, name, run) for name in named
                  if (survey := queries.get_survey(ctx.session, ctx.team_id, name))
                  and (run := queries.get_latest_run(ctx.session, survey.id, closed=True))]
        if closed:
            _, name, run = max(closed, key=lambda c: c[0])
            shown = results(ctx, name, run)
        ctx.shared["survey_results"] = shown
    shown = ctx.shared["survey_results"]
    return views.home_results(shown) if shown else []
