"""Answers read from stored snapshots equal live ones, whatever the data (hypothesis).

tests/test_snapshots.py checks this on one hand-made fixture; here small random stores
(leads, deals, customers and spend over a few weeks around the change of clocks of March 8
in New York, the workspace's timezone) are refreshed, and every metric, grouping and
period (past, partial, across the change, rolling) must answer as it does live, response
time's p90 and business median included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from bot.metrics.grammar import parse_period
from bot.metrics.registry import METRICS, compute, response_time_detail
from bot.metrics.snapshots import Reader, refresh
from bot.platform.work import Work
from storage.db import make_sessionmaker, read_only
from storage.models import Base, Customer, Deal, Lead, Person, Spend
from tests.slack import TEAM

NY = ZoneInfo("America/New_York")  # the test config's workspace timezone
NOW = datetime(2026, 3, 20, 16, 0, tzinfo=UTC)  # a Friday noon in New York
# the rows' updated_at: before NOW, so that a refresh after one at NOW finds them unchanged
WRITTEN = NOW - timedelta(minutes=1)
# the data's local days: Feb 20 to Mar 22, the 23-hour Mar 8 among them, today and after
FIRST_DAY, DAYS = date(2026, 2, 20), 31
# local wall times, midnight and the hour the clocks skip on Mar 8 among them
WALL = ((0, 0), (0, 30), (1, 59), (2, 30), (3, 0), (9, 15), (12, 0), (23, 59))
PERIODS = ("2026-02", "2026-03-02..2026-03-12", "this month", "last 30 days", "yesterday")
PEOPLE = (("U0SAM", "sales"), ("U0SUE", "sales_manager"), ("U0MIA", "marketing"))
# examples a run: about 0.5 s each on SQLite, 1.3 s on PostgreSQL (its refresh and
# questions are round trips), so that this test takes about 12 s on either
EXAMPLES = {"sqlite": 25, "postgresql": 8}
LATER = (timedelta(0), timedelta(minutes=7), timedelta(hours=5), timedelta(days=1, hours=2),
         timedelta(days=4))


def _local(day: int, wall: tuple[int, int]) -> datetime:
    d = FIRST_DAY + timedelta(days=day)
    return datetime(d.year, d.month, d.day, *wall, tzinfo=NY).astimezone(UTC)


instants = st.builds(_local, st.integers(0, DAYS - 1), st.sampled_from(WALL))
maybe = st.none  # shorthand: `maybe() | x` is x or nothing


def after(t: datetime) -> st.SearchStrategy[datetime]:
    return st.sampled_from(LATER).map(lambda d: t + d)


@st.composite
def leads(draw) -> dict:
    created = draw(instants)
    mql = draw(maybe() | after(created))
    routed = draw(maybe() | after(mql or created))
    lead = dict(created_at=created, mql_at=mql, routed_at=routed, assigned_at=routed,
                owner=draw(maybe() | st.sampled_from(range(len(PEOPLE)))),
                source=draw(st.sampled_from(("webinar", "ebook", "events"))),
                segment=draw(maybe() | st.sampled_from(("smb", "enterprise"))),
                region=draw(maybe() | st.sampled_from(("na", "emea"))),
                status=draw(st.sampled_from(("new", "routed", "accepted", "contacted",
                                             "qualified", "rejected", "recycled"))))
    if routed is None:
        return lead
    lead["sla_due_at"] = draw(maybe() | after(routed))
    accepted = draw(maybe() | after(routed))
    lead["accepted_at"] = accepted
    if draw(st.booleans()):
        lead["rejected_at"] = draw(after(accepted or routed))
        lead["rejection_reason"] = draw(st.sampled_from(("not_icp", "duplicate", "other")))
    elif draw(st.booleans()):
        lead["first_touch_at"] = touch = draw(after(accepted or routed))
        lead["response_minutes"] = (touch - routed).total_seconds() / 60
        lead["business_minutes"] = draw(st.sampled_from((0.0, 12.35, 45.0)))
    if lead.get("sla_due_at") and (lead.get("rejected_at") or lead.get("first_touch_at")):
        lead["sla_met"] = (lead.get("rejected_at") or lead["first_touch_at"]) <= lead["sla_due_at"]
    if lead["status"] == "recycled":
        lead["recycled_at"] = draw(after(routed))
    return lead


@st.composite
def deals(draw) -> dict:
    created = draw(instants)
    outcome = draw(st.sampled_from(("open", "won", "lost")))
    closed = None if outcome == "open" else draw(  # the same instant, later, or earlier
        after(created) | st.just(created - timedelta(days=1)))
    return dict(created_at=created, closed_at=closed, outcome=outcome,
                lead=draw(maybe() | st.integers(0, 5)),
                owner=draw(maybe() | st.sampled_from(range(len(PEOPLE)))),
                source=draw(maybe() | st.sampled_from(("marketing", "sales", "partner"))),
                amount=draw(maybe() | st.sampled_from((Decimal(0), Decimal("1500.50"),
                                                       Decimal(10_000)))))


@st.composite
def customers(draw) -> dict:
    started = draw(instants)
    return dict(started_at=started, churned_at=draw(maybe() | after(started)),
                mrr=draw(maybe() | st.sampled_from((Decimal(0), Decimal(300), Decimal(1200)))))


spend = st.dictionaries(st.tuples(st.sampled_from((date(2026, 2, 1), date(2026, 3, 1))),
                                  st.sampled_from(("marketing", "sales"))),
                        st.sampled_from((Decimal(0), Decimal(2800), Decimal("3100.10"))),
                        max_size=3)
stores = st.fixed_dictionaries({
    "leads": st.lists(leads(), max_size=6), "deals": st.lists(deals(), max_size=5),
    "customers": st.lists(customers(), max_size=4), "spend": spend})


def a_store(**rows) -> dict:
    """A store of these rows, for explicit examples: each row's fields not given are empty."""
    blank = {"leads": {"owner": None, "source": "webinar"},
             "deals": {"lead": None, "owner": None, "source": None, "amount": None},
             "customers": {"mrr": None}}
    return {"spend": rows.pop("spend", {}),
            **{kind: [blank[kind] | row for row in rows.get(kind, [])] for kind in blank}}


