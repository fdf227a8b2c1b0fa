"""Configuration: one TOML file plus environment variables for secrets.

Read in one place and validated into frozen objects. Every problem is collected
with the key it concerns and reported at once (`ConfigError.problems`).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
from apscheduler.triggers.cron import CronTrigger

from bot.alignment.definitions import COMPONENTS, DIMENSIONS, TARGETS_MET, Definitions
from bot.metrics.grammar import MAX_DAYS, QueryError, parse_period
from bot.surveys.templates import CHOICE, MAX_OPTIONS, QUESTION_TYPES, TEMPLATES, Question, question
from storage.db import DEFAULT_URL

ROLES = ("sales", "marketing", "exec", "sales_manager", "marketing_manager", "admin")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLA_CLOCKS = ("wall", "business")
UNASSIGNED = "unassigned"  # the SLA of a lead waiting for an owner ([routing] unassigned_within)
# The metric keys of PRODUCT.md "Metrics"; targets may only name these.
METRIC_KEYS = (
    "response_time", "sla_compliance", "acceptance_rate", "rejection_reasons", "not_icp_share",
    "conversion_rate", "win_rate", "sales_cycle", "content_utilization", "churn_rate",
    "revenue_growth", "cac", "cltv", "marketing_sourced_revenue", "leads_routed",
)
DEFAULT_PATH = "alignbot.toml"
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
# read with fullmatch: match() lets a trailing newline through "$"
_SLACK_ID = re.compile(r"^[UWCGT][A-Z0-9]{2,}$")
_USER_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MIN_K = 3  # the smallest group survey results may ever show
# the longest duration: a calendar's search for working time, and a query's period, stop at
# ten years; far longer ones would overflow timedelta and datetime
MAX_DURATION = timedelta(days=MAX_DAYS)


class ConfigError(Exception):
    """Every problem found in the configuration, each prefixed with its key."""

    def __init__(self, problems: list[str], source: str = "configuration"):
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(
            f"  - {p}" for p in problems))


def parse_duration(text: str) -> timedelta:
    """'15m', '4h', '2d', '2w', '1h30m' → timedelta, at most ten years (MAX_DURATION);
    anything else raises ValueError."""
    m = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not m or not any(m.groups()):
        raise ValueError(f"{text!r} is not a duration like 15m, 4h, 2d, 2w")
    w, d, h, mins = (int(g or 0) for g in m.groups())
    minutes = ((w * 7 + d) * 24 + h) * 60 + mins  # in ints: timedelta() overflows past 10⁹ days
    if minutes > MAX_DURATION // timedelta(minutes=1):
        raise ValueError(f"{text!r} is longer than ten years ({MAX_DURATION.days}d)")
    return timedelta(minutes=minutes)


def hashed_once(cls: type) -> type:
    """A frozen dataclass that works out its hash once: calendars and their settings key
    the caches that every lead routed looks up, and a dataclass hashes all its fields anew."""
    def __hash__(self) -> int:
        if (h := self.__dict__.get("_hash")) is None:
            h = self.__dict__["_hash"] = hash(tuple(getattr(self, f.name) for f in fields(self)))
        return h
    cls.__hash__ = __hash__
    return cls


@hashed_once
@dataclass(frozen=True)
class WorkingHours:
    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@hashed_once
@dataclass(frozen=True)
class Workspace:
    timezone: str = "UTC"
    holidays: str | None = None
    extra_holidays: tuple[date, ...] = ()
    working_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0, as date.weekday()
    working_hours: WorkingHours = WorkingHours(time(9), time(17))
    gross_margin: float = 0.8
    admins: tuple[str, ...] = ()
    currency: str = "USD"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def zone_of(self, timezone: str | None) -> ZoneInfo:
        """A person's own timezone (`Person.timezone`), else the workspace's: also when
        this machine does not know the name Slack gave (its time zone data older)."""
        try:
            return ZoneInfo(timezone or self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return self.tz


@dataclass(frozen=True)
class Channels:
    handoff: str | None = None
    marketing: str | None = None
    digest: str | None = None


@dataclass(frozen=True)
class Person:
    slack_id: str
    email: str | None
    role: str
    manager: str | None = None
    timezone: str | None = None
    weight: int = 1
    daily_cap: int | None = None
    working_hours: WorkingHours | None = None
    name: str | None = None


@dataclass(frozen=True)
class SlaPolicy:
    name: str
    respond_within: timedelta
    clock: str = "business"
    min_score: int | None = None
    source: str | None = None
    segment: str | None = None
    region: str | None = None
    # the nudges: a reminder at this share of the window (0 = none), a breach notice to the
    # owner and their manager at the due time, then optional escalation and reassignment
    remind_at: float = 0.5
    breach_notice: bool = True
    escalate_after: timedelta | None = None
    reassign_after: timedelta | None = None


@dataclass(frozen=True)
class RoutingRule:
    pool: str
    segment: str | None = None
    region: str | None = None
    source: str | None = None
    min_score: int | None = None


@dataclass(frozen=True)
class Routing:
    pools: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name → Slack ids, in order
    rules: tuple[RoutingRule, ...] = ()  # first match wins; no match → the "default" pool
    hot_score: int = 80  # a lead this hot only goes to people inside their working hours
    # a lead nobody could take has a clock of its own: escalated when it has waited this long
    unassigned_within: timedelta = timedelta(minutes=30)
    unassigned_clock: str = "business"  # on the workspace calendar, like a policy's clock


@dataclass(frozen=True)
class Handoff:
    burst_limit: int = 10  # more cards than this to one channel in a minute → one summary
    who_can_act: str = "managers"  # on a lead they don't own: owner | managers | anyone
    dm_owner: bool = True


@dataclass(frozen=True)
class Imports:
    folder: str | None = None  # CSV files dropped here: each content once, when it stops changing


@dataclass(frozen=True)
class OutboxSettings:
    max_attempts: int = 8        # then the row is dead-lettered and the admins told
    rate_per_channel: float = 1.0  # messages per second Slack tolerates per channel
    burst: int = 4               # messages a quiet channel may take at once
    workers: int = 32            # channels delivered side by side (one message in flight each)
    timeout: float = 10.0        # seconds the sender waits for Slack's answer (Slack's own: 30)
    stuck_after: timedelta = timedelta(minutes=15)  # a due message waiting longer fails /readyz


@dataclass(frozen=True)
class Retention:
    """How long each kind of record is kept ([retention]); None keeps it for good."""

    slack_events: timedelta = timedelta(days=2)  # processed Slack event ids
    outbox: timedelta | None = timedelta(days=90)  # delivered (and superseded) messages
    lead_events: timedelta | None = None  # a lead's history, not the lead
    survey_runs: timedelta | None = None  # closed runs with their answers, but a survey's latest


# the shortest each may be: Slack retries for minutes, and a delivered message may still be
# looked up or edited within the day
RETENTION_MINIMUM = {"slack_events": timedelta(hours=1), "outbox": timedelta(days=1),
                     "lead_events": timedelta(days=1), "survey_runs": timedelta(days=1)}


@dataclass(frozen=True)
class Survey:
    """A [[surveys]] entry: what is asked, of whom, when, and how results are shown."""

    name: str
    questions: tuple[Question, ...]
    audience: tuple[str, ...]  # roles of [[people]], or Slack user group ids (S…)
    schedule: str | None = None  # crontab in the workspace timezone; None: manual runs only
    every: timedelta | None = None  # a scheduled firing opens a run only this long after the last
    open_for: timedelta = timedelta(days=3)
    reminders: int = 1
    remind_every: timedelta = timedelta(days=1)
    min_responses: int = 5  # k: the smallest group results show
    channel: str | None = None  # where results are posted at close


DIGEST_SECTIONS = ("handoff", "sla", "funnel", "pulse", "index", "gap", "chart")


@dataclass(frozen=True)
class Digest:
    """A [[digests]] entry: what is posted where, when, about which period."""

    name: str
    channel: str
    schedule: str  # crontab in the workspace timezone
    period: str  # words of the query grammar, read at each firing ("last week")
    sections: tuple[str, ...] = DIGEST_SECTIONS
    skip_if_empty: bool = False  # an empty period: nothing posted, instead of a line saying so


@dataclass(frozen=True)
class Config:
    workspace: Workspace = Workspace()
    channels: Channels = Channels()
    people: tuple[Person, ...] = ()
    sla: tuple[SlaPolicy, ...] = ()
    targets: Mapping[str, float] = field(default_factory=dict)
    outbox: OutboxSettings = OutboxSettings()
    routing: Routing = Routing()
    handoff: Handoff = Handoff()
    imports: Imports = Imports()
    surveys: tuple[Survey, ...] = ()
    alignment: Definitions = Definitions()
    digests: tuple[Digest, ...] = ()
    retention: Retention = Retention()
    source: str = "<defaults>"

    def digest(self, name: str) -> Digest | None:
        return next((d for d in self.digests if d.name == name), None)

    def person(self, slack_id: str) -> Person | None:
        return next((p for p in self.people if p.slack_id == slack_id), None)

    def survey(self, name: str) -> Survey | None:
        return next((s for s in self.surveys if s.name == name.lower()), None)

    def is_admin(self, slack_id: str) -> bool:
        if slack_id in self.workspace.admins:
            return True
        person = self.person(slack_id)
        return person is not None and person.role == "admin"


def keys(section: type) -> tuple[str, ...]:
    """The keys a config table may hold: its dataclass's fields, declared once."""
    return tuple(f.name for f in fields(section))


