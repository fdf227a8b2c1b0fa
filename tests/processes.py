"""`alignbot run` as a real process, against a fake Slack served over real HTTP."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from bot.local.fakeslack import FakeSlack

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "bot.cli"]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def over_http(fake: FakeSlack) -> Iterator[str]:
    """`fake` served on 127.0.0.1: its Web API base URL (for SLACK_API_URL)."""
    server = make_server("127.0.0.1", 0, fake.wsgi_app(), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/"
    finally:
        server.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_env(tmp_path, sqlite_template, **env: str) -> dict[str, str]:
    """The environment of `alignbot run` on a migrated store of its own, Slack's secrets
    only as given."""
    db = tmp_path / "run.db"
    shutil.copy(sqlite_template, db)
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
            "DATABASE_URL": f"sqlite:///{db}", "ALIGNBOT_CONFIG": str(ROOT / "alignbot.example.toml"),
            **env}


def use_env(monkeypatch, env: dict[str, str]) -> None:
    """`env` as this process's environment, for `alignbot` run in-process."""
    for key in os.environ:
        if key not in env:
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@contextlib.contextmanager
def serving(env: dict[str, str], cwd: Path, command: tuple[str, ...] = (*CLI, "run"),
            servers: int = 1) -> Iterator[tuple[str, list[str]]]:
    """`alignbot run` (or another `command` taking --host and --port) until its `servers`
    listen (no polling, no sleep): its base URL, and its log lines, which go on growing
    while it runs."""
    port = free_port()
    proc = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)
    log: list[str] = []
    try:
        for line in proc.stderr:
            log.append(line)
            if "Serving on" in line and sum("Serving on" in seen for seen in log) == servers:
                break
        else:
            pytest.fail("alignbot run exited early:\n" + "".join(log))
        threading.Thread(target=_collect, args=(proc.stderr, log), daemon=True).start()
        yield f"http://127.0.0.1:{port}", log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _collect(lines, log: list[str]) -> None:
    """Keep reading (a full pipe would stop the process), line by line as they come."""
    for line in lines:
        log.append(line)
