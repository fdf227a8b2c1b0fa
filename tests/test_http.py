"""`alignbot run` as a real process: a real HTTP client, real signatures, a fake Slack over HTTP."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from bot.cli import main as cli_main
from bot.local.fakeslack import FakeSlack
from bot.platform.clock import SystemClock
from bot.platform.server import MAX_REQUEST_BYTES, MAX_SLACK_BODY_BYTES, create_web_app
from tests.processes import CLI, ROOT, free_port, over_http, run_env, serving, use_env
from tests.slack import SIGNING_SECRET, all_text, sign, slash_body


@pytest.fixture
def slack_over_http():
    fake = FakeSlack(team_id="T0TEST")
    with over_http(fake) as api_url:
        yield fake, api_url


@pytest.fixture
def running_bot(tmp_path, sqlite_template, slack_over_http):
    """`alignbot run`, its /readyz and /metrics on a port of their own: its base URL, that
    port's, and the fake Slack."""
    fake, api_url = slack_over_http
    env = run_env(tmp_path, sqlite_template, SLACK_BOT_TOKEN="xoxb-fake-token",
                  SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=api_url)
    monitoring = free_port()
    with serving(env, tmp_path, (*CLI, "run", "--monitoring-port", str(monitoring)),
                 servers=2) as (base, _):
        yield base, f"http://127.0.0.1:{monitoring}", fake


def post(url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_run_serves_health_and_signed_slash_commands(running_bot):
    base, monitoring, fake = running_bot
    for where in (base, monitoring):
        with urllib.request.urlopen(f"{where}/healthz", timeout=10) as resp:
            assert resp.status == 200 and json.loads(resp.read())["ok"] is True
    assert fake.calls_of("auth.test")  # it learned its workspace from Slack
    for path in ("/metrics", "/readyz"):  # off the port Slack reaches, on the other one
        with pytest.raises(urllib.error.HTTPError) as public:
            urllib.request.urlopen(f"{base}{path}", timeout=10)
        assert public.value.code == 404
        with urllib.request.urlopen(f"{monitoring}{path}", timeout=10) as resp:
            assert resp.status == 200

    body = slash_body("help", user="U0ADMIN01")
    now = int(SystemClock().now().timestamp())  # a real server checks against the real time
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, text = post(f"{base}/slack/events", body, {**form, **sign(body, now)})
    assert status == 200
    assert "/align help" in all_text(json.loads(text))

    status, _ = post(f"{base}/slack/events", body, {**form, **sign(body, now, "wrong-secret")})
    assert status == 401
    status, _ = post(f"{base}/slack/events", body, {**form, **sign(body, now - 600)})
    assert status == 401
    # a body larger than any route takes: refused on its length, before it is read
    conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=10)
    conn.putrequest("POST", "/webhooks/leads")
    conn.putheader("Content-Length", str(MAX_REQUEST_BYTES + 1))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()


def test_socket_mode_runs_without_a_signing_secret_and_health_tells_a_down_socket(
        tmp_path, sqlite_template, slack_over_http):
    fake, api_url = slack_over_http
    fake.script("apps.connections.open",  # a socket address where nothing listens
                (200, {}, {"ok": True, "url": f"ws://127.0.0.1:{free_port()}/link"}))
    env = run_env(tmp_path, sqlite_template, SLACK_BOT_TOKEN="xoxb-fake-token",
                  SLACK_APP_TOKEN="xapp-fake-token", SLACK_API_URL=api_url)
    with serving(env, tmp_path) as (base, log):
        assert "Traceback" not in "".join(log)
        with pytest.raises(urllib.error.HTTPError) as health:
            urllib.request.urlopen(f"{base}/healthz", timeout=10)
        assert health.value.code == 503
        assert "Socket Mode connection is down" in json.loads(health.value.read())["slack"]
        status, _ = post(f"{base}/slack/events", "{}", {"Content-Type": "application/json"})
        assert status == 404  # Slack's requests come over the socket only


