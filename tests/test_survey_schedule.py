"""Survey runs on the FakeClock: a fortnightly schedule across two workers, prompts in each
person's working hours, reminders only to who has not answered, each once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.blocks import surveys as views
from bot.platform.config import Secret, Secrets, parse_config
from bot.platform.runtime import build_services
from bot.surveys import runs
from storage.models import SurveyRun
from tests.conftest import TEST_CONFIG
from tests.slack import SIGNING_SECRET, TEAM, click
from tests.test_nudges import drain

FAR = [
    {"slack_id": "U0TOKYO01", "email": "kei@example.com", "role": "sales", "name": "Kei",
     "timezone": "Asia/Tokyo"},
    {"slack_id": "U0DENVER1", "email": "dee@example.com", "role": "sales", "name": "Dee",
     "timezone": "America/Denver"},
]
SURVEY = {"name": "pulse", "template": "alignment", "audience": ["sales"],
          "schedule": "0 10 * * mon", "every": "2w", "open_for": "3d", "reminders": 2,
          "remind_every": "1d", "min_responses": 3}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def config():
    return parse_config({**TEST_CONFIG, "people": TEST_CONFIG["people"] + FAR,
                         "surveys": [SURVEY]}, "<tests>")


@pytest.fixture
def worker_b(config, clock, engine, fake_slack):
    """A second process on the same database: its own services, its own sender."""
    return build_services(config, Secrets(slack_signing_secret=Secret(SIGNING_SECRET)), clock,
                          engine=engine, slack=fake_slack.client(), team_id=TEAM)


def sweep_both(services, worker_b, clock, when: datetime) -> None:
    clock.set(when)
    runs.sweep(services, when)
    runs.sweep(worker_b, when)
    drain(services, clock)


def prompted(fake, user) -> int:
    return sum(1 for m in fake.in_channel(user) if m.action_ids())


def reminders(fake, user) -> int:
    return sum(1 for m in fake.in_channel(user) if m.text.startswith("Reminder"))


def test_a_fortnightly_run_opens_once_across_two_workers(services, worker_b, clock, fake_slack):
    mondays = [at("2026-11-30T10:00:00-05:00") + timedelta(weeks=n) for n in range(5)]
    for monday in mondays:
        for minute in (0, 1, 30):  # every worker's sweep, every minute after the firing
            sweep_both(services, worker_b, clock, monday + timedelta(minutes=minute))
        sweep_both(services, worker_b, clock, monday + timedelta(days=3, minutes=1))  # closed
    with services.sessions() as s:
        opened = list(s.scalars(select(SurveyRun.opened_at).order_by(SurveyRun.id)))
    assert opened == [mondays[0], mondays[2], mondays[4]]  # every other Monday, once each
    assert prompted(fake_slack, "U0SALES01") == 3 * 7
    assert len(fake_slack.in_channel("C0DIGEST01")) == 3  # each run's results, once


def test_a_firing_missed_by_more_than_the_grace_opens_nothing(services, clock):
    sweep_both(services, services, clock, at("2026-11-30T12:00:00-05:00"))
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(SurveyRun)) == 0


def test_prompts_wait_for_each_persons_working_morning(app, services, worker_b, clock,
                                                       fake_slack):
    """Opened on Friday evening in New York: Tokyo is prompted on its Monday morning (Sunday
    evening in New York), New York and Denver on theirs."""
    clock.set(at("2026-12-04T20:00:00-05:00"))  # 18:00 in Denver, Saturday in Tokyo
    runs.start(services, "pulse", by="U0ADMIN01")
    drain(services, clock)
    assert all(prompted(fake_slack, u) == 0 for u in ("U0SALES01", "U0TOKYO01", "U0DENVER1"))
    sweep_both(services, worker_b, clock, at("2026-12-06T19:00:00-05:00"))  # Mon 09:00 Tokyo
    assert prompted(fake_slack, "U0TOKYO01") == 7 and prompted(fake_slack, "U0SALES01") == 0
    sweep_both(services, worker_b, clock, at("2026-12-07T09:00:00-05:00"))
    assert prompted(fake_slack, "U0SALES01") == 7 and prompted(fake_slack, "U0DENVER1") == 0
    sweep_both(services, worker_b, clock, at("2026-12-07T09:00:00-07:00"))
    assert prompted(fake_slack, "U0DENVER1") == 7
    assert prompted(fake_slack, "U0TOKYO01") == 7  # each prompt once


def test_only_people_with_questions_left_are_reminded_each_reminder_once(
        app, services, worker_b, clock, fake_slack):
    clock.set(at("2026-12-07T10:00:00-05:00"))
    run = runs.start(services, "pulse", by="U0ADMIN01")
    drain(services, clock)
    for position in range(6):  # the comment is optional: reminders never chase it
        msg = next(m for m in fake_slack.in_channel("U0SALES01")
                   if any(b.get("block_id") == f"survey-{run.id}:{position}" for b in m.blocks))
        click(app, fake_slack, msg, f"{views.ANSWER}.3", "U0SALES01", clock.now())
    msg = next(m for m in fake_slack.in_channel("U0SALESMG1") if m.action_ids())
    click(app, fake_slack, msg, f"{views.ANSWER}.3", "U0SALESMG1", clock.now())  # one of six
    for hours in range(0, 72, 4):  # three days of sweeps by both workers
        sweep_both(services, worker_b, clock, at("2026-12-08T10:00:00-05:00")
                   + timedelta(hours=hours))
    assert reminders(fake_slack, "U0SALES01") == 0
    assert reminders(fake_slack, "U0SALESMG1") == 2  # `reminders = 2`, a day apart
    # Los Angeles was prompted a day late (its mornings come after the sweeps started): its
    # second reminder would fall after the close on Thursday, so there is none
    assert reminders(fake_slack, "U0SALES02") == 1
    last = [m for m in fake_slack.in_channel("U0SALESMG1") if m.text.startswith("Reminder")][-1]
    assert "5 question(s)" in last.text  # what is still open, not what was answered


def test_a_reminder_outside_working_hours_waits_for_the_morning(services, clock, fake_slack):
    clock.set(at("2026-12-07T16:30:00-05:00"))  # prompted at 16:30: due again at 16:30 Tuesday
    runs.start(services, "pulse", by="U0ADMIN01")
    drain(services, clock)
    sweep_both(services, services, clock, at("2026-12-08T17:30:00-05:00"))  # seen after hours
    assert reminders(fake_slack, "U0SALES01") == 0
    sweep_both(services, services, clock, at("2026-12-09T08:59:00-05:00"))
    assert reminders(fake_slack, "U0SALES01") == 0
    sweep_both(services, services, clock, at("2026-12-09T09:00:00-05:00"))
    assert reminders(fake_slack, "U0SALES01") == 1


def walk(services, clock, until: datetime) -> list[str]:
    """Sweep only when the sweep says it next has work (as the shell's `tick` does): when."""
    times = []
    while (due := runs.next_due(services)) is not None and due <= until:
        clock.set(max(due, clock.now() + timedelta(minutes=1)))
        runs.sweep(services, clock.now())
        drain(services, clock)
        times.append(clock.now().astimezone(at("2026-11-30T00:00:00-05:00").tzinfo)
                     .strftime("%a %H:%M"))
    return times


def test_the_sweep_says_when_it_next_has_work(services, clock, fake_slack):
    """What lets `tick 1w` skip the idle minutes without missing any: the firing, each
    person's held prompt, each reminder and the close, in New York time."""
    clock.set(at("2026-11-30T09:00:00-05:00"))
    assert runs.next_due(services) == at("2026-11-30T10:00:00-05:00")  # the firing
    clock.set(at("2026-11-30T10:20:00-05:00"))  # a restart missed it: still due (grace)
    assert runs.next_due(services) == clock.now()
    days = [f"{d} {t}" for d in ("Tue", "Wed") for t in ("10:21", "11:00", "12:00", "19:00")]
    # opened (a minute on, as the shell's next firing) and New York prompted; then Denver's,
    # Los Angeles' and Tokyo's mornings; a day later each one's reminders, twice; the close.
    # then the next Monday's firing (which `every = 2w` skips), once
    assert walk(services, clock, at("2026-12-07T10:00:00-05:00")) == [
        "Mon 10:21", "Mon 11:00", "Mon 12:00", "Mon 19:00", *days, "Thu 10:00", "Mon 10:00"]
    assert prompted(fake_slack, "U0TOKYO01") == 7 and reminders(fake_slack, "U0SALES01") == 2


def test_the_close_forgets_who_was_reminded_of_which_questions(app, services, clock,
                                                                fake_slack):
    """A reminder lists the questions its person had left, so by elimination those they
    had answered: after the close neither its message nor a count of reminders is kept."""
    from storage.models import OutboxMessage, SurveyInvite

    clock.set(at("2026-12-07T10:00:00-05:00"))
    run = runs.start(services, "pulse", by="U0ADMIN01")
    drain(services, clock)
    msg = next(m for m in fake_slack.in_channel("U0SALESMG1") if m.action_ids())
    click(app, fake_slack, msg, f"{views.ANSWER}.3", "U0SALESMG1", clock.now())  # one of six
    sweep_both(services, services, clock, at("2026-12-08T10:00:00-05:00"))
    assert reminders(fake_slack, "U0SALESMG1") == 1
    with services.work() as work:
        runs.close_run(work, work.session.get(SurveyRun, run.id), announce=False)
    with services.sessions() as s:
        assert [str(p) for p in s.scalars(select(OutboxMessage.payload))
                if "Reminder:" in str(p)] == []
        assert set(s.scalars(select(SurveyInvite.reminders_sent))) == {0}
