"""Fixtures every test builds on: the store on SQLite and PostgreSQL, a fake clock,
a fake Slack Web API checked against Slack's own method lists, and the app."""

from __future__ import annotations

import logging
import os
import shutil
from concurrent.futures import Executor, Future
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.app import create_app
from bot.local.fakeslack import FakeSlack
from bot.platform.clock import FakeClock
from bot.platform.config import Secret, Secrets, parse_config
from bot.platform.runtime import build_services
from storage.db import make_engine
from storage.migrate import upgrade
from storage.models import Base
from tests import slack_contract
from tests.shelltools import make_shell
from tests.slack import SIGNING_SECRET, TEAM

START = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # Tuesday 09:00 in New York
PG_ENV = "ALIGNBOT_TEST_DATABASE_URL"

TEST_CONFIG = {
    "workspace": {"timezone": "America/New_York", "holidays": "US", "admins": ["U0ADMIN01"]},
    "channels": {"handoff": "C0HANDOFF1", "marketing": "C0MARKET01", "digest": "C0DIGEST01"},
    "people": [
        {"slack_id": "U0SALES01", "email": "sam@example.com", "role": "sales",
         "manager": "U0SALESMG1", "name": "Sam Sales"},
        {"slack_id": "U0SALES02", "email": "sue@example.com", "role": "sales",
         "manager": "U0SALESMG1", "name": "Sue Sales", "timezone": "America/Los_Angeles"},
        {"slack_id": "U0SALESMG1", "email": "max@example.com", "role": "sales_manager",
         "name": "Max Manager"},
        {"slack_id": "U0MKTG01", "email": "mia@example.com", "role": "marketing", "name": "Mia"},
        {"slack_id": "U0ADMIN01", "email": "ada@example.com", "role": "admin", "name": "Ada"},
    ],
    "sla": [{"name": "hot", "min_score": 80, "respond_within": "15m", "clock": "wall"},
            {"name": "standard", "respond_within": "4h", "clock": "business"}],
    "targets": {"response_time": 30, "win_rate": 0.3},
}


def _backends() -> list:
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


def pytest_configure(config):
    config.addinivalue_line("markers", "postgresql: runs against the PostgreSQL test server")


def pytest_collection_modifyitems(config, items):
    if os.environ.get(PG_ENV):
        return
    skip = pytest.mark.skip(reason=f"{PG_ENV} is not set (.ci/run sets it)")
    for item in items:
        if "postgresql" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """Migrate once; each test gets a copy of the file (much faster than migrating again)."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection folds the WAL into the file we copy
    return path


@pytest.fixture(scope="session")
def pg_engine():
    """A database of our own on the PostgreSQL server, created and migrated once per run."""
    url = make_url(os.environ[PG_ENV])
    # one database per run: runs from several checkouts can share the server
    name = f"alignbot_test_{os.getpid()}"
    admin = make_engine(url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # unreachable server → a loud error here, never a skip
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(url.set(database=name).render_as_string(hide_password=False))
    upgrade(engine)
    yield engine
    engine.dispose()
    admin = make_engine(url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=_backends())
def engine(request, tmp_path):
    if request.param == "sqlite":
        path = tmp_path / "alignbot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
        return
    eng = request.getfixturevalue("pg_engine")
    yield eng
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def clock():
    return FakeClock(START)


def check_slack_call(method: str, args: dict) -> None:
    """Every call must exist in Slack's method lists, and what it posts must fit Slack's limits."""
    if method == "response_url":  # a reply to a click: a message, not a Web API method
        return slack_contract.check_message(args) if args.get("blocks") else None
    slack_contract.check_call(method, args)
    if method in ("chat.postMessage", "chat.update", "chat.postEphemeral") and args.get("blocks"):
        slack_contract.check_message(args)
    if method in ("views.open", "views.push", "views.update", "views.publish"):
        slack_contract.check_view(args["view"])


@pytest.fixture
def fake_slack(clock):
    broken = []

    def check(method: str, args: dict) -> None:
        try:
            check_slack_call(method, args)
        except AssertionError as exc:
            broken.append(str(exc))
            raise
    fake = FakeSlack(team_id=TEAM, check=check, clock=clock)
    for person in TEST_CONFIG["people"]:
        fake.add_user(person["slack_id"], person["name"], person["email"],
                      tz=person.get("timezone", "America/New_York"))
    yield fake
    assert broken == []  # also the calls whose error Bolt only logged (after an ack)


@pytest.fixture
def config():
    return parse_config(TEST_CONFIG, "<tests>")


@pytest.fixture
def services(config, clock, engine, fake_slack):
    secrets = Secrets(slack_signing_secret=Secret(SIGNING_SECRET))
    return build_services(config, secrets, clock, engine=engine, slack=fake_slack.client(),
                          team_id=TEAM)


class Inline(Executor):
    """What a listener leaves until after its ack, run at once: all of a request's work is
    done when `app.dispatch` returns."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        done: Future = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except Exception as exc:  # kept in the future, as a pool would
            done.set_exception(exc)
        return done


@pytest.fixture
def app(services):
    return create_app(services, after_ack=Inline())


class _ListenerErrors(logging.Handler):
    """What listeners raised: the app's error handler logs each (handlers/errors.py), a
    listener that tells the user itself logs it, and Bolt logs what a lazy listener raised
    after the ack."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []
        self.expected = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("handlers") or (record.name.startswith("slack_bolt")
                                                and record.getMessage().startswith("Failed to run")):
            self.seen.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(autouse=True)
def _no_listener_errors():
    """An exception raised inside any listener fails the test that triggered it (the app
    answers Slack 200 all the same, so nothing else would notice)."""
    catcher = _ListenerErrors()
    root = logging.getLogger()
    root.addHandler(catcher)
    try:
        yield catcher
    finally:
        root.removeHandler(catcher)
    if catcher.seen and not catcher.expected:
        pytest.fail("a listener raised:\n" + "\n".join(catcher.seen), pytrace=False)


@pytest.fixture
def listener_errors(_no_listener_errors) -> list[str]:
    """For a test about errors: what listeners raised, which then fails nothing by itself."""
    _no_listener_errors.expected = True
    return _no_listener_errors.seen


@pytest.fixture
def shell(tmp_path):
    """The local shell on its own SQLite file, as U0SALES01, Tuesday 09:00 New York."""
    return make_shell(tmp_path, TEST_CONFIG, check_slack_call)
