"""Buttons on SLA nudges: snooze and working on it (first touch is the card's own button)."""

from __future__ import annotations

from slack_bolt import App

from bot.blocks import sla as views
from bot.platform.services import Services
from bot.sla import nudges
from handlers.clicks import button_listener


def register(app: App, services: Services) -> None:
    app.action(views.numbered(views.SNOOZE))(**button_listener(services, _work(nudges.snooze)))
    app.action(views.numbered(views.WORKING))(
        **button_listener(services, _work(nudges.working_on_it)))


def _work(click):  # until bot/sla takes a Work
    return lambda w, token, user: click(w.session, w.team_id, token, user, w.config, w.now)
