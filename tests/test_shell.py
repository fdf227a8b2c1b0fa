"""The local shell: typed lines become real Slack payloads through the same Bolt app."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.blocks.kit import actions, button, message, section
from bot.features import FEATURES
from bot.local.shell import JOB_REPORTS, PROMPT, ShellError, report_lines
from bot.metrics import snapshots
from bot.platform import outbox
from storage.models import OutboxMessage
from tests.conftest import TEST_CONFIG, check_slack_call
from tests.shelltools import make_shell, run


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


def test_react_sends_a_reaction_added_event(shell, caplog):
    seen = []

    @shell.app.middleware  # before the survey listener, which answers reactions
    def reacted(body, next):  # noqa: A002 - Bolt injects by this name
        event = body.get("event") or {}
        seen.append((event.get("type"), event.get("user"), event.get("reaction"),
                     (event.get("item") or {}).get("ts")))
        return next()

    post_card(shell)
    out = run(shell, "react :three: 1", "unreact three 1")
    ts = shell.fake.message(1).ts
    assert "Unhandled request" not in caplog.text and "404" not in out
    assert seen == [("reaction_added", "U0SALES01", "three", ts),
                    ("reaction_removed", "U0SALES01", "three", ts)]


def test_a_message_number_that_is_not_one_is_refused(shell):
    post_card(shell)
    out = run(shell, "click test.ping ²", "click test.ping 0", "react three ٣",
              "unreact three 99999999999999999999", "react three x", "/align help")
    for word in ("²", "0", "٣", "99999999999999999999", "x"):
        assert f"'{word}' is not a message number" in out
    assert "alignbot commands" in out or "/align help" in out.splitlines()[-1]


def test_tick_moves_the_clock_and_runs_due_jobs(shell):
    with shell.services.transaction() as session:
        outbox.post(session, shell.services.team_id, "C0HANDOFF1", {"text": "later"},
                    now=shell.clock.now())
    out = run(shell, "tick 90m", "time")
    assert shell.clock.now() == datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    assert "10:30" in out  # shown in the workspace's timezone
    assert "later" in out  # the sweep delivered the queued message


def test_bad_lines_get_a_hint_and_the_shell_goes_on(shell):
    out = run(shell, "tick soon", "tick 99999999999d", "dance", "as nobody", "/align help")
    assert "is not a duration like 15m" in out and "is longer than ten years" in out
    assert "unknown line 'dance'" in out
    assert "nobody called 'nobody'" in out
    assert "/align help" in out.splitlines()[-1] or "alignbot commands" in out


def test_as_accepts_names_and_emails(shell):
    assert "U0SALESMG1" in run(shell, "as max@example.com")
    assert "U0MKTG01" in run(shell, "as Mia")


def test_as_refuses_a_first_name_several_people_share(shell):
    shell.fake.add_user("U0SUE002", "Sue Other")
    out = run(shell, "as Sue", "as Sue Other")
    assert "'Sue' is several people: U0SALES02 (Sue Sales), U0SUE002 (Sue Other)" in out
    assert "you are U0SUE002 (Sue Other)" in out  # the full name is one of them


def test_shell_as_takes_a_name_or_email_as_the_as_line_does(tmp_path):
    def whoami(who: str) -> str:
        return run(make_shell(tmp_path, TEST_CONFIG, check_slack_call, user=who), "whoami")

    assert "you are U0MKTG01 (Mia)" in whoami("Mia")
    assert "you are U0SALES02 (Sue Sales)" in whoami("sue")
    assert "you are U0SALESMG1 (Max Manager)" in whoami("max@example.com")
    assert "you are U0NEW01 (Local User)" in whoami("U0NEW01")  # an id nobody has yet
    with pytest.raises(ShellError, match="nobody called 'Zed'"):
        whoami("Zed")


def test_cli_shell_as_a_name_that_is_several_people_or_nobody_stops(tmp_path):
    env = {**os.environ, "ALIGNBOT_CONFIG": str(tmp_path / "alignbot.toml")}
    (tmp_path / "alignbot.toml").write_text("".join(
        f'[[people]]\nslack_id = "{uid}"\nrole = "sales"\nname = "{name}"\n'
        for uid, name in (("U0SALES02", "Priya Shah"), ("U0SALES03", "Priya Nair"))))
    for who, error in (("Priya", "'Priya' is several people: U0SALES02 (Priya Shah), "
                                 "U0SALES03 (Priya Nair)"), ("Zed", "nobody called 'Zed'")):
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", "shell", "--at", "2026-11-24T09:00-05:00",
             "--db", f"sqlite:///{tmp_path / 's.db'}", "--as", who],
            input="", capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
        assert result.returncode == 2 and error in result.stderr, result.stderr
        assert "you are" not in result.stdout


def test_a_second_session_on_the_same_store_answers_its_mentions_and_reactions(tmp_path, engine):
    """The store remembers processed event ids for days: a new session (even at the same
    --at) must not send ids the last one sent, or its events are taken for redeliveries."""
    url = engine.url.render_as_string(hide_password=False)
    reactions, answered = [], []
    for _ in range(2):
        shell = make_shell(tmp_path, TEST_CONFIG, check_slack_call, db_url=url)

        @shell.app.middleware  # after the redelivery check, before the survey listener
        def reacted(body, next):  # noqa: A002 - Bolt injects by this name
            if (body.get("event") or {}).get("type") == "reaction_added":
                reactions.append(body["event_id"])
            return next()

        post_card(shell)
        out = run(shell, "react three 1", "@alignbot hi")
        answered.append("Hi @Sam Sales!" in out)
        shell.services.engine.dispose()
    assert answered == [True, True]
    assert len(reactions) == 2 and reactions[0] != reactions[1]


def test_a_second_session_at_the_same_time_does_not_reuse_a_stored_ts(tmp_path, engine):
    """The outbox keeps the ts of an earlier session's card to edit it later: a message of
    a later session at the same clock second must not get that ts, or the edit lands on it."""
    url = engine.url.render_as_string(hide_password=False)
    first = make_shell(tmp_path, TEST_CONFIG, check_slack_call, db_url=url)
    post_card(first, "Lead L-1: Acme")
    first.services.engine.dispose()
    second = make_shell(tmp_path, TEST_CONFIG, check_slack_call, db_url=url)
    post_card(second, "Lead L-2: Beta")
    with second.services.transaction() as session:
        card = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).first()
        outbox.revise(session, card.id, "C0HANDOFF1", {"text": "Lead L-1: Acme, edited"},
                      now=second.clock.now())
    second.flush()
    second.services.engine.dispose()
    beta = next(m for m in second.fake.messages if m.text == "Lead L-2: Beta")
    assert beta.ts != card.ts and beta.updates == 0


ANN = ('webhook leads {"external_id": "L-77", "source": "webinar", "name": "Ann Lee", '
       '"company": "Acme", "score": 55}')


def test_a_reopened_shell_clicks_and_edits_the_cards_an_earlier_session_posted(tmp_path):
    """Quit, start again on the same store: the cards keep their numbers, a click on one
    acts, the bot edits it in place, and the next session sees it edited."""
    first = make_shell(tmp_path, TEST_CONFIG, check_slack_call)
    assert "#1 [C0HANDOFF1]" in run(first, ANN)
    first.services.engine.dispose()
    second = make_shell(tmp_path, TEST_CONFIG, check_slack_call)
    out = run(second, "click handoff.accept 1")
    assert "You accepted *Ann Lee* (Acme)" in out
    assert "#1 [C0HANDOFF1] (updated)" in out and "#2 [D0SALES01] (updated)" in out
    assert "Accepted by @Sam Sales" in out and "#3 [C0HANDOFF1] (only you)" in out
    second.services.engine.dispose()
    third = make_shell(tmp_path, TEST_CONFIG, check_slack_call)
    out = run(third, "click handoff.accept 2")
    assert "message #2 has no button 'handoff.accept'; it has: handoff.first_touch" in out


def test_the_lead_card_only_you_see_is_a_message_whose_buttons_work(shell):
    """`/align lead` answers with the lead's card for the asker alone: in Slack its buttons
    work, so in the shell it is a numbered message whose Accept accepts, and turns that
    very card (no second message saying so beside a card still offering Accept)."""
    run(shell, ANN)  # #1 the channel's card, #2 the owner's DM
    out = run(shell, "/align lead L-77")
    assert "#3 [C0HANDOFF1] (only you)" in out and "[Accept → click handoff.accept 3]" in out
    out = run(shell, "click handoff.accept 3")
    assert "#3 [C0HANDOFF1] (only you) (updated)\n    You accepted *Ann Lee* (Acme)" in out
    assert "#4" not in out and "[Log first touch → click handoff.first_touch 3]" in out
    assert "#1 [C0HANDOFF1] (updated)" in out and "Accepted by @Sam Sales" in out
    out = run(shell, "click handoff.first_touch 3", "click handoff.accept 3")
    assert "#3 [C0HANDOFF1] (only you) (updated)\n    First touch on *Ann Lee* (Acme) logged" in out
    assert "message #3 has no button 'handoff.accept'" in out and "#4" not in out


def test_a_rejection_from_the_lead_card_only_you_see_turns_that_card(shell):
    run(shell, ANN, "/align lead L-77")  # #3: the card, for Sam alone
    out = run(shell, "click handoff.reject 3", "submit reason=not_ready note=later")
    assert "#3 [C0HANDOFF1] (only you) (updated)\n    You rejected *Ann Lee* (Acme)" in out
    assert "#4 [C0HANDOFF1]" not in out  # the card's channel gets no other message
    assert ":no_entry: Rejected by <@U0SALES01>" in shell.fake.message(3).blocks[-2]["text"]["text"]


def answering_with_a_button(shell, reply: dict) -> list[dict]:
    """`/test` answers with a button only the asker sees; a click on it is answered through
    the click's response_url with `reply`. The click payloads, as the app got them."""
    clicks = []

    @shell.app.command("/test")
    def ask(ack):
        ack(**message("card", [section("card"), actions(button("Go", "test.go", "v"))]))

    @shell.app.action("test.go")
    def go(ack, body, respond):
        ack()
        clicks.append(body)
        respond(**reply)
    return clicks


