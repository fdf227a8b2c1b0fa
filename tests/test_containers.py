"""The container files a user starts alignbot with: Dockerfile, compose.yaml, alignbot.env.example.

Read, not run (CI may have no Docker): what the image runs as and starts, what each compose
service runs (real commands of the CLI, parsed by it), and which settings the code reads.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from sqlalchemy import make_url

from bot.cli import main
from bot.platform.config import Secrets
from bot.platform.server import create_monitoring_app, create_web_app

ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def one(stage, op: str) -> str:
    [arg] = [a for o, a in stage if o == op]
    return arg


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_the_image_runs_the_console_script_as_a_user_of_its_own():
    stage = final_stage()
    assert one(stage, "FROM").startswith("python:") and "slim" in one(stage, "FROM")
    user = one(stage, "USER").split(":")[0]
    assert user not in ("root", "0")
    assert any(op == "RUN" and f"--uid {user}" in arg for op, arg in stage)
    assert json.loads(one(stage, "ENTRYPOINT")) == ["alignbot"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["alignbot"] == "bot.cli:main"
    assert json.loads(one(stage, "CMD")) == ["run"]


def test_the_build_copies_every_package_the_wheel_needs():
    copied = {part for op, arg in dockerfile() if op == "COPY" and "--from" not in arg
              for part in arg.split()[:-1]}
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {p.rstrip("*") for p in found["packages"]["find"]["include"]}
    assert packages | {"pyproject.toml", "README.md"} <= copied
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not packages & set(ignored) and "README.md" not in ignored
    assert {".venv", ".git", "*.db", "alignbot.env", "alignbot.toml"} <= set(ignored)


def test_the_health_check_asks_a_path_both_processes_serve(services):
    check = one(final_stage(), "HEALTHCHECK")
    path = re.search(r"(/[a-z]+)'", check)[1]
    assert path == "/healthz"
    for web in (create_web_app(services, None), create_monitoring_app(services)):
        assert web.test_client().get(path).get_json()["ok"] is True
    # the worker's server answers nothing else: no webhooks where no one expects them
    assert {r.rule for r in create_monitoring_app(services).url_map.iter_rules()} == {
        "/healthz", "/readyz", "/metrics", "/static/<path:filename>"}


def test_compose_runs_migrations_once_then_the_app_and_a_worker(compose):
    services = compose["services"]
    assert set(services) == {"db", "migrate", "app", "worker"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["app"]["command"] == ["run", "--no-scheduler", "--monitoring-port", "9090"]
    assert services["app"]["ports"] == ["3000:3000"]  # the monitoring port is not published
    assert services["worker"]["command"][0] == "worker"
    for name in ("app", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}}
        assert services[name]["image"] == "alignbot:latest" and services[name]["build"] == "."
        assert services[name]["env_file"] == "alignbot.env"


@pytest.mark.parametrize("name", ["migrate", "app", "worker"])
def test_each_services_command_is_a_real_cli_command(compose, name, capsys):
    command = compose["services"][name]["command"]
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])  # argparse parses every argument before it shows the help
    assert done.value.code == 0
    assert "usage: alignbot" in capsys.readouterr().out


def test_the_workers_port_is_where_the_image_looks(compose):
    command = compose["services"]["worker"]["command"]
    port = command[command.index("--port") + 1]
    assert re.search(r"ENV .*PORT=(\d+)", "\n".join(f"{o} {a}" for o, a in final_stage()))[1] \
        == port
    assert compose["services"]["app"]["ports"] == [f"{port}:{port}"]


@pytest.mark.parametrize("argv", [["worker", "--port", "http"], ["run", "--port", "99999"],
                                  ["run", "--monitoring-port", "-1"]])
def test_a_port_that_is_not_a_number_is_refused(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2 and "is not a port number (0-65535;" in capsys.readouterr().err


def test_a_port_variable_that_is_not_a_number_is_refused_by_run_alone(monkeypatch, capsys):
    """PORT was read as int() while the parser was built: every command, `manifest` too,
    ended in a ValueError traceback."""
    monkeypatch.setenv("PORT", "tcp://10.0.0.7:3000")
    assert main(["manifest"]) == 0
    with pytest.raises(SystemExit) as done:
        main(["run"])
    assert done.value.code == 2
    assert "argument --port: 'tcp://10.0.0.7:3000' is not a port number" in capsys.readouterr().err


def read_by_the_code() -> set[str]:
    names = set(Secrets.ENV.values())
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("storage/**/*.py")]:
        names |= set(re.findall(r"""(?:environ|env)(?:\.get\(|\[)["']([A-Z][A-Z0-9_]+)["']""",
                                path.read_text()))
    return names


def example_env() -> dict[str, str]:
    """KEY=value lines of alignbot.env.example, commented-out ones too."""
    pairs = re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$", (ROOT / "alignbot.env.example").read_text(),
                       re.MULTILINE)
    return dict(pairs)


def test_the_env_example_names_only_settings_the_code_reads(compose):
    known = read_by_the_code()
    example = example_env()
    assert set(example) <= known, set(example) - known
    set_by_compose = set(compose["x-alignbot"]["environment"])
    assert set_by_compose <= known | {"PGPASSWORD"}  # libpq reads that one
    # every secret is either set by compose or to be filled in, and none ships with a value
    assert set(Secrets.ENV.values()) <= set(example) | set_by_compose
    assert all(example[v] == "" for v in Secrets.ENV.values() if v in example)


def interpolate(value: str, env: dict[str, str]) -> str:
    """compose's `${NAME:-default}`, as `docker compose` fills it in."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], value)


@pytest.mark.parametrize("password", ["alignbot", "p@ss/w#rd:1?", "sp ace%40"])
def test_any_postgres_password_reaches_the_database_as_set(compose, password):
    """The password a user sets in .env is the database's and the one alignbot connects
    with, whatever its characters; inside the URL an @ or / would change the host."""
    env = {"POSTGRES_PASSWORD": password}
    app = {k: interpolate(v, env) for k, v in compose["x-alignbot"]["environment"].items()}
    db = {k: interpolate(v, env) for k, v in compose["services"]["db"]["environment"].items()}
    url = make_url(app["DATABASE_URL"])
    assert (url.host, url.port, url.database, url.username) == ("db", 5432, "alignbot", "alignbot")
    assert (url.password or app.get("PGPASSWORD")) == db["POSTGRES_PASSWORD"] == password


def test_the_readme_says_how_to_start_it():
    section = (ROOT / "README.md").read_text().split("## Running in production", 1)[1]
    section = section.split("\n## ", 1)[0]
    for line in ("cp alignbot.env.example alignbot.env", "docker compose up -d --build"):
        assert line in section
