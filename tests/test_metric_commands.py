"""Metric questions through the real app: `/align metric|scorecard|export`, @mentions and the
shell, on the hand-checked data of tests/metric_fixture.py (deals closed in May–July 2026).

Win rate, by the deal's own source: Q2 2026 closed D6 (May, no source) won, D1 (marketing)
won, D3 (sales) lost and D4 (sales) won: 75%; Q3 closed D2 and D7 (marketing) won, D8
(marketing) lost: 67%, 8.3 pts below Q2.
"""

from __future__ import annotations

import json
import threading

import pytest
from slack_sdk import WebClient
from sqlalchemy import update

from bot.app import AfterAck, create_app
from bot.blocks import replies as command_views
from bot.metrics import commands as metric_commands
from bot.metrics.commands import mention_command
from bot.platform.turns import Turns
from storage import db
from storage.models import Deal
from storage.snapshots import lock_refresh
from tests.concurrency import TRIES
from tests.metric_fixture import add_metric_fixture
from tests.shelltools import run
from tests.slack import TEAM, all_text, reply, send_event, slash
from tests.test_db import FakeTime

PNG = b"\x89PNG\r\n\x1a\n"
Q3_BY_SOURCE = "win rate Q3 2026 by source vs previous"


@pytest.fixture
def data(services):
    with services.transaction() as session:
        add_metric_fixture(session)


def ask(app, clock, text: str) -> tuple[str, dict]:
    """A slash command: who sees the answer, and what it says."""
    body = reply(slash(app, text, clock.now()))
    return body.get("response_type"), body


def mention(app, clock, text: str, event_id: str = "Ev1", **fields) -> None:
    event = {"type": "app_mention", "user": "U0SALES01", "text": f"<@U0ALIGNBOT> {text}",
             "channel": "C0HANDOFF1", "ts": "1764000000.000100",
             "event_ts": "1764000000.000100", **fields}
    assert send_event(app, event, event_id, clock.now()).status == 200


def posted(fake) -> tuple[str | None, str]:
    """The last message the bot posted: its thread, and what it says."""
    args = fake.calls_of("chat.postMessage")[-1]
    return args.get("thread_ts"), all_text({"text": args["text"], "blocks": json.loads(
        args["blocks"]) if isinstance(args.get("blocks"), str) else args.get("blocks")})


# ------------------------------------------------------------------ /align metric


def test_a_metric_question_is_answered_only_to_the_asker(app, clock, data, fake_slack):
    who, body = ask(app, clock, f"metric {Q3_BY_SOURCE}")
    text = all_text(body)
    assert who == "ephemeral"
    assert "*Win rate* · Q3 2026 (Jul 1 – Sep 30, 2026)" in text
    assert "*67%* ▼ 8.3 pts vs previous period (75%) :red_circle:" in text
    assert "Target 30% ✅" in text and "Trend `    █▁`" in text
    assert "marketing" in text and "67%" in text.split("*By source*")[1]
    assert fake_slack.files == []  # no chart asked, none sent


def test_share_posts_the_answer_in_the_channel(app, clock, data):
    who, body = ask(app, clock, f"metric {Q3_BY_SOURCE} share")
    assert who == "in_channel" and "*67%*" in all_text(body)


def test_chart_uploads_a_png_of_the_trend_to_the_askers_dm(app, clock, data, fake_slack):
    _, body = ask(app, clock, "metric win rate Q3 2026 chart")
    [png] = fake_slack.files
    assert png["bytes"].startswith(PNG) and png["channel"] == "D0SALES01"
    assert png["filename"] == "win_rate_2026-07-01_2026-09-30.png"
    assert "is in your direct messages" in all_text(body)


@pytest.mark.parametrize(("words", "expected"), [
    ("metric win rat", "Did you mean win_rate?"),
    ("metric", "Which metric?"),
    ("metric win rate by colour", "I can't break down by “colour”"),
    ("metric churn by owner", "Churn rate cannot be broken down by owner"),
    ("export", "Which metric?"),
    ("export nonsense 99 weeks", "I couldn't read the period"),
    ("scorecard next tuesday", "I couldn't read the period"),
])
def test_questions_it_cannot_read_get_a_clear_message(app, clock, fake_slack, words, expected):
    who, body = ask(app, clock, words)
    assert who == "ephemeral" and expected in all_text(body)
    assert fake_slack.files == []


# ------------------------------------------------------------------ /align export


