"""Outbox pacing across senders: several processes on one store keep each channel's pace
together, a 429 one of them gets holds the channel for all, and each row goes once."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.platform import outbox
from bot.platform.sender import OutboxSender
from storage import pacing
from storage.db import make_sessionmaker
from storage.models import OutboxMessage
from tests.concurrency import flush_together

SECOND = timedelta(seconds=1)


def queue(services, channel: str, n: int, prefix: str) -> None:
    with services.transaction() as session:
        for i in range(n):
            outbox.post(session, services.team_id, channel, {"text": f"{prefix}{i}"},
                        now=services.clock.now(), ref=f"{prefix}:{i}")


def senders(services, engine, **settings) -> list[OutboxSender]:
    """Two senders as two processes have them: sessions of their own, one store."""
    outbox_settings = replace(services.config.outbox, **settings)
    return [OutboxSender(make_sessionmaker(engine), services.sender.client, services.clock,
                         outbox_settings, name=f"process-{i}") for i in range(2)]


def test_two_senders_never_post_to_a_channel_faster_than_its_pace(services, engine, fake_slack,
                                                                   clock):
    one, other = senders(services, engine, burst=1)
    sent_at = defaultdict(list)
    fake_slack.on_change = lambda kind, msg: kind == "post" and sent_at[msg.channel].append(clock.now())
    for c in range(3):
        queue(services, f"C0PACE000{c}", 5, prefix=f"c{c}-")
    for step in range(40):  # every quarter second both look; who looks first changes each second
        for sender in (one, other) if step // 4 % 2 else (other, one):
            sender.flush()
        clock.advance(SECOND / 4)
    assert sum(map(len, sent_at.values())) == 15
    for times in sent_at.values():
        assert all(b - a >= SECOND for a, b in zip(times, times[1:], strict=False))
    with services.sessions.begin() as s:
        by = Counter(s.scalars(select(OutboxMessage.claimed_by)))
    assert set(by) == {"process-0", "process-1"}  # both took their turns


def test_two_senders_share_one_burst_per_channel(services, engine, fake_slack, clock):
    burst = services.config.outbox.burst
    queue(services, "C0PACE0001", burst + 3, prefix="m")
    for sender in senders(services, engine):
        sender.flush()
    assert len(fake_slack.messages) == burst  # not a burst each
    clock.advance(SECOND)
    senders(services, engine)[1].flush()
    assert len(fake_slack.messages) == burst + 1


def test_a_429_one_sender_gets_holds_the_channel_for_the_other(services, engine, fake_slack, clock):
    fake_slack.script("chat.postMessage",
                      (429, {"Retry-After": "30"}, {"ok": False, "error": "ratelimited"}))
    queue(services, "C0PACE0001", 2, prefix="held")
    queue(services, "C0PACE0002", 1, prefix="free")
    one, other = senders(services, engine)
    first = one.flush()
    assert first.retried == 1
    report = other.flush()
    assert [m.text for m in fake_slack.messages] == ["free0"]  # the other channel goes on
    assert len(fake_slack.calls_of("chat.postMessage")) == 2  # no second try at the held one
    assert report.next_due == clock.now() + 30 * SECOND
    clock.advance(30 * SECOND)
    other.flush()
    assert [m.text for m in fake_slack.in_channel("C0PACE0001")] == ["held0", "held1"]


def test_senders_racing_for_the_same_rows_send_each_once_and_keep_the_pace(services, engine,
                                                                          fake_slack, clock):
    burst, channels, per_channel = services.config.outbox.burst, 8, 6
    for c in range(channels):
        queue(services, f"C0RACE000{c}", per_channel, prefix=f"c{c}-")
    racing = senders(services, engine)
    flush_together(*racing)
    assert Counter(m.channel for m in fake_slack.messages) == {
        f"C0RACE000{c}": burst for c in range(channels)}  # one burst, though two raced
    clock.advance((per_channel - burst) * SECOND)
    flush_together(*racing)
    texts = [m.text for m in fake_slack.messages]
    assert len(texts) == len(set(texts)) == channels * per_channel
    with services.sessions.begin() as s:
        assert set(s.scalars(select(OutboxMessage.state))) == {"sent"}


@pytest.mark.parametrize("burst", [1, 4])
def test_a_channel_takes_its_burst_then_one_an_interval(services, clock, burst):
    """The schedule itself, asked every quarter second for 20 s: never more than `burst` plus
    one an interval in any stretch of time, and no fewer over all."""
    interval, start = SECOND, clock.now()
    taken = []
    for step in range(80):
        at = start + step * SECOND / 4
        with services.sessions.begin() as s:
            pace = pacing.lock(s, services.team_id, "C0PACE0001", at - interval * (burst - 1))
            if pacing.free_at(pace) <= at:
                pacing.advance(pace, at, interval, burst)
                taken.append(at)
    for i, first in enumerate(taken):
        for j in range(i, len(taken)):
            assert j - i + 1 <= burst + (taken[j] - first) / interval
    assert len(taken) >= burst + 19
