"""`/align`: the slash command goes through the command table, like @mentions
(handlers/mentions.py) and the shell. Also how a reply's file reaches Slack."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks import replies as views
from bot.platform.command_table import CommandRequest, Reply, Upload
from bot.platform.services import Services
from handlers.errors import SORRY

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    pool = app.listener_runner.listener_executor  # the shell's AfterAck, or Bolt's threads

    def answer(ack, command, context, client, respond):
        """The answer goes back in the ack itself. Its file, if any, is made and uploaded
        after the ack (`send_file`): Slack gives a command three seconds, a chart takes one
        or two to draw, and an upload is three calls. Work that asks Slack follows the same
        way (`follow_up`). Only a reply that leaves work starts it: a lazy listener would
        copy and re-dispatch every command, a third of an ack's time."""
        reply = services.commands.dispatch(services, CommandRequest(
            team_id=command["team_id"], user_id=command["user_id"],
            channel_id=command.get("channel_id"), text=command.get("text", "")))
        context["later"] = reply.later
        if reply.file is None:  # what ack() sets, from the JSON kept with the reply (the help's)
            ack.response = BoltResponse(status=200, body=reply.answer_json)
        else:
            ack(response_type=reply.response_type, **with_file(reply, command, context))
        if reply.later is not None or "file" in context:
            pool.submit(after_ack, context, command, client, respond)

    def with_file(reply, command, context) -> dict[str, Any]:
        private_to = None if reply.public else command["user_id"]
        message = reply.message()
        if reply.file is not None:
            context["file"] = (reply.file, command.get("channel_id", ""), private_to)
            message = views.with_file_note(message, reply.file.filename, private=bool(private_to),
                                           error=None)
        return message

    def follow_up(context, command, client, respond):
        """After the answer: the work it left for later, and that work's reply (nothing
        after an ack reaches the app's error handler, so a failure is said here)."""
        if context.get("later") is None:
            return
        try:
            reply = context["later"]()
        except Exception:
            log.exception("the follow-up of /align %s failed", command.get("text", ""))
            respond(response_type="ephemeral", replace_original=False, text=SORRY)
            return
        respond(response_type=reply.response_type, replace_original=False,
                **with_file(reply, command, context))
        send_file(context, client, respond)

    def send_file(context, client, respond):
        """After the answer: its file; if it does not get there, the asker is told privately."""
        if "file" not in context:
            return
        file, channel, private_to = context.pop("file")
        try:
            error = upload(client, file, channel, private_to=private_to)
        except Exception:
            log.warning("could not upload %s to %s", file.filename, channel, exc_info=True)
            error = "request_failed"
        if error:
            respond(response_type="ephemeral", replace_original=False,
                    **views.file_failed(file.filename, error))

    def after_ack(context, command, client, respond):
        send_file(context, client, respond)
        follow_up(context, command, client, respond)

    app.command("/align")(answer)


def deliver(client: WebClient, reply: Reply, channel: str, *, thread_ts: str | None = None) -> dict[str, Any]:
    """Uploads the reply's file, if any, and returns the message to show (an answer in a
    thread, sent after the ack: it may take its time). The upload comes first so that a
    failure can be told in the reply itself."""
    message = reply.message()
    if reply.file is None:
        return message
    error = upload(client, reply.file, channel, thread_ts=thread_ts)
    return views.with_file_note(message, reply.file.filename, private=False, error=error)


def upload(client: WebClient, file: Upload, channel: str, *, thread_ts: str | None = None,
           private_to: str | None = None) -> str | None:
    """Slack's error, or None once the file is posted. Slack has no ephemeral files, so the
    file of a reply only `private_to` sees goes to their DM."""
    try:
        if private_to:
            channel = client.conversations_open(users=private_to)["channel"]["id"]
        client.files_upload_v2(channel=channel, thread_ts=thread_ts, title=file.title,
                               filename=file.filename, content=file.make())
    except SlackApiError as exc:
        error = exc.response.get("error") or "unknown_error"
        log.warning("could not upload %s to %s: %s", file.filename, channel, error)
        return error
    return None
