"""Bulk writing: explicit ids and many rows per statement (the demo data set, batches of new leads)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Table, func, insert, select
from sqlalchemy.orm import Session

from storage.models import Base, Lead
from storage.types import UTCDateTime

REPEATED = (UTCDateTime, JSON)  # column types whose values in a batch are mostly repeats


def next_id(session: Session, model: type) -> int:
    return (session.scalar(select(func.max(model.id))) or 0) + 1


def add_rows(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """Through the ORM's bulk path, which fills in column defaults a row leaves out."""
    if rows:
        session.execute(insert(model), rows)


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


class Rows:
    """Rows that nothing reads back before the transaction ends (a batch of new leads, their
    history and nudges), kept as plain dicts and written in one INSERT per table: a thousand
    leads' worth of ORM objects would cost more than everything else in the batch."""

    def __init__(self) -> None:
        self._rows: dict[Table, list[dict[str, Any]]] = {}

    def add(self, model: type, row: dict[str, Any]) -> None:
        self._rows.setdefault(model.__table__, []).append(row)

    def new(self, model: type, values: dict[str, Any]) -> Any:
        """A draft of a new row, written with whatever values it holds by then."""
        draft = Draft(model, values)
        self.add(model, vars(draft))
        return draft

    def write(self, session: Session) -> None:
        """Flush the ORM first, then each table before the ones that point at it."""
        session.flush()
        for table in Base.metadata.sorted_tables:
            shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in self._rows.pop(table, ()):
                shapes.setdefault(tuple(row), []).append(row)
            for keys, alike in shapes.items():
                insert_many(session.connection(), table, keys, alike)


def insert_many(conn: Connection, table: Table, keys: tuple[str, ...],
                rows: list[dict[str, Any]]) -> None:
    """One executemany at the driver, with each column's own bind processor applied only
    where it has one: SQLAlchemy's executemany builds and processes every row's parameters
    in general code, a third of a batch of new leads' cost."""
    defaults = {c.key: c.default.arg for c in table.columns  # what SQLAlchemy would fill in
                if c.key not in keys and c.default is not None and c.default.is_scalar}
    if defaults:
        rows, keys = [defaults | row for row in rows], (*keys, *defaults)
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=list(keys))
    order = compiled.positiontup if compiled.positional else list(keys)
    processors = [(i, _memo(p) if isinstance(table.c[name].type, REPEATED) else p)
                  for i, name in enumerate(order)
                  if (p := table.c[name].type._cached_bind_processor(conn.dialect))]
    get = itemgetter(*order)
    params = []
    for row in rows:
        values = list(get(row)) if len(order) > 1 else [row[order[0]]]
        for i, process in processors:
            if values[i] is not None:  # most of a new lead's stage times are still empty
                values[i] = process(values[i])
        params.append(tuple(values) if compiled.positional else dict(zip(order, values, strict=True)))
    conn.exec_driver_sql(compiled.string, params)


def _memo(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A bind processor that converts each distinct value once: a batch's times are mostly
    the same few instants (now, and the due times it leads to), and its events' data the
    same few routing decisions. Values are known by what they bind to: a time by its UTC
    instant, data by its items and their types (True and 1 are equal, but not the same
    JSON). Anything unhashable (nested lists or dicts) is converted every time."""
    done: dict[Any, Any] = {}

    def memo(value: Any) -> Any:
        try:
            key = _key(value)
            if (bound := done.get(key)) is None:
                bound = done[key] = process(value)
        except TypeError:
            return process(value)
        return bound
    return memo


def _key(value: Any) -> Any:
    if isinstance(value, datetime):  # equal local times can be an hour apart (fold)
        return value.astimezone(UTC) if value.tzinfo else value
    if type(value) is dict:
        return tuple((k, v.__class__, v) for k, v in value.items())
    return value.__class__, value


def add(session: Session, rows: Rows | None, model: type, row: dict[str, Any]) -> None:
    """Into the batch's rows when there is one, else into the session now."""
    if rows is not None:
        rows.add(model, row)
    else:
        session.add(model(**row))
