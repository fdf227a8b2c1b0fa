"""The `alignbot` command line: run | worker | shell | db upgrade | config check | erase | manifest | survey."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from bot.platform import logs
from bot.platform.clock import SystemClock
from bot.platform.config import ConfigError, Secrets, load_config
from storage.db import BadDatabaseUrl, DatabaseUnreachable
from storage.migrate import SchemaOutOfDate

log = logging.getLogger("alignbot")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.func is cmd_run and args.monitoring_port == args.port:  # two servers, one port
        parser.error("--monitoring-port must be another port than --port")
    if args.team:  # one way in for the workspace: what every command's services read
        os.environ["ALIGNBOT_TEAM_ID"] = args.team
    try:
        logs.configure()
        return args.func(args) or 0
    except (ConfigError, SchemaOutOfDate, BadDatabaseUrl) as exc:
        print(f"alignbot: {exc}", file=sys.stderr)
        return 2
    except CannotStart as exc:
        print(f"alignbot: {exc}", file=sys.stderr)
        return 1
    except DatabaseUnreachable as exc:  # one line to act on, not the driver's traceback
        log.debug("the database's error", exc_info=True)
        print(f"alignbot: {exc}", file=sys.stderr)
        return 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alignbot", description=__doc__)
    p.add_argument("--team", metavar="TEAM_ID",
                   help="the workspace the store's commands work on (default: ALIGNBOT_TEAM_ID, "
                        "else the store's only one); OAuth mode serves many")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the bot: Socket Mode if SLACK_APP_TOKEN is set, else HTTP")
    # a string default goes through `type` too, only when `run` is the command: a bad PORT
    # is refused there in argparse's words, not by every command in a traceback
    run.add_argument("--port", type=_port, default=os.environ.get("PORT", "3000"),
                     help="default: PORT, else 3000")
    run.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    run.add_argument("--no-scheduler", action="store_true",
                     help="serve requests only; run `alignbot worker` for the scheduled jobs")
    run.add_argument("--monitoring-port", type=_port,
                     help="serve /readyz and /metrics on this port, not on --port (which Slack "
                          "reaches); /healthz on both")
    run.set_defaults(func=cmd_run)

    worker = sub.add_parser("worker", help="the scheduler and the outbox sender, without Slack requests")
    worker.add_argument("--port", type=_port,
                        help="serve /healthz, /readyz and /metrics on this port")
    worker.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    worker.set_defaults(func=cmd_worker)

    shell = sub.add_parser("shell", help="the local console: same app, fake Slack, movable clock")
    shell.add_argument("--demo", action="store_true", help="fill the store with generated demo data")
    shell.add_argument("--at", type=_aware, help="start the clock here (ISO time with offset)")
    shell.add_argument("--as", dest="user",
                       help="act as this person: Slack id, email or name, as the `as` line")
    shell.add_argument("--db", default=None, help="database URL (default: sqlite:///alignbot-shell.db)")
    shell.set_defaults(func=cmd_shell)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply the migrations").set_defaults(func=cmd_db_upgrade)

    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser("check", help="validate the config file").set_defaults(func=cmd_config_check)

    imp = sub.add_parser("import", help="import a CSV file (the webhook's fields as columns)")
    imp.add_argument("entity", choices=("leads", "deals", "customers", "spend", "content",
                                        "content_usage"))
    imp.add_argument("file", type=Path)
    imp.add_argument("--mapping", help="column names of a CRM export: hubspot or salesforce")
    imp.set_defaults(func=cmd_import)

    lead = sub.add_parser("lead", help="show one lead: fields, owner, stage times, SLA, history")
    lead.add_argument("external_id")
    lead.add_argument("--json", action="store_true", help="machine-readable output")
    lead.set_defaults(func=cmd_lead)

    query = sub.add_parser("query", help='answer a metric question: "win rate last quarter by source"')
    query.add_argument("text")
    out = query.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object (PRODUCT.md 'Metrics')")
    out.add_argument("--csv", action="store_true", help="the groups, or the trend, as CSV")
    query.set_defaults(func=cmd_query)

    for name, what in (("gap", "perception vs. reality per survey dimension"),
                       ("index", "the alignment index, component by component")):
        cmd = sub.add_parser(name, help=f"{what}, over PERIOD (default: the last 90 days)")
        cmd.add_argument("period", nargs="*", help='words of the query grammar: "last quarter"')
        cmd.add_argument("--survey", help="the survey whose latest closed run is read")
        cmd.add_argument("--json", action="store_true", help="one JSON object (README 'Alignment')")
        cmd.set_defaults(func=cmd_alignment, what=name)

    digest = sub.add_parser("digest", help="channel digests")
    digest_sub = digest.add_subparsers(dest="digest_command", required=True)
    preview = digest_sub.add_parser("preview", help="a digest as it would be posted now")
    preview.add_argument("name", help="its [[digests]] name")
    preview.add_argument("--json", action="store_true", help="its sections' numbers as JSON")
    preview.set_defaults(func=cmd_digest_preview)

    metrics = sub.add_parser("metrics", help="metric snapshots")
    metrics_sub = metrics.add_subparsers(dest="metrics_command", required=True)
    refresh = metrics_sub.add_parser("refresh", help="recompute the daily snapshots that changed")
    refresh.add_argument("--full", action="store_true", help="recompute every day")
    refresh.set_defaults(func=cmd_metrics_refresh)

    survey = sub.add_parser("survey", help="pulse surveys: results, start, close")
    survey_sub = survey.add_subparsers(dest="survey_command", required=True)
    results = survey_sub.add_parser("results", help="a run's results (the latest closed by default)")
    results.add_argument("name")
    results.add_argument("--run", type=int, help="the run number (1, 2, 3 ...)")
    results.add_argument("--json", action="store_true", help="one JSON object (issue #16 shape)")
    results.set_defaults(func=cmd_survey_results)
    for verb, what in (("start", "open a run now; the running bot sends its prompts"),
                       ("close", "close the open run now and post its results")):
        action = survey_sub.add_parser(verb, help=what)
        action.add_argument("name")
        action.set_defaults(func=cmd_survey_run, verb=verb)

    erase = sub.add_parser("erase", help="remove a person's personal data from leads and people "
                                         "(aggregates stay)")
    erase.add_argument("--email", required=True, help="the email of the lead or person")
    erase.add_argument("--dry-run", action="store_true", help="report what would go; change nothing")
    erase.add_argument("--json", action="store_true", help="the report as one JSON object")
    erase.set_defaults(func=cmd_erase)

    secret = sub.add_parser("webhook-secret", help="print the secret the workspace's CRM signs "
                                                   "webhooks with (its own in OAuth mode)")
    secret.set_defaults(func=cmd_webhook_secret)

    manifest = sub.add_parser("manifest", help="print the Slack app manifest")
    manifest.add_argument("--url", help="public base URL for HTTP mode (default: Socket Mode)")
    manifest.set_defaults(func=cmd_manifest)
    return p


def _port(text: str) -> int:
    port = int(text) if text.strip().isascii() and text.strip().isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535; `run` "
                                         "without --port reads PORT)")
    return port


def _aware(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset, e.g. 2026-11-24T09:00-05:00")
    return when


# ------------------------------------------------------------------ commands


def cmd_db_upgrade(args) -> int:
    from storage.db import make_engine
    from storage.migrate import current_revision, upgrade

    engine = make_engine(Secrets.from_env().database_url)
    upgrade(engine)
    print(f"database at revision {current_revision(engine)} ({engine.url.render_as_string()})")
    return 0


def cmd_config_check(args) -> int:
    from bot.platform.admin import check_config

    verdict = check_config(None, Secrets.from_env())
    if verdict.ok:
        counts = ", ".join(f"{n} {what}" for what, n in verdict.summary.items())
        print(f"{verdict.source}: OK ({counts})")
    else:
        print(f"{verdict.source}: {len(verdict.problems)} problem(s)")
        for p in verdict.problems:
            print(f"  - {p}")
    for var, state in verdict.secrets.items():
        print(f"  {var}: {state}")
    return 0 if verdict.ok else 1


def cmd_import(args) -> int:
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bot.intake.csvfile import FileError, check_path
    from bot.intake.imports import ImportStopped, import_csv

    try:
        check_path(args.file)
    except FileError as exc:
        print(f"alignbot: {exc}", file=sys.stderr)
        return 2
    services = _local_services()
    with args.file.open("rb") as f:  # for the progress bar: a bad byte is the import's to report
        total = max(sum(1 for _ in f) - 1, 0)
    started = services.clock.now()
    # on stderr, and only to a terminal: stdout is the summary's JSON, for scripts, and a
    # bar that is not drawn still printed an empty line there
    with Progress(TextColumn("importing {task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True, console=Console(stderr=True),
                  disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(args.file.name, total=total)
        try:
            summary = import_csv(services, args.entity, args.file, mapping=args.mapping,
                                 progress=lambda n: bar.advance(task, n))
        except ImportStopped as stopped:
            print(f"alignbot: {stopped}", file=sys.stderr)
            if stopped.summary.rows:
                print(f"alignbot: nothing after row {stopped.summary.rows:,} is imported; "
                      "the rows before it are:", file=sys.stderr)
                print(json.dumps(stopped.summary.as_dict(), indent=2))
            else:
                print("alignbot: nothing is imported", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"alignbot: {exc}", file=sys.stderr)
            return 2
    took = (services.clock.now() - started).total_seconds()
    print(_import_line(args.file.name, summary, took), file=sys.stderr)
    print(json.dumps(summary.as_dict(), indent=2))
    return 0


def _import_line(name: str, summary, seconds: float) -> str:
    """The import in one line, for people (the JSON after it is for scripts)."""
    rate = f" ({summary.rows / seconds:,.0f} rows/s)" if seconds > 0 else ""
    line = (f"alignbot: {summary.rows:,} rows of {name} in {seconds:.1f} s{rate}: "
            f"{summary.created:,} created, {summary.updated:,} updated, "
            f"{summary.unchanged:,} unchanged, {summary.rejected:,} rejected")
    return line + (f" (reasons in {summary.rejected_file})" if summary.rejected_file else "")


def cmd_lead(args) -> int:
    import json

    from bot.handoff.leads import lead_json

    data = lead_json(_local_services(), args.external_id)
    if data is None:
        print(f"alignbot: no lead {args.external_id!r}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Lead {data['external_id']}", show_header=False)
    for key in ("name", "company", "title", "score", "source", "status", "owner"):
        table.add_row(key, str(data[key]))
    for key, at in data["stages"].items():
        if at:
            table.add_row(key, at)
    for key, value in data["sla"].items():
        table.add_row(f"sla.{key}", str(value))
    Console().print(table)
    for e in data["events"]:
        print(f"  {e['at']}  {e['kind']:<12} {e['actor']}")
    return 0


def cmd_query(args) -> int:
    import json

    from bot.metrics.answers import ask
    from bot.metrics.grammar import QueryError

    services = _local_services()
    try:
        answer = ask(services, args.text, exact=True,  # scripts check it against the CRM
                     details=True, trend_details=args.csv)  # the CSV's rows are periods
    except QueryError as exc:
        print(f"alignbot: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer.as_json(), indent=2))
    elif args.csv:
        sys.stdout.write(answer.csv())
    else:
        _print_answer(answer, services.config.workspace)
    return 0


def _print_answer(answer, workspace) -> None:
    from rich.console import Console
    from rich.table import Table

    from bot.blocks.metrics import DETAIL_LABELS

    metric, fmt = answer.metric, lambda v: answer.format(v, workspace.currency)
    table = Table(title=f"{metric.label}, {answer.period.label}", show_header=False)
    table.add_row("value", fmt(answer.value))
    for name, value in answer.details.items():
        table.add_row(DETAIL_LABELS.get(name, name), fmt(value))
    if answer.comparison is not None:
        table.add_row(f"vs {answer.comparison.label}", fmt(answer.comparison.value))
    if answer.target is not None:
        table.add_row("target", fmt(answer.target))
    table.add_row("trend", "  ".join(fmt(v) for v in answer.trend))
    for key, value in (answer.groups or {}).items():  # with each group's details, named
        table.add_row(f"  {key}", " · ".join([fmt(value), *(
            f"{DETAIL_LABELS.get(name, name)} {fmt(v)}"
            for name, v in answer.group_details.get(key, {}).items())]))
    table.add_row("as of", answer.as_of.astimezone(workspace.tz).strftime("%Y-%m-%d %H:%M %Z"))
    Console().print(table)
    print(metric.definition)


def cmd_alignment(args) -> int:
    import json

    from bot.alignment.report import report
    from bot.metrics.grammar import QueryError, asked_period

    services = _local_services()
    now, words = services.clock.now(), " ".join(args.period)
    try:
        period = asked_period(words, now, services.config.workspace.tz)
    except QueryError as exc:
        print(f"alignbot: {exc.message} Like `alignbot {args.what} last quarter` "
              "(default: the last 90 days).", file=sys.stderr)
        return 2
    with services.sessions() as session:
        found = report(services.work_in(session, now=now), period, args.survey)
    if args.json:
        print(json.dumps(found.gap_json() if args.what == "gap" else found.index_json(), indent=2))
    else:
        _print_alignment(found, args.what)
    return 0


def _print_alignment(report, what: str) -> None:
    from rich.console import Console
    from rich.table import Table

    survey = f"{report.perception.survey}, run {report.perception.run}" if report.perception \
        else "no closed survey run yet"
    if what == "index":
        idx = report.index
        table = Table(title=f"Alignment index, {report.period.label} ({survey})", show_header=False)
        table.add_row("index", f"{idx.value} ({idx.stage})" if idx.value is not None else "—")
        for name, value in idx.components.items():
            shown = "left out" if value is None else f"{value:.4f} × {idx.weights[name]:.4f}"
            table.add_row(name, shown)
    else:
        table = Table(title=f"Perception vs. reality, {report.period.label} ({survey})")
        for column in ("dimension", "reality", "exec", "sales", "marketing", "gaps"):
            table.add_column(column)
        for row in report.rows:
            table.add_row(row.dimension, row.reality,
                          *(row.perception[r] or "—" for r in ("exec", "sales", "marketing")),
                          ", ".join(f"{g.role} {g.direction}" for g in row.gaps))
    Console().print(table)


def cmd_digest_preview(args) -> int:
    import json

    from bot.blocks.digests import digest_message
    from bot.blocks.kit import unescape
    from bot.digests.commands import find, preview
    from bot.local.shell import blocks_text

    services = _local_services()
    digest = find(services.config, [args.name])
    if isinstance(digest, str):
        print(f"alignbot: {unescape(digest)}", file=sys.stderr)
        return 2
    view = preview(services, services.team_id, digest, services.clock.now())
    if args.json:
        print(json.dumps({"channel": digest.channel, **view.as_json()}, indent=2))
    else:
        message = digest_message(view, preview=True)
        print(blocks_text(message["blocks"], message["text"]))
    return 0


def cmd_metrics_refresh(args) -> int:
    from bot.metrics.snapshots import refresh

    services = _local_services()
    started = services.clock.now()
    report = refresh(services.sessions, services.config, services.team_id, started, full=args.full)
    took = (services.clock.now() - started).total_seconds()
    print(f"{report.days} day(s) recomputed, {report.rows:,} snapshot rows, in {took:.1f} s; "
          f"as of {report.as_of.isoformat()}")
    return 0


def _local_services():
    """Services for commands that work on the store only; the running bot delivers what they queue."""
    from bot.platform.runtime import build_services, make_web_client
    from storage.db import make_engine
    from storage.migrate import require_current

    secrets = Secrets.from_env()
    engine = make_engine(secrets.database_url)
    require_current(engine)  # a clear "run alignbot db upgrade" before any query can fail
    slack = make_web_client(secrets)
    services = build_services(load_config(), secrets, SystemClock(), engine=engine, slack=slack,
                              team_id=_workspace(engine, slack, secrets))
    return services.for_team(services.team_id)  # OAuth mode: with that workspace's token


TEAM_ID = re.compile(r"[TE][A-Z0-9]{2,}")  # a Slack workspace (or Enterprise Grid org) id


def _workspace(engine, slack, secrets: Secrets) -> str:
    """The workspace the store's commands work on: --team or ALIGNBOT_TEAM_ID, else the store's
    only one, else the bot token's (auth.test), so history can be imported before the bot runs."""
    from slack_sdk.errors import SlackApiError

    from storage.db import make_sessionmaker
    from storage.people import list_team_ids

    if team := os.environ.get("ALIGNBOT_TEAM_ID"):
        if not TEAM_ID.fullmatch(team):
            raise ConfigError([f"ALIGNBOT_TEAM_ID: {team!r} is not a Slack workspace id "
                               "(like T0123ABCD: Slack shows it in the workspace's URL)"],
                              "environment")
        return team
    with make_sessionmaker(engine).begin() as session:
        teams = list_team_ids(session)
    if len(teams) == 1:
        return teams[0]
    held = f"the store holds {', '.join(teams)}" if teams else "the store holds no workspace yet"
    if secrets.slack_bot_token:
        try:
            return slack.auth_test()["team_id"]
        except SlackApiError as exc:
            held += f", and Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')})"
        except OSError as exc:
            held += f", and Slack cannot be reached to ask which SLACK_BOT_TOKEN's is ({exc})"
    raise ConfigError([f"ALIGNBOT_TEAM_ID: set it (or --team) to the workspace to use (like "
                       f"T0123ABCD), or set SLACK_BOT_TOKEN to learn it from Slack; {held}"],
                      "environment")


