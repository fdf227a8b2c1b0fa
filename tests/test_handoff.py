"""The handoff card through real app.dispatch(): route, post, accept / reject / reassign / touch."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import AfterAck, create_app
from bot.blocks import handoff as cards
from bot.handoff import lifecycle
from bot.handoff.new_leads import hand_off
from bot.intake.batches import store
from bot.sla import policies as sla
from storage.models import Lead, LeadEvent, Nudge, Person
from tests.slack import TEAM, all_text, click, reply, slash, submit
from tests.slack_contract import check_message


def new_lead(services, external_id="L-1", score=60, **fields) -> int:
    with services.work() as w:
        s, now = w.session, w.now
        lead = Lead(team_id=TEAM, external_id=external_id, source=fields.pop("source", "webinar"),
                    name=fields.pop("name", "Ann Lee"), company=fields.pop("company", "Acme"),
                    title="VP Sales", score=score, why=fields.pop("why", "Asked for pricing"),
                    crm_url="https://crm.example.com/L-1",
                    status="new", created_at=now, mql_at=now, updated_at=now, **fields)
        s.add(lead)
        s.flush()
        lifecycle.record(s, lead, "created", actor="webhook", at=now)
        hand_off(w, lead)
        lead_id = lead.id
    services.sender.flush()
    return lead_id


def lead(services, lead_id) -> Lead:
    with services.sessions.begin() as s:
        return s.get(Lead, lead_id)


def card(fake, where="C0HANDOFF1"):
    return fake.in_channel(where)[-1]


def ephemerals(fake, user):
    return [m.text for m in fake.messages if m.ephemeral_to == user]


def test_new_lead_posts_a_card_in_the_channel_and_the_owners_dm(services, fake_slack):
    new_lead(services)
    channel, dm = card(fake_slack), card(fake_slack, "U0SALES01")
    shown = all_text({"text": channel.text, "blocks": channel.blocks})
    for expected in ("Ann Lee", "VP Sales", "Acme", "60", "webinar", "Asked for pricing",
                     "<@U0SALES01>", "standard: due <!date^"):
        assert expected in shown
    assert channel.action_ids() == [cards.OPEN_CRM, cards.ACCEPT, cards.REJECT, cards.REASSIGN,
                                    cards.FIRST_TOUCH]
    assert dm.blocks == channel.blocks
    row = lead(services, 1)
    assert row.status == "routed" and row.sla_policy == "standard"
    # routed Tuesday 09:00 New York with 4 business hours → due 13:00 the same day
    assert row.sla_due_at == services.clock.now() + timedelta(hours=4)


# Japanese, at the longest a CRM may send: JSON writes each character as 6 (\uXXXX)
LONG_WHY = ("価格について問い合わせ、導入時期は来期。" * 200)[:4000]
LONG_NAME, LONG_COMPANY = ("山田 太郎" * 40)[:200], ("株式会社サンプル商事" * 20)[:200]


def test_a_long_non_latin_why_is_clipped_so_the_card_reaches_the_rep(services, fake_slack):
    new_lead(services, why=LONG_WHY, name=LONG_NAME, company=LONG_COMPANY)  # Slack's limits checked
    posted = card(fake_slack)
    why = posted.blocks[1]["text"]["text"]
    assert why.startswith(f"*Why it qualified:* {LONG_WHY[:500]}") and why.endswith("…")
    assert posted.action_ids() == [cards.OPEN_CRM, cards.ACCEPT, cards.REJECT, cards.REASSIGN,
                                   cards.FIRST_TOUCH]


@pytest.mark.parametrize("status", ["new", "routed", "accepted", "rejected"])
def test_a_card_of_the_longest_non_latin_fields_fits_and_starts_its_why(status):
    cjk = "李"  # every free-text field at its stored maximum
    view = cards.CardView(
        lead_id=1, external_id=cjk * 128, name=cjk * 200, company=cjk * 200, title=cjk * 200,
        score=95, hot=True, source=cjk * 64, segment=cjk * 64, region=cjk * 64, why=LONG_WHY,
        crm_url="https://crm.example.com/L-1", owner=None if status == "new" else "U0SALES01",
        status=status, sla_policy=cjk * 64, sla_due_at=None, sla_state=None,
        rejection_reason="other", rejection_note=cjk * 1000, unassigned_reason=cjk * 200)
    shown = cards.handoff_card(view)
    check_message(shown)
    assert f"*Why it qualified:* {LONG_WHY[:300]}" in all_text(shown)
    answered = cards.answered_card(view, f"You accepted *{cjk * 200}* ({cjk * 200}).")
    check_message(answered)  # the card replacing one only the clicker saw, the answer on top
    assert f"*Why it qualified:* {LONG_WHY[:300]}" in all_text(answered)


def test_accept_updates_both_cards_in_place(app, services, fake_slack, clock):
    new_lead(services)
    click(app, fake_slack, card(fake_slack), cards.ACCEPT, "U0SALES01", clock.now())
    services.sender.flush()
    updates = fake_slack.calls_of("chat.update")
    assert {u["channel"] for u in updates} == {"C0HANDOFF1", "D0SALES01"}
    assert "Accepted by <@U0SALES01>" in all_text({"blocks": card(fake_slack).blocks})
    assert card(fake_slack).action_ids() == [cards.OPEN_CRM, cards.FIRST_TOUCH, cards.REASSIGN]
    assert any("You accepted" in t for t in ephemerals(fake_slack, "U0SALES01"))
    assert fake_slack.calls_of("response_url") == []  # a card everyone sees is left to the outbox
    assert lead(services, 1).status == "accepted"


def test_a_second_click_changes_nothing_and_says_who_was_first(app, services, fake_slack, clock):
    new_lead(services)
    stale = dataclasses.replace(card(fake_slack))  # the card as the second clicker still sees it
    click(app, fake_slack, stale, cards.ACCEPT, "U0SALES01", clock.now())
    services.sender.flush()
    updates_before = len(fake_slack.calls_of("chat.update"))
    click(app, fake_slack, stale, cards.ACCEPT, "U0SALES01", clock.now())  # the double click
    services.sender.flush()
    assert len(fake_slack.calls_of("chat.update")) == updates_before
    assert "You already accepted this lead" in ephemerals(fake_slack, "U0SALES01")[-1]
    click(app, fake_slack, stale, cards.ACCEPT, "U0SALESMG1", clock.now())  # someone else
    assert "Already accepted by <@U0SALES01>" in ephemerals(fake_slack, "U0SALESMG1")[-1]
    with services.sessions.begin() as s:
        kinds = [e.kind for e in s.scalars(select(LeadEvent).order_by(LeadEvent.id))]
    assert kinds.count("accepted") == 1


def lead_card_for(app, fake_slack, clock, user, external_id="L-1"):
    """`/align lead` as `user`: the card Slack shows them alone, in the handoff channel."""
    answer = reply(slash(app, f"lead {external_id}", clock.now(), user=user))
    return fake_slack.answer("C0HANDOFF1", user, answer)


def shown(msg) -> str:
    return all_text({"text": msg.text, "blocks": msg.blocks})


@pytest.mark.parametrize(("action_id", "picked", "says", "then"), [
    (cards.ACCEPT, None, "You accepted *Ann Lee* (Acme)", "Accepted by <@U0SALES01>"),
    (cards.FIRST_TOUCH, None, "First touch on *Ann Lee* (Acme) logged", "First touch logged"),
    (cards.REASSIGN, "U0SALES02", "*Ann Lee* (Acme) is now with <@U0SALES02>", "*Owner*\n<@U0SALES02>"),
])
def test_a_click_on_a_card_only_you_see_turns_that_card(
        services, fake_slack, clock, action_id, picked, says, then):
    """`/align lead` shows the card to the asker alone, which chat.update cannot edit: the
    click's answer replaces it, the card as it now is with the answer on top, after the ack."""
    later = AfterAck()
    app = create_app(services, after_ack=later)
    new_lead(services)
    mine = lead_card_for(app, fake_slack, clock, "U0SALES01")
    click(app, fake_slack, mine, action_id, "U0SALES01", clock.now(), selected_user=picked)
    assert mine.updates == 0  # the change is stored; Slack hears of it after the ack
    later.run()
    services.sender.flush()
    assert ephemerals(fake_slack, "U0SALES01") == [mine.text]  # that card, no other message
    assert mine.updates == 1 and fake_slack.calls_of("response_url")[-1]["replace_original"]
    assert mine.text.startswith(says) and mine.blocks[0] == {"type": "context", "elements": [
        {"type": "mrkdwn", "text": mine.text}]}
    assert then in shown(mine)
    assert mine.blocks[1:] == card(fake_slack).blocks  # as the channel's card, updated as ever