class Secret(str):
    """A string that never shows itself in repr() or logs."""

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class Secrets:
    slack_bot_token: Secret | None = None
    slack_app_token: Secret | None = None
    slack_signing_secret: Secret | None = None
    webhook_secret: Secret | None = None
    database_url: Secret | None = None
    slack_client_id: Secret | None = None  # with the client secret and no bot token: OAuth mode
    slack_client_secret: Secret | None = None
    slack_api_url: str | None = None  # a fake Slack for tests and demos; default is slack.com

    ENV = {
        "slack_bot_token": "SLACK_BOT_TOKEN",
        "slack_app_token": "SLACK_APP_TOKEN",
        "slack_signing_secret": "SLACK_SIGNING_SECRET",
        "webhook_secret": "ALIGNBOT_WEBHOOK_SECRET",
        "database_url": "DATABASE_URL",
        "slack_client_id": "SLACK_CLIENT_ID",
        "slack_client_secret": "SLACK_CLIENT_SECRET",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        values = {k: Secret(env[v]) for k, v in cls.ENV.items() if env.get(v)}
        return cls(**values, slack_api_url=env.get("SLACK_API_URL") or None)

    @property
    def oauth(self) -> bool:
        """Many workspaces, each installed through /slack/install with its own bot token;
        SLACK_BOT_TOKEN, when set, keeps the single-workspace mode."""
        return bool(self.slack_client_id and self.slack_client_secret and not self.slack_bot_token)

    def status(self) -> dict[str, str]:
        """Each one's state by environment variable name: "set" (never its value), "not
        set", or what is used when it is not set."""
        defaults = {"DATABASE_URL": f"not set, so {DEFAULT_URL}"}
        return {var: "set" if getattr(self, attr) else defaults.get(var, "not set")
                for attr, var in self.ENV.items()}


# ---------------------------------------------------------------- validation


class _Reader:
    """Walks the raw TOML, converting values and collecting problems with their keys."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def table(self, raw: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.fail(key, f"must be a table, not {type(raw).__name__}")
            return {}
        for name in raw:
            if name not in allowed:
                hint = difflib.get_close_matches(name, allowed, n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else f"; known keys: {', '.join(allowed)}"
                self.fail(f"{key}.{name}" if key else name, f"unknown key{extra}")
        return raw

    def tables(self, raw: Any, key: str, allowed: tuple[str, ...]) -> list[tuple[str, dict]]:
        """An array of tables ([[key]]), each checked like `table`, with its key: key[i]."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.fail(key, f"must be an array of tables ([[{key}]])")
            return []
        return [(f"{key}[{i}]", self.table(item, f"{key}[{i}]", allowed))
                for i, item in enumerate(raw)]

    def value(self, raw: dict, key: str, name: str, convert: Callable[[Any], Any],
              default: Any = None, required: bool = False) -> Any:
        full = f"{key}.{name}" if key else name
        if name not in raw:
            if required:
                self.fail(full, "is required")
            return default
        try:
            return convert(raw[name])
        except (ValueError, TypeError) as exc:
            self.fail(full, str(exc))
            return default


def _string(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"must be a non-empty string, not {v!r}")
    return v.strip()


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(v: Any) -> str:
        if v not in options:
            raise ValueError(f"{v!r} is not one of {', '.join(options)}")
        return v
    return convert


def _slack_id(v: Any) -> str:
    if not isinstance(v, str) or not _SLACK_ID.fullmatch(v):
        raise ValueError(f"{v!r} is not a Slack id like U0123ABCD or C0123ABCD")
    return v


def _int(low: int, high: int | None = None) -> Callable[[Any], int]:
    def convert(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"{v!r} must be a whole number {bounds}")
        return v
    return convert


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{v!r} must be a number")
    if not math.isfinite(v):  # TOML has nan and inf; no setting means them
        raise ValueError(f"{v!r} must be a finite number")
    return float(v)


def _between(low: float, high: float, unit: str) -> Callable[[Any], float]:
    def convert(v: Any) -> float:
        if isinstance(v, int | float) and not isinstance(v, bool) and low <= v <= high:
            return float(v)  # nan is never between
        raise ValueError(f"{v!r} must be a number of {unit} between {low:g} and {high:g}")
    return convert


def _fraction(v: Any) -> float:
    x = _number(v)
    if not 0 <= x <= 1:
        raise ValueError(f"{v!r} must be a fraction between 0 and 1 (0.8, not 80)")
    return x


def _timezone(v: Any) -> str:
    try:
        name = _string(v)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{v!r} is not an IANA timezone like America/New_York") from None
    return name  # stripped, as checked: ZoneInfo("UTC ") refuses the spaces


def _holidays(v: Any) -> str:
    spec = _string(v)
    country, _, subdiv = spec.partition("-")
    try:
        holidays_lib.country_holidays(country, subdiv=subdiv or None)
    except NotImplementedError:
        raise ValueError(f"{v!r} is not a country (or country-subdivision like US-CA) "
                         "known to the holidays package") from None
    return spec  # stripped, as checked


def _dates(v: Any) -> tuple[date, ...]:
    if not isinstance(v, list):
        raise ValueError("must be a list of dates like \"2026-12-24\"")
    out = []
    for item in v:
        if isinstance(item, date) and not isinstance(item, datetime):  # no day equals a datetime
            out.append(item)
            continue
        try:
            out.append(date.fromisoformat(item))
        except (TypeError, ValueError):
            raise ValueError(f"{item!r} is not a date like 2026-12-24") from None
    return tuple(out)


def _days(v: Any) -> tuple[int, ...]:
    if not isinstance(v, list) or not v or any(d not in DAYS for d in v):
        raise ValueError(f"{v!r} must be a non-empty list of {', '.join(DAYS)}")
    return tuple(sorted({DAYS.index(d) for d in v}))


def _hours(v: Any) -> WorkingHours:
    m = _HOURS.match(v) if isinstance(v, str) else None
    try:
        start, end = (time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))) if m else (None, None)
    except ValueError:
        start = end = None
    if start is None or end is None or start >= end:
        raise ValueError(f"{v!r} is not working hours like \"09:00-17:00\" (start before end)")
    return WorkingHours(start, end)


