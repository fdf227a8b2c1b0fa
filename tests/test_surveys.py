"""Pulse surveys through the real app: prompts in DMs, answers by button, select, comment
modal and reactions (Slack's own payload shapes), changes of mind and withdrawals, what is
not taken, the close that makes a run anonymous, and the results' JSON."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import inspect, select, text

from bot.app import AfterAck, create_app
from bot.blocks import surveys as views
from bot.cli import main
from bot.platform.config import parse_config
from bot.surveys import answers, runs
from bot.surveys.commands import find_results
from bot.surveys.keys import respondent_key
from bot.surveys.results import Group, QuestionResult, Results
from storage import surveys as queries
from storage.models import (
    OutboxMessage,
    Person,
    SurveyAnswer,
    SurveyInvite,
    SurveyQuestion,
    SurveyRun,
)
from tests import slack_contract
from tests.concurrency import until_waiting
from tests.conftest import TEST_CONFIG
from tests.slack import all_text, click, reply, request, send_event, slash, submit
from tests.test_nudges import drain

MORE_PEOPLE = [
    {"slack_id": "U0SALES03", "email": "sol@example.com", "role": "sales", "name": "Sol"},
    {"slack_id": "U0MKTG02", "email": "mo@example.com", "role": "marketing", "name": "Mo"},
    {"slack_id": "U0MKTG03", "email": "meg@example.com", "role": "marketing", "name": "Meg"},
]
PULSE = {"name": "pulse", "template": "alignment", "audience": ["sales", "marketing"],
         "open_for": "3d", "reminders": 2, "remind_every": "1d", "min_responses": 3}
CHOICE = {"name": "tools", "audience": ["marketing"], "min_responses": 3, "questions": [
    {"key": "crm", "text": "Which CRM view do you use most?", "type": "choice",
     "options": ["Pipeline", "Leads", "Reports"]}]}
EVENTS = itertools.count(1)


@pytest.fixture
def config():
    data = {**TEST_CONFIG, "people": TEST_CONFIG["people"] + MORE_PEOPLE,
            "surveys": [PULSE, CHOICE, {"name": "groups", "template": "alignment",
                                        "audience": ["S0REVOPS1", "exec"]}]}
    return parse_config(data, "<tests>")


def start(services, clock, name="pulse"):
    run = runs.start(services, name, by="U0ADMIN01")
    drain(services, clock)
    return run


def prompt(fake, user, run, position):
    """The person's DM holding that question (as it reads now)."""
    block = f"survey-{run.id}:{position}"
    return next(m for m in fake.in_channel(user) if any(b.get("block_id") == block
                                                         for b in m.blocks))


def react(app, fake, msg, user, emoji, now, added=True, item_user="U0ALIGNBOT"):
    event = {"type": "reaction_added" if added else "reaction_removed", "user": user,
             "item": {"type": "message", "channel": msg.channel, "ts": msg.ts},
             "reaction": emoji, "item_user": item_user, "event_ts": "1764000000.000100"}
    assert send_event(app, event, f"Ev{next(EVENTS):06d}", now).status == 200


def stored(services, run):
    with services.sessions() as s:
        return sorted((a.question_id, a.value, a.text) for a in s.scalars(
            select(SurveyAnswer).where(SurveyAnswer.run_id == run.id)))


def answer_of(services, run, user, position):
    """What the person's answer to that question is now (found with the open run's key)."""
    with services.sessions() as s:
        person_id = s.scalar(select(Person.id).where(Person.slack_id == user))
        key = respondent_key(s.get(SurveyRun, run.id).secret, person_id)
        row = s.scalar(select(SurveyAnswer)
                       .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
                       .where(SurveyQuestion.run_id == run.id, SurveyQuestion.position == position,
                              SurveyAnswer.respondent_key == key))
        return None if row is None else (row.value if row.text is None else row.text)


def notes(fake, user):
    return [m.text for m in fake.messages if m.ephemeral_to == user]


# ------------------------------------------------------------------ prompts


def test_each_question_is_its_own_dm_and_says_who_sees_what(app, services, fake_slack, clock):
    run = start(services, clock)
    mine = [m for m in fake_slack.in_channel("U0SALES01") if m.action_ids()]
    assert len(mine) == 7  # the alignment template: five dimensions, collaboration, comment
    first = all_text({"text": mine[0].text, "blocks": mine[0].blocks})
    assert "question 1 of 7" in first and "target customer" in first
    assert "1 · Low" in first and "5 · High" in first and ":one: … :five:" in first
    assert "4 · Rather high" in first
    assert all("Nobody sees who answered what" in all_text({"blocks": m.blocks}) for m in mine)
    assert "10 · Completely" in all_text({"blocks": prompt(fake_slack, "U0SALES01", run, 5).blocks})
    assert prompt(fake_slack, "U0SALES01", run, 6).action_ids() == [views.COMMENT]


# ------------------------------------------------------------------ answering


def test_a_button_answers_and_the_prompt_shows_the_answer(app, services, fake_slack, clock):
    run = start(services, clock)
    msg = prompt(fake_slack, "U0SALES01", run, 0)
    assert click(app, fake_slack, msg, f"{views.ANSWER}.4", "U0SALES01", clock.now()).status == 200
    drain(services, clock)
    assert answer_of(services, run, "U0SALES01", 0) == 4
    assert "Your answer: *4 · Rather high*" in all_text({"blocks": msg.blocks})
    assert msg.updates == 1 and notes(fake_slack, "U0SALES01") == []


