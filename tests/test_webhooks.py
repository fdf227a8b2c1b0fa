"""POST /webhooks/<entity> through the real Flask app: signed, bounded, nothing lost, idempotent."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.intake.batches import stage, store
from bot.intake.records import FIELDS, MAX_BATCH
from bot.intake.webhooks import MAX_BODY_BYTES, signature
from bot.platform.config import Secret
from bot.platform.server import create_web_app
from storage.models import HandoffBurst, Lead, LeadEvent, OutboxMessage, Person, RoutingState
from tests.concurrency import until_waiting

SECRET = "whsec-test-0123456789"


@pytest.fixture
def web(services, app):
    services.secrets = dataclasses.replace(services.secrets, webhook_secret=Secret(SECRET))
    return create_web_app(services, app).test_client()


def post(web, services, entity, payload, *, secret=SECRET, age=timedelta(0), raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    ts = str(int((services.clock.now() - age).timestamp()))
    return web.post(f"/webhooks/{entity}", data=body, content_type="application/json",
                    headers={"X-Alignbot-Timestamp": ts,
                             "X-Alignbot-Signature": signature(secret, ts, body)})


def lead(n, **fields):
    return {"external_id": f"L-{n:05d}", "source": "webinar", "email": f"p{n}@prospect.example",
            "name": f"Person {n}", "company": "Acme", "score": 50, **fields}


def count(services, model, *where):
    with services.sessions.begin() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_one_lead_is_stored_routed_and_carded(web, services, fake_slack):
    resp = post(web, services, "leads", lead(1))
    assert resp.status_code == 200
    assert resp.get_json() == {"created": 1, "updated": 0, "unchanged": 0, "rejected": [],
                               "skipped": []}
    services.sender.flush()
    [card] = fake_slack.in_channel("C0HANDOFF1")
    assert "Person 1" in card.text
    with services.sessions.begin() as s:
        assert s.scalars(select(Lead)).one().status == "routed"


def test_a_batch_with_bad_records_stores_the_good_ones_and_says_why(web, services, fake_slack):
    records = [lead(n) for n in range(MAX_BATCH)]
    records[10] = {**records[10], "score": 180}
    records[500] = {k: v for k, v in records[500].items() if k != "source"}
    records[999] = "not a record"
    resp = post(web, services, "leads", {"leads": records})
    body = resp.get_json()
    assert resp.status_code == 200 and body["created"] == 997
    assert [r["index"] for r in body["rejected"]] == [10, 500, 999]
    assert all(r["errors"] for r in body["rejected"])
    assert "score" in body["rejected"][0]["errors"][0]
    assert count(services, Lead) == 997 and count(services, Lead, Lead.status == "routed") == 997
    queued = count(services, OutboxMessage)
    # cards coalesce: per channel (the handoff channel, each owner's DM) the first
    # `burst_limit` cards, then one summary of all the others
    with services.sessions() as s:
        channels = s.scalar(select(func.count(OutboxMessage.channel.distinct())))
    assert queued == channels * (services.config.handoff.burst_limit + 1)

    services.clock.advance(timedelta(seconds=1))  # sent again (not replayed: signed anew)
    again = post(web, services, "leads", {"leads": records}).get_json()
    assert again["created"] == 0 and again["unchanged"] == 997
    assert count(services, OutboxMessage) == queued  # nothing new queued


@pytest.mark.parametrize("move,reason", [
    ({"status": "new"}, "status: Lead L-00001 is routed; it cannot become new. From routed "
                        "it can become: accepted, contacted, recycled, rejected, routed."),
    ({"rejected_at": "2026-11-24T15:00:00Z"}, "status: a rejection needs a rejection_reason"),
])
def test_a_lead_that_cannot_take_its_update_is_rejected_and_keeps_its_history(
        web, services, move, reason):
    post(web, services, "leads", {"leads": [lead(1), lead(2)]})
    services.clock.advance(timedelta(seconds=1))
    body = post(web, services, "leads", {"leads": [
        lead(1, name="Renamed", **move), lead(2, name="Renamed")]}).get_json()
    [refused] = body["rejected"]
    assert body["updated"] == 1 and refused["index"] == 0 and refused["errors"] == [reason]
    with services.sessions.begin() as s:
        names = dict(s.execute(select(Lead.external_id, Lead.name)).all())
        updates = s.scalars(select(Lead.external_id).join(LeadEvent, LeadEvent.lead_id == Lead.id)
                            .where(LeadEvent.kind == "updated")).all()
    assert names == {"L-00001": "Person 1", "L-00002": "Renamed"}
    assert updates == ["L-00002"]  # the refused record left no trace in the history


def waiting(services, fake_slack, external_id):
    """A lead as the handoff channel's queue holds it: its status and owner, its pending
    nudges, and its card in the channel."""
    from storage.models import Nudge

    with services.sessions.begin() as s:
        row = s.scalars(select(Lead).where(Lead.external_id == external_id)).one()
        pending = sorted(s.scalars(select(Nudge.stage).where(
            Nudge.lead_id == row.id, Nudge.state == "pending")))
        state = (row.status, row.owner_id, row.routed_at, row.sla_policy, pending)
    [card] = [m for m in fake_slack.in_channel("C0HANDOFF1") if external_id in str(m.blocks)]
    return state, card


def test_a_lead_sent_as_routed_to_an_owner_nobody_has_waits_in_the_queue(
        app, web, services, fake_slack, clock):
    """PRODUCT.md: a lead whose owner cannot be mapped goes to the fallback queue and the
    admin is told. Sent as routed, it was stored routed to nobody: no card, no nudge ever."""
    from bot.blocks import handoff as cards
    from tests.slack import all_text, click

    ghost = {"owner_email": "nobody@elsewhere.example"}
    sent = post(web, services, "leads", {"leads": [
        lead(1, status="routed", routed_at="2026-11-24T13:00:00Z", **ghost),
        lead(2, **ghost)]})  # new, for comparison
    assert sent.get_json()["created"] == 2
    services.sender.flush()
    routed, routed_card = waiting(services, fake_slack, "L-00001")
    assert routed == waiting(services, fake_slack, "L-00002")[0] == (
        "new", None, None, "unassigned", ["route", "unassigned"])
    shown = all_text({"blocks": routed_card.blocks})
    assert "Unassigned" in shown and "nobody@elsewhere.example matches nobody in Slack" in shown
    [told] = fake_slack.in_channel("U0ADMIN01")  # once for the email
    assert "nobody@elsewhere.example" in told.text and "wait in the handoff channel's queue" \
        in all_text({"blocks": told.blocks})
    with services.sessions.begin() as s:  # what the CRM said is kept in its history
        created = s.scalars(select(LeadEvent).join(Lead, Lead.id == LeadEvent.lead_id).where(
            Lead.external_id == "L-00001", LeadEvent.kind == "created")).one()
    assert created.data == {"crm_status": "routed", "routed_at": "2026-11-24T13:00:00+00:00"}

    click(app, fake_slack, routed_card, cards.TAKE, "U0SALES02", clock.now())
    services.sender.flush()
    with services.sessions.begin() as s:
        taken = s.scalars(select(Lead).where(Lead.external_id == "L-00001")).one()
        assert (taken.status, taken.routed_at, taken.sla_policy) == (
            "routed", clock.now(), "standard")
    assert "<@U0SALES02>" in all_text({"blocks": routed_card.blocks})


def held(services, external_id):
    """A lead as alignbot holds it: status, owner, when its handoff began and its owner got
    it, its SLA, and its pending nudges."""
    from storage.models import Nudge, Person

    with services.sessions.begin() as s:
        row = s.scalars(select(Lead).where(Lead.external_id == external_id)).one()
        owner = s.get(Person, row.owner_id).slack_id if row.owner_id else None
        pending = sorted(s.scalars(select(Nudge.stage).where(
            Nudge.lead_id == row.id, Nudge.state == "pending")))
        return dataclasses.make_dataclass("Held", [
            "status", "owner", "crm_owner_email", "routed_at", "assigned_at", "sla_policy",
            "sla_due_at", "sla_met", "rejection_reason", "pending"])(
            row.status, owner, row.crm_owner_email, row.routed_at, row.assigned_at, row.sla_policy,
            row.sla_due_at, row.sla_met, row.rejection_reason, pending)


def history(services, external_id):
    with services.sessions.begin() as s:
        return [(e.kind, e.from_status, e.to_status) for e in s.scalars(
            select(LeadEvent).join(Lead, Lead.id == LeadEvent.lead_id)
            .where(Lead.external_id == external_id).order_by(LeadEvent.id))]


def test_a_queued_lead_the_crm_routes_is_handed_off_like_a_new_one(web, services, fake_slack, clock):
    """An update that routes a lead waiting in the queue (to routed, or to accepted through
    routed) made it routed with no due time, no nudge, no card, its queue stages left
    behind. It is a handoff: the owner gets it with a fresh SLA clock and its first nudge,
    the queue's stages go, its card is updated in place and the owner gets theirs."""
    from tests.slack import all_text

    ghost = {"owner_email": "nobody@elsewhere.example"}
    post(web, services, "leads", {"leads": [lead(1, **ghost), lead(2, **ghost)]})
    services.sender.flush()
    cards = {n: waiting(services, fake_slack, f"L-0000{n}")[1] for n in (1, 2)}
    assert held(services, "L-00001").pending == ["route", "unassigned"]
    clock.advance(timedelta(minutes=10))
    sue = {"owner_email": "sue@example.com"}
    sent = post(web, services, "leads", {"leads": [
        lead(1, status="routed", **sue),
        lead(2, status="accepted", routed_at="2026-11-24T14:05:00Z",
             accepted_at="2026-11-24T14:06:00Z", **sue)]})
    assert sent.get_json()["updated"] == 2
    services.sender.flush()
    for n, status in ((1, "routed"), (2, "accepted")):
        now = held(services, f"L-0000{n}")
        assert (now.status, now.owner, now.routed_at, now.assigned_at, now.sla_policy) == (
            status, "U0SALES02", clock.now(), clock.now(), "standard"), n
        assert now.sla_due_at > clock.now() and now.pending == ["card"], n  # the queue's: gone
        shown = all_text({"text": cards[n].text, "blocks": cards[n].blocks})  # in place
        assert "<@U0SALES02>" in shown and "Unassigned" not in shown, n
    assert "Accepted" in all_text({"blocks": cards[2].blocks})
    assert "<@webhook>" not in all_text({"blocks": cards[2].blocks})  # no person did it
    assert len(fake_slack.in_channel("C0HANDOFF1")) == 2  # no second card
    assert sorted(m.text.split(": ")[1].split(" — ")[0]
                  for m in fake_slack.in_channel("U0SALES02")) == ["Person 1", "Person 2"]
    assert history(services, "L-00002")[-2:] == [("routed", "new", "routed"),
                                                 ("accepted", "routed", "accepted")]

    clock.advance(timedelta(seconds=1))  # the same records again change nothing
    again = post(web, services, "leads", {"leads": [lead(1, status="routed", **sue),
                                                    lead(2, status="accepted", **sue)]})
    assert again.get_json()["unchanged"] == 2


