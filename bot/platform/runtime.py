"""Building the running bot: services from config, the sender loop, the HTTP server."""

from __future__ import annotations

import copy
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from sqlalchemy import Engine

from bot.features import FEATURES
from bot.handoff.people import sync_config_people
from bot.platform import telemetry
from bot.platform.clock import Clock, SystemClock
from bot.platform.config import Config, Secrets
from bot.platform.descriptor import Features
from bot.platform.installations import Installations
from bot.platform.sender import OutboxSender, retry_after
from bot.platform.services import Services
from storage.db import DatabaseUnreachable, make_engine, make_sessionmaker
from storage.migrate import require_current

log = logging.getLogger(__name__)
SLACK_API = "https://slack.com/api/"


def make_web_client(secrets: Secrets) -> WebClient:
    """The client listeners use: one retry on a dropped connection (only where a repeat is
    harmless) or a short 429."""
    return WebClient(token=secrets.slack_bot_token, base_url=secrets.slack_api_url or SLACK_API,
                     retry_handlers=retry_handlers())


def retry_handlers(sleep: Callable[[float], None] = time.sleep,
                   clock: Clock | None = None) -> list[RetryHandler]:
    return [SafeConnectionRetryHandler(sleep=sleep),
            TolerantRateLimitRetryHandler(max_retry_count=1, sleep=sleep, clock=clock)]


# Calls that make something each time (a message, a file, a modal): after a connection that
# dropped, the first may have landed, and a second would show twice. The outbox looks its
# posts up instead; a listener's direct reply is not repeated (the error handler says so).
CREATES = ("chat.post", "chat.schedule", "chat.meMessage", "files.", "views.open", "views.push")


class SafeConnectionRetryHandler(ConnectionErrorRetryHandler):
    """slack_sdk's retry on a dropped connection, but only where a repeat is harmless: a read,
    an update, or a request that never left (refused, no such host)."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep, **kwargs):
        super().__init__(**kwargs)
        self._sleep = sleep

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        method = request.url.rstrip("/").rsplit("/", 1)[-1]
        reason = getattr(error, "reason", error)
        never_sent = isinstance(reason, ConnectionRefusedError | socket.gaierror)
        return never_sent or not method.startswith(CREATES)

    def prepare_for_next_attempt(self, *, state, request, response=None, error=None) -> None:
        state.next_attempt_requested = True
        self._sleep(self.interval_calculator.calculate_sleep_duration(state.current_attempt))
        state.increment_current_attempt()


class TolerantRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack_sdk's retry on a 429, reading Retry-After as the outbox does (`1.5`, an HTTP
    date: the SDK's int() raised ValueError on those), waiting it rounded up. A wait longer
    than LISTENER_WAIT is not waited in a listener: the 429 is the answer."""

    LISTENER_WAIT = timedelta(seconds=30)

    def __init__(self, sleep: Callable[[float], None] = time.sleep, clock: Clock | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self._sleep = sleep
        self._clock = clock or SystemClock()

    def _wait(self, response) -> timedelta:
        value = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        value = value[0] if isinstance(value, list) and value else value
        return retry_after(value, self._clock.now()) if value is not None else timedelta(seconds=1)

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return super()._can_retry(state=state, request=request, response=response, error=error) \
            and self._wait(response) <= self.LISTENER_WAIT

    def prepare_for_next_attempt(self, *, state, request, response=None, error=None) -> None:
        if response is None:
            raise error  # as the SDK's: nothing to read a wait from
        state.next_attempt_requested = True
        self._sleep(math.ceil(self._wait(response).total_seconds()))
        state.increment_current_attempt()


def build_services(config: Config, secrets: Secrets, clock: Clock, *,
                   engine: Engine | None = None, slack: WebClient | None = None,
                   team_id: str | None = None, features: Features = FEATURES) -> Services:
    engine = engine or make_engine(secrets.database_url)
    require_current(engine)
    sessions = make_sessionmaker(engine)
    slack = slack or make_web_client(secrets)
    # The outbox paces and retries by itself; an SDK retry would block its thread, and an
    # answer that takes longer than its timeout is looked up rather than waited for.
    sender_client = copy.copy(slack)
    sender_client.retry_handlers = []
    sender_client.timeout = config.outbox.timeout
    installations = (Installations(secrets.slack_client_id, engine, sessions, clock)
                     if secrets.oauth else None)
    sender = OutboxSender(sessions, sender_client, clock, config.outbox,
                          admins=config.workspace.admins,
                          clients=installations and partial(installations.client, base=sender_client))
    sender.on_outcome = telemetry.count_send
    if installations is None:
        team_id = team_id or slack.auth_test()["team_id"]
    services = Services(config=config, secrets=secrets, clock=clock, engine=engine,
                        sessions=sessions, slack=slack, sender=sender,
                        features=features, commands=features.commands,
                        team_id=team_id or "", installations=installations)

    def sync_people(team: str) -> None:
        with services.work(team) as work:
            sync_config_people(work)

    if installations is not None:  # each workspace's people: now, and as it installs
        installations.on_install = sync_people
    for workspace in services.workspaces():
        sync_people(workspace.team_id)
    return services


class SenderLoop:
    """Delivers the outbox on the sender's pool: right after each commit (woken), as each
    delivery settles (its channel's next message may go), and when retries fall due."""

    IDLE = 30.0  # seconds between sweeps when nobody wakes us

    def __init__(self, services: Services):
        self.services = services
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)
        self._backoff = 0.0  # seconds; grows while the database is away

    def start(self) -> SenderLoop:
        self.services.wake_sender = self._wake.set
        self.services.sender.on_settled = self._wake.set
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.services.sender.close(timeout=self.services.config.outbox.timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._wake.wait(self.once())

    def once(self) -> float:
        """One dispatch; how many seconds to wait before the next (unless woken). While the
        database is away: one line per try, each wait twice the last, up to IDLE."""
        try:
            next_due = self.services.sender.dispatch()
        except DatabaseUnreachable as exc:
            self._backoff = min(self.IDLE, self._backoff * 2 or 1.0)
            log.warning("outbox: %s; trying again in %.0f s", exc, self._backoff)
            log.debug("the database's error", exc_info=True)
            return self._backoff
        except Exception:
            log.exception("outbox dispatch failed; retrying on the next wake-up")
            next_due = None
        self._backoff = 0.0
        if next_due:
            delay = (next_due - self.services.clock.now()).total_seconds()
            return max(0.05, min(self.IDLE, delay))
        return self.IDLE