def test_run_without_network_says_so_in_one_line(tmp_path, sqlite_template):
    closed = free_port()
    env = run_env(tmp_path, sqlite_template, SLACK_BOT_TOKEN="xoxb-x", SLACK_APP_TOKEN="xapp-x",
                  SLACK_API_URL=f"http://127.0.0.1:{closed}/api/")
    result = subprocess.run([*CLI, "run", "--port", "0"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()  # not 60 lines of chained tracebacks
    assert line.startswith(f"alignbot: cannot reach Slack at http://127.0.0.1:{closed}/api/: ")
    assert "refused" in line


def test_http_mode_without_a_signing_secret_says_so(tmp_path, sqlite_template, monkeypatch,
                                                   capsys):
    use_env(monkeypatch, run_env(tmp_path, sqlite_template, SLACK_BOT_TOKEN="xoxb-x"))
    assert cli_main(["run", "--port", "0"]) == 2
    assert "SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode) is not set" in \
        capsys.readouterr().err


class FakeSocket:
    def __init__(self, connected: bool):
        self.connected = connected

    def is_connected(self) -> bool:
        return self.connected


def test_a_slack_request_over_the_limit_is_refused_before_bolt_reads_it(services, app,
                                                                        monkeypatch):
    web = create_web_app(services, app).test_client()
    read = []
    monkeypatch.setattr(app, "dispatch", read.append)
    body = "payload=" + "x" * MAX_SLACK_BODY_BYTES  # unsigned, as an attacker's would be
    resp = web.post("/slack/events", data=body, content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 413 and "too large" in resp.get_json()["error"] and read == []


def test_health_follows_the_socket_mode_connection(services):
    socket = FakeSocket(connected=False)
    web = create_web_app(services, None, socket=socket).test_client()
    down = web.get("/healthz")
    assert down.status_code == 503 and down.json["ok"] is False and "down" in down.json["slack"]
    socket.connected = True
    assert web.get("/healthz").status_code == 200


def test_run_refuses_an_unmigrated_database(tmp_path):
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s",
           "SLACK_API_URL": "http://127.0.0.1:9/api/",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
           "ALIGNBOT_CONFIG": str(ROOT / "alignbot.example.toml")}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "run", "--port", "0"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "run `alignbot db upgrade` first" in result.stderr


def test_run_without_tokens_says_what_is_missing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env["ALIGNBOT_CONFIG"] = str(ROOT / "alignbot.example.toml")
    result = subprocess.run([sys.executable, "-m", "bot.cli", "run"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in result.stderr


def test_worker_delivers_the_outbox(tmp_path, slack_over_http):
    from datetime import UTC, datetime

    from bot.platform import outbox
    from storage.db import make_engine, make_sessionmaker

    fake, api_url = slack_over_http
    delivered = threading.Event()
    fake.on_change = lambda kind, obj: delivered.set() if kind == "post" else None
    db = f"sqlite:///{tmp_path / 'worker.db'}"
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-fake-token", "SLACK_API_URL": api_url,
           "DATABASE_URL": db, "ALIGNBOT_CONFIG": str(ROOT / "alignbot.example.toml")}
    cli = [sys.executable, "-m", "bot.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=60)
    sessions = make_sessionmaker(make_engine(db))
    with sessions.begin() as session:  # queued long ago: due whenever the worker looks
        outbox.post(session, "T0TEST", "C0HANDOFF1", {"text": "from the worker"},
                    now=datetime(2026, 1, 1, tzinfo=UTC))
    proc = subprocess.Popen([*cli, "worker"], env=env, stderr=subprocess.DEVNULL)
    try:
        assert delivered.wait(timeout=30), "the worker did not deliver the queued message"
        assert [m.text for m in fake.messages] == ["from the worker"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM is a clean stop


@pytest.mark.parametrize("command", ["worker", "run"])
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_during_start_up_is_clean(tmp_path, sqlite_template, slack_over_http, command,
                                         stop):
    """Ctrl-C (or SIGTERM) while start-up waits for Slack's auth.test: it stops, exit
    status 0 as a stop once running, and no traceback."""
    fake, api_url = slack_over_http
    asked, answer = threading.Event(), threading.Event()

    def hold_auth_test(method, args):  # the process is in start-up until this returns
        if method == "auth.test":
            asked.set()
            answer.wait(timeout=60)
    fake.check = hold_auth_test
    env = run_env(tmp_path, sqlite_template, SLACK_BOT_TOKEN="xoxb-fake-token",
                  SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=api_url)
    proc = subprocess.Popen([*CLI, command, "--port", str(free_port())], env=env,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert asked.wait(timeout=60), "start-up never asked Slack who it is"
        proc.send_signal(stop)
        if stop == signal.SIGTERM:  # a stop asked for: start-up ends, then the process
            answer.set()
        err = proc.communicate(timeout=60)[1]
    finally:
        answer.set()
        proc.kill()
    assert "Traceback" not in err, err
    assert proc.returncode == 0, err


def test_a_stop_signal_ends_alignbot_run_cleanly_with_every_line_written(
        tmp_path, sqlite_template, slack_over_http):
    """`docker stop` sends SIGTERM: the lines its request threads queued are all written
    (they go through a thread of their own), then "stopped", and it exits 0."""
    _, api_url = slack_over_http
    env = run_env(tmp_path, sqlite_template, SLACK_BOT_TOKEN="xoxb-fake-token",
                  SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=api_url,
                  ALIGNBOT_LOG_LEVEL="DEBUG")
    port = free_port()
    proc = subprocess.Popen([*CLI, "run", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        for line in proc.stderr:
            if "Serving on" in line:
                break
        body = slash_body("help")
        now = int(SystemClock().now().timestamp())
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for _ in range(20):
            assert post(f"http://127.0.0.1:{port}/slack/events", body,
                        {**form, **sign(body, now)})[0] == 200
        proc.terminate()
        rest = proc.communicate(timeout=30)[1].splitlines()
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert sum("command /align answered 200" in line for line in rest) == 20
    assert rest[-1].endswith("stopped") and "Traceback" not in "".join(rest)


def test_serving_freezes_what_start_up_made_so_full_collections_skip_it(monkeypatch):
    """A full collection stops every request while it walks the heap: start-up's objects
    (modules, the app) are frozen before the first request, so it walks only newer ones."""
    import gc

    import waitress
    from flask import Flask

    from bot.platform.server import serve

    frozen = []
    monkeypatch.setattr(waitress, "serve", lambda *a, **k: frozen.append(gc.get_freeze_count()))
    try:
        serve(Flask(__name__), "127.0.0.1", 0)
    finally:
        gc.unfreeze()
    assert frozen and frozen[0] > 10_000