def test_a_lead_the_crm_routes_to_an_owner_nobody_has_waits_in_the_queue(
        web, services, fake_slack, clock):
    """Routed by the CRM to an email nobody here has, a queued lead was pulled out of the
    queue into a routed lead with no owner (and a rejected one refused: "it cannot become
    routed"). Both wait in the queue as a new lead naming that owner does: an "Unassigned"
    card saying why, the admin told, the queue's retry and escalation."""
    from tests.slack import all_text

    post(web, services, "leads", {"leads": [
        lead(1, owner_email="nobody@elsewhere.example"), lead(2, owner_email="sam@example.com")]})
    clock.advance(timedelta(minutes=5))
    post(web, services, "leads", lead(2, status="rejected", rejection_reason="not_ready"))
    services.sender.flush()
    first_wait = held(services, "L-00001").sla_due_at
    rejected_card = waiting(services, fake_slack, "L-00002")[1]
    clock.advance(timedelta(minutes=5))
    other = {"owner_email": "other@elsewhere.example", "status": "routed"}
    sent = post(web, services, "leads", {"leads": [lead(1, **other), lead(2, **other)]})
    assert sent.get_json()["updated"] == 2, sent.get_json()
    services.sender.flush()
    for n in (1, 2):
        now = held(services, f"L-0000{n}")
        assert (now.status, now.owner, now.crm_owner_email, now.sla_policy, now.pending) == (
            "new", None, "other@elsewhere.example", "unassigned", ["route", "unassigned"]), n
        card = waiting(services, fake_slack, f"L-0000{n}")[1]
        shown = all_text({"text": card.text, "blocks": card.blocks})
        assert "Unassigned" in shown and "other@elsewhere.example matches nobody" in shown, n
    assert held(services, "L-00001").sla_due_at == first_wait  # waiting since it first did
    back = held(services, "L-00002")
    assert (back.rejection_reason, back.assigned_at) == (None, None)
    assert history(services, "L-00002")[-1] == ("unassigned", "rejected", "new")
    assert rejected_card in fake_slack.in_channel("C0HANDOFF1")  # the same card, updated
    assert any("other@elsewhere.example" in m.text for m in fake_slack.in_channel("U0ADMIN01"))

    clock.advance(timedelta(seconds=1))
    events = len(history(services, "L-00001")) + len(history(services, "L-00002"))
    again = post(web, services, "leads", {"leads": [lead(1, **other), lead(2, **other)]})
    assert again.get_json()["unchanged"] == 2  # still waiting for the same owner
    assert len(history(services, "L-00001")) + len(history(services, "L-00002")) == events
    assert held(services, "L-00001").pending == ["route", "unassigned"]


@pytest.mark.parametrize("exit_", [{"status": "rejected", "rejection_reason": "wrong_territory"},
                                   {"status": "recycled"}], ids=["rejected", "recycled"])
