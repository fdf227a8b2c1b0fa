"""SLA sweep latency over a large book of open leads.

    python -m bench.sla [--leads 100000] [--due 1000] [--stages remind,breach,...] [--repeat 5]
                        [--database-url postgresql+psycopg://...]

Loads `--leads` open leads through the webhook path (routing writes each lead's first
stage), arriving over the last 30 days. Then every pending nudge is moved to tomorrow
but `--due` of them, on distinct leads, which become stages of `--stages` in turn, due a
minute ago; and the sweep that sends them (and writes each one's next stage) is timed,
then the idle sweeps that follow (what runs every minute). A warm-up sweep of 500 other
leads' stages an hour earlier (after the statistics are made, which make PostgreSQL plan
anew) compiles and plans what a long-running worker has. Each stage mix starts from the
same loaded database: a copy of a SQLite file, or with `--database-url` (an empty
PostgreSQL database, which it loads and analyzes) a database made from it as a template,
next to it.
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import tempfile
import time
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from statistics import median

from sqlalchemy import create_engine, func, make_url, select, update

from bench.ingest import NOW, populate, services_on
from bench.load import analyzed
from bot.sla.nudges import sweep
from storage.models import Lead, Nudge, OutboxMessage

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
# Nudges swept first, on other leads, an hour before the timed sweep (their messages and
# DM bursts outside its minute): a long-running worker has compiled its statements, those
# of two routing transactions' DM bursts included (each over the burst limit).
WARM_UP = 500
MIXES = ("remind", "remind,breach,escalate,reassign")


MINUTE = timedelta(minutes=1)
# (routed, due) relative to now for a lead at each stage, so that the stage after it (the
# example config's standard policy escalates 1 h and reassigns 2 h after the due time)
# is still ahead: the timed sweep sends the chosen stages and writes the next ones.
TIMES = {"remind": (-MINUTE, DAY), "breach": (-DAY, -MINUTE),
         "escalate": (-DAY, -MINUTE - timedelta(hours=1)),
         "reassign": (-DAY, -MINUTE - timedelta(hours=2))}


def make_due(services, due: int, stages: list[str], skip: int = 0, now=NOW,
             reset: bool = True) -> list[int]:
    with services.sessions.begin() as s:
        if reset:  # nothing else due
            s.execute(update(Nudge).where(Nudge.state == "pending").values(due_at=now + DAY))
        lead_ids = s.scalars(select(Lead.id).where(Lead.status == "routed")  # the newest
                             .order_by(Lead.id.desc()).offset(skip).limit(due)).all()
        for i, lead_id in enumerate(lead_ids):
            stage = stages[i % len(stages)]
            routed, due_at = TIMES[stage]
            s.execute(update(Lead).where(Lead.id == lead_id)
                      .values(routed_at=now + routed, assigned_at=now + routed,
                              sla_due_at=now + due_at))
            s.execute(update(Nudge).where(Nudge.lead_id == lead_id, Nudge.state == "pending")
                      .values(stage=stage, due_at=now - MINUTE, assigned_at=now + routed))
    return lead_ids


def postpone(services, lead_ids: list[int], to) -> None:
    """The leads' pending nudges (the stages their sweep wrote) due at `to`."""
    with services.sessions.begin() as s:
        s.execute(update(Nudge).where(Nudge.lead_id.in_(lead_ids), Nudge.state == "pending")
                  .values(due_at=to))


def max_id(services) -> int:
    with services.sessions.begin() as s:
        return s.scalar(select(func.max(OutboxMessage.id))) or 0


def messages_per_channel(services, after: int) -> dict[str, int]:
    """How many messages the sweep queued for each channel (or DM): Slack takes about one
    a second in each, so the busiest says how long delivery takes."""
    with services.sessions.begin() as s:
        return dict(s.execute(select(OutboxMessage.channel, func.count())
                              .where(OutboxMessage.id > after).group_by(OutboxMessage.channel)).all())