def test_export_sends_the_rows_as_a_csv_file(app, clock, data, fake_slack):
    _, body = ask(app, clock, "export win rate Q2 2026 by source")
    [csv] = fake_slack.files
    assert csv["bytes"].decode().splitlines() == [
        "source,win_rate", "marketing,1.0", "unknown,1.0", "sales,0.5"]
    assert csv["filename"] == "win_rate_2026-04-01_2026-06-30.csv"
    assert csv["channel"] == "D0SALES01" and csv["title"] == "Win rate, Q2 2026"
    text = all_text(body)
    assert "`win_rate_2026-04-01_2026-06-30.csv`" in text and "one row per source" in text


def test_a_shared_export_goes_to_the_channel(app, clock, data, fake_slack):
    who, _ = ask(app, clock, "export win rate Q2 2026 share")
    [csv] = fake_slack.files
    assert who == "in_channel" and csv["channel"] == "C0HANDOFF1"
    assert csv["bytes"].decode().splitlines()[-2:] == [  # the trend, ending with the period asked
        "Q1 2026,2026-01-01T00:00:00-05:00,2026-04-01T00:00:00-04:00,",  # no deal closed
        "Q2 2026,2026-04-01T00:00:00-04:00,2026-07-01T00:00:00-04:00,0.75"]
    assert fake_slack.calls_of("conversations.open") == []


def test_the_answer_goes_to_slack_before_its_file_is_uploaded(services, clock, data, fake_slack):
    """Slack gives a command three seconds: the upload's three calls come after the ack."""
    later = AfterAck()
    _, body = ask(create_app(services, after_ack=later), clock, "export win rate Q2 2026 by source")
    assert "is in your direct messages" in all_text(body)
    assert fake_slack.files == [] and fake_slack.calls_of("conversations.open") == []
    later.run()
    [csv] = fake_slack.files
    assert csv["channel"] == "D0SALES01" and csv["filename"] == "win_rate_2026-04-01_2026-06-30.csv"


