"""Who is who: CRM owner emails to Slack users, and Slack's changes to people.

People listed in the config are matched by email first; anyone else through
`users.lookupByEmail`, remembered for a week. An email nobody matches is
remembered too, and the admins are told once per email; its leads wait in the
handoff channel's queue instead of being lost.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot import outbox
from bot.blocks import admin as views
from bot.config import Config
from storage.models import Person, UnmappedEmail
from storage.people import get_person, get_person_by_email, get_unmapped_email

log = logging.getLogger(__name__)
FRESH = timedelta(days=7)  # how long a lookup answer is trusted
RETRY_MISSING = timedelta(days=1)  # how long "nobody has that email" is trusted


def resolve_owner(session: Session, team_id: str, email: str, *, slack: WebClient,
                  config: Config, now: datetime) -> Person | None:
    email = email.strip().lower()
    person = get_person_by_email(session, team_id, email)
    if person is not None and (person.from_config or _fresh(person.looked_up_at, now, FRESH)):
        return person
    missing = get_unmapped_email(session, team_id, email)
    if person is None and missing is not None and _fresh(missing.first_seen_at, now, RETRY_MISSING):
        missing.leads += 1
        return None
    try:
        user = slack.users_lookupByEmail(email=email)["user"]
    except SlackApiError as exc:
        if exc.response.get("error") == "users_not_found":
            _remember_missing(session, team_id, email, missing, config, now)
            return None
        log.warning("users.lookupByEmail failed (%s); using what we knew", exc.response.get("error"))
        return person
    return upsert_slack_user(session, team_id, user, now, email=email)


def upsert_slack_user(session: Session, team_id: str, user: dict[str, Any], now: datetime,
                      email: str | None = None) -> Person:
    """Store what Slack says about a user; a role from the config is never overwritten."""
    known = get_person(session, team_id, user["id"])
    person = known or Person(team_id=team_id, slack_id=user["id"], role="sales", weight=1,
                             from_config=False)
    profile = user.get("profile") or {}
    person.email = person.email or email or (profile.get("email") or "").lower() or None
    person.name = user.get("real_name") or profile.get("real_name") or person.name
    person.timezone = person.timezone if person.from_config and person.timezone else user.get("tz")
    person.deactivated = bool(user.get("deleted"))
    person.looked_up_at = person.updated_at = now
    session.add(person)
    if known is None:
        _store_now(session)
    return person


def user_changed(session: Session, team_id: str, user: dict[str, Any], now: datetime) -> None:
    """A `user_change` event: keep only people we already know up to date."""
    if get_person(session, team_id, user.get("id", "")) is not None:
        upsert_slack_user(session, team_id, user, now)


def _remember_missing(session: Session, team_id: str, email: str, missing: UnmappedEmail | None,
                      config: Config, now: datetime) -> None:
    new = missing is None
    if new:
        missing = UnmappedEmail(team_id=team_id, email=email, first_seen_at=now, leads=0)
        session.add(missing)
    missing.first_seen_at = missing.first_seen_at or now
    missing.leads += 1
    if missing.notified_at is None:
        missing.notified_at = now
        notice = views.unmapped_owner(email)
        for admin in config.workspace.admins:
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
