"""Builders for channel digests: a section per configured part, within Slack's limits
whatever the data (ten overdue leads then "and N more", the top rejection reasons, lines
packed into sections of at most 3,000 characters, never cut)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bot.blocks import alignment
from bot.blocks.handoff import when
from bot.blocks.kit import (
    SECTION_LIMIT,
    Block,
    clip,
    context,
    divider,
    escape,
    header,
    mention,
    section,
)
from bot.blocks.metrics import BETTER, DOWN, TARGET_MARK, UP, WORSE, period_text
from bot.digests.content import REASONS_SHOWN

if TYPE_CHECKING:
    from bot.blocks.leads import LeadLine
    from bot.digests.content import DigestView
    from bot.metrics.answers import Answer

NOTHING = "Nothing to report: no lead was routed, decided or became an MQL, and no deal closed."
NO_RUN = "No closed pulse survey run yet."
CHART_NOTE = "A chart of the main trends follows in this message's thread."
CHART_PREVIEW = "When posted, a chart of the main trends follows in the digest's thread."
NAME_CHARS, COMPANY_CHARS, ID_CHARS, REASON_CHARS = 60, 40, 40, 40


def digest_message(view: DigestView, preview: bool) -> dict[str, Any]:
    """The digest as posted, or as `/align digest preview` shows it."""
    blocks: list[Block] = [header(clip(f"{view.name.capitalize()} digest: {view.period.label}",
                                       150)),
                           context(period_text(view.period))]
    if view.late_since is not None:
        blocks.append(context(f":hourglass: Posted late: this digest was due "
                              f"{when(view.late_since, tz=view.tz)}, when alignbot was not "
                              "running."))
    if view.empty:
        blocks.append(section(NOTHING))
        return {"text": f"{_title(view)}: {NOTHING}", "blocks": blocks}
    for name in view.sections:
        part = [context(CHART_PREVIEW)] if name == "chart" and preview else _SECTIONS[name](view)
        blocks += [divider(), *part]
    return {"text": clip(f"{_title(view)}: {_summary(view)}", 3000), "blocks": blocks}


def _title(view: DigestView) -> str:
    return f"{escape(view.name.capitalize())} digest, {escape(view.period.label)}"


def _summary(view: DigestView) -> str:
    routed = view.kpis["leads_routed"].value
    return (f"{routed or 0:,.0f} leads routed, {view.accepted:,} accepted, {view.rejected:,} "
            f"rejected; {view.overdue_total:,} overdue now")


# ------------------------------------------------------------------ sections


def _handoff(view: DigestView) -> list[Block]:
    routed = view.kpis["leads_routed"]
    lines = [f"*Leads routed* {_kpi(routed, view.currency)}",
             f"*Accepted* {view.accepted:,} · *rejected* {view.rejected:,}"]
    if view.reasons:
        top = list(view.reasons.items())[:REASONS_SHOWN]
        reasons = ", ".join(f"{escape(clip(reason, REASON_CHARS))} {n or 0:,.0f}"
                            for reason, n in top)
        more = len(view.reasons) - len(top)
        lines.append(f"Top reasons: {reasons}" + (f", and {more:,} more" if more > 0 else ""))
    return [section("*Handoff*\n" + "\n".join(lines))]


def _sla(view: DigestView) -> list[Block]:
    lines = [f"*{a.metric.label}* {_kpi(a, view.currency)}"
             for a in (view.kpis["response_time"], view.kpis["sla_compliance"])]
    blocks = [section("*Speed*\n" + "\n".join(lines))]
    if not view.overdue_total:
        return blocks + [context("No lead is overdue now.")]
    overdue = [f"*Overdue now ({view.overdue_total:,})*",
               *(_overdue(lead, view) for lead in view.overdue)]
    more = view.overdue_total - len(view.overdue)
    if more > 0:
        overdue.append(f"…and {more:,} more (`/align leads overdue`)")
    return blocks + _packed(overdue)


def _funnel(view: DigestView) -> list[Block]:
    lines = [f"*{view.kpis[k].metric.label}* {_kpi(view.kpis[k], view.currency)}"
             for k in ("conversion_rate", "win_rate")]
    return [section("*Funnel*\n" + "\n".join(lines))]


def _pulse(view: DigestView) -> list[Block]:
    p = view.report.perception
    if p is None:
        return [section(f"*Pulse*\n{NO_RUN}")]
    lines = [f"Survey *{escape(p.survey)}*, run {p.run}: {p.responded:,} of {p.invited:,} "
             f"answered" + (f" ({p.participation:.0%})" if p.participation is not None else "")]
    if p.collaboration is None:
        lines.append("Working together: too few answers to show.")
    else:
        change = "" if p.collaboration_change is None else \
            f" ({UP if p.collaboration_change >= 0 else DOWN} {abs(p.collaboration_change):.1f} " \
            "since the run before)"
        lines.append(f"Working together: *{p.collaboration:.1f}* of 10{change}")
    return [section("*Pulse*\n" + "\n".join(lines))]


def _index(view: DigestView) -> list[Block]:
    lines = [alignment.index_line(view.report)]
    if view.report.index.advice is not None:
        lines.append(f"What would raise it most: {alignment.advice(view.report)}")
    return [section(f"*Alignment* · {period_text(view.report.period)}\n" + "\n".join(lines))]


def _gap(view: DigestView) -> list[Block]:
    blocks = [section(f"*Perception vs. reality* · {period_text(view.report.period)}\n"
                      + alignment.gap_text(view.report))]
    if view.report.perception is None:
        blocks.append(context(f"{NO_RUN} Reality is measured from the metrics meanwhile."))
    return blocks


def _chart(view: DigestView) -> list[Block]:
    return [context(CHART_NOTE)]


_SECTIONS = {"handoff": _handoff, "sla": _sla, "funnel": _funnel, "pulse": _pulse,
             "index": _index, "gap": _gap, "chart": _chart}


# ------------------------------------------------------------------ pieces


def _kpi(a: Answer, currency: str) -> str:
    """The value, against its target, and its change since the period before."""
    value = "no data" if a.value is None else escape(a.format(a.value, currency))
    parts = [f"*{value}*"]
    if a.target is not None:
        parts.append(f"target {escape(a.metric.format(a.target, currency))} "
                     f"{TARGET_MARK[a.on_target()]}")
    c = a.comparison
    if c is not None and c.change is not None and c.change != 0:
        size = f"{round(abs(c.change) * 100, 1):g} pts" if a.metric.unit == "ratio" else \
            escape(a.format(abs(c.change), currency))
        better = (c.change > 0) == (a.metric.better == "higher")
        parts.append(f"{UP if c.change > 0 else DOWN} {size} {BETTER if better else WORSE}")
    elif c is not None and c.change == 0:
        parts.append("no change")
    return " · ".join(parts)


def _overdue(lead: LeadLine, view: DigestView) -> str:
    who = escape(clip(lead.name or lead.external_id, NAME_CHARS))
    company = f" ({escape(clip(lead.company, COMPANY_CHARS))})" if lead.company else ""
    owner = mention(lead.owner) if lead.owner else "unassigned"
    due = f", due {when(lead.due_at, tz=view.tz)}" if lead.due_at else ""
    return f"`{escape(clip(lead.external_id, ID_CHARS))}` *{who}*{company} · {owner}{due}"


def _packed(lines: Iterable[str]) -> list[Block]:
    """Lines in as few sections as fit Slack's 3,000 characters each, no line cut."""
    texts: list[str] = []
    for line in lines:
        if texts and len(texts[-1]) + 1 + len(line) <= SECTION_LIMIT:
            texts[-1] += "\n" + line
        else:
            texts.append(line)
    return [section(t) for t in texts]

