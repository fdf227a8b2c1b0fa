"""Driving the local shell from tests: build one on a temp database, feed it lines, read its output."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from bot.local.shell import Shell, build_shell
from bot.platform.config import parse_config

AT = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # Tuesday 09:00 in New York


def make_shell(tmp_path, config_data, check, *, at: datetime = AT, user: str = "U0SALES01",
               demo: bool = False, db_url: str | None = None) -> Shell:
    out = io.StringIO()
    db_url = db_url or f"sqlite:///{tmp_path / 'shell.db'}"
    shell = build_shell(parse_config(config_data), db_url=db_url,
                        at=at, user=user, out=out, check=check, demo=demo)
    shell.output = out
    return shell


def run(shell: Shell, *lines: str) -> str:
    """Feed lines as a script would; return only what they printed."""
    start = len(shell.output.getvalue())
    shell.loop(lines, echo=True)
    return shell.output.getvalue()[start:]
