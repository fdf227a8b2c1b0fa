"""Imported-file queries: a dropped file is imported once per content (tried again only
after a failure that may pass, which its summary says)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ImportedFile


def get_imported_file(session: Session, team_id: str, sha256: str) -> ImportedFile | None:
    return session.scalar(select(ImportedFile).where(ImportedFile.team_id == team_id,
                                                     ImportedFile.sha256 == sha256))


def put_imported_file(session: Session, *, team_id: str, sha256: str, **fields) -> ImportedFile:
    """The file's row, added or, after another try, brought up to date."""
    row = get_imported_file(session, team_id, sha256)
    if row is None:
        row = ImportedFile(team_id=team_id, sha256=sha256)
        session.add(row)
    for name, value in fields.items():
        setattr(row, name, value)
    return row
