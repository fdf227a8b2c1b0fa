"""Ingest throughput, end to end: validation, upsert, routing, SLA, card rows in the outbox.

    python -m bench.ingest [--batches 10] [--csv-rows 100000] [--repeat 3] [--team N]
                           [--populate N] [--database-url URL]
    python -m bench.ingest --http [--leads 3000] [--rate 50] [--populate 20000] [--team 40]
                           [--backlog] [--database-url URL]

`--http` is the realistic mode: `alignbot run` as a process (Slack faked over HTTP), on a
store already holding `--populate` leads of its workspace, and 8 clients sending signed
webhooks of 10 leads each, paced to `--rate` leads a second in all, on the real clock:
leads arrive over minutes as they would, and a rep gets a card per lead until more than
the burst limit come to them within a minute. The store is as a running bot leaves it:
its leads arrived over the 30 days before now, the SLA nudges due by now have fired (the
sweep, run here at now) and every message queued has been delivered (marked sent). With
`--backlog` it is left as after an outage instead: every nudge due in those 30 days
still pending and every message unsent, so the app's first SLA sweep catches up (tens of
thousands of nudges) and its sender delivers them while the webhooks come in. The
workspace works every day, 00:00-23:59 (New York), without holidays: the run does not
depend on the real weekday or hour (on a Sunday, or at night, leads would wait for their
reps' hours and nudges be held). With `--database-url` the store is that database
(migrated and populated here: give it an empty one).

The in-process mode below measures the code alone, on a frozen clock (so every lead of a
run falls in one minute: one burst, a summary instead of cards) and an empty store (or
one of `--populate` leads, analyzed as autovacuum would have done by then):

webhook path: signed-off batches of 1,000 new leads through `bot.intake.batches.store` (the
handler after signature checks) on a fresh SQLite file, then the same batches again, every
lead's score changed (a CRM re-syncing what it sent). CSV path: `alignbot import` of
one file through `bot.intake.imports.import_csv`, `--repeat` times (each into a fresh file).
With `--database-url`, each of these runs gets a fresh database of its own on that server
instead (created next to the URL's, named after it, dropped afterwards).
Slack is the in-process fake; nothing is sent. The team is the example config's (three
reps) or, with `--team N`, N reps in every pool: each has a DM of cards and a summary,
and their leads spread over more of the owner indexes.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median

from sqlalchemy import String, cast, func, literal, make_url, select, text, update

from bench.load import WEBHOOK_SECRET, Request, analyzed, app_running, send
from bot.intake.batches import store
from bot.intake.imports import import_csv
from bot.intake.webhooks import signature
from bot.local.fakeslack import FakeSlack
from bot.platform.clock import FakeClock
from bot.platform.config import Config, Secrets, load_config
from bot.platform.runtime import build_services
from bot.sla.nudges import sweep
from storage.db import make_engine
from storage.migrate import upgrade
from storage.models import Lead, Nudge, OutboxMessage
from tests.slack import TEAM

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "alignbot.example.toml"
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SOURCES = ["webinar", "ebook", "paid_search", "events", "referral"]
SEGMENTS = ["smb", "mid_market", "enterprise"]


def services_on(where: Path | str, team: int = 0, team_id: str = "T0BENCH"):
    """On a SQLite file, or a database URL, acting for `team_id`."""
    engine = make_engine(where if isinstance(where, str) else f"sqlite:///{where}")
    upgrade(engine)
    return build_services(config(team), Secrets(), FakeClock(NOW), engine=engine,
                          slack=FakeSlack().client(), team_id=team_id)


def config(team: int) -> Config:
    """The example config; with a `team`, that many reps (weight 1, no cap) in every pool."""
    if not team:
        return load_config(EXAMPLE)
    with tempfile.TemporaryDirectory() as d:
        return load_config(config_file(team, Path(d)))


def config_file(team: int, directory: Path, always_working: bool = False) -> Path:
    """`config(team)` as a file, for `alignbot run`; `always_working`: every day is a
    working day, all of it (but its last minute), and none a holiday."""
    reps = ", ".join(f'"U0REP{n:04d}"' for n in range(team))
    text = re.sub(r'^(\w+) = \["U0[^\]]*\]', rf"\1 = [{reps}]", EXAMPLE.read_text(), flags=re.M)
    if always_working:
        text = re.sub(r"^holidays = .*\n|^extra_holidays = .*\n", "", text, flags=re.M)
        text = re.sub(r"^working_days = .*$",
                      'working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]',
                      text, count=1, flags=re.M)
        text = re.sub(r'^working_hours = .*$', 'working_hours = "00:00-23:59"', text, count=1,
                      flags=re.M)
    text += "".join(f'\n[[people]]\nslack_id = "U0REP{n:04d}"\nemail = "rep{n}@example.com"\n'
                    f'role = "sales"\nname = "Rep {n}"\n' for n in range(team))
    (path := directory / f"team{team}{'-always' * always_working}.toml").write_text(text)
    return path


def populate(services, leads: int, now: datetime = NOW, settled: bool = False) -> None:
    """Batches of 1,000 arriving evenly over the 30 days before `now`: an open book, not
    one day. `settled`: then, as a running bot would have left them, the nudges due by
    `now` fired (and the next stages they wrote, until none is due) and every message
    queued delivered."""
    batches = range(0, leads, 1000)
    for i, first in enumerate(batches):
        services.clock.set(now - timedelta(days=30) * (len(batches) - i) / len(batches))
        store(services, "leads", [record(n) for n in range(first, min(first + 1000, leads))],
              actor="bench")
    services.clock.set(now)
    if leads and settled:
        fired = sweep(services, now)
        with services.sessions.begin() as s:
            delivered = mark_delivered(s)
        print(f"settled: {fired.sent:,} nudges fired, {fired.held:,} held, {fired.dropped:,} "
              f"dropped; {delivered:,} messages marked delivered")
    if leads:
        analyzed(services.engine)  # what autovacuum has done over 30 days


def mark_delivered(session) -> int:
    """Every message still to send, as if the sender had delivered it (each its own ts)."""
    return session.execute(
        update(OutboxMessage).where(OutboxMessage.state == "pending")
        .values(state="sent", attempts=1, sent_at=OutboxMessage.created_at,
                first_attempt_at=OutboxMessage.created_at, posted_channel=OutboxMessage.channel,
                ts=literal("1700000000.") + cast(OutboxMessage.id, String))
        .execution_options(synchronize_session=False)).rowcount


def record(n: int) -> dict[str, str | int]:
    return {"external_id": f"L-{n:07d}", "source": SOURCES[n % 5], "name": f"Person {n}",
            "company": f"Company {n % 997}", "email": f"p{n}@prospect.example",
            "score": (n * 37) % 101, "segment": SEGMENTS[n % 3], "region": "na",
            "why": "Downloaded the ROI guide"}


@contextmanager
def fresh(database_url: str | None, workdir: Path, name: str) -> Iterator[str]:
    """The URL of an empty store: a SQLite file in `workdir`, or a database created on
    `database_url`'s server (and dropped after)."""
    if not database_url:
        yield f"sqlite:///{workdir / name}.db"
        return
    url = make_url(database_url)
    url = url.set(database=f"{url.database}_bench_{name}")
    admin = make_engine(database_url, isolation_level="AUTOCOMMIT")

    def recreate(create: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            if create:
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    recreate(True)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        recreate(False)
        admin.dispose()


def webhook(batches: int, store_url: str, team: int = 0, populated: int = 0) -> None:
    """`batches` of 1,000 new leads on a store of `populated`, then each sent again with a
    new score (a CRM's re-sync: every lead updated)."""
    services = services_on(store_url, team)
    populate(services, populated)
    services.clock.set(NOW)
    new = _timed(services, batches, populated, lambda r: r)
    again = _timed(services, batches, populated, lambda r: {**r, "score": (r["score"] + 1) % 101})
    with services.sessions.begin() as s:
        routed = s.scalar(select(func.count()).select_from(Lead).where(Lead.status == "routed"))
        queued = s.scalar(select(func.count()).select_from(OutboxMessage))
    print(f"webhook on a store of {populated:,}: {batches} batches x 1,000 new leads: {new}; "
          f"{routed:,} routed, {queued:,} outbox rows")
    print(f"webhook re-sent, every lead's score changed: {again}")


def _timed(services, batches: int, first: int, change) -> str:
    timings = []
    for b in range(batches):
        records = [change(record(first + b * 1000 + i)) for i in range(1000)]
        start = time.perf_counter()
        result = store(services, "leads", records, actor="bench")
        timings.append(time.perf_counter() - start)
        assert result.created + result.updated == 1000, result.as_dict()
    return (f"{batches * 1000 / sum(timings):,.0f} leads/s (batch p50 {median(timings):.3f} s, "
            f"max {max(timings):.3f} s)")


def csv_import(rows: int, workdir: Path, store_url: str, team: int = 0) -> float:
    """One import of `rows` new leads into `store_url` (a fresh database); its rows/s."""
    services = services_on(store_url, team)
    path = workdir / "leads.csv"
    if not path.exists():
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(record(0)))
            writer.writeheader()
            writer.writerows(record(n) for n in range(rows))
    start = time.perf_counter()
    summary = import_csv(services, "leads", path)
    elapsed = time.perf_counter() - start
    assert summary.created == rows, summary.as_dict()
    with services.sessions.begin() as s:
        queued = s.scalar(select(func.count()).select_from(OutboxMessage))
    print(f"csv: {rows:,} rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s; "
          f"{queued:,} outbox rows (cards, then one summary per channel and its edits)")
    return rows / elapsed


