"""What requests wait for while a bulk writer runs: SQLite has one writer at a time.

    python -m bench.contention [--csv-rows 100000] [--every 0.2]
    python -m bench.contention --refresh [--leads 100000] [--every 0.05] [--keep PATH]

Import mode: imports `--csv-rows` leads (as `bench.ingest` does) while another process,
like the bot answering clicks, writes one small transaction through alignbot's own engine
every `--every` seconds. Reports how long each of those waited to begin, during the import.

Refresh mode: on a store of `--leads` leads (as `bench.metrics` generates it, with deals
and customers in proportion), a first metrics refresh and then the daily one after a day
of new leads, while three other processes do, each every `--every` seconds, what the bot
does for Slack: a metric question (`/align metric`, answered as the bot answers it), a
click's small write transaction, a webhook of one lead. Reports each one's time when
nothing else runs and during each refresh (p50, p99, max), and the ones that failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from statistics import median

import storage.db
from bench.ingest import NOW, record, services_on
from bench.metrics import TEAM, add_one_day
from bot.intake.batches import store
from bot.intake.imports import import_csv
from bot.metrics.answers import ask
from bot.metrics.snapshots import refresh
from storage.db import make_engine, make_sessionmaker

QUESTIONS = ("win rate last 30 days by source", "leads routed last quarter by owner",
             "response time last 30 days", "sla compliance this month by source")
IDLE_REQUESTS = 4  # of each kind: the requests' own time, before the refresh starts
KINDS = ("question", "click", "webhook")


def click(engine) -> Callable[[int], None]:
    """What a click's transaction takes: the write lock, for a moment."""
    def once(_n: int) -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE people SET weight = weight WHERE id = 1")
    return once


def probe(db: Path, every: float, stop: Path, kinds: list[str]) -> None:
    """Until `stop` exists: each kind of request in turn, one every `every` s, printing
    when it was asked, how long it took, how long it waited for its transactions to begin
    (for SQLite's write lock: a read-only one begins at once) and whether it failed."""
    services = services_on(db, team_id=TEAM)  # the generated store's workspace
    serial = iter(range(10_000_000, 20_000_000))
    requests = {"click": click(services.engine),
                "question": lambda n: ask(services, QUESTIONS[n % len(QUESTIONS)]),
                "webhook": lambda n: store(services, "leads", [record(next(serial))],
                                           actor="bench")}
    waits: list[float] = []  # each BEGIN IMMEDIATE's wait for the write lock

    def timed_begin(dbapi_conn, begin=storage.db.begin_immediate) -> None:
        start = time.perf_counter()
        try:
            begin(dbapi_conn)
        finally:
            waits.append(time.perf_counter() - start)
    storage.db.begin_immediate = timed_begin  # what the engine's "begin" listener calls
    n = 0
    while not stop.exists():
        kind = kinds[n % len(kinds)]
        asked, start, failed = time.time(), time.perf_counter(), ""
        waits.clear()
        try:
            requests[kind](n)
        except Exception as exc:  # noqa: BLE001 - what a person would see: "something went wrong"
            failed = type(exc).__name__
        print(json.dumps([kind, asked, time.perf_counter() - start, sum(waits), failed]),
              flush=True)
        n += 1
        time.sleep(every)


def start_probe(db: Path, stop: Path, every: float, kinds: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.contention", "--every", str(every),
         "--probe", str(db), str(stop), ",".join(kinds)], stdout=subprocess.PIPE, text=True)


def imports(rows: int, every: float) -> None:
    with tempfile.TemporaryDirectory() as d:
        workdir = Path(d)
        services = services_on(workdir / "csv.db")
        path = workdir / "leads.csv"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(record(0)))
            writer.writeheader()
            writer.writerows(record(n) for n in range(rows))
        clicks = start_probe(workdir / "csv.db", workdir / "stop", every, ["click"])
        time.sleep(1)  # the probe is up and writing
        began, start = time.time(), time.perf_counter()
        import_csv(services, "leads", path)
        elapsed, ended = time.perf_counter() - start, time.time()
        (workdir / "stop").touch()
        lines = [json.loads(line) for line in clicks.communicate()[0].splitlines()]
    during = [took for _, asked, took, _, _ in lines if began <= asked <= ended]
    print(f"csv: {rows:,} rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s; "
          f"meanwhile {len(during)} small writes from another process took: "
          f"median {median(during) * 1000:.1f} ms, max {max(during) * 1000:.0f} ms")


