"""Slash-command acknowledgement latency of a real `alignbot run` over HTTP.

    python -m bench.ack [--requests 500]

Starts `alignbot run` (waitress, Bolt's Flask adapter) against a fake Slack served
over HTTP, then sends signed `/align help` requests from one client and reports
p50/p95/p99 and requests per second. Slack allows 3 s; users feel every 100 ms.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

from bot.local.fakeslack import FakeSlack
from bot.platform.clock import SystemClock
from tests.slack import SIGNING_SECRET, sign, slash_body

ROOT = Path(__file__).resolve().parents[1]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--requests", type=int, default=500)
    args = p.parse_args()
    fake = FakeSlack(team_id="T0TEST")
    slack = make_server("127.0.0.1", 0, fake.wsgi_app(), handler_class=_Quiet)
    threading.Thread(target=slack.serve_forever, daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": f"http://127.0.0.1:{slack.server_port}/api/",
               "DATABASE_URL": f"sqlite:///{d}/ack.db",
               "ALIGNBOT_CONFIG": str(ROOT / "alignbot.example.toml")}
        env.pop("SLACK_APP_TOKEN", None)
        cli = [sys.executable, "-m", "bot.cli"]
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        proc = subprocess.Popen([*cli, "run", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stderr=subprocess.PIPE, text=True)
        try:
            for line in proc.stderr:
                if "Serving on" in line:
                    break
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            print(measure(f"http://127.0.0.1:{port}/slack/events", args.requests))
        finally:
            proc.terminate()
            proc.wait()


def measure(url: str, n: int) -> str:
    body = slash_body("help", user="U0ADMIN01")
    clock = SystemClock()
    samples = []
    for i in range(n + 20):
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   **sign(body, int(clock.now().timestamp()))}
        req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
        start = time.perf_counter()
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
        if i >= 20:  # warm-up requests are not counted
            samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    q = statistics.quantiles(samples, n=100)
    return (f"ack /align help over HTTP, 1 client, {n} requests: p50 {q[49]:.1f} ms, "
            f"p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms, {n / (sum(samples) / 1000):.0f} req/s")


if __name__ == "__main__":
    main()
