"""Builders for the App Home tab: the person's open leads, the team scorecard, the footer.

Times are `<!date>` tokens (Slack shows each reader their own timezone) whose fallback
text is in the person's timezone too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from bot.blocks import metrics
from bot.blocks.handoff import SLA_BADGE, when
from bot.blocks.kit import Block, context, divider, escape, header, section
from bot.blocks.leads import LeadLine

if TYPE_CHECKING:
    from bot.metrics.answers import Answer

MAX_BLOCKS = 100  # Slack's limit for a Home tab (a message: 50)
NO_LEADS = "Nothing is waiting for you. New leads show up here as they are routed to you."


def home_view(sections: Sequence[Sequence[Block]]) -> dict[str, Any]:
    """The Home tab: the non-empty sections in order, a divider between two. Each section
    keeps itself small; the cut at Slack's limit is the last resort, because Slack refuses
    a view over it whole."""
    blocks: list[Block] = []
    for part in filter(None, sections):
        blocks += [divider(), *part] if blocks else list(part)
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}


def open_leads(leads: Sequence[LeadLine], total: int, tz: tzinfo) -> list[Block]:
    """The person's leads awaiting a first touch, as given (oldest due first); the `total`
    beyond them is counted, with where to see them all."""
    if not total:
        return [header("Your open leads"), section(NO_LEADS)]
    blocks = [header(f"Your open leads ({total})"), *(section(_lead(lead, tz)) for lead in leads)]
    if total > len(leads):
        blocks.append(context(f"…and {total - len(leads)} more — `/align leads mine`"))
    return blocks


def _lead(lead: LeadLine, tz: tzinfo) -> str:
    company = f" ({escape(lead.company)})" if lead.company else ""
    due = f"due {when(lead.due_at, tz=tz)} {SLA_BADGE.get(lead.sla_state or '', '')}".rstrip() \
        if lead.due_at else "no SLA"
    return (f"`{escape(lead.external_id)}` *{escape(lead.name or lead.external_id)}*{company} — "
            f"{escape(lead.status)} · {due}")


def scorecard(answers: Sequence[Answer], currency: str) -> list[Block]:
    """What `/align scorecard` answers: every metric against its target, with its trend."""
    return metrics.scorecard(answers, currency)["blocks"]


def footer(now: datetime, tz: tzinfo) -> list[Block]:
    """When the Home was drawn (the scorecard says how fresh its own numbers are)."""
    return [context(f"Updated {when(now, tz=tz)}; your leads update here as they change. "
                    "`/align help` lists everything alignbot can do.")]
