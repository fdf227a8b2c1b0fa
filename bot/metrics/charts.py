"""Pictures of metric trends: a text sparkline for messages, a PNG for uploads.

matplotlib is imported inside `trend_png`: it costs ~0.5 s, and only a `chart` request
needs it. The figure is drawn on an explicit Agg canvas, without pyplot: no display, and
no global figure state shared by the listener threads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.metrics.grammar import Period

if TYPE_CHECKING:
    from bot.metrics.answers import Answer

BARS = "▁▂▃▄▅▆▇█"
GAP = " "  # a period without data
COLUMNS = 4  # small multiples per row
PANEL = (4.0, 2.5)  # inches per chart: 480 × 300 px at DPI
DPI = 120
LINE, TARGET = "#1f3a5f", "#c0392b"


def sparkline(values: Sequence[float | None]) -> str:
    """One bar per value, scaled between the lowest and the highest; None is a gap."""
    known = [v for v in values if v is not None]
    if not known:
        return GAP * len(values)
    low, span = min(known), max(known) - min(known)
    top = len(BARS) - 1
    return "".join(GAP if v is None else BARS[round((v - low) / span * top) if span else top // 2]
                   for v in values)


@dataclass(frozen=True)
class Series:
    """One chart: a value per labelled period, and the target line when there is one.
    The y axis shows fractions as percentages, else values written by `format`."""

    title: str
    labels: Sequence[str]
    values: Sequence[float | None]
    target: float | None = None
    percent: bool = False
    format: Callable[[float], str] | None = None


def series(answer: Answer, currency: str = "USD") -> Series:
    """An answer's trend, its periods labelled short enough for an axis."""
    from bot.metrics.answers import trend_periods  # answers imports the store; charts need not

    metric = answer.metric
    percent = metric.unit == "ratio"  # 0.5% and 1.5% would both read "1%" in the metric's format
    return Series(metric.label, [tick(p) for p in trend_periods(answer.period)], answer.trend,
                  answer.target, percent, None if percent else lambda v: metric.format(v, currency))


def tick(period: Period) -> str:
    """A calendar unit by its name ("Q3 2026", "2026-07"), other spans by their last day:
    "Nov 24" for spans up to a month, "Nov 2026" for longer ones (their years differ)."""
    if period.kind is not None:
        return period.label
    last = period.end.date() - timedelta(days=1)
    return f"{last:%b} {last.day}" if period.days() <= 31 else f"{last:%b %Y}"


def trend_png(*charts: Series) -> bytes:
    """One chart, or small multiples of several (up to COLUMNS a row), as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    columns = min(len(charts), COLUMNS)
    rows = math.ceil(len(charts) / columns)
    figure = Figure(figsize=(PANEL[0] * columns, PANEL[1] * rows), dpi=DPI, layout="constrained")
    for index, chart in enumerate(charts):
        axes = figure.add_subplot(rows, columns, index + 1)
        points = [math.nan if v is None else v for v in chart.values]  # NaN: a gap in the line
        axes.plot(range(len(points)), points, color=LINE, marker="o", markersize=3)
        axes.set_xticks(range(len(points)), chart.labels)
        if chart.target is not None:
            axes.axhline(chart.target, color=TARGET, linestyle="--", linewidth=1)
        axes.set_title(chart.title, fontsize=9)
        if chart.percent:
            axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        elif chart.format is not None:
            axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _, f=chart.format: f(v)))
        axes.tick_params(labelsize=7)
        axes.tick_params(axis="x", labelrotation=30)
    out = io.BytesIO()
    FigureCanvasAgg(figure).print_png(out)
    return out.getvalue()
