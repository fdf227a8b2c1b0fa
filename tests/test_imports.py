"""CSV import and dropped files: same path as the webhook, rejected rows written beside the input."""

from __future__ import annotations

import csv
from datetime import timedelta

from sqlalchemy import select

from bot.cli import main
from bot.imports import import_csv, import_dropped
from storage.models import Lead


def write(path, header, rows):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def leads(services):
    with services.sessions.begin() as s:
        return {lead.external_id: lead for lead in s.scalars(select(Lead))}


def test_import_stores_good_rows_and_writes_the_rejected_ones_with_reasons(services, tmp_path):
    path = write(tmp_path / "leads.csv", ["external_id", "source", "score", "name"],
                 [["L-1", "webinar", "50", "Ann"], ["L-2", "", "40", "Bo"],
                  ["L-3", "ebook", "999", "Cy"], ["L-4", "events", "", "Di"]])
    seen = []
    summary = import_csv(services, "leads", path, progress=seen.append)
    assert summary.rows == 4 and seen == [4]
    assert summary.result.created == 2 and len(summary.result.rejected) == 2
    assert set(leads(services)) == {"L-1", "L-4"}
    assert leads(services)["L-1"].status == "routed"  # routed like a webhook lead
    with summary.rejected_file.open() as f:
        rejected = list(csv.DictReader(f))
    assert [r["external_id"] for r in rejected] == ["L-2", "L-3"]
    assert "source: is required" in rejected[0]["errors"]
    assert "score: 999 is not between 0 and 100" in rejected[1]["errors"]
    assert rejected[1]["name"] == "Cy"  # the row as it was, to fix and send again


def test_a_hubspot_export_imports_unchanged(services, tmp_path):
    path = write(tmp_path / "hubspot.csv",
                 ["Record ID", "First Name", "Last Name", "Email", "Company Name", "Job Title",
                  "HubSpot Score", "Original Source", "Create Date", "Some Other Column"],
                 [["101", "Ann", "Lee", "ann@acme.example", "Acme", "CTO", "85", "webinar",
                   "2026-11-23 09:30", "ignored"]])
    summary = import_csv(services, "leads", path, mapping="hubspot")
    assert summary.result.created == 1, summary.result.rejected
    lead = leads(services)["101"]
    assert (lead.name, lead.company, lead.score, lead.source) == ("Ann Lee", "Acme", 85, "webinar")
    # the export's local time is read in the workspace timezone (New York, UTC-5 in November)
    assert lead.created_at.hour == 14 and lead.created_at.minute == 30


def test_unknown_mapping_says_which_exist(services, tmp_path):
    path = write(tmp_path / "x.csv", ["a"], [["1"]])
    try:
        import_csv(services, "leads", path, mapping="pipedrive")
    except ValueError as exc:
        assert "hubspot" in str(exc) and "salesforce" in str(exc)
    else:
        raise AssertionError("an unknown mapping must be refused")


def test_dropped_files_are_imported_once_per_content(services, tmp_path):
    write(tmp_path / "leads-monday.csv", ["external_id", "source"], [["L-1", "webinar"]])
    assert len(import_dropped(services, tmp_path, services.clock.now())) == 1
    assert import_dropped(services, tmp_path, services.clock.now()) == []  # same file: skipped
    (tmp_path / "leads-monday-copy.csv").write_bytes((tmp_path / "leads-monday.csv").read_bytes())
    assert import_dropped(services, tmp_path, services.clock.now()) == []  # same bytes: skipped
    write(tmp_path / "leads-tuesday.csv", ["external_id", "source"], [["L-2", "ebook"]])
    services.clock.advance(timedelta(minutes=1))
    assert [p.name for p, _ in import_dropped(services, tmp_path, services.clock.now())] == [
        "leads-tuesday.csv"]
    assert set(leads(services)) == {"L-1", "L-2"}


def test_cli_import_prints_a_summary(services, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    path = write(tmp_path / "deals.csv", ["external_id", "amount"], [["D-1", "100"], ["D-2", "x"]])
    assert main(["import", "deals", str(path)]) == 0
    out = capsys.readouterr().out
    assert '"created": 1' in out and "deals.rejected.csv" in out
    assert main(["import", "deals", str(tmp_path / "missing.csv")]) == 2
