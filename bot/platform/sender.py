"""The outbox's sender: delivers the rows `bot.platform.outbox` queued.

Each row is claimed with a conditional UPDATE (one winner even with several senders on one
database), in the transaction that claims its channel's next slot (storage/pacing.py), so
senders in every process together keep each channel's pace, and a 429's Retry-After holds
the channel for all of them; channels go side by side, one message in flight each in a
process; 5xx and network errors back off. A post carries its row id as
Slack message metadata: after an attempt that may have landed (no answer, a 5xx, a sender
that died mid-send) it is looked up in its channel before it is posted again; a post
recalled meanwhile (its survey closed) is only looked up, and a copy found edited. A row that
keeps failing is dead-lettered with its edits and replies, logged, and the admins get one
notice per channel and hour. When Slack refuses the token itself, every waiting row is held
(attempts untouched) and tried again after TOKEN_HOLD, and the log says so once.
"""

from __future__ import annotations

import email.utils
import importlib
import itertools
import logging
import math
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.blocks import admin as views
from bot.platform.clock import Clock
from bot.platform.config import OutboxSettings
from bot.platform.failures import TOKEN_REFUSED, token_line
from bot.platform.installations import UNINSTALLED
from bot.platform.outbox import POST, UPLOAD, post, revise, update
from storage import outbox as queries
from storage import pacing
from storage.db import DatabaseUnreachable, hold
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=5)  # a row claimed longer ago than this was lost with its sender
BACKOFF_BASE = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=15)
RETRY_AFTER_DEFAULT = timedelta(seconds=30)  # a 429 whose Retry-After cannot be read
PARENT_POLL = timedelta(seconds=1)  # an edit whose parent is in flight looks again this soon
PACE_POLL = timedelta(milliseconds=50)  # a channel another sender is claiming: look again
PARENT_DEAD = "parent dead"
TOKEN_HOLD = timedelta(minutes=5)  # how long the outbox holds its rows while the token is refused
BATCH = 200
METADATA_TYPE = "alignbot_outbox"  # a post's metadata: {"outbox_id": its row id}
CLOCK_SKEW = timedelta(minutes=1)  # a lookup reads from this long before the first attempt
LOOKUP_PAGE = 100  # messages a history page asks for...
LOOKUP_PAGES = 10  # ...and the pages read before concluding an attempt did not land
NOTICE_REF = "outbox-dead:"
NOTICE_ERRORS = 3  # different errors a dead-letter notice quotes
# Slack answers these with ok=false on a 200: retrying cannot help, so they go straight to dead.
PERMANENT_ERRORS = {
    "channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "user_not_found",
    "cant_update_message", "message_not_found", "msg_too_long", "no_text", "invalid_arguments",
    "missing_scope",
}
# Slack says of these that "some aspect of the operation" may have succeeded.
MAYBE_DONE = {"internal_error", "fatal_error"}


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
class _Outcome:
    # sent | retry (it did not happen) | unknown (it may have) | dead | held (the token) |
    # superseded (recalled, and no copy landed)
    state: str
    ts: str | None = None
    channel: str | None = None
    error: str | None = None
    retry_after: timedelta | None = None


