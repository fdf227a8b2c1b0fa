"""Metric answer latency, refresh duration and memory over a large store.

    python -m bench.metrics [--leads 1000000] [--deals 200000] [--customers 50000] [--reps 15]
                            [--http 400] [--rates 0,40] [--database-url URL | --store URL]
                            [--answers-only]

Generates two years of data straight into a fresh SQLite file (a child process, so its
memory is not counted): leads with routing, touches, rejections and SLA outcomes, deals
(three in four linked to a lead), customers with churn, monthly spend and content use.
Then, in this process: a full snapshot refresh (the first one), every metric answered as
`/align metric` answers it (value and a trend of six periods) for the last 30 days, last
quarter and last year, with and without `by`; one day of new data and the refresh after
it; the medians answered exactly (as `alignbot query`, exports and the gap read them) and
the gap/index report; and the peak RSS of this process. These answers are timed one at
a time, without HTTP or rendering: the code's own cost, cold (the snapshots' reads
forgotten, as after a refresh) and warm (the same question again).

`--http N` is the realistic mode, after the first refresh: `alignbot run` as a process on
that store (Slack faked over HTTP), and N signed `/align metric` questions from 8 clients
at once, answered, rendered and acknowledged as Slack would see it, twice: each metric in
turn over the three periods (half of them `by` its first grouping; warm after the first
45), then every question new ("last N days", another N each time; cold). At each
`--rates` in turn, questions a second in all (each client pausing between its questions,
so they spread as people's do), 0 for none at all (every client asks again the moment it
is answered: the most the app answers, and how long a question then waits in line). `--database-url`
puts the store in that database instead of a SQLite file (give it an empty one).

`--store URL` keeps the store (a SQLite file's or a database's URL): the first run
generates and refreshes it, the next ones reuse it as it is (no generation, no refresh:
a 1M store's first refresh takes many minutes), so runs of two versions of the code can
be paired on the same data. `--answers-only` stops after the answers' latencies.
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import median

from sqlalchemy import func, insert, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from bench.load import analyzed, app_running, send, slack_request
from bot.alignment.report import report
from bot.metrics.answers import answer, parse
from bot.metrics.registry import METRICS
from bot.metrics.snapshots import forget, refresh
from bot.platform.config import load_config
from bot.platform.work import Work
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade
from storage.models import ContentItem, ContentUse, Customer, Deal, Lead, Person, Spend
from storage.snapshots import get_refresh
from tests.slack import TEAM as SLACK_TEAM
from tests.slack import slash_body

ROOT = Path(__file__).resolve().parents[1]
TEAM = SLACK_TEAM  # the workspace the fake Slack of `--http` says alignbot is in
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SPAN = timedelta(days=730)
CHUNK = 20_000
SOURCES = ["webinar", "ebook", "paid_search", "events", "referral", "organic"]
SEGMENTS = ["smb", "mid_market", "enterprise"]
REGIONS = ["na", "emea", "apac", "latam"]
REASONS = ["not_icp", "bad_timing", "duplicate", "no_budget", "bad_data"]
REPS = [f"U0REP{i:04d}" for i in range(40)]
PERIODS = ("last 30 days", "last quarter", "last year")


def generate(url: str, leads: int, deals: int, customers: int, now: datetime) -> None:
    engine = make_engine(url)
    upgrade(engine)
    rnd = random.Random(7)
    with make_sessionmaker(engine).begin() as s:
        s.execute(insert(Person), [
            {"team_id": TEAM, "slack_id": sid, "role": "sales", "weight": 1, "updated_at": now,
             "deactivated": False, "from_config": True} for sid in REPS])
        owners = list(range(1, len(REPS) + 1))
        touched = []
        for first in range(1, leads + 1, CHUNK):
            rows = [_lead(rnd, i, owners, now) for i in range(first, min(first + CHUNK, leads + 1))]
            touched += [(r["id"], r["first_touch_at"]) for r in rows if r["first_touch_at"]]
            s.execute(insert(Lead), rows)
        for first in range(1, deals + 1, CHUNK):
            s.execute(insert(Deal), [_deal(rnd, i, touched, owners, now)
                                     for i in range(first, min(first + CHUNK, deals + 1))])
        s.execute(insert(Customer), [_customer(rnd, i, now) for i in range(customers)])
        months = [date(now.year - 2 + (now.month + k - 1) // 12, (now.month + k - 1) % 12 + 1, 1)
                  for k in range(25)]
        s.execute(insert(Spend), [{"team_id": TEAM, "month": m, "team": team,
                                   "updated_at": datetime.combine(m, datetime.min.time(), UTC),
                                   "amount": Decimal(rnd.randint(40_000, 90_000))}
                                  for m in months for team in ("marketing", "sales")])
        s.execute(insert(ContentItem), [{"id": i + 1, "team_id": TEAM, "external_id": f"C{i}",
                                         "created_at": now - SPAN, "updated_at": now}
                                        for i in range(200)])
        s.execute(insert(ContentUse), [
            {"team_id": TEAM, "content_id": rnd.randint(1, 200), "user_email": "rep@example.com",
             "used_at": now - SPAN * rnd.random()} for _ in range(20_000)])


def _lead(rnd: random.Random, i: int, owners: list[int], now: datetime,
          span: timedelta = SPAN) -> dict:
    mql = now - span * rnd.random()
    routed = mql + timedelta(minutes=rnd.randint(0, 10))
    fate = rnd.random()
    row = {"id": i, "team_id": TEAM, "external_id": f"L{i:07d}", "source": rnd.choice(SOURCES),
           "segment": rnd.choice(SEGMENTS), "region": rnd.choice(REGIONS),
           "score": rnd.randint(0, 100), "owner_id": rnd.choice(owners), "created_at": mql,
           "mql_at": mql, "routed_at": routed, "assigned_at": routed, "updated_at": routed,
           "sla_policy": "standard",
           "sla_clock": "wall", "sla_due_at": routed + timedelta(hours=4), "accepted_at": None,
           "rejected_at": None, "rejection_reason": None, "first_touch_at": None,
           "response_minutes": None, "business_minutes": None, "sla_met": None,
           "status": "routed"}
    if fate < 0.85:  # touched: accepted at the first touch
        minutes = round(rnd.expovariate(1 / 45), 2)
        touch = routed + timedelta(minutes=minutes)
        row.update(status="contacted", accepted_at=touch, first_touch_at=touch, updated_at=touch,
                   response_minutes=minutes, business_minutes=round(minutes * 0.7, 2),
                   sla_met=touch <= row["sla_due_at"])
    elif fate < 0.95:
        rejected = routed + timedelta(minutes=rnd.randint(5, 600))
        row.update(status="rejected", rejected_at=rejected, rejection_reason=rnd.choice(REASONS),
                   updated_at=rejected,
                   sla_met=rejected <= row["sla_due_at"])
    return row


def _deal(rnd: random.Random, i: int, touched: list, owners: list[int], now: datetime) -> dict:
    lead_id, touch = rnd.choice(touched) if rnd.random() < 0.75 else (None, None)
    created = (touch or now - SPAN * rnd.random()) + timedelta(days=rnd.randint(0, 20))
    closed = created + timedelta(days=rnd.randint(3, 120), hours=rnd.randint(0, 23))
    outcome = "open" if closed >= now or rnd.random() < 0.1 else \
        ("won" if rnd.random() < 0.35 else "lost")
    return {"team_id": TEAM, "external_id": f"D{i:07d}", "lead_id": lead_id,
            "owner_id": rnd.choice(owners), "amount": Decimal(rnd.randint(2, 200) * 500),
            "source": "marketing" if lead_id else rnd.choice(["sales", "partner"]),
            "created_at": min(created, now), "closed_at": None if outcome == "open" else closed,
            "outcome": outcome, "updated_at": min(closed if outcome != "open" else created, now)}


def _customer(rnd: random.Random, i: int, now: datetime) -> dict:
    started = now - SPAN * 1.5 * rnd.random()
    churned = started + timedelta(days=rnd.randint(30, 900)) if rnd.random() < 0.3 else None
    return {"team_id": TEAM, "external_id": f"A{i:06d}", "started_at": started,
            "churned_at": churned if churned and churned < now else None,
            "mrr": Decimal(rnd.randint(100, 5000)),
            "updated_at": churned if churned and churned < now else started}


def add_one_day(sessions, first_id: int, count: int, now: datetime) -> None:
    """A day's worth of new leads, the way the webhook leaves them (updated now)."""
    rnd = random.Random(11)
    owners = list(range(1, len(REPS) + 1))
    with sessions.begin() as s:
        s.execute(insert(Lead), [_lead(rnd, first_id + k, owners, now, span=timedelta(days=1))
                                 for k in range(count)])


