"""What may be shown of a run: the k rule, with no group computable by subtraction.

A group (everyone, a role, the comments) is shown only with at least k answers. Showing
everyone and some roles would give away the rest by subtraction, so the roles not shown
must together be none or at least k answers: if they are fewer, the smallest shown role
is hidden too. The close stores only what this rule shows (`shown_groups` decides both),
so the database holds no smaller group either. Open runs show participation only.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean
from typing import Any

from bot.platform.work import Work
from bot.surveys.templates import CHOICE, TEXT, Question
from storage import surveys as queries
from storage.models import SurveyQuestion, SurveyRun


def shown_groups(sizes: Mapping[str, int], k: int) -> tuple[bool, frozenset[str]]:
    """(is everyone shown, which roles are) for answers per role: `sizes`."""
    total = sum(sizes.values())
    if total < k:
        return False, frozenset()
    shown = {role for role, n in sizes.items() if n >= k}
    while shown and 0 < total - sum(sizes[r] for r in shown) < k:
        shown.remove(min(shown, key=lambda r: (sizes[r], r)))  # its answers join the rest
    return True, frozenset(shown)


def comments_shown(count: int, k: int) -> bool:
    """Free text can give its writer away: shown only when more than k wrote some."""
    return count > k


SHOWN_DIGITS = 2  # a mean as results show it: 3.17


def shown_mean(mean: float | None) -> float | None:
    return None if mean is None else round(mean, SHOWN_DIGITS)


@dataclass(frozen=True)
class Group:
    n: int
    mean: float | None  # exact; None for a choice: its options have no order
    distribution: dict[str, int]  # every value (or option) and how many chose it
    change: float | None = None  # the mean as shown minus the previous run's as shown

    def as_json(self, exact: bool = False) -> dict[str, Any]:
        """As results show it (the mean to 2 decimals), or with the exact mean: what the
        gap's levels and the index are computed from (a level's bound is no place to round)."""
        return {"n": self.n, "mean": self.mean if exact else shown_mean(self.mean),
                "distribution": self.distribution, "change": self.change}


@dataclass(frozen=True)
class QuestionResult:
    key: str
    text: str
    type: str
    overall: Group | None  # None: hidden (fewer than k answers)
    by_role: dict[str, Group | None]

    def as_json(self, exact: bool = False) -> dict[str, Any]:
        return {"key": self.key, "type": self.type,
                "overall": self.overall.as_json(exact) if self.overall else None,
                "by_role": {r: g.as_json(exact) if g else None for r, g in self.by_role.items()}}


@dataclass(frozen=True)
class Results:
    survey: str
    number: int
    state: str
    opened_at: datetime
    closes_at: datetime
    closed_at: datetime | None
    k: int
    participation: dict[str, tuple[int, int]]  # role → (invited, responded)
    questions: tuple[QuestionResult, ...]
    comments: tuple[str, ...] | None  # None: hidden, or none written

    @property
    def invited(self) -> int:
        return sum(i for i, _ in self.participation.values())

    @property
    def responded(self) -> int:
        return sum(r for _, r in self.participation.values())

    @property
    def rate(self) -> float | None:
        return round(self.responded / self.invited, 4) if self.invited else None

    def as_json(self, exact: bool = False) -> dict[str, Any]:
        """`alignbot survey results <name> --json` (issue #16 "Results"); `exact`: each
        mean unrounded, for the alignment's perception (bot.alignment.perception)."""
        return {
            "survey": self.survey,
            "run": {"id": self.number, "opened_at": self.opened_at.isoformat(),
                    "closed_at": self.closed_at.isoformat() if self.closed_at else None,
                    "state": self.state},
            "invited": self.invited, "responded": self.responded,
            "participation": self.rate, "k": self.k,
            "questions": [q.as_json(exact) for q in self.questions],
            "comments": list(self.comments) if self.comments is not None else None,
        }


def results(work: Work, survey: str, run: SurveyRun) -> Results:
    """A run's results: computed from what its close stored (an open run: participation)."""
    session = work.session
    questions = queries.list_questions(session, run.id)
    participation = queries.count_invites(session, run.id)
    if run.state != "closed":
        responded = queries.count_respondents(session, run.id)
        invited = sum(i for i, _ in participation.values())
        return Results(survey, run.number, run.state, run.opened_at, run.closes_at, None, run.k,
                       {"everyone": (invited, responded)} if invited else {},
                       tuple(QuestionResult(q.key, q.text, q.type, None, {})
                             for q in questions if q.type != TEXT), None)
    previous = queries.get_latest_run(session, run.survey_id, closed=True, before=run.number)
    answers = queries.list_closed_answers(session, [run.id] + ([previous.id] if previous else []))
    now_rows = [a for a in answers if a.run_id == run.id]
    before = _groups_of(previous, questions, [a for a in answers if previous and
                                              a.run_id == previous.id]) if previous else {}
    shown = []
    for q in questions:
        if q.type == TEXT:
            continue
        rows = [a for a in now_rows if a.key == q.key]
        roles = sorted(role for role in participation)
        overall = _group(q, rows, before.get((q.key, None)))
        shown.append(QuestionResult(q.key, q.text, q.type, overall, {
            role: _group(q, [a for a in rows if a.role == role], before.get((q.key, role)))
            for role in roles}))
    texts = [a.text for a in now_rows if a.text]
    return Results(survey, run.number, run.state, run.opened_at, run.closes_at, run.closed_at,
                   run.k, participation, tuple(shown), tuple(texts) if texts else None)


def _groups_of(run: SurveyRun, questions: Sequence[SurveyQuestion], rows) -> dict:
    """(question key, role or None) → the group shown for the previous run."""
    out = {}
    for q in (q for q in questions if q.type != TEXT):
        mine = [a for a in rows if a.key == q.key]
        out[(q.key, None)] = _group(q, mine, None)
        for role in {a.role for a in mine if a.role}:
            out[(q.key, role)] = _group(q, [a for a in mine if a.role == role], None)
    return out


def _group(q: SurveyQuestion, rows, previous: Group | None) -> Group | None:
    """The group of these stored answers; none stored means none shown (see `close`)."""
    if not rows:
        return None
    question = Question.of(q)
    values = [a.value for a in rows]
    names = list(question.options) if q.type == CHOICE else [str(v) for v in question.values]
    counts = dict.fromkeys(names, 0)
    for v in values:
        counts[question.options[v - 1] if q.type == CHOICE else str(v)] += 1
    mean = None if q.type == CHOICE else fmean(values)
    change = round(shown_mean(mean) - shown_mean(previous.mean), SHOWN_DIGITS) \
        if mean is not None and previous and previous.mean is not None else None
    return Group(len(values), mean, counts, change)


def anonymised(questions: Sequence[SurveyQuestion], answers, role_of: Mapping[str, str],
               k: int, rng: random.Random) -> list[dict[str, Any]]:
    """The answers a closed run keeps, in random order: without their key; with their
    role where that group is shown; none of a group results never show."""
    kept = []
    for q in questions:
        mine = [a for a in answers if a.question_id == q.id]
        if q.type == TEXT:
            if comments_shown(len(mine), k):
                kept += [{"question_id": q.id, "role": None, "value": None, "text": a.text}
                         for a in mine]
            continue
        sizes: dict[str, int] = {}
        for a in mine:
            sizes[role_of[a.respondent_key]] = sizes.get(role_of[a.respondent_key], 0) + 1
        everyone, roles = shown_groups(sizes, k)
        if everyone:
            kept += [{"question_id": q.id, "value": a.value, "text": None,
                      "role": role_of[a.respondent_key] if role_of[a.respondent_key] in roles
                      else None} for a in mine]
    rng.shuffle(kept)
    return kept
