"""The App Home tab: published when someone opens it (bot.home keeps it up to date after)."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot import home
from bot.platform.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    def home_opened(event, context, client):
        if event.get("tab", "home") != "home":
            return  # the Messages tab: nothing of ours to draw
        user = event.get("user")
        if not user:
            log.warning("app_home_opened without a user in team %s; nothing published",
                        context.team_id)
            return
        # Published directly, not queued: it answers the person's own action, right now.
        client.views_publish(user_id=user, view=home.open_home(services, context.team_id, user))
    # drawn and published after the HTTP 200: a scorecard is a few dozen queries
    app.event("app_home_opened")(ack=lambda ack: ack(), lazy=[home_opened])
