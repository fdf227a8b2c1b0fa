"""The Bolt app factory: the one place that wires every feature's listeners (handlers/),
by the module names the features declare (bot/features.py)."""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.middleware.request_verification import RequestVerification
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier

from bot.platform import telemetry
from bot.platform.clock import Clock
from bot.platform.installations import STATE_SECONDS
from bot.platform.manifest import INSTALL_PATH, OAUTH_REDIRECT_PATH
from bot.platform.services import Services

log = logging.getLogger(__name__)


def create_app(services: Services, *, verify_requests: bool = True,
               after_ack: Executor | None = None) -> App:
    """`verify_requests` is for HTTP mode, where it needs the signing secret; Socket Mode's
    requests come over the socket alignbot opened with its app token, and the shell's from
    itself. `after_ack` runs what a listener leaves until its ack is out (a command's file):
    by default a pool of threads; the shell's `AfterAck` runs it once the answer is shown."""
    logging.getLogger("slack_bolt.App").addFilter(_TOKEN_NOTICE)
    app = _ObservedApp(
        clock=services.clock,
        client=services.slack,
        signing_secret=services.secrets.slack_signing_secret or "",
        request_verification_enabled=False,  # ours: the same check, on our clock
        # Bolt runs this before its url_verification answer and every middleware (but its
        # empty answer to ssl_check): nothing of an unsigned request is used, answered or logged.
        before_authorize=_Verification(request_verifier(services.secrets.slack_signing_secret,
                                                        services.clock))
        if verify_requests else None,
        # Ack on the fast path and reply from the listener; slow work goes to the outbox,
        # or to a lazy listener when it answers the request itself.
        process_before_response=True,
        listener_executor=after_ack,
        oauth_settings=_oauth_settings(services),
    )
    for module in services.features.listeners:  # the handlers/ modules each feature names
        importlib.import_module(module).register(app, services)
    return app


class _ObservedApp(App):
    """Bolt's App, each request counted and timed to its answer (the ack), and its log lines
    carrying a request id (its workspace, once verified: handlers/middleware.py): HTTP and
    Socket Mode both call `dispatch`."""

    def __init__(self, *, clock: Clock, **kwargs: Any):
        super().__init__(**kwargs)
        self._observed_on = clock

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        kind, what = telemetry.slack_request(req.body)
        with telemetry.request(kind, what, None, self._observed_on) as answered:
            resp = super().dispatch(req)
            answered.status = resp.status
            return resp


def _oauth_settings(services: Services) -> OAuthSettings | None:
    """OAuth mode: Bolt's install flow and authorize (each request gets the client of its
    workspace), on slack_sdk's stores in alignbot's database (bot/platform/installations.py)."""
    installations = services.installations
    if installations is None:
        return None
    settings = OAuthSettings(
        client_id=services.secrets.slack_client_id,
        client_secret=services.secrets.slack_client_secret,
        scopes=list(services.features.scopes),
        install_path=INSTALL_PATH, redirect_uri_path=OAUTH_REDIRECT_PATH,
        installation_store=installations.store, installation_store_bot_only=True,
        state_store=installations.states, state_expiration_seconds=STATE_SECONDS,
    )
    # Bolt asks auth.test about a token once, not on every request (the ack waits for it); an
    # uninstalled workspace's token is not found in the store before the cache is read.
    settings.authorize.cache_enabled = True
    return settings


class _TokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN by itself and, handed our client (made from that same
    token), warns at every start that the token goes unused: true, and only noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_TOKEN_NOTICE = _TokenNotice()


class AfterAck(Executor):
    """Tasks kept until `run()`: the shell shows a command's answer, then what follows it."""

    def __init__(self) -> None:
        self._tasks: list[Callable[[], Any]] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self._tasks.append(lambda: fn(*args, **kwargs))
        return Future()

    def run(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task()


class _ClockAdapter(SignatureClock):
    def __init__(self, clock: Clock):
        self.clock = clock

    def now(self) -> float:
        return self.clock.now().timestamp()


_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds, ASCII digits only


class _Verifier(SignatureVerifier):
    """slack_sdk's check, refusing malformed headers instead of raising on them (`int("abc")`,
    `compare_digest` of a non-ASCII string): a raise would reach the error handler, which
    answers 200 and logs the unverified body's user."""

    def is_valid(self, body: str | bytes, timestamp: str | None, signature: str | None) -> bool:
        if not (timestamp and signature and _TIMESTAMP.fullmatch(timestamp)
                and signature.isascii()):
            return False
        return super().is_valid(body, timestamp, signature)


class _Verification(RequestVerification):
    """Bolt's signature check (5-minute window), reading the time from our clock."""

    def __init__(self, verifier: SignatureVerifier):
        super().__init__(signing_secret=verifier.signing_secret)
        self._on_our_clock = verifier

    @property
    def verifier(self) -> SignatureVerifier:
        return self._on_our_clock

    def _debug_log_error(self, signature, timestamp, body) -> None:
        # Bolt's own line holds the body: an unverified request's data stays out of logs
        log.info("refused a Slack request whose signature is missing, wrong or stale")


def request_verifier(secret: str | None, clock: Clock) -> SignatureVerifier:
    """Checks that a request is Slack's: signed with the app's secret in the last 5 minutes."""
    if not secret:
        raise ValueError("SLACK_SIGNING_SECRET is needed in HTTP mode, to verify requests from Slack")
    return _Verifier(secret, clock=_ClockAdapter(clock))
