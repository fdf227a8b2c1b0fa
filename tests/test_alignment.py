"""Perception vs. reality and the alignment index on tests/metric_fixture.py, June 2026 in
New York (the fixture's June is the same days there), as of July 10, with a closed pulse
survey run: every number below is worked out by hand.

The metrics (tests/test_metrics.py has each one's derivation):
  response_time   exact median of 10, 12.35, 30, 45, 60, 3960      = 37.5 min
  sla_compliance  met L1 L3 L4 L5 L9; breached L2 L6 L7 L13, and L8 (due 7/1, past due
                  as of 7/10)                                        = 5/10 = 0.5
  acceptance_rate accepted L1 L2 L3 L4 L7 L9 L14, rejected L5 L6    = 7/9 = 0.777778
  conversion_rate 4 of the 12 June MQLs have a deal after their MQL   = 1/3
  not_icp_share   June rejections L5 not_icp, L6 duplicate          = 1/2
  win_rate        D1 won, D3 lost, D4 won                            = 2/3
  churn_rate      C2, C5 of the 4 active on June 1                   = 1/2
The targets ([targets]; no churn target, so churn does not count):
  response_time 45 (lower better)  a = 45 / 37.5          = 1.2      High
  sla_compliance 0.6               a = 0.5 / 0.6          = 0.833333 Medium
  acceptance_rate 0.7              a = 0.777778 / 0.7     = 1.111111 High
  not_icp_share 0.2 (lower better) a = 0.2 / 0.5          = 0.4      Low
  conversion_rate 0.3              a = 0.333333 / 0.3     = 1.111111 High
  win_rate 0.5                     a = 0.666667 / 0.5     = 1.333333 High
Reality, the lowest level of each dimension's counting metrics:
  customer_understanding  conversion High, not_icp Low                 -> Low
  shared_goals            4 of 6 targeted metrics at target = 0.666667 -> Medium (≥ 0.5)
  communication           sla Medium, response High                    -> Medium
  lead_quality            acceptance High, conversion High             -> High
  customer_satisfaction   churn 0.5, no target                         -> unknown
The survey run ("pulse", run 3): mean answers (1–5) by role, None where hidden below k:
                          exec         sales        marketing
  customer_understanding  3.0 Medium   2.4 Low      3.5 High     (reality Low)
  shared_goals            4.2 High     3.0 Medium   hidden       (reality Medium)
  communication           3.4 Medium   2.5 Medium   2.0 Low      (reality Medium)
  lead_quality            3.6 High     2.2 Low      4.5 High     (reality High)
  customer_satisfaction   4.0 High     4.0 High     3.0 Medium   (reality unknown: no cells)
Gaps: customer_understanding exec and marketing overrate; shared_goals exec overrates;
communication marketing underrates; lead_quality sales underrates (by two levels).
The index:
  K = (1 + 0.833333 + 1 + 0.4 + 1 + 1) / 6                           = 0.872222
  P = collaboration mean 6.4 / 10                                     = 0.64
  A = cells equal to reality: sales (cu); sales (sg); exec, sales (comm); exec,
      marketing (lq) = 6 of the 11 shown cells with a known reality   = 0.545455
  index = round(100 × (0.5 × 0.872222 + 0.25 × 0.64 + 0.25 × 0.545455))
        = round(100 × (0.436111 + 0.16 + 0.136364)) = round(73.2475) = 73: Integrated
  What would raise it most: A (0.545, furthest from 1), in customer_understanding
  (two roles off, more than any other dimension).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.alignment import report as alignment
from bot.alignment.definitions import Definitions
from bot.alignment.perception import Perception
from bot.blocks import alignment as views
from bot.cli import main
from bot.metrics.grammar import parse_period
from bot.platform.config import parse_config
from tests.conftest import TEST_CONFIG
from tests.metric_fixture import add_metric_fixture, at
from tests.slack import TEAM, all_text, reply, slash

NOW = at(7, 10)
TARGETS = {"response_time": 45, "sla_compliance": 0.6, "acceptance_rate": 0.7,
           "not_icp_share": 0.2, "conversion_rate": 0.3, "win_rate": 0.5}
MEANS = {  # exec, sales, marketing
    "customer_understanding": (3.0, 2.4, 3.5), "shared_goals": (4.2, 3.0, None),
    "communication": (3.4, 2.5, 2.0), "lead_quality": (3.6, 2.2, 4.5),
    "customer_satisfaction": (4.0, 4.0, 3.0)}


def results_json(collaboration: float | None = 6.4) -> dict:
    """A closed run's results as `alignbot survey results --json` prints them (issue #16)."""
    def group(mean):
        return None if mean is None else {"n": 5, "mean": mean, "distribution": {}, "change": None}
    questions = [{"key": key, "type": "scale5", "overall": group(3.0),
                  "by_role": dict(zip(("exec", "sales", "marketing"), map(group, means),
                                      strict=True))}
                 for key, means in MEANS.items()]
    questions.append({"key": "collaboration", "type": "scale10",
                      "overall": collaboration and {"n": 15, "mean": collaboration,
                                                    "distribution": {}, "change": 0.4},
                      "by_role": {}})
    return {"survey": "pulse", "run": {"id": 3, "opened_at": "2026-07-01T13:00:00+00:00",
                                       "closed_at": "2026-07-04T13:00:00+00:00",
                                       "state": "closed"},
            "invited": 20, "responded": 15, "participation": 0.75, "k": 5,
            "questions": questions, "comments": None}


