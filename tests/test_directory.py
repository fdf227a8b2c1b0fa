"""Who is who: CRM owner emails become Slack users; failures are told once and lose nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.handoff.directory import look_up, resolve_owner
from bot.handoff.new_leads import hand_off
from bot.intake import owners
from bot.intake.batches import store
from storage.models import Lead, Person, UnmappedEmail
from tests.slack import TEAM, send_event


def resolve(services, email):
    now = services.clock.now()
    answers = look_up(services.sessions, services.slack, TEAM, [email], now)
    with services.work() as w:
        person = resolve_owner(w, email, answers=answers)
        return person.slack_id if person else None


def test_config_people_match_by_email_without_asking_slack(services, fake_slack):
    assert resolve(services, "Sam@Example.com") == "U0SALES01"
    assert fake_slack.calls_of("users.lookupByEmail") == []


def test_others_are_looked_up_once_and_remembered(services, fake_slack, clock):
    fake_slack.add_user("U0NEWREP1", "Nia New", "nia@example.com", tz="Europe/London")
    assert resolve(services, "nia@example.com") == "U0NEWREP1"
    assert resolve(services, "nia@example.com") == "U0NEWREP1"
    assert len(fake_slack.calls_of("users.lookupByEmail")) == 1
    with services.sessions.begin() as s:
        nia = s.scalars(select(Person).where(Person.slack_id == "U0NEWREP1")).one()
        assert nia.timezone == "Europe/London" and nia.role == "sales"
    clock.advance(timedelta(days=8))  # stale: asked again
    resolve(services, "nia@example.com")
    assert len(fake_slack.calls_of("users.lookupByEmail")) == 2


def test_unknown_email_goes_to_the_queue_and_admins_hear_once(services, fake_slack):
    now = services.clock.now()
    for i in range(3):
        answers = look_up(services.sessions, services.slack, TEAM, ["ghost@example.com"], now)
        with services.work() as w:
            s = w.session
            lead = Lead(team_id=TEAM, external_id=f"L-{i}", source="events", status="new",
                        crm_owner_email="ghost@example.com", created_at=now, mql_at=now, updated_at=now)
            s.add(lead)
            s.flush()
            hand_off(w, lead, owner_by_email=lambda e, w=w, a=answers:
                     resolve_owner(w, e, answers=a))
    services.sender.flush()
    notices = fake_slack.in_channel("U0ADMIN01")
    assert len(notices) == 1 and "ghost@example.com" in notices[0].text
    assert len(fake_slack.calls_of("users.lookupByEmail")) == 1  # the miss is remembered too
    cards = fake_slack.in_channel("C0HANDOFF1")
    assert len(cards) == 3 and all("matches nobody in Slack" in str(c.blocks) for c in cards)
    with services.sessions.begin() as s:
        assert {lead.status for lead in s.scalars(select(Lead))} == {"new"}


def test_a_batch_naming_a_new_owner_or_an_unknown_email_twice_stores_them_once(
        services, fake_slack):
    """The second lead naming someone first met in the batch finds what the first stored."""
    fake_slack.add_user("U0NEWREP1", "Nia New", "nia@example.com")
    records = [{"external_id": f"L-{i}", "source": "events",
                "owner_email": "nia@example.com" if i % 2 else "ghost@example.com"}
               for i in range(4)]
    assert store(services, "leads", records, actor="webhook").created == 4
    services.sender.flush()
    with services.sessions.begin() as s:
        owner_ids = {lead.external_id: lead.owner_id for lead in s.scalars(select(Lead))}
        nia = s.scalars(select(Person).where(Person.slack_id == "U0NEWREP1")).one()
        ghost = s.scalars(select(UnmappedEmail)).one()
    assert owner_ids == {"L-0": None, "L-1": nia.id, "L-2": None, "L-3": nia.id}
    assert ghost.email == "ghost@example.com" and ghost.leads == 2
    assert len(fake_slack.in_channel("U0ADMIN01")) == 1  # told once
    assert len(fake_slack.calls_of("users.lookupByEmail")) == 2  # once per email


def test_user_change_event_deactivates_a_known_person(app, services, clock):
    event = {"type": "user_change", "user": {"id": "U0SALES02", "deleted": True,
                                             "real_name": "Sue Sales", "tz": "America/Denver",
                                             "profile": {"email": "sue@example.com"}},
             "event_ts": "1700000000.000001"}
    assert send_event(app, event, "Ev0UC1", clock.now()).status == 200
    with services.sessions.begin() as s:
        sue = s.scalars(select(Person).where(Person.slack_id == "U0SALES02")).one()
        assert sue.deactivated is True and sue.timezone == "America/Los_Angeles"  # config wins


def _unreachable(args):
    raise TimeoutError("timed out")  # what urllib raises after the client's timeout


def test_an_owner_slack_cannot_be_asked_about_waits_in_the_queue_and_is_asked_again(
        services, fake_slack, clock, monkeypatch):
    """A lookup that fails at the network level stores the batch all the same: the lead waits
    unassigned saying why, the email is not taken for nobody's, and a later run routes it."""
    from bot.platform.scheduler import run_job

    fake_slack.add_user("U0NEWREP1", "Nia New", "nia@example.com")
    monkeypatch.setattr(fake_slack, "_users_lookupByEmail", _unreachable)
    records = [{"external_id": "L-1", "source": "events", "owner_email": "nia@example.com"},
               {"external_id": "L-2", "source": "events", "owner_email": "sam@example.com"}]
    assert store(services, "leads", records, actor="webhook").created == 2
    services.sender.flush()
    waiting = [c for c in fake_slack.in_channel("C0HANDOFF1") if "L-1" in str(c.blocks)]
    assert len(waiting) == 1 and "could not be looked up in Slack" in str(waiting[0].blocks)
    with services.sessions.begin() as s:
        leads = {lead.external_id: lead for lead in s.scalars(select(Lead))}
        assert (leads["L-1"].status, leads["L-1"].owner_id) == ("new", None)
        assert leads["L-2"].status == "routed"  # the others of the batch go on
        assert s.scalars(select(UnmappedEmail)).all() == []  # not taken for nobody's
    assert fake_slack.in_channel("U0ADMIN01") == []  # nothing for the admins to fix

    clock.advance(timedelta(minutes=5))
    assert owners.retry_due(services) == clock.now()  # the shell's `tick` runs the retry
    assert run_job(services, "owners.retry") == {"nia@example.com": "still no answer"}
    monkeypatch.undo()  # Slack answers again
    clock.advance(timedelta(minutes=5))
    assert run_job(services, "owners.retry") == {
        "nia@example.com": "1 lead(s) routed to U0NEWREP1"}
    services.sender.flush()
    with services.sessions.begin() as s:
        lead = s.scalars(select(Lead).where(Lead.external_id == "L-1")).one()
        nia = s.scalars(select(Person).where(Person.slack_id == "U0NEWREP1")).one()
        assert (lead.status, lead.owner_id) == ("routed", nia.id)
    [card] = [c for c in fake_slack.in_channel("C0HANDOFF1") if "L-1" in str(c.blocks)]
    assert card.updates and "U0NEWREP1" in str(card.blocks)  # the same card, updated
    assert len(fake_slack.in_channel("U0NEWREP1")) == 1  # and Nia gets hers
    assert run_job(services, "owners.retry") == {}  # nothing left to ask
    assert owners.retry_due(services) is None  # and `tick` skips its firings


