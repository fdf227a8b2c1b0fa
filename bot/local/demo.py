"""A realistic generated data set for the shell's `--demo`: the same seed gives the same data.

Three years of steady growth (leads, and with them deals, customers, spend and content use,
about 3% more each month): leads walked through the lifecycle (with rejections, breaches
and leads still open), their deals, customers with churn on top of a base signed before
the window, monthly spend, content and its use by sales, and three past pulse survey runs
whose perceptions differ by role (opened, answered and closed by the survey code itself:
anonymous like real ones). Three years, so that every trend an answer shows (six
quarters, and the period before for growth; last year against the one before) has data. Rows are bulk-inserted with
explicit ids: thousands of ORM objects would be slow.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from bot.handoff.lifecycle import REJECTION_REASONS
from bot.platform.work import Work
from bot.sla.calendar import Calendar
from bot.surveys.demo import past_runs
from storage.bulk import add_rows, count_leads, next_id
from storage.db import advance_sequences
from storage.models import (
    ContentItem,
    ContentUse,
    Customer,
    Deal,
    Lead,
    LeadEvent,
    Person,
    Spend,
)
from storage.people import list_people

FIRST = ["Ann", "Bo", "Carla", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena",
         "Mateo", "Nina", "Omar", "Pia", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wes", "Yuki"]
LAST = ["Lee", "Park", "Silva", "Patel", "Kaya", "Adeyemi", "Berg", "Sato", "Petrov", "Moreau",
        "Mensah", "Novak", "Garcia", "Rossi", "Haddad", "Larsen", "Walsh", "Diaz", "Lund", "Okafor"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Corp",
             "Soylent", "Tyrell", "Cyberdyne", "Vandelay", "Wonka", "Gringotts", "Oceanic",
             "Pied Piper", "Massive Dynamic", "Aperture", "Monarch", "Nakatomi", "Dunder Mifflin"]
TITLES = ["VP Sales", "Head of Marketing", "CTO", "Operations Manager", "CFO", "Founder",
          "Director of IT", "Procurement Lead", "RevOps Manager", "Product Manager"]
SOURCES = {"webinar": 22, "ebook": 18, "paid_search": 20, "events": 10, "referral": 8,
           "organic": 15, "partner": 7}
SEGMENTS = {"smb": 55, "mid_market": 30, "enterprise": 15}
REGIONS = {"na": 60, "emea": 28, "apac": 12}
DEAL_SIZE = {"smb": (8_000, 20_000), "mid_market": (25_000, 50_000), "enterprise": (60_000, 100_000)}
WHY = ["Visited pricing twice this week", "Attended the webinar and asked a question",
       "Downloaded the ROI guide", "Requested a demo", "Matches ICP: 200+ employees, SaaS",
       "Opened 5 nurture emails", "Referred by a customer"]
NOTES = {"not_icp": "Too small for us", "duplicate": "Already in talks via partner",
         "wrong_territory": "Based in LATAM", "bad_data": "Email bounces",
         "not_ready": "Budget next year", "other": "Student project"}
HISTORY_MONTHS = 36
GROWTH = 1.03  # each month brings about 3% more leads than the one before
ROLE_SLOTS = {"sales": 6, "sales_manager": 1, "marketing": 7, "marketing_manager": 1, "exec": 6,
              "admin": 1}
TZS = ["America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London"]


@dataclass(frozen=True)
class DemoSummary:
    people: int
    leads: int
    lead_events: int
    deals: int
    customers: int
    spend: int
    content_items: int
    content_uses: int
    survey_runs: int
    survey_answers: int
    already_present: bool = False

    def __str__(self) -> str:
        if self.already_present:
            return f"already present ({self.leads} leads)"
        return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in asdict(self).items()
                         if k != "already_present")


class _Ids:
    """Explicit primary keys, so related rows can be bulk-inserted in one go."""

    def __init__(self, session: Session):
        self.session = session
        self.next: dict[type, int] = {}

    def __call__(self, model: type) -> int:
        if model not in self.next:
            self.next[model] = next_id(self.session, model)
        self.next[model] += 1
        return self.next[model] - 1


def generate_demo(work: Work, *, seed: int = 7, leads: int = 8000) -> DemoSummary:
    """Fill the store for the work's team; does nothing when the team already has leads."""
    session, team_id, config, now = work.session, work.team_id, work.config, work.now
    existing = count_leads(session, team_id)
    if existing:
        return DemoSummary(0, existing, 0, 0, 0, 0, 0, 0, 0, 0, already_present=True)
    rng = random.Random(seed)
    ids = _Ids(session)
    months = _Months(rng, now)
    # people draw from a stream of their own, so a change to the cast leaves the leads alone
    people = _people(work, random.Random(f"{seed}-people"), ids)
    sales = [p for p in people if p["role"] == "sales"]
    lead_rows, events = _leads(rng, ids, team_id, sales, config, now, leads, months)
    deals, customers = _deals_and_customers(rng, ids, team_id, lead_rows, sales, now, months)
    spend = _spend(ids, team_id, now, months)
    content, uses = _content(rng, ids, team_id, sales, deals, now, months)
    runs, answers = past_runs(work, rng)
    for model, rows in ((Lead, _same_keys(lead_rows)), (LeadEvent, events), (Deal, deals),
                        (Customer, customers), (Spend, spend), (ContentItem, content),
                        (ContentUse, uses)):
        add_rows(session, model, rows, nulls=True)
    advance_sequences(session, [m.__tablename__ for m in ids.next])
    return DemoSummary(len(people), len(lead_rows), len(events), len(deals), len(customers),
                       len(spend), len(content), len(uses), runs, answers)


