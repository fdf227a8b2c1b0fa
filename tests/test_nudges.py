"""SLA nudges: scheduled at routing, cancelled by a response, held outside working hours, sent once."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from bot.blocks import handoff as cards
from bot.blocks import sla as views
from bot.handoff import lifecycle
from bot.handoff.new_leads import assign
from bot.sla import policies as sla
from bot.sla.nudges import BATCH, sweep
from storage.db import make_sessionmaker
from storage.leads import list_events
from storage.models import HandoffBurst, Lead, Nudge, OutboxMessage, Person
from tests.slack import TEAM, click
from tests.test_handoff import card, listed_ids, new_lead


def with_stages(services, **stages):
    policies = tuple(dataclasses.replace(p, **stages) for p in services.config.sla)
    services.config = dataclasses.replace(services.config, sla=policies)


def texts(fake, channel):
    return [m.text for m in fake.in_channel(channel)]


def drain(services, clock):
    """Let the paced outbox deliver everything (one message a second per channel)."""
    report = services.sender.flush()
    for _ in range(1000):  # bounded: a message that never settles fails the test, fast
        if report.next_due is None:
            return
        clock.set(max(report.next_due, clock.now()))
        report = services.sender.flush()
    raise AssertionError(f"the outbox has not settled after 1000 flushes: {report}")


def in_new_york(services):
    """Both sales reps in New York: their SLA clocks run alike."""
    with services.sessions.begin() as s:
        for p in s.scalars(select(Person).where(Person.role == "sales")):
            p.timezone = "America/New_York"


def away(services, slack_id, until):
    with services.sessions.begin() as s:
        s.scalars(select(Person).where(Person.slack_id == slack_id)).one().away_until = until


def run_until(services, clock, when):
    """Advance minute by minute to `when`, sweeping as the scheduler would."""
    assert when - clock.now() <= timedelta(days=30), "run_until is for minutes to days"
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
    run_until(services, clock, datetime(2026, 11, 24, 18, 1, tzinfo=UTC))  # past due
    owner = texts(fake_slack, "U0SALES01")
    assert sum("Reminder" in t for t in owner) == 2  # no more reminders...
    assert sum("SLA breached" in t for t in owner) == 1  # ...but the due time still stands


def pending_stages(services):
    with services.sessions.begin() as s:
        return s.execute(select(Nudge.stage, Nudge.due_at).where(Nudge.state == "pending")
                         .order_by(Nudge.due_at)).all()


def test_a_lead_waits_on_one_stage_at_a_time_and_each_writes_the_next(services, fake_slack, clock):
    new_lead(services)  # Tuesday 09:00 New York, due 13:00, reminder at half-way
    assert pending_stages(services) == [("card", datetime(2026, 11, 24, 16, 0, tzinfo=UTC))]
    clock.set(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
    sweep(services, clock.now())  # the card, then the reminder written due at the same time
    assert pending_stages(services) == [("breach", datetime(2026, 11, 24, 18, 0, tzinfo=UTC))]
    drain(services, clock)
    assert sum("Reminder" in t for t in texts(fake_slack, "U0SALES01")) == 1


def test_working_on_it_before_the_reminder_skips_it_and_keeps_the_breach(services, clock):
    from bot.sla.nudges import working_on_it

    with_stages(services, remind_at=0.75)  # the card's "due soon" first, then the reminder
    lead_id = new_lead(services)
    clock.set(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
    sweep(services, clock.now())
    assert [stage for stage, _ in pending_stages(services)] == ["remind"]
    with services.work() as w:  # e.g. from a reminder of an earlier time they owned it
        working_on_it(w, f"{lead_id}|x", "U0SALES01")
    assert pending_stages(services) == [("breach", datetime(2026, 11, 24, 18, 0, tzinfo=UTC))]


def test_a_policy_changed_between_stages_neither_repeats_nor_stops_the_chain(
        services, fake_slack, clock):
    with_stages(services, remind_at=0.75)
    new_lead(services)  # due 13:00 New York: the card at 11:00, the reminder at 12:00
    clock.set(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
    sweep(services, clock.now())
    with_stages(services, remind_at=0.25)  # the policy now reminds at 10:00
    clock.set(datetime(2026, 11, 24, 17, 0, tzinfo=UTC))
    sweep(services, clock.now())  # the 12:00 reminder matches no stage of the policy now
    assert pending_stages(services) == [("breach", datetime(2026, 11, 24, 18, 0, tzinfo=UTC))]
    drain(services, clock)
    assert sum("Reminder" in t for t in texts(fake_slack, "U0SALES01")) == 1


def test_the_card_shows_each_sla_state_change_even_without_reminders(services, fake_slack, clock):
    with_stages(services, remind_at=0, breach_notice=False)
    new_lead(services)  # Tuesday 09:00 New York, due 13:00
    run_until(services, clock, datetime(2026, 11, 24, 15, 59, tzinfo=UTC))
    assert "on track" in str(card(fake_slack).blocks)
    run_until(services, clock, datetime(2026, 11, 24, 16, 0, tzinfo=UTC))  # half the window left
    assert "due soon" in str(card(fake_slack).blocks)
    assert "due soon" in str(card(fake_slack, "U0SALES01").blocks)  # the owner's copy too
    run_until(services, clock, datetime(2026, 11, 24, 18, 0, tzinfo=UTC))
    assert "breached" in str(card(fake_slack).blocks)
    assert texts(fake_slack, "U0SALES01")[1:] == []  # nobody was messaged: only cards changed
    assert fake_slack.in_channel("U0SALESMG1") == []


def test_what_was_held_for_an_owner_is_void_once_the_same_sweep_reassigns(services, fake_slack,
                                                                          clock):
    with_stages(services, respond_within=timedelta(hours=1), clock="wall",
                reassign_after=timedelta(minutes=1))
    away(services, "U0SALES01", until=datetime(2026, 11, 25, tzinfo=UTC))
    new_lead(services)  # 09:00 New York, to U0SALES02 in Los Angeles (06:00 there)
    away(services, "U0SALES01", until=None)
    clock.set(datetime(2026, 11, 24, 15, 1, tzinfo=UTC))  # the sweeper was down for an hour
    report = sweep(services, clock.now())  # the breach is held for LA's morning, then the
    assert report.held == 1  # reassignment to U0SALES01 voids it (it was U0SALES02's)
    with services.sessions.begin() as s:
        assert s.scalars(select(Person.slack_id).join(Lead, Lead.owner_id == Person.id)).one() \
            == "U0SALES01"
        pending = s.scalars(select(Nudge).where(Nudge.state == "pending")).all()
    assert pending and all(n.due_at > clock.now() and not n.held for n in pending)  # new clock


def test_a_nudge_that_fails_holds_back_only_itself(services, fake_slack, clock, monkeypatch):
    import bot.sla.nudges

    in_new_york(services)
    for i in range(3):
        new_lead(services, external_id=f"L-{i}", name=f"Lead {i}")
    broken = bot.sla.nudges.STAGES["remind"]

    def remind(batch, lead, owner):
        if lead.name == "Lead 1":
            raise RuntimeError("a bug in one reminder")
        broken(batch, lead, owner)

    monkeypatch.setitem(bot.sla.nudges.STAGES, "remind", remind)
    clock.set(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
    report = sweep(services, clock.now())
    assert report.sent == 2 + 3  # two reminders, three card refreshes
    with services.sessions.begin() as s:
        states = dict(s.execute(select(Lead.name, Nudge.state).join(Lead, Lead.id == Nudge.lead_id)
                                .where(Nudge.stage == "remind")).all())
    assert states == {"Lead 0": "sent", "Lead 1": "sending", "Lead 2": "sent"}  # retried later


def test_a_reassignment_that_lost_its_race_is_dropped_and_the_rest_goes_on_together(
        services, fake_slack, clock, monkeypatch, engine, caplog):
    import bot.sla.nudges

    with_stages(services, escalate_after=timedelta(minutes=30), reassign_after=timedelta(hours=1))
    in_new_york(services)
    for i in range(3):
        new_lead(services, external_id=f"L-{i}", name=f"Lead {i}")
    run_until(services, clock, datetime(2026, 11, 24, 18, 59, tzinfo=UTC))
    with services.sessions.begin() as s:
        owners = dict(s.execute(select(Lead.name, Lead.owner_id)).all())
    reassign = bot.sla.nudges.STAGES["reassign"]
    accept = update(Lead).where(Lead.name == "Lead 1").values(status="accepted") \
        .execution_options(synchronize_session=False)

    def accepted_meanwhile(batch, lead, owner):  # a click after the sweep read the lead
        if lead.name == "Lead 1":
            if engine.dialect.name == "sqlite":  # one writer at a time: only from within
                batch.session.execute(accept)
            else:  # another process's transaction, committed before the sweep's ends
                with make_sessionmaker(engine).begin() as other:
                    other.execute(accept)
        reassign(batch, lead, owner)

    monkeypatch.setitem(bot.sla.nudges.STAGES, "reassign", accepted_meanwhile)
    caplog.set_level(logging.WARNING, "bot.sla.nudges")
    report = sweep(services, datetime(2026, 11, 24, 19, 0, tzinfo=UTC))  # 14:00: all three due
    with services.sessions.begin() as s:
        now = dict(s.execute(select(Lead.name, Lead.owner_id)).all())
        status = s.scalar(select(Lead.status).where(Lead.name == "Lead 1"))
        states = dict(s.execute(select(Lead.name, Nudge.state).join(Lead, Lead.id == Nudge.lead_id)
                                .where(Nudge.stage == "reassign")).all())
    assert [now[n] != owners[n] for n in ("Lead 0", "Lead 1", "Lead 2")] == [True, False, True]
    assert status == ("routed" if engine.dialect.name == "sqlite" else "accepted")
    # the lead is left to whoever changed it; the other two go through, in one batch again
    assert states == {"Lead 0": "sent", "Lead 1": "cancelled", "Lead 2": "sent"}
    assert (report.sent, report.dropped) == (2, 1)
    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in logged] == ["WARNING"]  # no batch failed, nothing one by one
    assert "changed while being reassigned" in logged[0][1]



def test_a_reminder_claimed_before_a_reassignment_reaches_nobody_and_one_clock_goes_on(
        app, services, fake_slack, clock, monkeypatch):
    import bot.sla.nudges

    in_new_york(services)
    new_lead(services)  # 09:00 New York, to U0SALES01: the reminder at 11:00, due 13:00
    fire_claimed = bot.sla.nudges._parts
    reassign_once = [True]

    def reassigned_meanwhile(claimed):  # after the sweep claimed the reminder, before it fired
        if reassign_once and any(n.stage == "remind" for n in claimed):
            reassign_once.pop()
            click(app, fake_slack, card(fake_slack), cards.REASSIGN, "U0SALES01", clock.now(),
                  selected_user="U0SALES02")  # a new clock: reminder 13:00, due 15:00
        return fire_claimed(claimed)

    monkeypatch.setattr(bot.sla.nudges, "_parts", reassigned_meanwhile)
    clock.set(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))  # 11:00
    sweep(services, clock.now())
    assert not reassign_once  # the race happened
    run_until(services, clock, datetime(2026, 11, 24, 21, 0, tzinfo=UTC))  # 16:00
    for rep, reminders, breaches in (("U0SALES01", 0, 0), ("U0SALES02", 1, 1)):
        got = texts(fake_slack, rep)
        assert (sum("Reminder" in t for t in got), sum("SLA breached" in t for t in got)) == \
            (reminders, breaches), rep
    with services.sessions.begin() as s:
        lead = s.scalars(select(Lead)).one()
        reminded_at = [e.at for e in list_events(s, lead.id) if e.kind == "sla_remind"]
    assert reminded_at == [datetime(2026, 11, 24, 18, 0, tzinfo=UTC)]  # the new clock's, alone


SWEEPS = 1000 // BATCH + 3  # what 1,000 due nudges take a lone sweeper, and spare


def test_two_sweeps_on_one_database_send_each_of_1000_nudges_once(services, fake_slack, clock,
                                                                 engine, monkeypatch):
    import bot.sla.nudges
    from bot.intake.batches import store

    in_new_york(services)  # every reminder is in working hours
    store(services, "leads", [{"external_id": f"L-{i}", "source": "webinar", "score": 50}
                              for i in range(1000)], actor="test")
    clock.set(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))  # every reminder is due
    barrier, reports, errors = threading.Barrier(2), [], []
    claim_due, reminding = bot.sla.nudges.queries.claim_due, []

    def claim(*args, **kwargs):  # the claimed batches that hold reminders
        claimed = claim_due(*args, **kwargs)
        reminding.extend([True] if any(n.stage == "remind" for n in claimed) else [])
        return claimed

    monkeypatch.setattr(bot.sla.nudges.queries, "claim_due", claim)

    def work(name):
        try:
            mine = dataclasses.replace(services, sessions=make_sessionmaker(engine))
            barrier.wait()
            for _ in range(SWEEPS):  # bounded: a sweep that keeps "sending" fails, not spins
                report = sweep(mine, clock.now(), name=name)
                if not report.sent:
                    return
                reports.append(report)
            raise AssertionError(f"{name}: still sending after {SWEEPS} sweeps")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a sweep hangs"
    assert errors == []
    assert sum(r.sent for r in reports) == 2000  # per lead: its reminder, and its card's "due soon"
    with services.sessions.begin() as s:
        assert s.scalars(select(Nudge.state).where(Nudge.stage == "remind")).all() == ["sent"] * 1000
        queued = s.scalars(select(OutboxMessage.payload).where(
            OutboxMessage.ref.like("reminders:%") | OutboxMessage.ref.like("%:nudge"))).all()
    # each owner's reminders of a claimed batch in one DM; each lead's in one DM, once. The
    # reminders are written as each sweep fires the cards it claimed, and a claim takes all
    # that are due and free: one claim after each sweep's writing, two when both sweeps
    # claim at that moment (they split what is due)
    assert 1 <= len(reminding) <= 4, reminding
    assert len(queued) <= 2 * len(reminding) and sum(reminded(m) for m in queued) == 1000


def due_at_13_in_new_york(services, n):
    """`n` leads in from a webhook together, in a New York workspace: all due at 13:00."""
    from bot.intake.batches import store

    in_new_york(services)
    store(services, "leads", [{"external_id": f"L-{i}", "name": f"Lead {i}", "source": "webinar",
                               "score": 50} for i in range(n)], actor="test")


def reminded(message) -> int:
    """How many leads a reminder DM is about."""
    if (m := re.fullmatch(r"Reminder: (\d+) of your leads are due soon", message["text"])):
        return int(m[1])
    assert message["text"].startswith("Reminder: lead ")
    return 1


def test_a_long_sweeps_later_claims_are_not_stale_to_the_next_minutes_sweep(
        services, fake_slack, clock, monkeypatch):
    """A catch-up sweep still claiming 6 minutes after it started: its claim is as old as
    the claim, not the sweep, so the next minute's sweep leaves it alone (each nudge once)."""
    import bot.sla.nudges
    from bot.intake.batches import store

    in_new_york(services)
    store(services, "leads", [{"external_id": "L-1", "source": "webinar", "score": 50}],
          actor="test")
    started = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # the reminder is due
    clock.set(started + timedelta(minutes=6))  # the sweep that started then claims it now
    claim_due, reports = bot.sla.nudges.queries.claim_due, []

    def claim(session, by, *args):
        claimed = claim_due(session, by, *args)
        if by == "long" and claimed and not reports:
            session.commit()  # its claim is made; meanwhile the next minute's sweep runs
            reports.append(sweep(services, clock.now(), name="next"))
        return claimed

    monkeypatch.setattr(bot.sla.nudges.queries, "claim_due", claim)
    long = sweep(services, started, name="long")
    assert (long.sent, reports[0].sent) == (2, 0)  # its card and reminder; the other: none
    with services.sessions() as s:
        assert s.execute(select(Nudge.stage, Nudge.state, Nudge.claimed_by)
                         .order_by(Nudge.due_at, Nudge.id)).all() == [
            ("card", "sent", "long"), ("remind", "sent", "long"), ("breach", "pending", None)]


