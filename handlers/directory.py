"""Slack's changes to people: deactivations and timezones feed routing."""

from __future__ import annotations

from slack_bolt import App

from bot.handoff import directory
from bot.platform.services import Services


def register(app: App, services: Services) -> None:
    @app.event("user_change")
    def user_change(event, context):
        with services.work(context.team_id) as work:
            directory.user_changed(work, event["user"])
