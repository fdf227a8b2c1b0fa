"""`POST /webhooks/<entity>`: CRMs and marketing automation push records here.

Signed like Slack's own requests: `X-Alignbot-Signature: v1=<hex HMAC-SHA256(secret,
"v1:" + timestamp + ":" + raw body)>`, at most five minutes old. In that order: a body
over the limit is a 413, any bad or malformed signature header a 401 (nothing is parsed
before), an unknown entity a 404, bad JSON a 400, a batch over the limit a 413, a request
seen before (a replay: the same signature) a 409. Good records are stored even when others in the batch
are rejected, and every rejection is reported with its reason; a record the database
still refuses is rejected alone. A database that does not answer is a 503: retry later.

In OAuth mode (`POST /webhooks/<team_id>/<entity>`) each workspace's CRM signs with a
secret of its own, derived from ALIGNBOT_WEBHOOK_SECRET (`alignbot --team T webhook-secret`
prints it): the CRM of one workspace cannot write into another's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)

from bot.intake.batches import first_line, store
from bot.intake.records import ENTITIES, MAX_BATCH
from bot.platform import failures, telemetry
from bot.platform.config import Secret
from bot.platform.services import Services
from storage import ingest as queries

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


def secret_of(services: Services, team_id: str) -> Secret | None:
    """The secret a request for workspace `team_id` is signed with: ALIGNBOT_WEBHOOK_SECRET
    itself in single-workspace mode; in OAuth mode, one derived from it for the workspace,
    since every workspace's CRM holds its own and one must not open another's path."""
    secret = services.secrets.webhook_secret
    if not secret or services.installations is None:
        return secret
    key = hmac.new(secret.encode(), b"alignbot webhook secret:" + team_id.encode(),
                   hashlib.sha256)
    return Secret("whsec_" + key.hexdigest())


def receive(services: Services, entity: str, headers: Mapping[str, str], body: bytes,
            team_id: str | None = None) -> Answer:
    """In OAuth mode `team_id` is the path's workspace: its secret checks the signature, and
    only then is it looked up (404 when it has not installed alignbot), so a caller who
    cannot sign learns nothing of which workspaces have."""
    if len(body) > MAX_BODY_BYTES:
        return too_large()
    refused = _check_signature(services, team_id or services.team_id, headers, body)
    if refused:
        return refused
    if team_id is not None:
        if not services.installations.token(team_id):
            return Answer(404, {"error": f"no workspace {team_id} has alignbot installed"})
        services = services.for_team(team_id)
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
        log.error("webhook %s: %s; answered 503", entity, failures.one_line(exc, services.team_id)
                  or f"the database did not answer ({first_line(exc)})")
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
        result = store(services, entity, records, actor="webhook")
    except BaseException:
        with suppress(SQLAlchemyError), services.sessions.begin() as session:
            queries.delete_webhook_request(session, services.team_id, sig)
        raise
    telemetry.count_import("webhook", len(records) - len(result.rejected), len(result.rejected))
    return Answer(200, result.as_dict())


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


def _check_signature(services: Services, team_id: str, headers: Mapping[str, str],
                     body: bytes) -> Answer | None:
    """None when the request is signed with the workspace's secret within the window; else
    the 401 (or 503 when there is no secret). Malformed headers are refused before any
    arithmetic."""
    secret = secret_of(services, team_id)
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
        if services.installations is not None:
            return Answer(401, {"error": f"bad signature: workspace {team_id}'s CRM signs with "
                                         f"its own secret (`alignbot --team {team_id} "
                                         "webhook-secret` prints it)"})
        return Answer(401, {"error": "bad signature"})
    return None