def cmd_survey_results(args) -> int:
    import json

    from bot.surveys.commands import find_results

    found = find_results(_local_services(), args.name, args.run)
    if isinstance(found, str):
        print(f"alignbot: {found}", file=sys.stderr)
        return 1
    data = found.as_json()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{data['survey']} run {data['run']['id']} ({data['run']['state']}): "
          f"{data['responded']} of {data['invited']} answered; groups under {data['k']} hidden")
    for q in data["questions"]:
        groups = {"everyone": q["overall"], **q["by_role"]}
        shown = ", ".join(f"{name} {g['mean'] if g['mean'] is not None else ''} (n={g['n']})"
                          if g else f"{name} hidden" for name, g in groups.items())
        print(f"  {q['key']}: {shown}")
    for comment in data["comments"] or []:
        print(f"  > {comment}")
    return 0


def cmd_survey_run(args) -> int:
    from bot.surveys import runs

    services = _local_services()
    try:
        if args.verb == "start":
            run = runs.start(services, args.name, by="cli")
            print(f"{args.name} run {run.number} is open until {run.closes_at.isoformat()}; "
                  "the running bot sends the prompts")
        else:
            shown = runs.close(services, args.name)
            print(f"{args.name} run {shown.number} is closed: {shown.responded} of "
                  f"{shown.invited} answered; the running bot posts the results")
    except runs.SurveyRefused as exc:
        print(f"alignbot: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_erase(args) -> int:
    import json

    from bot.erasure import NotAnEmail, check_email, erase

    try:
        check_email(args.email)  # before the store is opened: a typo costs nothing
    except NotAnEmail as exc:
        print(f"alignbot: {exc}", file=sys.stderr)
        return 2
    report = erase(_local_services(), args.email, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0


def cmd_webhook_secret(args) -> int:
    from bot.intake.webhooks import secret_of

    secrets = Secrets.from_env()
    if not secrets.webhook_secret:
        raise ConfigError(["ALIGNBOT_WEBHOOK_SECRET is not set: webhooks are off"], "environment")
    if not secrets.oauth:
        print("single-workspace mode: CRMs sign with ALIGNBOT_WEBHOOK_SECRET itself, to "
              "POST /webhooks/<entity>", file=sys.stderr)
        print(secrets.webhook_secret)
        return 0
    services = _local_services()
    print(f"workspace {services.team_id}: its CRM signs with this secret, to "
          f"POST /webhooks/{services.team_id}/<entity>", file=sys.stderr)
    print(secret_of(services, services.team_id))
    return 0


def cmd_manifest(args) -> int:
    from bot.features import FEATURES
    from bot.platform.manifest import manifest_json

    print(manifest_json(FEATURES, request_url=args.url))
    return 0


def cmd_shell(args) -> int:
    from bot.local.shell import SHELL_DB, ShellError, build_shell
    from bot.platform.config import Config
    from storage.db import DEFAULT_URL

    try:
        config = load_config()
    except ConfigError as exc:
        if not any("no configuration file" in p for p in exc.problems):
            raise
        print("No alignbot.toml: using the defaults (copy alignbot.example.toml to configure).")
        config = Config()
    at = args.at or SystemClock().now()
    db_url = args.db or SHELL_DB
    logging.getLogger("bot.platform.telemetry").setLevel(logging.WARNING)  # no access log here
    print(f"The shell's store: {db_url} (its own; `alignbot run` uses DATABASE_URL, "
          f"default {DEFAULT_URL}).")
    try:
        shell = build_shell(config, db_url=db_url, at=at, user=args.user, demo=args.demo)
    except ShellError as exc:  # --as naming nobody, or several people
        print(f"alignbot: --as: {exc}", file=sys.stderr)
        return 2
    interactive = sys.stdin.isatty()
    shell.say("alignbot shell — type `help` for the lines you can use, `/align help` for commands.")
    shell.time([])
    shell.whoami([])
    if interactive:
        shell.loop(_prompt_lines(), echo=False)
    else:
        shell.loop(sys.stdin, echo=True)
    return 0


def _prompt_lines():
    from bot.local.shell import PROMPT

    while True:
        try:
            yield input(PROMPT)
        except EOFError:
            return


def cmd_run(args) -> int:
    from bot.app import create_app
    from bot.platform.runtime import SenderLoop, build_services
    from bot.platform.server import create_web_app, serve

    signal.signal(signal.SIGTERM, _stop)  # a container's stop: finish, and write every line
    signal.signal(signal.SIGINT, _stop)  # Ctrl-C the same, in start-up too (no traceback)
    config, secrets = load_config(), Secrets.from_env()
    _require(secrets, app_mode=True)
    socket_mode = bool(secrets.slack_app_token)
    with _reaching_slack(secrets):
        services = build_services(config, secrets, SystemClock())  # auth.test: which workspace
    # Socket Mode's requests come over the socket its app token opens: no signing secret
    bolt = create_app(services, verify_requests=not socket_mode)
    socket = None
    if socket_mode:
        log.info("connecting to Slack in Socket Mode")
        with _reaching_slack(secrets):
            socket = _connect_socket(bolt, secrets.slack_app_token)
    loop = SenderLoop(services).start()
    scheduler = None if args.no_scheduler else _start_scheduler(services)
    apart = args.monitoring_port is not None
    if apart:
        _serve_monitoring(services, args.host, args.monitoring_port, socket)
    web = create_web_app(services, None if socket_mode else bolt, socket=socket, monitoring=not apart)
    log.info("serving HTTP on %s:%s (%s/webhooks, /healthz%s)", args.host, args.port,
             "" if socket_mode else "/slack/events, ", "" if apart else ", /readyz, /metrics")
    try:
        with logs.in_background():  # request threads: no waiting on each other's log lines
            serve(web, args.host, args.port)
    finally:
        loop.stop()
        if scheduler:
            scheduler.shutdown(wait=False)
    log.info("stopped")
    return 0


def _stop(*_) -> None:
    """SIGTERM and Ctrl-C: in start-up, the process ends (status 0); once serving, waitress
    stops taking requests, lets the ones it runs finish (5 s at most) and returns; the
    sender and scheduler stop, and the lines still queued are written."""
    raise SystemExit(0)


def _connect_socket(bolt, app_token: str):
    """The Socket Mode client, connecting. A refused app token raises; a socket that cannot
    connect does not: the client tries again every 10 seconds, and /healthz says so."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    handler = SocketModeHandler(bolt, app_token)
    client = handler.client
    client.on_close_listeners.append(lambda code, reason: _reconnect(client, code, reason))
    handler.connect()
    return client


def _reconnect(client, code: int, reason: str | None) -> None:
    """Slack closed the connection without a `disconnect` notice: connect again now, not on
    the client's next check (up to 10 s in which no event, command or click arrives). The
    SDK's own attempt on close does nothing, as the closing connection still counts as
    connected until its listeners have run: so it is let go first. A failed attempt is
    left to the client's next check."""
    from slack_sdk.errors import SlackClientError

    if not client.auto_reconnect_enabled:  # closing down
        return
    log.info("Slack closed the Socket Mode connection (%s%s); connecting again", code,
             f": {reason}" if reason else "")
    client.disconnect()
    try:
        client.connect_to_new_endpoint()
    except (SlackClientError, OSError) as exc:
        log.warning("could not connect to Slack again (%s); the next try is within 10 s", exc)


class CannotStart(Exception):
    """Start-up stopped for a reason one line says (Slack unreachable, a token refused)."""


# Each token by the start-up call that uses it: its variable, and where a good one comes from.
TOKENS = {
    "auth.test": ("the bot token", "SLACK_BOT_TOKEN",
                  "it takes the Bot User OAuth Token (xoxb-…) from your app's "
                  "OAuth & Permissions page, once the app is installed"),
    "apps.connections.open": ("the app token", "SLACK_APP_TOKEN",
                              "it takes an app-level token (xapp-…) with the connections:write "
                              "scope, from your app's Basic Information page → App-Level Tokens"),
}
# Slack's errors that mean "this token will not do", as opposed to Slack having a bad moment
TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked",
                          "token_expired", "account_inactive", "missing_scope", "no_permission"})