def _same_keys(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row with every key (None where it had none): the bulk insert sends rows of the
    same keys together, and a lead's stages vary, thousands of small statements otherwise."""
    keys = dict.fromkeys(k for row in rows for k in row)
    return [{**dict.fromkeys(keys), **row} for row in rows]


class _Months:
    """The history's months, oldest first, the current one up to now; `instant()` picks a
    time in them, a later month (and a month with more of its days past) more likely."""

    def __init__(self, rng: random.Random, now: datetime):
        self.rng, self.now = rng, now
        first = _add_months(date(now.year, now.month, 1), -HISTORY_MONTHS)
        self.starts = [_add_months(first, i) for i in range(HISTORY_MONTHS + 1)]
        self.spans = []
        for start in self.starts:
            begin = datetime.combine(start, time.min, now.tzinfo)
            end = min(datetime.combine(_add_months(start, 1), time.min, now.tzinfo), now)
            self.spans.append((begin, end))
        # growth with a little month-to-month noise, by how much of the month is past
        self.weights = [GROWTH ** i * rng.uniform(0.92, 1.08) * (end - begin).total_seconds()
                        for i, (begin, end) in enumerate(self.spans)]

    @property
    def start(self) -> datetime:
        return self.spans[0][0]

    def instant(self) -> datetime:
        begin, end = self.rng.choices(self.spans, weights=self.weights)[0]
        return begin + (end - begin) * self.rng.random()

    def growth(self, i: int) -> float:
        """How much bigger month `i` is than the first (without the noise)."""
        return GROWTH ** i


def _add_months(day: date, months: int) -> date:
    y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(y, m + 1, 1)


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _people(work: Work, rng: random.Random, ids: _Ids) -> list[dict[str, Any]]:
    session, team_id, now = work.session, work.team_id, work.now
    known = list_people(session, team_id)
    rows = [{"id": p.id, "slack_id": p.slack_id, "role": p.role, "email": p.email,
             "manager": p.manager_slack_id} for p in known]
    taken = {p.name for p in known if p.name}
    new = []
    for role, wanted in ROLE_SLOTS.items():
        for _ in range(wanted - sum(1 for r in rows if r["role"] == role)):
            first, last = _free_name(rng.choice(FIRST), rng.choice(LAST), taken)
            taken.add(f"{first} {last}")
            n = len(rows) + 1
            row = {"id": ids(Person), "team_id": team_id, "slack_id": f"U0DEMO{n:03d}",
                   "email": f"{first}.{last}{n}@example.com".lower(), "name": f"{first} {last}",
                   "role": role, "timezone": rng.choice(TZS), "weight": 1,
                   "deactivated": False, "from_config": False, "updated_at": now}
            new.append(row)
            rows.append({**row, "manager": None})
    managers = [r["slack_id"] for r in rows if r["role"] == "sales_manager"]
    for row in new:
        if row["role"] == "sales" and managers:
            row["manager_slack_id"] = rng.choice(managers)
    add_rows(session, Person, new)
    return rows


def _free_name(first: str, last: str, taken: set[str]) -> tuple[str, str]:
    """The drawn name, or when someone has it the next free one: the next last names (in
    LAST's order, from the drawn one on), then the next first name's. No draw of its own:
    the random draws after it stay those of the demo before names were unique."""
    i, j = FIRST.index(first), LAST.index(last)
    for k in range(len(FIRST) * len(LAST)):
        first, last = FIRST[(i + (j + k) // len(LAST)) % len(FIRST)], LAST[(j + k) % len(LAST)]
        if f"{first} {last}" not in taken:
            return first, last
    raise ValueError("every demo name is taken")


def _leads(rng, ids, team_id, sales, config, now, count, months):
    calendar = Calendar.of(config)
    leads, events = [], []
    for n in range(1, count + 1):
        mql = calendar.next_working_start(months.instant())
        if mql >= now:
            mql = now - timedelta(minutes=rng.uniform(5, 300))
        owner = rng.choice(sales) if sales else None
        segment = _pick(rng, SEGMENTS)
        score = min(100, max(0, int(rng.betavariate(2.2, 2.0) * 100)))
        first, last = rng.choice(FIRST), rng.choice(LAST)
        lead = {"id": ids(Lead), "team_id": team_id, "external_id": f"L-{n:06d}",
                "source": _pick(rng, SOURCES), "email": f"{first}.{last}{n}@prospect.example".lower(),
                "name": f"{first} {last}", "company": rng.choice(COMPANIES),
                "title": rng.choice(TITLES), "score": score, "segment": segment,
                "region": _pick(rng, REGIONS), "why": rng.choice(WHY),
                "crm_url": f"https://crm.example.com/leads/L-{n:06d}",
                "owner_id": owner["id"] if owner else None,
                "crm_owner_email": owner["email"] if owner else None,
                "created_at": mql, "mql_at": mql, "updated_at": mql, "status": "new"}
        _walk(rng, lead, owner, calendar, config, now, events)
        leads.append(lead)
    return leads, events


def _walk(rng, lead, owner, calendar, config, now, events) -> None:
    """Move a lead through the lifecycle while its stage times stay in the past."""
    hot = lead["score"] >= 80
    actor = owner["slack_id"] if owner else "system"

    def step(status, at, who=actor, **data):
        if at >= now:
            return False
        events.append({"team_id": lead["team_id"], "lead_id": lead["id"], "kind": status,
                       "from_status": lead["status"], "to_status": status, "actor": who, "at": at,
                       "data": data or None})
        lead["status"], lead["updated_at"] = status, at
        return True

    routed = lead["mql_at"] + timedelta(minutes=rng.uniform(0.2, 3))
    if not step("routed", routed, "system", owner=actor):
        return
    lead["routed_at"] = lead["assigned_at"] = routed
    lead["sla_policy"], lead["sla_clock"] = ("hot", "wall") if hot else ("standard", "business")
    lead["sla_due_at"] = routed + timedelta(minutes=15) if hot else \
        calendar.add_business_minutes(routed, 240)
    slow = rng.random() < 0.15  # some leads wait too long: breaches to look at
    respond = routed + timedelta(minutes=rng.uniform(2, 90 if hot else 200) * (6 if slow else 1))
    if rng.random() < 0.09:
        reason = rng.choices(list(REJECTION_REASONS), weights=[35, 15, 10, 15, 20, 5])[0]
        if step("rejected", respond, reason=reason):
            lead.update(rejected_at=respond, rejection_reason=reason, rejection_note=NOTES[reason])
            _respond(lead, respond, calendar)
        return
    if not step("accepted", respond):
        return
    lead["accepted_at"] = respond
    touch = respond + timedelta(minutes=rng.uniform(1, 120))
    if rng.random() < 0.08:  # never touched: recycled to marketing after a month
        if step("recycled", respond + timedelta(days=30), "system"):
            lead["recycled_at"] = respond + timedelta(days=30)
            lead["sla_met"] = False
        return
    if not step("contacted", touch):
        return
    lead["first_touch_at"] = touch
    _respond(lead, touch, calendar)
    qualified = touch + timedelta(days=rng.uniform(1, 20))
    if rng.random() > 0.35 or not step("qualified", qualified):
        return
    lead["qualified_at"] = qualified


def _respond(lead, at, calendar) -> None:
    lead["response_minutes"] = round((at - lead["routed_at"]).total_seconds() / 60, 2)
    lead["business_minutes"] = round(calendar.business_minutes_between(lead["routed_at"], at), 2)
    lead["sla_met"] = at <= lead["sla_due_at"]


def _deals_and_customers(rng, ids, team_id, leads, sales, now, months):
    deals, customers = [], []
    qualified = [lead for lead in leads if lead.get("qualified_at")]
    extra = [{"created": months.instant(), "lead": None,
              "segment": _pick(rng, SEGMENTS), "source": rng.choice(["sales", "partner"])}
             for _ in range(len(qualified) // 4)]
    sources = [{"created": lead["qualified_at"], "lead": lead, "segment": lead["segment"],
                "source": "marketing"} for lead in qualified] + extra
    for n, d in enumerate(sources, 1):
        low, high = DEAL_SIZE[d["segment"]]
        amount = Decimal(rng.randrange(low, high, 500)).quantize(Decimal("0.01"))
        closes = d["created"] + timedelta(days=rng.uniform(10, 90))
        outcome = rng.choices(["won", "lost", "open"], weights=[30, 50, 20])[0]
        if closes >= now:
            outcome = "open"
        owner = rng.choice(sales) if sales else None
        lead = d["lead"]
        deals.append({"id": ids(Deal), "team_id": team_id, "external_id": f"D-{n:06d}",
                      "lead_id": lead["id"] if lead else None,
                      "lead_external_id": lead["external_id"] if lead else None,
                      "name": f"{(lead or {}).get('company') or rng.choice(COMPANIES)} deal",
                      "owner_id": lead["owner_id"] if lead else (owner["id"] if owner else None),
                      "amount": amount, "source": d["source"], "created_at": d["created"],
                      "closed_at": closes if outcome != "open" else None, "outcome": outcome,
                      "updated_at": closes if outcome != "open" else d["created"]})
        if lead is not None and outcome != "open":
            lead.update(status=outcome, closed_at=closes, updated_at=closes)
        if outcome == "won":
            customers.append(_customer(rng, ids, team_id, f"C-{n:06d}", closes, amount / 12, now))
    for n in range(150):  # signed before the window, their contracts starting on a 1st
        first = _add_months(months.starts[0], -rng.randrange(1, 37))
        started = datetime.combine(first, time.min, now.tzinfo)
        mrr = Decimal(rng.randrange(400, 9000, 50))
        customers.append(_customer(rng, ids, team_id, f"C-OLD{n:04d}", started, mrr, now))
    return deals, customers


def _customer(rng, ids, team_id, external_id, started, mrr, now) -> dict[str, Any]:
    churned = started + timedelta(days=rng.uniform(60, 700)) if rng.random() < 0.18 else None
    return {"id": ids(Customer), "team_id": team_id, "external_id": external_id,
            "name": f"{rng.choice(COMPANIES)} ({external_id})", "started_at": started,
            "churned_at": churned if churned and churned < now else None,
            "mrr": Decimal(mrr).quantize(Decimal("0.01")), "updated_at": started}


def _spend(ids, team_id, now, months) -> list[dict[str, Any]]:
    """Each month's budget grows with the leads, half as fast."""
    rows = []
    for i, first in enumerate(months.starts):
        for team, base in (("marketing", 40_000), ("sales", 60_000)):
            amount = base * (1 + (months.growth(i) - 1) / 2) + 2_500 * ((i * 7 + len(team)) % 5)
            rows.append({"id": ids(Spend), "team_id": team_id, "month": first, "team": team,
                         "amount": Decimal(round(amount, -2)),
                         "updated_at": months.spans[i][0]})
    return rows


def _content(rng, ids, team_id, sales, deals, now, months):
    kinds = ["case study", "deck", "one-pager", "battlecard", "demo video"]
    items = [{"id": ids(ContentItem), "team_id": team_id, "external_id": f"C-{n:03d}",
              "title": f"{rng.choice(COMPANIES)} {rng.choice(kinds)}", "kind": rng.choice(kinds),
              "url": f"https://content.example.com/C-{n:03d}",
              "created_at": months.start + (now - months.start) * rng.random() * 0.9}
             for n in range(1, 41)]
    for item in items:  # as if last edited when made: a change now would need a refresh
        item["updated_at"] = item["created_at"]
    uses, seen = [], set()
    popular = items[: len(items) * 2 // 3]  # a third of the content is never used: a finding
    for _ in range(2400 if sales else 0):
        item, rep = rng.choice(popular), rng.choice(sales)
        used = months.instant()
        key = (item["id"], rep["email"], used)
        if used < item["created_at"] or key in seen:
            continue
        seen.add(key)
        deal = rng.choice(deals) if deals and rng.random() < 0.4 else None
        uses.append({"id": ids(ContentUse), "team_id": team_id, "content_id": item["id"],
                     "user_email": rep["email"], "person_id": rep["id"],
                     "deal_id": deal["id"] if deal else None, "used_at": used})
    return items, uses
