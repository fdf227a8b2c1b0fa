"""CSV import: `alignbot import <entity> FILE.csv [--mapping hubspot]`, and dropped files.

The file is read and checked in batches by bot.intake.csvfile; each batch goes through the
same path as the webhook, so new leads are routed and carded. Rejected rows are
written next to the input as FILE.<entity>.rejected.csv with their reasons, as their
batches complete; nothing is dropped silently, and nothing piles up in memory.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import logging
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from bot.handoff.new_leads import show_bursts
from bot.intake import csvfile
from bot.intake.batches import Staged, refused_value, stage, store
from bot.intake.ingest import IngestResult
from bot.intake.records import ENTITIES, MAX_BATCH, Checked, Rejection
from bot.platform import telemetry
from bot.platform.services import Services
from storage.bulk import gc_paused
from storage.db import between_batches, make_way
from storage.imports import get_imported_file, put_imported_file

log = logging.getLogger(__name__)

FIRST_REJECTED = 10  # rejected rows a summary shows; all of them are in the rejected file
# Rows in a batch of an import, each batch its own transaction. SQLite has one writer at a
# time: every click that writes waits for the batch in progress, so batches stay small. On
# PostgreSQL readers never wait and a batch holds up only routing (a webhook's new leads, a
# reassignment), while its statements cost more to start: a COPY of 1,000 rows costs
# about twice as much a row as one of several thousand.
IMPORT_BATCH = {"sqlite": MAX_BATCH, "postgresql": 5 * MAX_BATCH}
MAX_TRIES = 6  # of a dropped file that fails for a passing reason: 1, 2, 4, … minutes apart
# What a dropped file's name starts with: its entity, the longest first (content_usage
# before content).
NAME_PREFIXES = tuple(sorted(ENTITIES, key=len, reverse=True))
# A file still changing after this many looks (a minute apart) is said to be, once.
CHANGING_LOOKS = 30


@dataclass(frozen=True)
class _Look:
    """What the folder job saw of a file: its size and times (None: not a regular file),
    how many looks in a row found it changed, and its digest once read at these times."""
    stat: tuple[int, int, int] | None
    changed: int = 0
    digest: str | None = None


# The folder job's previous scan, by folder: the files it held. Kept in memory: a restarted
# process only waits one scan more and reads each file once again.
_last_scan: dict[Path, dict[Path, _Look]] = {}


@dataclass
class ImportSummary:
    """An import's counts and its first few rejections: all of them, with the rows as
    they were, are in `rejected_file`, however many there are."""
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    first_rejected: list[Rejection] = field(default_factory=list)  # index: the row's, from 0
    rejected_file: Path | None = None
    stopped: str | None = None  # why the file broke off or was refused, for a dropped one
    failed: str | None = None  # why a dropped one could not be imported

    def as_dict(self) -> dict[str, Any]:
        if self.failed:  # what it stored before is not known (it comes back unchanged)
            return {"failed": self.failed}
        return {"rows": self.rows, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "rejected": self.rejected,
                "first_rejected": [{"row": r.index + 1, "external_id": r.external_id,
                                    "errors": r.errors} for r in self.first_rejected],
                "rejected_file": str(self.rejected_file) if self.rejected_file else None,
                **({"stopped": self.stopped} if self.stopped else {})}


def import_csv(services: Services, entity: str, path: Path, *, mapping: str | None = None,
               progress: Callable[[int], None] | None = None, actor: str = "import",
               regular_only: bool = False) -> ImportSummary:
    """Import every row; `progress(n)` is told after each batch of n rows. With regular_only
    (a dropped file), a link in its place is refused, not read through."""
    csvfile.check_path(path, regular_only=regular_only)
    columns = csvfile.columns(entity, mapping)
    size = IMPORT_BATCH.get(services.engine.dialect.name, MAX_BATCH)
    with csvfile.Reader(path, entity, columns, services.config.workspace.tz, size,
                        regular_only=regular_only) as reader, \
            _RejectedFile(rejected_path(path, entity), reader) as rejected:
        pipeline = _Pipeline(services, entity, actor, progress, rejected)
        try:
            pipeline.run(iter(reader))
        except (ValueError, csv.Error) as exc:  # the file breaks off: what came before stays
            raise ImportStopped(exc, pipeline.summary) from exc
        finally:
            done = pipeline.summary
            telemetry.count_import("csv", done.rows - done.rejected, done.rejected)
    return pipeline.summary


def rejected_path(path: Path, entity: str) -> Path:
    """Beside the input, named by it and the entity: importing one file as leads and then
    as deals keeps both files of reasons."""
    return path.with_name(f"{path.stem}.{entity}.rejected.csv")


class ImportStopped(ValueError):
    """A file that is refused (its header, no rows) or breaks off midway (a byte that is not
    UTF-8, a field past the csv module's size limit): the rows before it are imported;
    `summary` says how they went."""

    def __init__(self, error: Exception, summary: ImportSummary):
        super().__init__(str(error))
        self.summary = summary


class _RejectedFile:
    """Rejected rows as they were, with their reasons, written as their batches are counted:
    an import holds none of them, however many there are. An earlier import's file of the
    same name is removed first: its reasons are not this import's."""

    def __init__(self, path: Path, reader: csvfile.Reader):
        self.path, self._reader = path, reader
        self._file: TextIO | None = None
        with contextlib.suppress(OSError):  # none, or in the way: `write` says so if it must
            path.unlink()

    def write(self, rows: list[tuple[dict[str, str], list[str]]]) -> None:
        columns = [c for c in self._reader.fieldnames if c != csvfile.REASONS]
        if self._file is None:
            try:
                self._file = self.path.open("w", newline="", encoding="utf-8")
            except OSError as exc:  # the rows would be lost: the import stops before them
                raise csvfile.FileError(f"cannot write the rejected rows to {self.path}: "
                                        f"{exc.strerror or exc}") from None
            csvfile.write_rows(self._file, [[*columns, csvfile.REASONS]])
        # A row wider than the header keeps its cells past it (csv.DictReader's, under None)
        # in order, the reason last: once its comma is quoted it is as wide as this header,
        # reason and all. (A reason before them would land in a column of the fixed row.)
        csvfile.write_rows(self._file, ([*map(row.get, columns), *row.get(None, ()),
                                         "; ".join(errors)] for row, errors in rows))
        self._file.flush()  # what is counted is in the file, whatever happens next

    def __enter__(self) -> _RejectedFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()


class _Pipeline:
    """Batches, each its own transaction, read and checked ahead by the reader process.
    One commits on the writer thread (inserting is the database's own work, done without
    the GIL) while the next is received; then whoever else waits to write goes first. The
    bursts' summaries are shown once, at the end (a new one is queued at once anyway)."""

    def __init__(self, services: Services, entity: str, actor: str,
                 progress: Callable[[int], None] | None, rejected: _RejectedFile):
        self.services, self.entity, self.actor, self.progress = services, entity, actor, progress
        self.summary = ImportSummary()
        self.rejected = rejected
        self.bursts: set[int] = set()
        self._committing: tuple[list[dict[str, str]], Future[IngestResult]] | None = None

    def run(self, batches: Iterator[tuple[list[dict[str, str]], Checked]]) -> None:
        with gc_paused() as batch_done, between_batches(self.services.engine) as upkeep, \
                ThreadPoolExecutor(1, thread_name_prefix="import") as writer:
            try:
                for batch, checked in batches:
                    self._collect()
                    batch_done()
                    make_way(self.services.engine)
                    staged = stage(self.services, self.entity, checked, actor=self.actor,
                                   history=True)
                    self._committing = batch, writer.submit(self._commit, staged, checked)
                    writer.submit(upkeep)  # while the next batch is staged
                self._collect()
            finally:
                self._settle()

    def _commit(self, staged: Staged, checked: Checked) -> IngestResult:
        try:
            result = staged.commit(show_bursts=False)
        except Exception as exc:
            if not refused_value(exc):
                raise
            # a value the checks let through: the webhook's way, down to the refused record
            return store(self.services, self.entity, checked, actor=self.actor, history=True)
        self.bursts.update(staged.bursts)
        return result

    def _collect(self, *, tell: bool = True) -> None:
        """Count in the batch that was committing (raising what stopped it)."""
        if self._committing is None:
            return
        batch, committed = self._committing
        result = committed.result()  # interrupted, it is still in flight for `_settle`
        self._committing = None
        s = self.summary
        s.created, s.updated = s.created + result.created, s.updated + result.updated
        s.unchanged, s.rejected = s.unchanged + result.unchanged, s.rejected + len(result.rejected)
        s.first_rejected += [Rejection(r.index + s.rows, r.external_id, r.errors)
                             for r in result.rejected[:FIRST_REJECTED - len(s.first_rejected)]]
        s.rows += len(batch)  # stored: counted, even if its rejected rows cannot be written
        if result.rejected:
            self.rejected.write([(batch[r.index], r.errors) for r in result.rejected])
            s.rejected_file = self.rejected.path
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
            with self.services.work() as work:
                show_bursts(work, self.bursts)
        except Exception:
            log.exception("import: the leads are stored, but their summaries in Slack could "
                          "not be brought up to date")


def import_dropped(services: Services, folder: Path, now: datetime) -> list[tuple[Path, ImportSummary]]:
    """Import each `<entity>*.csv` in the folder once per content (renamed copies too), once
    it has stopped changing, and say how each went. One that cannot be imported as it is
    (its header, a byte that is not UTF-8, every row rejected) is imported as far as it
    goes, once; a fixed copy is new content. One that fails for what may pass (its reader died, the database went away) is
    tried MAX_TRIES times in all, 1, 2, 4, … minutes apart, then given up. None holds up
    the files after it, and only regular files are read: a link is not followed."""
    done = []
    for path, entity in _settled(folder):
        digest = _digest(folder, path)
        if digest is None:
            continue
        with services.sessions.begin() as session:
            seen = get_imported_file(session, services.team_id, digest)
            earlier = dict(seen.summary or {}) if seen else {}
        if seen and not _retry_due(earlier, now):
            continue
        summary, stored = _import_dropped(services, entity, path, earlier.get("tries", 0) + 1, now)
        with services.transaction() as session:
            put_imported_file(session, team_id=services.team_id, sha256=digest, filename=path.name,
                              entity=entity, imported_at=now, summary=stored)
        done.append((path, summary))
    return done


def _settled(folder: Path) -> list[tuple[Path, str]]:
    """The folder's files to import, with their entities: those whose size and modification
    time are what the previous scan saw. One still being copied in (SFTP, SMB) would be
    imported cut off (a score of 9 for 95), and routed on it. (A minimum age would compare
    the file system's clock with the job's, which tests and the shell set.) A link is
    skipped, not followed (OAuth mode: one in a workspace's subfolder to another's file
    would import that workspace's rows into this one, and write its rejected rows here),
    and so is anything else that is not a regular file."""
    before, seen, settled = _last_scan.get(folder, {}), {}, []
    for path in sorted(folder.glob("*.csv")):
        entity = next((e for e in NAME_PREFIXES if path.name.startswith(e)), None)
        if entity is None or path.name.endswith(".rejected.csv"):
            continue
        try:
            found = path.lstat()
        except OSError:  # gone since the folder was listed
            continue
        last = before.get(path)
        if not stat.S_ISREG(found.st_mode):
            seen[path] = _Look(None)
            if last is None or last.stat is not None:  # said once, not every minute
                log.warning("%s is not a regular file (%s): not imported", path.name,
                            _kind(found.st_mode))
            continue
        current = found.st_size, found.st_mtime_ns, found.st_ctime_ns  # ctime: no tool sets it
        if last is not None and last.stat == current:
            seen[path] = last
            settled.append((path, entity))
            continue
        seen[path] = _Look(current, changed=last.changed + 1 if last else 0)
        if seen[path].changed == CHANGING_LOOKS:
            log.warning("%s has changed at each of the last %d looks, a minute apart: it is "
                        "imported once it stops changing", path.name, CHANGING_LOOKS)
    _last_scan[folder] = seen
    return settled


def _digest(folder: Path, path: Path) -> str | None:
    """The file's SHA-256, read once while it stays as the last scan saw it; None if it
    cannot be read (yet): there is no content to know it by."""
    look = _last_scan[folder][path]
    if look.digest is None:
        try:
            with csvfile.open_file(path, "rb", regular_only=True) as f:
                look = _last_scan[folder][path] = replace(
                    look, digest=hashlib.file_digest(f, "sha256").hexdigest())
        except OSError as exc:
            log.warning("cannot read %s: %s", path.name, exc)
    return look.digest


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a folder" if stat.S_ISDIR(mode) else "a device, FIFO or socket"


def _retry_due(summary: dict[str, Any], now: datetime) -> bool:
    """Whether a file seen before is tried again now: after a passing failure, once it is time."""
    return "retry_at" in summary and datetime.fromisoformat(summary["retry_at"]) <= now


def _import_dropped(services: Services, entity: str, path: Path, attempt: int,
                    now: datetime) -> tuple[ImportSummary, dict[str, Any]]:
    """How the import went, and what to store of it: with a passing failure, when to try again."""
    try:
        summary = import_csv(services, entity, path, regular_only=True)
    except ImportStopped as stopped:  # not again until it is fixed, nor in the way of others
        summary = stopped.summary
        summary.stopped = str(stopped)
        if summary.rows:
            log.error("imported %s only up to row %d, where it breaks off: %s", path.name,
                      summary.rows, stopped)
        else:
            log.error("could not import %s: %s", path.name, stopped)
        return summary, summary.as_dict()
    except Exception as exc:  # noqa: BLE001 - the reader died, the database...: the others go on
        if attempt < MAX_TRIES:
            minutes = 2 ** (attempt - 1)
            log.exception("could not import %s (try %d of %d); it is tried again in %d min",
                          path.name, attempt, MAX_TRIES, minutes)
            summary = ImportSummary(failed=f"{exc}; tried again in {minutes} min "
                                           f"(try {attempt} of {MAX_TRIES})")
            return summary, {**summary.as_dict(), "tries": attempt,
                             "retry_at": (now + timedelta(minutes=minutes)).isoformat()}
        log.exception("could not import %s in %d tries; given up", path.name, MAX_TRIES)
        summary = ImportSummary(failed=f"{exc}; given up after {MAX_TRIES} tries: once the cause "
                                       f"is fixed, import it with `alignbot import {entity}`")
        return summary, summary.as_dict()
    if summary.rejected == summary.rows:
        log.error("imported %s: every row is rejected; the reasons are in %s", path.name,
                  summary.rejected_file)
    else:
        log.info("imported %s: %s", path.name, summary.as_dict())
    return summary, summary.as_dict()
