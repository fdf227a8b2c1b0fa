"""Imported-file queries: a dropped file is imported once per content."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ImportedFile


def get_imported_file(session: Session, team_id: str, sha256: str) -> ImportedFile | None:
    return session.scalar(select(ImportedFile).where(ImportedFile.team_id == team_id,
                                                     ImportedFile.sha256 == sha256))


def add_imported_file(session: Session, **fields) -> ImportedFile:
    row = ImportedFile(**fields)
    session.add(row)
    return row
