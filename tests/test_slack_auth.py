"""Slack's requests over HTTP (bot/platform/server.py, Bolt's Flask adapter): nothing is read, answered
or logged before its signature is checked, with Slack's own recorded payloads."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

import pytest

from bot.app import create_app
from bot.platform.server import create_web_app
from tests import slack_contract
from tests.conftest import Inline
from tests.slack import sign

FORM, JSON = "application/x-www-form-urlencoded", "application/json"


def _payload(name: str) -> tuple[str, str]:
    """A recorded payload as Slack sends it: its body and content type."""
    text = (slack_contract.contracts_dir() / "payloads" / name).read_text()
    if name.endswith(".form"):
        return text, FORM
    if json.loads(text).get("type") in ("block_actions", "view_submission", "shortcut"):
        return urlencode({"payload": text}), FORM  # interactivity: a form with one field
    return text, JSON


PAYLOADS = ["url_verification.json", "slash_command.bolt.form", "block_actions.json",
            "view_submission.json", "event_app_mention.json", "shortcut.json"]


def _leaves(body: str, content_type: str) -> set[str]:
    """Every value the body carries that could show up in a log line."""
    found: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and len(value) >= 4:
            found.add(value)

    if content_type == JSON:
        walk(json.loads(body))
    else:
        for _, value in parse_qsl(body):
            walk(json.loads(value) if value.startswith("{") else value)
    return found


@pytest.fixture
def web(services, caplog):
    caplog.set_level(logging.DEBUG)  # first: Bolt's loggers take the root's level when made
    return create_web_app(services, create_app(services, after_ack=Inline())).test_client()


def _bad_headers(body: str, now: int) -> dict[str, dict[str, str]]:
    good = sign(body, now)
    digest = good["x-slack-signature"]
    return {
        "unsigned": {},
        "no timestamp": {"x-slack-signature": digest},
        "no signature": {"x-slack-request-timestamp": str(now)},
        "wrong secret": sign(body, now, "not-the-secret"),
        "stale": sign(body, now - 301),
        "from the future": sign(body, now + 301),
        "timestamp abc": {**good, "x-slack-request-timestamp": "abc"},
        "timestamp empty": {**good, "x-slack-request-timestamp": ""},
        "timestamp of 309 digits": {**good, "x-slack-request-timestamp": "9" * 309},
        "timestamp 1e9": {**good, "x-slack-request-timestamp": "1e9"},
        "timestamp non-ASCII digits": {**good, "x-slack-request-timestamp": "١٧٦٤"},
        "non-ASCII signature": {**good, "x-slack-signature": "v0=" + "é" * 64},
        "signature without v0=": {**good, "x-slack-signature": digest[3:]},
        "signature empty": {**good, "x-slack-signature": ""},
        "signature of another body": {**good, **sign(body + "x", now)},
    }


@pytest.mark.parametrize("name", PAYLOADS)
def test_every_malformed_or_wrong_signature_is_a_401_and_nothing_of_the_body_is_logged(
        web, clock, fake_slack, caplog, name):
    body, content_type = _payload(name)
    now = int(clock.now().timestamp())
    calls_before = len(fake_slack.calls)
    answered = {case: web.post("/slack/events", data=body,
                               headers={"Content-Type": content_type, **headers})
                for case, headers in _bad_headers(body, now).items()}
    assert {case: (resp.status_code, resp.get_data(as_text=True))
            for case, resp in answered.items() if resp.status_code != 401} == {}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not {leaf for leaf in _leaves(body, content_type) if leaf in logged}
    assert fake_slack.calls[calls_before:] == []  # nobody was answered or told anything


def test_a_signed_url_verification_gets_its_challenge(web, clock):
    body, content_type = _payload("url_verification.json")
    resp = web.post("/slack/events", data=body,
                    headers={"Content-Type": content_type,
                             **sign(body, int(clock.now().timestamp()))})
    assert resp.status_code == 200
    assert json.loads(body)["challenge"] in resp.get_data(as_text=True)


def test_a_request_signed_a_little_in_the_past_is_still_accepted(web, clock):
    body, content_type = _payload("url_verification.json")
    signed_at = clock.now() - timedelta(minutes=4)
    resp = web.post("/slack/events", data=body,
                    headers={"Content-Type": content_type, **sign(body, int(signed_at.timestamp()))})
    assert resp.status_code == 200


MALFORMED = {"JSON nested 100,000 deep": ("[" * 100_000, JSON),
             "not JSON": ("{nope", JSON),
             "JSON but a list": ("[1, 2]", JSON),
             "not UTF-8": (b"\xff\xfe{", JSON),
             "a form whose payload is not JSON": ("payload=%7Bnope", FORM),
             "a form whose payload is nested 100,000 deep": ("payload=" + "%5B" * 100_000, FORM)}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_body_nobody_can_read_is_a_401_unsigned_and_a_400_signed(web, clock, case):
    body, content_type = MALFORMED[case]
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    unsigned = web.post("/slack/events", data=body, headers={"Content-Type": content_type})
    assert unsigned.status_code == 401
    signed = web.post("/slack/events", data=body, headers={
        "Content-Type": content_type, **sign(text, int(clock.now().timestamp()))})
    assert signed.status_code == 400