@pytest.mark.parametrize("action_id", [cards.ACCEPT, cards.REJECT])  # reject: before its modal
def test_a_stale_click_on_a_card_only_you_see_shows_it_as_it_now_is(
        app, services, fake_slack, clock, action_id):
    new_lead(services)
    mine = lead_card_for(app, fake_slack, clock, "U0SALESMG1")
    click(app, fake_slack, card(fake_slack), cards.ACCEPT, "U0SALES01", clock.now())
    click(app, fake_slack, mine, action_id, "U0SALESMG1", clock.now())  # the card is stale
    assert fake_slack.views == []
    assert mine.text.startswith("Already accepted by <@U0SALES01>")
    assert "Accepted by <@U0SALES01>" in shown(mine) and cards.ACCEPT not in mine.action_ids()
    assert ephemerals(fake_slack, "U0SALESMG1") == [mine.text]  # that card, no other message
    assert lead(services, 1).status == "accepted"


def test_an_unassigned_lead_taken_from_a_card_only_you_see(app, services, fake_slack, clock):
    with services.sessions.begin() as s:
        for p in s.scalars(select(Person).where(Person.role == "sales")):
            p.away_until = clock.now() + timedelta(days=3)
    new_lead(services)
    mine = lead_card_for(app, fake_slack, clock, "U0SALES02")
    click(app, fake_slack, mine, cards.TAKE, "U0SALES02", clock.now())
    assert mine.text == "*Ann Lee* (Acme) is now yours."
    assert "*Owner*\n<@U0SALES02>" in shown(mine) and cards.ACCEPT in mine.action_ids()


