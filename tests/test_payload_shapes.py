"""Slack's own recorded payloads are the oracle for the requests we fabricate
(in tests and in the shell): ours must carry every field the real ones do."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from bot.blocks.kit import actions, button, message, section
from bot.platform import outbox
from tests import slack_contract
from tests.shelltools import run
from tests.slack import sign, slash_body

ENTERPRISE = {"enterprise_id", "enterprise_name", "is_enterprise_install"}


def load(name: str):
    text = (slack_contract.contracts_dir() / "payloads" / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


def test_signing_matches_slacks_known_answer():
    vector = load("signature_test_vector.json")
    body = load(vector["body_file"])
    headers = sign(body, int(vector["x_slack_request_timestamp"]), vector["signing_secret"])
    assert headers["x-slack-signature"] == vector["x_slack_signature"]


@pytest.mark.parametrize("recorded", ["slash_command.bolt.form", "slash_command.slack-docs.form"])
def test_our_slash_commands_carry_slacks_fields(recorded):
    real = {k for k, _ in parse_qsl(load(recorded))} - ENTERPRISE - {"is_enterprise_install"}
    ours = {k for k, _ in parse_qsl(slash_body("help"))}
    assert real <= ours, real - ours


@pytest.fixture
def shell_with_button(shell):
    with shell.services.transaction() as session:
        outbox.post(session, shell.services.team_id, "C0HANDOFF1",
                    message("card", [section("card"), actions(button("Go", "test.go", "v"))]),
                    now=shell.clock.now())
    shell.flush()
    return shell


def _shape_diff(real: dict, ours: dict, path: str = "") -> list[str]:
    missing = []
    for key, value in real.items():
        if key in ENTERPRISE or key == "authed_users":  # replaced by `authorizations` today
            continue
        if key not in ours:
            missing.append(path + key)
        elif isinstance(value, dict) and isinstance(ours[key], dict):
            missing += _shape_diff(value, ours[key], f"{path}{key}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict) and ours[key]:
            missing += _shape_diff(value[0], ours[key][0], f"{path}{key}[0].")
    return missing


def test_shell_clicks_look_like_slacks_block_actions(shell_with_button):
    seen = []
    shell_with_button.app.action("test.go")(lambda ack, body: (ack(), seen.append(body)))
    run(shell_with_button, "click test.go 1")
    real = load("block_actions.json")
    real["container"].pop("is_ephemeral", None)
    assert _shape_diff(real, seen[0]) == []


def test_shell_clicks_on_an_ephemeral_answer_look_like_slacks(shell):
    """Slack's recorded click is on an ephemeral message: the same fields, and no more (no
    copy of the message, which Slack does not send for those)."""
    seen = []
    shell.app.command("/test")(lambda ack: ack(**message("card", [
        section("card"), actions(button("Go", "test.go", "v"))])))
    shell.app.action("test.go")(lambda ack, body: (ack(), seen.append(body)))
    run(shell, "/test", "click test.go 1")
    real = load("block_actions.json")
    assert _shape_diff(real, seen[0]) == [] and set(seen[0]) == set(real)
    assert seen[0]["container"]["is_ephemeral"] is True


@pytest.mark.parametrize(("line", "event"), [("react two 1", "reaction_added"),
                                              ("unreact two 1", "reaction_removed")])
def test_shell_reactions_look_like_slacks_reaction_added(shell_with_button, line, event):
    """reaction_removed has reaction_added's shape (Slack's docs), its type aside."""
    real = load("event_reaction_added.json")
    real["event"]["type"] = event
    seen = bodies(shell_with_button, line)[0]
    assert seen["event"]["type"] == event
    assert _shape_diff(real, seen) == []


def bodies(shell, line: str) -> list[dict]:
    """Every request body the app received while the shell ran `line`."""
    seen = []

    @shell.app.middleware
    def capture(body, next):  # noqa: A002 - Bolt injects by this name
        seen.append(body)
        return next()

    run(shell, line)
    return seen


def test_shell_mentions_look_like_slacks_app_mention(shell):
    assert _shape_diff(load("event_app_mention.json"), bodies(shell, "@alignbot help")[0]) == []


def test_shell_home_opens_look_like_slacks_app_home_opened(shell):
    real = load("event_app_home_opened.home_tab.json")
    assert _shape_diff(real, bodies(shell, "home")[0]) == []