def test_an_owners_many_waiting_leads_come_to_their_dm_as_a_burst(services, fake_slack, clock,
                                                                  monkeypatch):
    """12 leads waiting for one CRM owner, found at last: their first 10 cards, then one
    summary of the other 2 (Slack takes a message a second per DM), as new leads come."""
    from tests.test_handoff import listed_ids
    from tests.test_nudges import drain

    fake_slack.add_user("U0NEWREP1", "Nia New", "nia@example.com")
    monkeypatch.setattr(fake_slack, "_users_lookupByEmail", _unreachable)
    store(services, "leads", [{"external_id": f"L-{i}", "source": "events",
                               "owner_email": "nia@example.com"} for i in range(12)],
          actor="webhook")
    monkeypatch.undo()
    clock.advance(timedelta(minutes=5))
    assert owners.retry(services, clock.now()) == {
        "nia@example.com": "12 lead(s) routed to U0NEWREP1"}
    drain(services, clock)
    got = fake_slack.in_channel("U0NEWREP1")
    assert [m.text.split(":")[0] for m in got] == ["New lead"] * 10 + \
        ["2 leads handed to you at once"]
    assert len(listed_ids(got[-1])) == 2


def test_a_retry_that_finds_nobody_says_so_on_the_waiting_card(services, fake_slack, clock,
                                                                monkeypatch):

    monkeypatch.setattr(fake_slack, "_users_lookupByEmail", _unreachable)
    store(services, "leads", [{"external_id": "L-1", "source": "events",
                               "owner_email": "ghost@example.com"}], actor="webhook")
    monkeypatch.undo()
    assert owners.retry(services, clock.now()) == {"ghost@example.com": "matches nobody in Slack"}
    services.sender.flush()
    [card] = fake_slack.in_channel("C0HANDOFF1")
    assert "matches nobody in Slack" in str(card.blocks)
    assert len(fake_slack.in_channel("U0ADMIN01")) == 1  # now there is something to fix


