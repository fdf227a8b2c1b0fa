"""`POST /webhooks/<entity>`: CRMs and marketing automation push records here.

Signed like Slack's own requests: `X-Alignbot-Signature: v1=<hex HMAC-SHA256(secret,
"v1:" + timestamp + ":" + raw body)>`, at most five minutes old. In that order: a body
over the limit is a 413, any bad or malformed signature header a 401 (nothing is parsed
before), bad JSON a 400, a request seen before (a replay: the same signature) a 409,
a batch over the limit a 413. Good records are stored even when others in the batch
are rejected, and every rejection is reported with its reason; a record the database
still refuses is rejected alone. A database that does not answer is a 503: retry later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import InvalidOperation
from typing import Any

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.orm import Session

from bot.handoff import directory
from bot.handoff.service import Handoffs
from bot.intake.ingest import IngestResult, ingest
from bot.intake.records import ENTITIES, MAX_BATCH, Checked, Rejection, check, key_text
from bot.platform.services import Services
from storage import ingest as queries
from storage.bulk import Rows, Statement, execute, gc_paused
from storage.db import lock_handoffs

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
WINDOW_SECONDS = 300
# A request is valid while its timestamp is within the window of now, on either side, so
# its signature is remembered for twice that.
KEEP_SIGNATURES = timedelta(seconds=2 * WINDOW_SECONDS)
TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only (str.isdigit takes "²" and "٣")
SIGNATURE = re.compile(r"v1=[0-9a-f]{64}")
RETRY_AFTER_SECONDS = 30
# Where the database, not a record, is the trouble: the whole request waits for a retry.
UNAVAILABLE = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), b"v1:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def receive(services: Services, entity: str, headers: Mapping[str, str], body: bytes) -> Answer:
    if len(body) > MAX_BODY_BYTES:
        return too_large()
    refused = _check_signature(services, headers, body)
    if refused:
        return refused
    if entity not in ENTITIES:
        return Answer(404, {"error": f"unknown entity {entity!r}; use one of {', '.join(ENTITIES)}"})
    try:
        records = records_of(entity, json.loads(body))
    except RecursionError:
        return Answer(400, {"error": "the JSON is nested too deeply"})
    except ValueError as exc:
        return Answer(400, {"error": str(exc)})
    if len(records) > MAX_BATCH:
        return Answer(413, {"error": f"{len(records)} records; a batch holds at most {MAX_BATCH}"})
    try:
        return _receive_once(services, entity, records, headers["X-Alignbot-Signature"][3:])
    except UNAVAILABLE as exc:
        log.error("webhook %s: the database did not answer (%s); answered 503", entity,
                  _first_line(exc))
        return Answer(503, {"error": "the database is not answering; nothing was stored, "
                                     "retry later"},
                      {"Retry-After": str(RETRY_AFTER_SECONDS)})


def _receive_once(services: Services, entity: str, records: list[Any], sig: str) -> Answer:
    """Store the batch unless this very request came before (a replay would roll its records
    back to what it said then). A request that fails is forgotten: its retry is no replay."""
    if not _first_time(services, sig):
        return Answer(409, {"error": "this request was already received (the same signature): "
                                     "a replay. Sign each new request with its own timestamp"})
    try:
        return Answer(200, store(services, entity, records, actor="webhook").as_dict())
    except BaseException:
        with suppress(SQLAlchemyError), services.sessions.begin() as session:
            queries.delete_webhook_request(session, services.team_id, sig)
        raise


def _first_time(services: Services, sig: str) -> bool:
    now = services.clock.now()
    try:
        with services.sessions.begin() as session:
            queries.delete_webhook_requests_before(session, now - KEEP_SIGNATURES)
            queries.add_webhook_request(session, services.team_id, sig, now)
    except IntegrityError:
        return False
    return True


def too_large() -> Answer:
    return Answer(413, {"error": f"body over {MAX_BODY_BYTES} bytes; send smaller batches"})


def records_of(entity: str, data: Any) -> list[Any]:
    """One JSON object, or {"<entity>": [ ... ]}."""
    if isinstance(data, dict) and set(data) == {entity}:
        if not isinstance(data[entity], list):
            raise ValueError(f'"{entity}" must be a list of records')
        return data[entity]
    if isinstance(data, dict):
        return [data]
    raise ValueError(f'send one JSON object, or {{"{entity}": [ ... ]}}')


OWNER_FIELDS = {"leads": "owner_email", "deals": "owner_email", "content_usage": "user_email"}


def store(services: Services, entity: str, records: Sequence[Any] | Checked, *,
          actor: str) -> IngestResult:
    """Ingest in one transaction, then route and card every new lead in the same one. A batch
    the database refuses is stored again in halves, down to the one record it refuses."""
    checked = records if isinstance(records, Checked) else \
        check(entity, records, services.clock.now())
    answers = look_up_owners(services, entity, checked)
    with gc_paused():
        return _store(services, entity, checked, actor, answers)


def _store(services: Services, entity: str, checked: Checked, actor: str,
           answers: dict[str, directory.Answer]) -> IngestResult:
    try:
        return stage(services, entity, checked, actor=actor, answers=answers).commit()
    except Exception as exc:
        if not refused_value(exc) or not checked.parsed:
            raise
        if len(checked.parsed) == 1:
            [(index, values)] = checked.parsed
            log.warning("%s: the database refused record %d of a batch (%s)", actor, index,
                        type(getattr(exc, "orig", None) or exc).__name__)
            return IngestResult(rejected=sorted([*checked.rejected, Rejection(
                index, key_text(entity, values), [f"the database refused it: {_first_line(exc)}"])],
                key=lambda r: r.index))
    half = len(checked.parsed) // 2
    first = _store(services, entity, Checked(checked.parsed[:half], checked.rejected), actor,
                   answers)
    return first.add(_store(services, entity, Checked(checked.parsed[half:], []), actor, answers))


def refused_value(exc: Exception) -> bool:
    """An error a record's values cause (the database, or the driver binding them, refusing
    one), as opposed to the database being away."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return True  # raised while binding a value
    return isinstance(exc, UnicodeError | OverflowError | InvalidOperation)


