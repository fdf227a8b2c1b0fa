"""The demo data set: deterministic, realistic in shape, anonymous where it must be."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.alignment.report import report
from bot.handoff.lifecycle import REJECTION_REASONS
from bot.handoff.people import sync_config_people
from bot.local.demo import ROLE_SLOTS, generate_demo
from bot.metrics.answers import answer, parse, scorecard
from bot.metrics.grammar import parse_period
from bot.platform.config import load_config
from bot.platform.work import Work
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade
from storage.models import ContentUse, Customer, Deal, Lead, LeadEvent, Person, Spend, SurveyAnswer
from tests.slack import TEAM

EXAMPLE = Path(__file__).resolve().parents[1] / "alignbot.example.toml"
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
STAGES = ("mql_at", "routed_at", "accepted_at", "first_touch_at", "qualified_at", "closed_at")


def make(services, leads=400):
    with services.work(now=NOW) as w:
        return generate_demo(w, leads=leads)


def fingerprint(sessions):
    with sessions.begin() as s:
        by_status = dict(s.execute(select(Lead.status, func.count()).group_by(Lead.status)).all())
        won = s.scalar(select(func.sum(Deal.amount)).where(Deal.outcome == "won"))
        return by_status, won


def test_same_seed_same_data(services, tmp_path):
    first = make(services)
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other)
    sessions = make_sessionmaker(other)
    with sessions.begin() as s:
        w = Work(s, TEAM, services.config, NOW)
        sync_config_people(w)
        assert generate_demo(w, leads=400) == first
    assert fingerprint(sessions) == fingerprint(services.sessions)


def test_shape_is_realistic(services):
    summary = make(services)
    assert summary.leads == 400 and summary.deals > 0 and summary.customers > 150
    with services.sessions.begin() as s:
        roles = set(s.scalars(select(Person.role)))
        assert roles >= {"sales", "sales_manager", "marketing", "marketing_manager", "exec", "admin"}
        leads = list(s.scalars(select(Lead)))
        statuses = {lead.status for lead in leads}
        assert {"routed", "accepted", "contacted", "rejected", "won", "lost"} <= statuses
        assert any(lead.sla_met is False for lead in leads)  # breaches exist to look at
        for lead in leads:
            times = [getattr(lead, k) for k in STAGES if getattr(lead, k) is not None]
            assert times == sorted(times), lead.external_id
            assert all(t <= NOW and t.tzinfo is not None for t in times)
            if lead.status == "rejected":
                assert lead.rejection_reason in REJECTION_REASONS
        events = s.scalar(select(func.count()).select_from(LeadEvent))
        assert events >= len(leads)


def test_answers_hold_no_slack_ids_and_a_second_run_adds_nothing(services):
    make(services)
    with services.sessions.begin() as s:
        people = set(s.scalars(select(Person.slack_id)))
        answers = list(s.scalars(select(SurveyAnswer)))
        assert answers  # the past runs were closed like real ones: no key, no one's id
        for answer in answers:
            assert answer.respondent_key is None
            assert not any(v and str(v) in people for v in (answer.text, answer.value))
    assert make(services).already_present


@pytest.mark.parametrize("cast", ["none", "the tests'", "the example's"])
def test_every_demo_person_has_a_name_of_their_own(engine, config, cast):
    """Names are drawn at random, first and last: U0DEMO001 and U0DEMO006 were both drawn
    "Bo Park" (and answers by owner showed the name twice). A name someone has moves on to
    the next free one; with no people configured, the config's or the example's."""
    config = load_config(EXAMPLE) if cast == "the example's" else config
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        w = Work(s, TEAM, config, NOW)
        if cast != "none":
            sync_config_people(w)
        generate_demo(w, leads=50)
        names = list(s.scalars(select(Person.name).where(Person.team_id == TEAM)))
    assert all(names) and len(names) >= sum(ROLE_SLOTS.values())
    assert len(set(names)) == len(names), sorted(names)


# ------------------------------------------------------------------ two years and more of growth

AT = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # the tour's morning


@pytest.fixture
def history(services):
    with services.work(now=AT) as w:
        generate_demo(w)  # as the tour has it
    return services


def by_month(session, column) -> dict[str, int]:
    months: dict[str, int] = {}
    for at in session.scalars(select(column).where(column.is_not(None))):
        key = at.astimezone(UTC).strftime("%Y-%m")
        months[key] = months.get(key, 0) + 1
    return months


def test_history_covers_three_years_of_steady_growth(history):
    with history.sessions.begin() as s:
        leads = by_month(s, Lead.mql_at)
        assert len(leads) >= 36 and min(leads) <= "2023-12"
        counts = [leads[m] for m in sorted(leads)][:-1]  # the current month is under way
        quarters = [sum(counts[i:i + 3]) for i in range(0, 36, 3)]
        assert all(q > 0 for q in quarters)
        # steady: every quarter bigger than the same quarter a year before
        assert all(a < b for a, b in zip(quarters, quarters[4:], strict=False)), quarters
        for column in (Deal.closed_at, Customer.started_at, ContentUse.used_at):
            assert len(by_month(s, column)) >= 15, column
        assert len({row.month for row in s.scalars(select(Spend))}) >= 36


def test_last_quarters_scorecard_has_a_whole_trend_and_plausible_growth(history):
    """The tour's `/align scorecard last quarter` once showed "Revenue growth 15098%" and
    trends like `    ▁█`: the demo covered five months."""
    period = parse_period("last quarter", AT, history.config.workspace.tz)
    with history.sessions.begin() as s:
        w = history.work_in(s, now=AT)
        answers = {a.metric.key: a for a in scorecard(w, period)}
        growth = answer(w, parse("revenue growth last quarter", history.config, AT))
    for key in ("leads_routed", "win_rate", "acceptance_rate", "conversion_rate", "cac",
                "revenue_growth", "sales_cycle", "marketing_sourced_revenue"):
        assert None not in answers[key].trend, (key, answers[key].trend)
    assert all(-0.5 < g < 1.0 for g in growth.trend), growth.trend



def test_the_tours_gap_shows_marketing_overrating_lead_quality(engine):
    """The README's tour (`make run`: the example config, the demo): `/align gap` has
    something to see, groups large enough to be shown and a role that misjudges the data."""
    config = load_config(EXAMPLE)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        w = Work(s, TEAM, config, AT)
        sync_config_people(w)
        generate_demo(w)
    with sessions.begin() as s:
        rows = {row.dimension: row for row in report(Work(s, TEAM, config, AT)).rows}
    lead_quality = rows["lead_quality"]
    assert lead_quality.reality in {"low", "medium"}
    assert ("marketing", "overrates") in {(g.role, g.direction) for g in lead_quality.gaps}
    assert all(level is not None for level in lead_quality.perception.values())


def test_without_a_config_the_demos_gap_reads_the_runs_it_closed(engine):
    """`alignbot shell --demo` with no alignbot.toml: the demo's pulse runs are of a survey
    the default config does not name; the shell's config learns it, so the gap and the
    index show their perception instead of "no closed run yet"."""
    from bot.platform.config import Config
    from bot.surveys.demo import DEMO, with_demo_survey

    config = with_demo_survey(Config())
    assert config.surveys == (DEMO,) and with_demo_survey(config) is config  # once
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        generate_demo(Work(s, TEAM, config, AT))
    with sessions.begin() as s:
        perception = report(Work(s, TEAM, config, AT)).perception
    assert perception is not None and (perception.survey, perception.run) == ("pulse", 3)
