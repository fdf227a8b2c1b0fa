"""Channel digests: each (digest, channel, period) posted once, on the FakeClock, across
restarts, outages, workers and schedules that fire more often than the period; the
sections, within Slack's limits whatever the data; preview and send; the config."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from bot.cli import main
from bot.digests import schedule
from bot.features import FEATURES
from bot.platform.config import ConfigError, Secret, Secrets, parse_config
from bot.platform.runtime import build_services
from bot.platform.scheduler import fire_times
from storage.models import DigestPost, Lead, OutboxMessage, Person
from tests import slack_contract
from tests.conftest import TEST_CONFIG
from tests.slack import SIGNING_SECRET, TEAM, all_text, reply, slash

DIGEST = "C0DIGEST01"
WEEKLY = {"name": "weekly", "channel": DIGEST, "schedule": "0 9 * * mon", "period": "last week"}
NY_OFFSET = timedelta(hours=5)  # New York in winter: 09:00 there is 14:00 UTC


def ny(month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) + NY_OFFSET


@pytest.fixture
def config():
    return parse_config({**TEST_CONFIG, "digests": [WEEKLY]}, "<tests>")


def restart(services, clock):
    """A new process on the same store: a new sender, nothing kept in memory."""
    return build_services(services.config, Secrets(slack_signing_secret=Secret(SIGNING_SECRET)),
                          clock, engine=services.engine, slack=services.slack,
                          team_id=services.team_id)


def run_until(services, clock, until: datetime) -> None:
    """The scheduler: the digest job at each of its fire times, then the sender (woken by
    what the job queued, as the running app's is by the commit)."""
    for when in fire_times(FEATURES.job("digests.post"), services, clock.now(), until):
        clock.set(when)
        if FEATURES.job("digests.post").run(services, when):
            services.sender.flush()
    clock.set(until)


def add_lead(services, at: datetime, n: int) -> None:
    """A lead routed at `at`, so the week has something to say."""
    with services.transaction() as session:
        session.add(Lead(team_id=TEAM, external_id=f"L-{n}", source="webinar", status="routed",
                         created_at=at, mql_at=at, routed_at=at, updated_at=at))


def digests(fake_slack) -> list:
    return [m for m in fake_slack.in_channel(DIGEST) if not m.thread_ts]


def test_four_weeks_with_a_restart_and_a_one_day_outage_post_four_digests(
        services, clock, fake_slack):
    # Tue Nov 24: the digest has never posted, and Monday's firing came before it existed
    for week in range(4):
        add_lead(services, ny(11, 24) + timedelta(days=7 * week), week)
    run_until(services, clock, ny(11, 30, 12))  # Mon Nov 30 09:00: the week of Nov 23
    services = restart(services, clock)
    run_until(services, clock, ny(12, 13, 12))  # Mon Dec 7 09:00: the week of Nov 30
    # down from Sunday noon to Monday noon: Dec 14 09:00 passes unseen
    clock.set(ny(12, 14, 12))
    services = restart(services, clock)
    run_until(services, clock, ny(12, 22))  # caught up at 12:00; then Dec 21 on time

    posted = digests(fake_slack)
    assert [m.text.split(":")[0] for m in posted] == [
        f"Weekly digest, week of 2026-{day}" for day in ("11-23", "11-30", "12-07", "12-14")]
    late = ["Posted late" in all_text({"blocks": m.blocks}) for m in posted]
    assert late == [False, False, True, False]
    assert "was due <!date^" in json.dumps(posted[2].blocks)
    # each with its chart in its thread
    files = [f for f in fake_slack.files if f.get("shared")]
    assert [(f["channel"], f["thread_ts"]) for f in files] == [(DIGEST, m.ts) for m in posted]
    assert all(f["bytes"].startswith(b"\x89PNG") for f in files)


def test_a_week_down_posts_the_missed_digest_late(services, clock, fake_slack):
    run_until(services, clock, ny(11, 30, 9, 30))  # posts the week of Nov 23
    clock.set(ny(12, 8, 10))  # down for 8 days: Dec 7 09:00 (a day ago) read the week of Nov 30
    run_until(restart(services, clock), clock, ny(12, 8, 11))
    assert len(digests(fake_slack)) == 2
    assert "Posted late" in all_text({"blocks": digests(fake_slack)[1].blocks})


def test_a_period_past_its_grace_is_recorded_as_skipped(services, clock, fake_slack, caplog):
    """A daily digest of "yesterday", down for two days: the day before yesterday's post
    is more than a period (a day) late."""
    services.config = parse_config({**TEST_CONFIG, "digests": [
        {"name": "daily", "channel": DIGEST, "schedule": "0 9 * * *", "period": "yesterday"}]},
        "<tests>")
    run_until(services, clock, ny(11, 25, 9, 30))  # Tue 09:00 (Monday's), Wed (Tuesday's)
    clock.set(ny(11, 27, 10, 30))  # down through Thu 09:00 (25.5 h ago), Fri 09:00 (1.5 h ago)
    with caplog.at_level(logging.WARNING, logger="bot.digests.schedule"):
        outcomes = schedule.sweep(restart(services, clock), clock.now())
    assert [(o.period, o.kind) for o in outcomes] == [("yesterday", "skipped"),
                                                      ("yesterday", "late")]
    assert "is more than a period late: not posted" in caplog.text
    with services.sessions() as session:
        kinds = list(session.scalars(select(DigestPost.kind).order_by(DigestPost.fired_at)))
    assert kinds == ["on_time", "on_time", "skipped", "late"]
    assert schedule.sweep(services, clock.now()) == []  # decided: never looked at again


DAILY = {"name": "daily", "channel": DIGEST, "schedule": "0 9 * * *", "period": "yesterday"}


@pytest.mark.parametrize(("down_from", "back_at", "kinds"), [
    # fall back (Sun Nov 1, 02:00 EDT -> 01:00 EST): Friday's fired Sat 09:00 EDT; back at
    # Sun 08:30 EST (24.5 hours later), before Saturday's fires: Friday's is not a day late
    (datetime(2026, 10, 31, 12, tzinfo=UTC), datetime(2026, 11, 1, 13, 30, tzinfo=UTC),
     [("2026-10-30", "late")]),
    # spring forward (Sun Mar 8, 02:00 EST -> 03:00 EDT): Friday's fired Sat 09:00 EST; back
    # at Sun 09:30 EDT (23.5 hours later), after Saturday's fired: Friday's is a day late
    (datetime(2026, 3, 7, 13, tzinfo=UTC), datetime(2026, 3, 8, 13, 30, tzinfo=UTC),
     [("2026-03-06", "skipped"), ("2026-03-07", "on_time")]),
    # Sunday Nov 1 is 25 hours long; its digest fired Mon 09:00 EST and is a day late at
    # Tue 09:30 (24.5 hours later), when Monday's has fired: a day on the clocks, not 25 h
    (datetime(2026, 11, 2, 13, tzinfo=UTC), datetime(2026, 11, 3, 14, 30, tzinfo=UTC),
     [("2026-11-01", "skipped"), ("2026-11-02", "on_time")]),
])
def test_a_late_daily_digest_is_a_day_late_on_the_workspaces_clocks_across_a_change(
        services, clock, fake_slack, down_from, back_at, kinds):
    """Late until the same time the next day, when the next one fires, whether the clocks
    changed in the period or between its firing and then."""
    services.config = parse_config({**TEST_CONFIG, "digests": [DAILY]}, "<tests>")
    clock.set(down_from - timedelta(days=1))
    run_until(services, clock, down_from)  # the day before's digest posted on time
    clock.set(back_at)
    outcomes = schedule.sweep(restart(services, clock), back_at)
    tz = services.config.workspace.tz
    with services.sessions() as session:
        decided = session.execute(select(DigestPost.period_start, DigestPost.kind).where(
            DigestPost.fired_at > down_from).order_by(DigestPost.period_start)).all()
    assert [(start.astimezone(tz).date().isoformat(), kind) for start, kind in decided] == kinds
    assert [o.kind for o in outcomes] == [kind for _, kind in kinds]


def test_a_schedule_firing_more_often_than_its_period_posts_it_once(services, clock, fake_slack):
    services.config = parse_config({**TEST_CONFIG, "digests": [
        {**WEEKLY, "schedule": "0 * * * *"}]}, "<tests>")  # hourly, for last week
    run_until(services, clock, ny(12, 2))  # Tue to Wed next week
    # its first firing, Tue 10:00, reads the week before; from Mon Nov 30, the next one
    assert [m.text.split(":")[0] for m in digests(fake_slack)] == [
        "Weekly digest, week of 2026-11-16", "Weekly digest, week of 2026-11-23"]
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DigestPost)) == 2


