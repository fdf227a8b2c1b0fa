"""Engine and session setup: SQLite by default (WAL, foreign keys, busy timeout), PostgreSQL by URL."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Engine,
    Executable,
    Result,
    any_,
    bindparam,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.functions import FunctionElement

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///alignbot.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000
BEGIN_RETRY_SECONDS = 0.001  # how often a transaction waiting to begin tries again...
FAST_TRIES = 1000  # ...at first: about a second (longer when other threads hold the GIL)
MAKE_WAY_SECONDS = 0.002  # a bulk writer's pause between transactions: two such tries


def normalise_url(url: str) -> str:
    """Accept the postgres:// and postgresql:// forms hosts hand out; use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class DatabaseUnreachable(OperationalError):
    """The database did not take a connection (down, refused, a path that cannot be opened):
    one line that names it, without its password, and why. An OperationalError still, so
    whoever waits for the database to come back (a webhook's 503) treats it as before."""

    def __init__(self, url: str, orig: BaseException):
        super().__init__(None, None, orig)
        self.url = url
        self.reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]

    def __str__(self) -> str:
        return f"cannot reach the database at {self.url}: {self.reason}"

    def __reduce__(self):
        return type(self), (self.url, self.orig)


class DatabaseBusy(DatabaseUnreachable):
    """The database answered, but a lock was not granted in time (SQLite's busy timeout,
    PostgreSQL's lock_timeout, statement_timeout or a deadlock): the transaction was rolled
    back, and whoever waits out an unreachable database tries it again the same way."""

    def __str__(self) -> str:
        return f"the database at {self.url} is busy (another transaction held a lock too " \
               f"long): {self.reason}"


# lock_not_available (lock_timeout), query_canceled (statement_timeout), deadlock_detected
BUSY_SQLSTATES = frozenset({"55P03", "57014", "40P01"})


def _busy(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) in BUSY_SQLSTATES or (
        isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc))


# PostgreSQL explains an error with the row's values: "DETAIL:  Key (email)=(ann@…) already
# exists", "DETAIL:  Failing row contains (7, Ann Lee, …)", and CONTEXT lines quoting them.
ROW_VALUES = re.compile(r"^[ \t]*(?:DETAIL|CONTEXT):.*(?:\n|$)", re.M)


class NoRowValues(logging.Filter):
    """Keeps a database error's row values (personal data) out of log lines and their
    tracebacks; the first line (which constraint, which column) stays to act on. SQLAlchemy
    leaves parameters out by itself (`hide_parameters`). Installed unless debugging."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if ROW_VALUES.search(message):
            record.msg, record.args = ROW_VALUES.sub("", message), None
        if record.exc_info and not record.exc_text:  # what a formatter would print, scrubbed
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = ROW_VALUES.sub("", record.exc_text)
        return True


NO_ROW_VALUES = NoRowValues()


def keep_row_values_out_of_logs() -> None:
    """Outside debug logging, every handler of the root logger drops rows' values."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        for handler in logging.getLogger().handlers:
            handler.addFilter(NO_ROW_VALUES)  # once, however often the CLI runs in a process


def json_loads(text: str | bytes):
    """JSON columns' values as the standard library reads them, twice as fast (a metric
    answer decodes a histogram of ~200 values per stored day, week or month). What msgspec
    refuses and `json` reads (NaN, Infinity, a number past a float's range, a lone
    surrogate) is read by `json`. (orjson, faster still, reads an integer past 64 bits as
    a float.)"""
    try:
        return msgspec.json.decode(text)
    except msgspec.MsgspecError:
        return json.loads(text)


class BadDatabaseUrl(ValueError):
    """The database URL names nothing alignbot can store in (a typo, another database, a
    driver not installed): one line, without its password, instead of SQLAlchemy's traceback."""


# what alignbot is built and tested on
DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
URL_EXAMPLES = "sqlite:///alignbot.db or postgresql://user:password@host:5432/alignbot"


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:  # its text may hold a password: not shown
        raise BadDatabaseUrl(f"the database URL (DATABASE_URL) is not one like {URL_EXAMPLES}"
                             ) from None
    if parsed.drivername not in DRIVERS:
        raise BadDatabaseUrl(f"the database URL {parsed.render_as_string(hide_password=True)} "
                             "is not one alignbot can use: it stores its data in SQLite or in "
                             f"PostgreSQL through psycopg 3, like {URL_EXAMPLES}")
    return parsed