def _strings(convert: Callable[[Any], str]) -> Callable[[Any], tuple[str, ...]]:
    def many(v: Any) -> tuple[str, ...]:
        if not isinstance(v, list):
            raise ValueError("must be a list")
        return tuple(convert(x) for x in v)
    return many


def _duration(v: Any) -> timedelta:
    if not isinstance(v, str):
        raise ValueError(f"{v!r} is not a duration like 15m, 4h, 2d")
    return parse_duration(v)


def _positive_duration(v: Any) -> timedelta:
    if not _duration(v):
        raise ValueError(f"{v!r} must be longer than nothing")
    return _duration(v)


def _email(v: Any) -> str:
    s = _string(v)
    if "@" not in s or " " in s:
        raise ValueError(f"{v!r} is not an email address")
    return s.lower()


def _read_workspace(r: _Reader, raw: Any) -> Workspace:
    t = r.table(raw, "workspace", keys(Workspace))
    d = Workspace()
    return Workspace(
        timezone=r.value(t, "workspace", "timezone", _timezone, d.timezone),
        holidays=r.value(t, "workspace", "holidays", _holidays, d.holidays),
        extra_holidays=r.value(t, "workspace", "extra_holidays", _dates, d.extra_holidays),
        working_days=r.value(t, "workspace", "working_days", _days, d.working_days),
        working_hours=r.value(t, "workspace", "working_hours", _hours, d.working_hours),
        gross_margin=r.value(t, "workspace", "gross_margin", _fraction, d.gross_margin),
        admins=r.value(t, "workspace", "admins", _strings(_slack_id), d.admins),
        currency=r.value(t, "workspace", "currency", _string, d.currency),
    )