def test_two_workers_post_each_digest_once(services, clock, fake_slack):
    """Two workers' jobs at the same firing, at the same time: both read and draw, one
    claims. On PostgreSQL the second's INSERT waits for the first's commit, then finds it."""
    add_lead(services, ny(11, 24), 1)  # something to chart
    clock.set(ny(11, 30))
    other = restart(services, clock)
    gate = threading.Barrier(2)

    def work(s):
        gate.wait()
        schedule.sweep(s, ny(11, 30))

    threads = [threading.Thread(target=work, args=(s,)) for s in (services, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    services.sender.flush()
    other.sender.flush()
    assert len(digests(fake_slack)) == 1
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DigestPost)) == 1
        assert session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.ref.startswith("digest:"))) == 2  # the message and its chart


def test_a_worker_that_loses_the_claim_queues_nothing(services, clock, monkeypatch):
    add_lead(services, ny(11, 24), 1)
    clock.set(ny(11, 30))
    week = schedule.parse_period("last week", clock.now(), services.config.workspace.tz)
    digest = services.config.digests[0]
    first = schedule.post(services, digest, week, clock.now(), fired_at=clock.now(),
                          kind="on_time")
    monkeypatch.setattr(schedule.queries, "get_post", lambda *_: None)  # it read before the claim
    second = schedule.post(services, digest, week, clock.now(), fired_at=clock.now(),
                           kind="on_time")
    assert (first.kind, second.kind) == ("on_time", "already")
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 2


