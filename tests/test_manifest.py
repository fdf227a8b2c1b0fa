"""The app manifest against Slack's own manifest schema and Events API catalog."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from slack_bolt import App

from bot.app import create_app
from bot.features import FEATURES
from bot.platform.descriptor import Features
from bot.platform.manifest import COMMAND, build_manifest, manifest_json
from tests import slack_contract
from tests.slack import send_event

URL = "https://bot.example.com"
EVENTS, SCOPES = FEATURES.events, FEATURES.scopes


@pytest.mark.parametrize("request_url", [None, URL, URL + "/"])
def test_manifest_validates_against_slack_schema(request_url):
    assert slack_contract.manifest_errors(build_manifest(FEATURES, request_url=request_url)) == []


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_oracle_accepts_the_schemas_valid_example(version):
    example = slack_contract.load(f"manifest/examples/{version}/manifest.valid.json")
    assert slack_contract.manifest_errors(example) == []


@pytest.mark.parametrize(("version", "cause"), [
    ("v1", "'bad_param' was unexpected"),
    ("v2", "'properties' is a required property"),
])
def test_oracle_rejects_the_schemas_invalid_example_for_the_right_reason(version, cause):
    example = slack_contract.load(f"manifest/examples/{version}/manifest.invalid.json")
    errors = slack_contract.manifest_errors(example)
    assert len(errors) == 1 and cause in errors[0], errors


def test_oracle_checks_inside_the_referenced_v1_schema():
    manifest = build_manifest(FEATURES, name="x" * 36)
    manifest["features"]["slash_commands"][0]["command"] = "align"
    errors = "\n".join(slack_contract.manifest_errors(manifest))
    assert "$.display_information.name" in errors
    assert "$.features.slash_commands[0].command" in errors


def test_socket_mode_by_default():
    manifest = build_manifest(FEATURES)
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert "request_url" not in settings["event_subscriptions"]
    assert "request_url" not in settings["interactivity"]
    assert "url" not in manifest["features"]["slash_commands"][0]
    assert "redirect_urls" not in manifest["oauth_config"]


def test_http_mode_points_everything_at_the_bolt_endpoints():
    manifest = build_manifest(FEATURES, request_url=URL + "/")
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["event_subscriptions"]["request_url"] == URL + "/slack/events"
    assert settings["interactivity"] == {"is_enabled": True, "request_url": URL + "/slack/events"}
    assert manifest["features"]["slash_commands"][0]["url"] == URL + "/slack/events"
    assert manifest["oauth_config"]["redirect_urls"] == [URL + "/slack/oauth_redirect"]


def test_every_bot_event_exists_in_slacks_catalog():
    events = build_manifest(FEATURES)["settings"]["event_subscriptions"]["bot_events"]
    assert set(events) <= slack_contract.events_catalog(), set(events) - slack_contract.events_catalog()


def test_every_bot_event_has_the_scopes_it_needs():
    needed = {scope for event in EVENTS for scope in slack_contract.scopes_for_events()[event]}
    assert needed <= set(SCOPES), needed - set(SCOPES)


def test_has_the_align_command():
    commands = build_manifest(FEATURES)["features"]["slash_commands"]
    assert [c["command"] for c in commands] == ["/align"]
    assert commands[0]["should_escape"] is False
    assert "metric win rate last quarter" in commands[0]["usage_hint"]


def test_scopes_cover_email_lookup():
    assert "users:read.email" in build_manifest(FEATURES)["oauth_config"]["scopes"]["bot"]


def test_scope_and_event_lists_have_no_duplicates():
    assert len(set(EVENTS)) == len(EVENTS)


def registered_events(services, monkeypatch) -> list[str]:
    """The event types the app's listeners are registered for."""
    seen = []
    register = App.event

    def event(self, kind, *args, **kwargs):
        seen.append(kind)
        return register(self, kind, *args, **kwargs)
    monkeypatch.setattr(App, "event", event)
    create_app(services)
    monkeypatch.undo()
    return seen


