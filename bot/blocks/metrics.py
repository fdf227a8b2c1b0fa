"""Builders for metric answers, the scorecard, exports and questions the grammar could not read.

Times and dates are written in the workspace timezone, which is the zone of the answer's
period: a metric's periods are the workspace's days, so its "as of" reads on the same clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.blocks.kit import clip, context, escape, header, message, section
from bot.metrics.charts import sparkline

if TYPE_CHECKING:
    from bot.metrics.answers import Answer
    from bot.metrics.grammar import Period, QueryError

ASK_METRIC = "Ask like `/align metric win rate last quarter by source vs previous`."
ASK_EXPORT = "Ask like `/align export win rate last quarter by source`."
ASK_SCORECARD = "Ask like `/align scorecard last quarter` (default: the last 30 days)."
NO_DATA = "no data"
UP, DOWN = "▲", "▼"
BETTER, WORSE = ":large_green_circle:", ":red_circle:"
TARGET_MARK = {True: "✅", False: "⚠️", None: "▫️"}  # met, missed, no target or no value
TABLE_ROWS = 10
LABEL_WIDTH = 24  # characters of a group's name in the table
SCORECARD_LINES = 7  # metrics per section: well within 3,000 characters
# an answer's `details`, as they are named beside its value
DETAIL_LABELS = {"p90": "p90", "business_median": "median in business hours"}


def metric_answer(answer: Answer, currency: str,
                  names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The value, its change, target and trend, the breakdown by group when asked, the
    definition and how fresh the data is. `names` shows owners' names instead of ids."""
    m = answer.metric
    value = _value(answer, answer.value, currency)
    lines = [f"*{m.label}* · {period_text(answer.period)}",
             " ".join(filter(None, (f"*{value}*", _comparison(answer, currency))))]
    extras = [t for t in (_target(answer, currency), _trend(answer)) if t]
    if extras:
        lines.append("   ·   ".join(extras))
    blocks = [section("\n".join(lines))]
    more = _details(answer, currency)
    if more:  # under the value it adds to, above any table of groups
        blocks.append(context(more))
    if answer.groups:
        blocks.append(section(_table(answer, currency, names or {})))
    blocks.append(context(m.definition, as_of(answer)))
    text = f"{m.label}, {escape(answer.period.label)}: {value}"
    return {"text": text, "blocks": blocks}


def scorecard(answers: Sequence[Answer], currency: str) -> dict[str, Any]:
    """Every metric against its target: value, target, trend and change since the previous
    period, a line each."""
    period = answers[0].period
    lines = [_scorecard_line(a, currency) for a in answers]
    blocks = [header(f"Scorecard: {period.label}"),  # plain_text: shown as it is
              context(f"{dates_text(period)} · ✅ on target, ⚠️ off target · "
                      "changes vs the previous period")]
    blocks += [section("\n".join(lines[i:i + SCORECARD_LINES]))
               for i in range(0, len(lines), SCORECARD_LINES)]
    blocks.append(context(as_of(min(answers, key=lambda a: a.as_of))))
    summary = "; ".join(f"{a.metric.label} {_value(a, a.value, currency)}" for a in answers)
    return {"text": clip(f"Scorecard, {escape(period.label)}: {summary}", 3000), "blocks": blocks}


def metric_export(answer: Answer, filename: str) -> dict[str, Any]:
    rows = f"one row per {escape(answer.by)}" if answer.groups is not None else \
        f"one row for each of the last {len(answer.trend)} periods"
    return message(f":page_facing_up: `{escape(filename)}`: {answer.metric.label}, "
                   f"{period_text(answer.period)} — {rows}.")


def metric_error(error: QueryError, example: str = ASK_METRIC) -> dict[str, Any]:
    """What the grammar could not read; its message names the closest metrics ("did you
    mean"), and the example shows a question that works."""
    text = f":thinking_face: {escape(error.message)}"  # it quotes what was asked
    return {"text": text, "blocks": [section(text), context(example)]}


# ------------------------------------------------------------------ pieces


def period_text(period: Period) -> str:
    return f"{escape(period.label)} ({dates_text(period)})"


def dates_text(period: Period) -> str:
    """The period's local dates, both ends included: "Jul 1 – Sep 30, 2026"."""
    first, last = _dates(period)
    if first == last:
        return _day(first, year=True)
    return f"{_day(first, year=first.year != last.year)} – {_day(last, year=True)}"


def file_name(stem: str, period: Period, extension: str) -> str:
    """"win_rate_2026-07-01_2026-09-30.csv": several exports side by side stay apart."""
    first, last = _dates(period)
    days = first.isoformat() if first == last else f"{first.isoformat()}_{last.isoformat()}"
    return f"{stem}_{days}.{extension}"