def _first_line(exc: Exception) -> str:
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
          actor: str, answers: dict[str, directory.Answer] | None = None) -> Staged:
    """The reading and deciding half of `store`: ingested, routed and carded in an open
    transaction, the new rows' INSERTs prepared but not run. Slack is asked about owners
    first (unless `answers` are given), before the transaction and its locks."""
    checked = records if isinstance(records, Checked) else check(entity, records)
    if answers is None:
        answers = look_up_owners(services, entity, checked)
    now = services.clock.now()
    session = services.sessions()
    try:
        def person(email: str):
            return directory.resolve_owner(session, services.team_id, email, answers=answers,
                                           config=services.config, now=now)

        def owner_id(email: str) -> int | None:
            try:
                return p.id if (p := person(email)) else None
            except directory.LookupFailed:
                return None  # stored without an owner until one is found

        if entity == "leads":  # it routes and posts cards: see lock_handoffs
            lock_handoffs(session, services.team_id)
        rows = Rows()  # new leads' history and nudges, written once after the leads
        result = ingest(session, services.team_id, entity, checked, now=now, actor=actor,
                        config=services.config, rows=rows, resolve_owner=owner_id)
        handoffs = Handoffs(session, services.team_id, services.config, now, owner_by_email=person,
                            rows=rows)
        with session.no_autoflush:  # new leads are written once, already routed and carded
            for lead in result.new_leads:
                handoffs.hand_off(lead)
        inserts = rows.prepare(session.get_bind().dialect)
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


def _check_signature(services: Services, headers: Mapping[str, str], body: bytes) -> Answer | None:
    """None when the request is signed with the secret within the window; else the 401 (or
    503 when there is no secret). Malformed headers are refused before any arithmetic."""
    secret = services.secrets.webhook_secret
    if not secret:
        return Answer(503, {"error": "webhooks are off: set ALIGNBOT_WEBHOOK_SECRET"})
    timestamp = headers.get("X-Alignbot-Timestamp", "")
    given = headers.get("X-Alignbot-Signature", "")
    if not timestamp or not given:
        return Answer(401, {"error": "missing X-Alignbot-Timestamp or X-Alignbot-Signature"})
    if not TIMESTAMP.fullmatch(timestamp) or \
            abs(services.clock.now().timestamp() - int(timestamp)) > WINDOW_SECONDS:
        return Answer(401, {"error": "X-Alignbot-Timestamp must be the Unix time in seconds, "
                                     "within 5 minutes of now"})
    if not SIGNATURE.fullmatch(given) or \
            not hmac.compare_digest(given, signature(secret, timestamp, body)):
        return Answer(401, {"error": "bad signature"})
    return None
