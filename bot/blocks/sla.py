"""Builders for SLA nudges: reminder, breach notice, escalation, and leads without an owner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.blocks.handoff import FIRST_TOUCH, TAKE, CardView, when
from bot.blocks.kit import actions, button, context, escape, mention, section

SNOOZE = "sla.snooze"
WORKING = "sla.working"
ACTION_IDS = (SNOOZE, WORKING)
UNOWNED_LINES = 10  # leads listed by name in one message about leads without an owner


def _who(v: CardView) -> str:
    return f"*{escape(v.name or v.external_id)}* ({escape(v.company or 'unknown company')})"


def _buttons(v: CardView) -> dict[str, Any]:
    return actions(button("Log first touch", FIRST_TOUCH, v.token, style="primary"),
                   button("Snooze 30 min", SNOOZE, v.token),
                   button("Working on it", WORKING, v.token), block_id=f"nudge-{v.token}")


def reminder(v: CardView) -> dict[str, Any]:
    text = f":hourglass_flowing_sand: {_who(v)} is due {when(v.sla_due_at)} — reach out before then."
    return {"text": f"Reminder: lead {escape(v.external_id)} is due soon",
            "blocks": [section(text), _buttons(v)]}


def breach(v: CardView, *, to_owner: bool) -> dict[str, Any]:
    whose = "Your lead" if to_owner else f"{mention(v.owner)}'s lead" if v.owner else "The lead"
    text = (f":red_circle: {whose} {_who(v)} passed its SLA ({escape(v.sla_policy)}, due "
            f"{when(v.sla_due_at)}) without a first touch.")
    blocks = [section(text), _buttons(v)] if to_owner else [section(text)]
    return {"text": f"SLA breached: lead {escape(v.external_id)}", "blocks": blocks}


def escalation(v: CardView, now: datetime) -> dict[str, Any]:
    late = int((now - v.sla_due_at).total_seconds() // 60) if v.sla_due_at else 0
    owner = mention(v.owner) if v.owner else "nobody"
    text = (f":rotating_light: {_who(v)} is {late} minutes past its SLA; owner {owner}. "
            f"`/align lead {escape(v.external_id)}` to act on it.")
    return {"text": f"Escalation: lead {escape(v.external_id)} is {late} minutes late",
            "blocks": [section(text)]}


def unassigned(views: list[CardView]) -> dict[str, Any]:
    """Leads still without an owner when due one: one message for all that fell due together."""
    def why(v: CardView) -> str:
        retry = f"; routing tries again {when(v.retry_at)}" if v.retry_at else ""
        return f"{escape(v.unassigned_reason or 'nobody took it')}{retry}"

    if len(views) == 1:
        v = views[0]
        text = (f":rotating_light: {_who(v)} still has no owner: {why(v)}. Take it, or assign it "
                f"from its card (`/align lead {escape(v.external_id)}`).")
        return {"text": f"Unassigned: lead {escape(v.external_id)} still has no owner",
                "blocks": [section(text), actions(button("Take it", TAKE, v.token, style="primary"),
                                                  block_id=f"unowned-{v.token}")]}
    lines = [f"• {_who(v)} (`{escape(v.external_id)}`): {why(v)}" for v in views[:UNOWNED_LINES]]
    blocks = [section(f":rotating_light: *{len(views)} leads* still have no owner:\n"
                      + "\n".join(lines))]
    if len(views) > UNOWNED_LINES:
        blocks.append(context(f"…and {len(views) - UNOWNED_LINES} more."))
    blocks.append(context("Take or assign them from their cards; `/align leads overdue` lists them."))
    return {"text": f"Unassigned: {len(views)} leads still have no owner", "blocks": blocks}