def test_a_reaction_answers_and_a_keycap_counts_the_same(app, services, fake_slack, clock):
    run = start(services, clock)
    react(app, fake_slack, prompt(fake_slack, "U0SALES01", run, 2), "U0SALES01", "three",
          clock.now())
    react(app, fake_slack, prompt(fake_slack, "U0SALES01", run, 5), "U0SALES01", "keycap_ten",
          clock.now())
    react(app, fake_slack, prompt(fake_slack, "U0SALES01", run, 1), "U0SALES01", "keycap_2",
          clock.now())
    drain(services, clock)
    assert answer_of(services, run, "U0SALES01", 2) == 3
    assert answer_of(services, run, "U0SALES01", 5) == 10
    assert answer_of(services, run, "U0SALES01", 1) == 2
    assert "Your answer: *10 · Completely*" in all_text(
        {"blocks": prompt(fake_slack, "U0SALES01", run, 5).blocks})


def test_the_latest_answer_counts_and_removing_a_reaction_withdraws_it(app, services, fake_slack,
                                                                         clock):
    run = start(services, clock)
    msg = prompt(fake_slack, "U0SALES01", run, 0)
    react(app, fake_slack, msg, "U0SALES01", "two", clock.now())
    click(app, fake_slack, msg, f"{views.ANSWER}.5", "U0SALES01", clock.now())
    assert answer_of(services, run, "U0SALES01", 0) == 5
    react(app, fake_slack, msg, "U0SALES01", "two", clock.now(), added=False)
    assert answer_of(services, run, "U0SALES01", 0) == 5  # an older reaction: the answer stays
    react(app, fake_slack, msg, "U0SALES01", "four", clock.now())
    react(app, fake_slack, msg, "U0SALES01", "four", clock.now(), added=False)
    drain(services, clock)
    assert answer_of(services, run, "U0SALES01", 0) is None
    shown = all_text({"blocks": msg.blocks})
    assert "Your answer" not in shown and "react with :one: … :five:" in shown
    assert len(stored(services, run)) == 0


def test_a_choice_is_picked_from_a_select(app, services, fake_slack, clock):
    run = start(services, clock, "tools")
    msg = prompt(fake_slack, "U0MKTG01", run, 0)
    payload = fake_slack.block_action(msg, views.CHOOSE, "U0MKTG01", trigger_id="t",
                                      selected_option="Leads")
    app.dispatch(request(urlencode({"payload": json.dumps(payload)}),
                         "application/x-www-form-urlencoded", clock.now()))
    react(app, fake_slack, msg, "U0MKTG02", "one", clock.now())  # not hers: not counted
    drain(services, clock)
    assert answer_of(services, run, "U0MKTG01", 0) == 2
    assert "Your answer: *Leads*" in all_text({"blocks": msg.blocks})


def test_a_comment_is_written_in_a_modal_and_an_empty_one_withdraws_it(app, services, fake_slack,
                                                                       clock):
    run = start(services, clock)
    msg = prompt(fake_slack, "U0SALES01", run, 6)
    click(app, fake_slack, msg, views.COMMENT, "U0SALES01", clock.now())
    submit(app, fake_slack, fake_slack.views[-1], "U0SALES01",
           {views.COMMENT_BLOCK: "Webinar leads are <!channel> cold"}, clock.now())
    assert answer_of(services, run, "U0SALES01", 6) == "Webinar leads are <!channel> cold"
    click(app, fake_slack, msg, views.COMMENT, "U0SALES01", clock.now())
    modal = fake_slack.views[-1]
    assert modal["blocks"][1]["element"]["initial_value"] == "Webinar leads are <!channel> cold"
    submit(app, fake_slack, modal, "U0SALES01", {views.COMMENT_BLOCK: "  "}, clock.now())
    assert answer_of(services, run, "U0SALES01", 6) is None


def test_a_reaction_that_is_no_answer_gets_a_private_note(app, services, fake_slack, clock):
    run = start(services, clock)
    react(app, fake_slack, prompt(fake_slack, "U0SALES01", run, 0), "U0SALES01", "seven",
          clock.now())  # 1-5 only
    react(app, fake_slack, prompt(fake_slack, "U0SALES01", run, 0), "U0SALES01", "heart_eyes",
          clock.now())
    react(app, fake_slack, prompt(fake_slack, "U0SALES01", run, 6), "U0SALES01", "one",
          clock.now())  # the comment takes words
    assert stored(services, run) == []
    said = notes(fake_slack, "U0SALES01")
    assert len(said) == 3 and "not an answer" in said[0] and "Write a comment" in said[2]


def test_a_reaction_from_someone_not_invited_is_not_counted(app, services, fake_slack, clock):
    run = start(services, clock)
    react(app, fake_slack, prompt(fake_slack, "U0SALES01", run, 0), "U0ADMIN01", "three",
          clock.now())
    assert stored(services, run) == []
    assert "sent to someone else" in notes(fake_slack, "U0ADMIN01")[0]


def test_a_reaction_on_an_unrelated_message_is_ignored_quietly(app, services, fake_slack, clock):
    run = start(services, clock)
    fake_slack.client().chat_postMessage(channel="C0HANDOFF1", text="lunch?")
    other = fake_slack.in_channel("C0HANDOFF1")[-1]
    react(app, fake_slack, other, "U0SALES01", "three", clock.now())  # a bot message
    react(app, fake_slack, prompt(fake_slack, "U0SALES01", run, 0), "U0SALES01", "three",
          clock.now(), item_user="U0SALES02")  # someone else's message
    assert stored(services, run) == [] and notes(fake_slack, "U0SALES01") == []


