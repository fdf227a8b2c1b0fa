"""The outbox: written with the change, delivered once, paced, retried, dead-lettered."""

from __future__ import annotations

import http.client
import threading
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select

from bot.features import FEATURES
from bot.platform import outbox, sender
from bot.platform.config import ConfigError, Secrets, parse_config
from bot.platform.runtime import SenderLoop, build_services
from bot.platform.sender import OutboxSender
from storage.db import make_sessionmaker
from storage.models import OutboxMessage
from tests.concurrency import flush_together
from tests.conftest import START, TEST_CONFIG
from tests.slack import TEAM


def queue(services, n: int, channel: str = "C0HANDOFF1", prefix: str = "m"):
    with services.transaction() as session:
        return [outbox.post(session, services.team_id, channel, {"text": f"{prefix}{i}"},
                            now=services.clock.now(), ref=f"{prefix}:{i}") for i in range(n)]


def drain(services, clock, rounds: int = 20) -> None:
    """Flush, and move the clock to whatever is due next, until nothing is left."""
    for _ in range(rounds):
        report = services.sender.flush()
        if report.next_due is None:
            return
        clock.set(max(report.next_due, clock.now()))
    raise AssertionError(f"the outbox is not empty after {rounds} rounds")


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
    assert row.state == "sent" and row.attempts == 2  # the 429 did not use one up


