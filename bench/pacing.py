"""Outbox pacing across processes: do several senders together keep Slack's per-channel rate?

    python -m bench.pacing [--database-url URL] [--messages 5000] [--channels 50]
                           [--senders 2] [--workers N] [--latency 0] [--pacing both]

A fake Slack served over real HTTP records every message and enforces about one message a
second per channel: `--slack-burst` at once, then one a second (a request up to `--leeway`
seconds early passes); a faster one is answered 429 with Retry-After (whole seconds, as
Slack's). `--senders` processes, each with the SenderLoop of `alignbot run` and `alignbot
worker` (the example config, `--workers` if given), deliver N messages queued over M
channels in one store: SQLite in a temporary file, or with `--database-url` a PostgreSQL
server, on which each run creates a scratch database of its own. `--pacing shared` is the
database's pace; `process` gives each process a pace of its own (as before it moved into
the database); `both` runs the second, then the first. `--latency` holds every answer
back (Slack's own is about 0.1-0.3 s). Prints delivered, duplicates, lost, 429s, and the
rate against the best the fake Slack allows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from http.server import ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.faults import JSONHandler, wait_settled
from bot.local.fakeslack import FakeSlack
from bot.platform import outbox
from bot.platform.clock import SystemClock
from bot.platform.config import Secret, Secrets, load_config
from bot.platform.runtime import SenderLoop, build_services
from storage import pacing
from storage.db import make_engine
from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
TEAM = "T0BENCH"
RATE = 1.0  # messages a second the fake Slack allows per channel


class Limiter:
    """Slack's per-channel limit as a virtual schedule (GCRA): `burst` at once, then `RATE`."""

    def __init__(self, burst: int, leeway: float):
        self.interval = 1 / RATE
        self.tolerance = (burst - 1) * self.interval + leeway
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self.limited = 0

    def wait(self, channel: str, now: float) -> float:
        """0 if a message to `channel` may go at `now` (it is counted), else seconds to wait."""
        with self._lock:
            due = max(self._due.get(channel, now), now)
            if due - now > self.tolerance:
                self.limited += 1
                return due - self.tolerance - now
            self._due[channel] = due + self.interval
            return 0.0


class PacedSlack(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlack, limiter: Limiter, latency: float):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake, self.limiter, self.latency = fake, limiter, latency


class _Handler(JSONHandler):
    server: PacedSlack

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(self.server.latency)
        content_type = self.headers.get("Content-Type", "")
        if self.path.endswith("/chat.postMessage"):
            channel = json.loads(body).get("channel", "") if "json" in content_type else ""
            wait = self.server.limiter.wait(channel, time.monotonic())
            if wait:
                return self._send(429, {"Retry-After": str(math.ceil(wait))},
                                  {"ok": False, "error": "ratelimited"})
        return self._send(*self.server.fake.http(self.path, content_type, body))

    do_GET = do_POST


def sender(url: str, api_url: str, workers: int | None, mode: str, name: str) -> None:
    """A sender process: build the services, say "ready", start on the first line read and
    stop on the second (or at the end of input)."""
    logging.getLogger("slack_sdk").setLevel(logging.CRITICAL)
    config = load_config(ROOT / "alignbot.example.toml")
    if workers:
        config = replace(config, outbox=replace(config.outbox, workers=workers))
    secrets = Secrets(slack_bot_token=Secret("xoxb-bench"), slack_api_url=api_url)
    services = build_services(config, secrets, SystemClock(), engine=make_engine(url),
                              team_id=TEAM)
    if mode == "process":  # pace rows of its own: what this process sends, it alone paces
        shared = pacing.channel_of
        pacing.channel_of = lambda row: f"{name}:{shared(row)}"
    print("ready", flush=True)
    sys.stdin.readline()
    loop = SenderLoop(services).start()
    services.wake_sender()
    sys.stdin.readline()
    loop.stop()


