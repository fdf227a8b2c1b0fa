"""Every metric computed live on tests/metric_fixture.py, against numbers worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from bot.metrics.registry import (
    DIMENSIONS,
    METRICS,
    Parts,
    _response_detail,
    compute,
    quantile,
    response_time_detail,
    vocabulary,
)
from bot.platform.config import METRIC_KEYS
from storage import metrics as queries
from storage.db import make_sessionmaker
from tests.metric_fixture import OTHER_TEAM, _lead, add_metric_fixture, at, period
from tests.slack import TEAM

MAY, JUNE, JULY = period(5), period(6), period(7)
EMPTY = period(12, 2025)  # nothing happened
MONTH_DAYS = 365.25 / 12


@pytest.fixture
def session(engine):
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        add_metric_fixture(s)
    with sessions() as s:
        yield s


def metric(session, key, when, by=None, **settings):
    return compute(session, TEAM, key, *when, by, **settings)


# ------------------------------------------------------------------ the registry


def test_the_registry_holds_product_md_metrics_in_order():
    assert tuple(METRICS) == METRIC_KEYS
    words = [w for synonyms in vocabulary().values() for w in synonyms]
    assert len(words) == len(set(words)), "a word names one metric"
    assert {"win rate", "close rate", "speed to lead", "sla", "cac", "ltv"} <= set(words)
    for m in METRICS.values():
        assert m.unit in ("ratio", "minutes", "days", "money", "count")
        assert m.better in ("higher", "lower")
        assert set(m.dimensions) <= {*DIMENSIONS, "reason"}
        assert m.definition.endswith(".")
    live = {k for k, m in METRICS.items() if not m.additive}
    assert live == {"churn_rate", "content_utilization", "cltv", "revenue_growth"}


def test_an_empty_period_has_no_value(session):
    for key in METRIC_KEYS:  # one test: the fixture is written once
        expected = (None, {}) if key == "rejection_reasons" else (None, None)
        assert metric(session, key, EMPTY) == expected, key


def test_groupings_a_metric_lacks_are_refused(session):
    with pytest.raises(ValueError, match="cannot be grouped by owner"):
        metric(session, "churn_rate", JUNE, "owner")
    with pytest.raises(ValueError, match="unknown metric"):
        metric(session, "happiness", JUNE)


def test_formats():
    assert METRICS["win_rate"].format(0.48) == "48%"
    assert METRICS["response_time"].format(37.4) == "37 min"
    assert METRICS["sales_cycle"].format(12.5) == "12.5 days"
    assert METRICS["cac"].format(1234.4) == "$1,234"
    assert METRICS["cac"].format(1234, "EUR") == "€1,234"
    assert METRICS["cltv"].format(1234, "CHF") == "1,234 CHF"
    assert METRICS["leads_routed"].format(1234) == "1,234"
    assert METRICS["win_rate"].format(None) == "—"


def test_quantiles_interpolate_between_ranks():
    histogram = {1.0: 1, 2.0: 1, 10.0: 2}  # 1, 2, 10, 10
    assert quantile(histogram, 0.5) == 6.0  # (2 + 10) / 2
    assert quantile(histogram, 0.9) == 10.0
    assert quantile({}, 0.5) is None


def test_parts_add_sums_and_merge_histograms():
    total = Parts(1, 2, {1.0: 1}) + Parts(3, 4, {1.0: 2, 2.5: 1})
    assert total == Parts(4, 6, {1.0: 3, 2.5: 1})
    assert sum([Parts(1, 1), Parts(2, 0)], Parts()) == Parts(3, 1)


# ------------------------------------------------------------------ each metric


def test_response_time(session):
    # June, touched leads routed in June: L1 10, L9 12.35 -> 12, L2 30, L3 45, L14 60,
    # L4 3960 -> 4000 (L5, L6, L13 were rejected, L7, L8 never touched): median (30 + 45) / 2
    assert metric(session, "response_time", JUNE) == (pytest.approx(37.5), None)
    # Sam: L1 10, L9 12, L2 30; Sue: L3 45, L4 4000; Max: L14 60
    _, groups = metric(session, "response_time", JUNE, "owner")
    assert groups == pytest.approx({"U0SUE": 2022.5, "U0MAX": 60.0, "U0SAM": 12.0})
    assert list(groups) == ["U0SUE", "U0MAX", "U0SAM"]
    assert metric(session, "response_time", JULY)[0] == pytest.approx(40.0)  # L12 (L15 rejected)
    assert metric(session, "response_time", MAY)[0] == pytest.approx(5.0)  # L11


def test_response_time_detail(session):
    # p90 of 6 values: rank 4.5, half way from 60 to 4000; business minutes:
    # 10, 12, 20 (L3), 30, 60, 120 (L4): median 25
    assert response_time_detail(session, TEAM, *JUNE) == {
        "": pytest.approx(queries.ResponseFigures(37.5, 2030.0, 25.0))}
    detail = response_time_detail(session, TEAM, *JUNE, by="segment")
    assert detail["enterprise"] == pytest.approx(queries.ResponseFigures(4000.0, 4000.0, 120.0))  # L4
    assert response_time_detail(session, TEAM, *EMPTY) == {"": queries.ResponseFigures(None, None, None)}


def test_exact_response_figures_interpolate_as_the_histograms_do(session):
    """`list_response_figures` ranks each group's rows in SQL; read as `quantile` reads a
    histogram of the exact values (numpy's default), on every backend, for every count
    from 1."""
    def figures(*period, by=None, key=""):
        return queries.list_response_figures(session, TEAM, *period, by).get(key)

    def expected(minutes, business):
        wall = dict.fromkeys(minutes, 1)
        return pytest.approx((quantile(wall, 0.5), quantile(wall, 0.9),
                              quantile(dict.fromkeys(business, 1), 0.5)))
    # June's touched leads, by routing; by source, ebook's L3 and L4
    assert figures(*JUNE) == expected([10.0, 12.35, 30.0, 45.0, 60.0, 3960.0],
                                      [10.0, 12.35, 20.0, 30.0, 60.0, 120.0])
    assert figures(*JUNE, by="source", key="ebook") == expected([45.0, 3960.0], [20.0, 120.0])
    assert figures(*MAY) == (5.0, 5.0, 5.0)  # one lead
    assert figures(*EMPTY) is None
    # the first k of June's leads by routing time, k = 1..6
    routed = [at(6, 2, 9), at(6, 3, 10), at(6, 4, 14), at(6, 5, 16), at(6, 18, 9), at(6, 20, 9)]
    by_time = [10.0, 30.0, 45.0, 3960.0, 60.0, 12.35]
    for k in range(1, 7):
        values = by_time[:k]
        end = routed[k - 1].replace(minute=1)
        p90 = pytest.approx(quantile(dict.fromkeys(values, 1), 0.9))
        assert figures(JUNE[0], end).p90 == p90, k
        # guided by the two-figure histogram: only the values around the rank are read
        guide = Parts.total(METRICS["response_time"].parts(session, TEAM, JUNE[0], end).values())
        assert _response_detail(session, TEAM, JUNE[0], end, "p90", guide.histogram) == p90
    # a guide the rows have moved away from (a refresh behind) ranks them all
    for stale in ({10.0: 1}, {5000.0: 3}, {0.0: 40, 9000.0: 1}):
        assert _response_detail(session, TEAM, *JUNE, "p90", stale) == pytest.approx(2010.0)
        assert _response_detail(session, TEAM, *JUNE, "business_median", stale) == 25.0


def test_minutes_and_days_are_counted_to_two_figures_half_up_on_every_backend(session):
    sam = METRICS["response_time"].parts(session, TEAM, *JUNE, "owner")["U0SAM"]
    assert dict(sam.histogram) == {10.0: 1, 12.0: 1, 30.0: 1}  # L9's 12.35
    sue = METRICS["response_time"].parts(session, TEAM, *JUNE, "owner")["U0SUE"]
    assert dict(sue.histogram) == {45.0: 1, 4000.0: 1}  # L4's 3960
    cycle = METRICS["sales_cycle"].parts(session, TEAM, *JULY, None)[""]
    assert dict(cycle.histogram) == {34.0: 1, 61.0: 1}  # D2's 33.5 days: half up


def test_sla_compliance(session):
    # June, with an SLA: met L1, L3, L4, L5 (a rejection in time), L9; breached L2, L6, L13,
    # and L7 (open, due 6/15); L8 (due 7/1 13:00) is not yet due at the period's end;
    # L14 has no SLA
    assert metric(session, "sla_compliance", JUNE)[0] == pytest.approx(5 / 9)
    # from its due time on (7/1 13:00), L8 is open past due: a breach
    assert metric(session, "sla_compliance", JUNE, now=at(7, 1, 12, 59))[0] == pytest.approx(5 / 9)
    assert metric(session, "sla_compliance", JUNE, now=at(7, 1, 13))[0] == pytest.approx(5 / 10)
    # Sam: L1, L9 of L1, L2, L6, L9; Sue: L3, L4 of L3, L4, L7, L13; Max: L5
    _, groups = metric(session, "sla_compliance", JUNE, "owner")
    assert groups == pytest.approx({"U0MAX": 1.0, "U0SAM": 0.5, "U0SUE": 0.5})
    assert list(groups) == ["U0MAX", "U0SAM", "U0SUE"]
    _, groups = metric(session, "sla_compliance", JUNE, "owner", now=at(7, 2))
    assert groups["unassigned"] == 0.0  # L8
    assert metric(session, "sla_compliance", JULY)[0] == pytest.approx(0.5)  # L12 met, L15 not


def test_acceptance_rate(session):
    # June: accepted L1, L2, L3, L4, L7, L9, L14 (a touch is an acceptance); rejected L5, L6;
    # L13, accepted in June, was rejected in July and counts there, once
    assert metric(session, "acceptance_rate", JUNE)[0] == pytest.approx(7 / 9)
    assert metric(session, "acceptance_rate", JULY)[0] == pytest.approx(1 / 3)  # L12; L13, L15
    assert metric(session, "acceptance_rate", MAY)[0] == 1.0  # L11
    # Sam: L1, L2, L9 of those and L6; Sue: L3, L4, L7; Max: L14 of L14, L5
    _, groups = metric(session, "acceptance_rate", JUNE, "owner")
    assert groups == pytest.approx({"U0SUE": 1.0, "U0SAM": 0.75, "U0MAX": 0.5})
    _, groups = metric(session, "acceptance_rate", JUNE, "team")
    assert groups == pytest.approx({"sales": 6 / 7, "sales_manager": 0.5})


def test_rejection_reasons(session):
    # June: L5 not_icp, L6 duplicate; July: L13 wrong_territory, L15 not_icp
    assert metric(session, "rejection_reasons", JUNE) == (2, {"duplicate": 1, "not_icp": 1})
    assert metric(session, "rejection_reasons", (at(6, 1), at(8, 1)), "reason") == (
        4, {"not_icp": 2, "duplicate": 1, "wrong_territory": 1})
    with pytest.raises(ValueError):
        metric(session, "rejection_reasons", JUNE, "owner")


def test_conversion_rate(session):
    # 12 June MQLs (the 11 routed and L10); converted L1 (D1), L3 (D2), L4 (D3, lost still
    # counts), L14 (D5); L2's D8 was created an hour before its MQL
    assert metric(session, "conversion_rate", JUNE)[0] == pytest.approx(4 / 12)
    # Sam: L1 of L1, L2, L6, L9, L10; Sue: L3, L4 of L3, L4, L7, L13; Max: L14 of L5, L14; L8
    _, groups = metric(session, "conversion_rate", JUNE, "owner")
    assert groups == pytest.approx({"U0MAX": 0.5, "U0SUE": 0.5, "U0SAM": 0.2, "unassigned": 0.0})
    assert metric(session, "conversion_rate", MAY)[0] == 0.0  # L11's D7 predates its MQL


def test_win_rate(session):
    # June: D1 won, D3 lost, D4 won; July: D2, D7 won, D8 lost; May: D6 won
    assert metric(session, "win_rate", JUNE)[0] == pytest.approx(2 / 3)
    assert metric(session, "win_rate", JULY)[0] == pytest.approx(2 / 3)
    assert metric(session, "win_rate", MAY)[0] == 1.0
    assert metric(session, "win_rate", JUNE, "owner")[1] == pytest.approx(
        {"U0MAX": 1.0, "U0SAM": 1.0, "U0SUE": 0.0})
    # segment is the deal's lead's: D1 <- L1 smb, D3 <- L4 enterprise, D4 has no lead
    assert metric(session, "win_rate", JUNE, "segment")[1] == pytest.approx(
        {"smb": 1.0, "unknown": 1.0, "enterprise": 0.0})
    assert metric(session, "win_rate", JUNE, "source")[1] == pytest.approx(  # the deal's own
        {"marketing": 1.0, "sales": 0.5})
    assert metric(session, "win_rate", JUNE, "team")[1] == pytest.approx(
        {"sales_manager": 1.0, "sales": 0.5})


def test_sales_cycle(session):
    # won in June: D1 20.0 days, D4 41.25 -> 41; in July: D2 33.5 -> 34, D7 61.0
    assert metric(session, "sales_cycle", JUNE)[0] == pytest.approx(30.5)
    assert metric(session, "sales_cycle", JULY)[0] == pytest.approx(47.5)
    assert metric(session, "sales_cycle", JUNE, "owner")[1] == pytest.approx(
        {"U0MAX": 41.0, "U0SAM": 20.0})


def test_content_utilization(session):
    # June: K1, K2, K3 exist, K1 used; May: K1, K2 exist, K2 used; July: K3 and K1 used
    assert metric(session, "content_utilization", JUNE)[0] == pytest.approx(1 / 3)
    assert metric(session, "content_utilization", MAY)[0] == pytest.approx(1 / 2)
    assert metric(session, "content_utilization", JULY)[0] == pytest.approx(2 / 3)


def test_churn_rate(session):
    # active on 6/1: C1, C2, C3, C7; churned in June: C2 and C5 (which also started in June)
    assert metric(session, "churn_rate", JUNE)[0] == pytest.approx(2 / 4)
    # active on 7/1: C1, C3, C4, C7; churned in July: C7
    assert metric(session, "churn_rate", JULY)[0] == pytest.approx(1 / 4)
    assert metric(session, "churn_rate", period(2))[0] == 0.0  # C1 active, nobody churned
    assert metric(session, "churn_rate", period(1))[0] is None  # nobody active on 1/1


def test_revenue_growth(session):
    # July (31 days) against [5/31, 7/1): D2 + D7 = 42,000 against D1 + D4 = 30,000
    assert metric(session, "revenue_growth", JULY)[0] == pytest.approx(0.4)
    # June against [5/2, 6/1): 30,000 against D6's 8,000
    assert metric(session, "revenue_growth", JUNE)[0] == pytest.approx(30_000 / 8_000 - 1)
    assert metric(session, "revenue_growth", MAY)[0] is None  # nothing won in April
    # Sam and Max won nothing in July, after D1 and D4; Sue won nothing before
    assert metric(session, "revenue_growth", JULY, "owner")[1] == pytest.approx(
        {"U0MAX": -1.0, "U0SAM": -1.0, "U0SUE": None})


def test_cac(session):
    # June: 9,000 spent, C4 and C5 started
    assert metric(session, "cac", JUNE) == (pytest.approx(4_500), None)
    assert metric(session, "cac", JUNE, "team")[1] == pytest.approx(
        {"sales": 2_500, "marketing": 2_000})
    # July: marketing's 5,000 for C6; sales spent nothing: no value
    assert metric(session, "cac", JULY, "team")[1] == pytest.approx(
        {"marketing": 5_000, "sales": None})
    assert metric(session, "cac", MAY)[0] is None  # spend, but no customer started
    # Q2: May and June spend (14,000) for C7, C4, C5
    assert metric(session, "cac", (at(4, 1), at(7, 1)))[0] == pytest.approx(14_000 / 3)


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Tokyo", "Pacific/Pago_Pago",
                                "Pacific/Kiritimati"])
def test_a_local_month_gets_that_months_spend(session, tz):
    zone = ZoneInfo(tz)
    start, end = (datetime(2026, m, 1, tzinfo=zone).astimezone(UTC) for m in (6, 7))
    assert metric(session, "cac", (start, end), tz=zone)[0] == pytest.approx(4_500)


def test_a_period_gets_the_share_of_each_months_spend_its_days_are(session):
    # 6/2-7/1: 29 of June's 30 days, 8,700, for C4 and C5
    assert metric(session, "cac", (at(6, 2), at(7, 1)))[0] == pytest.approx(4_350)
    # 6/16-7/16: half of June's 9,000 and 15/31 of July's 5,000, for C5 and C6
    assert metric(session, "cac", (at(6, 16), at(7, 16)))[0] == pytest.approx(
        (4_500 + 5_000 * 15 / 31) / 2)


def test_cltv(session):
    # June: ARPA on 7/1 of C1, C3, C4, C7 = 5,200 / 4; churn 1/2 over one month
    june = 1300 * 0.8 / 0.5
    assert metric(session, "cltv", JUNE)[0] == pytest.approx(june)  # 2,080
    assert metric(session, "cltv", JUNE, gross_margin=0.5)[0] == pytest.approx(june * 0.5 / 0.8)
    # July: ARPA on 8/1 of C1, C3, C4, C6 = 5,300 / 4; churn 1/4 over one month
    assert metric(session, "cltv", JULY)[0] == pytest.approx(1325 * 0.8 / 0.25)  # 4,240
    # 6/2-7/1 is not whole months: churn 1/2 (C2, C5 of C1, C2, C3, C7) over 29 days
    assert metric(session, "cltv", (at(6, 2), at(7, 1)))[0] == pytest.approx(
        1300 * 0.8 / (0.5 / (29 / MONTH_DAYS)))
    assert metric(session, "cltv", period(2))[0] is None  # no churn


def test_marketing_sourced_revenue(session):
    # June: D1 10,000 from marketing of D1 + D4 = 30,000; July: D2 and D7, both marketing
    assert metric(session, "marketing_sourced_revenue", JUNE)[0] == pytest.approx(1 / 3)
    assert metric(session, "marketing_sourced_revenue", JULY)[0] == pytest.approx(1.0)
    assert metric(session, "marketing_sourced_revenue", JUNE, "owner")[1] == pytest.approx(
        {"U0SAM": 1.0, "U0MAX": 0.0})


def test_a_metric_counts_what_its_session_holds_but_has_not_written(session):
    """Metric reads skip the ORM's result machinery (storage.db.read) but not its autoflush:
    a lead added in the same session counts before anything is committed or flushed."""
    session.add(_lead("L-NEW", None, "webinar", "smb", "na", at(6, 20), status="routed"))
    assert metric(session, "leads_routed", JUNE)[0] == 12
    with session.no_autoflush:  # and, as the ORM's would, only when the session flushes
        session.add(_lead("L-NEWER", None, "webinar", "smb", "na", at(6, 21), status="routed"))
        assert metric(session, "leads_routed", JUNE)[0] == 12


def test_leads_routed(session):
    # June: L1-L9, L13, L14
    assert metric(session, "leads_routed", JUNE)[0] == 11
    assert metric(session, "leads_routed", JULY)[0] == 2  # L12, L15
    assert metric(session, "leads_routed", JUNE, "owner")[1] == {
        "U0SAM": 4, "U0SUE": 4, "U0MAX": 2, "unassigned": 1}  # L1 L2 L6 L9, L3 L4 L7 L13, ...
    assert metric(session, "leads_routed", JUNE, "team")[1] == {
        "sales": 8, "sales_manager": 2, "unassigned": 1}
    assert metric(session, "leads_routed", JUNE, "source")[1] == {
        "webinar": 4, "ebook": 3, "paid_search": 2, "events": 1, "partner": 1}
    assert metric(session, "leads_routed", JUNE, "segment")[1] == {
        "smb": 7, "mid_market": 2, "enterprise": 1, "unknown": 1}  # L7 has no segment
    assert metric(session, "leads_routed", JUNE, "region")[1] == {
        "na": 6, "emea": 3, "apac": 1, "unknown": 1}


def test_another_workspace_sees_only_its_own_rows(session):
    def other(key):
        return compute(session, OTHER_TEAM, key, *JUNE)[0]

    assert other("leads_routed") == 1
    assert other("win_rate") == 1.0
    assert other("cac") == pytest.approx(7_777)
    assert other("content_utilization") == 1.0
    assert compute(session, TEAM, "content_utilization", *period(1))[0] == 0.0  # K1, unused


# ------------------------------------------------------------------ daily parts merge


CUTS = [at(5, 1), at(6, 1), at(6, 1, 12), at(6, 10, 9), at(6, 11, 6), at(6, 15, 12),
        at(7, 1), at(7, 2, 9), at(8, 1)]  # month starts, spend bookings, event instants


@pytest.mark.parametrize("key", [k for k, m in METRICS.items() if m.additive])
def test_additive_parts_of_adjacent_periods_add_up(session, key):
    m = METRICS[key]
    settings = {"now": at(7, 2)}  # one as-of time for every piece
    for by in (None, *m.dimensions):
        whole = m.parts(session, TEAM, CUTS[0], CUTS[-1], by, **settings)
        pieces = [m.parts(session, TEAM, a, b, by, **settings) for a, b in pairwise(CUTS)]
        for group in whole.keys() | {k for piece in pieces for k in piece}:
            merged = sum((piece.get(group, Parts()) for piece in pieces), Parts())
            expected = whole.get(group, Parts())
            assert (merged.numerator, merged.denominator) == pytest.approx(
                (expected.numerator, expected.denominator)), (by, group)
            assert merged.histogram == expected.histogram, (by, group)
            assert m.value(merged) == pytest.approx(m.value(expected))


# ------------------------------------------------------------------ statements built once


def every_answer(session) -> list:
    """Every metric, by every grouping, for three months and two workspaces, exact medians too."""
    found = []
    for team in (TEAM, OTHER_TEAM):
        for when in (MAY, JUNE, JULY):
            for key, m in METRICS.items():
                for by in (None, *m.dimensions):
                    found.append(compute(session, team, key, *when, by, now=at(7, 2)))
                    if m.exact is not None:
                        guide = sum(m.parts(session, team, *when, None).values(), Parts())
                        found.append(m.exact(session, team, *when, by, guide=guide.histogram))
    return found


def test_a_statement_built_once_answers_every_period_and_workspace_as_a_new_one(
        session, monkeypatch):
    monkeypatch.setattr(queries, "_PREPARED", {})
    reused = every_answer(session)  # each statement built for its first answer, then reused
    built = dict(queries._PREPARED)
    assert len(built) > 30 and all(key[0] == session.get_bind().dialect.name for key in built)
    assert every_answer(session) == reused
    assert queries._PREPARED.keys() == built.keys()
    assert all(queries._PREPARED[k] is statement for k, statement in built.items())
    monkeypatch.setattr(queries, "_prepared", lambda session, key, build: build(
        session.get_bind().dialect.name))  # each built anew for every answer
    assert every_answer(session) == reused


def test_statements_are_kept_a_dialect_each_and_bounded(session, monkeypatch):
    monkeypatch.setattr(queries, "_PREPARED", {})
    built: list[str] = []

    def build(dialect: str) -> object:
        built.append(dialect)
        return object()

    other = "postgresql" if session.get_bind().dialect.name == "sqlite" else "sqlite"
    elsewhere = SimpleNamespace(get_bind=lambda: SimpleNamespace(dialect=SimpleNamespace(
        name=other)))
    here = queries._prepared(session, ("q", None), build)
    assert queries._prepared(session, ("q", None), build) is here
    assert queries._prepared(elsewhere, ("q", None), build) is not here
    assert built == [session.get_bind().dialect.name, other]
    monkeypatch.setattr(queries, "PREPARED_MAX", 3)
    for i in range(10):
        queries._prepared(session, ("q", i), build)
        assert len(queries._PREPARED) <= 3