class OutboxSender:
    """Delivers the outbox: `flush()` in the caller's thread, `dispatch()` on a pool of
    `settings.workers` threads. Both share the claims, the pacing and the rule of one
    message in flight per channel, so they can run side by side."""

    def __init__(self, sessions: sessionmaker[Session], client: WebClient, clock: Clock,
                 settings: OutboxSettings, *, admins: tuple[str, ...] = (),
                 name: str | None = None,
                 clients: Callable[[str], WebClient] | None = None):
        self.sessions = sessions
        self.client = client
        # OAuth mode: each row is sent with its workspace's client (its bot token)
        self.clients = clients
        self.clock = clock
        self.settings = settings
        self.admins = admins
        self.name = name or f"sender-{uuid.uuid4().hex[:8]}"
        self.on_settled: Callable[[], None] = lambda: None  # the sender loop's wake-up
        # each settled delivery's outcome, and whether it was a 429 (telemetry's counters)
        self.on_outcome: Callable[[str, bool], None] = lambda outcome, rate_limited: None
        self._refused: dict[str, str] = {}  # workspace → Slack's refusal of its token, logged
        self._interval = timedelta(seconds=1 / settings.rate_per_channel)
        # when each channel is free next, as last read: the database's only moves later
        self._free_at: dict[tuple[str, str], datetime] = {}
        self._busy: set[tuple[str, str]] = set()  # the channels with a message in flight
        self._pooled = 0  # deliveries running on the pool
        self._cond = threading.Condition()  # guards the above and reports; notified on settling
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="outbox")

    def flush(self) -> SendReport:
        """Deliver what is due now in this thread, one message after another in id order (the
        tests, the shell and the sweep job want that order), and report what is left."""
        report = SendReport()
        self._pass(report, pooled=False)
        report.wake(self._next_scheduled(self.clock.now()))
        return report

    def dispatch(self) -> datetime | None:
        """Start what is due on the pool, channels side by side, and say when to look again.
        `on_settled` is called as each delivery ends (the channel's next message may go)."""
        report = SendReport()
        self._pass(report, pooled=True)
        report.wake(self._next_scheduled(self.clock.now()))
        return report.next_due

    def close(self, timeout: float | None = None) -> None:
        """Let the deliveries in flight end (for up to `timeout`), then stop the pool. A row
        still in flight then stays 'sending'; after CLAIM_LEASE a sender looks it up."""
        with self._cond:
            self._cond.wait_for(lambda: not self._pooled, timeout)
        self._pool.shutdown(wait=False)

    def _pass(self, report: SendReport, *, pooled: bool) -> None:
        """One pass over the due rows in id order; a row held back (its channel busy or paced,
        its parent without a ts) waits for a later pass without hiding the rows behind it."""
        now = self.clock.now()
        cursor = 0
        while page := self._due(now, cursor):
            cursor = page[-1].id
            for row in page:
                if pooled and self._pooled >= self.settings.workers:
                    return  # a settling delivery starts the next pass
                if not self._take(row, now, report, wait=not pooled):
                    continue
                if pooled:
                    with self._cond:
                        self._pooled += 1
                    self._pool.submit(self._deliver, row, now, report, pooled=True)
                else:
                    self._deliver(row, now, report)
                    now = self.clock.now()

    # -- selection, pacing and claiming

    def _due(self, now: datetime, after_id: int) -> list[OutboxMessage]:
        with self.sessions.begin() as s:
            return queries.list_due(s, now, now - CLAIM_LEASE, BATCH, after_id)

    def _take(self, row: OutboxMessage, now: datetime, report: SendReport, *, wait: bool) -> bool:
        """Reserve the row's channel in this process and claim the row with the channel's
        slot; the channel is free again here if either fails (the database too)."""
        if not self._reserve(row, now, report):
            return False
        taken = False
        try:
            taken = not self._held(row, now, report) and self._claim(row, report, wait=wait)
            return taken
        finally:
            if not taken:
                self._release(row)

    def _reserve(self, row: OutboxMessage, now: datetime, report: SendReport) -> bool:
        """Take the row's channel, if nothing is in flight there and it was not paced when
        last read."""
        key = _pace_key(row)
        with self._cond:
            if key in self._busy:
                return False  # the channel's next pass follows that delivery
            free = self._free_at.get(key)
            if free and free > now:
                report.wake(free)
                return False
            self._busy.add(key)
            return True

    def _release(self, row: OutboxMessage) -> None:
        with self._cond:
            self._busy.discard(_pace_key(row))
            self._cond.notify_all()

    def _paced(self, row: OutboxMessage, free: datetime, report: SendReport | None = None) -> None:
        """Remember when the row's channel is free next (and wake the report then)."""
        with self._cond:
            self._free_at[_pace_key(row)] = free
            if report is not None:
                report.wake(free)

    def _held(self, row: OutboxMessage, now: datetime, report: SendReport) -> bool:
        """An edit or a reply waits for its parent's ts, and dies with its parent."""
        if row.parent_id is None:
            return False
        with self.sessions.begin() as s:
            parent = queries.get_message_head(s, row.parent_id)
            if parent.ts:
                return False
            if parent.state == "dead":
                if queries.mark_dead(s, row.id, PARENT_DEAD):
                    log.warning("outbox row %s (%s, ref %s) is dead with its parent %s",
                                row.id, row.method, row.ref, parent.id)
                    with self._cond:
                        report.dead += 1
                return True
        with self._cond:  # look again when the parent is due, or soon if a sender has it
            report.wake(max(now + PARENT_POLL, parent.next_attempt_at))
        return True

    def _claim(self, row: OutboxMessage, report: SendReport, *, wait: bool) -> bool:
        """Claim the channel's slot and the row from the state it was listed in, and read what
        it says now: a queued message may have been rewritten since it was listed (a burst
        summary that grew). The slot is used only if the row is won. Unless it may `wait`
        (one message after another anyway), a channel another sender is claiming in is
        skipped for now."""
        now = self.clock.now()  # later than the pass's: the channel's schedule starts at the send
        with self.sessions.begin() as s:
            pace = pacing.lock(s, row.team_id, pacing.channel_of(row), self._quiet(now), wait=wait)
            if pace is None:  # another sender is claiming in this channel right now
                report.wake(now + PACE_POLL)
                return False
            if pacing.free_at(pace) > now:
                self._paced(row, pacing.free_at(pace), report)
                return False
            if not queries.mark_claimed(s, row.id, self.name, now, now - CLAIM_LEASE, row.state):
                return False
            pacing.advance(pace, now, self._interval, self.settings.burst)
            row.payload, row.recalled = queries.get_content(s, row.id)
            free = pacing.free_at(pace)
        self._paced(row, free)
        return True

    def _hold(self, row: OutboxMessage, wait: timedelta, report: SendReport) -> None:
        """Slack's Retry-After holds the channel, for every sender."""
        now = self.clock.now()
        with self.sessions.begin() as s:
            pacing.hold(s, row.team_id, pacing.channel_of(row), now + wait, self._quiet(now))
        self._paced(row, now + wait, report)

    def _quiet(self, now: datetime) -> datetime:
        """The schedule of a channel that may take its whole burst at `now`."""
        return now - self._interval * (self.settings.burst - 1)

    def _next_scheduled(self, now: datetime) -> datetime | None:
        with self.sessions.begin() as s:
            return min(filter(None, (queries.get_next_due(s, now), pacing.get_next_free(s, now))),
                       default=None)

    # -- delivery

    def _deliver(self, row: OutboxMessage, now: datetime, report: SendReport, *,
                 pooled: bool = False) -> None:
        """Attempt the row and settle it, whatever happens: no row is left 'sending'."""
        try:
            outcome = self._attempt(row)
        except Exception as exc:  # a surprise (a bug, an odd failure) is retried, never lost
            log.exception("outbox row %s: unexpected failure while sending", row.id)
            outcome = _Outcome("unknown", error=f"unexpected: {exc!r}")
        try:
            if outcome.retry_after is not None:
                self._hold(row, outcome.retry_after, report)
            self._settle(row, outcome, now, report)
        except DatabaseUnreachable as exc:  # after CLAIM_LEASE a sender looks the row up
            log.warning("outbox row %s: could not record its outcome (%s): %s", row.id,
                        outcome.state, exc)
        except Exception:
            log.exception("outbox row %s: could not record its outcome (%s)", row.id, outcome.state)
        finally:
            if pooled:
                with self._cond:
                    self._pooled -= 1
            self._release(row)
            self.on_settled()

    def _attempt(self, row: OutboxMessage) -> _Outcome:
        client = self.clients(row.team_id) if self.clients else self.client
        if self.clients and client.token is None:  # not installed (any more): never sent
            return _Outcome("dead", error=UNINSTALLED)
        args = self._args(row)
        if row.method == UPLOAD:  # at least once: a file carries no metadata to look up
            return self._upload(client, row, args)
        if row.method != POST:  # an edit or a Home view: repeating it is harmless
            return self._call(client, row.method, args)
        if row.recalled:
            return self._recall(client, row, args)
        if row.state != "pending":  # an earlier attempt may have landed: look before posting
            found = self._look_up(client, row, args)
            if found is not None:
                return found
        args["metadata"] = {"event_type": METADATA_TYPE, "event_payload": {"outbox_id": row.id}}
        return self._call(client, POST, args)

    def _args(self, row: OutboxMessage) -> dict[str, Any]:
        args = dict(row.payload)
        if row.parent_id is not None:
            with self.sessions.begin() as s:
                parent = queries.get_message_head(s, row.parent_id)
            channel = parent.posted_channel or parent.channel
            if row.method == "chat.update":
                args.update(channel=channel, ts=parent.ts)
            elif row.method in (POST, UPLOAD):  # in the thread of an earlier post
                args.update(channel=channel, thread_ts=parent.ts)
        return args

    def _call(self, client: WebClient, method: str, args: dict[str, Any]) -> _Outcome:
        try:
            resp = client.api_call(method, json=args)
        except Exception as exc:
            return _failure(exc, self.clock.now())
        return _Outcome("sent", ts=resp.get("ts"), channel=resp.get("channel"))

    def _recall(self, client: WebClient, row: OutboxMessage, args: dict[str, Any]) -> _Outcome:
        """A recalled post is never posted: an earlier attempt that landed is edited to read
        as the row's payload now (the recall's), and without one the row is done."""
        args.setdefault("channel", row.channel)  # the recall's payload names no channel
        found = self._look_up(client, row, args)
        if found is None:
            return _Outcome("superseded")
        if found.state != "sent":
            return found
        edit = self._call(client, "chat.update", {**row.payload, "channel": found.channel,
                                                  "ts": found.ts})
        return found if edit.state == "sent" else edit

    def _look_up(self, client: WebClient, row: OutboxMessage,
                 args: dict[str, Any]) -> _Outcome | None:
        """The post, sent, if an earlier attempt landed; None to post it (again). A lookup
        that fails is tried again later; one Slack refuses (the bot is not in the channel, a
        scope is missing) cannot be made, so the message is posted: at least once, not at most."""
        try:
            ts, channel = self._find(client, row, args)
        except Exception as exc:
            failure = _failure(exc, self.clock.now())
            if failure.state == "held":
                return failure
            if failure.state != "dead":
                return _Outcome("unknown", error=f"looking for an earlier attempt: {failure.error}",
                                retry_after=failure.retry_after)
            log.warning("outbox row %s: cannot look for an earlier attempt in %s (%s); %s",
                        row.id, args.get("channel"), failure.error,
                        "it was recalled: dropped" if row.recalled else "posting it again")
            return None
        return _Outcome("sent", ts=ts, channel=channel) if ts else None

    def _find(self, client: WebClient, row: OutboxMessage,
              args: dict[str, Any]) -> tuple[str | None, str]:
        """Look for the post by its metadata key in its channel (or its thread) since just
        before its first attempt."""
        channel = args["channel"]
        if channel.startswith(("U", "W")):  # a DM by user id: its history is the DM channel's
            channel = client.conversations_open(users=channel)["channel"]["id"]
        since = (row.first_attempt_at or row.created_at) - CLOCK_SKEW
        query = {"channel": channel, "oldest": f"{since.timestamp():.6f}",
                 "include_all_metadata": True, "limit": LOOKUP_PAGE}
        pages = (client.conversations_replies(ts=args["thread_ts"], **query)
                 if args.get("thread_ts") else client.conversations_history(**query))
        for page in itertools.islice(pages, LOOKUP_PAGES):
            for message in page.get("messages") or ():
                meta = message.get("metadata") or {}
                if (meta.get("event_type") == METADATA_TYPE
                        and (meta.get("event_payload") or {}).get("outbox_id") == row.id):
                    return message.get("ts"), channel
        return None, channel

    def _settle(self, row: OutboxMessage, outcome: _Outcome, now: datetime,
                report: SendReport) -> None:
        # A 429 is Slack pacing us, not a failed delivery: it does not use up an attempt.
        attempts = row.attempts + (0 if outcome.retry_after is not None else 1)
        if outcome.state in ("retry", "unknown") and attempts >= self.settings.max_attempts:
            outcome = _Outcome("dead", error=f"gave up after {attempts} attempts: {outcome.error}")
        done, held = self.clock.now(), 0
        with self.sessions.begin() as s:
            fresh = s.get(OutboxMessage, row.id)
            if outcome.state == "sent":
                fresh.state, fresh.ts, fresh.posted_channel = "sent", outcome.ts, outcome.channel
                fresh.sent_at, fresh.last_error = done, None
                if fresh.recalled and not row.recalled:  # recalled while it was being posted
                    update(s, fresh, fresh.payload, now=done)
            elif outcome.state == "superseded":
                fresh.state = "superseded"
            elif outcome.state == "dead":
                fresh.state, fresh.last_error = "dead", outcome.error
                log.error("outbox row %s (%s to %s, ref %s) is dead: %s",
                          row.id, row.method, row.channel, row.ref, outcome.error)
                if outcome.error != UNINSTALLED:  # no one there to tell
                    self._notify_admins(s, fresh, now)
            elif outcome.state == "held":  # not this message's fault: all wait, attempts kept
                maybe_posted = row.state != "pending" and row.method == POST
                fresh.state = "unknown" if maybe_posted else "pending"
                fresh.attempts = row.attempts
                fresh.last_error = f"held: Slack refuses the bot token ({outcome.error})"
                fresh.next_attempt_at = done + TOKEN_HOLD
                held = 1 + queries.mark_held(s, row.team_id, fresh.next_attempt_at)
            elif queries.replaced_since(s, row):
                # a newer edit or view was queued meanwhile: this one, tried after it, would
                # put the older content back
                fresh.state, fresh.last_error = "superseded", outcome.error
            else:  # only a post can land twice; an edit or a view is simply tried again
                maybe_posted = outcome.state == "unknown" and row.method == POST
                fresh.state = "unknown" if maybe_posted else "pending"
                fresh.attempts = attempts
                fresh.next_attempt_at = done + (outcome.retry_after or _backoff(attempts))
                fresh.last_error = outcome.error
        with self._cond:
            if outcome.state == "sent":
                report.sent += 1
            elif outcome.state == "dead":
                report.dead += 1
            elif fresh.state != "superseded":
                report.retried += 1
                report.wake(fresh.next_attempt_at)
            self._say_refused(row.team_id, outcome, held)
        self.on_outcome(outcome.state, outcome.retry_after is not None)

    def _say_refused(self, team_id: str, outcome: _Outcome, held: int) -> None:
        """Once, not per row: Slack refuses the token (the rows wait); and once it takes it again."""
        if outcome.state == "held" and self._refused.get(team_id) != outcome.error:
            log.error("outbox: %s; its %d waiting message(s) are held and tried again every "
                      "%d minutes", token_line(outcome.error, team_id), held,
                      TOKEN_HOLD.total_seconds() // 60)
            self._refused[team_id] = outcome.error
        elif outcome.state == "sent" and self._refused.pop(team_id, None):
            log.warning("outbox: Slack takes workspace %s's bot token again; the held messages "
                        "go out", team_id)

    def _upload(self, client: WebClient, row: OutboxMessage, args: dict[str, Any]) -> _Outcome:
        where = {"channel": args.get("channel") or row.channel}
        if args.get("thread_ts"):
            where["thread_ts"] = args["thread_ts"]
        module, _, name = args["make"].partition(":")
        try:
            content = getattr(importlib.import_module(module), name)(**args["args"])
        except Exception as exc:  # a file that cannot be made holds back nothing else
            log.exception("outbox row %s: could not make %s", row.id, args["filename"])
            return _Outcome("dead", error=f"could not make the file: {exc}")
        try:
            client.files_upload_v2(**where, filename=args["filename"], title=args["title"],
                                        content=content)
        except Exception as exc:
            return _failure(exc, self.clock.now())
        return _Outcome("sent", channel=where["channel"])

    def _notify_admins(self, session: Session, dead: OutboxMessage, now: datetime) -> None:
        """One notice to each admin per channel and hour, rewritten as more messages die there."""
        if dead.ref and dead.ref.startswith(NOTICE_REF):
            return  # never notify about a failed notice: that way lies a loop
        hour = now.replace(minute=0, second=0, microsecond=0)
        count, errors = queries.list_dead_errors(session, dead.team_id, dead.channel, dead.method,
                                                 hour, NOTICE_ERRORS)
        notice = views.dead_letters(count, dead.channel, hour, list(errors), dead.id)
        hold(session, f"{NOTICE_REF}{dead.team_id}")  # senders in other processes: one notice
        for admin in self.admins:
            ref = f"{NOTICE_REF}{dead.channel or dead.method}:{hour:%Y-%m-%dT%H}:{admin}"
            sent = queries.get_first_post(session, dead.team_id, ref)
            if sent is None:
                post(session, dead.team_id, admin, notice, now=now, ref=ref)
            else:
                revise(session, sent.id, admin, notice, now=now)


def _pace_key(row: OutboxMessage) -> tuple[str, str]:
    return row.team_id, pacing.channel_of(row)


def _backoff(attempts: int) -> timedelta:
    return min(BACKOFF_MAX, BACKOFF_BASE * (2 ** max(0, attempts - 1)))


def _failure(exc: Exception, now: datetime) -> _Outcome:
    """What a failed call means: retry (it did not happen), unknown (it may have), or dead."""
    if not isinstance(exc, SlackApiError):
        reason = exc.reason if isinstance(exc, URLError) else exc
        if isinstance(reason, ConnectionRefusedError | socket.gaierror):
            return _Outcome("retry", error=f"network: {exc}")  # the request never left
        return _Outcome("unknown", error=f"no answer: {exc!r}")  # a timeout, a dropped connection
    resp = exc.response
    status = resp.status_code
    error = resp.data.get("error") if isinstance(resp.data, dict) else None
    if status == 429 or error == "ratelimited":
        wait = next((v for k, v in (resp.headers or {}).items() if k.lower() == "retry-after"), None)
        return _Outcome("retry", error=f"rate limited ({status})", retry_after=retry_after(wait, now))
    if status >= 500 or error in MAYBE_DONE:
        return _Outcome("unknown", error=f"Slack answered {status} {error or ''}".rstrip())
    if error in TOKEN_REFUSED:  # no call can succeed: not one row's failure
        return _Outcome("held", error=error)
    error = error or f"status {status}"
    return _Outcome("dead" if error in PERMANENT_ERRORS else "retry", error=error)


def retry_after(value: Any, now: datetime) -> timedelta:
    """How long a 429 asks us to wait: seconds, whole or not, or an HTTP date. Anything else
    waits RETRY_AFTER_DEFAULT; no wait is negative or longer than BACKOFF_MAX."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return RETRY_AFTER_DEFAULT
        seconds = (when.replace(tzinfo=when.tzinfo or UTC) - now).total_seconds()
    if not math.isfinite(seconds):
        return RETRY_AFTER_DEFAULT
    return timedelta(seconds=min(max(seconds, 0.0), BACKOFF_MAX.total_seconds()))
