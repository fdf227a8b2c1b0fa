"""The schema: models and migrations agree on every backend, and the check can fail."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from bot.cli import main
from storage.db import make_engine
from storage.migrate import current_revision, upgrade
from storage.models import Base, Customer


def diff(engine, metadata) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, metadata)


def test_models_and_migrations_agree(engine):
    assert diff(engine, Base.metadata) == []


def test_a_model_change_without_migration_is_detected(engine):
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    Table("leads", changed, Column("forgotten_field", String(10)), extend_existing=True)
    Table("brand_new", changed, Column("id", Integer, primary_key=True))
    problems = diff(engine, changed)
    assert ("add_table", "brand_new") in [(p[0], p[1].name) for p in problems if p[0] == "add_table"]
    assert any(p[0] == "add_column" and p[3].name == "forgotten_field" for p in problems)


def test_every_table_is_scoped_by_team(engine):
    for name in inspect(engine).get_table_names():
        if name in ("alembic_version", "slack_oauth_states"):  # a state: no workspace yet
            continue
        columns = {c["name"] for c in inspect(engine).get_columns(name)}
        assert "team_id" in columns, name


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_keys_are_unique_per_team(services, clock):
    with pytest.raises(IntegrityError), services.sessions.begin() as s:
        for _ in range(2):
            s.add(Customer(team_id="T1", external_id="C-1", started_at=clock.now(),
                           updated_at=clock.now()))
            s.flush()
    with services.sessions.begin() as s:  # the same key in another workspace is fine
        for team in ("T1", "T2"):
            s.add(Customer(team_id=team, external_id="C-1", started_at=clock.now(),
                           updated_at=clock.now()))


def test_times_come_back_aware_utc(services, clock):
    """Whatever zone a time was given in, it is read back as the same instant in UTC (on
    PostgreSQL as psycopg returns it: the session is in UTC, see `_postgresql_utc`)."""
    local = clock.now().astimezone(ZoneInfo("America/New_York"))
    with services.sessions.begin() as s:
        s.add(Customer(team_id="T1", external_id="C-9", started_at=local, updated_at=local))
    with services.sessions.begin() as s:
        row = s.query(Customer).filter_by(external_id="C-9").one()
        assert row.started_at == clock.now() and row.started_at.tzinfo is UTC


def test_db_upgrade_command_migrates_a_fresh_database(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 0
    revision = current_revision(make_engine(url))
    assert revision is not None
    assert f"database at revision {revision}" in capsys.readouterr().out
    upgrade(make_engine(url))  # running it again is harmless


def test_stages_written_up_front_become_one_pending_stage_per_lead(tmp_path, clock):
    from datetime import timedelta

    from sqlalchemy.orm import Session

    from storage.models import Lead, Nudge

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0007")  # when routing wrote every stage of a lead at once
    now, hour = clock.now(), timedelta(hours=1)
    with Session(engine) as s, s.begin():
        for lead_id in (1, 2):  # only the columns 0007 had (the model has more since)
            s.execute(insert(Lead).values(
                id=lead_id, team_id="T1", external_id=f"L-{lead_id}", source="webinar",
                status="routed", created_at=now, mql_at=now, updated_at=now))
        for lead_id, stage, due, state, held in [
                (1, "card", 2, "sent", False), (1, "remind", 3, "pending", True),
                (1, "breach", 4, "pending", False), (1, "escalate", 5, "pending", False),
                (2, "card", 2, "pending", False), (2, "breach", 4, "pending", False)]:
            s.execute(insert(Nudge).values(team_id="T1", lead_id=lead_id, stage=stage,
                                           due_at=now + due * hour, state=state, held=held))
    upgrade(engine)
    with Session(engine) as s:
        pending = s.execute(select(Nudge.lead_id, Nudge.stage).where(Nudge.state == "pending")
                            .order_by(Nudge.lead_id, Nudge.due_at)).all()
    assert pending == [(1, "remind"), (1, "breach"), (2, "card")]  # a held stage stays


def test_leads_left_waiting_before_retries_are_routed_by_the_first_sweep(tmp_path, clock, config,
                                                                        fake_slack):
    from sqlalchemy.orm import Session

    from bot.platform.config import Secrets
    from bot.platform.runtime import build_services
    from bot.sla.nudges import sweep
    from storage.models import Lead, Nudge, Person
    from tests.slack import TEAM

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0012")  # an unassigned lead had nothing scheduled: it waited for ever
    now = clock.now()
    with Session(engine) as s, s.begin():
        for lead_id, status in ((1, "new"), (2, "contacted")):  # the columns 0012 has
            s.execute(insert(Lead).values(id=lead_id, team_id=TEAM, external_id=f"L-{lead_id}",
                                          source="webinar", status=status, created_at=now,
                                          mql_at=now, updated_at=now))
    upgrade(engine)
    with Session(engine) as s:
        assert s.execute(select(Nudge.lead_id, Nudge.stage, Nudge.state)).all() == [
            (1, "route", "pending")]
    services = build_services(config, Secrets(), clock, engine=engine, slack=fake_slack.client(),
                              team_id=TEAM)
    sweep(services, now)
    with Session(engine) as s:
        lead = s.get(Lead, 1)
        assert (lead.status, s.get(Person, lead.owner_id).slack_id) == ("routed", "U0SALES01")



@pytest.mark.parametrize(("revision", "table", "index"), [
    # a deleted lead's burst entries, found by its id (the key starts with the burst's)
    ("0023", "handoff_burst_leads", "ix_handoff_burst_leads_lead"),
    # the channels' cards of the last minute, counted for every new lead's batch
    ("0024", "outbox", "ix_outbox_team_created"),
])
def test_an_index_migration_goes_both_ways(engine, revision, table, index):
    from alembic import command

    from storage.migrate import alembic_config

    def indexes() -> set[str]:
        return {i["name"] for i in inspect(engine).get_indexes(table)}

    assert index in indexes()
    before = f"{int(revision) - 1:04d}"
    try:
        command.downgrade(alembic_config(engine), before)
        assert index not in indexes()
        assert current_revision(engine) == before
    finally:
        upgrade(engine)
    assert index in indexes()
    assert diff(engine, Base.metadata) == []


def test_weekly_snapshots_forget_each_refresh_and_go_back_without_week_rows(engine, clock):
    """0025: the next refresh is a first one, which stores the weeks; down, they are gone."""
    from datetime import date

    from alembic import command
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config
    from storage.models import MetricRefresh, MetricSnapshot

    def stored() -> tuple[list, list]:
        with Session(engine) as s:
            return (s.scalars(select(MetricSnapshot.grain).order_by(MetricSnapshot.grain)).all(),
                    s.scalars(select(MetricRefresh.team_id)).all())
    try:
        command.downgrade(alembic_config(engine), "0025")  # 0029 forgets refreshes too
        with Session(engine) as s, s.begin():
            s.add(MetricRefresh(team_id="T1", first_day=date(2026, 6, 1),
                                last_day=date(2026, 6, 30), as_of=clock.now()))
            s.add_all(MetricSnapshot(team_id="T1", metric="leads_routed", grain=grain,
                                     day=date(2026, 6, 1), numerator=1.0, denominator=0.0,
                                     computed_at=clock.now()) for grain in ("day", "week"))
        command.downgrade(alembic_config(engine), "0024")
        assert stored() == (["day"], ["T1"])
        assert current_revision(engine) == "0024"
    finally:
        upgrade(engine)
    assert stored() == (["day"], [])


def test_stages_still_to_fire_are_of_their_leads_routing_after_0027(engine, clock):
    """Else every stage pending at the upgrade would be void, as of an earlier routing."""
    from alembic import command
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config
    from storage.models import Lead, Nudge

    now = clock.now()
    command.downgrade(alembic_config(engine), "0026")
    try:
        with Session(engine) as s, s.begin():
            s.execute(insert(Lead).values(
                id=1, team_id="T1", external_id="L-1", source="webinar", status="routed",
                created_at=now, mql_at=now, routed_at=now, updated_at=now))
            for stage, state in (("card", "sent"), ("remind", "sending"), ("breach", "pending")):
                s.execute(insert(Nudge).values(team_id="T1", lead_id=1, stage=stage, due_at=now,
                                               state=state, held=False))
    finally:
        upgrade(engine)
    with Session(engine) as s:
        routed = dict(s.execute(select(Nudge.stage, Nudge.assigned_at)).all())  # renamed in 0028
    assert routed == {"card": None, "remind": now, "breach": now}


def test_a_lead_reassigned_before_0028_waits_from_its_handoff_after_it(engine, clock):
    """Its routed_at was its last owner's: it goes back to its handoff's first routing (not
    one before a rejection), and its response time grows by as much."""
    from datetime import timedelta

    from alembic import command
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config
    from storage.models import Lead, LeadEvent, MetricRefresh, Nudge

    t0, hour = clock.now(), timedelta(hours=1)
    command.downgrade(alembic_config(engine), "0027")
    try:
        with Session(engine) as s, s.begin():
            s.add(MetricRefresh(team_id="T1", first_day=t0.date(), last_day=t0.date(),
                                as_of=t0))
            for lead_id, kinds, minutes in ((1, ("routed", "routed", "routed"), 30.0),
                                            (2, ("routed", "rejected", "routed", "routed"), None),
                                            (3, ("routed",), 5.0)):
                last = t0 + (len(kinds) - 1) * hour
                s.execute(insert(Lead).values(
                    id=lead_id, team_id="T1", external_id=f"L-{lead_id}", source="webinar",
                    status="routed", created_at=t0, mql_at=t0, routed_at=last, updated_at=last,
                    response_minutes=minutes))
                s.execute(insert(LeadEvent), [{"team_id": "T1", "lead_id": lead_id, "kind": kind,
                                               "to_status": kind, "actor": "x", "at": t0 + i * hour}
                                              for i, kind in enumerate(kinds)])
            s.execute(insert(Nudge).values(team_id="T1", lead_id=3, stage="remind", due_at=t0,
                                           state="pending", held=False))
    finally:
        upgrade(engine)
    with Session(engine) as s:
        rows = s.execute(select(Lead.id, Lead.routed_at, Lead.assigned_at, Lead.response_minutes)
                         .order_by(Lead.id)).all()
        assert [tuple(r) for r in rows] == [
            (1, t0, t0 + 2 * hour, 30.0 + 120), (2, t0 + 2 * hour, t0 + 3 * hour, None),
            (3, t0, t0, 5.0)]
        assert s.scalars(select(MetricRefresh)).all() == []  # days moved: a full refresh
    command.downgrade(alembic_config(engine), "0027")
    try:
        with Session(engine) as s:
            back = s.execute(select(Lead.__table__.c.id, Lead.__table__.c.routed_at,
                                    Lead.__table__.c.response_minutes).order_by("id")).all()
            assert [tuple(r) for r in back] == [(1, t0 + 2 * hour, 30.0), (2, t0 + 3 * hour, None),
                                                (3, t0, 5.0)]
    finally:
        upgrade(engine)


def test_spend_spread_over_days_forgets_each_refresh_both_ways(engine, clock):
    """0029: CAC's stored days change meaning; the next refresh is a first one, up or down."""
    from datetime import date

    from alembic import command
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config
    from storage.models import MetricRefresh

    def remember() -> None:
        with Session(engine) as s, s.begin():
            s.add(MetricRefresh(team_id="T1", first_day=date(2026, 3, 1),
                                last_day=date(2026, 3, 31), as_of=clock.now()))

    def refreshes() -> list:
        with Session(engine) as s:
            return s.scalars(select(MetricRefresh.team_id)).all()
    remember()
    try:
        command.downgrade(alembic_config(engine), "0028")
        assert refreshes() == [] and current_revision(engine) == "0028"
        remember()
    finally:
        upgrade(engine)
    assert refreshes() == []


