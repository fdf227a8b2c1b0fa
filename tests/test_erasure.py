"""`alignbot erase --email X`: a person's personal data goes, every aggregate stays."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select

from bot.blocks import handoff as cards
from bot.cli import main
from bot.erasure import NotAnEmail, check_email, erase
from bot.handoff.lifecycle import record
from bot.metrics.answers import ask
from bot.platform import outbox
from storage.models import (
    ContentItem,
    ContentUse,
    Lead,
    LeadEvent,
    OutboxMessage,
    Person,
    SurveyAnswer,
)
from tests.slack import TEAM, all_text, click, submit
from tests.test_cli import empty_store  # noqa: F401 - a fixture
from tests.test_handoff import new_lead

ANN = "ann@example.com"
QUESTIONS = ("leads routed last 7 days", "rejection reasons last 7 days",
             "content utilization last 7 days")


@pytest.fixture
def store(app, services, fake_slack, clock):
    """Ann's lead, rejected with a note naming her; Bo's lead; Sam used a content item."""
    new_lead(services, email="Ann@Example.com", crm_owner_email="sam@example.com")
    new_lead(services, external_id="L-2", name="Bo Park", email="bo@example.com")
    ann_card = next(m for m in fake_slack.in_channel("C0HANDOFF1") if "Ann Lee" in m.text)
    click(app, fake_slack, ann_card, cards.REJECT, "U0SALES01", clock.now())
    submit(app, fake_slack, fake_slack.views[-1], "U0SALES01",
           {cards.REASON_BLOCK: "not_icp", cards.NOTE_BLOCK: "Ann Lee has no budget"}, clock.now())
    with services.transaction() as s:
        item = ContentItem(team_id=TEAM, external_id="C-1", title="Deck", created_at=clock.now(),
                           updated_at=clock.now())
        s.add(item)
        s.flush()
        s.add(ContentUse(team_id=TEAM, content_id=item.id, user_email="sam@example.com",
                         used_at=clock.now()))
    services.sender.flush()
    clock.advance(timedelta(hours=1))
    return fake_slack


def answers(services) -> list:
    return [ask(services, q, exact=True).as_json() for q in QUESTIONS]


def row(services, model, *where):
    with services.sessions.begin() as s:
        found = s.scalars(select(model).where(*where)).one()
        s.expunge(found)
        return found


def payloads(services) -> str:
    with services.sessions.begin() as s:
        return " ".join(json.dumps(p) for p in s.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.state.in_(("sent", "superseded")))))


def test_a_lead_loses_who_they_are_and_every_number_stays(services, store):
    before = answers(services)
    report = erase(services, " ANN@example.com ")
    ann = row(services, Lead, Lead.external_id == "L-1")
    assert [ann.email, ann.name, ann.company, ann.title, ann.why, ann.crm_url,
            ann.rejection_note] == [None] * 7
    assert (ann.status, ann.score, ann.rejection_reason, ann.crm_owner_email) == (
        "rejected", 60, "not_icp", "sam@example.com")  # Sam's email is Sam's to erase
    assert row(services, Lead, Lead.external_id == "L-2").name == "Bo Park"
    with services.sessions.begin() as s:
        data = [e.data for e in s.scalars(select(LeadEvent).where(LeadEvent.lead_id == ann.id))]
    assert {"reason": "not_icp"} in data and "Ann Lee" not in json.dumps(data)
    assert "Ann Lee" not in payloads(services) and "Bo Park" in payloads(services)
    assert answers(services) == before
    assert report.leads == [{"external_id": "L-1", "fields": [
        "email", "name", "company", "title", "why", "crm_url", "rejection_note"]}]
    assert report.card_edits == 2 and report.history_scrubbed == 1
    assert report.lines()[0] == ("lead L-1: email, name, company, title, why, crm_url, "
                                 "rejection_note were cleared")
    assert any("the CRM still holds the lead" in n for n in report.notes())


def test_its_cards_in_slack_are_edited_to_drop_the_name(services, store):
    erase(services, ANN)
    services.sender.flush()
    shown = [all_text({"text": m.text, "blocks": m.blocks}) for m in store.messages]
    assert not any("Ann Lee" in t and "Acme" in t for t in shown[:2])  # the channel card, the DM
    assert "L-1" in all_text({"text": store.messages[0].text, "blocks": store.messages[0].blocks})


def test_a_colleague_loses_email_and_name_and_keeps_their_numbers(services, store):
    before = answers(services)
    report = erase(services, "sam@example.com", dry_run=False)
    sam = row(services, Person, Person.slack_id == "U0SALES01")
    assert (sam.email, sam.name, sam.role) == (None, None, "sales")
    assert row(services, Lead, Lead.external_id == "L-1").crm_owner_email is None
    use = row(services, ContentUse)
    assert use.user_email.startswith("erased-")
    assert answers(services) == before
    assert report.people == [{"slack_id": "U0SALES01", "in_config": True,
                              "fields": ["email", "name"]}]
    assert report.owner_email_cleared == {"leads": 1, "deals": 0} and report.content_uses == 1
    assert any("U0SALES01 is listed in [[people]]" in n for n in report.notes())


def test_a_short_name_is_erased_as_a_word_not_inside_others(services, app):
    """Erasing "Ann" once rewrote "Joanna Annabel" too, and on SQLite (whose LIKE ignores
    case) every sent message: "channel" holds "ann"."""
    new_lead(services, external_id="L-3", name="Ann", email="ann.k@example.com")
    new_lead(services, external_id="L-4", name="Joanna Annabel", email="jo@example.com")
    report = erase(services, "ann.k@example.com")
    assert "Joanna Annabel" in payloads(services) and '"channel"' in payloads(services)
    assert row(services, Lead, Lead.external_id == "L-4").name == "Joanna Annabel"
    assert report.messages_scrubbed == 2  # L-3's card in the channel and in its owner's DM


def test_a_name_after_a_line_break_or_within_chinese_text_is_erased(services, app, clock):
    new_lead(services, external_id="L-5", name="王小明", email="wang@example.com")
    other = new_lead(services, external_id="L-6", name="Bo Park", email="bo@example.com")
    with services.transaction() as s:
        outbox.post(s, TEAM, "C0HANDOFF1", {"text": "Owner:\nwang@example.com"}, now=clock.now())
        record(s, s.get(Lead, other), "noted", actor="test", at=clock.now(),
               data={"note": "客户王小明说预算不够"})
    services.sender.flush()
    erase(services, "wang@example.com")
    assert "wang@example.com" not in payloads(services)
    with services.sessions.begin() as s:
        notes = [e.data for e in s.scalars(select(LeadEvent).where(LeadEvent.kind == "noted"))]
    assert notes == [{"note": "客户(erased)说预算不够"}]


def test_a_dry_run_reports_the_same_and_changes_nothing(services, store):
    dry = erase(services, ANN, dry_run=True)
    assert row(services, Lead, Lead.external_id == "L-1").name == "Ann Lee"
    assert "Ann Lee" in payloads(services)
    real = erase(services, ANN)
    assert {**dry.as_json(), "dry_run": False} == real.as_json()
    assert dry.lines()[0].endswith("would be cleared")


def test_nobody_by_that_email(services, store):
    report = erase(services, "nobody@example.com")
    assert report.lines() == ["nothing in the store holds nobody@example.com"]


@pytest.mark.parametrize("bad", ["", "ann", "ann@", "@example.com", "a nn@example.com",
                                 "ann@example", "ann@@example.com"])
def test_malformed_emails_are_refused(bad):
    with pytest.raises(NotAnEmail):
        check_email(bad)
    assert main(["erase", "--email", bad]) == 2  # before any store is opened


def test_survey_answers_name_nobody():
    """Anonymous by construction: no answer refers to a person, so erasure has none to touch."""
    table = inspect(SurveyAnswer).local_table
    assert {fk.column.table.name for fk in table.foreign_keys} == {"survey_runs",
                                                                   "survey_questions"}
    assert not {"person_id", "email", "slack_id", "user_id"} & set(table.columns.keys())


def test_the_command_prints_its_report(empty_store, monkeypatch, capsys, tmp_path):  # noqa: F811
    path = tmp_path / "leads.csv"
    path.write_text("external_id,source,name,email\nL-1,webinar,Ann Lee,ann@example.com\n")
    monkeypatch.setenv("ALIGNBOT_TEAM_ID", "T0CLI")
    assert main(["import", "leads", str(path)]) == 0
    capsys.readouterr()
    assert main(["erase", "--email", ANN, "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] is True and out["leads"][0]["external_id"] == "L-1"
    assert main(["erase", "--email", ANN]) == 0
    assert capsys.readouterr().out.startswith("lead L-1: email, name were cleared")
    with empty_store.begin() as s:
        assert s.scalars(select(Lead.name)).one() is None
    assert check_email(" Ann@Example.COM") == ANN
