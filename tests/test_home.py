"""The App Home through real app.dispatch(): published on open, kept up to date, debounced."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.blocks import handoff as cards
from bot.blocks.home import MAX_BLOCKS, home_view
from bot.blocks.kit import divider, section
from bot.features import FEATURES
from bot.handoff.home import LEADS_SHOWN
from bot.home import DEBOUNCE
from bot.intake.batches import store
from bot.platform import outbox
from bot.platform.manifest import build_manifest
from bot.platform.scheduler import run_job
from bot.sla.nudges import sweep
from storage.models import HomeTab, Lead, Person
from tests.shelltools import run
from tests.slack import all_text, click, send_event
from tests.test_handoff import new_lead

EVENT_IDS = iter(range(1, 10_000))
START = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # the clock fixture's start


@pytest.fixture
def services(services):
    """Every card and card update delivered at once, without a clock ticking for the pace."""
    services.sender.settings = dataclasses.replace(services.sender.settings, burst=1000)
    return services


def open_home(app, clock, user, **event):
    event = {"type": "app_home_opened", "user": user, "channel": "D" + user[1:], "tab": "home",
             "event_ts": f"{clock.now().timestamp():.6f}", **event}
    return send_event(app, event, f"EvHome{next(EVENT_IDS):05d}", clock.now())


def home_text(fake, user) -> str:
    return all_text(fake.homes[user])


def publishes(fake, user) -> int:
    return sum(1 for args in fake.calls_of("views.publish") if args["user_id"] == user)


def card_of(fake, external_id):
    return next(m for m in fake.in_channel("C0HANDOFF1") if f"Lead {external_id}" in
                all_text({"blocks": m.blocks}))


def act(app, services, fake, clock, external_id, action_id, user="U0SALES01", **kw):
    click(app, fake, card_of(fake, external_id), action_id, user, clock.now(), **kw)
    services.sender.flush()  # the card shows the new state: the next click is not stale


def refresh_at(services, clock, seconds):
    """Run the refresh job at START + `seconds`, and deliver what it queued."""
    clock.set(START + timedelta(seconds=seconds))
    run_job(services, "home.refresh")
    services.sender.flush()


def test_opening_the_home_shows_the_persons_open_leads_and_the_scorecard(
        app, services, fake_slack, clock):
    new_lead(services, "L-1", name="Ann Lee")  # U0SALES01, standard: due 13:00 New York
    new_lead(services, "L-2", name="Bo Chan")  # U0SALES02, in Los Angeles
    new_lead(services, "L-3", name="Cy Hot", score=90)  # U0SALES01 (awake), hot: due 09:15
    new_lead(services, "L-4", name="Di Done")  # U0SALES01
    act(app, services, fake_slack, clock, "L-4", cards.FIRST_TOUCH)  # answered: not open

    assert open_home(app, clock, "U0SALES01").status == 200
    assert fake_slack.homes["U0SALES01"]["type"] == "home"
    shown = home_text(fake_slack, "U0SALES01")
    assert "Your open leads (2)" in shown
    assert shown.index("Cy Hot") < shown.index("Ann Lee")  # oldest due first
    assert "Bo Chan" not in shown and "Di Done" not in shown
    assert "due <!date^" in shown and "2026-11-24 13:00 EST" in shown
    assert ":large_green_circle: on track" in shown
    assert "Scorecard" in shown and "Leads routed" in shown and "Win rate" in shown

    open_home(app, clock, "U0SALES02")  # in Los Angeles: 4 of her business hours, her time
    assert "Bo Chan" in home_text(fake_slack, "U0SALES02")
    assert "2026-11-24 13:00 PST" in home_text(fake_slack, "U0SALES02")
    assert services.sender.flush().sent == 0  # published directly, nothing was queued


def test_people_outside_sales_see_the_scorecard_without_a_leads_section(
        app, services, fake_slack, clock):
    new_lead(services, "L-1")
    fake_slack.add_user("U0GUEST01", "Guest")  # in Slack, unknown to alignbot
    for user in ("U0MKTG01", "U0GUEST01"):
        open_home(app, clock, user)
        shown = home_text(fake_slack, user)
        assert "Scorecard" in shown and "Your open leads" not in shown
    open_home(app, clock, "U0SALESMG1")  # sales, nothing open: says so
    assert "Nothing is waiting for you" in home_text(fake_slack, "U0SALESMG1")
    with services.sessions.begin() as s:  # only people alignbot knows are kept up to date
        assert len(s.scalars(select(HomeTab)).all()) == 2


def test_changes_republish_the_owners_home_once_per_window(app, services, fake_slack, clock):
    for n in (1, 2, 3):
        new_lead(services, f"L-{n}", name=f"Lead {n}")  # L-1, L-3: U0SALES01; L-2: U0SALES02
    open_home(app, clock, "U0SALES01")
    assert publishes(fake_slack, "U0SALES01") == 1

    act(app, services, fake_slack, clock, "L-1", cards.ACCEPT)
    clock.advance(timedelta(seconds=10))
    act(app, services, fake_slack, clock, "L-3", cards.ACCEPT)
    clock.advance(timedelta(seconds=10))
    act(app, services, fake_slack, clock, "L-1", cards.FIRST_TOUCH)
    refresh_at(services, clock, 20)
    assert publishes(fake_slack, "U0SALES01") == 1  # the window of the first change is open

    refresh_at(services, clock, DEBOUNCE.seconds)
    assert publishes(fake_slack, "U0SALES01") == 2  # three changes, one publish
    shown = home_text(fake_slack, "U0SALES01")
    assert "Your open leads (1)" in shown and "Lead 3" in shown and "accepted" in shown
    refresh_at(services, clock, 40)
    assert publishes(fake_slack, "U0SALES01") == 2
    assert publishes(fake_slack, "U0SALES02") == 0  # never opened: never published

    act(app, services, fake_slack, clock, "L-3", cards.FIRST_TOUCH)  # a new window from 40 s
    refresh_at(services, clock, 60)
    assert publishes(fake_slack, "U0SALES01") == 2
    refresh_at(services, clock, 70)
    assert publishes(fake_slack, "U0SALES01") == 3
    assert "Your open leads" in home_text(fake_slack, "U0SALES01")
    assert "Lead 3" not in home_text(fake_slack, "U0SALES01")


def test_a_reassignment_refreshes_the_old_and_the_new_owner(app, services, fake_slack, clock):
    new_lead(services, "L-1", name="Ann Lee")
    for user in ("U0SALES01", "U0SALES02"):
        open_home(app, clock, user)
    act(app, services, fake_slack, clock, "L-1", cards.REASSIGN, selected_user="U0SALES02")
    refresh_at(services, clock, DEBOUNCE.seconds)
    assert "Ann Lee" not in home_text(fake_slack, "U0SALES01")
    assert "Ann Lee" in home_text(fake_slack, "U0SALES02")
    assert publishes(fake_slack, "U0SALES01") == publishes(fake_slack, "U0SALES02") == 2


def test_no_home_is_published_to_someone_deactivated(app, services, fake_slack, clock):
    new_lead(services, "L-1", name="Ann Lee")
    open_home(app, clock, "U0SALES01")
    with services.transaction() as s:
        s.scalars(select(Person).where(Person.slack_id == "U0SALES01")).one().deactivated = True
    act(app, services, fake_slack, clock, "L-1", cards.REASSIGN, user="U0SALESMG1",
        selected_user="U0SALES02")
    refresh_at(services, clock, DEBOUNCE.seconds)
    assert publishes(fake_slack, "U0SALES01") == 1


def test_an_sla_state_change_refreshes_the_home(app, services, fake_slack, clock):
    new_lead(services, "L-1")  # routed 09:00, due 13:00: due soon from 11:00
    open_home(app, clock, "U0SALES01")
    clock.set(START + timedelta(hours=2))
    sweep(services, clock.now())
    run_job(services, "home.refresh")
    services.sender.flush()
    assert publishes(fake_slack, "U0SALES01") == 1
    clock.advance(DEBOUNCE)
    run_job(services, "home.refresh")
    services.sender.flush()
    assert ":large_yellow_circle: due soon" in home_text(fake_slack, "U0SALES01")


def test_a_metric_refresh_republishes_every_open_home_once(app, services, fake_slack, clock):
    open_home(app, clock, "U0SALES01")
    open_home(app, clock, "U0SALES02")
    run_job(services, "metrics.refresh")
    refresh_at(services, clock, 0)
    assert publishes(fake_slack, "U0SALES01") == publishes(fake_slack, "U0SALES02") == 1
    refresh_at(services, clock, DEBOUNCE.seconds)  # the scorecard's numbers may have moved
    assert publishes(fake_slack, "U0SALES01") == publishes(fake_slack, "U0SALES02") == 2


def test_crm_updates_refresh_the_home(app, services, fake_slack, clock):
    new_lead(services, "L-1", name="Ann Lee")
    open_home(app, clock, "U0SALES01")
    store(services, "leads", [
        {"external_id": "L-1", "source": "webinar", "status": "contacted"},  # touched in the CRM
        {"external_id": "L-9", "source": "events", "name": "Bo Chan", "status": "routed",
         "owner_email": "sam@example.com"},  # imported already routed to Sam
    ], actor="crm")
    refresh_at(services, clock, DEBOUNCE.seconds)
    assert publishes(fake_slack, "U0SALES01") == 2
    assert "Ann Lee" not in home_text(fake_slack, "U0SALES01")
    assert "Bo Chan" in home_text(fake_slack, "U0SALES01")


def test_200_open_leads_fit_slacks_limits_and_an_import_is_one_publish(
        app, services, fake_slack, clock):
    open_home(app, clock, "U0SALES01")
    store(services, "leads", [{"external_id": f"L-{n:03d}", "source": "webinar", "score": 50,
                               "owner_email": "sam@example.com"} for n in range(200)], actor="test")
    refresh_at(services, clock, DEBOUNCE.seconds)  # the fake checks every view against the limits
    assert publishes(fake_slack, "U0SALES01") == 2
    shown = home_text(fake_slack, "U0SALES01")
    assert "Your open leads (200)" in shown
    assert shown.count("`L-") == LEADS_SHOWN
    assert f"…and {200 - LEADS_SHOWN} more — `/align leads mine`" in shown

    with services.transaction() as s:  # the longest names and companies the store holds
        s.execute(update(Lead).values(name="x" * 200, company="y" * 200))
    open_home(app, clock, "U0SALES01")
    assert len(fake_slack.homes["U0SALES01"]["blocks"]) <= MAX_BLOCKS


def test_a_view_over_slacks_limit_is_cut_rather_than_refused():
    view = home_view([[section("a")] * 60, [section("b")] * 60])
    assert len(view["blocks"]) == MAX_BLOCKS and view["blocks"][60] == divider()


def test_a_home_still_queued_is_replaced_by_a_newer_one(services, fake_slack, clock):
    fake_slack.add_user("U0GUEST01", "Guest")
    with services.transaction() as session:
        for text in ("old", "new"):
            outbox.publish(session, services.team_id, "U0GUEST01",
                           {"type": "home", "blocks": [{"type": "section", "text": {
                               "type": "mrkdwn", "text": text}}]}, now=clock.now())
    services.sender.flush()
    assert publishes(fake_slack, "U0GUEST01") == 1 and home_text(fake_slack, "U0GUEST01") == "\nnew"


def test_a_malformed_or_messages_tab_event_publishes_nothing(app, fake_slack, clock):
    event = {"type": "app_home_opened", "channel": "D0SALES01", "tab": "home",
             "event_ts": "1764000000.000100"}
    assert send_event(app, event, "EvNoUser", clock.now()).status == 200
    assert open_home(app, clock, "U0SALES01", tab="messages").status == 200
    assert fake_slack.calls_of("views.publish") == []


def test_the_manifest_enables_the_home_tab_and_its_event():
    manifest = build_manifest(FEATURES)
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]


def test_the_shell_opens_a_home(shell):
    out = run(shell, "home", "home Mia")
    assert "[App Home of U0SALES01 updated]" in out and "Your open leads" in out
    assert "[App Home of U0MKTG01 updated]" in out and "Scorecard" in out
