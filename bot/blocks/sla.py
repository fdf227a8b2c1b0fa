"""Builders for SLA nudges: reminder, breach notice, escalation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.blocks.handoff import FIRST_TOUCH, CardView, when
from bot.blocks.kit import actions, button, escape, mention, section

SNOOZE = "sla.snooze"
WORKING = "sla.working"
ACTION_IDS = (SNOOZE, WORKING)


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