def _has_leads(url: str) -> bool:
    """Whether the store was generated already (never for a fresh file or database)."""
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return c.execute(select(Lead.id).limit(1)).first() is not None
    except (OperationalError, ProgrammingError):
        return False  # no table yet
    finally:
        engine.dispose()


def _count_leads(sessions) -> int:
    with sessions() as s:
        return s.scalar(select(func.max(Lead.id)))


def timed_refresh(sessions, config, now: datetime):
    start = time.perf_counter()
    report = refresh(sessions, config, TEAM, now)
    took = time.perf_counter() - start
    analyzed(sessions.kw["bind"])  # autovacuum's, within a minute, where it runs
    return report, took


def latencies(sessions, config, reps: int) -> list[tuple[str, str, str, float, float, float]]:
    """Each answer in a session of its own, as a Slack request has. Cold: the snapshots'
    reads forgotten before (the first time a question is asked after a refresh); warm:
    the same question again (remembered until the next refresh). p50 and p95 cold, p50
    warm, in ms."""
    rows = []
    for metric in METRICS.values():
        for text in PERIODS:
            for by in (None, metric.dimensions[0] if metric.dimensions else None):
                if by is None and rows and rows[-1][:3] == (metric.key, text, "-"):
                    continue
                query = parse(f"{metric.key} {text}" + (f" by {by}" if by else ""), config, NOW)
                cold, warm = [], []
                for rep in range(reps + 1):  # the first, untimed, warms the process's caches
                    forget(sessions)
                    for times in (cold, warm):
                        start = time.perf_counter()
                        with sessions() as s:  # as `/align metric` asks (details too)
                            answer(Work(s, TEAM, config, NOW), query, details=True)
                        if rep:
                            times.append(time.perf_counter() - start)
                cold.sort()
                rows.append((metric.key, text, by or "-", median(cold) * 1000,
                             cold[min(len(cold) - 1, int(len(cold) * 0.95))] * 1000,
                             median(warm) * 1000))
    return rows


