"""The Slack app manifest (v1) for one-click app creation: `alignbot manifest [--url URL]`.

Without a URL the app uses Socket Mode (no public endpoint); with one, Slack sends
events, interactions and slash commands to `<url>/slack/events` and OAuth installs
return to `<url>/slack/oauth_redirect`.
"""

from __future__ import annotations

import json
from typing import Any

EVENTS_PATH = "/slack/events"
OAUTH_REDIRECT_PATH = "/slack/oauth_redirect"

DESCRIPTION = ("Keeps sales and marketing aligned: lead handoff, SLA nudges, pulse surveys, "
               "shared metrics.")
COMMAND = "/align"
COMMAND_DESCRIPTION = "Leads, pulse surveys and shared sales & marketing metrics"
USAGE_HINT = (
    "help | lead <id> | leads mine | metric win rate last quarter | survey status | export ..."
)

# Bot token scopes, each with the Web API methods, events or command that need it; nothing
# for features that do not exist.
SCOPES: dict[str, tuple[str, ...]] = {
    "app_mentions:read": ("app_mention",),  # @mention questions
    "chat:write": ("chat.postMessage", "chat.update", "chat.postEphemeral"),  # cards, nudges
    "chat:write.public": ("chat.postMessage",),  # cards in channels the bot was not invited to
    "commands": (COMMAND,),
    "im:history": ("message.im", "conversations.history"),  # DM questions; a DM whose answer was lost
    "im:write": ("conversations.open",),  # the DM a private answer's file goes to
    "users:read": ("user_change", "users.info"),  # deactivations, timezones; survey audiences
    "users:read.email": ("users.lookupByEmail",),  # CRM owner emails to Slack users
    "files:write": ("files.getUploadURLExternal", "files.completeUploadExternal"),  # CSV, PNG
    "reactions:read": ("reaction_added", "reaction_removed"),  # emoji answers to survey prompts
    "usergroups:read": ("usergroups.users.list",),  # survey audiences from Slack user groups
    # finding a post whose answer was lost, instead of posting it twice (see bot/platform/sender.py)
    "channels:history": ("conversations.history", "conversations.replies"),
    "groups:history": ("conversations.history", "conversations.replies"),
}

# Bot events, each with the feature that needs it; each has a listener in handlers/.
EVENTS: tuple[str, ...] = (
    "app_home_opened",  # rendering the App Home tab
    "app_mention",  # @mention metric questions
    "reaction_added",  # emoji answers to survey prompts
    "reaction_removed",  # withdrawing an emoji answer
    "user_change",  # deactivations and timezone changes for routing and nudges
    "message.im",  # questions sent to the bot by DM
)


def build_manifest(*, name: str = "alignbot", request_url: str | None = None) -> dict[str, Any]:
    """The manifest dict; Socket Mode when `request_url` is None, HTTP mode otherwise."""
    base = request_url.rstrip("/") if request_url else None
    manifest: dict[str, Any] = {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": DESCRIPTION,
            "background_color": "#1f3a5f",
        },
        "features": _features(base),
        "oauth_config": {"scopes": {"bot": list(SCOPES)}},
        "settings": _settings(base),
    }
    if base:
        manifest["oauth_config"]["redirect_urls"] = [base + OAUTH_REDIRECT_PATH]
    return manifest


def manifest_json(**kw: Any) -> str:
    """The manifest as pretty JSON, ready to paste into api.slack.com/apps."""
    return json.dumps(build_manifest(**kw), indent=2)


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


def _settings(base: str | None) -> dict[str, Any]:
    events: dict[str, Any] = {"bot_events": list(EVENTS)}
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
