"""Building the running bot: services from config, the sender loop, the HTTP server."""

from __future__ import annotations

import copy
import logging
import threading

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from sqlalchemy import Engine

from bot.features import FEATURES
from bot.handoff.people import sync_config_people
from bot.platform.clock import Clock
from bot.platform.config import Config, Secrets
from bot.platform.descriptor import Features
from bot.platform.sender import OutboxSender
from bot.platform.services import Services
from storage.db import make_engine, make_sessionmaker
from storage.migrate import require_current

log = logging.getLogger(__name__)
SLACK_API = "https://slack.com/api/"


def make_web_client(secrets: Secrets) -> WebClient:
    """The client listeners use: one retry on a dropped connection or a short 429."""
    return WebClient(token=secrets.slack_bot_token, base_url=secrets.slack_api_url or SLACK_API,
                     retry_handlers=[ConnectionErrorRetryHandler(),
                                     RateLimitErrorRetryHandler(max_retry_count=1)])


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
    sender = OutboxSender(sessions, sender_client, clock, config.outbox,
                          admins=config.workspace.admins)
    team_id = team_id or slack.auth_test()["team_id"]
    services = Services(config=config, secrets=secrets, clock=clock, engine=engine,
                        sessions=sessions, slack=slack, sender=sender,
                        features=features, commands=features.commands,
                        team_id=team_id)
    with services.sessions.begin() as session:
        sync_config_people(session, team_id, config, clock.now())
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
            try:
                next_due = self.services.sender.dispatch()
            except Exception:
                log.exception("outbox dispatch failed; retrying on the next wake-up")
                next_due = None
            wait = self.IDLE
            if next_due:
                delay = (next_due - self.services.clock.now()).total_seconds()
                wait = max(0.05, min(wait, delay))
            self._wake.wait(wait)