def test_response_business_minutes_forget_each_refresh_and_go_back_without_their_rows(
        engine, clock):
    """0030: the next refresh is a first one, which stores response time's business-minute
    histograms; down, they are gone and the other rows stay."""
    from datetime import date

    from alembic import command
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config
    from storage.models import MetricRefresh, MetricSnapshot

    def stored() -> tuple[list, list]:
        with Session(engine) as s:
            return (s.scalars(select(MetricSnapshot.metric).order_by(MetricSnapshot.metric))
                    .all(), s.scalars(select(MetricRefresh.team_id)).all())
    with Session(engine) as s, s.begin():
        s.add(MetricRefresh(team_id="T1", first_day=date(2026, 6, 1),
                            last_day=date(2026, 6, 30), as_of=clock.now()))
        s.add_all(MetricSnapshot(team_id="T1", metric=metric, grain="day",
                                 day=date(2026, 6, 1), numerator=0.0, denominator=0.0,
                                 histogram={"35.0": 1}, computed_at=clock.now())
                  for metric in ("response_business_minutes", "response_time"))
    try:
        command.downgrade(alembic_config(engine), "0029")
        assert stored() == (["response_time"], ["T1"])
        assert current_revision(engine) == "0029"
    finally:
        upgrade(engine)
    assert stored() == (["response_time"], [])


