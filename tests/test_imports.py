"""CSV import and dropped files: same path as the webhook, rejected rows written beside the input."""

from __future__ import annotations

import csv
import dataclasses
import gc
import io
import json
import os
import pickle
import re
import shutil
import sqlite3
import threading
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, insert, select

from bot.cli import main
from bot.intake import csvfile, imports
from bot.intake.imports import import_csv, import_dropped
from storage import db
from storage.bulk import YOUNG_EVERY
from storage.db import make_engine, wal_checkpoints
from storage.migrate import upgrade
from storage.models import Lead
from tests.shelltools import run

NOW = datetime(2026, 11, 24, 15, tzinfo=UTC)


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
    assert summary.created == 2 and summary.rejected == 2
    assert set(leads(services)) == {"L-1", "L-4"}
    assert leads(services)["L-1"].status == "routed"  # routed like a webhook lead
    with summary.rejected_file.open() as f:
        rejected = list(csv.DictReader(f))
    assert [r["external_id"] for r in rejected] == ["L-2", "L-3"]
    assert "source: is required" in rejected[0]["errors"]
    assert "score: 999 is not between 0 and 100" in rejected[1]["errors"]
    assert rejected[1]["name"] == "Cy"  # the row as it was, to fix and send again


def test_an_imported_lead_awaiting_an_owner_nobody_here_can_be_waits_in_the_queue(
        services, fake_slack, tmp_path):
    """Imported as routed (or accepted) to an email no Slack user has, or to someone
    deactivated, a lead was stored owned by nobody: never carded, never nudged. It waits
    in the handoff channel's queue as a new lead naming that owner does; one whose owner
    is known is imported in its state, as before."""
    from storage.models import LeadEvent, Nudge, Person

    with services.sessions.begin() as s:
        s.scalars(select(Person).where(Person.slack_id == "U0SALES02")).one().deactivated = True
    routed_at, accepted_at = "2026-11-24T13:00:00Z", "2026-11-24T13:30:00Z"
    path = write(tmp_path / "leads.csv",
                 ["external_id", "source", "name", "status", "owner_email", "routed_at",
                  "accepted_at"],
                 [["L-1", "webinar", "Ann", "routed", "nobody@elsewhere.example", routed_at, ""],
                  ["L-2", "webinar", "Bo", "accepted", "nobody@elsewhere.example", routed_at,
                   accepted_at],
                  ["L-3", "webinar", "Cy", "routed", "sue@example.com", routed_at, ""],
                  ["L-4", "webinar", "Di", "new", "nobody@elsewhere.example", "", ""],
                  ["L-5", "webinar", "Ed", "routed", "sam@example.com", routed_at, ""]])
    assert import_csv(services, "leads", path).created == 5
    services.sender.flush()
    stored = leads(services)
    with services.sessions.begin() as s:
        pending = {lead.external_id: sorted(s.scalars(select(Nudge.stage).where(
            Nudge.lead_id == lead.id, Nudge.state == "pending"))) for lead in stored.values()}
        crm = {lead.external_id: s.scalars(select(LeadEvent.data).where(
            LeadEvent.lead_id == lead.id, LeadEvent.kind == "created")).one()
            for lead in stored.values()}
    for waits in ("L-1", "L-2", "L-3", "L-4"):
        lead = stored[waits]
        assert (lead.status, lead.owner_id, lead.routed_at, lead.accepted_at, lead.sla_policy) \
            == ("new", None, None, None, "unassigned"), waits
        assert pending[waits] == ["route", "unassigned"], waits
    cards = {m.text.split(": ")[1].split(" — ")[0]: all_text_of(m)
             for m in fake_slack.in_channel("C0HANDOFF1")}
    assert sorted(cards) == ["Ann", "Bo", "Cy", "Di"]  # Ed's owner has it: no card to take
    assert "nobody@elsewhere.example matches nobody in Slack" in cards["Ann"]
    assert "sue@example.com is deactivated in Slack" in cards["Cy"]
    assert crm["L-1"] == {"crm_status": "routed", "routed_at": "2026-11-24T13:00:00+00:00"}
    assert crm["L-2"] == {"crm_status": "accepted", "routed_at": "2026-11-24T13:00:00+00:00",
                          "accepted_at": "2026-11-24T13:30:00+00:00"}
    ed = stored["L-5"]
    assert (ed.status, ed.routed_at, ed.sla_policy) == (
        "routed", datetime(2026, 11, 24, 13, tzinfo=UTC), "standard")
    assert crm["L-5"] is None and pending["L-5"] == ["card"]


def all_text_of(message):
    from tests.slack import all_text

    return all_text({"text": message.text, "blocks": message.blocks})


def test_an_import_that_routes_stored_leads_hands_them_off(services, fake_slack, tmp_path):
    """A CSV import of updates goes through the same ingest as a webhook: a queued lead it
    routes to an owner is handed off (fresh SLA clock and first nudge, the queue's stages
    gone, its card updated in place, the owner's DM); one it routes to an email nobody here
    has waits on in the queue, saying so; one it gives another owner is reassigned."""
    from storage.models import Nudge, Person

    header = ["external_id", "source", "name", "status", "owner_email"]
    ghost = "nobody@elsewhere.example"
    assert import_csv(services, "leads", write(tmp_path / "a.csv", header, [
        ["L-1", "webinar", "Ann", "", ghost], ["L-2", "webinar", "Bo", "", ghost],
        ["L-3", "webinar", "Cy", "", "sam@example.com"]])).created == 3
    services.sender.flush()
    services.clock.advance(timedelta(minutes=10))
    summary = import_csv(services, "leads", write(tmp_path / "b.csv", header, [
        ["L-1", "webinar", "Ann", "accepted", "sue@example.com"],
        ["L-2", "webinar", "Bo", "routed", "other@elsewhere.example"],
        ["L-3", "webinar", "Cy", "routed", "sue@example.com"]]))
    assert (summary.updated, summary.rejected) == (3, 0)
    now = services.clock.now()
    for _ in range(3):  # a channel takes about a message a second
        services.sender.flush()
        services.clock.advance(timedelta(seconds=1))
    stored = leads(services)
    with services.sessions.begin() as s:
        owners = {lead.external_id: s.get(Person, lead.owner_id).slack_id if lead.owner_id
                  else None for lead in stored.values()}
        pending = {lead.external_id: sorted(s.scalars(select(Nudge.stage).where(
            Nudge.lead_id == lead.id, Nudge.state == "pending"))) for lead in stored.values()}
    ann, bo, cy = stored["L-1"], stored["L-2"], stored["L-3"]
    assert (ann.status, owners["L-1"], ann.routed_at, ann.sla_policy, pending["L-1"]) == (
        "accepted", "U0SALES02", now, "standard", ["card"])
    assert (bo.status, owners["L-2"], bo.sla_policy, pending["L-2"]) == (
        "new", None, "unassigned", ["route", "unassigned"])
    assert (cy.status, owners["L-3"], cy.assigned_at, pending["L-3"]) == (
        "routed", "U0SALES02", now, ["card"])
    assert cy.routed_at < now  # a reassignment: the handoff began when it did
    cards = {m.text.split(": ")[1].split(" — ")[0]: all_text_of(m)
             for m in fake_slack.in_channel("C0HANDOFF1")}
    assert sorted(cards) == ["Ann", "Bo", "Cy"]  # the same three cards, updated in place
    assert "<@U0SALES02>" in cards["Ann"] and "<@U0SALES02>" in cards["Cy"]
    assert "other@elsewhere.example matches nobody in Slack" in cards["Bo"]
    assert sorted(m.text.split(": ")[1].split(" — ")[0]
                  for m in fake_slack.in_channel("U0SALES02")) == ["Ann", "Cy"]


