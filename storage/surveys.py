"""Survey queries. They take a session and never commit; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from storage import outbox
from storage.models import (
    OutboxMessage,
    Person,
    Survey,
    SurveyAnswer,
    SurveyInvite,
    SurveyQuestion,
    SurveyRun,
)

# -- surveys and runs


def get_or_add_survey(session: Session, team_id: str, key: str, now: datetime) -> Survey:
    survey = session.scalar(select(Survey).where(Survey.team_id == team_id, Survey.key == key))
    if survey is None:
        survey = Survey(team_id=team_id, key=key, created_at=now)
        session.add(survey)
        session.flush()
    return survey


def get_survey(session: Session, team_id: str, key: str) -> Survey | None:
    return session.scalar(select(Survey).where(Survey.team_id == team_id, Survey.key == key))


def get_run(session: Session, run_id: int) -> SurveyRun | None:
    return session.get(SurveyRun, run_id)


def get_run_to_answer(session: Session, run_id: int) -> SurveyRun | None:
    """The run, read FOR SHARE until the transaction ends: `mark_closed`'s UPDATE waits
    for an answer taken while the run is open, so the close anonymises it, and an answer
    after the close reads the run closed. (SQLite has one writer at a time anyway.)"""
    return session.get(SurveyRun, run_id, with_for_update={"read": True},
                       populate_existing=True)


def get_open_run(session: Session, survey_id: int) -> SurveyRun | None:
    return session.scalar(select(SurveyRun).where(SurveyRun.survey_id == survey_id,
                                                  SurveyRun.state == "open"))


def get_run_by_number(session: Session, survey_id: int, number: int) -> SurveyRun | None:
    return session.scalar(select(SurveyRun).where(SurveyRun.survey_id == survey_id,
                                                  SurveyRun.number == number))


def get_latest_run(session: Session, survey_id: int, *, closed: bool = False,
                   before: int | None = None) -> SurveyRun | None:
    """The survey's newest run (closed only, or before run number `before`)."""
    query = select(SurveyRun).where(SurveyRun.survey_id == survey_id)
    if closed:
        query = query.where(SurveyRun.state == "closed")
    if before is not None:
        query = query.where(SurveyRun.number < before)
    return session.scalars(query.order_by(SurveyRun.number.desc()).limit(1)).first()


def next_run_number(session: Session, survey_id: int) -> int:
    return (session.scalar(select(func.max(SurveyRun.number))
                           .where(SurveyRun.survey_id == survey_id)) or 0) + 1


def get_last_scheduled_open(session: Session, survey_id: int) -> datetime | None:
    return session.scalar(select(func.max(SurveyRun.opened_at)).where(
        SurveyRun.survey_id == survey_id, SurveyRun.started_by == "schedule"))


def list_surveys_with_runs(session: Session, team_id: str) -> list[str]:
    """Names of the surveys that have run, the one run latest first."""
    return list(session.scalars(select(Survey.key).join(SurveyRun, SurveyRun.survey_id == Survey.id)
                                .where(Survey.team_id == team_id).group_by(Survey.key)
                                .order_by(func.max(SurveyRun.opened_at).desc())))


def list_open_runs(session: Session, team_id: str | None = None) -> list[tuple[SurveyRun, str]]:
    """Open runs with their survey's name, oldest first (every workspace without `team_id`)."""
    query = (select(SurveyRun, Survey.key).join(Survey, Survey.id == SurveyRun.survey_id)
             .where(SurveyRun.state == "open"))
    if team_id is not None:
        query = query.where(SurveyRun.team_id == team_id)
    return [(run, key) for run, key in session.execute(query.order_by(SurveyRun.id))]


def get_first_due(session: Session) -> datetime | None:
    """When the next prompt, reminder or close of a run comes due (maybe already)."""
    return min(filter(None, session.execute(select(
        select(func.min(SurveyInvite.prompt_due_at)).scalar_subquery(),
        select(func.min(SurveyInvite.next_reminder_at)).scalar_subquery(),
        select(func.min(SurveyRun.closes_at)).where(SurveyRun.state == "open")
        .scalar_subquery())).one()), default=None)


def list_due_runs(session: Session, now: datetime) -> list[int]:
    return list(session.scalars(select(SurveyRun.id).where(SurveyRun.state == "open",
                                                           SurveyRun.closes_at <= now)))


def mark_closed(session: Session, run_id: int, now: datetime) -> bool:
    """Close an open run and erase its secret: one conditional UPDATE, so of two closers
    (a worker's sweep, an admin's command) exactly one goes on to rewrite its answers."""
    return session.execute(
        update(SurveyRun).where(SurveyRun.id == run_id, SurveyRun.state == "open")
        .values(state="closed", closed_at=now, secret=None)
        .execution_options(synchronize_session=False)).rowcount == 1


def get_survey_key(session: Session, survey_id: int) -> str:
    return session.scalar(select(Survey.key).where(Survey.id == survey_id))


# -- questions and invites