PERCEPTION = Perception.from_results(results_json())


@pytest.fixture
def config():
    return parse_config({**TEST_CONFIG, "targets": TARGETS}, "<tests>")


@pytest.fixture
def data(services):
    with services.transaction() as session:
        add_metric_fixture(session)


@pytest.fixture
def surveyed(monkeypatch):
    """The closed run, as the surveys' results would give it."""
    monkeypatch.setattr(alignment, "latest_perception", lambda *_: PERCEPTION)


def june_report(services):
    june = parse_period("2026-06", NOW, services.config.workspace.tz)
    with services.sessions() as session:
        return alignment.report(services.work_in(session, now=NOW), june)


def test_perception_reads_the_survey_results_json():
    assert PERCEPTION.survey == "pulse" and PERCEPTION.run == 3
    assert PERCEPTION.closed_at == datetime(2026, 7, 4, 13, tzinfo=UTC)
    assert PERCEPTION.mean("shared_goals", "marketing") is None  # hidden below k
    assert PERCEPTION.mean("lead_quality", "marketing") == 4.5
    assert (PERCEPTION.collaboration, PERCEPTION.collaboration_change) == (6.4, 0.4)
    assert (PERCEPTION.participation, PERCEPTION.responded, PERCEPTION.invited) == (0.75, 15, 20)