def test_the_crm_owner_email_of_leads_is_stored_under_its_name_after_0031(engine, clock):
    """leads.owner_email held the CRM's last owner_email, not the owner's: after a Slack
    reassignment (or a CRM owner nobody here has) a report reading it showed the old
    owner. It is crm_owner_email, as it was, both ways; the owner's email is their person's."""
    from alembic import command
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config
    from storage.models import Lead

    def columns():
        return {c["name"] for c in inspect(engine).get_columns("leads")}

    command.downgrade(alembic_config(engine), "0030")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO leads (id, team_id, external_id, source, status, created_at, "
                "updated_at, owner_email) VALUES (1, 'T1', 'L-1', 'webinar', 'new', "
                "'2026-11-24 14:00:00', '2026-11-24 14:00:00', 'sam@example.com')")
    finally:
        upgrade(engine)
    assert "owner_email" not in columns()
    with Session(engine) as s:
        assert s.scalar(select(Lead.crm_owner_email)) == "sam@example.com"
    command.downgrade(alembic_config(engine), "0030")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT owner_email FROM leads").scalar() == \
                "sam@example.com"
    finally:
        upgrade(engine)


def test_response_business_minutes_by_group_forget_each_refresh_and_go_back_without_them(
        engine, clock):
    """0032: the next refresh is a first one, which stores the business-minute histograms
    per grouping; down, those are gone and the whole workspace's stay."""
    from datetime import date

    from alembic import command
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config
    from storage.models import MetricRefresh, MetricSnapshot

    def stored() -> tuple[list, list]:
        with Session(engine) as s:
            return (s.execute(select(MetricSnapshot.metric, MetricSnapshot.dimension)
                              .order_by(MetricSnapshot.metric, MetricSnapshot.dimension)).all(),
                    s.scalars(select(MetricRefresh.team_id)).all())
    with Session(engine) as s, s.begin():
        s.add(MetricRefresh(team_id="T1", first_day=date(2026, 6, 1),
                            last_day=date(2026, 6, 30), as_of=clock.now()))
        s.add_all(MetricSnapshot(team_id="T1", metric=metric, grain="day", dimension=by,
                                 dimension_value="U1" if by else "", day=date(2026, 6, 1),
                                 numerator=0.0, denominator=0.0, histogram={"35.0": 1},
                                 computed_at=clock.now())
                  for metric in ("response_business_minutes", "response_time")
                  for by in ("", "owner"))
    try:
        command.downgrade(alembic_config(engine), "0031")
        assert stored() == ([("response_business_minutes", ""), ("response_time", ""),
                             ("response_time", "owner")], ["T1"])
        assert current_revision(engine) == "0031"
    finally:
        upgrade(engine)
    assert stored()[1] == []


