"""The shell's `--demo`: how long it takes to make, and how long the tour's first steps take.

    python -m bench.demo [--full]

Builds the demo in a fresh SQLite file as `alignbot shell --demo --at 2026-12-01T10:00-05:00`
does, timing the data and its metric snapshots (from last month on), then the tour's first
`tick 2h` and `/align scorecard last quarter`. `--full` also times a full refresh of every
day of the history: what the first tick once did before it could print anything.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bot.local.demo import generate_demo
from bot.local.shell import build_shell
from bot.metrics.snapshots import refresh
from bot.platform.config import load_config
from bot.platform.work import Work

AT = datetime.fromisoformat("2026-12-01T10:00:00-05:00")
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--full", action="store_true", help="also time a full refresh of the history")
    args = p.parse_args()
    config = load_config(str(ROOT / "alignbot.example.toml"))
    with tempfile.TemporaryDirectory() as tmp:
        timed: dict[str, float] = {}
        out = io.StringIO()
        start = time.perf_counter()
        shell = build_shell(config, db_url=f"sqlite:///{tmp}/demo.db", at=AT, demo=True, out=out)
        timed["start-up with --demo"] = time.perf_counter() - start
        with shell.services.sessions.begin() as session:  # the data alone, in a new workspace
            start = time.perf_counter()
            generate_demo(Work(session, "T0BENCH", config, AT))
            timed["  of which the data"] = time.perf_counter() - start
            session.rollback()
        for line in ("tick 2h", "/align scorecard last quarter", "tick 2h"):
            start = time.perf_counter()
            shell.execute(line)
            timed[line if line not in timed else f"{line} (again)"] = time.perf_counter() - start
        if args.full:
            start = time.perf_counter()
            report = refresh(shell.services.sessions, config, shell.services.team_id,
                             shell.clock.now(), full=True)
            timed[f"full refresh ({report.days} days)"] = time.perf_counter() - start
    print(out.getvalue().splitlines()[0])
    for what, seconds in timed.items():
        print(f"{what:<36} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
