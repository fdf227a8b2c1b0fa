"""Building Slack requests the way Slack sends them: signed, form-encoded or JSON."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlparse

from slack_bolt import App, BoltRequest, BoltResponse

from bot.blocks.kit import shown, unescape
from tests.slack_contract import check_message

TEAM = "T0TEST"
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    base = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": str(timestamp), "x-slack-signature": f"v0={digest}"}


def request(body: str, content_type: str, now: datetime, *, secret: str = SIGNING_SECRET,
            extra_headers: dict[str, str] | None = None) -> BoltRequest:
    headers = {"content-type": content_type, **sign(body, int(now.timestamp()), secret),
               **(extra_headers or {})}
    return BoltRequest(body=body, headers={k: [v] for k, v in headers.items()})


def slash_body(text: str, user: str = "U0SALES01", channel: str = "C0HANDOFF1",
               slack_host: str = "hooks.slack.invalid") -> str:
    return urlencode({
        "token": "legacy", "team_id": TEAM, "team_domain": "test", "channel_id": channel,
        "channel_name": "handoff", "user_id": user, "user_name": user, "command": "/align",
        "text": text, "api_app_id": "A0TEST", "trigger_id": "111.222.trigger",
        "response_url": f"https://{slack_host}/respond/{channel}/-/{user}",
    })


def slash(app: App, text: str, now: datetime, **kw) -> BoltResponse:
    """`/align text` sent to the app; a later reply through its response_url reaches the
    fake Slack the app's client talks to."""
    host = urlparse(app.client.base_url).hostname
    return app.dispatch(request(slash_body(text, slack_host=host, **kw),
                                "application/x-www-form-urlencoded", now))


def event_body(event: dict[str, Any], event_id: str) -> str:
    return json.dumps({
        "token": "legacy", "team_id": TEAM, "api_app_id": "A0TEST", "event": event,
        "type": "event_callback", "event_id": event_id, "event_time": 1764000000,
        "authorizations": [{"team_id": TEAM, "user_id": "U0ALIGNBOT", "is_bot": True}],
    })


def send_event(app: App, event: dict[str, Any], event_id: str, now: datetime,
               retry: int | None = None) -> BoltResponse:
    extra = {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"} if retry else None
    return app.dispatch(request(event_body(event, event_id), "application/json", now,
                                extra_headers=extra))


def reply(resp: BoltResponse) -> dict[str, Any]:
    """The message a slash command answered with (what the user sees), within Slack's limits
    (an answer Slack refuses is one the user never sees)."""
    assert resp.status == 200, (resp.status, resp.body)
    message = json.loads(resp.body)
    if message.get("blocks"):
        check_message(message)
    return message


def all_text(message: dict[str, Any]) -> str:
    """Everything a reader sees in a message: fallback text plus every block's text, as Slack
    shows them (mrkdwn unescaped)."""
    parts = [unescape(message.get("text") or "")]
    for block in message.get("blocks") or []:
        if isinstance(block.get("text"), dict):
            parts.append(shown(block["text"]))
        parts.extend(shown(f) for f in block.get("fields", []))
        for e in block.get("elements", []):
            if e.get("type") in ("mrkdwn", "plain_text"):  # a context's texts
                parts.append(shown(e))
            elif isinstance(e.get("text"), dict):  # a button's label
                parts.append(shown(e["text"]))
    return "\n".join(parts)


def click(app: App, fake, msg, action_id: str, user: str, now: datetime,
          selected_user: str | None = None) -> BoltResponse:
    """A signed click on a message the fake Slack holds, as Slack would send it."""
    payload = fake.block_action(msg, action_id, user, trigger_id="111.222.trigger",
                                selected_user=selected_user)
    return app.dispatch(request(urlencode({"payload": json.dumps(payload)}),
                                "application/x-www-form-urlencoded", now))


def submit(app: App, fake, view: dict[str, Any], user: str, answers: dict[str, str],
           now: datetime) -> BoltResponse:
    payload = fake.view_submission(view, user, answers)
    return app.dispatch(request(urlencode({"payload": json.dumps(payload)}),
                                "application/x-www-form-urlencoded", now))
