"""The shape every card button shares: ack, run one service in one transaction, answer privately."""

from __future__ import annotations

from collections.abc import Callable

from bot.blocks.handoff import click_answer
from bot.handoff import ClickRefused
from bot.services import Services


def run_click(services: Services, service: Callable, team_id: str, token: str, user: str,
              **details) -> str:
    """The service's answer for the clicker, or why nothing was changed."""
    try:
        with services.transaction() as session:
            return service(session, team_id, token, user, services.config,
                           services.clock.now(), **details).message
    except ClickRefused as exc:
        return str(exc)


def answer(client, channel: str, user: str, text: str) -> None:
    client.chat_postEphemeral(channel=channel, user=user, **click_answer(text))


def button_listener(services: Services, service: Callable):
    """A listener for a button whose value is the card's token."""
    def listener(ack, body, action, client):
        ack()
        user = body["user"]["id"]
        answer(client, body["channel"]["id"], user,
               run_click(services, service, body["team"]["id"], action["value"], user))
    return listener
