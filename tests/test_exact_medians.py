"""Medians people check against their CRM are exact: `alignbot query`, `/align export` and
the gap and index read them from the rows; Slack's answers keep the histograms' two
significant figures (a year of them adds up in milliseconds). Also the not_icp_share metric.

Numbers from tests/metric_fixture.py (the workspace is New York's; June and July hold the
whole fixture days either way):
- June response times by owner: Sam L1 10, L9 12.35, L2 30 -> exact 12.35 (two figures: 12);
  Sue L3 45, L4 3,960 -> exact (45 + 3,960) / 2 = 2,002.5 (two figures: (45 + 4,000) / 2 =
  2,022.5); Max L14 60. All six: (30 + 45) / 2 = 37.5 either way.
- July sales cycle: D2 33.5 days, D7 61 -> exact 47.25 (two figures: (34 + 61) / 2 = 47.5).
- June's p90 and median in business time by owner: Sam 10, 12.35, 30 (business the same):
  p90 at rank 1.8 of 0..2, 12.35 + 0.8 × 17.65 = 26.47 (two figures: 12 + 0.8 × 18 = 26.4),
  business median 12.35 (12); Sue 45, 3,960 (business 20, 120): p90 45 + 0.9 × 3,915 =
  3,568.5 (45 + 0.9 × 3,955 = 3,604.5, shown 3600), business median 70; Max 60, 60 and 60.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event

from bot.cli import main
from bot.metrics.answers import answer
from bot.metrics.grammar import Query, parse_period
from bot.metrics.registry import METRICS, response_time_detail
from bot.metrics.snapshots import Reader, refresh
from storage.models import Deal, Lead
from tests.metric_fixture import add_metric_fixture, at
from tests.slack import TEAM, all_text, reply, slash
from tests.test_home import open_home


@pytest.fixture
def data(services):
    with services.transaction() as session:
        add_metric_fixture(session)


def read(services, key: str, period: str, by: str | None, *, exact: bool):
    now = at(8, 20)
    with services.sessions() as session:
        reader = Reader(services.work_in(session, now=now), exact=exact)
        return reader.value(METRICS[key], parse_period(period, now, services.config.workspace.tz),
                            by)


def test_exact_medians_read_the_rows_where_snapshots_round_them(services, data):
    refresh(services.sessions, services.config, TEAM, at(8, 20))  # June and July stored
    assert read(services, "response_time", "2026-06", "owner", exact=True) == (
        pytest.approx(37.5), pytest.approx({"U0SUE": 2002.5, "U0MAX": 60.0, "U0SAM": 12.35}))
    assert read(services, "response_time", "2026-06", "owner", exact=False) == (
        pytest.approx(37.5), pytest.approx({"U0SUE": 2022.5, "U0MAX": 60.0, "U0SAM": 12.0}))
    assert read(services, "sales_cycle", "2026-07", None, exact=True)[0] == pytest.approx(47.25)
    assert read(services, "sales_cycle", "2026-07", None, exact=False)[0] == pytest.approx(47.5)
    assert read(services, "response_time", "2025-12", "owner", exact=True) == (None, {})


def test_a_median_of_1199_minutes_is_1199_in_the_json(services, data, monkeypatch, capsys):
    """The issue's example: two figures would say 1,200."""
    with services.transaction() as session:
        session.add(Lead(team_id=TEAM, external_id="L-AUG", source="webinar", status="contacted",
                         created_at=at(8, 3, 14), mql_at=at(8, 3, 14), routed_at=at(8, 3, 14),
                         first_touch_at=at(8, 3, 14) + timedelta(minutes=1199),
                         response_minutes=1199, updated_at=at(8, 4)))
    monkeypatch.setenv("DATABASE_URL", services.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("ALIGNBOT_TEAM_ID", TEAM)
    monkeypatch.setenv("ALIGNBOT_CONFIG", "alignbot.example.toml")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    assert main(["query", "response time 2026-08", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["value"] == 1199
    assert read(services, "response_time", "2026-08", None, exact=False)[0] == 1200


def test_an_export_holds_the_exact_medians(app, clock, data, fake_slack):
    """And response time's exact p90 and business median, as `alignbot query --csv`."""
    reply(slash(app, "export response time 2026-06 by owner", clock.now()))
    [file] = fake_slack.files
    assert file["bytes"].decode().splitlines() == [
        "owner,response_time,p90,business_median", "U0SUE,2002.5,3568.5,70.0",
        "U0MAX,60.0,60.0,60.0", "U0SAM,12.35,26.47,12.35"]


def test_not_icp_share(services, data):
    # June rejections: L5 not_icp (paid_search), L6 duplicate (paid_search) -> 1 of 2;
    # July: L13 wrong_territory (ebook), L15 not_icp (webinar) -> 1 of 2
    assert read(services, "not_icp_share", "2026-06", "source", exact=False) == (
        0.5, {"paid_search": 0.5})
    assert read(services, "not_icp_share", "2026-07", "source", exact=False) == (
        0.5, {"webinar": 1.0, "ebook": 0.0})
    assert read(services, "not_icp_share", "2025-12", None, exact=False) == (None, None)
    assert METRICS["not_icp_share"].better == "lower"


def test_a_guide_only_narrows_where_the_middle_is_read(services, data, monkeypatch):
    """June's six response times; the guide is their two-figure histogram. A right guide
    reads the window around 30 and 45 (and counts the two below it); a wrong one (a refresh
    behind the rows) finds no middle there and ranks them all: the same 37.5 either way."""
    exact = METRICS["response_time"].exact
    june = parse_period("2026-06", at(8, 20), services.config.workspace.tz)
    right = {10.0: 1, 12.0: 1, 30.0: 1, 45.0: 1, 60.0: 1, 4000.0: 1}
    with services.sessions() as session:
        def median(guide):
            return exact(session, TEAM, june.start, june.end, guide=guide)

        for guide in ({1000.0: 6}, {30.0: 1}, {}, None):
            assert median(guide) == {"": 37.5}
        monkeypatch.setattr("storage.metrics.list_response_figures", None)  # no fallback
        assert median(right) == {"": 37.5}


def _won(session, ext: str, days: float, closed) -> None:
    session.add(Deal(team_id=TEAM, external_id=ext, source="marketing", amount=Decimal(1000),
                     created_at=closed - timedelta(days=days), closed_at=closed, outcome="won",
                     updated_at=closed))


def _query_json(services, monkeypatch, capsys, text: str) -> dict:
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    assert main(["query", text, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_slack_shows_a_two_figure_median_without_digits_it_does_not_have(
        app, services, clock, data, fake_slack, monkeypatch, capsys):
    """A single deal of 45.6 days is "46 days" in Slack (the histogram holds 46), one of
    123 days "120 days", a median of 52.76 "53 days"; `alignbot query` says 45.6, 123 and
    52.76. July's (34 + 61) / 2 = 47.5 is "48 days", its change from June's (20 + 41) / 2 =
    30.5, shown "31 days", is 17 days: the difference of what is shown."""
    with services.transaction() as session:
        _won(session, "D-SEP", 45.6, at(9, 15))
        _won(session, "D-OCT", 123, at(10, 15))
        for n, days in enumerate((40.0, 52.76, 70.0)):  # closed in the last 30 days
            _won(session, f"D-NOV{n}", days, at(11, 10 + n))

    def metric(words: str) -> str:
        return all_text(reply(slash(app, f"metric {words}", clock.now())))
    assert "*46 days*" in metric("sales cycle 2026-09")
    assert "*120 days*" in metric("sales cycle 2026-10")
    july = metric("sales cycle 2026-07 vs previous")
    assert "*48 days* ▲ 17 days vs previous period (31 days)" in july
    assert ".0 days" not in july and "47.5" not in july and "30.5" not in july
    assert "*Sales cycle* 53 days" in all_text(reply(slash(app, "scorecard", clock.now())))
    open_home(app, clock, "U0SALES01")
    assert "*Sales cycle* 53 days" in all_text(fake_slack.homes["U0SALES01"])

    assert _query_json(services, monkeypatch, capsys, "sales cycle 2026-09")["value"] == \
        pytest.approx(45.6)
    assert _query_json(services, monkeypatch, capsys, "sales cycle 2026-10")["value"] == 123
    assert _query_json(services, monkeypatch, capsys, "sales cycle last 30 days")["value"] == \
        pytest.approx(52.76)
    july = _query_json(services, monkeypatch, capsys, "sales cycle 2026-07 vs previous")
    assert (july["value"], july["comparison"]["value"]) == (pytest.approx(47.25),
                                                            pytest.approx(30.625))


# ------------------------------------------------------------------ response time's details
# June's touched leads (tests/metric_fixture.py), wall minutes 10, 12.35, 30, 45, 60, 3,960
# (two figures: 12, and 4,000): p90 at rank 4.5 of 0..5, half way from 60 to the last,
# exact 2,010, from the histogram 2,030; business minutes 10, 12.35, 20, 30, 60, 120:
# median (20 + 30) / 2 = 25 either way.


def _statements(engine, table: str) -> list[str]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_):
        if f"FROM {table}" in statement:
            seen.append(statement)
    event.listen(engine, "before_cursor_execute", record)
    return seen


def test_response_time_details_are_read_from_stored_histograms_as_its_median_is(
        services, data):
    """The p90 comes from response time's own histogram, the business-time median from a
    histogram the refresh stores beside it: for a stored month they add no read of the
    leads to the answer (its trend reads the months before the first stored day live),
    and equal the live reading of the rows' histograms."""
    june = parse_period("2026-06", at(8, 20), services.config.workspace.tz)
    with services.sessions() as session:  # before a first refresh: live, the same way
        unstored = answer(services.work_in(session, now=at(8, 20)),
                          Query("response_time", june), details=True)
    refresh(services.sessions, services.config, TEAM, at(8, 20))
    leads = _statements(services.engine, "leads")
    with services.sessions() as session:
        answer(services.work_in(session, now=at(8, 20)), Query("response_time", june))
        without = len(leads)
        found = answer(services.work_in(session, now=at(8, 20)),
                       Query("response_time", june), details=True)
        assert len(leads) == 2 * without  # the same reads again, none for the details
        live = response_time_detail(session, TEAM, june.start, june.end)[""]
    assert found.details == {"p90": pytest.approx(2030.0), "business_median": 25.0}
    assert (found.details["p90"], found.details["business_median"]) == \
        pytest.approx((live.p90, live.business_median))
    assert unstored.details == found.details
    with services.sessions() as session:
        plain = answer(services.work_in(session, now=at(8, 20)), Query("response_time", june))
    assert plain.details == {}  # only when asked: a scorecard or a digest reads none


def test_the_response_time_answer_shows_p90_and_the_median_in_business_hours(
        app, clock, data):
    text = all_text(reply(slash(app, "metric response time 2026-06", clock.now())))
    assert "p90 2000 min · median in business hours 25 min" in text  # 2,030 to two figures
    assert "p90" not in all_text(reply(slash(app, "metric win rate 2026-06", clock.now())))
    assert "p90" not in all_text(reply(slash(app, "metric response time 2025-12", clock.now())))


def test_query_json_has_response_times_exact_p90_and_business_median(
        services, data, monkeypatch, capsys):
    june = _query_json(services, monkeypatch, capsys, "response time 2026-06")
    assert (june["value"], june["p90"], june["business_median"]) == pytest.approx(
        (37.5, 2010.0, 25.0))
    empty = _query_json(services, monkeypatch, capsys, "response time 2025-12")
    assert (empty["value"], empty["p90"], empty["business_median"]) == (None, None, None)
    assert "p90" not in _query_json(services, monkeypatch, capsys, "win rate 2026-06")


def test_an_answer_by_owner_shows_each_owners_p90_and_median_in_business_hours(
        app, services, clock, data):
    """Beside each owner's median, as the workspace's line shows them (to two figures):
    live before a first refresh, then from the histograms it stores per owner, which add
    no read of the leads for stored days."""
    rows = ["U0SUE    2000 min    3600 min      70 min",
            "U0MAX      60 min      60 min      60 min",
            "U0SAM      12 min      26 min      12 min"]

    def table() -> str:
        text = all_text(reply(slash(app, "metric response time 2026-06 by owner", clock.now())))
        assert "*By owner* (Response time · p90 · median in business hours)" in text
        return text
    assert all(row in table() for row in rows)
    refresh(services.sessions, services.config, TEAM, clock.now())
    assert all(row in table() for row in rows)
    leads = _statements(services.engine, "leads")
    june = parse_period("2026-06", clock.now(), services.config.workspace.tz)
    with services.sessions() as session:
        def ask(details: bool):
            return answer(services.work_in(session, now=clock.now()),
                          Query("response_time", june, by="owner"), details=details)
        ask(False)
        without = len(leads)  # the months of its trend before the first stored day: live
        found = ask(True)
    assert len(leads) == 2 * without  # the same reads again, none for the details
    assert found.group_details == {
        "U0SUE": {"p90": pytest.approx(3604.5), "business_median": 70.0},
        "U0MAX": {"p90": 60.0, "business_median": 60.0},
        "U0SAM": {"p90": pytest.approx(26.4), "business_median": 12.0}}


def test_query_json_has_each_groups_exact_p90_and_business_median(
        services, data, monkeypatch, capsys):
    june = _query_json(services, monkeypatch, capsys, "response time 2026-06 by owner")
    assert june["groups"] == [
        {"key": "U0SUE", "value": 2002.5, "p90": pytest.approx(3568.5), "business_median": 70.0},
        {"key": "U0MAX", "value": 60.0, "p90": 60.0, "business_median": 60.0},
        {"key": "U0SAM", "value": pytest.approx(12.35), "p90": pytest.approx(26.47),
         "business_median": pytest.approx(12.35)}]
    by_source = _query_json(services, monkeypatch, capsys, "win rate 2026-06 by source")
    assert all(group.keys() == {"key", "value"} for group in by_source["groups"])


def _query_csv(services, monkeypatch, capsys, text: str) -> list[list[str]]:
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    assert main(["query", text, "--csv"]) == 0
    return list(csv.reader(io.StringIO(capsys.readouterr().out)))


def test_query_csv_has_each_groups_p90_and_business_median_columns(
        services, data, monkeypatch, capsys):
    """Named as the JSON's keys, after each group's value, exact as the JSON has them."""
    assert _query_csv(services, monkeypatch, capsys, "response time 2026-06 by owner") == [
        ["owner", "response_time", "p90", "business_median"],
        ["U0SUE", "2002.5", "3568.5", "70.0"],
        ["U0MAX", "60.0", "60.0", "60.0"],
        ["U0SAM", "12.35", "26.47", "12.35"]]
    assert _query_csv(services, monkeypatch, capsys, "win rate 2026-06 by source")[0] == \
        ["source", "win_rate"]  # a metric without details keeps its columns


def test_query_csv_has_each_periods_p90_and_business_median_columns(
        services, data, monkeypatch, capsys):
    """Without `by` a row a period of the trend: each period's own p90 and business median,
    as `--json` gives them asked about that period alone (empty cells for no data)."""
    rows = _query_csv(services, monkeypatch, capsys, "response time 2026-06")
    assert rows[0] == ["period", "start", "end", "response_time", "p90", "business_median"]
    assert rows[-1][3:] == ["37.5", "2010.0", "25.0"]
    assert rows[1][3:] == ["", "", ""]  # January: no leads
    for row in rows[1:]:
        alone = _query_json(services, monkeypatch, capsys, f"response time {row[1][:7]}")
        assert [float(c) if c else None for c in row[3:]] == pytest.approx(
            [alone["value"], alone["p90"], alone["business_median"]])
    assert _query_csv(services, monkeypatch, capsys, "win rate 2026-06")[0] == \
        ["period", "start", "end", "win_rate"]


def test_an_export_of_response_times_trend_has_each_periods_p90_and_business_median(
        app, clock, data, fake_slack):
    reply(slash(app, "export response time 2026-06", clock.now()))
    [file] = fake_slack.files
    rows = file["bytes"].decode().splitlines()
    assert rows[0] == "period,start,end,response_time,p90,business_median"
    assert rows[-1].endswith(",37.5,2010.0,25.0")