def test_deals_of_an_owner_found_later_become_theirs(services, fake_slack, clock, monkeypatch):
    from storage.models import Deal

    fake_slack.add_user("U0NEWREP1", "Nia New", "nia@example.com")
    monkeypatch.setattr(fake_slack, "_users_lookupByEmail", _unreachable)
    assert store(services, "deals", [{"external_id": "D-1", "owner_email": "nia@example.com"}],
                 actor="webhook").created == 1
    monkeypatch.undo()
    owners.retry(services, clock.now())
    with services.sessions.begin() as s:
        deal, nia = s.scalars(select(Deal)).one(), s.scalars(
            select(Person).where(Person.slack_id == "U0NEWREP1")).one()
        assert deal.owner_id == nia.id


def test_once_slack_does_not_answer_the_batch_asks_no_more(services, fake_slack, monkeypatch):
    """Each lookup would wait as long: one timeout per batch, not one per owner."""
    monkeypatch.setattr(fake_slack, "_users_lookupByEmail", _unreachable)
    records = [{"external_id": f"L-{i}", "source": "events", "owner_email": f"rep{i}@example.com"}
               for i in range(5)]
    assert store(services, "leads", records, actor="webhook").created == 5
    assert len(fake_slack.calls_of("users.lookupByEmail")) == 1


def test_slack_is_asked_about_owners_before_any_lock_is_taken(services, fake_slack, monkeypatch):
    """A slow users.lookupByEmail (12 s once) held the batch's write lock, and clicks failed
    meanwhile with "database is locked": now no connection is held while Slack answers."""
    from storage.models import ProcessedEvent

    fake_slack.add_user("U0NEWREP1", "Nia New", "nia@example.com")
    answer = fake_slack._users_lookupByEmail

    def slow_lookup(args):
        assert services.engine.pool.checkedout() == 0, "a connection is held during the lookup"
        with services.sessions.begin() as s:  # a click's write goes through meanwhile
            s.add(ProcessedEvent(team_id=TEAM, event_id=f"Ev-{args['email']}",
                                 received_at=services.clock.now()))
        return answer(args)
    monkeypatch.setattr(fake_slack, "_users_lookupByEmail", slow_lookup)
    records = [{"external_id": "L-1", "source": "events", "owner_email": "nia@example.com"},
               {"external_id": "L-2", "source": "events", "owner_email": "ghost@example.com"}]
    assert store(services, "leads", records, actor="webhook").created == 2
    assert len(fake_slack.calls_of("users.lookupByEmail")) == 2
    with services.sessions.begin() as s:
        assert s.scalars(select(Lead.owner_id).where(Lead.external_id == "L-1")).one() is not None
        assert len(s.scalars(select(ProcessedEvent)).all()) == 2


