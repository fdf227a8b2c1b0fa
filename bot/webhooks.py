"""`POST /webhooks/<entity>`: CRMs and marketing automation push records here.

Signed like Slack's own requests: `X-Alignbot-Signature: v1=<hex HMAC-SHA256(secret,
"v1:" + timestamp + ":" + raw body)>`, at most five minutes old. A bad signature
changes nothing (401); bad JSON is a 400; a body or batch over the limit a 413.
Good records are stored even when others in the batch are rejected, and every
rejection is reported with its reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from bot import directory
from bot.handoff import Handoffs
from bot.ingest import IngestResult, ingest
from bot.records import ENTITIES, MAX_BATCH, Checked
from bot.services import Services
from storage.bulk import Rows, Statement, execute, gc_paused
from storage.db import lock_handoffs

MAX_BODY_BYTES = 8 * 1024 * 1024
WINDOW_SECONDS = 300


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


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
    except ValueError as exc:
        return Answer(400, {"error": str(exc)})
    if len(records) > MAX_BATCH:
        return Answer(413, {"error": f"{len(records)} records; a batch holds at most {MAX_BATCH}"})
    return Answer(200, store(services, entity, records, actor="webhook").as_dict())


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


def store(services: Services, entity: str, records: Sequence[Any] | Checked, *,
          actor: str) -> IngestResult:
    """Ingest in one transaction, then route and card every new lead in the same one."""
    with gc_paused():
        return stage(services, entity, records, actor=actor).commit()


def stage(services: Services, entity: str, records: Sequence[Any] | Checked, *,
          actor: str) -> Staged:
    """The reading and deciding half of `store`: ingested, routed and carded in an open
    transaction, the new rows' INSERTs prepared but not run."""
    now = services.clock.now()
    session = services.sessions()
    try:
        def person(email: str):
            return directory.resolve_owner(session, services.team_id, email, slack=services.slack,
                                           config=services.config, now=now)

        if entity == "leads":  # it routes and posts cards: see lock_handoffs
            lock_handoffs(session, services.team_id)
        rows = Rows()  # new leads' history and nudges, written once after the leads
        result = ingest(session, services.team_id, entity, records, now=now, actor=actor,
                        config=services.config, rows=rows,
                        resolve_owner=lambda email: (p.id if (p := person(email)) else None))
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
    secret = services.secrets.webhook_secret
    if not secret:
        return Answer(503, {"error": "webhooks are off: set ALIGNBOT_WEBHOOK_SECRET"})
    timestamp = headers.get("X-Alignbot-Timestamp", "")
    given = headers.get("X-Alignbot-Signature", "")
    if not timestamp.isdigit() or not given:
        return Answer(401, {"error": "missing X-Alignbot-Timestamp or X-Alignbot-Signature"})
    if abs(services.clock.now().timestamp() - int(timestamp)) > WINDOW_SECONDS:
        return Answer(401, {"error": "X-Alignbot-Timestamp is more than 5 minutes off"})
    if not hmac.compare_digest(given, signature(secret, timestamp, body)):
        return Answer(401, {"error": "bad signature"})
    return None