@pytest.mark.parametrize(("reply", "shown"), [
    ({"replace_original": True, "text": "done"}, "#1 [C0HANDOFF1] (only you) (updated)\n    done"),
    ({"delete_original": True}, "#1 [C0HANDOFF1] (only you) (deleted)\n"),
    ({"replace_original": False, "text": "noted"}, "#2 [C0HANDOFF1] (only you)\n    noted"),
])
def test_a_click_on_an_ephemeral_answer_is_answered_by_its_response_url(shell, reply, shown):
    clicks = answering_with_a_button(shell, reply)
    assert "#1 [C0HANDOFF1] (only you)\n    card\n    [Go → click test.go 1]" in run(shell, "/test")
    assert shown in run(shell, "click test.go 1")
    assert clicks[0]["container"]["is_ephemeral"] is True
    assert "message" not in clicks[0]  # Slack sends no copy of an ephemeral message


def test_a_shared_answer_is_posted_for_everyone(shell):
    out = run(shell, "/align metric leads routed today share")
    assert "#1 [C0HANDOFF1]\n    *Leads routed*" in out and not shell.fake.message(1).ephemeral_to


def test_an_ephemeral_answer_is_clicked_by_its_reader_only_and_takes_no_reaction(shell):
    answering_with_a_button(shell, {"replace_original": True, "text": "done"})
    run(shell, "/test")
    shell.fake.answer("C0HANDOFF1", "U0SALES02", {"text": "for Sue"})
    assert "#2 [C0HANDOFF1] (only @Sue Sales)" in shell.output.getvalue()
    out = run(shell, "as Sue", "click test.go 1", "click test.go", "react three 1")
    assert "message #1 is only for U0SALES01: as U0SALES01, then click it" in out
    assert "no message has a button 'test.go'" in out
    assert "message #1 is ephemeral: Slack takes no reactions on it" in out