def test_the_gap_by_hand(services, data, surveyed):
    found = june_report(services).gap_json()
    assert found["period"] == {"start": "2026-06-01T00:00:00-04:00",
                               "end": "2026-07-01T00:00:00-04:00"}
    assert found["survey"] == {"name": "pulse", "run": 3}
    rows = {row["dimension"]: row for row in found["rows"]}
    assert list(rows) == ["customer_understanding", "shared_goals", "communication",
                          "lead_quality", "customer_satisfaction"]
    assert {d: row["reality"] for d, row in rows.items()} == {
        "customer_understanding": "low", "shared_goals": "medium", "communication": "medium",
        "lead_quality": "high", "customer_satisfaction": "unknown"}
    assert rows["customer_understanding"]["metrics"] == [
        {"metric": "conversion_rate", "value": pytest.approx(1 / 3), "target": 0.3,
         "attainment": 1.111111, "level": "high"},
        {"metric": "not_icp_share", "value": 0.5, "target": 0.2, "attainment": 0.4,
         "level": "low"}]
    assert rows["shared_goals"]["metrics"] == [
        {"metric": "targets_met", "value": 0.666667, "target": None, "attainment": None,
         "level": "medium"}]
    assert rows["communication"]["metrics"] == [
        {"metric": "sla_compliance", "value": 0.5, "target": 0.6, "attainment": 0.833333,
         "level": "medium"},
        {"metric": "response_time", "value": 37.5, "target": 45, "attainment": 1.2,
         "level": "high"}]
    assert [m["attainment"] for m in rows["lead_quality"]["metrics"]] == [1.111111, 1.111111]
    assert rows["customer_satisfaction"]["metrics"] == [
        {"metric": "churn_rate", "value": 0.5, "target": None, "attainment": None, "level": None}]
    assert {d: row["perception"] for d, row in rows.items()} == {
        "customer_understanding": {"exec": "medium", "sales": "low", "marketing": "high"},
        "shared_goals": {"exec": "high", "sales": "medium", "marketing": None},
        "communication": {"exec": "medium", "sales": "medium", "marketing": "low"},
        "lead_quality": {"exec": "high", "sales": "low", "marketing": "high"},
        "customer_satisfaction": {"exec": "high", "sales": "high", "marketing": "medium"}}
    assert {d: row["gaps"] for d, row in rows.items()} == {
        "customer_understanding": [{"role": "exec", "direction": "overrates"},
                                   {"role": "marketing", "direction": "overrates"}],
        "shared_goals": [{"role": "exec", "direction": "overrates"}],
        "communication": [{"role": "marketing", "direction": "underrates"}],
        "lead_quality": [{"role": "sales", "direction": "underrates"}],
        "customer_satisfaction": []}


def test_the_index_by_hand(services, data, surveyed):
    found = june_report(services)
    assert found.index_json() == {
        "index": 73, "stage": "Integrated",
        "components": {"kpi": pytest.approx(0.872222, abs=1e-6), "perception": 0.64,
                       "agreement": pytest.approx(6 / 11, abs=1e-9)},
        "weights": {"kpi": 0.5, "perception": 0.25, "agreement": 0.25},
        "period": {"start": "2026-06-01T00:00:00-04:00", "end": "2026-07-01T00:00:00-04:00"},
        "survey": {"name": "pulse", "run": 3}}
    advice = found.index.advice
    assert advice.component == "agreement" and advice.row.dimension == "customer_understanding"


def test_without_a_survey_run_the_index_is_kpi_attainment_alone(services, data):
    # K = 0.872222 weighs 1: round(87.2222) = 87, Strategic; its weakest metric is not_icp_share
    found = june_report(services)
    assert found.index_json()["survey"] is None
    assert (found.index.value, found.index.stage) == (87, "Strategic")
    assert found.index.weights == {"kpi": 1.0, "perception": None, "agreement": None}
    assert found.index.advice.metric.metric == "not_icp_share"
    assert all(row["perception"] == {"exec": None, "sales": None, "marketing": None}
               and row["gaps"] == [] for row in found.gap_json()["rows"])


def test_a_component_left_out_scales_the_others():
    # P = 0.64, no shown cells: K weighs 0.5 / 0.75, P 0.25 / 0.75:
    # round(100 × (0.872222 × 2/3 + 0.64 / 3)) = round(79.4815) = 79, Integrated
    hidden = Perception("pulse", 3, None, {}, 6.4, None, 0.75, 15, 20)
    values = {"response_time": 37.5, "sla_compliance": 0.5, "acceptance_rate": 7 / 9,
              "not_icp_share": 0.5, "conversion_rate": 1 / 3, "win_rate": 2 / 3,
              "churn_rate": 0.5}
    june = parse_period("2026-06", NOW, UTC)
    found = alignment.build(june, values, TARGETS, hidden, Definitions())
    assert (found.index.value, found.index.stage) == (79, "Integrated")
    assert found.index.weights == {"kpi": pytest.approx(2 / 3), "perception": pytest.approx(1 / 3),
                                   "agreement": None}
    # nothing with data and no run: no index at all
    empty = alignment.build(june, {}, TARGETS, None, Definitions())
    assert empty.index_json()["index"] is None and empty.index.stage is None
    assert {row.reality for row in empty.rows} == {"unknown"}


