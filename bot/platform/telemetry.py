"""Prometheus metrics (`/metrics`) and readiness (`/readyz`).

Counters move where things happen: requests (the app's dispatch, the webhook route), the
outbox sender's outcomes (its `on_outcome` hook), jobs (the scheduler's `run_job`) and
imported rows. The outbox's queue is read from the database at scrape time, within
SCRAPE_TIMEOUT: a slow or locked database leaves those numbers out of one scrape rather
than holding it.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily

from bot.platform import logs
from bot.platform.clock import Clock
from bot.platform.services import Services
from storage import outbox as queries
from storage.db import ping, time_limit
from storage.migrate import current_revision, head_revision

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 2.0  # seconds a scrape waits for the outbox's numbers
SLOW_JOB = 1.0  # seconds: a job run this long is logged at INFO (else DEBUG)
SLOW_ACK = 1.0  # seconds: a Slack request answered this late is logged at INFO (Slack waits 3)
WAITING = ("pending", "unknown", "sending")  # still to be delivered

REQUESTS = Counter("alignbot_requests", "Requests answered: Slack's (command, action, view, "
                   "event) and CRM webhooks, by HTTP status", ["kind", "status"], registry=None)
ACK_SECONDS = Histogram("alignbot_ack_seconds", "Seconds from a request's arrival to its answer "
                        "(Slack's ack; Slack gives up after 3)", ["kind"], registry=None,
                        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10))
SENDS = Counter("alignbot_outbox_sends", "Outbox deliveries by outcome: sent, retry, unknown "
                "(it may have landed), dead, held (Slack refuses the token)", ["outcome"],
                registry=None)
RATE_LIMITED = Counter("alignbot_outbox_rate_limited", "Slack's 429 answers to the outbox sender",
                       registry=None)
JOB_RUNS = Counter("alignbot_job_runs", "Scheduled job runs by job id and outcome (ok, waiting: "
                   "the database or Slack's token, failed: a bug)", ["job", "outcome"],
                   registry=None)
JOB_SECONDS = Histogram("alignbot_job_duration_seconds", "Seconds a job run took", ["job"],
                        registry=None, buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300))
IMPORT_ROWS = Counter("alignbot_import_rows", "Records imported, by source (csv, webhook) and "
                      "result (accepted, rejected)", ["source", "result"], registry=None)
COUNTERS = (REQUESTS, ACK_SECONDS, SENDS, RATE_LIMITED, JOB_RUNS, JOB_SECONDS, IMPORT_ROWS)


# -- where things happen


@dataclass
class Answered:
    status: int = 500  # what the request was answered, if its handler says


REFUSED = 401  # a request not signed as it should be: nothing of it is logged


def request(kind: str, what: Any, team_id: str | None, clock: Clock) -> Timed:
    """One request of `kind`, about `what` (a command, an action id, an entity): its log lines
    carry a request id (and `team_id`, if known before it is verified); when it is answered,
    it is counted, timed and logged in one line. `with request(...) as answered:`."""
    return Timed(kind, what, team_id, clock)


class Timed:
    """`request`'s context: a class rather than a generator, and the counters bound once a
    kind and status, since every request of every kind goes through it."""

    __slots__ = ("kind", "what", "clock", "fields", "answered", "started", "_token")

    def __init__(self, kind: str, what: Any, team_id: str | None, clock: Clock):
        self.kind, self.what, self.clock = kind, what, clock
        # A correlation id for the request's log lines, not a secret: 64 random bits from
        # `random` (no uuid4, which reads the OS's randomness and formats 128 bits).
        self.fields = {"request_id": f"{random.getrandbits(64):016x}"}
        if team_id is not None:
            self.fields["team_id"] = team_id

    def __enter__(self) -> Answered:
        self.answered, self.started = Answered(), self.clock.now()
        self._token = logs.enter(self.fields)
        return self.answered

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            took = (self.clock.now() - self.started).total_seconds()
            status = self.answered.status
            requests, seconds = _bound(self.kind, status)
            requests.inc()
            seconds.observe(took)
            if log.isEnabledFor(level := _level(self.kind, status, took)):
                shown = _shown(self.what) if status != REFUSED else "?"
                log.log(level, "%s %s answered %s in %.3f s", self.kind, shown, status, took,
                        extra={"duration_s": took})
        finally:
            logs.leave(self._token)


def _level(kind: str, status: int, took: float) -> int:
    """A Slack request answered well and in time is routine: a DEBUG line (/metrics counts
    and times it). A webhook (records arriving), a refusal, a failure or a slow ack is INFO."""
    routine = kind != "webhook" and status < 400 and took < SLOW_ACK
    return logging.DEBUG if routine else logging.INFO


_BOUND: dict[tuple[str, int], tuple[Any, Any]] = {}  # (kind, status): as many as the labels


def _bound(kind: str, status: int) -> tuple[Any, Any]:
    """REQUESTS' and ACK_SECONDS' series of a kind and status (`labels()` takes a lock and
    builds its key each call)."""
    found = _BOUND.get((kind, status))
    if found is None:  # two threads may both bind it: the same series either way
        found = _BOUND[kind, status] = (REQUESTS.labels(kind, str(status)),
                                        ACK_SECONDS.labels(kind))
    return found


def slack_request(body: Any) -> tuple[str, Any]:
    """A Slack request's kind (a metric's label) and what it is about (our ids and Slack's
    types, never what people typed), from its parsed body, whatever shape that has."""
    body = body if isinstance(body, dict) else {}
    kind = body.get("type")
    if body.get("command"):
        return "command", body["command"]
    if kind == "event_callback":
        return "event", _part(body, "event").get("type")
    if kind in ("view_submission", "view_closed"):
        return "view", _part(body, "view").get("callback_id")
    if kind in ("block_actions", "block_suggestion"):
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions else body
        return "action", first.get("action_id") if isinstance(first, dict) else None
    if kind in ("shortcut", "message_action"):
        return "action", body.get("callback_id")
    return "other", kind


def _part(body: dict[str, Any], key: str) -> dict[str, Any]:
    part = body.get(key)
    return part if isinstance(part, dict) else {}


SHOWN = re.compile(r"[\w./:-]{1,64}", re.ASCII)


def _shown(value: Any) -> str:
    """An id or a type from a request, fit for a log line (no line breaks, not long)."""
    return value if isinstance(value, str) and SHOWN.fullmatch(value) else "?"


def count_send(outcome: str, rate_limited: bool) -> None:
    """The outbox sender's `on_outcome`."""
    SENDS.labels(outcome).inc()
    if rate_limited:
        RATE_LIMITED.inc()


