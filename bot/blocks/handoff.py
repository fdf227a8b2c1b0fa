"""Builders for the handoff card, the reject modal and the answers to clicks.

Times are written with Slack's `<!date^…>` token, which every reader's client shows
in their own timezone; the fallback after `|` is for clients that cannot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from bot.blocks.kit import (
    MESSAGE_JSON,
    SECTION_LIMIT,
    actions,
    button,
    clip,
    context,
    escape,
    header,
    json_clip,
    mention,
    mrkdwn,
    plain,
    section,
)
from bot.handoff.lifecycle import REJECTION_REASONS

ACCEPT = "handoff.accept"
REJECT = "handoff.reject"
REASSIGN = "handoff.reassign"
FIRST_TOUCH = "handoff.first_touch"
TAKE = "handoff.take"
OPEN_CRM = "handoff.open_crm"
OPEN_CARD = "handoff.open_card"  # one per summary line: ids must be unique in a message
PAGE_PREV, PAGE_NEXT = "handoff.page.prev", "handoff.page.next"  # a burst summary's pages
REJECT_MODAL = "handoff.reject_modal"
ACTION_IDS = (ACCEPT, REJECT, REASSIGN, FIRST_TOUCH, TAKE, OPEN_CRM, OPEN_CARD, PAGE_PREV, PAGE_NEXT)
SUMMARY_MAX = 25  # lead lines on a summary page: within 50 blocks and 13,000 characters of JSON
LINE_JSON = 220  # a summary line's text as JSON (escapes count): 25 of them stay within that
FIELD_JSON = 600  # a name, company or title as JSON: 200 Latin letters, 100 CJK characters
NOTE_JSON = 1_500  # a rejection note on the card (marketing's notice shows it whole)
URL_JSON = 1_500  # a link cannot be shortened: a longer one (non-Latin) gets no button
WHY_MIN_JSON = 100  # the why's start shows even on a card full of long non-Latin fields

REASON_BLOCK, REASON_ACTION = "reason", "reason_pick"
NOTE_BLOCK, NOTE_ACTION = "note", "note_text"
SLA_BADGE = {"on_track": ":large_green_circle: on track", "due_soon": ":large_yellow_circle: due soon",
             "breached": ":red_circle: breached", "met": ":white_check_mark: met"}
STATUS_LINE = {"accepted": ":white_check_mark: Accepted", "contacted": ":telephone_receiver: First touch logged",
               "rejected": ":no_entry: Rejected", "qualified": ":handshake: Qualified",
               "won": ":trophy: Won", "lost": ":x: Lost", "recycled": ":recycle: Recycled"}


@dataclass(frozen=True)
class CardView:
    """Everything the card shows, gathered by the handoff service."""

    lead_id: int
    external_id: str
    name: str | None
    company: str | None
    title: str | None
    score: int | None
    hot: bool
    source: str
    segment: str | None
    region: str | None
    why: str | None
    crm_url: str | None
    owner: str | None  # Slack id
    status: str
    sla_policy: str | None
    sla_due_at: datetime | None
    sla_state: str | None
    acted_by: str | None = None
    acted_at: datetime | None = None
    rejection_reason: str | None = None
    rejection_note: str | None = None
    unassigned_reason: str | None = None
    retry_at: datetime | None = None  # an unassigned lead: when routing tries again

    @property
    def token(self) -> str:
        return card_token(self.lead_id, self.status, self.owner)


def card_token(lead_id: int, status: str, owner: str | None) -> str:
    """What a card showed when it was built: a click on an older card is stale."""
    return f"{lead_id}|{status}|{owner or '-'}"


def when(at: datetime, style: str = "{date_short_pretty} at {time}", tz: tzinfo = UTC) -> str:
    fallback = at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
    return f"<!date^{int(at.timestamp())}^{style}|{fallback}>"


def lead_name(name: str | None, external_id: str, company: str | None = None) -> str:
    """A lead as mrkdwn, bold, with its company when given: "*Ann Lee* (Acme)"."""
    return f"*{escape(name or external_id)}*" + (f" ({escape(company)})" if company else "")


def _short(text: str) -> str:
    """A name, company or title as mrkdwn, short enough as JSON for the card to fit."""
    return json_clip(escape(text), FIELD_JSON)


def _who(v: CardView) -> str:
    who = _short(v.name or v.external_id)
    return f"{who}, {_short(v.title)}" if v.title else who


def handoff_card(v: CardView, budget: int = MESSAGE_JSON) -> dict[str, Any]:
    """The card; its blocks as JSON stay within `budget` (a long why is clipped to fit)."""
    company = v.company or "unknown company"
    score = f"{v.score}{' :fire:' if v.hot else ''}" if v.score is not None else "—"
    owner = mention(v.owner) if v.owner else "*Unassigned*"
    title = (f"New lead: {v.name or v.external_id} — {company}" if v.status in ("new", "routed")
             else f"Lead: {v.name or v.external_id} — {company}")
    fields = [f"*Who*\n{_who(v)}", f"*Company*\n{_short(company)}", f"*Score*\n{score}",
              f"*Source*\n{escape(v.source)}", f"*Owner*\n{owner}", f"*SLA*\n{_sla_text(v)}"]
    if v.segment or v.region:
        fields.append(f"*Segment / region*\n{escape(v.segment or '—')} / {escape(v.region or '—')}")
    why = section("", fields=fields, accessory=_crm_button(v))
    blocks = [header(title), why, *_state_blocks(v),  # header: plain_text, shown as it is
              context(f"Lead {escape(v.external_id)}")]
    room = max(WHY_MIN_JSON, budget - len(json.dumps(blocks)))  # what the rest leaves it
    why["text"] = mrkdwn(clip(json_clip(f"*Why it qualified:* {escape(v.why or '—')}", room),
                              SECTION_LIMIT))
    text = f"{escape(title)} (score {score}, source {escape(v.source)}) → {owner}"
    return {"text": text, "blocks": blocks}


def _crm_button(v: CardView) -> dict[str, Any] | None:
    # a web page only, even for a link stored before records were checked for it
    if not v.crm_url or not v.crm_url.lower().startswith(("http://", "https://")) \
            or len(json.dumps(v.crm_url)) > URL_JSON:
        return None
    return button("Open in CRM", OPEN_CRM, str(v.lead_id), url=v.crm_url)


def _sla_text(v: CardView) -> str:
    if v.sla_due_at is None:
        return "—"
    badge = SLA_BADGE.get(v.sla_state or "", "")
    if v.status == "new" and v.owner is None:  # its own clock: the lead needs an owner
        return f"an owner by {when(v.sla_due_at)} {badge}".strip()
    return f"{escape(v.sla_policy)}: due {when(v.sla_due_at)} {badge}".strip()


def _state_blocks(v: CardView) -> list[dict[str, Any]]:
    token = v.token
    reassign = {"type": "users_select", "action_id": REASSIGN,
                "placeholder": plain("Reassign to…")}
    if v.status == "new" and v.owner is None:
        note = f"Nobody could take it automatically: {escape(v.unassigned_reason)}." \
            if v.unassigned_reason else "Waiting for an owner."
        if v.retry_at:
            note += f" Routing tries again {when(v.retry_at)}."
        return [section(f":inbox_tray: {note}"),
                actions(button("Take it", TAKE, token, style="primary"),
                        {**reassign, "placeholder": plain("Assign to…")}, block_id=f"lead-{token}")]
    if v.status == "routed":
        return [actions(button("Accept", ACCEPT, token, style="primary"),
                        button("Reject", REJECT, token, style="danger"), reassign,
                        button("Log first touch", FIRST_TOUCH, token), block_id=f"lead-{token}")]
    done = [section(_done_line(v))]
    if v.status == "accepted":
        done.append(actions(button("Log first touch", FIRST_TOUCH, token, style="primary"),
                            reassign, block_id=f"lead-{token}"))
    return done


def _done_line(v: CardView) -> str:
    line = STATUS_LINE.get(v.status) or escape(v.status)
    if v.acted_by:
        line += f" by {mention(v.acted_by)}"
    if v.acted_at:
        line += f" {when(v.acted_at, '{date_short_pretty} at {time}')}"
    if v.status == "rejected" and v.rejection_reason:
        line += f"\n*Reason:* {_reason(v.rejection_reason)}"
        if v.rejection_note:
            line += f"\n*Note:* {json_clip(escape(v.rejection_note), NOTE_JSON)}"
    return line


def _reason(key: str | None) -> str:
    return escape(REJECTION_REASONS.get(key or "", key or "—"))


def reject_modal(v: CardView, reply_in: str, replace: str | None = None) -> dict[str, Any]:
    """The reason picker; it remembers the card's token and where to answer the clicker: in
    channel `reply_in`, or in place of the card only they see, through its click's response_url
    `replace` (a view submission brings none of its own). A response_url is about 100
    characters, far within private_metadata's 3,000."""
    options = [{"text": plain(label), "value": key} for key, label in REJECTION_REASONS.items()]
    target = f"{v.token}#{reply_in}" + (f"#{replace}" if replace else "")
    return {
        "type": "modal", "callback_id": REJECT_MODAL, "private_metadata": target,
        "title": plain("Reject lead", 24), "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(f"*{escape(v.name or v.external_id)}* — {escape(v.company or 'unknown company')}"
                    "\nMarketing sees the reason and your note."),
            {"type": "input", "block_id": REASON_BLOCK, "label": plain("Reason"),
             "element": {"type": "static_select", "action_id": REASON_ACTION,
                         "placeholder": plain("Pick a reason"), "options": options}},
            {"type": "input", "block_id": NOTE_BLOCK, "optional": True,
             "label": plain("Note for marketing"),
             "element": {"type": "plain_text_input", "action_id": NOTE_ACTION, "multiline": True,
                         "max_length": 1000}},
        ],
    }


