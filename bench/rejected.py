"""Memory of an import whose every row is rejected: the rejected rows go to their file as
batches complete, and the summary holds counts and the first few reasons.

    python -m bench.rejected [--rows 200000]

One `import_csv` of a file of leads that all fail their checks (a score of 999), into a
fresh SQLite file; prints the process's peak RSS before and after the import (the reader
process is apart), the size of the summary's JSON and of the rejected file.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import tempfile
import time
from pathlib import Path

from bench.ingest import record, services_on
from bot.intake.imports import import_csv


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=200_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "leads.csv"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(record(0)))
            writer.writeheader()
            writer.writerows({**record(n), "score": 999} for n in range(args.rows))
        services = services_on(Path(d) / "rejected.db")
        before = peak_mb()
        start = time.perf_counter()
        summary = import_csv(services, "leads", path)
        elapsed = time.perf_counter() - start
        printed = len(json.dumps(summary.as_dict(), indent=2))
        rejected = summary.rejected_file.stat().st_size
        print(f"{args.rows:,} rejected rows in {elapsed:.1f} s: peak RSS {before:,.0f} MB before "
              f"the import, {peak_mb():,.0f} MB after; summary JSON {printed:,} bytes; rejected "
              f"file {rejected / 1e6:,.1f} MB")


if __name__ == "__main__":
    main()
