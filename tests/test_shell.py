"""The local shell: typed lines become real Slack payloads through the same Bolt app."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

from bot import outbox
from bot.blocks.kit import actions, button, message, section
from tests.shelltools import run


def post_card(shell, text="Lead L-1: Acme", action_id="test.ping"):
    with shell.services.transaction() as session:
        outbox.post(session, shell.services.team_id, "C0HANDOFF1", message(text, [
            section(text), actions(button("Ping", action_id, value="L-1"))]),
            now=shell.clock.now())
    shell.flush()


def test_slash_help_prints_the_command_list(shell):
    out = run(shell, "/align help")
    assert "/align help" in out and "(only you)" in out


def test_bot_messages_print_with_number_and_buttons(shell):
    post_card(shell)
    out = shell.output.getvalue()
    assert "#1 [C0HANDOFF1]" in out and "[Ping → click test.ping 1]" in out


def test_click_dispatches_a_block_action_to_the_app(shell):
    seen = []

    @shell.app.action("test.ping")
    def ping(ack, body, action):
        ack()
        seen.append((body["user"]["id"], action["value"], body["container"]["message_ts"]))

    post_card(shell)
    run(shell, "as U0SALES02", "click test.ping 1")
    assert seen == [("U0SALES02", "L-1", shell.fake.message(1).ts)]


def test_click_on_a_missing_button_explains(shell):
    post_card(shell)
    out = run(shell, "click handoff.accept 1", "click nope", "click test.ping 9")
    assert "has no button 'handoff.accept'" in out and "it has: test.ping" in out
    assert "no message has a button 'nope'" in out
    assert "there is no message #9" in out


def test_react_sends_a_reaction_added_event(shell):
    seen = []

    @shell.app.middleware  # before the survey listener, which answers reactions
    def reacted(body, next):  # noqa: A002 - Bolt injects by this name
        event = body.get("event") or {}
        seen.append((event.get("type"), event.get("user"), event.get("reaction"),
                     (event.get("item") or {}).get("ts")))
        return next()

    post_card(shell)
    run(shell, "react :three: 1", "unreact three 1")
    ts = shell.fake.message(1).ts
    assert seen == [("reaction_added", "U0SALES01", "three", ts),
                    ("reaction_removed", "U0SALES01", "three", ts)]


def test_tick_moves_the_clock_and_runs_due_jobs(shell):
    with shell.services.transaction() as session:
        outbox.post(session, shell.services.team_id, "C0HANDOFF1", {"text": "later"},
                    now=shell.clock.now())
    out = run(shell, "tick 90m", "time")
    assert shell.clock.now() == datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    assert "10:30" in out  # shown in the workspace's timezone
    assert "later" in out  # the sweep delivered the queued message


def test_bad_lines_get_a_hint_and_the_shell_goes_on(shell):
    out = run(shell, "tick soon", "dance", "as nobody", "/align help")
    assert "is not a duration like 15m" in out
    assert "unknown line 'dance'" in out
    assert "nobody called 'nobody'" in out
    assert "/align help" in out.splitlines()[-1] or "alignbot commands" in out


def test_as_accepts_names_and_emails(shell):
    assert "U0SALESMG1" in run(shell, "as max@example.com")
    assert "U0MKTG01" in run(shell, "as Mia")


def test_cli_shell_reads_a_script_from_stdin(tmp_path):
    env = {**os.environ, "ALIGNBOT_CONFIG": str(tmp_path / "none.toml")}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "shell", "--at", "2026-11-24T09:00-05:00",
         "--db", f"sqlite:///{tmp_path / 's.db'}"],
        input="/align help\ntick 1m\n", capture_output=True, text=True, env=env, timeout=60,
        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "alignbot> /align help" in result.stdout
    assert "/align help [command]" in result.stdout


def test_a_webhook_lead_is_carded_accepted_and_reprinted(shell):
    out = run(shell, 'webhook leads {"external_id": "L-77", "source": "webinar", '
                     '"name": "Ann Lee", "company": "Acme", "score": 55}')
    assert '"created": 1' in out
    assert "#1 [C0HANDOFF1]" in out and "New lead: Ann Lee" in out
    card = next(m for m in shell.fake.messages if "Ann Lee" in m.text and m.channel == "C0HANDOFF1")
    out = run(shell, f"click handoff.accept {card.number}")
    assert f"#{card.number} [C0HANDOFF1] (updated)" in out and "Accepted by @Sam Sales" in out
    assert "You accepted" in out


def test_an_imported_file_is_carded_and_its_bad_rows_reported(shell, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("external_id,source,name,score\nL-1,webinar,Ann Lee,55\n"
                    "L-2,webinar,Bo Chen,555\n")
    out = run(shell, f"import leads {path}")
    assert '"created": 1' in out and "score: 555 is not between 0 and 100" in out
    assert "New lead: Ann Lee" in out and (tmp_path / "leads.rejected.csv").exists()

    path.write_bytes(b"external_id,source,name\nL-3,webinar,Andr\xe9\n")
    out = run(shell, f"import leads {path}")
    assert "stopped: line 2 is not UTF-8 text" in out and '"rows": 0' in out


def test_webhook_line_explains_bad_json(shell):
    assert "usage: webhook <entity> <json>" in run(shell, "webhook leads {oops")


def test_an_evening_lead_nudges_in_the_morning_each_stage_once(tmp_path):
    import dataclasses
    from datetime import timedelta

    from tests.conftest import TEST_CONFIG, check_slack_call
    from tests.shelltools import make_shell

    shell = make_shell(tmp_path, TEST_CONFIG, check_slack_call,
                       at=datetime(2026, 11, 24, 21, 50, tzinfo=UTC))  # Tuesday 16:50 New York
    config = shell.services.config
    shell.services.config = dataclasses.replace(config, sla=tuple(dataclasses.replace(
        p, respond_within=timedelta(hours=18), clock="wall", escalate_after=timedelta(minutes=30),
        reassign_after=timedelta(hours=1)) for p in config.sla))
    run(shell, 'webhook leads {"external_id": "L-5", "source": "events", "name": "Eve Ng"}')
    evening = run(shell, "tick 16h")  # to Wednesday 08:50: the 01:50 reminder waits
    assert "Reminder" not in evening
    morning = run(shell, "tick 4h")  # to 12:50
    stages = [":hourglass_flowing_sand:",   # the reminder, held from 01:50 to 09:00
              ":red_circle: Your lead",      # the breach notice at 10:50 ...
              "@Sam Sales's lead",           # ... and to the manager
              "past its SLA; owner",         # the channel escalation at 11:20
              "[D0SALES02]"]                 # reassigned at 11:50: the new owner's card
    shown = [morning.find(marker) for marker in stages]
    assert all(i >= 0 for i in shown) and shown == sorted(shown), shown
    assert [morning.count(marker) for marker in stages[:4]] == [1, 1, 1, 1]
