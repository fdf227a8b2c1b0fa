"""@mentions and direct messages: "@alignbot what was our win rate last quarter by source?"
is answered in the asker's thread; a question sent to the bot by DM is answered in the
DM. One that starts with a command's name ("help", "lead L-123") runs that command: all
go through the same command table as `/align`.

The answer is worked out and posted after the event is acknowledged (a lazy listener):
Slack waits three seconds for the HTTP 200, and a chart alone takes one or two to draw."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import App, Say
from slack_sdk import WebClient

from bot.metrics.commands import mention_command
from bot.platform.command_table import CommandRequest
from bot.platform.services import Services
from handlers.slash_command import deliver

MENTION = re.compile(r"<@[A-Z0-9]+>")


def register(app: App, services: Services) -> None:
    def answer(event: dict[str, Any], team_id: str, say: Say, client: WebClient,
               thread: str | None) -> None:
        text = MENTION.sub("", event.get("text", "")).strip()
        reply = services.commands.dispatch(services, CommandRequest(
            team_id=team_id, user_id=event.get("user", ""), channel_id=event.get("channel"),
            text=mention_command(services.commands, text)))
        while reply is not None:  # a reply's follow-up, if any, comes after it
            say(thread_ts=thread, **deliver(client, reply, event.get("channel", ""),
                                            thread_ts=thread))
            reply = reply.later() if reply.later else None

    def mentioned(event, say, context, client):
        if not from_a_person(event):
            return
        answer(event, context.team_id, say, client, event.get("thread_ts") or event.get("ts"))
    app.event("app_mention")(ack=acknowledge, lazy=[mentioned])

    def direct_message(event, say, context, client):
        if event.get("channel_type") != "im" or not from_a_person(event):
            return  # other channels, edits, joins, and bots' messages
        answer(event, context.team_id, say, client, event.get("thread_ts"))
    app.event("message")(ack=acknowledge, lazy=[direct_message])


def from_a_person(event: dict[str, Any]) -> bool:
    """A person's new message: not an edit (Slack sends an edited mention again, with
    `edited`: fixing a typo would post a second answer), a join, or a bot's (alignbot's own
    or another bot's: two bots answering each other never stop)."""
    return not (event.get("subtype") or event.get("bot_id") or event.get("edited"))


def acknowledge(ack) -> None:
    ack()
