"""What a click waits for while a CSV import runs: SQLite has one writer at a time.

    python -m bench.contention [--csv-rows 100000] [--every 0.2]

Imports `--csv-rows` leads (as `bench.ingest` does) while another process, like the bot
answering clicks, writes one small transaction through alignbot's own engine every
`--every` seconds. Reports how long each of those waited to begin, during the import.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from bench.ingest import record, services_on
from bot.intake.imports import import_csv
from storage.db import make_engine


def probe(db: Path, every: float, stop: Path) -> None:
    """Until `stop` exists: a transaction every `every` s, printing when it asked to begin
    and how long it waited."""
    engine = make_engine(f"sqlite:///{db}")
    while not stop.exists():
        asked, start = time.time(), time.perf_counter()
        with engine.begin() as conn:
            waited = time.perf_counter() - start
            conn.exec_driver_sql("UPDATE people SET weight = weight WHERE id = 1")
        print(asked, waited, flush=True)
        time.sleep(every)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--csv-rows", type=int, default=100_000)
    p.add_argument("--every", type=float, default=0.2)
    p.add_argument("--probe", nargs=2, metavar=("DB", "STOP"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.probe:
        return probe(Path(args.probe[0]), args.every, Path(args.probe[1]))
    with tempfile.TemporaryDirectory() as d:
        workdir = Path(d)
        services = services_on(workdir / "csv.db")
        path = workdir / "leads.csv"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(record(0)))
            writer.writeheader()
            writer.writerows(record(n) for n in range(args.csv_rows))
        clicks = subprocess.Popen(
            [sys.executable, "-m", "bench.contention", "--every", str(args.every),
             "--probe", str(workdir / "csv.db"), str(workdir / "stop")],
            stdout=subprocess.PIPE, text=True)
        time.sleep(1)  # the probe is up and writing
        began, start = time.time(), time.perf_counter()
        import_csv(services, "leads", path)
        elapsed, ended = time.perf_counter() - start, time.time()
        (workdir / "stop").touch()
        lines = [line.split() for line in clicks.communicate()[0].splitlines()]
    during = [float(waited) for asked, waited in lines if began <= float(asked) <= ended]
    print(f"csv: {args.csv_rows:,} rows in {elapsed:.2f} s = {args.csv_rows / elapsed:,.0f} rows/s; "
          f"meanwhile {len(during)} small writes from another process waited to begin: "
          f"median {median(during) * 1000:.1f} ms, max {max(during) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
