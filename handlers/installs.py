"""A workspace that removes alignbot (or revokes its bot token) is sent nothing more."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.platform.installations import uninstalled
from bot.platform.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    def gone(team_id: str | None) -> None:
        if not team_id:
            log.warning("an uninstall without a workspace id; nothing deleted")
            return
        uninstalled(services.installations, services.sessions, team_id)

    @app.event("app_uninstalled")
    def app_uninstalled(context):
        gone(context.team_id)

    @app.event("tokens_revoked")
    def tokens_revoked(event, context):
        if (event.get("tokens") or {}).get("bot"):  # a user's token alone is none of alignbot's
            gone(context.team_id)
