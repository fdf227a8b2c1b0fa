"""The shape every card click shares: ack, run one service in one transaction, answer privately.

A click's change is made before Slack hears back, so it is stored however the answer
goes. The answer (a Slack call) is sent after the ack, in a lazy listener: Slack gives
a click three seconds, and a slow call must not spend them.

A click on a lead's card only the clicker sees (`/align lead`, a card opened from a
summary: an ephemeral message) is answered in that card: chat.update cannot edit an
ephemeral message, so the outbox leaves it as it was, and it would go on offering what
was just done. Its response_url replaces it with the card as it now is, the answer on top.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.context.respond import Respond

from bot.blocks.handoff import click_answer
from bot.handoff.clicks import ClickRefused, answered_card
from bot.platform.services import Services

log = logging.getLogger(__name__)


def run_click(services: Services, service: Callable, team_id: str, token: str, user: str,
              **details) -> str:
    """The service's answer for the clicker, or why nothing was changed."""
    try:
        with services.work(team_id) as work:
            return service(work, token, user, **details)
    except ClickRefused as exc:
        return str(exc)


def answer_later(context: dict, channel: str, message: dict[str, Any],
                 replace: str | None = None) -> None:
    """Leave the clicker's private message for `tell`, after the ack: a message of its own
    in `channel`, or in place of the message of the response_url `replace`."""
    context["answer"] = (channel, message, replace)


def tell(body, client, context) -> None:
    """The lazy half of a click: the clicker's private message, if there is one."""
    if "answer" not in context:
        return
    channel, message, replace = context["answer"]
    if replace and _replaced(client, replace, message):
        return
    client.chat_postEphemeral(channel=channel, user=body["user"]["id"], **message)


def _replaced(client, response_url: str, message: dict[str, Any]) -> bool:
    """Whether Slack replaced the message: a response_url lasts 30 minutes (a modal may be
    left open longer) and the ephemeral message goes when its reader reloads. Otherwise the
    message is posted on its own, so the clicker still hears back."""
    said = Respond(response_url=response_url, proxy=client.proxy, ssl=client.ssl)(
        **message, response_type="ephemeral", replace_original=True)
    if said.status_code != 200:
        log.info("could not replace a card only the clicker saw (%s): answering apart",
                 said.status_code)
    return said.status_code == 200


def ephemeral_card(body: dict[str, Any]) -> str | None:
    """The response_url that replaces the clicked message, when it is one only the clicker
    sees; None for a message in a channel or DM (the outbox edits it for everyone)."""
    return body.get("response_url") if body.get("container", {}).get("is_ephemeral") else None


def answer_card_later(services: Services, context: dict, body: dict[str, Any], token: str,
                      said: str, where: tuple[str, str | None] | None = None) -> None:
    """Leave the answer `said` to a click on the card of `token` for `tell`: the card as it
    now is, carrying it, in place of a card only the clicker sees; else the answer alone.
    `where`: the channel and the response_url, when the body has not got them (a modal's)."""
    channel, replace = where or (body["channel"]["id"], ephemeral_card(body))
    if replace is None:
        return answer_later(context, channel, click_answer(said))
    answer_later(context, channel, answered_card(services, body["team"]["id"], token, said),
                 replace)


def deciding(decide: Callable[[dict, dict], dict[str, Any]]) -> dict[str, Any]:
    """A click's listener halves: `decide(body, action)` makes the change and returns the
    message for the clicker; it is sent after the ack."""
    def acknowledge(ack, body, action, context):
        ack()
        answer_later(context, body["channel"]["id"], decide(body, action))
    return {"ack": acknowledge, "lazy": [tell]}


def button_listener(services: Services, service: Callable) -> dict[str, Any]:
    """The listener halves for a button whose value is a lead's token, off its card (an SLA
    reminder's): the answer is a message of its own."""
    return deciding(lambda body, action: click_answer(run_click(
        services, service, body["team"]["id"], action["value"], body["user"]["id"])))


def card_listener(services: Services, service: Callable,
                  token: Callable[[dict], str] = lambda action: action["value"],
                  details: Callable[[dict], dict] = lambda action: {}) -> dict[str, Any]:
    """The listener halves for a control on a lead's card: `service` acts on the lead of the
    card's `token(action)`, with `details(action)`, and the clicker is answered as
    `answer_card_later` says."""
    def acknowledge(ack, body, action, context):
        ack()
        clicked = token(action)
        said = run_click(services, service, body["team"]["id"], clicked, body["user"]["id"],
                         **details(action))
        answer_card_later(services, context, body, clicked, said)
    return {"ack": acknowledge, "lazy": [tell]}