def test_an_answer_after_the_close_is_not_taken(app, services, fake_slack, clock):
    run = start(services, clock)
    msg = prompt(fake_slack, "U0SALES01", run, 0)
    assert "is closed" in all_text(reply(slash(app, "survey close pulse", clock.now(),
                                               user="U0ADMIN01")))
    click(app, fake_slack, msg, f"{views.ANSWER}.3", "U0SALES01", clock.now())
    react(app, fake_slack, msg, "U0SALES01", "three", clock.now())
    assert stored(services, run) == []
    said = notes(fake_slack, "U0SALES01")
    assert len(said) == 2 and all("has closed" in n for n in said)


def keyed_answers_and_queued_echoes(services, run):
    """What would still tie a person to an answer: keyed rows, prompt edits to send."""
    with services.sessions() as s:
        return (s.scalars(select(SurveyAnswer.respondent_key).where(
                    SurveyAnswer.run_id == run.id, SurveyAnswer.respondent_key.is_not(None))).all(),
                s.scalars(select(OutboxMessage.id).where(OutboxMessage.method == "chat.update",
                                                         OutboxMessage.state == "pending")).all())


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)  # SQLite has one writer: an answer and a close never overlap
def test_a_close_waits_for_an_answer_in_flight_and_makes_it_anonymous_too(services, clock):
    run = start(services, clock)
    with services.work() as work:  # a click's transaction, the run read open
        p = answers.prompt(work, "U0SALES01", run.id, 0)
        closing = threading.Thread(target=close_now, args=(services, run))
        closing.start()
        until_waiting(services.engine, closing)
        answers.answer(work, p, value=4)
    closing.join()
    assert keyed_answers_and_queued_echoes(services, run) == ([], [])


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)
def test_an_answer_waiting_for_a_close_in_flight_is_not_taken(services, clock):
    run = start(services, clock)
    refused = []

    def click():
        try:
            with services.work() as work:
                answers.answer(work, answers.prompt(work, "U0SALES01", run.id, 0), value=4)
        except answers.NotTaken as exc:
            refused.append(exc.note["text"])
    with services.work() as work:  # the close's transaction, the run marked closed
        runs.close_run(work, queries.get_run(work.session, run.id), announce=False)
        clicking = threading.Thread(target=click)
        clicking.start()
        until_waiting(services.engine, clicking)
    clicking.join()
    assert len(refused) == 1 and "has closed" in refused[0]
    assert keyed_answers_and_queued_echoes(services, run) == ([], [])


def close_now(services, run):
    with services.work() as work:
        runs.close_run(work, queries.get_run(work.session, run.id), announce=False)


# How the sender's next attempt at a post (or an edit) ends: Slack answers; no answer,
# though the call took effect (a timeout); or a 5xx, and it did not.
ATTEMPT = {
    "answered": lambda fake, method="chat.postMessage": None,
    "landed": lambda fake, method="chat.postMessage": fake.lose_answers(
        method, TimeoutError("timed out")),
    "lost": lambda fake, method="chat.postMessage": fake.script(
        method, (500, {}, {"ok": False, "error": "internal_error"})),
}


def close_during_next_post(services, fake, call="chat.postMessage"):
    """The run closes while the sender is making its next `call` (claimed, in flight)."""
    check = fake.check

    def closing(method, args):
        if method == call and fake.check is closing:
            fake.check = check
            runs.close(services, "pulse")
        check(method, args)
    fake.check = closing


def first_post(services):
    """The first message the sender attempted after the run started."""
    with services.sessions() as s:
        return s.scalars(select(OutboxMessage).where(OutboxMessage.attempts > 0)
                         .order_by(OutboxMessage.id).limit(1)).one()


def copies(fake, row):
    """The messages in Slack that are this outbox row (posted with its id)."""
    return [m for m in fake.messages
            if (m.metadata or {}).get("event_payload", {}).get("outbox_id") == row.id]


def said_after_the_close(services, fake, row, attempt):
    """What the person got of a post in doubt at the close: nothing if it never landed, else
    that one message, saying the run closed, with nothing left to click; and no admin is
    told of a message that could not be delivered."""
    found = copies(fake, row)
    if attempt == "lost":
        assert found == []
    else:
        [msg] = found
        assert "pulse* has closed" in msg.text and not any(
            b.get("type") == "actions" for b in msg.blocks)
    assert first_post(services).state in ("sent", "superseded")
    assert fake.in_channel("U0ADMIN01") == []


@pytest.mark.parametrize(("closes", "attempt"), [
    ("after", "landed"), ("after", "lost"),
    ("during", "answered"), ("during", "landed"), ("during", "lost")])
def test_a_prompt_in_doubt_at_the_close_is_never_posted_after_it(app, services, fake_slack,
                                                                  clock, closes, attempt):
    """A prompt whose attempt had no answer (or was in flight) when its run closed is looked
    for, not posted again: a copy that landed is edited to say the survey closed."""
    ATTEMPT[attempt](fake_slack)
    if closes == "during":
        close_during_next_post(services, fake_slack)
    runs.start(services, "pulse", by="U0ADMIN01")
    services.sender.flush()
    if closes == "after":
        assert first_post(services).state == "unknown"
        runs.close(services, "pulse")
    drain(services, clock)
    said_after_the_close(services, fake_slack, first_post(services), attempt)