def _read_channels(r: _Reader, raw: Any) -> Channels:
    t = r.table(raw, "channels", keys(Channels))
    return Channels(**{k: r.value(t, "channels", k, _slack_id) for k in keys(Channels)})


def _read_people(r: _Reader, raw: Any) -> tuple[Person, ...]:
    people, seen = [], set()
    for key, t in r.tables(raw, "people", keys(Person)):
        slack_id = r.value(t, key, "slack_id", _slack_id, required=True)
        if slack_id in seen:
            r.fail(f"{key}.slack_id", f"{slack_id} is listed twice")
        seen.add(slack_id)
        people.append(Person(
            slack_id=slack_id or "",
            email=r.value(t, key, "email", _email),
            role=r.value(t, key, "role", _choice(ROLES), required=True),
            manager=r.value(t, key, "manager", _slack_id),
            timezone=r.value(t, key, "timezone", _timezone),
            weight=r.value(t, key, "weight", _int(0, 100), 1),
            daily_cap=r.value(t, key, "daily_cap", _int(0, 10_000)),  # stored: SQLite ends at 2⁶³
            working_hours=r.value(t, key, "working_hours", _hours),
            name=r.value(t, key, "name", _string),
        ))
    return tuple(people)  # a manager may be known only in Slack, so it is not checked here