def test_an_empty_period_says_so_or_is_skipped(services, clock, fake_slack):
    clock.set(ny(11, 30))
    schedule.sweep(services, clock.now())
    services.sender.flush()
    [posted] = digests(fake_slack)
    assert "Nothing to report" in all_text({"text": posted.text, "blocks": posted.blocks})
    assert not fake_slack.files  # no chart of nothing
    services.config = parse_config({**TEST_CONFIG, "digests": [
        {**WEEKLY, "name": "quiet", "skip_if_empty": True}]}, "<tests>")
    assert [o.kind for o in schedule.sweep(services, clock.now())] == ["empty"]
    services.sender.flush()
    assert len(digests(fake_slack)) == 1


def test_the_sections(services, clock, fake_slack):
    clock.set(ny(11, 30))
    with services.transaction() as session:
        sam = session.scalar(select(Person).where(Person.slack_id == "U0SALES01")) or Person(
            team_id=TEAM, slack_id="U0SALES01", role="sales", updated_at=clock.now())
        session.add(sam)
        session.flush()
        for n, (routed, fate) in enumerate([(ny(11, 24), "accepted"), (ny(11, 25), "not_icp"),
                                            (ny(11, 26), "not_icp"), (ny(11, 27), "open")]):
            session.add(Lead(
                team_id=TEAM, external_id=f"L-{n}", source="webinar", name=f"Lead {n}",
                status={"accepted": "accepted", "open": "routed"}.get(fate, "rejected"),
                created_at=routed, mql_at=routed, routed_at=routed, updated_at=routed,
                owner_id=sam.id, sla_due_at=routed + timedelta(hours=1),
                accepted_at=routed if fate == "accepted" else None,
                rejected_at=routed if fate == "not_icp" else None,
                rejection_reason=fate if fate == "not_icp" else None))
    text = all_text(reply(slash(services_app(services), "digest preview weekly", clock.now())))
    assert "Weekly digest: week of 2026-11-23" in text
    assert "*Leads routed* *4*" in text
    assert "*Accepted* 1 · *rejected* 2" in text and "Top reasons: not_icp 2" in text
    assert "*Overdue now (2)*" in text  # accepted but untouched is overdue too
    assert "`L-0` *Lead 0* · <@U0SALES01>, due <!date^" in text
    assert "`L-3` *Lead 3* · <@U0SALES01>" in text
    assert "*Response time* *no data* · target 30 min" in text
    assert "*Win rate* *no data* · target 30%" in text
    assert "*Pulse*\nNo closed pulse survey run yet." in text
    assert "Alignment index" in text and "*Perception vs. reality*" in text
    assert "When posted, a chart of the main trends follows" in text


