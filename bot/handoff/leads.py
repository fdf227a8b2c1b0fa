"""Looking at leads: `/align lead <id>`, `/align leads [mine|open|overdue]`, `alignbot lead --json`,
and saying you are away: `/align away [until DATE]`, `/align back`."""

from __future__ import annotations

from datetime import datetime, time, tzinfo
from typing import Any

from bot.blocks import leads as views
from bot.blocks.kit import escape
from bot.handoff.cards import card_view
from bot.handoff.new_leads import absences_changed
from bot.metrics.grammar import QueryError, parse_day
from bot.platform.command_table import Command, Invocation, Reply, positive_number
from bot.platform.services import Services
from bot.sla import policies as sla
from storage import leads as queries
from storage.db import read_only
from storage.people import get_person, set_away_until

OPEN = ("new", "routed", "accepted")  # still waiting for a first touch
MINE = ("new", "routed", "accepted", "contacted", "qualified")
PAGE = 15
LISTS = ("mine", "open", "overdue")
AWAY_EXAMPLES = "`/align away until friday` or `/align away until dec 24`"


def lead_command(inv: Invocation) -> Reply:
    """Show a lead's card and its history: `/align lead L-123`."""
    if not inv.args:
        return Reply("Which lead? `/align lead &lt;external id&gt;`, e.g. `/align lead L-123`.")
    with inv.reading() as work:
        lead = queries.get_lead_by_external_id(work.session, work.team_id, inv.args[0])
        if lead is None:
            return Reply.of(views.no_lead(inv.args[0]))
        view = card_view(work, lead)
        events = queries.list_events(work.session, lead.id)
        return Reply.of(views.lead_detail(view, events))


def leads_command(inv: Invocation) -> Reply:
    """List leads: `mine` (newest first, the default), `open` or `overdue` (oldest breach first).
    `/align leads overdue 2` shows the second page."""
    args = list(inv.args)
    which = args.pop(0).lower() if args and not args[0].isdigit() else "mine"  # digits: a page
    if which not in LISTS:
        return Reply.of(views.unknown_list(which))
    page = positive_number(args[0]) if args else 1
    if len(args) > 1 or page is None:
        return Reply.of(views.not_a_page(" ".join(args), which))
    with read_only(inv.services.sessions) as session:
        me = get_person(session, inv.request.team_id, inv.request.user_id)
        if which == "mine" and me is None:
            return Reply("You are not set up as a lead owner; ask an admin to add you to [[people]].")
        rows, total = queries.list_leads(
            session, inv.request.team_id, MINE if which == "mine" else OPEN,
            owner_id=me.id if which == "mine" else None,
            due_before=inv.now if which == "overdue" else None,
            offset=(page - 1) * PAGE, limit=PAGE, newest_first=which == "mine")
        owners = {p.id: p.slack_id for p in (queries.get_person_by_id(session, r.owner_id)
                                             for r in rows) if p}
        items = [views.LeadLine(r.external_id, r.name, r.company, r.status,
                                owners.get(r.owner_id), r.sla_due_at, sla.state(r, inv.now))
                 for r in rows]
    return Reply.of(views.lead_list(which, items, page, PAGE, total))


def away_command(inv: Invocation) -> Reply:
    """Stop getting new leads: `/align away` (until you say `/align back`) or `/align away until friday`.
    The day you are back: tomorrow, a weekday (friday, next monday), next week or a date
    (dec 24, 2026-12-01), starting in your own timezone: "friday" is your Friday, wherever the
    workspace is."""
    with inv.work() as work:
        me = get_person(work.session, work.team_id, inv.request.user_id)
        tz = work.config.workspace.zone_of(me.timezone if me else None)
        until = _parse_until(inv, tz)
        if isinstance(until, Reply):
            return until
        if me is None:
            return Reply("You are not a lead owner, so there is nothing to pause.")
        me.away_until = until
        absences_changed(work)
    return Reply.of(views.away_set(until if until.year < 2100 else None, tz))


def back_command(inv: Invocation) -> Reply:
    """Get new leads again."""
    with inv.work() as work:
        if set_away_until(work.session, work.team_id, inv.request.user_id, None) is None:
            return Reply("You are not a lead owner, so there is nothing to resume.")
        absences_changed(work)
    return Reply("Welcome back — new leads can come your way again.")


def _parse_until(inv: Invocation, tz: tzinfo) -> datetime | Reply:
    if not inv.args:
        return datetime(2100, 1, 1, tzinfo=tz)
    words = inv.args[1:] if inv.args[0].lower() in ("until", "till", "til") else inv.args
    if not words:
        return Reply(f"Say the day you are back, like {AWAY_EXAMPLES}.")
    today = inv.now.astimezone(tz).date()
    try:
        day = parse_day(" ".join(words), today)
    except QueryError as exc:
        return Reply(f"{escape(exc.message)} Like {AWAY_EXAMPLES}.")  # it quotes the words typed
    if day <= today:
        return Reply(f"{day} is not in the future. `/align away` alone pauses until `/align back`.")
    return datetime.combine(day, time.min, tz)


def lead_json(services: Services, external_id: str) -> dict[str, Any] | None:
    """The lead as `alignbot lead <id> --json` prints it (PRODUCT.md "Commands")."""
    now = services.clock.now()
    with services.sessions.begin() as session:
        lead = queries.get_lead_by_external_id(session, services.team_id, external_id)
        if lead is None:
            return None
        owner = queries.get_person_by_id(session, lead.owner_id)
        events = queries.list_events(session, lead.id)
        block = {"policy": lead.sla_policy, "clock": lead.sla_clock,
                 "due_at": _iso(lead.sla_due_at), "state": sla.state(lead, now)}
        if lead.response_minutes is not None:
            block.update(response_minutes=lead.response_minutes,
                         business_minutes=lead.business_minutes)
        return {
            "external_id": lead.external_id, "source": lead.source, "email": lead.email,
            "name": lead.name, "company": lead.company, "title": lead.title, "score": lead.score,
            "segment": lead.segment, "region": lead.region, "why": lead.why,
            "crm_url": lead.crm_url, "status": lead.status,
            "owner": owner.slack_id if owner else None,
            "owner_email": owner.email if owner else lead.crm_owner_email,
            "rejection_reason": lead.rejection_reason, "rejection_note": lead.rejection_note,
            "stages": {k: _iso(getattr(lead, k)) for k in (
                "created_at", "mql_at", "routed_at", "assigned_at", "accepted_at", "rejected_at",
                "first_touch_at", "qualified_at", "closed_at", "recycled_at")},
            "sla": block,
            "events": [{"at": _iso(e.at), "kind": e.kind, "from": e.from_status,
                        "to": e.to_status, "actor": e.actor, "data": e.data} for e in events],
        }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


COMMANDS = [
    Command("lead", lead_command, usage="<id>"),
    Command("leads", leads_command, usage="[mine|open|overdue] [page]"),
    Command("away", away_command, usage="[until DAY]"),
    Command("back", back_command),
]