def modal_target(private_metadata: str) -> tuple[str, str, str | None]:
    """The card's token, the channel and the response_url `reject_modal` remembered (none in
    a modal opened from a channel or DM card, or before cards only you see were replaced)."""
    token, _, rest = private_metadata.partition("#")
    channel, _, replace = rest.partition("#")
    return token, channel, replace or None


def rejection_notice(v: CardView) -> dict[str, Any]:
    """What marketing reads, threaded under its source's parent message."""
    reason = _reason(v.rejection_reason)
    who = mention(v.acted_by) if v.acted_by else "Someone"
    line = (f":no_entry: {who} rejected *{escape(v.name or v.external_id)}* "
            f"({escape(v.company or 'unknown company')}, "
            f"score {v.score if v.score is not None else '—'})\n*Reason:* {reason}")
    if v.rejection_note:
        line += f"\n*Note:* {escape(v.rejection_note)}"
    return {"text": f"Lead {escape(v.external_id)} rejected: {reason}", "blocks": [section(line)]}


def rejection_thread_parent(source: str) -> dict[str, Any]:
    text = f"Rejected leads from source *{escape(source)}* — reasons and notes from sales, " \
        "in this thread."
    return {"text": f"Rejected leads from source {escape(source)}", "blocks": [section(text)]}


