"""One clock: nothing but bot/platform/clock.py may read the real time."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.platform.clock import FakeClock

ROOT = Path(__file__).resolve().parents[1]
CLOCK_MODULE = ROOT / "bot" / "platform" / "clock.py"
# calls that read the wall clock or the monotonic clock
REAL_TIME = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"),
             ("date", "today"), ("time", "time"), ("time", "monotonic"), ("time", "time_ns"),
             ("time", "perf_counter"), ("time", "localtime"), ("time", "gmtime")}


def real_time_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if (name, node.func.attr) in REAL_TIME:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}.{node.func.attr}()")
    return found


def test_only_the_clock_module_reads_the_real_time():
    offenders = [hit for package in ("bot", "handlers", "storage")
                 for path in sorted((ROOT / package).rglob("*.py")) if path != CLOCK_MODULE
                 for hit in real_time_reads(path)]
    assert offenders == []


def test_the_scan_would_catch_a_real_time_read(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("import time, datetime\nx = time.time()\ny = datetime.datetime.now()\n")
    assert len(real_time_reads_outside_root(sneaky)) == 2


def real_time_reads_outside_root(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and ((getattr(n.func.value, "id", None) or getattr(n.func.value, "attr", None)),
                 n.func.attr) in REAL_TIME]


def test_fake_clock_moves_only_when_told():
    clock = FakeClock(datetime(2026, 3, 8, 6, 59, tzinfo=UTC))
    assert clock.now() == clock.now()
    clock.advance(timedelta(minutes=2))
    assert clock.now() == datetime(2026, 3, 8, 7, 1, tzinfo=UTC)


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        FakeClock(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
