"""`alignbot run` in Socket Mode, as a real process: it opens a WebSocket to a local Slack
(tests/socket_mode.py), takes events, slash commands and clicks as envelopes, acks each
with its envelope_id, answers through the Web API, and reconnects when Slack says so."""

from __future__ import annotations

import json
import signal
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
    server, fake, base, log = bot
    link = server.next_link()  # opened before the bot said it was serving
    assert len(fake.calls_of("apps.connections.open")) == 1
    assert health(base) == (200, {"ok": True, "team_id": TEAM})

    # events_api: an @mention is acked at once (empty), answered in its thread afterwards
    ack = link.ack_of(link.envelope("events_api", event(mention("help", "1764000000.000100"),
                                                        "Ev0SOCKET1")))
    assert "payload" not in ack
    [answer] = fake.wait_until(lambda: [c for c in fake.calls_of("chat.postMessage")
                                        if c.get("thread_ts") == "1764000000.000100"])
    assert answer["channel"] == "C0HANDOFF1" and "/align help" in all_text(answer)

    # the same event again (Slack's retry when an ack is late): acked, not answered twice
    link.ack_of(link.envelope("events_api", event(mention("help", "1764000000.000100"),
                                                  "Ev0SOCKET1"),
                              retry_attempt=1, retry_reason="timeout"))

    # slash_commands: the answer rides in the ack's payload, as with HTTP's response body
    command = dict(parse_qsl(slash_body("help", user=ADMIN)))
    ack = link.ack_of(link.envelope("slash_commands", command))
    assert "/align help" in all_text(ack["payload"])

    # interactive: a click on a handoff card the bot posted
    post_lead(base, "L-SOCKET-1")
    [card] = fake.wait_until(lambda: [m for m in fake.in_channel("C0HANDOFF1")
                                      if cards.ACCEPT in m.action_ids()])
    click = fake.block_action(card, cards.ACCEPT, MANAGER, trigger_id="111.222.trigger")
    click["response_url"] = fake.reachable(click["response_url"])
    ack = link.ack_of(link.envelope("interactive", click))
    assert "payload" not in ack
    fake.wait_until(lambda: "Accepted by" in all_text({"blocks": card.blocks}))
    fake.wait_until(lambda: [m for m in fake.messages if m.ephemeral_to == MANAGER])

    answers = [c for c in fake.calls_of("chat.postMessage")
               if c.get("thread_ts") == "1764000000.000100"]
    assert len(answers) == 1  # the redelivered mention was not answered again
    assert "Traceback" not in "".join(log)


def direct_message(text: str, ts: str, user: str = REP) -> dict:
    return {"type": "message", "channel_type": "im", "channel": "D" + user[1:], "user": user,
            "text": text, "ts": ts, "event_ts": ts}


def answered_in(fake, channel: str) -> list[dict]:
    return [c for c in fake.calls_of("chat.postMessage") if c.get("channel") == channel]


def test_a_disconnect_notice_makes_the_bot_reconnect_and_carry_on(bot):
    server, fake, base, log = bot
    first = server.next_link()
    first.disconnect()  # Slack refreshes its connections every few hours

    second = server.next_link()
    assert len(fake.calls_of("apps.connections.open")) == 2  # a fresh URL, as Slack requires
    assert first.closed.wait(WAIT)  # the old connection is let go once the new one is up
    ack = second.ack_of(second.envelope("events_api", event(direct_message("help", "1764000001.000200"),
                                                            "Ev0SOCKET2")))
    assert "payload" not in ack
    [answer] = fake.wait_until(lambda: answered_in(fake, "D0SALES01"))
    assert "/align help" in all_text(answer)
    assert health(base)[0] == 200
    assert first.received.empty()  # nothing went to the old connection after the notice
    assert "Traceback" not in "".join(log)


def test_health_says_when_the_socket_is_down_until_the_bot_is_back(bot):
    """Slack closes the connection without a notice: the bot lets it go and asks for a new
    URL at once, not on the SDK client's next check (every 10 s); /healthz follows along."""
    server, fake, base, log = bot
    first = server.next_link()
    fake.opening.clear()  # the new URL waits until health has been read
    first.ws.close()
    assert first.closed.wait(WAIT)

    status, body = health(base)
    assert status == 503 and body["slack"] == "the Socket Mode connection is down; reconnecting"
    fake.opening.set()
    second = server.next_link()
    ack = second.ack_of(second.envelope("events_api", event(mention("help", "1764000003.000400"),
                                                            "Ev0SOCKET4")))
    assert "payload" not in ack
    assert health(base) == (200, {"ok": True, "team_id": TEAM})
    assert len(fake.calls_of("apps.connections.open")) == 2
    assert "Slack closed the Socket Mode connection (1000); connecting again" in "".join(log)
    assert "Traceback" not in "".join(log)