def test_a_reopened_shell_forgets_the_ephemeral_answers_and_their_numbers(tmp_path):
    """A new session is a reload: Slack shows ephemeral messages no more, and a number one
    of them had is not given to a new message (an old screen's `click ... 3` names nothing)."""
    first = make_shell(tmp_path, TEST_CONFIG, check_slack_call)
    assert "#3 [C0HANDOFF1] (only you)" in run(first, ANN, "/align lead L-77")
    first.services.engine.dispose()
    second = make_shell(tmp_path, TEST_CONFIG, check_slack_call)
    out = run(second, "click handoff.accept 3", "/align lead L-77")
    assert "there is no message #3" in out and "#4 [C0HANDOFF1] (only you)" in out


def test_a_messages_file_of_before_loads_without_its_ephemeral_messages(tmp_path):
    """The file was a list of every message: its ephemeral ones go, its numbers stay."""
    first = make_shell(tmp_path, TEST_CONFIG, check_slack_call)
    run(first, ANN, "click handoff.accept 1")  # #3: "You accepted", to Sam only
    first.services.engine.dispose()
    saved = tmp_path / "shell.db-slack.json"
    kept = json.loads(saved.read_text())["messages"]
    saved.write_text(json.dumps([*kept, {**kept[0], "number": 3, "ts": "1.3",
                                         "ephemeral_to": "U0SALES01"}]))
    second = make_shell(tmp_path, TEST_CONFIG, check_slack_call)
    out = run(second, "click handoff.first_touch 3", "click handoff.first_touch 1")
    assert "there is no message #3" in out and "#4 [C0HANDOFF1] (only you)" in out


