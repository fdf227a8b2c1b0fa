"""Metric answers as Slack shows them (builders) and as pictures (charts): pure, no store."""

from __future__ import annotations

import dataclasses
import struct
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.blocks import metrics as views
from bot.metrics.answers import TREND, Answer, Comparison, parse
from bot.metrics.charts import Series, series, sparkline, tick, trend_png
from bot.metrics.grammar import Query, QueryError, parse_period
from bot.metrics.registry import METRICS
from tests import slack_contract
from tests.slack import all_text

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # Tuesday 09:00 in New York
PNG = b"\x89PNG\r\n\x1a\n"


def make_answer(key: str, value: float | None, *, period: str = "Q3 2026",
                before: float | None = None, groups: dict | None = None, by: str | None = None,
                target: float | None = None, trend: tuple | None = None,
                exact: bool = False, change: float | None = None) -> Answer:
    """An answer as `answers.answer` makes it: by default from the two-figure histograms
    (Slack's), `exact` as `alignbot query` and exports read it."""
    asked = parse_period(period, NOW, NY)
    compare = "previous" if before is not None else None
    if change is None:
        change = value - before if value is not None and compare else None
    comparison = Comparison("previous", asked.previous(), before, change) if compare else None
    return Answer(Query(key, asked, by, compare), METRICS[key], value, groups, comparison,
                  trend or (None,) * (TREND - 1) + (value,), target, NOW, exact)


def shown(message: dict) -> str:
    slack_contract.check_message(message)  # 50 blocks, 3,000 a section, fallback text
    return all_text(message)


# ------------------------------------------------------------------ charts


def test_sparkline_scales_between_lowest_and_highest_with_gaps():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([0.4, None, 0.5]) == "▁ █"
    assert sparkline([3, 3]) == "▄▄"  # flat: mid-height, not empty nor full
    assert sparkline([None, None]) == "  "
    assert sparkline([]) == ""


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


def test_trend_png_draws_one_chart_or_small_multiples():
    one = Series("Win rate", ["Q1", "Q2", "Q3"], [0.4, None, 0.5], target=0.45, percent=True)
    assert png_size(trend_png(one)) == (480, 300)
    minutes = Series("Response time", ["a", "b"], [30, 20], format=lambda v: f"{v:.0f} min")
    assert png_size(trend_png(*[one] * 5, minutes)) == (4 * 480, 2 * 300)  # 4 a row


def test_an_answers_chart_labels_its_periods_and_formats_its_unit():
    quarter = series(make_answer("win_rate", 0.5, target=0.3))
    assert quarter.labels[-2:] == ["Q2 2026", "Q3 2026"] and len(quarter.labels) == TREND
    assert quarter.percent and quarter.target == 0.3
    cac = series(make_answer("cac", 1200.0), "EUR")
    assert cac.format(1200) == "€1,200" and not cac.percent
    assert tick(parse_period("last 7 days", NOW, NY)) == "Nov 24"
    assert tick(parse_period("last 3 months", NOW, NY)) == "Nov 2026"
    assert png_size(trend_png(quarter))[0] > 0


# ------------------------------------------------------------------ one answer


def test_an_answer_shows_value_change_trend_target_definition_and_as_of():
    answer = make_answer("win_rate", 0.5, before=0.4, target=0.3,
                         trend=(None, 0.2, 0.3, None, 0.4, 0.5))
    text = shown(views.metric_answer(answer, "USD"))
    assert "*Win rate* · Q3 2026 (Jul 1 – Sep 30, 2026)" in text
    assert "*50%* ▲ 10 pts vs previous period (40%) :large_green_circle:" in text
    assert "Target 30% ✅" in text and "Trend ` ▁▃ ▆█`" in text
    assert "Won / (won + lost), for deals closed in the period." in text
    assert "As of Tue Nov 24, 09:00 EST" in text  # the workspace's clock, not UTC
    assert views.metric_answer(answer, "USD")["text"] == "Win rate, Q3 2026: 50%"


@pytest.mark.parametrize(("key", "value", "before", "change"), [
    ("response_time", 25.0, 30.0, "▼ 5 min vs previous period (30 min) :large_green_circle:"),
    ("sales_cycle", 40.0, 30.5, "▲ 9.5 days vs previous period (30.5 days) :red_circle:"),
    ("cac", 900.0, 1000.0, "▼ $100 vs previous period ($1,000) :large_green_circle:"),
    ("churn_rate", 0.05, 0.025, "▲ 2.5 pts vs previous period (2%) :red_circle:"),
    ("leads_routed", 12.0, 12.0, "no change vs previous period (12)"),
])
def test_changes_are_plain_differences_coloured_by_the_better_direction(key, value, before,
                                                                         change):
    answer = make_answer(key, value, before=before, exact=True)
    assert change in shown(views.metric_answer(answer, "USD"))


