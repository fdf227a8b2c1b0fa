"""Records as webhooks and CSV files send them: each entity's fields and their parsers,
and checking a batch of records. Nothing is read or written here (nor is the ORM loaded),
so an import checks its file in a process of its own (see bot.intake.csvfile).

A bad record is rejected with every reason at once; the good ones of its batch go on.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

ENTITIES = ("leads", "deals", "customers", "spend", "content", "content_usage")
MAX_BATCH = 1000
# An address as the HTML standard's <input type=email> takes one, with a dot in the domain:
# no < > ( ) , ; : \ " [ ] or spaces, so none carries Slack markup (`x<!channel>@evil.example`)
EMAIL = re.compile(r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                   r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+")
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
# Each takes any JSON value (a CSV cell is text): what it cannot store is a ValueError that
# says why, never a value the database refuses. Values are shown shortened (a record may
# carry megabytes, or lists nested hundreds deep).

_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = 60
_SHOWN.maxlevel = 2


def shown(v: Any) -> str:
    try:
        return _SHOWN.repr(v)
    except ValueError:  # an int past Python's 4,300 digits
        return "a number of thousands of digits"


def _scalar(v: Any, what: str) -> str:
    """A JSON string or number as text; anything else is not `what`."""
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, int | float) and not isinstance(v, bool):
        try:
            return str(v)
        except ValueError:  # more digits than Python converts
            pass
    raise ValueError(f"{shown(v)} is not {what}")


def storable(s: str) -> str:
    """Text every database stores as sent: no NUL (PostgreSQL refuses it), and characters
    only (a lone UTF-16 surrogate, as "\\udfff" in JSON, is half of one: no UTF-8 encodes it)."""
    if "\x00" in s:
        raise ValueError("contains a NUL character (\\u0000), which text cannot hold")
    if not s.isascii():
        try:
            s.encode()
        except UnicodeEncodeError as exc:
            raise ValueError(f"contains {s[exc.start]!r}, half of a UTF-16 surrogate pair, "
                             "not a character") from None
    return s


def text(limit: int) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if isinstance(v, float):  # 5.5 as a name is a mistake; an id of 42 is not
            raise ValueError(f"{shown(v)} is not text")
        s = storable(_scalar(v, "text"))
        if len(s) > limit:
            raise ValueError(f"is {len(s)} characters long; at most {limit}")
        return s
    return parse


_email_text = text(320)


def email(v: Any) -> str:
    s = _email_text(v).lower()
    if not EMAIL.fullmatch(s):
        raise ValueError(f"{shown(v)} is not an email address like ann@example.com")
    return s


_url_text = text(1000)


def web_url(v: Any) -> str:
    """A link for a button people click: http or https only (`javascript:`, `slack://` and
    the like would run or open something else than a page)."""
    s = _url_text(v)
    parts = urlsplit(s)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{shown(v)} is not a web address (http:// or https://)")
    return s


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # no CRM record is older: 0001-01-01 means "none"
AHEAD = timedelta(days=1)  # what happened may be this far ahead of our clock (clocks differ)
PLANNED_AHEAD = timedelta(days=3650)  # an expected close, a churn or budget planned ahead
PLANNED = {"closed_at", "churned_at", "month"}  # times that may lie ahead


def instant(v: Any) -> datetime:
    s = _scalar(v, "an ISO 8601 time like 2026-03-01T10:00:00-05:00")
    try:
        when = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{shown(v)} is not an ISO 8601 time like 2026-03-01T10:00:00-05:00") \
            from None
    if when.tzinfo is None:
        raise ValueError(f"{shown(v)} has no UTC offset (write it like 2026-03-01T10:00:00-05:00)")
    if when < EARLIEST:  # (compared as it is: in UTC, year 1 may be year 0)
        raise ValueError(f"{shown(v)} is before 1970: not a time a record has")
    try:
        return when.astimezone(UTC)
    except OverflowError:  # past 9999 in UTC: too far ahead, as `window` says
        return datetime.max.replace(tzinfo=UTC)


MAX_MONEY = Decimal("999999999999.99")  # what the columns hold (Numeric(14, 2))


CENT = Decimal("0.01")


def money(v: Any) -> Decimal:
    """An amount to the cent. More decimals are refused, not rounded: 12.345 is a mistake
    somewhere (a rate, a unit price), and rounding would hide it. -0 is 0."""
    problem = f"{shown(v)} is not an amount like 1200.50 (no currency sign, not negative)"
    try:
        amount = Decimal(_scalar(v, "an amount"))
    except (ValueError, InvalidOperation):
        raise ValueError(problem) from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(problem)
    if amount > MAX_MONEY:
        raise ValueError(f"{shown(v)} is more than {MAX_MONEY:,} (a typo?)")
    if amount != amount.quantize(CENT):
        raise ValueError(f"{shown(v)} has more than 2 decimals; amounts are to the cent")
    return abs(amount.quantize(CENT))  # abs: -0 is stored as 0


def score(v: Any) -> int:
    if isinstance(v, float) and not v.is_integer():  # also NaN and infinity
        raise ValueError(f"{shown(v)} is not a whole number")
    try:
        n = int(v) if isinstance(v, float) else int(_scalar(v, "a whole number"))
    except ValueError:
        raise ValueError(f"{shown(v)} is not a whole number") from None
    if not 0 <= n <= 100:
        raise ValueError(f"{shown(n)} is not between 0 and 100")
    return n


def choice(*options: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        s = _scalar(v, f"one of {', '.join(options)}").lower()
        if s not in options:
            raise ValueError(f"{shown(v)} is not one of {', '.join(options)}")
        return s
    return parse


def month(v: Any) -> date:
    m = re.match(r"^(\d{4})-(\d{2})$", _scalar(v, "a month like 2026-03"))
    if not m or not 1 <= int(m[2]) <= 12:
        raise ValueError(f"{shown(v)} is not a month like 2026-03")
    if int(m[1]) < EARLIEST.year:
        raise ValueError(f"{shown(v)} is before 1970: not a month a record has")
    return date(int(m[1]), int(m[2]), 1)


KEY = text(128)
FIELDS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "leads": {"external_id": KEY, "source": text(64), "email": email, "name": text(200),
              "company": text(200), "title": text(200), "score": score, "segment": text(64),
              "region": text(64), "owner_email": email, "why": text(4000), "crm_url": web_url,
              "created_at": instant, "mql_at": instant, "status": choice(*STATUSES),
              "routed_at": instant, "accepted_at": instant, "rejected_at": instant,
              "rejection_reason": choice(*REJECTION_REASONS), "first_touch_at": instant,
              "updated_at": instant},
    "deals": {"external_id": KEY, "lead_external_id": KEY, "name": text(200), "owner_email": email,
              "amount": money, "source": choice("marketing", "sales", "partner"),
              "created_at": instant, "closed_at": instant, "outcome": choice("open", "won", "lost"),
              "updated_at": instant},
    "customers": {"external_id": KEY, "name": text(200), "started_at": instant,
                  "churned_at": instant, "mrr": money, "updated_at": instant},
    "spend": {"month": month, "team": choice("marketing", "sales"), "amount": money},
    "content": {"external_id": KEY, "title": text(300), "kind": text(64), "url": text(1000),
                "created_at": instant, "updated_at": instant},
    "content_usage": {"content_external_id": KEY, "user_email": email, "used_at": instant,
                      "deal_external_id": KEY},
}
REQUIRED = {"leads": ("external_id", "source"), "deals": ("external_id",),
            "customers": ("external_id",), "spend": ("month", "team", "amount"),
            "content": ("external_id",),
            "content_usage": ("content_external_id", "user_email", "used_at")}


NAMED_UNKNOWN = 10  # of a record's unknown fields, those its error names


def parse(entity: str, raw: Any, now: datetime | None = None) -> tuple[dict[str, Any], list[str]]:
    """A record's values and every problem with it (empty strings count as absent); with
    `now`, times too far ahead of it too (see `window`)."""
    if not isinstance(raw, dict):
        return {}, ["record must be a JSON object"]
    fields, values = FIELDS[entity], {}
    unknown = [name for name in raw if name not in fields]
    errors = [_unknown(entity, unknown)] if unknown else []
    for name, value in raw.items():
        if name in fields and value is not None and value != "":
            try:
                values[name] = fields[name](value)
            except ValueError as exc:
                errors.append(f"{name}: {exc}")
    errors += [f"{name}: is required" for name in REQUIRED[entity]
               if name not in values and not any(e.startswith(f"{name}:") for e in errors)]
    errors += _cross_checks(entity, values)
    if now is not None:
        errors += _too_late(values, now)
    return values, errors


# The times of a deal or a customer that must come in order (the later not before the
# earlier): within a record (`_cross_checks`), and an update's against the stored ones it
# leaves out (bot.intake.ingest).
TIME_ORDER = {"deals": (("created_at", "closed_at"),),
              "customers": (("started_at", "churned_at"),)}
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

    for earlier, later in TIME_ORDER.get(entity, ()):
        order(earlier, later)
    if entity == "leads":
        for a, b in _LEAD_ORDER:
            order(a, b)
        if v.get("status") == "rejected" and "rejection_reason" not in v:
            errors.append("rejection_reason: needed when status is rejected")
    return errors


def _unknown(entity: str, names: list[str]) -> str:
    """One error for a record's unknown fields, naming the first few: one error a field, each
    listing the fields there are, made a record of thousands an answer of megabytes."""
    named = ", ".join(_label(name) for name in names[:NAMED_UNKNOWN])
    more = f" (and {len(names) - NAMED_UNKNOWN:,} more)" if len(names) > NAMED_UNKNOWN else ""
    what = "unknown field" if len(names) == 1 else f"{len(names):,} unknown fields"
    return f"{named}{more}: {what}; {entity} take {', '.join(FIELDS[entity])}"


def _label(name: str) -> str:
    return name if len(name) <= 64 and name.isprintable() and name.isascii() else shown(name)


def key_of(entity: str, raw: Any, values: dict[str, Any]) -> str | None:
    """A rejected record's key as text, from what it sent (shortened when odd)."""
    if not isinstance(raw, dict):
        return None
    parts = KEY_FIELDS[entity]
    if "external_id" in values:
        return values["external_id"]
    if not any(raw.get(p) is not None for p in parts):
        return None
    return "/".join(v if isinstance(v := raw.get(p), str) and len(v) <= 128 and v.isprintable()
                    else shown(v) for p in parts)