def test_an_import_that_moves_stored_leads_on_updates_their_cards_in_place(
        services, fake_slack, tmp_path):
    """A CRM export saying a lead is contacted (or rejected) left its card in the channel and
    its owner's DM offering Accept / Reject: they show the new state now, as after a click.
    A row that moves nothing edits no card."""
    from storage.models import OutboxMessage

    services.sender.settings = dataclasses.replace(services.sender.settings, burst=1000)
    header = ["external_id", "source", "name", "owner_email", "status", "rejection_reason"]
    assert import_csv(services, "leads", write(tmp_path / "a.csv", header, [
        [f"L-{n}", "webinar", name, "sam@example.com", "", ""]
        for n, name in ((1, "Ann"), (2, "Bo"), (3, "Cy"))])).created == 3
    services.sender.flush()
    services.clock.advance(timedelta(minutes=10))
    summary = import_csv(services, "leads", write(tmp_path / "b.csv", header, [
        ["L-1", "webinar", "Ann", "sam@example.com", "contacted", ""],
        ["L-2", "webinar", "Bo", "sam@example.com", "rejected", "not_icp"],
        ["L-3", "webinar", "Cy", "sam@example.com", "", ""]]))
    assert (summary.updated, summary.unchanged, summary.rejected) == (2, 1, 0)
    services.sender.flush()
    for channel in ("C0HANDOFF1", "U0SALES01"):
        cards = {m.text.split(": ")[1].split(" — ")[0]: all_text_of(m)
                 for m in fake_slack.in_channel(channel)}
        assert sorted(cards) == ["Ann", "Bo", "Cy"], channel  # the same cards, no new one
        assert "First touch logged" in cards["Ann"] and "Accept" not in cards["Ann"], channel
        assert "Rejected" in cards["Bo"] and "Not our ideal customer" in cards["Bo"], channel
        assert "Accept" not in cards["Bo"] and "Accept" in cards["Cy"], channel
    with services.sessions.begin() as s:
        edited = s.scalars(select(OutboxMessage.ref).where(OutboxMessage.method == "chat.update"))
        assert sorted(ref.split(":", 2)[2] for ref in edited) == [
            "channel", "channel", "dm:U0SALES01", "dm:U0SALES01"]


def test_a_customers_file_may_leave_started_at_out_for_those_already_stored(
        services, tmp_path):
    """A churn export (external_id, churned_at) updates the customers it names; a row for a
    customer not yet stored is rejected, saying it needs started_at."""
    from storage.models import Customer

    write(tmp_path / "first.csv", ["external_id", "started_at", "mrr"],
          [["C1", "2026-01-01T00:00:00Z", "99"]])
    assert import_csv(services, "customers", tmp_path / "first.csv").created == 1
    path = write(tmp_path / "churn.csv", ["external_id", "churned_at"],
                 [["C1", "2026-06-01T00:00:00Z"], ["C9", "2026-06-01T00:00:00Z"]])
    summary = import_csv(services, "customers", path)
    assert (summary.created, summary.updated, summary.rejected) == (0, 1, 1)
    with summary.rejected_file.open() as f:
        [rejected] = list(csv.DictReader(f))
    assert rejected["external_id"] == "C9" and rejected["errors"] == \
        "started_at: is required for a new customer (an update may leave it out)"
    with services.sessions.begin() as s:
        [c1] = s.scalars(select(Customer))
        assert (c1.started_at, c1.churned_at, str(c1.mrr)) == (
            datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC), "99.00")


def test_a_deals_file_closing_a_stored_deal_before_it_was_created_rejects_that_row(
        services, tmp_path):
    """A row's closed_at is checked against the stored created_at it leaves out."""
    from storage.models import Deal

    write(tmp_path / "first.csv", ["external_id", "amount", "created_at"],
          [["D1", "100", "2026-03-01T00:00:00Z"], ["D2", "100", "2026-03-01T00:00:00Z"]])
    assert import_csv(services, "deals", tmp_path / "first.csv").created == 2
    path = write(tmp_path / "closed.csv", ["external_id", "closed_at", "outcome"],
                 [["D1", "2026-02-01T00:00:00Z", "won"], ["D2", "2026-04-01T00:00:00Z", "won"]])
    summary = import_csv(services, "deals", path)
    assert (summary.updated, summary.rejected) == (1, 1)
    with summary.rejected_file.open() as f:
        [rejected] = list(csv.DictReader(f))
    assert rejected["external_id"] == "D1" and rejected["errors"] == \
        "closed_at: is before the stored created_at (2026-03-01T00:00:00Z)"
    with services.sessions.begin() as s:
        assert {d.external_id: d.outcome for d in s.scalars(select(Deal))} == {
            "D1": "open", "D2": "won"}


