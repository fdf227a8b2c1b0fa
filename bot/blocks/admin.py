"""Builders for admin replies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.blocks.kit import context, escape, mention, message, section


@dataclass(frozen=True)
class ConfigVerdict:
    """What `config check` found (bot.platform.admin)."""

    source: str
    problems: tuple[str, ...]
    secrets: dict[str, str]  # variable -> set | not set | its default
    summary: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.problems


def config_verdict(v: ConfigVerdict) -> dict[str, Any]:
    secrets = ", ".join(f"{escape(name)} {escape(state)}" for name, state in v.secrets.items())
    if v.ok:
        counts = ", ".join(f"{n} {escape(what)}" for what, n in v.summary.items())
        head = f":white_check_mark: `{escape(v.source)}` is valid ({counts})."
    else:
        head = f":x: `{escape(v.source)}` has {len(v.problems)} problem(s):\n" + "\n".join(
            _problem(p) for p in v.problems)
    return {"text": head, "blocks": [section(head), context(f"Secrets: {secrets}")]}


def _problem(problem: str) -> str:
    """"• `key`: what is wrong", quoting the file's own values."""
    key, colon, what = problem.partition(":")
    return f"• `{escape(key)}`:{escape(what)}" if colon else f"• {escape(problem)}"


def unmapped_owner(email: str) -> dict[str, Any]:
    """Told to the admins once per email the CRM gives as an owner that no Slack user has."""
    return message(f":warning: No Slack user has the email *{escape(email)}*, which the CRM gives "
                   "as a lead owner. Its leads wait in the handoff channel's queue. Add the person "
                   "under [[people]] in the config, or fix the owner in the CRM.")


def dead_letters(count: int, channel: str | None, since: datetime, errors: list[str],
                 latest: int) -> dict[str, Any]:
    """Told to each admin once per channel and hour (and rewritten as more die there): the
    messages to `channel` (None: the Home tabs) the outbox gave up on, with their first errors."""
    if channel is None:
        where = "Home tabs"
    elif channel.startswith(("U", "W")):
        where = mention(channel)
    else:
        where = f"<#{escape(channel)}>"
    return message(f":warning: {count} message{'' if count == 1 else 's'} to {where} could not be "
                   f"delivered to Slack since {since:%H:%M} UTC. First errors: "
                   f"{escape('; '.join(errors))}. They are kept in the outbox as dead rows "
                   f"(the latest is row {latest}).")
