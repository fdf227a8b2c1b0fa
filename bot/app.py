"""The Bolt app factory: the one place that wires every feature's handlers."""

from __future__ import annotations

from slack_bolt import App

from bot import admin
from bot.commands import HELP, CommandTable
from bot.services import Services


def command_table() -> CommandTable:
    """Every `/align` command, in the order `/align help` lists them."""
    return CommandTable([HELP, *admin.COMMANDS])


def create_app(services: Services, *, verify_requests: bool = True) -> App:
    from handlers import commands, errors, middleware

    app = App(
        client=services.slack,
        signing_secret=services.secrets.slack_signing_secret or "",
        request_verification_enabled=verify_requests,
        # Ack on the fast path and reply from the listener; slow work goes to the outbox.
        process_before_response=True,
    )
    for module in (middleware, errors, commands):
        module.register(app, services)
    return app
