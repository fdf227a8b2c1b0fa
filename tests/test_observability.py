"""What an operator watches: JSON log lines, /metrics, /readyz, and the worker's --port."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bot.cli import main
from bot.local.fakeslack import FakeSlack
from bot.platform import logs, outbox, telemetry
from bot.platform.config import Secret
from bot.platform.descriptor import Feature, Features
from bot.platform.jobs import Job, every
from bot.platform.scheduler import run_job
from bot.platform.server import create_monitoring_app, create_web_app
from bot.platform.services import Services
from storage import db
from storage.migrate import alembic_config
from tests.processes import CLI, ROOT, over_http, run_env, serving
from tests.slack import TEAM, request, send_event, slash
from tests.test_imports import write
from tests.test_webhooks import SECRET, lead
from tests.test_webhooks import post as post_webhook

# ------------------------------------------------------------------ helpers


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def web(services, app):
    """The web app, webhooks on (their secret set)."""
    services.secrets = dataclasses.replace(services.secrets, webhook_secret=Secret(SECRET))
    return create_web_app(services, app).test_client()


def scrape(web) -> Samples:
    resp = web.get("/metrics")
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.get_data(as_text=True))
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def json_lines():
    """Every log line, as the JSON formatter writes it, parsed."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(db.NO_ROW_VALUES)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def queue(services: Services, n: int, channel: str = "C0HANDOFF1") -> None:
    with services.transaction() as session:
        for i in range(n):
            outbox.post(session, services.team_id, channel, {"text": f"m{i}"},
                        now=services.clock.now(), ref=f"m:{i}")


def with_job(services: Services, run) -> Services:
    return dataclasses.replace(services, features=Features([Feature("test", jobs=(
        Job("test.job", run, lambda c: every(minutes=1), 30, "a job for the test"),))]))


# ------------------------------------------------------------------ JSON log lines


def test_a_requests_json_lines_carry_its_workspace_id_and_duration(app, clock, json_lines):
    slash(app, "help", clock.now())
    slash(app, "help", clock.now())
    answered = [line for line in json_lines() if line["logger"] == "bot.platform.telemetry"]
    assert [line["message"] for line in answered] == ["command /align answered 200 in 0.000 s"] * 2
    first, second = answered
    assert set(first) == {"time", "level", "logger", "message", "team_id", "request_id",
                          "duration_s"}
    assert first["level"] == "DEBUG" and first["team_id"] == TEAM and first["duration_s"] == 0
    assert re.fullmatch(r"[0-9a-f]{16}", first["request_id"])
    assert first["request_id"] != second["request_id"]  # one id a request
    assert datetime.fromisoformat(first["time"]).tzinfo is not None


def test_routine_slack_requests_are_debug_lines_and_the_rest_info(clock, caplog):
    """At INFO a Slack request answered well and in time logs nothing (/metrics counts it);
    a late or failed one, a refusal and every webhook do."""
    caplog.set_level(logging.INFO, logger="bot.platform.telemetry")

    def answer(kind: str, status: int, seconds: float) -> None:
        with telemetry.request(kind, "x", TEAM, clock) as answered:
            clock.advance(timedelta(seconds=seconds))
            answered.status = status

    answer("command", 200, 0.999)
    answer("action", 200, 0)
    answer("command", 200, telemetry.SLOW_ACK)
    answer("view", 500, 0)
    answer("event", 401, 0)
    answer("webhook", 202, 0)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "command x answered 200 in 1.000 s"), ("INFO", "view x answered 500 in 0.000 s"),
        ("INFO", "event ? answered 401 in 0.000 s"), ("INFO", "webhook x answered 202 in 0.000 s")]


def test_a_jobs_json_lines_carry_its_id_and_a_slow_run_its_duration(services, clock, json_lines):
    def slow(services, now):
        logging.getLogger("test.job").info("working")
        clock.advance(timedelta(seconds=2))

    run_job(with_job(services, slow), "test.job")
    working, done = [line for line in json_lines() if "job_id" in line]
    assert (working["message"], working["job_id"], working["team_id"]) == \
        ("working", "test.job", TEAM)
    assert done["level"] == "INFO" and done["duration_s"] == 2.0  # slow: at INFO
    assert done["message"] == "job test.job: ok in 2.000 s"
    logging.getLogger("test").info("after the job")
    assert "job_id" not in json_lines()[-1]  # the context ends with the job


