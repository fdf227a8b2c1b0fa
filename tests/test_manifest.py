"""The app manifest against Slack's own manifest schema and Events API catalog."""

from __future__ import annotations

import json

import pytest

from bot.manifest import EVENTS, SCOPES, build_manifest, manifest_json
from tests import slack_contract

URL = "https://bot.example.com"


@pytest.mark.parametrize("request_url", [None, URL, URL + "/"])
def test_manifest_validates_against_slack_schema(request_url):
    assert slack_contract.manifest_errors(build_manifest(request_url=request_url)) == []


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
    manifest = build_manifest(name="x" * 36)
    manifest["features"]["slash_commands"][0]["command"] = "align"
    errors = "\n".join(slack_contract.manifest_errors(manifest))
    assert "$.display_information.name" in errors
    assert "$.features.slash_commands[0].command" in errors


def test_socket_mode_by_default():
    manifest = build_manifest()
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert "request_url" not in settings["event_subscriptions"]
    assert "request_url" not in settings["interactivity"]
    assert "url" not in manifest["features"]["slash_commands"][0]
    assert "redirect_urls" not in manifest["oauth_config"]


def test_http_mode_points_everything_at_the_bolt_endpoints():
    manifest = build_manifest(request_url=URL + "/")
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["event_subscriptions"]["request_url"] == URL + "/slack/events"
    assert settings["interactivity"] == {"is_enabled": True, "request_url": URL + "/slack/events"}
    assert manifest["features"]["slash_commands"][0]["url"] == URL + "/slack/events"
    assert manifest["oauth_config"]["redirect_urls"] == [URL + "/slack/oauth_redirect"]


def test_every_bot_event_exists_in_slacks_catalog():
    events = build_manifest()["settings"]["event_subscriptions"]["bot_events"]
    assert set(events) <= slack_contract.events_catalog(), set(events) - slack_contract.events_catalog()


def test_every_bot_event_has_the_scopes_it_needs():
    needed = {scope for event in EVENTS for scope in slack_contract.scopes_for_events()[event]}
    assert needed <= set(SCOPES), needed - set(SCOPES)


def test_has_the_align_command():
    commands = build_manifest()["features"]["slash_commands"]
    assert [c["command"] for c in commands] == ["/align"]
    assert commands[0]["should_escape"] is False
    assert "metric win rate last quarter" in commands[0]["usage_hint"]


def test_scopes_cover_email_lookup():
    assert "users:read.email" in build_manifest()["oauth_config"]["scopes"]["bot"]


def test_scope_and_event_lists_have_no_duplicates():
    assert len(set(SCOPES)) == len(SCOPES)
    assert len(set(EVENTS)) == len(EVENTS)


def test_manifest_json_is_the_manifest():
    assert json.loads(manifest_json(request_url=URL)) == build_manifest(request_url=URL)
    assert json.loads(manifest_json(name="alignbot-dev"))["display_information"]["name"] == "alignbot-dev"


def test_cli_prints_a_valid_manifest(capsys):
    from bot.cli import main

    assert main(["manifest", "--url", "https://bot.example.com"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert slack_contract.manifest_errors(printed) == []
    assert printed["settings"]["event_subscriptions"]["request_url"] == \
        "https://bot.example.com/slack/events"
