"""Looking at leads and being away: /align lead, /align leads, /align away|back, alignbot lead --json."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.blocks import handoff as cards
from bot.cli import main
from bot.handoff.leads import lead_json
from storage.models import Lead, Person
from tests.shelltools import run
from tests.slack import all_text, click, reply, slash
from tests.test_handoff import LONG_COMPANY, LONG_NAME, LONG_WHY, new_lead


def test_lead_shows_its_card_and_history(app, services, clock):
    new_lead(services)
    shown = all_text(reply(slash(app, "lead L-1", clock.now())))
    assert "Ann Lee" in shown and "History" in shown
    assert "created (webhook)" in shown and "routed (system)" in shown


def test_lead_with_a_long_non_latin_why_answers_within_slacks_limits(app, services, clock):
    new_lead(services, why=LONG_WHY, name=LONG_NAME, company=LONG_COMPANY)
    shown = all_text(reply(slash(app, "lead L-1", clock.now())))  # reply checks the limits
    assert f"*Why it qualified:* {LONG_WHY[:500]}" in shown and "History" in shown
    why = next(line for line in shown.split("\n") if line.startswith("*Why it qualified"))
    assert why.endswith("…")


def test_unknown_lead_says_what_ids_look_like(app, clock):
    assert "No lead `L-404`" in all_text(reply(slash(app, "lead L-404", clock.now())))
    assert "Which lead?" in all_text(reply(slash(app, "lead", clock.now())))


def test_leads_mine_lists_only_my_leads(app, services, clock):
    new_lead(services, external_id="L-1")
    new_lead(services, external_id="L-2")  # round-robin: U0SALES02
    mine = all_text(reply(slash(app, "leads", clock.now(), user="U0SALES01")))
    assert "L-1" in mine and "L-2" not in mine
    assert "Nothing here" in all_text(reply(slash(app, "leads mine", clock.now(), user="U0MKTG01")))


def test_overdue_lists_breaches_oldest_first_across_pages(app, services, clock):
    for i in range(18):
        new_lead(services, external_id=f"L-{i:02d}", score=90)  # hot: 15 wall minutes
        clock.advance(timedelta(minutes=1))
    clock.advance(timedelta(hours=1))
    first = reply(slash(app, "leads overdue", clock.now()))
    text = all_text(first)
    assert "Overdue leads (18)" in text and "Page 1 of 2" in text
    assert text.index("L-00") < text.index("L-01") < text.index("L-14")
    assert "L-15" not in text
    second = all_text(reply(slash(app, "leads overdue 2", clock.now())))
    assert "L-15" in second and "L-17" in second and "Page" not in second
    assert len(first["blocks"]) <= 50


def test_away_skips_me_until_i_am_back(app, services, clock):
    body = all_text(reply(slash(app, "away until 2026-12-01", clock.now(), user="U0SALES01")))
    assert "You are away until" in body
    for i in range(3):
        new_lead(services, external_id=f"L-{i}")
    with services.sessions.begin() as s:
        owners = {s.get(Person, lead.owner_id).slack_id for lead in s.scalars(select(Lead))}
    assert owners == {"U0SALES02"}
    reply(slash(app, "back", clock.now(), user="U0SALES01"))
    new_lead(services, external_id="L-9")
    with services.sessions.begin() as s:
        lead = s.scalars(select(Lead).where(Lead.external_id == "L-9")).one()
        assert s.get(Person, lead.owner_id).slack_id == "U0SALES01"


def test_away_explains_bad_dates(app, clock):
    assert "Say the day" in all_text(reply(slash(app, "away until", clock.now())))
    unread = all_text(reply(slash(app, "away until someday", clock.now())))
    assert "couldn't read the day “someday”" in unread and "next monday" in unread
    assert "not a date" in all_text(reply(slash(app, "away until 2026-02-30", clock.now())))
    assert "not in the future" in all_text(reply(slash(app, "away until 2026-01-01", clock.now())))
    assert "not in the future" in all_text(reply(slash(app, "away until today", clock.now())))


@pytest.mark.parametrize(("words", "back"), [  # said on Tuesday, November 24
    ("until tomorrow", "2026-11-25"), ("until friday", "2026-11-27"),
    ("until next monday", "2026-11-30"), ("till Tuesday", "2026-12-01"),
    ("until next week", "2026-11-30"), ("until 2026-12-24", "2026-12-24"),
    ("until dec 24", "2026-12-24"), ("until 4th January", "2027-01-04"),
])
def test_away_takes_the_grammars_day_words(app, services, clock, words, back):
    body = all_text(reply(slash(app, f"away {words}", clock.now(), user="U0SALES01")))
    assert "You are away until" in body
    with services.sessions.begin() as s:
        me = s.scalars(select(Person).where(Person.slack_id == "U0SALES01")).one()
        assert me.away_until.astimezone(services.config.workspace.tz).isoformat() == \
            f"{back}T00:00:00-05:00"



@pytest.mark.parametrize(("zone", "hours", "words", "back", "shown"), [
    # Tuesday 06:00 in Los Angeles: its Friday starts three hours after New York's
    ("America/Los_Angeles", 0, "until friday", "2026-11-27T00:00:00-08:00", "Friday, November 27"),
    # already Wednesday 01:00 in Tokyo (Tuesday 11:00 in New York): tomorrow is Thursday
    ("Asia/Tokyo", 2, "until tomorrow", "2026-11-26T00:00:00+09:00", "Thursday, November 26"),
    # a name newer than this machine's zone data: the workspace's day
    ("America/Nowhere", 0, "until friday", "2026-11-27T00:00:00-05:00", "Friday, November 27"),
])
def test_away_takes_the_day_in_my_own_timezone(app, services, clock, zone, hours, words, back,
                                               shown):
    """A rep far from the workspace says their own day, and is told that day back."""
    with services.sessions.begin() as s:
        s.scalars(select(Person).where(Person.slack_id == "U0SALES01")).one().timezone = zone
    clock.advance(timedelta(hours=hours))
    body = all_text(reply(slash(app, f"away {words}", clock.now(), user="U0SALES01")))
    assert f"You are away until {shown}:" in body  # plain text: a date token shows the reader's day
    with services.sessions.begin() as s:
        me = s.scalars(select(Person).where(Person.slack_id == "U0SALES01")).one()
        assert me.away_until == datetime.fromisoformat(back)


def overdue(services, clock, count):
    for i in range(count):
        new_lead(services, external_id=f"L-{i:02d}", score=90)  # hot: 15 wall minutes
    clock.advance(timedelta(hours=1))


@pytest.mark.parametrize("page", ["abc", "0", "2 3", "-1", "²", "٣", "99999999999999999999"])
def test_a_page_that_is_not_a_number_is_refused(app, services, clock, page):
    """"²" and "٣" are digits to str.isdigit (int() refuses the first), and twenty digits
    are more than SQLite's integers hold: each is answered, not "Sorry"."""
    overdue(services, clock, 2)
    text = all_text(reply(slash(app, f"leads overdue {page}", clock.now())))
    assert "is not a page number" in text and "L-00" not in text


