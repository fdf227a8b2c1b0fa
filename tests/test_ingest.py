"""Ingest rules: validation with every reason, upsert by key, lead stages through the lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import OperationalError

from bot.intake.ingest import ingest
from storage.models import ContentUse, Customer, Deal, Lead, LeadEvent, Nudge, OutboxMessage, Spend
from tests.slack import TEAM

OWNERS = {"sam@example.com": "U0SALES01"}


def run(services, entity, records):
    from storage.people import get_person

    with services.work() as w:
        def owner(email):
            person = get_person(w.session, TEAM, OWNERS[email]) if email in OWNERS else None
            return person.id if person else None

        return ingest(w, entity, records, actor="webhook", resolve_owner=owner)


def rows(services, model):
    with services.sessions.begin() as s:
        return list(s.scalars(select(model).order_by(model.id)))


@pytest.mark.parametrize("entity,record,change", [
    ("deals", {"external_id": "D-1", "amount": 5000, "source": "marketing",
               "created_at": "2026-10-01T10:00:00-04:00", "outcome": "open"}, {"outcome": "won",
               "closed_at": "2026-11-02T10:00:00-05:00"}),
    ("customers", {"external_id": "C-1", "started_at": "2026-01-01T00:00:00Z", "mrr": "99.90"},
     {"churned_at": "2026-06-01T00:00:00Z"}),
    ("spend", {"month": "2026-03", "team": "marketing", "amount": 1200.5}, {"amount": 1300}),
    ("content", {"external_id": "K-1", "title": "ROI guide", "kind": "ebook"}, {"title": "ROI 2"}),
])
def test_create_then_unchanged_then_updated(services, entity, record, change):
    assert run(services, entity, [record]).as_dict() == {
        "created": 1, "updated": 0, "unchanged": 0, "rejected": [], "skipped": []}
    assert run(services, entity, [record]).unchanged == 1
    assert run(services, entity, [{**record, **change}]).updated == 1


def test_keys_are_matched_exactly_whatever_they_hold(services):
    """Keys are looked up as one JSON array: quotes, backslashes, accents and digits-only
    keys still find their records, and only theirs."""
    keys = ['Q-"1"', "B-\\2", "Zoë-3", "0042", "L-%", "l-%"]
    records = [{"external_id": k, "source": "events", "name": "Ann"} for k in keys]
    assert run(services, "leads", records).created == len(keys)
    again = run(services, "leads", [{**r, "name": "Bo"} if r["external_id"] == "0042" else r
                                    for r in records])
    assert (again.created, again.updated, again.unchanged) == (0, 1, len(keys) - 1)


def test_money_and_months_are_stored_exactly(services):
    run(services, "spend", [{"month": "2026-03", "team": "sales", "amount": "1200.5"},
                            {"month": "2026-03", "team": "marketing", "amount": "-0"}])
    sales, marketing = sorted(rows(services, Spend), key=lambda r: r.team, reverse=True)
    assert sales.amount == Decimal("1200.50") and str(sales.month) == "2026-03-01"
    assert str(marketing.amount) == "0.00"  # -0 is 0, not a negative zero


@pytest.mark.parametrize("record,reason", [
    ("just text", "record must be a JSON object"),
    ({"external_id": "L-1", "source": "webinar", "colour": "red"}, "colour: unknown field"),
    ({"external_id": "L-1", "source": "webinar", "score": 120}, "score: 120 is not between 0 and 100"),
    ({"external_id": "L-1", "source": "webinar", "mql_at": "2026-03-01 10:00"},
     "mql_at: '2026-03-01 10:00' has no UTC offset"),
    ({"external_id": "L-1"}, "source: is required"),
    ({"source": "webinar"}, "external_id: is required"),
    ({"external_id": "L-1", "source": "webinar", "email": "nope"}, "email: 'nope' is not an email"),
    ({"external_id": "L-1", "source": "webinar", "owner_email": "x<!channel>@evil.example"},
     "owner_email: 'x<!channel>@evil.example' is not an email address like ann@example.com"),
    ({"external_id": "L-1", "source": "webinar", "crm_url": "javascript:alert(1)"},
     "crm_url: 'javascript:alert(1)' is not a web address (http:// or https://)"),
    ({"external_id": "L-1", "source": "webinar", "crm_url": "slack://open?team=T0EVIL"},
     "crm_url: 'slack://open?team=T0EVIL' is not a web address"),
    ({"external_id": "L-1", "source": "webinar", "status": "contacted"},
     "owner_email: needed to import a lead that is already routed"),
    ({"external_id": "L-1", "source": "webinar", "mql_at": "2026-03-02T00:00:00Z",
      "routed_at": "2026-03-01T00:00:00Z"}, "routed_at: is before mql_at"),
])
def test_malformed_leads_are_rejected_with_the_reason(services, record, reason):
    result = run(services, "leads", [record, {"external_id": "L-OK", "source": "ebook"}])
    assert result.created == 1  # the good one in the same batch is stored
    [rejection] = result.rejected
    assert rejection.index == 0 and any(e.startswith(reason) for e in rejection.errors), \
        rejection.errors


@pytest.mark.parametrize("entity,record,reason", [
    ("deals", {"external_id": "D-1", "amount": -5}, "amount: -5 is not an amount"),
    ("deals", {"external_id": "D-1", "amount": "12.345"},
     "amount: '12.345' has more than 2 decimals; amounts are to the cent"),
    ("spend", {"month": "2026-03", "team": "sales", "amount": 0.001},
     "amount: 0.001 has more than 2 decimals"),
    ("deals", {"external_id": "D-1", "source": "magic"}, "source: 'magic' is not one of"),
    ("deals", {"external_id": "D-1", "outcome": "won"}, "created_at: needed for a new deal"),
    ("deals", {"external_id": "D-1", "created_at": "2026-03-02T00:00:00Z",
               "closed_at": "2026-03-01T00:00:00Z", "outcome": "lost"}, "closed_at: is before"),
    ("customers", {"external_id": "C-1"}, "started_at: is required"),
    ("spend", {"month": "March", "team": "marketing", "amount": 1}, "month: 'March' is not a month"),
    ("content_usage", {"content_external_id": "K-404", "user_email": "sam@example.com",
                       "used_at": "2026-03-01T00:00:00Z"}, "content_external_id: no content item"),
])
def test_malformed_records_of_other_entities(services, entity, record, reason):
    [rejection] = run(services, entity, [record]).rejected
    assert any(e.startswith(reason) for e in rejection.errors), rejection.errors


@pytest.mark.parametrize("entity,model,first,then", [
    ("customers", Customer, "started_at", "churned_at"),
    ("deals", Deal, "created_at", "closed_at")])
@pytest.mark.parametrize("update,reason", [
    ({"then": "2025-12-31T00:00:00Z"}, "{then}: is before the stored {first} (2026-01-01T00:00:00Z)"),
    ({"first": "2026-07-01T00:00:00Z"}, "{first}: is after the stored {then} (2026-06-01T00:00:00Z)"),
    ({"first": "2026-07-01T00:00:00Z", "then": "2026-05-01T00:00:00Z"}, "{then}: is before {first}"),
])
def test_an_update_is_checked_against_the_times_it_leaves_out(
        services, entity, model, first, then, update, reason):
    """An update may leave a customer's `started_at` or a deal's `created_at` out (it stays
    as stored): its times are checked against the stored ones, as a record's own are
    against each other. A deal's closed_at before the stored created_at was taken."""
    names = {"first": first, "then": then}
    record = {"external_id": "X-1", first: "2026-01-01T00:00:00Z", then: "2026-06-01T00:00:00Z"}
    assert run(services, entity, [record]).created == 1
    [rejection] = run(services, entity, [
        {"external_id": "X-1", **{names[k]: v for k, v in update.items()}}]).rejected
    assert rejection.errors == [reason.format(**names)]
    [row] = rows(services, model)
    assert (getattr(row, first), getattr(row, then)) == (
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    fine = run(services, entity, [{"external_id": "X-1", then: "2026-01-01T00:00:00Z"}])
    assert fine.updated == 1 and getattr(rows(services, model)[0], then) == getattr(row, first)


def test_a_deal_sent_again_as_it_is_stored_is_unchanged_though_created_after_it_closed(
        services, clock):
    """Earlier versions stored a new deal without created_at as created when it arrived,
    after the closed_at it was sent with: sent again as it was, it still changes nothing
    (the update's times are checked against the stored ones only where it changes them)."""
    record = {"external_id": "D-1", "closed_at": "2026-06-01T00:00:00Z", "outcome": "won"}
    with services.sessions.begin() as s:
        s.add(Deal(team_id=TEAM, external_id="D-1", created_at=clock.now(), outcome="won",
                   closed_at=datetime(2026, 6, 1, tzinfo=UTC), updated_at=clock.now()))
    again = run(services, "deals", [record])
    assert (again.unchanged, again.rejected) == (1, [])


def test_every_problem_of_a_record_is_listed(services):
    [rejection] = run(services, "leads", [{"external_id": "L-1", "score": "high",
                                           "email": "x", "region": 5.5}]).rejected
    assert len(rejection.errors) == 4  # score, email, region, and the missing source


def test_a_lead_imported_as_contacted_keeps_its_history_and_is_not_routed_again(services):
    result = run(services, "leads", [{
        "external_id": "L-9", "source": "events", "owner_email": "sam@example.com",
        "status": "contacted", "mql_at": "2026-11-23T14:00:00Z",
        "routed_at": "2026-11-23T14:05:00Z", "first_touch_at": "2026-11-23T15:05:00Z"}])
    assert result.created == 1 and result.new_leads == []
    [lead] = rows(services, Lead)
    assert lead.status == "contacted" and lead.accepted_at == lead.routed_at  # default: previous
    assert lead.response_minutes == 60 and lead.sla_policy == "standard"
    kinds = [e.kind for e in rows(services, LeadEvent)]
    assert kinds == ["created", "routed", "accepted", "contacted"]
    again = run(services, "leads", [{"external_id": "L-9", "source": "events",
                                     "owner_email": "sam@example.com", "status": "contacted"}])
    assert again.unchanged == 1 and len(rows(services, LeadEvent)) == 4


def test_a_lead_imported_recycled_unanswered_is_left_out_of_sla_compliance(services):
    """Its records carry no recycle time: taken back as it was routed (a stage without its
    time is dated by the one before), before any due time, so never judged; it counted as
    a breach once that due time passed."""
    run(services, "leads", [{"external_id": "L-9", "source": "events", "status": "recycled",
                             "owner_email": "sam@example.com", "routed_at": "2026-11-23T14:05:00Z"}])
    [lead] = rows(services, Lead)
    assert (lead.status, lead.sla_met, lead.sla_due_at) == ("recycled", None, None)


def test_a_lead_sent_twice_in_one_batch_is_stored_once_and_the_second_reported(services):
    result = run(services, "leads", [{"external_id": "L-1", "source": "webinar", "name": "Ann"},
                                     {"external_id": "L-2", "source": "webinar"},
                                     {"external_id": "L-1", "source": "webinar", "name": "Bob"}])
    assert result.created == 2 and [(r.index, r.errors) for r in result.rejected] == [
        (2, ["external_id: sent twice in this batch"])]
    assert [(lead.external_id, lead.name) for lead in rows(services, Lead)] == [
        ("L-1", "Ann"), ("L-2", None)]


@pytest.mark.parametrize("status,stamps,nudged", [
    ("accepted", {"accepted_at": "2026-11-24T14:10:00Z"}, True),  # still awaits its first touch
    ("contacted", {"first_touch_at": "2026-11-24T14:20:00Z"}, False),
    ("recycled", {}, False),
])
def test_only_an_imported_lead_still_awaiting_a_touch_gets_nudges(services, status, stamps, nudged):
    run(services, "leads", [{"external_id": "L-9", "source": "events", "status": status,
                             "owner_email": "sam@example.com", "routed_at": "2026-11-24T14:05:00Z",
                             **stamps}])
    assert bool(rows(services, Nudge)) == nudged
    assert all(n.state == "pending" for n in rows(services, Nudge))


def test_a_new_lead_waits_for_routing_and_an_update_moves_it(services):
    first = run(services, "leads", [{"external_id": "L-1", "source": "webinar"}])
    assert [lead.id for lead in first.new_leads] == [rows(services, Lead)[0].id]
    routed = run(services, "leads", [{"external_id": "L-1", "source": "webinar",
                                      "owner_email": "sam@example.com", "status": "routed"}])
    [route] = routed.routes  # a handoff, as a new lead's: the caller's (bot.intake.batches)
    assert (routed.updated, route.lead.id, route.owner.slack_id, route.then) == (
        1, first.new_leads[0].id, "U0SALES01", ())
    assert rows(services, Lead)[0].status == "new"
    moved = run(services, "leads", [{"external_id": "L-1", "source": "webinar",
                                     "first_touch_at": "2026-11-24T15:00:00Z"}])
    assert moved.updated == 1 and rows(services, Lead)[0].status == "contacted"


def test_an_illegal_move_is_refused_and_changes_nothing(services):
    run(services, "leads", [{"external_id": "L-1", "source": "webinar",
                             "owner_email": "sam@example.com", "status": "rejected",
                             "rejection_reason": "duplicate"}])
    result = run(services, "leads", [{"external_id": "L-1", "source": "ebook", "status": "won"}])
    [rejection] = result.rejected
    assert "it can become: recycled, routed" in rejection.errors[0]
    [lead] = rows(services, Lead)
    assert lead.status == "rejected" and lead.source == "webinar"


def test_unmapped_owner_is_reported_and_the_lead_kept(services):
    result = run(services, "leads", [{"external_id": "L-1", "source": "webinar",
                                      "owner_email": "ghost@example.com", "status": "routed"}])
    assert result.unmapped_owners == {"ghost@example.com"} and result.created == 1


def test_deals_link_to_leads_and_usage_to_content(services):
    run(services, "leads", [{"external_id": "L-1", "source": "webinar"}])
    run(services, "deals", [{"external_id": "D-1", "lead_external_id": "L-1", "amount": 10,
                             "owner_email": "sam@example.com"}])
    run(services, "content", [{"external_id": "K-1", "title": "Deck"}])
    usage = {"content_external_id": "K-1", "user_email": "sam@example.com",
             "used_at": "2026-11-20T10:00:00Z", "deal_external_id": "D-1"}
    assert run(services, "content_usage", [usage]).created == 1
    assert run(services, "content_usage", [usage]).unchanged == 1
    [deal], [use] = rows(services, Deal), rows(services, ContentUse)
    assert deal.lead_id == rows(services, Lead)[0].id and use.deal_id == deal.id
    assert rows(services, Customer) == []


def a_lead(s, now):
    """One lead for bulk rows to point at, written now."""
    lead = Lead(team_id="T1", external_id="L-1", source="webinar", created_at=now, mql_at=now,
                updated_at=now)
    s.add(lead)
    s.flush()
    return lead


def test_rows_written_in_bulk_get_the_column_defaults_they_leave_out(services, clock):
    from storage.bulk import Rows

    with services.transaction() as s:
        lead = a_lead(s, clock.now())
        rows = Rows()
        rows.add(Nudge, {"team_id": "T1", "lead_id": lead.id, "stage": "card",
                         "due_at": clock.now()})  # no state, no held
        rows.write(s)
    with services.sessions.begin() as s:
        nudge = s.scalars(select(Nudge)).one()
        assert (nudge.state, nudge.held, nudge.due_at) == ("pending", False, clock.now())


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # its limit on parameters
def test_rows_written_in_bulk_fit_the_connections_own_parameter_limit(services, clock):
    import sqlite3

    from storage.bulk import Rows

    with services.transaction() as s:
        conn = s.connection().connection.dbapi_connection
        lead = a_lead(s, clock.now())
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)  # a build that allows only 20
        batch = Rows()
        for i in range(200):
            batch.add(LeadEvent, {"team_id": "T1", "lead_id": lead.id, "kind": "updated",
                                 "to_status": "new", "actor": f"a{i}", "at": clock.now()})
        batch.write(s)
    assert [e.actor for e in rows(services, LeadEvent)] == [f"a{i}" for i in range(200)]


