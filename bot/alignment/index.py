"""The alignment index, 0–100: `round(100 × (0.5 × K + 0.25 × P + 0.25 × A))`. Pure.

- K, KPI attainment: the mean over targeted metrics with data of min(attainment, 1).
- P, perceived alignment: the exact mean answer to "How well do sales and marketing work
  together?" (0–10) of the latest closed run, over 10 (not the mean as results show it).
- A, agreement: the share of the shown (role, dimension) perception cells whose level is
  the dimension's known reality level.
A component without data is left out and the others' weights are scaled to add up to 1.
Rounded half up. Stages: Ad-Hoc < 20 ≤ Defined < 40 ≤ Aligned < 60 ≤ Integrated < 80 ≤
Strategic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.alignment.definitions import COMPONENTS, LEVELS, STAGES, Definitions
from bot.alignment.gap import Reading, Row
from bot.alignment.perception import Perception

PRECISION = 9  # sums of float products are rounded here before the half-up rounding


@dataclass(frozen=True)
class Advice:
    """What would raise the index most: the component furthest from 1, and its weakest part
    (a metric for K, the dimension with the most disagreeing roles for A)."""

    component: str
    value: float
    metric: Reading | None = None
    row: Row | None = None


@dataclass(frozen=True)
class Index:
    value: int | None  # None: no component has data
    components: Mapping[str, float | None]  # kpi, perception, agreement
    weights: Mapping[str, float | None]  # as used: scaled to add up to 1; None when left out
    advice: Advice | None

    @property
    def stage(self) -> str | None:
        if self.value is None:
            return None
        return next(name for bound, name in STAGES if self.value >= bound)

    @property
    def left_out(self) -> tuple[str, ...]:
        return tuple(c for c in COMPONENTS if self.components[c] is None)

    def as_json(self) -> dict[str, Any]:
        return {"index": self.value, "stage": self.stage, "components": dict(self.components),
                "weights": dict(self.weights)}


def kpi(targeted: Mapping[str, Reading]) -> float | None:
    capped = [min(r.attainment, 1.0) for r in targeted.values() if r.attainment is not None]
    return _round(sum(capped) / len(capped)) if capped else None


def perceived_alignment(perception: Perception | None) -> float | None:
    if perception is None or perception.collaboration is None:
        return None
    return _round(perception.collaboration / 10)


def agreement(rows: Sequence[Row]) -> float | None:
    cells = [seen == row.reality for row in rows if row.reality in LEVELS
             for seen in row.perception.values() if seen is not None]
    return _round(sum(cells) / len(cells)) if cells else None


def index(targeted: Mapping[str, Reading], rows: Sequence[Row], perception: Perception | None,
          definitions: Definitions) -> Index:
    components = {"kpi": kpi(targeted), "perception": perceived_alignment(perception),
                  "agreement": agreement(rows)}
    present = {c: definitions.weights[c] for c in COMPONENTS if components[c] is not None}
    total = sum(present.values())
    if not total:
        return Index(None, components, dict.fromkeys(COMPONENTS), None)
    weights = {c: _round(present[c] / total) if c in present else None for c in COMPONENTS}
    score = sum(present[c] / total * components[c] for c in present)
    value = math.floor(_round(100 * score) + 0.5)
    return Index(value, components, weights, _advice(components, present, targeted, rows))


def _advice(components: Mapping[str, float | None], weights: Mapping[str, float],
            targeted: Mapping[str, Reading], rows: Sequence[Row]) -> Advice:
    """The component furthest from 1 (of equals, the heavier, then the first)."""
    component = min(weights, key=lambda c: (components[c], -weights[c], COMPONENTS.index(c)))
    value = components[component]
    if component == "kpi":
        weakest = min((r for r in targeted.values() if r.attainment is not None),
                      key=lambda r: (min(r.attainment, 1.0), r.metric))
        return Advice(component, value, metric=weakest)
    if component == "agreement":
        return Advice(component, value, row=max(rows, key=lambda r: len(r.gaps)))
    return Advice(component, value)


def _round(x: float) -> float:
    return round(x, PRECISION)