def test_a_rejected_or_recycled_lead_the_crm_routes_again_is_a_new_handoff(
        web, services, fake_slack, clock, exit_):
    """Refused before ("it cannot become routed. From rejected it can become: recycled,
    routed"): routed again, it is a new handoff, with a fresh clock, its card and a DM."""
    from tests.slack import all_text

    post(web, services, "leads", lead(1, owner_email="sam@example.com"))
    clock.advance(timedelta(minutes=30))
    post(web, services, "leads", lead(1, **exit_))
    clock.advance(timedelta(minutes=30))
    post(web, services, "leads", lead(1, status="routed", owner_email="sue@example.com"))
    services.sender.flush()
    now = held(services, "L-00001")
    assert (now.status, now.owner, now.routed_at, now.assigned_at, now.rejection_reason,
            now.sla_met, now.pending) == (
        "routed", "U0SALES02", clock.now(), clock.now(), None, None, ["card"])
    [card] = fake_slack.in_channel("C0HANDOFF1")
    assert "<@U0SALES02>" in all_text({"blocks": card.blocks})
    assert [m.text for m in fake_slack.in_channel("U0SALES02")] == [card.text]


@pytest.mark.parametrize(("after", "touch", "sla"), [
    (timedelta(hours=1), {"first_touch_at": "2026-11-24T14:30:00Z"},
     {"state": "met", "response_minutes": 30.0, "business_minutes": 30.0}),
    (timedelta(days=2), {},  # Tuesday 09:00 to Thursday (Thanksgiving): two working days
     {"state": "breached", "response_minutes": 2880.0, "business_minutes": 960.0}),
], ids=["touched-in-time", "touched-two-days-later"])
def test_a_queued_lead_the_crm_says_was_contacted_was_routed_when_it_qualified(
        web, services, fake_slack, clock, after, touch, sla):
    """A lead waiting in the queue that the CRM sent as contacted was stored routed at the
    update's arrival, after its first touch (a response of -30 minutes), with no due time:
    left out of SLA compliance, owned by nobody when the record did not name the owner
    again. As a lead imported contacted, it is its CRM owner's, routed when it qualified
    (the queue's wait is the prospect's wait), touched when the CRM says (else when the
    update came), its SLA met or missed accordingly; its card shows the owner and the touch."""
    from bot.handoff.leads import lead_json
    from tests.slack import all_text

    with services.sessions.begin() as s:  # Sam is deactivated: his lead waits
        s.execute(update(Person).where(Person.slack_id == "U0SALES01").values(deactivated=True))
    post(web, services, "leads", lead(1, owner_email="sam@example.com"))
    services.sender.flush()
    mql = clock.now()
    clock.advance(after)
    sent = post(web, services, "leads", lead(1, status="contacted", **touch))
    assert sent.get_json()["updated"] == 1
    services.sender.flush()
    now = held(services, "L-00001")
    assert (now.status, now.owner, now.routed_at, now.sla_policy, now.pending) == (
        "contacted", "U0SALES01", mql, "standard", [])
    shown = lead_json(services, "L-00001")
    assert {k: shown["sla"].get(k) for k in sla} == sla
    assert shown["stages"]["accepted_at"] == shown["stages"]["first_touch_at"]
    card = waiting(services, fake_slack, "L-00001")[1]
    text = all_text({"text": card.text, "blocks": card.blocks})
    assert "<@U0SALES01>" in text and "First touch logged" in text and "Unassigned" not in text


def test_a_crm_reassignment_moves_the_clock_and_the_card_and_keeps_the_handoffs_start(
        web, services, fake_slack, clock):
    """A new owner_email on an open lead set its owner without a clock, a card or a DM (to
    nobody when the email maps to nobody). It is a reassignment, as a click's: the new
    owner's clock and first nudge, the card moves; the handoff began when it did, and a
    missed SLA stays missed. To an email nobody here has, the lead stays with its owner."""
    from tests.slack import all_text

    post(web, services, "leads", {"leads": [lead(1, owner_email="sam@example.com"),
                                            lead(2, owner_email="sam@example.com")]})
    services.sender.flush()
    first = held(services, "L-00001")
    clock.set(first.sla_due_at + timedelta(minutes=1))  # missed (the sweep has not run)
    sent = post(web, services, "leads", {"leads": [
        lead(1, owner_email="sue@example.com"), lead(2, owner_email="nobody@elsewhere.example")]})
    assert sent.get_json()["updated"] == 2
    services.sender.flush()
    moved = held(services, "L-00001")
    assert (moved.status, moved.owner, moved.routed_at, moved.assigned_at, moved.sla_met) == (
        "routed", "U0SALES02", first.routed_at, clock.now(), False)
    assert moved.sla_due_at > clock.now() and moved.pending == ["card"]
    card = waiting(services, fake_slack, "L-00001")[1]
    assert "<@U0SALES02>" in all_text({"blocks": card.blocks})
    [dm] = fake_slack.in_channel("U0SALES02")
    assert "Person 1" in dm.text
    kept = held(services, "L-00002")
    assert (kept.owner, kept.crm_owner_email, kept.sla_due_at) == (
        "U0SALES01", "nobody@elsewhere.example", first.sla_due_at)
    assert any("nobody@elsewhere.example" in m.text for m in fake_slack.in_channel("U0ADMIN01"))


def test_a_webhook_routing_many_queued_leads_bursts_as_new_leads_do(web, services, clock):
    """A batch of queued leads routed at once: cards updated in place, those listed in the
    channel's burst stay one line there (routed within the burst's minute), and the owner's
    DM bursts like new leads'."""
    from storage.models import HandoffBurstLead

    def posts(channel):
        return count(services, OutboxMessage, OutboxMessage.channel == channel,
                     OutboxMessage.method == "chat.postMessage")

    limit, ghost = services.config.handoff.burst_limit, {"owner_email": "nobody@elsewhere.example"}
    post(web, services, "leads", {"leads": [lead(n, **ghost) for n in range(1, limit + 4)]})
    assert posts("C0HANDOFF1") == limit + 1  # the cards, then a summary of 3
    clock.advance(timedelta(seconds=20))
    sent = post(web, services, "leads", {"leads": [
        lead(n, status="routed", owner_email="sue@example.com") for n in range(1, limit + 4)]})
    assert sent.get_json()["updated"] == limit + 3
    assert posts("C0HANDOFF1") == limit + 1  # updated in place, or still a line of its summary
    assert count(services, HandoffBurstLead) == 3 + 3  # the channel's 3, the DM's 3
    assert posts("U0SALES02") == limit + 1
    assert count(services, Lead, Lead.status == "routed") == limit + 3


def card_updates(services, external_id):
    """The in-place edits queued for a lead's cards: which card each edits ("channel",
    "dm:U0SALES01")."""
    with services.sessions.begin() as s:
        lead_id = s.scalar(select(Lead.id).where(Lead.external_id == external_id))
        return sorted(ref.removeprefix(f"lead:{lead_id}:") for ref in s.scalars(
            select(OutboxMessage.ref).where(OutboxMessage.method == "chat.update",
                                            OutboxMessage.ref.startswith(f"lead:{lead_id}:"))))


