"""Bulk writing: explicit ids and many rows per statement (the demo data set, batches of new leads)."""

from __future__ import annotations

import gc
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Dialect, Executable, Table, event, func, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from storage.db import among
from storage.models import Base, Lead
from storage.types import UTCDateTime

REPEATED = (UTCDateTime, JSON)  # column types whose values in a batch are mostly repeats
# Rows per SQLite INSERT: few statements, so a batch's writing seldom waits for the GIL
# (and one prepared statement the driver keeps and reuses).
ROWS_PER_INSERT = 500


YOUNG_EVERY = 10  # batches between collections during a pause (see gc_paused)


class _GCPause:
    """See `gc_paused`: one pause for all the batches in progress, in any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    def enter(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1

    def exit(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._was_enabled:
                gc.enable()


_gc_pause = _GCPause()


@contextmanager
def gc_paused() -> Iterator[Callable[[], None]]:
    """No cyclic garbage collection while batches of rows are built and written. A batch's
    tens of thousands of new objects, alive until its commit, set off a dozen collections
    each, now and then of the whole heap, all with the GIL held: a tenth to a fifth of an
    import's time. Batches leave little cyclic garbage (about 60 objects per 1,000 leads).
    A long pause (an import) calls the function yielded after each batch: every tenth
    call collects what was made since the one before (a couple of milliseconds), so that
    garbage stays bounded however long the file. The rest is collected as usual once the
    last pause in progress ends."""
    _gc_pause.enter()
    batches = itertools.count(1)

    def batch_done() -> None:
        if next(batches) % YOUNG_EVERY == 0:
            gc.collect(0)  # automatic collection is off: everything since is still young
    try:
        yield batch_done
    finally:
        _gc_pause.exit()


def next_id(session: Session, model: type) -> int:
    return (session.scalar(select(func.max(model.id))) or 0) + 1


def add_rows(session: Session, model: type, rows: list[dict[str, Any]], *,
             nulls: bool = False) -> None:
    """Through the ORM's bulk path, which fills in column defaults a row leaves out. With
    `nulls`, a None is NULL rather than left out: rows that differ only in which values are
    None then go in one statement, not one statement each."""
    if rows:
        session.execute(insert(model).execution_options(render_nulls=nulls), rows)


def count_leads(session: Session, team_id: str) -> int:
    return session.scalar(select(func.count()).select_from(Lead).where(Lead.team_id == team_id)) or 0


class Draft:
    """A new row as plain attributes: what code reads and sets on a model instance, without
    the ORM's bookkeeping on every access. Written by `Rows.write` with its final values."""

    def __init__(self, model: type, values: dict[str, Any]):
        self.__dict__ = {**_columns(model), **values}


@cache
def _columns(model: type) -> dict[str, None]:
    return dict.fromkeys(model.__table__.columns.keys())


_BATCH = "alignbot.batch"  # the key of a session's batch in progress (Session.info)


def batch(session: Session) -> Rows:
    """Start a batch on this session: until it is written (or prepared), the new rows that
    nothing reads back before the commit (a batch of new leads, their history, nudges and
    messages) go into it (`add`), not into the session. The code that writes them never
    needs to know whether a batch is open."""
    rows = session.info[_BATCH] = Rows()
    return rows


def batch_of(session: Session) -> Rows | None:
    return session.info.get(_BATCH)


