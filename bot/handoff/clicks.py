"""Clicks on a lead's card: accept, first touch, reject, take, reassign, and the pages of a
burst's summary.

Every click is decided by a compare-and-set on the lead's status, so the first click wins
and later ones (double clicks, a colleague, a stale card) change nothing and get a short
answer. Card updates and the marketing feedback go through the outbox in the same
transaction as the change. Each click returns the message shown only to the clicker; on a
card only they see, that message is the card itself, as it now is (`answered_card`).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot import home
from bot.blocks import handoff as blocks
from bot.handoff import lifecycle
from bot.handoff.cards import CardBatch, card_view, lead_name, refresh_cards
from bot.handoff.new_leads import Handoffs, assign, summary_page
from bot.platform import outbox
from bot.platform.services import Services
from bot.platform.work import Work
from bot.sla import policies as sla
from storage import bursts
from storage import leads as queries
from storage.db import read_only
from storage.models import Lead, Person
from storage.outbox import get_first_post
from storage.people import get_person

DECISIONS = ("routed", "accepted", "contacted", "rejected", "unassigned")


class ClickRefused(Exception):
    """A click that changes nothing; the message says why."""


def accept(work: Work, token: str, user: str) -> str:
    lead = _clicked(work, token, user, "accepted")
    _decide(work, lead, "accepted", user)
    refresh_cards(work, lead)
    return f"You accepted {lead_name(lead)}. Log the first touch when you reach out."


def first_touch(work: Work, token: str, user: str) -> str:
    lead = _clicked(work, token, user, "contacted")
    _decide(work, lead, "contacted", user)
    _close_clock(work, lead)
    refresh_cards(work, lead)
    met = {True: " within the SLA", False: " after the SLA was due"}.get(lead.sla_met, "")
    return f"First touch on {lead_name(lead)} logged{met}."


def reject(work: Work, token: str, user: str, *, reason: str, note: str | None) -> str:
    lead = _clicked(work, token, user, "rejected")
    lead.rejection_reason, lead.rejection_note = reason, (note or "").strip() or None
    _decide(work, lead, "rejected", user, data={"reason": reason, "note": lead.rejection_note})
    _close_clock(work, lead)
    refresh_cards(work, lead)
    _tell_marketing(work, lead)
    return f"You rejected {lead_name(lead)}; marketing sees your reason."


def take(work: Work, token: str, user: str) -> str:
    """Take an unassigned lead: reassign it to yourself."""
    return reassign(work, token, user, to=user)


def reassign(work: Work, token: str, user: str, *, to: str) -> str:
    """Give the lead to `to`; its SLA clock restarts for the new owner."""
    lead = _lead_of(work, token)
    new_owner = get_person(work.session, work.team_id, to)
    if new_owner is None or new_owner.deactivated:
        raise ClickRefused(f"<@{to}> is not someone alignbot can route leads to. "
                           "Add them under [[people]] in the config.")
    if lead.owner_id == new_owner.id:
        raise ClickRefused(f"{lead_name(lead)} is already with <@{to}>.")
    _check(work, lead, token, user, "routed", allow_self=lead.owner_id is None and to == user)
    old_owner = lead.owner_id
    reassign_to(work, lead, new_owner, actor=user, reason="taken" if to == user else "reassigned")
    home.mark_stale(work, [old_owner, new_owner.id])
    who = "yours" if to == user else f"with <@{to}>"
    return f"{lead_name(lead)} is now {who}."


def reassign_to(work: Work, lead: Lead, new_owner: Person, *, actor: str, reason: str,
                batch: CardBatch | None = None, handoffs: Handoffs | None = None) -> None:
    """Move the lead to a new owner (a click, or the SLA's automatic reassignment): its
    cards are updated, and the new owner gets one of their own. Many leads at once (the
    SLA sweep) share a card `batch` and `handoffs` (the new owners' DMs burst as for new
    leads), and write their new rows and changes together (the session's batch, compare
    included). The caller marks the old and the new owner's Homes (the sweep, once for
    its whole batch)."""
    work = work.for_team(lead.team_id)
    _claim(work, lead, "routed", batched=True)
    assign(work, lead, new_owner, actor=actor, data={"reason": reason, "owner": new_owner.slack_id},
           plans=handoffs.plans if handoffs is not None else None)
    batch = batch or CardBatch(work, [lead])
    posted = batch.refresh(lead)  # what the new owner's card shows too: built once
    if handoffs is not None:
        handoffs.dm_card(new_owner, lead, batch, posted)
    elif work.config.handoff.dm_owner:  # one click: the card itself
        outbox.post(work.session, lead.team_id, new_owner.slack_id,
                    posted or blocks.handoff_card(batch.view(lead)), now=work.now,
                    ref=f"lead:{lead.id}:dm:{new_owner.slack_id}")


def view_for_token(work: Work, token: str) -> blocks.CardView:
    return card_view(work, _lead_of(work, token))


def answered_card(services: Services, team_id: str, token: str, said: str) -> dict:
    """The card of the clicked lead as it now is, carrying the click's answer `said`, read
    after the click's own transaction (a refused click's was rolled back); the answer alone
    when there is no card to show (the lead is gone, the button broken)."""
    try:
        with read_only(services.sessions) as session:
            return blocks.answered_card(view_for_token(services.work_in(session, team_id), token),
                                        said)
    except ClickRefused:
        return blocks.click_answer(said)


def reject_form(work: Work, token: str, user: str) -> blocks.CardView:
    """What the reject modal shows, once we know this person may reject this lead now."""
    return card_view(work, _clicked(work, token, user, "rejected"))


def open_card(work: Work, token: str, user: str) -> dict:
    """The full card of a lead listed in a summary, for the person who asked."""
    return blocks.handoff_card(view_for_token(work, token))


def burst_page(work: Work, token: str) -> dict:
    """The summary page a Previous / Next button asks for (`<burst id>|<page>`)."""
    try:
        burst_id, page = (int(part) for part in token.split("|"))
    except ValueError:
        raise ClickRefused("That button is broken; list the leads with `/align leads open`.") \
            from None
    burst = bursts.get_burst(work.session, work.team_id, burst_id)
    if burst is None:
        raise ClickRefused("That summary no longer exists; list the leads with `/align leads open`.")
    return blocks.burst_summary(summary_page(work, burst, page))


def _clicked(work: Work, token: str, user: str, to: str) -> Lead:
    lead = _lead_of(work, token)
    _check(work, lead, token, user, to)
    return lead


def _decide(work: Work, lead: Lead, to: str, user: str, data: dict | None = None) -> None:
    _claim(work, lead, to, user)
    lifecycle.transition(work.session, lead, to, actor=user, at=work.now, data=data)
    home.mark_stale(work, [lead.owner_id])


def _close_clock(work: Work, lead: Lead) -> None:
    owner = queries.get_person_by_id(work.session, lead.owner_id)
    sla.close_clock(work, lead, owner)


def _claim(work: Work, lead: Lead, to: str, user: str | None = None, *,
           batched: bool = False) -> None:
    """Compare-and-set on (status, owner) first: of simultaneous clicks exactly one goes on.
    The loaded `lead` keeps its old values; the lifecycle then applies the move to it.
    `batched`: in the session's batch, if one is open (see `mark_status`)."""
    if not queries.mark_status(work.session, lead.id, lead.status, lead.owner_id, to, work.now,
                               batched=batched):
        work.session.refresh(lead)
        raise ClickRefused(_already(work.session, lead, user))