def over_http(leads: int, rate: float, populated: int, team: int, database_url: str | None,
              workdir: Path, clients: int = 8, per_request: int = 10,
              backlog: bool = False) -> None:
    url = database_url or f"sqlite:///{workdir / 'http.db'}"
    start = time.perf_counter()
    now = datetime.now(UTC)  # the app runs on the real clock
    engine = make_engine(url)
    upgrade(engine)
    services = build_services(load_config(config_file(team, workdir, always_working=True)),
                              Secrets(), FakeClock(now), engine=engine,
                              slack=FakeSlack().client(), team_id=TEAM)  # the app's workspace
    populate(services, populated, now, settled=not backlog)
    with services.sessions.begin() as s:
        due = s.scalar(select(func.count()).select_from(Nudge).where(
            Nudge.state == "pending", Nudge.due_at <= datetime.now(UTC)))
        unsent = s.scalar(select(func.count()).where(OutboxMessage.state == "pending"))
    print(f"populated {populated:,} leads in {time.perf_counter() - start:.0f} s "
          f"({'backlog' if backlog else 'settled'}: {due:,} nudges due, {unsent:,} messages "
          "unsent)")
    first = max_outbox_id(services)

    def webhook(i: int) -> Request:
        n = populated + leads + 1000 + i if i < 0 else populated + i * per_request  # warm-up: others
        body = json.dumps({"leads": [record(k) for k in range(n, n + per_request)]}).encode()
        ts = str(int(time.time()))
        return ("/webhooks/leads", body, {"Content-Type": "application/json",
                                          "X-Alignbot-Timestamp": ts,
                                          "X-Alignbot-Signature": signature(WEBHOOK_SECRET, ts, body)})

    fired_before = count_fired(services)
    with app_running(url, config=config_file(team, workdir, always_working=True)) as base:
        run = send(base, webhook, leads // per_request, clients, warm_up=2,
                   pace=clients * per_request / rate if rate else 0.0)
    with services.sessions.begin() as s:
        queued = s.scalar(select(func.count()).where(OutboxMessage.id > first))
        due = s.scalar(select(func.count()).select_from(Nudge).where(
            Nudge.state.in_(("pending", "sending")), Nudge.due_at <= datetime.now(UTC)))
    print(f"webhook over HTTP, {per_request} leads a request, "
          f"{f'paced to {rate:g} leads/s' if rate else 'unpaced'}: {run}; "
          f"{len(run.latencies) * per_request / run.wall:,.0f} leads/s; {queued:,} outbox rows "
          f"({queued / leads:.2f} a lead: cards, burst summaries and their edits; the app's SLA "
          f"sweeps fired {count_fired(services) - fired_before:,} nudges, {due:,} still due)")


