"""`/align`: the slash command goes through the command table, like @mentions
(handlers/metrics.py) and the shell. Also how a reply's file reaches Slack."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks import commands as views
from bot.commands import CommandRequest, Reply
from bot.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    @app.command("/align")
    def align(ack, command, client):
        reply = services.commands.dispatch(services, CommandRequest(
            team_id=command["team_id"], user_id=command["user_id"],
            channel_id=command.get("channel_id"), text=command.get("text", "")))
        message = deliver(client, reply, command.get("channel_id", ""),
                          private_to=None if reply.public else command["user_id"])
        ack(response_type="in_channel" if reply.public else "ephemeral", **message)


def deliver(client: WebClient, reply: Reply, channel: str, *, thread_ts: str | None = None,
            private_to: str | None = None) -> dict[str, Any]:
    """Uploads the reply's file, if any, and returns the message to show. Slack has no
    ephemeral files, so the file of a reply only `private_to` sees goes to their DM.
    The upload comes first so that a failure can be told in the reply itself."""
    message = reply.message()
    if reply.file is None:
        return message
    if private_to:
        channel = client.conversations_open(users=private_to)["channel"]["id"]
    error = None
    try:
        client.files_upload_v2(channel=channel, thread_ts=thread_ts, title=reply.file.title,
                               filename=reply.file.filename, content=reply.file.content)
    except SlackApiError as exc:
        error = exc.response.get("error") or "unknown_error"
        log.warning("could not upload %s to %s: %s", reply.file.filename, channel, error)
    return views.with_file_note(message, reply.file.filename, private=bool(private_to),
                                error=error)
