"""Answers to metric questions, and `alignbot query` for scripts."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from bot.cli import main
from bot.metrics.answers import answer, parse, scorecard
from bot.metrics.grammar import QueryError
from bot.metrics.registry import METRICS, compute
from tests.metric_fixture import add_metric_fixture
from tests.slack import TEAM

NOW = datetime(2026, 8, 3, 16, 0, tzinfo=UTC)


@pytest.fixture
def loaded(services, clock, monkeypatch):
    with services.sessions.begin() as s:
        add_metric_fixture(s)
    clock.set(NOW)
    monkeypatch.setattr("bot.cli._local_services", lambda: services)
    return services


def live(services, key, query, by=None):
    with services.sessions() as s:
        return compute(s, TEAM, key, query.period.start, query.period.end, by, now=NOW)


def test_query_json_has_value_period_comparison_groups_and_as_of(loaded, capsys):
    assert main(["query", "win rate Q2 2026 by source vs previous", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    query = parse("win rate Q2 2026 by source", loaded.config, NOW)
    value, groups = live(loaded, "win_rate", query, "source")
    assert out["metric"] == "win_rate" and out["unit"] == "ratio"
    assert out["value"] == pytest.approx(value)
    assert out["period"]["start"] == "2026-04-01T00:00:00-04:00"
    assert out["period"]["end"] == "2026-07-01T00:00:00-04:00"
    assert out["groups"] == [{"key": k, "value": pytest.approx(v)} for k, v in groups.items()]
    q1 = parse("win rate Q1 2026", loaded.config, NOW)
    assert out["comparison"]["label"] == "previous"
    assert out["comparison"]["value"] == live(loaded, "win_rate", q1)[0]  # no deals closed: None
    assert out["comparison"]["change"] is None
    assert out["as_of"] == NOW.isoformat()
    assert len(out["trend"]) == 6 and out["trend"][-1] == pytest.approx(value)


def test_a_period_without_data_has_a_null_value_not_zero(loaded, capsys):
    assert main(["query", "win rate 2025-12", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["value"] is None and "groups" not in out and "comparison" not in out


def test_query_csv_lists_the_groups(loaded, capsys):
    assert main(["query", "leads routed 2026-05-01..2026-07-31 by source", "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    query = parse("leads routed 2026-05-01..2026-07-31", loaded.config, NOW)
    _, groups = live(loaded, "leads_routed", query, "source")
    assert rows[0] == ["source", "leads_routed"]
    assert {k: float(v) for k, v in rows[1:]} == groups


def test_query_table_and_bad_questions(loaded, capsys):
    assert main(["query", "sla compliance last 90 days"]) == 0
    assert "SLA compliance" in capsys.readouterr().out
    assert main(["query", "win rat last quarter"]) == 2
    err = capsys.readouterr().err
    assert "win_rate" in err  # did you mean
    assert main(["query", "churn by owner"]) == 2
    assert "cannot be broken down by owner" in capsys.readouterr().err


def test_rejection_reasons_answer_by_reason_without_asking(loaded):
    query = parse("rejections 2026-05-01..2026-07-31", loaded.config, NOW)
    with loaded.sessions() as s:
        result = answer(loaded.work_in(s, now=NOW), query)
    assert result.groups and sum(result.groups.values()) == result.value


def test_query_json_has_groups_only_when_by_is_asked_even_for_rejections(loaded, capsys):
    """PRODUCT.md: "`groups` is present only with `by`". Rejections break down by reason
    in Slack without asking; the JSON lists the reasons when `by reason` is typed."""
    assert main(["query", "rejections 2026-05-01..2026-07-31", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "groups" not in plain and plain["value"] == 4  # L5, L6 in June; L13, L15 in July
    assert main(["query", "rejections 2026-05-01..2026-07-31 by reason", "--json"]) == 0
    by_reason = json.loads(capsys.readouterr().out)
    assert by_reason["value"] == plain["value"]
    assert sum(g["value"] for g in by_reason["groups"]) == plain["value"]


def test_scorecard_has_every_metric_with_its_target(loaded):
    with loaded.sessions() as s:
        card = scorecard(loaded.work_in(s, now=NOW))
    assert [a.metric.key for a in card] == list(METRICS)
    targets = {a.metric.key: a.target for a in card}
    assert targets["win_rate"] == loaded.config.targets.get("win_rate")
    assert all(a.comparison is not None and len(a.trend) == 6 for a in card)


def test_parse_refuses_what_the_grammar_cannot_read(config):
    with pytest.raises(QueryError) as e:
        parse("what is the weather", config, NOW)
    assert "Metrics" in e.value.message or e.value.suggestions


def test_query_on_a_database_never_upgraded_says_what_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    assert main(["query", "win rate last quarter"]) == 2
    assert "alignbot db upgrade" in capsys.readouterr().err