def test_an_owners_reminders_due_together_come_in_one_dm(app, services, fake_slack, clock):
    due_at_13_in_new_york(services, 24)
    run_until(services, clock, datetime(2026, 11, 24, 16, 0, tzinfo=UTC))  # all due at 13:00
    drain(services, clock)
    total = 0
    for rep in ("U0SALES01", "U0SALES02"):
        dms = [m for m in fake_slack.in_channel(rep) if m.text.startswith("Reminder")]
        assert len(dms) == 1, [m.text for m in dms]  # one DM, not one per lead
        n = reminded({"text": dms[0].text})
        total += n
        shown = min(n, views.REMINDER_LEADS)
        # each lead shown can be acted on from the DM, as from a lone reminder
        assert [a.split(".")[1] for a in dms[0].action_ids()] == \
            ["first_touch", "snooze", "working"] * shown
        assert (f"{n - shown} more" in str(dms[0].blocks)) == (n > shown)
    assert total == 24
    # the second lead's buttons act on the second lead
    second = dms[0].action_ids()[4]
    click(app, fake_slack, dms[0], second, "U0SALES02", clock.now())
    assert "30 minutes" in fake_slack.messages[-1].text
    snoozed = fake_slack.message(dms[0].number).find_element(second)[1]["value"]
    with services.sessions.begin() as s:
        lead_id = s.scalar(select(Nudge.lead_id).where(Nudge.stage == "snooze"))
    assert snoozed.startswith(f"{lead_id}|")


