"""Handoff burst queries: the open burst of a channel, and a page of a burst's leads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from storage.db import lock_handoffs
from storage.models import HandoffBurst, HandoffBurstLead, Lead, Person


def get_open_burst(session: Session, team_id: str, channel: str,
                   since: datetime) -> HandoffBurst | None:
    """The channel's burst that took a lead at `since` or later. Batches arriving at once
    count the channel's cards and start its burst one after the other (`lock_handoffs`)."""
    lock_handoffs(session, team_id)
    return session.scalars(
        select(HandoffBurst)
        .where(HandoffBurst.team_id == team_id, HandoffBurst.channel == channel,
               HandoffBurst.last_at >= since)
        .order_by(HandoffBurst.id.desc()).limit(1).with_for_update()).first()


def get_burst(session: Session, team_id: str, burst_id: int) -> HandoffBurst | None:
    burst = session.get(HandoffBurst, burst_id)
    return burst if burst is not None and burst.team_id == team_id else None


def list_burst_leads(session: Session, burst_id: int, *, offset: int, limit: int) -> list[Row]:
    """A page of the burst's leads in the order they came, as they are now: what a summary
    line shows (`id, external_id, name, company, score, source, status, owner`)."""
    return list(session.execute(
        select(Lead.id, Lead.external_id, Lead.name, Lead.company, Lead.score, Lead.source,
               Lead.status, Person.slack_id.label("owner"))
        .join(HandoffBurstLead, HandoffBurstLead.lead_id == Lead.id)
        .outerjoin(Person, Person.id == Lead.owner_id)
        .where(HandoffBurstLead.burst_id == burst_id)
        .order_by(HandoffBurstLead.lead_id).offset(offset).limit(limit)))