def test_metric_levels_at_their_bounds():
    from bot.alignment.gap import attainment, reading

    d = Definitions()
    assert reading("acceptance_rate", 0.72, 0.9, "higher", d).level == "medium"  # a = 0.8 exactly
    assert reading("acceptance_rate", 0.9, 0.9, "higher", d).level == "high"
    assert reading("acceptance_rate", 0.71, 0.9, "higher", d).level == "low"
    assert attainment(0.0, 0.02, "lower") == 1.0  # no churn beats any target: met
    assert attainment(-0.1, 0.2, "higher") == 0.0  # shrinking revenue attains nothing
    assert attainment(None, 0.2, "higher") is None and attainment(0.2, None, "higher") is None


def test_the_definitions_are_overridable_in_the_config(services, data, surveyed):
    config = parse_config({**TEST_CONFIG, "targets": TARGETS, "alignment": {
        "attainment_levels": [0.3, 1.0],  # not_icp's 0.4 is Medium now
        "dimensions": {"customer_satisfaction": ["win_rate"]},
        "weights": {"kpi": 1.0, "perception": 0.0, "agreement": 0.0}}}, "<tests>")
    services.config = config
    rows = {row.dimension: row for row in june_report(services).rows}
    assert rows["customer_understanding"].reality == "medium"
    assert rows["customer_satisfaction"].reality == "high"  # win rate 1.333333
    assert june_report(services).index.value == 87  # K alone


def test_gap_and_index_in_slack(app, clock, data, surveyed, fake_slack):
    gap = all_text(reply(slash(app, "gap 2026-06", clock.now())))
    assert "Perception vs. reality" in gap and "survey *pulse*, run 3" in gap
    assert "Not-ICP rejections 50% (target 20%: Low)" in gap
    assert "exec *Medium* :warning: overrates" in gap
    index = all_text(reply(slash(app, "index 2026-06", clock.now())))
    assert "Alignment index: 73 · Integrated" in index
    assert "the widest gap is *Understanding of the target customer*" in index
    wrong = all_text(reply(slash(app, "gap next fortnight", clock.now())))
    assert "I couldn't read the period" in wrong and "/align gap last quarter" in wrong


OVERRIDDEN = {"weights": {"kpi": 0.6, "perception": 0.2, "agreement": 0.2},
              "perception_levels": [3.0, 4.0], "attainment_levels": [0.75, 1.0]}


def test_the_answers_state_the_rules_of_the_config_they_were_computed_by(app, services, clock,
                                                                          data, surveyed):
    """With `[alignment]` overriding the weights and the levels, the footers say so. Levels
    from 3 and 4: cells equal to reality are sales (cu), sales (sg), exec (comm), marketing
    (lq): A = 4/11 = 0.363636; index = round(100 × (0.6 × 0.872222 + 0.2 × 0.64 + 0.2 ×
    0.363636)) = round(72.4061) = 72."""
    services.config = parse_config({**TEST_CONFIG, "targets": TARGETS, "alignment": OVERRIDDEN},
                                   "<tests>")
    index = all_text(reply(slash(app, "index 2026-06", clock.now())))
    assert "Alignment index: 72 · Integrated" in index
    assert "Perceived alignment (P) *0.64* × 0.20" in index
    assert "index = round(100 × (0.6 × K + 0.2 × P + 0.2 × A))" in index
    assert "0.5 × K" not in index and "0.25" not in index
    gap = all_text(reply(slash(app, "gap 2026-06", clock.now())))
    assert "exec *Medium* :warning: overrates" in gap  # 3.0 is Medium from 3 on
    assert ("each against its target (High at 100%, Medium from 75%); the share of targeted "
            "metrics at target: High from 80%, Medium from 50%. Perception: a role's mean "
            "answer (High from 4, Medium from 3; — below the survey's k answers)") in gap
    assert "3.5" not in gap and "Medium from 80%" not in gap
    # no data at all: the answer that says so states the same rules
    june = parse_period("2026-06", NOW, UTC)
    empty = views.index_answer(alignment.build(june, {}, TARGETS, None,
                                               services.config.alignment))
    assert "index = round(100 × (0.6 × K + 0.2 × P + 0.2 × A))" in all_text(empty)


