"""Survey listeners: answer buttons, the choice select, the comment button and its modal,
and reactions added to or removed from a prompt."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.blocks import surveys as views
from bot.platform.services import Services
from bot.surveys import answers
from handlers.clicks import answer_later, tell

log = logging.getLogger(__name__)
MALFORMED = views.note("That button is not one alignbot can read; nothing was recorded.")
# "run:position" or "run:position:value", as the prompt's buttons write them: ASCII digits
# only (int() would take "٣" and " 3", "²" would raise), short enough for a database integer.
TOKEN = re.compile(r"([0-9]{1,18}):([0-9]{1,18})(?::([0-9]{1,18}))?")


def register(app: App, services: Services) -> None:
    def taking(team_id: str, user: str, token: str, act: Callable) -> dict[str, Any] | None:
        """Run `act(work, prompt)` on the prompt `token` ("run:position[:...]") names;
        the private note to show when it was not taken."""
        parts = TOKEN.fullmatch(token)
        if parts is None:
            return MALFORMED
        run_id, position = int(parts[1]), int(parts[2])
        try:
            with services.work(team_id) as work:
                act(work, answers.prompt(work, user, run_id, position))
        except answers.NotTaken as exc:
            return exc.note
        return None

    def value_of(token: str) -> int | None:
        parts = TOKEN.fullmatch(token)
        return int(parts[3]) if parts and parts[3] else None

    def clicked(ack, body, action, context):
        ack()
        token = (action.get("selected_option") or {}).get("value") or action.get("value") or ""
        note = MALFORMED if value_of(token) is None else taking(
            body["team"]["id"], body["user"]["id"], token,
            lambda work, p: answers.answer(work, p, value=value_of(token)))
        if note:
            answer_later(context, body["channel"]["id"], note)
    app.action(re.compile(rf"^{re.escape(views.ANSWER)}\.\d+$"))(ack=clicked, lazy=[tell])
    app.action(views.CHOOSE)(ack=clicked, lazy=[tell])

    def comment(ack, body, action, client, context):
        """The modal opens at once (its trigger lasts three seconds), with their comment."""
        ack()
        shown: list[dict[str, Any]] = []
        note = taking(body["team"]["id"], body["user"]["id"], action.get("value") or "",
                      lambda work, p: shown.append(views.comment_modal(
                          answers.view(p, answers.current_comment(work, p)))))
        if note:
            answer_later(context, body["channel"]["id"], note)
        else:
            client.views_open(trigger_id=body["trigger_id"], view=shown[0])
    app.action(views.COMMENT)(ack=comment, lazy=[tell])

    def commented(ack, body, view, client):
        ack()
        text = ((view["state"]["values"].get(views.COMMENT_BLOCK) or {})
                .get(views.COMMENT_ACTION) or {}).get("value")
        user = body["user"]["id"]
        note = taking(body["team"]["id"], user, view.get("private_metadata") or "",
                      lambda work, p: answers.answer(work, p, text=text))
        if note:  # a modal has no channel: the note goes to the person's DM with alignbot
            client.chat_postMessage(channel=user, **note)
    app.view(views.COMMENT)(commented)

    def reacted(added: bool):
        def listener(event, context, client):
            item = event.get("item") or {}
            if item.get("type") != "message" or event.get("item_user") != context.bot_user_id:
                return  # a reaction on someone else's message, or on a file
            user, channel = event.get("user", ""), item.get("channel", "")
            try:
                with services.work(context.team_id) as work:
                    answers.react(work, user, channel, item.get("ts", ""),
                                  event.get("reaction", ""), added=added)
            except answers.NotTaken as exc:
                _tell(client, channel, user, exc.note)
        return listener
    app.event("reaction_added")(reacted(True))
    app.event("reaction_removed")(reacted(False))


def _tell(client, channel: str, user: str, note: dict[str, Any]) -> None:
    """Where Slack allows a private line there (the bot's DM with them does)."""
    try:
        client.chat_postEphemeral(channel=channel, user=user, **note)
    except SlackApiError as exc:
        log.info("could not tell %s why a reaction was not counted: %s", user,
                 exc.response.get("error"))
