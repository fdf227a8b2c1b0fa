"""What the realistic benches share: `alignbot run` as a real process against a fake Slack
over HTTP, concurrent clients sending signed requests, and percentiles.

The clients keep a connection each (as Slack's and a CRM's do) and run in this process,
so on a small machine they take some of the CPU the server would have: a bench states
its numbers next to a bare Bolt app measured the same way (`bench.ack`).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bot.local.fakeslack import FakeSlack
from storage.db import make_engine
from storage.migrate import upgrade
from tests.processes import CLI, ROOT, over_http, serving
from tests.slack import SIGNING_SECRET, TEAM, sign

WEBHOOK_SECRET = "bench-webhook-secret"
# a request: (path, body, headers), made when it is sent (its signature is of that time)
Request = tuple[str, bytes, dict[str, str]]


@contextlib.contextmanager
def app_running(database_url: str | None = None, command: tuple[str, ...] = (*CLI, "run"),
                config: Path = ROOT / "alignbot.example.toml") -> Iterator[str]:
    """`command` (by default `alignbot run`) serving on 127.0.0.1, Slack faked over HTTP, the
    store migrated (a fresh SQLite file unless `database_url`): its base URL."""
    with tempfile.TemporaryDirectory() as d, over_http(FakeSlack(team_id=TEAM)) as api:
        url = database_url or f"sqlite:///{d}/bench.db"
        upgrade(make_engine(url))
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
               "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": api, "DATABASE_URL": url, "ALIGNBOT_CONFIG": str(config),
               "ALIGNBOT_WEBHOOK_SECRET": WEBHOOK_SECRET, "ALIGNBOT_TEAM_ID": TEAM}
        with serving(env, ROOT, command) as (base, _log):
            yield base


def analyzed(engine, *, vacuumed: bool = False) -> None:
    """On PostgreSQL, planner statistics as autovacuum gathers them on a server where it runs
    (it is off on the test server): a store just loaded or refreshed would otherwise be
    planned as if its newest rows were not there (SQLite plans without statistics).
    `vacuumed`: the dead rows cleared too, as autovacuum does once a fifth of a table has
    changed: a bench that rewrites most of a table leaves its indexes full of them."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if vacuumed else "ANALYZE")


def slack_request(body: str, content_type: str = "application/x-www-form-urlencoded") -> Request:
    """A request to /slack/events, signed as Slack signs it."""
    return ("/slack/events", body.encode(),
            {"Content-Type": content_type, **sign(body, int(time.time()))})


@dataclass
class Run:
    """Latencies (seconds) of every request, and the wall time they took together."""

    latencies: list[float]
    wall: float
    clients: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[p - 1]

    def __str__(self) -> str:
        return (f"{self.clients} client{'s' * (self.clients > 1)}, {len(self.latencies):,} "
                f"requests: p50 {self.percentile(50) * 1000:.1f} ms, p95 "
                f"{self.percentile(95) * 1000:.1f} ms, p99 {self.percentile(99) * 1000:.1f} ms, "
                f"{self.rate:,.0f} req/s")


def send(base: str, make: Callable[[int], Request], requests: int, clients: int = 8,
         warm_up: int = 20, pace: float = 0.0) -> Run:
    """`requests` requests (the `i`th made by `make(i)`), from `clients` threads with a
    connection each, after `warm_up` uncounted ones; with `pace`, each client waits that
    many seconds between its requests on average, at random (exponentially, as
    independent arrivals come), and starts at a random point of its first wait: clients
    that all waited exactly `pace` sent their requests in waves of `clients` at once, and
    each wave's last one waited for the seven before it. Every answer must be a 2xx."""
    host = urlsplit(base)
    for i in range(warm_up):
        _post(http.client.HTTPConnection(host.hostname, host.port), make(-1 - i))
    latencies: list[float] = []
    counter = iter(range(requests))
    lock = threading.Lock()

    def client(k: int) -> None:
        conn = http.client.HTTPConnection(host.hostname, host.port)
        rng = random.Random(k)  # the same arrivals every run
        if pace:
            time.sleep(rng.uniform(0, pace))
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            request = make(i)
            start = time.perf_counter()
            _post(conn, request)
            latencies.append(time.perf_counter() - start)
            if pace:
                time.sleep(rng.expovariate(1 / pace))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Run(latencies, time.perf_counter() - start, clients)


def send_once(base: str, request: Request) -> bytes:
    """One request's answer (a 2xx)."""
    host = urlsplit(base)
    return _post(http.client.HTTPConnection(host.hostname, host.port), request)


def _post(conn: http.client.HTTPConnection, request: Request) -> bytes:
    path, body, headers = request
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    answer = resp.read()
    if resp.status // 100 != 2:
        raise RuntimeError(f"{path}: {resp.status} {answer[:200]!r}")
    return answer