def test_a_crm_stage_move_updates_the_leads_cards_as_a_click_does(
        web, services, fake_slack, clock):
    """A CRM update that moved a carded lead (to contacted, rejected...) left its card in
    the channel and its owner's DM offering Accept / Reject. Its cards are updated in place,
    as a click's move updates them; a lead the update leaves where it was (or whose only
    change its card does not show) gets no edit, nor does one listed in a burst's summary
    (a click on it edits none either), and no card is posted for it."""
    from tests.slack import all_text

    services.sender.settings = dataclasses.replace(services.sender.settings, burst=1000)  # no pace
    limit, sam = services.config.handoff.burst_limit, {"owner_email": "sam@example.com"}
    post(web, services, "leads", {"leads": [lead(n, **sam) for n in range(1, limit + 2)]})
    services.sender.flush()
    n_burst = limit + 1  # past the burst limit: a line of the channel's and the DM's summaries
    for channel in ("C0HANDOFF1", "U0SALES01"):
        [card] = [m for m in fake_slack.in_channel(channel) if "Person 1 " in m.text]
        assert "Accept" in all_text({"blocks": card.blocks})
    clock.advance(timedelta(minutes=10))
    posts = count(services, OutboxMessage, OutboxMessage.method == "chat.postMessage")
    sent = post(web, services, "leads", {"leads": [
        lead(1, status="contacted", first_touch_at="2026-11-24T14:08:00Z"),
        lead(2, status="rejected", rejection_reason="bad_data"),
        lead(3, email="new@prospect.example"),  # not on its card
        lead(4),  # as it was
        lead(n_burst, status="contacted")]})
    assert sent.get_json()["updated"] == 4, sent.get_json()
    services.sender.flush()
    for channel in ("C0HANDOFF1", "U0SALES01"):
        [card] = [m for m in fake_slack.in_channel(channel) if "Person 1 " in m.text]
        shown = all_text({"text": card.text, "blocks": card.blocks})
        assert "First touch logged" in shown and "Accept" not in shown and "Reject" not in shown
        assert "<@webhook>" not in shown  # no person did it
        [card] = [m for m in fake_slack.in_channel(channel) if "Person 2 " in m.text]
        shown = all_text({"text": card.text, "blocks": card.blocks})
        assert "Rejected" in shown and "Bad contact data" in shown and "Accept" not in shown
    assert held(services, "L-00001").sla_met is True
    for moved in ("L-00001", "L-00002"):
        assert card_updates(services, moved) == ["channel", "dm:U0SALES01"], moved
    for quiet in ("L-00003", "L-00004", f"L-{n_burst:05d}"):
        assert card_updates(services, quiet) == [], quiet
    assert count(services, OutboxMessage, OutboxMessage.method == "chat.postMessage") == posts

    clock.advance(timedelta(seconds=1))  # the same records again: no edit
    post(web, services, "leads", {"leads": [lead(1, status="contacted"), lead(2, status="rejected",
                                                                           rejection_reason="bad_data")]})
    assert len(card_updates(services, "L-00001")) == 2


def test_a_customer_update_sends_only_what_changed_and_a_new_one_needs_started_at(
        web, services):
    """PRODUCT.md marks only the key as required, and deals take partial updates: so do
    customers now. `started_at` is needed only to create one."""
    from storage.models import Customer

    started = "2026-01-01T00:00:00Z"
    assert post(web, services, "customers", {"external_id": "C1", "name": "Acme",
                                             "started_at": started, "mrr": 99}
                ).get_json()["created"] == 1
    services.clock.advance(timedelta(seconds=1))
    answer = post(web, services, "customers", {"customers": [
        {"external_id": "C1", "churned_at": "2026-06-01T00:00:00Z"},
        {"external_id": "C2", "mrr": 10},
        {"external_id": "C3", "started_at": started}]}).get_json()
    assert answer == {"created": 1, "updated": 1, "unchanged": 0, "skipped": [], "rejected": [
        {"index": 1, "external_id": "C2",
         "errors": ["started_at: is required for a new customer (an update may leave it out)"]}]}
    with services.sessions.begin() as s:
        c1 = s.scalars(select(Customer).where(Customer.external_id == "C1")).one()
        assert (c1.name, str(c1.mrr), c1.started_at.isoformat(), c1.churned_at.isoformat()) == (
            "Acme", "99.00", "2026-01-01T00:00:00+00:00", "2026-06-01T00:00:00+00:00")
        assert s.scalar(select(func.count()).select_from(Customer)) == 2


def test_a_deal_update_closing_it_before_it_was_created_is_rejected_saying_why(web, services):
    """A deal update's closed_at was not checked against the stored created_at (nor a new
    created_at against the stored closed_at): a deal could close before it was created."""
    from storage.models import Deal

    assert post(web, services, "deals", {"deals": [
        {"external_id": "D1", "amount": 100, "created_at": "2026-03-01T00:00:00Z"},
        {"external_id": "D2", "amount": 100, "created_at": "2026-03-01T00:00:00Z",
         "closed_at": "2026-04-01T00:00:00Z", "outcome": "won"}]}).get_json()["created"] == 2
    services.clock.advance(timedelta(seconds=1))
    answer = post(web, services, "deals", {"deals": [
        {"external_id": "D1", "closed_at": "2026-02-01T00:00:00Z", "outcome": "lost"},
        {"external_id": "D2", "created_at": "2026-05-01T00:00:00Z"}]}).get_json()
    assert answer == {"created": 0, "updated": 0, "unchanged": 0, "skipped": [], "rejected": [
        {"index": 0, "external_id": "D1",
         "errors": ["closed_at: is before the stored created_at (2026-03-01T00:00:00Z)"]},
        {"index": 1, "external_id": "D2",
         "errors": ["created_at: is after the stored closed_at (2026-04-01T00:00:00Z)"]}]}
    with services.sessions.begin() as s:
        assert {d.external_id: (d.outcome, d.closed_at is None) for d in s.scalars(select(Deal))} \
            == {"D1": ("open", True), "D2": ("won", False)}


def deals_stored(services):
    from storage.models import Deal

    with services.sessions.begin() as s:
        return {d.external_id: (d.outcome, d.created_at, d.closed_at)
                for d in s.scalars(select(Deal))}


def test_a_new_deal_that_has_closed_needs_created_at_and_the_rest_of_its_batch_is_stored(
        web, services, clock):
    """A new deal without created_at was stored as created when it arrived, after the
    closed_at it came with: its sales cycle negative. Created when it arrives only while
    open and not closed before that; otherwise it is rejected saying so."""
    now, created = clock.now(), "2026-10-01T00:00:00Z"
    answer = post(web, services, "deals", {"deals": [
        {"external_id": "D1", "closed_at": "2026-11-02T00:00:00Z", "outcome": "won"},
        {"external_id": "D2", "closed_at": "2026-11-02T00:00:00Z"},
        {"external_id": "D3", "created_at": created, "closed_at": "2026-11-02T00:00:00Z",
         "outcome": "won"},
        {"external_id": "D4", "amount": 10},
        {"external_id": "D5", "closed_at": "2026-12-15T00:00:00Z"}]}).get_json()
    assert answer == {"created": 3, "updated": 0, "unchanged": 0, "skipped": [], "rejected": [
        {"index": 0, "external_id": "D1", "errors": [
            "created_at: needed for a new deal that is won (its sales cycle runs from "
            "created_at to closed_at)"]},
        {"index": 1, "external_id": "D2", "errors": [
            "created_at: needed for a new deal whose closed_at is before now (else it is "
            "created when it arrives: after it closed)"]}]}
    assert deals_stored(services) == {
        "D3": ("won", datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)),
        "D4": ("open", now, None),  # created as it arrived, as before
        "D5": ("open", now, datetime(2026, 12, 15, tzinfo=UTC))}  # an expected close


