"""The batch pipeline every intake shares (webhooks, CSV imports, the shell): records are
checked, owners looked up in Slack before any transaction, then ingested, routed and
carded in one transaction (new leads, stored ones an update routes, and the cards of
stored ones it moves to another stage). A batch the
database refuses is stored again in halves, down to the one record it refuses (read once
more: a new key another request stored meanwhile is an update, not a refusal). An import
runs `stage` and `Staged.commit` on two threads, reading the next batch while the last
one is written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import InvalidOperation
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session

from bot.handoff import directory
from bot.handoff.cards import refresh_moved
from bot.handoff.new_leads import Handoffs
from bot.intake.ingest import IngestResult, ingest
from bot.intake.records import Checked, Rejection, check, key_text
from bot.platform.services import Services
from storage.bulk import Statement, batch, execute, gc_paused
from storage.db import analyze_grown_after, lock_handoffs

log = logging.getLogger(__name__)

OWNER_FIELDS = {"leads": "owner_email", "deals": "owner_email", "content_usage": "user_email"}


def store(services: Services, entity: str, records: Sequence[Any] | Checked, *,
          actor: str, history: bool = False) -> IngestResult:
    """Ingest in one transaction, then route and card every new lead in the same one. A batch
    the database refuses is stored again in halves, down to the one record it refuses.
    `history`: records of the past (an import), see `ingest`."""
    checked = records if isinstance(records, Checked) else \
        check(entity, records, services.clock.now())
    answers = look_up_owners(services, entity, checked)
    with gc_paused():
        result = _store(services, entity, checked, actor, answers, history=history)
    # webhooks can grow a table faster than autovacuum looks
    analyze_grown_after(services.engine, len(checked.parsed))
    return result


def _store(services: Services, entity: str, checked: Checked, actor: str,
           answers: dict[str, directory.Answer], *, history: bool,
           again: bool = True) -> IngestResult:
    try:
        return stage(services, entity, checked, actor=actor, answers=answers,
                     history=history).commit()
    except Exception as exc:
        if not refused_value(exc) or not checked.parsed:
            raise
        if len(checked.parsed) == 1:
            if again and isinstance(exc, IntegrityError):
                # Most likely its key, new when read, stored since by a request in flight
                # with ours: read again, the record updates that row. (A batch's halves
                # are read again anyway.)
                return _store(services, entity, checked, actor, answers, history=history,
                              again=False)
            [(index, values)] = checked.parsed
            log.warning("%s: the database refused record %d of a batch (%s)", actor, index,
                        type(getattr(exc, "orig", None) or exc).__name__)
            return IngestResult(rejected=sorted([*checked.rejected, Rejection(
                index, key_text(entity, values), [f"the database refused it: {first_line(exc)}"])],
                key=lambda r: r.index))
    half = len(checked.parsed) // 2
    first = _store(services, entity, Checked(checked.parsed[:half], checked.rejected), actor,
                   answers, history=history)
    return first.add(_store(services, entity, Checked(checked.parsed[half:], []), actor, answers,
                            history=history))


def refused_value(exc: Exception) -> bool:
    """An error a record's values cause (the database, or the driver binding them, refusing
    one), as opposed to the database being away."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return True  # raised while binding a value
    return isinstance(exc, UnicodeError | OverflowError | InvalidOperation)


def first_line(exc: Exception) -> str:
    """What went wrong, without the statement and its parameters (a lead's personal data)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"[:300]


def look_up_owners(services: Services, entity: str, checked: Checked) -> dict[str, directory.Answer]:
    """Slack's answers about the batch's owner emails, asked before its transaction."""
    name = OWNER_FIELDS.get(entity)
    emails = {v[name] for _, v in checked.parsed if name in v} if name else set()
    return directory.look_up(services.sessions, services.slack, services.team_id, emails,
                             services.clock.now())


def stage(services: Services, entity: str, records: Sequence[Any] | Checked, *,
          actor: str, answers: dict[str, directory.Answer] | None = None,
          history: bool = False) -> Staged:
    """The reading and deciding half of `store`: ingested, routed and carded in an open
    transaction, the new rows' INSERTs prepared but not run. Slack is asked about owners
    first (unless `answers` are given), before the transaction and its locks."""
    checked = records if isinstance(records, Checked) else check(entity, records)
    if answers is None:
        answers = look_up_owners(services, entity, checked)
    now = services.clock.now()
    session = services.sessions()
    work = services.work_in(session, now=now)
    try:
        def person(email: str):
            return directory.resolve_owner(work, email, answers=answers)

        def owner_id(email: str) -> int | None:
            try:
                return p.id if (p := person(email)) else None
            except directory.LookupFailed:
                return None  # stored without an owner until one is found

        if entity == "leads":  # it routes and posts cards: see lock_handoffs
            lock_handoffs(session, services.team_id)
        rows = batch(session)  # new leads' history and nudges, written once after the leads
        result = ingest(work, entity, checked, actor=actor, resolve_owner=owner_id,
                        history=history)
        handoffs = Handoffs(work, owner_by_email=person)
        with session.no_autoflush:  # new leads are written once, already routed and carded
            for lead in result.new_leads:
                handoffs.hand_off(lead)
            handoffs.route_again(result.routes, actor=actor)  # stored leads the CRM routes
            refresh_moved(work, result.moved)  # and those it moves on: their cards, as a click
        inserts = rows.prepare(session)
    except BaseException:
        session.close()  # rolls back
        raise
    return Staged(services, session, result, handoffs, inserts)


@dataclass
class Staged:
    """A batch staged by `stage`; `commit()` is the writing half, mostly the database's own
    work, so an import runs it on another thread while it reads the next batch."""
    services: Services
    session: Session
    result: IngestResult
    handoffs: Handoffs
    inserts: list[Statement]

    bursts: set[int] = field(default_factory=set)  # the bursts it grew, once committed

    def commit(self, *, show_bursts: bool = True) -> IngestResult:
        """Write and commit; `show_bursts=False` leaves bursts' summaries to the caller."""
        with self.session:
            execute(self.session, self.inserts)
            self.bursts = self.handoffs.finish(show=show_bursts)
            self.session.commit()
        self.services.wake_sender()
        return self.result
