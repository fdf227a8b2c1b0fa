"""Arbitrary JSON at every field of every entity, through the real signed webhook endpoint:
a 200 with that record's rejection (or a 4xx), never a 500, and the good record beside it
always stored. Runs on SQLite and PostgreSQL (their refusals differ: NUL, surrogates)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.intake.records import FIELDS
from bot.intake.webhooks import signature
from bot.platform.config import Secret
from bot.platform.server import create_web_app
from storage.models import ContentItem, ContentUse, Customer, Deal, Lead, Spend

SECRET = "whsec-fuzz-0123456789"
NASTY = ["\x00", "\udfff", "a\ud800b", "1e30", "1e400", "-0", "NaN", "Infinity", "0001-01-01",
         "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-01:00", "9000-01-01T00:00:00Z",
         "2099-01-01T00:00:00Z", "0000-01", "9999-12", "2026-13", "²", "٣", " ", "x" * 5000,
         "9" * 4000, "rejected", "won", "sam@example.com", "a@b.c\x00"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.sampled_from(NASTY),
    st.integers(min_value=-(10 ** 3000), max_value=10 ** 3000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(exclude_categories=()), max_size=20),  # surrogates included
)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)

# A valid record of each entity, numbered so each example's is new (`other`: the one the
# fuzzed record starts as, valid too, so a field's own value is what it is rejected for).
GOOD = {
    "leads": lambda n, other: {"external_id": f"L-{n}{other}", "source": "webinar",
                               "name": "Ann", "owner_email": "sam@example.com", "score": 50},
    "deals": lambda n, other: {"external_id": f"D-{n}{other}", "amount": "10.50",
                               "outcome": "open"},
    "customers": lambda n, other: {"external_id": f"C-{n}{other}",
                                   "started_at": "2026-01-01T00:00:00Z"},
    "spend": lambda n, other: {"month": f"{1990 + n % 400 // 12}-{n % 12 + 1:02d}",
                               "team": "marketing" if other else "sales", "amount": 5},
    "content": lambda n, other: {"external_id": f"K-{n}{other}", "title": "Deck"},
    "content_usage": lambda n, other: {
        "content_external_id": "K-base", "user_email": f"rep{other}@example.com",
        "used_at": (datetime(2000, 1, 1, tzinfo=UTC) + timedelta(minutes=n)).isoformat()},
}
STORED = {  # how to find a good record again
    "leads": lambda r: select(Lead).where(Lead.external_id == r["external_id"]),
    "deals": lambda r: select(Deal).where(Deal.external_id == r["external_id"]),
    "customers": lambda r: select(Customer).where(Customer.external_id == r["external_id"]),
    "spend": lambda r: select(Spend).where(Spend.month == date.fromisoformat(f"{r['month']}-01"),
                                           Spend.team == "sales"),
    "content": lambda r: select(ContentItem).where(ContentItem.external_id == r["external_id"]),
    "content_usage": lambda r: select(ContentUse).join(ContentItem).where(
        ContentItem.external_id == "K-base", ContentUse.user_email == r["user_email"],
        ContentUse.used_at == datetime.fromisoformat(r["used_at"])),
}


def fuzzed(entity: str):
    """Some of the entity's fields (or an unknown one) set to arbitrary JSON."""
    fields = st.sampled_from([*FIELDS[entity], "colour"])
    return st.dictionaries(fields, st.sampled_from(NASTY) | JSON, min_size=1, max_size=4)


@pytest.fixture
def web(services, app):
    services.secrets = dataclasses.replace(services.secrets, webhook_secret=Secret(SECRET))
    return create_web_app(services, app).test_client()


@pytest.mark.parametrize("entity", list(FIELDS))
def test_arbitrary_values_never_fail_the_batch_or_lose_the_good_record(web, services, entity):
    numbers = itertools.count()
    ts = str(int(services.clock.now().timestamp()))
    base = json.dumps({"external_id": "K-base"}).encode()
    web.post("/webhooks/content", data=base, headers={
        "X-Alignbot-Timestamp": ts, "X-Alignbot-Signature": signature(SECRET, ts, base)})

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(changes=fuzzed(entity))
    def check(changes):
        n = next(numbers)
        good, bad = GOOD[entity](n, ""), {**GOOD[entity](n, "-x"), **changes}
        body = json.dumps({entity: [good, bad]}).encode()  # NaN, Infinity and \udfff as JSON has them
        resp = web.post(f"/webhooks/{entity}", data=body, content_type="application/json",
                        headers={"X-Alignbot-Timestamp": ts,
                                 "X-Alignbot-Signature": signature(SECRET, ts, body)})
        assert resp.status_code == 200 or 400 <= resp.status_code < 500, resp.get_data()[:500]
        if resp.status_code != 200:
            return
        answer = resp.get_json()
        assert [r["index"] for r in answer["rejected"]] in ([], [1]), answer
        with services.sessions() as s:
            assert s.scalar(select(func.count()).select_from(STORED[entity](good).subquery())) == 1

    check()