def test_a_deal_the_crm_wins_or_loses_without_closed_at_closed_when_that_arrived(
        web, services, clock):
    """`outcome` won or lost needed closed_at in the same record: a CRM telling "won" as it
    happens was rejected. The time it arrives is when the deal closed (an expected close
    stored before is replaced); a deal closed already keeps its close."""
    created = "2026-10-01T00:00:00Z"
    post(web, services, "deals", {"deals": [
        {"external_id": "D1", "created_at": created},
        {"external_id": "D2", "created_at": created, "closed_at": "2026-12-15T00:00:00Z"},
        {"external_id": "D3", "created_at": created, "closed_at": "2026-11-02T00:00:00Z",
         "outcome": "won"}]})
    clock.advance(timedelta(hours=1))
    closing = {"deals": [{"external_id": "D1", "outcome": "won"},
                         {"external_id": "D2", "outcome": "lost"},
                         {"external_id": "D3", "outcome": "lost"},
                         {"external_id": "D4", "created_at": created, "outcome": "won"},
                         {"external_id": "D5", "created_at": "2026-11-24T16:00:00Z",
                          "outcome": "won"}]}
    answer = post(web, services, "deals", closing).get_json()
    assert answer == {"created": 1, "updated": 3, "unchanged": 0, "skipped": [], "rejected": [
        {"index": 4, "external_id": "D5", "errors": [
            "closed_at: needed when outcome is won and created_at (2026-11-24T16:00:00Z) is "
            "after now"]}]}
    won_at, start = clock.now(), datetime(2026, 10, 1, tzinfo=UTC)
    expected = {"D1": ("won", start, won_at), "D2": ("lost", start, won_at),
                "D3": ("lost", start, datetime(2026, 11, 2, tzinfo=UTC)),
                "D4": ("won", start, won_at)}
    assert deals_stored(services) == expected
    clock.advance(timedelta(hours=1))  # sent again: it closed then, not now
    closing["deals"].pop()
    assert post(web, services, "deals", closing).get_json()["unchanged"] == 4
    assert deals_stored(services) == expected


def test_bad_signature_or_old_request_changes_nothing(web, services):
    assert post(web, services, "leads", lead(1), secret="wrong").status_code == 401
    assert post(web, services, "leads", lead(1), age=timedelta(minutes=6)).status_code == 401
    missing = web.post("/webhooks/leads", data=b"{}", content_type="application/json")
    assert missing.status_code == 401
    assert count(services, Lead) == 0


def test_malformed_json_unknown_entity_and_oversized_batches(web, services):
    assert post(web, services, "leads", None, raw=b'{"external_id": ').status_code == 400
    assert post(web, services, "leads", None, raw=b"[1, 2]").status_code == 400
    resp = post(web, services, "widgets", {"x": 1})
    assert resp.status_code == 404 and "leads" in resp.get_json()["error"]
    too_many = post(web, services, "leads", {"leads": [lead(n) for n in range(MAX_BATCH + 1)]})
    assert too_many.status_code == 413
    assert count(services, Lead) == 0


def test_unknown_fields_are_named_once_a_record_not_once_each(web, services):
    junk = [{**lead(n), **{f"x{k}": 1 for k in range(100)}} for n in range(100)]
    resp = post(web, services, "leads", {"leads": junk})
    rejected = resp.get_json()["rejected"]
    assert resp.status_code == 200 and len(rejected) == 100 and count(services, Lead) == 0
    assert rejected[0]["errors"] == [
        "x0, x1, x2, x3, x4, x5, x6, x7, x8, x9 (and 90 more): 100 unknown fields; leads take "
        + ", ".join(FIELDS["leads"])]
    assert len(resp.get_data()) < 100_000  # one error a field made it 2.4 MB


def test_a_body_over_the_limit_is_refused_before_it_is_read(web, services):
    body = json.dumps({"leads": [lead(1)], "pad": "x" * MAX_BODY_BYTES}).encode()
    resp = post(web, services, "leads", None, raw=body)  # signed: it is the size that counts
    assert resp.status_code == 413 and "send smaller batches" in resp.get_json()["error"]
    assert count(services, Lead) == 0


def test_webhooks_are_off_without_a_secret(services, app):
    web = create_web_app(services, app).test_client()
    assert web.post("/webhooks/leads", data=b"{}").status_code == 503


def test_other_entities_land_too(web, services):
    resp = post(web, services, "spend", {"spend": [{"month": "2026-03", "team": "marketing",
                                                    "amount": 1200.5}]})
    assert resp.get_json()["created"] == 1
    resp = post(web, services, "deals", {"external_id": "D-1", "lead_external_id": "L-00001",
                                         "amount": "5000", "source": "marketing",
                                         "created_at": "2026-11-01T10:00:00-05:00",
                                         "outcome": "open"})
    assert resp.get_json()["created"] == 1


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)  # SQLite has one writer: batches never overlap there
@pytest.mark.parametrize("crm_owner", [None, "sam@example.com"], ids=["round-robin", "crm-owner"])
def test_batches_in_flight_together_route_and_burst_one_after_the_other(
        services, fake_slack, crm_owner):
    """The second of two batches arriving at once waits for the first's routing and cards:
    it neither fails on the round-robin state the first started, nor counts the channel's
    cards before the first's and starts a second burst."""
    services.config = dataclasses.replace(
        services.config, handoff=dataclasses.replace(services.config.handoff, burst_limit=2))

    def batch(numbers):
        return [lead(n, **({"owner_email": crm_owner} if crm_owner else {})) for n in numbers]
    first = stage(services, "leads", batch(range(5)), actor="crm")  # not committed yet
    second = threading.Thread(target=store, args=(services, "leads", batch(range(5, 10))),
                              kwargs={"actor": "crm"})
    second.start()
    until_waiting(services.engine, second)
    first.commit()
    second.join()
    assert count(services, Lead, Lead.status == "routed") == 10
    with services.sessions.begin() as s:
        assert sum(s.scalars(select(RoutingState.assigned))) == (0 if crm_owner else 10)
        assert s.scalar(select(func.count()).select_from(HandoffBurst)
                        .where(HandoffBurst.channel == "C0HANDOFF1")) == 1
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.channel == "C0HANDOFF1", OutboxMessage.ref.startswith("lead:"))) == 2


def token(services, external_id):
    """The token a lead's card buttons carry now: its id, status and owner."""
    from storage.models import Person

    with services.sessions.begin() as s:
        row = s.scalars(select(Lead).where(Lead.external_id == external_id)).one()
        owner = s.get(Person, row.owner_id).slack_id if row.owner_id else "-"
        return f"{row.id}|{row.status}|{owner}"


def answer_of(services, click, *args, **kwargs):
    """A click, in a transaction of its own, as its listener runs it: the clicker's answer."""
    from handlers.clicks import run_click

    return run_click(services, click, services.team_id, *args, **kwargs)


