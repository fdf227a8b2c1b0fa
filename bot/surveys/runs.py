"""A run's life: opened (on schedule or by an admin), prompted in each person's working
hours, non-responders reminded, closed (the anonymising rewrite, then the results).

Every effect is claimed in the database in the transaction that has it, so several
workers running the sweep each do a part and nothing twice: a scheduled firing inserts
its run under a unique key, prompts and reminders are taken with a conditional UPDATE,
and a close is the conditional UPDATE of the run's state.
"""

from __future__ import annotations

import logging
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import home
from bot.blocks import surveys as views
from bot.handoff.directory import upsert_slack_user
from bot.platform import outbox
from bot.platform.config import Config, Survey
from bot.platform.scheduler import apart
from bot.platform.work import Work
from bot.sla.policies import calendar_for
from bot.surveys.keys import prompt_ref, respondent_key
from bot.surveys.results import Results, anonymised, results
from bot.surveys.templates import Question
from storage import pacing
from storage import surveys as queries
from storage.bulk import batch
from storage.models import Person, SurveyQuestion, SurveyRun
from storage.people import get_person

log = logging.getLogger(__name__)

SCHEDULE = "schedule"  # `started_by` of a run its schedule opened
GRACE = timedelta(hours=1)  # a firing missed by less than this (a restart) still opens its run
DST_SLACK = timedelta(hours=1)  # `every` tolerates a daylight-saving hour between firings
BATCH = 500  # invites prompted or reminded per transaction
TEAM = {"sales_manager": "sales", "marketing_manager": "marketing"}  # results group managers
# with their team: a role of one or two would only ever be hidden, and hide others with it


class SurveyRefused(Exception):
    """Why a run could not be started or closed; said to whoever asked."""


# ------------------------------------------------------------------ opening


def open_run(work: Work, survey: Survey, *, started_by: str,
             groups: GroupMembers | None = None) -> SurveyRun:
    """Open a run now: questions as the config says today, the audience as it is today
    (its Slack user groups' members as `ask_slack` found them, before this transaction)."""
    session, team_id, now = work.session, work.team_id, work.now
    row = queries.get_or_add_survey(session, team_id, survey.name, now)
    if queries.get_open_run(session, row.id) is not None:
        raise SurveyRefused(f"{survey.name} already has an open run; close it first "
                            f"(`/align survey close {survey.name}`).")
    audience = _audience(work, survey, groups)
    if not audience:
        raise SurveyRefused(f"Nobody is in the audience of {survey.name} "
                            f"({', '.join(survey.audience)}): no run was opened.")
    run = SurveyRun(team_id=team_id, survey_id=row.id, state="open", started_by=started_by,
                    number=queries.next_run_number(session, row.id), k=survey.min_responses,
                    secret=secrets.token_hex(32), opened_at=now, closes_at=now + survey.open_for)
    session.add(run)
    session.flush()
    queries.add_questions(session, [
        {"team_id": team_id, "run_id": run.id, "position": i, "key": q.key, "text": q.text,
         "type": q.type, "options": list(q.options) or None}
        for i, q in enumerate(survey.questions)])
    queries.add_invites(session, [
        {"team_id": team_id, "run_id": run.id, "person_id": person.id, "role": role,
         "reminders_sent": 0,
         "prompt_due_at": calendar_for(work.config, person).next_working_start(now)}
        for person, role in audience.items()])
    log.info("survey %s run %s opened by %s: %d invited", survey.name, run.number, started_by,
             len(audience))
    return run


def _audience(work: Work, survey: Survey, groups: GroupMembers | None) -> dict[Person, str]:
    """Everyone the survey asks, with the group their answers count in. Someone of a Slack
    user group alignbot knows answers in their role's group; someone it meets there (looked
    up: their timezone) answers in the user group's."""
    session, team_id = work.session, work.team_id
    roles = {r for r in survey.audience if not r.startswith("S")}
    wanted = roles | {m for m, team in TEAM.items() if team in roles}
    people = {p: TEAM.get(p.role, p.role) for p in queries.list_audience(session, team_id, wanted)}
    if any(g.startswith("S") for g in survey.audience):
        if groups is None:
            raise SurveyRefused(f"{survey.name} asks Slack user groups, and Slack is not here.")
        for user, group in groups.members:
            person = get_person(session, team_id, user)
            if person is None and user in groups.newcomers:
                person = upsert_slack_user(work, groups.newcomers[user])
                person.role = "other"  # not a role of the config: no leads, no managing
                people.setdefault(person, groups.handles.get(group, group))
            elif person is not None and not person.deactivated:
                people.setdefault(person, TEAM.get(person.role, person.role))
    return people