def services_app(services):
    from bot.app import create_app
    from tests.conftest import Inline

    return create_app(services, after_ack=Inline())


def test_slack_limits_whatever_the_data(services, clock, fake_slack, app):
    """10,000 overdue leads and 200 rejection reasons: one message within 50 blocks and
    3,000 characters a section, ten leads and five reasons named, the rest counted."""
    clock.set(ny(11, 30))
    due = ny(11, 25)
    long = "<!channel>&" * 20
    rows = [{"team_id": TEAM, "external_id": f"L{n:05d}{long}"[:128], "source": "webinar",
             "name": (long * 2)[:200], "company": (long * 2)[:200], "status": "routed",
             "created_at": due,
             "mql_at": due, "routed_at": due, "updated_at": due,
             "sla_due_at": due + timedelta(seconds=n)} for n in range(10_000)]
    rows += [{"team_id": TEAM, "external_id": f"R{n:03d}", "source": "webinar",
              "status": "rejected", "created_at": due, "mql_at": due, "routed_at": due,
              "updated_at": due, "rejected_at": due, "rejection_reason": f"<!here>{n:03d}&" * 2}
             for n in range(200)]
    with services.transaction() as session:
        session.execute(insert(Lead), rows)
    reply(slash(app, "digest send weekly", clock.now(), user="U0ADMIN01"))
    services.sender.flush()  # the fake Slack checks the message against Slack's limits
    [posted] = digests(fake_slack)
    message = {"text": posted.text, "blocks": posted.blocks}
    slack_contract.check_message(message)
    text = all_text(message)
    assert "…and 9,990 more (`/align leads overdue`)" in text
    assert ", and 195 more" in text
    assert "<!channel>" in text and "<!channel>" not in json.dumps(posted.blocks)


def test_preview_is_for_anyone_and_send_for_admins(app, clock, fake_slack):
    clock.set(ny(12, 1))
    body = reply(slash(app, "digest preview weekly", clock.now(), user="U0SALES01"))
    assert body["response_type"] == "ephemeral" and not fake_slack.in_channel(DIGEST)
    refused = all_text(reply(slash(app, "digest send weekly", clock.now(), user="U0SALES01")))
    assert "Only admins can run `/align digest send`" in refused
    sent = all_text(reply(slash(app, "digest send weekly", clock.now(), user="U0ADMIN01")))
    assert "The weekly digest for week of 2026-11-23 is on its way to <#C0DIGEST01>" in sent
    again = all_text(reply(slash(app, "digest send weekly", clock.now(), user="U0ADMIN01")))
    assert "has been posted already" in again
    assert "There is no digest `nope`. Digests: `weekly`." in all_text(
        reply(slash(app, "digest preview nope", clock.now())))
    assert "Which digest?" in all_text(reply(slash(app, "digest preview", clock.now())))


