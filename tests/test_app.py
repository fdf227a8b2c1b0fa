"""The Slack surface through a real app.dispatch(): signed requests in, a fake Web API out."""

from __future__ import annotations

import logging
import shlex
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.app import create_app
from bot.platform.command_table import Command, CommandTable, Reply, split_words
from handlers.errors import SORRY
from tests.slack import all_text, reply, request, send_event, slash, slash_body


def test_help_lists_every_command_from_the_table(app, services, clock):
    shown = all_text(reply(slash(app, "help", clock.now(), user="U0ADMIN01")))
    for cmd in services.commands.commands:
        assert f"/align {cmd.name}" in shown
        assert cmd.summary in shown
    assert "marked :lock:" in shown


def test_help_hides_admin_commands_from_non_admins(app, clock):
    shown = all_text(reply(slash(app, "help", clock.now(), user="U0SALES01")))
    assert "/align help" in shown
    assert "config check" not in shown
    assert ":lock:" not in shown  # nor a word of the marks on commands they are not shown


def test_empty_command_shows_help(app, clock):
    assert "/align help" in all_text(reply(slash(app, "", clock.now())))


def test_help_topic_shows_the_commands_details(app, clock):
    shown = all_text(reply(slash(app, "help config check", clock.now(), user="U0ADMIN01")))
    assert "which secrets are set" in shown


def test_unknown_command_suggests_the_closest(app, clock):
    body = reply(slash(app, "hlep", clock.now()))
    assert body["response_type"] == "ephemeral"
    assert "did you mean `/align help`" in all_text(body).lower()


def test_admin_command_is_refused_to_others_and_allowed_to_admins(app, clock):
    refused = all_text(reply(slash(app, "config check", clock.now(), user="U0SALES01")))
    assert "Only admins" in refused
    allowed = all_text(reply(slash(app, "config check", clock.now(), user="U0ADMIN01")))
    assert "Only admins" not in allowed
    assert "SLACK_BOT_TOKEN" in allowed  # the verdict names the secrets, set or not


def test_bad_signature_is_rejected_and_nothing_runs(app, clock, fake_slack):
    bad = request(slash_body("help"), "application/x-www-form-urlencoded", clock.now(),
                  secret="not-the-secret")
    assert app.dispatch(bad).status == 401
    assert fake_slack.calls_of("chat.postMessage") == []


def test_request_older_than_five_minutes_is_rejected(app, clock):
    old = request(slash_body("help"), "application/x-www-form-urlencoded",
                  clock.now() - timedelta(minutes=6))
    assert app.dispatch(old).status == 401


def test_repeated_event_is_processed_once(app, clock, fake_slack):
    mention = {"type": "app_mention", "user": "U0SALES01", "text": "<@U0ALIGNBOT> help",
               "channel": "C0HANDOFF1", "ts": "1700000000.000001", "event_ts": "1700000000.000001"}
    assert send_event(app, mention, "Ev0001", clock.now()).status == 200
    assert send_event(app, mention, "Ev0001", clock.now(), retry=1).status == 200
    assert send_event(app, mention, "Ev0001", clock.now(), retry=2).status == 200
    answers = fake_slack.calls_of("chat.postMessage")
    assert len(answers) == 1
    assert answers[0]["thread_ts"] == "1700000000.000001"  # answered in the asker's thread
    send_event(app, mention, "Ev0002", clock.now())  # a new event id is a new question
    assert len(fake_slack.calls_of("chat.postMessage")) == 2


def test_unexpected_error_gives_a_short_ephemeral_line(app, services, clock, listener_errors):
    def broken(inv):
        """Always fails."""
        raise RuntimeError("boom with secret lead data")

    services.commands = CommandTable([Command("boom", broken)])
    body = reply(slash(app, "boom", clock.now()))
    assert body == {"response_type": "ephemeral", "text": SORRY}
    assert len(listener_errors) == 1 and "RuntimeError" in listener_errors[0]


def test_public_reply_is_posted_in_channel(app, services, clock):
    services.commands = CommandTable([Command("shout", lambda inv: Reply("hi all", public=True))])
    assert reply(slash(app, "shout", clock.now()))["response_type"] == "in_channel"


def test_starting_with_a_bot_token_in_the_environment_logs_no_noise(services, monkeypatch, caplog):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    caplog.set_level(logging.INFO)
    create_app(services)
    assert "will be unused" not in caplog.text


# the characters where a shell's split and a plain one could part: every kind of whitespace
# (shlex splits at four), quotes, the escape, a comment sign, and anything else
TRICKY = st.sampled_from(list(" \t\r\n\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000'\"\\#\x00aZ9-?"))


@settings(max_examples=1000, deadline=None)
@given(st.text(TRICKY | st.characters(), max_size=40))
def test_a_commands_words_are_split_as_a_shell_splits_them(text):
    try:
        expected = shlex.split(text)
    except ValueError:  # an unclosed quote: at whitespace, as before
        expected = text.split()
    assert split_words(text) == expected
