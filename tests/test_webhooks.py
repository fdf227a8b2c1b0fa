"""POST /webhooks/<entity> through the real Flask app: signed, bounded, nothing lost, idempotent."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.config import Secret
from bot.server import create_web_app
from bot.webhooks import MAX_BATCH, signature, stage, store
from storage.models import HandoffBurst, Lead, OutboxMessage, RoutingState
from tests.concurrency import until_waiting

SECRET = "whsec-test-0123456789"


@pytest.fixture
def web(services, app):
    services.secrets = dataclasses.replace(services.secrets, webhook_secret=Secret(SECRET))
    return create_web_app(services, app).test_client()


def post(web, services, entity, payload, *, secret=SECRET, age=timedelta(0), raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    ts = str(int((services.clock.now() - age).timestamp()))
    return web.post(f"/webhooks/{entity}", data=body, content_type="application/json",
                    headers={"X-Alignbot-Timestamp": ts,
                             "X-Alignbot-Signature": signature(secret, ts, body)})


def lead(n, **fields):
    return {"external_id": f"L-{n:05d}", "source": "webinar", "email": f"p{n}@prospect.example",
            "name": f"Person {n}", "company": "Acme", "score": 50, **fields}


def count(services, model, *where):
    with services.sessions.begin() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_one_lead_is_stored_routed_and_carded(web, services, fake_slack):
    resp = post(web, services, "leads", lead(1))
    assert resp.status_code == 200
    assert resp.get_json() == {"created": 1, "updated": 0, "unchanged": 0, "rejected": []}
    services.sender.flush()
    [card] = fake_slack.in_channel("C0HANDOFF1")
    assert "Person 1" in card.text
    with services.sessions.begin() as s:
        assert s.scalars(select(Lead)).one().status == "routed"


def test_a_batch_with_bad_records_stores_the_good_ones_and_says_why(web, services, fake_slack):
    records = [lead(n) for n in range(MAX_BATCH)]
    records[10] = {**records[10], "score": 180}
    records[500] = {k: v for k, v in records[500].items() if k != "source"}
    records[999] = "not a record"
    resp = post(web, services, "leads", {"leads": records})
    body = resp.get_json()
    assert resp.status_code == 200 and body["created"] == 997
    assert [r["index"] for r in body["rejected"]] == [10, 500, 999]
    assert all(r["errors"] for r in body["rejected"])
    assert "score" in body["rejected"][0]["errors"][0]
    assert count(services, Lead) == 997 and count(services, Lead, Lead.status == "routed") == 997
    queued = count(services, OutboxMessage)
    # cards coalesce: per channel (the handoff channel, each owner's DM) the first
    # `burst_limit` cards, then one summary of all the others
    with services.sessions() as s:
        channels = s.scalar(select(func.count(OutboxMessage.channel.distinct())))
    assert queued == channels * (services.config.handoff.burst_limit + 1)

    again = post(web, services, "leads", {"leads": records}).get_json()
    assert again["created"] == 0 and again["unchanged"] == 997
    assert count(services, OutboxMessage) == queued  # nothing new queued


def test_bad_signature_or_old_request_changes_nothing(web, services):
    assert post(web, services, "leads", lead(1), secret="wrong").status_code == 401
    assert post(web, services, "leads", lead(1), age=timedelta(minutes=6)).status_code == 401
    missing = web.post("/webhooks/leads", data=b"{}", content_type="application/json")
    assert missing.status_code == 401
    assert count(services, Lead) == 0


def test_malformed_json_unknown_entity_and_oversized_batches(web, services):
    assert post(web, services, "leads", None, raw=b'{"external_id": ').status_code == 400
    assert post(web, services, "leads", None, raw=b"[1, 2]").status_code == 400
    resp = post(web, services, "widgets", {"x": 1})
    assert resp.status_code == 404 and "leads" in resp.get_json()["error"]
    too_many = post(web, services, "leads", {"leads": [lead(n) for n in range(MAX_BATCH + 1)]})
    assert too_many.status_code == 413
    assert count(services, Lead) == 0


def test_webhooks_are_off_without_a_secret(services, app):
    web = create_web_app(services, app).test_client()
    assert web.post("/webhooks/leads", data=b"{}").status_code == 503


def test_other_entities_land_too(web, services):
    resp = post(web, services, "spend", {"spend": [{"month": "2026-03", "team": "marketing",
                                                    "amount": 1200.5}]})
    assert resp.get_json()["created"] == 1
    resp = post(web, services, "deals", {"external_id": "D-1", "lead_external_id": "L-00001",
                                         "amount": "5000", "source": "marketing",
                                         "created_at": "2026-11-01T10:00:00-05:00",
                                         "outcome": "open"})
    assert resp.get_json()["created"] == 1


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)  # SQLite has one writer: batches never overlap there
@pytest.mark.parametrize("crm_owner", [None, "sam@example.com"], ids=["round-robin", "crm-owner"])
def test_batches_in_flight_together_route_and_burst_one_after_the_other(
        services, fake_slack, crm_owner):
    """The second of two batches arriving at once waits for the first's routing and cards:
    it neither fails on the round-robin state the first started, nor counts the channel's
    cards before the first's and starts a second burst."""
    services.config = dataclasses.replace(
        services.config, handoff=dataclasses.replace(services.config.handoff, burst_limit=2))

    def batch(numbers):
        return [lead(n, **({"owner_email": crm_owner} if crm_owner else {})) for n in numbers]
    first = stage(services, "leads", batch(range(5)), actor="crm")  # not committed yet
    second = threading.Thread(target=store, args=(services, "leads", batch(range(5, 10))),
                              kwargs={"actor": "crm"})
    second.start()
    until_waiting(services.engine, second)
    first.commit()
    second.join()
    assert count(services, Lead, Lead.status == "routed") == 10
    with services.sessions.begin() as s:
        assert sum(s.scalars(select(RoutingState.assigned))) == (0 if crm_owner else 10)
        assert s.scalar(select(func.count()).select_from(HandoffBurst)
                        .where(HandoffBurst.channel == "C0HANDOFF1")) == 1
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.channel == "C0HANDOFF1", OutboxMessage.ref.startswith("lead:"))) == 2
