"""The shape every card click shares: ack, run one service in one transaction, answer privately.

A click's change is made before Slack hears back, so it is stored however the answer
goes. The answer (a Slack call) is sent after the ack, in a lazy listener: Slack gives
a click three seconds, and a slow call must not spend them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.blocks.handoff import click_answer
from bot.handoff.clicks import ClickRefused
from bot.platform.services import Services


def run_click(services: Services, service: Callable, team_id: str, token: str, user: str,
              **details) -> str:
    """The service's answer for the clicker, or why nothing was changed."""
    try:
        with services.work(team_id) as work:
            return service(work, token, user, **details)
    except ClickRefused as exc:
        return str(exc)


def answer_later(context: dict, channel: str, message: dict[str, Any]) -> None:
    """Leave the clicker's private message for `tell`, after the ack."""
    context["answer"] = (channel, message)


def tell(body, client, context) -> None:
    """The lazy half of a click: the clicker's private message, if there is one."""
    if "answer" in context:
        channel, message = context["answer"]
        client.chat_postEphemeral(channel=channel, user=body["user"]["id"], **message)


def deciding(decide: Callable[[dict, dict], dict[str, Any]]) -> dict[str, Any]:
    """A click's listener halves: `decide(body, action)` makes the change and returns the
    message for the clicker; it is sent after the ack."""
    def acknowledge(ack, body, action, context):
        ack()
        answer_later(context, body["channel"]["id"], decide(body, action))
    return {"ack": acknowledge, "lazy": [tell]}


def button_listener(services: Services, service: Callable) -> dict[str, Any]:
    """The listener halves for a button whose value is the card's token."""
    return deciding(lambda body, action: click_answer(run_click(
        services, service, body["team"]["id"], action["value"], body["user"]["id"])))
