"""Builders for perception vs. reality (`/align gap`) and the alignment index (`/align index`),
and the pieces digests and the App Home show of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.alignment.definitions import TARGETS_MET
from bot.blocks.kit import Block, clip, context, escape, header, section
from bot.blocks.metrics import period_text
from bot.metrics.registry import METRICS

if TYPE_CHECKING:
    from bot.alignment.definitions import Definitions
    from bot.alignment.gap import Reading, Row
    from bot.alignment.report import Report

DIMENSION_LABELS = {
    "customer_understanding": "Understanding of the target customer",
    "shared_goals": "Shared goals and objectives",
    "communication": "Communication",
    "lead_quality": "Lead quality",
    "customer_satisfaction": "Customer satisfaction",
}
LEVEL_MARKS = {"high": ":large_green_circle: High", "medium": ":large_yellow_circle: Medium",
               "low": ":red_circle: Low", "unknown": ":white_circle: unknown"}
COMPONENT_LABELS = {"kpi": "KPI attainment (K)", "perception": "Perceived alignment (P)",
                    "agreement": "Agreement (A)"}
COMPONENT_NAMES = {"kpi": "KPI attainment", "perception": "perceived alignment",
                   "agreement": "agreement"}
GAP = ":warning:"
NO_RUN = ("No closed pulse survey run yet: perception shows here once one closes "
          "(`/align survey start`).")
HIDDEN = "—"  # a role with fewer answers than the survey shows


def gap_rules(d: Definitions) -> str:
    """The rules the gap was computed by: `[alignment]`'s levels, or their defaults."""
    medium, high = d.attainment_levels
    t_medium, t_high = d.targets_met_levels
    p_medium, p_high = d.perception_levels
    return ("Reality: the lowest level of a dimension's metrics, each against its target "
            f"(High at {_percent(high)}, Medium from {_percent(medium)}); the share of targeted "
            f"metrics at target: High from {_percent(t_high)}, Medium from {_percent(t_medium)}. "
            f"Perception: a role's mean answer (High from {_number(p_high)}, Medium from "
            f"{_number(p_medium)}; {HIDDEN} below the survey's k answers).")


def index_rules(d: Definitions) -> str:
    """The index's formula with the weights it was computed by (`[alignment] weights`)."""
    w = d.weights
    return (f"index = round(100 × ({_number(w['kpi'])} × K + {_number(w['perception'])} × P + "
            f"{_number(w['agreement'])} × A)); stages: Ad-Hoc < 20 ≤ Defined < 40 ≤ Aligned < "
            "60 ≤ Integrated < 80 ≤ Strategic. `/align gap` shows perception beside reality.")


def _number(x: float) -> str:
    return f"{x:g}"  # 0.25, 0.6, 3.5, 3 (a bound of 3.0), 0.333333


def _percent(x: float) -> str:
    return f"{100 * x:g}%"  # 100%, 80%, 87.5%


def gap_answer(report: Report) -> dict[str, Any]:
    """Each survey dimension: its measured reality, its metrics, and how each role sees it."""
    blocks = [header("Perception vs. reality"), context(_source(report))]
    blocks += [section(_row(row, report.perception is not None)) for row in report.rows]
    blocks.append(context(gap_rules(report.definitions)))
    flagged = ", ".join(f"{_dimension(r.dimension)} ({_gaps(r)})" for r in report.flagged)
    text = f"Perception vs. reality, {escape(report.period.label)}: " + (
        f"gaps in {flagged}" if flagged else "no gaps" if report.perception else NO_RUN)
    return {"text": clip(text, 3000), "blocks": blocks}


def index_answer(report: Report) -> dict[str, Any]:
    """The index, its stage, each component with its weight, and what would raise it most."""
    idx = report.index
    if idx.value is None:
        text = (f"Alignment index, {escape(report.period.label)}: not enough data (no metric "
                "with a target has data, and no survey run has closed).")
        return {"text": text, "blocks": [section(text), context(index_rules(report.definitions))]}
    blocks = [header(f"Alignment index: {idx.value} · {idx.stage}"),
              context(_source(report)), section(_components(report))]
    if idx.advice is not None:
        blocks.append(section(f"*What would raise it most:* {advice(report)}"))
    blocks.append(context(index_rules(report.definitions)))
    text = f"Alignment index, {escape(report.period.label)}: {idx.value} ({idx.stage})"
    return {"text": text, "blocks": blocks}