@dataclass
class GroupMembers:
    """What Slack says of a survey's user groups, asked before any transaction (no lock
    waits for Slack): their members, and those alignbot did not know yet."""

    handles: dict[str, str]  # group id -> its @handle
    members: list[tuple[str, str]]  # (user, group), in Slack's order
    newcomers: dict[str, dict]  # user -> users.info, for people alignbot has no row for


def user_groups(survey: Survey) -> list[str]:
    """The Slack user groups (ids `S…`) in the survey's audience, beside its roles."""
    return [g for g in survey.audience if g.startswith("S")]


def ask_slack(services, survey: Survey) -> GroupMembers | None:
    """The survey's user groups' members (None: it asks none). Deleted users and bots
    are left out."""
    groups = user_groups(survey)
    if not groups:
        return None
    slack, team_id = services.slack, services.team_id
    try:
        handles = {g["id"]: g.get("handle") or g["id"]
                   for g in slack.usergroups_list(team_id=team_id)["usergroups"]}
        members = [(user, group) for group in groups for user in
                   slack.usergroups_users_list(usergroup=group, team_id=team_id)["users"]]
        with services.sessions() as session:
            unknown = {u for u, _ in members if get_person(session, team_id, u) is None}
        newcomers = {}
        for user in sorted(unknown):
            info = slack.users_info(user=user)["user"]
            if not (info.get("deleted") or info.get("is_bot")):
                newcomers[user] = info
    except SlackApiError as exc:
        raise SurveyRefused(f"Slack refused to list user group members: "
                            f"{exc.response.get('error')} (does the app have usergroups:read?)")\
            from None
    return GroupMembers(handles, members, newcomers)


def start(services, survey_name: str, by: str) -> SurveyRun:
    """`/align survey start` and `alignbot survey start`: a run opened now, by someone."""
    survey = services.config.survey(survey_name)
    if survey is None:
        raise SurveyRefused(unknown_survey(services.config, survey_name))
    groups = ask_slack(services, survey)
    try:
        with services.work() as work:
            run = open_run(work, survey, started_by=by, groups=groups)
            work.session.expunge(run)
    except IntegrityError:  # a scheduled firing opened one at this very moment
        raise SurveyRefused(f"{survey.name} already has an open run.") from None
    send_prompts(services, services.clock.now())
    return run


def unknown_survey(config: Config, name: str) -> str:
    names = ", ".join(s.name for s in config.surveys) or "none yet: add [[surveys]] to the config"
    return f"There is no survey {name!r}. Surveys: {names}."


# ------------------------------------------------------------------ the schedule


def _schedule(survey: Survey, config: Config) -> CronTrigger:
    return CronTrigger.from_crontab(survey.schedule, timezone=config.workspace.tz)


def due_firing(survey: Survey, config: Config, now: datetime) -> datetime | None:
    """The schedule's latest firing at or before `now`, if it is at most GRACE old."""
    if not survey.schedule:
        return None
    trigger = _schedule(survey, config)
    fired = trigger.get_next_fire_time(None, now - GRACE)
    latest = None
    while fired is not None and fired <= now:
        latest, fired = fired, trigger.get_next_fire_time(fired, fired + timedelta(seconds=1))
    return latest


def open_scheduled(services, now: datetime) -> list[SurveyRun]:
    """Open the runs whose firing came. Each firing is one run however many workers see it:
    the run is keyed by (survey, firing time). With `every`, a firing opens a run only when
    the last scheduled one opened at least that long ago (a fortnightly pulse on a weekly
    schedule); manual runs do not move the schedule."""
    opened = []
    for survey in services.config.surveys:
        fired = due_firing(survey, services.config, now)
        if fired is None:
            continue
        try:
            with services.sessions() as session:
                row = queries.get_survey(session, services.team_id, survey.name)
                if row is not None and not _opens(session, row.id, survey, fired):
                    continue
            groups = ask_slack(services, survey)  # Slack is asked before the transaction
            with services.work(now=now) as work:
                row = queries.get_or_add_survey(work.session, work.team_id, survey.name, now)
                if not _opens(work.session, row.id, survey, fired):
                    continue  # another worker was first
                run = open_run(work.at(fired), survey, started_by=SCHEDULE, groups=groups)
                work.session.expunge(run)
                opened.append(run)
        except IntegrityError:
            continue  # another worker opened it first
        except SurveyRefused as exc:
            log.warning("survey %s: the scheduled run did not open: %s", survey.name, exc)
    return opened