PG_ERROR = "duplicate key\nDETAIL:  Key (email)=(ann@example.com) already exists."


def test_configured_json_logging_keeps_row_values_out(monkeypatch, capsys):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in a fresh process
    monkeypatch.setattr(root, "level", logging.WARNING)
    monkeypatch.setenv("ALIGNBOT_LOG_FORMAT", "json")
    logs.configure()
    try:
        raise ValueError(PG_ERROR)
    except ValueError:
        logging.getLogger("test").exception("the insert failed")
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert line["message"] == "the insert failed" and "duplicate key" in line["exception"]
    assert "ann@example.com" not in json.dumps(line)


def test_lines_written_in_the_background_keep_their_context_and_none_is_lost(monkeypatch, capsys):
    """`alignbot run`'s request threads queue their lines: each still carries its own
    request's fields and is scrubbed, and every one is written when the block ends."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    monkeypatch.setenv("ALIGNBOT_LOG_FORMAT", "json")
    logs.configure()
    writer = root.handlers[0]

    def work(i: int) -> None:
        with logs.context(request_id=f"r{i}"):
            for n in range(50):
                logging.getLogger("test").warning("line %d", n)
            try:
                raise ValueError(PG_ERROR)
            except ValueError:
                logging.getLogger("test").exception("the insert failed")

    with logs.in_background():
        assert root.handlers != [writer]  # a queue in front of it
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert root.handlers == [writer]
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    for i in range(8):
        mine = [line for line in lines if line.get("request_id") == f"r{i}"]
        assert [line["message"] for line in mine] == [f"line {n}" for n in range(50)] + \
            ["the insert failed"]
        assert "duplicate key" in mine[-1]["exception"]
    assert "ann@example.com" not in json.dumps(lines)
    assert len(lines) == 8 * 51


# what a LogRecord looks up (a walk up the stack, the thread's and process's names) only
# for a format that prints it
WHERE_FROM = {"pathname", "filename", "module", "lineno", "funcName", "thread", "threadName",
              "process", "processName"}


@pytest.mark.parametrize("fmt", logs.FORMATS)
def test_configured_logging_looks_up_nothing_its_lines_do_not_print(fmt, monkeypatch, capsys):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    for flag in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, flag, getattr(logging, flag))  # restored after the test
    monkeypatch.setenv("ALIGNBOT_LOG_FORMAT", fmt)
    logs.configure()
    assert logging._srcfile is None
    assert not (logging.logThreads or logging.logProcesses or logging.logMultiprocessing)
    assert not set(re.findall(r"%\((\w+)\)", logs.TEXT)) & WHERE_FROM
    with logs.context(request_id="r1"):
        logging.getLogger("test").warning("a line", extra={"duration_s": 0.5})
    line = capsys.readouterr().err
    if fmt == "json":
        assert set(json.loads(line)) == {"time", "level", "logger", "message", "request_id",
                                         "duration_s"}
    else:
        assert line.endswith(" WARNING test: a line\n")


def test_an_unknown_log_format_or_level_is_refused_with_both_named(monkeypatch, capsys):
    monkeypatch.setenv("ALIGNBOT_LOG_FORMAT", "yaml")
    monkeypatch.setenv("ALIGNBOT_LOG_LEVEL", "loud")
    assert main(["manifest"]) == 2
    err = capsys.readouterr().err
    assert "ALIGNBOT_LOG_FORMAT: 'yaml' is not one of text, json" in err
    assert "ALIGNBOT_LOG_LEVEL: 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR" in err
    monkeypatch.setenv("ALIGNBOT_LOG_FORMAT", " JSON ")
    monkeypatch.setenv("ALIGNBOT_LOG_LEVEL", "debug")
    assert main(["manifest"]) == 0  # written as people write them


# ------------------------------------------------------------------ /metrics


def test_metrics_name_every_series(web):
    names = {name for name, _ in scrape(web)}
    for family in ("alignbot_outbox_queue_depth", "alignbot_outbox_oldest_pending_seconds",
                   "alignbot_outbox_dead_rows", "process_cpu_seconds_total"):
        assert family in names
    exposition = web.get("/metrics").get_data(as_text=True)
    for family in ("alignbot_requests", "alignbot_ack_seconds", "alignbot_outbox_sends",
                   "alignbot_outbox_rate_limited", "alignbot_job_runs",
                   "alignbot_job_duration_seconds", "alignbot_import_rows"):
        assert f"# HELP {family}" in exposition


def test_a_command_is_counted_and_its_ack_timed(web, app, clock):
    before = scrape(web)
    slash(app, "help", clock.now())
    after = scrape(web)
    assert moved(before, after, "alignbot_requests_total", kind="command", status="200") == 1
    assert moved(before, after, "alignbot_ack_seconds_count", kind="command") == 1
    assert moved(before, after, "alignbot_ack_seconds_bucket", kind="command", le="0.01") == 1


def test_sends_429s_and_the_queue_move(web, services, fake_slack, clock):
    fake_slack.script("chat.postMessage", (429, {"Retry-After": "3"},
                                           {"ok": False, "error": "ratelimited"}))
    before = scrape(web)
    queue(services, 2)
    clock.advance(timedelta(seconds=90))  # due, and unsent, for 90 s
    queued = scrape(web)
    assert value(queued, "alignbot_outbox_queue_depth") == 2
    assert value(queued, "alignbot_outbox_oldest_pending_seconds") == 90
    services.sender.flush()  # the 429
    clock.advance(timedelta(seconds=3))
    services.sender.flush()
    after = scrape(web)
    assert moved(before, after, "alignbot_outbox_rate_limited_total") == 1
    assert moved(before, after, "alignbot_outbox_sends_total", outcome="retry") == 1
    assert moved(before, after, "alignbot_outbox_sends_total", outcome="sent") == 2
    assert value(after, "alignbot_outbox_queue_depth") == 0
    assert value(after, "alignbot_outbox_oldest_pending_seconds") == 0


def test_dead_rows_are_counted(web, services, fake_slack):
    fake_slack.missing.add("C0GONE0001")
    before = scrape(web)
    queue(services, 1, channel="C0GONE0001")
    services.sender.flush()
    after = scrape(web)
    assert value(after, "alignbot_outbox_dead_rows") == 1
    assert moved(before, after, "alignbot_outbox_sends_total", outcome="dead") == 1


def test_job_runs_are_counted_and_timed_by_outcome(web, services, clock):
    def slow(services, now):
        clock.advance(timedelta(seconds=4))

    before = scrape(web)
    run_job(services, "outbox.sweep")
    run_job(with_job(services, slow), "test.job")
    with pytest.raises(RuntimeError):
        run_job(with_job(services, lambda s, now: _raise()), "test.job")
    after = scrape(web)
    assert moved(before, after, "alignbot_job_runs_total", job="outbox.sweep", outcome="ok") == 1
    assert moved(before, after, "alignbot_job_runs_total", job="test.job", outcome="ok") == 1
    assert moved(before, after, "alignbot_job_runs_total", job="test.job", outcome="failed") == 1
    assert moved(before, after, "alignbot_job_duration_seconds_sum", job="test.job") == 4
    assert moved(before, after, "alignbot_job_duration_seconds_bucket", job="test.job",
                 le="5.0") == 2


def _raise():
    raise RuntimeError("a bug in the job")


def test_imported_rows_are_counted_by_source_and_result(web, services, tmp_path):
    from bot.intake.imports import import_csv

    before = scrape(web)
    path = write(tmp_path / "leads.csv", ["external_id", "source", "score", "name"],
                 [["L-1", "webinar", "50", "Ann"], ["L-2", "", "40", "Bo"],
                  ["L-3", "ebook", "60", "Cy"]])
    import_csv(services, "leads", path)
    answer = post_webhook(web, services, "leads", {"leads": [lead(7), lead(8, score=999)]})
    assert answer.status_code == 200
    after = scrape(web)
    assert moved(before, after, "alignbot_import_rows_total", source="csv", result="accepted") == 2
    assert moved(before, after, "alignbot_import_rows_total", source="csv", result="rejected") == 1
    assert moved(before, after, "alignbot_import_rows_total", source="webhook",
                 result="accepted") == 1
    assert moved(before, after, "alignbot_import_rows_total", source="webhook",
                 result="rejected") == 1
    assert moved(before, after, "alignbot_requests_total", kind="webhook", status="200") == 1
    post_webhook(web, services, "leads", None, raw=b"{not json")  # malformed: counted as a 400
    assert moved(after, scrape(web), "alignbot_requests_total", kind="webhook", status="400") == 1


@pytest.mark.parametrize(("body", "kind"), [
    ({"type": "block_actions", "actions": [{"action_id": "handoff.accept"}]},
     ("action", "handoff.accept")),
    ({"type": "view_submission", "view": {"callback_id": "handoff.reject"}},
     ("view", "handoff.reject")),
    ({"type": "event_callback", "event": {"type": "app_mention"}}, ("event", "app_mention")),
    ({"type": "shortcut", "callback_id": "x"}, ("action", "x")),
    ({"type": "block_actions", "actions": ["not a dict"]}, ("action", None)),
    ({"type": "block_actions", "actions": {"0": "a dict"}}, ("action", None)),
    ({"type": "event_callback", "event": "a string"}, ("event", None)),
    ({}, ("other", None)), ("not a body", ("other", None)),
])
def test_each_slack_request_has_a_kind_even_a_malformed_one(body, kind):
    assert telemetry.slack_request(body) == kind


def test_an_unverified_requests_words_stay_out_of_its_log_line(app, clock, json_lines):
    """The line is written whatever the request; one whose signature is wrong is anyone's,
    and nothing of it is logged (a line break in it would forge a line of a text log)."""
    forged = {"type": "event_callback", "team_id": "T1\nERROR forged",
              "event": {"type": "x" * 65}}
    resp = app.dispatch(request(json.dumps(forged), "application/json", clock.now(),
                                secret="not the signing secret"))
    assert resp.status == 401
    odd = send_event(app, {"type": "x\nERROR forged"}, "Ev0001", clock.now())  # signed
    refused_line, odd_line = [x for x in json_lines() if x["logger"] == "bot.platform.telemetry"]
    assert refused_line["message"] == "event ? answered 401 in 0.000 s"
    assert "team_id" not in refused_line
    assert odd_line["message"] == f"event ? answered {odd.status} in 0.000 s"
    assert odd_line["team_id"] == TEAM  # verified: its workspace is named


def test_a_scrape_waits_for_the_database_only_so_long(services, monkeypatch):
    """A locked or slow database leaves the outbox's numbers out of a scrape, and a read
    still running is not started twice."""
    release, reads = threading.Event(), []

    def slow_read(services, timeout):
        reads.append(timeout)
        assert release.wait(timeout=10)
        return telemetry.OutboxNumbers(depth=3, dead=0, oldest_due=0.0)

    monkeypatch.setattr(telemetry, "outbox_numbers", slow_read)
    collector = telemetry.OutboxCollector(services, timeout=0.05)
    assert collector.collect() == [] and collector.collect() == []
    assert len(reads) == 1
    release.set()
    depth = {m.name: m.samples[0].value for m in collector.collect()}
    assert depth["alignbot_outbox_queue_depth"] == 3 and len(reads) == 1


@pytest.mark.postgresql
def test_the_scrapes_database_timeout_is_the_servers_too(pg_engine):
    """On PostgreSQL the server gives up on the scrape's statements, too (not only the scrape)."""
    with db.make_sessionmaker(pg_engine)() as session:
        db.time_limit(session, 0.05)
        with pytest.raises(db.DatabaseBusy, match="canceling statement due to statement timeout"):
            session.execute(text("SELECT pg_sleep(2)"))


