"""Scheduled jobs: stable ids, explicit misfire/coalesce, plain functions of (services, now)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.features import FEATURES
from bot.platform import outbox
from bot.platform.scheduler import fire_times, run_job, start_scheduler


def test_jobs_are_registered_with_stable_ids_and_explicit_policies(services):
    scheduler = start_scheduler(services, paused=True)
    try:
        registered = {j.id: j for j in scheduler.get_jobs()}
        assert set(registered) == {j.id for j in FEATURES.jobs}
        for j in FEATURES.jobs:
            assert registered[j.id].coalesce is True
            assert registered[j.id].misfire_grace_time == j.misfire_grace_time
            assert registered[j.id].max_instances == 1
    finally:
        scheduler.shutdown(wait=False)


def test_interval_jobs_fire_on_fixed_marks(services):
    start = datetime(2026, 11, 24, 14, 0, 10, tzinfo=UTC)
    times = fire_times(FEATURES.job("outbox.sweep"), services, start, start + timedelta(minutes=2))
    assert times[0] == datetime(2026, 11, 24, 14, 0, 30, tzinfo=UTC)
    assert len(times) == 4 and all(t.second in (0, 30) for t in times)


def test_daily_job_fires_at_its_local_hour_across_a_dst_change(services):
    # 2026-11-01 is the US fall-back day: 03:00 New York is 08:00 UTC before, 08:00 UTC after
    start = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
    times = fire_times(FEATURES.job("retention.prune"), services, start, start + timedelta(days=3))
    assert [t.astimezone(services.config.workspace.tz).hour for t in times] == [3, 3, 3]
    assert [t.astimezone(UTC).hour for t in times] == [7, 8, 8]


def test_outbox_sweep_job_delivers_what_is_due(services, fake_slack):
    with services.transaction() as session:
        outbox.post(session, services.team_id, "C0HANDOFF1", {"text": "queued"},
                    now=services.clock.now())
    run_job(services, "outbox.sweep")
    assert [m.text for m in fake_slack.messages] == ["queued"]