def make_engine(url: str | None = None, **kwargs) -> Engine:
    url = normalise_url(url or DEFAULT_URL)
    parsed = _parse(url)
    shown = parsed.render_as_string(hide_password=True)  # what errors name: no password
    kwargs.setdefault("json_deserializer", json_loads)
    # A failing statement's error carries its parameters (lead names, emails) into every
    # log line and traceback of it: only debug logging, asked for, shows them.
    kwargs.setdefault("hide_parameters", not log.isEnabledFor(logging.DEBUG))
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnreachable(shown, exc) from None
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _name_unreachable(engine, shown)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", lambda conn: _begin(conn, shown))
        return engine
    engine = _name_unreachable(create_engine(url, pool_pre_ping=True, **kwargs), shown)
    event.listen(engine, "connect", _postgresql_utc)
    event.listen(engine, "begin", _postgresql_begin)
    return engine


def read(session: Session, statement: Executable, params: dict[str, Any] | None = None
         ) -> Result:
    """`session.execute` of a statement that reads columns, not mapped objects (a metric's
    parts, the snapshots): through the session's connection, after flushing what the
    session holds, as its autoflush would. The ORM's own path (compile state, result
    wrapping) cost as much again as most of these statements: 170 µs against 75."""
    if session.autoflush:
        session.flush()
    return session.connection().execute(statement, params)


READ_ONLY = "alignbot_read_only"  # the execution option `read_only` sessions carry


@contextmanager
def read_only(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session that only reads (a metric question, a Home): it never waits for a writer —
    a metric refresh, an import — nor makes one wait. On SQLite a deferred transaction,
    which in WAL mode reads the last committed state without taking the write lock; on
    PostgreSQL a READ ONLY one. A write in it fails on both."""
    engine = sessions.kw["bind"]
    with sessions(bind=engine.execution_options(**{READ_ONLY: True})) as session:
        yield session


def _postgresql_utc(dbapi_connection, record) -> None:
    """Each connection's session in UTC, whatever the server's default (often `Etc/UTC`,
    or a local zone): psycopg returns timestamps in the session's zone, and only "UTC" is
    its fast path (`datetime.timezone.utc`); any other name is a `ZoneInfo`, converted
    value by value: psycopg's rows of 1,000 leads (ten timestamps each) took 2-3x as long,
    the ORM's read of them 40 % longer. (PgBouncer keeps a client's TimeZone across server
    connections.)"""
    dbapi_connection.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.commit()


def _postgresql_begin(conn: Connection) -> None:
    if _reading(conn):  # psycopg begins the transaction with this statement
        conn.connection.driver_connection.execute("SET TRANSACTION READ ONLY")


def _reading(conn: Connection) -> bool:
    return conn.get_execution_options().get(READ_ONLY, False)


def _name_unreachable(engine: Engine, shown: str) -> Engine:
    """A connection that fails (while connecting, or lost in a transaction) becomes
    DatabaseUnreachable, a lock not granted in time DatabaseBusy: a 120-line traceback of the
    driver's becomes one line a person can act on (naming the database as `shown`)."""

    def unreachable(ctx: ExceptionContext) -> None:
        if ctx.is_pre_ping:
            return
        if ctx.connection is None or ctx.is_disconnect:
            raise DatabaseUnreachable(shown, ctx.original_exception) from None
        if _busy(ctx.original_exception):
            raise DatabaseBusy(shown, ctx.original_exception) from None
    event.listen(engine, "handle_error", unreachable)
    return engine