@pytest.mark.parametrize("page", ["0", "²", "٣", "99999999999999999999"])
def test_digits_after_leads_alone_are_a_page_of_mine(app, clock, page):
    text = all_text(reply(slash(app, f"leads {page}", clock.now())))
    assert f"`{page}` is not a page number: `/align leads mine 2`" in text


def test_a_page_past_the_end_says_how_many_there_are(app, services, clock):
    overdue(services, clock, 18)
    assert "There is no page 999: there are 2 pages." in all_text(
        reply(slash(app, "leads overdue 999", clock.now())))


def test_lead_json_has_stages_sla_and_history(app, services, fake_slack, clock, capsys,
                                              monkeypatch):
    new_lead(services)
    data = lead_json(services, "L-1")
    assert data["status"] == "routed" and data["owner"] == "U0SALES01"
    assert data["sla"] == {"policy": "standard", "clock": "business",
                           "due_at": "2026-11-24T18:00:00+00:00", "state": "on_track"}
    clock.advance(timedelta(minutes=30))
    click(app, fake_slack, fake_slack.in_channel("C0HANDOFF1")[-1], cards.FIRST_TOUCH,
          "U0SALES01", clock.now())
    data = lead_json(services, "L-1")
    assert data["sla"]["state"] == "met" and data["sla"]["response_minutes"] == 30
    assert data["sla"]["business_minutes"] == 30
    assert data["stages"]["first_touch_at"] == "2026-11-24T14:30:00+00:00"
    assert [e["kind"] for e in data["events"]] == ["created", "routed", "contacted"]
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    assert main(["lead", "L-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["external_id"] == "L-1"
    assert main(["lead", "L-404", "--json"]) == 1


def test_away_says_that_leads_the_crm_assigns_by_name_still_come(shell):
    """Routing skips someone away in the round-robin only: an explicit CRM owner wins
    (PRODUCT.md "Routing"). The confirmation said "new leads go to others in your pool",
    and a rep whose CRM kept assigning them leads found them breached on their return."""
    out = run(shell, "/align away until friday")
    assert "You are away until Friday, November 27" in out
    assert "leads your CRM assigns to you by name still come to you" in out
    run(shell, 'webhook leads {"external_id": "L-80", "source": "webinar", '
               '"owner_email": "sam@example.com"}')
    run(shell, 'webhook leads {"external_id": "L-81", "source": "webinar"}')
    mine = run(shell, "/align leads mine")
    assert "L-80" in mine and "L-81" not in mine