@dataclass(frozen=True)
class SummaryLine:
    """What a burst summary says of one lead."""

    lead_id: int
    external_id: str
    name: str | None
    company: str | None
    score: int | None
    hot: bool
    source: str
    owner: str | None  # Slack id
    status: str

    @property
    def token(self) -> str:  # as its card's: the card it opens is read fresh anyway
        return card_token(self.lead_id, self.status, self.owner)


def summary_line(v: SummaryLine) -> dict[str, Any]:
    owner = mention(v.owner) if v.owner else "unassigned"
    score = f"{v.score}{' :fire:' if v.hot else ''}" if v.score is not None else "—"
    name = escape(clip(v.name or v.external_id, 60))
    company = escape(clip(v.company or "unknown company", 60))
    status = "" if v.status in ("new", "routed") else f" · {escape(v.status)}"
    text = json_clip(f"*{name}* — {company} · score {score} · {escape(v.source)} · {owner}{status}",
                      LINE_JSON)
    return section(text, accessory=button("Open card", f"{OPEN_CARD}.{v.lead_id}", v.token),
                   block_id=f"line-{v.lead_id}")


@dataclass(frozen=True)
class SummaryPage:
    """One page of a burst summary: which burst, how many leads in all, and this page's lines."""

    burst_id: int
    total: int
    page: int
    lines: list[dict[str, Any]]
    for_owner: bool  # in the owner's DM rather than the handoff channel

    @property
    def pages(self) -> int:
        return page_count(self.total)


def page_count(leads: int) -> int:
    return max(1, -(-leads // SUMMARY_MAX))


def burst_summary(p: SummaryPage) -> dict[str, Any]:
    """Many leads at once: one message listing them a page at a time, each one click from
    its card."""
    # A rep's DM lists leads new to them: new leads, or reassigned ones (an SLA sweep)
    said = f"{p.total:,} leads handed to you at once" if p.for_owner \
        else f"{p.total:,} new leads arrived at once"
    head = section(f":inbox_tray: *{said}*. Open a card to accept, reject or reassign it.")
    blocks = [head, *p.lines]
    if p.pages > 1:
        first = (p.page - 1) * SUMMARY_MAX + 1
        blocks.append(context(f"Leads {first:,}–{first + len(p.lines) - 1:,} of {p.total:,} · "
                              f"page {p.page} of {p.pages}"))
        nav = [button(f"‹ Previous {SUMMARY_MAX}", PAGE_PREV, f"{p.burst_id}|{p.page - 1}")] \
            if p.page > 1 else []
        if p.page < p.pages:
            nav.append(button(f"Next {SUMMARY_MAX} ›", PAGE_NEXT, f"{p.burst_id}|{p.page + 1}"))
        blocks.append(actions(*nav, block_id=f"burst-{p.burst_id}-{p.page}"))
    return {"text": said, "blocks": blocks}


def click_answer(text: str) -> dict[str, Any]:
    return {"text": text, "blocks": [{"type": "section", "text": mrkdwn(text)}]}


def answered_card(v: CardView, said: str) -> dict[str, Any]:
    """The card with a click's answer `said` on top: what replaces a card only the clicker
    sees (Slack cannot edit it for them otherwise), so it shows the lead as it now is."""
    answer = context(said)
    card = handoff_card(v, budget=MESSAGE_JSON - len(json.dumps(answer)))
    return {"text": said, "blocks": [answer, *card["blocks"]]}