def test_a_rejection_from_a_card_only_you_see_turns_that_card(app, services, fake_slack, clock):
    """A modal's submission brings no response_url: the modal carries the click's."""
    new_lead(services)
    mine = lead_card_for(app, fake_slack, clock, "U0SALES01")
    click(app, fake_slack, mine, cards.REJECT, "U0SALES01", clock.now())
    modal = fake_slack.views[-1]
    assert cards.modal_target(modal["private_metadata"])[2].startswith(f"https://{fake_slack.host}/")
    submit(app, fake_slack, modal, "U0SALES01", {cards.REASON_BLOCK: "not_icp"}, clock.now())
    assert mine.text == "You rejected *Ann Lee* (Acme); marketing sees your reason."
    assert "Rejected by <@U0SALES01>" in shown(mine) and mine.action_ids() == [cards.OPEN_CRM]
    assert ephemerals(fake_slack, "U0SALES01") == [mine.text]
    assert lead(services, 1).status == "rejected"


def test_a_card_only_you_see_gone_before_the_answer_gets_it_apart(
        app, services, fake_slack, clock):
    """Its reader reloaded, or a modal stayed open past the response_url's 30 minutes: the
    answer, on the card as it now is, comes as a message of its own."""
    new_lead(services)
    mine = lead_card_for(app, fake_slack, clock, "U0SALES01")
    click(app, fake_slack, mine, cards.REJECT, "U0SALES01", clock.now())
    fake_slack.messages.remove(mine)
    submit(app, fake_slack, fake_slack.views[-1], "U0SALES01", {cards.REASON_BLOCK: "not_icp"},
           clock.now())
    apart = fake_slack.messages[-1]
    assert apart.ephemeral_to == "U0SALES01" and apart.text.startswith("You rejected")
    assert "Rejected by <@U0SALES01>" in shown(apart)
    assert len(fake_slack.calls_of("response_url")) == 1  # tried first


