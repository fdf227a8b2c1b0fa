"""Alembic, driven from code: `alignbot db upgrade` and the tests use the same entry point."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine

SCRIPT_LOCATION = "storage:migrations"


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class SchemaOutOfDate(RuntimeError):
    pass


def require_current(engine: Engine) -> None:
    """Refuse to start on a database the migrations have not reached (say what to run)."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(f"the database is at revision {current or 'none'}, the code needs "
                              f"{head}: run `alignbot db upgrade` first")


def new_revision(message: str) -> None:
    """Autogenerate a migration from the model changes (against a scratch SQLite database)."""
    import tempfile

    from storage.db import make_engine

    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        upgrade(engine)
        head = head_revision()
        rev_id = f"{int(head) + 1:04d}" if head and head.isdigit() else None
        command.revision(alembic_config(engine), message=message, autogenerate=True,
                         rev_id=rev_id)


if __name__ == "__main__":
    import sys

    new_revision(" ".join(sys.argv[1:]) or "schema change")
