"""Handoff burst queries: the channels' open bursts, and a page of a burst's leads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, select, union_all
from sqlalchemy.orm import Session

from storage.db import lock_handoffs
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


def get_burst(session: Session, team_id: str, burst_id: int) -> HandoffBurst | None:
    burst = session.get(HandoffBurst, burst_id)
    return burst if burst is not None and burst.team_id == team_id else None


def list_burst_leads(session: Session, burst_id: int, *, offset: int, limit: int) -> list[Row]:
    """A page of the burst's leads in the order they came, as they are now: what a summary
    line shows (`id, external_id, name, company, score, source, status, owner`)."""
    return list(session.execute(_page(burst_id, offset, limit)))


def list_first_pages(session: Session, burst_ids: list[int], limit: int) -> dict[int, list[Row]]:
    """Each burst's first page (`list_burst_leads`), for many bursts in one statement: a
    limited select a burst, each a search of the burst's index, joined by UNION ALL."""
    pages: dict[int, list[Row]] = {burst_id: [] for burst_id in burst_ids}
    if burst_ids:
        selects = [_page(burst_id, 0, limit).subquery().select() for burst_id in burst_ids]
        for row in session.execute(selects[0] if len(selects) == 1 else union_all(*selects)):
            pages[row.burst_id].append(row)
    return pages


def _page(burst_id: int, offset: int, limit: int):
    """The page's lines first, cut at `limit` in the burst's key order, then only those
    joined to their leads. Joined first, every line of the burst was, each time a webhook
    grew it, whenever PostgreSQL's planner took a growing burst for a few rows: 13 ms for
    a page of 25 at 3,000 lines."""
    lines = (select(HandoffBurstLead.burst_id, HandoffBurstLead.lead_id)
             .where(HandoffBurstLead.burst_id == burst_id)
             .order_by(HandoffBurstLead.lead_id).offset(offset).limit(limit).subquery())
    return (select(lines.c.burst_id, Lead.id, Lead.external_id, Lead.name, Lead.company,
                   Lead.score, Lead.source, Lead.status, Person.slack_id.label("owner"))
            .join(Lead, Lead.id == lines.c.lead_id)
            .outerjoin(Person, Person.id == Lead.owner_id)
            .order_by(lines.c.lead_id))
