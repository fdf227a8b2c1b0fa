"""The outbox: every message the bot intends to post or update, and the sender that delivers it.

Writers call `post()` / `update()` inside the transaction that
caused the message, so the message exists exactly when the change does. The
`OutboxSender` delivers rows: each row is claimed with a conditional UPDATE (one
winner even with several senders on one database), channels are paced with a
token bucket, 429s wait out Retry-After, 5xx and network errors back off, and a
row that keeps failing is dead-lettered with a log line and an admin notice.
"""

from __future__ import annotations

import importlib
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import OutboxSettings
from storage import outbox as queries
from storage.bulk import Rows
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=5)  # a row claimed longer ago than this was lost with its sender
BACKOFF_BASE = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=15)
BATCH = 200
# Slack answers these with ok=false on a 200: retrying cannot help, so they go straight to dead.
PERMANENT_ERRORS = {
    "channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "invalid_auth",
    "account_inactive", "user_not_found", "cant_update_message", "message_not_found",
    "msg_too_long", "no_text", "invalid_arguments", "not_authed", "missing_scope",
}


# ------------------------------------------------------------------ writing


def post(session: Session, team_id: str, channel: str, message: dict[str, Any], *, now: datetime,
         ref: str | None = None, dedupe_key: str | None = None,
         thread_of: OutboxMessage | None = None, not_before: datetime | None = None,
         rows: Rows | None = None) -> OutboxMessage | None:
    """Queue a chat.postMessage to a channel id (or a user id, for a DM), maybe in a thread.
    With `rows`, the message is written with the batch's other rows (and None returned)."""
    return _add(session, team_id, "chat.postMessage", channel, {"channel": channel, **message},
                now=now, ref=ref, dedupe_key=dedupe_key, parent=thread_of, not_before=not_before,
                rows=rows)


def update(session: Session, original: OutboxMessage, message: dict[str, Any], *,
           now: datetime, rows: Rows | None = None) -> OutboxMessage | None:
    """Queue a chat.update of an earlier post; it is sent once the original has its ts."""
    return _add(session, original.team_id, "chat.update", original.channel, dict(message),
                now=now, ref=original.ref, parent=original, rows=rows)


def revise(session: Session, original_id: int, channel: str, message: dict[str, Any], *,
           now: datetime) -> None:
    """Make a post to `channel` read as `message`: rewritten while it is still queued, else
    edited in place by one chat.update that replaces any edit still queued."""
    queries.mark_updates_superseded(session, original_id)  # an older edit must not follow
    if not queries.rewrite_pending(session, original_id, {"channel": channel, **message}):
        update(session, queries.get_message_head(session, original_id), message, now=now)


UPLOAD = "files.uploadV2"  # not one Web API method: slack_sdk's files_upload_v2, three calls


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
         not_before: datetime | None = None, rows: Rows | None = None) -> OutboxMessage | None:
    if parent is not None and parent.id is None:
        session.flush()  # the parent needs its id before we can point at it
    return queries.add_message(
        session, rows, team_id=team_id, method=method, channel=channel, payload=payload, ref=ref,
        dedupe_key=dedupe_key, parent_id=parent.id if parent is not None else None,
        next_attempt_at=not_before or now, created_at=now)


# ------------------------------------------------------------------ sending


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    next_due: datetime | None = None  # when the sender has something to do next

    def wake(self, when: datetime | None) -> None:
        if when is not None and (self.next_due is None or when < self.next_due):
            self.next_due = when


@dataclass
class _Bucket:
    """Token bucket for one channel: `burst` at once, then `rate` per second."""

    tokens: float
    at: datetime
    blocked_until: datetime | None = None

    def ready_at(self, now: datetime, rate: float, burst: int) -> datetime:
        if self.blocked_until and self.blocked_until > now:
            return self.blocked_until
        self.tokens = min(burst, self.tokens + (now - self.at).total_seconds() * rate)
        self.at = now
        if self.tokens >= 1:
            return now
        return now + timedelta(seconds=(1 - self.tokens) / rate)


