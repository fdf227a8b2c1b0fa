"""Who is who: CRM owner emails become Slack users; failures are told once and lose nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.directory import resolve_owner
from bot.handoff import hand_off
from bot.webhooks import store
from storage.models import Lead, Person, UnmappedEmail
from tests.slack import TEAM, send_event


def resolve(services, email):
    with services.transaction() as s:
        person = resolve_owner(s, TEAM, email, slack=services.slack, config=services.config,
                               now=services.clock.now())
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
        with services.transaction() as s:
            lead = Lead(team_id=TEAM, external_id=f"L-{i}", source="events", status="new",
                        owner_email="ghost@example.com", created_at=now, mql_at=now, updated_at=now)
            s.add(lead)
            s.flush()
            hand_off(s, TEAM, lead, services.config, now, owner_by_email=lambda e, s=s: resolve_owner(
                s, TEAM, e, slack=services.slack, config=services.config, now=now))
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
        owners = {lead.external_id: lead.owner_id for lead in s.scalars(select(Lead))}
        nia = s.scalars(select(Person).where(Person.slack_id == "U0NEWREP1")).one()
        ghost = s.scalars(select(UnmappedEmail)).one()
    assert owners == {"L-0": None, "L-1": nia.id, "L-2": None, "L-3": nia.id}
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
