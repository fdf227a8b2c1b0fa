"""What the gap and the index are made of, as plain data: the defaults of README "Perception
vs. reality", which `[alignment]` in the config may override (bot.platform.config reads this module
to validate it, so it imports nothing of the store)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

LEVELS = ("low", "medium", "high")  # ordered: a gap is a difference of one step or more
UNKNOWN = "unknown"  # a dimension none of whose metrics counts
ROLES = ("exec", "sales", "marketing")  # whose perception the gap shows
# The survey's dimensions (its questions' keys) and the metrics that measure each one.
# TARGETS_MET stands for "the share of targeted metrics at or above their target".
TARGETS_MET = "targets_met"
DIMENSIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "customer_understanding": ("conversion_rate", "not_icp_share"),
    "shared_goals": (TARGETS_MET,),
    "communication": ("sla_compliance", "response_time"),
    "lead_quality": ("acceptance_rate", "conversion_rate"),
    "customer_satisfaction": ("churn_rate",),
})
COLLABORATION = "collaboration"  # the 0–10 question perceived alignment is read from
COMPONENTS = ("kpi", "perception", "agreement")
# Targets the reality check uses when [targets] has none for a metric. Only ratios and a
# speed whose meaning does not change with the period's length: a churn target depends on
# it (a month's churn is not a quarter's), so churn_rate counts only with a target of yours.
DEFAULT_TARGETS: Mapping[str, float] = MappingProxyType({
    "sla_compliance": 0.9,      # nine leads in ten answered within their SLA
    "response_time": 60.0,      # a first touch within the hour (median minutes)
    "acceptance_rate": 0.7,     # sales takes seven leads in ten
    "conversion_rate": 0.1,     # one MQL in ten becomes a deal
    "not_icp_share": 0.2,       # at most one rejection in five for "not our ideal customer"
})
# The index's stages: its lower bound, and its name (PRODUCT.md: 20 points apart)
STAGES = ((80, "Strategic"), (60, "Integrated"), (40, "Aligned"), (20, "Defined"), (0, "Ad-Hoc"))


@dataclass(frozen=True)
class Definitions:
    """The rules of the gap and the index (`[alignment]`); each pair of levels is where
    Medium starts and where High starts."""

    period: str = "last 90 days"  # what `/align gap` and `/align index` read by default
    survey: str | None = None  # default: the first survey built on the alignment template
    perception_levels: tuple[float, float] = (2.5, 3.5)  # a role's mean answer, 1–5
    attainment_levels: tuple[float, float] = (0.8, 1.0)  # a metric's value against its target
    targets_met_levels: tuple[float, float] = (0.5, 0.8)  # shared goals: the share of targets met
    weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(
        {"kpi": 0.5, "perception": 0.25, "agreement": 0.25}))
    dimensions: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DIMENSIONS)


def level(value: float, levels: tuple[float, float]) -> str:
    """Low below the first bound, Medium from it, High from the second."""
    medium, high = levels
    return "high" if value >= high else "medium" if value >= medium else "low"


def rank(name: str) -> int:
    return LEVELS.index(name)