@dataclass
class _Outcome:
    state: str  # sent | retry | dead
    ts: str | None = None
    channel: str | None = None
    error: str | None = None
    retry_after: timedelta | None = None


class OutboxSender:
    def __init__(self, sessions: sessionmaker[Session], client: WebClient, clock: Clock,
                 settings: OutboxSettings, *, admins: tuple[str, ...] = (),
                 on_delivered: Callable[[OutboxMessage], None] | None = None,
                 name: str | None = None):
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.settings = settings
        self.admins = admins
        self.on_delivered = on_delivered
        self.name = name or f"sender-{uuid.uuid4().hex[:8]}"
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()  # the sender loop and the sweep job share one sender

    def flush(self, limit: int = 10_000) -> SendReport:
        """Deliver every row that is due now and allowed by pacing; report what is left."""
        with self._lock:
            return self._flush(limit)

    def _flush(self, limit: int) -> SendReport:
        """One pass over the due rows in id order; a row held back by its channel's pacing
        waits for the next flush without hiding the rows behind it."""
        report = SendReport()
        now = self.clock.now()
        cursor = 0
        while report.sent + report.dead < limit:
            page = self._due(now, cursor)
            if not page:
                break
            cursor = page[-1].id
            for row in page:
                ready = self._ready_at(row, now)
                if ready > now:
                    report.wake(ready)
                elif self._claim(row, now):  # else another sender has it
                    self._deliver(row, now, report)
                    now = self.clock.now()
        report.wake(self._next_scheduled(now))
        return report

    # -- selection and claiming

    def _due(self, now: datetime, after_id: int) -> list[OutboxMessage]:
        with self.sessions.begin() as s:
            return queries.list_due(s, now, now - CLAIM_LEASE, BATCH, after_id)

    def _ready_at(self, row: OutboxMessage, now: datetime) -> datetime:
        if row.parent_id is not None and self._parent(row) is None:
            return now + timedelta(seconds=1)  # wait until the original message has its ts
        bucket = self._buckets.setdefault(_pace_key(row),
                                          _Bucket(tokens=self.settings.burst, at=now))
        return bucket.ready_at(now, self.settings.rate_per_channel, self.settings.burst)

    def _parent(self, row: OutboxMessage) -> OutboxMessage | None:
        with self.sessions.begin() as s:
            parent = s.get(OutboxMessage, row.parent_id)
        return parent if parent is not None and parent.ts else None

    def _claim(self, row: OutboxMessage, now: datetime) -> bool:
        """Claim the row and read what it says now: a queued message may have been
        rewritten since it was listed (a burst summary that grew)."""
        with self.sessions.begin() as s:
            if not queries.mark_claimed(s, row.id, self.name, now, now - CLAIM_LEASE):
                return False
            row.payload = queries.get_payload(s, row.id)
            return True

    def _next_scheduled(self, now: datetime) -> datetime | None:
        with self.sessions.begin() as s:
            return queries.get_next_due(s, now)

    # -- delivery

    def _deliver(self, row: OutboxMessage, now: datetime, report: SendReport) -> None:
        bucket = self._buckets[_pace_key(row)]
        bucket.tokens -= 1
        outcome = self._call(row)
        if outcome.retry_after is not None:
            bucket.blocked_until = now + outcome.retry_after
        attempts = row.attempts + 1
        if outcome.state == "retry" and attempts >= self.settings.max_attempts:
            outcome = _Outcome("dead", error=f"gave up after {attempts} attempts: {outcome.error}")
        with self.sessions.begin() as s:
            fresh = s.get(OutboxMessage, row.id)
            if outcome.state == "sent":
                fresh.state, fresh.ts, fresh.sent_at = "sent", outcome.ts, self.clock.now()
                fresh.posted_channel = outcome.channel
                fresh.last_error = None
                report.sent += 1
            elif outcome.state == "retry":
                fresh.state = "pending"
                fresh.next_attempt_at = now + (outcome.retry_after or _backoff(attempts))
                fresh.last_error = outcome.error
                report.retried += 1
                report.wake(fresh.next_attempt_at)
            else:
                fresh.state, fresh.last_error = "dead", outcome.error
                report.dead += 1
                log.error("outbox row %s (%s to %s, ref %s) is dead: %s",
                          row.id, row.method, row.channel, row.ref, outcome.error)
                self._notify_admins(s, fresh, now)
        if outcome.state == "sent" and self.on_delivered:
            self.on_delivered(fresh)

    def _call(self, row: OutboxMessage) -> _Outcome:
        args = dict(row.payload)
        if row.method == UPLOAD:
            return self._upload(row, args)
        if row.method == "chat.update":
            parent = self._parent(row)
            args.update(channel=parent.posted_channel or parent.channel, ts=parent.ts)
        elif row.method == "chat.postMessage" and row.parent_id is not None:
            parent = self._parent(row)  # a reply threaded under an earlier post
            args.update(channel=parent.posted_channel or parent.channel, thread_ts=parent.ts)
        try:
            resp = self.client.api_call(row.method, json=args)
        except SlackApiError as exc:
            return _failure(exc)
        except (URLError, OSError, TimeoutError) as exc:
            return _Outcome("retry", error=f"network: {exc}")
        return _Outcome("sent", ts=resp.get("ts"), channel=resp.get("channel"))

    def _upload(self, row: OutboxMessage, args: dict[str, Any]) -> _Outcome:
        parent = self._parent(row) if row.parent_id is not None else None
        where = {"channel": row.channel} if parent is None else \
            {"channel": parent.posted_channel or parent.channel, "thread_ts": parent.ts}
        module, _, name = args["make"].partition(":")
        try:
            content = getattr(importlib.import_module(module), name)(**args["args"])
        except Exception as exc:  # a file that cannot be made holds back nothing else
            log.exception("outbox row %s: could not make %s", row.id, args["filename"])
            return _Outcome("dead", error=f"could not make the file: {exc}")
        try:
            self.client.files_upload_v2(**where, filename=args["filename"], title=args["title"],
                                        content=content)
        except SlackApiError as exc:
            return _failure(exc)
        except (URLError, OSError, TimeoutError) as exc:
            return _Outcome("retry", error=f"network: {exc}")
        return _Outcome("sent", channel=where["channel"])

    def _notify_admins(self, session: Session, dead: OutboxMessage, now: datetime) -> None:
        if dead.ref and dead.ref.startswith("outbox-dead:"):
            return  # never notify about a failed notice: that way lies a loop
        for admin in self.admins:
            text = (f":warning: A message could not be delivered to Slack after "
                    f"{dead.attempts} attempts ({dead.method} to {dead.channel or 'home'}, "
                    f"about {dead.ref or 'n/a'}): {dead.last_error}. It is kept in the outbox "
                    f"as row {dead.id}.")
            post(session, dead.team_id, admin, {"text": text}, now=now,
                 ref=f"outbox-dead:{dead.id}")


def _pace_key(row: OutboxMessage) -> str:
    return row.channel or row.method


def _backoff(attempts: int) -> timedelta:
    return min(BACKOFF_MAX, BACKOFF_BASE * (2 ** max(0, attempts - 1)))


def _failure(exc: SlackApiError) -> _Outcome:
    resp = exc.response
    status = resp.status_code
    if status == 429:
        seconds = int(resp.headers.get("Retry-After") or resp.headers.get("retry-after") or 30)
        return _Outcome("retry", error="rate limited (429)", retry_after=timedelta(seconds=seconds))
    if status >= 500:
        return _Outcome("retry", error=f"Slack answered {status}")
    error = (resp.data or {}).get("error", f"status {status}") if isinstance(resp.data, dict) \
        else f"status {status}"
    if error == "ratelimited":
        return _Outcome("retry", error=error, retry_after=timedelta(seconds=30))
    return _Outcome("dead" if error in PERMANENT_ERRORS else "retry", error=error)