def _refused(method: str, error: str | None) -> str:
    """One line for Slack's refusal of a start-up call: which token, and what to do."""
    if method in TOKENS and error in TOKEN_ERRORS:
        what, var, hint = TOKENS[method]
        return f"Slack refused {what} ({var}): {error} — {hint}"
    return f"Slack refused {method}: {error}"


@contextlib.contextmanager
def _reaching_slack(secrets: Secrets):
    """Slack's failures at start-up, as one line instead of chained tracebacks (and the SDK's
    own lines about each try, unless debugging)."""
    from slack_sdk.errors import SlackApiError

    from bot.platform.runtime import SLACK_API

    sdk = logging.getLogger("slack_sdk")
    level = sdk.level
    if not log.isEnabledFor(logging.DEBUG):
        sdk.setLevel(logging.CRITICAL)
    try:
        yield
    except SlackApiError as exc:
        method = exc.response.api_url.rstrip("/").rsplit("/", 1)[-1]
        raise CannotStart(_refused(method, exc.response.get("error"))) from None
    except OSError as exc:  # URLError, refused, reset, timed out, TLS
        reason = getattr(exc, "reason", None) or exc
        raise CannotStart(f"cannot reach Slack at {secrets.slack_api_url or SLACK_API}: "
                          f"{reason}") from None
    finally:
        sdk.setLevel(level)


