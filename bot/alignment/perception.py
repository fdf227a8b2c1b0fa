"""How the teams feel: what the gap and the index read of a closed pulse survey run.

`Perception` is read from a run's results as `alignbot survey results --json` shows them
(issue #16 "Results"), so it hides what they hide: a role with fewer than k answers is None
here too. Its means are exact, not the 2 decimals results show: a role's level and the
index are computed from them (101 answers of mean 2.49505 are Low, not a shown 2.50's
Medium), and rounded only where shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.alignment.definitions import COLLABORATION, DIMENSIONS
from bot.platform.work import Work
from bot.surveys.results import results
from storage import surveys as queries


@dataclass(frozen=True)
class Perception:
    survey: str
    run: int  # the run's number within its survey
    closed_at: datetime | None
    means: Mapping[str, Mapping[str, float | None]]  # question → role → exact mean (None: hidden)
    collaboration: float | None  # everyone's exact mean answer to COLLABORATION, 0–10 (or None)
    collaboration_change: float | None  # since the run before, when both are shown
    participation: float | None  # the share of those asked who answered
    responded: int
    invited: int

    @classmethod
    def from_results(cls, results: Mapping[str, Any]) -> Perception:
        """From the results JSON of a closed run: {"survey", "run": {"id", "closed_at"},
        "invited", "responded", "participation", "questions": [{"key", "overall": {"mean",
        "change", ...} | null, "by_role": {role: {"mean", ...} | null}}]}."""
        questions = {q["key"]: q for q in results["questions"]}
        collaboration = (questions.get(COLLABORATION) or {}).get("overall") or {}
        closed = results["run"].get("closed_at")
        return cls(
            survey=results["survey"], run=results["run"]["id"],
            closed_at=datetime.fromisoformat(closed) if closed else None,
            means={key: {role: group["mean"] if group else None
                         for role, group in (q.get("by_role") or {}).items()}
                   for key, q in questions.items()},
            collaboration=collaboration.get("mean"),
            collaboration_change=collaboration.get("change"),
            participation=results.get("participation"),
            responded=results.get("responded", 0), invited=results.get("invited", 0))

    def mean(self, dimension: str, role: str) -> float | None:
        return self.means.get(dimension, {}).get(role)


def latest_perception(work: Work, survey: str | None = None) -> Perception | None:
    """The latest closed run of `survey` (default: the first survey that asks every
    dimension, as the alignment template does), or None when there is none."""
    name = survey or next((s.name for s in work.config.surveys
                           if {q.key for q in s.questions} >= set(DIMENSIONS)), None)
    row = queries.get_survey(work.session, work.team_id, name) if name else None
    run = queries.get_latest_run(work.session, row.id, closed=True) if row else None
    return Perception.from_results(results(work, row.key, run).as_json(exact=True)) \
        if run else None