def add_questions(session: Session, rows: list[dict[str, Any]]) -> list[SurveyQuestion]:
    questions = [SurveyQuestion(**row) for row in rows]
    session.add_all(questions)
    session.flush()
    return questions


def list_questions(session: Session, run_id: int) -> list[SurveyQuestion]:
    return list(session.scalars(select(SurveyQuestion).where(SurveyQuestion.run_id == run_id)
                                .order_by(SurveyQuestion.position)))


def list_audience(session: Session, team_id: str, roles: Collection[str]) -> list[Person]:
    return list(session.scalars(select(Person).where(
        Person.team_id == team_id, Person.role.in_(roles), Person.deactivated.is_(False))
        .order_by(Person.id)))


def add_invites(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(SurveyInvite), rows)


def get_invite(session: Session, run_id: int, person_id: int) -> SurveyInvite | None:
    return session.scalar(select(SurveyInvite).where(SurveyInvite.run_id == run_id,
                                                     SurveyInvite.person_id == person_id))


def list_invites(session: Session, invite_ids: Iterable[int]) -> list[tuple[SurveyInvite, Person]]:
    return list(session.execute(select(SurveyInvite, Person)
                                .join(Person, Person.id == SurveyInvite.person_id)
                                .where(SurveyInvite.id.in_(list(invite_ids)))
                                .order_by(SurveyInvite.id)).all())


def list_run_invites(session: Session, run_id: int) -> list[tuple[SurveyInvite, Person]]:
    return list(session.execute(select(SurveyInvite, Person)
                                .join(Person, Person.id == SurveyInvite.person_id)
                                .where(SurveyInvite.run_id == run_id)).all())


def list_person_invites(session: Session, person_id: int, *, state: str,
                        limit: int = 12) -> list[tuple[SurveyInvite, SurveyRun, str]]:
    """A person's invites to runs in `state`, newest run first, with the survey's name."""
    return list(session.execute(
        select(SurveyInvite, SurveyRun, Survey.key)
        .join(SurveyRun, SurveyRun.id == SurveyInvite.run_id)
        .join(Survey, Survey.id == SurveyRun.survey_id)
        .where(SurveyInvite.person_id == person_id, SurveyRun.state == state)
        .order_by(SurveyRun.id.desc()).limit(limit)).all())


