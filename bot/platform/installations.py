"""OAuth mode: the workspaces that installed alignbot, each with its own bot token.

slack_sdk's SQLAlchemy installation and state stores keep them in alignbot's database
(their tables come from migration 0018, never from the stores' `create_tables()`). Bolt's
OAuth flow fills them through /slack/install and /slack/oauth_redirect, and its authorize
reads them for each request; the outbox and the jobs get a workspace's client here.
"""

from __future__ import annotations

import copy
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.platform.clock import Clock
from storage.installations import list_installed_teams
from storage.nudges import mark_team_cancelled
from storage.outbox import mark_team_dead

log = logging.getLogger(__name__)

STATE_SECONDS = 600  # how long an install link (its OAuth state) stays good
# How long a token read is trusted: another process may have forgotten the workspace since.
# "Not installed" is never kept: a message queued as another process installs the workspace
# again would die unsent.
TOKEN_TTL = timedelta(minutes=1)
UNINSTALLED = "the workspace uninstalled alignbot (or revoked its token)"


class _Store(SQLAlchemyInstallationStore):
    """slack_sdk's store, telling alignbot of each workspace it saves."""

    def __init__(self, client_id: str, engine: Engine, saved: Callable[[str], None]):
        super().__init__(client_id, engine)
        self._saved = saved

    def save(self, installation: Installation) -> None:
        super().save(installation)
        self._saved(installation.team_id)


class _States(SQLAlchemyOAuthStateStore):
    """slack_sdk's state store on alignbot's clock, dropping the expired states each time it
    issues one: /slack/install is public, and every visit stored a state that, unless the
    install was finished, stayed for good."""

    def __init__(self, engine: Engine, clock: Clock):
        super().__init__(STATE_SECONDS, engine)
        self.clock = clock

    def issue(self, *args, **kwargs) -> str:
        state, now, c = str(uuid.uuid4()), self.clock.now(), self.oauth_states.c
        with self.engine.begin() as conn:
            conn.execute(self.oauth_states.delete().where(c.expire_at <= _naive(now)))
            conn.execute(self.oauth_states.insert(), {
                "state": state, "expire_at": _naive(now + timedelta(seconds=STATE_SECONDS))})
        return state

    def consume(self, state: str) -> bool:
        """Whether the state was issued and has not expired; it is good once."""
        c = self.oauth_states.c
        with self.engine.begin() as conn:
            return conn.execute(self.oauth_states.delete().where(
                c.state == state, c.expire_at > _naive(self.clock.now()))).rowcount > 0


def _naive(when: datetime) -> datetime:
    """The column's form: UTC without a zone, as slack_sdk writes it."""
    return when.astimezone(UTC).replace(tzinfo=None)


class Installations:
    def __init__(self, client_id: str, engine: Engine, sessions: sessionmaker[Session],
                 clock: Clock):
        self.client_id = client_id
        self.store = _Store(client_id, engine, self._installed)
        self.states = _States(engine, clock)
        self.sessions = sessions
        self.clock = clock
        self.on_install: Callable[[str], None] = lambda team_id: None
        self._tokens: dict[str, tuple[str | None, datetime]] = {}  # team → (token, read until)
        self._lock = threading.Lock()

    def token(self, team_id: str) -> str | None:
        """The workspace's bot token; None when it is not (or no longer) installed."""
        now = self.clock.now()
        with self._lock:
            token, until = self._tokens.get(team_id, (None, now))
        if until > now:
            return token
        bot = self.store.find_bot(enterprise_id=None, team_id=team_id)
        token = bot.bot_token if bot else None
        if token is not None:
            with self._lock:
                self._tokens[team_id] = (token, now + TOKEN_TTL)
        return token

    def client(self, team_id: str, base: WebClient) -> WebClient:
        """`base` (its URL, timeout and retries) acting with the workspace's bot token."""
        client = copy.copy(base)
        client.token = self.token(team_id)
        return client

    def teams(self) -> list[str]:
        with self.sessions() as session:
            return list_installed_teams(session, self.client_id)

    def forget(self, team_id: str) -> None:
        self.store.delete_all(enterprise_id=None, team_id=team_id)
        with self._lock:
            self._tokens.pop(team_id, None)

    def _installed(self, team_id: str) -> None:
        with self._lock:
            self._tokens.pop(team_id, None)  # a reinstall's new token
        log.info("workspace %s installed alignbot", team_id)
        self.on_install(team_id)


def uninstalled(installations: Installations | None, sessions: sessionmaker[Session],
                team_id: str) -> int:
    """The workspace removed alignbot or revoked its bot token: its tokens are deleted and its
    queued messages dead-lettered (never sent); its data stays until retention removes it.
    The jobs skip it from now on, as it is no longer installed. How many messages died."""
    if installations is not None:
        installations.forget(team_id)
    with sessions.begin() as session:
        mark_team_cancelled(session, team_id)  # the SLA sweep works on every workspace at once
        dead = mark_team_dead(session, team_id, UNINSTALLED)
    log.warning("workspace %s uninstalled alignbot: its tokens are deleted and %d queued "
                "messages will not be sent", team_id, dead)
    return dead