def _opens(session: Session, survey_id: int, survey: Survey, fired: datetime) -> bool:
    """Does this firing open a run: its run is not there yet, `every` does not skip it,
    and no run is still open?"""
    if _settled(session, survey_id, survey, fired):
        return False
    if queries.get_open_run(session, survey_id) is not None:
        log.info("survey %s: the schedule fired while a run is still open; skipped", survey.name)
        return False
    return True


# ------------------------------------------------------------------ prompts and reminders


@dataclass
class _RunCache:
    """What prompting many people of a run needs once."""

    run: SurveyRun
    name: str
    questions: list[SurveyQuestion]
    survey: Survey | None

    def view(self, row: SurveyQuestion, answer: str | None = None) -> views.PromptView:
        return views.PromptView(self.name, self.run.id, row.position, len(self.questions),
                                Question.of(row), self.run.closes_at, self.run.k, answer)


def _runs(work: Work, invites) -> dict[int, _RunCache]:
    session, cache = work.session, {}
    for invite, _ in invites:
        if invite.run_id not in cache:
            run = queries.get_run(session, invite.run_id)
            name = queries.get_survey_key(session, run.survey_id)
            cache[run.id] = _RunCache(run, name, queries.list_questions(session, run.id),
                                      work.config.survey(name))
    return cache


def send_prompts(services, now: datetime) -> int:
    """Prompt everyone whose prompts are due, each in their working hours (else held till
    their next working start); their first reminder is then due `remind_every` later."""
    sent = 0
    while True:
        with services.work(now=now) as work:
            session = work.session
            invites = queries.list_invites(session, queries.claim_due_prompts(session, now, BATCH))
            runs, rows, changes, prompted = _runs(work, invites), batch(session), [], []
            for invite, person in invites:
                cache = runs[invite.run_id]
                calendar = calendar_for(services.config, person)
                if cache.run.state != "open" or person.deactivated:
                    continue
                if not calendar.is_working_time(now):
                    changes.append({"id": invite.id, "prompted_at": None,
                                    "prompt_due_at": calendar.next_working_start(now)})
                    continue
                for q in cache.questions:
                    outbox.post(session, invite.team_id, person.slack_id,
                                views.prompt(cache.view(q)), now=now,
                                ref=prompt_ref(cache.run.id, q.position, person.slack_id))
                if cache.survey and cache.survey.reminders:
                    changes.append({"id": invite.id,
                                    "next_reminder_at": now + cache.survey.remind_every})
                prompted.append(person.id)
            rows.write(session)
            queries.set_invites(session, changes)
            home.mark_stale(work, prompted)  # their Homes list the questions now waiting
            sent += len(prompted)
        if len(invites) < BATCH:
            return sent


def send_reminders(services, now: datetime) -> int:
    """Remind who has not answered every question (free text aside), in their hours; each
    reminder once, `reminders` of them, `remind_every` apart."""
    sent = 0
    while True:
        with services.work(now=now) as work:
            session = work.session
            invites = queries.list_invites(session,
                                           queries.claim_due_reminders(session, now, BATCH))
            runs, rows, changes = _runs(work, invites), batch(session), []
            for run_id, cache in runs.items():
                if cache.run.state != "open" or cache.survey is None:
                    continue
                mine = [(i, p) for i, p in invites if i.run_id == run_id and not p.deactivated]
                keys = {i.id: respondent_key(cache.run.secret, p.id) for i, p in mine}
                answered = queries.list_answered(session, run_id, keys.values())
                for invite, person in mine:
                    left = [q for q in cache.questions if Question.of(q).required
                            and q.id not in answered.get(keys[invite.id], ())]
                    calendar = calendar_for(services.config, person)
                    if not left:
                        continue  # nothing to remind of: no more reminders
                    if not calendar.is_working_time(now):
                        changes.append({"id": invite.id,
                                        "next_reminder_at": calendar.next_working_start(now)})
                        continue
                    outbox.post(session, invite.team_id, person.slack_id, views.reminder(
                        views.PendingSurvey(cache.name, cache.run.closes_at,
                                            tuple(q.text for q in left), cache.run.k)),
                                now=now, ref=queries.reminder_ref(run_id))
                    more = invite.reminders_sent + 1 < cache.survey.reminders
                    changes.append({"id": invite.id, "reminders_sent": invite.reminders_sent + 1,
                                    "next_reminder_at": now + cache.survey.remind_every
                                    if more else None})
                    sent += 1
            rows.write(session)
            queries.set_invites(session, changes)
        if len(invites) < BATCH:
            return sent


# ------------------------------------------------------------------ closing


