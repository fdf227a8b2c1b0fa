"""`alignbot run` as a real process: a real HTTP client, real signatures, a fake Slack over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from bot.clock import SystemClock
from bot.fakeslack import FakeSlack
from tests.slack import SIGNING_SECRET, sign, slash_body

ROOT = Path(__file__).resolve().parents[1]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def slack_over_http():
    fake = FakeSlack(team_id="T0TEST")
    server = make_server("127.0.0.1", 0, fake.wsgi_app(), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_port}/api/"
    server.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def running_bot(tmp_path, slack_over_http):
    fake, api_url = slack_over_http
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-fake-token", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": api_url, "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
           "ALIGNBOT_CONFIG": str(ROOT / "alignbot.example.toml")}
    env.pop("SLACK_APP_TOKEN", None)
    cli = [sys.executable, "-m", "bot.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=60)
    port = free_port()
    proc = subprocess.Popen([*cli, "run", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    log = []
    try:
        for line in proc.stderr:  # wait for waitress to say it listens (no polling, no sleep)
            log.append(line)
            if "Serving on" in line:
                break
        else:
            pytest.fail("alignbot run exited early:\n" + "".join(log))
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
        yield f"http://127.0.0.1:{port}", fake
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def post(url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_run_serves_health_and_signed_slash_commands(running_bot):
    base, fake = running_bot
    with urllib.request.urlopen(f"{base}/healthz", timeout=10) as resp:
        assert resp.status == 200 and json.loads(resp.read())["ok"] is True
    assert fake.calls_of("auth.test")  # it learned its workspace from Slack

    body = slash_body("help", user="U0ADMIN01")
    now = int(SystemClock().now().timestamp())  # a real server checks against the real time
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, text = post(f"{base}/slack/events", body, {**form, **sign(body, now)})
    assert status == 200
    assert "/align help" in json.loads(text)["text"]

    status, _ = post(f"{base}/slack/events", body, {**form, **sign(body, now, "wrong-secret")})
    assert status == 401
    status, _ = post(f"{base}/slack/events", body, {**form, **sign(body, now - 600)})
    assert status == 401


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

    from bot import outbox
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