ONLY_POSTGRESQL = pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True)


@ONLY_POSTGRESQL  # SQLite has one writer: a batch and a click never overlap there
def test_a_click_while_a_crm_update_holds_its_lead_waits_and_is_told_it_lost(
        services, clock, monkeypatch):
    """A click made after a batch read its lead, before the batch wrote it, went through
    ("You rejected ..."), and the batch then wrote over it: a lead contacted with a
    rejection in its history. The batch holds the leads it read until it commits; the
    click, decided against the lead as the batch left it, changes nothing and says so."""
    from bot.handoff import clicks
    from bot.intake import ingest

    store(services, "leads", [lead(1, owner_email="sam@example.com")], actor="webhook")
    card = token(services, "L-00001")
    clock.advance(timedelta(minutes=10))
    answers, plan = [], ingest._plan
    clicking = threading.Thread(target=lambda: answers.append(answer_of(
        services, clicks.reject, card, "U0SALES01", reason="duplicate", note=None)))

    def click_between_read_and_write(*args):
        clicking.start()
        until_waiting(services.engine, clicking)
        return plan(*args)
    monkeypatch.setattr(ingest, "_plan", click_between_read_and_write)
    assert store(services, "leads", [lead(1, status="contacted")], actor="webhook").updated == 1
    clicking.join()
    assert answers == [
        "This card is out of date: *Person 1* (Acme) is touched. Nothing was changed."]
    now = held(services, "L-00001")
    assert (now.status, now.rejection_reason, now.sla_met) == ("contacted", None, True)
    assert [kind for kind, _, _ in history(services, "L-00001")] == [
        "created", "routed", "accepted", "contacted"]


@ONLY_POSTGRESQL
def test_a_crm_update_during_a_click_on_its_lead_builds_on_the_click(services, clock):
    """A batch that read a lead while a click on it was being stored moved it on from what
    it had read, and wrote over the click: accepted twice, once from "routed". The batch
    waits for the click and moves the lead on from where the click left it."""
    from bot.handoff import clicks

    store(services, "leads", [lead(1, owner_email="sam@example.com")], actor="webhook")
    clock.advance(timedelta(minutes=10))
    results = []
    with services.work() as work:  # the click's transaction, its move made
        clicks.accept(work, token(services, "L-00001"), "U0SALES01")
        crm = threading.Thread(target=lambda: results.append(store(
            services, "leads", [lead(1, status="contacted")], actor="webhook")))
        crm.start()
        until_waiting(services.engine, crm)
    crm.join()
    assert results[0].updated == 1
    assert [(e.kind, e.from_status, e.actor) for e in events(services, "L-00001")][-2:] == [
        ("accepted", "routed", "U0SALES01"), ("contacted", "accepted", "webhook")]


def events(services, external_id):
    with services.sessions.begin() as s:
        return list(s.scalars(select(LeadEvent).join(Lead, Lead.id == LeadEvent.lead_id)
                              .where(Lead.external_id == external_id).order_by(LeadEvent.id)))


# ------------------------------------------------------------------ hardening (issue 20)


def signed(services, body, ts=None):
    ts = ts if ts is not None else str(int(services.clock.now().timestamp()))
    return {"X-Alignbot-Timestamp": ts, "X-Alignbot-Signature": signature(SECRET, ts, body)}


@pytest.mark.parametrize("headers", [
    lambda s, body: signed(s, body, ts="9" * 309),  # signed, but no time a clock can hold
    lambda s, body: signed(s, body, ts="²"),  # a digit to str.isdigit, not to int()
    lambda s, body: signed(s, body, ts="٣"),  # an Arabic-Indic digit
    lambda s, body: signed(s, body, ts="-1"),
    lambda s, body: {**signed(s, body), "X-Alignbot-Signature": "v1=é" + "0" * 63},
    lambda s, body: {**signed(s, body), "X-Alignbot-Signature": "v1=" + "0" * 10_000},
    lambda s, body: {**signed(s, body), "X-Alignbot-Signature": "v1"},
    lambda s, body: {"X-Alignbot-Timestamp": "", "X-Alignbot-Signature": ""},
], ids=["309-digits", "superscript", "arabic-digit", "negative", "non-ascii-signature",
        "long-signature", "no-hex", "empty"])
def test_every_malformed_signature_header_is_a_401(web, services, headers):
    body = json.dumps(lead(1)).encode()
    resp = web.post("/webhooks/leads", data=body, content_type="application/json",
                    headers=headers(services, body))
    assert resp.status_code == 401 and resp.get_json()["error"]
    assert count(services, Lead) == 0


def test_json_nested_too_deeply_is_a_400_and_only_once_signed(web, services):
    body = b"[" * 100_000
    unsigned = web.post("/webhooks/leads", data=body, content_type="application/json")
    assert unsigned.status_code == 401  # authenticated before it is parsed
    resp = web.post("/webhooks/leads", data=body, content_type="application/json",
                    headers=signed(services, body))
    assert resp.status_code == 400 and "nested" in resp.get_json()["error"]


def test_a_value_nested_deep_inside_a_record_is_that_records_rejection(web, services):
    deep = "[" * 900 + "]" * 900
    bad = f'{{"external_id": "L-2", "source": {deep}, "score": {deep}}}'
    body = f'{{"leads": [{json.dumps(lead(1))}, {bad}]}}'.encode()
    resp = web.post("/webhooks/leads", data=body, content_type="application/json",
                    headers=signed(services, body))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["created"] == 1
    [rejected] = resp.get_json()["rejected"]
    assert rejected["index"] == 1 and len(rejected["errors"]) == 2
    assert all(len(e) < 200 for e in rejected["errors"])  # the value is shown shortened


BAD_VALUES = [  # (entity, the bad field, the record as JSON text)
    ("leads", "name", '{"external_id": "L-2", "source": "x", "name": "\\udfff"}'),  # lone surrogate
    ("leads", "name", '{"external_id": "L-2", "source": "x", "name": "Ann\\u0000Lee"}'),  # NUL
    ("leads", "score", '{"external_id": "L-2", "source": "x", "score": Infinity}'),
    ("leads", "score", '{"external_id": "L-2", "source": "x", "score": 1e400}'),
    ("leads", "created_at",
     '{"external_id": "L-2", "source": "x", "created_at": "0001-01-01T00:00:00+01:00"}'),
    ("leads", "mql_at", '{"external_id": "L-2", "source": "x", "mql_at": "9999-12-31T23:00:00-01:00"}'),
    ("leads", "created_at", '{"external_id": "L-2", "source": "x", "created_at": "9000-01-01T00:00:00Z"}'),
    ("leads", "mql_at", '{"external_id": "L-2", "source": "x", "mql_at": "2099-01-01T00:00:00Z"}'),
    ("leads", "mql_at", '{"external_id": "L-2", "source": "x", "mql_at": "1969-12-31T23:59:59Z"}'),
    ("leads", "external_id", '{"external_id": "L-\\udfff", "source": "x"}'),
    ("leads", "owner_email", '{"external_id": "L-2", "source": "x", "owner_email": "a\\u0000@b.example"}'),
    ("deals", "amount", '{"external_id": "D-2", "amount": "1e30"}'),
    ("deals", "amount", '{"external_id": "D-2", "amount": 1e12}'),  # more than the column holds
    ("deals", "amount", '{"external_id": "D-2", "amount": NaN}'),
    ("deals", "closed_at", '{"external_id": "D-2", "closed_at": "2099-01-01T00:00:00Z", "outcome": "won"}'),
    ("customers", "mrr",
     '{"external_id": "C-2", "started_at": "2026-01-01T00:00:00Z", "mrr": "-Infinity"}'),
    ("spend", "month", '{"month": "0000-01", "team": "sales", "amount": 1}'),
    ("spend", "month", '{"month": "2099-01", "team": "sales", "amount": 1}'),
    ("content", "title", '{"external_id": "K-2", "title": "\\ud800\\udfff\\ud800"}'),
    ("content_usage", "used_at", '{"content_external_id": "K-1", "user_email": "sam@example.com", '
                                 '"used_at": "0001-01-01T00:00:00+01:00"}'),
]


