"""Two at once: PostgreSQL transactions (until one waits for the other's lock), senders."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

TRIES = 10_000  # a few seconds of asking


WAITING = """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock'"""


def until_waiting(engine: Engine, thread: threading.Thread) -> None:
    """Until `thread` waits for a lock (a row's, an advisory one) another transaction holds
    (or is done)."""
    with engine.connect() as conn:
        for _ in range(TRIES):
            if not thread.is_alive() or conn.exec_driver_sql(WAITING).scalar():
                return
            conn.rollback()
    raise AssertionError("the other transaction neither waited for the lock nor finished")


def flush_together(*senders) -> None:
    """Each outbox sender flushes in a thread of its own, all starting together."""
    barrier = threading.Barrier(len(senders))
    errors: list[BaseException] = []

    def flush(sender) -> None:
        try:
            barrier.wait()
            sender.flush()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=flush, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