def test_an_empty_value_written_in_bulk_is_null_not_the_columns_default(services, clock):
    from sqlalchemy.exc import IntegrityError

    from storage.bulk import Rows

    with services.transaction() as s:
        lead = a_lead(s, clock.now())
        batch = Rows()
        for _ in range(3):  # `held` has a default and may not be NULL: refused, as the ORM would
            batch.add(Nudge, {"team_id": "T1", "lead_id": lead.id, "stage": "card",
                              "due_at": clock.now(), "state": "pending", "held": None})
        with pytest.raises(IntegrityError):
            batch.write(s)


def test_rows_written_in_bulk_come_back_whole_past_one_statements_worth(services, clock):
    from storage.bulk import ROWS_PER_INSERT, Rows

    n = ROWS_PER_INSERT * 2 + 7  # two statements of many rows, then the rest
    with services.transaction() as s:
        lead = a_lead(s, clock.now())
        batch = Rows()
        for i in range(n):  # `data` is empty in every row: the column is left out, still NULL
            batch.add(LeadEvent, {"team_id": "T1", "lead_id": lead.id, "kind": "updated",
                                 "from_status": None, "to_status": "new", "actor": f"a{i}",
                                 "at": clock.now() + timedelta(minutes=i % 3), "data": None})
        batch.write(s)
    events = rows(services, LeadEvent)
    assert [(e.actor, e.at, e.data) for e in events] == [
        (f"a{i}", clock.now() + timedelta(minutes=i % 3), None) for i in range(n)]


