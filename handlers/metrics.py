"""@mentions: "@alignbot what was our win rate last quarter by source?" is answered in the
asker's thread. A mention that starts with a command's name ("@alignbot help") runs that
command: both go through the same command table as `/align`."""

from __future__ import annotations

import re

from slack_bolt import App

from bot.commands import CommandRequest
from bot.metrics.commands import mention_command
from bot.services import Services
from handlers.commands import deliver

MENTION = re.compile(r"<@[A-Z0-9]+>")


def register(app: App, services: Services) -> None:
    @app.event("app_mention")
    def mentioned(event, say, context, client):
        text = MENTION.sub("", event.get("text", "")).strip()
        reply = services.commands.dispatch(services, CommandRequest(
            team_id=context.team_id, user_id=event.get("user", ""),
            channel_id=event.get("channel"), text=mention_command(services.commands, text)))
        thread = event.get("thread_ts") or event.get("ts")
        say(thread_ts=thread, **deliver(client, reply, event.get("channel", ""), thread_ts=thread))