@pytest.mark.parametrize(("key", "value", "text"), [
    ("sales_cycle", 52.76, "53 days"), ("sales_cycle", 45.6, "46 days"),
    ("sales_cycle", 123.0, "120 days"), ("sales_cycle", 4.5, "4.5 days"),
    ("sales_cycle", 46.5, "47 days"),  # half way between two counted values, half up
    ("sales_cycle", 1234.0, "1200 days"), ("response_time", 2022.5, "2000 min"),
    ("response_time", 37.5, "38 min"), ("response_time", 4.5, "5 min"),
])
def test_a_median_from_the_histograms_shows_two_figures_and_no_false_decimal(key, value, text):
    """Slack's answers read medians from histograms of two significant figures (tenths
    below 10): they show no digit those do not hold, however they are laid out."""
    approximate = make_answer(key, value, before=value, groups={"x": value}, by="owner",
                              target=30.0)
    answer_text = shown(views.metric_answer(approximate, "USD"))
    assert f"*{text}* no change vs previous period ({text})" in answer_text
    assert f"x  {text:>10}" in answer_text  # the table by group
    card = shown(views.scorecard([approximate], "USD"))
    assert f"*{approximate.metric.label}* {text} · target 30" in card
    assert views.metric_answer(approximate, "USD")["text"].endswith(f": {text}")


def test_an_approximate_change_is_between_the_values_as_shown_and_the_target_is_exact():
    # 52.76 and 49.5 are shown "53 days" and "50 days": 3 days apart, as `answer` computes it
    answer = make_answer("sales_cycle", 52.76, before=49.5, change=3.0, target=30.25)
    text = shown(views.metric_answer(answer, "USD"))
    assert "*53 days* ▲ 3 days vs previous period (50 days) :red_circle:" in text
    assert "Target 30.2 days ⚠️" in text  # the config's number, exact
    grown = make_answer("sales_cycle", 160.0, before=4.5, change=155.5)
    assert "▲ 160 days vs previous period (4.5 days)" in shown(views.metric_answer(grown, "USD"))


def test_response_times_p90_and_business_median_are_a_line_under_the_value():
    answer = make_answer("response_time", 62.0, by="owner", groups={"U0SAM": 40.0})
    answer = dataclasses.replace(answer, details={"p90": 187.0, "business_median": 35.4})
    message = views.metric_answer(answer, "USD")
    text = shown(message)
    assert "p90 190 min · median in business hours 35 min" in text  # two figures, as the value
    assert text.index("p90") < text.index("*By owner*")  # about the whole, not the last group
    exact = dataclasses.replace(answer, exact=True)
    assert "p90 187 min · median in business hours 35 min" in shown(
        views.metric_answer(exact, "USD"))
    nothing = dataclasses.replace(answer, details={"p90": None, "business_median": None})
    assert len(views.metric_answer(nothing, "USD")["blocks"]) == len(message["blocks"]) - 1


def test_exact_answers_keep_their_decimals():
    answer = make_answer("sales_cycle", 52.76, before=45.6, exact=True)
    assert "*52.8 days* ▲ 7.2 days vs previous period (45.6 days)" in shown(
        views.metric_answer(answer, "USD"))
    assert make_answer("sales_cycle", 123.0, exact=True).format(123.0) == "123.0 days"
    assert make_answer("win_rate", 0.5).format(0.5) == "50%"  # not a median: as it is


def test_missing_numbers_say_so_instead_of_zero():
    answer = make_answer("win_rate", None, before=0.4, target=0.3)
    text = shown(views.metric_answer(answer, "USD"))
    assert "*no data* vs previous period (40%)" in text
    assert "Target 30% ▫️" in text and "Trend" not in text


def test_groups_are_a_table_of_the_top_ten_and_a_count_of_the_rest():
    groups = {f"source-{n:02d}-" + "x" * 40: 1.0 - n / 100 for n in range(25)}
    answer = make_answer("win_rate", 0.5, by="source", groups=groups)
    text = shown(views.metric_answer(answer, "USD"))
    assert "*By source*\n```" in text
    assert "source-09-" in text and "source-10-" not in text
    assert "…and 15 more" in text
    assert max(len(line) for line in text.split("```")[1].splitlines()) <= 24 + 2 + 10


def test_owners_are_shown_by_name_when_known():
    answer = make_answer("leads_routed", 3.0, by="owner",
                         groups={"U0SAM": 2.0, "U0SUE": 1.0, "unassigned": None})
    text = shown(views.metric_answer(answer, "USD", {"U0SAM": "Sam Sales"}))
    assert "Sam Sales" in text and "U0SUE" in text and "no data" in text


# ------------------------------------------------------------------ scorecard, export, errors


def test_the_scorecard_lists_every_metric_within_slacks_limits():
    answers = [make_answer(key, 123456789.0, before=1.0, target=1.0) for key in METRICS]
    message = views.scorecard(answers, "USD")
    text = shown(message)
    for metric in METRICS.values():
        assert f"*{metric.label}*" in text
    assert "⚠️ *Response time* 120000000 min · target 1 min" in text  # two figures
    assert "✅ *Win rate*" in text
    assert message["text"].startswith("Scorecard, Q3 2026: Response time")


def test_an_export_names_its_file_and_rows():
    answer = make_answer("win_rate", 0.5, by="source", groups={"marketing": 0.5})
    assert views.file_name("win_rate", answer.period, "csv") == \
        "win_rate_2026-07-01_2026-09-30.csv"
    assert views.file_name("x", parse_period("today", NOW, NY), "png") == "x_2026-11-24.png"
    text = shown(views.metric_export(answer, "w.csv"))
    assert "`w.csv`: Win rate, Q3 2026 (Jul 1 – Sep 30, 2026) — one row per source." in text


def test_a_question_the_grammar_cannot_read_gets_did_you_mean(config):
    with pytest.raises(QueryError) as caught:
        parse("win rat", config, NOW)
    text = shown(views.metric_error(caught.value))
    assert "Did you mean win_rate?" in text and views.ASK_METRIC in text
