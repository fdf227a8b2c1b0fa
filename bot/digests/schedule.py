"""Posting digests on their schedule: each (digest, channel, period) once.

The job runs at every digest's firing and every CATCH_UP minutes between (after a restart).
Each run looks at the schedule's firings since the last one a post answers, reads each
firing's period (`period` words, at the firing time) and posts every period not claimed
yet, once, however many firings read it (a daily schedule of a weekly digest posts it the
first day). The claim is a unique row (`storage.digests`) taken in the transaction that
queues the digest's outbox rows: two workers, a restart or an admin's `send` all make one
post. A firing found late (alignbot was down) is posted with a note, up to one period
after it; later than that it is skipped, with a log line and a row that says so. A digest
that has never posted starts with its firings of the last LATE_AFTER: not with those from
before it was configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from apscheduler.triggers.cron import CronTrigger

from bot.blocks.digests import digest_message
from bot.digests.content import CHART, DigestView, chart_args, compose
from bot.metrics.grammar import Period, parse_period
from bot.platform import outbox
from bot.platform.config import Config, Digest
from bot.platform.services import Services
from bot.platform.work import Work
from storage import digests as queries
from storage.db import DatabaseUnreachable

log = logging.getLogger(__name__)

LATE_AFTER = timedelta(hours=1)  # a post this long after its firing says it is late
CATCH_UP = 15  # minutes between runs that catch up on firings missed while down
ON_TIME, LATE, SENT, SKIPPED, EMPTY = "on_time", "late", "sent", "skipped", "empty"


@dataclass(frozen=True)
class Outcome:
    digest: str
    period: str
    kind: str  # on_time | late | sent | skipped | empty | already (claimed before)
    message_id: int | None = None


def crontab(config: Config, digest: Digest) -> CronTrigger:
    return CronTrigger.from_crontab(digest.schedule, timezone=config.workspace.tz)


def sweep(services: Services, now: datetime) -> list[Outcome]:
    """Post (or skip) every digest period whose firing came; one digest's failure is
    logged and keeps no other from posting."""
    done = []
    for digest in services.config.digests:
        try:
            done += [_act(services, digest, period, fired, now)
                     for period, fired in _due(services, digest, now)]
        except DatabaseUnreachable:
            raise  # not this digest's trouble: the job says so, in one line
        except Exception:
            log.exception("digest %s: could not post", digest.name)
    return done


def _due(services: Services, digest: Digest, now: datetime) -> list[tuple[Period, datetime]]:
    """The unclaimed periods of the firings since the last claim, each with its first firing."""
    tz = services.config.workspace.tz
    with services.sessions() as session:
        last = queries.get_last_fired(session, services.team_id, digest.name, digest.channel)
        horizon = 2 * _length(parse_period(digest.period, now, tz))
        start = now - LATE_AFTER if last is None else max(last, now - horizon)
        periods: dict[tuple[datetime, datetime], tuple[Period, datetime]] = {}
        for fired in firings(crontab(services.config, digest), start, now):
            period = parse_period(digest.period, fired, tz)
            periods.setdefault((period.start, period.end), (period, fired))
        if last is not None and start > last and periods:
            log.warning("digest %s: alignbot did not run from %s; the digests due before %s "
                        "were more than a period late and are not posted", digest.name,
                        last.isoformat(), start.isoformat())
        claimed = queries.list_claimed(session, services.team_id, digest.name, digest.channel,
                                       now - 2 * horizon)
    return [due for key, due in periods.items() if key not in claimed]


def _act(services: Services, digest: Digest, period: Period, fired: datetime,
         now: datetime) -> Outcome:
    if now > _deadline(period, fired, services.config.workspace.tz):
        return _skip(services, digest, period, fired, now)
    return post(services, digest, period, now, fired_at=fired,
                kind=LATE if now - fired > LATE_AFTER else ON_TIME)


def _skip(services: Services, digest: Digest, period: Period, fired: datetime,
          now: datetime) -> Outcome:
    with services.transaction() as session:
        claimed = queries.claim_period(session, services.team_id, digest.name, digest.channel,
                                       period.start, period.end, fired_at=fired, kind=SKIPPED,
                                       now=now)
    if claimed is not None:
        log.warning("digest %s for %s (due %s) is more than a period late: not posted",
                    digest.name, period.label, fired.isoformat())
    return Outcome(digest.name, period.label, SKIPPED if claimed else "already")


def post(services: Services, digest: Digest, period: Period, now: datetime, *,
         fired_at: datetime, kind: str) -> Outcome:
    """The digest of `period`, queued once: its message, and its chart in the message's
    thread (drawn by the outbox at delivery), in the transaction of its claim. The numbers
    are read before that transaction, so no write lock waits for them (a worker that loses
    the race read them for nothing)."""
    team = services.team_id
    with services.sessions() as session:
        if queries.get_post(session, team, digest.name, digest.channel, period.start,
                            period.end) is not None:
            return Outcome(digest.name, period.label, "already")
        view = compose(services.work_in(session, team, now), digest, period,
                       late_since=fired_at if kind == LATE else None)
    if view.empty and digest.skip_if_empty:
        kind = EMPTY
    with services.work(team, now) as work:
        claim = queries.claim_period(work.session, team, digest.name, digest.channel,
                                     period.start, period.end, fired_at=fired_at, kind=kind,
                                     now=now)
        if claim is None:
            return Outcome(digest.name, period.label, "already")
        if kind == EMPTY:
            return Outcome(digest.name, period.label, EMPTY)
        message = _queue(work, digest, view)
        queries.set_message(work.session, claim, message.id)
    return Outcome(digest.name, period.label, kind, message.id)


def _queue(work: Work, digest: Digest, view: DigestView) -> outbox.OutboxMessage:
    session, now = work.session, work.now
    ref = f"digest:{digest.name}:{view.period.start.date().isoformat()}"
    message = outbox.post(session, work.team_id, digest.channel,
                          digest_message(view, preview=False), now=now, ref=ref)
    if "chart" in digest.sections and not view.empty:
        outbox.upload(session, work.team_id, digest.channel,
                      f"{digest.name}_{view.period.start.date().isoformat()}.png",
                      f"{digest.name.capitalize()} digest: {view.period.label}", make=CHART,
                      args=chart_args(view), now=now, ref=ref, thread_of=message)
    session.flush()  # the message's id, for its claim
    return message


def firings(trigger: CronTrigger, after: datetime, until: datetime) -> list[datetime]:
    """The trigger's fire times in (after, until]."""
    times = []
    fired = trigger.get_next_fire_time(None, after)
    while fired is not None and fired <= until:
        if fired > after:
            times.append(fired)
        fired = trigger.get_next_fire_time(fired, fired)  # the next one after it
    return times


def _length(period: Period) -> timedelta:
    """The period's length on the workspace's clocks (its bounds share its zone: a day is a
    day, 23 or 25 hours across a change of clocks)."""
    return period.end - period.start


def _deadline(period: Period, fired: datetime, tz: tzinfo) -> datetime:
    """Until when a firing's digest may be posted late: one period after it on the
    workspace's clocks (adding to a zoned time keeps the wall clock), so a daily digest at
    09:00 is late until 09:00 the next day, when the next one fires; elapsed hours were an
    hour off when the clocks changed in the period or after the firing."""
    return fired.astimezone(tz) + _length(period)
