"""The outbox: every message the bot intends to post or update, queued in the transaction
that caused it.

Writers call `post()` / `update()` inside the transaction that caused the message, so the
message exists exactly when the change does; `bot.platform.sender` delivers the rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from storage import outbox as queries
from storage.models import OutboxMessage

POST = "chat.postMessage"
UPLOAD = "files.uploadV2"  # not one Web API method: slack_sdk's files_upload_v2, three calls


def post(session: Session, team_id: str, channel: str, message: dict[str, Any], *, now: datetime,
         ref: str | None = None, dedupe_key: str | None = None,
         thread_of: OutboxMessage | None = None, not_before: datetime | None = None) -> OutboxMessage | None:
    """Queue a chat.postMessage to a channel id (or a user id, for a DM), maybe in a thread.
    In a batch (`storage.bulk.batch`) it is written with the batch's rows (and None returned)."""
    return _add(session, team_id, POST, channel, {"channel": channel, **message},
                now=now, ref=ref, dedupe_key=dedupe_key, parent=thread_of, not_before=not_before)


def update(session: Session, original: OutboxMessage, message: dict[str, Any], *,
           now: datetime) -> OutboxMessage | None:
    """Queue a chat.update of an earlier post; it is sent once the original has its ts."""
    return _add(session, original.team_id, "chat.update", original.channel, dict(message),
                now=now, ref=original.ref, parent=original)


def revise(session: Session, original_id: int, channel: str, message: dict[str, Any], *,
           now: datetime) -> None:
    """Make a post to `channel` read as `message`: rewritten while it is still queued, else
    edited in place by one chat.update that replaces any edit still queued."""
    revise_each(session, [(original_id, channel, message)], now=now)


def revise_each(session: Session, revisions: list[tuple[int, str, dict[str, Any]]], *,
                now: datetime) -> None:
    """`revise` of many posts (original id, channel, message) in a few statements for all of
    them, not a few each (a webhook grows a dozen reps' bursts): their older edits dropped,
    the posts still queued rewritten, the others edited."""
    if not revisions:
        return
    queries.mark_updates_superseded(session, [original for original, _, _ in revisions])
    rewritten = queries.rewrite_each_pending(
        session, {original: {"channel": channel, **message} for original, channel, message in revisions})
    sent = [(original, message) for original, _, message in revisions if original not in rewritten]
    heads = queries.get_message_heads(session, [original for original, _ in sent])
    for original, message in sent:
        update(session, heads[original], message, now=now)



def upload(session: Session, team_id: str, channel: str, filename: str, title: str, *,
           make: str, args: dict[str, Any], now: datetime, ref: str | None = None,
           thread_of: OutboxMessage | None = None) -> OutboxMessage | None:
    """Queue a file for a channel, maybe in the thread of an earlier post (sent once that
    post has its ts). Its bytes are made at delivery by `make` ("module:function", called
    with `args`, plain JSON): drawing a chart takes a second or two, which no transaction
    (and no ack) should wait for."""
    payload = {"filename": filename, "title": title, "make": make, "args": args}
    return _add(session, team_id, UPLOAD, channel, payload, now=now, ref=ref, parent=thread_of)


def publish(session: Session, team_id: str, user_id: str, view: dict[str, Any], *,
            now: datetime) -> None:
    """Queue a views.publish of someone's Home tab. Only the newest view matters, so one
    still queued for them is dropped; one a sender has claimed already goes out first.
    A Home has no channel: all of them share one pace, as Slack limits the method."""
    ref = f"home:{user_id}"
    queries.mark_superseded(session, team_id, ref)
    _add(session, team_id, "views.publish", None, {"user_id": user_id, "view": view}, now=now,
         ref=ref)


def _add(session: Session, team_id: str, method: str, channel: str | None,
         payload: dict[str, Any], *, now: datetime, ref: str | None,
         dedupe_key: str | None = None, parent: OutboxMessage | None = None,
         not_before: datetime | None = None) -> OutboxMessage | None:
    if parent is not None and parent.id is None:
        session.flush()  # the parent needs its id before we can point at it
    return queries.add_message(
        session, team_id=team_id, method=method, channel=channel, payload=payload, ref=ref,
        dedupe_key=dedupe_key, parent_id=parent.id if parent is not None else None,
        next_attempt_at=not_before or now, created_at=now)