def _dates(period: Period) -> tuple[date, date]:
    """The first and the last day of the half-open period."""
    return period.start.date(), period.end.date() - timedelta(days=1)


def as_of(answer: Answer) -> str:
    at = answer.as_of.astimezone(answer.period.start.tzinfo)
    return f"As of {_day(at.date(), weekday=True)}, {at:%H:%M %Z}"


def _day(day: date | datetime, *, year: bool = False, weekday: bool = False) -> str:
    text = f"{day:%a} {day:%b} {day.day}" if weekday else f"{day:%b} {day.day}"
    return f"{text}, {day.year}" if year else text


def _value(answer: Answer, value: float | None, currency: str) -> str:
    return NO_DATA if value is None else _format(answer, value, currency)


def _format(answer: Answer, value: float, currency: str) -> str:
    """One of the answer's values: a median to two figures unless the answer is exact."""
    return escape(answer.format(value, currency))  # the currency is the config's


def _target(answer: Answer, currency: str) -> str | None:
    if answer.target is None:
        return None
    return f"Target {_target_value(answer, currency)} {TARGET_MARK[answer.on_target()]}"


def _target_value(answer: Answer, currency: str) -> str:
    return escape(answer.metric.format(answer.target, currency))  # the config's, exact


def _details(answer: Answer, currency: str) -> str | None:
    """"p90 190 min · median in business hours 35 min": the whole workspace's, those with
    data; written as the value is."""
    shown = [f"{_detail_label(name)} {_format(answer, value, currency)}"
             for name, value in answer.details.items() if value is not None]
    return " · ".join(shown) or None


def _detail_label(name: str) -> str:
    return DETAIL_LABELS.get(name, escape(name))


def _change(answer: Answer, change: float, currency: str) -> str:
    """▲/▼ and how much. Ratios move in percentage points: 40% to 50% is "10 pts", not
    "25%" nor "10%"."""
    if change == 0:
        return "no change"
    m = answer.metric
    size = f"{round(abs(change) * 100, 1):g} pts" if m.unit == "ratio" else \
        _format(answer, abs(change), currency)
    return f"{UP if change > 0 else DOWN} {size}"


def _verdict(answer: Answer, change: float) -> str:
    """" 🟢" when the change went the metric's better way (down, for response time), else
    " 🔴"; nothing for no change."""
    if change == 0:
        return ""
    return " " + (BETTER if (change > 0) == (answer.metric.better == "higher") else WORSE)


def _comparison(answer: Answer, currency: str) -> str | None:
    c = answer.comparison
    if c is None:
        return None
    then = f"vs {c.label} ({_value(answer, c.value, currency)})"
    if c.change is None:
        return then
    return f"{_change(answer, c.change, currency)} {then}{_verdict(answer, c.change)}"


def _trend(answer: Answer) -> str | None:
    if all(v is None for v in answer.trend):
        return None
    return f"Trend `{sparkline(answer.trend)}` (last {len(answer.trend)} periods)"


def _table(answer: Answer, currency: str, names: Mapping[str, str]) -> str:
    """The groups, highest first, as a monospace table of the top TABLE_ROWS; with the
    groups' details (response time by owner), a column each after the value, named in the
    title: "*By owner* (Response time · p90 · median in business hours)"."""
    groups = list(answer.groups.items())
    shown = groups[:TABLE_ROWS]
    labels = [clip(names.get(key, key) or "—", LABEL_WIDTH).replace("`", "'") for key, _ in shown]
    width = max(map(len, labels))  # as shown: escaped after padding
    columns = list(dict.fromkeys(name for details in answer.group_details.values()
                                 for name in details))
    rows = [escape(f"{label:<{width}}") + "".join(
        f"  {_value(answer, v, currency):>10}"
        for v in (value, *(answer.group_details.get(key, {}).get(c) for c in columns)))
        for label, (key, value) in zip(labels, shown, strict=True)]
    named = f" ({' · '.join([answer.metric.label, *map(_detail_label, columns)])})" \
        if columns else ""
    text = f"*By {escape(answer.by)}*{named}\n```\n" + "\n".join(rows) + "\n```"
    if len(groups) > TABLE_ROWS:
        text += f"\n…and {len(groups) - TABLE_ROWS} more (`/align export` lists them all)"
    return text


def _scorecard_line(answer: Answer, currency: str) -> str:
    parts = [f"{TARGET_MARK[answer.on_target()]} *{answer.metric.label}* "
             f"{_value(answer, answer.value, currency)}"]
    if answer.target is not None:
        parts.append(f"target {_target_value(answer, currency)}")
    if any(v is not None for v in answer.trend):
        parts.append(f"`{sparkline(answer.trend)}`")
    c = answer.comparison
    if c is not None and c.change is not None:
        parts.append(_change(answer, c.change, currency) + _verdict(answer, c.change))
    return " · ".join(parts)