def test_a_send_counts_as_the_periods_post(services, clock, fake_slack, app):
    clock.set(ny(12, 1))  # Tuesday: "last week" is Nov 23–29, the week Nov 30's firing read
    reply(slash(app, "digest send weekly", clock.now(), user="U0ADMIN01"))
    run_until(services, clock, ny(12, 7, 10))  # Dec 7 09:00 reads the next week: posts it
    services.sender.flush()
    assert len(digests(fake_slack)) == 2


def test_the_cli_preview_prints_json(services, clock, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", services.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("ALIGNBOT_TEAM_ID", TEAM)
    monkeypatch.setattr("bot.cli.load_config", lambda *_: services.config)
    monkeypatch.setattr("bot.platform.clock.SystemClock.now", lambda self: ny(12, 1))
    assert main(["digest", "preview", "weekly", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["digest"] == "weekly" and out["channel"] == DIGEST and out["empty"] is True
    assert out["period"]["start"] == "2026-11-23T00:00:00-05:00"
    assert list(out)[-7:] == ["handoff", "sla", "funnel", "pulse", "index", "gap", "chart"][:6] \
        or set(out) >= {"handoff", "sla", "funnel", "pulse", "index", "gap"}
    assert out["pulse"] is None and out["index"]["index"] is None
    assert main(["digest", "preview", "nope"]) == 2
    assert "There is no digest `nope`" in capsys.readouterr().err


# ------------------------------------------------------------------ the config


def digest_problems(*entries, **extra) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config({**TEST_CONFIG, "digests": list(entries), **extra}, "<tests>")
    return err.value.problems


def test_malformed_digests_are_reported_with_their_keys():
    problems = digest_problems(
        {"name": "Weekly Digest!", "schedule": "0 9 * * 1", "period": "last fortnight",
         "sections": ["handoff", "weather"], "skip_if_empty": "no", "colour": "red"},
        {"name": "daily", "channel": "general", "schedule": "at nine"},
        {"name": "daily", "schedule": "0 9 * * *", "period": "yesterday", "sections": []})
    assert problems == [
        "digests[0].colour: unknown key; known keys: name, channel, schedule, period, sections, "
        "skip_if_empty",
        "digests[0].name: 'Weekly Digest!' must be a short name of a-z, 0-9, - and _ (it is "
        "typed in `/align digest send <name>`)",
        "digests[0].schedule: '0 9 * * 1': name the days of the week (mon-fri, sun), not "
        "numbers: cron dialects disagree on which day 0 is",
        pytest.approx(problems[3]),
        "digests[0].sections: 'weather' is not one of handoff, sla, funnel, pulse, index, gap, "
        "chart",
        "digests[0].skip_if_empty: 'no' must be true or false",
        "digests[1].channel: 'general' is not a Slack id like U0123ABCD or C0123ABCD",
        pytest.approx(problems[7]),
        "digests[1].period: is required",
        "digests[2].name: 'daily' is the name of an earlier digest",
        "digests[2].sections: must be a non-empty list of handoff, sla, funnel, pulse, index, "
        "gap, chart"]
    assert problems[3].startswith("digests[0].period: I couldn't read the period")
    assert problems[7].startswith("digests[1].schedule: 'at nine' is not a crontab")
    assert digest_problems({k: v for k, v in WEEKLY.items() if k != "channel"},
                           channels={}) == [
        "digests[0].channel: is required ([channels] digest is not set either)"]
    assert digest_problems(extra := {"name": "x"}) and extra  # required keys named
    with pytest.raises(ConfigError, match="digests: must be an array of tables"):
        parse_config({**TEST_CONFIG, "digests": {"name": "weekly"}})


def test_a_digest_without_a_channel_takes_the_digest_channel():
    config = parse_config({**TEST_CONFIG, "digests": [
        {k: v for k, v in WEEKLY.items() if k != "channel"}]})
    [digest] = config.digests
    assert (digest.channel, digest.sections, digest.skip_if_empty) == (
        DIGEST, ("handoff", "sla", "funnel", "pulse", "index", "gap", "chart"), False)


def test_malformed_alignment_definitions_are_reported_with_their_keys():
    with pytest.raises(ConfigError) as err:
        parse_config({**TEST_CONFIG, "alignment": {
            "period": "forever", "perception_levels": [3.5, 2.5], "attainment_levels": 0.8,
            "targets_met_levels": [0.5, 1.5], "weights": {"kpi": 0.5, "perception": 0.5},
            "dimensions": {"lead_quality": ["acceptance", "conversion_rate"], "mood": ["win_rate"],
                           "shared_goals": []}}})
    problems = err.value.problems
    assert problems[0].startswith("alignment.period: I couldn't read the period")
    assert problems[1:] == [
        "alignment.perception_levels: [3.5, 2.5] must rise (3.5 below 2.5), from 1 to 5",
        "alignment.attainment_levels: 0.8 must be two numbers: where Medium starts, where High "
        "starts",
        "alignment.targets_met_levels: [0.5, 1.5] must rise (0.5 below 1.5), from 0 to 1",
        "alignment.weights: must be a table of kpi, perception, agreement",
        "alignment.dimensions.mood: unknown key; known keys: customer_understanding, "
        "shared_goals, communication, lead_quality, customer_satisfaction",
        "alignment.dimensions.lead_quality: 'acceptance' is not a metric (did you mean "
        "'acceptance_rate'?)",
        "alignment.dimensions.shared_goals: must be a non-empty list of metric keys"]
    with pytest.raises(ConfigError, match="weights are at least 0 and add up to 1"):
        parse_config({**TEST_CONFIG, "alignment": {
            "weights": {"kpi": 0.5, "perception": 0.5, "agreement": 0.5}}})


def test_a_chart_slack_refuses_is_given_up_and_the_admins_told(services, clock, fake_slack):
    add_lead(services, ny(11, 24), 1)
    clock.set(ny(11, 30))
    fake_slack.script("files.getUploadURLExternal",
                      (200, {}, {"ok": False, "error": "not_in_channel"}))
    schedule.sweep(services, clock.now())
    services.sender.flush()
    assert len(digests(fake_slack)) == 1 and not [f for f in fake_slack.files if f.get("shared")]
    with services.sessions() as session:
        upload = session.scalar(select(OutboxMessage).where(OutboxMessage.method == "files.uploadV2"))
    assert (upload.state, upload.last_error) == ("dead", "not_in_channel")
    assert any("could not be delivered" in m.text for m in fake_slack.in_channel("U0ADMIN01"))


def test_a_weekly_digests_gap_and_index_read_the_alignment_period_as_align_gap_does(
        services, clock, fake_slack):
    """Churn's target is set for the gap's 90 days: five of 100 customers gone in October
    is a low churn reality, though none left in the digest's week (weekly churn of 0 would
    beat any target). The digest says what `/align gap` says then, and over which days."""
    import dataclasses

    from storage.models import Customer

    services.config = dataclasses.replace(
        services.config, targets={**services.config.targets, "churn_rate": 0.02})
    clock.set(ny(11, 30))
    with services.transaction() as session:
        for n in range(100):
            session.add(Customer(team_id=TEAM, external_id=f"C-{n}", started_at=ny(1, 5),
                                 churned_at=ny(10, 14) if n < 5 else None, updated_at=ny(1, 5)))
    add_lead(services, ny(11, 24), 1)  # the week has something to say
    app = services_app(services)
    digest = all_text(reply(slash(app, "digest preview weekly", clock.now())))
    said = next(line for line in digest.splitlines() if line.startswith("*Customer satisfaction*"))
    assert ":red_circle: Low" in said
    assert "*Perception vs. reality* · last 90 days (Sep 2 – Nov 30, 2026)" in digest
    assert "*Customer satisfaction* · reality :red_circle: Low" in all_text(
        reply(slash(app, "gap", clock.now())))  # as /align gap says
