"""The App Home's leads section: the person's leads waiting for a first touch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.blocks import home as views
from bot.blocks.kit import Block
from bot.blocks.leads import LeadLine
from bot.sla import policies as sla
from storage.leads import list_leads
from storage.models import Person

if TYPE_CHECKING:
    from bot.home import Context

LEADS_SHOWN = 20  # and "N more": a Home holds 100 blocks, and other sections need room
SALES = ("sales", "sales_manager")  # they see their leads section even when it is empty


def open_leads(ctx: Context, person: Person | None) -> list[Block]:
    """The person's leads waiting for a first touch, oldest due first. Only sales people
    and whoever owns some see the section."""
    if person is None:
        return []
    leads, total = list_leads(ctx.session, ctx.team_id, sla.OPEN, owner_id=person.id,
                              limit=LEADS_SHOWN, by_due=True)
    if not total and person.role not in SALES:
        return []
    lines = [LeadLine(lead.external_id, lead.name, lead.company, lead.status, person.slack_id,
                      lead.sla_due_at, sla.state(lead, ctx.now)) for lead in leads]
    return views.open_leads(lines, total, ctx.tz(person))