def test_a_modal_opened_before_its_card_could_be_replaced_still_answers(app, services, fake_slack,
                                                                       clock):
    """Its private_metadata is `token#channel`, as every modal's was: answered apart."""
    new_lead(services)
    click(app, fake_slack, card(fake_slack), cards.REJECT, "U0SALES01", clock.now())
    modal = fake_slack.views[-1]
    assert modal["private_metadata"].count("#") == 1
    submit(app, fake_slack, modal, "U0SALES01", {cards.REASON_BLOCK: "not_icp"}, clock.now())
    assert "You rejected" in ephemerals(fake_slack, "U0SALES01")[-1]
    assert fake_slack.calls_of("response_url") == []


def test_someone_else_is_refused_but_a_manager_may_act(app, services, fake_slack, clock):
    new_lead(services)
    click(app, fake_slack, card(fake_slack), cards.ACCEPT, "U0SALES02", clock.now())
    assert "Only <@U0SALES01> or a sales manager" in ephemerals(fake_slack, "U0SALES02")[-1]
    assert lead(services, 1).status == "routed"
    click(app, fake_slack, card(fake_slack), cards.ACCEPT, "U0SALESMG1", clock.now())
    assert lead(services, 1).status == "accepted"


def test_anyone_may_act_when_the_config_says_so(app, services, fake_slack, clock):
    services.config = dataclasses.replace(
        services.config, handoff=dataclasses.replace(services.config.handoff, who_can_act="anyone"))
    new_lead(services)
    click(app, fake_slack, card(fake_slack), cards.ACCEPT, "U0SALES02", clock.now())
    assert lead(services, 1).status == "accepted"


def test_reject_opens_a_modal_and_marketing_sees_the_reason_in_a_source_thread(
        app, services, fake_slack, clock):
    new_lead(services)
    new_lead(services, external_id="L-2", name="Bo Park")
    for n, who, owner in ((1, "Ann Lee", "U0SALES01"), (2, "Bo Park", "U0SALES02")):
        target = next(m for m in fake_slack.in_channel("C0HANDOFF1") if who in m.text)
        click(app, fake_slack, target, cards.REJECT, owner, clock.now())
        modal = fake_slack.views[-1]
        assert modal["callback_id"] == cards.REJECT_MODAL
        resp = submit(app, fake_slack, modal, owner, {cards.NOTE_BLOCK: "no budget"}, clock.now())
        assert resp.status == 200 and "Pick a reason" in resp.body  # reason is required
        submit(app, fake_slack, modal, owner,
               {cards.REASON_BLOCK: "not_icp", cards.NOTE_BLOCK: "no budget"}, clock.now())
        services.sender.flush()
        assert lead(services, n).status == "rejected"
    parent, *replies = fake_slack.in_channel("C0MARKET01")
    assert "source *webinar*" in parent.blocks[0]["text"]["text"]
    assert len(replies) == 2 and all(r.thread_ts == parent.ts for r in replies)
    assert "Not our ideal customer" in replies[0].blocks[0]["text"]["text"]
    assert "no budget" in replies[0].blocks[0]["text"]["text"]
    assert "Rejected by <@U0SALES02>" in all_text({"blocks": card(fake_slack).blocks})
    assert lead(services, 1).sla_met is True  # a decision is a response


def test_a_click_is_stored_and_acked_before_its_answer_goes_to_slack(
        services, fake_slack, clock):
    """Slack gives a click three seconds: the change is made before the 200, the clicker's
    private answer and the reason modal (Slack calls) only after it."""
    later = AfterAck()
    app = create_app(services, after_ack=later)
    new_lead(services)
    new_lead(services, external_id="L-2", name="Bo Park")
    accepted = click(app, fake_slack, card(fake_slack, "U0SALES01"), cards.ACCEPT, "U0SALES01",
                     clock.now())
    click(app, fake_slack, card(fake_slack, "U0SALES02"), cards.REJECT, "U0SALES02", clock.now())
    assert lead(services, 1).status == "accepted"
    assert ephemerals(fake_slack, "U0SALES01") == [] and fake_slack.views == []
    later.run()
    assert "accepted" in ephemerals(fake_slack, "U0SALES01")[-1]
    rejected = submit(app, fake_slack, fake_slack.views[-1], "U0SALES02",
                      {cards.REASON_BLOCK: "not_icp"}, clock.now())
    assert accepted.status == rejected.status == 200
    assert lead(services, 2).status == "rejected" and ephemerals(fake_slack, "U0SALES02") == []
    later.run()
    assert "rejected" in ephemerals(fake_slack, "U0SALES02")[-1]


