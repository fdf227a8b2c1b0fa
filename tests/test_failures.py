"""Failures that are not bugs, each one line to act on and tried again: a database lock not
granted in time, a database connection lost, Slack refusing the bot token at runtime."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from datetime import timedelta

import pytest
from slack_sdk.errors import SlackApiError
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from bot.cli import main
from bot.platform import outbox
from bot.platform.command_table import Command, CommandTable, Reply
from bot.platform.config import Secret
from bot.platform.runtime import SenderLoop
from bot.platform.scheduler import run_job
from bot.platform.sender import TOKEN_HOLD, OutboxSender
from bot.platform.server import create_web_app
from handlers.errors import SORRY
from storage import db
from storage.models import OutboxMessage
from tests.processes import ROOT
from tests.slack import TEAM, reply, slash
from tests.test_observability import moved, scrape, with_job
from tests.test_webhooks import SECRET, lead
from tests.test_webhooks import post as post_webhook

TOKEN_ERRORS = ["invalid_auth", "token_revoked", "account_inactive"]


@pytest.fixture(autouse=True)
def _info(caplog):
    caplog.set_level(logging.INFO)


def told(caplog) -> list[logging.LogRecord]:
    """What an operator reads at the default level (besides each request's line)."""
    return [r for r in caplog.records if r.levelno >= logging.INFO
            and r.name != "bot.platform.telemetry"]


def queue(services, n: int, channel: str) -> None:
    with services.transaction() as session:
        for i in range(n):
            outbox.post(session, services.team_id, channel, {"text": f"{channel} {i}"},
                        now=services.clock.now(), ref=f"{channel}:{i}")


def rows(services) -> list[OutboxMessage]:
    with services.sessions.begin() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


# ------------------------------------------------------------------ a refused token


@pytest.mark.parametrize("error", TOKEN_ERRORS)
def test_a_refused_token_holds_the_outbox_and_says_so_once(services, fake_slack, clock, caplog,
                                                          error):
    """Once, every row died of it one by one (invalid_auth), or used up its attempts
    (token_revoked), and each death told the admins with the same dead token."""
    fake_slack.script("chat.postMessage", (200, {}, {"ok": False, "error": error}))
    queue(services, 3, "C0HANDOFF1")
    queue(services, 2, "C0MARKET01")
    web = create_web_app(services, None).test_client()
    before = scrape(web)
    caplog.clear()
    report = services.sender.flush()
    assert len(fake_slack.calls_of("chat.postMessage")) == 1  # one try, not one per message
    held = rows(services)
    assert {(r.state, r.attempts) for r in held} == {("pending", 0)}
    assert {r.next_attempt_at for r in held} == {clock.now() + TOKEN_HOLD} == {report.next_due}
    assert held[0].last_error == f"held: Slack refuses the bot token ({error})"
    [line] = told(caplog)
    assert line.levelname == "ERROR" and not line.exc_info
    assert line.getMessage() == (
        f"outbox: Slack refuses the bot token of workspace {TEAM} ({error}): reinstall the app "
        "there and give alignbot its new token; its 5 waiting message(s) are held and tried "
        "again every 5 minutes")
    assert moved(before, scrape(web), "alignbot_outbox_sends_total", outcome="held") == 1

    caplog.clear()
    clock.advance(TOKEN_HOLD)  # the app reinstalled meanwhile: the next try goes through
    assert services.sender.flush().sent == 5
    assert [r.getMessage() for r in told(caplog)] == [
        f"outbox: Slack takes workspace {TEAM}'s bot token again; the held messages go out"]
    assert fake_slack.in_channel("U0ADMIN01") == []  # nothing died: no notice


def test_a_token_refused_while_looking_for_an_earlier_attempt_holds_too(services, fake_slack,
                                                                         clock):
    queue(services, 1, "C0HANDOFF1")
    with services.sessions.begin() as s:  # an attempt whose answer was lost
        s.get(OutboxMessage, 1).state = "unknown"
    fake_slack.script("conversations.history", (200, {}, {"ok": False, "error": "token_revoked"}))
    services.sender.flush()
    [row] = rows(services)
    assert (row.state, row.attempts, row.next_attempt_at) == \
        ("unknown", 0, clock.now() + TOKEN_HOLD)  # still looked up before it is posted again
    assert fake_slack.calls_of("chat.postMessage") == []


def calls_slack(services, *_):
    services.slack.users_info(user="U0SALES01")
    return Reply("never")


@pytest.mark.parametrize("error", TOKEN_ERRORS)
def test_a_refused_token_in_a_job_is_one_line_and_the_next_firing(services, fake_slack, caplog,
                                                                  error):
    fake_slack.script("users.info", (200, {}, {"ok": False, "error": error}))
    caplog.clear()
    assert run_job(with_job(services, calls_slack), "test.job") is None
    [line] = told(caplog)
    assert line.levelname == "WARNING" and not line.exc_info
    assert line.getMessage() == (
        f"job test.job: Slack refuses the bot token of workspace {TEAM} ({error}): reinstall "
        "the app there and give alignbot its new token; it runs again at its next firing")


def test_a_refused_token_in_a_listener_is_one_line_and_sorry(app, services, fake_slack, clock,
                                                            caplog, listener_errors):
    fake_slack.script("users.info", (200, {}, {"ok": False, "error": "token_revoked"}))
    services.commands = CommandTable([Command("who", lambda inv: calls_slack(inv.services))])
    caplog.clear()
    assert reply(slash(app, "who", clock.now()))["text"] == SORRY
    assert listener_errors == []  # not a bug
    [line] = told(caplog)
    assert line.levelname == "WARNING" and not line.exc_info
    assert line.getMessage().startswith(f"/align from {TEAM}/U0SALES01 not done: Slack refuses "
                                        f"the bot token of workspace {TEAM} (token_revoked)")


def test_a_slack_error_that_is_not_the_token_is_still_a_bug_with_its_traceback(services,
                                                                               fake_slack):
    fake_slack.script("users.info", (200, {}, {"ok": False, "error": "user_not_found"}))
    with pytest.raises(SlackApiError):
        run_job(with_job(services, calls_slack), "test.job")


# ------------------------------------------------------------------ a busy database


@pytest.fixture
def busy(services, monkeypatch):
    """(a URL whose connections give up on a lock at once, a function that holds a lock on
    what the sender, the webhooks and start-up need, until the test ends)."""
    url = make_url(services.engine.url.render_as_string(hide_password=False))
    held = []
    if url.get_backend_name() == "sqlite":
        monkeypatch.setattr(db, "FAST_TRIES", 1)
        monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 1)

        def hold():
            writer = sqlite3.connect(url.database, isolation_level=None)
            writer.execute("BEGIN IMMEDIATE")
            held.append(writer)
    else:
        url = url.update_query_dict({"options": "-c lock_timeout=50"})

        def hold():
            conn = services.engine.connect()
            conn.begin()
            conn.execute(text("LOCK TABLE outbox, webhook_requests, alembic_version "
                              "IN ACCESS EXCLUSIVE MODE"))
            held.append(conn)
    yield url.render_as_string(hide_password=False), hold
    for conn in held:
        conn.rollback()
        conn.close()


