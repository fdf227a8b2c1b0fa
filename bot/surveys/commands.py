"""`/align survey start|close|status|results` and what `alignbot survey` prints."""

from __future__ import annotations

from typing import Any

from bot.blocks import surveys as views
from bot.blocks.kit import escape
from bot.platform.command_table import Command, Invocation, Reply, positive_number
from bot.surveys import runs
from bot.surveys.results import Results, results
from storage import surveys as queries


def start_command(inv: Invocation) -> Reply:
    """Open a run of a survey now: `/align survey start pulse`.
    Everyone in its audience is prompted in their own working hours; it closes after its
    `open_for`, or with `/align survey close`."""
    if not inv.args:
        return Reply("Which survey? `/align survey start &lt;name&gt;`.")
    name = inv.args[0]

    def opened() -> Reply:
        try:
            run = runs.start(inv.services, name, by=inv.request.user_id)
        except runs.SurveyRefused as exc:
            return Reply.of(views.note(escape(str(exc))))  # may quote the name typed
        return Reply.of(views.run_opened(status_of(inv.services, run, name.lower())))

    survey = inv.services.config.survey(name)
    if survey is None or not runs.user_groups(survey):
        return opened()
    # its user groups' members come from Slack, one call per group and per newcomer
    return Reply.of(views.opening(survey.name), later=opened)


def close_command(inv: Invocation) -> Reply:
    """Close a survey's open run now and post its results: `/align survey close pulse`."""
    if not inv.args:
        return Reply("Which survey? `/align survey close &lt;name&gt;`.")
    try:
        return Reply.of(views.run_closed(runs.close(inv.services, inv.args[0])))
    except runs.SurveyRefused as exc:
        return Reply.of(views.note(escape(str(exc))))  # may quote the name typed


def status_command(inv: Invocation) -> Reply:
    """Open surveys and how many have answered so far: `/align survey status [name]`.
    Never answers: those wait for the close."""
    with inv.services.sessions() as session:
        open_runs = queries.list_open_runs(session, inv.request.team_id)
    wanted = inv.args[0].lower() if inv.args else None
    return Reply.of(views.status([status_of(inv.services, run, name) for run, name in open_runs
                                  if wanted in (None, name)]))


def results_command(inv: Invocation) -> Reply:
    """A survey's latest results: `/align survey results [name] [run]`.
    Per question and role: answers, mean, distribution, change since the previous run;
    groups under the survey's minimum are hidden."""
    found = find_results(inv.services, *(inv.args + [None, None])[:2])
    return Reply.of(views.note(escape(found)) if isinstance(found, str) else views.results_message(found))


def find_results(services, name: str | None, number: Any = None) -> Results | str:
    """A run's results, or what to say instead: the latest closed run by default."""
    if number is not None and positive_number(str(number)) is None:
        return f"{number!r} is not a run number; runs are numbered 1, 2, 3 …"
    with services.sessions() as session:
        work = services.work_in(session)
        if name is None:
            named = queries.list_surveys_with_runs(session, services.team_id)
            if not named:
                return "No survey has run yet."
            name = named[0]
        survey = queries.get_survey(session, services.team_id, name.lower())
        if survey is None:
            return runs.unknown_survey(services.config, name)
        run = queries.get_run_by_number(session, survey.id, int(number)) if number else \
            queries.get_latest_run(session, survey.id, closed=True) or \
            queries.get_latest_run(session, survey.id)
        if run is None:
            return f"{survey.key} has no run {number}." if number else f"{survey.key} has not run yet."
        return results(work, survey.key, run)


def status_of(services, run, name: str) -> views.RunStatus:
    with services.sessions() as session:
        participation = queries.count_invites(session, run.id)
        return views.RunStatus(name, run.number, run.opened_at, run.closes_at,
                               sum(i for i, _ in participation.values()),
                               queries.count_prompted(session, run.id),
                               queries.count_respondents(session, run.id), run.k)


COMMANDS = [
    Command("survey status", status_command, usage="[name]"),
    Command("survey results", results_command, usage="[name] [run]"),
    Command("survey start", start_command, usage="<name>", admin=True),
    Command("survey close", close_command, usage="<name>", admin=True),
]