def _begin(conn: Connection, shown: str) -> None:
    """pysqlite's own transaction handling defers BEGIN; emit it ourselves so that SELECT ...
    then UPDATE in one transaction is really one transaction (IMMEDIATE: a deferred one that
    read, then writes, fails when another connection wrote meanwhile). Reads only defer.
    SQLAlchemy does not see BEGIN fail: still locked after the busy timeout is DatabaseBusy,
    as a statement's lock would be."""
    dbapi_conn, reading = conn.connection.driver_connection, _reading(conn)
    if conn.connection.info.get(READ_ONLY, False) != reading:  # the connection's last mode
        dbapi_conn.execute(f"PRAGMA query_only={int(reading)}")
        conn.connection.info[READ_ONLY] = reading
    if reading:
        dbapi_conn.execute("BEGIN")
        return
    try:
        begin_immediate(dbapi_conn)
    except sqlite3.OperationalError as exc:
        if _busy(exc):
            raise DatabaseBusy(shown, exc) from None
        raise


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # let the "begin" listener own transactions
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def begin_immediate(dbapi_conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, tried every millisecond for a while (`FAST_TRIES`) when another
    connection writes, then as SQLite waits, up to its busy timeout. SQLite's own busy
    handler soon tries only every 100 ms, so a click or command waiting behind a bulk import
    would miss the moments between batches when the lock is free, and wait for all of it."""
    dbapi_conn.execute("PRAGMA busy_timeout=0")
    try:
        for _ in range(FAST_TRIES):
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
            time.sleep(BEGIN_RETRY_SECONDS)
    finally:
        dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    dbapi_conn.execute("BEGIN IMMEDIATE")  # past the busy timeout: "database is locked"


def make_way(engine: Engine) -> None:
    """Between a bulk writer's transactions (an import's batches), let a transaction waiting
    to begin (a click, a command, a webhook) go first: SQLite grants its lock to whoever asks
    first once it is free, and the bulk writer would always ask first."""
    if engine.dialect.name == "sqlite":
        time.sleep(MAKE_WAY_SECONDS)


_HELD = "alignbot.held"  # the locks `hold` took, by transaction (Session.info)


def hold(session: Session, name: str) -> None:
    """Wait for the lock `name`, then hold it until the transaction ends: for work two
    PostgreSQL transactions must do one after the other even before there are rows to
    lock (both would insert them, and one fail). SQLite has one writer at a time anyway.
    Asked again in the same transaction (a webhook's routing, bursts and batch all take
    the routing lock), it is not asked of the server again; a savepoint is a transaction
    of its own here, as a lock it took is let go if it rolls back."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.connection()  # the transaction has begun
    held = session.info.setdefault(_HELD, weakref.WeakKeyDictionary())
    names = held.setdefault(session.get_nested_transaction() or session.get_transaction(), set())
    if name not in names:
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
                        {"name": name})
        names.add(name)


def lock_handoffs(session: Session, team_id: str) -> None:
    """The workspace's routing and handoff bursts: batches in flight together would both
    start a pool's round-robin state or a channel's burst. One lock for both, taken before
    any lead is locked (a batch updating the lead a sweep reassigns), so no two transactions
    can wait on each other."""
    hold(session, f"handoffs:{team_id}")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def advance_sequences(session: Session, tables: list[str]) -> None:
    """After rows were inserted with explicit ids, move PostgreSQL's id sequences past them."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite picks max(id) + 1 by itself
    for table in tables:
        session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"))


def time_limit(session: Session, seconds: float) -> None:
    """On PostgreSQL, a statement of this transaction that runs (or waits for a lock) longer
    than `seconds` is cancelled: DatabaseBusy. SQLite has no such limit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT set_config('statement_timeout', :ms, true)"),
                        {"ms": str(max(1, round(seconds * 1000)))})


def without_jit(session: Session) -> None:
    """On PostgreSQL, no JIT compilation for the rest of this transaction: a statement whose
    plan costs over `jit_above_cost` (a metric refresh's, over a month of days) is compiled
    to machine code first, which takes longer than running it. SQLite has no JIT."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def ping(engine: Engine) -> None:
    """Raise when the database does not answer (the health check)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@contextmanager
