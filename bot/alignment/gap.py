"""Perception vs. reality: per survey dimension, each role's perceived level beside a level
measured from the metrics, and the gaps between them. Pure: values in, rows out.

- A metric's attainment is value / target when higher is better, target / value when lower
  is better (a value of 0, better than any target, attains 1; a negative one, 0). High from
  1, Medium from 0.8 (`Definitions.attainment_levels`). Without a target or data it does
  not count.
- TARGETS_MET (shared goals) is the share of targeted metrics with data at or above target.
- A dimension's reality is the lowest level among its metrics that count (a chain is as
  strong as its weakest link); unknown when none counts.
- A role's perception is its exact mean answer (1–5): Low below 2.5, Medium below 3.5, else
  High; None where the survey's results hide it (fewer than k answers).
- A gap: perception and reality one level apart or more, the role `overrates` (sees it
  better than the data) or `underrates`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.alignment.definitions import LEVELS, ROLES, TARGETS_MET, UNKNOWN, Definitions, level, rank
from bot.alignment.perception import Perception

PRECISION = 6  # attainments are rounded so that 0.72 / 0.9 is 0.8, as by hand


@dataclass(frozen=True)
class Reading:
    """One metric of a dimension (or the targets met): `level` None when it does not count."""

    metric: str
    value: float | None
    target: float | None
    attainment: float | None
    level: str | None

    def as_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "target": self.target,
                "attainment": self.attainment, "level": self.level}


@dataclass(frozen=True)
class Gap:
    role: str
    direction: str  # overrates | underrates


@dataclass(frozen=True)
class Row:
    dimension: str
    reality: str  # high | medium | low | unknown
    metrics: tuple[Reading, ...]
    perception: Mapping[str, str | None]  # role → level, None when not shown
    gaps: tuple[Gap, ...]

    def as_json(self) -> dict[str, Any]:
        return {"dimension": self.dimension, "reality": self.reality,
                "metrics": [m.as_json() for m in self.metrics],
                "perception": dict(self.perception),
                "gaps": [{"role": g.role, "direction": g.direction} for g in self.gaps]}


def attainment(value: float | None, target: float | None, better: str) -> float | None:
    if value is None or target is None:
        return None
    if better == "higher":
        a = value / target if target > 0 else float(value >= target)
    else:
        a = 1.0 if value <= 0 else max(target, 0.0) / value
    return round(max(a, 0.0), PRECISION)


def reading(metric: str, value: float | None, target: float | None, better: str,
            definitions: Definitions) -> Reading:
    a = attainment(value, target, better)
    return Reading(metric, value, target, a,
                   None if a is None else level(a, definitions.attainment_levels))


def targets_met(targeted: Mapping[str, Reading], definitions: Definitions) -> Reading:
    """The share of targeted metrics with data whose attainment is at least 1."""
    counted = [r for r in targeted.values() if r.attainment is not None]
    if not counted:
        return Reading(TARGETS_MET, None, None, None, None)
    share = round(sum(r.attainment >= 1 for r in counted) / len(counted), PRECISION)
    return Reading(TARGETS_MET, share, None, None, level(share, definitions.targets_met_levels))


def reality(metrics: tuple[Reading, ...]) -> str:
    counted = [r.level for r in metrics if r.level is not None]
    return min(counted, key=rank) if counted else UNKNOWN


def perceived(perception: Perception | None, dimension: str,
              definitions: Definitions) -> dict[str, str | None]:
    means = {role: perception.mean(dimension, role) if perception else None for role in ROLES}
    return {role: None if mean is None else level(mean, definitions.perception_levels)
            for role, mean in means.items()}


def gaps(reality_level: str, perception: Mapping[str, str | None]) -> tuple[Gap, ...]:
    if reality_level not in LEVELS:
        return ()
    return tuple(Gap(role, "overrates" if rank(seen) > rank(reality_level) else "underrates")
                 for role, seen in perception.items()
                 if seen is not None and seen != reality_level)


def rows(readings: Mapping[str, Reading], targeted: Mapping[str, Reading],
         perception: Perception | None, definitions: Definitions) -> tuple[Row, ...]:
    """A row per dimension, from each metric's reading (`readings`, by key) and the
    targeted metrics' (`targeted`, for TARGETS_MET)."""
    out = []
    for dimension, keys in definitions.dimensions.items():
        metrics = tuple(targets_met(targeted, definitions) if key == TARGETS_MET
                        else readings[key] for key in keys)
        level_ = reality(metrics)
        seen = perceived(perception, dimension, definitions)
        out.append(Row(dimension, level_, metrics, seen, gaps(level_, seen)))
    return tuple(out)