def test_malformed_envelopes_are_dropped_and_the_socket_keeps_serving(bot):
    """Slack sends none of these; if it did, the bot would say sorry where someone waits
    for an answer, log the rest, and keep serving the connection."""
    server, fake, base, _ = bot
    link = server.next_link()
    for junk in ("not json", "{\"type\": ", "[1, 2]", json.dumps({"type": "events_api"}),
                 json.dumps({"type": "unknown_kind", "envelope_id": "env-junk", "payload": {}})):
        link.send(junk)
    link.envelope("events_api", "a payload that is not an object")
    command = link.envelope("slash_commands", {"command": "/align"})  # no team, user or text
    click = link.envelope("interactive", {"type": "block_actions", "actions": "none"})

    good = link.envelope("events_api", event(mention("help", "1764000002.000300"), "Ev0SOCKET3"))
    assert link.ack_of(good) == {"envelope_id": good}
    fake.wait_until(lambda: answered_in(fake, "C0HANDOFF1"))
    assert "Sorry, something went wrong" in link.ack_of(command)["payload"]["text"]
    assert link.ack_of(click) == {"envelope_id": click}
    assert health(base)[0] == 200


# ------------------------------------------------------------------ tokens at start-up


def start(monkeypatch, tmp_path, sqlite_template, api_url, command="run", **tokens) -> int:
    """`alignbot <command>` in-process (it stops before serving, or the test fails)."""
    use_env(monkeypatch, run_env(tmp_path, sqlite_template, SLACK_API_URL=api_url, **tokens))
    return cli_main([command, "--port", "0"] if command == "run" else [command])


@pytest.mark.parametrize("error", ["invalid_auth", "not_allowed_token_type", "token_revoked"])
def test_a_refused_app_token_is_one_line_that_says_which_token_and_what_to_do(
        error, slack, monkeypatch, tmp_path, sqlite_template, capsys):
    server, fake, api_url = slack
    fake.script("apps.connections.open", (200, {}, {"ok": False, "error": error}))
    assert start(monkeypatch, tmp_path, sqlite_template, api_url,
                 SLACK_BOT_TOKEN="xoxb-fake-token", SLACK_APP_TOKEN="xapp-1-revoked") == 1
    [line] = capsys.readouterr().err.splitlines()  # no traceback, no SDK retry chatter
    assert line == (f"alignbot: Slack refused the app token (SLACK_APP_TOKEN): {error} — it "
                    "takes an app-level token (xapp-…) with the connections:write scope, from "
                    "your app's Basic Information page → App-Level Tokens")
    assert server.links.empty()


def test_slack_having_a_bad_moment_is_not_blamed_on_the_token(slack, monkeypatch, tmp_path,
                                                              sqlite_template, capsys):
    _, fake, api_url = slack
    fake.script("apps.connections.open", (200, {}, {"ok": False, "error": "internal_error"}))
    assert start(monkeypatch, tmp_path, sqlite_template, api_url,
                 SLACK_BOT_TOKEN="xoxb-fake-token", SLACK_APP_TOKEN=APP_TOKEN) == 1
    assert capsys.readouterr().err == \
        "alignbot: Slack refused apps.connections.open: internal_error\n"


@pytest.mark.parametrize("command", ["run", "worker"])
def test_a_refused_bot_token_is_one_line_too(command, slack, monkeypatch, tmp_path,
                                             sqlite_template, capsys):
    _, fake, api_url = slack
    fake.script("auth.test", (200, {}, {"ok": False, "error": "invalid_auth"}))
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # the worker's SIGTERM hook: not ours
    assert start(monkeypatch, tmp_path, sqlite_template, api_url, command,
                 SLACK_BOT_TOKEN="xoxb-wrong", SLACK_APP_TOKEN=APP_TOKEN) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("alignbot: Slack refused the bot token (SLACK_BOT_TOKEN): "
                           "invalid_auth — it takes the Bot User OAuth Token (xoxb-…)")


@pytest.mark.parametrize("app_token", ["xoxb-a-bot-token", "0123456789abcdef-signing-secret",
                                       " xapp-1-with-a-space"])
def test_something_else_in_the_app_token_fails_before_asking_slack(
        app_token, slack, monkeypatch, tmp_path, sqlite_template, capsys):
    _, fake, api_url = slack
    assert start(monkeypatch, tmp_path, sqlite_template, api_url,
                 SLACK_BOT_TOKEN="xoxb-fake-token", SLACK_APP_TOKEN=app_token) == 2
    err = capsys.readouterr().err
    assert "SLACK_APP_TOKEN is not an app-level token (those start with xapp-)" in err
    assert app_token.strip() not in err  # a secret pasted in the wrong place stays unprinted
    assert fake.calls == []  # failed fast: Slack was not asked
