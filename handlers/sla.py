"""Buttons on SLA nudges: snooze and working on it (first touch is the card's own button)."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import App

from bot import handoff, nudges
from bot.blocks import handoff as cards
from bot.blocks import sla as views
from bot.services import Services


def register(app: App, services: Services) -> None:
    def on_button(service: Callable):
        def listener(ack, body, action, client):
            ack()
            user = body["user"]["id"]
            try:
                with services.transaction() as session:
                    text = service(session, body["team"]["id"], action["value"], user,
                                   services.config, services.clock.now()).message
            except handoff.ClickRefused as exc:
                text = str(exc)
            client.chat_postEphemeral(channel=body["channel"]["id"], user=user,
                                      **cards.click_answer(text))
        return listener

    app.action(views.SNOOZE)(on_button(nudges.snooze))
    app.action(views.WORKING)(on_button(nudges.working_on_it))