def add_store(session, store: dict) -> None:
    people = [Person(team_id=TEAM, slack_id=slack_id, role=role, updated_at=WRITTEN)
              for slack_id, role in PEOPLE]
    session.add_all(people)
    session.flush()

    def owner_id(row: dict) -> int | None:
        owner = row.pop("owner")
        return None if owner is None else people[owner].id
    leads_ = [Lead(team_id=TEAM, external_id=f"L{n}", owner_id=owner_id(row), updated_at=WRITTEN,
                   **row) for n, row in enumerate(dict(r) for r in store["leads"])]
    session.add_all(leads_)
    session.flush()
    for n, row in enumerate(dict(r) for r in store["deals"]):
        lead = row.pop("lead")
        session.add(Deal(team_id=TEAM, external_id=f"D{n}", owner_id=owner_id(row),
                         lead_id=leads_[lead].id if lead is not None and lead < len(leads_)
                         else None, updated_at=WRITTEN, **row))
    session.add_all(Customer(team_id=TEAM, external_id=f"C{n}", updated_at=WRITTEN, **row)
                    for n, row in enumerate(store["customers"]))
    session.add_all(Spend(team_id=TEAM, month=month, team=team, amount=amount, updated_at=WRITTEN)
                    for (month, team), amount in store["spend"].items())


def assert_stored_answers_are_live_ones(sessions, config, now: datetime = NOW) -> None:
    """As tests/test_snapshots.py's `assert_answers_are_live_ones`, at `now` (this module's
    NOW unless given), with response time's details (whole and per group) too."""
    tz, margin = config.workspace.tz, config.workspace.gross_margin
    with read_only(sessions) as s:
        reader = Reader(Work(s, TEAM, config, now))
        for text in PERIODS:
            period = parse_period(text, now, tz)
            for metric in METRICS.values():
                for by in (None, *metric.dimensions):
                    where = (metric.key, text, by)
                    value, groups = reader.value(metric, period, by or metric.default_by)
                    expected, expected_groups = compute(s, TEAM, metric.key, period.start,
                                                        period.end, by, gross_margin=margin,
                                                        now=now, tz=tz)
                    assert value == pytest.approx(expected), where
                    assert (groups or {}) == pytest.approx(expected_groups or {}), where
            assert_details_are_live_ones(s, reader, period, text)