def home_alignment(report: Report) -> list[Block]:
    """The App Home's part: the index and stage, and the dimensions with a gap."""
    idx = report.index
    score = f"*{idx.value}* · {idx.stage}" if idx.value is not None else "not enough data"
    lines = [f"Alignment index {score} · {period_text(report.period)}"]
    lines += [f"{GAP} *{_dimension(row.dimension)}*: {_gaps(row)} "
              f"(the data says {LEVEL_MARKS[row.reality]})" for row in report.flagged]
    blocks = [header("Alignment"), section("\n".join(lines))]
    if report.perception is None:
        blocks.append(context(NO_RUN))
    return blocks + [context("`/align index` and `/align gap` explain each number.")]


# ------------------------------------------------------------------ pieces (digests use them)


def gap_text(report: Report) -> str:
    """A line a dimension: reality, then each role's perception, gaps marked."""
    return "\n".join(f"*{_dimension(row.dimension)}*: {LEVEL_MARKS[row.reality]}"
                     + (f" · {_perceptions(row)}" if report.perception is not None else "")
                     for row in report.rows)


def index_line(report: Report) -> str:
    idx = report.index
    if idx.value is None:
        return "Alignment index: not enough data."
    parts = ", ".join(f"{COMPONENT_NAMES[c]} {v:.2f}"
                      for c, v in idx.components.items() if v is not None)
    return f"Alignment index *{idx.value}* · {idx.stage} ({parts})"


def advice(report: Report) -> str:
    a = report.index.advice
    head = f"{COMPONENT_NAMES[a.component]} ({a.value:.2f})"
    if a.metric is not None:
        m = a.metric
        return (f"{head}; its weakest metric is *{_label(m.metric)}*, {_value(m.metric, m.value)} "
                f"against a target of {_value(m.metric, m.target)}.")
    if a.row is not None:
        return (f"{head}; the widest gap is *{_dimension(a.row.dimension)}*: {_gaps(a.row)} "
                f"(the data says {LEVEL_MARKS[a.row.reality]}).")
    p = report.perception
    return (f"{head}; the teams rate working together {p.collaboration:.1f} of 10 "
            f"({escape(p.survey)}, run {p.run}).")


def _source(report: Report) -> str:
    p = report.perception
    run = f"survey *{escape(p.survey)}*, run {p.run}" if p else NO_RUN
    return f"{period_text(report.period)} · {run}"


def _row(row: Row, perceived: bool) -> str:
    lines = [f"*{_dimension(row.dimension)}* · reality {LEVEL_MARKS[row.reality]}",
             " · ".join(_reading(m) for m in row.metrics)]
    if perceived:
        lines.append(f"Perceived: {_perceptions(row)}")
    return "\n".join(lines)


def _reading(m: Reading) -> str:
    if m.metric == TARGETS_MET:
        share = "no targeted metric has data" if m.value is None else \
            f"{m.value:.0%} of targeted metrics at target"
        return share + (f" ({m.level.capitalize()})" if m.level else "")
    value = _value(m.metric, m.value)
    if m.target is None:
        return f"{_label(m.metric)} {value} (no target: not counted)"
    if m.level is None:
        return f"{_label(m.metric)} {value} (no data: not counted)"
    return (f"{_label(m.metric)} {value} "
            f"(target {_value(m.metric, m.target)}: {m.level.capitalize()})")


def _perceptions(row: Row) -> str:
    directions = {g.role: g.direction for g in row.gaps}
    return " · ".join(
        f"{role} *{seen.capitalize()}*" + (f" {GAP} {directions[role]}" if role in directions
                                             else "") if seen else f"{role} {HIDDEN}"
        for role, seen in row.perception.items())


def _gaps(row: Row) -> str:
    return ", ".join(f"{g.role} {g.direction}" for g in row.gaps)


def _dimension(key: str) -> str:
    return DIMENSION_LABELS.get(key, escape(key))


def _label(metric: str) -> str:
    return METRICS[metric].label


def _value(metric: str, value: float | None) -> str:
    return "no data" if value is None else escape(METRICS[metric].format(value))


def _components(report: Report) -> str:
    idx = report.index
    lines = [f"• {COMPONENT_LABELS[c]} *{v:.2f}* × {idx.weights[c]:.2f}"
             for c, v in idx.components.items() if v is not None]
    lines += [f"• {COMPONENT_LABELS[c]} left out: {_why_left_out(report, c)}"
              for c in idx.left_out]
    if idx.left_out:
        lines.append("_The other weights are scaled to add up to 1._")
    return "\n".join(lines)


def _why_left_out(report: Report, component: str) -> str:
    if report.perception is None and component != "kpi":
        return "no closed survey run yet"
    return {"kpi": "no metric with a target has data in the period",
            "perception": "too few answers to the collaboration question to show",
            "agreement": "no role's perception is shown where the data knows the level"}[component]
