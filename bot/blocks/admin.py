"""Builders for admin replies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.blocks.kit import context, section

if TYPE_CHECKING:
    from bot.admin import ConfigVerdict


def config_verdict(v: ConfigVerdict) -> dict[str, Any]:
    secrets = ", ".join(f"{name} {state}" for name, state in v.secrets.items())
    if v.ok:
        counts = ", ".join(f"{n} {what}" for what, n in v.summary.items())
        head = f":white_check_mark: `{v.source}` is valid ({counts})."
    else:
        head = f":x: `{v.source}` has {len(v.problems)} problem(s):\n" + "\n".join(
            f"• `{p.split(':', 1)[0]}`:{p.split(':', 1)[1]}" if ":" in p else f"• {p}"
            for p in v.problems)
    return {"text": head, "blocks": [section(head), context(f"Secrets: {secrets}")]}
