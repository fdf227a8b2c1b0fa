"""Reading a CSV file of records: a CRM export's columns mapped to the webhook's fields,
in batches, each checked, in a process of its own (`Reader`); and writing every CSV file
alignbot writes (`write_rows`).

Columns carry the webhook's field names, or a mapping renames a CRM export's columns
(field = column, or a list of columns joined with a space). The header is checked before
any row: a column missing, unknown or named twice is one error for the file. Empty cells
are left out, and an export's times without an offset are read in the workspace's timezone.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import gc
import os
import pickle
import signal
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO
from zoneinfo import ZoneInfo

from bot.intake.records import FIELDS, REQUIRED, Checked, Rejection, check, key_of

Mapping_ = dict[str, str | list[str]]
# Column names as the CRMs' own export documentation gives them.
MAPPINGS: dict[str, dict[str, Mapping_]] = {
    "hubspot": {
        "leads": {"external_id": "Record ID", "email": "Email", "name": ["First Name", "Last Name"],
                  "company": "Company Name", "title": "Job Title", "score": "HubSpot Score",
                  "source": "Original Source", "created_at": "Create Date",
                  "mql_at": "Became a Marketing Qualified Lead Date",
                  "owner_email": "Contact owner email", "region": "Country/Region",
                  "segment": "Company size"},
        "deals": {"external_id": "Record ID", "name": "Deal Name", "amount": "Amount",
                  "created_at": "Create Date", "closed_at": "Close Date",
                  "owner_email": "Deal owner email", "lead_external_id": "Associated Contact IDs"},
    },
    "salesforce": {
        "leads": {"external_id": "Lead ID", "email": "Email", "name": ["First Name", "Last Name"],
                  "company": "Company / Account", "title": "Title", "source": "Lead Source",
                  "created_at": "Create Date", "owner_email": "Lead Owner Email",
                  "score": "Lead Score", "region": "Country"},
        "deals": {"external_id": "Opportunity ID", "name": "Opportunity Name", "amount": "Amount",
                  "created_at": "Created Date", "closed_at": "Close Date",
                  "owner_email": "Opportunity Owner Email", "source": "Lead Source"},
    },
}
ROOT = Path(__file__).resolve().parents[2]  # where `bot` is, for the reader process
PIPE_BYTES = 1 << 20  # several batches; Linux's default limit for a pipe
# A cell a spreadsheet would take for a formula (OWASP's list): =HYPERLINK(…), +cmd|…, @SUM(…)
FORMULA_START = frozenset("=+-@\t\r")
REASONS = "errors"  # the column a rejected file adds; ignored when the fixed file comes back
SHOWN_COLUMNS = 12  # of a header, in an error about it
NOT_THROUGH = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)  # where the OS has them
TIME_FIELDS = {"created_at", "mql_at", "routed_at", "accepted_at", "rejected_at", "first_touch_at",
               "closed_at", "started_at", "churned_at", "used_at"}


class Reader:
    """The file read and checked a batch ahead, by `python -m bot.intake.csvfile`: that is a fifth
    of an import's Python, which in the importing process would take turns for the GIL
    with staging and writing. Yields (rows, checked) batches; where the file breaks off,
    raises what stopped the reading there (csv.Error, OSError; a ValueError saying
    where the file stops being UTF-8).

    A process of its own, not a fork (the bot's other threads' locks would be copied in
    whatever state they are) nor multiprocessing's spawn (it imports the main module
    again, the whole bot): this module loads only the record checks."""

    def __init__(self, path: Path, entity: str, columns: Mapping_ | None, tz: ZoneInfo,
                 size: int, *, regular_only: bool = False):
        self.path = path
        self.fieldnames: list[str] = []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        # -P: this `bot`, not one in the working directory
        self._process = subprocess.Popen([sys.executable, "-P", "-m", __name__], env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            with contextlib.suppress(ImportError, AttributeError, OSError):  # Linux; else as is
                import fcntl
                fcntl.fcntl(self._process.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            with self._process.stdin as job:
                pickle.dump((path, entity, columns, tz, size, regular_only), job)
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[tuple[list[dict[str, str]], Checked]]:
        self.fieldnames = self._receive()
        while (batch := self._receive()) is not None:
            yield batch

    def _receive(self) -> Any:
        try:
            kind, value = pickle.load(self._process.stdout)
        except (EOFError, pickle.UnpicklingError):  # nothing more, or cut off mid-batch
            raise RuntimeError(f"the process reading {self.path.name} ended unexpectedly "
                               f"(exit code {self._process.wait()})") from None
        if kind == "error":
            raise value
        return value

    def close(self) -> None:
        """Done reading, whether or not the reader is: it is stopped, never waited on."""
        self._process.stdout.close()
        self._process.kill()
        self._process.wait()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read(job: BinaryIO, out: BinaryIO) -> None:
    """The reader process: the header, each batch, then None; or what stopped it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the import's to handle
    gc.disable()  # rows make no cycles; the collections would only slow the reading down
    path, entity, columns, tz, size, regular_only = pickle.load(job)

    def send(kind: str, value: Any) -> None:
        pickle.dump((kind, value), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    with contextlib.suppress(OSError):  # a broken pipe: the import stopped reading
        try:
            with open_file(path, regular_only=regular_only, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                reader.fieldnames = _header(path.name, reader.fieldnames, entity, columns)
                send("fieldnames", reader.fieldnames)
                rows = 0
                for batch in _batches(reader, size):
                    rows += len(batch)
                    send("batch", (batch, _check(entity, batch, columns, tz,
                                                 len(reader.fieldnames))))
                if not rows:
                    raise FileError(f"{path.name} has a header but no rows: nothing to import")
            send("end", None)
        except UnicodeDecodeError:  # where the reading got to is not where the byte is
            send("error", ValueError(not_utf8(path, regular_only=regular_only)))
        except csv.Error as exc:
            send("error", csv.Error(_broken_row(reader.reader.line_num, exc)))  # the line it was on
        except Exception as exc:  # noqa: BLE001 - the importing process raises it
            send("error", _portable(exc))


class FileError(ValueError):
    """What is wrong with the file as a whole (no such file, its header, no rows): nothing
    in it is imported, and trying again without changing it would fail the same way."""


def check_path(path: Path, *, regular_only: bool = False) -> None:
    """A clear line, before any reading, for a path that is not a file one can read."""
    try:
        with open_file(path, "rb", regular_only=regular_only):
            pass
    except FileNotFoundError:
        raise FileError(f"no file {path}") from None
    except IsADirectoryError:
        raise FileError(f"{path} is a folder, not a CSV file") from None
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror or exc}") from None


def open_file(path: Path, mode: str = "r", *, regular_only: bool = False,
              **kwargs: Any) -> IO[Any]:
    """`open`; with regular_only (a dropped file: anyone who can write to the folder may have
    put a link to another workspace's file there), only a regular file, never through a link."""
    return open(path, mode, opener=_open_regular if regular_only else None, **kwargs)


def _open_regular(path: str, flags: int) -> int:
    """os.open of the file as it is in the folder: a link is refused (ELOOP), not followed,
    even one swapped in since the folder was looked at; a FIFO is not waited on."""
    fd = os.open(path, flags | NOT_THROUGH)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", path)
    return fd


def _header(name: str, header: list[str] | None, entity: str, columns: Mapping_ | None) -> list[str]:
    """The column names, stripped, once they are known to make sense: each row of a file
    with a column missing, unknown or named twice would be rejected for the same reason."""
    if header is None:
        raise FileError(f"{name} is empty: no header, no rows")
    header = [column.strip() for column in header]
    if not any(header):
        raise FileError(f"{name} has no header: its first line names no columns")
    if columns is None:  # every column is read
        need, may = REQUIRED[entity], [f for f in FIELDS[entity] if f not in REQUIRED[entity]]
        used, expected = header, f"{entity} need {', '.join(need)} and may have {', '.join(may)}"
        unknown = [c for c in header if c and c not in FIELDS[entity] and c != REASONS]
    else:  # the mapped ones are: an export has many more
        mapped = _mapped(columns.values())
        need = list(_mapped(columns[f] for f in REQUIRED[entity] if f in columns))
        used = [c for c in header if c in mapped]
        expected, unknown = f"its mapping needs {', '.join(need)}", []
    problems = []
    if twice := [c for c, n in Counter(filter(None, used)).items() if n > 1]:
        problems.append(f"{', '.join(twice)} more than once")
    if missing := [c for c in need if c not in header]:
        problems.append(f"missing {', '.join(missing)}")
    elif unknown:
        problems.append(f"unknown {', '.join(unknown)}")
    if not problems:
        return header
    shown = ", ".join(header[:SHOWN_COLUMNS]) + (f", … ({len(header)} in all)"
                                                 if len(header) > SHOWN_COLUMNS else "")
    separator = next((s for s in (";", "\t", "|") if s in "".join(header)), None)
    hint = f"; is it comma-separated? Its header has {separator!r} in it" if separator else ""
    raise FileError(f"{name}'s columns are {shown} — {'; '.join(problems)} ({expected}){hint}")


def _mapped(columns: Iterable[str | list[str]]) -> dict[str, None]:
    """A mapping's column names, in order, each once."""
    return dict.fromkeys(c for col in columns for c in ([col] if isinstance(col, str) else col))


def _broken_row(line: int, exc: csv.Error) -> str:
    if "field limit" in str(exc):  # the csv module's words for its only size limit
        return (f"line {line:,} has a field longer than {csv.field_size_limit():,} characters "
                "(128 KB), the most one cell may hold; is a quote left open before it?")
    return f"line {line:,}: {exc}"


def write_rows(f: TextIO, rows: Iterable[Iterable[object]]) -> None:
    """Every CSV file alignbot writes is written here. Text, which comes from data, that a
    spreadsheet would run as a formula gets a leading ' (OWASP's rule), so it shows as
    text; numbers alignbot writes stay numbers, negative ones too."""
    csv.writer(f).writerows([f"'{c}" if isinstance(c, str) and c[:1] in FORMULA_START else c
                             for c in row] for row in rows)


def _as_it_was(cell: str) -> str:
    """A cell that starts with ' as it was before `write_rows` wrote it: a fixed rejected
    file imports as it was."""
    return cell[1:] if cell[1:2] in FORMULA_START else cell


def not_utf8(path: Path, *, regular_only: bool = False) -> str:
    """Where the file stops being UTF-8 text, as an editor counts lines, and what to do: a
    spreadsheet saved as plain "CSV" on Windows writes é as the single byte 0xe9. (No byte
    of a UTF-8 character is a newline, so each line can be checked on its own.)"""
    with open_file(path, "rb", regular_only=regular_only) as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return (f"line {number:,} is not UTF-8 text (byte 0x{line[exc.start]:02x}, "
                        f"the line's byte {exc.start + 1:,}); save the file as \"CSV UTF-8\" "
                        "and import it again")
    return "the file is not UTF-8 text; save it as \"CSV UTF-8\" and import it again"


def _portable(exc: Exception) -> Exception:
    """The error as the importing process can unpickle it: itself if it survives the trip,
    else one of its family (a ValueError or csv.Error still stops the import) that says it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any that does not
        family = next((k for k in (ValueError, csv.Error, OSError) if isinstance(exc, k)),
                      RuntimeError)
        return family(f"{type(exc).__name__}: {exc}")


def columns(entity: str, name: str | None) -> Mapping_ | None:
    if name is None:
        return None
    try:
        return MAPPINGS[name][entity]
    except KeyError:
        known = ", ".join(f"{m} ({', '.join(MAPPINGS[m])})" for m in MAPPINGS)
        raise ValueError(f"no mapping {name!r} for {entity}; mappings: {known}") from None


def _record(row: Mapping[str, str], columns: Mapping_ | None, tz: ZoneInfo) -> dict[str, str]:
    """A CSV row as a webhook record: mapped, empty cells dropped, naive export times localised."""
    values = row if columns is None else {
        f: " ".join(row.get(c) or "" for c in ([col] if isinstance(col, str) else col))
        for f, col in columns.items()}
    record = {}
    for key, value in values.items():  # (cells past the header's are under None: left out)
        if key and value and key != REASONS and (
                cell := (_as_it_was(value) if value[0] == "'" else value).strip()):
            record[key] = cell
    if columns is not None:
        for key in TIME_FIELDS & record.keys():
            record[key] = _localise(record[key], tz)
    return record


def _check(entity: str, batch: list[dict[str, Any]], columns: Mapping_ | None, tz: ZoneInfo,
           width: int) -> Checked:
    """The batch's records checked; a row with more cells than the header (a value with a
    comma, not quoted) has its values in the wrong columns, and is rejected for it."""
    records = [_record(row, columns, tz) for row in batch]
    checked = check(entity, records)
    extra = {i: width + len(row[None]) for i, row in enumerate(batch) if None in row}
    if not extra:
        return checked
    rejected = {r.index: r for r in checked.rejected}
    for i, cells in extra.items():
        why = f"has {cells} cells, the header {width}: is a value with a comma in it not quoted?"
        earlier = rejected.get(i, Rejection(i, key_of(entity, records[i], records[i]), []))
        rejected[i] = Rejection(i, earlier.external_id, [why, *earlier.errors])
    return Checked([(i, values) for i, values in checked.parsed if i not in extra],
                   sorted(rejected.values(), key=lambda r: r.index))


def _localise(text: str, tz: ZoneInfo) -> str:
    """CRM exports write local times without an offset: read them in the workspace timezone."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text  # the ingest reports it, with the field name
    return (when.replace(tzinfo=tz) if when.tzinfo is None else when).isoformat()


def _batches(reader: csv.DictReader, size: int) -> Iterator[list[dict[str, str]]]:
    """The rows in batches; where the file breaks off, the rows read before it, then the error."""
    batch: list[dict[str, str]] = []
    try:
        for row in reader:
            batch.append(row)
            if len(batch) == size:
                yield batch
                batch = []
    except Exception:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


if __name__ == "__main__":  # as bot.intake.csvfile, so that its errors unpickle in the import
    from bot.intake.csvfile import read as read_as_imported

    read_as_imported(sys.stdin.buffer, sys.stdout.buffer)