def _lead_of(work: Work, token: str) -> Lead:
    try:
        lead_id = int(token.split("|")[0])
    except ValueError:
        raise ClickRefused("That button is broken; open the lead with `/align lead &lt;id&gt;`.") from None
    lead = queries.get_lead(work.session, work.team_id, lead_id)
    if lead is None:
        raise ClickRefused("That lead no longer exists.")
    return lead


def _check(work: Work, lead: Lead, token: str, user: str, to: str, *,
           allow_self: bool = False) -> None:
    """Stale card, illegal move, or someone who may not act on this lead: refuse, change nothing."""
    _, status, owner = (token.split("|") + ["", ""])[:3]
    current_owner = queries.get_person_by_id(work.session, lead.owner_id)
    if status != lead.status or owner != (current_owner.slack_id if current_owner else "-"):
        raise ClickRefused(_already(work.session, lead, user))
    if not lifecycle.can(lead, to):
        raise ClickRefused(str(lifecycle.IllegalTransition(lead, to)))
    if allow_self or may_act(work, lead, current_owner, user):
        return
    raise ClickRefused(f"Only {_owner_text(current_owner)} or a sales manager can do that "
                       f"for {lead_name(lead)}.")


def may_act(work: Work, lead: Lead, owner: Person | None, user: str) -> bool:
    config = work.config
    rule = config.handoff.who_can_act
    if rule == "anyone" or config.is_admin(user) or (owner is not None and owner.slack_id == user):
        return True
    if owner is None:  # an unassigned lead: any sales person may take it
        me = get_person(work.session, lead.team_id, user)
        return me is not None and me.role in ("sales", "sales_manager")
    if rule == "owner":
        return False
    me = get_person(work.session, lead.team_id, user)
    return owner.manager_slack_id == user or (me is not None and me.role == "sales_manager")


def _already(session: Session, lead: Lead, user: str | None = None) -> str:
    """'Already accepted by @x at 10:42' — what a late or stale click is told ('You already
    accepted this lead' when `user` is who did it)."""
    event = queries.last_event(session, lead.id, DECISIONS + ("qualified", "won", "lost"))
    owner = queries.get_person_by_id(session, lead.owner_id)
    if lead.status == "routed" and owner is not None:
        by = f" by <@{event.actor}> {blocks.when(event.at, '{time}')}" \
            if event is not None and event.actor not in lifecycle.NOT_PEOPLE else ""
        return (f"This card is out of date: {lead_name(lead)} was assigned to <@{owner.slack_id}>"
                f"{by}. Nothing was changed.")
    what = {"contacted": "touched"}.get(lead.status, lead.status)
    if event is None or event.actor in lifecycle.NOT_PEOPLE:
        return f"This card is out of date: {lead_name(lead)} is {what}. Nothing was changed."
    if event.actor == user:
        return f"You already {what} this lead {blocks.when(event.at, '{time}')}."
    return (f"Already {what} by <@{event.actor}> {blocks.when(event.at, '{time}')}. "
            "Nothing was changed.")


def _tell_marketing(work: Work, lead: Lead) -> None:
    channel = work.config.channels.marketing
    if not channel:
        return
    key = f"rejections:{lead.source}"
    parent = get_first_post(work.session, work.team_id, key)
    if parent is None:
        parent = outbox.post(work.session, work.team_id, channel,
                             blocks.rejection_thread_parent(lead.source), now=work.now, ref=key,
                             dedupe_key=key)
    outbox.post(work.session, work.team_id, channel, blocks.rejection_notice(card_view(work, lead)),
                now=work.now, ref=f"lead:{lead.id}:rejection", thread_of=parent)


def _owner_text(owner: Person | None) -> str:
    return f"<@{owner.slack_id}>" if owner else "its owner"
