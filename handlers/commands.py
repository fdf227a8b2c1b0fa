"""`/align` and @mentions: both go through the same command table."""

from __future__ import annotations

import re

from slack_bolt import App

from bot.commands import CommandRequest
from bot.services import Services

MENTION = re.compile(r"<@[A-Z0-9]+>")


def register(app: App, services: Services) -> None:
    @app.command("/align")
    def align(ack, command):
        reply = services.commands.dispatch(services, CommandRequest(
            team_id=command["team_id"], user_id=command["user_id"],
            channel_id=command.get("channel_id"), text=command.get("text", "")))
        ack(response_type="in_channel" if reply.public else "ephemeral", **reply.message())

    @app.event("app_mention")
    def mentioned(event, say, context):
        text = MENTION.sub("", event.get("text", "")).strip()
        reply = services.commands.dispatch(services, CommandRequest(
            team_id=context.team_id, user_id=event.get("user", ""),
            channel_id=event.get("channel"), text=text))
        say(thread_ts=event.get("thread_ts") or event.get("ts"), **reply.message())
