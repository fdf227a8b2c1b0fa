"""The one error handler: a short ephemeral line for the user, the details for the log."""

from __future__ import annotations

import json
import logging

from slack_bolt import App, BoltResponse

from bot.platform.failures import one_line, token_refused
from bot.platform.services import Services

log = logging.getLogger(__name__)

SORRY = ("Sorry, something went wrong on our side and nothing was changed. "
         "Try again in a minute; if it keeps happening, tell your alignbot admin.")


def register(app: App, services: Services) -> None:
    @app.error
    def on_error(error, body, client):
        user = (body.get("user") or {}).get("id") or body.get("user_id")
        channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
        what = body.get("type") or body.get("command")
        if line := one_line(error, body.get("team_id")):  # no bug: what to do, in one line
            log.warning("%s from %s/%s not done: %s", what, body.get("team_id"), user, line)
            log.debug("the error", exc_info=error)
        else:  # ids and the payload type only: lead PII and tokens stay out of logs
            log.error("unhandled %s in %s from %s/%s: %r", type(error).__name__, what,
                      body.get("team_id"), user, error, exc_info=error)
        if body.get("command"):  # a slash command: the reply rides on the HTTP response
            return BoltResponse(status=200, body=json.dumps(
                {"response_type": "ephemeral", "text": SORRY}),
                headers={"content-type": "application/json"})
        if user and channel and not token_refused(error):  # with what token?
            try:
                client.chat_postEphemeral(channel=channel, user=user, text=SORRY)
            except Exception:  # noqa: BLE001 - telling the user is best effort
                log.warning("could not tell %s about the error", user)
        return BoltResponse(status=200, body="")