def cmd_worker(args) -> int:
    from bot.platform.runtime import SenderLoop, build_services

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # first: a stop during start-up is clean too
    # Ctrl-C is a stop too, wherever it lands (waiting for Slack in start-up, say): what has
    # started stops, the scheduler first (it queues for the sender), as `alignbot run` does
    with contextlib.ExitStack() as started, contextlib.suppress(KeyboardInterrupt):
        config, secrets = load_config(), Secrets.from_env()
        _require(secrets, app_mode=False)
        with _reaching_slack(secrets):
            services = build_services(config, secrets, SystemClock())  # auth.test: which workspace
        started.callback(SenderLoop(services).start().stop)
        started.callback(_start_scheduler(services).shutdown, wait=False)
        if args.port is not None:
            _serve_monitoring(services, args.host, args.port)
        log.info("worker running: scheduler and outbox sender (Ctrl-C to stop)")
        stop.wait()
    return 0


def _serve_monitoring(services, host: str, port: int, socket=None) -> None:
    from bot.platform.server import create_monitoring_app, serve

    web = create_monitoring_app(services, socket=socket)
    threading.Thread(target=serve, args=(web, host, port), kwargs={"threads": 2},
                     name="monitoring", daemon=True).start()
    log.info("serving /healthz, /readyz and /metrics on %s:%s", host, port)