@contextlib.contextmanager
def scratch_database(database_url: str | None, run: int) -> Iterator[str]:
    """An empty store for one run: SQLite in a temporary file, or a database of its own on
    the PostgreSQL server `database_url` names."""
    if not database_url:
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{d}/pacing.db"
        return
    url = make_url(database_url)
    name = f"alignbot_bench_pacing_{run}"
    admin = make_engine(url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(args: argparse.Namespace, mode: str, number: int) -> None:
    channels = [f"C0BENCH{c:04d}" for c in range(args.channels)]
    fake = FakeSlack(team_id=TEAM, clock=SystemClock())
    limiter = Limiter(args.slack_burst, args.leeway)
    arrived: list[float] = []
    fake.on_change = lambda kind, msg: kind == "post" and arrived.append(time.perf_counter())
    server = PacedSlack(fake, limiter, args.latency)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api_url = f"http://127.0.0.1:{server.server_port}/api/"
    with scratch_database(args.database_url, number) as url:
        engine = make_engine(url)
        upgrade(engine)
        services = build_services(load_config(ROOT / "alignbot.example.toml"),
                                  Secrets(slack_bot_token=Secret("xoxb-bench"), slack_api_url=api_url), SystemClock(), engine=engine,
                                  team_id=TEAM)
        with services.transaction() as session:
            for i in range(args.messages):
                outbox.post(session, TEAM, channels[i % len(channels)], {"text": f"message {i}"},
                            now=services.clock.now(), ref=f"bench:{i}")
        senders = [_start_sender(url, api_url, args.workers, mode, f"s{n}")
                   for n in range(args.senders)]
        start = time.perf_counter()
        for proc in senders:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        states = wait_settled(services, args.max_seconds)
        for proc in senders:
            proc.communicate("stop\n", timeout=60)
        engine.dispose()
    server.shutdown()
    _report(args, mode, url, fake, limiter, states, [t - start for t in arrived], set(channels))


def _start_sender(url: str, api_url: str, workers: int | None, mode: str,
                  name: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.pacing", "--sender", url, api_url, mode, name,
         *(["--workers", str(workers)] if workers else [])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"sender {name} did not start (exit {proc.wait()})")
    return proc


def _report(args, mode: str, url: str, fake: FakeSlack, limiter: Limiter, states: Counter[str],
            arrived: list[float], channels: set[str]) -> None:
    texts = Counter(m.text for m in fake.messages if m.channel in channels)
    delivered = len(texts)
    duplicates = sum(texts.values()) - delivered
    per_channel = args.messages / args.channels
    best = max(0.0, per_channel - args.slack_burst) / RATE  # a burst, then RATE a second
    took = max(arrived, default=0.0)
    workers = args.workers or load_config(ROOT / "alignbot.example.toml").outbox.workers
    print(f"pacing {mode}: {args.senders} sender(s) x {workers} workers, "
          f"{make_url(url).get_backend_name()}, Slack latency {args.latency:g} s; "
          f"{args.messages} messages over {args.channels} channels")
    print(f"  delivered {delivered}   duplicates {duplicates}   lost {args.messages - delivered}"
          f"   429s {limiter.limited}   rows {dict(states)}")
    if took:
        share = f": {best / took:.1%} of the allowed rate" if best else " (no pacing needed)"
        print(f"  all in {took:.1f} s, {args.messages / took:.1f} msg/s; the fake Slack allows "
              f"all in {best:.0f} s ({args.slack_burst} at once, then {RATE:g} a second per "
              f"channel){share}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--channels", type=int, default=50)
    p.add_argument("--senders", type=int, default=2, help="sender processes")
    p.add_argument("--workers", type=int, help="outbox.workers (default: the example config's)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    p.add_argument("--pacing", choices=("shared", "process", "both"), default="both")
    p.add_argument("--slack-burst", type=int, default=4, help="messages a channel takes at once")
    p.add_argument("--leeway", type=float, default=0.05, help="seconds early Slack lets pass")
    p.add_argument("--max-seconds", type=float, default=900.0, help="give up waiting after this")
    p.add_argument("--database-url", help="a PostgreSQL server (default: SQLite in a temp file)")
    p.add_argument("--sender", nargs=4, metavar=("URL", "API", "MODE", "NAME"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sender:
        return sender(*args.sender[:2], args.workers, *args.sender[2:])
    modes = ("process", "shared") if args.pacing == "both" else (args.pacing,)
    for number, mode in enumerate(modes):
        run(args, mode, number)


if __name__ == "__main__":
    main()