class Rows:
    """Rows that nothing reads back before the transaction ends, kept as plain dicts and
    written a table at a time (INSERTs of many rows, or a COPY): a thousand leads' worth of ORM objects would cost more
    than everything else in the batch."""

    def __init__(self) -> None:
        self._rows: dict[Table, list[dict[str, Any]]] = {}
        self._changes: dict[Executable, list[dict[str, Any]]] = {}
        # (model, columns) -> row key -> the columns' values it must still hold
        self._expected: dict[tuple[type, tuple[str, ...]], dict[Any, tuple]] = {}

    def add(self, model: type, row: dict[str, Any]) -> None:
        self._rows.setdefault(model.__table__, []).append(row)

    def change(self, statement: Executable, params: dict[str, Any]) -> None:
        """An UPDATE of existing rows, built once and bound by `params`: run at the batch's
        end, before its new rows and the ORM's changes, as one executemany with the others
        of its statement; or sooner, at a flush in the middle of the batch (see
        `_changes_first`)."""
        self._changes.setdefault(statement, []).append(params)

    def expect(self, model: type, key: Any, values: dict[str, Any]) -> None:
        """The compare of a compare-and-set whose set is the ORM's change of the row: when
        the batch's changes run (its end, or a flush before), the row is locked and must
        still hold `values` (column name -> value), else the batch fails (`Conflict`, which
        names the rows). One SELECT ... FOR NO KEY UPDATE for all the rows expected by then:
        an UPDATE as the compare made every row two new versions (its own and the ORM's),
        with ten index entries each for a lead. A row expected again before that (after the
        ORM changed it) keeps its first expectation: what the database holds until the
        ORM's flush."""
        expected = self._expected.setdefault((model, tuple(values)), {})
        expected.setdefault(key, tuple(values.values()))

    def new(self, model: type, values: dict[str, Any]) -> Any:
        """A draft of a new row, written with whatever values it holds by then."""
        draft = Draft(model, values)
        self.add(model, vars(draft))
        return draft

    def write(self, session: Session) -> None:
        execute(session, self.prepare(session))

    def prepare(self, session: Session) -> list[Statement]:
        """The batch's end: its compares (`expect`) and UPDATEs (`change`) run now; its
        statements, each table before the ones that point at it, with their parameters
        bound, ready for `execute`, which then leaves only the database's own work. New
        rows go into the session again."""
        if session.info.get(_BATCH) is self:
            del session.info[_BATCH]
        self._change(session)
        dialect = session.get_bind().dialect
        statements = []
        for table in Base.metadata.sorted_tables:
            shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in self._rows.pop(table, ()):
                shapes.setdefault(tuple(row), []).append(row)
            for keys, alike in shapes.items():
                statements += _inserts(dialect, table, keys, alike)
        return statements

    def _change(self, session: Session) -> None:
        conn = session.connection()  # not session.execute: the ORM's changes come after
        for (model, names), expected in self._expected.items():
            _compare(session, conn, model, names, expected)
        self._expected.clear()
        for statement, params in self._changes.items():
            conn.execute(statement, params)
        self._changes.clear()


def _compare(session: Session, conn: Any, model: type, names: tuple[str, ...],
             expected: dict[Any, tuple]) -> None:
    """Lock the rows `expected` names and check their columns `names` (see `Rows.expect`).
    FOR NO KEY UPDATE, the lock an UPDATE of the row takes: rows pointing at it (a lead's
    new events, nudges) may still be written meanwhile."""
    key = model.__mapper__.primary_key[0]
    found = {row[0]: tuple(row[1:]) for row in conn.execute(
        select(key, *(model.__table__.c[name] for name in names))
        .where(among(session, key, list(expected))).with_for_update(key_share=True))}
    lost = [k for k, values in expected.items() if found.get(k) != values]
    if lost:
        raise Conflict(model, lost, len(expected))


@event.listens_for(Session, "before_flush")
def _changes_first(session: Session, _flush: Any, _instances: Any) -> None:
    """A flush in the middle of a batch (a new row whose id is needed, such as a channel's
    new handoff burst) runs the batch's compares and UPDATEs so far first, as its end would:
    else it writes the ORM's changes to the rows they compare, and every compare fails
    (a lead the SLA sweep reassigned already has its new owner: "changed since read")."""
    if (rows := batch_of(session)) is not None and (rows._changes or rows._expected):
        rows._change(session)


class Conflict(Exception):
    """Rows a batch expected to hold what it read (`Rows.expect`) were changed by someone
    else meanwhile: `keys`, those of `model`'s that no longer did."""

    def __init__(self, model: type, keys: list[Any], of: int):
        super().__init__(f"{len(keys)} of {of} rows changed since they were read")
        self.model, self.keys = model, keys


# A statement and its rows' values: on SQLite an INSERT of one row and a list per column
# (in the order of the INSERT's), cut into statements of many rows by `execute`; else a
# COPY and one tuple per row.
Statement = tuple[str, list[Any]]


def execute(session: Session, statements: list[Statement]) -> None:
    """Flush the ORM first (the rows may point at what it holds), then the statements: on
    SQLite, see `_values_lists`; on PostgreSQL each table's rows stream in one COPY, a
    single statement however many rows (one INSERT per row, even pipelined, was two
    thirds of an import's time)."""
    session.flush()
    conn = session.connection()
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name != "sqlite":
        for sql, rows in statements:
            _copy(conn.dialect, dbapi, sql, rows)
        return
    limit = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    for sql, columns in statements:
        for part in _values_lists(sql, columns, limit):
            conn.exec_driver_sql(*part)


def _copy(dialect: Dialect, dbapi: Any, sql: str, rows: list[tuple]) -> None:
    """A COPY through psycopg's own cursor (SQLAlchemy has none), its errors raised as
    SQLAlchemy's would be (a broken constraint an IntegrityError)."""
    try:
        with dbapi.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except dialect.loaded_dbapi.Error as e:
        raise DBAPIError.instance(sql, None, e, dialect.loaded_dbapi.Error,
                                  dialect=dialect) from e