def copy(source: Path, target: Path) -> None:
    """Through SQLite's backup API: the source's WAL holds part of what was loaded."""
    target.unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def clone(url: str) -> str:
    """A fresh copy of the loaded PostgreSQL database, as `<its name>_run` (the previous
    copy dropped; the loaded one may have no connection meanwhile)."""
    source = make_url(url)
    target = source.set(database=f"{source.database}_run")
    admin = create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        c.exec_driver_sql(f'CREATE DATABASE "{target.database}" TEMPLATE "{source.database}"')
    admin.dispose()
    return target.render_as_string(hide_password=False)


def run(where: Path | str, due: int, stages: list[str], sweeps: int) -> tuple[float, float, str]:
    """(busy sweep seconds, median idle sweep seconds, what the busy sweep did)."""
    services = services_on(where)
    make_due(services, due, stages, skip=WARM_UP)
    warm_up = make_due(services, WARM_UP, stages, now=NOW - HOUR, reset=False)
    analyzed(services.engine, vacuumed=True)  # make_due rewrote every stage: so would autovacuum
    sweep(services, NOW - HOUR)  # after the ANALYZE, which makes the server plan anew
    postpone(services, warm_up, NOW + DAY)  # the stages it wrote, due by now
    queued = max_id(services)
    gc.collect()  # the setup's garbage is not the sweep's to collect (GC stays on while timed)
    start = time.perf_counter()
    report = sweep(services, NOW)
    busy = time.perf_counter() - start
    if report.dropped:  # a sweep that voids its stages times nothing worth knowing
        raise SystemExit(f"the sweep dropped {report.dropped} of the {due} stages made due: "
                         "they no longer match their leads' routing (see make_due)")
    idle = []
    for _ in range(sweeps):
        start = time.perf_counter()
        sweep(services, NOW)
        idle.append(time.perf_counter() - start)
    per_channel = messages_per_channel(services, queued)
    busiest = max(per_channel, key=per_channel.get, default=None)
    result = busy, median(idle), (
        f"sent {report.sent}, held {report.held}, dropped {report.dropped}; "
        f"{sum(per_channel.values()):,} outbox rows to {len(per_channel)} channels, the busiest "
        f"{busiest} with {per_channel.get(busiest, 0)}: {per_channel.get(busiest, 0)} s to "
        "deliver at Slack's one message a second per channel")
    services.engine.dispose()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--leads", type=int, default=100_000)
    p.add_argument("--due", type=int, default=1000)
    p.add_argument("--stages", action="append", help="a comma-separated stage mix; repeatable")
    p.add_argument("--sweeps", type=int, default=5, help="idle sweeps after each busy one")
    p.add_argument("--repeat", type=int, default=5, help="busy sweeps per mix, each on a fresh copy")
    p.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite files)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        base = args.database_url or Path(d) / "loaded.db"
        start = time.perf_counter()
        loaded = services_on(base)
        populate(loaded, args.leads)
        if args.database_url:
            analyzed(loaded.engine)  # it has by the time 100,000 leads are open
        loaded.engine.dispose()  # a template database has no other connection
        print(f"loaded {args.leads:,} open leads in {time.perf_counter() - start:.1f} s")
        for mix in args.stages or MIXES:
            runs = []
            for _ in range(args.repeat):
                if args.database_url:
                    where = clone(args.database_url)
                else:
                    copy(base, where := Path(d) / "sla.db")
                runs.append(run(where, args.due, mix.split(","), args.sweeps))
            busy = sorted(r[0] for r in runs)
            print(f"{mix}: sweep with {args.due:,} due: median {median(busy) * 1000:.0f} ms, "
                  f"min {busy[0] * 1000:.0f}, max {busy[-1] * 1000:.0f} over {args.repeat} runs "
                  f"({runs[0][2]}); idle sweep {median(r[1] for r in runs) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