def test_a_deals_file_closing_a_deal_needs_its_closed_at(services, tmp_path):
    """An import is history: a row winning or losing a deal without closed_at is rejected
    saying so (the time of the import is not when it closed), and so is a new closed deal
    without created_at. A deal closed already, sent as closed, is unchanged."""
    from storage.models import Deal

    write(tmp_path / "first.csv", ["external_id", "created_at", "closed_at", "outcome"],
          [["D1", "2026-03-01T00:00:00Z", "", ""],
           ["D2", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", "won"]])
    assert import_csv(services, "deals", tmp_path / "first.csv").created == 2
    path = write(tmp_path / "closed.csv", ["external_id", "created_at", "outcome"],
                 [["D1", "", "lost"], ["D2", "", "won"], ["D3", "2026-03-01T00:00:00Z", "won"],
                  ["D4", "", "won"]])
    summary = import_csv(services, "deals", path)
    assert (summary.created, summary.updated, summary.unchanged, summary.rejected) == (0, 0, 1, 3)
    closing = "needed when outcome is {} (an import is history: its deals did not close when it runs)"
    with summary.rejected_file.open() as f:
        assert {r["external_id"]: r["errors"] for r in csv.DictReader(f)} == {
            "D1": "closed_at: " + closing.format("lost"),
            "D3": "closed_at: " + closing.format("won"),
            "D4": "created_at: needed for a new deal that is won (its sales cycle runs from "
                  "created_at to closed_at); closed_at: " + closing.format("won")}
    with services.sessions.begin() as s:
        assert {d.external_id: d.outcome for d in s.scalars(select(Deal))} == {
            "D1": "open", "D2": "won"}


def test_a_hubspot_export_imports_unchanged(services, tmp_path):
    path = write(tmp_path / "hubspot.csv",
                 ["Record ID", "First Name", "Last Name", "Email", "Company Name", "Job Title",
                  "HubSpot Score", "Original Source", "Create Date", "Some Other Column"],
                 [["101", "Ann", "Lee", "ann@acme.example", "Acme", "CTO", "85", "webinar",
                   "2026-11-23 09:30", "ignored"]])
    summary = import_csv(services, "leads", path, mapping="hubspot")
    assert summary.created == 1, summary.first_rejected
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


def first_look(services, folder):
    """The folder job's first scan: it notes each file's size and time, and imports none
    (one still being written would be imported cut off)."""
    assert import_dropped(services, folder, services.clock.now()) == []
    services.clock.advance(timedelta(minutes=1))


def test_dropped_files_are_imported_once_per_content(services, tmp_path):
    write(tmp_path / "leads-monday.csv", ["external_id", "source"], [["L-1", "webinar"]])
    first_look(services, tmp_path)
    assert len(import_dropped(services, tmp_path, services.clock.now())) == 1
    assert import_dropped(services, tmp_path, services.clock.now()) == []  # same file: skipped
    (tmp_path / "leads-monday-copy.csv").write_bytes((tmp_path / "leads-monday.csv").read_bytes())
    first_look(services, tmp_path)
    assert import_dropped(services, tmp_path, services.clock.now()) == []  # same bytes: skipped
    write(tmp_path / "leads-tuesday.csv", ["external_id", "source"], [["L-2", "ebook"]])
    first_look(services, tmp_path)
    assert [p.name for p, _ in import_dropped(services, tmp_path, services.clock.now())] == [
        "leads-tuesday.csv"]
    assert set(leads(services)) == {"L-1", "L-2"}


def test_a_dropped_file_that_breaks_off_is_imported_up_to_there_once_and_others_still_are(
        services, small_batches, tmp_path, caplog):
    broken_off(many_rows(tmp_path, 150), at=120).rename(tmp_path / "leads-a.csv")
    write(tmp_path / "leads-b.csv", ["external_id", "source"], [["B-1", "webinar"]])
    first_look(services, tmp_path)
    done = dict(import_dropped(services, tmp_path, services.clock.now()))
    assert [p.name for p in done] == ["leads-a.csv", "leads-b.csv"]
    assert done[tmp_path / "leads-a.csv"].stopped.startswith(
        "line 122 is not UTF-8 text (byte 0xff, the line's byte 1)")  # row 120, after the header
    assert "leads-a.csv only up to row" in caplog.text
    assert "B-1" in leads(services) and 0 < len(leads(services)) - 1 < 120
    assert import_dropped(services, tmp_path, services.clock.now()) == []  # not again


def test_a_dropped_file_that_fails_is_tried_again_and_holds_up_no_other(
        services, tmp_path, monkeypatch, caplog):
    write(tmp_path / "leads-a.csv", ["external_id", "source"], [["A-1", "webinar"]])
    write(tmp_path / "leads-b.csv", ["external_id", "source"], [["B-1", "webinar"]])

    def import_csv(services, entity, path, **kwargs):
        if path.name == "leads-a.csv" and not caplog.records:
            raise RuntimeError("the process reading leads-a.csv ended unexpectedly (exit code -9)")
        return real_import_csv(services, entity, path, **kwargs)
    real_import_csv = imports.import_csv
    monkeypatch.setattr(imports, "import_csv", import_csv)

    first_look(services, tmp_path)
    done = {p.name: s.as_dict() for p, s in import_dropped(services, tmp_path, services.clock.now())}
    assert done["leads-a.csv"] == {"failed": "the process reading leads-a.csv ended unexpectedly "
                                             "(exit code -9); tried again in 1 min (try 1 of 6)"}
    assert done["leads-b.csv"]["created"] == 1
    assert "could not import leads-a.csv" in caplog.text
    services.clock.advance(timedelta(minutes=1))
    done = {p.name: s.as_dict() for p, s in import_dropped(services, tmp_path, services.clock.now())}
    assert list(done) == ["leads-a.csv"] and done["leads-a.csv"]["created"] == 1
    assert set(leads(services)) == {"A-1", "B-1"}
    services.clock.advance(timedelta(hours=1))
    assert import_dropped(services, tmp_path, services.clock.now()) == []  # imported: done


def test_cli_import_prints_a_summary(services, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    monkeypatch.setattr(services.clock, "now",  # time passes as the import runs
                        lambda: services.clock.advance(timedelta(seconds=1)))
    path = write(tmp_path / "deals.csv", ["external_id", "amount"], [["D-1", "100"], ["D-2", "x"]])
    assert main(["import", "deals", str(path)]) == 0
    out, err = capsys.readouterr()
    assert '"created": 1' in out and "deals.deals.rejected.csv" in out
    assert re.search(r"2 rows of deals\.csv in [1-9][\d.]* s \([\d.]+ rows/s\): 1 created, 0 updated, "
                     r"0 unchanged, 1 rejected \(reasons in (\S+)\)$", err.strip())[1] == str(
        tmp_path / "deals.deals.rejected.csv")  # where it is, not only its name
    assert main(["import", "deals", str(tmp_path / "missing.csv")]) == 2


def many_rows(tmp_path, n):
    return write(tmp_path / "leads.csv", ["external_id", "source", "name"],
                 [[f"L-{i:03d}", "webinar", f"Person {i}"] for i in range(n)])


def broken_off(path, at):
    """The file with a byte that is not UTF-8 before row `at`: far enough in that the
    rows before it are read first (a name of 100 characters each)."""
    rows = list(csv.reader(path.open()))
    data = write(path, rows[0], [[*r[:2], r[2].ljust(100, ".")] for r in rows[1:]]).read_bytes()
    cut = data.index(f"L-{at:03d}".encode())
    path.write_bytes(data[:cut] + b"\xff" + data[cut:])
    return path


@pytest.fixture
def small_batches(services, monkeypatch):
    """Batches of 10 rows and bursts past 2 cards: an import of dozens of rows behaves as
    one of many thousands does."""
    monkeypatch.setattr(imports, "IMPORT_BATCH", dict.fromkeys(imports.IMPORT_BATCH, 10))
    services.config = dataclasses.replace(
        services.config, handoff=dataclasses.replace(services.config.handoff, burst_limit=2))


def channel_summary(services, fake_slack):
    services.clock.advance(timedelta(seconds=10))  # a summary gathers lines first
    services.sender.flush()
    return fake_slack.in_channel("C0HANDOFF1")


def test_an_import_edits_each_burst_summary_once_at_its_end(
        services, fake_slack, small_batches, tmp_path):
    def between_batches(_rows):  # the sender at work while the import runs
        services.clock.advance(timedelta(seconds=10))
        services.sender.flush()

    summary = import_csv(services, "leads", many_rows(tmp_path, 45), progress=between_batches)
    assert summary.created == 45
    channel = channel_summary(services, fake_slack)
    assert len(channel) == 3  # 2 cards, then one summary: posted early, edited once at the end
    assert channel[-1].text == "43 new leads arrived at once" and channel[-1].updates == 1


def test_an_import_that_fails_midway_keeps_and_shows_what_it_stored(
        services, fake_slack, small_batches, tmp_path, monkeypatch):
    staged = []

    def stage(*args, **kwargs):
        if len(staged) == 3:
            raise RuntimeError("database went away")
        staged.append(gc.isenabled())
        return real_stage(*args, **kwargs)
    real_stage = imports.stage
    monkeypatch.setattr(imports, "stage", stage)
    with pytest.raises(RuntimeError, match="went away"):
        import_csv(services, "leads", many_rows(tmp_path, 45))
    assert len(leads(services)) == 30  # the three batches before the failure
    channel = channel_summary(services, fake_slack)
    assert channel[-1].text == "28 new leads arrived at once"  # all but the 2 cards
    assert staged == [False] * 3 and gc.isenabled()  # paused for the batches, not after them


def test_a_long_import_still_collects_the_garbage_its_batches_leave(
        services, small_batches, tmp_path, monkeypatch):
    class Cycle:
        def __init__(self):
            self.me = self
    left: list[weakref.ref] = []

    def stage(*args, **kwargs):
        if len(left) == YOUNG_EVERY + 1:  # still importing, the collector still paused
            assert not gc.isenabled() and left[0]() is None  # the first batch's is gone
        left.append(weakref.ref(Cycle()))  # garbage only a collection can free
        return real_stage(*args, **kwargs)
    real_stage = imports.stage
    monkeypatch.setattr(imports, "stage", stage)
    import_csv(services, "leads", many_rows(tmp_path, 10 * (YOUNG_EVERY + 2)))
    assert len(left) == YOUNG_EVERY + 2


def test_a_batch_that_fails_to_commit_is_reported_though_reading_fails_too(
        services, small_batches, tmp_path, monkeypatch, caplog):
    commits = []

    def commit(self, **kwargs):
        commits.append(1)
        if len(commits) == 2:
            self.session.close()
            raise RuntimeError("disk full")
        return real_commit(self, **kwargs)
    real_commit = imports.Staged.commit
    monkeypatch.setattr(imports.Staged, "commit", commit)

    path = write(tmp_path / "leads.csv", ["external_id", "source", "name"],  # reading stops
                 [[f"L-{i:03d}", "webinar", "x" * (200_000 if i == 20 else 1)]  # batch 3's first
                  for i in range(45)])
    with pytest.raises(imports.ImportStopped, match="line 22 has a field longer than 131,072"):
        import_csv(services, "leads", path)
    assert "rows 11 to 20 were not stored: disk full" in caplog.text
    assert len(leads(services)) == 10


def test_a_summary_that_cannot_be_shown_does_not_fail_the_import(
        services, small_batches, tmp_path, monkeypatch, caplog):
    def show_bursts(*args):
        raise RuntimeError("database is locked")
    monkeypatch.setattr(imports, "show_bursts", show_bursts)
    summary = import_csv(services, "leads", many_rows(tmp_path, 45))
    assert summary.created == 45 and len(leads(services)) == 45
    assert "summaries in Slack could not be brought up to date" in caplog.text


def test_a_wal_checkpoint_puts_what_was_committed_into_the_database_file(tmp_path):
    path = tmp_path / "a.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with wal_checkpoints(engine) as checkpoint:
        with engine.begin() as conn:
            conn.execute(insert(Lead), [{"team_id": "T1", "external_id": f"L-{i}", "source": "x",
                                         "created_at": NOW, "updated_at": NOW} for i in range(50)])
        checkpoint()
        shutil.copy(path, tmp_path / "alone.db")  # the database file without its log
    engine.dispose()
    with sqlite3.connect(tmp_path / "alone.db") as alone:
        assert alone.execute("SELECT count(*) FROM leads").fetchone() == (50,)


def test_cli_import_of_a_file_broken_midway_says_how_far_it_got(
        services, small_batches, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    path = broken_off(write(tmp_path / "leads.csv", ["external_id", "source", "name"],
                            [[f"L-{i:03d}", "" if i % 7 == 0 else "webinar", f"Person {i}"]
                             for i in range(150)]), at=120)
    assert main(["import", "leads", str(path)]) == 2
    out, err = capsys.readouterr()
    stored, read = len(leads(services)), json.loads(out)["rows"]
    assert "line 122 is not UTF-8 text" in err and f"nothing after row {read:,} is imported" in err
    assert 0 < read < 120  # the rows before the bad byte, as far as they could be decoded
    with (tmp_path / "leads.leads.rejected.csv").open() as f:  # the bad rows before it, kept
        rejected = [r["external_id"] for r in csv.DictReader(f)]
    assert rejected == [f"L-{i:03d}" for i in range(0, read, 7)]
    assert stored + len(rejected) == read


def test_a_file_that_is_not_utf8_says_on_which_line_and_what_to_do(
        services, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    path = tmp_path / "leads.csv"  # UTF-8 until a spreadsheet's Windows "é" on line 3
    path.write_bytes("external_id,source,name\nL-1,webinar,José\n".encode()
                     + b"L-2,webinar,Andr\xe9\nL-3,webinar,Ann\n")
    assert main(["import", "leads", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        'alignbot: line 3 is not UTF-8 text (byte 0xe9, the line\'s byte 17); save the file as '
        '"CSV UTF-8" and import it again', "alignbot: nothing is imported"]
    assert leads(services) == {}


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # a write-ahead log
def test_a_checkpoint_after_each_batch_keeps_the_database_file_current(
        services, small_batches, tmp_path):
    import_csv(services, "leads", many_rows(tmp_path, 45))
    shutil.copy(services.engine.url.database, tmp_path / "alone.db")  # without its log
    with sqlite3.connect(tmp_path / "alone.db") as alone:
        assert alone.execute("SELECT count(*) FROM leads").fetchone() == (45,)



@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # one writer at a time
def test_a_write_waiting_behind_an_import_goes_in_between_its_batches(
        services, small_batches, tmp_path, monkeypatch):
    """A click during a long import waits for the batch being written, not for the file.
    The pauses are storage.db's, told apart by thread and run on events, not on time: the
    click's between its tries to begin, the import's between its batches (`make_way`)."""
    waiting, gap, clicked, seen = threading.Event(), threading.Event(), threading.Event(), []

    def pause(seconds):
        if threading.current_thread() is clicker:  # the click found the lock taken
            waiting.set()
            gap.wait(timeout=10)  # it tries again once the import makes way
        elif clicker.is_alive():  # the import makes way: the click goes first
            gap.set()
            clicked.wait(timeout=10)

    def click():  # another writer: how many leads were stored when it got in
        with services.sessions.begin() as s:
            seen.append(s.scalar(select(func.count()).select_from(Lead)))
        clicked.set()
    clicker = threading.Thread(target=click)

    def stage(*args, **kwargs):
        staged = real_stage(*args, **kwargs)  # the import now holds the lock
        if not clicker.is_alive() and not seen:
            clicker.start()
            assert waiting.wait(timeout=10)
        return staged
    real_stage = imports.stage
    monkeypatch.setattr(imports, "stage", stage)
    monkeypatch.setattr(db, "time", SimpleNamespace(sleep=pause))
    summary = import_csv(services, "leads", many_rows(tmp_path, 30))
    clicker.join()
    assert seen == [10]  # in right after the first batch
    assert summary.created == 30 and len(leads(services)) == 30


def test_the_reader_process_ends_with_the_import_that_stops_reading(tmp_path):
    path = many_rows(tmp_path, 50_000)  # more than the pipe holds: the reader waits to send
    read = []

    def import_that_stops():
        with csvfile.Reader(path, "leads", None, UTC, 1000) as reader:
            read.append(next(iter(reader)))
    importing = threading.Thread(target=import_that_stops, daemon=True)
    importing.start()
    importing.join(timeout=30)
    assert not importing.is_alive()  # it did not wait on a reader still sending
    rows, checked = read[0]
    assert [r["external_id"] for r in rows[:2]] == ["L-000", "L-001"]
    assert len(checked.parsed) == 1000 and not checked.rejected


def test_a_reader_process_that_dies_mid_file_is_an_error_that_says_so(tmp_path):
    with csvfile.Reader(many_rows(tmp_path, 50_000), "leads", None, UTC, 1000) as reader:
        batches = iter(reader)
        next(batches)  # it is sending the rest: more than the pipe holds
        reader._process.kill()
        with pytest.raises(RuntimeError, match=r"reading leads.csv ended unexpectedly "
                                               r"\(exit code -9\)"):
            list(batches)


def test_a_batch_cut_off_by_the_reader_dying_is_the_same_error():
    sent = pickle.dumps(("batch", ([{"external_id": f"L-{i}"} for i in range(1000)], None)),
                        protocol=pickle.HIGHEST_PROTOCOL)
    for cut in (0, 10, len(sent) // 2, len(sent) - 1):  # wherever the pipe's content ends
        reader = object.__new__(csvfile.Reader)
        reader.path = Path("leads.csv")
        reader._process = SimpleNamespace(stdout=io.BytesIO(sent[:cut]), wait=lambda: -9)
        with pytest.raises(RuntimeError, match=r"ended unexpectedly \(exit code -9\)"):
            reader._receive()


class _Unpicklable(ValueError):
    def __init__(self, row, why):
        super().__init__(f"row {row}: {why}")


def test_a_reader_error_that_cannot_cross_to_the_import_still_stops_it_and_says_why():
    portable = csvfile._portable(_Unpicklable(7, "bad"))
    assert type(portable) is ValueError  # an import stops on it, as on the error itself
    assert str(portable) == "_Unpicklable: row 7: bad"
    error = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    assert csvfile._portable(error) is error  # those that cross, cross as they are


def test_the_reader_process_runs_this_checkout_of_bot():
    """Not an installed copy (an editable install of another checkout): its checks are these."""
    assert Path(csvfile.__file__).resolve() == csvfile.ROOT / "bot" / "intake" / "csvfile.py"


# ------------------------------------------------------------------ rejected rows, at any size


def test_rejected_rows_go_to_their_file_as_batches_complete_and_the_summary_shows_ten(
        services, small_batches, tmp_path):
    path = write(tmp_path / "leads.csv", ["external_id", "source", "score"],
                 [[f"L-{i:03d}", "webinar", "999"] for i in range(45)])
    in_file = []

    def progress(_rows):  # after each batch: its rejected rows are in the file already
        with (tmp_path / "leads.leads.rejected.csv").open() as f:
            in_file.append(len(list(csv.DictReader(f))))
    summary = import_csv(services, "leads", path, progress=progress).as_dict()
    assert in_file == [10, 20, 30, 40, 45]
    assert (summary["rows"], summary["created"], summary["rejected"]) == (45, 0, 45)
    assert [r["row"] for r in summary["first_rejected"]] == list(range(1, 11))
    assert summary["first_rejected"][0] == {"row": 1, "external_id": "L-000",
                                            "errors": ["score: 999 is not between 0 and 100"]}
    assert summary["rejected_file"] == str(tmp_path / "leads.leads.rejected.csv")


def test_a_field_over_128_kb_says_its_line_and_the_rows_before_it_are_kept(
        services, small_batches, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    path = write(tmp_path / "leads.csv", ["external_id", "source", "name"],
                 [[f"L-{i:03d}", "webinar", "x" * (200_000 if i == 25 else 1)] for i in range(45)])
    assert main(["import", "leads", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines()[0] == (
        "alignbot: line 27 has a field longer than 131,072 characters (128 KB), the most one "
        "cell may hold; is a quote left open before it?")
    assert json.loads(out)["rows"] == 25 and sorted(leads(services)) == [
        f"L-{i:03d}" for i in range(25)]  # the rows of its batch before it too


# ------------------------------------------------------------------ the file as a whole


def cli_import(services, monkeypatch, capsys, *args):
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    code = main(["import", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_a_semicolon_separated_file_is_one_error_up_front(services, tmp_path, monkeypatch, capsys):
    path = tmp_path / "leads.csv"
    path.write_text("id;full name;org\n1;Ann Lee;Acme\n2;Bo Chen;Beta\n")
    code, out, err = cli_import(services, monkeypatch, capsys, "leads", path)
    assert code == 2 and out.strip() == ""
    assert err[0].startswith("alignbot: leads.csv's columns are id;full name;org — missing "
                             "external_id, source (leads need external_id, source and may have "
                             "email, name, ")
    assert err[0].endswith("; is it comma-separated? Its header has ';' in it")
    assert err[1:] == ["alignbot: nothing is imported"]
    assert not (tmp_path / "leads.leads.rejected.csv").exists() and leads(services) == {}


@pytest.mark.parametrize(("header", "mapping", "why"), [
    ("external_id,name", None, "columns are external_id, name — missing source (leads need"),
    ("external_id,source,email,Email,email", None, "— email more than once; unknown Email ("),
    ("external_id,source,colour", None, "— unknown colour (leads need external_id, source and"),
    (" external_id , source,colour ", None, "are external_id, source, colour — unknown colour ("),
    ("Record ID,Email,Email", "hubspot", "— Email more than once; missing Original Source (its "
                                         "mapping needs Record ID, Original Source)"),
])
def test_a_header_that_cannot_work_is_refused_before_any_row(services, tmp_path, header, mapping,
                                                             why):
    path = tmp_path / "leads.csv"
    path.write_text(f"{header}\nL-1,webinar,Ann,x,y\n")
    with pytest.raises(imports.ImportStopped) as stopped:
        import_csv(services, "leads", path, mapping=mapping)
    assert why in str(stopped.value) and stopped.value.summary.rows == 0
    assert leads(services) == {}


def test_columns_a_mapping_does_not_read_may_repeat_and_a_rejected_files_reasons_are_ignored(
        services, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Record ID,Original Source,Notes,Notes\n101,webinar,a,b\n")
    assert import_csv(services, "leads", path, mapping="hubspot").created == 1
    path.write_text("external_id,source,errors\nL-1,webinar,score: 999 is not between 0 and 100\n")
    assert import_csv(services, "leads", path).created == 1  # a rejected file, fixed


@pytest.mark.parametrize(("content", "why"), [
    (b"", "leads.csv is empty: no header, no rows"),
    (b"\xef\xbb\xbf", "leads.csv is empty: no header, no rows"),  # a spreadsheet's UTF-8 mark
    (b"\n\nexternal_id,source\n", "leads.csv has no header: its first line names no columns"),
    (b"external_id,source\n", "leads.csv has a header but no rows: nothing to import"),
    (b"external_id,source\n\n\n", "leads.csv has a header but no rows: nothing to import"),
])
def test_an_empty_file_says_so(services, tmp_path, monkeypatch, capsys, content, why):
    (tmp_path / "leads.csv").write_bytes(content)
    code, _, err = cli_import(services, monkeypatch, capsys, "leads", tmp_path / "leads.csv")
    assert code == 2 and err == [f"alignbot: {why}", "alignbot: nothing is imported"]


def test_a_missing_file_or_a_folder_is_one_clear_line(services, shell, tmp_path, monkeypatch,
                                                      capsys):
    missing, folder = tmp_path / "nope.csv", tmp_path / "exports"
    folder.mkdir()
    assert cli_import(services, monkeypatch, capsys, "leads", missing) == (
        2, "", [f"alignbot: no file {missing}"])
    assert cli_import(services, monkeypatch, capsys, "leads", folder) == (
        2, "", [f"alignbot: {folder} is a folder, not a CSV file"])
    assert f"no file {missing}" in run(shell, f"import leads {missing}")
    out = run(shell, f"import leads {folder}")
    assert f"{folder} is a folder, not a CSV file" in out and "Errno" not in out


def test_each_entity_imported_from_one_file_has_its_own_file_of_reasons_and_no_stale_one(
        services, tmp_path, monkeypatch, capsys):
    path = write(tmp_path / "export.csv", ["external_id", "source", "name"],
                 [["X-1", "webinar", "Ann"], ["X-2", "", "Bo"]])
    as_leads = import_csv(services, "leads", path)  # X-2 has no source
    as_deals = import_csv(services, "deals", path)  # `webinar` is no deal source
    assert as_leads.rejected_file == tmp_path / "export.leads.rejected.csv"
    assert as_deals.rejected_file == tmp_path / "export.deals.rejected.csv"
    assert "source: is required" in as_leads.rejected_file.read_text()
    assert "'webinar' is not one of marketing" in as_deals.rejected_file.read_text()
    write(path, ["external_id", "source", "name"], [["X-2", "ebook", "Bo"]])  # fixed
    code, out, err = cli_import(services, monkeypatch, capsys, "leads", path)
    assert code == 0 and json.loads(out)["rejected_file"] is None and "reasons in" not in err[0]
    assert not as_leads.rejected_file.exists()  # its reasons were the last import's, not this one's
    assert as_deals.rejected_file.exists()


# ------------------------------------------------------------------ dropped files that fail


def test_a_dropped_file_that_cannot_be_imported_as_it_is_is_reported_once(
        services, tmp_path, caplog):
    (tmp_path / "leads-a.csv").write_text("id;name\n1;Ann\n")
    write(tmp_path / "leads-b.csv", ["external_id", "source", "score"], [["B-1", "webinar", "999"]])
    (tmp_path / "leads-c.csv").write_text("")
    first_look(services, tmp_path)
    done = {p.name: s.as_dict() for p, s in import_dropped(services, tmp_path, services.clock.now())}
    assert done["leads-a.csv"]["stopped"].startswith("leads-a.csv's columns are id;name — missing")
    assert done["leads-b.csv"]["rejected"] == 1 and done["leads-b.csv"]["first_rejected"][0][
        "errors"] == ["score: 999 is not between 0 and 100"]
    assert done["leads-c.csv"]["stopped"] == "leads-c.csv is empty: no header, no rows"
    assert "could not import leads-a.csv" in caplog.text
    assert "leads-b.csv: every row is rejected; the reasons are in" in caplog.text
    for _ in range(3):  # not again, ever: it would fail the same way
        services.clock.advance(timedelta(minutes=5))
        assert import_dropped(services, tmp_path, services.clock.now()) == []


def test_a_dropped_file_that_keeps_failing_is_tried_a_few_times_then_given_up(
        services, tmp_path, monkeypatch):
    write(tmp_path / "leads-a.csv", ["external_id", "source"], [["A-1", "webinar"]])
    tries = []

    def import_csv(services, entity, path, **kwargs):
        tries.append(services.clock.now())
        raise RuntimeError("database is locked")
    monkeypatch.setattr(imports, "import_csv", import_csv)
    first_look(services, tmp_path)
    start, reports = services.clock.now(), []
    for _ in range(180):  # the job, every minute for three hours
        reports += [s.as_dict() for _, s in import_dropped(services, tmp_path, services.clock.now())]
        services.clock.advance(timedelta(minutes=1))
    assert [int((t - start).total_seconds() // 60) for t in tries] == [0, 1, 3, 7, 15, 31]
    assert reports[0] == {"failed": "database is locked; tried again in 1 min (try 1 of 6)"}
    assert reports[-1] == {"failed": "database is locked; given up after 6 tries: once the cause "
                                     "is fixed, import it with `alignbot import leads`"}


def test_a_folder_named_like_a_csv_file_holds_up_no_dropped_file(services, tmp_path):
    (tmp_path / "leads-old.csv").mkdir()
    write(tmp_path / "leads-new.csv", ["external_id", "source"], [["N-1", "webinar"]])
    first_look(services, tmp_path)
    done = import_dropped(services, tmp_path, services.clock.now())
    assert [p.name for p, _ in done] == ["leads-new.csv"] and "N-1" in leads(services)


def test_rejected_rows_that_cannot_be_written_stop_the_import_before_them(
        services, small_batches, tmp_path, monkeypatch, capsys):
    path = write(tmp_path / "leads.csv", ["external_id", "source", "score"],
                 [[f"L-{i:03d}", "webinar", "999" if i == 15 else "50"] for i in range(30)])
    (tmp_path / "leads.leads.rejected.csv").mkdir()  # in the way, as a read-only folder would be
    code, out, err = cli_import(services, monkeypatch, capsys, "leads", path)
    assert code == 2 and err[0] == (f"alignbot: cannot write the rejected rows to "
                                    f"{tmp_path / 'leads.leads.rejected.csv'}: Is a directory")
    summary = json.loads(out)  # up to the batch with the rejected row, which is stored
    assert (summary["rows"], summary["created"], summary["rejected"]) == (20, 19, 1)
    assert summary["first_rejected"][0]["row"] == 16 and summary["rejected_file"] is None


def test_a_row_with_more_cells_than_the_header_is_rejected_not_shifted(services, tmp_path):
    path = tmp_path / "leads.csv"  # "Acme, Inc" not quoted: its score would be " Inc"...
    path.write_text("external_id,source,company,name\nL-1,webinar,Acme, Inc,Ann\n"
                    "L-2,webinar,Beta,Bo\n")
    summary = import_csv(services, "leads", path)
    assert (summary.created, summary.rejected) == (1, 1) and set(leads(services)) == {"L-2"}
    assert summary.first_rejected[0].errors == [
        "has 5 cells, the header 4: is a value with a comma in it not quoted?"]
    with summary.rejected_file.open() as f:
        assert [r["external_id"] for r in csv.DictReader(f)] == ["L-1"]


def test_a_short_row_of_a_crm_export_is_read_with_its_missing_cells_empty(services, tmp_path):
    path = tmp_path / "export.csv"  # the last row stops after its source: no names, no date
    path.write_text("Record ID,Original Source,First Name,Last Name,Create Date\n"
                    "101,webinar,Ann,Lee,2026-11-23 09:30\n102,ebook\n")
    summary = import_csv(services, "leads", path, mapping="hubspot")
    assert (summary.created, summary.rejected) == (2, 0)
    assert leads(services)["102"].source == "ebook" and leads(services)["102"].name is None


def test_a_row_the_database_refuses_costs_only_itself(services, tmp_path, monkeypatch):
    """A value the checks let through and the database refuses: its batch is stored again in
    halves (as a webhook's is), down to that row, which is rejected with the reason."""
    from sqlalchemy.exc import DataError

    from bot.intake import batches

    real = batches.execute

    def refusing(session, statements):
        if any("Poison" in str(params) for _, params in statements):
            raise DataError("INSERT INTO leads ...", None, ValueError("value out of range"))
        return real(session, statements)

    monkeypatch.setattr(batches, "execute", refusing)
    rows = [[f"L-{n}", "webinar", "50", "Poison" if n == 7 else f"Lead {n}"] for n in range(20)]
    path = write(tmp_path / "leads.csv", ["external_id", "source", "score", "name"], rows)
    summary = import_csv(services, "leads", path)
    assert (summary.rows, summary.created, summary.rejected) == (20, 19, 1)
    [rejection] = summary.first_rejected
    assert rejection.external_id == "L-7" and "database refused it" in rejection.errors[0]
    assert set(leads(services)) == {f"L-{n}" for n in range(20) if n != 7}
    with summary.rejected_file.open() as f:
        assert [row["external_id"] for row in csv.DictReader(f)] == ["L-7"]


def test_the_folder_job_is_due_only_while_the_folder_holds_csv_files(services, tmp_path,
                                                                     monkeypatch):
    """The shell's `tick` skips the folder job's idle minutes, never a dropped file's."""
    from dataclasses import replace

    from bot.intake.feature import folder_due
    from bot.platform.config import Imports

    assert folder_due(services) is None  # no folder configured
    monkeypatch.setattr(services, "config", replace(services.config,
                                                    imports=Imports(folder=str(tmp_path))))
    assert folder_due(services) is None  # an empty folder
    write(tmp_path / "leads-monday.csv", ["external_id", "source"], [["L-1", "webinar"]])
    assert folder_due(services) == services.clock.now()


# ------------------------------------------------------------------ what the folder holds


def scans(services, folder, n=3):
    """The folder job, a minute apart: what each run imported."""
    done = []
    for _ in range(n):
        done += [(p.name, s) for p, s in import_dropped(services, folder, services.clock.now())]
        services.clock.advance(timedelta(minutes=1))
    return done


def two_workspaces(tmp_path):
    """Workspace B's folder holding a lead and a rejected row; workspace A's, empty."""
    mine, theirs = tmp_path / "T0AAAA", tmp_path / "T0BBBB"
    mine.mkdir()
    theirs.mkdir()
    write(theirs / "leads.csv", ["external_id", "source", "score"],
          [["B-1", "webinar", "50"], ["B-2", "webinar", "999"]])
    return mine, theirs


def test_a_link_in_the_folder_is_not_followed_and_the_log_says_so(services, tmp_path, caplog):
    mine, _ = two_workspaces(tmp_path)
    (mine / "leads-x.csv").symlink_to("../T0BBBB/leads.csv")
    (mine / "leads-y.csv").symlink_to("/etc/passwd")
    assert scans(services, mine) == [] and leads(services) == {}
    assert sorted(p.name for p in mine.iterdir()) == ["leads-x.csv", "leads-y.csv"]  # no rejected file
    for name in ("leads-x.csv", "leads-y.csv"):  # once, not at every scan
        assert caplog.text.count(f"{name} is not a regular file (a symbolic link): not imported") == 1


def test_a_dropped_file_swapped_for_a_link_after_it_was_checked_is_refused(
        services, tmp_path, monkeypatch, caplog):
    mine, _ = two_workspaces(tmp_path)
    write(mine / "leads-x.csv", ["external_id", "source"], [["A-1", "webinar"]])

    def import_csv(services, entity, path, **kwargs):  # swapped once the scan has looked
        path.unlink()
        path.symlink_to("../T0BBBB/leads.csv")
        return real_import_csv(services, entity, path, **kwargs)
    real_import_csv = imports.import_csv
    monkeypatch.setattr(imports, "import_csv", import_csv)
    [(name, summary)] = scans(services, mine)  # then the link is seen, and skipped
    assert name == "leads-x.csv" and summary.failed.startswith(
        f"cannot read {mine / 'leads-x.csv'}: Too many levels of symbolic links")
    assert leads(services) == {} and not (mine / "leads-x.leads.rejected.csv").exists()
    assert "leads-x.csv is not a regular file (a symbolic link): not imported" in caplog.text


def test_a_file_still_being_written_is_imported_once_it_stops_changing(services, tmp_path):
    path = tmp_path / "leads-slow.csv"  # a slow copy, cut off mid-row: L-1's score is 95
    path.write_text("external_id,source,score\nL-1,webinar,9")
    assert scans(services, tmp_path, 1) == []  # seen: it may still be growing
    with path.open("a") as f:  # the copy goes on, and ends
        f.write("5\nL-2,ebook,40\n")
    assert scans(services, tmp_path, 1) == [] and leads(services) == {}  # it changed since
    [(name, summary)] = scans(services, tmp_path, 3)  # unchanged since the last scan: once
    assert (name, summary.created, summary.rejected) == ("leads-slow.csv", 2, 0)
    assert leads(services)["L-1"].score == 95


def test_a_file_renamed_into_place_is_imported_whole(services, tmp_path):
    part = write(tmp_path / "leads.csv.part", ["external_id", "source"], [["L-1", "webinar"]])
    assert scans(services, tmp_path, 2) == []  # not a name the folder job reads
    part.rename(tmp_path / "leads.csv")
    assert scans(services, tmp_path, 1) == []  # seen
    assert [name for name, _ in scans(services, tmp_path, 1)] == ["leads.csv"]
    assert set(leads(services)) == {"L-1"}


def test_a_settled_file_is_read_once_and_a_rewrite_with_the_same_size_and_time_is_new(
        services, tmp_path, monkeypatch):
    """The folder job reads a file's content to know it once, not at every minute's look;
    a fix of the same size copied back with its old time (`cp -p`, `rsync -t`) is still
    seen, by the change time no tool sets."""
    path = write(tmp_path / "leads.csv", ["external_id", "source"], [["L-1", "webinar"]])
    opened = []
    real_open = csvfile.open_file
    monkeypatch.setattr(csvfile, "open_file",
                        lambda p, *a, **kw: opened.append(p.name) or real_open(p, *a, **kw))
    assert [name for name, _ in scans(services, tmp_path, 5)] == ["leads.csv"]
    assert opened == ["leads.csv", "leads.csv"]  # its digest, then its import: once each
    times = path.stat()
    path.write_bytes(path.read_bytes().replace(b"L-1", b"L-2"))
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert [name for name, _ in scans(services, tmp_path, 3)] == ["leads.csv"]
    assert set(leads(services)) == {"L-1", "L-2"}


def test_a_file_that_never_stops_changing_is_said_to_once(services, tmp_path, caplog):
    path = tmp_path / "leads-log.csv"
    path.write_text("external_id,source\n")
    for n in range(imports.CHANGING_LOOKS + 5):
        with path.open("a") as f:
            f.write(f"L-{n},webinar\n")
        assert scans(services, tmp_path, 1) == []
    assert caplog.text.count(f"leads-log.csv has changed at each of the last "
                             f"{imports.CHANGING_LOOKS} looks") == 1
    assert [name for name, _ in scans(services, tmp_path, 2)] == ["leads-log.csv"]  # it stopped
