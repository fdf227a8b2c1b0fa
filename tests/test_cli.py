"""The command line on a store the bot has never run on: importing history before Slack is
connected learns the workspace from the bot token, or takes ALIGNBOT_TEAM_ID."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.local.fakeslack import FakeSlack
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade
from storage.models import Lead

EXAMPLE = Path(__file__).resolve().parents[1] / "alignbot.example.toml"


@pytest.fixture
def empty_store(tmp_path, monkeypatch):
    """A migrated store nobody has used, the example config, and no Slack settings."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(make_engine(url))
    for var in ("SLACK_BOT_TOKEN", "SLACK_API_URL", "ALIGNBOT_TEAM_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ALIGNBOT_CONFIG", str(EXAMPLE))
    return make_sessionmaker(make_engine(url))


@pytest.fixture
def leads_csv(tmp_path) -> Path:
    path = tmp_path / "leads.csv"
    path.write_text("external_id,source,name\nL-1,webinar,Ann Lee\nL-2,ebook,Bo Park\n")
    return path


def teams_of_leads(sessions) -> set[str]:
    with sessions.begin() as session:
        return set(session.scalars(select(Lead.team_id)))


def with_token(monkeypatch, team: str = "T0FROMTOKEN") -> FakeSlack:
    fake = FakeSlack(team_id=team)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", fake.base_url)
    return fake