@pytest.mark.parametrize("attempt", ["landed", "lost"])
def test_a_reminder_in_flight_at_the_close_is_never_posted_after_it(services, fake_slack, clock,
                                                                    attempt):
    start(services, clock)
    clock.advance(timedelta(days=1))
    assert runs.send_reminders(services, clock.now()) > 0
    posted = len(fake_slack.messages)
    ATTEMPT[attempt](fake_slack)
    close_during_next_post(services, fake_slack)
    drain(services, clock)
    with services.sessions() as s:
        [row] = s.scalars(select(OutboxMessage).where(OutboxMessage.ref.startswith(
            "survey-reminder:")))
    said_after_the_close(services, fake_slack, row, attempt)
    assert [m for m in fake_slack.messages[posted:] if "Reminder" in m.text] == []


@pytest.mark.parametrize("attempt", ["answered", "landed", "lost"])
def test_an_answer_being_shown_at_the_close_ends_shown_or_closed(app, services, fake_slack, clock,
                                                                attempt):
    """The edit showing someone the answer they just gave, in flight as the run closes: it
    lands with their answer or, tried again, says the survey closed (as a recalled prompt
    does); never retried blank till it dies with a notice to the admins."""
    run = start(services, clock)
    msg = prompt(fake_slack, "U0SALES01", run, 0)
    ATTEMPT[attempt](fake_slack, "chat.update")
    close_during_next_post(services, fake_slack, "chat.update")
    click(app, fake_slack, msg, f"{views.ANSWER}.4", "U0SALES01", clock.now())
    drain(services, clock)
    shown = all_text({"text": msg.text, "blocks": msg.blocks})
    if attempt == "answered":
        assert "Your answer: *4 · Rather high*" in shown
    else:
        assert "pulse* has closed" in shown and msg.action_ids() == []
        assert "Answers given before the close count" in shown  # theirs did
    assert fake_slack.in_channel("U0ADMIN01") == []
    with services.sessions() as s:
        assert s.scalars(select(OutboxMessage.state).where(
            OutboxMessage.method == "chat.update")).all() == ["sent"]


@pytest.mark.parametrize("token", ["not:a-token", "{run}:0:\u00b2", "{run}:0:\u0663", "{run}:0: 3",
                                   "{run}:\u0660:3", "99999999999999999999:0:3", "{run}:0:3:4"])
def test_a_malformed_click_changes_nothing_and_says_so(app, services, fake_slack, clock, token):
    """Forged values (they need the signing secret) get the note, not an error: "²" and
    "٣" pass str.isdigit(), int() takes "٣" and " 3", and 10²⁰ overflows a database integer."""
    run = start(services, clock)
    msg = prompt(fake_slack, "U0SALES01", run, 0)
    msg.blocks[1]["elements"][0]["value"] = token.format(run=run.id)
    click(app, fake_slack, msg, f"{views.ANSWER}.1", "U0SALES01", clock.now())
    assert stored(services, run) == []
    assert "not one alignbot can read" in notes(fake_slack, "U0SALES01")[0]


def test_a_user_group_audience_is_resolved_when_the_run_opens(services, fake_slack, clock):
    """Known people answer in their role's group; someone alignbot meets through the group
    is looked up (their timezone) and answers in the group's handle."""
    fake_slack.add_user("U0NEWBIE1", "Nia New", "nia@example.com", tz="Europe/London")
    fake_slack.add_usergroup("S0REVOPS1", "revops", ["U0MKTG01", "U0NEWBIE1"])
    run = start(services, clock, "groups")
    with services.sessions() as s:
        invited = dict(s.execute(select(Person.slack_id, SurveyInvite.role)
                                 .join(SurveyInvite, SurveyInvite.person_id == Person.id)
                                 .where(SurveyInvite.run_id == run.id)).all())
        newbie = s.scalar(select(Person).where(Person.slack_id == "U0NEWBIE1"))
    assert invited == {"U0MKTG01": "marketing", "U0NEWBIE1": "revops"}
    assert newbie.timezone == "Europe/London" and newbie.role == "other"
    assert [a["usergroup"] for a in fake_slack.calls_of("usergroups.users.list")] == ["S0REVOPS1"]
    fake_slack.script("usergroups.list", (200, {}, {"ok": False, "error": "missing_scope"}))
    runs.close(services, "groups")
    with pytest.raises(runs.SurveyRefused, match="missing_scope"):
        runs.start(services, "groups", by="U0ADMIN01")


def test_slack_is_asked_about_a_user_group_before_the_runs_transaction(
        services, fake_slack, clock, monkeypatch):
    """No Slack call inside the transaction that opens the run (its locks would wait)."""
    fake_slack.add_user("U0NEWBIE1", "Nia New", "nia@example.com")
    fake_slack.add_usergroup("S0REVOPS1", "revops", ["U0MKTG01", "U0NEWBIE1"])
    methods = ("usergroups.list", "usergroups.users.list", "users.info")
    calls_at_open = []
    open_run = runs.open_run

    def opening(*args, **kwargs):
        calls_at_open.append([len(fake_slack.calls_of(m)) for m in methods])
        return open_run(*args, **kwargs)
    monkeypatch.setattr(runs, "open_run", opening)
    start(services, clock, "groups")
    assert calls_at_open == [[1, 1, 1]] == [[len(fake_slack.calls_of(m)) for m in methods]]


# ------------------------------------------------------------------ commands


