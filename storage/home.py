"""App Home queries: who has a Home tab, and whose is due to be published again."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import HomeTab


def add_home_tab(session: Session, team_id: str, person_id: int) -> None:
    """Remember that this person has a Home tab; opening it again, even twice at once,
    changes nothing."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(HomeTab).values(person_id=person_id, team_id=team_id)
                    .on_conflict_do_nothing())


def mark_homes_stale(session: Session, person_ids: Collection[int], due: datetime) -> None:
    """Due for publishing at `due`, unless already due: however many changes, one publish.
    People without a Home tab have no row, so nothing happens for them."""
    if person_ids:  # Core, not ORM: nothing pending in the session needs flushing first
        tabs = HomeTab.__table__.c
        session.execute(update(HomeTab.__table__)
                        .where(tabs.person_id.in_(person_ids), tabs.refresh_at.is_(None))
                        .values(refresh_at=due))


def mark_team_homes_stale(session: Session, team_id: str, due: datetime) -> None:
    """Every Home of the workspace due at `due`, unless already due (new metric numbers)."""
    session.execute(update(HomeTab)
                    .where(HomeTab.team_id == team_id, HomeTab.refresh_at.is_(None))
                    .values(refresh_at=due).execution_options(synchronize_session=False))


def get_first_due_home(session: Session) -> datetime | None:
    """When the earliest Home marked stale is due for its refresh."""
    return session.scalar(select(func.min(HomeTab.refresh_at)))


def claim_due_homes(session: Session, now: datetime, limit: int) -> list[int]:
    """Clear the mark of up to `limit` Homes due by `now`, in one conditional UPDATE; whoever
    clears a mark publishes that Home. On PostgreSQL the candidates are locked with SKIP
    LOCKED, so concurrent refreshes take disjoint sets; SQLite runs one writer at a time."""
    candidates = (select(HomeTab.person_id).where(HomeTab.refresh_at <= now)
                  .order_by(HomeTab.refresh_at).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return list(session.scalars(
        update(HomeTab).where(HomeTab.person_id.in_(candidates), HomeTab.refresh_at <= now)
        .values(refresh_at=None).returning(HomeTab.person_id)
        .execution_options(synchronize_session=False)))
