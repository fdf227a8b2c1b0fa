"""Outbox delivery through a faulty Slack: what arrives, how often, how fast.

    python -m bench.faults [--messages 400] [--channels 20] [--seed 7] [--slow 35]
                           [--p429 0.15] [--p500 0.10] [--pslow 0.02] [--pdrop 0.07]
                           [--latency 0] [--workers N] [--database-url URL]

A fake Slack served over real HTTP on a local thread answers each Web API request by a
seeded schedule: a 429 (Retry-After: 1), a 500, an answer held back `--slow` seconds
(longer than any client waits; the call took effect), or a connection dropped after the
call took effect; the rest are answered (after `--latency` seconds). alignbot's own services (the example config,
SQLite in a temporary file unless `--database-url` names an empty scratch database) queue
N messages over M channels, and the SenderLoop of `alignbot run` delivers them. Prints what
arrived in Slack (delivered, duplicates, lost), the time until every row was settled, and
the pace against Slack's allowance of one message a second per channel.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import func, select

from bot.local.fakeslack import FakeSlack
from bot.platform import outbox
from bot.platform.clock import SystemClock
from bot.platform.config import Secret, Secrets, load_config
from bot.platform.runtime import SenderLoop, build_services
from storage.db import make_engine
from storage.migrate import upgrade
from storage.models import OutboxMessage

ROOT = Path(__file__).resolve().parents[1]
TEAM = "T0BENCH"
ALLOWANCE = 1.0  # messages a second Slack allows per channel
UNSETTLED = ("pending", "unknown", "sending")


class Schedule:
    """The fault for each request in arrival order, from a seeded generator."""

    def __init__(self, seed: int, rates: dict[str, float]):
        self._rng = random.Random(seed)
        self._rates = rates
        self._lock = threading.Lock()
        self.faults: Counter[str] = Counter()

    def next(self) -> str | None:
        with self._lock:
            x = self._rng.random()
            for fault, rate in self._rates.items():
                if x < rate:
                    self.faults[fault] += 1
                    return fault
                x -= rate
            return None


class FaultySlack(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlack, schedule: Schedule, slow: float, latency: float):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake, self.schedule, self.slow, self.latency = fake, schedule, slow, latency


class JSONHandler(BaseHTTPRequestHandler):
    """A fake Slack's HTTP side: JSON answers, no access log."""

    def _send(self, status: int, headers: dict[str, str], payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up waiting (a slow answer)
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


class _Handler(JSONHandler):
    server: FaultySlack

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(self.server.latency)
        fault = self.server.schedule.next()
        if fault == "429":
            return self._send(429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"})
        if fault == "500":
            return self._send(500, {}, {"ok": False, "error": "internal_error"})
        status, headers, payload = self.server.fake.http(
            self.path, self.headers.get("Content-Type", ""), body)
        if fault == "drop":  # it happened; the client hears the connection close, nothing else
            self.close_connection = True
            return None
        if fault == "slow":
            time.sleep(self.server.slow)
        return self._send(status, headers, payload)

    do_GET = do_POST


def run(args: argparse.Namespace) -> None:
    rates = {"429": args.p429, "500": args.p500, "slow": args.pslow, "drop": args.pdrop}
    schedule = Schedule(args.seed, rates)
    channels = [f"C0BENCH{c:04d}" for c in range(args.channels)]
    config = load_config(ROOT / "alignbot.example.toml")
    if args.workers:
        config = replace(config, outbox=replace(config.outbox, workers=args.workers))
    fake = FakeSlack(team_id=TEAM, clock=SystemClock())
    arrived: dict[str, float] = {}  # each message's first arrival, in seconds from the start
    fake.on_change = lambda kind, msg: kind == "post" and msg.channel in channels and \
        arrived.setdefault(msg.text, time.perf_counter() - start)
    server = FaultySlack(fake, schedule, args.slow, args.latency)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(args.database_url or f"sqlite:///{scratch}/faults.db")
        upgrade(engine)
        secrets = Secrets(slack_bot_token=Secret("xoxb-bench"),
                          slack_api_url=f"http://127.0.0.1:{server.server_port}/api/")
        services = build_services(config, secrets, SystemClock(), engine=engine, team_id=TEAM)
        with services.transaction() as session:
            for i in range(args.messages):
                outbox.post(session, TEAM, channels[i % len(channels)], {"text": f"message {i}"},
                            now=services.clock.now(), ref=f"bench:{i}")
        start = time.perf_counter()
        loop = SenderLoop(services).start()
        services.wake_sender()
        states = wait_settled(services, args.max_seconds)
        elapsed = time.perf_counter() - start
        loop.stop()
    server.shutdown()
    _report(args, fake, schedule, states, elapsed, set(channels), sorted(arrived.values()),
            config.outbox.burst)


def wait_settled(services, max_seconds: float) -> Counter[str]:
    deadline = time.monotonic() + max_seconds
    while True:
        with services.sessions.begin() as s:
            states = Counter(dict(s.execute(select(OutboxMessage.state, func.count())
                                            .group_by(OutboxMessage.state)).all()))
        if not any(states[u] for u in UNSETTLED) or time.monotonic() > deadline:
            return states
        time.sleep(0.25)


def _report(args, fake: FakeSlack, schedule: Schedule, states: Counter[str], elapsed: float,
            channels: set[str], arrivals_at: list[float], burst: int) -> None:
    arrivals = Counter(m.text for m in fake.messages if m.channel in channels)
    delivered = len(arrivals)
    duplicates = sum(arrivals.values()) - delivered
    allowance = ALLOWANCE * args.channels
    best = max(0.0, args.messages / args.channels - burst) / ALLOWANCE  # a burst, then 1 a second
    calls = Counter(method for method, _ in fake.calls)
    print(f"{args.messages} messages over {args.channels} channels, latency {args.latency:g} s, "
          f"faults 429 {args.p429:.0%} / 500 {args.p500:.0%} / slow {args.pslow:.0%} "
          f"({args.slow:g} s) / dropped {args.pdrop:.0%}, seed {args.seed}")
    print(f"  delivered  {delivered}   duplicates {duplicates}   lost {args.messages - delivered}"
          f"   rows {dict(states)}")
    marks = {q: arrivals_at[round(q * args.messages) - 1]
             for q in (0.5, 0.9, 0.99, 1.0) if round(q * args.messages) <= len(arrivals_at)}
    print("  delivered by " + ", ".join(f"{q:.0%} {t:.1f} s" for q, t in marks.items())
          + f"; every row settled by {elapsed:.1f} s")
    if 0.9 in marks:
        pace = 0.9 * args.messages / marks[0.9]
        print(f"  pace       {pace:.1f} msg/s to 90 % = {pace / allowance:.0%} of the {allowance:g} "
              f"msg/s Slack allows ({ALLOWANCE:g} a second per channel, {burst} at once: "
              f"{best:.0f} s for all at best)")
    print(f"  requests   {sum(schedule.faults.values()) + len(fake.calls)}: faults "
          f"{dict(schedule.faults)}; answered or taken {dict(calls)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=400)
    p.add_argument("--channels", type=int, default=20)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--slow", type=float, default=35.0, help="seconds a slow answer is held back")
    p.add_argument("--p429", type=float, default=0.15)
    p.add_argument("--p500", type=float, default=0.10)
    p.add_argument("--pslow", type=float, default=0.02)
    p.add_argument("--pdrop", type=float, default=0.07)
    p.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    p.add_argument("--workers", type=int, help="outbox.workers (default: the example config's)")
    p.add_argument("--max-seconds", type=float, default=1800.0, help="give up waiting after this")
    p.add_argument("--database-url", help="an empty scratch database (default: SQLite in a temp file)")
    logging.getLogger("slack_sdk").setLevel(logging.CRITICAL)  # every fault is logged there
    run(p.parse_args())


if __name__ == "__main__":
    main()