def test_a_store_started_over_starts_its_messages_over(tmp_path):
    """README: delete alignbot-shell.db to start over; the messages of the old store go too."""
    first = make_shell(tmp_path, TEST_CONFIG, check_slack_call)
    run(first, ANN, "click handoff.accept 1")
    first.services.engine.dispose()
    for path in tmp_path.glob("shell.db*"):
        if not path.name.endswith("-slack.json"):
            path.unlink()
    again = make_shell(tmp_path, TEST_CONFIG, check_slack_call)
    assert "no message has a button 'handoff.first_touch'" in run(again, "click handoff.first_touch")
    assert "#1 [C0HANDOFF1]" in run(again, ANN)


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
    assert "New lead: Ann Lee" in out and (tmp_path / "leads.leads.rejected.csv").exists()

    path.write_bytes(b"external_id,source,name\nL-3,webinar,Andr\xe9\n")
    out = run(shell, f"import leads {path}")
    assert "stopped: line 2 is not UTF-8 text" in out and "nothing is imported" in out


def test_webhook_line_explains_bad_json(shell):
    assert "usage: webhook <entity> <json>" in run(shell, "webhook leads {oops")


def test_an_evening_lead_nudges_in_the_morning_each_stage_once(tmp_path):
    import dataclasses
    from datetime import timedelta

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


def skip_quiet_time(shell, until: datetime) -> None:
    """Move the shell's clock on without replaying every job run in between (two days of
    them take a minute): only once nothing is due before `until`."""
    from sqlalchemy import func, select

    from storage.models import Nudge, OutboxMessage

    with shell.services.sessions() as s:
        next_nudge = s.scalar(select(func.min(Nudge.due_at)).where(Nudge.state == "pending"))
        queued = s.scalar(select(func.count()).select_from(OutboxMessage)
                          .where(OutboxMessage.state != "sent"))
    assert next_nudge >= until and queued == 0, (next_nudge, queued)
    shell.clock.set(until)
    shell.state.last_tick = until


def test_a_hot_lead_on_saturday_is_routed_when_the_first_hours_start_on_monday(tmp_path):
    """Issue #19: a hot lead that came in on a weekend waited as "unassigned" for ever."""
    from tests.conftest import TEST_CONFIG, check_slack_call
    from tests.shelltools import make_shell

    shell = make_shell(tmp_path, TEST_CONFIG, check_slack_call,
                       at=datetime.fromisoformat("2026-12-05T10:00-05:00"))  # Saturday
    out = run(shell, 'webhook leads {"external_id": "L-901", "source": "webinar", "name": "Ann", '
                     '"company": "Acme", "score": 90}')
    assert "*Owner* *Unassigned*" in out
    assert "nobody in pool default is now. Routing tries again Mon Dec 07 09:00 EST" in out
    assert "*SLA* an owner by Mon Dec 07 09:30 EST :large_green_circle: on track" in out
    card = shell.fake.in_channel("C0HANDOFF1")[0]
    assert "[C0HANDOFF1]" not in run(shell, "tick 1h")  # the weekend is quiet

    skip_quiet_time(shell, datetime.fromisoformat("2026-12-07T08:58-05:00"))
    assert "[C0HANDOFF1]" not in run(shell, "tick 1m")  # Monday 08:59: nobody at work yet
    monday = run(shell, "tick 1m")  # 09:00 in New York: Sam's hours start (Sue's at noon)
    assert f"#{card.number} [C0HANDOFF1] (updated)" in monday  # the same card, in place
    assert "Nobody could take it" not in str(card.blocks)
    assert "<@U0SALES01>" in str(card.blocks) and "hot: due <!date^" in str(card.blocks)
    dm = shell.fake.in_channel("U0SALES01")
    assert len(dm) == 1 and "New lead: Ann — Acme" in dm[0].text  # Sam's DM card
    lead = run(shell, "/align lead L-901")
    assert "*Owner* @Sam Sales" in lead
    assert "*SLA* hot: due Mon Dec 07 09:15 EST" in lead  # the clock started at 09:00
    assert "Mon Dec 07 09:00 EST — routed (system)" in lead

    later = run(shell, "tick 1h")  # Monday 10:00
    assert "reach out before then" in later  # Sam is reminded ...
    assert "@Sam Sales's lead *Ann* (Acme) passed its SLA" in later  # ... and his manager told
    assert "still has no owner" not in later  # no escalation: the lead has its owner