KEY_FIELDS = {"leads": ("external_id",), "deals": ("external_id",), "customers": ("external_id",),
              "content": ("external_id",), "spend": ("month", "team"),
              "content_usage": ("content_external_id", "user_email", "used_at")}


def key_text(entity: str, values: dict[str, Any]) -> str:
    """A checked record's key as text: "C-1/ann@x.com/2026-03-01T10:00:00+00:00"."""
    return "/".join(v.isoformat() if isinstance(v := values[p], datetime)
                    else f"{v:%Y-%m}" if isinstance(v, date) else str(v)
                    for p in KEY_FIELDS[entity])


def window(entity: str, checked: Checked, now: datetime) -> Checked:
    """The records of a batch checked without `now` whose times are plausible now; the
    others rejected, saying why. Nothing before 1970 (see `instant`); what happened at most
    a day ahead of now; what may be planned (a deal's closed_at, a churn, a spend month) at
    most ten years ahead."""
    parsed, rejected = [], list(checked.rejected)
    for index, values in checked.parsed:
        if errors := _too_late(values, now):
            rejected.append(Rejection(index, key_text(entity, values), errors))
        else:
            parsed.append((index, values))
    if len(rejected) == len(checked.rejected):
        return checked
    return Checked(parsed, sorted(rejected, key=lambda r: r.index))