def test_batches_soon_after_a_failed_lookup_leave_it_to_the_retry(services, fake_slack, clock,
                                                                   monkeypatch):
    """Slack down: each webhook would wait out a timeout for the same owner; within five
    minutes of a failure, the batch does not ask again (the retry job does)."""
    monkeypatch.setattr(fake_slack, "_users_lookupByEmail", _unreachable)

    def batch(n):
        return store(services, "leads", [{"external_id": f"L-{n}", "source": "events",
                                          "owner_email": "nia@example.com"}], actor="webhook")
    batch(1)
    clock.advance(timedelta(minutes=4))
    assert batch(2).created == 1
    assert len(fake_slack.calls_of("users.lookupByEmail")) == 1
    clock.advance(timedelta(minutes=2))
    batch(3)
    assert len(fake_slack.calls_of("users.lookupByEmail")) == 2


def test_a_batchs_owners_are_asked_of_slack_before_the_handoff_lock(services, fake_slack,
                                                                    monkeypatch):
    """No network call inside a database lock: Slack is asked about every owner email of
    the batch before the workspace's handoff lock is taken, never while it is held."""
    from bot.intake import batches

    fake_slack.add_user("U0NEWREP1", "Nia New", "nia@example.com")
    asked_at_lock = []
    lock = batches.lock_handoffs

    def locking(session, team_id):
        asked_at_lock.append(len(fake_slack.calls_of("users.lookupByEmail")))
        return lock(session, team_id)
    monkeypatch.setattr(batches, "lock_handoffs", locking)
    store(services, "leads", [{"external_id": "L-1", "source": "events",
                               "owner_email": "nia@example.com"},
                              {"external_id": "L-2", "source": "events",
                               "owner_email": "ghost@example.com"}], actor="webhook")
    assert asked_at_lock == [2] == [len(fake_slack.calls_of("users.lookupByEmail"))]


@pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True)
def test_a_lead_taken_while_the_retry_finds_its_crm_owner_stays_taken(
        services, fake_slack, clock, monkeypatch):
    """A rep takes a waiting lead as the retry finds its CRM owner at last: the retry, which
    read the lead still waiting, gave it to the CRM owner over the take. It leaves the lead
    to whoever took it (PostgreSQL; SQLite has one writer, so the two never overlap)."""
    from bot.handoff import clicks
    from tests.concurrency import until_waiting
    from tests.test_webhooks import token

    fake_slack.add_user("U0NEWREP1", "Nia New", "nia@example.com")
    monkeypatch.setattr(fake_slack, "_users_lookupByEmail", _unreachable)
    store(services, "leads", [{"external_id": "L-1", "source": "events",
                               "owner_email": "nia@example.com"}], actor="webhook")
    monkeypatch.undo()
    clock.advance(timedelta(minutes=5))
    outcome = []
    with services.work() as work:  # the take, its move made, not yet committed
        clicks.take(work, token(services, "L-1"), "U0SALES01")
        retrying = threading.Thread(target=lambda: outcome.append(
            owners.retry(services, clock.now())))
        retrying.start()
        until_waiting(services.engine, retrying)
    retrying.join()
    assert outcome == [{"nia@example.com": "0 lead(s) routed to U0NEWREP1"}]
    with services.sessions.begin() as s:
        taken = s.scalars(select(Lead).where(Lead.external_id == "L-1")).one()
        rep = s.scalars(select(Person).where(Person.slack_id == "U0SALES01")).one()
        assert (taken.status, taken.owner_id) == ("routed", rep.id)