def test_a_start_that_asks_slack_answers_at_once_and_tells_the_outcome_after(
        services, fake_slack, clock):
    """Listing a user group is one Slack call per group and per newcomer: never inside the
    ack's three seconds. The ack says it is opening; the outcome follows privately."""
    fake_slack.add_user("U0NEWBIE1", "Nia New", "nia@example.com")
    fake_slack.add_usergroup("S0REVOPS1", "revops", ["U0MKTG01", "U0NEWBIE1"])
    later = AfterAck()
    app = create_app(services, after_ack=later)
    asked = all_text(reply(slash(app, "survey start groups", clock.now(), user="U0ADMIN01")))
    assert "Opening *groups*" in asked and fake_slack.calls_of("usergroups.users.list") == []
    later.run()
    told = fake_slack.messages[-1]
    assert told.ephemeral_to == "U0ADMIN01" and "run 1 is open: 2 people invited" in told.text
    fake_slack.script("usergroups.list", (200, {}, {"ok": False, "error": "missing_scope"}))
    slash(app, "survey start groups", clock.now(), user="U0ADMIN01")
    later.run()
    assert "missing_scope" in fake_slack.messages[-1].text


def test_only_admins_start_and_close_and_status_never_shows_answers(app, services, fake_slack,
                                                                    clock):
    refused = all_text(reply(slash(app, "survey start pulse", clock.now(), user="U0SALES01")))
    assert "Only admins" in refused
    assert "no survey 'nope'" in all_text(reply(slash(app, "survey start nope", clock.now(),
                                                       user="U0ADMIN01")))
    opened = all_text(reply(slash(app, "survey start pulse", clock.now(), user="U0ADMIN01")))
    assert "pulse* run 1 is open: 7 people invited" in opened.replace("*pulse", "pulse")
    again = all_text(reply(slash(app, "survey start pulse", clock.now(), user="U0ADMIN01")))
    assert "already has an open run" in again
    drain(services, clock)
    with services.sessions() as s:
        run = s.scalar(select(SurveyRun))
    click(app, fake_slack, prompt(fake_slack, "U0SALES01", run, 0), f"{views.ANSWER}.4",
          "U0SALES01", clock.now())
    status = all_text(reply(slash(app, "survey status", clock.now())))
    assert "1 of 7 have answered" in status and "Rather high" not in status
    assert "still open" in all_text(reply(slash(app, "survey results pulse", clock.now())))


# ------------------------------------------------------------------ anonymity


def answer_everything(app, services, fake, clock, run, users, values):
    for user, value in zip(users, values, strict=True):
        for position in range(6):
            msg = prompt(fake, user, run, position)
            if position % 2:
                react(app, fake, msg, user, ("zero", "one", "two", "three", "four", "five")[value],
                      clock.now())
            else:
                click(app, fake, msg, f"{views.ANSWER}.{value}", user, clock.now())
        click(app, fake, prompt(fake, user, run, 6), views.COMMENT, user, clock.now())
        submit(app, fake, fake.views[-1], user, {views.COMMENT_BLOCK: f"note {value}"},
               clock.now())
        clock.advance(timedelta(minutes=7))
    drain(services, clock)


def everything(engine):
    """Every value of every column of every table, with where it is."""
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')).mappings():
                for column, value in row.items():
                    yield table, column, value