def _start_scheduler(services):
    from bot.platform.scheduler import start_scheduler

    return start_scheduler(services)


def _require(secrets: Secrets, app_mode: bool) -> None:
    missing = [] if secrets.slack_bot_token or secrets.oauth else ["SLACK_BOT_TOKEN"]
    if app_mode and secrets.oauth and not secrets.slack_signing_secret:
        missing.append("SLACK_SIGNING_SECRET (OAuth mode serves Slack over HTTP)")
    elif app_mode and not (secrets.slack_app_token or secrets.slack_signing_secret):
        missing.append("SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)")
    problems = [f"environment: {m} is not set" for m in missing]
    app_token = secrets.slack_app_token
    if app_mode and secrets.oauth and app_token:
        problems.append("environment: SLACK_APP_TOKEN is set, but OAuth mode (SLACK_CLIENT_ID "
                        "without SLACK_BOT_TOKEN) takes installs and requests over HTTP: unset it")
    if app_mode and app_token and not app_token.startswith("xapp-"):
        # a bot token or the signing secret pasted there: say so before asking Slack
        problems.append("environment: SLACK_APP_TOKEN is not an app-level token (those start "
                        f"with xapp-): {TOKENS['apps.connections.open'][2]}")
    if problems:
        raise ConfigError(problems, "environment")


if __name__ == "__main__":
    sys.exit(main())