def close_run(work: Work, run: SurveyRun, *, announce: bool = True,
              rng: random.Random | None = None) -> Results | None:
    """Close an open run (None if someone else closed it first) and make it anonymous:
    who answered anything is kept, per person; the answers are rewritten in random order
    without their key (the secret that made it is erased), with the role only where that
    group is shown, and without any group results never show. The prompt edits that showed
    people their own answers leave the outbox; prompts and reminders not delivered never
    are (one that may have landed is edited to say the run closed). Then the results go
    to the survey's channel."""
    session, now, secret = work.session, work.now, run.secret
    if not queries.mark_closed(session, run.id, now):
        return None
    invites = queries.list_run_invites(session, run.id)
    role_of = {respondent_key(secret, person.id): invite.role for invite, person in invites}
    answers = queries.list_answers(session, run.id)
    keys = {a.respondent_key for a in answers}
    queries.end_invites(session, run.id, [i.id for i, p in invites
                                          if respondent_key(secret, p.id) in keys])
    kept = anonymised(queries.list_questions(session, run.id), answers, role_of, run.k,
                      rng or random.SystemRandom())
    queries.replace_answers(session, run.id, [{"team_id": run.team_id, "run_id": run.id,
                                               "respondent_key": None, **a} for a in kept])
    name = queries.get_survey_key(session, run.survey_id)
    queries.forget_answer_echoes(session, run.team_id, run.id, views.closed_prompt(name))
    pacing.forget(session, run.team_id, [person.slack_id for _, person in invites])
    session.expire_all()
    shown = results(work, name, queries.get_run(session, run.id))
    survey = work.config.survey(name)
    if announce and survey and survey.channel:
        outbox.post(session, run.team_id, survey.channel, views.results_message(shown), now=now,
                    ref=f"survey-results:{run.id}")
    home.mark_team_stale(work.for_team(run.team_id))
    log.info("survey %s run %s closed: %d of %d answered", name, shown.number, shown.responded,
             shown.invited)
    return shown


def close(services, survey_name: str) -> Results:
    """`/align survey close` and `alignbot survey close`: close the open run now."""
    survey = services.config.survey(survey_name)
    if survey is None:
        raise SurveyRefused(unknown_survey(services.config, survey_name))
    with services.work() as work:
        row = queries.get_survey(work.session, work.team_id, survey.name)
        run = queries.get_open_run(work.session, row.id) if row else None
        shown = close_run(work, run) if run else None
    if shown is None:
        raise SurveyRefused(f"{survey.name} has no open run to close.")
    return shown


def _settled(session: Session, survey_id: int, survey: Survey, fired: datetime) -> bool:
    """This firing's run exists, or `every` skips this firing."""
    last = queries.get_last_scheduled_open(session, survey_id)
    return last is not None and (last >= fired or bool(
        survey.every and fired - last < survey.every - DST_SLACK))


def next_due(services) -> datetime | None:
    """When the sweep next has work (the shell's `tick` skips the minutes before it): a
    prompt, reminder or close coming due, a schedule's next firing, or now while a firing
    within GRACE has not opened its run (a run still open delays it; its close is due)."""
    now = services.clock.now()
    with services.sessions() as session:
        due = [queries.get_first_due(session)]
        for survey in services.config.surveys:
            if (fired := due_firing(survey, services.config, now)) is not None:
                row = queries.get_survey(session, services.team_id, survey.name)
                if row is None or not _settled(session, row.id, survey, fired):
                    due.append(now)
            if survey.schedule:
                due.append(_schedule(survey, services.config).get_next_fire_time(
                    None, now + timedelta(microseconds=1)))  # the one at `now` has run
    return min(filter(None, due), default=None)


def close_due(services, now: datetime) -> list[Results]:
    closed = []
    with services.sessions() as session:
        due = queries.list_due_runs(session, now)
    for run_id in due:
        with services.work(now=now) as work:
            run = queries.get_run(work.session, run_id)
            if (shown := close_run(work.for_team(run.team_id), run)) is not None:
                closed.append(shown)
    return closed


def sweep(services, now: datetime) -> dict[str, int]:
    """The job, once for all workspaces: open what each one's schedules fired, then prompt,
    remind and close what is due, each invite and run in its own workspace."""
    opened = []
    for team in services.workspaces():  # one workspace's failure holds up no other's
        opened += apart(team, "surveys.sweep", lambda team=team: open_scheduled(team, now)) or []
    closed = close_due(services, now)
    return {"opened": len(opened), "prompted": send_prompts(services, now),
            "reminded": send_reminders(services, now), "closed": len(closed)}

