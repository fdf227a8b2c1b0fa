"""Failures that are not bugs: the database away or busy, Slack refusing the bot token.

Each is told in one line an operator can act on, never a driver's traceback (that only at
DEBUG), and what failed is tried again later: the sender and the jobs by themselves, a
person's click or command when they try again, as the error handler asks them to.
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from storage.db import DatabaseUnreachable

# Slack's answers that mean the token itself is no good (revoked, the app uninstalled, the
# installing user deactivated): every call fails alike until the app is reinstalled.
TOKEN_REFUSED = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired",
                           "account_inactive"})


def token_refused(exc: BaseException) -> str | None:
    """Slack's error, when `exc` is Slack refusing the bot token."""
    if isinstance(exc, SlackApiError) and isinstance(exc.response.data, dict):
        error = exc.response.data.get("error")
        return error if error in TOKEN_REFUSED else None
    return None


def token_line(error: str, team_id: str | None) -> str:
    return (f"Slack refuses the bot token of workspace {team_id or '?'} ({error}): reinstall "
            "the app there and give alignbot its new token")


def one_line(exc: BaseException, team_id: str | None) -> str | None:
    """The line to log instead of a traceback; None for anything else (a bug: traceback)."""
    if isinstance(exc, DatabaseUnreachable):  # DatabaseBusy too
        return str(exc)
    if error := token_refused(exc):
        return token_line(error, team_id)
    return None