def test_rows_written_in_bulk_keep_each_value_though_repeats_are_bound_once(services, clock):
    from storage.bulk import Rows

    now = clock.now()
    # the same New York wall time twice on the night clocks go back: an hour apart
    times = [now, datetime(2025, 11, 2, 1, 30, tzinfo=ZoneInfo("America/New_York")),
             datetime(2025, 11, 2, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York"))]
    data = [{"pool": "default", "owner": "U1"}, {"owner": "U1", "pool": "default"},
            {"pool": "default", "owner": "U2"}, {"nested": [1, {"a": None}]}, None,
            {"pool": "default", "owner": "U1"}, {"flag": 1}, {"flag": True}, {"flag": 1.5}]
    with services.transaction() as s:
        lead = a_lead(s, now)
        batch = Rows()
        for i, d in enumerate(data):
            batch.add(LeadEvent, {"team_id": "T1", "lead_id": lead.id, "kind": "updated",
                                 "from_status": None, "to_status": "new", "actor": "x",
                                 "at": times[i % 3], "data": d})
        batch.write(s)
    events = rows(services, LeadEvent)
    assert [(e.data, type((e.data or {}).get("flag"))) for e in events] == \
        [(d, type((d or {}).get("flag"))) for d in data]
    # (a time in the repeated hour never equals one in another zone: compare in UTC)
    assert [e.at for e in events] == [times[i % 3].astimezone(UTC) for i in range(len(data))]


def test_the_garbage_collector_pauses_until_the_last_batch_in_progress_ends():
    import gc

    from storage.bulk import gc_paused
    assert gc.isenabled()
    first, second = gc_paused(), gc_paused()  # an import and a webhook, say
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the webhook's batch is still being built
    second.__exit__(None, None, None)
    assert gc.isenabled()

    gc.disable()  # someone else's choice stays theirs
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("entity,first,second,key", [
    ("deals", {"external_id": "D-1", "amount": 10}, {"external_id": "D-1", "amount": 20}, "D-1"),
    ("customers", {"external_id": "C-1", "started_at": "2026-01-01T00:00:00Z", "mrr": 10},
     {"external_id": "C-1", "started_at": "2026-01-01T00:00:00Z", "mrr": 20}, "C-1"),
    ("spend", {"month": "2026-03", "team": "sales", "amount": 10},
     {"month": "2026-03", "team": "sales", "amount": 20}, "2026-03/sales"),
    ("content", {"external_id": "K-1", "title": "One"}, {"external_id": "K-1", "title": "Two"},
     "K-1"),
    ("content_usage", {"content_external_id": "K-0", "user_email": "sam@example.com",
                       "used_at": "2026-03-01T10:00:00-05:00"},
     {"content_external_id": "K-0", "user_email": "SAM@example.com",
      "used_at": "2026-03-01T15:00:00Z", "deal_external_id": "D-9"},
     "K-0/sam@example.com/2026-03-01T15:00:00+00:00"),
    ("leads", {"external_id": "L-0", "source": "webinar", "name": "Ann"},  # already stored
     {"external_id": "L-0", "source": "webinar", "name": "Bob"}, "L-0"),
])
def test_a_key_sent_twice_in_one_batch_is_stored_once_and_the_second_rejected(
        services, entity, first, second, key):
    """Not a silent last-wins: the first is stored and the second reported, its key as text."""
    run(services, "content", [{"external_id": "K-0"}])
    run(services, "leads", [{"external_id": "L-0", "source": "webinar", "name": "Zed"}])
    result = run(services, entity, [first, {**second}])
    assert result.created + result.updated == 1
    [rejection] = result.rejected
    assert rejection.index == 1 and rejection.external_id == key
    assert rejection.errors[0].endswith(": sent twice in this batch"), rejection.errors
    again = run(services, entity, [first])
    assert again.unchanged == 1  # what is stored is the first


def test_a_rejected_usage_names_its_key_as_text(services):
    [rejection] = run(services, "content_usage", [{
        "content_external_id": "K-404", "user_email": "sam@example.com",
        "used_at": "2026-03-01T15:00:00Z"}]).rejected
    assert rejection.external_id == "K-404/sam@example.com/2026-03-01T15:00:00+00:00"


@pytest.mark.parametrize("field,value,reason", [
    ("created_at", "9000-01-01T00:00:00Z", "more than a day ahead"),
    ("mql_at", "2099-01-01T00:00:00Z", "more than a day ahead"),
    ("mql_at", "0001-01-01T00:00:00+01:00", "before 1970"),
    ("first_touch_at", "9999-12-31T23:00:00-01:00", "more than a day ahead"),
    ("mql_at", "1969-12-31T23:59:59Z", "before 1970"),
])
def test_implausible_times_are_rejected_saying_the_window(services, field, value, reason):
    result = run(services, "leads", [{"external_id": "L-1", "source": "webinar", field: value},
                                     {"external_id": "L-2", "source": "webinar",
                                      "mql_at": "2026-11-24T20:00:00Z"}])  # 6 h ahead: fine
    assert result.created == 1
    [rejection] = result.rejected
    assert any(e.startswith(f"{field}: ") and reason in e for e in rejection.errors), rejection


def test_planned_times_may_lie_ahead_within_ten_years(services):
    result = run(services, "deals", [
        {"external_id": "D-1", "closed_at": "2027-06-30T00:00:00Z"},  # an expected close
        {"external_id": "D-2", "closed_at": "2099-01-01T00:00:00Z"}])
    assert result.created == 1 and "ten years" in result.rejected[0].errors[0]


def test_a_hubspot_null_date_in_a_timezone_east_of_utc_is_that_rows_rejection(services, tmp_path):
    """HubSpot writes "no date" as 0001-01-01 00:00:00; read in Europe/Berlin (UTC+0:53 in
    year 1) it is before year 1 in UTC: an OverflowError that stopped the import."""
    import csv
    import dataclasses

    from bot.intake.imports import import_csv

    workspace = dataclasses.replace(services.config.workspace, timezone="Europe/Berlin")
    services.config = dataclasses.replace(services.config, workspace=workspace)
    path = tmp_path / "hubspot.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Record ID", "Original Source", "Create Date", "First Name"])
        w.writerow(["101", "webinar", "0001-01-01 00:00:00", "Ann"])
        w.writerow(["102", "webinar", "2026-11-20 09:30:00", "Bo"])
    summary = import_csv(services, "leads", path, mapping="hubspot")
    assert (summary.created, summary.rejected) == (1, 1)
    [rejection] = summary.first_rejected
    assert rejection.external_id == "101" and "before 1970" in rejection.errors[0]


