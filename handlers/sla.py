"""Buttons on SLA nudges: snooze and working on it (first touch is the card's own button)."""

from __future__ import annotations

from slack_bolt import App

from bot.blocks import sla as views
from bot.platform.services import Services
from bot.sla import nudges
from handlers.clicks import button_listener


def register(app: App, services: Services) -> None:
    app.action(views.numbered(views.SNOOZE))(**button_listener(services, nudges.snooze))
    app.action(views.numbered(views.WORKING))(**button_listener(services, nudges.working_on_it))
