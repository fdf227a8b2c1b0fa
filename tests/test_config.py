"""Configuration: the public keys mean what PRODUCT.md says, and every problem is reported at once."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import date, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cli import main
from bot.platform.config import (
    MAX_DURATION,
    SECTIONS,
    Config,
    ConfigError,
    Retention,
    Secrets,
    keys,
    load_config,
    parse_config,
    parse_duration,
)
from bot.sla.calendar import Calendar
from tests.slack import all_text, reply, slash

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "alignbot.example.toml"

SPEC = ROOT / "docs" / "spec.md"


def spec_example() -> str:
    """The "Configuration" block of docs/spec.md: a file holding only these keys is valid."""
    section = SPEC.read_text(encoding="utf-8").split("## Configuration", 1)[1]
    return section.split("```toml", 1)[1].split("```", 1)[0]


def test_the_product_example_is_valid_and_means_what_it_says():
    c = parse_config(tomllib.loads(spec_example()))
    ws = c.workspace
    assert (ws.timezone, ws.holidays, ws.extra_holidays) == ("America/New_York", "US",
                                                            (date(2026, 12, 24),))
    assert ws.working_days == (0, 1, 2, 3, 4)
    assert (ws.working_hours.start, ws.working_hours.end) == (time(9), time(17))
    assert ws.gross_margin == 0.8 and ws.admins == ("U0ADMIN01",)
    assert (c.channels.handoff, c.channels.marketing, c.channels.digest) == (
        "C0HANDOFF1", "C0MARKET01", "C0DIGEST01")
    [sam] = c.people
    assert (sam.slack_id, sam.email, sam.role, sam.manager, sam.timezone, sam.weight,
            sam.daily_cap) == ("U0SALES01", "sam@example.com", "sales", "U0SALESMG1",
                               "America/Los_Angeles", 1, 25)
    hot, standard = c.sla
    assert (hot.min_score, hot.respond_within, hot.clock) == (80, timedelta(minutes=15), "wall")
    assert (standard.respond_within, standard.clock) == (timedelta(hours=4), "business")
    assert dict(c.targets) == {"response_time": 30, "sla_compliance": 0.9, "win_rate": 0.3}
    assert c.is_admin("U0ADMIN01") and not c.is_admin("U0SALES01")
    assert c.retention == Retention(slack_events=timedelta(days=2), outbox=timedelta(days=90),
                                    lead_events=timedelta(days=365),
                                    survey_runs=timedelta(days=730))


def test_the_committed_example_is_valid():
    c = load_config(EXAMPLE)
    assert {p.role for p in c.people} == {"sales", "sales_manager", "marketing",
                                          "marketing_manager", "exec", "admin"}
    assert c.routing.rules[0].pool == "enterprise"
    assert (c.routing.unassigned_within, c.routing.unassigned_clock) == (timedelta(minutes=30),
                                                                        "business")


def test_every_problem_is_reported_at_once_with_its_key():
    raw = tomllib.loads('''
[workspace]
timzone = "America/New_York"
timezone = "Mars/Olympus"
working_hours = "9-5"
gross_margin = 80
[[people]]
slack_id = "U0SALES01"
role = "salesperson"
[[people]]
slack_id = "U0SALES01"
role = "sales"
[[sla]]
name = "hot"
respond_within = "4h"
[[sla]]
name = "standard"
respond_within = "15 mins"
[targets]
win_rate = 0.3
happiness = 1
channels = "C0HANDOFF1"
''')
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    problems = caught.value.problems
    expected = [
        "workspace.timzone: unknown key (did you mean 'timezone'?)",
        "workspace.timezone: 'Mars/Olympus' is not an IANA timezone like America/New_York",
        "workspace.working_hours: '9-5' is not working hours like \"09:00-17:00\"",
        "workspace.gross_margin: 80 must be a fraction between 0 and 1 (0.8, not 80)",
        "people[0].role: 'salesperson' is not one of",
        "people[1].slack_id: U0SALES01 is listed twice",
        "sla[1].respond_within: '15 mins' is not a duration like 15m, 4h, 2d",
        "targets.happiness: unknown key",
        "targets.channels: unknown key",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in problems), (line, problems)
    assert len(problems) == len(expected)


def test_the_unassigned_leads_sla_has_a_default_a_key_and_a_reserved_name():
    default = parse_config({}).routing
    assert (default.unassigned_within, default.unassigned_clock) == (timedelta(minutes=30),
                                                                    "business")
    routing = parse_config({"routing": {"unassigned_within": "1h", "unassigned_clock": "wall"}})
    assert (routing.routing.unassigned_within, routing.routing.unassigned_clock) == (
        timedelta(hours=1), "wall")
    with pytest.raises(ConfigError) as caught:
        parse_config({"routing": {"unassigned_within": "soon", "unassigned_clock": "sundial"},
                      "sla": [{"name": "unassigned", "respond_within": "1h"}]})
    assert caught.value.problems == [
        "sla[0].name: 'unassigned' is the SLA of a lead waiting for an owner ([routing] "
        "unassigned_within); give this policy another name",
        "routing.unassigned_within: 'soon' is not a duration like 15m, 4h, 2d, 2w",
        "routing.unassigned_clock: 'sundial' is not one of wall, business"]


def test_a_section_that_is_not_a_table_is_named():
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": "C0HANDOFF1"})
    assert caught.value.problems == ["channels: must be a table, not str"]


def test_malformed_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[workspace\ntimezone = ")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert "not valid TOML" in caught.value.problems[0]
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.toml")
    assert "alignbot.example.toml" in caught.value.problems[0]


@pytest.mark.parametrize("text,expected", [
    ("15m", timedelta(minutes=15)), ("4h", timedelta(hours=4)), ("2d", timedelta(days=2)),
    ("1h30m", timedelta(hours=1, minutes=30)),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["15 mins", "", "4", "h", "-5m", "1.5h", "4H"])
def test_bad_durations_say_what_is_expected(text):
    with pytest.raises(ValueError, match="is not a duration like 15m, 4h, 2d"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["99999999999d", "999999999d", "523w", "3661d", "87841h"])
def test_a_duration_past_ten_years_is_refused_not_overflowed(text):
    with pytest.raises(ValueError, match=f"'{text}' is longer than ten years"):
        parse_duration(text)
    assert parse_duration("3660d") == parse_duration("87840h") == MAX_DURATION


@given(st.integers(0, 99), st.integers(0, 99), st.integers(0, 999))
def test_durations_round_trip(d, h, m):
    if d == h == m == 0:
        return
    assert parse_duration(f"{d}d{h}h{m}m") == timedelta(days=d, hours=h, minutes=m)


def test_secrets_never_show_their_values():
    secrets = Secrets.from_env({"SLACK_BOT_TOKEN": "xoxb-very-secret", "DATABASE_URL":
                                "postgresql://u:hunter2@db/x"})
    for shown in (repr(secrets), str(secrets), f"{secrets}"):
        assert "very-secret" not in shown and "hunter2" not in shown
    assert secrets.status()["SLACK_BOT_TOKEN"] == "set"
    assert secrets.status()["SLACK_APP_TOKEN"] == "not set"


def test_a_setting_with_a_default_is_not_called_missing(app, clock):
    """DATABASE_URL unset means the default store, not a problem."""
    status = Secrets.from_env({}).status()
    assert status["DATABASE_URL"] == "not set, so sqlite:///alignbot.db"
    shown = all_text(reply(slash(app, "config check", clock.now(), user="U0ADMIN01")))
    assert "missing" not in shown and "DATABASE_URL not set, so sqlite:///alignbot.db" in shown


def test_cli_config_check(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ALIGNBOT_CONFIG", str(EXAMPLE))
    assert main(["config", "check"]) == 0
    assert "OK (9 people" in capsys.readouterr().out
    out = checked(tmp_path, monkeypatch, capsys, '[workspace]\ntimezone = "Nowhere/Land"\n'
                  '[[sla]]\nname = "x"\nrespond_within = "soon"\n')
    assert "2 problem(s)" in out and "workspace.timezone" in out and "sla[0].respond_within" in out


def checked(tmp_path, monkeypatch, capsys, toml: str) -> str:
    """What `alignbot config check` prints of a config file holding `toml` (it fails)."""
    broken = tmp_path / "broken.toml"
    broken.write_text(toml)
    monkeypatch.setenv("ALIGNBOT_CONFIG", str(broken))
    assert main(["config", "check"]) == 1
    return capsys.readouterr().out


def check_on(monkeypatch, capsys, config: Path) -> tuple[int, str]:
    """`alignbot config check` of this file (`run` reads it alike): its exit status and what
    it printed."""
    monkeypatch.setenv("ALIGNBOT_CONFIG", str(config))
    status = main(["config", "check"])
    printed = capsys.readouterr()
    return status, printed.out + printed.err


def test_a_config_path_docker_made_a_directory_is_a_problem_not_a_traceback(
        tmp_path, monkeypatch, capsys):
    """compose.yaml mounts ./alignbot.toml: where that file is missing, Docker makes a
    directory of it, and the app restarted on a traceback."""
    (tmp_path / "alignbot.toml").mkdir()
    status, err = check_on(monkeypatch, capsys, tmp_path / "alignbot.toml")
    assert status == 1 and "Traceback" not in err
    assert "alignbot.toml: 1 problem(s)" in err and "is a directory" in err
    assert "copy alignbot.example.toml to alignbot.toml" in err


def test_a_config_file_this_process_may_not_read_says_so(tmp_path, monkeypatch, capsys):
    """The image runs as uid 10001: a host file of mode 600 is not readable there."""
    config = tmp_path / "alignbot.toml"
    config.write_text(EXAMPLE.read_text())

    def refused(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refused)  # root, running the tests, reads anything
    status, err = check_on(monkeypatch, capsys, config)
    assert status == 1 and "cannot be read by this process" in err
    assert f"chmod 644 {config}" in err


def test_a_config_file_not_in_utf8_says_so_and_one_with_a_bom_is_read(
        tmp_path, monkeypatch, capsys):
    latin = tmp_path / "latin.toml"
    latin.write_bytes('[workspace]\ntimezone = "Europe/Zürich"\n'.encode("latin-1"))
    status, err = check_on(monkeypatch, capsys, latin)
    assert status == 1 and "not UTF-8 text (line 2): save it as UTF-8" in err
    assert "Traceback" not in err
    bom = tmp_path / "bom.toml"
    bom.write_bytes(EXAMPLE.read_text().encode("utf-8-sig"))  # Notepad's "UTF-8"
    assert load_config(bom).people


# each once crashed the loader (OverflowError, TypeError) or passed, to fail where it was used
WOULD_FAIL_LATER = {
    '[[sla]]\nname = "x"\nrespond_within = "99999999999d"':
        "sla[0].respond_within: '99999999999d' is longer than ten years (3660d)",
    '[retention]\noutbox = "999999999d"':
        "retention.outbox: '999999999d' is longer than ten years (3660d)",
    "[routing]\npools = 5": "routing.pools: must be a table, not int",
    "[outbox]\nrate_per_channel = 0":
        "outbox.rate_per_channel: 0 must be a number of messages a second between 0.01 and 100",
    "[outbox]\nrate_per_channel = nan":
        "outbox.rate_per_channel: nan must be a number of messages a second between 0.01 and 100",
    '[outbox]\ntimeout = "10s"':
        "outbox.timeout: '10s' must be a number of seconds between 1 and 60",
    "[targets]\nwin_rate = inf": "targets.win_rate: inf must be a finite number",
    "[alignment]\nattainment_levels = [0.5, inf]":
        "alignment.attainment_levels: inf must be a finite number",
    "[alignment.weights]\nkpi = nan\nperception = 1.0\nagreement = 0.0":
        "alignment.weights: nan must be a finite number",
    '[[people]]\nslack_id = "U0SALES01"\nrole = "sales"\ndaily_cap = 99999999999999999999':
        "people[0].daily_cap: 99999999999999999999 must be a whole number between 0 and 10000",
    '[channels]\nhandoff = "C0HANDOFF1\\n"':
        "channels.handoff: 'C0HANDOFF1\\n' is not a Slack id like U0123ABCD or C0123ABCD",
    "[workspace]\nextra_holidays = [2026-12-24T00:00:00]":
        "workspace.extra_holidays: datetime.datetime(2026, 12, 24, 0, 0) is not a date like "
        "2026-12-24",
}


@pytest.mark.parametrize("toml,problem", WOULD_FAIL_LATER.items())
def test_a_value_that_would_fail_later_is_named_by_its_key(toml, problem):
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(toml))
    assert caught.value.problems == [problem]


def test_config_check_names_each_key_instead_of_a_traceback(tmp_path, monkeypatch, capsys):
    out = checked(tmp_path, monkeypatch, capsys, '[[sla]]\nname = "x"\n'
                  'respond_within = "99999999999d"\n[routing]\npools = 5\n'
                  "[outbox]\nrate_per_channel = nan\n")
    assert "3 problem(s)" in out
    assert all(key in out for key in ("sla[0].respond_within", "routing.pools",
                                      "outbox.rate_per_channel"))


def test_names_are_kept_as_checked_without_their_spaces():
    """"America/New_York " passed the check and every later ZoneInfo refused it."""
    c = parse_config(tomllib.loads('[workspace]\ntimezone = "America/New_York "\n'
                                   'holidays = " US"\n[[people]]\nslack_id = "U0SALES01"\n'
                                   'role = "sales"\ntimezone = " Europe/London"\n'))
    assert (c.workspace.timezone, c.workspace.holidays) == ("America/New_York", "US")
    assert c.workspace.tz.key == "America/New_York" and c.people[0].timezone == "Europe/London"
    assert not Calendar.of(c).is_working_day(date(2026, 12, 25))  # the US holidays are found


@pytest.mark.parametrize("section", ["workspace", "channels", "outbox", "routing", "handoff",
                                     "imports", "alignment"])
def test_a_tables_keys_are_its_dataclasss_fields(section):
    """Declared once: the keys a table takes are the fields of what it is read into."""
    cls = type(getattr(Config(), section))
    with pytest.raises(ConfigError) as caught:
        parse_config({section: {"zzz": 1}})
    [problem] = caught.value.problems
    assert problem == f"{section}.zzz: unknown key; known keys: {', '.join(keys(cls))}"
    assert set(keys(cls)) == {f.name for f in dataclasses.fields(cls)}
    assert set(SECTIONS) == {f.name for f in dataclasses.fields(Config)} - {"source"}