def test_a_batch_on_the_session_takes_new_rows_until_it_is_written(services, clock):
    """Code that writes a message or a nudge never knows whether a batch is open: the
    session's batch takes the row, and once written the session takes them again."""
    from bot.platform import outbox
    from storage.bulk import batch

    with services.transaction() as s:
        opened = batch(s)
        assert outbox.post(s, "T1", "C1", {"text": "in the batch"}, now=clock.now()) is None
        opened.write(s)
        after = outbox.post(s, "T1", "C1", {"text": "in the session"}, now=clock.now())
        assert after is not None and after in s
    assert [m.payload["text"] for m in rows(services, OutboxMessage)] == [
        "in the batch", "in the session"]


def test_a_batchs_compare_and_sets_run_before_a_flush_in_its_middle(services, clock):
    """A flush while a batch is open (a new row whose id is needed) runs the batch's
    compare-and-sets so far first: they compare the rows as read, not the ORM's changes."""
    from storage.bulk import Conflict, batch
    from storage.leads import lost_leads, mark_status

    with services.transaction() as s:
        first, second = a_lead(s, clock.now()), Lead(
            team_id="T1", external_id="L-2", source="webinar", created_at=clock.now(),
            mql_at=clock.now(), updated_at=clock.now())
        s.add(second)
        s.flush()
        opened = batch(s)
        assert mark_status(s, first.id, "new", None, "routed", clock.now(), batched=True)
        first.status = "routed"  # the move itself, in the ORM
        s.flush()  # e.g. a burst row, for its id
        assert mark_status(s, second.id, "accepted", None, "routed", clock.now(), batched=True)
        with pytest.raises(Conflict) as lost:  # someone else's change: named
            opened.write(s)
        assert lost_leads(lost.value) == {second.id}