def _too_late(values: dict[str, Any], now: datetime) -> list[str]:
    errors = []
    for name, value in values.items():
        if not isinstance(value, date):
            continue
        ahead = PLANNED_AHEAD if name in PLANNED else AHEAD
        latest = now + ahead
        if isinstance(value, datetime) and value > latest:
            when = "a day" if ahead == AHEAD else "ten years"
            errors.append(f"{name}: {iso(value)} is more than {when} ahead of now "
                          f"({iso(now)}); is the year right?")
        elif not isinstance(value, datetime) and value > latest.date():
            errors.append(f"{name}: {value:%Y-%m} is more than ten years ahead of now "
                          f"({now:%Y-%m})")
    return errors


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------ upserts


@dataclass(frozen=True)
class Checked:
    """A batch validated, before anything is read or written: each good record's values
    with its index in the batch, and the rejections."""
    parsed: list[tuple[int, dict[str, Any]]]
    rejected: list[Rejection]


def check(entity: str, records: Sequence[Any], now: datetime | None = None) -> Checked:
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r}; one of {', '.join(ENTITIES)}")
    parsed, rejected = [], []
    for index, raw in enumerate(records):
        values, errors = parse(entity, raw, now)
        if errors:
            rejected.append(Rejection(index, key_of(entity, raw, values), errors))
        else:
            parsed.append((index, values))
    return Checked(parsed, rejected)
