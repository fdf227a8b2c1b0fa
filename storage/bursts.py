"""Handoff burst queries: the channels' open bursts, and a page of a burst's leads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    FromClause,
    Integer,
    Row,
    Select,
    bindparam,
    column,
    func,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from storage.db import among, lock_handoffs
from storage.models import HandoffBurst, HandoffBurstLead, Lead, Person


def list_open_bursts(session: Session, team_id: str, since: datetime) -> dict[str, HandoffBurst]:
    """Each channel's latest burst that took a lead at `since` or later, read in one query
    for all the channels a batch posts to (the handoff channel and each owner's DM).
    Batches arriving at once count the channels' cards and start their bursts one after
    the other (`lock_handoffs`)."""
    lock_handoffs(session, team_id)
    found = session.scalars(
        select(HandoffBurst)
        .where(HandoffBurst.team_id == team_id, HandoffBurst.last_at >= since)
        .order_by(HandoffBurst.id).with_for_update())
    return {burst.channel: burst for burst in found}  # the latest of a channel's wins


def list_listed(session: Session, lead_ids: list[int]) -> set[tuple[int, int]]:
    """(burst id, lead id) of every summary line of these leads."""
    if not lead_ids:
        return set()
    return {(row.burst_id, row.lead_id) for row in session.execute(
        select(HandoffBurstLead.burst_id, HandoffBurstLead.lead_id)
        .where(among(session, HandoffBurstLead.lead_id, lead_ids)))}


def get_burst(session: Session, team_id: str, burst_id: int) -> HandoffBurst | None:
    burst = session.get(HandoffBurst, burst_id)
    return burst if burst is not None and burst.team_id == team_id else None


def list_burst_leads(session: Session, burst_id: int, *, offset: int, limit: int) -> list[Row]:
    """A page of the burst's leads in the order they came, as they are now: what a summary
    line shows (`id, external_id, name, company, score, source, status, owner`)."""
    return list(session.execute(_page(burst_id, offset, limit)))


def list_first_pages(session: Session, burst_ids: list[int], limit: int) -> dict[int, list[Row]]:
    """Each burst's first page (`list_burst_leads`), for many bursts in one statement: a
    limited select a burst, each a search of the burst's index. On PostgreSQL one text
    however many bursts (a LATERAL select for each of an array's ids), so the driver
    prepares it and the server plans it once: a UNION ALL of one select a burst was a
    new text for each count of bursts, planned anew each time (1.8 ms of planning for
    0.6 of work, four bursts at a webhook). SQLite has no LATERAL, and plans in no time."""
    pages: dict[int, list[Row]] = {burst_id: [] for burst_id in burst_ids}
    if not burst_ids:
        return pages
    if session.get_bind().dialect.name == "postgresql":
        statement, params = _FIRST_PAGES, {"burst_ids": burst_ids, "limit": limit}
    else:
        selects = [_page(burst_id, 0, limit).subquery().select() for burst_id in burst_ids]
        statement, params = selects[0] if len(selects) == 1 else union_all(*selects), {}
    for row in session.execute(statement, params):
        pages[row.burst_id].append(row)
    return pages


def _page(burst_id: int, offset: int, limit: int):
    """The page's lines first, cut at `limit` in the burst's key order, then only those
    joined to their leads. Joined first, every line of the burst was, each time a webhook
    grew it, whenever PostgreSQL's planner took a growing burst for a few rows: 13 ms for
    a page of 25 at 3,000 lines."""
    lines = _lines(HandoffBurstLead.burst_id == burst_id).offset(offset).limit(limit).subquery()
    return _joined(lines, lines)


def _lines(where: ColumnElement[bool]) -> Select:
    return (select(HandoffBurstLead.burst_id, HandoffBurstLead.lead_id).where(where)
            .order_by(HandoffBurstLead.lead_id))


def _joined(lines: FromClause, source: FromClause) -> Select:
    """A page's `lines` (`burst_id`, `lead_id`, from `source`) joined to their leads and owners."""
    return (select(lines.c.burst_id, Lead.id, Lead.external_id, Lead.name, Lead.company,
                   Lead.score, Lead.source, Lead.status, Person.slack_id.label("owner"))
            .select_from(source)
            .join(Lead, Lead.id == lines.c.lead_id)
            .outerjoin(Person, Person.id == Lead.owner_id)
            .order_by(lines.c.burst_id, lines.c.lead_id))


# PostgreSQL's first pages: each id of the array, its first `limit` lines (see list_first_pages)
_BURSTS = func.unnest(bindparam("burst_ids", type_=ARRAY(Integer))).table_valued(
    column("id", Integer)).render_derived(name="bursts")
_FIRST_LINES = _lines(HandoffBurstLead.burst_id == _BURSTS.c.id).limit(bindparam("limit")) \
    .lateral("lines")
_FIRST_PAGES = _joined(_FIRST_LINES, _BURSTS.join(_FIRST_LINES, true()))