def count_job(job_id: str, outcome: str, seconds: float) -> None:
    JOB_RUNS.labels(job_id, outcome).inc()
    JOB_SECONDS.labels(job_id).observe(seconds)
    log.log(logging.INFO if seconds >= SLOW_JOB else logging.DEBUG, "job %s: %s in %.3f s",
            job_id, outcome, seconds, extra={"duration_s": seconds})


def count_import(source: str, accepted: int, rejected: int) -> None:
    IMPORT_ROWS.labels(source, "accepted").inc(accepted)
    IMPORT_ROWS.labels(source, "rejected").inc(rejected)


# -- read at scrape time


@dataclass(frozen=True)
class OutboxNumbers:
    depth: int  # messages still to be delivered
    dead: int
    oldest_due: float  # seconds the longest-waiting due message has waited (0: none is due)


def outbox_numbers(services: Services, timeout: float = SCRAPE_TIMEOUT) -> OutboxNumbers:
    now = services.clock.now()
    with services.sessions() as session:
        time_limit(session, timeout)
        counts = queries.count_by_state(session, (*WAITING, "dead"))
        first_due = queries.get_first_due(session)
    waited = (now - first_due).total_seconds() if first_due else 0.0
    return OutboxNumbers(sum(counts.get(s, 0) for s in WAITING), counts.get("dead", 0),
                         max(0.0, waited))


