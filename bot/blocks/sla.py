"""Builders for SLA nudges: reminder, breach notice, escalation, and leads without an owner."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot.blocks.handoff import FIRST_TOUCH, OPEN_CARD, SUMMARY_MAX, TAKE, CardView, when
from bot.blocks.kit import actions, button, clip, context, escape, json_clip, mention, section

SNOOZE = "sla.snooze"
WORKING = "sla.working"
ACTION_IDS = (SNOOZE, WORKING)
UNOWNED_LINES = 10  # leads listed by name in one message about leads without an owner
REMINDER_LEADS = 10  # leads shown, each with its buttons, in one person's reminder (22 blocks)
ESCALATION_LEADS = SUMMARY_MAX  # leads in one escalation message, a line and a button each
ESCALATION_LINE = 220  # a line's text as JSON: 25 lines and their buttons stay within 13,000


def _who(v: CardView) -> str:
    return f"*{escape(v.name or v.external_id)}* ({escape(v.company or 'unknown company')})"


def numbered(action_id: str) -> re.Pattern[str]:
    """A nudge button's action id, bare or numbered (`sla.snooze.3`): Slack wants each
    action id once in a message, and one DM may hold several leads' buttons."""
    return re.compile(rf"^{re.escape(action_id)}(\.[0-9]+)?$")


def _buttons(v: CardView, n: int = 0) -> dict[str, Any]:
    """The `n`th lead's buttons in its message (the first's ids are bare)."""
    ids = [f"{a}.{n}" if n else a for a in (FIRST_TOUCH, SNOOZE, WORKING)]
    return actions(button("Log first touch", ids[0], v.token, style="primary"),
                   button("Snooze 30 min", ids[1], v.token),
                   button("Working on it", ids[2], v.token), block_id=f"nudge-{v.token}")


def reminder(v: CardView) -> dict[str, Any]:
    text = f":hourglass_flowing_sand: {_who(v)} is due {when(v.sla_due_at)} — reach out before then."
    return {"text": f"Reminder: lead {escape(v.external_id)} is due soon",
            "blocks": [section(text), _buttons(v)]}


def reminders(views: list[CardView], total: int) -> dict[str, Any]:
    """One person's reminders that fell due together, in one DM: the first `REMINDER_LEADS`
    (soonest due first) each with its buttons, and how many more."""
    if total == 1:
        return reminder(views[0])
    blocks = [section(f":hourglass_flowing_sand: *{total} of your leads* are due soon — reach "
                      "out before then.")]
    for n, v in enumerate(views[:REMINDER_LEADS]):
        blocks += [section(f"{_who(v)} is due {when(v.sla_due_at)}."), _buttons(v, n)]
    if total > REMINDER_LEADS:
        blocks.append(context(f"…and {total - REMINDER_LEADS} more: `/align leads mine` lists them."))
    return {"text": f"Reminder: {total} of your leads are due soon", "blocks": blocks}


def breach(v: CardView, *, to_owner: bool) -> dict[str, Any]:
    whose = "Your lead" if to_owner else f"{mention(v.owner)}'s lead" if v.owner else "The lead"
    text = (f":red_circle: {whose} {_who(v)} passed its SLA ({escape(v.sla_policy)}, due "
            f"{when(v.sla_due_at)}) without a first touch.")
    blocks = [section(text), _buttons(v)] if to_owner else [section(text)]
    return {"text": f"SLA breached: lead {escape(v.external_id)}", "blocks": blocks}


def breaches(views: list[CardView], total: int, *, to_owner: bool) -> dict[str, Any]:
    """One person's breach notices that fell due together, in one DM: the first
    `REMINDER_LEADS` (soonest due first), the owner's each with its buttons, and how many
    more. A manager's lists whose leads they are."""
    if total == 1:
        return breach(views[0], to_owner=to_owner)
    whose = "your leads" if to_owner else "your team's leads"
    blocks = [section(f":red_circle: *{total} of {whose}* passed their SLA without a first touch.")]
    for n, v in enumerate(views[:REMINDER_LEADS]):
        owner = "" if to_owner else f"{mention(v.owner)}'s lead " if v.owner else ""
        blocks.append(section(f"{owner}{_who(v)} was due {when(v.sla_due_at)} "
                              f"({escape(v.sla_policy)})."))
        if to_owner:
            blocks.append(_buttons(v, n))
    if total > REMINDER_LEADS:
        blocks.append(context(f"…and {total - REMINDER_LEADS} more: `/align leads overdue` "
                              "lists them."))
    return {"text": f"SLA breached: {total} of {whose}", "blocks": blocks}


def _late(v: CardView, now: datetime) -> int:
    return int((now - v.sla_due_at).total_seconds() // 60) if v.sla_due_at else 0


def _owner(v: CardView) -> str:
    return mention(v.owner) if v.owner else "nobody"


def escalation(v: CardView, now: datetime) -> dict[str, Any]:
    late = _late(v, now)
    text = (f":rotating_light: {_who(v)} is {late} minutes past its SLA; owner {_owner(v)}. "
            f"`/align lead {escape(v.external_id)}` to act on it.")
    return {"text": f"Escalation: lead {escape(v.external_id)} is {late} minutes late",
            "blocks": [section(text)]}


def escalations(views: list[CardView], now: datetime, *, first: int = 1,
                total: int | None = None) -> dict[str, Any]:
    """Leads escalated together, in one message (at most `ESCALATION_LEADS`): each named
    with how late it is, its owner and an *Open card* button, most overdue first. A
    sweep's longer list is several such messages: `first` is this one's first lead's
    number in it, of `total`."""
    total = total or len(views)
    if total == 1:
        return escalation(views[0], now)

    def line(v: CardView) -> dict[str, Any]:  # the name clipped first: the rest must show
        who = json_clip(f"*{escape(clip(v.name or v.external_id, 60))}* "
                        f"({escape(clip(v.company or 'unknown company', 60))})", 130)
        text = json_clip(f"{who} · {_late(v, now)} min late · owner {_owner(v)} · "
                         f"`{escape(clip(v.external_id, 40))}`", ESCALATION_LINE)
        return section(text, accessory=button("Open card", f"{OPEN_CARD}.{v.lead_id}", v.token),
                       block_id=f"escalated-{v.lead_id}")
    part = f" ({first}–{first + len(views) - 1} of {total})" if len(views) < total else ""
    blocks = [section(f":rotating_light: *{total} leads* are past their SLA without a first "
                      f"touch{part}:"), *map(line, views),
              context("Open a card to reassign the lead or log its first touch; "
                      "`/align leads overdue` lists them all.")]
    return {"text": f"Escalation: {total} leads are past their SLA{part}", "blocks": blocks}


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