def _inserts(dialect: Dialect, table: Table, keys: tuple[str, ...],
             rows: list[dict[str, Any]]) -> list[Statement]:
    """Parameters bound a column at a time, and only in columns whose type has a bind
    processor: SQLAlchemy's executemany builds and processes every row's parameters in
    general code, a third of a batch of new leads' cost. A column empty in every row is
    left out (NULL all the same): binding None is the driver's slowest case, and a new
    lead's later stage times are all empty."""
    columns = {key: list(map(itemgetter(key), rows)) for key in keys}
    for c in table.columns:
        if c.key not in columns:
            if c.default is not None and c.default.is_scalar:
                columns[c.key] = [c.default.arg] * len(rows)  # what SQLAlchemy would fill in
        elif c.default is None and c.server_default is None and \
                columns[c.key].count(None) == len(rows):
            del columns[c.key]
    sql, order = _statement(dialect, table, tuple(columns))
    for name in order:
        if process := table.c[name].type._cached_bind_processor(dialect):
            columns[name] = _bind(columns[name], process, isinstance(table.c[name].type, REPEATED))
    values = [columns[name] for name in order]
    if dialect.name == "sqlite":  # cut into statements of many rows by `execute`
        return [(sql, values)]
    return [(sql, list(zip(*values, strict=True)))]


@lru_cache(maxsize=256)
def _statement(dialect: Dialect, table: Table, keys: tuple[str, ...]) -> tuple[str, list[str]]:
    """SQLite's INSERT of one row (positional parameters), or PostgreSQL's COPY of the
    columns; and the columns' order in it."""
    if dialect.name != "sqlite":
        quote = dialect.identifier_preparer
        names = ", ".join(quote.format_column(table.c[key]) for key in keys)
        return f"COPY {quote.format_table(table)} ({names}) FROM STDIN", list(keys)
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
    return compiled.string, compiled.positiontup


def _values_lists(sql: str, columns: list[list[Any]], limit: int) -> list[tuple[str, Any]]:
    """INSERT ... VALUES (...), (...) of a fixed number of rows, as many as SQLite takes
    parameters: parsed once, then one step (without the GIL) for all of them instead of a
    bind, step and reset per row. The rows left over go in one executemany."""
    count, width = len(columns[0]), len(columns)
    per = max(1, min(ROWS_PER_INSERT, limit // width))
    whole = count - count % per
    many = _many(sql, per)
    statements = []
    for start in range(0, whole, per):
        values = [None] * (per * width)  # row by row: each column into every width-th place
        for i, column in enumerate(columns):
            values[i::width] = column[start:start + per]
        statements.append((many, tuple(values)))
    if whole < count:
        statements.append((sql, list(_rows(columns, whole, count))))
    return statements


def _rows(columns: list[list[Any]], start: int, stop: int) -> Iterator[tuple]:
    return zip(*(c[start:stop] for c in columns), strict=True)


@lru_cache(maxsize=64)
def _many(sql: str, rows: int) -> str:
    head, _, row = sql.partition(" VALUES ")
    return f"{head} VALUES {', '.join([row] * rows)}"


def _bind(column: list[Any], process: Callable[[Any], Any], repeated: bool) -> list[Any]:
    first = column[0]
    if first is not None and all(v is first for v in column):  # one value in every row: now
        return [process(first)] * len(column)
    if repeated:
        process = _memo(process)
    return [v if v is None else process(v) for v in column]


def _memo(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A bind processor that converts each distinct value once: a batch's times are mostly
    the same few instants (now, and the due times it leads to), and its events' data the
    same few routing decisions. The same object is known by its id (only for the one
    statement's values, which stay alive meanwhile). Equal values are known by what they
    bind to: a time by its UTC instant, data by its items and their types (True and 1 are
    equal, but not the same JSON). Anything unhashable (nested lists or dicts) is
    converted every time."""
    by_id: dict[int, Any] = {}
    by_key: dict[Any, Any] = {}

    def memo(value: Any) -> Any:
        if (bound := by_id.get(id(value))) is None:
            try:
                key = _key(value)
                if (bound := by_key.get(key)) is None:
                    bound = by_key[key] = process(value)
            except TypeError:
                return process(value)
            by_id[id(value)] = bound
        return bound
    return memo


def _key(value: Any) -> Any:
    if isinstance(value, datetime):  # equal local times can be an hour apart (fold)
        return value.astimezone(UTC) if value.tzinfo else value
    if type(value) is dict:
        return tuple((k, v.__class__, v) for k, v in value.items())
    return value.__class__, value


def add(session: Session, model: type, row: dict[str, Any]) -> None:
    """Into the session's batch when one is open, else into the session now."""
    if (rows := batch_of(session)) is not None:
        rows.add(model, row)
    else:
        session.add(model(**row))