# ------------------------------------------------------------------ /readyz


def test_ready_names_each_check(web):
    resp = web.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"ok": True, "checks": {"database": "ok", "migrations": "ok",
                                                       "outbox": "ok"}}


def test_not_ready_while_a_due_message_waits_past_stuck_after(web, services, clock):
    queue(services, 1)
    clock.advance(services.config.outbox.stuck_after)
    assert web.get("/readyz").status_code == 200  # not past it yet
    clock.advance(timedelta(seconds=1))
    resp = web.get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["ok"] is False and body["failed"] == "outbox"
    assert body["checks"]["outbox"].startswith("a due message has waited 901 s, over "
                                               "outbox.stuck_after (900 s)")
    services.sender.flush()
    assert web.get("/readyz").status_code == 200


def test_not_ready_on_a_database_a_migration_behind(web, services):
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
    with services.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": previous})
    try:
        resp = web.get("/readyz")
    finally:
        with services.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert resp.status_code == 503
    assert resp.get_json() == {"ok": False, "failed": "migrations", "checks": {
        "database": "ok", "migrations": f"the database is at revision {previous}, the code "
                                        f"needs {head}: run `alignbot db upgrade`"}}


def test_not_ready_without_a_database(services, app, caplog):
    """The monitoring port says why; the public one (no --monitoring-port) only what kind
    of error, as the driver's line names the database's host and user: the log has it."""
    down = db.make_engine("postgresql+psycopg://postgres:pw@127.0.0.1:1/x")
    away = dataclasses.replace(services, engine=down, sessions=db.make_sessionmaker(down))
    why = "cannot reach the database at postgresql+psycopg://postgres:***@127.0.0.1:1/x"
    for web, said in ((create_monitoring_app(away), why),
                      (create_web_app(away, app), "DatabaseUnreachable: see alignbot's log")):
        caplog.clear()
        resp = web.test_client().get("/readyz")
        assert resp.status_code == 503
        body = resp.get_json()
        assert body["failed"] == "database" and set(body["checks"]) == {"database"}
        assert body["checks"]["database"].startswith(said)
        logged = [r.getMessage() for r in caplog.records if r.name == telemetry.__name__]
        assert len(logged) == 1 and logged[0].startswith(f"/readyz: the database check failed: {why}")
    assert "127.0.0.1" not in json.dumps(body)  # the public port's


