"""Records as webhooks and CSV files send them: each entity's fields and their parsers,
and checking a batch of records. Nothing is read or written here (nor is the ORM loaded),
so an import checks its file in a process of its own (see bot.csvfile).

A bad record is rejected with every reason at once; the good ones of its batch go on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

ENTITIES = ("leads", "deals", "customers", "spend", "content", "content_usage")
MAX_BATCH = 1000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A lead's statuses, and the reasons sales may reject one for (the lifecycle's words).
STATUSES = ("new", "routed", "accepted", "contacted", "qualified", "won", "lost", "rejected",
            "recycled")
REJECTION_REASONS = {
    "not_icp": "Not our ideal customer",
    "duplicate": "Duplicate",
    "wrong_territory": "Wrong territory",
    "bad_data": "Bad contact data",
    "not_ready": "Not ready / nurture",
    "other": "Other",
}


@dataclass(frozen=True)
class Rejection:
    index: int
    external_id: str | None
    errors: list[str]


# ------------------------------------------------------------------ field parsers


def text(limit: int) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if not isinstance(v, str | int) or isinstance(v, bool):
            raise ValueError(f"{v!r} is not text")
        s = str(v).strip()
        if len(s) > limit:
            raise ValueError(f"is {len(s)} characters long; at most {limit}")
        return s
    return parse


_email_text = text(320)


def email(v: Any) -> str:
    s = _email_text(v).lower()
    if not EMAIL.match(s):
        raise ValueError(f"{v!r} is not an email address")
    return s


def instant(v: Any) -> datetime:
    try:
        when = datetime.fromisoformat(str(v).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{v!r} is not an ISO 8601 time like 2026-03-01T10:00:00-05:00") from None
    if when.tzinfo is None:
        raise ValueError(f"{v!r} has no UTC offset (write it like 2026-03-01T10:00:00-05:00)")
    return when.astimezone(UTC)


def money(v: Any) -> Decimal:
    try:
        amount = Decimal(str(v).strip()) if not isinstance(v, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ValueError(f"{v!r} is not an amount like 1200.50 (no currency sign, not negative)")
    return amount.quantize(Decimal("0.01"))


def score(v: Any) -> int:
    try:
        n = int(str(v).strip()) if not isinstance(v, bool | float) else int(v)
    except ValueError:
        raise ValueError(f"{v!r} is not a whole number") from None
    if isinstance(v, float) and not v.is_integer():
        raise ValueError(f"{v!r} is not a whole number")
    if not 0 <= n <= 100:
        raise ValueError(f"{n} is not between 0 and 100")
    return n


def choice(*options: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        s = str(v).strip().lower()
        if s not in options:
            raise ValueError(f"{v!r} is not one of {', '.join(options)}")
        return s
    return parse


def month(v: Any) -> date:
    m = re.match(r"^(\d{4})-(\d{2})$", str(v).strip())
    if not m or not 1 <= int(m[2]) <= 12:
        raise ValueError(f"{v!r} is not a month like 2026-03")
    return date(int(m[1]), int(m[2]), 1)


KEY = text(128)
FIELDS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "leads": {"external_id": KEY, "source": text(64), "email": email, "name": text(200),
              "company": text(200), "title": text(200), "score": score, "segment": text(64),
              "region": text(64), "owner_email": email, "why": text(4000), "crm_url": text(1000),
              "created_at": instant, "mql_at": instant, "status": choice(*STATUSES),
              "routed_at": instant, "accepted_at": instant, "rejected_at": instant,
              "rejection_reason": choice(*REJECTION_REASONS), "first_touch_at": instant},
    "deals": {"external_id": KEY, "lead_external_id": KEY, "name": text(200), "owner_email": email,
              "amount": money, "source": choice("marketing", "sales", "partner"),
              "created_at": instant, "closed_at": instant, "outcome": choice("open", "won", "lost")},
    "customers": {"external_id": KEY, "name": text(200), "started_at": instant,
                  "churned_at": instant, "mrr": money},
    "spend": {"month": month, "team": choice("marketing", "sales"), "amount": money},
    "content": {"external_id": KEY, "title": text(300), "kind": text(64), "url": text(1000),
                "created_at": instant},
    "content_usage": {"content_external_id": KEY, "user_email": email, "used_at": instant,
                      "deal_external_id": KEY},
}
REQUIRED = {"leads": ("external_id", "source"), "deals": ("external_id",),
            "customers": ("external_id", "started_at"), "spend": ("month", "team", "amount"),
            "content": ("external_id",),
            "content_usage": ("content_external_id", "user_email", "used_at")}


def parse(entity: str, raw: Any) -> tuple[dict[str, Any], list[str]]:
    """A record's values and every problem with it (empty strings count as absent)."""
    if not isinstance(raw, dict):
        return {}, ["record must be a JSON object"]
    fields, values, errors = FIELDS[entity], {}, []
    for name, value in raw.items():
        if name not in fields:
            errors.append(f"{name}: unknown field; {entity} take {', '.join(fields)}")
        elif value is not None and value != "":
            try:
                values[name] = fields[name](value)
            except ValueError as exc:
                errors.append(f"{name}: {exc}")
    errors += [f"{name}: is required" for name in REQUIRED[entity]
               if name not in values and not any(e.startswith(f"{name}:") for e in errors)]
    errors += _cross_checks(entity, values)
    return values, errors