def as_time(value) -> datetime | None:
    """A stored time (SQLite keeps UTC text), else None."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC) if isinstance(value, str) \
            and value[:2] == "20" else None
    except ValueError:
        return None


def in_arrival_order(services, run):
    with services.sessions() as s:
        return [(a.question_id, a.value, a.text) for a in s.scalars(
            select(SurveyAnswer).where(SurveyAnswer.run_id == run.id).order_by(SurveyAnswer.id))]


def test_after_the_close_nothing_links_a_person_to_an_answer(app, services, fake_slack, clock,
                                                              engine):
    """Seven people answer everything (by button and reaction, and a comment); then every
    column of every table is searched for anything that ties one of them to an answer:
    their id or email (or a hash of either) in an answer row, the keys and secret the open
    run used, the time of an answer, the order they answered in, a prompt edit showing one."""
    people = ["U0SALES01", "U0SALES02", "U0SALESMG1", "U0SALES03", "U0MKTG01", "U0MKTG02",
              "U0MKTG03"]
    clock.set(datetime.fromisoformat("2026-11-24T12:30:00-05:00"))  # LA is at work too
    run = start(services, clock)
    with services.sessions() as s:
        secret = s.get(SurveyRun, run.id).secret
        ids = dict(s.execute(select(Person.slack_id, Person.id)).all())
        emails = [e for e in s.scalars(select(Person.email)) if e]
    keys = {respondent_key(secret, ids[u]) for u in people}
    clock.advance(timedelta(hours=1))  # answers come after the prompts were delivered
    answered_at = []
    for user, value in zip(people, [1, 2, 3, 4, 5, 1, 2], strict=True):
        answered_at.append(clock.now())
        answer_everything(app, services, fake_slack, clock, run, [user], [value])
    arrival = in_arrival_order(services, run)
    with services.sessions() as s:
        assert len(arrival) == 7 * 7
        assert set(s.scalars(select(SurveyAnswer.respondent_key))) == keys
        assert s.scalar(select(OutboxMessage).where(OutboxMessage.method == "chat.update"))
    reply(slash(app, "survey close pulse", clock.now(), user="U0ADMIN01"))
    drain(services, clock)

    identities = [*people, *emails]
    hashes = {h(x.encode()).hexdigest() for x in [*identities, *map(str, ids.values())]
              for h in (hashlib.sha256, hashlib.md5, hashlib.sha1)}
    for table, column, value in everything(engine):
        shown, where = str(value), (table, column, value)
        assert secret not in shown and not any(k in shown for k in keys), where
        assert not any(h[:12] in shown for h in hashes), where
        if table == "survey_answers":
            assert column not in ("answered_at", "created_at", "updated_at"), where
            assert not any(i in shown for i in identities), where
            assert column != "respondent_key" or value is None, where
        if table == "outbox":
            assert "Your answer" not in shown, where  # the prompt edits are gone
        if (at := as_time(value)) is not None and (table, column) != ("processed_events",
                                                                      "received_at"):
            assert at not in answered_at, where  # no time of an answer (event ids: no person)
    after = in_arrival_order(services, run)
    assert sorted(after, key=str) == sorted(arrival, key=str)  # every answer is kept (k = 3) ...

    def per_question(rows):
        return {q: [r for r in rows if r[0] == q] for q, _, _ in rows}
    # ... in random order: no question's answers are stored in the order people gave them
    # (each run of this test, all seven matching by chance has odds of about 1 in 10^20)
    assert per_question(after) != per_question(arrival)
    with services.sessions() as s:
        assert all(i.responded for i in s.scalars(select(SurveyInvite)))


def test_the_close_keeps_only_the_groups_results_show(app, services, fake_slack, clock):
    """Four sales people and one marketer answer (k = 3): sales is shown; marketing alone
    (one) is not, and everyone minus sales would give it away, so sales is hidden too, and
    the database keeps no role for any answer."""
    clock.set(datetime.fromisoformat("2026-11-24T12:30:00-05:00"))
    run = start(services, clock)
    answer_everything(app, services, fake_slack, clock, run,
                      ["U0SALES01", "U0SALES02", "U0SALESMG1", "U0SALES03", "U0MKTG01"],
                      [4, 4, 5, 3, 1])
    runs.close(services, "pulse")
    with services.sessions() as s:
        assert {a.role for a in s.scalars(select(SurveyAnswer))} == {None}
        assert s.scalar(select(SurveyAnswer).where(SurveyAnswer.text.is_not(None))) is not None
    data = find_results(services, "pulse").as_json()
    first = data["questions"][0]
    assert first["overall"]["n"] == 5 and first["overall"]["mean"] == 3.4
    assert first["by_role"] == {"marketing": None, "sales": None}
    assert sorted(data["comments"]) == ["note 1", "note 3", "note 4", "note 4", "note 5"]


def test_groups_below_k_are_not_stored_and_comments_need_more_than_k(app, services, fake_slack,
                                                                       clock):
    run = start(services, clock)
    answer_everything(app, services, fake_slack, clock, run, ["U0SALES01", "U0MKTG01"], [4, 2])
    runs.close(services, "pulse")
    assert stored(services, run) == []  # two answers a question: never shown, so not kept
    data = find_results(services, "pulse").as_json()
    assert data["responded"] == 2 and data["comments"] is None
    assert all(q["overall"] is None for q in data["questions"])


# ------------------------------------------------------------------ results


def test_results_json_has_the_issues_shape_and_change_since_the_previous_run(
        app, services, fake_slack, clock, capsys, monkeypatch):
    users = ["U0SALES01", "U0SALESMG1", "U0SALES03", "U0MKTG01", "U0MKTG02", "U0MKTG03"]
    for values in ([2, 2, 2, 4, 4, 4], [3, 3, 3, 5, 5, 5]):
        run = start(services, clock)
        answer_everything(app, services, fake_slack, clock, run, users, values)
        runs.close(services, "pulse")
        drain(services, clock)
    data = find_results(services, "pulse").as_json()
    assert set(data) == {"survey", "run", "invited", "responded", "participation", "k",
                         "questions", "comments"}
    assert set(data["run"]) == {"id", "opened_at", "closed_at", "state"}
    assert data["run"]["id"] == 2 and data["run"]["state"] == "closed"
    assert (data["invited"], data["responded"], data["k"]) == (7, 6, 3)
    assert data["participation"] == round(6 / 7, 4)
    q = data["questions"][0]
    assert set(q) == {"key", "type", "overall", "by_role"} and q["key"] == "customer_understanding"
    assert q["overall"] == {"n": 6, "mean": 4.0, "distribution": {"1": 0, "2": 0, "3": 3, "4": 0,
                                                                  "5": 3}, "change": 1.0}
    assert q["by_role"]["sales"] == {"n": 3, "mean": 3.0, "distribution": {
        "1": 0, "2": 0, "3": 3, "4": 0, "5": 0}, "change": 1.0}
    assert [q["key"] for q in data["questions"]][-1] == "collaboration"
    assert data["comments"] is not None and len(data["comments"]) == 6
    posted = fake_slack.in_channel("C0DIGEST01")
    assert len(posted) == 2 and "run 2 results" in posted[-1].text
    assert "n=6: 4.00 (+1.00)" in all_text({"blocks": posted[-1].blocks})
    # the same through the CLI, on the same store
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    assert main(["survey", "results", "pulse", "--run", "1", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["run"]["id"] == 1 and printed["questions"][0]["overall"]["change"] is None
    assert main(["survey", "results", "pulse", "--run", "9", "--json"]) == 1


@pytest.mark.parametrize("number", ["²", "٣", "99999999999999999999", "0", "-1"])
def test_a_run_that_is_not_a_number_is_refused(app, services, clock, number):
    start(services, clock)
    runs.close(services, "pulse")
    text = all_text(reply(slash(app, f"survey results pulse {number}", clock.now())))
    assert f"{number!r} is not a run number; runs are numbered 1, 2, 3" in text


@pytest.mark.parametrize("number", ["0", "-1", "99999999999999999999"])
def test_the_cli_refuses_a_run_that_is_not_a_number(services, clock, capsys, monkeypatch, number):
    """`--run 0` once printed the latest run; twenty digits overflowed SQLite."""
    start(services, clock)
    runs.close(services, "pulse")
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    assert main(["survey", "results", "pulse", "--run", number, "--json"]) == 1
    assert "is not a run number" in capsys.readouterr().err


def test_every_slack_call_of_a_survey_is_in_slacks_method_lists(app, services, fake_slack, clock):
    """The fake Slack checks each call against Slack's specs (conftest); here, the survey's
    whole life makes each kind of call at least once."""
    run = start(services, clock)
    answer_everything(app, services, fake_slack, clock, run, ["U0SALES01"], [3])
    react(app, fake_slack, prompt(fake_slack, "U0SALES01", run, 0), "U0SALES01", "nine",
          clock.now())
    runs.close(services, "pulse")
    drain(services, clock)
    made = {method for method, _ in fake_slack.calls}
    assert {"chat.postMessage", "chat.update", "chat.postEphemeral", "views.open"} <= made
    for method, args in fake_slack.calls:
        if method != "response_url":
            slack_contract.check_call(method, args)


def test_a_closed_run_is_the_perception_the_gap_and_the_index_read(app, services, fake_slack,
                                                                   clock):
    """Sales answer 2 to every question, marketing 4: each dimension is Low for sales and High
    for marketing, exec is hidden (nobody asked), and collaboration is (3 × 2 + 3 × 4) / 6 = 3."""
    from bot.alignment import report as alignment
    from bot.alignment.perception import latest_perception
    from bot.metrics.grammar import parse_period

    users = ["U0SALES01", "U0SALESMG1", "U0SALES03", "U0MKTG01", "U0MKTG02", "U0MKTG03"]
    run = start(services, clock)
    answer_everything(app, services, fake_slack, clock, run, users, [2, 2, 2, 4, 4, 4])
    with services.sessions() as s:
        assert latest_perception(services.work_in(s)) is None  # still open
    runs.close(services, "pulse")
    with services.sessions() as s:
        perception = latest_perception(services.work_in(s))
        period = parse_period("last 90 days", clock.now(), services.config.workspace.tz)
        found = alignment.report(services.work_in(s), period)
    assert (perception.survey, perception.run, perception.collaboration) == ("pulse", 1, 3.0)
    assert {row["dimension"]: row["perception"] for row in found.gap_json()["rows"]} == {
        dimension: {"exec": None, "sales": "low", "marketing": "high"}
        for dimension in ("customer_understanding", "shared_goals", "communication",
                          "lead_quality", "customer_satisfaction")}
    index = found.index_json()
    assert index["components"]["perception"] == 0.3 and index["survey"]["run"] == 1


def closed_with(services, clock, stored_answers):
    """A closed run of pulse whose close stored `stored_answers` ({question key: [(role,
    value)]}): what the close of that many people's answers keeps (anonymous rows)."""
    run = start(services, clock)
    runs.close(services, "pulse")
    with services.transaction() as s:
        ids = {q.key: q.id for q in queries.list_questions(s, run.id)}
        queries.replace_answers(s, run.id, [
            {"team_id": run.team_id, "run_id": run.id, "question_id": ids[key],
             "respondent_key": None, "role": role, "value": value, "text": None}
            for key, answers_ in stored_answers.items() for role, value in answers_])
    return run