def breached(message) -> int:
    """How many leads a breach notice is about."""
    if (m := re.fullmatch(r"SLA breached: (\d+) of (your|your team's) leads", message.text)):
        return int(m[1])
    assert message.text.startswith("SLA breached: lead ")
    return 1


def test_breach_notices_due_together_come_in_one_dm_per_person(app, services, fake_slack, clock):
    due_at_13_in_new_york(services, 24)
    run_until(services, clock, datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # all due at 13:00
    drain(services, clock)
    manager = [m for m in fake_slack.in_channel("U0SALESMG1") if "breached" in m.text]
    assert len(manager) == 1, [m.text for m in manager]  # not one per lead
    assert manager[0].text == "SLA breached: 24 of your team's leads"
    assert "14 more" in str(manager[0].blocks) and manager[0].action_ids() == []
    assert {"<@U0SALES01>", "<@U0SALES02>"} <= set(re.findall(r"<@U0SALES0\d>",
                                                                 str(manager[0].blocks)))
    total = 0
    for rep in ("U0SALES01", "U0SALES02"):
        dms = [m for m in fake_slack.in_channel(rep) if "breached" in m.text]
        assert len(dms) == 1, [m.text for m in dms]
        total += (n := breached(dms[0]))
        assert [a.split(".")[1] for a in dms[0].action_ids()] == \
            ["first_touch", "snooze", "working"] * min(n, views.REMINDER_LEADS)
    assert total == 24
    # the second lead's first touch, from the owner's breach DM, is logged on that lead
    button = dms[0].action_ids()[3]
    lead_id = int(fake_slack.message(dms[0].number).find_element(button)[1]["value"].split("|")[0])
    click(app, fake_slack, dms[0], button, "U0SALES02", clock.now())
    with services.sessions.begin() as s:
        lead = s.get(Lead, lead_id)
        assert (lead.status, lead.sla_met) == ("contacted", False)


def test_leads_reassigned_in_one_sweep_each_move_once(services, fake_slack, clock):
    with_stages(services, escalate_after=timedelta(minutes=30), reassign_after=timedelta(hours=1))
    due_at_13_in_new_york(services, 24)
    with services.sessions.begin() as s:
        before = {lead.id: lead.owner_id for lead in s.scalars(select(Lead))}
    run_until(services, clock, datetime(2026, 11, 24, 19, 0, tzinfo=UTC))  # 14:00: reassigned
    with services.sessions.begin() as s:
        leads = list(s.scalars(select(Lead)))
        assert all(lead.owner_id != before[lead.id] and lead.status == "routed" for lead in leads)
        assert all(lead.sla_due_at > clock.now() for lead in leads)  # a new clock each
        pending = s.execute(select(Nudge.lead_id, Nudge.stage).where(Nudge.state == "pending"))
        assert sorted(pending) == sorted((lead.id, "remind") for lead in leads)  # new chains only
        events = [e for lead in leads for e in list_events(s, lead.id) if e.kind == "routed"]
        assert sum(e.actor == "system" and e.data["reason"].startswith("SLA breached")
                   for e in events) == 24


def test_leads_reassigned_together_are_due_by_each_new_owners_own_hours(services, fake_slack,
                                                                       clock):
    """A sweep's reassignments share their SLA plans, but only by the new owner's hours: at
    14:00 in New York, a rep in Los Angeles has the 4 business hours today, one in New
    York only 3, and the 4th tomorrow at 10:00."""
    with_stages(services, escalate_after=timedelta(minutes=30), reassign_after=timedelta(hours=1))
    due_at_13_in_new_york(services, 24)
    run_until(services, clock, datetime(2026, 11, 24, 18, 59, tzinfo=UTC))
    with services.sessions.begin() as s:
        s.scalars(select(Person).where(Person.slack_id == "U0SALES01")).one().timezone = \
            "America/Los_Angeles"
    run_until(services, clock, datetime(2026, 11, 24, 19, 0, tzinfo=UTC))  # 14:00: reassigned
    with services.sessions.begin() as s:
        due: dict[str, set] = {}
        for owner, at in s.execute(select(Person.slack_id, Lead.sla_due_at)
                                   .join(Person, Person.id == Lead.owner_id)):
            due.setdefault(owner, set()).add(at)
    assert due == {"U0SALES01": {datetime(2026, 11, 24, 23, 0, tzinfo=UTC)},  # 15:00 there
                   "U0SALES02": {datetime(2026, 11, 25, 15, 0, tzinfo=UTC)}}  # 10:00 tomorrow


def test_a_sweeps_reassignments_come_to_a_rep_as_a_burst_past_the_limit(services, fake_slack,
                                                                        clock):
    """12 leads reassigned to each rep at once: the first 10 cards, then one summary (Slack
    takes one message a second per DM), as new leads come."""
    with_stages(services, escalate_after=timedelta(minutes=30), reassign_after=timedelta(hours=1))
    due_at_13_in_new_york(services, 24)
    run_until(services, clock, datetime(2026, 11, 24, 18, 59, tzinfo=UTC))
    before = {rep: len(fake_slack.in_channel(rep)) for rep in ("U0SALES01", "U0SALES02")}
    run_until(services, clock, datetime(2026, 11, 24, 19, 0, tzinfo=UTC))  # 14:00: reassigned
    drain(services, clock)
    for rep, seen in before.items():
        got = fake_slack.in_channel(rep)[seen:]
        assert [m.text.split(":")[0] for m in got] == ["New lead"] * 10 + \
            ["2 leads handed to you at once"]
        assert len(listed_ids(got[-1])) == 2
    with services.sessions.begin() as s:  # every lead in one of them, with its new owner
        leads = s.execute(select(Lead.id, Lead.name, Person.slack_id)
                          .join(Person, Person.id == Lead.owner_id)).all()
    ids = {name: lead_id for lead_id, name, _ in leads}
    shown = {rep: {ids[m.text.split(": ")[1].split(" — ")[0]]
                   for m in fake_slack.in_channel(rep)[seen:-1]}
             | set(listed_ids(fake_slack.in_channel(rep)[-1])) for rep, seen in before.items()}
    assert shown == {rep: {i for i, _, owner in leads if owner == rep} for rep in before}


def test_a_sweeps_reassignments_go_a_few_a_transaction(services, fake_slack, clock,
                                                       monkeypatch):
    """Each transaction that routes holds the workspace's routing lock to its end (new
    leads wait for it): 24 reassignments due together are 5 transactions of at most 5."""
    import bot.sla.nudges

    monkeypatch.setattr(bot.sla.nudges, "ROUTING_BATCH", 5)
    fired, fire = [], bot.sla.nudges._fire_claimed
    monkeypatch.setattr(bot.sla.nudges, "_fire_claimed",
                        lambda services, ids, now: fired.append(len(ids)) or fire(services, ids, now))
    with_stages(services, escalate_after=timedelta(minutes=30), reassign_after=timedelta(hours=1))
    due_at_13_in_new_york(services, 24)
    with services.sessions.begin() as s:
        before = {lead.id: lead.owner_id for lead in s.scalars(select(Lead))}
    run_until(services, clock, datetime(2026, 11, 24, 18, 59, tzinfo=UTC))
    fired.clear()
    run_until(services, clock, datetime(2026, 11, 24, 19, 0, tzinfo=UTC))  # 14:00: reassigned
    assert fired == [5, 5, 5, 5, 4]
    with services.sessions.begin() as s:
        leads = list(s.scalars(select(Lead)))
        assert all(lead.owner_id != before[lead.id] and lead.status == "routed" for lead in leads)
        owners = [lead.owner_id for lead in leads]
    assert sorted(owners.count(o) for o in set(owners)) == [12, 12]  # round-robin across parts


def test_a_leads_claimed_nudges_fire_in_one_part(monkeypatch):
    """The leads no stage routes in one part; the others a few a part, each with what its
    reassignment voids (its other nudges of the batch)."""
    from collections import namedtuple

    import bot.sla.nudges

    monkeypatch.setattr(bot.sla.nudges, "ROUTING_BATCH", 2)
    claimed = namedtuple("claimed", "id lead_id stage")
    rows = [claimed(1, 10, "reassign"), claimed(2, 11, "reassign"), claimed(3, 12, "card"),
            claimed(4, 13, "route"), claimed(5, 10, "snooze"), claimed(6, 14, "breach")]
    parts = bot.sla.nudges._parts(rows)
    assert [[n.id for n in part] for part in parts] == [[3, 6], [1, 2, 5], [4]]


def escalations(fake):
    return [m for m in fake.in_channel("C0HANDOFF1") if m.text.startswith("Escalation")]


def escalated(message) -> list[int]:
    """The leads an escalation names, by their *Open card* buttons."""
    return [int(a.rsplit(".", 1)[1]) for a in message.action_ids()]


def escalate_at_14(services, n):
    """`n` leads due at 13:00 New York, escalated at 14:00 (without a reassignment)."""
    with_stages(services, escalate_after=timedelta(hours=1), reassign_after=None)
    due_at_13_in_new_york(services, n)


def test_a_sweeps_escalations_come_in_one_message_naming_every_lead(app, services, fake_slack,
                                                                    clock):
    escalate_at_14(services, 24)
    run_until(services, clock, datetime(2026, 11, 24, 19, 0, tzinfo=UTC))
    drain(services, clock)
    [message] = escalations(fake_slack)  # one message, not 24
    assert message.text == "Escalation: 24 leads are past their SLA"
    with services.sessions.begin() as s:
        leads = {lead.id: lead for lead in s.scalars(select(Lead))}
        owners = {p.id: p.slack_id for p in s.scalars(select(Person))}
    assert sorted(escalated(message)) == sorted(leads)
    shown = str(message.blocks)
    for lead in leads.values():  # each named with how late it is and whose it is
        line = next(b["text"]["text"] for b in message.blocks
                    if b.get("block_id") == f"escalated-{lead.id}")
        assert f"*{lead.name}*" in line and lead.external_id in line
        assert "60 min late" in line and f"<@{owners[lead.owner_id]}>" in line
    assert "/align leads overdue" in shown
    # a lead's button opens that lead's card, to act on it from there
    second = message.action_ids()[1]
    click(app, fake_slack, message, second, "U0SALESMG1", clock.now())
    card_shown = fake_slack.messages[-1]
    lead = leads[escalated(message)[1]]
    assert card_shown.ephemeral_to == "U0SALESMG1" and lead.name in card_shown.text
    assert cards.REASSIGN in card_shown.action_ids()


def test_a_long_list_of_escalations_is_a_few_messages_each_lead_in_one(services, fake_slack,
                                                                      clock, monkeypatch):
    monkeypatch.setattr(views, "ESCALATION_LEADS", 10)
    escalate_at_14(services, 24)
    run_until(services, clock, datetime(2026, 11, 24, 19, 0, tzinfo=UTC))
    drain(services, clock)
    messages = escalations(fake_slack)
    assert [m.text for m in messages] == [
        f"Escalation: 24 leads are past their SLA ({part} of 24)" for part in ("1–10", "11–20", "21–24")]
    named = [lead_id for m in messages for lead_id in escalated(m)]
    with services.sessions.begin() as s:
        assert sorted(named) == sorted(s.scalars(select(Lead.id)))  # each once


def test_a_lone_escalation_reads_as_one_leads(services, fake_slack, clock):
    escalate_at_14(services, 1)
    run_until(services, clock, datetime(2026, 11, 24, 19, 0, tzinfo=UTC))
    [message] = escalations(fake_slack)
    assert message.text == "Escalation: lead L-0 is 60 minutes late"
    assert "`/align lead L-0` to act on it" in str(message.blocks)


TUE_1000 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # New York


def reassign_then_route_again(services, clock, waiting: int) -> tuple[int, int]:
    """One lead whose reassignment falls due a minute before `waiting` leads that nobody
    could take are tried again (both reps were away until 10:00): one sweep batch does
    both. Each rep gets more of the routed leads than `burst_limit` (1) cards a minute, so
    their DMs become a burst, a new row (flushed for its id) in the middle of the batch.
    The reassigned lead's id and its owner then."""
    services.config = dataclasses.replace(
        services.config, handoff=dataclasses.replace(services.config.handoff, burst_limit=1))
    in_new_york(services)
    lead_id = new_lead(services)  # Tuesday 09:00
    away(services, "U0SALES01", until=TUE_1000)
    away(services, "U0SALES02", until=TUE_1000)
    for i in range(waiting):
        new_lead(services, external_id=f"W-{i}", name=f"Waiting {i}")
    with services.sessions.begin() as s:
        owner = s.get(Lead, lead_id).owner_id
        s.execute(update(Nudge).where(Nudge.lead_id == lead_id, Nudge.state == "pending")
                  .values(stage="reassign", due_at=TUE_1000 - timedelta(minutes=1)))
        assert s.scalars(select(Nudge.due_at).where(Nudge.stage == "route",
                                                    Nudge.state == "pending")).all() \
            == [TUE_1000] * waiting
    clock.set(TUE_1000)
    return lead_id, owner


def test_a_burst_begun_in_a_sweep_batch_leaves_its_reassignments_standing(services, fake_slack,
                                                                          clock, caplog):
    lead_id, owner = reassign_then_route_again(services, clock, waiting=4)
    report = sweep(services, clock.now())
    # one batch: not failed as a whole (it was: the reassigned lead's new owner was flushed
    # with the burst, and its compare-and-set then found the lead "changed since read")
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    assert report.sent == 1 + 4 + 4  # and the waiting leads' escalations (due 09:30)
    with services.sessions.begin() as s:
        assert s.scalars(select(HandoffBurst.channel)).all()  # a rep's DMs became a burst
        lead = s.get(Lead, lead_id)
        assert lead.owner_id not in (owner, None) and lead.status == "routed"
        assert set(s.scalars(select(Lead.status).where(Lead.external_id.like("W-%")))) == {"routed"}
        assert set(s.scalars(select(Nudge.state).where(Nudge.stage.in_(("reassign", "route"))))) \
            == {"sent"}


# ------------------------------------------------------------------ a reassigned lead's SLA


def day_of(services, key, day):
    """The metric over the UTC day."""
    from bot.metrics.registry import compute
    with services.sessions() as s:
        return compute(s, TEAM, key, day, day + timedelta(days=1), now=day + timedelta(days=1))[0]


def test_a_lead_reassigned_after_its_breach_stays_breached_and_waits_from_its_handoff(
        app, services, fake_slack, clock):
    """Routed 09:00 New York, due 13:00, reassigned 14:00: the new owner's clock (their
    reminder, their due time) starts then, but the lead was missed, and its response time
    is how long it waited since 09:00, on its first routing's day."""
    with_stages(services, reassign_after=timedelta(hours=1))
    in_new_york(services)
    new_lead(services)  # Tuesday 09:00 New York
    routed = clock.now()
    run_until(services, clock, datetime(2026, 11, 24, 19, 0, tzinfo=UTC))  # 14:00: reassigned
    with services.sessions.begin() as s:
        row = s.scalars(select(Lead)).one()
        assert s.get(Person, row.owner_id).slack_id == "U0SALES02"
        assert (row.routed_at, row.assigned_at, row.sla_met) == (routed, clock.now(), False)
        assert row.sla_due_at > clock.now()  # the new owner's own due time
    run_until(services, clock, datetime(2026, 11, 24, 21, 10, tzinfo=UTC))  # 16:10
    assert sum("Reminder" in t for t in texts(fake_slack, "U0SALES02")) == 1  # their clock
    click(app, fake_slack, card(fake_slack), cards.FIRST_TOUCH, "U0SALES02", clock.now())
    with services.sessions.begin() as s:
        row = s.scalars(select(Lead)).one()
        assert (row.sla_met, row.response_minutes) == (False, 7 * 60 + 10)
    tuesday = datetime(2026, 11, 24, tzinfo=UTC)
    assert day_of(services, "sla_compliance", tuesday) == 0.0
    assert day_of(services, "response_time", tuesday) == 7 * 60 + 10
    assert day_of(services, "leads_routed", tuesday) == 1


def test_a_lead_reassigned_in_time_is_met_by_its_new_owners_clock(app, services, fake_slack,
                                                                 clock):
    in_new_york(services)
    new_lead(services)  # Tuesday 09:00 New York, due 13:00
    clock.advance(timedelta(hours=2))
    click(app, fake_slack, card(fake_slack), cards.REASSIGN, "U0SALES01", clock.now(),
          selected_user="U0SALES02")
    run_until(services, clock, datetime(2026, 11, 24, 18, 30, tzinfo=UTC))  # 13:30: not due
    assert not any("breached" in t for t in texts(fake_slack, "U0SALES02"))
    click(app, fake_slack, card(fake_slack), cards.FIRST_TOUCH, "U0SALES02", clock.now())
    with services.sessions.begin() as s:
        row = s.scalars(select(Lead)).one()
        assert (row.sla_met, row.response_minutes) == (True, 4 * 60 + 30)


def test_a_lead_routed_again_after_a_rejection_is_a_new_handoff(app, services, fake_slack, clock):
    in_new_york(services)
    new_lead(services)
    clock.advance(timedelta(days=1))  # missed, then rejected: a late response
    with services.work() as w:
        row = w.session.scalars(select(Lead)).one()
        lifecycle.transition(w.session, row, "rejected", actor="U0SALES01", at=w.now,
                             data={"reason": "not_ready"})
        sla.close_clock(w, row, None)
        assert row.sla_met is False
    clock.advance(timedelta(hours=1))
    with services.work() as w:
        row = w.session.scalars(select(Lead)).one()
        assign(w, row, w.session.scalars(select(Person).where(Person.slack_id == "U0SALES02"))
               .one(), actor="U0SALESMG1", data={})
        assert (row.routed_at, row.assigned_at, row.sla_met) == (w.now, w.now, None)
