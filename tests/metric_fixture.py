"""A small data set to check every metric by hand: three people, 16 leads, 9 deals,
8 customers, spend for three months and content with its uses.

The activity is in May–July 2026 (UTC), on customers and content from earlier in the year;
December 2025 is empty. Each row says what it is there for; tests/test_metrics.py works out
the expected numbers from these comments.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from storage.models import ContentItem, ContentUse, Customer, Deal, Lead, Person, Spend
from tests.slack import TEAM

OTHER_TEAM = "T0OTHER"  # its rows must never count


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def period(month: int, year: int = 2026) -> tuple[datetime, datetime]:
    """The calendar month, in UTC."""
    end = at(month + 1, 1, year=year) if month < 12 else at(1, 1, year=year + 1)
    return at(month, 1, year=year), end


def add_metric_fixture(session: Session) -> None:
    sam, sue, max_ = (Person(team_id=TEAM, slack_id=slack_id, role=role, updated_at=at(1, 1))
                      for slack_id, role in (("U0SAM", "sales"), ("U0SUE", "sales"),
                                             ("U0MAX", "sales_manager")))
    session.add_all([sam, sue, max_])
    session.flush()
    leads = _leads(sam, sue, max_)
    session.add_all(leads.values())
    session.flush()
    session.add_all(_deals(leads, sam, sue, max_) + _customers() + _spend())
    _content(session, sam, sue)
    session.flush()


def _lead(ext: str, owner: Person | None, source: str, segment: str | None, region: str | None,
          mql: datetime, *, status: str, routed: bool = True, team_id: str = TEAM,
          **stages) -> Lead:
    """A lead that became MQL at `mql` and, unless `routed=False`, was routed at once."""
    return Lead(team_id=team_id, external_id=ext, owner_id=owner.id if owner else None,
                source=source, segment=segment, region=region, status=status, created_at=mql,
                mql_at=mql, routed_at=mql if routed else None,
                assigned_at=mql if routed else None, updated_at=mql, **stages)


def _leads(sam: Person, sue: Person, max_: Person) -> dict[str, Lead]:
    """Columns: owner, source, segment, region, MQL (= routed) time; then what happened.
    `minutes`/`business` are response_minutes/business_minutes (set at a touch or a
    rejection), `met` is sla_met (None: no response yet), `due` is sla_due_at."""
    def touched(t: datetime, minutes: float, business: float, due: datetime | None,
                met: bool | None) -> dict:
        return dict(accepted_at=t, first_touch_at=t, response_minutes=minutes,
                    business_minutes=business, sla_due_at=due, sla_met=met)

    def rejected(t: datetime, reason: str, minutes: float, due: datetime, met: bool) -> dict:
        return dict(rejected_at=t, rejection_reason=reason, response_minutes=minutes,
                    business_minutes=minutes, sla_due_at=due, sla_met=met)

    rows = [
        # --- June: routed 11 (L1-L9, L13, L14), MQL 12 (those and L10)
        # touched after 10 min, within its 15-min SLA
        _lead("L1", sam, "webinar", "smb", "na", at(6, 2, 9), status="contacted",
              **touched(at(6, 2, 9, 10), 10, 10, at(6, 2, 9, 15), True)),
        # touched after 30 min: SLA breached (due after 15)
        _lead("L2", sam, "webinar", "smb", "na", at(6, 3, 10), status="contacted",
              **touched(at(6, 3, 10, 30), 30, 30, at(6, 3, 10, 15), False)),
        # 45 min, 20 of them in working hours; met
        _lead("L3", sue, "ebook", "mid_market", "emea", at(6, 4, 14), status="qualified",
              **touched(at(6, 4, 14, 45), 45, 20, at(6, 4, 18), True)),
        # Friday 16:00 to Monday 10:00: 3,960 min, 120 business; met (due Monday 12:00)
        _lead("L4", sue, "ebook", "enterprise", "emea", at(6, 5, 16), status="contacted",
              **touched(at(6, 8, 10), 3960, 120, at(6, 8, 12), True)),
        # rejected in time (not_icp): an SLA met, but no touch, so no response time
        _lead("L5", max_, "paid_search", "smb", "apac", at(6, 10, 9), status="rejected",
              **rejected(at(6, 10, 9, 20), "not_icp", 20, at(6, 10, 13), True)),
        # rejected a day late (duplicate): a breach
        _lead("L6", sam, "paid_search", "smb", "na", at(6, 12, 9), status="rejected",
              **rejected(at(6, 13, 9), "duplicate", 1440, at(6, 12, 13), False)),
        # accepted, never touched, due 6/15 13:00: open past due, a breach; no segment/region
        _lead("L7", sue, "webinar", None, None, at(6, 15, 9), status="accepted",
              accepted_at=at(6, 15, 10), sla_due_at=at(6, 15, 13)),
        # unassigned, routed 6/29 20:00, due 7/1 13:00: open, not yet due at 7/1 00:00
        _lead("L8", None, "events", "smb", "na", at(6, 29, 20), status="routed",
              sla_due_at=at(7, 1, 13)),
        # 12.35 min: counted as 12.4 (rounded to 0.1, half up)
        _lead("L9", sam, "webinar", "mid_market", "na", at(6, 20, 9), status="contacted",
              **touched(at(6, 20, 9, 12), 12.35, 12.35, at(6, 20, 9, 15), True)),
        # an MQL never routed
        _lead("L10", sam, "referral", "smb", "na", at(6, 25, 9), status="new", routed=False),
        # no SLA policy: a response time (60 min) but no SLA outcome
        _lead("L14", max_, "partner", "smb", "na", at(6, 18, 9), status="contacted",
              **touched(at(6, 18, 10), 60, 60, None, None)),
        # accepted 6/30, rejected 7/2 (wrong_territory): decided in July, as a rejection;
        # its SLA (due 6/30 13:00) breached by the late rejection
        _lead("L13", sue, "ebook", "smb", "emea", at(6, 30, 9), status="rejected",
              accepted_at=at(6, 30, 10),
              **rejected(at(7, 2, 9), "wrong_territory", 2880, at(6, 30, 13), False)),
        # --- May: one lead, touched after 5 min (met)
        _lead("L11", sue, "webinar", "smb", "emea", at(5, 28, 9), status="contacted",
              **touched(at(5, 28, 9, 5), 5, 5, at(5, 28, 9, 15), True)),
        # --- July: L12 touched after 40 min (met), L15 rejected late (not_icp)
        _lead("L12", sam, "paid_search", "smb", "na", at(7, 3, 9), status="contacted",
              **touched(at(7, 3, 9, 40), 40, 40, at(7, 3, 13), True)),
        _lead("L15", sam, "webinar", "smb", "na", at(7, 6, 9), status="rejected",
              **rejected(at(7, 6, 9, 30), "not_icp", 30, at(7, 6, 9, 15), False)),
        # another workspace's lead, routed and touched in June
        _lead("X1", None, "webinar", "smb", "na", at(6, 2, 9), status="contacted",
              team_id=OTHER_TEAM, **touched(at(6, 2, 9, 1), 1, 1, at(6, 2, 9, 15), True)),
    ]
    return {lead.external_id: lead for lead in rows}


def _deals(leads: dict[str, Lead], sam: Person, sue: Person, max_: Person) -> list[Deal]:
    def deal(ext, lead, owner, source, amount, created, closed=None, outcome="open",
             team_id=TEAM) -> Deal:
        return Deal(team_id=team_id, external_id=ext, lead_id=leads[lead].id if lead else None,
                    owner_id=owner.id if owner else None, source=source,
                    amount=None if amount is None else Decimal(amount), created_at=created,
                    closed_at=closed, outcome=outcome, updated_at=created)

    return [
        # from L1 (MQL 6/2): won 6/25 after 20.0 days
        deal("D1", "L1", sam, "marketing", 10_000, at(6, 5), at(6, 25), "won"),
        # from L3 (MQL 6/4): won in July after 33.5 days
        deal("D2", "L3", sue, "marketing", 30_000, at(6, 6, 12), at(7, 10), "won"),
        # from L4 (MQL 6/5): lost in June — still a conversion of L4
        deal("D3", "L4", sue, "sales", 50_000, at(6, 10), at(6, 20), "lost"),
        # no lead: won 6/11 06:00 after 41.25 days, counted as 41.3
        deal("D4", None, max_, "sales", 20_000, at(5, 1), at(6, 11, 6), "won"),
        # from L14 (MQL 6/18 09:00), created 12:00: a conversion; still open
        deal("D5", "L14", max_, "partner", 5_000, at(6, 18, 12)),
        # no lead, no owner, no source: won in May (the base of June's growth)
        deal("D6", None, None, None, 8_000, at(4, 1), at(5, 15), "won"),
        # linked to L11 but created before its MQL (5/28): no conversion; won in July, 61 days
        deal("D7", "L11", sue, "marketing", 12_000, at(5, 20), at(7, 20), "won"),
        # linked to L2 but created at 09:00, before its MQL at 10:00; lost in July, no amount
        deal("D8", "L2", sam, "marketing", None, at(6, 3, 9), at(7, 15), "lost"),
        # another workspace's deal, won in June
        deal("X2", None, None, "marketing", 99_999, at(6, 1), at(6, 2), "won", OTHER_TEAM),
    ]


def _customers() -> list[Customer]:
    def customer(ext, mrr, started, churned=None, team_id=TEAM) -> Customer:
        return Customer(team_id=team_id, external_id=ext, mrr=Decimal(mrr), started_at=started,
                        churned_at=churned, updated_at=started)

    return [
        customer("C1", 1000, at(1, 15)),  # active throughout
        customer("C2", 500, at(2, 10), at(6, 15)),  # churned in June
        customer("C3", 2000, at(3, 1)),  # active throughout
        customer("C4", 1500, at(6, 10)),  # started in June
        customer("C5", 300, at(6, 20), at(6, 28)),  # started and churned in June
        customer("C6", 800, at(7, 5)),  # started in July
        customer("C7", 700, at(4, 1), at(7, 10)),  # started in April, churned in July
        customer("X3", 9999, at(6, 1), team_id=OTHER_TEAM),
    ]


def _spend() -> list[Spend]:
    rows = [(TEAM, 5, "marketing", 3000), (TEAM, 5, "sales", 2000),  # May: 5,000
            (TEAM, 6, "marketing", 4000), (TEAM, 6, "sales", 5000),  # June: 9,000
            (TEAM, 7, "marketing", 5000),  # July: marketing only
            (OTHER_TEAM, 6, "marketing", 7777)]
    return [Spend(team_id=team_id, month=date(2026, month, 1), team=team, amount=Decimal(amount),
                  updated_at=at(month, 1))
            for team_id, month, team, amount in rows]


def _content(session: Session, sam: Person, sue: Person) -> None:
    items = {ext: ContentItem(team_id=team_id, external_id=ext, created_at=created,
                              updated_at=created)
             for ext, created, team_id in (("K1", at(1, 1), TEAM), ("K2", at(5, 1), TEAM),
                                           ("K3", at(6, 15), TEAM), ("X4", at(1, 1), OTHER_TEAM))}
    session.add_all(items.values())
    session.flush()
    uses = [("K1", sam, at(6, 3)), ("K1", sue, at(6, 4)),  # June: K1 (twice)
            ("K2", sam, at(5, 10)),  # May: K2
            ("K3", sue, at(7, 2)), ("K1", sam, at(7, 20)),  # July: K3 and K1
            ("X4", sam, at(6, 5))]  # another workspace's item
    session.add_all(ContentUse(team_id=items[ext].team_id, content_id=items[ext].id,
                               user_email=f"{person.slack_id.lower()}@example.com",
                               person_id=person.id, used_at=used)
                    for ext, person, used in uses)

