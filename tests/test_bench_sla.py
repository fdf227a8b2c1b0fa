"""bench.sla times what it means to: the stages it makes due are sent, not voided."""

from __future__ import annotations

from bench.ingest import NOW, populate, services_on
from bench.sla import MIXES, make_due
from bot.sla.nudges import sweep


def test_the_stages_the_sla_bench_makes_due_are_swept_not_voided(tmp_path):
    """A stage written for an earlier routing than its lead's is dropped by the sweep: the
    bench moves each lead's routing time, so its stage must move with it, or the timed
    sweep only drops them (it did: 1,000 dropped in 48 ms, against 69 ms sending 975)."""
    services = services_on(tmp_path / "bench.db")
    populate(services, 200)
    for skip, mix in enumerate(MIXES):
        make_due(services, 40, mix.split(","), skip=40 * skip)
        report = sweep(services, NOW)
        assert report.dropped == 0 and report.sent + report.held == 40, (mix, report)