def test_recycled_leads_nobody_answered_are_judged_at_their_recycle_after_0033(engine, clock):
    """Recycled unanswered before its due time: no due time (left out of SLA compliance);
    after it: missed. Answered ones stay as they are; the workspace's next refresh is a
    first one, another workspace's is not."""
    from datetime import date, datetime, timedelta

    from alembic import command
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config
    from storage.models import Lead, MetricRefresh

    routed = datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
    due = routed + timedelta(hours=4)
    recycled = {"L-early": (routed + timedelta(hours=1), None),
                "L-late": (routed + timedelta(days=2), None),
                "L-answered": (routed + timedelta(days=2), 30.0)}
    command.downgrade(alembic_config(engine), "0032")
    try:
        with Session(engine) as s, s.begin():
            s.add_all(Lead(team_id="T1", external_id=key, source="webinar", status="recycled",
                           routed_at=routed, sla_due_at=due, recycled_at=at,
                           response_minutes=took, sla_met=True if took else None,
                           created_at=routed, updated_at=at)
                      for key, (at, took) in recycled.items())
            s.add_all(MetricRefresh(team_id=team, first_day=date(2026, 11, 1),
                                    last_day=date(2026, 11, 30), as_of=clock.now())
                      for team in ("T1", "T2"))
        kept = refreshes_kept_at(engine, "0033")
    finally:
        upgrade(engine)
    with Session(engine) as s:
        judged = {lead.external_id: (lead.sla_met, lead.sla_due_at)
                  for lead in s.scalars(select(Lead))}
        assert judged == {"L-early": (None, None), "L-late": (False, due),
                          "L-answered": (True, due)}
    assert kept == ["T2"]