def wal_checkpoints(engine: Engine) -> Iterator[Callable[[], None]]:
    """A checkpoint of SQLite's write-ahead log on a connection of its own, for a bulk
    writer to run between its commits: otherwise the commit that fills the log copies it
    into the database and waits for the disk, while nothing else can go on. If one fails,
    commits checkpoint as they always do. A no-op on PostgreSQL and in memory."""
    if engine.dialect.name != "sqlite" or not isinstance(engine.pool, QueuePool):
        yield lambda: None  # one connection for all (a database in memory): nothing to copy
        return
    raw = engine.raw_connection()

    def checkpoint() -> None:
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            log.debug("WAL checkpoint failed; commits will checkpoint", exc_info=True)
    try:
        yield checkpoint
    finally:
        raw.close()


ANALYZE_MIN_ROWS = 500  # rows changed before a table never analyzed gets statistics

# Tables changed by as many rows as they held when last analyzed (reltuples: -1 never).
_GROWN = text("""SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
                 WHERE s.schemaname = current_schema()
                   AND s.n_mod_since_analyze >= GREATEST(c.reltuples, :least)""")


def analyze_grown(engine: Engine) -> list[str]:
    """Fresh planner statistics for the tables that (at least) doubled since they last had
    some; which. Autovacuum looks once a minute at most: a table a bulk load fills
    meanwhile is planned as if empty, and an import's lookups of 500 keys (psycopg's
    prepared statements, on a generic plan) grow from milliseconds to half a second as the
    table grows. A table another ANALYZE holds is skipped: it is being done. SQLite plans
    without statistics: nothing to do there."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        tables = list(conn.scalars(_GROWN, {"least": ANALYZE_MIN_ROWS}))
        for table in tables:
            conn.exec_driver_sql(f'ANALYZE (SKIP_LOCKED) "{table}"')
        conn.commit()
    return tables


ANALYZE_LOOK_EVERY = 100  # records stored (see analyze_grown_after)
_stored_since_look: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()
_stored_lock = threading.Lock()


def analyze_grown_after(engine: Engine, records: int) -> list[str]:
    """`analyze_grown` once the batches since it last looked have stored `ANALYZE_LOOK_EVERY`
    records between them. A record changes a few rows of a table at most (a lead, its
    events, its nudges, its messages) and a table needs 500 changed to be analyzed, so
    looking after every 10-lead webhook (a query of the catalog, a millisecond on
    PostgreSQL) found nothing nineteen times in twenty."""
    with _stored_lock:
        stored = _stored_since_look.get(engine, 0) + records
        _stored_since_look[engine] = 0 if stored >= ANALYZE_LOOK_EVERY else stored
    return analyze_grown(engine) if stored >= ANALYZE_LOOK_EVERY else []


@contextmanager
def between_batches(engine: Engine) -> Iterator[Callable[[], None]]:
    """What a bulk writer runs between its commits, off its own transaction: SQLite's WAL
    checkpoint (`wal_checkpoints`), PostgreSQL's statistics of the tables it grows."""
    if engine.dialect.name == "postgresql":
        yield lambda: analyze_grown(engine)
        return
    with wal_checkpoints(engine) as checkpoint:
        yield checkpoint


class unselective(FunctionElement):  # noqa: N801 (used as a function)
    """A condition most rows might meet, for the planner: not one to pick an index for
    over a key lookup. SQLite plans without statistics and takes an equality on an indexed
    column to match ten rows: `id IN (2 ids) AND state = 'pending'` scanned every pending
    message (a backlog's thousands) through the state index instead of looking up 2 ids.
    There it is marked `likely()`, which it still uses an index for when that is best;
    PostgreSQL has statistics and gets the condition as it is. (Untyped: a Boolean would
    be compared with 1 on SQLite, which hides the condition from the planner.)"""

    inherit_cache = True


@compiles(unselective)
def _unselective(element: unselective, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unselective, "sqlite")
def _unselective_sqlite(element: unselective, compiler: Any, **kw: Any) -> str:
    return f"likely({compiler.process(element.clauses, **kw)})"


def among(session: Session, column: ColumnElement, values: Collection) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `column = ANY(array)`: one parameter however many
    values, so the statement's text is the same for every count (the driver prepares it
    once) and neither the driver nor the server parses a placeholder a value."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)
