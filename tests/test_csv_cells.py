"""Every CSV file alignbot writes shows data that looks like a formula as text (OWASP's rule:
a leading '), and the numbers alignbot writes as numbers: `alignbot query --csv`,
`/align export` and the rejected rows of an import."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from bot.cli import main
from bot.intake.imports import import_csv
from bot.metrics.answers import ask
from storage.leads import get_lead_by_external_id
from tests.slack import reply, slash

HOSTILE = ['=HYPERLINK("http://evil.example","Acme")', "+cmd|' /C calc'!A0", "@SUM(1+1)",
           "-2+3", "\t=1+2", "\r=1+3"]


def hostile_file(tmp_path):
    """A lead from each hostile source, and one row of each rejected (its score)."""
    path = tmp_path / "leads.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["external_id", "source", "name", "score"])
        writer.writerows([f"L-{i}", source, "Ann", "50"] for i, source in enumerate(HOSTILE))
        writer.writerows([f"R-{i}", "webinar", name, "999"] for i, name in enumerate(HOSTILE))
    return path


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def inert(cell: str) -> bool:
    """What a spreadsheet shows as text: nothing it would take for a formula."""
    return not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


@pytest.fixture
def hostile_leads(services, tmp_path, monkeypatch):
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    return import_csv(services, "leads", hostile_file(tmp_path))


def test_query_csv_shows_a_hostile_source_as_text(services, hostile_leads, capsys):
    assert main(["query", "leads routed today by source", "--csv"]) == 0
    rows = cells(capsys.readouterr().out)
    assert rows[0] == ["source", "leads_routed"]
    assert sorted(rows[1:]) == sorted([f"'{s.strip()}", "1"] for s in HOSTILE)
    assert all(inert(cell) for row in rows for cell in row)


def test_an_export_shows_a_hostile_source_as_text(app, clock, services, hostile_leads, fake_slack):
    reply(slash(app, "export leads routed today by source", clock.now()))
    [file] = fake_slack.files
    rows = cells(file["bytes"].decode())
    assert {row[0] for row in rows[1:]} == {f"'{s.strip()}" for s in HOSTILE}
    assert all(inert(cell) for row in rows for cell in row)


def test_rejected_rows_show_hostile_cells_as_text_and_import_back_as_they_were(
        services, hostile_leads, tmp_path):
    assert hostile_leads.rejected == len(HOSTILE)
    with hostile_leads.rejected_file.open(newline="") as f:
        rows = list(csv.reader(f))
    assert [row[2] for row in rows[1:]] == [f"'{name}" for name in HOSTILE]
    assert all(inert(cell) for row in rows for cell in row)

    fixed = tmp_path / "fixed.csv"  # the rejected rows, their scores fixed, sent again
    fixed.write_bytes(hostile_leads.rejected_file.read_bytes().replace(b",999,", b",50,"))
    summary = import_csv(services, "leads", fixed)
    assert (summary.created, summary.rejected) == (len(HOSTILE), 0)
    with services.sessions() as s:
        names = [get_lead_by_external_id(s, services.team_id, f"R-{i}").name
                 for i in range(len(HOSTILE))]
    assert names == [name.strip() for name in HOSTILE]  # as the CRM sent them (trimmed, as ever)


def test_numbers_alignbot_writes_stay_numbers_and_text_from_data_does_not(services):
    found = ask(services, "win rate last quarter by source")
    found = dataclasses.replace(found, groups={"-1": -0.05, "=2": 0.5, "webinar": None})
    assert cells(found.csv()) == [["source", "win_rate"], ["'-1", "-0.05"], ["'=2", "0.5"],
                                  ["webinar", ""]]
    trend = dataclasses.replace(found, groups=None, trend=(-0.05, None, 0, 1, 2.5, -3))
    assert [row[-1] for row in cells(trend.csv())] == [
        "win_rate", "-0.05", "", "0", "1", "2.5", "-3"]


def test_a_rejected_row_wider_than_the_header_keeps_every_cell_and_guards_them(services, tmp_path):
    path = tmp_path / "leads.csv"  # "Acme, Inc." not quoted, and two cells past the header's
    path.write_text("external_id,source,name,company\n"
                    "L-2,webinar,Bob,Acme, Inc.,bob-private-note,=cmd|' /C calc'!A0\n")
    summary = import_csv(services, "leads", path)
    assert summary.rejected == 1
    with summary.rejected_file.open(newline="") as f:
        header, row = list(csv.reader(f))
    assert header == ["external_id", "source", "name", "company", "errors"]
    assert row == ["L-2", "webinar", "Bob", "Acme", " Inc.", "bob-private-note",
                   "'=cmd|' /C calc'!A0",  # the row as it was, each cell, then the reason
                   "has 7 cells, the header 4: is a value with a comma in it not quoted?"]
    assert all(inert(cell) for cell in row)

    fixed = tmp_path / "fixed.csv"  # the comma quoted, the stray cells taken out: it imports
    fixed.write_text(summary.rejected_file.read_text().replace(
        "Acme, Inc.,bob-private-note,'=cmd|' /C calc'!A0", '"Acme, Inc."'))
    assert import_csv(services, "leads", fixed).created == 1
    with services.sessions() as s:
        assert get_lead_by_external_id(s, services.team_id, "L-2").company == "Acme, Inc."
