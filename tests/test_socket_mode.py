"""`alignbot run` in Socket Mode, as a real process: it opens a WebSocket to a local Slack
(tests/socket_mode.py), takes events, slash commands and clicks as envelopes, acks each
with its envelope_id, answers through the Web API, and reconnects when Slack says so."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import parse_qsl

import pytest

from bot.blocks import handoff as cards
from bot.cli import main as cli_main
from bot.intake.webhooks import signature
from bot.platform.clock import SystemClock
from tests.processes import over_http, run_env, serving, use_env
from tests.slack import TEAM, all_text, event_body, slash_body
from tests.socket_mode import WAIT, SocketModeServer, SocketSlack

APP_TOKEN = "xapp-1-A0TEST-1-fake"
WEBHOOK_SECRET = "whsec-socket-0123456789"
ADMIN, REP, MANAGER = "U0ADMIN01", "U0SALES01", "U0SALESMG1"


@pytest.fixture
def slack():
    """Slack's two sides: the Socket Mode endpoint, and the Web API that points to it."""
    with SocketModeServer() as server:
        fake = SocketSlack(server.url, team_id=TEAM)
        with over_http(fake) as api_url:
            fake.served_at = api_url
            yield server, fake, api_url


@pytest.fixture
def bot(tmp_path, sqlite_template, slack):
    """`alignbot run` with an app token: Socket Mode, no signing secret."""
    server, fake, api_url = slack
    env = run_env(tmp_path, sqlite_template, SLACK_BOT_TOKEN="xoxb-fake-token",
                  SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=api_url,
                  ALIGNBOT_WEBHOOK_SECRET=WEBHOOK_SECRET)
    with serving(env, tmp_path) as (base, log):
        yield server, fake, base, log
    assert "Traceback" not in "".join(log)


def acked(link, envelope_id: str) -> dict:
    """The app's next message, which must be the ack of `envelope_id`."""
    ack = link.next_message()
    assert ack["envelope_id"] == envelope_id, ack
    return ack


def mention(text: str, ts: str, channel: str = "C0HANDOFF1", user: str = REP) -> dict:
    return {"type": "app_mention", "user": user, "text": f"<@U0ALIGNBOT> {text}", "ts": ts,
            "channel": channel, "event_ts": ts}


def event(payload_event: dict, event_id: str) -> dict:
    return json.loads(event_body(payload_event, event_id))


def health(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=WAIT) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post_lead(base: str, external_id: str) -> None:
    """A CRM's webhook for one new lead: the bot routes it and the outbox posts its card."""
    body = json.dumps({"external_id": external_id, "source": "webinar", "name": "Ann Lee",
                       "email": "ann@prospect.example", "company": "Acme", "score": 60}).encode()
    ts = str(int(SystemClock().now().timestamp()))  # a real server checks the real time
    req = urllib.request.Request(f"{base}/webhooks/leads", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Alignbot-Timestamp": ts,
        "X-Alignbot-Signature": signature(WEBHOOK_SECRET, ts, body)})
    with urllib.request.urlopen(req, timeout=WAIT) as resp:
        assert json.loads(resp.read())["created"] == 1


def test_events_commands_and_clicks_come_over_the_socket_and_are_acked(bot):
    server, fake, base, _ = bot
    link = server.next_link()  # opened before the bot said it was serving
    assert len(fake.calls_of("apps.connections.open")) == 1
    assert health(base) == (200, {"ok": True, "team_id": TEAM})

    # events_api: an @mention is acked at once (empty), answered in its thread afterwards
    ack = acked(link, link.envelope("events_api", event(mention("help", "1764000000.000100"),
                                                        "Ev0SOCKET1")))
    assert "payload" not in ack
    [answer] = fake.wait_until(lambda: [c for c in fake.calls_of("chat.postMessage")
                                        if c.get("thread_ts") == "1764000000.000100"])
    assert answer["channel"] == "C0HANDOFF1" and "/align help" in answer["text"]

    # the same event again (Slack's retry when an ack is late): acked, not answered twice
    acked(link, link.envelope("events_api", event(mention("help", "1764000000.000100"),
                                                  "Ev0SOCKET1"),
                              retry_attempt=1, retry_reason="timeout"))

    # slash_commands: the answer rides in the ack's payload, as with HTTP's response body
    command = dict(parse_qsl(slash_body("help", user=ADMIN)))
    ack = acked(link, link.envelope("slash_commands", command))
    assert "/align help" in ack["payload"]["text"]

    # interactive: a click on a handoff card the bot posted
    post_lead(base, "L-SOCKET-1")
    [card] = fake.wait_until(lambda: [m for m in fake.in_channel("C0HANDOFF1")
                                      if cards.ACCEPT in m.action_ids()])
    click = fake.block_action(card, cards.ACCEPT, MANAGER, trigger_id="111.222.trigger")
    click["response_url"] = fake.reachable(click["response_url"])
    ack = acked(link, link.envelope("interactive", click))
    assert "payload" not in ack
    fake.wait_until(lambda: "Accepted by" in all_text({"blocks": card.blocks}))
    fake.wait_until(lambda: [m for m in fake.messages if m.ephemeral_to == MANAGER])

    answers = [c for c in fake.calls_of("chat.postMessage")
               if c.get("thread_ts") == "1764000000.000100"]
    assert len(answers) == 1  # the redelivered mention was not answered again