def test_reject_is_refused_before_the_modal_for_someone_who_cannot_act(
        app, services, fake_slack, clock):
    new_lead(services)
    click(app, fake_slack, card(fake_slack), cards.REJECT, "U0SALES02", clock.now())
    assert fake_slack.views == []
    assert "Only <@U0SALES01>" in ephemerals(fake_slack, "U0SALES02")[-1]


def test_other_needs_a_note(app, services, fake_slack, clock):
    new_lead(services)
    click(app, fake_slack, card(fake_slack), cards.REJECT, "U0SALES01", clock.now())
    resp = submit(app, fake_slack, fake_slack.views[-1], "U0SALES01",
                  {cards.REASON_BLOCK: "other"}, clock.now())
    assert "“other”" in json.loads(resp.body)["errors"][cards.NOTE_BLOCK]
    assert lead(services, 1).status == "routed"


def test_reassign_moves_the_lead_and_old_cards_go_stale(app, services, fake_slack, clock):
    new_lead(services)
    old_dm = card(fake_slack, "U0SALES01")
    click(app, fake_slack, card(fake_slack), cards.REASSIGN, "U0SALES01", clock.now(),
          selected_user="U0SALES02")
    services.sender.flush()
    assert "<@U0SALES02>" in all_text({"blocks": card(fake_slack).blocks})
    assert "<@U0SALES02>" in all_text({"blocks": card(fake_slack, "U0SALES02").blocks})
    click(app, fake_slack, old_dm.__class__(**{**old_dm.__dict__, "blocks": old_dm.history[0]["blocks"]}),
          cards.ACCEPT, "U0SALES01", clock.now())
    assert "out of date" in ephemerals(fake_slack, "U0SALES01")[-1]
    assert lead(services, 1).status == "routed"


def test_first_touch_records_the_response_time(app, services, fake_slack, clock):
    new_lead(services)
    clock.advance(timedelta(minutes=42))
    click(app, fake_slack, card(fake_slack), cards.FIRST_TOUCH, "U0SALES01", clock.now())
    row = lead(services, 1)
    assert row.status == "contacted" and row.accepted_at == row.first_touch_at
    assert row.response_minutes == 42 and row.business_minutes == 42 and row.sla_met is True
    assert "within the SLA" in ephemerals(fake_slack, "U0SALES01")[-1]


def test_nobody_eligible_gives_an_unassigned_card_anyone_in_sales_can_take(
        app, services, fake_slack, clock):
    with services.sessions.begin() as s:
        for p in s.scalars(select(Person).where(Person.role == "sales")):
            p.away_until = clock.now() + timedelta(days=3)
    new_lead(services)
    unassigned = card(fake_slack)
    assert "Unassigned" in all_text({"blocks": unassigned.blocks})
    assert "everyone in pool default is away" in all_text({"blocks": unassigned.blocks})
    assert fake_slack.in_channel("U0SALES01") == []  # no DM to anyone
    click(app, fake_slack, unassigned, cards.TAKE, "U0SALES02", clock.now())
    services.sender.flush()
    assert lead(services, 1).status == "routed"
    assert "<@U0SALES02>" in all_text({"blocks": card(fake_slack).blocks})


def test_a_hot_lead_outside_everyones_working_hours_says_so_on_its_card(
        services, fake_slack, clock):
    clock.advance(timedelta(hours=12))  # 02:00 in New York: nobody is working
    new_lead(services, score=95)
    text = all_text({"blocks": card(fake_slack).blocks})
    assert "Unassigned" in text
    assert "it is hot (score 80 or more), which goes only to someone in their working hours, " \
           "and nobody in pool default is now" in text
    new_lead(services, external_id="L-2", score=40)  # not hot: routed all the same
    assert "Unassigned" not in all_text({"blocks": card(fake_slack).blocks})


def test_round_robin_alternates_between_reps(services):
    owners = []
    for i in range(4):
        lead_id = new_lead(services, external_id=f"L-{i}")
        with services.sessions.begin() as s:
            owners.append(s.get(Person, s.get(Lead, lead_id).owner_id).slack_id)
    assert owners == ["U0SALES01", "U0SALES02", "U0SALES01", "U0SALES02"]


