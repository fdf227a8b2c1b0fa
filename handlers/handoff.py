"""Handoff card listeners: accept, reject (modal), reassign, take, first touch."""

from __future__ import annotations

import re

from slack_bolt import App

from bot.blocks import handoff as cards
from bot.blocks import sla as nudges
from bot.blocks.handoff import click_answer
from bot.handoff import clicks as handoff
from bot.handoff.lifecycle import REJECTION_REASONS
from bot.platform.services import Services
from handlers.clicks import (
    answer_card_later,
    card_listener,
    deciding,
    ephemeral_card,
    run_click,
    tell,
)


def register(app: App, services: Services) -> None:
    app.action(cards.ACCEPT)(**card_listener(services, handoff.accept))
    # also on a DM of reminders, numbered (bot/blocks/sla.py)
    app.action(nudges.numbered(cards.FIRST_TOUCH))(**card_listener(services, handoff.first_touch))
    app.action(cards.TAKE)(**card_listener(services, handoff.take))
    app.action(cards.REASSIGN)(**card_listener(
        services, handoff.reassign,
        # a select carries no value: its block id names the card
        token=lambda action: action.get("block_id", "").removeprefix("lead-"),
        details=lambda action: {"to": action["selected_user"]}))

    def reject(ack, body, action, context):
        """The reason modal opens right after the ack (its trigger lasts three seconds)."""
        ack()
        try:
            with services.work(body["team"]["id"]) as work:
                view = handoff.reject_form(work, action["value"], body["user"]["id"])
        except handoff.ClickRefused as exc:
            answer_card_later(services, context, body, action["value"], str(exc))
            return
        context["modal"] = cards.reject_modal(view, reply_in=body["channel"]["id"],
                                              replace=ephemeral_card(body))

    def open_modal(body, client, context):
        if "modal" in context:
            client.views_open(trigger_id=body["trigger_id"], view=context["modal"])
    app.action(cards.REJECT)(ack=reject, lazy=[open_modal, tell])

    def rejected(ack, body, view, context):
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
        token, channel, replace = cards.modal_target(view["private_metadata"])
        said = run_click(services, handoff.reject, body["team"]["id"], token, body["user"]["id"],
                         reason=reason, note=note)
        answer_card_later(services, context, body, token, said, where=(channel, replace))
    app.view(cards.REJECT_MODAL)(ack=rejected, lazy=[tell])

    def open_card(body, action):
        try:
            with services.work(body["team"]["id"]) as work:
                return handoff.open_card(work, action["value"], body["user"]["id"])
        except handoff.ClickRefused as exc:
            return click_answer(str(exc))
    app.action(re.compile(rf"^{re.escape(cards.OPEN_CARD)}\.\d+$"))(**deciding(open_card))

    def summary_page(ack, body, action, context):
        """Another page of a burst summary, for the clicker alone: a page they were shown
        is turned in place; a shared summary stays on its first page for everyone else."""
        ack()
        try:
            with services.work(body["team"]["id"]) as work:
                context["page"] = handoff.burst_page(work, action["value"])
        except handoff.ClickRefused as exc:
            context["page"] = click_answer(str(exc))

    def turn_page(body, respond, context):
        respond(**context["page"], response_type="ephemeral",
                replace_original=ephemeral_card(body) is not None)
    app.action(re.compile(rf"^({re.escape(cards.PAGE_PREV)}|{re.escape(cards.PAGE_NEXT)})$"))(
        ack=summary_page, lazy=[turn_page])

    @app.action(cards.OPEN_CRM)
    def open_crm(ack):
        ack()  # a link button: Slack opens the URL, we only acknowledge
