"""The data model of PRODUCT.md as SQLAlchemy 2 typed models.

Every row carries `team_id` (the Slack workspace) so one deployment can serve
several workspaces. All times are aware UTC (`UTCDateTime`). Indexes are the ones
the metric queries and the sweeps filter on. Every change here needs a migration
(`alembic revision --autogenerate`); tests fail when the two disagree.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    insert,
    inspect,
    literal,
    select,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    LoaderCallableStatus,
    Mapped,
    Session,
    mapped_column,
)

from storage.types import UTCDateTime

# Stable constraint names, so migrations can refer to them on every dialect.
NAMING = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(14, 2)
TeamId = String(32)
SlackId = String(32)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, Decimal: Money}


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("team_id", "slack_id"),
        Index("ix_people_team_email", "team_id", "email"),
        Index("ix_people_team_role", "team_id", "role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    slack_id: Mapped[str] = mapped_column(SlackId)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    manager_slack_id: Mapped[str | None] = mapped_column(SlackId)
    timezone: Mapped[str | None] = mapped_column(String(64))
    working_hours: Mapped[str | None] = mapped_column(String(16))  # "09:00-17:00"
    weight: Mapped[int] = mapped_column(Integer, default=1)
    daily_cap: Mapped[int | None]
    away_until: Mapped[datetime | None]
    deactivated: Mapped[bool] = mapped_column(Boolean, default=False)
    from_config: Mapped[bool] = mapped_column(Boolean, default=False)
    looked_up_at: Mapped[datetime | None]  # last users.info / lookupByEmail answer
    updated_at: Mapped[datetime]


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("team_id", "external_id"),
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 100)", name="score_range"),
        Index("ix_leads_team_status", "team_id", "status"),
        Index("ix_leads_team_owner_status", "team_id", "owner_id", "status"),
        Index("ix_leads_team_mql_at", "team_id", "mql_at"),
        # covering: an exact median of response times ranks a period's values from the index
        # alone (at 1M leads, a quarter in 0.14 s instead of 0.4 s of row lookups), in wall
        # or business minutes; and every query by routing time uses its first two columns
        Index("ix_leads_team_routed_touch", "team_id", "routed_at", "first_touch_at",
              "response_minutes", "business_minutes"),
        # a capped person's load today: the leads given to them today, not everyone's
        Index("ix_leads_team_owner_assigned", "team_id", "owner_id", "assigned_at"),
        # rejected_at first: "decided in the period" is (not rejected, accepted in it) or
        # (rejected in it), and both halves are then a range of this one index
        Index("ix_leads_team_decided", "team_id", "rejected_at", "accepted_at"),
        Index("ix_leads_team_due", "team_id", "sla_due_at"),
        Index("ix_leads_team_updated", "team_id", "updated_at"),  # what a metric refresh redoes
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    external_id: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    score: Mapped[int | None]
    segment: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    why: Mapped[str | None] = mapped_column(Text)
    crm_url: Mapped[str | None] = mapped_column(String(1000))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    # the owner the CRM names (its last owner_email), not necessarily the lead's owner: a
    # click or the SLA may have reassigned it, and one nobody here has leaves it with its
    # owner. The owner's email is always their person's (`owner_id`), never a copy here
    crm_owner_email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), default="new")
    rejection_reason: Mapped[str | None] = mapped_column(String(32))
    rejection_note: Mapped[str | None] = mapped_column(Text)
    # the time of every stage, kept on the row for fast metrics
    created_at: Mapped[datetime]
    # (the times metrics count it at load their old value when set: `_record_left_instants`)
    mql_at: Mapped[datetime | None] = mapped_column(active_history=True)
    # its handoff to sales began: a reassignment keeps it
    routed_at: Mapped[datetime | None] = mapped_column(active_history=True)
    assigned_at: Mapped[datetime | None]  # its owner's since: the SLA clock and nudges run from it
    accepted_at: Mapped[datetime | None] = mapped_column(active_history=True)
    rejected_at: Mapped[datetime | None] = mapped_column(active_history=True)
    first_touch_at: Mapped[datetime | None]
    qualified_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    recycled_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    source_updated_at: Mapped[datetime | None]  # the CRM's time of the update applied last
    # the SLA as decided at routing (the owner's clock), and its outcome at first touch or
    # rejection; a reassignment after the due time passed unanswered decides it missed
    sla_policy: Mapped[str | None] = mapped_column(String(64))
    sla_clock: Mapped[str | None] = mapped_column(String(16))
    sla_due_at: Mapped[datetime | None]
    sla_met: Mapped[bool | None]
    response_minutes: Mapped[float | None] = mapped_column(Float)
    business_minutes: Mapped[float | None] = mapped_column(Float)


class LeadEvent(Base):
    """Append-only history of a lead: what changed, who did it, when."""

    __tablename__ = "lead_events"
    __table_args__ = (
        Index("ix_lead_events_lead_at", "lead_id", "at"),
        Index("ix_lead_events_at", "at"),  # retention: the history older than a time
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # created, routed, accepted, field_changed...
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))  # a Slack user id, or "system"/"webhook"/"import"
    at: Mapped[datetime]
    data: Mapped[dict[str, Any] | None]


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        UniqueConstraint("team_id", "external_id"),
        CheckConstraint("outcome IN ('open', 'won', 'lost')", name="outcome"),
        # covering: won and lost amounts of a period by source or owner, without visiting rows
        Index("ix_deals_team_closed", "team_id", "closed_at", "outcome", "source", "amount",
              "owner_id"),
        Index("ix_deals_team_created", "team_id", "created_at"),
        Index("ix_deals_lead", "lead_id"),
        Index("ix_deals_team_updated", "team_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    external_id: Mapped[str] = mapped_column(String(128))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), active_history=True)
    lead_external_id: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(200))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    owner_email: Mapped[str | None] = mapped_column(String(320))
    amount: Mapped[Decimal | None]
    source: Mapped[str | None] = mapped_column(String(16))  # marketing | sales | partner
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(active_history=True)
    outcome: Mapped[str] = mapped_column(String(8), default="open")
    updated_at: Mapped[datetime]
    source_updated_at: Mapped[datetime | None]  # the CRM's time of the update applied last


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("team_id", "external_id"),
        # covering: who was active at an instant, and their MRR, without visiting rows
        Index("ix_customers_team_started", "team_id", "started_at", "churned_at", "mrr"),
        Index("ix_customers_team_churned", "team_id", "churned_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    external_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(active_history=True)
    churned_at: Mapped[datetime | None] = mapped_column(active_history=True)
    mrr: Mapped[Decimal | None]
    updated_at: Mapped[datetime]
    source_updated_at: Mapped[datetime | None]  # the CRM's time of the update applied last


class Spend(Base):
    __tablename__ = "spend"
    __table_args__ = (
        UniqueConstraint("team_id", "month", "team"),
        CheckConstraint("team IN ('marketing', 'sales')", name="team"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    month: Mapped[date] = mapped_column(Date)  # the first day of the month
    team: Mapped[str] = mapped_column(String(16))  # marketing | sales
    amount: Mapped[Decimal]
    updated_at: Mapped[datetime]


class ContentItem(Base):
    __tablename__ = "content_items"
    __table_args__ = (UniqueConstraint("team_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    external_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str | None] = mapped_column(String(300))
    kind: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    source_updated_at: Mapped[datetime | None]  # the CRM's time of the update applied last


class ContentUse(Base):
    __tablename__ = "content_uses"
    __table_args__ = (
        UniqueConstraint("team_id", "content_id", "user_email", "used_at"),
        Index("ix_content_uses_team_used", "team_id", "used_at"),
        # whether an item was used in a period (content utilization): one search an item
        Index("ix_content_uses_team_content_used", "team_id", "content_id", "used_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    content_id: Mapped[int] = mapped_column(ForeignKey("content_items.id", ondelete="CASCADE"))
    user_email: Mapped[str] = mapped_column(String(320))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"))
    used_at: Mapped[datetime]


class Survey(Base):
    """A [[surveys]] entry of the config, by name: what its runs belong to."""

    __tablename__ = "surveys"
    __table_args__ = (UniqueConstraint("team_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    key: Mapped[str] = mapped_column(String(64))  # the survey's name in the config
    created_at: Mapped[datetime]


class SurveyRun(Base):
    """One round of a survey. While it is open, `secret` keys each person's answers (so
    they can change them); closing erases it, with every other link (see SurveyAnswer)."""

    __tablename__ = "survey_runs"
    __table_args__ = (
        UniqueConstraint("survey_id", "opened_at"),  # a scheduled firing opens one run
        UniqueConstraint("survey_id", "number"),
        Index("ix_survey_runs_team_state", "team_id", "state"),
        Index("uq_survey_runs_open", "survey_id", unique=True,  # one open run a survey
              sqlite_where=text("state = 'open'"), postgresql_where=text("state = 'open'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    number: Mapped[int]  # 1, 2, 3 ... within its survey: "run 3 of pulse"
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    started_by: Mapped[str] = mapped_column(String(64))  # "schedule", or who started it
    k: Mapped[int]  # the smallest group its results show, fixed when it opens
    secret: Mapped[str | None] = mapped_column(String(64))  # erased at close
    opened_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class SurveyQuestion(Base):
    """A question as the run asked it (the config may change later)."""

    __tablename__ = "survey_questions"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    run_id: Mapped[int] = mapped_column(ForeignKey("survey_runs.id", ondelete="CASCADE"))
    position: Mapped[int]
    key: Mapped[str] = mapped_column(String(64))  # e.g. lead_quality
    text: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16))  # scale5 | scale10 | choice | text
    options: Mapped[list[str] | None] = mapped_column(JSON)  # a choice's options, a scale's labels


class SurveyInvite(Base):
    """Participation: who was asked, when they are prompted and reminded, and (from the
    close on) whether they answered. Never linked to what they answered."""

    __tablename__ = "survey_invites"
    __table_args__ = (
        UniqueConstraint("run_id", "person_id"),
        Index("ix_survey_invites_prompt_due", "prompt_due_at"),
        Index("ix_survey_invites_reminder_due", "next_reminder_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    run_id: Mapped[int] = mapped_column(ForeignKey("survey_runs.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    role: Mapped[str] = mapped_column(String(64))  # the group results show them in
    prompt_due_at: Mapped[datetime | None]  # their questions are due; None once sent (or closed)
    prompted_at: Mapped[datetime | None]
    next_reminder_at: Mapped[datetime | None]
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    responded: Mapped[bool | None] = mapped_column(Boolean)  # set at close


class SurveyAnswer(Base):
    """An answer. While its run is open, `respondent_key` (an HMAC of the person under the
    run's secret) lets them change or withdraw it. At close, the answers are rewritten in
    random order without the key, with `role` only where results show that group, and
    groups results never show are dropped: no row then says whose it is, or when."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        UniqueConstraint("question_id", "respondent_key"),
        Index("ix_survey_answers_run", "run_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    run_id: Mapped[int] = mapped_column(ForeignKey("survey_runs.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_questions.id", ondelete="CASCADE"))
    respondent_key: Mapped[str | None] = mapped_column(String(64))  # None once closed
    role: Mapped[str | None] = mapped_column(String(64))  # set at close, for a shown group only
    value: Mapped[int | None]  # a scale's value, a choice's option number
    text: Mapped[str | None] = mapped_column(Text)  # a free-text answer


class MetricSnapshot(Base):
    """Rollups that metric queries read: metric × day (week, month, year) × dimension value."""

    __tablename__ = "metric_snapshots"
    __table_args__ = (
        UniqueConstraint("team_id", "metric", "grain", "day", "dimension", "dimension_value",
                         name="uq_metric_snapshots_key"),
        # A refresh replaces a day's (a rollup's) rows of every metric: without it, a scan each.
        Index("ix_metric_snapshots_day", "team_id", "grain", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    metric: Mapped[str] = mapped_column(String(64))
    # or a rollup of days: week (ISO, from Monday), month, year
    grain: Mapped[str] = mapped_column(String(8), default="day", server_default="day")
    day: Mapped[date] = mapped_column(Date)  # a week's, month's or year's first day for those
    dimension: Mapped[str] = mapped_column(String(32), default="")  # "" = the whole team
    dimension_value: Mapped[str] = mapped_column(String(128), default="")
    value: Mapped[float | None] = mapped_column(Float)
    numerator: Mapped[float | None] = mapped_column(Float)
    denominator: Mapped[float | None] = mapped_column(Float)
    histogram: Mapped[dict[str, Any] | None]  # rounded value -> count, for medians
    computed_at: Mapped[datetime]


class MetricStaleInstant(Base):
    """An instant a row was counted at before it changed (`_record_left_instants`): the
    next metric refresh redoes its local day, which it could not find from the row."""

    __tablename__ = "metric_stale_instants"
    __table_args__ = (Index("ix_metric_stale_instants_team_recorded", "team_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]  # the change's time (the row's new updated_at)


class MetricRefresh(Base):
    """Which days of a workspace the snapshots hold, and as of when."""

    __tablename__ = "metric_refreshes"

    team_id: Mapped[str] = mapped_column(TeamId, primary_key=True)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    as_of: Mapped[datetime]


class OutboxMessage(Base):
    """A message the bot intends to post or update, with its delivery state.

    Written in the same transaction as the change that caused it; the sender
    claims rows with a conditional UPDATE so each is delivered once.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("team_id", "dedupe_key"),
        Index("ix_outbox_state_due", "state", "next_attempt_at"),
        Index("ix_outbox_team_ref", "team_id", "ref"),
        # retention: finished rows older than a time, and whether an edit or reply needs them
        Index("ix_outbox_state_created", "state", "created_at"),
        Index("ix_outbox_parent", "parent_id"),
        # the channels' cards of the last minute (count_posts_since: a burst starts past the limit)
        Index("ix_outbox_team_created", "team_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    method: Mapped[str] = mapped_column(String(64))  # chat.postMessage, chat.update, views.publish...
    channel: Mapped[str | None] = mapped_column(String(32))  # a channel id, or a user id for a DM
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    ref: Mapped[str | None] = mapped_column(String(128))  # what it is about, e.g. "lead:42:card"
    # the earlier post this one edits (chat.update) or replies under (a thread)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))  # e.g. one digest per channel+period
    # pending|sending|sent|dead, superseded: dropped unsent for a newer one (a Home view) or
    # recalled and not found to have landed, or
    # unknown: pending after an attempt that may have reached Slack (a timeout, a dropped
    # connection, a crash mid-send), so it is looked for in the channel before it is re-posted
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    first_attempt_at: Mapped[datetime | None]  # no copy of it can be older: where a lookup starts
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    posted_channel: Mapped[str | None] = mapped_column(String(32))  # where it landed (DM ids differ)
    ts: Mapped[str | None] = mapped_column(String(32))  # Slack's message ts, for chat.update
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    # a post no longer wanted after an attempt that may have landed (unknown, or sending when
    # recalled): never posted again, only looked up, and a copy found is edited to read as
    # `payload`, which the recall rewrote (a closed survey's prompt: "it has closed")
    recalled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class OutboxPace(Base):
    """When a channel (or, for calls without one, a Web API method) of a workspace may take
    its next message: shared by every sender process, claimed with the outbox row."""

    __tablename__ = "outbox_pace"

    team_id: Mapped[str] = mapped_column(TeamId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)  # or the method
    # the next message's earliest time; a quiet channel's lags behind now by its burst
    next_at: Mapped[datetime]
    held_until: Mapped[datetime | None]  # a 429's Retry-After, for every sender


class HandoffBurst(Base):
    """New leads that came faster than one channel (or one person's DM) should get cards.

    They are listed in one summary message (`message_id`), read a page at a time from
    `handoff_burst_leads`. A burst stays open while leads keep coming (`last_at` less than
    a minute ago, and more than the burst limit a minute), so an import of any size is one
    message per channel: edited as webhook batches come, and once at the end of a CSV import."""

    __tablename__ = "handoff_bursts"
    # the bursts still open: all of a team's channels in one range (list_open_bursts)
    __table_args__ = (Index("ix_handoff_bursts_team_last", "team_id", "last_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    channel: Mapped[str] = mapped_column(String(32))  # a channel id, or the owner's user id
    message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))  # set when first posted
    leads: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime]
    # the minute it is in and its leads so far: at card pace again, the burst is over
    window_at: Mapped[datetime]
    window_leads: Mapped[int] = mapped_column(Integer, default=0)


class HandoffBurstLead(Base):
    """A lead listed in a burst's summary instead of getting its own card there."""

    __tablename__ = "handoff_burst_leads"
    __table_args__ = (
        # deleting a lead (retention, erasure) cascades here: without it, a scan a lead
        Index("ix_handoff_burst_leads_lead", "lead_id"),
        {"sqlite_with_rowid": False},  # the key is the row: one B-tree, not two
    )

    burst_id: Mapped[int] = mapped_column(ForeignKey("handoff_bursts.id", ondelete="CASCADE"),
                                          primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"),
                                         primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)


class ProcessedEvent(Base):
    """Slack event ids already handled, so retries and duplicates are processed once."""

    __tablename__ = "processed_events"

    team_id: Mapped[str] = mapped_column(TeamId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)


class RoutingState(Base):
    """Smooth weighted round-robin credit per pool member, so the order survives restarts."""

    __tablename__ = "routing_state"
    __table_args__ = (UniqueConstraint("team_id", "pool", "slack_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    pool: Mapped[str] = mapped_column(String(64))
    slack_id: Mapped[str] = mapped_column(SlackId)
    credit: Mapped[float] = mapped_column(Float, default=0.0)
    assigned: Mapped[int] = mapped_column(Integer, default=0)


class ImportedFile(Base):
    """A dropped file already imported, by content hash: the same bytes are imported once."""

    __tablename__ = "imported_files"
    __table_args__ = (UniqueConstraint("team_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(500))
    entity: Mapped[str] = mapped_column(String(32))
    imported_at: Mapped[datetime]
    summary: Mapped[dict[str, Any] | None]


class WebhookRequest(Base):
    """A webhook request's signature, kept while the request could still be replayed."""

    __tablename__ = "webhook_requests"

    team_id: Mapped[str] = mapped_column(TeamId, primary_key=True)
    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)


class OwnerLookup(Base):
    """A CRM owner email Slack could not be asked about (a network error, an outage): its
    leads wait unassigned until a later lookup answers."""

    __tablename__ = "owner_lookups"
    __table_args__ = (UniqueConstraint("team_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    email: Mapped[str] = mapped_column(String(320))
    first_failed_at: Mapped[datetime]
    failed_at: Mapped[datetime]  # the last time
    error: Mapped[str] = mapped_column(String(200))


class UnmappedEmail(Base):
    """A CRM owner email no Slack user matched; the admins are told once per email."""

    __tablename__ = "unmapped_emails"
    __table_args__ = (UniqueConstraint("team_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    email: Mapped[str] = mapped_column(String(320))
    first_seen_at: Mapped[datetime]
    notified_at: Mapped[datetime | None]
    leads: Mapped[int] = mapped_column(Integer, default=0)


class Nudge(Base):
    """One SLA stage of a lead, due at a time: reminder, breach notice, escalation, reassignment.

    A lead has one pending stage at a time: the first is written when the lead is routed,
    and each writes the next when the sweep first claims it (with a conditional UPDATE, so
    each is sent once). A first touch or a rejection cancels what is pending; a stage of an
    earlier owner's clock than the lead's (`assigned_at`) is void when it fires."""

    __tablename__ = "nudges"
    __table_args__ = (
        Index("ix_nudges_state_due", "state", "due_at"),
        Index("ix_nudges_lead_state", "lead_id", "state"),  # cancelling one lead's nudges
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(16))  # card|remind|snooze|breach|escalate|reassign
    due_at: Mapped[datetime]
    # the lead's assigned_at when the stage was written: a reassignment made after a sweep
    # claimed the stage (so its cancelling missed it) starts a new clock this one is not of
    assigned_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sending|sent|cancelled
    held: Mapped[bool] = mapped_column(Boolean, default=False)  # moved to the recipient's next morning
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class HomeTab(Base):
    """Someone who has opened alignbot's App Home, so it is kept up to date for them.

    `refresh_at` is set by the first change to what their Home shows since it was last
    published (plus the debounce window), and cleared by the job that publishes it again."""

    __tablename__ = "home_tabs"
    __table_args__ = (Index("ix_home_tabs_refresh_at", "refresh_at"),)

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"),
                                           primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    refresh_at: Mapped[datetime | None]


class DigestPost(Base):
    """A digest's post for one period in one channel: the claim that makes it once.

    Taken by a unique key in the transaction that queues the digest's outbox rows, so two
    workers, a restart or a schedule firing more often than the period post it once. A
    period whose digest came too late to post (`skipped`) or had nothing to say with
    `skip_if_empty` (`empty`) has a row too: it is decided, and not looked at again."""

    __tablename__ = "digest_posts"
    __table_args__ = (
        UniqueConstraint("team_id", "digest", "channel", "period_start", "period_end",
                         name="uq_digest_posts_period"),
        Index("ix_digest_posts_team_digest_fired", "team_id", "digest", "channel", "fired_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(TeamId)
    digest: Mapped[str] = mapped_column(String(40))  # its [[digests]] name
    channel: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    fired_at: Mapped[datetime]  # the schedule's firing it answers (an admin's send: its time)
    kind: Mapped[str] = mapped_column(String(16))  # on_time | late | sent | skipped | empty
    message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    created_at: Mapped[datetime]


# OAuth mode (many workspaces): the tables of slack_sdk's SQLAlchemy installation and state
# stores, from the stores' own builders, so that the models and the migrations (0018) agree
# on them like on any other table. The stores read and write them; alignbot only lists them.
SLACK_BOTS = SQLAlchemyInstallationStore.build_bots_table(
    Base.metadata, SQLAlchemyInstallationStore.default_bots_table_name)
SLACK_INSTALLATIONS = SQLAlchemyInstallationStore.build_installations_table(
    Base.metadata, SQLAlchemyInstallationStore.default_installations_table_name)
SLACK_OAUTH_STATES = SQLAlchemyOAuthStateStore.build_oauth_states_table(
    Base.metadata, SQLAlchemyOAuthStateStore.default_table_name)


# ------------------------------------------------------------------ what metrics must redo

# The times additive metrics count each kind of row at (a deal's conversion counts on its
# lead's `mql_at`). A metric refresh finds the days of rows changed since the last one from
# their values now; the day a row left by such a change is only known here, as it changes.
COUNTED_AT: dict[type, tuple[str, ...]] = {
    Lead: ("mql_at", "routed_at", "accepted_at", "rejected_at"),
    Deal: ("closed_at",), Customer: ("started_at", "churned_at")}


@event.listens_for(Session, "before_flush")
def _record_left_instants(session: Session, _flush: Any, _instances: Any) -> None:
    """Record, for the next metric refresh, the instants rows were counted at before this
    flush's changes: a time that moved or was cleared, the MQL time of the lead a deal left
    (its conversion), and every instant of the rows owned by someone whose role changed
    (grouped by team, they move to another group on days nothing else marks). Each is
    recorded at the change's time, the row's new `updated_at`."""
    left, selects = [], []
    for row in session.dirty:
        before = inspect(row).committed_state  # the old values of what this flush changes
        left += [{"team_id": row.team_id, "at": old, "recorded_at": row.updated_at}
                 for name in COUNTED_AT.get(type(row), ())
                 if (old := _old(before, row, name)) is not None]
        selects += _left_by_others(row, before)
    if not (left or selects):
        return
    conn = session.connection()  # not session.execute: it would flush, within this flush
    if left:
        conn.execute(insert(MetricStaleInstant), left)
    for stmt in selects:
        conn.execute(insert(MetricStaleInstant).from_select(["team_id", "at", "recorded_at"],
                                                            stmt))


def _left_by_others(row: Any, before: dict[str, Any]) -> list[Any]:
    """Selects of (team_id, instant, the change's time) of the rows whose group or day
    `row`'s change moves: the lead a deal left, the rows of a person whose role changed."""
    if isinstance(row, Deal) and (lead_id := _old(before, row, "lead_id")) is not None:
        recorded = literal(row.updated_at, UTCDateTime())
        return [select(Lead.team_id, Lead.mql_at, recorded).where(
            Lead.id == lead_id, Lead.mql_at.is_not(None))]
    if isinstance(row, Person) and _old(before, row, "role") is not None:
        recorded = literal(row.updated_at, UTCDateTime())
        return [select(model.team_id, getattr(model, name), recorded).where(
            model.owner_id == row.id, getattr(model, name).is_not(None))
            for model in (Lead, Deal) for name in COUNTED_AT[model]]
    return []


def _old(before: dict[str, Any], row: Any, name: str) -> Any:
    """What `name` held before this flush changed it; None when it did not change, or held
    nothing (or is not known: the attributes asked about load their old value when set)."""
    old = before.get(name)
    if old is None or isinstance(old, LoaderCallableStatus) or old == getattr(row, name):
        return None
    return old