def _read_sla(r: _Reader, raw: Any) -> tuple[SlaPolicy, ...]:
    out = []
    for i, (key, t) in enumerate(r.tables(raw, "sla", keys(SlaPolicy))):
        name = r.value(t, key, "name", _string, required=True) or f"policy {i}"
        if name == UNASSIGNED:
            r.fail(f"{key}.name", f"{UNASSIGNED!r} is the SLA of a lead waiting for an owner "
                                  "([routing] unassigned_within); give this policy another name")
        out.append(SlaPolicy(
            name=name,
            respond_within=r.value(t, key, "respond_within", _duration, timedelta(hours=4),
                                   required=True),
            clock=r.value(t, key, "clock", _choice(SLA_CLOCKS), "business"),
            min_score=r.value(t, key, "min_score", _int(0, 100)),
            source=r.value(t, key, "source", _string),
            segment=r.value(t, key, "segment", _string),
            region=r.value(t, key, "region", _string),
            remind_at=r.value(t, key, "remind_at", _share, 0.5),
            breach_notice=r.value(t, key, "breach_notice", _bool, True),
            escalate_after=r.value(t, key, "escalate_after", _duration),
            reassign_after=r.value(t, key, "reassign_after", _duration),
        ))
    return tuple(out)


def _share(v: Any) -> float:
    x = _fraction(v)
    if x >= 1:
        raise ValueError(f"{v!r} must be below 1: the reminder comes before the due time")
    return x


def _read_targets(r: _Reader, raw: Any) -> dict[str, float]:
    t = r.table(raw, "targets", METRIC_KEYS)
    return {k: v for k in t if k in METRIC_KEYS
            if (v := r.value(t, "targets", k, _number)) is not None}


def _read_outbox(r: _Reader, raw: Any) -> OutboxSettings:
    t = r.table(raw, "outbox", keys(OutboxSettings))
    d = OutboxSettings()
    return OutboxSettings(
        max_attempts=r.value(t, "outbox", "max_attempts", _int(1, 50), d.max_attempts),
        rate_per_channel=r.value(t, "outbox", "rate_per_channel",  # the sender waits 1/rate s
                                 _between(0.01, 100, "messages a second"), d.rate_per_channel),
        burst=r.value(t, "outbox", "burst", _int(1, 50), d.burst),
        workers=r.value(t, "outbox", "workers", _int(1, 64), d.workers),
        timeout=r.value(t, "outbox", "timeout", _between(1, 60, "seconds"), d.timeout),
        stuck_after=r.value(t, "outbox", "stuck_after", _positive_duration, d.stuck_after),
    )


def _read_routing(r: _Reader, raw: Any, people: tuple[Person, ...]) -> Routing:
    t = r.table(raw, "routing", keys(Routing))
    known = {p.slack_id for p in people}
    pools: dict[str, tuple[str, ...]] = {}
    raw_pools = t.get("pools")
    names = tuple(raw_pools) if isinstance(raw_pools, dict) else ()  # any name is a pool's
    for name, members in r.table(raw_pools, "routing.pools", names).items():
        ids = r.value({name: members}, "routing.pools", name, _strings(_slack_id), ())
        for sid in ids:
            if sid not in known:
                r.fail(f"routing.pools.{name}", f"{sid} is not a slack_id listed in [[people]]")
        pools[name] = ids
    rules = []
    for key, rt in r.tables(t.get("rules") or None, "routing.rules", keys(RoutingRule)):
        pool = r.value(rt, key, "pool", _string, required=True)
        if pool and pool not in pools:
            r.fail(f"{key}.pool", f"no pool {pool!r} under [routing.pools]")
        rules.append(RoutingRule(pool=pool or "", segment=r.value(rt, key, "segment", _string),
                                 region=r.value(rt, key, "region", _string),
                                 source=r.value(rt, key, "source", _string),
                                 min_score=r.value(rt, key, "min_score", _int(0, 100))))
    d = Routing()
    return Routing(pools=pools, rules=tuple(rules),
                   hot_score=r.value(t, "routing", "hot_score", _int(0, 100), d.hot_score),
                   unassigned_within=r.value(t, "routing", "unassigned_within", _duration,
                                             d.unassigned_within),
                   unassigned_clock=r.value(t, "routing", "unassigned_clock",
                                            _choice(SLA_CLOCKS), d.unassigned_clock))


