"""Slash-command acknowledgement of a real `alignbot run` over HTTP, next to bare Bolt.

    python -m bench.ack [--requests 2000] [--rounds 3] [--database-url URL]

Starts `alignbot run` (waitress, Bolt's Flask adapter, Slack faked over HTTP) and a bare
Bolt app on the same stack (the same Flask route and waitress threads, one `/align`
listener that acks with a line of text), then sends signed `/align help` from 1 and from
8 clients to each, in turn, `--rounds` times (paired, so a shared machine's drift hits
both), and a metric question (`win rate last 30 days`) from 8 clients to alignbot.
Prints p50/p95/p99 and requests per second, and alignbot's throughput as a share of bare
Bolt's (medians of the rounds). Slack allows 3 s; users feel every 100 ms. With
`--same-size`, bare Bolt's line of text is as long as alignbot's help (2.5 KB of blocks):
what is left of the gap is then the code's, not the size of what it answers.

    python -m bench.ack --in-process [--requests 2000] [--rounds 3]

The code alone: both apps' `dispatch` of the same signed requests in this process (no
HTTP, no server threads, logging as `alignbot run` configures it, into nothing), CPU µs a request, the
median of the rounds: what a change to the request path saves, without the noise of a
shared machine's scheduling.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

from bench.load import Run, app_running, send, send_once, slack_request
from tests.slack import SIGNING_SECRET, slash_body

BARE = (sys.executable, "-m", "bench.ack", "--bare")
BARE_BYTES = "ALIGNBOT_BENCH_BARE_BYTES"  # the length of the baseline's answer


def bare_bolt(host: str, port: int) -> None:
    """The baseline: `bare_app` on alignbot's server stack."""
    from flask import Flask, request
    from slack_bolt.adapter.flask.handler import to_bolt_request, to_flask_response

    from bot.platform.server import serve

    # Bolt asks the fake Slack's auth.test once, as alignbot's app does
    size = os.environ.get(BARE_BYTES)  # --same-size: as long as alignbot's help
    bolt = bare_app(os.environ["SLACK_API_URL"], "h" * int(size) if size else "help")
    web = Flask("bare")
    web.post("/slack/events")(lambda: to_flask_response(bolt.dispatch(to_bolt_request(request))))
    logging.basicConfig(level=logging.INFO)  # waitress says "Serving on", as alignbot run does
    serve(web, host, port)


def bare_app(api_url: str, text: str = "help"):
    """The least a Bolt app does to ack: `/align` answers `text`."""
    from slack_bolt import App
    from slack_sdk import WebClient

    bolt = App(signing_secret=SIGNING_SECRET, process_before_response=True,
               client=WebClient("xoxb-bench", base_url=api_url))
    bolt.command("/align")(lambda ack: ack(response_type="ephemeral", text=text))
    return bolt


def in_process(requests: int, n: int) -> None:
    from slack_bolt import App, BoltRequest

    from bot.app import create_app
    from bot.local.fakeslack import FakeSlack
    from bot.platform import logs
    from bot.platform.clock import SystemClock
    from bot.platform.config import Secrets, load_config
    from bot.platform.runtime import build_services
    from storage.db import make_engine
    from storage.migrate import upgrade
    from tests.processes import ROOT, over_http
    from tests.slack import TEAM, sign

    with tempfile.TemporaryDirectory() as d, open(os.devnull, "w") as nothing, \
            over_http(FakeSlack(team_id=TEAM)) as api:
        url = f"sqlite:///{d}/bench.db"
        upgrade(make_engine(url))
        os.environ.update({"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                           "SLACK_API_URL": api, "DATABASE_URL": url, "ALIGNBOT_TEAM_ID": TEAM,
                           "ALIGNBOT_CONFIG": str(ROOT / "alignbot.example.toml")})
        logs.configure()  # as `alignbot run` logs, into nothing
        logging.getLogger().handlers[0].setStream(nothing)
        bare = bare_app(api)
        ours = create_app(build_services(load_config(), Secrets.from_env(), SystemClock()))

        def cpu(app: App, text: str, count: int) -> float:
            """CPU µs a request: the median of `n` rounds of `count`, after 50 untimed."""
            body = slash_body(text, user="U0ADMIN01")
            headers = {"content-type": "application/x-www-form-urlencoded",
                       **sign(body, int(time.time()))}

            def send():
                return app.dispatch(BoltRequest(body=body, headers=headers))
            for _ in range(50):
                assert send().status == 200
            took = []
            for _ in range(n):
                started = time.process_time()
                for _ in range(count):
                    send()
                took.append((time.process_time() - started) / count * 1e6)
            return statistics.median(took)

        theirs, mine = cpu(bare, "help", requests), cpu(ours, "help", requests)
        print(f"/align help in process, CPU a request: bare Bolt {theirs:.0f} µs, alignbot "
              f"{mine:.0f} µs ({mine / theirs:.2f}×)")
        metric = cpu(ours, "metric win rate last 30 days", max(requests // 10, 1))
        print(f"/align metric win rate last 30 days in process (empty store): {metric:.0f} µs")


def rounds(base: str, text: str, requests: int, clients: int, n: int) -> list[Run]:
    return [send(base, lambda i: slack_request(slash_body(text, user="U0ADMIN01")),
                 requests, clients) for _ in range(n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--requests", type=int, default=2000, help="per client count and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--database-url", help="alignbot's store (default: a fresh SQLite file)")
    p.add_argument("--in-process", action="store_true",
                   help="time each app's dispatch in this process (CPU), no HTTP")
    p.add_argument("--same-size", action="store_true",
                   help="bare Bolt answers a text as long as alignbot's help")
    p.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)  # the baseline's process
    p.add_argument("--host", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.bare:
        return bare_bolt(args.host, args.port)
    if args.in_process:
        return in_process(args.requests, args.rounds)
    with app_running(args.database_url) as alignbot:
        if args.same_size:
            help_bytes = len(send_once(alignbot, slack_request(slash_body("help", user="U0ADMIN01"))))
            os.environ[BARE_BYTES] = str(help_bytes)
            print(f"bare Bolt answers {help_bytes:,} bytes, as alignbot's help")
        with app_running(command=BARE) as bare:
            compare(alignbot, bare, args)


def compare(alignbot: str, bare: str, args) -> None:
    for clients in (1, 8):
        ours, theirs = [], []
        for _ in range(args.rounds):  # interleaved: each round measures both
            ours += rounds(alignbot, "help", args.requests, clients, 1)
            theirs += rounds(bare, "help", args.requests, clients, 1)
        print(f"/align help, bare Bolt:  {_median(theirs)}")
        print(f"/align help, alignbot:   {_median(ours)}")
        print(f"  alignbot/bare Bolt, {clients} client(s): throughput "
              f"{statistics.median(r.rate for r in ours) / statistics.median(r.rate for r in theirs):.2f}×, "
              f"p50 {statistics.median(r.percentile(50) for r in ours) / statistics.median(r.percentile(50) for r in theirs):.2f}×")
    metric = rounds(alignbot, "metric win rate last 30 days", args.requests // 4, 8, args.rounds)
    print(f"/align metric win rate last 30 days, alignbot: {_median(metric)}")


def _median(runs: list[Run]) -> Run:
    """The round of median throughput."""
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


if __name__ == "__main__":
    main()
