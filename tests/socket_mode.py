"""Slack's side of Socket Mode on 127.0.0.1: the WebSocket endpoint `apps.connections.open`
hands out, and a fake Web API over HTTP that hands it out and wakes waiting tests.

Each connection is greeted with `hello`, as Slack greets it; a test then sends envelopes
(events_api, slash_commands, interactive, disconnect) and reads what the app sends back
(its acks), in order, with a timeout: nothing here sleeps. The envelope shapes are Slack's
(bolt-python's tests/adapter_tests/socket_mode/mock_socket_mode_server.py, and Slack's
Socket Mode page for `hello` and `disconnect`).
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from bot.local.fakeslack import FakeSlack

WAIT = 15.0  # seconds: generous for a loaded machine; a pass takes a fraction of it

_ENVELOPES = itertools.count(1)


class Link:
    """One Socket Mode connection the app opened."""

    def __init__(self, ws: ServerConnection):
        self.ws = ws
        self.received: queue.Queue[str] = queue.Queue()
        self.acks: dict[str, dict[str, Any]] = {}
        self.closed = threading.Event()

    def send(self, message: dict[str, Any] | str) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def envelope(self, kind: str, payload: Any, **extra: Any) -> str:
        """Send a request envelope as Slack does; its envelope_id, which the ack must carry."""
        envelope_id = f"env-{next(_ENVELOPES):04d}-5f0c-4d9a-8b1e"
        self.send({"envelope_id": envelope_id, "payload": payload, "type": kind,
                   "accepts_response_payload": kind == "slash_commands", **extra})
        return envelope_id

    def ack_of(self, envelope_id: str, timeout: float = WAIT) -> dict[str, Any]:
        """The app's ack of `envelope_id`. Envelopes are handled side by side, so acks may
        come in any order: the others met on the way are kept for their own turn."""
        while envelope_id not in self.acks:
            try:
                ack = json.loads(self.received.get(timeout=timeout))
            except queue.Empty:
                raise AssertionError(f"no ack of {envelope_id} within {timeout} s; "
                                     f"acked so far: {sorted(self.acks)}") from None
            self.acks[ack["envelope_id"]] = ack
        return self.acks[envelope_id]

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's notice that this connection is going away: the app is to open a new one."""
        self.send({"type": "disconnect", "reason": reason,
                   "debug_info": {"host": "applink-local-1"}})


class SocketModeServer:
    """The WebSocket endpoint, on a thread of its own; `links` yields each new connection."""

    def __init__(self) -> None:
        self.links: queue.Queue[Link] = queue.Queue()
        # no pings of ours (the app pings, and websockets answers), no compression (the
        # SDK's built-in client offers none)
        self._server = serve(self._handle, "127.0.0.1", 0, ping_interval=None, compression=None)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._connections = itertools.count(1)

    @property
    def url(self) -> str:
        port = self._server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}/link/?ticket=local-ticket"

    def __enter__(self) -> SocketModeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._thread.join(timeout=WAIT)

    def next_link(self, timeout: float = WAIT) -> Link:
        try:
            return self.links.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the app opened no Socket Mode connection within {timeout} s") \
                from None

    def _handle(self, ws: ServerConnection) -> None:
        link = Link(ws)
        n = next(self._connections)
        link.send({"type": "hello", "num_connections": n,
                   "debug_info": {"host": "applink-local-1", "build_number": 1,
                                  "approximate_connection_time": 18060},
                   "connection_info": {"app_id": "A0TEST"}})
        self.links.put(link)
        try:
            for message in ws:
                link.received.put(message)
        except ConnectionClosed:
            pass  # the SDK's client drops the TCP connection without a close frame
        finally:
            link.closed.set()


class SocketSlack(FakeSlack):
    """The fake Web API, answering `apps.connections.open` with the server's URL, and
    telling waiting tests after each call it answered."""

    def __init__(self, socket_url: str, **kw: Any):
        super().__init__(**kw)
        self.socket_url = socket_url
        self.served_at: str | None = None  # its Web API's URL over HTTP, once served
        self.opening = threading.Event()  # cleared: apps.connections.open waits for it
        self.opening.set()
        self._answered = threading.Condition()

    def _apps_connections_open(self, args):
        assert self.opening.wait(WAIT), "apps.connections.open held too long"
        return 200, {}, {"ok": True, "url": self.socket_url}

    def reachable(self, url: str) -> str:
        """A response_url of this fake's, as another process reaches it: over HTTP."""
        assert self.served_at, "serve it first (tests.processes.over_http)"
        return url.replace(f"https://{self.host}/", self.served_at.removesuffix("api/"))

    def http(self, path: str, content_type: str, body: bytes, authorization: str | None = None):
        try:
            return super().http(path, content_type, body, authorization)
        finally:
            with self._answered:
                self._answered.notify_all()

    def wait_until(self, what: Callable[[], Any], timeout: float = WAIT) -> Any:
        """`what()` once it is true (it is asked again after each call answered)."""
        with self._answered:
            found = self._answered.wait_for(what, timeout)
        assert found, f"not within {timeout} s; calls so far: {[m for m, _ in self.calls]}"
        return found
