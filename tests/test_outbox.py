"""The outbox: written with the change, delivered once, paced, retried, dead-lettered."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot import outbox
from bot.outbox import OutboxSender
from storage.db import make_sessionmaker
from storage.models import OutboxMessage


def queue(services, n: int, channel: str = "C0HANDOFF1", prefix: str = "m"):
    with services.transaction() as session:
        return [outbox.post(session, services.team_id, channel, {"text": f"{prefix}{i}"},
                            now=services.clock.now(), ref=f"{prefix}:{i}") for i in range(n)]


def rows(services) -> list[OutboxMessage]:
    with services.sessions.begin() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_nothing_is_queued_when_the_transaction_rolls_back(services):
    with pytest.raises(RuntimeError), services.transaction() as session:
        outbox.post(session, services.team_id, "C0HANDOFF1", {"text": "x"}, now=services.clock.now())
        raise RuntimeError("the change failed")
    assert rows(services) == []


def test_delivers_and_remembers_ts(services, fake_slack):
    queue(services, 1)
    report = services.sender.flush()
    assert report.sent == 1
    [row] = rows(services)
    assert row.state == "sent" and row.ts == fake_slack.messages[0].ts
    assert services.sender.flush().sent == 0  # sent rows are never sent again


def test_429_then_500_then_success_delivers_exactly_once(services, fake_slack, clock):
    fake_slack.script("chat.postMessage",
                      (429, {"Retry-After": "7"}, {"ok": False, "error": "ratelimited"}),
                      (500, {}, {"ok": False, "error": "internal_error"}))
    queue(services, 1)
    first = services.sender.flush()
    assert first.retried == 1 and first.sent == 0
    assert first.next_due == clock.now() + timedelta(seconds=7)  # obeys Retry-After

    clock.advance(timedelta(seconds=6))
    assert services.sender.flush().sent == 0  # still inside Retry-After: no call made
    assert len(fake_slack.calls_of("chat.postMessage")) == 1

    clock.advance(timedelta(seconds=1))
    second = services.sender.flush()  # the 500
    assert second.retried == 1
    clock.advance(second.next_due - clock.now())
    assert services.sender.flush().sent == 1

    assert len(fake_slack.calls_of("chat.postMessage")) == 3
    assert [m.text for m in fake_slack.messages] == ["m0"]
    [row] = rows(services)
    assert row.state == "sent" and row.attempts == 3


def test_429_holds_the_whole_channel_but_not_others(services, fake_slack, clock):
    fake_slack.script("chat.postMessage", (429, {"Retry-After": "30"}, {"ok": False}))
    queue(services, 3, channel="C0HANDOFF1")
    queue(services, 2, channel="C0MARKET01", prefix="k")
    services.sender.flush()
    assert [m.channel for m in fake_slack.messages] == ["C0MARKET01", "C0MARKET01"]
    clock.advance(timedelta(seconds=30))
    services.sender.flush()
    assert [m.text for m in fake_slack.in_channel("C0HANDOFF1")] == ["m0", "m1", "m2"]


def test_paces_each_channel_after_a_burst(services, fake_slack, clock):
    burst = services.config.outbox.burst
    queue(services, burst + 3)
    report = services.sender.flush()
    assert report.sent == burst
    assert report.next_due == clock.now() + timedelta(seconds=1)
    clock.advance(timedelta(seconds=1))
    assert services.sender.flush().sent == 1
    clock.advance(timedelta(seconds=10))
    assert services.sender.flush().sent == 2
    assert [m.text for m in fake_slack.messages] == [f"m{i}" for i in range(burst + 3)]


def test_network_errors_back_off_then_dead_letter_with_admin_notice(services, fake_slack, clock,
                                                                    caplog):
    attempts = services.config.outbox.max_attempts
    fake_slack.script("chat.postMessage", *[(503, {}, {"ok": False})] * attempts)
    queue(services, 1)
    waits = []
    for _ in range(attempts):
        report = services.sender.flush()
        if report.next_due:
            waits.append(report.next_due - clock.now())
            clock.advance(report.next_due - clock.now())
    assert waits == sorted(waits) and waits[0] < waits[-1]  # backoff grows
    dead = rows(services)[0]
    assert dead.state == "dead" and dead.attempts == attempts
    assert "is dead" in caplog.text
    services.sender.flush()
    notice = fake_slack.in_channel("U0ADMIN01")
    assert len(notice) == 1 and "could not be delivered" in notice[0].text


def test_permanent_slack_error_is_dead_at_once(services, fake_slack):
    queue(services, 1, channel="C0NOWHERE1")
    fake_slack.script("chat.postMessage", (200, {}, {"ok": False, "error": "channel_not_found"}))
    assert services.sender.flush().dead == 1


def test_update_waits_for_the_original_and_targets_its_dm(services, fake_slack):
    with services.transaction() as session:
        card = outbox.post(session, services.team_id, "U0SALES01", {"text": "card v1"},
                           now=services.clock.now(), ref="lead:1:dm")
        outbox.update(session, card, {"text": "card v2"}, now=services.clock.now())
    services.sender.flush()
    [msg] = fake_slack.messages
    assert msg.channel == "D0SALES01" and msg.text == "card v2" and msg.updates == 1
    [update] = fake_slack.calls_of("chat.update")
    assert update["channel"] == "D0SALES01" and update["ts"] == msg.ts


def test_reply_is_threaded_under_its_parent(services, fake_slack):
    with services.transaction() as session:
        parent = outbox.post(session, services.team_id, "C0MARKET01", {"text": "webinar leads"},
                             now=services.clock.now())
        outbox.post(session, services.team_id, "C0MARKET01", {"text": "rejected: not icp"},
                    now=services.clock.now(), thread_of=parent)
    services.sender.flush()
    parent_msg, child = fake_slack.messages
    assert child.thread_ts == parent_msg.ts


def test_dedupe_key_allows_one_row_per_key(services):
    from sqlalchemy.exc import IntegrityError

    with services.transaction() as session:
        outbox.post(session, services.team_id, "C0DIGEST01", {"text": "digest"},
                    now=services.clock.now(), dedupe_key="digest:weekly:2026-W48")
    with pytest.raises(IntegrityError), services.transaction() as session:
        outbox.post(session, services.team_id, "C0DIGEST01", {"text": "digest"},
                    now=services.clock.now(), dedupe_key="digest:weekly:2026-W48")


def test_two_senders_on_one_database_deliver_each_row_exactly_once(services, fake_slack, engine):
    n = 120
    for c in range(6):  # several channels so both senders have work without waiting on pacing
        queue(services, n // 6, channel=f"C0CHAN{c:04d}", prefix=f"c{c}-")
    fast = services.config.outbox.__class__(max_attempts=3, rate_per_channel=1000.0, burst=1000)
    senders = [OutboxSender(make_sessionmaker(engine), services.sender.client, services.clock,
                            fast, name=f"sender-{i}") for i in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(sender):
        try:
            barrier.wait()
            sender.flush()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    texts = [m.text for m in fake_slack.messages]
    assert len(texts) == n and len(set(texts)) == n
    with services.sessions.begin() as s:
        by_sender = dict(s.execute(select(OutboxMessage.claimed_by, func.count())
                                   .group_by(OutboxMessage.claimed_by)).all())
        assert s.scalar(select(func.count()).where(OutboxMessage.state != "sent")) == 0
    assert sum(by_sender.values()) == n


def test_a_message_rewritten_after_it_was_listed_goes_out_as_rewritten(services, fake_slack,
                                                                      monkeypatch):
    [message] = queue(services, 1)
    listed = services.sender._due

    def list_then_rewrite(*args):  # another transaction rewrites it meanwhile
        found = listed(*args)
        with services.transaction() as s:
            outbox.revise(s, message.id, "C0HANDOFF1", {"text": "grown"}, now=services.clock.now())
        return found

    monkeypatch.setattr(services.sender, "_due", list_then_rewrite)
    services.sender.flush()
    assert [m.text for m in fake_slack.messages] == ["grown"]


def test_a_revision_drops_queued_edits_even_when_it_rewrites_the_post(services):
    [message] = queue(services, 1)
    now = services.clock.now()
    with services.transaction() as s:  # the post is out for sending: the revision is an edit
        s.get(OutboxMessage, message.id).state = "sending"
        outbox.revise(s, message.id, "C0HANDOFF1", {"text": "edit 1"}, now=now)
    with services.transaction() as s:  # its send failed and waits for a retry
        s.get(OutboxMessage, message.id).state = "pending"
        outbox.revise(s, message.id, "C0HANDOFF1", {"text": "edit 2"}, now=now)
    post, edit = rows(services)
    assert (post.state, post.payload["text"]) == ("pending", "edit 2")
    assert edit.state == "superseded"  # else "edit 1" would follow and undo "edit 2"
