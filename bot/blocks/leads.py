"""Builders for lead lists, a lead's detail, and the away confirmation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from bot.blocks.handoff import SLA_BADGE, CardView, handoff_card, when
from bot.blocks.kit import (
    MESSAGE_JSON,
    context,
    divider,
    escape,
    header,
    json_clip,
    mention,
    message,
    section,
)

HISTORY_LINES = 15  # the newest events; Slack caps a message at 50 blocks
HISTORY_JSON = 3_000  # 15 lines of ASCII fit twice over; the card under it gets the rest


@dataclass(frozen=True)
class LeadLine:
    external_id: str
    name: str | None
    company: str | None
    status: str
    owner: str | None
    due_at: datetime | None
    sla_state: str | None


def lead_detail(view: CardView, events: Sequence[Any]) -> dict[str, Any]:
    lines = [f"{when(e.at, '{date_short} {time}')} — {escape(e.kind)}"
             + (f" by {mention(e.actor)}" if e.actor.startswith(("U", "W")) else f" ({escape(e.actor)})")
             for e in events[-HISTORY_LINES:]]
    more = len(events) - HISTORY_LINES
    history = "*History*\n" + "\n".join(lines) + (f"\n…and {more} earlier" if more > 0 else "")
    below = [divider(), section(json_clip(history, HISTORY_JSON))]
    card = handoff_card(view, budget=MESSAGE_JSON - len(json.dumps(below)))
    return {"text": card["text"], "blocks": [*card["blocks"], *below]}


def lead_list(which: str, items: Sequence[LeadLine], page: int, per_page: int,
              total: int) -> dict[str, Any]:
    title = {"mine": "Your leads", "open": "Open leads", "overdue": "Overdue leads"}[which]
    pages = (total + per_page - 1) // per_page
    if not items:
        empty = "Nothing here." if not total else f"There is no page {page}: " + (
            "there is only 1 page." if pages == 1 else f"there are {pages} pages.")
        return {"text": f"{title}: {empty}", "blocks": [section(f"*{title}:* {empty}")]}
    blocks = [header(f"{title} ({total})")]
    blocks += [section(_line(i)) for i in items]
    if page < pages:
        blocks.append(context(f"Page {page} of {pages} — `/align leads {which} {page + 1}` "
                              "for the next."))
    text = f"{title} ({total}): " + ", ".join(escape(i.external_id) for i in items)
    return {"text": text, "blocks": blocks}


def _line(i: LeadLine) -> str:
    who = escape(i.name or i.external_id)
    company = f" ({escape(i.company)})" if i.company else ""
    owner = mention(i.owner) if i.owner else "unassigned"
    due = f" · due {when(i.due_at)} {SLA_BADGE.get(i.sla_state or '', '')}" if i.due_at else ""
    return f"`{escape(i.external_id)}` *{who}*{company} — {escape(i.status)} · {owner}{due}"


def no_lead(external_id: str) -> dict[str, Any]:
    return message(f"No lead `{escape(external_id)}`. Lead ids are the CRM's, e.g. `L-123`.")


def unknown_list(which: str) -> dict[str, Any]:
    return message(f"`/align leads {escape(which)}`? Try `mine`, `open` or `overdue`.")


def not_a_page(given: str, which: str) -> dict[str, Any]:
    return message(f"`{escape(given)}` is not a page number: `/align leads {escape(which)} 2` "
                   "shows the second page.")


def away_set(until: datetime | None, tz: tzinfo) -> dict[str, Any]:
    """`until`: the start of the day they said, in `tz`, named as plain text: Slack would
    show a date token in the reader's own zone, a day earlier west of `tz`."""
    if until is None:
        when_back = "until `/align back`"
    else:
        day = until.astimezone(tz)
        when_back = f"until {day:%A, %B} {day.day}"
    text = (f"You are away {when_back}: new leads go to others in your pool, but leads your CRM "
            "assigns to you by name still come to you.")  # an explicit owner wins (routing)
    return {"text": text, "blocks": [section(text)]}
