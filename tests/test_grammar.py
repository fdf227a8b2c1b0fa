"""The query grammar: hand-computed periods in New York (DST and year ends included),
questions in free form, helpful errors, and a fuzz test that only QueryError escapes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.metrics.grammar import (
    DIMENSIONS,
    MAX_DAYS,
    Period,
    Query,
    QueryError,
    parse_day,
    parse_period,
    parse_query,
)

NY = ZoneInfo("America/New_York")
TUESDAY = datetime(2026, 3, 10, 12, 0, tzinfo=NY)  # two days after spring forward (Sun Mar 8)
NEW_YEAR = datetime(2026, 1, 2, 9, 0, tzinfo=NY)  # a Friday
VOCABULARY = {
    "win_rate": ["win rate", "close rate", "wins"],
    "response_time": ["response time", "speed to lead", "time to first touch"],
    "sla_compliance": ["sla", "sla compliance"],
    "acceptance_rate": ["acceptance"],
    "cac": ["customer acquisition cost", "cost per customer"],
}


def local(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=NY)


def hours(period: Period) -> float:
    # aware datetimes sharing a zoneinfo subtract in wall-clock time: compare real instants
    return (period.end.astimezone(UTC) - period.start.astimezone(UTC)) / timedelta(hours=1)


def ask(text: str, now: datetime = TUESDAY, default: str | None = None) -> Query:
    return parse_query(text, now, NY, VOCABULARY, default)


def refused(text: str, now: datetime = TUESDAY) -> QueryError:
    with pytest.raises(QueryError) as caught:
        ask(text, now)
    return caught.value


@pytest.mark.parametrize("text,first,end,label", [
    ("today", (2026, 3, 10), (2026, 3, 11), "today"),
    ("yesterday", (2026, 3, 9), (2026, 3, 10), "yesterday"),
    ("last day", (2026, 3, 9), (2026, 3, 10), "yesterday"),
    ("this week", (2026, 3, 9), (2026, 3, 16), "week of 2026-03-09"),
    ("last week", (2026, 3, 2), (2026, 3, 9), "week of 2026-03-02"),
    ("this month", (2026, 3, 1), (2026, 4, 1), "2026-03"),
    ("last month", (2026, 2, 1), (2026, 3, 1), "2026-02"),
    ("this quarter", (2026, 1, 1), (2026, 4, 1), "Q1 2026"),
    ("last quarter", (2025, 10, 1), (2026, 1, 1), "Q4 2025"),
    ("this year", (2026, 1, 1), (2027, 1, 1), "2026"),
    ("last year", (2025, 1, 1), (2026, 1, 1), "2025"),
    # last N ... is rolling and includes today
    ("last 7 days", (2026, 3, 4), (2026, 3, 11), "last 7 days"),
    ("last 1 day", (2026, 3, 10), (2026, 3, 11), "last 1 day"),
    ("past 30 days", (2026, 2, 9), (2026, 3, 11), "last 30 days"),
    ("last 2 weeks", (2026, 2, 25), (2026, 3, 11), "last 2 weeks"),
    ("last 3 months", (2025, 12, 11), (2026, 3, 11), "last 3 months"),
    ("", (2026, 2, 9), (2026, 3, 11), "last 30 days"),
    ("mtd", (2026, 3, 1), (2026, 3, 11), "month to date"),
    ("qtd", (2026, 1, 1), (2026, 3, 11), "quarter to date"),
    ("year to date", (2026, 1, 1), (2026, 3, 11), "year to date"),
    ("2026-03", (2026, 3, 1), (2026, 4, 1), "2026-03"),
    ("Q3 2026", (2026, 7, 1), (2026, 10, 1), "Q3 2026"),
    ("q3 2026", (2026, 7, 1), (2026, 10, 1), "Q3 2026"),
    ("2026 Q3", (2026, 7, 1), (2026, 10, 1), "Q3 2026"),
    ("2026-Q3", (2026, 7, 1), (2026, 10, 1), "Q3 2026"),
    ("2026", (2026, 1, 1), (2027, 1, 1), "2026"),
    ("2026-01-01..2026-03-31", (2026, 1, 1), (2026, 4, 1), "2026-01-01..2026-03-31"),
    ("2026-01-01 to 2026-03-31", (2026, 1, 1), (2026, 4, 1), "2026-01-01..2026-03-31"),
    ("2026-01-01 – 2026-03-31", (2026, 1, 1), (2026, 4, 1), "2026-01-01..2026-03-31"),
    ("2026-01-01–2026-03-31", (2026, 1, 1), (2026, 4, 1), "2026-01-01..2026-03-31"),
    ("2026-03-08", (2026, 3, 8), (2026, 3, 9), "2026-03-08"),
])
def test_every_period_form(text, first, end, label):
    period = parse_period(text, TUESDAY, NY)
    assert (period.start, period.end, period.label) == (local(*first), local(*end), label)
    assert period.start.tzinfo is NY and period.end.tzinfo is NY


@pytest.mark.parametrize("text,first,end,label", [
    ("last week", (2025, 12, 22), (2025, 12, 29), "week of 2025-12-22"),
    ("this week", (2025, 12, 29), (2026, 1, 5), "week of 2025-12-29"),
    ("last month", (2025, 12, 1), (2026, 1, 1), "2025-12"),
    ("last quarter", (2025, 10, 1), (2026, 1, 1), "Q4 2025"),
    ("ytd", (2026, 1, 1), (2026, 1, 3), "year to date"),
    ("last 7 days", (2025, 12, 27), (2026, 1, 3), "last 7 days"),
])
def test_periods_across_the_year_end(text, first, end, label):
    period = parse_period(text, NEW_YEAR, NY)
    assert (period.start, period.end, period.label) == (local(*first), local(*end), label)


def test_last_7_days_over_spring_forward_is_an_hour_short_but_seven_days():
    period = parse_period("last 7 days", TUESDAY, NY)
    assert (period.start.date(), period.end.date()) == (date(2026, 3, 4), date(2026, 3, 11))
    assert period.start.utcoffset() == timedelta(hours=-5)
    assert period.end.utcoffset() == timedelta(hours=-4)
    assert hours(period) == 7 * 24 - 1
    assert period.days() == 7


def test_fall_back_day_and_week_are_an_hour_long():
    fall = parse_period("2026-11-01", TUESDAY, NY)
    assert hours(fall) == 25 and fall.days() == 1
    week = parse_period("last 7 days", datetime(2026, 11, 3, 12, 0, tzinfo=NY), NY)
    assert hours(week) == 7 * 24 + 1 and week.days() == 7


def test_today_is_the_workspace_date_not_the_utc_one():
    late_evening = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)  # 23:00 on the 10th in New York
    assert parse_period("today", late_evening, NY).start == local(2026, 3, 10)


@pytest.mark.parametrize("text,now,first,end,label", [
    ("Q3 2026", TUESDAY, (2026, 4, 1), (2026, 7, 1), "Q2 2026"),
    ("Q1 2026", TUESDAY, (2025, 10, 1), (2026, 1, 1), "Q4 2025"),
    ("2026-03", TUESDAY, (2026, 2, 1), (2026, 3, 1), "2026-02"),
    ("2026-01", TUESDAY, (2025, 12, 1), (2026, 1, 1), "2025-12"),
    ("2028-03", TUESDAY, (2028, 2, 1), (2028, 3, 1), "2028-02"),
    ("2026", TUESDAY, (2025, 1, 1), (2026, 1, 1), "2025"),
    ("last week", TUESDAY, (2026, 2, 23), (2026, 3, 2), "week of 2026-02-23"),
    ("today", TUESDAY, (2026, 3, 9), (2026, 3, 10), "2026-03-09"),
    ("last 7 days", TUESDAY, (2026, 2, 25), (2026, 3, 4), "2026-02-25..2026-03-03"),
    ("2026-01-01..2026-03-31", TUESDAY, (2025, 10, 3), (2026, 1, 1), "2025-10-03..2025-12-31"),
    # mtd on Mar 10 covers Mar 1-10: the previous month's Feb 1-10
    ("mtd", TUESDAY, (2026, 2, 1), (2026, 2, 11), "2026-02-01..2026-02-10"),
    ("mtd", datetime(2026, 3, 31, 12, 0, tzinfo=NY), (2026, 2, 1), (2026, 3, 1),
     "2026-02-01..2026-02-28"),
    ("qtd", datetime(2026, 5, 15, 12, 0, tzinfo=NY), (2026, 1, 1), (2026, 2, 16),
     "2026-01-01..2026-02-15"),
    ("ytd", TUESDAY, (2025, 1, 1), (2025, 3, 11), "2025-01-01..2025-03-10"),
])
def test_previous(text, now, first, end, label):
    previous = parse_period(text, now, NY).previous()
    assert (previous.start, previous.end, previous.label) == (local(*first), local(*end), label)


def test_previous_of_previous_keeps_the_calendar_unit():
    assert parse_period("Q1 2026", TUESDAY, NY).previous().previous().label == "Q3 2025"


@pytest.mark.parametrize("text,now,first,end,label", [
    ("Q3 2026", TUESDAY, (2025, 7, 1), (2025, 10, 1), "Q3 2025"),
    ("2026-03", TUESDAY, (2025, 3, 1), (2025, 4, 1), "2025-03"),
    ("2028-02-29", TUESDAY, (2027, 2, 28), (2027, 3, 1), "2027-02-28"),
    ("2028-02", TUESDAY, (2027, 2, 1), (2027, 3, 1), "2027-02"),
    ("2028-02-01..2028-02-29", TUESDAY, (2027, 2, 1), (2027, 3, 1), "2027-02-01..2027-02-28"),
    ("ytd", datetime(2028, 2, 29, 12, 0, tzinfo=NY), (2027, 1, 1), (2027, 3, 1),
     "2027-01-01..2027-02-28"),
    ("last week", TUESDAY, (2025, 3, 2), (2025, 3, 9), "2025-03-02..2025-03-08"),
    ("last 7 days", TUESDAY, (2025, 3, 4), (2025, 3, 11), "2025-03-04..2025-03-10"),
])
def test_last_year(text, now, first, end, label):
    earlier = parse_period(text, now, NY).last_year()
    assert (earlier.start, earlier.end, earlier.label) == (local(*first), local(*end), label)


@pytest.mark.parametrize("text,expected", [
    ("<@U123ABC> what was our win rate last quarter by source?",
     Query("win_rate", parse_period("last quarter", TUESDAY, NY), by="source")),
    ("What's the speed to lead this month vs last year",
     Query("response_time", parse_period("2026-03", TUESDAY, NY), compare="last_year")),
    ("win rate Q3 2026 by source",
     Query("win_rate", parse_period("Q3 2026", TUESDAY, NY), by="source")),
    ("sla compliance 2026-01-01..2026-03-31 by owner share chart",
     Query("sla_compliance", parse_period("2026-01-01..2026-03-31", TUESDAY, NY), by="owner",
           share=True, chart=True)),
    ("@alignbot how's our close rate?", Query("win_rate", parse_period("", TUESDAY, NY))),
    ("WIN_RATE ytd", Query("win_rate", parse_period("ytd", TUESDAY, NY))),
    ("Acceptance Rate in 2026-02", Query("acceptance_rate", parse_period("2026-02", TUESDAY, NY))),
    ("speed-to-lead, last week, per owner.",
     Query("response_time", parse_period("last week", TUESDAY, NY), by="owner")),
    # a synonym holding a grammar word ("per") is still the metric
    ("cost per customer by team", Query("cac", parse_period("", TUESDAY, NY), by="team")),
])
def test_questions_in_free_form(text, expected):
    assert ask(text) == expected


def test_the_longest_synonym_wins():
    vocabulary = {"response_time": ["response time"], "time_spent": ["time"]}
    assert parse_query("response time today", TUESDAY, NY, vocabulary).metric == "response_time"
    assert parse_query("time today", TUESDAY, NY, vocabulary).metric == "time_spent"


@pytest.mark.parametrize("text,compare", [
    ("win rate vs previous", "previous"),
    ("win rate vs previous period", "previous"),
    ("win rate vs prior", "previous"),
    ("win rate vs last period", "previous"),
    ("win rate q3 2026 vs last year", "last_year"),
    ("win rate vs. LY", "last_year"),
    ("win rate last month compared to last year", "last_year"),
    ("win rate yoy", "last_year"),
    ("win rate", None),
])
def test_comparisons(text, compare):
    assert ask(text).compare == compare


def test_vs_last_year_is_a_comparison_not_the_period():
    query = ask("win rate last quarter vs last year")
    assert (query.period.label, query.compare) == ("Q4 2025", "last_year")


@pytest.mark.parametrize("text", ["win rate vs", "win rate vs last month",
                                  "win rate vs previous vs last year"])
def test_unknown_comparisons_say_which_exist(text):
    assert "vs last year" in refused(text).message


@pytest.mark.parametrize("word,dimension", [
    ("owner", "owner"), ("owners", "owner"), ("sources", "source"), ("segment", "segment"),
    ("regions", "region"), ("team", "team")])
def test_breakdowns_singular_and_plural(word, dimension):
    assert ask(f"win rate by {word}").by == dimension
    assert ask(f"win rate per {word}").by == dimension


def test_unknown_breakdown_lists_the_dimensions_and_suggests():
    error = refused("win rate by ownr")
    assert error.suggestions == ("owner",)
    assert "Did you mean owner?" in error.message
    assert all(dimension in error.message for dimension in DIMENSIONS)
    assert refused("win rate by").suggestions == ()
    assert "One breakdown" in refused("win rate by owner by source").message


def test_did_you_mean_for_a_misspelt_metric():
    error = refused("what was our win rat last quarter?")
    assert error.suggestions[0] == "win_rate"
    assert error.message.startswith("I don't know the metric “win rat”. Did you mean win_rate?")
    assert "Metrics: win_rate, response_time" in error.message
    assert refused("respnse time today").suggestions[0] == "response_time"
    assert refused("blorp").suggestions == ()


def test_a_default_metric_fills_in_and_none_asks_which():
    assert ask("last quarter by source", default="win_rate").metric == "win_rate"
    assert refused("last quarter by source").message.startswith("Which metric?")


def test_two_metrics_at_once_are_refused():
    error = refused("win rate and response time")
    assert set(error.suggestions) == {"win_rate", "response_time"}


@pytest.mark.parametrize("text,says", [
    ("win rate 2026-13", "not a month"),
    ("win rate Q5 2026", "not a quarter"),
    ("win rate Q0 2026", "not a quarter"),
    ("win rate 2026-03-31..2026-01-01", "ends before it starts"),
    ("win rate 2026-02-30", "not a date"),
    ("win rate last 0 days", "1 or more"),
    ("win rate last 100000 days", "too long"),
    ("win rate 2000-01-01..2026-01-01", "too long"),
    ("win rate 9999", "years"),
    ("win rate last quarter this year", "One period at a time"),
    ("win rate last fortnight", "couldn't read the period"),
    ("win rate 30 days", "couldn't read the period"),
])
def test_malformed_periods_say_which_forms_are_valid(text, says):
    message = refused(text).message
    assert says in message
    assert "Periods: today, yesterday" in message


def test_parse_period_refuses_other_words_and_overlong_input():
    assert parse_period("for Q3 2026, please", TUESDAY, NY).label == "Q3 2026"
    with pytest.raises(QueryError, match="couldn't read the period"):
        parse_period("Q3 2026 banana", TUESDAY, NY)
    with pytest.raises(QueryError, match="too long"):
        ask("win rate " + "x" * 500)


TOKENS = ["win rate", "speed to lead", "sla", "wins", "win rat", "cac", "by", "per", "owner",
          "sources", "colour", "vs", "vs.", "previous", "last year", "ly", "last", "this", "past",
          "day", "days", "week", "months", "quarter", "year", "today", "mtd", "ytd", "q3", "Q5",
          "2026", "2026-03", "2026-13", "2028-02-29", "2026-02-30", "2026-01-01..2026-03-31",
          "..", "–", "to", "0", "7", "100000", "share", "chart", "<@U123>", "?", "what", "the",
          "-", "ü", "٣", "|", "\n"]


def assert_parses_or_refuses(text: str, now: datetime, default: str | None = None) -> None:
    try:
        query = parse_query(text, now, NY, VOCABULARY, default)
    except QueryError as error:
        assert error.message
        return
    period = query.period
    assert period.start.tzinfo is not None and period.end.tzinfo is not None
    assert period.start < period.end and period.days() <= MAX_DAYS
    assert period.previous().end <= period.start
    assert period.last_year().start < period.last_year().end
    assert query.metric in VOCABULARY or query.metric == default
    assert query.by in (None, *DIMENSIONS) and query.compare in (None, "previous", "last_year")


moments = st.integers(946_684_800, 4_102_444_800).map(lambda s: datetime.fromtimestamp(s, UTC))


@settings(max_examples=300)
@given(st.text(max_size=600), moments)
def test_any_text_parses_or_is_refused(text, now):
    assert_parses_or_refuses(text, now)
    assert_parses_or_refuses(text, now, default="win_rate")


@settings(max_examples=300)
@given(st.lists(st.sampled_from(TOKENS), max_size=10).map(" ".join), moments)
def test_any_sentence_of_real_words_parses_or_is_refused(text, now):
    assert_parses_or_refuses(text, now, default="win_rate")


@pytest.mark.parametrize(("words", "day"), [  # from Tuesday, December 1, 2026
    ("today", "2026-12-01"), ("tomorrow", "2026-12-02"), ("yesterday", "2026-11-30"),
    ("friday", "2026-12-04"), ("Fri.", "2026-12-04"), ("next friday", "2026-12-04"),
    ("tuesday", "2026-12-08"), ("next tuesday", "2026-12-08"), ("this tuesday", "2026-12-01"),
    ("next monday", "2026-12-07"), ("next week", "2026-12-07"), ("2026-12-24", "2026-12-24"),
    ("dec 24", "2026-12-24"), ("24th December", "2026-12-24"), ("Jan 4", "2027-01-04"),
    ("december 1", "2026-12-01"), ("nov 30", "2027-11-30"), ("feb 29", "2028-02-29"),
])
def test_a_day_in_words(words, day):
    assert parse_day(words, date(2026, 12, 1)).isoformat() == day


@pytest.mark.parametrize("words", ["", "soon", "2026-02-30", "next", "last friday", "friday 3",
                                   "dec 32", "next dec 24", "dec"])
def test_a_day_it_cannot_read_says_what_it_can(words):
    with pytest.raises(QueryError, match="Days: today, tomorrow"):
        parse_day(words, date(2026, 12, 1))