def on(services, url: str):
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    return dataclasses.replace(services, engine=engine, sessions=sessions, sender=OutboxSender(
        sessions, services.sender.client, services.clock, services.config.outbox))


def test_a_busy_database_is_one_line_and_a_backoff_for_the_sender_and_the_jobs(
        services, busy, caplog):
    url, hold = busy
    waiting = on(services, url)
    hold()
    caplog.clear()
    assert SenderLoop(waiting).once() == 1.0  # then 2, 4 … (the same backoff as a database away)
    assert run_job(waiting, "outbox.sweep") is None
    lines = told(caplog)
    assert [r.getMessage().split(": the database at")[0] for r in lines] == [
        "outbox", "job outbox.sweep"]
    assert all("is busy (another transaction held a lock too long)" in r.getMessage()
               and not r.exc_info for r in lines)


def test_a_webhook_on_a_busy_database_is_a_503_to_retry(services, busy, caplog):
    """SQLite's lock at BEGIN escaped as sqlite3's own error: a 500 and its traceback."""
    url, hold = busy
    waiting = on(services, url)
    waiting.secrets = dataclasses.replace(services.secrets, webhook_secret=Secret(SECRET))
    hold()
    caplog.clear()
    answer = post_webhook(create_web_app(waiting, None).test_client(), waiting, "leads", lead(1))
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    assert "nothing was stored, retry later" in answer.get_json()["error"]
    [line] = [r for r in told(caplog) if r.levelno >= logging.WARNING]
    assert "is busy" in line.getMessage() and not line.exc_info


def test_the_cli_on_a_busy_database_says_so_in_one_line(services, busy, monkeypatch, capsys):
    url, hold = busy
    for var in ("SLACK_BOT_TOKEN", "SLACK_API_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ALIGNBOT_CONFIG", str(ROOT / "alignbot.example.toml"))
    monkeypatch.setenv("ALIGNBOT_TEAM_ID", TEAM)
    hold()
    assert main(["lead", "L-1"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("alignbot: the database at ") and err.count("\n") == 1
    assert "is busy (another transaction held a lock too long)" in err


# ------------------------------------------------------------------ a lost connection


@pytest.mark.postgresql
def test_a_connection_lost_mid_transaction_is_one_line_and_the_next_works(pg_engine):
    """The server restarted, or a proxy dropped the connection: the driver's error became
    one line only while connecting; in a transaction it was a traceback."""
    sessions = db.make_sessionmaker(pg_engine)
    with sessions() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
        with pg_engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(db.DatabaseUnreachable) as lost:
            session.execute(text("SELECT 1"))
    assert str(lost.value).startswith("cannot reach the database at postgresql+psycopg://")
    assert "\n" not in str(lost.value)
    with sessions() as session:  # the dead connection left the pool
        assert session.execute(text("SELECT 1")).scalar() == 1


def test_a_row_held_for_the_token_is_due_again_after_the_hold(services, fake_slack, clock):
    queue(services, 1, "C0HANDOFF1")
    fake_slack.script("chat.postMessage", (200, {}, {"ok": False, "error": "invalid_auth"}))
    services.sender.flush()
    clock.advance(TOKEN_HOLD - timedelta(seconds=1))
    assert services.sender.flush().sent == 0 and len(fake_slack.calls_of("chat.postMessage")) == 1
    clock.advance(timedelta(seconds=1))
    assert services.sender.flush().sent == 1