def test_make_run_without_slack_opens_the_shell_on_its_own_store_only(tmp_path):
    """One store per use, each named: the demo never lands in the bot's alignbot.db."""
    root = Path(__file__).resolve().parents[1]
    for name in ("Makefile", "pyproject.toml", "alignbot.example.toml"):
        shutil.copy(root / name, tmp_path / name)
    os.utime(tmp_path / "pyproject.toml", (0, 0))  # older than the venv: nothing to install
    venv = Path(sys.executable).parent.parent
    env = {k: v for k, v in os.environ.items() if k not in ("SLACK_BOT_TOKEN", "DATABASE_URL")}
    result = subprocess.run(
        ["make", "-s", "run", f"VENV={venv}", f"STAMP={venv / 'bin' / 'python'}"],
        input="quit\n", capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "The shell's store: sqlite:///alignbot-shell.db (its own" in result.stdout
    assert (tmp_path / "alignbot-shell.db").exists() and not (tmp_path / "alignbot.db").exists()


def test_every_jobs_report_reads_for_people(shell):
    """`run surveys.sweep` once printed {'opened': 0, ...}: a job without its own words."""
    assert set(JOB_REPORTS) == {j.id for j in FEATURES.jobs}
    for j in FEATURES.jobs:
        out = run(shell, f"run {j.id}")
        lines = [line for line in out.splitlines() if line.startswith(f"  {j.id}: ")]
        assert lines, out
        for line in lines:  # no dict, list, tuple or dataclass repr
            said = line.split(": ", 1)[1]
            assert not re.search(r"[{}\[\]]|[A-Z]\w*\(|\(\w+=|': ", said), out
            # "retention.prune: retention: deleted …" once named its feature twice
            assert not said.startswith(j.id.split(".")[0] + ":"), out
    waiting = {"ann@example.com": "still no answer"}
    assert report_lines("owners.retry", waiting, str) == ["ann@example.com: still no answer"]


def test_run_imports_folder_reports_each_files_counts(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "leads.csv").write_text("external_id,source,score\nL-1,webinar,50\nL-2,webinar,500\n")
    shell = make_shell(tmp_path, {**TEST_CONFIG, "imports": {"folder": str(drop)}}, check_slack_call)
    first = run(shell, "run imports.folder")  # seen; imported once unchanged at the next look
    assert "no new files (a file is imported once it is unchanged" in first
    out = run(shell, "run imports.folder")
    assert "  imports.folder: leads.csv: 1 created, 0 updated, 1 rejected" in out, out


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_tour() -> tuple[list[str], list[str]]:
    """The lines the README's tour types, and the messages it says they print."""
    blocks = re.findall(r"```text\n(.*?)```", README.read_text(), re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    typed = [re.sub(r"\s{2,}# .*$", "", line.removeprefix(PROMPT)) for line in lines
             if line.startswith(PROMPT)]
    return typed, [line.split("]")[0] + "]" for line in lines if line.startswith("#")]


def test_the_readme_tour_runs_as_written_and_its_first_tick_refreshes_only_the_last_days(
        tmp_path, monkeypatch):
    """The tour's first `tick 2h` once sat silent for half a minute: its first metrics
    refresh did every day of the demo's history, and then the last days 7 times more."""
    reports = []

    def refresh(*args, **kwargs):
        reports.append(snapshots.refresh(*args, **kwargs))
        return reports[-1]
    monkeypatch.setattr("bot.metrics.feature.refresh", refresh)
    config = tomllib.loads((README.parent / "alignbot.example.toml").read_text())
    shell = make_shell(tmp_path, config, check_slack_call, demo=True, user="U0ADMIN01",
                       at=datetime.fromisoformat("2026-12-01T10:00:00-05:00"))
    typed, shown = readme_tour()
    own_file = [line for line in typed if line.startswith("import leads my-export.csv")]
    assert typed[0] == "/align help" and len(own_file) == 1
    out = run(shell, *[line for line in typed if line not in own_file])  # a file of the reader's
    assert "\n! " not in out, out
    # tick 2h, then `run`, then the survey's day: each refresh only the last days
    assert len(reports) >= 2 and {r.days for r in reports} == {snapshots.SETTLE_DAYS}
    for header in shown:
        assert header in out, header
    for said in ("Did you mean `/align help`?", "Hi @Ada Novak!", "Scorecard: Q3 2026",
                 f"metrics.refresh: T0LOCAL: {snapshots.SETTLE_DAYS} day(s) recomputed",
                 "You are away until Friday, December 4", "Perception vs. reality", "Alignment index: "):
        assert said in out, said
