"""Engine setup on SQLite: how a transaction waits for another connection's write lock."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import traceback
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import JSON, Column, Integer, MetaData, Table, insert, select

from storage import db
from storage.db import make_engine, make_sessionmaker
from tests.concurrency import TRIES


class FakeTime:
    """What `begin_immediate` pauses with: each pause is counted, then `on_pause` runs."""

    def __init__(self, on_pause=lambda pauses: None):
        self.pauses, self.on_pause = [], on_pause

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.on_pause(len(self.pauses))


@pytest.fixture
def locked(tmp_path):
    """An engine on a file whose write lock another connection holds, with a row not yet committed."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    holder = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    yield engine, holder
    holder.close()
    engine.dispose()


def test_a_transaction_begins_within_a_millisecond_of_the_lock_coming_free(locked, monkeypatch):
    engine, holder = locked
    fake = FakeTime(on_pause=lambda n: n == 3 and holder.execute("COMMIT"))
    monkeypatch.setattr(db, "time", fake)
    with engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1  # after the commit
    assert fake.pauses == [0.001] * 3  # tried every millisecond, not by SQLite's back-off


def test_a_transaction_that_waits_too_long_says_the_database_is_locked(locked, monkeypatch):
    engine, holder = locked
    fake = FakeTime()
    monkeypatch.setattr(db, "time", fake)
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 20)  # then SQLite's own wait: 20 ms
    with pytest.raises(db.DatabaseBusy, match="is busy .*: database is locked"), engine.begin():
        pass
    assert fake.pauses == [0.001] * db.FAST_TRIES
    holder.execute("ROLLBACK")
    with engine.connect() as conn:  # the same pooled connection: its own timeout is back
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 20


def test_a_failing_statement_is_logged_without_its_parameters(engine, caplog):
    """Outside debug logging, a database error names the statement, never the lead's data."""
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from storage.models import Lead

    caplog.set_level(logging.INFO)
    quiet = make_engine(engine.url.render_as_string(hide_password=False))
    pii = {"name": "Ann Secretname", "email": "ann.secret@example.com", "company": "Hushco",
           "why": "whispered on the phone"}
    now = datetime(2026, 11, 24, tzinfo=UTC)
    with Session(quiet) as session:
        session.add(Lead(team_id="T0TEST", external_id="L-1", source="webinar", created_at=now,
                         updated_at=now))
        session.commit()
        session.add(Lead(team_id="T0TEST", external_id="L-1", source="webinar", created_at=now,
                         updated_at=now, **pii))
        with pytest.raises(IntegrityError) as failed:
            session.commit()
    logging.getLogger("alignbot").exception("the insert failed", exc_info=failed.value)
    told = caplog.text + "".join(traceback.format_exception(failed.value))
    assert "INSERT INTO leads" in told  # the statement is still there to debug with
    assert [value for value in pii.values() if value in told] == []
    quiet.dispose()


def test_debug_logging_shows_a_failing_statements_parameters(engine, caplog):
    from sqlalchemy import text

    caplog.set_level(logging.DEBUG, logger="storage.db")
    loud = make_engine(engine.url.render_as_string(hide_password=False))
    with pytest.raises(Exception) as failed, loud.connect() as conn:
        conn.execute(text("SELECT :who FROM no_such_table"), {"who": "Ann Secretname"})
    assert "Ann Secretname" in str(failed.value)
    loud.dispose()


def test_a_logged_database_error_carries_no_row_values(engine):
    """PostgreSQL's DETAIL lines ("Failing row contains (…)", "Key (email)=(…)") once put a
    lead's name and a person's email into the log, parameters hidden or not."""
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from storage.models import Lead, OwnerLookup

    now = datetime(2026, 11, 24, tzinfo=UTC)
    pii = ["Ann Secretname", "ann.secret@example.com"]
    failures = []
    for rows in ([Lead(team_id="T0TEST", external_id="L-1", source=None, name=pii[0],
                       created_at=now, updated_at=now)],  # a NOT NULL column left empty
                 [OwnerLookup(team_id="T0TEST", email=pii[1], first_failed_at=now,
                              failed_at=now, error="timeout") for _ in range(2)]):  # a unique key twice
        with Session(engine) as session, pytest.raises(IntegrityError) as failed:
            session.add_all(rows)
            session.commit()
        failures.append(failed.value)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(db.NoRowValues())
    logger = logging.getLogger("test.no_row_values")
    logger.addHandler(handler)
    try:
        for exc in failures:
            logger.error("the insert failed: %s", exc, exc_info=exc)
    finally:
        logger.removeHandler(handler)
    told = out.getvalue()
    assert "IntegrityError" in told and "INSERT INTO" in told  # what failed, still there
    assert [value for value in pii if value in told] == [] and "DETAIL" not in told
    if engine.dialect.name == "postgresql":  # where the values were: the test can fail
        assert all(value in "".join(map(str, failures)) for value in pii)


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)  # SQLite plans by its indexes, without statistics
def test_a_table_a_bulk_load_grows_gets_statistics_between_its_batches(engine, monkeypatch):
    """Autovacuum looks once a minute: a table filled meanwhile would be planned as if empty
    (a CSV import's lookups of 500 keys slowed down with every batch)."""
    monkeypatch.setattr(db, "ANALYZE_MIN_ROWS", 100)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO leads (team_id, external_id, source, status, created_at, updated_at) "
            "SELECT 'T0TEST', 'L-' || n, 'webinar', 'new', now(), now() "
            "FROM generate_series(1, 300) n")
        conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")  # the counts, at commit
    with db.between_batches(engine) as upkeep:
        for _ in range(TRIES):  # the statistics collector counts them within a second
            upkeep()
            with engine.connect() as conn:
                if conn.exec_driver_sql("SELECT reltuples FROM pg_class "
                                        "WHERE relname = 'leads'").scalar() == 300:
                    break
        else:
            raise AssertionError("leads were never analyzed")
    assert db.analyze_grown(engine) == []  # until it doubles again


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@given(JSON_VALUES)
def test_json_columns_read_back_what_the_standard_library_reads(value):
    """msgspec for speed, `json` for what msgspec refuses: NaN, infinities and lone
    surrogates (`json.dumps` writes them) read back as `json.loads` reads them, and so do
    integers past 64 bits."""
    text = json.dumps(value)
    read, expected = db.json_loads(text), json.loads(text)
    assert json.dumps(read) == json.dumps(expected)  # NaN != NaN; their text is equal


