"""Who is who: CRM owner emails to Slack users, and Slack's changes to people.

People listed in the config are matched by email first; anyone else through
`users.lookupByEmail`, remembered for a week. An email nobody matches is
remembered too, and the admins are told once per email; its leads wait in the
handoff channel's queue instead of being lost.

Slack is asked before a batch's transaction begins (`look_up`): a lookup can take
seconds, and no lock may wait on it. When Slack cannot be asked (a network error, an
outage), nothing is concluded: the email is kept in `owner_lookups`, its leads wait
unassigned saying why, and `bot.intake.owners` asks again every few minutes.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy.orm import Session, sessionmaker

from bot.blocks import admin as views
from bot.platform import outbox
from bot.platform.work import Work
from storage.models import OwnerLookup, Person, UnmappedEmail
from storage.people import (
    delete_owner_lookup,
    get_owner_lookup,
    get_person,
    get_person_by_email,
    get_unmapped_email,
    list_owner_lookups,
    list_people_by_email,
    list_unmapped_emails,
)

log = logging.getLogger(__name__)
FRESH = timedelta(days=7)  # how long a lookup answer is trusted
RETRY_MISSING = timedelta(days=1)  # how long "nobody has that email" is trusted
RETRY_FAILED = timedelta(minutes=5)  # how soon a failed lookup is tried again
# What a lookup may raise when Slack does not answer: urllib's errors are OSErrors
# (URLError, timeouts, resets), a connection cut mid-answer an HTTPException.
UNREACHABLE = (SlackClientError, OSError, http.client.HTTPException)


@dataclass(frozen=True)
class Answer:
    """What Slack said about an email: its user, or nobody (None); or why it could not say."""
    user: dict[str, Any] | None = None
    failed: str | None = None


class LookupFailed(Exception):
    """Slack could not be asked who has an email, and nobody here knows: the lead waits."""


def look_up(sessions: sessionmaker[Session], slack: WebClient, team_id: str,
            emails: Iterable[str], now: datetime) -> dict[str, Answer]:
    """Slack's answers for the emails the store cannot answer by itself, asked with no
    transaction open (pass them to `resolve_owner` in the batch's transaction)."""
    emails = {e.strip().lower() for e in emails}
    if not emails:
        return {}
    with sessions() as session:
        people = list_people_by_email(session, team_id, emails)
        missing = list_unmapped_emails(session, team_id, emails)
        failed = list_owner_lookups(session, team_id, emails)
    ask = [e for e in sorted(emails) if not _known(people.get(e), missing.get(e), now)
           and not (e in failed and now - failed[e].failed_at < RETRY_FAILED)]
    return ask_slack(slack, ask)


def ask_slack(slack: WebClient, emails: Iterable[str]) -> dict[str, Answer]:
    """`users.lookupByEmail` for each email. Once Slack does not answer one, the rest are
    not asked (each would wait as long) and wait for the retry too."""
    emails, answers = list(emails), {}
    for i, email in enumerate(emails):
        try:
            answers[email] = _ask(slack, email)
        except UNREACHABLE as exc:
            log.warning("users.lookupByEmail: no answer from Slack (%s); %d email(s) wait for "
                        "a retry", type(exc).__name__, len(emails) - i)
            answers.update(dict.fromkeys(emails[i:], Answer(
                failed=f"no answer from Slack: {type(exc).__name__}")))
            break
    return answers


def _ask(slack: WebClient, email: str) -> Answer:
    try:
        return Answer(user=slack.users_lookupByEmail(email=email)["user"])
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error == "users_not_found":
            return Answer()
        log.warning("users.lookupByEmail failed (%s); the email waits for a retry", error)
        return Answer(failed=f"Slack answered {error}")


def _known(person: Person | None, missing: UnmappedEmail | None, now: datetime) -> bool:
    """Whether the store answers for this email without asking Slack."""
    if person is not None:
        return person.from_config or _fresh(person.looked_up_at, now, FRESH)
    return missing is not None and _fresh(missing.first_seen_at, now, RETRY_MISSING)


def resolve_owner(work: Work, email: str, *, answers: Mapping[str, Answer]) -> Person | None:
    """The person with this email, from the store or Slack's `answers` (see `look_up`);
    None when nobody has it. Raises LookupFailed when Slack could not say and nobody here
    knows (the email is kept for a retry)."""
    session, team_id, now = work.session, work.team_id, work.now
    email = email.strip().lower()
    person = get_person_by_email(session, team_id, email)
    missing = None if person is not None else get_unmapped_email(session, team_id, email)
    if _known(person, missing, now):
        if person is None:
            missing.leads += 1
        return person
    answer = answers.get(email)  # None: not asked (it failed a moment ago)
    if answer is None or answer.failed is not None:
        error = _wait_for_lookup(work, email, answer and answer.failed)
        if person is not None:
            return person  # what we knew, though not lately
        raise LookupFailed(f"could not be looked up in Slack ({error}); alignbot "
                           f"tries again every {RETRY_FAILED.seconds // 60} minutes")
    delete_owner_lookup(session, team_id, email)
    if answer.user is None:
        _remember_missing(work, email, missing)
        return None
    return upsert_slack_user(work, answer.user, email=email)


def _wait_for_lookup(work: Work, email: str, error: str | None) -> str:
    """Keep the email for a retry; `error` None when Slack was not asked this time (the
    last failure stands). What failed, for the lead's card."""
    session, team_id, now = work.session, work.team_id, work.now
    lookup = get_owner_lookup(session, team_id, email)
    if lookup is None:
        lookup = OwnerLookup(team_id=team_id, email=email, first_failed_at=now, failed_at=now,
                             error=(error or "not asked before the batch")[:200])
        session.add(lookup)
        _store_now(session)
    elif error is not None:
        lookup.failed_at, lookup.error = now, error[:200]
    return lookup.error


def upsert_slack_user(work: Work, user: dict[str, Any], email: str | None = None) -> Person:
    """Store what Slack says about a user; a role from the config is never overwritten."""
    session, team_id = work.session, work.team_id
    known = get_person(session, team_id, user["id"])
    person = known or Person(team_id=team_id, slack_id=user["id"], role="sales", weight=1,
                             from_config=False)
    profile = user.get("profile") or {}
    person.email = person.email or email or (profile.get("email") or "").lower() or None
    person.name = user.get("real_name") or profile.get("real_name") or person.name
    person.timezone = person.timezone if person.from_config and person.timezone else user.get("tz")
    person.deactivated = bool(user.get("deleted"))
    person.looked_up_at = person.updated_at = work.now
    session.add(person)
    if known is None:
        _store_now(session)
    return person


def user_changed(work: Work, user: dict[str, Any]) -> None:
    """A `user_change` event: keep only people we already know up to date."""
    if get_person(work.session, work.team_id, user.get("id", "")) is not None:
        upsert_slack_user(work, user)


def _remember_missing(work: Work, email: str, missing: UnmappedEmail | None) -> None:
    session, team_id, now = work.session, work.team_id, work.now
    new = missing is None
    if new:
        missing = UnmappedEmail(team_id=team_id, email=email, first_seen_at=now, leads=0)
        session.add(missing)
    missing.first_seen_at = missing.first_seen_at or now
    missing.leads += 1
    if missing.notified_at is None:
        missing.notified_at = now
        notice = views.unmapped_owner(email)
        for admin in work.config.workspace.admins:
            outbox.post(session, team_id, admin, notice, now=now,
                        ref=f"unmapped:{email}")
    if new:
        _store_now(session)


def _store_now(session: Session) -> None:
    """Someone (or an email) first met: stored at once, since a batch of leads is routed
    without flushing as it goes, and its next lead naming them must find them."""
    session.flush()


def _fresh(at: datetime | None, now: datetime, ttl: timedelta) -> bool:
    return at is not None and now - at < ttl