@pytest.mark.parametrize("entity,field,bad", BAD_VALUES, ids=[f"{e}-{i}" for i, (e, _, _) in
                                                             enumerate(BAD_VALUES)])
def test_one_bad_value_is_its_records_rejection_and_the_good_record_is_stored(
        web, services, entity, field, bad):
    """Values that passed the checks and failed in the database (or on the way to it) lost the
    whole batch with a 500; now each is its record's rejection, with the field it is in."""
    post(web, services, "content", {"external_id": "K-1"})
    good = {"leads": lead(1), "deals": {"external_id": "D-1", "amount": 10},
            "customers": {"external_id": "C-1", "started_at": "2026-01-01T00:00:00Z"},
            "spend": {"month": "2026-03", "team": "sales", "amount": 1},
            "content": {"external_id": "K-3"},
            "content_usage": {"content_external_id": "K-1", "user_email": "sam@example.com",
                              "used_at": "2026-11-01T00:00:00Z"}}[entity]
    body = f'{{"{entity}": [{json.dumps(good)}, {bad}]}}'.encode()
    resp = web.post(f"/webhooks/{entity}", data=body, content_type="application/json",
                    headers=signed(services, body))
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    assert answer["created"] == 1
    [rejected] = answer["rejected"]
    assert rejected["index"] == 1 and any(e.startswith(f"{field}: ") for e in rejected["errors"]), \
        rejected


def test_implausible_times_say_the_window(web, services):
    resp = post(web, services, "leads", lead(1, created_at="9000-01-01T00:00:00Z",
                                              mql_at="1900-01-01T00:00:00Z"))
    [rejected] = resp.get_json()["rejected"]
    assert any(e.startswith("created_at:") and "day" in e for e in rejected["errors"])
    assert any(e.startswith("mql_at:") and "1970" in e for e in rejected["errors"])


def test_a_record_the_database_refuses_is_rejected_alone(web, services, monkeypatch):
    """A value the checks miss and the database refuses costs its record only: the batch is
    stored again without it."""
    from bot.intake import records

    monkeypatch.setitem(records.FIELDS["leads"], "company", lambda v: v)  # a check with a gap
    records_ = [lead(n) for n in range(5)]
    records_[3] = lead(3, company="\udfff")  # no database takes a lone surrogate
    resp = post(web, services, "leads", {"leads": records_})
    assert resp.status_code == 200
    answer = resp.get_json()
    assert answer["created"] == 4
    [rejected] = answer["rejected"]
    assert rejected["index"] == 3 and rejected["external_id"] == "L-00003"
    assert "database" in rejected["errors"][0]
    with services.sessions.begin() as s:
        assert sorted(s.scalars(select(Lead.external_id))) == [
            "L-00000", "L-00001", "L-00002", "L-00004"]
        assert set(s.scalars(select(Lead.status))) == {"routed"}


def test_a_replayed_request_is_refused_and_rolls_nothing_back(web, services, clock):
    first = json.dumps(lead(1, name="First")).encode()
    first_headers = signed(services, first)
    assert web.post("/webhooks/leads", data=first, headers=first_headers,
                    content_type="application/json").status_code == 200
    clock.advance(timedelta(seconds=30))
    assert post(web, services, "leads", lead(1, name="Second")).get_json()["updated"] == 1
    clock.advance(timedelta(seconds=30))
    replay = web.post("/webhooks/leads", data=first, headers=first_headers,
                      content_type="application/json")
    assert replay.status_code == 409 and "already" in replay.get_json()["error"]
    with services.sessions.begin() as s:
        assert s.scalars(select(Lead.name)).one() == "Second"


def test_signatures_are_remembered_only_as_long_as_a_request_is_fresh(web, services, clock):
    from storage.models import WebhookRequest

    post(web, services, "leads", lead(1))
    clock.advance(timedelta(minutes=11))
    post(web, services, "leads", lead(2))
    assert count(services, WebhookRequest) == 1  # the first was forgotten


def test_a_request_that_fails_can_be_sent_again(web, services, monkeypatch):
    """Its signature is not kept: the sender's retry is not a replay."""
    from bot.intake import batches

    body = json.dumps(lead(1)).encode()
    headers = signed(services, body)
    monkeypatch.setattr(batches, "stage", lambda *a, **k: 1 / 0)  # a bug, say
    failed = web.post("/webhooks/leads", data=body, headers=headers,
                      content_type="application/json")
    assert failed.status_code == 500 and "retry" in failed.get_json()["error"]
    monkeypatch.undo()
    assert web.post("/webhooks/leads", data=body, headers=headers,
                    content_type="application/json").status_code == 200


