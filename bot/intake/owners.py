"""Leads waiting for their CRM owner because Slack could not be asked who has the email
(a network error, an outage): every few minutes Slack is asked again, and the leads of
each owner it finds are routed to them, their cards updated in place."""

from __future__ import annotations

from datetime import datetime

from bot import home
from bot.handoff import directory, lifecycle
from bot.handoff.cards import CardBatch
from bot.handoff.clicks import reassign_to
from bot.handoff.new_leads import FROM_CRM, Handoffs
from bot.platform.services import Services
from storage.db import lock_handoffs
from storage.people import list_leads_waiting_for, list_owner_lookups, set_missing_owner


def retry_due(services: Services) -> datetime | None:
    """Now while CRM owner emails wait to be asked about again, else never."""
    with services.sessions() as session:
        waiting = list_owner_lookups(session, services.team_id)
    return services.clock.now() if waiting else None


def retry(services: Services, now: datetime) -> dict[str, str]:
    """Ask Slack again about the emails whose lookup failed; what became of each."""
    team_id = services.team_id
    with services.sessions() as session:
        emails = list(list_owner_lookups(session, team_id))
    answers = directory.ask_slack(services.slack, emails)  # before the transaction, as ever
    outcome = {}
    with services.work(now=now) as work:
        session = work.session
        lock_handoffs(session, team_id)  # before any lead, as a batch of leads takes them
        for email in emails:
            try:
                owner = directory.resolve_owner(work, email, answers=answers)
            except directory.LookupFailed:
                outcome[email] = "still no answer"
                continue
            leads = list_leads_waiting_for(session, team_id, email)
            cards = CardBatch(work, leads)
            if owner is not None and not owner.deactivated:
                handoffs = Handoffs(work)  # a rep's many waiting leads: their DM bursts
                for lead in leads:
                    reassign_to(work, lead, owner, actor="system", reason=FROM_CRM,
                                batch=cards, handoffs=handoffs)
                handoffs.finish()
                set_missing_owner(session, team_id, email, owner.id, now)
                home.mark_stale(work, [owner.id])
                outcome[email] = f"{len(leads)} lead(s) routed to {owner.slack_id}"
                continue
            why = "is deactivated in Slack" if owner else "matches nobody in Slack"
            for lead in leads:  # still waiting, now for a reason people can act on
                lifecycle.record(session, lead, "unassigned", actor="system", at=now,
                                 data={"pool": None, "reason": f"the CRM owner {email} {why}"})
                cards.forget(lead)
                cards.refresh(lead)
            outcome[email] = why
    return outcome