def test_an_upload_that_never_reaches_slack_is_told_too(app, clock, data, fake_slack, monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("slack.com is unreachable")
    monkeypatch.setattr(WebClient, "files_upload_v2", unreachable)
    ask(app, clock, "export win rate Q2 2026")
    told = fake_slack.messages[-1]
    assert told.ephemeral_to == "U0SALES01" and "`request_failed`" in told.text


def test_a_failed_upload_is_told_to_the_asker_after_the_answer(app, clock, data, fake_slack):
    fake_slack.script("files.completeUploadExternal",
                      (200, {}, {"ok": False, "error": "not_in_channel"}))
    who, body = ask(app, clock, "export win rate Q2 2026 share")
    assert who == "in_channel" and "`win_rate_2026-04-01_2026-06-30.csv`" in all_text(body)
    told = fake_slack.messages[-1]
    assert told.ephemeral_to == "U0SALES01" and told.channel == "C0HANDOFF1"
    assert told.text == command_views.FILE_FAILED.format(
        name="win_rate_2026-04-01_2026-06-30.csv", error="not_in_channel")


# ------------------------------------------------------------------ /align scorecard


def test_the_scorecard_shows_every_metric_against_its_target(app, clock, data, fake_slack):
    who, body = ask(app, clock, "scorecard Q3 2026 chart")
    text = all_text(body)
    assert who == "ephemeral" and "Scorecard: Q3 2026" in text
    assert "✅ *Win rate* 67% · target 30% · `    █▁` · ▼ 8.3 pts :red_circle:" in text
    assert "*Leads routed* 2" in text and "*Customer lifetime value*" in text
    [png] = fake_slack.files
    assert png["bytes"].startswith(PNG) and png["filename"] == \
        "scorecard_2026-07-01_2026-09-30.png"


def test_help_lists_the_metric_commands(app, clock):
    overview = all_text(ask(app, clock, "help")[1])
    assert "`/align metric <question>`" in overview and "`/align export <question>`" in overview
    assert "`/align scorecard [period]`" in overview
    assert "vs last year" in all_text(ask(app, clock, "help metric")[1])


# ------------------------------------------------------------------ @mentions


def test_a_mention_is_answered_in_the_askers_thread(app, clock, data, fake_slack):
    mention(app, clock, "what was our win rate Q3 2026 by source?")
    thread, text = posted(fake_slack)
    assert thread == "1764000000.000100" and "*67%*" in text and "marketing" in text
    mention(app, clock, "win rate Q3 2026 vs previous", "Ev2", thread_ts="1764000000.000001")
    thread, text = posted(fake_slack)
    assert thread == "1764000000.000001" and "▼ 8.3 pts" in text  # asked inside a thread


def test_a_mention_it_cannot_read_gets_did_you_mean_in_the_thread(app, clock, fake_slack):
    mention(app, clock, "win rat last quarter")
    thread, text = posted(fake_slack)
    assert thread == "1764000000.000100" and "Did you mean win_rate?" in text


@pytest.mark.parametrize(("text", "expected"), [
    ("Hi there!", "Hi <@U0SALES01>! Ask me about a metric"),
    ("hi", "Hi <@U0SALES01>!"),
    ("hello alignbot", "Hi <@U0SALES01>!"),
    ("thanks!", "You're welcome, <@U0SALES01>!"),
    ("thank you so much", "You're welcome"),
    ("hepl", "Did you mean `/align help`?"),
    ("scorcard last quarter", "Did you mean `/align scorecard`?"),
])
def test_small_talk_and_typos_get_a_friendly_answer(app, clock, fake_slack, text, expected):
    mention(app, clock, text)
    answer = posted(fake_slack)[1]
    assert expected in answer and "metric “" not in answer and "Which metric" not in answer


@pytest.mark.parametrize(("text", "expected"), [
    ("hi", "Hi <@U0SALES01>!"), ("thanks", "You're welcome"),
    ("hepl", "Did you mean `/align help`?"), ("leeds", "Did you mean `/align leads`"),
])
def test_small_talk_and_typos_on_the_slash_command(app, clock, text, expected):
    assert expected in all_text(ask(app, clock, text)[1])


def test_the_shell_suggests_its_own_lines_too(shell):
    out = run(shell, "tikc 2h", "@alignbot hepl", "/align hepl", "@alignbot Hi there!")
    assert "unknown line 'tikc' — did you mean 'tick'?" in out
    assert out.count("Did you mean `/align help`?") == 2
    assert "Hi @Sam Sales!" in out


@pytest.mark.parametrize("text", ["what can you do?", "help me", "Help me please!",
                                  "What can I ask you?", "how do I use this?", "hey, what can you do",
                                  "commands?", "what else can you do for us"])
def test_asking_what_it_can_do_gets_the_help(app, clock, fake_slack, text):
    """"what can you do?" was read as a metric, "help me" as help about a command "me"."""
    mention(app, clock, text)
    answer = posted(fake_slack)[1]
    assert answer.startswith("alignbot commands"), answer  # the help, not a metric answer
    assert "alignbot commands" in all_text(ask(app, clock, text)[1])


def test_a_mention_that_names_a_command_runs_it(app, clock, fake_slack):
    mention(app, clock, "help")
    assert "alignbot commands" in posted(fake_slack)[1]


def test_a_mention_with_chart_uploads_the_png_in_the_thread(app, clock, data, fake_slack):
    mention(app, clock, "win rate Q3 2026 chart")
    [png] = fake_slack.files
    assert png["channel"] == "C0HANDOFF1" and png["thread_ts"] == "1764000000.000100"
    assert "direct messages" not in posted(fake_slack)[1]


@pytest.mark.parametrize(("text", "words"), [
    ("help", "help"),
    ("lead L-1", "lead L-1"),
    ("leads mine", "leads mine"),  # the command: "leads" alone names no more than it
    ("leads routed today?", "metric leads routed today?"),  # a metric named by more words
    ("Lead volume last week", "metric Lead volume last week"),
    ("what was our win rate?", "metric what was our win rate?"),
    ("", ""),  # a bare mention: help, as for `/align`
    ("Hi there!", "Hi there!"),  # small talk: a friendly answer, not a metric
    ("hepl", "hepl"),  # a command's typo: "did you mean", not "no metric hepl"
    ("leeds mine", "leeds mine"),
    ("churn last month", "metric churn last month"),
    ("whats our win rate", "metric whats our win rate"),  # "what" is no typo of "away"
])
def test_mentions_are_commands_or_metric_questions(services, text, words):
    assert mention_command(services.commands, text) == words


# ------------------------------------------------------------------ the shell


def test_the_shell_answers_metric_commands_and_mentions(shell):
    run(shell, 'webhook leads {"external_id": "L-77", "source": "webinar", "score": 55}')
    out = run(shell, "/align metric leads routed today")
    assert "(only you)\n    *Leads routed* · today (Nov 24, 2026)\n    *1*" in out
    out = run(shell, "/align export leads routed today by source")
    assert "[file leads_routed_2026-11-24.csv, 32 bytes, in D0SALES01]" in out
    out = run(shell, "@alignbot how many leads routed today?")
    assert "[C0HANDOFF1] (thread " in out and "*1*" in out


def test_a_question_sent_by_dm_is_answered_in_the_dm(app, clock, data, fake_slack):
    event = {"type": "message", "channel_type": "im", "channel": "D0SALES01", "user": "U0SALES01",
             "text": "win rate Q3 2026 by source", "ts": "1764000000.000200",
             "event_ts": "1764000000.000200"}
    assert send_event(app, event, "EvDm1", clock.now()).status == 200
    args = fake_slack.calls_of("chat.postMessage")[-1]
    assert args["channel"] == "D0SALES01" and "thread_ts" not in args
    assert "*67%*" in posted(fake_slack)[1]
    calls = len(fake_slack.calls_of("chat.postMessage"))
    for i, ignored in enumerate(({"bot_id": "B0ALIGNBOT"}, {"subtype": "message_changed"},
                                 {"channel_type": "channel", "channel": "C0HANDOFF1"})):
        assert send_event(app, {**event, **ignored}, f"EvDmIgnored{i}", clock.now()).status == 200
    assert len(fake_slack.calls_of("chat.postMessage")) == calls  # none of those is a question


def test_a_metric_question_is_answered_while_a_writer_holds_a_long_transaction(
        app, clock, data, services, monkeypatch):
    """A metric refresh or an import writes for seconds: questions must not wait for it, nor
    fail "database is locked" (SQLite has one writer; a reader needs no lock)."""
    monkeypatch.setattr(db, "time", FakeTime())  # a reader that did wait: fails at once
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 20)
    with services.sessions.begin() as writer:
        lock_refresh(writer, TEAM)
        writer.execute(update(Deal).values(outcome="lost"))  # not committed: not seen
        who, body = ask(app, clock, f"metric {Q3_BY_SOURCE}")
        assert "*67%* ▼ 8.3 pts vs previous period (75%)" in all_text(body)
        _, body = ask(app, clock, "scorecard Q3 2026")
        assert "Win rate" in all_text(body) and "67%" in all_text(body)


