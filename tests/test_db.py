"""Engine setup on SQLite: how a transaction waits for another connection's write lock."""

from __future__ import annotations

import sqlite3

import pytest

from storage import db
from storage.db import make_engine


class FakeTime:
    """What `begin_immediate` pauses with: each pause is counted, then `on_pause` runs."""

    def __init__(self, on_pause=lambda pauses: None):
        self.pauses, self.on_pause = [], on_pause

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.on_pause(len(self.pauses))


@pytest.fixture
def locked(tmp_path):
    """An engine on a file whose write lock another connection holds, with a row not yet committed."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    holder = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    yield engine, holder
    holder.close()
    engine.dispose()


def test_a_transaction_begins_within_a_millisecond_of_the_lock_coming_free(locked, monkeypatch):
    engine, holder = locked
    fake = FakeTime(on_pause=lambda n: n == 3 and holder.execute("COMMIT"))
    monkeypatch.setattr(db, "time", fake)
    with engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1  # after the commit
    assert fake.pauses == [0.001] * 3  # tried every millisecond, not by SQLite's back-off


def test_a_transaction_that_waits_too_long_says_the_database_is_locked(locked, monkeypatch):
    engine, holder = locked
    fake = FakeTime()
    monkeypatch.setattr(db, "time", fake)
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 20)  # then SQLite's own wait: 20 ms
    with pytest.raises(sqlite3.OperationalError, match="database is locked"), engine.begin():
        pass
    assert fake.pauses == [0.001] * db.FAST_TRIES
    holder.execute("ROLLBACK")
    with engine.connect() as conn:  # the same pooled connection: its own timeout is back
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 20