def _claim(session: Session, column, now: datetime, limit: int, **values) -> list[int]:
    """Take up to `limit` invites whose `column` time has come, in one conditional UPDATE
    (SKIP LOCKED on PostgreSQL: concurrent sweeps take disjoint sets; SQLite has one writer).
    The caller acts on them in the same transaction, so each is acted on once."""
    candidates = (select(SurveyInvite.id).where(column <= now).order_by(column).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return list(session.scalars(
        update(SurveyInvite).where(SurveyInvite.id.in_(candidates), column <= now)
        .values(**values).returning(SurveyInvite.id)
        .execution_options(synchronize_session=False)))


def claim_due_prompts(session: Session, now: datetime, limit: int) -> list[int]:
    return _claim(session, SurveyInvite.prompt_due_at, now, limit, prompt_due_at=None,
                  prompted_at=now)


def claim_due_reminders(session: Session, now: datetime, limit: int) -> list[int]:
    return _claim(session, SurveyInvite.next_reminder_at, now, limit, next_reminder_at=None)


def set_invites(session: Session, changes: list[dict[str, Any]]) -> None:
    """Per-invite new values ({"id": ..., column: value}), alike rows in one statement each."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        shapes.setdefault(tuple(sorted(change)), []).append(change)
    for alike in shapes.values():
        session.execute(update(SurveyInvite), alike)


def count_invites(session: Session, run_id: int) -> dict[str, tuple[int, int]]:
    """role → (invited, responded): participation, never answers. Before the close,
    `responded` is unknown (counted by `count_respondents` instead)."""
    rows = session.execute(select(SurveyInvite.role, func.count(),
                                  func.count().filter(SurveyInvite.responded.is_(True)))
                           .where(SurveyInvite.run_id == run_id)
                           .group_by(SurveyInvite.role)).all()
    return {role: (invited, responded) for role, invited, responded in rows}


def count_prompted(session: Session, run_id: int) -> int:
    return session.scalar(select(func.count()).select_from(SurveyInvite).where(
        SurveyInvite.run_id == run_id, SurveyInvite.prompted_at.is_not(None))) or 0


def end_invites(session: Session, run_id: int, responded: Collection[int]) -> None:
    """At close: nothing more is due, and who answered anything is all that is kept (how many
    reminders someone got says they had questions left then)."""
    session.execute(update(SurveyInvite).where(SurveyInvite.run_id == run_id)
                    .values(prompt_due_at=None, next_reminder_at=None, reminders_sent=0,
                            responded=SurveyInvite.id.in_(list(responded)) if responded
                            else False)
                    .execution_options(synchronize_session=False))


# -- answers


def get_answer(session: Session, question_id: int, key: str) -> SurveyAnswer | None:
    return session.scalar(select(SurveyAnswer).where(SurveyAnswer.question_id == question_id,
                                                     SurveyAnswer.respondent_key == key))


def list_answered(session: Session, run_id: int, keys: Collection[str]) -> dict[str, set[int]]:
    """respondent key → the question ids it has answered (of these keys)."""
    answered: dict[str, set[int]] = {}
    for key, question_id in session.execute(
            select(SurveyAnswer.respondent_key, SurveyAnswer.question_id)
            .where(SurveyAnswer.run_id == run_id, SurveyAnswer.respondent_key.in_(list(keys)))):
        answered.setdefault(key, set()).add(question_id)
    return answered


def count_respondents(session: Session, run_id: int) -> int:
    """People who have answered something in an open run (their keys), never what."""
    return session.scalar(select(func.count(func.distinct(SurveyAnswer.respondent_key)))
                          .where(SurveyAnswer.run_id == run_id)) or 0


def list_answers(session: Session, run_id: int) -> list[SurveyAnswer]:
    return list(session.scalars(select(SurveyAnswer).where(SurveyAnswer.run_id == run_id)))


def replace_answers(session: Session, run_id: int, rows: list[dict[str, Any]]) -> None:
    """The run's answers become `rows`, inserted in the order given (new ids, new places)."""
    session.execute(delete(SurveyAnswer).where(SurveyAnswer.run_id == run_id)
                    .execution_options(synchronize_session=False))
    if rows:
        session.execute(insert(SurveyAnswer), rows)


def list_closed_answers(session: Session, run_ids: Collection[int]):
    """(run_id, question key, role, value, text) of closed runs: what results are made of."""
    return session.execute(
        select(SurveyAnswer.run_id, SurveyQuestion.key, SurveyAnswer.role, SurveyAnswer.value,
               SurveyAnswer.text)
        .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
        .where(SurveyAnswer.run_id.in_(list(run_ids)))
        .order_by(SurveyAnswer.id)).all()


# -- the outbox rows of a run's prompts


def reminder_ref(run_id: int) -> str:
    """The ref of the run's reminders, one a person."""
    return f"survey-reminder:{run_id}"


def _run_refs(run_id: int):
    """Refs of the run's prompts and their edits: "survey:<run>:<position>:<user>"."""
    return (OutboxMessage.ref >= f"survey:{run_id}:") & (OutboxMessage.ref < f"survey:{run_id};")


def find_prompt_by_ts(session: Session, team_id: str, run_id: int, channel: str,
                      ts: str) -> str | None:
    """The ref of the run's prompt posted as message `ts` in `channel`, if it is one."""
    return session.scalar(select(OutboxMessage.ref).where(
        OutboxMessage.team_id == team_id, _run_refs(run_id),
        OutboxMessage.method == "chat.postMessage", OutboxMessage.ts == ts,
        or_(OutboxMessage.posted_channel == channel, OutboxMessage.channel == channel)).limit(1))


def supersede_queued_edits(session: Session, team_id: str, ref: str) -> None:
    """Drop the still-queued edits of a prompt: a newer one says all they would have."""
    session.execute(update(OutboxMessage).where(
        OutboxMessage.team_id == team_id, OutboxMessage.ref == ref,
        OutboxMessage.method == "chat.update", OutboxMessage.state == "pending")
        .values(state="superseded").execution_options(synchronize_session=False))


def forget_answer_echoes(session: Session, team_id: str, run_id: int, notice: dict) -> None:
    """The run's prompt edits showed people their own answers, and its reminders listed the
    questions each person had left: gone at close. An edit a sender is delivering right now
    lands as it was (the sender holds it in memory); its copy here reads as `notice`, so an
    attempt that fails is tried again saying the run closed, as a recalled prompt does (a
    blank one Slack refuses, and the admins would hear of it). Prompts and reminders still
    queued are dropped: the run they ask for is over; one that may have reached Slack (an
    attempt without an answer, or one in flight) is recalled: never posted again, and a copy
    that landed is edited to read as `notice`."""
    edits = (OutboxMessage.team_id == team_id, _run_refs(run_id),
             OutboxMessage.method == "chat.update")
    session.execute(delete(OutboxMessage).where(*edits, OutboxMessage.state != "sending")
                    .execution_options(synchronize_session=False))
    session.execute(update(OutboxMessage).where(*edits).values(payload=notice)
                    .execution_options(synchronize_session=False))
    reminders = (OutboxMessage.team_id == team_id, OutboxMessage.ref == reminder_ref(run_id))
    prompts = (OutboxMessage.team_id == team_id, _run_refs(run_id))
    outbox.mark_recalled(session, notice, *reminders)
    outbox.mark_recalled(session, notice, *prompts)
    session.execute(delete(OutboxMessage).where(*reminders, OutboxMessage.recalled.is_(False))
                    .execution_options(synchronize_session=False))
    session.execute(update(OutboxMessage).where(*prompts, OutboxMessage.state == "pending")
                    .values(state="superseded").execution_options(synchronize_session=False))
