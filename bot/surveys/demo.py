"""Past survey runs for the demo, made the way real ones are: opened, answered, closed."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

from bot.platform.config import Config, Survey
from bot.platform.work import Work
from bot.surveys import answers
from bot.surveys.keys import respondent_key
from bot.surveys.runs import close_run, open_run
from bot.surveys.templates import ALIGNMENT, SCALE5, SCALE10, TEXT
from storage import surveys as queries

DEMO = Survey(name="pulse", questions=ALIGNMENT, audience=("sales", "marketing", "exec"),
              min_responses=3)
# How each group tends to feel, 1-5, per dimension: perceptions differ by role.
TYPICAL = {"customer_understanding": {"sales": 3, "marketing": 4, "exec": 3},
           "shared_goals": {"sales": 3, "marketing": 3, "exec": 4},
           "communication": {"sales": 2, "marketing": 3, "exec": 3},
           "lead_quality": {"sales": 2, "marketing": 4, "exec": 3},
           "customer_satisfaction": {"sales": 4, "marketing": 3, "exec": 4}}
COMMENTS = ["Leads from webinars are rarely ready to buy.", "We need a shared definition of an MQL.",
            "Weekly syncs helped a lot this month.", "Sales rarely tells us why leads were rejected."]


def role_survey(config: Config) -> Survey | None:
    """The config's first survey asked of roles: the demo's runs are of it (else of DEMO)."""
    return next((s for s in config.surveys if not any(a.startswith("S") for a in s.audience)),
                None)


def with_demo_survey(config: Config) -> Config:
    """The config, knowing the survey the demo ran: without one of its own (no alignbot.toml)
    its results, the gap and the index would not find the runs the demo closed."""
    return config if role_survey(config) else replace(config, surveys=(*config.surveys, DEMO))


def past_runs(work: Work, rng: random.Random,
              months: tuple[int, ...] = (3, 2, 1)) -> tuple[int, int]:
    """A run a month ago, two months ago ... (of `role_survey`, else DEMO); nine in ten people
    answer. (runs, answers kept)."""
    session = work.session
    survey = role_survey(work.config) or DEMO
    kept = 0
    for months_ago in sorted(months, reverse=True):
        then = work.at(work.now - timedelta(days=30 * months_ago))
        run = open_run(then, survey, started_by="demo")
        questions = queries.list_questions(session, run.id)
        for invite, person in queries.list_run_invites(session, run.id):
            if rng.random() >= 0.9:
                continue
            key = respondent_key(run.secret, person.id)
            for q in questions:
                p = answers.Prompt(run, survey.name, q, len(questions), key, person.slack_id,
                                   person.id)
                if q.type == TEXT:
                    if rng.random() < 0.5:
                        answers.answer(then, p, text=rng.choice(COMMENTS))
                    continue
                answers.answer(then, p, value=_value(rng, q, invite.role, months_ago))
        session.flush()
        close_run(work.at(run.closes_at), run, announce=False, rng=rng)
        kept += len(queries.list_closed_answers(session, [run.id]))
    return len(months), kept


def _value(rng: random.Random, q, role: str, months_ago: int) -> int:
    """Around the group's typical feeling, a little better lately."""
    if q.type == SCALE10:
        return max(0, min(10, rng.randint(4, 8) - (role == "sales") + (months_ago == 1)))
    if q.type == SCALE5:
        typical = TYPICAL.get(q.key, {}).get(role, 3)
        lately = months_ago == 1 and rng.random() < 0.25
        return max(1, min(5, typical + rng.choice((-1, 0, 0, 0, 1)) + lately))
    return rng.randint(1, len(q.options or ()) or 1)
