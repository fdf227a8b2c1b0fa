"""Retention: [retention] windows, and the retention.prune job that applies them."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot import retention
from bot.features import FEATURES
from bot.platform.config import ConfigError, Retention, parse_config
from bot.platform.scheduler import run_job
from storage.models import (
    DigestPost,
    HandoffBurst,
    LeadEvent,
    OutboxMessage,
    ProcessedEvent,
    Survey,
    SurveyAnswer,
    SurveyQuestion,
    SurveyRun,
)
from tests.conftest import TEST_CONFIG
from tests.slack import TEAM

DAY = timedelta(days=1)


def keep(services, **windows):
    services.config = dataclasses.replace(services.config, retention=Retention(**windows))


def count(services, model, *where) -> int:
    with services.sessions.begin() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def add(services, *rows):
    with services.sessions.begin() as s:
        s.add_all(rows)
        s.flush()
        return [r.id if hasattr(r, "id") else None for r in rows]


def message(services, age: timedelta, state="sent", parent_id=None,
            method="chat.postMessage") -> OutboxMessage:
    at = services.clock.now() - age
    return OutboxMessage(team_id=TEAM, method=method, channel="C0HANDOFF1",
                         payload={"text": "x"}, state=state, next_attempt_at=at, created_at=at,
                         sent_at=at if state == "sent" else None, parent_id=parent_id)


# ------------------------------------------------------------------ config


def test_defaults_and_durations():
    assert parse_config({}).retention == Retention(slack_events=2 * DAY, outbox=90 * DAY)
    r = parse_config({"retention": {"slack_events": "6h", "outbox": "30d", "lead_events": "52w",
                                    "survey_runs": "forever"}}).retention
    assert r == Retention(timedelta(hours=6), 30 * DAY, 52 * 7 * DAY, None)


@pytest.mark.parametrize("raw, problem", [
    ({"outbox": "30x"}, "retention.outbox: '30x' is not a duration"),
    ({"outbox": 30}, "retention.outbox: 30 is not a duration"),
    ({"lead_events": "2h"}, "retention.lead_events: '2h' is shorter than the 1 day(s)"),
    ({"slack_events": "10m"}, "retention.slack_events: '10m' is shorter than the 1 hour(s)"),
    ({"slack_events": "forever"}, "retention.slack_events: 'forever' is not a duration"),
    ({"surveys": "30d"}, "retention.surveys: unknown key (did you mean 'survey_runs'?)"),
])
def test_bad_durations_are_named_with_their_key(raw, problem):
    with pytest.raises(ConfigError) as caught:
        parse_config({**TEST_CONFIG, "retention": raw})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(problem)


def test_the_job_replaces_events_prune():
    ids = [j.id for j in FEATURES.jobs]
    assert "retention.prune" in ids and "events.prune" not in ids


# ------------------------------------------------------------------ pruning


def test_slack_event_ids_older_than_the_window_are_forgotten(services, clock):
    now = clock.now()
    add(services, *(ProcessedEvent(team_id=TEAM, event_id=f"Ev{i}", received_at=now - i * DAY)
                    for i in range(5)))  # 0, 1, 2, 3, 4 days old
    report = run_job(services, "retention.prune")
    assert count(services, ProcessedEvent) == 3  # 2 days is kept: "older than" is strict
    assert report.deleted["slack_events"] == 2
    assert str(report).startswith("deleted 2 processed Slack event id(s) older than "
                                  "2 day(s); 0 delivered outbox message(s) older than 90 day(s)")
    assert "lead history event(s) kept for good (retention lead_events = forever)" in str(report)


def test_outbox_rows_go_when_nothing_kept_needs_them(services, monkeypatch):
    keep(services, outbox=30 * DAY)
    monkeypatch.setattr(retention, "BATCH", 2)  # several batches, and chains across them
    old, new = 40 * DAY, DAY
    [lone, card, chain] = add(services, message(services, old), message(services, old),
                              message(services, old))
    [edited_lately] = add(services, message(services, new, method="chat.update", parent_id=card))
    add(services, message(services, old, method="chat.update", parent_id=chain))
    [pending, dead, superseded, recent] = add(
        services, message(services, old, "pending"), message(services, old, "dead"),
        message(services, old, "superseded"), message(services, new))
    [digest] = add(services, message(services, old))
    add(services, DigestPost(team_id=TEAM, digest="weekly", channel="C0DIGEST01",
                             period_start=services.clock.now() - old,
                             period_end=services.clock.now() - old,
                             fired_at=services.clock.now() - old, kind="on_time",
                             message_id=digest, created_at=services.clock.now() - old))
    [summary] = add(services, message(services, old))
    add(services, HandoffBurst(team_id=TEAM, channel="C0HANDOFF1", message_id=summary, leads=30,
                               last_at=services.clock.now() - old,
                               window_at=services.clock.now() - old))
    report = retention.prune(services, services.clock.now())
    with services.sessions.begin() as s:
        left = set(s.scalars(select(OutboxMessage.id)))
    assert left == {card, edited_lately, pending, dead, recent, digest}
    assert lone not in left and chain not in left and superseded not in left
    assert report.deleted["outbox"] == 5 and count(services, HandoffBurst) == 0


def test_lead_history_is_pruned_only_when_asked(services, clock):
    from tests.test_handoff import new_lead

    lead_id = new_lead(services)
    clock.advance(timedelta(days=400))
    with services.sessions.begin() as s:
        s.add(LeadEvent(team_id=TEAM, lead_id=lead_id, kind="note", actor="system",
                        at=clock.now()))
    before = count(services, LeadEvent)
    retention.prune(services, clock.now())
    assert count(services, LeadEvent) == before  # no lead_events window: kept for good
    keep(services, lead_events=365 * DAY)
    assert retention.prune(services, clock.now()).deleted["lead_events"] == before - 1
    assert count(services, LeadEvent) == 1


def test_closed_survey_runs_go_with_their_answers_but_each_surveys_latest_stays(services, clock):
    keep(services, survey_runs=180 * DAY)
    now = clock.now()
    [survey] = add(services, Survey(team_id=TEAM, key="pulse", created_at=now - 900 * DAY))
    runs = []
    for number, age in ((1, 400), (2, 300), (3, 200), (4, 1)):
        state = "open" if number == 4 else "closed"
        [run] = add(services, SurveyRun(team_id=TEAM, survey_id=survey, number=number,
                                        state=state, started_by="schedule", k=3,
                                        opened_at=now - (age + 3) * DAY,
                                        closes_at=now - age * DAY,
                                        closed_at=now - age * DAY if state == "closed" else None))
        [q] = add(services, SurveyQuestion(team_id=TEAM, run_id=run, position=0, key="q",
                                           text="?", type="scale5"))
        add(services, SurveyAnswer(team_id=TEAM, run_id=run, question_id=q, value=4))
        runs.append(run)
    report = retention.prune(services, now)
    with services.sessions.begin() as s:
        assert set(s.scalars(select(SurveyRun.number))) == {3, 4}  # 3: the latest closed
        assert set(s.scalars(select(SurveyAnswer.run_id))) == set(runs[2:])
    assert report.deleted["survey_runs"] == 2
    assert "2 closed survey run(s) older than 180 day(s)" in str(report)
