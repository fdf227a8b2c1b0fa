"""Handoff card listeners: accept, reject (modal), reassign, take, first touch."""

from __future__ import annotations

import re

from slack_bolt import App

from bot import handoff
from bot.blocks import handoff as cards
from bot.lifecycle import REJECTION_REASONS
from bot.services import Services
from handlers.clicks import answer, button_listener, run_click


def register(app: App, services: Services) -> None:
    app.action(cards.ACCEPT)(button_listener(services, handoff.accept))
    app.action(cards.FIRST_TOUCH)(button_listener(services, handoff.first_touch))
    app.action(cards.TAKE)(button_listener(services, handoff.take))

    @app.action(cards.REASSIGN)
    def reassign(ack, body, action, client):
        ack()
        user = body["user"]["id"]
        token = action.get("block_id", "").removeprefix("lead-")  # selects carry no value
        answer(client, body["channel"]["id"], user,
               run_click(services, handoff.reassign, body["team"]["id"], token, user,
                         to=action["selected_user"]))

    @app.action(cards.REJECT)
    def reject(ack, body, action, client):
        ack()
        try:
            with services.sessions.begin() as session:
                view = handoff.reject_form(session, body["team"]["id"], action["value"],
                                           body["user"]["id"], services.config,
                                           services.clock.now())
        except handoff.ClickRefused as exc:
            answer(client, body["channel"]["id"], body["user"]["id"], str(exc))
            return
        client.views_open(trigger_id=body["trigger_id"],
                          view=cards.reject_modal(view, reply_in=body["channel"]["id"]))

    @app.view(cards.REJECT_MODAL)
    def rejected(ack, body, view, client):
        values = view["state"]["values"]
        picked = values.get(cards.REASON_BLOCK, {}).get(cards.REASON_ACTION) or {}
        reason = (picked.get("selected_option") or {}).get("value")
        note = (values.get(cards.NOTE_BLOCK, {}).get(cards.NOTE_ACTION) or {}).get("value")
        if reason not in REJECTION_REASONS:
            return ack(response_action="errors", errors={cards.REASON_BLOCK: "Pick a reason."})
        if reason == "other" and not (note or "").strip():
            return ack(response_action="errors",
                       errors={cards.NOTE_BLOCK: "Tell marketing what “other” means here."})
        ack()
        token, channel = cards.modal_target(view["private_metadata"])
        user = body["user"]["id"]
        answer(client, channel, user, run_click(services, handoff.reject, body["team"]["id"],
                                                token, user, reason=reason, note=note))

    @app.action(re.compile(rf"^{re.escape(cards.OPEN_CARD)}\.\d+$"))
    def open_card(ack, body, action, client):
        ack()
        user = body["user"]["id"]
        try:
            with services.sessions.begin() as session:
                card = handoff.open_card(session, body["team"]["id"], action["value"], user,
                                         services.config, services.clock.now())
        except handoff.ClickRefused as exc:
            card = cards.click_answer(str(exc))
        client.chat_postEphemeral(channel=body["channel"]["id"], user=user, **card)

    @app.action(re.compile(rf"^({re.escape(cards.PAGE_PREV)}|{re.escape(cards.PAGE_NEXT)})$"))
    def summary_page(ack, body, action, respond):
        """Another page of a burst summary, for the clicker alone: a page they were shown
        is turned in place; a shared summary stays on its first page for everyone else."""
        ack()
        try:
            with services.sessions.begin() as session:
                page = handoff.burst_page(session, body["team"]["id"], action["value"],
                                          services.config)
        except handoff.ClickRefused as exc:
            page = cards.click_answer(str(exc))
        respond(**page, response_type="ephemeral",
                replace_original=bool(body.get("container", {}).get("is_ephemeral")))

    @app.action(cards.OPEN_CRM)
    def open_crm(ack):
        ack()  # a link button: Slack opens the URL, we only acknowledge