@pytest.mark.parametrize("entity,record,newer,older", [
    ("leads", lead(1), {"name": "Newer"}, {"name": "Older"}),
    ("deals", {"external_id": "D-1", "amount": 10}, {"amount": 30}, {"amount": 20}),
    ("customers", {"external_id": "C-1", "started_at": "2026-01-01T00:00:00Z"},
     {"mrr": 30}, {"mrr": 20}),
    ("content", {"external_id": "K-1"}, {"title": "Newer"}, {"title": "Older"}),
])
def test_an_older_update_never_overwrites_a_newer_one(web, services, entity, record, newer, older):
    from storage.models import ContentItem, Customer, Deal

    model = {"leads": Lead, "deals": Deal, "customers": Customer, "content": ContentItem}[entity]
    field, = newer
    assert post(web, services, entity, {**record, **newer,
                                        "updated_at": "2026-11-24T10:00:00Z"}).status_code == 200
    resp = post(web, services, entity, {**record, **older, "updated_at": "2026-11-24T09:00:00Z"})
    answer = resp.get_json()
    assert resp.status_code == 200 and (answer["updated"], answer["unchanged"]) == (0, 1)
    [skipped] = answer["skipped"]
    assert skipped["index"] == 0 and "older" in skipped["reason"]
    with services.sessions.begin() as s:
        assert str(getattr(s.scalars(select(model)).one(), field)) in ("Newer", "30", "30.00")
    # a record without updated_at, or a newer one, still applies
    again = post(web, services, entity, {**record, **older, "updated_at": "2026-11-24T11:00:00Z"})
    assert again.get_json()["updated"] == 1


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)  # SQLite has one writer: deliveries never overlap there
@pytest.mark.parametrize("first", ["older", "newer"])
def test_of_two_deliveries_of_a_deal_at_once_the_newer_stays(services, first):
    """Both arrive before either commits: the second waits for the first's read of the deal
    to commit, then compares with what it stored."""
    from storage.models import Deal

    base = {"external_id": "D-1", "amount": 10, "updated_at": "2026-11-24T08:00:00Z"}
    store(services, "deals", [base], actor="webhook")
    sent = {"older": {**base, "amount": 20, "updated_at": "2026-11-24T09:00:00Z"},
            "newer": {**base, "amount": 30, "updated_at": "2026-11-24T10:00:00Z"}}
    answers = {}

    def deliver(which):
        answers[which] = store(services, "deals", [sent[which]], actor="webhook").as_dict()
    staged = stage(services, "deals", [sent[first]], actor="webhook")  # read, not committed
    second = threading.Thread(target=deliver, args=({"older": "newer", "newer": "older"}[first],))
    second.start()
    until_waiting(services.engine, second)
    answers[first] = staged.commit().as_dict()
    second.join()
    assert answers["newer"]["updated"] == 1
    assert len(answers["older"]["skipped"]) == (first == "newer")  # applied, when it came first
    with services.sessions() as s:
        deal = s.scalars(select(Deal)).one()
        assert (str(deal.amount), deal.source_updated_at.isoformat()) == (
            "30.00", "2026-11-24T10:00:00+00:00")


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)  # SQLite has one writer: deliveries never overlap there
@pytest.mark.parametrize("entity,first,second", [
    ("deals", {"external_id": "D-1", "amount": 10}, {"external_id": "D-1", "amount": 20}),
    ("customers", {"external_id": "C-1", "started_at": "2026-01-01T00:00:00Z"},
     {"external_id": "C-1", "started_at": "2026-01-01T00:00:00Z", "mrr": 20})])
def test_a_new_record_sent_twice_at_once_is_created_then_updated_not_refused(
        services, entity, first, second):
    """Both read the key as new; the second's INSERT waits for the first's, then meets the
    unique key: it was rejected ("the database refused it") and its values lost. Read
    again, it is an update of the row the first stored."""
    from storage.models import Customer, Deal

    staged = stage(services, entity, [first], actor="webhook")  # read: no such row
    staged.session.flush()  # its INSERT made, not committed
    answers = {}
    other = threading.Thread(target=lambda: answers.update(
        store(services, entity, [second], actor="webhook").as_dict()))
    other.start()
    until_waiting(services.engine, other)
    assert staged.commit().created == 1
    other.join()
    assert answers == {"created": 0, "updated": 1, "unchanged": 0, "rejected": [], "skipped": []}
    model = {"deals": Deal, "customers": Customer}[entity]
    field = "amount" if entity == "deals" else "mrr"
    with services.sessions() as s:
        assert str(getattr(s.scalars(select(model)).one(), field)) == "20.00"


def test_a_down_database_is_one_log_line_and_a_503_to_retry(web, services, tmp_path, caplog):
    from storage.db import make_engine, make_sessionmaker

    services.sessions = make_sessionmaker(make_engine(f"sqlite:///{tmp_path}"))  # a directory
    resp = post(web, services, "leads", lead(1))
    assert resp.status_code == 503 and "retry" in resp.get_json()["error"]
    assert resp.headers.get("Retry-After")
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]
    assert len(errors) == 1 and errors[0].exc_info is None and "\n" not in errors[0].getMessage()


def test_a_signature_used_on_one_path_is_refused_on_every_other(web, services):
    """The signed text does not name the path (the spec's v1 contract), so a captured request
    for /webhooks/leads would verify on /webhooks/deals: once used, its signature is a replay
    on any path (README, "Security notes": the risk left is a request never delivered)."""
    body = json.dumps({"external_id": "X-1", "source": "marketing"}).encode()
    headers = signed(services, body)
    assert web.post("/webhooks/leads", data=body, headers=headers,
                    content_type="application/json").status_code == 200
    for entity in ("deals", "customers", "content"):
        again = web.post(f"/webhooks/{entity}", data=body, headers=headers,
                         content_type="application/json")
        assert again.status_code == 409, (entity, again.get_json())


def test_a_lead_recycled_unanswered_is_a_breach_only_if_it_was_already_due(web, services, clock):
    """Marketing takes a lead back (the CRM recycles it) with no response from sales: it
    counted as a breach once its due time passed, though it had left before. Recycled
    before its due time it is left out of SLA compliance; after, it is a breach."""
    from bot.metrics.registry import compute

    sam = {"owner_email": "sam@example.com"}
    start = clock.now()
    post(web, services, "leads", {"leads": [lead(n, **sam) for n in (1, 2, 3)]})
    clock.advance(timedelta(minutes=10))
    post(web, services, "leads", {"leads": [lead(1, status="recycled", **sam),
                                            lead(3, status="contacted", **sam)]})
    clock.advance(timedelta(days=2))
    post(web, services, "leads", lead(2, status="recycled", **sam))
    early, late = held(services, "L-00001"), held(services, "L-00002")
    assert (early.status, early.sla_met, early.sla_due_at) == ("recycled", None, None)
    assert (late.status, late.sla_met) == ("recycled", False)
    with services.sessions.begin() as s:
        value, _ = compute(s, services.team_id, "sla_compliance", start, clock.now(), None)
    assert value == pytest.approx(1 / 2)  # lead 3 met, lead 2 missed; lead 1 left out


def test_a_queued_lead_the_crm_recycles_was_never_handed_off(web, services, fake_slack, clock):
    """Marketing takes back a lead still waiting in the queue: it was made routed (to its
    CRM owner, at its MQL time) on its way to recycled, so one that had waited past the
    due time counted as a breach against someone who never got it. It goes to recycled
    straight from the queue, as the lifecycle allows: no owner, no handoff, no SLA."""
    from bot.metrics.registry import compute
    from bot.platform.scheduler import run_job

    with services.sessions.begin() as s:  # Sam is deactivated: his lead waits
        s.execute(update(Person).where(Person.slack_id == "U0SALES01").values(deactivated=True))
    start = clock.now()
    post(web, services, "leads", lead(1, owner_email="sam@example.com"))
    clock.advance(timedelta(days=2))
    sent = post(web, services, "leads", lead(1, status="recycled"))
    assert sent.get_json()["updated"] == 1
    now = held(services, "L-00001")
    assert (now.status, now.owner, now.routed_at, now.sla_due_at, now.sla_met, now.pending) == (
        "recycled", None, None, None, None, [])
    assert history(services, "L-00001")[-1] == ("recycled", "new", "recycled")
    with services.sessions.begin() as s:
        assert compute(s, services.team_id, "sla_compliance", start, clock.now(), None)[0] is None
    services.sender.flush()
    before = len(fake_slack.calls)
    clock.advance(timedelta(hours=1))
    run_job(services, "sla.sweep")
    services.sender.flush()
    assert not [c for c in fake_slack.calls[before:] if "L-00001" in json.dumps(c)]