def _refreshes_kept_upgrading_from(engine, clock, revision: str, rows, *, to: str) -> list[str]:
    """The workspaces whose metrics refresh an upgrade from `revision` to `to` keeps (0037
    then forgets them all), each with a refresh of November 2026 and `rows` (models stored
    at `revision`) stored before."""
    from datetime import date

    from alembic import command
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config
    from storage.models import MetricRefresh

    command.downgrade(alembic_config(engine), revision)
    try:
        with Session(engine) as s, s.begin():
            s.add_all(rows)
            s.add_all(MetricRefresh(team_id=team, first_day=date(2026, 11, 1),
                                    last_day=date(2026, 11, 30), as_of=clock.now())
                      for team in sorted({row.team_id for row in rows}))
        kept = refreshes_kept_at(engine, to)
    finally:
        upgrade(engine)
    return kept


def test_a_workspace_with_deals_won_before_they_were_created_is_refreshed_in_full_after_0034(
        engine, clock):
    """Its stored days counted their negative sales cycles: its next refresh is a first one.
    A workspace whose deals closed after (or as) they were created, or lost before, keeps its
    refresh."""
    from datetime import datetime

    from storage.models import Deal

    created = datetime(2026, 11, 10, tzinfo=UTC)
    deals = {"T1": (datetime(2026, 11, 2, tzinfo=UTC), "won"),
             "T2": (created, "won"), "T3": (datetime(2026, 11, 2, tzinfo=UTC), "lost")}
    assert _refreshes_kept_upgrading_from(engine, clock, "0033", [
        Deal(team_id=team, external_id="D1", created_at=created, closed_at=closed,
             outcome=outcome, amount=1, updated_at=created)  # amounts: see 0036
        for team, (closed, outcome) in deals.items()], to="0034") == ["T2", "T3"]


def test_a_workspace_with_won_deals_without_an_amount_is_refreshed_in_full_after_0036(
        engine, clock):
    """Its stored days lack the groups of those deals: its next refresh is a first one. A
    workspace whose won deals have amounts, or whose deal without one is lost, keeps its
    refresh."""
    from datetime import datetime
    from decimal import Decimal

    from storage.models import Deal

    at = datetime(2026, 11, 10, tzinfo=UTC)
    deals = {"T1": (None, "won"), "T2": (Decimal(0), "won"), "T3": (Decimal(5), "won"),
             "T4": (None, "lost")}
    assert _refreshes_kept_upgrading_from(engine, clock, "0035", [
        Deal(team_id=team, external_id="D1", amount=amount, created_at=at, closed_at=at,
             outcome=outcome, updated_at=at)
        for team, (amount, outcome) in deals.items()], to="0036") == ["T3", "T4"]


def refreshes_kept_at(engine, revision: str) -> list[str]:
    """The workspaces whose metric refresh is kept once upgraded to `revision`: 0037 then
    forgets them all."""
    from alembic import command
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config
    from storage.models import MetricRefresh

    command.upgrade(alembic_config(engine), revision)
    with Session(engine) as s:
        return sorted(s.scalars(select(MetricRefresh.team_id)))


def test_every_workspace_is_refreshed_in_full_after_0037(engine, clock):
    """Its stored days may hold rows that left them (the refresh did not know that day):
    every next refresh is a first one. Down, the stale instants' table is gone."""
    from datetime import date

    from alembic import command
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config
    from storage.models import MetricRefresh

    command.downgrade(alembic_config(engine), "0036")
    try:
        assert "metric_stale_instants" not in inspect(engine).get_table_names()
        with Session(engine) as s, s.begin():
            s.add(MetricRefresh(team_id="T1", first_day=date(2026, 11, 1),
                                last_day=date(2026, 11, 30), as_of=clock.now()))
    finally:
        upgrade(engine)
    with Session(engine) as s:
        assert s.scalars(select(MetricRefresh.team_id)).all() == []
    assert diff(engine, Base.metadata) == []