def refreshes(leads: int, every: float, keep: Path | None) -> None:
    with tempfile.TemporaryDirectory() as d:
        db, stop = Path(d) / "metrics.db", Path(d) / "stop"
        _generated(db, leads, keep)
        services = services_on(db, team_id=TEAM)  # migrated: the probes' engines find it current
        sessions = make_sessionmaker(make_engine(f"sqlite:///{db}"))
        # one process per kind, as Slack's requests come: a slow question holds up no click
        probes = [start_probe(db, stop, every, [kind]) for kind in KINDS]
        idle = [p.stdout.readline() for p in probes for _ in range(IDLE_REQUESTS)]
        # drained as they come: a full pipe would stop a probe mid-refresh (64 KiB of lines)
        said: list[list[str]] = [[] for _ in probes]
        drains = [threading.Thread(target=out.extend, args=(p.stdout,))
                  for p, out in zip(probes, said, strict=True)]
        for t in drains:
            t.start()
        spans = {}
        for name, now, before in (("first refresh", NOW - timedelta(days=1), None),
                                  ("daily refresh", NOW, lambda: add_one_day(
                                      sessions, 50_000_000, leads // 730, NOW))):
            if before:
                before()
            began, start = time.time(), time.perf_counter()
            report = refresh(sessions, services.config, TEAM, now)
            spans[name] = (began, time.time())
            print(f"{name}: {report.days} days, {report.rows:,} rows in "
                  f"{time.perf_counter() - start:.1f} s")
        stop.touch()
        for t in drains:
            t.join()
        lines = [json.loads(line) for out in said for line in out]
    report_requests("idle", [json.loads(line) for line in idle])
    for name, (began, ended) in spans.items():
        report_requests(f"during the {name}", [r for r in lines if began <= r[1] <= ended])


def _generated(db: Path, leads: int, keep: Path | None) -> None:
    """The store of `leads` leads, unrefreshed: generated, or copied from `keep` (a 1M
    store takes minutes to generate), which is made if it is missing."""
    if keep and keep.exists():
        shutil.copy(keep, db)
        return
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.metrics", "--generate", f"sqlite:///{db}",
                    "--leads", str(leads), "--deals", str(leads // 5),
                    "--customers", str(leads // 20)], check=True)
    print(f"generated {leads:,} leads in {time.perf_counter() - start:.0f} s")
    if keep:
        shutil.copy(db, keep)


def report_requests(when: str, lines: list) -> None:
    print(f"{when}: {'':<9} {'':>4} {'took, ms':^26} {'waited to begin, ms':^26}")
    print(f"{'':<{len(when) + 1}} {'kind':<9} {'n':>4} {'p50':>8} {'p99':>8} {'max':>8} "
          f"{'p50':>8} {'p99':>8} {'max':>8} failed")
    for kind in KINDS:
        mine = [line for line in lines if line[0] == kind]
        if mine:
            print(f"{'':<{len(when) + 1}} {kind:<9} {len(mine):>4} "
                  f"{_quantiles([took for _, _, took, _, _ in mine])} "
                  f"{_quantiles([waited for _, _, _, waited, _ in mine])} "
                  f"{sum(1 for *_, failed in mine if failed)}")


def _quantiles(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return f"{median(ms):8.1f} {ms[min(len(ms) - 1, int(len(ms) * 0.99))]:8.1f} {ms[-1]:8.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--csv-rows", type=int, default=100_000)
    p.add_argument("--refresh", action="store_true", help="requests during metric refreshes")
    p.add_argument("--leads", type=int, default=100_000, help="the refresh mode's store")
    p.add_argument("--keep", type=Path, help="the refresh mode's generated store, kept here "
                   "and reused (unrefreshed) when it exists")
    p.add_argument("--every", type=float, default=None,
                   help="seconds between requests (0.2 importing, 0.05 refreshing)")
    p.add_argument("--probe", nargs=3, metavar=("DB", "STOP", "KINDS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.probe:
        return probe(Path(args.probe[0]), args.every, Path(args.probe[1]),
                     args.probe[2].split(","))
    if args.refresh:
        return refreshes(args.leads, args.every or 0.05, args.keep)
    return imports(args.csv_rows, args.every or 0.2)


if __name__ == "__main__":
    main()