def exact_latencies(sessions, config, reps: int) -> list[tuple[str, str, str, float, float]]:
    """The medians as `alignbot query`, exports and the gap read them (exact, from the rows;
    with the details `alignbot query` adds, response time's p90 and median in business
    time), and the gap/index report itself (every metric it reads, over the last 90 days)."""
    rows = []
    for key in (k for k, m in METRICS.items() if m.exact is not None):
        for text in PERIODS:
            for by in (None, METRICS[key].dimensions[0]):
                query = parse(f"{key} {text}" + (f" by {by}" if by else ""), config, NOW)
                rows.append((key, text, by or "-", *_timed(
                    reps, sessions, lambda s, q=query: answer(Work(s, TEAM, config, NOW), q,
                                                              exact=True, details=True))))
    rows.append(("gap/index report", "last 90 days", "-", *_timed(
        reps, sessions, lambda s: report(Work(s, TEAM, config, NOW)))))
    return rows


def _timed(reps: int, sessions, work) -> tuple[float, float]:
    """p50 and p95 in ms, each run in a session of its own."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        with sessions() as s:
            work(s)
        times.append(time.perf_counter() - start)
    times.sort()
    return median(times) * 1000, times[min(len(times) - 1, int(len(times) * 0.95))] * 1000


def over_http(url: str, requests: int, rates: list[float], clients: int = 8) -> None:
    """Questions over HTTP (the store as it is: `alignbot run` refreshes it on its own), at
    each rate twice: the same 45 in turn (warm: after the first round, each was answered
    before, and its snapshots' reads are remembered until the next refresh), and each one
    new (cold: "last N days" for another N each time, as after a refresh)."""
    warm = [f"metric {m.key} {text}" + (f" by {m.dimensions[0]}" if m.dimensions and k % 2 else "")
            for m in METRICS.values() for k, text in enumerate(PERIODS)]
    metrics = list(METRICS.values())
    asked = itertools.count()  # never the same question twice, across runs

    def cold(_: int) -> str:
        i = next(asked)
        m, days = metrics[i % len(metrics)], 20 + i // len(metrics)
        return f"metric {m.key} last {days} days" + (
            f" by {m.dimensions[0]}" if m.dimensions and i // len(metrics) % 2 else "")
    with app_running(url) as base:
        for rate in rates:
            for name, question in ((f"{len(warm)} questions in turn", lambda i: warm[i % len(warm)]),
                                   ("each question new", cold)):
                run = send(base, lambda i, q=question: slack_request(slash_body(q(i), user="U0ADMIN01")),
                           requests, clients, pace=clients / rate if rate else 0.0)
                print(f"/align metric over HTTP ({name}, "
                      f"{f'{rate:g} a second' if rate else 'no pause'}): {run}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--leads", type=int, default=1_000_000)
    p.add_argument("--deals", type=int, default=200_000)
    p.add_argument("--customers", type=int, default=50_000)
    p.add_argument("--reps", type=int, default=15, help="answers per metric, period and by")
    p.add_argument("--http", type=int, default=0, help="questions over HTTP from 8 clients")
    p.add_argument("--rates", default="0,40", help="--http: questions a second in all, "
                   "comma-separated, each in turn (0: no pause)")
    p.add_argument("--database-url", help="the store (default: a fresh SQLite file)")
    p.add_argument("--store", help="a store to keep (a database URL): generated and refreshed "
                                   "on the first run, reused as it is by the next ones")
    p.add_argument("--answers-only", action="store_true",
                   help="skip the exact medians and the gap report (paired runs)")
    p.add_argument("--generate", help=argparse.SUPPRESS)  # the child process
    args = p.parse_args()
    if args.generate:
        generate(args.generate, args.leads, args.deals, args.customers, NOW - timedelta(days=1))
        return
    with tempfile.TemporaryDirectory() as d:
        url = args.store or args.database_url or f"sqlite:///{d}/metrics.db"
        sessions = make_sessionmaker(make_engine(url))
        config = load_config(ROOT / "alignbot.example.toml")
        if not _has_leads(url):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bench.metrics", "--generate", url,
                            "--leads", str(args.leads), "--deals", str(args.deals),
                            "--customers", str(args.customers)], check=True)
            print(f"generated {args.leads:,} leads, {args.deals:,} deals, {args.customers:,} "
                  f"customers in {time.perf_counter() - start:.0f} s")
        with sessions() as s:
            refreshed = get_refresh(s, TEAM)
        if refreshed is None:
            upgrade(sessions.kw["bind"])  # a store generated by an older alignbot
            first, took = timed_refresh(sessions, config, NOW - timedelta(days=1))
            print(f"first refresh: {first.days} days, {first.rows:,} rows in {took:.1f} s")
        if args.http:
            over_http(url, args.http, [float(r) for r in args.rates.split(",")])
        if refreshed is None:
            leads = _count_leads(sessions)
            add_one_day(sessions, leads + 1, args.leads // 730, NOW)
            daily, took = timed_refresh(sessions, config, NOW)
            print(f"refresh after one day of new data ({args.leads // 730:,} leads): "
                  f"{daily.days} days, {daily.rows:,} rows in {took:.2f} s")
        else:
            print(f"reusing the store as it is (refreshed as of {refreshed.as_of:%Y-%m-%d %H:%M})")
        rows = latencies(sessions, config, args.reps)
        print(f"{'metric':<26} {'period':<13} {'by':<8} {'p50 ms':>7} {'p95 ms':>7} {'warm':>7}")
        for key, text, by, p50, p95, warm in rows:
            print(f"{key:<26} {text:<13} {by:<8} {p50:7.1f} {p95:7.1f} {warm:7.1f}")
        worst = max(rows, key=lambda r: r[4])
        over = sum(r[4] > 50 for r in rows)
        print(f"worst p95 (cold): {worst[4]:.1f} ms ({worst[0]}, {worst[1]}, by {worst[2]}); "
              f"{over} of {len(rows)} over 50 ms; warm p50 {median(r[5] for r in rows):.1f} ms "
              f"(median of the cases)")
        if args.answers_only:
            return
        exact = exact_latencies(sessions, config, args.reps)
        print("exact medians (alignbot query, exports, the gap and index):")
        for key, text, by, p50, p95 in exact:
            print(f"{key:<26} {text:<13} {by:<8} {p50:7.1f} {p95:7.1f}")
        print(f"peak RSS of this process: "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
