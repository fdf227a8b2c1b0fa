"""SLA nudges: scheduled at routing, cancelled by a response, held outside working hours, sent once."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.blocks import handoff as cards
from bot.blocks import sla as views
from bot.nudges import sweep
from storage.db import make_sessionmaker
from storage.models import Lead, Nudge, OutboxMessage, Person
from tests.slack import click
from tests.test_handoff import card, new_lead


def with_stages(services, **stages):
    policies = tuple(dataclasses.replace(p, **stages) for p in services.config.sla)
    services.config = dataclasses.replace(services.config, sla=policies)


def texts(fake, channel):
    return [m.text for m in fake.in_channel(channel)]


def drain(services, clock):
    """Let the paced outbox deliver everything (one message a second per channel)."""
    report = services.sender.flush()
    while report.next_due is not None:
        clock.set(max(report.next_due, clock.now()))
        report = services.sender.flush()


def run_until(services, clock, when):
    """Advance minute by minute to `when`, sweeping as the scheduler would."""
    while clock.now() < when:
        clock.advance(timedelta(minutes=1))
        sweep(services, clock.now())
        services.sender.flush()


def test_reminder_then_breach_to_owner_and_manager(services, fake_slack, clock):
    new_lead(services)  # Tuesday 09:00 New York, standard: 4 business hours, due 13:00
    run_until(services, clock, datetime(2026, 11, 24, 15, 59, tzinfo=UTC))
    assert not any("Reminder" in t for t in texts(fake_slack, "U0SALES01"))
    run_until(services, clock, datetime(2026, 11, 24, 16, 0, tzinfo=UTC))  # 11:00: half-way
    reminder = fake_slack.in_channel("U0SALES01")[-1]
    assert "Reminder" in reminder.text
    assert reminder.action_ids() == [cards.FIRST_TOUCH, views.SNOOZE, views.WORKING]
    assert "due soon" in str(card(fake_slack).blocks)  # the card shows the new state
    run_until(services, clock, datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 13:00: due
    assert "SLA breached" in fake_slack.in_channel("U0SALES01")[-1].text
    assert "SLA breached" in fake_slack.in_channel("U0SALESMG1")[-1].text
    assert "breached" in str(card(fake_slack).blocks)
    run_until(services, clock, datetime(2026, 11, 24, 20, 0, tzinfo=UTC))
    sent = [m.text for m in fake_slack.messages if "Reminder" in m.text or "breached" in m.text]
    assert len(sent) == 3  # each once: reminder, owner's and manager's breach notices


def test_a_first_touch_cancels_what_is_left(app, services, fake_slack, clock):
    new_lead(services)
    clock.advance(timedelta(minutes=30))
    click(app, fake_slack, card(fake_slack), cards.FIRST_TOUCH, "U0SALES01", clock.now())
    run_until(services, clock, datetime(2026, 11, 24, 19, 0, tzinfo=UTC))
    assert not any("Reminder" in t or "breached" in t for t in texts(fake_slack, "U0SALES01"))
    with services.sessions.begin() as s:
        assert set(s.scalars(select(Nudge.state))) == {"cancelled"}


def test_after_hours_nudges_wait_for_the_morning_then_escalate_and_reassign(
        services, fake_slack, clock):
    with_stages(services, escalate_after=timedelta(minutes=30), reassign_after=timedelta(hours=1))
    clock.set(datetime(2026, 11, 24, 21, 50, tzinfo=UTC))  # 16:50 in New York
    new_lead(services)  # standard, due 12:50 tomorrow; the reminder at 10:50 tomorrow
    run_until(services, clock, datetime(2026, 11, 25, 14, 0, tzinfo=UTC))  # 09:00: nothing yet
    assert not any("Reminder" in t for t in texts(fake_slack, "U0SALES01"))
    run_until(services, clock, datetime(2026, 11, 25, 19, 30, tzinfo=UTC))  # 14:30
    owner_texts = texts(fake_slack, "U0SALES01")
    assert sum("Reminder" in t for t in owner_texts) == 1
    assert sum("SLA breached" in t for t in owner_texts) == 1
    assert sum(t.startswith("Escalation") for t in texts(fake_slack, "C0HANDOFF1")) == 1
    with services.sessions.begin() as s:
        lead = s.scalars(select(Lead)).one()
        assert s.get(Person, lead.owner_id).slack_id == "U0SALES02"  # reassigned at 13:50
    assert "New lead" in fake_slack.in_channel("U0SALES02")[-1].text


def test_an_evening_breach_is_held_until_nine(services, fake_slack, clock):
    with_stages(services, respond_within=timedelta(hours=1), clock="wall")
    clock.set(datetime(2026, 11, 24, 21, 50, tzinfo=UTC))  # 16:50: due 17:50, after hours
    new_lead(services)
    run_until(services, clock, datetime(2026, 11, 25, 13, 59, tzinfo=UTC))
    assert texts(fake_slack, "U0SALES01")[1:] == []  # only the card: nothing in the evening
    run_until(services, clock, datetime(2026, 11, 25, 14, 1, tzinfo=UTC))  # 09:00
    later = texts(fake_slack, "U0SALES01")[1:]
    assert len(later) == 1 and "SLA breached" in later[0]  # the stale reminder is dropped


def test_hot_leads_are_not_held(services, fake_slack, clock):
    clock.set(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))  # 21:00 in New York
    with services.sessions.begin() as s:  # someone must be "working" to route a hot lead
        for p in s.scalars(select(Person).where(Person.role == "sales")):
            p.working_hours = "00:00-23:59"
            p.timezone = "UTC"
    new_lead(services, score=95)  # 15 minutes, wall clock
    run_until(services, clock, datetime(2026, 11, 25, 2, 16, tzinfo=UTC))
    owner = next(t for t in texts(fake_slack, "U0SALES01") if "breached" in t)
    assert owner


def test_snooze_and_working_on_it(app, services, fake_slack, clock):
    new_lead(services)
    run_until(services, clock, datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
    reminder = fake_slack.in_channel("U0SALES01")[-1]
    click(app, fake_slack, reminder, views.SNOOZE, "U0SALES01", clock.now())
    assert "30 minutes" in fake_slack.messages[-1].text
    run_until(services, clock, datetime(2026, 11, 24, 16, 30, tzinfo=UTC))
    assert sum("Reminder" in t for t in texts(fake_slack, "U0SALES01")) == 2
    click(app, fake_slack, fake_slack.in_channel("U0SALES01")[-1], views.WORKING, "U0SALES01",
          clock.now())
    click(app, fake_slack, reminder, views.SNOOZE, "U0SALES02", clock.now())
    assert "Only the lead's owner" in fake_slack.messages[-1].text


def test_two_sweeps_on_one_database_send_each_of_1000_nudges_once(services, fake_slack, clock,
                                                                 engine):
    from bot.webhooks import store

    with services.sessions.begin() as s:  # both reps in New York: every reminder is in hours
        for p in s.scalars(select(Person).where(Person.role == "sales")):
            p.timezone = "America/New_York"
    store(services, "leads", [{"external_id": f"L-{i}", "source": "webinar", "score": 50}
                              for i in range(1000)], actor="test")
    clock.set(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))  # every reminder is due
    barrier, reports, errors = threading.Barrier(2), [], []

    def work(name):
        try:
            mine = dataclasses.replace(services, sessions=make_sessionmaker(engine))
            barrier.wait()
            while (report := sweep(mine, clock.now(), name=name)).sent:
                reports.append(report)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.sent for r in reports) == 1000
    with services.sessions.begin() as s:
        assert s.scalars(select(Nudge.state).where(Nudge.stage == "remind")).all() == ["sent"] * 1000
        queued = s.scalars(select(OutboxMessage.ref).where(OutboxMessage.ref.like("%:nudge"))).all()
    assert len(queued) == 1000 and len(set(queued)) == 1000  # one reminder per lead, once
