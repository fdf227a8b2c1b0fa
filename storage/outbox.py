"""Outbox queries. They take a session and never commit; the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session, defer

from storage import bulk, pacing
from storage.db import among, unselective
from storage.models import OutboxMessage

WAITING = ("pending", "unknown")  # the states of a message still to be delivered


def add_message(session: Session, **fields) -> OutboxMessage | None:
    """A new pending message: into the session (and returned), or into its open batch."""
    fields = {"state": "pending", "attempts": 0, **fields}
    if (rows := bulk.batch_of(session)) is not None:
        rows.add(OutboxMessage, fields)
        return None
    row = OutboxMessage(**fields)
    session.add(row)
    return row


def get_first_post(session: Session, team_id: str, ref: str) -> OutboxMessage | None:
    """The first chat.postMessage queued for `ref`: the message later updates edit."""
    return session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.team_id == team_id, OutboxMessage.ref == ref,
               OutboxMessage.method == "chat.postMessage")
        .order_by(OutboxMessage.id).limit(1)
    ).first()


def list_first_posts(session: Session, team_id: str, refs: list[str]) -> dict[str, OutboxMessage]:
    """`get_first_post` for many refs in one query, without their payloads (enough to point
    an update at: a card's payload is a few KB to decode, a sweep refreshes hundreds)."""
    first: dict[str, OutboxMessage] = {}
    for row in session.scalars(_HEADS.where(OutboxMessage.team_id == team_id,
                                            among(session, OutboxMessage.ref, refs),
                                            OutboxMessage.method == "chat.postMessage")
                               .order_by(OutboxMessage.id)):
        first.setdefault(row.ref, row)
    return first


def list_posted_ts(session: Session, team_id: str) -> list[str]:
    """The Slack ts of every message of the workspace's outbox that was posted."""
    return list(session.scalars(select(OutboxMessage.ts).distinct().where(
        OutboxMessage.team_id == team_id, OutboxMessage.ts.is_not(None))))


def list_due(session: Session, now: datetime, stale_before: datetime, limit: int,
             after_id: int = 0) -> list[OutboxMessage]:
    """Pending rows that are due, and rows whose sender vanished mid-claim, by id after `after_id`,
    in channels free to take a message; without their payload, which is read when a row is
    claimed (it may be rewritten till then)."""
    return list(session.scalars(
        select(OutboxMessage).options(defer(OutboxMessage.payload))
        .where(_claimable(now, stale_before), OutboxMessage.id > after_id, pacing.is_free(now))
        .order_by(OutboxMessage.id).limit(limit)
    ))


def mark_claimed(session: Session, row_id: int, by: str, now: datetime, stale_before: datetime,
                 listed_state: str) -> bool:
    """One conditional UPDATE: exactly one sender can move a row to 'sending', and only from
    the state it was listed in, so the sender knows whether an earlier attempt may have landed."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.state == listed_state,
               _claimable(now, stale_before))
        .values(state="sending", claimed_by=by, claimed_at=now,
                attempts=OutboxMessage.attempts + 1,
                first_attempt_at=func.coalesce(OutboxMessage.first_attempt_at, now))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def mark_dead(session: Session, row_id: int, error: str) -> bool:
    """Give up on a message still waiting (unless a sender has claimed it meanwhile)."""
    return session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.state.in_(WAITING))
        .values(state="dead", last_error=error)
        .execution_options(synchronize_session=False)).rowcount == 1


def get_first_due(session: Session) -> datetime | None:
    """When the earliest message still to be delivered is due (maybe already)."""
    return session.scalar(select(func.min(OutboxMessage.next_attempt_at))
                          .where(OutboxMessage.state.in_(WAITING)))


def count_by_state(session: Session, states: tuple[str, ...]) -> dict[str, int]:
    """How many messages are in each of `states` (read on the state index)."""
    return {state: n for state, n in session.execute(
        select(OutboxMessage.state, func.count()).where(OutboxMessage.state.in_(states))
        .group_by(OutboxMessage.state))}


def mark_held(session: Session, team_id: str, until: datetime) -> int:
    """Hold the workspace's waiting messages until `until` (its token is refused): a sender
    that listed them finds them no longer due when it tries to claim them."""
    return session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.team_id == team_id, OutboxMessage.state.in_(WAITING),
               OutboxMessage.next_attempt_at < until)
        .values(next_attempt_at=until).execution_options(synchronize_session=False)).rowcount


def get_next_due(session: Session, after: datetime) -> datetime | None:
    """When the next waiting row that is not yet due falls due."""
    return session.scalar(select(OutboxMessage.next_attempt_at)
                          .where(OutboxMessage.state.in_(WAITING),
                                 OutboxMessage.next_attempt_at > after)
                          .order_by(OutboxMessage.next_attempt_at).limit(1))


def _claimable(now: datetime, stale_before: datetime):
    return or_(
        OutboxMessage.state.in_(WAITING) & (OutboxMessage.next_attempt_at <= now),
        (OutboxMessage.state == "sending") & (OutboxMessage.claimed_at < stale_before),
    )


def list_dead_errors(session: Session, team_id: str, channel: str | None, method: str,
                     since: datetime, first: int) -> tuple[int, list[str]]:
    """How many messages to `channel` (or of `method`, without one) died in an attempt
    since `since`, and the first `first` different errors they died of."""
    where = [OutboxMessage.team_id == team_id, OutboxMessage.state == "dead",
             OutboxMessage.claimed_at >= since,
             OutboxMessage.channel == channel if channel else
             (OutboxMessage.channel.is_(None) & (OutboxMessage.method == method))]
    count = session.scalar(select(func.count()).select_from(OutboxMessage).where(*where)) or 0
    errors = session.scalars(select(OutboxMessage.last_error).where(*where)
                             .group_by(OutboxMessage.last_error)
                             .order_by(func.min(OutboxMessage.id)).limit(first))
    return count, [e or "no error recorded" for e in errors]


def count_posts_since(session: Session, team_id: str, ref_prefix: str,
                      since: datetime) -> dict[str, int]:
    """Each channel's posts since then whose ref starts so, in one query (the workspace's
    rows of that time: `ix_outbox_team_created`)."""
    return dict(session.execute(
        select(OutboxMessage.channel, func.count())
        .where(OutboxMessage.team_id == team_id, OutboxMessage.created_at >= since,
               OutboxMessage.method == "chat.postMessage",
               OutboxMessage.ref.startswith(ref_prefix))
        .group_by(OutboxMessage.channel)).all())


def replaced_since(session: Session, row: OutboxMessage) -> bool:
    """Whether a later edit of the same message (or view of the same Home) was queued after
    `row`: sending `row` again would put its older content back."""
    if row.method == "chat.update":
        same = OutboxMessage.parent_id == row.parent_id
    elif row.method == "views.publish":
        same = (OutboxMessage.team_id == row.team_id) & (OutboxMessage.ref == row.ref)
    else:
        return False
    return session.scalar(select(OutboxMessage.id).where(
        same, OutboxMessage.method == row.method, OutboxMessage.id > row.id).limit(1)) is not None


def mark_superseded(session: Session, team_id: str, ref: str) -> int:
    """Drop what is still queued for `ref`."""
    return _supersede(session, OutboxMessage.team_id == team_id, OutboxMessage.ref == ref)


_PENDING = unselective(OutboxMessage.state == "pending")  # with keys that say which rows


def _supersede(session: Session, *where) -> int:
    """A conditional UPDATE, so a row a sender has claimed in the meantime is left to it."""
    return session.execute(
        update(OutboxMessage).where(*where, _PENDING)
        .values(state="superseded").execution_options(synchronize_session=False)).rowcount


def rewrite_pending(session: Session, message_id: int, payload: dict) -> bool:
    """Give a still-queued message new content: a conditional UPDATE, so a row a sender has
    claimed in the meantime keeps what it is sending (False: edit it with an update instead)."""
    return session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.state == "pending")
        .values(payload=payload).execution_options(synchronize_session=False)).rowcount == 1


_REWRITE = (update(OutboxMessage.__table__)  # Core: one executemany, as many rows as given
            .where(OutboxMessage.id == bindparam("message_id"), OutboxMessage.state == "pending")
            .values(payload=bindparam("new_payload")))


def rewrite_each_pending(session: Session, payloads: dict[int, dict]) -> set[int]:
    """`rewrite_pending` of many messages in a few statements: which were rewritten. One a
    sender claims between the statements (rare) makes each pending one be tried alone, so
    it may be counted out after all (it is then edited once more, with the same content)."""
    pending = list(session.scalars(select(OutboxMessage.id).where(
        OutboxMessage.id.in_(payloads), _PENDING)))
    if not pending:
        return set()
    params = [{"message_id": i, "new_payload": payloads[i]} for i in pending]
    if session.execute(_REWRITE, params).rowcount == len(pending):
        return set(pending)
    return {i for i in pending if rewrite_pending(session, i, payloads[i])}


_HEADS = select(OutboxMessage).options(defer(OutboxMessage.payload))  # enough to point at


def get_message_heads(session: Session, message_ids: list[int]) -> dict[int, OutboxMessage]:
    """Messages without their payloads, by id (see `get_message_head`)."""
    if not message_ids:
        return {}
    return {m.id: m for m in session.scalars(_HEADS.where(OutboxMessage.id.in_(message_ids)))}


def get_message_head(session: Session, message_id: int) -> OutboxMessage:
    """A message without its payload: enough to point an update at it."""
    return session.scalars(_HEADS.where(OutboxMessage.id == message_id)).one()


def mark_updates_superseded(session: Session, original_ids: list[int]) -> int:
    """Drop the queued edits of messages: newer content says all they would have."""
    return _supersede(session, OutboxMessage.parent_id.in_(original_ids),
                      OutboxMessage.method == "chat.update")


def get_content(session: Session, message_id: int) -> tuple[dict, bool]:
    """What a message says now, and whether it was recalled (both may change till it is claimed)."""
    payload, recalled = session.execute(select(OutboxMessage.payload, OutboxMessage.recalled)
                                        .where(OutboxMessage.id == message_id)).one()
    return payload, recalled


def mark_recalled(session: Session, payload: dict, *where) -> int:
    """Recall the posts matched that may have reached Slack: an attempt without an answer
    ('unknown'), or one a sender is making ('sending'). None is posted again; a copy that
    landed is edited to read as `payload`. (A pending post never left: supersede it.)"""
    return session.execute(
        update(OutboxMessage)
        .where(*where, OutboxMessage.method == "chat.postMessage",
               OutboxMessage.state.in_(("unknown", "sending")))
        .values(recalled=True, payload=payload)
        .execution_options(synchronize_session=False)).rowcount


def mark_team_dead(session: Session, team_id: str, error: str) -> int:
    """Give up on every message of a workspace still waiting (one a sender holds is left to it)."""
    return session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.team_id == team_id, OutboxMessage.state.in_(WAITING))
        .values(state="dead", last_error=error)
        .execution_options(synchronize_session=False)).rowcount