def test_rate_limits_never_use_up_a_messages_attempts(services, fake_slack, clock):
    limited = (429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"})
    fake_slack.script("chat.postMessage", *[limited] * (services.config.outbox.max_attempts + 2))
    queue(services, 1)
    drain(services, clock)
    [row] = rows(services)
    assert row.state == "sent" and [m.text for m in fake_slack.messages] == ["m0"]


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
    flush_together(*senders)
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


def test_posts_revised_together_are_each_rewritten_or_edited_as_their_state_says(services):
    """A webhook revises a dozen bursts' summaries at once: one still queued takes the new
    text, one already sent gets an edit, and one a sender claims while the revision runs
    keeps what it is sending and gets an edit after it."""
    from sqlalchemy import event

    queued, out, claimed = queue(services, 3)
    with services.transaction() as s:
        s.get(OutboxMessage, out.id).state, s.get(OutboxMessage, out.id).ts = "sent", "1.000100"

    def claim_first(conn, cursor, statement, *_):  # a sender, just before the rewrite
        if statement.startswith("UPDATE outbox SET payload") and not claims:
            claims.append(claimed.id)
            cursor.connection.execute(f"UPDATE outbox SET state = 'sending' WHERE id = {claimed.id}")

    claims: list[int] = []
    event.listen(services.engine, "before_cursor_execute", claim_first)
    try:
        with services.transaction() as s:
            outbox.revise_each(s, [(m.id, "C0HANDOFF1", {"text": f"new {m.id}"})
                                   for m in (queued, out, claimed)], now=services.clock.now())
    finally:
        event.remove(services.engine, "before_cursor_execute", claim_first)
    assert claims == [claimed.id]
    by_id = {m.id: m for m in rows(services)}
    assert by_id[queued.id].payload["text"] == f"new {queued.id}"
    assert by_id[claimed.id].payload["text"] == "m2"  # as it is being sent
    edits = {m.parent_id: m.payload["text"] for m in by_id.values() if m.method == "chat.update"}
    assert edits == {out.id: f"new {out.id}", claimed.id: f"new {claimed.id}"}


# -- each post once, even when Slack's answer is lost (#20.3)


def test_a_post_whose_answer_was_lost_is_found_not_posted_again(services, fake_slack, clock):
    fake_slack.lose_answers("chat.postMessage", TimeoutError("The read operation timed out"))
    queue(services, 1)
    first = services.sender.flush()
    [row] = rows(services)
    assert row.state == "unknown" and len(fake_slack.messages) == 1  # it landed; we cannot tell
    clock.advance(first.next_due - clock.now())
    assert services.sender.flush().sent == 1
    [msg] = fake_slack.in_channel("C0HANDOFF1")
    [row] = rows(services)
    assert (row.state, row.ts, row.posted_channel) == ("sent", msg.ts, "C0HANDOFF1")
    assert len(fake_slack.calls_of("chat.postMessage")) == 1
    [lookup] = fake_slack.calls_of("conversations.history")
    assert float(lookup["oldest"]) <= row.first_attempt_at.timestamp()


def test_a_dm_whose_connection_dropped_is_found_in_the_dm(services, fake_slack, clock):
    fake_slack.lose_answers("chat.postMessage", http.client.RemoteDisconnected("closed"))
    queue(services, 1, channel="U0SALES01")
    clock.advance(services.sender.flush().next_due - clock.now())
    services.sender.flush()
    [msg] = fake_slack.in_channel("U0SALES01")
    [row] = rows(services)
    assert (row.state, row.ts, row.posted_channel) == ("sent", msg.ts, "D0SALES01")
    assert [c["users"] for c in fake_slack.calls_of("conversations.open")] == ["U0SALES01"]


def test_a_reply_whose_answer_was_lost_is_found_in_its_thread(services, fake_slack, clock):
    with services.transaction() as session:
        parent = outbox.post(session, services.team_id, "C0MARKET01", {"text": "webinar leads"},
                             now=clock.now())
        outbox.post(session, services.team_id, "C0MARKET01", {"text": "rejected: not icp"},
                    now=clock.now(), thread_of=parent)
    fake_slack.lose_answers("chat.postMessage", TimeoutError("timed out"), TimeoutError("timed out"))
    drain(services, clock)  # both answers lost
    parent_msg, reply = fake_slack.messages
    assert reply.thread_ts == parent_msg.ts and len(fake_slack.messages) == 2
    assert [r.ts for r in rows(services)] == [parent_msg.ts, reply.ts]
    assert [c["ts"] for c in fake_slack.calls_of("conversations.replies")] == [parent_msg.ts]


def test_a_post_a_dead_sender_left_claimed_is_found_not_posted_again(services, fake_slack, clock,
                                                                      engine):
    queue(services, 1)
    services.sender.flush()
    with services.transaction() as s:  # as if `alignbot run` was killed right after Slack took it
        row = s.scalars(select(OutboxMessage)).one()
        row.state, row.ts, row.posted_channel, row.claimed_at = "sending", None, None, clock.now()
    clock.advance(sender.CLAIM_LEASE + timedelta(seconds=1))
    restarted = OutboxSender(make_sessionmaker(engine), services.sender.client, clock,
                             services.config.outbox)
    assert restarted.flush().sent == 1
    [msg] = fake_slack.messages
    [row] = rows(services)
    assert (row.state, row.ts) == ("sent", msg.ts)
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


def test_a_5xx_is_an_unknown_outcome_and_a_post_that_did_not_land_goes_once(services, fake_slack,
                                                                           clock):
    fake_slack.script("chat.postMessage", (500, {}, {"ok": False, "error": "internal_error"}))
    queue(services, 1)
    clock.advance(services.sender.flush().next_due - clock.now())
    assert services.sender.flush().sent == 1
    assert [m.text for m in fake_slack.messages] == ["m0"]
    assert len(fake_slack.calls_of("conversations.history")) == 1


def test_a_failed_lookup_waits_rather_than_posting_blind(services, fake_slack, clock):
    fake_slack.lose_answers("chat.postMessage", TimeoutError("timed out"))
    fake_slack.script("conversations.history", (503, {}, {"ok": False}))
    queue(services, 1)
    clock.advance(services.sender.flush().next_due - clock.now())
    services.sender.flush()  # the lookup failed: still unknown, nothing posted
    assert rows(services)[0].state == "unknown" and len(fake_slack.messages) == 1
    clock.advance(timedelta(minutes=1))
    services.sender.flush()
    assert rows(services)[0].state == "sent" and len(fake_slack.messages) == 1


def test_where_the_bot_cannot_read_the_channel_the_post_goes_again(services, fake_slack, clock):
    """At least once, as the README says: Slack lets a bot read only channels it is in."""
    fake_slack.lose_answers("chat.postMessage", TimeoutError("timed out"))
    fake_slack.script("conversations.history", (200, {}, {"ok": False, "error": "not_in_channel"}))
    queue(services, 1)
    clock.advance(services.sender.flush().next_due - clock.now())
    services.sender.flush()
    assert rows(services)[0].state == "sent" and len(fake_slack.messages) == 2


def test_the_app_may_read_the_history_it_looks_posts_up_in():
    assert {"channels:history", "groups:history", "im:history"} <= set(FEATURES.scopes)


def test_a_known_failure_is_retried_without_a_lookup(services, fake_slack, clock):
    fake_slack.script("chat.postMessage", (429, {"Retry-After": "3"}, {"ok": False}))
    queue(services, 1)
    assert rows(services)[0].state == "pending"
    clock.advance(services.sender.flush().next_due - clock.now())
    services.sender.flush()
    assert fake_slack.calls_of("conversations.history") == []
    [post, _] = fake_slack.calls_of("chat.postMessage")
    assert post["metadata"] == {"event_type": sender.METADATA_TYPE,
                                "event_payload": {"outbox_id": rows(services)[0].id}}


# -- channels side by side (#20.10)


def test_a_slow_channel_does_not_hold_the_others(services, fake_slack, monkeypatch):
    answer = threading.Event()  # Slack's answer to the slow channel's first post
    others_arrived = threading.Event()
    slow_done = threading.Event()
    call = services.sender.client.api_call
    started = []

    def slow_in_c0slow(method, **kwargs):
        started.append(kwargs["json"].get("text"))
        if started[-1] == "s0":
            assert answer.wait(10)
        return call(method, **kwargs)

    def arrived(kind, _msg):
        if len(fake_slack.in_channel("C0HANDOFF1")) == 3:
            others_arrived.set()
        if len(fake_slack.in_channel("C0SLOW0001")) == 2:
            slow_done.set()

    monkeypatch.setattr(services.sender.client, "api_call", slow_in_c0slow)
    fake_slack.on_change = arrived
    queue(services, 2, channel="C0SLOW0001", prefix="s")
    queue(services, 3, channel="C0HANDOFF1")
    loop = SenderLoop(services).start()
    try:
        services.wake_sender()
        assert others_arrived.wait(10)  # while the slow channel's first post hangs
        assert fake_slack.in_channel("C0SLOW0001") == []
        assert sorted(started) == ["m0", "m1", "m2", "s0"]  # its second waits its turn
        answer.set()
        assert slow_done.wait(10)
    finally:
        answer.set()
        loop.stop()
    assert [m.text for m in fake_slack.in_channel("C0SLOW0001")] == ["s0", "s1"]
    assert [m.text for m in fake_slack.in_channel("C0HANDOFF1")] == ["m0", "m1", "m2"]


def test_two_pooled_senders_on_one_database_deliver_each_row_exactly_once(config, clock, engine,
                                                                         fake_slack):
    channels, per_channel = 30, 4  # within each channel's burst: the frozen clock never refills
    n = channels * per_channel
    delivered = threading.Event()
    fake_slack.on_change = lambda *_: len(fake_slack.messages) >= n and delivered.set()
    both = [build_services(config, Secrets(), clock, engine=engine, slack=fake_slack.client(),
                           team_id=TEAM) for _ in range(2)]
    for c in range(channels):
        queue(both[0], per_channel, channel=f"C0CHAN{c:04d}", prefix=f"c{c}-")
    loops = [SenderLoop(s).start() for s in both]
    try:
        for s in both:
            s.wake_sender()
        assert delivered.wait(20)
    finally:
        for loop in loops:
            loop.stop()
    texts = [m.text for m in fake_slack.messages]
    assert len(texts) == n and len(set(texts)) == n
    assert {r.state for r in rows(both[0])} == {"sent"}


def test_the_sender_gives_up_waiting_long_before_slack_does(services):
    assert services.sender.client.timeout == services.config.outbox.timeout == 10


def test_outbox_settings_are_checked(config):
    with pytest.raises(ConfigError) as caught:
        parse_config({**TEST_CONFIG, "outbox": {"workers": 0, "timeout": 300}}, "<tests>")
    assert {p.split(":")[0] for p in caught.value.problems} == {"outbox.workers", "outbox.timeout"}


# -- Retry-After, and no row left 'sending' (#20.11)


@pytest.mark.parametrize("value, wait", [
    ("7", 7.0), ("1.5", 1.5), (" 2 ", 2.0), ("Tue, 24 Nov 2026 14:00:20 GMT", 20.0),
    ("Tue, 24 Nov 2026 13:00:00 GMT", 0.0), ("-3", 0.0), ("86400", 900.0), ("1e400", 30.0),
    ("nan", 30.0), ("soon", 30.0), ("", 30.0), (None, 30.0), ("Tue, 99 Zzz 2026", 30.0),
])
def test_retry_after_is_read_defensively(value, wait):
    assert sender.retry_after(value, START) == timedelta(seconds=wait)


def test_a_429_with_a_decimal_retry_after_waits_it_out(services, fake_slack, clock):
    fake_slack.script("chat.postMessage", (429, {"Retry-After": "1.5"}, {"ok": False}))
    queue(services, 1)
    report = services.sender.flush()
    assert rows(services)[0].state == "pending"
    assert report.next_due == clock.now() + timedelta(seconds=1.5)
    clock.advance(timedelta(seconds=1.5))
    assert services.sender.flush().sent == 1


@pytest.mark.parametrize("error", [http.client.IncompleteRead(b"{\"ok\":"), ValueError("odd")])
def test_no_failure_leaves_a_row_sending(services, fake_slack, clock, error):
    fake_slack.lose_answers("chat.postMessage", error)
    queue(services, 1)
    report = services.sender.flush()
    assert rows(services)[0].state == "unknown"
    clock.advance(report.next_due - clock.now())
    services.sender.flush()
    assert rows(services)[0].state == "sent" and len(fake_slack.messages) == 1


def test_a_database_error_while_claiming_leaves_the_channel_free(services, fake_slack,
                                                                 monkeypatch):
    from sqlalchemy.exc import OperationalError

    queue(services, 1)
    claim = sender.queries.mark_claimed

    def locked_once(*args):
        monkeypatch.setattr(sender.queries, "mark_claimed", claim)
        raise OperationalError("UPDATE outbox", {}, Exception("database is locked"))

    monkeypatch.setattr(sender.queries, "mark_claimed", locked_once)
    with pytest.raises(OperationalError):
        services.sender.flush()
    assert services.sender.flush().sent == 1
    assert [m.text for m in fake_slack.messages] == ["m0"]


# -- dead letters (#20.12)


def test_dead_letters_are_one_notice_per_channel_and_hour(services, fake_slack, clock):
    fake_slack.missing.add("C0GONE0001")
    queue(services, 50, channel="C0GONE0001")
    drain(services, clock, rounds=60)
    assert {r.state for r in rows(services) if r.channel == "C0GONE0001"} == {"dead"}
    [notice] = fake_slack.in_channel("U0ADMIN01")
    assert "50 messages to <#C0GONE0001>" in notice.text and "channel_not_found" in notice.text

    clock.advance(timedelta(minutes=10))  # one more in the same hour: the notice is edited
    queue(services, 1, channel="C0GONE0001", prefix="late")
    drain(services, clock)
    assert fake_slack.in_channel("U0ADMIN01") == [notice] and "51 messages" in notice.text

    clock.advance(timedelta(hours=1))  # the next hour has a notice of its own
    queue(services, 1, channel="C0GONE0001", prefix="next")
    drain(services, clock)
    assert [m.text.split(" could")[0] for m in fake_slack.in_channel("U0ADMIN01")] == [
        ":warning: 51 messages to <#C0GONE0001>", ":warning: 1 message to <#C0GONE0001>"]


def test_an_edit_of_a_dead_post_dies_with_it(services, fake_slack, clock):
    fake_slack.missing.add("C0GONE0001")
    with services.transaction() as session:
        card = outbox.post(session, services.team_id, "C0GONE0001", {"text": "card v1"},
                           now=clock.now(), ref="lead:1:card")
        outbox.update(session, card, {"text": "card v2"}, now=clock.now())
    report = services.sender.flush()
    post, edit = rows(services)[:2]
    assert (post.state, edit.state, edit.last_error) == ("dead", "dead", "parent dead")
    assert report.dead == 2 and fake_slack.calls_of("chat.update") == []
    services.sender.flush()  # the admins' notice
    assert services.sender.flush().next_due is None  # nothing left to look at every second


def test_an_edit_that_fails_after_a_newer_one_was_queued_is_not_sent_after_it(
        services, fake_slack, clock, monkeypatch):
    """A click edits a card while its previous edit is in flight, and that one fails: tried
    again after the newer one, it once put the card back to what it said before."""
    with services.transaction() as session:
        card = outbox.post(session, services.team_id, "C0HANDOFF1", {"text": "waiting"},
                           now=clock.now(), ref="lead:1:card")
    services.sender.flush()
    with services.transaction() as session:
        outbox.revise(session, card.id, "C0HANDOFF1", {"text": "accepted"}, now=clock.now())
    fake_slack.script("chat.update", (500, {}, {"ok": False, "error": "internal_error"}))
    send = services.sender._call

    def in_flight(client, method, args):  # while "accepted" is on its way: a newer click
        if method == "chat.update" and args["text"] == "accepted":
            with services.transaction() as session:
                outbox.revise(session, card.id, "C0HANDOFF1", {"text": "contacted"},
                              now=clock.now())
        return send(client, method, args)

    monkeypatch.setattr(services.sender, "_call", in_flight)
    for _ in range(5):  # past every backoff
        services.sender.flush()
        clock.advance(timedelta(seconds=30))
    assert [c["text"] for c in fake_slack.calls_of("chat.update")] == ["accepted", "contacted"]
    assert fake_slack.messages[0].text == "contacted"
    failed = rows(services)[1]
    assert (failed.state, failed.last_error) == ("superseded", "Slack answered 500 internal_error")


def test_the_sender_loop_waits_out_a_database_that_is_down_in_one_line_a_try(
        services, fake_slack, caplog):
    """A down database once logged a traceback on every wake-up of the sender and of every
    job: now one line per try, the sender's tries further and further apart."""
    from dataclasses import replace

    from bot.features import FEATURES
    from bot.platform.scheduler import run_job
    from storage.db import make_engine

    down = make_sessionmaker(make_engine("postgresql+psycopg://postgres:pw@127.0.0.1:1/x"))
    weekly = {"name": "weekly", "channel": "C0DIGEST01", "schedule": "* * * * *",
              "period": "last week"}
    config = parse_config({**TEST_CONFIG, "digests": [weekly]}, "<tests>")
    away = replace(services, config=config, sessions=down, sender=OutboxSender(
        down, fake_slack.client(), services.clock, services.config.outbox))
    loop = SenderLoop(away)
    caplog.clear()
    assert [loop.once() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    failed = [j.id for j in FEATURES.jobs if run_job(away, j.id) is None]
    assert set(failed) == {j.id for j in FEATURES.jobs} - {"imports.folder"}  # it has no folder here
    lines = [r for r in caplog.records if r.levelname != "DEBUG"]
    assert len(lines) == 7 + len(failed) and not any(r.exc_info for r in lines)
    assert all("cannot reach the database at postgresql+psycopg://postgres:***@127.0.0.1:1/x"
               in r.getMessage() for r in lines)
    assert SenderLoop(services).once() == SenderLoop.IDLE  # back: no backoff


def listener_client(fake_slack, clock, slept):
    from bot.platform.runtime import retry_handlers

    return fake_slack.client(retry_handlers=retry_handlers(sleep=slept.append, clock=clock))


@pytest.mark.parametrize(("retry_after", "waited"), [("1.5", 2), ("2", 2), ("0.2", 1),
                                                      ("Tue, 24 Nov 2026 14:00:03 GMT", 3)])
def test_the_listener_client_reads_any_retry_after(fake_slack, clock, retry_after, waited):
    """slack_sdk's own handler did int("1.5") and raised ValueError instead of retrying."""
    clock.set(datetime(2026, 11, 24, 14, 0, tzinfo=UTC))
    slept = []
    fake_slack.script("users.info", (429, {"Retry-After": retry_after},
                                     {"ok": False, "error": "ratelimited"}))
    fake_slack.add_user("U0ANN", "Ann")
    assert listener_client(fake_slack, clock, slept).users_info(user="U0ANN")["ok"]
    assert slept == [waited]


def test_a_long_retry_after_is_not_waited_in_a_listener(fake_slack, clock):
    slept = []
    fake_slack.script("users.info", (429, {"Retry-After": "120"},
                                     {"ok": False, "error": "ratelimited"}))
    with pytest.raises(SlackApiError):
        listener_client(fake_slack, clock, slept).users_info(user="U0ANN")
    assert slept == []


def test_a_dropped_connection_repeats_a_read_but_never_a_direct_reply(fake_slack, clock):
    """After a connection that dropped, the post may have landed: a second would show twice."""
    slept = []
    client = listener_client(fake_slack, clock, slept)
    fake_slack.lose_answers("chat.postMessage", http.client.RemoteDisconnected("dropped"))
    with pytest.raises(http.client.RemoteDisconnected):
        client.chat_postMessage(channel="C0HANDOFF1", text="your answer")
    assert [m.text for m in fake_slack.in_channel("C0HANDOFF1")] == ["your answer"]  # once
    fake_slack.add_user("U0ANN", "Ann")
    fake_slack.lose_answers("users.info", http.client.RemoteDisconnected("dropped"))
    assert client.users_info(user="U0ANN")["user"]["name"] == "Ann"  # a read: tried again
    assert len(fake_slack.calls_of("users.info")) == 2 and len(slept) == 1


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_few_queued_messages_are_found_by_their_keys_among_many_pending(services, engine):
    """SQLite plans without statistics: `state = 'pending'` beside a few ids (or parents)
    went through the state index, every pending message read (a backlog's thousands) for
    the two asked for. A burst summary's revision reads its two by key."""
    from sqlalchemy import event

    from storage.outbox import mark_updates_superseded, rewrite_each_pending

    queued = queue(services, 50)
    plans: list[str] = []

    def explain(conn, _cursor, statement, params, *_):
        if "outbox" in statement and not statement.startswith("EXPLAIN"):
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
            plans.append(" / ".join(row[-1] for row in rows))

    event.listen(engine, "before_cursor_execute", explain)
    try:
        with services.transaction() as session:
            ids = [queued[3].id, queued[7].id]
            assert rewrite_each_pending(session, {i: {"text": "new"} for i in ids}) == set(ids)
            mark_updates_superseded(session, ids)
    finally:
        event.remove(engine, "before_cursor_execute", explain)
    assert plans and not [p for p in plans if "ix_outbox_state" in p], plans
