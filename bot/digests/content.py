"""What a digest says about a period: every section's numbers, read once (`compose`), shown
by `bot.blocks.digests` and printed by `alignbot digest preview --json`.

The numbers are the metric answers' own, with exact medians (a digest is what people
forward and check), each against the period before and its target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from bot.alignment.report import Report, report
from bot.blocks.leads import LeadLine
from bot.handoff.leads import OPEN
from bot.metrics.answers import Answer, answer
from bot.metrics.charts import Series, series, trend_png
from bot.metrics.grammar import Period, Query
from bot.metrics.registry import METRICS, Parts
from bot.metrics.snapshots import Reader
from bot.platform.config import Digest
from bot.platform.work import Work
from bot.sla import policies as sla
from bot.surveys.results import shown_mean
from storage.leads import get_person_by_id, list_leads

OVERDUE_SHOWN = 10  # then "and N more"
REASONS_SHOWN = 5
KPIS = ("leads_routed", "response_time", "sla_compliance", "conversion_rate", "win_rate")
CHARTED = ("response_time", "sla_compliance", "conversion_rate", "win_rate")  # the main trends


@dataclass(frozen=True)
class DigestView:
    name: str
    period: Period
    sections: tuple[str, ...]
    kpis: Mapping[str, Answer]  # KPIS, each with the period before and its trend
    accepted: int
    rejected: int
    reasons: Mapping[str, float | None]  # rejections by reason, most first
    overdue: tuple[LeadLine, ...]  # open past due now, the longest overdue first
    overdue_total: int
    report: Report | None  # the pulse, the index and the gap; None when no section shows them
    tz: tzinfo
    currency: str = "USD"
    late_since: datetime | None = None  # the firing it was due at, when posted late

    @property
    def empty(self) -> bool:
        """Nothing happened in the period: no lead routed, decided or MQL, no deal closed."""
        return not (self.accepted or self.rejected) and all(
            self.kpis[k].value is None for k in ("leads_routed", "conversion_rate", "win_rate"))

    def as_json(self) -> dict[str, Any]:
        """`alignbot digest preview <name> --json`: the sections the digest has."""
        def kpi(key: str) -> dict[str, Any]:
            a = self.kpis[key]
            return {"value": a.value, "target": a.target,
                    "previous": a.comparison.value if a.comparison else None,
                    "change": a.comparison.change if a.comparison else None}

        parts: dict[str, Any] = {
            "handoff": {"routed": kpi("leads_routed"), "accepted": self.accepted,
                        "rejected": self.rejected,
                        "reasons": [{"reason": r, "count": n} for r, n in self.reasons.items()]},
            "sla": {"response_time": kpi("response_time"),
                    "sla_compliance": kpi("sla_compliance"),
                    "overdue": {"total": self.overdue_total, "leads": [
                        {"external_id": o.external_id, "name": o.name, "owner": o.owner,
                         "due_at": o.due_at.isoformat() if o.due_at else None}
                        for o in self.overdue]}},
            "funnel": {"conversion_rate": kpi("conversion_rate"), "win_rate": kpi("win_rate")},
        }
        if self.report is not None:
            p = self.report.perception
            parts |= {"pulse": p and {"survey": p.survey, "run": p.run,
                                      "participation": p.participation,
                                      "responded": p.responded, "invited": p.invited,
                                      "collaboration": shown_mean(p.collaboration),
                                      "change": p.collaboration_change},
                      "index": self.report.index.as_json(),
                      "gap": [row.as_json() for row in self.report.rows]}
        return {"digest": self.name,
                "period": {"start": self.period.start.isoformat(),
                           "end": self.period.end.isoformat(), "label": self.period.label},
                "empty": self.empty,
                "late_since": self.late_since.isoformat() if self.late_since else None,
                **{s: parts[s] for s in self.sections if s in parts}}


def compose(work: Work, digest: Digest, period: Period,
            late_since: datetime | None = None) -> DigestView:
    session, config, team_id, now = work.session, work.config, work.team_id, work.now
    kpis = {key: answer(work, Query(key, period, compare="previous"), exact=True)
            for key in KPIS}
    reader = Reader(work)
    decided = Parts.total(reader.parts(METRICS["acceptance_rate"], period.start, period.end,
                                       None).values())
    _, reasons = reader.value(METRICS["rejection_reasons"], period, "reason")
    rows, total = list_leads(session, team_id, OPEN, due_before=now, limit=OVERDUE_SHOWN)
    overdue = tuple(LeadLine(r.external_id, r.name, r.company, r.status,
                             (owner := get_person_by_id(session, r.owner_id)) and owner.slack_id,
                             r.sla_due_at, sla.state(r, now)) for r in rows)
    shown = {"pulse", "index", "gap"} & set(digest.sections)
    return DigestView(
        digest.name, period, digest.sections, kpis, int(decided.numerator),
        int(decided.denominator - decided.numerator), reasons or {}, overdue, total,
        # `[alignment] period` as `/align gap` reads it then, not the digest's own week:
        # survey runs are weeks apart and targets such as churn's are set for that period
        report(work, until=period.end) if shown else None,
        config.workspace.tz, config.workspace.currency, late_since)


CHART = "bot.digests.content:chart_png"  # the outbox draws it at delivery


def chart_args(view: DigestView) -> dict[str, Any]:
    """The main trends over six periods as long as the digest's, as plain JSON for the
    outbox row that uploads their chart."""
    trends = [series(view.kpis[key], view.currency) for key in CHARTED]
    return {"currency": view.currency,
            "trends": [{"metric": key, "labels": list(s.labels), "values": list(s.values),
                        "target": s.target} for key, s in zip(CHARTED, trends, strict=True)]}


def chart_png(trends: list[dict[str, Any]], currency: str) -> bytes:
    """`chart_args`'s trends as small multiples."""
    def formatted(key: str) -> Series:
        t = next(t for t in trends if t["metric"] == key)
        metric = METRICS[key]
        percent = metric.unit == "ratio"
        return Series(metric.label, t["labels"], t["values"], t["target"], percent,
                      None if percent else lambda v: metric.format(v, currency))
    return trend_png(*(formatted(t["metric"]) for t in trends))
