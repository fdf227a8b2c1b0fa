"""The Slack app manifest (v1) for one-click app creation: `alignbot manifest [--url URL]`.

Without a URL the app uses Socket Mode (no public endpoint); with one, Slack sends
events, interactions and slash commands to `<url>/slack/events` and OAuth installs
return to `<url>/slack/oauth_redirect`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.platform.descriptor import Features

EVENTS_PATH = "/slack/events"
OAUTH_REDIRECT_PATH = "/slack/oauth_redirect"
INSTALL_PATH = "/slack/install"  # OAuth mode: where a workspace's admin starts installing

DESCRIPTION = ("Keeps sales and marketing aligned: lead handoff, SLA nudges, pulse surveys, "
               "shared metrics.")
COMMAND = "/align"
COMMAND_DESCRIPTION = "Leads, pulse surveys and shared sales & marketing metrics"
USAGE_HINT = (
    "help | lead <id> | leads mine | metric win rate last quarter | survey status | export ..."
)


def build_manifest(features: Features, *, name: str = "alignbot",
                   request_url: str | None = None) -> dict[str, Any]:
    """The manifest dict; Socket Mode when `request_url` is None, HTTP mode otherwise. Its
    scopes and events are the features' (bot/features.py): nothing for what does not exist."""
    base = request_url.rstrip("/") if request_url else None
    manifest: dict[str, Any] = {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": DESCRIPTION,
            "background_color": "#1f3a5f",
        },
        "features": _features(base),
        "oauth_config": {"scopes": {"bot": list(features.scopes)}},
        "settings": _settings(base, features.events),
    }
    if base:
        manifest["oauth_config"]["redirect_urls"] = [base + OAUTH_REDIRECT_PATH]
    return manifest


def manifest_json(features: Features, **kw: Any) -> str:
    """The manifest as pretty JSON, ready to paste into api.slack.com/apps."""
    return json.dumps(build_manifest(features, **kw), indent=2)


def _features(base: str | None) -> dict[str, Any]:
    command: dict[str, Any] = {
        "command": COMMAND,
        "description": COMMAND_DESCRIPTION,
        "usage_hint": USAGE_HINT,
        "should_escape": False,
    }
    if base:
        command["url"] = base + EVENTS_PATH
    return {
        "app_home": {
            "home_tab_enabled": True,
            "messages_tab_enabled": True,
            "messages_tab_read_only_enabled": False,
        },
        "bot_user": {"display_name": "alignbot", "always_online": True},
        "slash_commands": [command],
    }


def _settings(base: str | None, bot_events: tuple[str, ...]) -> dict[str, Any]:
    events: dict[str, Any] = {"bot_events": list(bot_events)}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if base:
        events["request_url"] = base + EVENTS_PATH
        interactivity["request_url"] = base + EVENTS_PATH
    return {
        "event_subscriptions": events,
        "interactivity": interactivity,
        "org_deploy_enabled": False,
        "socket_mode_enabled": base is None,
        "token_rotation_enabled": False,
    }