def with_burst_limit(services, n):
    services.config = dataclasses.replace(
        services.config, handoff=dataclasses.replace(services.config.handoff, burst_limit=n))


def test_a_burst_becomes_one_summary_each_lead_one_click_from_its_card(
        app, services, fake_slack, clock):
    with_burst_limit(services, 3)
    for i in range(8):
        new_lead(services, external_id=f"L-{i}", name=f"Person {i}")
    assert len(fake_slack.in_channel("C0HANDOFF1")) == 3  # the summary gathers lines first
    clock.advance(timedelta(seconds=10))
    services.sender.flush()
    channel = fake_slack.in_channel("C0HANDOFF1")
    assert len(channel) == 4  # three cards, then one summary of the other five
    summary = channel[-1]
    assert "5 new leads" in summary.text
    assert summary.action_ids() == [f"{cards.OPEN_CARD}.{n}" for n in range(4, 9)]
    assert len(fake_slack.in_channel("U0SALES01")) == 4  # 4 leads each: 3 cards and a summary
    click(app, fake_slack, summary, f"{cards.OPEN_CARD}.4", "U0SALES02", clock.now())
    shown = fake_slack.messages[-1]
    assert shown.ephemeral_to == "U0SALES02" and "Person 3" in shown.text
    assert cards.ACCEPT in shown.action_ids()
    click(app, fake_slack, shown, cards.ACCEPT, "U0SALES02", clock.now())
    assert lead(services, 4).status == "accepted"


def many_leads(services, prefix, n):
    """`n` new leads handed off in one transaction, as an import batch does."""
    with services.work() as w:
        s, now = w.session, w.now
        for i in range(n):
            row = Lead(team_id=TEAM, external_id=f"{prefix}-{i}", name=f"{prefix} {i}",
                       source="import", status="new", created_at=now, mql_at=now, updated_at=now)
            s.add(row)
            s.flush()
            hand_off(w, row)


def listed_ids(msg) -> list[int]:
    return [int(a.rsplit(".", 1)[1]) for a in msg.action_ids() if a.startswith(cards.OPEN_CARD)]


def test_an_import_sized_burst_is_one_message_per_channel_edited_as_it_grows(
        services, fake_slack, clock):
    with_burst_limit(services, 2)
    many_leads(services, "A", 98)
    services.sender.flush()
    clock.advance(timedelta(seconds=10))  # the summary gathers lines first
    services.sender.flush()
    cards_, summary = fake_slack.in_channel("C0HANDOFF1")[:2], fake_slack.in_channel("C0HANDOFF1")[2]
    assert len(fake_slack.in_channel("C0HANDOFF1")) == 3 and all("A " in c.text for c in cards_)
    assert summary.text == "96 new leads arrived at once"
    assert listed_ids(summary) == list(range(3, 28))  # the first page: 25 lines
    assert "page 1 of 4" in all_text({"blocks": summary.blocks})
    for prefix in ("B", "C"):  # more batches within the minute: the same burst
        clock.advance(timedelta(seconds=20))
        many_leads(services, prefix, 50)
    services.sender.flush()
    assert len(fake_slack.in_channel("C0HANDOFF1")) == 3  # no new message...
    assert summary.updates == 1 and summary.text == "196 new leads arrived at once"  # one edit
    assert listed_ids(summary) == list(range(3, 28))  # still the burst's first 25
    dms = {m.channel for m in fake_slack.messages} - {"C0HANDOFF1"}
    with services.sessions.begin() as s:
        owners = {lead.id: s.get(Person, lead.owner_id).slack_id for lead in s.scalars(select(Lead))}
    for dm in dms:  # each DM: two cards and one summary "for you", edited in place
        posted = fake_slack.in_channel(dm)
        assert len(posted) == 3 and "handed to you" in posted[-1].text and posted[-1].updates == 1
        mine = sorted(lead for lead, owner in owners.items() if fake_slack.dm_id(owner) == dm)
        assert listed_ids(posted[-1]) == mine[2:27]  # its own first page, after its two cards