# A lead's checks across fields, and the fields that bring them into play (most records
# have none of these).
_LEAD_ORDER = (("mql_at", "routed_at"), ("routed_at", "accepted_at"), ("routed_at", "rejected_at"),
               ("accepted_at", "first_touch_at"))
_LEAD_CHECKED = {"routed_at", "accepted_at", "rejected_at", "first_touch_at", "status"}


def _cross_checks(entity: str, v: dict[str, Any]) -> list[str]:
    if entity == "leads" and _LEAD_CHECKED.isdisjoint(v):
        return []
    errors = []

    def order(earlier: str, later: str) -> None:
        if earlier in v and later in v and v[later] < v[earlier]:
            errors.append(f"{later}: is before {earlier}")

    if entity == "deals":
        order("created_at", "closed_at")
        if v.get("outcome") in ("won", "lost") and "closed_at" not in v:
            errors.append(f"closed_at: needed when outcome is {v['outcome']}")
    elif entity == "customers":
        order("started_at", "churned_at")
    elif entity == "leads":
        for a, b in _LEAD_ORDER:
            order(a, b)
        if v.get("status") == "rejected" and "rejection_reason" not in v:
            errors.append("rejection_reason: needed when status is rejected")
    return errors


def key_of(entity: str, raw: Any, values: dict[str, Any]) -> str | None:
    if entity == "spend":
        return f"{raw.get('month')}/{raw.get('team')}" if isinstance(raw, dict) else None
    if entity == "content_usage":
        return (f"{raw.get('content_external_id')}/{raw.get('user_email')}/{raw.get('used_at')}"
                if isinstance(raw, dict) else None)
    key = values.get("external_id") or (raw.get("external_id") if isinstance(raw, dict) else None)
    return str(key) if key is not None else None


# ------------------------------------------------------------------ upserts


@dataclass(frozen=True)
class Checked:
    """A batch validated, before anything is read or written: each good record's values
    with its index in the batch, and the rejections."""
    parsed: list[tuple[int, dict[str, Any]]]
    rejected: list[Rejection]


def check(entity: str, records: Sequence[Any]) -> Checked:
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r}; one of {', '.join(ENTITIES)}")
    parsed, rejected = [], []
    for index, raw in enumerate(records):
        values, errors = parse(entity, raw)
        if errors:
            rejected.append(Rejection(index, key_of(entity, raw, values), errors))
        else:
            parsed.append((index, values))
    return Checked(parsed, rejected)