def _read_handoff(r: _Reader, raw: Any) -> Handoff:
    t = r.table(raw, "handoff", keys(Handoff))
    d = Handoff()
    return Handoff(
        burst_limit=r.value(t, "handoff", "burst_limit", _int(1, 1000), d.burst_limit),
        who_can_act=r.value(t, "handoff", "who_can_act", _choice(("owner", "managers", "anyone")),
                            d.who_can_act),
        dm_owner=r.value(t, "handoff", "dm_owner", _bool, d.dm_owner),
    )


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{v!r} must be true or false")
    return v


def _read_imports(r: _Reader, raw: Any) -> Imports:
    t = r.table(raw, "imports", keys(Imports))
    return Imports(folder=r.value(t, "imports", "folder", _string))


SURVEY_KEYS = (*keys(Survey), "template")  # a template stands for its questions


def _read_surveys(r: _Reader, raw: Any, channels: Channels) -> tuple[Survey, ...]:
    out, seen = [], set()
    for i, (key, t) in enumerate(r.tables(raw, "surveys", SURVEY_KEYS)):
        name = r.value(t, key, "name", _key, required=True)
        if name in seen:
            r.fail(f"{key}.name", f"{name!r} is used by another survey")
        seen.add(name)
        template = r.value(t, key, "template", _choice(tuple(TEMPLATES)))
        questions = _read_questions(r, t["questions"], f"{key}.questions") if "questions" in t \
            else TEMPLATES.get(template or "", ())
        if template and "questions" in t:
            r.fail(f"{key}.questions", "give a template or questions of its own, not both")
        elif "template" not in t and "questions" not in t:
            r.fail(key, 'needs template = "alignment" or [[surveys.questions]] of its own')
        schedule = r.value(t, key, "schedule", _crontab)
        every = r.value(t, key, "every", _positive_duration)
        if every and "schedule" not in t:
            r.fail(f"{key}.every", "needs a schedule: it keeps every Nth of the schedule's firings")
        channel = r.value(t, key, "channel", _slack_id, channels.digest)
        if channel is None:
            r.fail(f"{key}.channel", "results need a channel: set it, or [channels] digest")
        out.append(Survey(
            name=name or f"survey {i}", questions=questions,
            audience=r.value(t, key, "audience", _audience, (), required=True),
            schedule=schedule, every=every,
            open_for=r.value(t, key, "open_for", _positive_duration, timedelta(days=3)),
            reminders=r.value(t, key, "reminders", _int(0, 10), 1),
            remind_every=r.value(t, key, "remind_every", _positive_duration, timedelta(days=1)),
            min_responses=r.value(t, key, "min_responses", _k, 5),
            channel=channel,
        ))
    return tuple(out)


def _read_questions(r: _Reader, raw: Any, key: str) -> tuple[Question, ...]:
    if not isinstance(raw, list) or not raw:
        r.fail(key, "must be a non-empty array of tables ([[surveys.questions]])")
        return ()
    out, seen = [], set()
    for i, item in enumerate(raw):
        qk = f"{key}[{i}]"
        t = r.table(item, qk, keys(Question))
        name = r.value(t, qk, "key", _key, required=True)
        if name in seen:
            r.fail(f"{qk}.key", f"{name!r} is asked twice")
        seen.add(name)
        text = r.value(t, qk, "text", _string, required=True)
        kind = r.value(t, qk, "type", _choice(QUESTION_TYPES), required=True)
        options = r.value(t, qk, "options", _strings(_string), ())
        if kind == CHOICE and not 2 <= len(options) <= MAX_OPTIONS:
            r.fail(f"{qk}.options", f"a choice needs 2 to {MAX_OPTIONS} options")
        elif kind and kind != CHOICE and "options" in t:
            r.fail(f"{qk}.options", f"only a choice has options, not a {kind}")
        if name and text and kind:
            out.append(question(name, text, kind, options))
    return tuple(out)


def _key(v: Any) -> str:
    if not isinstance(v, str) or not _KEY.fullmatch(v):
        raise ValueError(f"{v!r} must be lowercase letters, digits, _ or -, like \"pulse\"")
    return v