# ------------------------------------------------------------------ the worker's --port


def test_the_worker_serves_health_readiness_and_metrics_and_logs_json(tmp_path, sqlite_template):
    fake = FakeSlack(team_id=TEAM)
    delivered = threading.Event()
    fake.on_change = lambda kind, obj: delivered.set() if kind == "post" else None
    with over_http(fake) as api_url:
        env = run_env(tmp_path, sqlite_template, SLACK_BOT_TOKEN="xoxb-fake-token",
                      SLACK_API_URL=api_url, ALIGNBOT_LOG_FORMAT="json")
        sessions = db.make_sessionmaker(db.make_engine(env["DATABASE_URL"]))
        with sessions.begin() as session:  # queued long ago: due when the worker starts
            outbox.post(session, TEAM, "C0HANDOFF1", {"text": "from the worker"},
                        now=datetime(2026, 1, 1, tzinfo=UTC))
        with serving(env, tmp_path, command=(*CLI, "worker")) as (base, log):
            assert delivered.wait(timeout=30), "the worker did not deliver the queued message"
            assert json.loads(get(f"{base}/healthz")) == {"ok": True, "team_id": TEAM}
            assert json.loads(get(f"{base}/readyz"))["ok"] is True
            metrics = get(f"{base}/metrics")
            with pytest.raises(urllib.error.HTTPError) as missing:
                get(f"{base}/webhooks/leads")  # the worker serves no requests
            assert missing.value.code == 404
    assert 'alignbot_outbox_sends_total{outcome="sent"} 1.0' in metrics
    assert "alignbot_outbox_queue_depth 0.0" in metrics
    lines = [json.loads(line) for line in log]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["message"].startswith("serving /healthz, /readyz and /metrics on 127.0.0.1:")
               for line in lines)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


def test_the_readme_says_how_to_watch_it():
    section = (ROOT / "README.md").read_text().split("## Running in production", 1)[1]
    section = section.split("\n## ", 1)[0]
    for said in ("ALIGNBOT_LOG_FORMAT=json", "/metrics", "/readyz", "alignbot worker --port",
                 "outbox.stuck_after"):
        assert said in section, said