@pytest.mark.parametrize("feature", FEATURES.all, ids=lambda f: f.name)
def test_each_feature_subscribes_to_the_events_its_own_listeners_handle(
        services, monkeypatch, feature):
    """A feature's events are declared beside its listeners: none missing, none spare."""
    services.features = Features([feature])
    declared = {e.split(".")[0] for e in feature.events}  # message.im arrives as `message`
    assert set(registered_events(services, monkeypatch)) == declared


def test_the_manifest_asks_for_the_features_scopes_and_events_and_nothing_else():
    manifest = build_manifest(FEATURES)
    assert manifest["oauth_config"]["scopes"]["bot"] == list(SCOPES)
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == list(EVENTS)
    assert set(SCOPES) == {s for f in FEATURES.all for s in f.scopes}
    assert set(EVENTS) == {e for f in FEATURES.all for e in f.events}


def test_every_subscribed_event_has_a_listener_and_every_listener_a_subscription(
        services, monkeypatch):
    subscribed = {e.split(".")[0] for e in EVENTS}  # message.im arrives as a `message` event
    assert set(registered_events(services, monkeypatch)) == subscribed


@pytest.mark.parametrize("kind", EVENTS)
def test_every_subscribed_event_is_handled(app, clock, kind, caplog):
    event = {"type": kind.split(".")[0], "user": {"id": "U0SALES01"} if kind == "user_change"
             else "U0SALES01", "channel": "D0SALES01", "channel_type": "im", "text": "help",
             "tab": "messages", "ts": "1764000000.000100", "event_ts": "1764000000.000100"}
    assert send_event(app, event, f"Ev-{kind}", clock.now()).status == 200
    assert "Unhandled request" not in caplog.text


# Slack SDK helpers that call other methods than their name says
SDK_HELPERS = {"files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}


def methods_the_code_calls() -> set[str]:
    """Web API methods named in the source: `client.chat_postEphemeral(...)` and the
    outbox's `"chat.postMessage"` rows."""
    known = slack_contract.known_methods()
    root = Path(__file__).resolve().parents[1]
    source = "\n".join(p.read_text() for folder in ("bot", "handlers")
                       for p in (root / folder).rglob("*.py") if p.name != "fakeslack.py")
    called = {m.replace("_", ".") for m in re.findall(r"\.([a-z]+(?:_[a-zA-Z]+)+)\(", source)}
    called |= set(re.findall(r'"([a-z]+\.[a-zA-Z]+)"', source))
    for helper, methods in SDK_HELPERS.items():
        if f".{helper}(" in source:
            called |= set(methods)
    return called & known.keys()


def test_every_scope_is_needed_by_what_the_bot_does():
    """No scope for a feature that does not exist yet: each one's users are a subscribed
    event, the slash command, or a Web API method the code calls."""
    used = methods_the_code_calls() | set(EVENTS) | {COMMAND}
    unused = {scope: users for scope, users in SCOPES.items() if not set(users) <= used}
    assert unused == {}


def test_no_scope_for_channel_checks_that_do_not_exist():
    assert not {"channels:read", "groups:read", "im:read"} & set(SCOPES)


def test_the_descriptions_promise_only_what_exists():
    manifest = json.dumps(build_manifest(FEATURES)).lower()
    assert "survey" in manifest and "digest" not in manifest


def test_manifest_json_is_the_manifest():
    assert json.loads(manifest_json(FEATURES, request_url=URL)) == build_manifest(FEATURES, request_url=URL)
    assert json.loads(manifest_json(FEATURES, name="alignbot-dev"))["display_information"]["name"] == "alignbot-dev"


def test_cli_prints_a_valid_manifest(capsys):
    from bot.cli import main

    assert main(["manifest", "--url", "https://bot.example.com"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert slack_contract.manifest_errors(printed) == []
    assert printed["settings"]["event_subscriptions"]["request_url"] == \
        "https://bot.example.com/slack/events"
