"""Global middleware: lines logged name the (verified) request's workspace; redelivered
events are dropped before any listener sees them."""

from __future__ import annotations

import logging

from slack_bolt import App, BoltResponse

from bot.platform import logs
from bot.platform.redelivery import first_delivery
from bot.platform.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    @app.middleware
    def log_the_workspace(context, next):  # noqa: A002 - Bolt injects by this name
        logs.add(team_id=context.team_id)  # for the rest of this request (bot/app.py)
        return next()

    @app.middleware
    def process_each_event_once(body, next):  # noqa: A002 - Bolt injects by this name
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not first_delivery(services, body.get("team_id", ""), event_id):
            log.info("event %s already processed; acknowledging the redelivery", event_id)
            return BoltResponse(status=200, body="")
        return next()