# 101 sales people: 50 answer 3 and 51 answer 2, a mean of 252 / 101 = 2.49505 (shown 2.50)
LOW_BY_A_HAIR = [("sales", 3)] * 50 + [("sales", 2)] * 51


@pytest.mark.parametrize("collaboration, perceived, index", [
    # demo run 3: 4 5 5 6 6 6 7 7 7 7 8 8 8 8 8 9 9 9 = 127 / 18 = 7.0556 (shown 7.06):
    # P = 0.705556, not 0.706
    ([4] + [5] * 2 + [6] * 3 + [7] * 4 + [8] * 5 + [9] * 3, 127 / 180, 71),
    # 25 × 7 + 76 × 6 = 631 / 101 = 6.2475 (shown 6.25): P = 0.624752, round(62.4752) = 62,
    # where the shown mean's 0.625 would make it round(62.5) = 63
    ([7] * 25 + [6] * 76, 631 / 1010, 62),
])
def test_levels_and_the_index_are_computed_from_exact_means(services, clock, collaboration,
                                                          perceived, index):
    """Issue #17: a role's perception is its mean answer, Low below 2.5: 2.49505 is Low, though
    results show it as 2.50. The index's P is read from the exact mean too; only what is shown
    is rounded. No metric has data here, so the index is P alone (the others are left out)."""
    from bot.alignment import report as alignment
    from bot.metrics.grammar import parse_period

    closed_with(services, clock, {"customer_understanding": LOW_BY_A_HAIR,
                                  "collaboration": [(None, v) for v in collaboration]})
    shown = find_results(services, "pulse")
    assert shown.as_json()["questions"][0]["by_role"]["sales"]["mean"] == 2.5  # as shown
    assert "n=101: 2.50 · 1:0 2:51 3:50" in all_text(views.results_message(shown))
    with services.sessions() as s:
        period = parse_period("last 90 days", clock.now(), services.config.workspace.tz)
        found = alignment.report(services.work_in(s), period)
    rows = {row["dimension"]: row for row in found.gap_json()["rows"]}
    got = found.index_json()
    assert (rows["customer_understanding"]["perception"]["sales"], got["components"],
            got["index"]) == ("low", {"kpi": None, "agreement": None,
                                      "perception": pytest.approx(perceived, abs=1e-9)}, index)
    assert found.perception.mean("customer_understanding", "sales") == pytest.approx(252 / 101)