def test_the_default_rules_read_as_the_readme_writes_them():
    june = parse_period("2026-06", NOW, UTC)
    found = alignment.build(june, {}, TARGETS, None, Definitions())
    assert "index = round(100 × (0.5 × K + 0.25 × P + 0.25 × A)); stages: Ad-Hoc < 20" in \
        all_text(views.index_answer(found))
    assert ("(High at 100%, Medium from 80%); the share of targeted metrics at target: High "
            "from 80%, Medium from 50%. Perception: a role's mean answer (High from 3.5, "
            "Medium from 2.5;") in all_text(views.gap_answer(found))


def test_the_gap_states_the_targets_met_levels_it_was_computed_by(app, services, clock, data,
                                                                   surveyed):
    """4 of 6 targeted metrics at target (0.666667) is Medium by default, High from 0.6."""
    services.config = parse_config({**TEST_CONFIG, "targets": TARGETS,
                                    "alignment": {"targets_met_levels": [0.25, 0.6]}}, "<tests>")
    gap = all_text(reply(slash(app, "gap 2026-06", clock.now())))
    assert "67% of targeted metrics at target (High)" in gap
    assert "the share of targeted metrics at target: High from 60%, Medium from 25%." in gap


@pytest.mark.parametrize("words", ["hi", "!!!", "me", "<!channel>", "<@U0ADMIN01> the"])
def test_words_that_name_no_period_are_not_the_default(app, clock, words):
    """`/align gap <garbage>` once answered for 30 days (and an empty one for 90)."""
    for name in ("gap", "index"):
        answer = reply(slash(app, f"{name} {words}", clock.now()))
        shown = all_text(answer)
        assert f"I couldn't read a period in “{words}”" in shown, shown
        assert f"/align {name} last quarter" in shown and "Perception" not in shown
        assert "<" not in answer["text"]  # what was typed, escaped


def test_without_a_run_slack_says_so(app, clock, data):
    index = all_text(reply(slash(app, "index 2026-06", clock.now())))
    assert "Alignment index: 87 · Strategic" in index
    assert "left out: no closed survey run yet" in index
    assert "weakest metric is *Not-ICP rejections*, 50% against a target of 20%" in index
    assert "No closed pulse survey run yet" in all_text(reply(slash(app, "gap 2026-06",
                                                                      clock.now())))


def test_the_cli_prints_the_json(services, data, surveyed, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", services.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("ALIGNBOT_TEAM_ID", TEAM)
    monkeypatch.setattr("bot.cli.load_config", lambda *_: services.config)
    monkeypatch.setattr("bot.platform.clock.SystemClock.now", lambda self: NOW)
    assert main(["gap", "2026-06", "--survey", "pulse", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][3]["reality"] == "high"
    assert main(["index", "2026-06", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["index"] == 73
    assert main(["index", "fortnight", "--json"]) == 2
    assert "I couldn't read the period" in capsys.readouterr().err
    assert main(["gap", "hi"]) == 2
    assert capsys.readouterr().err.startswith("alignbot: I couldn't read a period in “hi”. ")


def test_the_home_shows_the_index_and_the_flagged_rows(services, data, surveyed):
    from bot.home import Context, build

    services.config = parse_config({**TEST_CONFIG, "targets": TARGETS,
                                    "alignment": {"period": "2026-06"}}, "<tests>")
    with services.sessions() as session:
        home = all_text(build(Context(session, TEAM, services.config, NOW,
                                      services.features.home), None))
    assert "Alignment index *73* · Integrated · 2026-06 (Jun 1 – Jun 30, 2026)" in home
    assert ("*Lead quality*: sales underrates (the data says :large_green_circle: High)"
            in home)
    assert "Customer satisfaction" not in home  # no gap there: not flagged
