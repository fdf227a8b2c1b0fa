"""Global middleware: lines logged name the (verified) request's workspace; redelivered
events are dropped before any listener sees them."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot.platform import logs
from bot.platform.redelivery import first_delivery
from bot.platform.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    app.middleware(_EachRequest(services))


class _EachRequest(Middleware):
    """A class, not functions: Bolt calls a function middleware through its argument
    injection, which costs every request (commands and clicks too) more than this work."""

    def __init__(self, services: Services):
        self.services = services

    def process(self, *, req: BoltRequest, resp: BoltResponse,
                next: Callable[[], BoltResponse]) -> BoltResponse | None:  # noqa: A002 - Bolt's name
        logs.add(team_id=req.context.team_id)  # for the rest of this request (bot/app.py)
        body = req.body
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not first_delivery(self.services, body.get("team_id", ""), event_id):
            log.info("event %s already processed; acknowledging the redelivery", event_id)
            return BoltResponse(status=200, body="")
        return next()