def test_an_engines_json_columns_are_read_with_json_loads(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/j.db")
    rows = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("v", JSON))
    rows.metadata.create_all(engine)
    value = {"12.0": 3, "big": 2**70, "nan": float("nan"), "s": "\ud800", "list": [1.5, None]}
    with engine.begin() as conn:
        conn.execute(insert(rows), {"v": value})
        read = conn.scalar(select(rows.c.v))
    assert json.dumps(read) == json.dumps(value)
    assert engine.dialect._json_deserializer is db.json_loads


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)
def test_a_batch_lookup_is_planned_for_its_own_keys(engine):
    """psycopg prepares a statement run five times; PostgreSQL then keeps one plan for any
    keys, and one made while an import's table was small scanned every lead of the team
    against the 500 keys (100 ms a lookup, growing with the table). The lookup is never
    prepared, and the connection's other statements still are."""
    from storage.ingest import get_ids_by_external_ids
    from storage.models import Lead

    with make_sessionmaker(engine)() as session:
        driver = session.connection().connection.driver_connection
        prepares = driver.prepare_threshold
        for n in range(8):
            assert get_ids_by_external_ids(session, Lead, "T0TEST", [f"L-{n}", "L-x"]) == {}
        assert driver.prepare_threshold == prepares
        prepared = session.connection().exec_driver_sql(
            "SELECT statement FROM pg_prepared_statements").scalars().all()
        assert not [s for s in prepared if "external_id" in s], prepared


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)
def test_a_lock_held_is_asked_of_the_server_once_a_transaction(engine):
    """A webhook's batch, its routing and its bursts each take the routing lock: one round
    trip, not three. Another transaction still waits for it, a savepoint that rolls back
    lets go of what it took, and the next transaction asks again."""
    from sqlalchemy import event

    from storage.db import hold

    asked: list[str] = []

    def count(_conn, _cursor, statement, *_):
        if "pg_advisory_xact_lock" in statement:
            asked.append(statement)

    def others_may_take() -> bool:
        with engine.connect() as other:
            return other.exec_driver_sql(
                "SELECT pg_try_advisory_xact_lock(hashtextextended('x', 0))").scalar()

    event.listen(engine, "before_cursor_execute", count)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        hold(session, "x")
        hold(session, "x")
        assert len(asked) == 1 and not others_may_take()
        with session.begin_nested() as savepoint:
            hold(session, "y")
            savepoint.rollback()
        hold(session, "y")
        assert len(asked) == 3
        session.commit()
    assert others_may_take()
    with sessions() as session:
        hold(session, "x")
        assert len(asked) == 4
    event.remove(engine, "before_cursor_execute", count)


def test_webhooks_look_for_grown_tables_once_they_have_stored_a_hundred_records(engine,
                                                                                 monkeypatch):
    """Not after each 10-lead webhook: a table needs 500 changed rows to be analyzed."""
    looks: list = []
    monkeypatch.setattr(db, "analyze_grown", lambda e: looks.append(e) or [])
    for _ in range(25):
        db.analyze_grown_after(engine, 10)
    assert looks == [engine, engine]
    db.analyze_grown_after(engine, 1000)  # an import-sized batch looks at once
    assert len(looks) == 3


def test_among_finds_the_rows_of_any_number_of_ids(engine):
    """`among` is `IN` on SQLite and `= ANY(array)` on PostgreSQL (one parameter for any
    count): the same rows either way, none for no ids, thousands at once."""
    rows = Table("among_t", MetaData(), Column("id", Integer, primary_key=True),
                 prefixes=["TEMPORARY"])
    with make_sessionmaker(engine)() as session:
        rows.create(session.connection())
        session.execute(insert(rows), [{"id": n} for n in range(40_000)])
        for ids in ([], [7], [7, 7, 40_001], list(range(0, 40_000, 2))):
            query = select(rows.c.id).where(db.among(session, rows.c.id, ids))
            assert sorted(session.scalars(query)) == sorted({n for n in ids if n < 40_000})
        said, postgresql = str(query.compile(session.get_bind())), engine.dialect.name == "postgresql"
        assert ("= ANY (" in said, " IN " in said) == (postgresql, not postgresql)


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)
def test_a_postgresql_session_is_in_utc_whatever_the_servers_zone(engine):
    """A server's default zone is often `Etc/UTC` or a local one: psycopg then returns each
    timestamp through a ZoneInfo (reading a sweep's 1,000 leads took 40 % longer) and the
    session's date arithmetic would follow that zone. Every connection is set to UTC, even
    one whose URL asks for New York."""
    url = engine.url.update_query_dict({"options": "-c TimeZone=America/New_York"})
    local = make_engine(url.render_as_string(hide_password=False))
    try:
        with local.connect() as conn:
            assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "UTC"
            at = conn.exec_driver_sql("SELECT TIMESTAMPTZ '2026-11-24 09:00-05'").scalar()
        assert at == datetime(2026, 11, 24, 14, 0, tzinfo=UTC) and at.tzinfo is UTC
    finally:
        local.dispose()