def _audience(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not v:
        raise ValueError("must be a non-empty list of roles or Slack user group ids (S…)")
    for who in v:
        if who not in ROLES and not (isinstance(who, str) and _USER_GROUP.fullmatch(who)):
            raise ValueError(f"{who!r} is neither a role ({', '.join(ROLES)}) nor a Slack user "
                             "group id like S0123ABCD")
    return tuple(dict.fromkeys(v))
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_CHECK_AT = datetime(2026, 1, 5, tzinfo=UTC)  # any instant: a period's words are checked, not read


def _period(v: Any) -> str:
    try:
        parse_period(_string(v), _CHECK_AT, UTC)
    except QueryError as exc:
        raise ValueError(exc.message) from None
    return v.strip()


def _crontab(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{v!r} is not a crontab like \"0 10 * * mon\"")
    fields_ = v.split()
    if len(fields_) == 5 and re.search(r"\d", fields_[4]):
        raise ValueError(f"{v!r}: name the days of the week (mon-fri, sun), not numbers: cron "
                         "dialects disagree on which day 0 is")
    try:
        CronTrigger.from_crontab(v, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"{v!r} is not a crontab like \"0 10 * * mon\" ({exc})") from None
    return v


def _k(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and v < MIN_K:
        raise ValueError(f"{v!r} is below {MIN_K}: smaller groups would let people be recognised")
    return _int(MIN_K, 1000)(v)


def _read_digests(r: _Reader, raw: Any, channels: Channels) -> tuple[Digest, ...]:
    out, seen = [], set()
    for i, (key, t) in enumerate(r.tables(raw, "digests", keys(Digest))):
        name = r.value(t, key, "name", _digest_name, required=True)
        if name in seen:
            r.fail(f"{key}.name", f"{name!r} is the name of an earlier digest")
        seen.add(name)
        channel = r.value(t, key, "channel", _slack_id, channels.digest)
        if channel is None and "channel" not in t:
            r.fail(f"{key}.channel", "is required ([channels] digest is not set either)")
        out.append(Digest(
            name=name or f"digest {i}", channel=channel or "",
            schedule=r.value(t, key, "schedule", _crontab, "", required=True),
            period=r.value(t, key, "period", _period, "", required=True),
            sections=r.value(t, key, "sections", _sections, DIGEST_SECTIONS),
            skip_if_empty=r.value(t, key, "skip_if_empty", _bool, False)))
    return tuple(out)


def _digest_name(v: Any) -> str:
    if not isinstance(v, str) or not _NAME.fullmatch(v):
        raise ValueError(f"{v!r} must be a short name of a-z, 0-9, - and _ (it is typed in "
                         "`/align digest send <name>`)")
    return v


def _sections(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not v:
        raise ValueError(f"must be a non-empty list of {', '.join(DIGEST_SECTIONS)}")
    for section in v:
        if section not in DIGEST_SECTIONS:
            raise ValueError(f"{section!r} is not one of {', '.join(DIGEST_SECTIONS)}")
    if len(set(v)) < len(v):
        raise ValueError("names a section twice")
    return tuple(v)


def _read_retention(r: _Reader, raw: Any) -> Retention:
    t = r.table(raw, "retention", tuple(RETENTION_MINIMUM))
    d = Retention()
    return Retention(**{key: r.value(t, "retention", key, _kept(least, key != "slack_events"),
                                     getattr(d, key))
                        for key, least in RETENTION_MINIMUM.items()})


def _kept(least: timedelta, forever_ok: bool) -> Callable[[Any], timedelta | None]:
    def convert(v: Any) -> timedelta | None:
        if forever_ok and v == "forever":
            return None
        if _duration(v) < least:
            raise ValueError(f"{v!r} is shorter than the {_words(least)} it must be at least")
        return _duration(v)
    return convert


def _words(span: timedelta) -> str:
    return f"{span.days} day(s)" if span.days else f"{span.seconds // 3600} hour(s)"


def _read_alignment(r: _Reader, raw: Any) -> Definitions:
    key = "alignment"
    t = r.table(raw, key, keys(Definitions))
    d = Definitions()
    return Definitions(
        period=r.value(t, key, "period", _period, d.period),
        survey=r.value(t, key, "survey", _string, d.survey),
        perception_levels=r.value(t, key, "perception_levels", _levels(1, 5), d.perception_levels),
        attainment_levels=r.value(t, key, "attainment_levels", _levels(0, None),
                                  d.attainment_levels),
        targets_met_levels=r.value(t, key, "targets_met_levels", _levels(0, 1),
                                   d.targets_met_levels),
        weights=r.value(t, key, "weights", _weights, d.weights),
        dimensions={**d.dimensions, **_read_dimensions(r, t.get("dimensions"))})


def _levels(low: float, high: float | None) -> Callable[[Any], tuple[float, float]]:
    def convert(v: Any) -> tuple[float, float]:
        if not (isinstance(v, list) and len(v) == 2):
            raise ValueError(f"{v!r} must be two numbers: where Medium starts, where High starts")
        medium, high_ = (_number(x) for x in v)
        if not (low <= medium < high_ and (high is None or high_ <= high)):
            span = f"from {low} to {high}" if high is not None else f"from {low}"
            raise ValueError(f"{v!r} must rise ({medium} below {high_}), {span}")
        return medium, high_
    return convert


def _weights(v: Any) -> dict[str, float]:
    if not isinstance(v, dict) or set(v) != set(COMPONENTS):
        raise ValueError(f"must be a table of {', '.join(COMPONENTS)}")
    weights = {c: _number(v[c]) for c in COMPONENTS}
    if min(weights.values()) < 0 or abs(sum(weights.values()) - 1) > 1e-9:
        raise ValueError(f"{v!r}: weights are at least 0 and add up to 1")
    return weights


def _read_dimensions(r: _Reader, raw: Any) -> dict[str, tuple[str, ...]]:
    key = "alignment.dimensions"
    t = r.table(raw, key, tuple(DIMENSIONS))
    metrics = (*METRIC_KEYS, TARGETS_MET)
    return {dim: keys for dim in t if dim in DIMENSIONS
            if (keys := r.value(t, key, dim, _metric_list(metrics))) is not None}


def _metric_list(known: tuple[str, ...]) -> Callable[[Any], tuple[str, ...]]:
    def convert(v: Any) -> tuple[str, ...]:
        if not isinstance(v, list) or not v:
            raise ValueError("must be a non-empty list of metric keys")
        for m in v:
            if m not in known:
                hint = difflib.get_close_matches(str(m), known, n=1)
                raise ValueError(f"{m!r} is not a metric" + (f" (did you mean '{hint[0]}'?)"
                                                            if hint else ""))
        return tuple(v)
    return convert


SECTIONS = tuple(k for k in keys(Config) if k != "source")  # `source` is where it was read


def parse_config(data: Mapping[str, Any], source: str = "<memory>") -> Config:
    """Validate raw TOML data; raises ConfigError listing every problem."""
    r = _Reader()
    r.table(dict(data), "", SECTIONS)
    people = _read_people(r, data.get("people"))
    channels = _read_channels(r, data.get("channels"))
    config = Config(
        workspace=_read_workspace(r, data.get("workspace")),
        channels=channels,
        people=people,
        sla=_read_sla(r, data.get("sla")),
        targets=_read_targets(r, data.get("targets")),
        outbox=_read_outbox(r, data.get("outbox")),
        routing=_read_routing(r, data.get("routing"), people),
        handoff=_read_handoff(r, data.get("handoff")),
        imports=_read_imports(r, data.get("imports")),
        surveys=_read_surveys(r, data.get("surveys"), channels),
        alignment=_read_alignment(r, data.get("alignment")),
        digests=_read_digests(r, data.get("digests"), channels),
        retention=_read_retention(r, data.get("retention")),
        source=source,
    )
    if config.alignment.survey and config.survey(config.alignment.survey) is None:
        r.fail("alignment.survey", f"{config.alignment.survey!r} is not a [[surveys]] name")
    if r.problems:
        raise ConfigError(r.problems, source)
    return config


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("ALIGNBOT_CONFIG") or DEFAULT_PATH)


# Docker makes a directory of a bind mount whose file does not exist (compose.yaml mounts
# ./alignbot.toml), and the image runs as uid 10001, which a host file of mode 600 shuts out.
_A_DIRECTORY = ("is a directory, not a file (Docker creates one where a mounted file is "
                "missing: remove it, copy alignbot.example.toml to alignbot.toml, and start again)")
_UNREADABLE = "cannot be read by this process (uid {uid}): make it readable, e.g. chmod 644 {path}"


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate the TOML file (default: $ALIGNBOT_CONFIG, else ./alignbot.toml)."""
    path = Path(path) if path else config_path()
    try:
        text = path.read_text(encoding="utf-8-sig")  # Windows editors start UTF-8 with a BOM
    except FileNotFoundError:
        raise ConfigError([f"no configuration file at {path} "
                           "(copy alignbot.example.toml to alignbot.toml)"], str(path)) from None
    except IsADirectoryError:
        raise ConfigError([_A_DIRECTORY], str(path)) from None
    except PermissionError:
        raise ConfigError([_UNREADABLE.format(path=path, uid=os.getuid())], str(path)) from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ConfigError([f"not UTF-8 text (line {line}): save it as UTF-8"], str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], str(path)) from None
    return parse_config(data, str(path))