def burst_summary(services, fake_slack, clock, leads):
    """The handoff channel's summary of a burst of `leads` after one card, once it is out."""
    with_burst_limit(services, 1)
    many_leads(services, "A", leads)
    clock.advance(timedelta(seconds=10))  # the summary gathers lines first
    services.sender.flush()
    return fake_slack.in_channel("C0HANDOFF1")[-1]


def test_summary_pages_turn_for_the_clicker_alone(app, services, fake_slack, clock):
    summary = burst_summary(services, fake_slack, clock, 61)
    click(app, fake_slack, summary, cards.PAGE_NEXT, "U0SALES02", clock.now())
    page = fake_slack.messages[-1]
    assert page.ephemeral_to == "U0SALES02" and listed_ids(page) == list(range(27, 52))
    seen = listed_ids(summary) + listed_ids(page)
    click(app, fake_slack, page, cards.PAGE_NEXT, "U0SALES02", clock.now())
    assert fake_slack.messages[-1] is page and page.updates == 1  # turned in place
    assert listed_ids(page) == list(range(52, 62)) and cards.PAGE_NEXT not in page.action_ids()
    seen += listed_ids(page)
    assert seen == list(range(2, 62))  # every lead of the burst exactly once, in order
    click(app, fake_slack, page, cards.PAGE_PREV, "U0SALES02", clock.now())
    assert listed_ids(page) == list(range(27, 52))
    assert summary.updates == 0 and listed_ids(summary) == list(range(2, 27))  # others: page 1
    click(app, fake_slack, page, f"{cards.OPEN_CARD}.30", "U0SALES02", clock.now())
    assert cards.ACCEPT in fake_slack.messages[-1].action_ids()  # still one click from its card


def test_a_broken_page_button_changes_nothing_and_says_so(app, services, fake_slack, clock):
    summary = burst_summary(services, fake_slack, clock, 30)
    _, button = summary.find_element(cards.PAGE_NEXT)
    for value, says in (("x|2", "broken"), ("999|2", "no longer exists")):
        button["value"] = value
        assert click(app, fake_slack, summary, cards.PAGE_NEXT, "U0SALES02", clock.now()).status == 200
        assert says in ephemerals(fake_slack, "U0SALES02")[-1]
    assert summary.updates == 0


def test_after_a_quiet_minute_cards_come_one_by_one_again(services, fake_slack, clock):
    with_burst_limit(services, 1)
    many_leads(services, "A", 5)
    clock.advance(timedelta(seconds=61))
    new_lead(services, external_id="L-late", name="Late Lead")
    clock.advance(timedelta(seconds=10))
    services.sender.flush()
    channel = fake_slack.in_channel("C0HANDOFF1")
    assert [m.text.split(" (")[0] for m in channel] == [
        "New lead: A 0 — unknown company", "4 new leads arrived at once",
        "New lead: Late Lead — Acme"]


def test_a_burst_ends_when_leads_slow_to_card_pace(services, fake_slack, clock):
    with_burst_limit(services, 2)
    many_leads(services, "A", 10)  # 2 cards, then a burst of 8
    for i in range(5):  # then one lead every 50 seconds: never a quiet minute
        clock.advance(timedelta(seconds=50))
        new_lead(services, external_id=f"T-{i}", name=f"Trickle {i}")
    services.sender.flush()
    cards_ = [m.text for m in fake_slack.in_channel("C0HANDOFF1") if m.text.startswith("New lead")]
    # the first minute of the burst took 8 leads, so it went on a minute more; the next
    # minute brought 2, no more than the limit: the burst was over and cards came again
    assert [t.split(" (")[0] for t in cards_[2:]] == [
        "New lead: Trickle 3 — Acme", "New lead: Trickle 4 — Acme"]


@pytest.mark.parametrize("action_id", [a for a in cards.ACTION_IDS  # on cards, not summaries
                                       if a not in (cards.OPEN_CARD, cards.PAGE_PREV, cards.PAGE_NEXT)])