def test_a_mention_that_starts_a_survey_answers_in_its_thread_then_the_outcome(
        app, fake_slack, clock):
    fake_slack.add_usergroup("S0REVOPS1", "revops", ["U0MKTG01"])
    event = {"type": "app_mention", "user": "U0ADMIN01", "text": "<@U0ALIGNBOT> survey start groups",
             "channel": "C0HANDOFF1", "ts": "1764000000.000100", "event_ts": "1764000000.000100"}
    assert send_event(app, event, "EvMention1", clock.now()).status == 200
    said = [(m["thread_ts"], m["text"]) for m in fake_slack.calls_of("chat.postMessage")
            if m.get("channel") == "C0HANDOFF1"]
    assert [thread for thread, _ in said] == ["1764000000.000100"] * 2
    assert "Opening *groups*" in said[0][1] and "run 1 is open" in said[1][1]


ROLES = ("admin", "exec", "marketing", "marketing_manager", "sales", "sales_manager")
CLOSED = datetime(2026, 11, 24, 14, tzinfo=UTC)


def closed_run(questions=5, comments=None) -> Results:
    def group():
        return Group(n=42, mean=3.21, distribution={str(v): 3 for v in range(11)}, change=-0.12)

    asked = tuple(QuestionResult(f"q{i}", f"Question {i:02d}: do sales and marketing agree?",
                                 "scale10", group(), {role: group() for role in ROLES})
                  for i in range(questions))
    return Results("pulse", 3, "closed", CLOSED, CLOSED, CLOSED, 5,
                   {role: (20, 15) for role in ROLES}, asked, comments)


def not_shown(shown: str, what: str) -> int:
    found = re.search(rf"(\d+) more {what}s? did not fit this message", shown)
    return int(found[1]) if found else 0


def test_results_of_40_questions_show_the_first_and_count_the_rest():
    results = views.results_message(closed_run(questions=40))
    slack_contract.check_message(results)
    shown = all_text(results)
    listed = [i for i in range(40) if f"Question {i:02d}:" in shown]
    assert listed == list(range(len(listed))) and len(listed) >= 10
    assert len(listed) + not_shown(shown, "question") == 40
    assert "`alignbot survey results pulse --run 3` lists every question and comment" in shown


LONG_COMMENTS = tuple(f"#{i:02d} " + "リードの質は改善したが、営業との定例会議がもっと必要だと思います。" * 6
                      for i in range(60))  # Japanese: 6 characters each as JSON
SHORT_COMMENTS = tuple(f"#{i:02d} Leads from the webinar were great, but follow-up took too "
                       "long & the CRM notes were empty." for i in range(40))


@pytest.mark.parametrize("written", [LONG_COMMENTS, SHORT_COMMENTS], ids=["60 long", "40 short"])
def test_results_show_comments_as_room_allows_and_count_every_other_one(written):
    results = views.results_message(closed_run(comments=written))
    slack_contract.check_message(results)
    shown = all_text(results)
    listed = [c for c in written if f"> {c}" in shown]
    assert listed == list(written[:len(listed)]) and listed
    assert len(listed) + not_shown(shown, "comment") == len(written)  # none silently dropped
    assert "Question 04:" in shown  # questions come first


def test_results_with_every_comment_shown_say_nothing_is_missing():
    shown = all_text(views.results_message(closed_run(comments=SHORT_COMMENTS[:3])))
    assert all(f"> {c}" in shown for c in SHORT_COMMENTS[:3]) and "did not fit" not in shown


def test_the_home_drops_a_question_once_answered_and_shows_a_new_prompt(
        app, services, fake_slack, clock):
    """"Surveys waiting for you" follows the person's answers and prompts, as the leads
    section follows their leads: republished once the debounce window is over."""
    from bot.home import DEBOUNCE
    from bot.platform.scheduler import run_job

    def home_after_window():
        clock.advance(DEBOUNCE)
        run_job(services, "home.refresh")
        drain(services, clock)
        return all_text(fake_slack.homes["U0SALES01"])

    event = {"type": "app_home_opened", "user": "U0SALES01", "channel": "D0SALES01",
             "tab": "home", "event_ts": "1764000000.000100"}
    assert send_event(app, event, "EvHomeSurvey", clock.now()).status == 200
    assert "Surveys waiting for you" not in all_text(fake_slack.homes["U0SALES01"])
    run = start(services, clock)
    assert "Surveys waiting for you" in home_after_window()  # the new prompts
    for position in range(6):  # the required ones; the comment is optional
        click(app, fake_slack, prompt(fake_slack, "U0SALES01", run, position),
              f"{views.ANSWER}.4", "U0SALES01", clock.now())
    assert "Surveys waiting for you" not in home_after_window()


def test_the_homes_waiting_surveys_count_what_they_leave_out(clock):
    """The Home lists 5 surveys of 8 questions each: the rest were left out unsaid."""
    pending = [views.PendingSurvey(f"pulse {n}", clock.now(), tuple(f"Q{q}" for q in range(n)), 5)
               for n in (10, 9, 1, 1, 1, 1, 1)]
    shown = all_text({"blocks": views.home_questions(pending)})
    assert "…and 2 more questions" in shown and "…and 1 more question" in shown
    assert "…and 2 more surveys" in shown and "pulse 1" in shown