class OutboxCollector:
    """The outbox's gauges, read when Prometheus scrapes. A read still running from a scrape
    that gave up on it is waited for again, never doubled."""

    GAUGES = (
        ("alignbot_outbox_queue_depth", "Messages still to be delivered (pending, unknown, "
         "sending)", "depth"),
        ("alignbot_outbox_oldest_pending_seconds", "Seconds the longest-waiting due message has "
         "waited past its time (0: none is due)", "oldest_due"),
        ("alignbot_outbox_dead_rows", "Messages given up on, kept for the admins", "dead"),
    )

    def __init__(self, services: Services, timeout: float = SCRAPE_TIMEOUT):
        self.services, self.timeout = services, timeout
        self._lock = threading.Lock()
        self._reading: Future[OutboxNumbers] | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, doc) for name, doc, _ in self.GAUGES]

    def collect(self) -> list[GaugeMetricFamily]:
        with self._lock:
            if self._reading is None or self._reading.done():
                self._reading = self._read()
            reading = self._reading
        try:
            numbers = reading.result(timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 - a scrape shows what it can
            log.warning("/metrics: the outbox's numbers are left out: %s",
                        str(exc) or "the database did not answer in time")
            return []
        return [GaugeMetricFamily(name, doc, value=getattr(numbers, field))
                for name, doc, field in self.GAUGES]

    def _read(self) -> Future[OutboxNumbers]:
        """The numbers, read on a thread of their own: a daemon, so that a database that
        never answers cannot hold up the process's exit either."""
        reading: Future[OutboxNumbers] = Future()

        def read() -> None:
            try:
                reading.set_result(outbox_numbers(self.services, self.timeout))
            except Exception as exc:  # noqa: BLE001 - handed to the scrape that waits
                reading.set_exception(exc)
        threading.Thread(target=read, name="metrics-outbox", daemon=True).start()
        return reading


def registry(services: Services) -> CollectorRegistry:
    """What one process's /metrics shows: the counters, the process's own numbers, the outbox."""
    found = CollectorRegistry()
    for collector in (*COUNTERS, PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR,
                      OutboxCollector(services)):
        found.register(collector)
    return found


# -- readiness

_head = functools.cache(head_revision)  # the migration scripts do not change while running


def readiness(services: Services, *, public: bool = False) -> dict[str, str]:
    """Each check, "ok" or what is wrong, in order; the checks after a failed one are not run.
    A check that raised is logged; on a `public` port its answer names only the error's kind,
    as a driver's message may name the database's host and user."""
    checks: dict[str, str] = {}
    for name, check in (("database", _database), ("migrations", _migrations),
                        ("outbox", _outbox)):
        try:
            checks[name] = check(services) or "ok"
        except Exception as exc:  # noqa: BLE001 - the point of a check is to say so
            said = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("/readyz: the %s check failed: %s", name, said)
            checks[name] = f"{type(exc).__name__}: see alignbot's log" if public else said
        if checks[name] != "ok":
            break
    return checks


def _database(services: Services) -> None:
    ping(services.engine)


def _migrations(services: Services) -> str | None:
    current, head = current_revision(services.engine), _head()
    if current != head:
        return f"the database is at revision {current or 'none'}, the code needs {head}: " \
               "run `alignbot db upgrade`"
    return None


def _outbox(services: Services) -> str | None:
    limit = services.config.outbox.stuck_after.total_seconds()
    waited = outbox_numbers(services).oldest_due
    if waited > limit:
        return f"a due message has waited {waited:,.0f} s, over outbox.stuck_after " \
               f"({limit:,.0f} s): is a sender running (`alignbot run` or `alignbot worker`)?"
    return None
