"""Clicks on a lead's card: accept, first touch, reject, take, reassign, and the pages of a
burst's summary.

Every click is decided by a compare-and-set on the lead's status, so the first click wins
and later ones (double clicks, a colleague, a stale card) change nothing and get a short
answer. Card updates and the marketing feedback go through the outbox in the same
transaction as the change. Each click returns the message shown only to the clicker.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot import home
from bot.blocks import handoff as blocks
from bot.handoff import lifecycle
from bot.handoff.cards import CardBatch, card_view, lead_name, refresh_cards
from bot.handoff.new_leads import assign, summary_page
from bot.platform import outbox
from bot.platform.config import Config
from bot.sla import policies as sla
from storage import bursts
from storage import leads as queries
from storage.models import Lead, Person
from storage.outbox import get_first_post
from storage.people import get_person

DECISIONS = ("routed", "accepted", "contacted", "rejected", "unassigned")


class ClickRefused(Exception):
    """A click that changes nothing; the message says why."""


def accept(session: Session, team_id: str, token: str, user: str, config: Config,
           now: datetime) -> str:
    lead = _clicked(session, team_id, token, user, config, "accepted", now)
    _decide(session, lead, "accepted", user, now)
    refresh_cards(session, team_id, lead, config, now)
    return f"You accepted {lead_name(lead)}. Log the first touch when you reach out."


def first_touch(session: Session, team_id: str, token: str, user: str, config: Config,
                now: datetime) -> str:
    lead = _clicked(session, team_id, token, user, config, "contacted", now)
    _decide(session, lead, "contacted", user, now)
    sla.close_clock(session, lead, config, queries.get_person_by_id(session, lead.owner_id), now)
    refresh_cards(session, team_id, lead, config, now)
    met = {True: " within the SLA", False: " after the SLA was due"}.get(lead.sla_met, "")
    return f"First touch on {lead_name(lead)} logged{met}."


def reject(session: Session, team_id: str, token: str, user: str, config: Config, now: datetime,
           *, reason: str, note: str | None) -> str:
    lead = _clicked(session, team_id, token, user, config, "rejected", now)
    lead.rejection_reason, lead.rejection_note = reason, (note or "").strip() or None
    _decide(session, lead, "rejected", user, now, data={"reason": reason, "note": lead.rejection_note})
    sla.close_clock(session, lead, config, queries.get_person_by_id(session, lead.owner_id), now)
    refresh_cards(session, team_id, lead, config, now)
    _tell_marketing(session, team_id, lead, config, now)
    return f"You rejected {lead_name(lead)}; marketing sees your reason."


def take(session: Session, team_id: str, token: str, user: str, config: Config,
         now: datetime) -> str:
    """Take an unassigned lead: reassign it to yourself."""
    return reassign(session, team_id, token, user, config, now, to=user)


def reassign(session: Session, team_id: str, token: str, user: str, config: Config,
             now: datetime, *, to: str) -> str:
    """Give the lead to `to`; its SLA clock restarts for the new owner."""
    lead = _lead_of(session, team_id, token)
    new_owner = get_person(session, team_id, to)
    if new_owner is None or new_owner.deactivated:
        raise ClickRefused(f"<@{to}> is not someone alignbot can route leads to. "
                           "Add them under [[people]] in the config.")
    if lead.owner_id == new_owner.id:
        raise ClickRefused(f"{lead_name(lead)} is already with <@{to}>.")
    _check(session, lead, token, user, config, "routed",
           allow_self=lead.owner_id is None and to == user)
    old_owner = lead.owner_id
    reassign_to(session, lead, new_owner, config, now, actor=user,
                reason="taken" if to == user else "reassigned")
    home.mark_stale(session, [old_owner, new_owner.id], now)
    who = "yours" if to == user else f"with <@{to}>"
    return f"{lead_name(lead)} is now {who}."


def reassign_to(session: Session, lead: Lead, new_owner: Person, config: Config, now: datetime,
                *, actor: str, reason: str, batch: CardBatch | None = None) -> None:
    """Move the lead to a new owner (a click, or the SLA's automatic reassignment): its
    cards are updated, and the new owner gets one of their own. Many leads at once (the
    SLA sweep) share a card `batch` and write their new rows and changes together (the
    session's batch, compare-and-set included). The caller marks the old and the new
    owner's Homes (the sweep, once for its whole batch)."""
    _claim(session, lead, "routed", now, batched=True)
    assign(session, lead, new_owner, config, now, actor=actor,
            data={"reason": reason, "owner": new_owner.slack_id})
    batch = batch or CardBatch(session, lead.team_id, config, now, [lead])
    card = batch.refresh(lead)  # what the new owner's card shows too: built once
    if config.handoff.dm_owner:
        outbox.post(session, lead.team_id, new_owner.slack_id,
                    card or blocks.handoff_card(batch.view(lead)), now=now,
                    ref=f"lead:{lead.id}:dm:{new_owner.slack_id}")


def view_for_token(session: Session, team_id: str, token: str, config: Config,
                   now: datetime) -> blocks.CardView:
    return card_view(session, _lead_of(session, team_id, token), config, now)


def reject_form(session: Session, team_id: str, token: str, user: str, config: Config,
                now: datetime) -> blocks.CardView:
    """What the reject modal shows, once we know this person may reject this lead now."""
    return card_view(session, _clicked(session, team_id, token, user, config, "rejected", now),
                     config, now)


def open_card(session: Session, team_id: str, token: str, user: str, config: Config,
              now: datetime) -> dict:
    """The full card of a lead listed in a summary, for the person who asked."""
    return blocks.handoff_card(view_for_token(session, team_id, token, config, now))


def burst_page(session: Session, team_id: str, token: str, config: Config) -> dict:
    """The summary page a Previous / Next button asks for (`<burst id>|<page>`)."""
    try:
        burst_id, page = (int(part) for part in token.split("|"))
    except ValueError:
        raise ClickRefused("That button is broken; list the leads with `/align leads open`.") \
            from None
    burst = bursts.get_burst(session, team_id, burst_id)
    if burst is None:
        raise ClickRefused("That summary no longer exists; list the leads with `/align leads open`.")
    return blocks.burst_summary(summary_page(session, burst, page, config))


def _clicked(session: Session, team_id: str, token: str, user: str, config: Config, to: str,
             now: datetime) -> Lead:
    lead = _lead_of(session, team_id, token)
    _check(session, lead, token, user, config, to)
    return lead


def _decide(session: Session, lead: Lead, to: str, user: str, now: datetime,
            data: dict | None = None) -> None:
    _claim(session, lead, to, now, user)
    lifecycle.transition(session, lead, to, actor=user, at=now, data=data)
    home.mark_stale(session, [lead.owner_id], now)


def _claim(session: Session, lead: Lead, to: str, now: datetime, user: str | None = None, *,
           batched: bool = False) -> None:
    """Compare-and-set on (status, owner) first: of simultaneous clicks exactly one goes on.
    The loaded `lead` keeps its old values; the lifecycle then applies the move to it.
    `batched`: in the session's batch, if one is open (see `mark_status`)."""
    if not queries.mark_status(session, lead.id, lead.status, lead.owner_id, to, now,
                               batched=batched):
        session.refresh(lead)
        raise ClickRefused(_already(session, lead, user))


def _lead_of(session: Session, team_id: str, token: str) -> Lead:
    try:
        lead_id = int(token.split("|")[0])
    except ValueError:
        raise ClickRefused("That button is broken; open the lead with `/align lead &lt;id&gt;`.") from None
    lead = queries.get_lead(session, team_id, lead_id)
    if lead is None:
        raise ClickRefused("That lead no longer exists.")
    return lead


def _check(session: Session, lead: Lead, token: str, user: str, config: Config, to: str, *,
           allow_self: bool = False) -> None:
    """Stale card, illegal move, or someone who may not act on this lead: refuse, change nothing."""
    _, status, owner = (token.split("|") + ["", ""])[:3]
    current_owner = queries.get_person_by_id(session, lead.owner_id)
    if status != lead.status or owner != (current_owner.slack_id if current_owner else "-"):
        raise ClickRefused(_already(session, lead, user))
    if not lifecycle.can(lead, to):
        raise ClickRefused(str(lifecycle.IllegalTransition(lead, to)))
    if allow_self or may_act(session, lead, current_owner, user, config):
        return
    raise ClickRefused(f"Only {_owner_text(current_owner)} or a sales manager can do that "
                       f"for {lead_name(lead)}.")


def may_act(session: Session, lead: Lead, owner: Person | None, user: str, config: Config) -> bool:
    rule = config.handoff.who_can_act
    if rule == "anyone" or config.is_admin(user) or (owner is not None and owner.slack_id == user):
        return True
    if owner is None:  # an unassigned lead: any sales person may take it
        me = get_person(session, lead.team_id, user)
        return me is not None and me.role in ("sales", "sales_manager")
    if rule == "owner":
        return False
    me = get_person(session, lead.team_id, user)
    return owner.manager_slack_id == user or (me is not None and me.role == "sales_manager")


def _already(session: Session, lead: Lead, user: str | None = None) -> str:
    """'Already accepted by @x at 10:42' — what a late or stale click is told ('You already
    accepted this lead' when `user` is who did it)."""
    event = queries.last_event(session, lead.id, DECISIONS + ("qualified", "won", "lost"))
    owner = queries.get_person_by_id(session, lead.owner_id)
    if lead.status == "routed" and owner is not None:
        by = f" by <@{event.actor}> {blocks.when(event.at, '{time}')}" \
            if event is not None and event.actor != "system" else ""
        return (f"This card is out of date: {lead_name(lead)} was assigned to <@{owner.slack_id}>"
                f"{by}. Nothing was changed.")
    what = {"contacted": "touched"}.get(lead.status, lead.status)
    if event is None or event.actor == "system":
        return f"This card is out of date: {lead_name(lead)} is {what}. Nothing was changed."
    if event.actor == user:
        return f"You already {what} this lead {blocks.when(event.at, '{time}')}."
    return (f"Already {what} by <@{event.actor}> {blocks.when(event.at, '{time}')}. "
            "Nothing was changed.")


def _tell_marketing(session: Session, team_id: str, lead: Lead, config: Config, now: datetime) -> None:
    channel = config.channels.marketing
    if not channel:
        return
    key = f"rejections:{lead.source}"
    parent = get_first_post(session, team_id, key)
    if parent is None:
        parent = outbox.post(session, team_id, channel, blocks.rejection_thread_parent(lead.source),
                             now=now, ref=key, dedupe_key=key)
    view = card_view(session, lead, config, now)
    outbox.post(session, team_id, channel, blocks.rejection_notice(view), now=now,
                ref=f"lead:{lead.id}:rejection", thread_of=parent)


def _owner_text(owner: Person | None) -> str:
    return f"<@{owner.slack_id}>" if owner else "its owner"
