"""CSV import: `alignbot import <entity> FILE.csv [--mapping hubspot]`, and dropped files.

The file is read and checked in batches by bot.csvfile; each batch goes through the
same path as the webhook, so new leads are routed and carded. Rejected rows are
written next to the input as FILE.rejected.csv with their reasons; nothing is
dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bot import csvfile
from bot.handoff import show_bursts
from bot.ingest import IngestResult
from bot.records import MAX_BATCH, Checked
from bot.services import Services
from bot.webhooks import Staged, stage
from storage.bulk import gc_paused
from storage.db import make_way, wal_checkpoints
from storage.imports import add_imported_file, get_imported_file

log = logging.getLogger(__name__)

@dataclass
class ImportSummary:
    rows: int = 0
    result: IngestResult = field(default_factory=IngestResult)
    rejected_file: Path | None = None
    stopped: str | None = None  # why the file broke off, for a dropped one
    failed: str | None = None  # why a dropped one could not be imported this time

    def as_dict(self) -> dict[str, Any]:
        if self.failed:  # what it stored before is not known (it comes back unchanged)
            return {"failed": self.failed}
        return {"rows": self.rows, **self.result.as_dict(),
                "rejected_file": str(self.rejected_file) if self.rejected_file else None,
                **({"stopped": self.stopped} if self.stopped else {})}


def import_csv(services: Services, entity: str, path: Path, *, mapping: str | None = None,
               progress: Callable[[int], None] | None = None, actor: str = "import") -> ImportSummary:
    """Import every row; `progress(n)` is told after each batch of n rows."""
    columns = csvfile.columns(entity, mapping)
    pipeline = _Pipeline(services, entity, actor, progress)
    summary = pipeline.summary
    with csvfile.Reader(path, entity, columns, services.config.workspace.tz, MAX_BATCH) as reader:
        try:
            pipeline.run(iter(reader))
        except (ValueError, csv.Error) as exc:  # the file breaks off: what came before stays
            raise ImportStopped(exc, summary) from exc
        finally:
            if pipeline.rejected:
                summary.rejected_file = _write_rejected(path, reader.fieldnames,
                                                        pipeline.rejected)
    return summary


class ImportStopped(ValueError):
    """A file that breaks off midway (a byte that is not UTF-8, a field past the csv
    module's size limit): the rows before it are imported; `summary` says how they went."""

    def __init__(self, error: Exception, summary: ImportSummary):
        super().__init__(str(error))
        self.summary = summary


class _Pipeline:
    """Batches, each its own transaction, read and checked ahead by the reader process.
    One commits on the writer thread (inserting is the database's own work, done without
    the GIL) while the next is received; then whoever else waits to write goes first. The
    bursts' summaries are shown once, at the end (a new one is queued at once anyway)."""

    def __init__(self, services: Services, entity: str, actor: str,
                 progress: Callable[[int], None] | None):
        self.services, self.entity, self.actor, self.progress = services, entity, actor, progress
        self.summary = ImportSummary()
        self.rejected: list[tuple[dict[str, str], list[str]]] = []
        self.bursts: set[int] = set()
        self._committing: tuple[list[dict[str, str]], Future[IngestResult]] | None = None

    def run(self, batches: Iterator[tuple[list[dict[str, str]], Checked]]) -> None:
        with gc_paused() as batch_done, wal_checkpoints(self.services.engine) as checkpoint, \
                ThreadPoolExecutor(1, thread_name_prefix="import") as writer:
            try:
                for batch, checked in batches:
                    self._collect()
                    batch_done()
                    make_way(self.services.engine)
                    staged = stage(self.services, self.entity, checked, actor=self.actor)
                    self._committing = batch, writer.submit(self._commit, staged)
                    writer.submit(checkpoint)  # while the next batch is staged
                self._collect()
            finally:
                self._settle()

    def _commit(self, staged: Staged) -> IngestResult:
        result = staged.commit(show_bursts=False)
        self.bursts.update(staged.bursts)
        return result

    def _collect(self, *, tell: bool = True) -> None:
        """Count in the batch that was committing (raising what stopped it)."""
        if self._committing is None:
            return
        batch, committed = self._committing
        result = committed.result()  # interrupted, it is still in flight for `_settle`
        self._committing = None
        _add(self.summary.result, result, offset=self.summary.rows)
        self.rejected.extend((batch[r.index], r.errors) for r in result.rejected)
        self.summary.rows += len(batch)
        if tell and self.progress:
            self.progress(len(batch))

    def _settle(self) -> None:
        """Whatever stopped the import: the batch in flight ends, and what was stored is
        shown. Neither may hide why the import stopped, nor fail one that went well."""
        if self._committing is not None:
            batch, committed = self._committing
            if (error := committed.exception()) is not None:
                log.error("import: rows %d to %d were not stored: %s", self.summary.rows + 1,
                          self.summary.rows + len(batch), error)
            else:
                self._collect(tell=False)  # stored: counted (the caller is failing)
        if not self.bursts:
            return
        try:
            with self.services.transaction() as session:
                show_bursts(session, self.services.team_id, self.bursts, self.services.config,
                            self.services.clock.now())
        except Exception:
            log.exception("import: the leads are stored, but their summaries in Slack could "
                          "not be brought up to date")


def import_dropped(services: Services, folder: Path, now: datetime) -> list[tuple[Path, ImportSummary]]:
    """Import each `<entity>*.csv` in the folder once per content (renamed copies too). A file
    that breaks off is imported up to there, once; a fixed copy is new content. One that
    fails otherwise (its reader died, the database is away) is tried again next time."""
    done = []
    for path in sorted(folder.glob("*.csv")):
        entity = next((e for e in ("content_usage", "leads", "deals", "customers", "spend", "content")
                       if path.name.startswith(e)), None)
        if entity is None or path.name.endswith(".rejected.csv"):
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        with services.sessions.begin() as session:
            if get_imported_file(session, services.team_id, digest):
                continue
        try:
            summary = import_csv(services, entity, path)
            log.info("imported %s: %s", path.name, summary.as_dict())
        except ImportStopped as stopped:  # not again until it is fixed, nor in the way of others
            summary = stopped.summary
            summary.stopped = str(stopped)
            log.error("imported %s only up to row %d, where it breaks off: %s", path.name,
                      summary.rows, stopped)
        except Exception as exc:  # noqa: BLE001 - the reader died, the disk...: the others go on
            log.exception("could not import %s; it is tried again on the next run", path.name)
            done.append((path, ImportSummary(failed=f"{exc}; tried again on the next run")))
            continue
        with services.transaction() as session:
            add_imported_file(session, team_id=services.team_id, sha256=digest, filename=path.name,
                              entity=entity, imported_at=now, summary=summary.as_dict())
        done.append((path, summary))
    return done


def _add(total: IngestResult, part: IngestResult, offset: int) -> None:
    total.created += part.created
    total.updated += part.updated
    total.unchanged += part.unchanged
    total.rejected += [type(r)(r.index + offset, r.external_id, r.errors) for r in part.rejected]


def _write_rejected(path: Path, fieldnames: list[str],
                    rows: list[tuple[dict[str, str], list[str]]]) -> Path:
    out = path.with_name(path.stem + ".rejected.csv")
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*fieldnames, "errors"], extrasaction="ignore")
        writer.writeheader()
        for row, errors in rows:
            writer.writerow({**row, "errors": "; ".join(errors)})
    return out