def test_answers_are_computed_one_at_a_time(app, clock, data, monkeypatch):
    """A question reads in its turn (`READERS`): while it does, no other can."""
    from bot.platform import command_table
    turns = Turns(1)
    monkeypatch.setattr(command_table, "READERS", turns)
    free = []

    def answer(*args, **kwargs):
        free.append(turns._free)  # the question holds the only turn
        return real(*args, **kwargs)

    real = metric_commands.answer
    monkeypatch.setattr(metric_commands, "answer", answer)
    _, body = ask(app, clock, "metric win rate Q3 2026")
    assert free == [0] and "67%" in all_text(body)
    assert turns._free == 1  # given back


def test_turns_go_to_those_waiting_in_the_order_they_came():
    """A freed turn goes to the longest waiting, never to one that came later (a plain
    semaphore's waiters race for it: under load some answers waited behind many)."""
    turns, order = Turns(1), []
    turns.__enter__()  # the turn taken

    def take(name: str) -> None:
        with turns:
            order.append(name)
    waiting = []
    for name in "abc":
        waiting.append(threading.Thread(target=take, args=(name,)))
        waiting[-1].start()
        for _ in range(TRIES):  # until it waits in line
            if len(turns._waiting) == len(waiting):
                break
        else:
            raise AssertionError(f"{name} never waited")
    assert order == []
    turns.__exit__(None, None, None)  # each hands it to the next in line
    with turns:  # asked again at once: after those already waiting
        order.append("late")
    for thread in waiting:
        thread.join()
    assert order == ["a", "b", "c", "late"] and turns._free == 1


def test_an_edited_mention_or_a_bots_is_not_answered_again(app, clock, data, fake_slack):
    """Slack sends `app_mention` again when the message holding it is edited (with `edited`):
    fixing a typo in a question must not post a second answer in the thread. Nor does
    alignbot answer bots (its own messages, or another bot echoing it)."""
    mention(app, clock, Q3_BY_SOURCE)
    calls = len(fake_slack.calls_of("chat.postMessage"))
    for i, ignored in enumerate(({"edited": {"user": "U0SALES01", "ts": "1764000005.000000"}},
                                 {"bot_id": "B0OTHER01", "user": "U0OTHERBOT"},
                                 {"subtype": "bot_message", "bot_id": "B0ALIGNBOT"})):
        mention(app, clock, Q3_BY_SOURCE, event_id=f"EvIgnored{i}", **ignored)
    assert len(fake_slack.calls_of("chat.postMessage")) == calls
