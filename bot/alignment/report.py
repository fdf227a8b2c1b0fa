"""The gap and the index over a period: the metrics they read, the survey run, and both
answers, computed once for every surface (`/align gap|index`, the CLI, digests, the Home).

Metric values are read as exact medians (`snapshots.Reader(exact=True)`): people check
them against their CRM. The targets are `[targets]`, else DEFAULT_TARGETS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.alignment import gap
from bot.alignment.definitions import DEFAULT_TARGETS, TARGETS_MET, Definitions
from bot.alignment.index import Index, index
from bot.alignment.perception import Perception, latest_perception
from bot.metrics.grammar import Period, parse_period
from bot.metrics.registry import METRICS
from bot.metrics.snapshots import Reader
from bot.platform.config import Config
from bot.platform.work import Work


@dataclass(frozen=True)
class Report:
    period: Period
    perception: Perception | None
    rows: tuple[gap.Row, ...]
    targeted: Mapping[str, gap.Reading]  # every metric with a target, by key
    index: Index
    definitions: Definitions  # the rules both were computed by (`[alignment]`): shown with them

    def survey_json(self) -> dict[str, Any] | None:
        p = self.perception
        return {"name": p.survey, "run": p.run} if p else None

    def period_json(self) -> dict[str, str]:
        return {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()}

    def gap_json(self) -> dict[str, Any]:
        """`alignbot gap --json`."""
        return {"period": self.period_json(), "survey": self.survey_json(),
                "rows": [row.as_json() for row in self.rows]}

    def index_json(self) -> dict[str, Any]:
        """`alignbot index --json`."""
        return {**self.index.as_json(), "period": self.period_json(),
                "survey": self.survey_json()}

    @property
    def flagged(self) -> tuple[gap.Row, ...]:
        return tuple(row for row in self.rows if row.gaps)


def targets(config: Config) -> dict[str, float]:
    return {**DEFAULT_TARGETS, **config.targets}


def build(period: Period, values: Mapping[str, float | None], targets_: Mapping[str, float],
          perception: Perception | None, definitions: Definitions) -> Report:
    """The report from metric values (by key: every metric of a dimension and every
    targeted one) and a run's perception."""
    def read(key: str) -> gap.Reading:
        return gap.reading(key, values.get(key), targets_.get(key), METRICS[key].better,
                           definitions)

    targeted = {key: read(key) for key in METRICS if key in targets_}
    readings = {key: read(key) for keys in definitions.dimensions.values() for key in keys
                if key != TARGETS_MET}
    rows = gap.rows(readings, targeted, perception, definitions)
    return Report(period, perception, rows, targeted,
                  index(targeted, rows, perception, definitions), definitions)


def report(work: Work, period: Period | None = None, survey: str | None = None, *,
           until: datetime | None = None) -> Report:
    """Over `period` (default: `[alignment] period`, the last 90 days, up to `until`, else
    now), with the latest closed run of `survey` (default: `[alignment] survey`)."""
    config = work.config
    definitions = config.alignment
    period = period or parse_period(definitions.period, until or work.now, config.workspace.tz)
    targets_ = targets(config)
    keys = {key for keys in definitions.dimensions.values() for key in keys
            if key != TARGETS_MET} | (targets_.keys() & METRICS.keys())
    reader = Reader(work, exact=True)
    values = {key: reader.value(METRICS[key], period, None)[0] for key in keys}
    perception = latest_perception(work, survey or definitions.survey)
    return build(period, values, targets_, perception, definitions)