def assert_details_are_live_ones(s, reader: Reader, period, text: str) -> None:
    """Response time's p90 and business median, whole and per group."""
    metric = METRICS["response_time"]

    def figures(by):  # flat: approx compares no nested dicts
        return {(k, name): getattr(d, name) for k, d in response_time_detail(
            s, TEAM, period.start, period.end, by).items() for name in ("p90", "business_median")}

    def flat(details):
        return {(k, name): v for k, each in details.items() for name, v in each.items()}
    assert flat({"": reader.details(metric, period)}) == pytest.approx(figures(None)), text
    for by in metric.dimensions:
        assert flat(reader.group_details(metric, period, by)) == pytest.approx(figures(by)), \
            (text, by)


def clear(engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))


def test_stored_answers_equal_live_ones_whatever_the_data(engine, config):
    sessions = make_sessionmaker(engine)

    @settings(max_examples=EXAMPLES[engine.dialect.name], deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(store=stores)
    # a won deal without an amount, alone in its group: marketing-sourced revenue by owner
    # lists "unassigned" without a value live, and the snapshots stored no row for it
    @example(store=a_store(deals=[dict(created_at=_local(0, (9, 15)), outcome="won",
                                     closed_at=_local(1, (9, 15)), amount=None)]))
    def check(store):
        clear(engine)  # the engine is the test's: each example starts from an empty store
        with sessions.begin() as s:
            add_store(s, store)
        refresh(sessions, config, TEAM, NOW)
        assert_stored_answers_are_live_ones(sessions, config)

    check()


# ------------------------------------------------------------------ incremental refreshes

EDITED = NOW + timedelta(minutes=7)  # after the first refresh: the edits' updated_at
LATER_NOW = (NOW + timedelta(hours=5), NOW + timedelta(days=2, hours=1))
INCREMENTAL_EXAMPLES = {"sqlite": 10, "postgresql": 4}  # with the @examples: about 8 s

# rows of the explicit examples below, on Feb 20 and 21 (older than the last week): a day
# a row is counted at, that no other of its times is on, is what an edit may leave stale
DAY_0, DAY_1, DAY_20 = _local(0, (9, 15)), _local(1, (9, 15)), _local(20, (9, 15))
WON = dict(created_at=DAY_1, closed_at=DAY_1, outcome="won", amount=Decimal(700))
REJECTED = dict(created_at=DAY_0, routed_at=DAY_0, rejected_at=DAY_1, rejection_reason="other")
MQL = dict(created_at=DAY_0, mql_at=DAY_0, segment="smb")
SAME = dict(spend_edit=None, later=LATER_NOW[0])

# What an edit may set, per kind of row: a CRM update (ingest sets the values it is sent
# and `updated_at`) or a config's change of a person's role. None clears a time.
FIELDS = {
    "leads": {"mql_at": maybe() | instants, "routed_at": maybe() | instants,
              "accepted_at": maybe() | instants, "rejected_at": maybe() | instants,
              "segment": maybe() | st.sampled_from(("smb", "enterprise", "mid")),
              "region": maybe() | st.sampled_from(("na", "emea")),
              "source": st.sampled_from(("webinar", "ebook", "events")),
              "owner": maybe() | st.sampled_from(range(len(PEOPLE))),
              "rejection_reason": st.sampled_from(("not_icp", "duplicate", "other"))},
    "deals": {"created_at": instants, "closed_at": maybe() | instants,
              "outcome": st.sampled_from(("open", "won", "lost")),
              "lead": maybe() | st.integers(0, 5),
              "owner": maybe() | st.sampled_from(range(len(PEOPLE))),
              "source": maybe() | st.sampled_from(("marketing", "sales", "partner")),
              "amount": maybe() | st.sampled_from((Decimal(0), Decimal(700)))},
    "customers": {"started_at": instants, "churned_at": maybe() | instants,
                  "mrr": maybe() | st.sampled_from((Decimal(0), Decimal(450)))},
    "people": {"role": st.sampled_from(("sales", "sales_manager", "marketing"))},
}


@st.composite
def edit(draw) -> tuple[str, int, str, object]:
    """(kind, which row, field, new value): the n-th row of its kind, modulo how many."""
    kind = draw(st.sampled_from(sorted(FIELDS)))
    field = draw(st.sampled_from(sorted(FIELDS[kind])))
    return kind, draw(st.integers(0, 5)), field, draw(FIELDS[kind][field])


def apply_edits(session, edits_: list[tuple], spend_edit: Decimal | None) -> None:
    """The edits as the ORM writes them (ingest's `_apply`: set the values, and
    `updated_at`), each row's updated_at the edit's time."""
    people = session.scalars(select(Person).order_by(Person.id)).all()
    rows = {"leads": session.scalars(select(Lead).order_by(Lead.id)).all(),
            "deals": session.scalars(select(Deal).order_by(Deal.id)).all(),
            "customers": session.scalars(select(Customer).order_by(Customer.id)).all(),
            "people": people}
    for kind, n, field, value in edits_:
        if not rows[kind]:
            continue
        row = rows[kind][n % len(rows[kind])]
        if field == "owner":
            field, value = "owner_id", None if value is None else people[value].id
        elif field == "lead":
            leads_ = rows["leads"]
            field, value = "lead_id", leads_[value].id if value is not None and value < len(
                leads_) else None
        setattr(row, field, value)
        row.updated_at = EDITED
    for row in session.scalars(select(Spend)) if spend_edit is not None else ():
        row.amount, row.updated_at = spend_edit, EDITED


def test_an_incremental_refresh_answers_as_live_whatever_changed(engine, config):
    """After a first refresh, edits to any row, then a refresh at a later time: every
    answer read from the snapshots is the live one."""
    sessions = make_sessionmaker(engine)

    @settings(max_examples=INCREMENTAL_EXAMPLES[engine.dialect.name], deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(store=stores, edits_=st.lists(edit(), max_size=4), spend_edit=maybe() | st.just(Decimal(1234)),
           later=st.sampled_from(LATER_NOW))
    # Each a staleness the refresh had: the day a row left (or the group it left) kept it.
    # a deal's close moved from Feb 21 to Mar 12: February still counted it won
    @example(store=a_store(deals=[WON]), edits_=[("deals", 0, "closed_at", DAY_20)], **SAME)
    # a rejection undone (a rejected lead routed again clears it): Feb 21 kept it
    @example(store=a_store(leads=[REJECTED]), edits_=[("leads", 0, "rejected_at", None)], **SAME)
    # a lead's segment changed: its deal, grouped by its lead's segment, kept the old one
    @example(store=a_store(leads=[MQL], deals=[WON | {"lead": 0}]),
             edits_=[("leads", 0, "segment", "enterprise")], **SAME)
    # a deal moved to no lead: its old lead's conversion on Feb 21 still counted it
    @example(store=a_store(leads=[MQL], deals=[WON | {"lead": 0}]),
             edits_=[("deals", 0, "lead", None)], **SAME)
    # a customer's start moved from Feb 21 to Mar 12: February still counted it started
    @example(store=a_store(customers=[dict(started_at=DAY_1, churned_at=None)]),
             edits_=[("customers", 0, "started_at", DAY_20)], **SAME)
    # a person's role changed: the leads they own, by team, stayed in the old one's
    @example(store=a_store(leads=[MQL | {"routed_at": DAY_1, "owner": 0}]),
             edits_=[("people", 0, "role", "marketing")], **SAME)
    def check(store, edits_, spend_edit, later):
        clear(engine)
        with sessions.begin() as s:
            add_store(s, store)
        refresh(sessions, config, TEAM, NOW)
        with sessions.begin() as s:
            apply_edits(s, edits_, spend_edit)
        refresh(sessions, config, TEAM, later)
        assert_stored_answers_are_live_ones(sessions, config, later)

    check()