def test_a_batch_compares_a_row_it_moved_twice_with_what_it_first_read(services, clock):
    """A lead the batch moves and then moves again (its own change, not flushed yet) is
    compared once, with what the database holds; the ORM then writes the last move."""
    from storage.bulk import batch
    from storage.leads import mark_status

    with services.transaction() as s:
        lead = a_lead(s, clock.now())
        opened = batch(s)
        assert mark_status(s, lead.id, "new", None, "routed", clock.now(), batched=True)
        lead.status = "routed"
        assert mark_status(s, lead.id, "routed", None, "accepted", clock.now(), batched=True)
        lead.status = "accepted"
        opened.write(s)
    with services.transaction() as s:
        assert s.get(Lead, lead.id).status == "accepted"


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)
def test_a_batchs_compare_holds_its_rows_until_it_ends(services, clock, engine):
    """Compared, a row is locked: another transaction cannot change it between the compare
    and the batch's own change (SQLite's one writer at a time does this by itself). Rows
    pointing at it (another worker's events of the lead) are not held up: the lock is
    the one an UPDATE takes, not FOR UPDATE's."""
    from storage.bulk import batch
    from storage.leads import mark_status

    with services.transaction() as s:
        lead = a_lead(s, clock.now())
    with services.transaction() as s:
        opened = batch(s)
        assert mark_status(s, lead.id, "new", None, "routed", clock.now(), batched=True)
        opened.write(s)  # compared; the change is still to come
        with engine.connect() as other:
            other.exec_driver_sql("SET lock_timeout = '50ms'")
            other.execute(insert(LeadEvent).values(team_id="T1", lead_id=lead.id, kind="note",
                                                   actor="U1", at=clock.now()))
            with pytest.raises(OperationalError, match="lock timeout"):
                other.execute(update(Lead).where(Lead.id == lead.id).values(status="accepted"))
