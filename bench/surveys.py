"""A pulse survey of 5,000 people answering every question, then its close, on SQLite.

    python -m bench.surveys [--people 5000] [--clients 1]

Opens a run of the alignment template (seven questions) for `--people` invitees and
queues their prompts, then sends, through the real Bolt app, a signed click for each
scale question and a comment-modal submission for the comment, as Slack would: every
answer is stored (and its prompt edit queued in the outbox) before its ack returns.
Reports the answers' ack latency (p50/p95/p99) and throughput, then times the close:
the random rewrite of all answers without their keys, and the results.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlencode

from bot.app import create_app
from bot.blocks import surveys as views
from bot.local.fakeslack import FakeSlack, Message
from bot.platform.clock import FakeClock
from bot.platform.config import Secret, Secrets, parse_config
from bot.platform.runtime import build_services
from bot.surveys import runs
from bot.surveys.templates import Question
from storage import surveys as queries
from storage.db import make_engine
from storage.migrate import upgrade
from tests.slack import SIGNING_SECRET, request

TEAM = "T0BENCH"
AT = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York


def config(people: int):
    roles = ("sales", "marketing", "exec")
    return parse_config({
        "workspace": {"timezone": "America/New_York", "admins": ["U0ADMIN01"]},
        "channels": {"digest": "C0DIGEST01"},
        "people": [{"slack_id": f"U{n:08d}", "role": roles[n % 3]} for n in range(people)],
        "surveys": [{"name": "pulse", "template": "alignment", "audience": list(roles)}]})


def payloads(fake: FakeSlack, run, questions, user: str, rng: random.Random) -> list[str]:
    """The requests one person sends: a click per scale question, a comment submission."""
    bodies = []
    for q in questions:
        view = views.PromptView("pulse", run.id, q.position, len(questions),
                                Question.of(q), run.closes_at, run.k)
        built = views.prompt(view)
        if q.type == "text":
            payload = fake.view_submission(views.comment_modal(view), user,
                                           {views.COMMENT_BLOCK: "More joint planning, please."})
        else:
            msg = Message(0, "D" + user[1:], "1.1", built["text"], built["blocks"])
            value = rng.choice(list(Question.of(q).values))
            payload = fake.block_action(msg, f"{views.ANSWER}.{value}", user, trigger_id="t")
        bodies.append(urlencode({"payload": json.dumps(payload)}))
    return bodies


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--people", type=int, default=5000)
    p.add_argument("--clients", type=int, default=1, help="requests at once")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        engine = make_engine(f"sqlite:///{d}/surveys.db")
        upgrade(engine)
        clock, fake = FakeClock(AT), FakeSlack(team_id=TEAM)
        services = build_services(config(args.people), Secrets(
            slack_signing_secret=Secret(SIGNING_SECRET)), clock, engine=engine,
            slack=fake.client(), team_id=TEAM)
        app = create_app(services)
        started = time.perf_counter()
        run = runs.start(services, "pulse", by="U0ADMIN01")  # opens, queues every prompt
        print(f"opened for {args.people:,} people, 7 prompts each queued, in "
              f"{time.perf_counter() - started:.1f} s")
        with services.sessions() as s:
            questions = queries.list_questions(s, run.id)
        rng = random.Random(7)
        bodies = [b for n in range(args.people)
                  for b in payloads(fake, run, questions, f"U{n:08d}", rng)]

        def send(body: str) -> float:
            t0 = time.perf_counter()
            resp = app.dispatch(request(body, "application/x-www-form-urlencoded", clock.now()))
            assert resp.status == 200, resp.body
            return time.perf_counter() - t0

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            took = sorted(pool.map(send, bodies))
        wall = time.perf_counter() - started
        q = statistics.quantiles(took, n=100)
        print(f"{len(took):,} answers stored and acked in {wall:.1f} s ({len(took) / wall:,.0f}/s, "
              f"{args.clients} client(s)): p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, "
              f"p99 {q[98] * 1000:.1f} ms, max {took[-1] * 1000:.1f} ms")
        started = time.perf_counter()
        shown = runs.close(services, "pulse")
        print(f"closed in {time.perf_counter() - started:.1f} s: {shown.responded:,} of "
              f"{shown.invited:,} answered; answers rewritten in random order without keys, "
              "echoes deleted, results computed and queued")


if __name__ == "__main__":
    main()
