"""`alignbot erase --email X`: remove one person's personal data, keep every aggregate.

A lead with that email loses what says who they are (name, email, company, title, the
CRM's notes and link, a rejection note); a person (a colleague in [[people]] or from Slack)
loses their email and name. Rows, times, statuses, owners and amounts stay, so metrics,
counts and survey results read the same afterwards. The history and the outbox's copies of
what was posted are scrubbed of the same values; the lead's cards in Slack are edited to
show its CRM id instead. Survey answers name nobody by construction, so none change.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from bot.handoff.cards import refresh_cards
from bot.platform.services import Services
from bot.platform.work import Work
from storage import erasure as queries

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MIN_NAME = 3  # a shorter name would match unrelated text in messages
ERASED = "(erased)"


class NotAnEmail(ValueError):
    pass


@dataclass
class ErasureReport:
    email: str
    dry_run: bool
    leads: list[dict[str, Any]] = field(default_factory=list)  # external_id, fields cleared
    people: list[dict[str, Any]] = field(default_factory=list)  # slack_id, fields, in_config
    owner_email_cleared: dict[str, int] = field(default_factory=dict)  # table -> rows
    content_uses: int = 0
    lookups_deleted: int = 0
    history_scrubbed: int = 0
    messages_scrubbed: int = 0
    messages_queued: int = 0  # still to be sent as written
    card_edits: int = 0

    @property
    def found(self) -> bool:
        return bool(self.leads or self.people or any(self.owner_email_cleared.values())
                    or self.content_uses or self.lookups_deleted or self.history_scrubbed
                    or self.messages_scrubbed or self.messages_queued)

    def as_json(self) -> dict[str, Any]:
        return {"email": self.email, "dry_run": self.dry_run, "leads": self.leads,
                "people": self.people, "owner_email_cleared": self.owner_email_cleared,
                "content_uses_renamed": self.content_uses, "lookups_deleted": self.lookups_deleted,
                "history_events_scrubbed": self.history_scrubbed,
                "outbox_messages_scrubbed": self.messages_scrubbed,
                "outbox_messages_still_queued": self.messages_queued,
                "card_edits_queued": self.card_edits, "notes": self.notes()}

    def lines(self) -> list[str]:
        verb = "would be" if self.dry_run else "were"
        if not self.found:
            return [f"nothing in the store holds {self.email}"]
        out = [f"lead {lead['external_id']}: {', '.join(lead['fields']) or 'nothing'} {verb} "
               "cleared" for lead in self.leads]
        out += [f"person {p['slack_id']}: {', '.join(p['fields']) or 'nothing'} {verb} cleared"
                for p in self.people]
        counts = {"leads' and deals' CRM owner email": sum(self.owner_email_cleared.values()),
                  "content uses renamed to a stand-in": self.content_uses,
                  "owner lookups and notices deleted": self.lookups_deleted,
                  "history events scrubbed": self.history_scrubbed,
                  "copies of posted messages scrubbed": self.messages_scrubbed,
                  "card edits queued for Slack": self.card_edits}
        out += [f"{n:,} {what}" for what, n in counts.items() if n]
        return out + [f"note: {n}" for n in self.notes()]

    def notes(self) -> list[str]:
        notes = ["metrics, counts and survey results are unchanged; survey answers name nobody"]
        if self.leads:
            notes.append("the CRM still holds the lead: erase it there too, or its next sync "
                         "writes the fields back")
        notes += [f"{p['slack_id']} is listed in [[people]] of the config: remove their email "
                  "and name there, or the next start writes them back"
                  for p in self.people if p["in_config"]]
        if self.messages_queued:
            notes.append(f"{self.messages_queued} queued message(s) mention them and are sent "
                         "as written")
        return notes


def check_email(text: str) -> str:
    email = text.strip().lower()
    if not EMAIL.fullmatch(email):
        raise NotAnEmail(f"{text!r} is not an email address like someone@example.com")
    return email


def erase(services: Services, email: str, *, dry_run: bool = False) -> ErasureReport:
    """Erase in one transaction; a dry run works it all out, then rolls it back."""
    report = ErasureReport(check_email(email), dry_run)
    with services.sessions() as session:
        _erase(services.work_in(session), report)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    return report


def _erase(work: Work, report: ErasureReport) -> None:
    session, team, email = work.session, work.team_id, report.email
    leads = queries.list_leads_with_email(session, team, email)
    people = queries.list_people_with_email(session, team, email)
    needles = {email, *(r.name for r in [*leads, *people] if r.name and len(r.name) >= MIN_NAME)}
    _scrub_history(work, report, {lead.id for lead in leads}, needles)
    refs = [f"lead:{lead.id}:" for lead in leads]
    for lead in leads:
        report.leads.append({"external_id": lead.external_id,
                             "fields": _clear(lead, queries.LEAD_PERSONAL)})
    for person in people:
        report.people.append({"slack_id": person.slack_id, "in_config": person.from_config,
                              "fields": _clear(person, queries.PERSON_PERSONAL)})
    report.owner_email_cleared = queries.clear_owner_email(session, team, email)
    report.content_uses = queries.replace_content_user(session, team, email,
                                                      f"erased-{secrets.token_hex(6)}")
    report.lookups_deleted = queries.delete_email_bookkeeping(session, team, email)
    session.flush()
    before = len(queries.list_messages_mentioning(session, team, (), refs))
    for lead in leads:  # the cards in Slack now show the CRM id, not the name
        refresh_cards(work, lead)
    session.flush()
    report.card_edits = len(queries.list_messages_mentioning(session, team, (), refs)) - before
    _scrub_messages(work, report, needles, refs)  # with what the edits superseded


def _clear(row: Any, fields: tuple[str, ...]) -> list[str]:
    cleared = [f for f in fields if getattr(row, f) is not None]
    for f in cleared:
        setattr(row, f, None)
    return cleared


def _scrub_history(work: Work, report: ErasureReport, lead_ids: set[int],
                   needles: set[str]) -> None:
    named = _mention(needles)
    for event in queries.list_events_to_scrub(work.session, work.team_id, lead_ids,
                                              _stored(needles)):
        if not event.data:  # a JSON null
            continue
        data = {k: v for k, v in event.data.items()
                if not (event.lead_id in lead_ids and k == "note")}  # a note is about the lead
        data = _replace(data, named)
        if data != event.data:
            event.data = data
            report.history_scrubbed += 1


def _scrub_messages(work: Work, report: ErasureReport, needles: set[str],
                    refs: list[str]) -> None:
    named = _mention(needles)
    for row in queries.list_messages_mentioning(work.session, work.team_id, _stored(needles),
                                                refs):
        # the database's LIKE finds a needle inside a word too ("Ann" in "channel", any case
        # on SQLite): a message is the erased person's when it is about their lead or names them
        mentions = _replace(row.payload, named) != row.payload
        about = (row.ref or "").startswith(tuple(refs))
        if row.state not in queries.FINISHED:
            report.messages_queued += mentions
        elif mentions or about:
            row.payload = {"text": ERASED}  # never read again: only the copy is rewritten
            report.messages_scrubbed += 1


def _stored(needles: set[str]) -> list[str]:
    """The needles as JSON columns hold them: non-ASCII letters escaped (\\u00e9)."""
    return [json.dumps(n)[1:-1] for n in needles]


def _mention(needles: Collection[str]) -> re.Pattern[str]:
    """Any needle as a whole word, in any case: erasing "Ann" leaves "Annual" alone. Only
    Latin letters and digits end a word: a name within Chinese or Japanese text, written
    without spaces, is found too."""
    words = "|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{words})(?![A-Za-z0-9_])", re.IGNORECASE)


def _replace(value: Any, named: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return named.sub(ERASED, value)
    if isinstance(value, dict):
        return {k: _replace(v, named) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, named) for v in value]
    return value