def test_import_and_query_learn_the_workspace_from_the_bot_token(
        empty_store, leads_csv, monkeypatch, capsys):
    fake = with_token(monkeypatch)
    assert main(["import", "leads", str(leads_csv)]) == 0
    assert teams_of_leads(empty_store) == {"T0FROMTOKEN"}
    assert fake.calls_of("auth.test")
    capsys.readouterr()
    assert main(["query", "leads routed last 7 days", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metric"] == "leads_routed"


def test_import_takes_alignbot_team_id_without_slack(empty_store, leads_csv, monkeypatch):
    monkeypatch.setenv("ALIGNBOT_TEAM_ID", "T0MANUAL")
    assert main(["import", "leads", str(leads_csv)]) == 0
    assert teams_of_leads(empty_store) == {"T0MANUAL"}


def test_without_either_it_says_how_to_name_the_workspace(empty_store, leads_csv, capsys):
    assert main(["import", "leads", str(leads_csv)]) == 2
    err = capsys.readouterr().err
    assert "ALIGNBOT_TEAM_ID" in err and "SLACK_BOT_TOKEN" in err and "alignbot run" not in err
    assert teams_of_leads(empty_store) == set()


def test_the_webhook_secret_of_a_single_workspace_is_the_deployments_own(
        empty_store, monkeypatch, capsys):
    monkeypatch.setenv("ALIGNBOT_WEBHOOK_SECRET", "whsec-single-0123")
    assert main(["webhook-secret"]) == 0  # no workspace needed: one secret for the one
    out = capsys.readouterr()
    assert out.out == "whsec-single-0123\n" and "POST /webhooks/<entity>" in out.err


def test_a_team_id_that_is_not_one_is_refused(empty_store, leads_csv, monkeypatch, capsys):
    monkeypatch.setenv("ALIGNBOT_TEAM_ID", "acme corp")
    assert main(["query", "win rate last quarter"]) == 2
    assert "'acme corp' is not a Slack workspace id" in capsys.readouterr().err


def test_a_token_slack_refuses_is_named(empty_store, leads_csv, monkeypatch, capsys):
    fake = with_token(monkeypatch)
    fake.script("auth.test", (200, {}, {"ok": False, "error": "invalid_auth"}))
    assert main(["import", "leads", str(leads_csv)]) == 2
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in capsys.readouterr().err
    assert teams_of_leads(empty_store) == set()


UNREACHABLE = "postgresql+psycopg://postgres:hunter2@127.0.0.1:1/x"  # nothing listens on port 1


@pytest.mark.parametrize("argv", [["lead", "L-1"], ["query", "win rate last quarter"],
                                  ["db", "upgrade"], ["gap"], ["survey", "results", "pulse"],
                                  ["metrics", "refresh"], ["run", "--port", "0"], ["worker"]])
def test_a_database_that_is_down_is_one_line_and_a_failure(argv, leads_csv, monkeypatch,
                                                           capsys):
    """A closed PostgreSQL port once printed 118-131 lines of the driver's traceback."""
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    monkeypatch.setenv("ALIGNBOT_CONFIG", str(EXAMPLE))
    monkeypatch.setenv("ALIGNBOT_TEAM_ID", "T0MANUAL")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    with_token(monkeypatch)
    assert main(argv) == 3
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("alignbot: cannot reach the database at "
                           "postgresql+psycopg://postgres:***@127.0.0.1:1/x: "), line
    assert "refused" in line.lower() and "hunter2" not in line


def test_a_sqlite_store_that_cannot_be_opened_is_one_line(tmp_path, leads_csv, monkeypatch,
                                                          capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}")  # a directory, not a file
    monkeypatch.setenv("ALIGNBOT_CONFIG", str(EXAMPLE))
    monkeypatch.setenv("ALIGNBOT_TEAM_ID", "T0MANUAL")
    assert main(["import", "leads", str(leads_csv)]) == 3
    assert capsys.readouterr().err == \
        f"alignbot: cannot reach the database at sqlite:///{tmp_path}: unable to open database file\n"


@pytest.mark.parametrize("url,said", [
    ("postgresql//alignbot:hunter2@db/alignbot", "the database URL (DATABASE_URL) is not one like "),
    ("mysql://alignbot:hunter2@db/alignbot", "the database URL mysql://alignbot:***@db/alignbot "
                                              "is not one alignbot can use: "),
    ("postgresql+psycopg2://alignbot:hunter2@db/a",
     "the database URL postgresql+psycopg2://alignbot:***@db/a is not one "),
])
@pytest.mark.parametrize("argv", [["db", "upgrade"], ["run", "--port", "0"], ["lead", "L-1"]])
def test_a_database_url_alignbot_cannot_use_is_one_line(url, said, argv, monkeypatch, capsys):
    """A typo, another database or a driver not installed once ended in SQLAlchemy's
    traceback (ArgumentError, ModuleNotFoundError: MySQLdb / psycopg2), some with the password."""
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ALIGNBOT_CONFIG", str(EXAMPLE))
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    with_token(monkeypatch)
    assert main(argv) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"alignbot: {said}") and "hunter2" not in line
    assert line.endswith("like sqlite:///alignbot.db or postgresql://user:password@host:5432/alignbot")


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked"])
def test_a_revoked_token_stops_the_worker_in_one_line(error, empty_store, monkeypatch, capsys):
    fake = with_token(monkeypatch)
    fake.script("auth.test", (200, {}, {"ok": False, "error": error}))
    assert main(["worker"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"alignbot: Slack refused the bot token (SLACK_BOT_TOKEN): {error} — ")
    assert err.count("\n") == 1


def test_a_header_error_prints_one_line_and_nothing_on_stdout(empty_store, tmp_path,
                                                                monkeypatch, capsys):
    """The progress bar, not drawn, once left an empty line on stdout (the JSON's stream)."""
    monkeypatch.setenv("ALIGNBOT_TEAM_ID", "T0MANUAL")
    semi = tmp_path / "export.csv"
    semi.write_text("id;full name;org\n1;Ann;Acme\n")
    assert main(["import", "leads", str(semi)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "alignbot: export.csv's columns are id;full name;org — missing external_id, source "
        "(leads need external_id, source and may have email, name, company, title, score, "
        "segment, region, owner_email, why, crm_url, created_at, mql_at, status, routed_at, "
        "accepted_at, rejected_at, rejection_reason, first_touch_at, updated_at); is it "
        "comma-separated? Its header has ';' in it",
        "alignbot: nothing is imported"]
    good = tmp_path / "good.csv"
    good.write_text("external_id,source\nL-1,webinar\n")
    assert main(["import", "leads", str(good)]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == 1  # stdout: the JSON alone


def test_the_readmes_import_before_slack_runs_as_written_on_a_fresh_store(
        tmp_path, monkeypatch, capsys):
    """It once left out `alignbot db upgrade`, and a fresh store's import stopped there."""
    import re
    import shlex

    readme = (EXAMPLE.parent / "README.md").read_text()
    [block] = [b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "alignbot import" in b]
    monkeypatch.chdir(tmp_path)
    for var in ("SLACK_BOT_TOKEN", "SLACK_API_URL", "DATABASE_URL", "ALIGNBOT_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "alignbot.example.toml").write_text(EXAMPLE.read_text())
    (tmp_path / "leads.csv").write_text("external_id,source,name\nL-1,webinar,Ann Lee\n")
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words[0] == "cp":
            (tmp_path / words[2]).write_text((tmp_path / words[1]).read_text())
        elif words[0] == "export":
            monkeypatch.setenv(*words[1].split("=", 1))
        else:
            assert words[0] == "alignbot" and main(words[1:]) == 0, (line, capsys.readouterr())
    out = capsys.readouterr().out
    assert "\"created\": 1" in out and "Count of leads routed" in out


@pytest.mark.parametrize(("argv", "said"), [
    (["run", "--port", "3000", "--monitoring-port", "3000"],
     "--monitoring-port must be another port than --port"),
    (["run", "--monitoring-port", "metrics"], "'metrics' is not a port number"),
])
def test_a_monitoring_port_that_cannot_work_is_refused_before_anything_starts(argv, said,
                                                                              capsys):
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2 and said in capsys.readouterr().err