def count_fired(services) -> int:
    """Nudges sent or dropped so far (a catch-up's progress)."""
    with services.sessions.begin() as s:
        return s.scalar(select(func.count()).select_from(Nudge).where(
            Nudge.state.in_(("sent", "cancelled"))))


def max_outbox_id(services) -> int:
    with services.sessions.begin() as s:
        return s.scalar(select(func.max(OutboxMessage.id))) or 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--http", action="store_true", help="the realistic mode (see above)")
    p.add_argument("--leads", type=int, default=3000, help="--http: leads sent")
    p.add_argument("--rate", type=float, default=50, help="--http: leads a second (0: unpaced)")
    p.add_argument("--populate", type=int, help="leads stored before (--http: 20,000, else 0)")
    p.add_argument("--backlog", action="store_true", help="--http: the store's due nudges "
                   "unfired and its messages unsent (the app catches up as the webhooks come)")
    p.add_argument("--database-url", help="the store's server (default: fresh SQLite files)")
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--csv-rows", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3, help="CSV imports, each into a fresh database")
    p.add_argument("--team", type=int, default=0, help="sales reps in every pool (default: the "
                   "example config's three)")
    args = p.parse_args()
    if args.http:
        args.team = args.team or 40
    print(f"team: {args.team} reps in every pool" if args.team else
          "team: the example config's (three reps)")
    with tempfile.TemporaryDirectory() as d:
        if args.http:
            return over_http(args.leads, args.rate, 20_000 if args.populate is None else
                             args.populate, args.team, args.database_url, Path(d),
                             backlog=args.backlog)
        if args.batches:
            with fresh(args.database_url, Path(d), "webhook") as url:
                webhook(args.batches, url, args.team, args.populate or 0)
        if args.csv_rows:
            rates = []
            for run in range(args.repeat):
                with fresh(args.database_url, Path(d), f"csv{run}") as url:
                    rates.append(csv_import(args.csv_rows, Path(d), url, args.team))
            rates.sort()
            if len(rates) > 1:  # a shared machine's speed drifts: the middle run says most
                print(f"csv: median {median(rates):,.0f} rows/s of {len(rates)} runs "
                      f"({rates[0]:,.0f} to {rates[-1]:,.0f})")


if __name__ == "__main__":
    main()