def test_every_card_action_has_a_listener(app, services, fake_slack, clock, action_id):
    with services.sessions.begin() as s:
        for p in s.scalars(select(Person).where(Person.slack_id == "U0SALES02")):
            p.away_until = clock.now() + timedelta(days=1)
    new_lead(services)  # routed card: accept, reject, reassign, first touch, CRM
    with services.sessions.begin() as s:
        s.scalars(select(Person).where(Person.slack_id == "U0SALES01")).one().away_until = \
            clock.now() + timedelta(days=1)
    new_lead(services, external_id="L-2")  # unassigned card: take
    msg = next(m for m in fake_slack.in_channel("C0HANDOFF1") if action_id in m.action_ids())
    resp = click(app, fake_slack, msg, action_id, "U0SALES01", clock.now(),
                 selected_user="U0SALES01")
    assert resp.status == 200


@pytest.mark.parametrize("name", ["Ann Lee", "A" * 200, "“Zoë” 李小龍 " * 20, '"quoted\\" \n' * 20])
def test_a_full_burst_summary_stays_within_slacks_limits(name):
    def view(i):
        return cards.CardView(
            lead_id=100_000 + i, external_id=f"L-{i:07d}", name=name, company=name, title=None,
            score=95, hot=True, source="paid_search_" + "x" * 50, segment=None, region=None,
            why=None, crm_url=None, owner="U0SALES01", status="routed", sla_policy=None,
            sla_due_at=None, sla_state=None)

    lines = [cards.summary_line(view(i)) for i in range(cards.SUMMARY_MAX)]
    check_message(cards.burst_summary(cards.SummaryPage(7, 100_000, 3, lines, for_owner=True)))


def plans_of_each_lead_alone(services) -> dict:
    """Each stored lead's SLA policy, due time and first nudge, checked against those of
    the lead routed alone; the due times by (policy, owner)."""
    with services.sessions.begin() as s:
        nudges = {n.lead_id: (n.stage, n.due_at) for n in s.scalars(select(Nudge))}
        plans = {}
        for lead in s.scalars(select(Lead).order_by(Lead.id)):
            owner = s.get(Person, lead.owner_id)
            alone = Lead(score=lead.score, source=lead.source, routed_at=lead.routed_at,
                         assigned_at=lead.assigned_at)
            sla.start(alone, services.config, owner, lead.routed_at)
            assert (lead.sla_policy, lead.sla_due_at) == (alone.sla_policy, alone.sla_due_at)
            alone.sla_due_at = lead.sla_due_at
            assert nudges[lead.id] == sla.stages(alone, services.config, owner)[0]
            plans[lead.sla_policy, owner.slack_id] = lead.sla_due_at
    return plans


def test_a_batchs_due_times_and_nudges_are_each_owners_own(services):
    """A batch works each SLA plan out once per policy and calendar: those of a rep with
    other hours, and of hot leads, are their own, as if each lead were routed alone."""
    with services.transaction() as s:
        rep = s.scalar(select(Person).where(Person.slack_id == "U0SALES02"))
        rep.timezone, rep.working_hours = "Europe/London", "08:00-12:00"
    store(services, "leads", [{"external_id": f"L-{i}", "source": "webinar",
                               "score": 90 if i % 3 == 0 else 40} for i in range(12)],
          actor="webhook")
    plans = plans_of_each_lead_alone(services)
    assert plans.keys() == {("hot", "U0SALES01"), ("standard", "U0SALES01"),  # hot leads: to
                            ("standard", "U0SALES02")}  # those in their working hours only
    assert plans["standard", "U0SALES01"] != plans["standard", "U0SALES02"]


def test_owners_the_crm_names_for_the_first_time_each_get_their_own_due_times(
        services, fake_slack):
    """People first met in a batch (found in Slack by their CRM email) are not stored yet
    when its leads are routed: their due times still follow each one's own timezone."""
    fake_slack.add_user("U0NEW0001", "Nia", email="nia@acme.example", tz="Europe/London")
    fake_slack.add_user("U0NEW0002", "Oz", email="oz@acme.example", tz="Asia/Tokyo")
    store(services, "leads", [{"external_id": f"L-{i}", "source": "webinar", "score": 40,
                               "owner_email": ("nia" if i % 2 else "oz") + "@acme.example"}
                              for i in range(4)], actor="webhook")
    plans = plans_of_each_lead_alone(services)
    assert plans.keys() == {("standard", "U0NEW0001"), ("standard", "U0NEW0002")}
    assert plans["standard", "U0NEW0001"] != plans["standard", "U0NEW0002"]
