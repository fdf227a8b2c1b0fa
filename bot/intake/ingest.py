"""Ingest: records from webhooks, CSV imports and dropped files, checked and upserted.

Each entity's fields are declared once, in bot.intake.records. Upserts are by key, so the
same record sent twice changes nothing the second time; a key twice in one batch is
stored once (the first) and the second rejected. A record that carries the CRM's own
`updated_at` older than the one applied last is skipped: deliveries can arrive out
of order, and the newer state wins. Lead stage changes go through the lifecycle, like
a click in Slack, and their cards are updated by the caller, as a click's are
(`IngestResult.moved`); an update that routes a lead (or gives an open one another owner)
is a handoff, left to the caller with the new leads (`IngestResult.routes`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot import home
from bot.handoff import lifecycle
from bot.handoff.cards import Moved
from bot.handoff.new_leads import FROM_CRM, CrmRoute
from bot.intake.records import (
    KEY_FIELDS,
    TIME_ORDER,
    Checked,
    Rejection,
    check,
    iso,
    key_text,
    window,
)
from bot.platform.config import Config
from bot.platform.work import Work
from bot.sla import policies as sla
from storage import bulk
from storage import ingest as queries
from storage.leads import allocate_lead_ids
from storage.models import ContentItem, ContentUse, Customer, Deal, Lead, Person, Spend

# The stages a lead imported "at" a status has passed through, in order.
CHAIN = {"new": (), "routed": ("routed",), "accepted": ("routed", "accepted"),
         "contacted": ("routed", "accepted", "contacted"),
         "qualified": ("routed", "accepted", "contacted", "qualified"),
         "won": ("routed", "accepted", "contacted", "qualified", "won"),
         "lost": ("routed", "accepted", "contacted", "qualified", "lost"),
         "rejected": ("routed", "rejected"), "recycled": ("routed", "recycled")}


@dataclass
class IngestResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    # counted unchanged: older than what is stored (the reason is in `errors`)
    skipped: list[Rejection] = field(default_factory=list)
    # created as "new", for the caller to route (drafts when ingested in a batch)
    new_leads: list[Lead] = field(default_factory=list)
    # stored leads an update routes, for the caller to hand off (`Handoffs.route_again`)
    routes: list[CrmRoute] = field(default_factory=list)
    # the stages stored leads were moved to, for the caller to update their cards
    # (`cards.refresh_moved`)
    moved: list[Moved] = field(default_factory=list)
    unmapped_owners: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "rejected": [{"index": r.index, "external_id": r.external_id, "errors": r.errors}
                             for r in self.rejected],
                "skipped": [{"index": r.index, "external_id": r.external_id, "reason": r.errors[0]}
                            for r in self.skipped]}

    def add(self, other: IngestResult) -> IngestResult:
        """Both parts of a batch stored apart, as one."""
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected = sorted(self.rejected + other.rejected, key=lambda r: r.index)
        self.skipped = sorted(self.skipped + other.skipped, key=lambda r: r.index)
        self.new_leads += other.new_leads
        self.routes += other.routes
        self.moved += other.moved
        self.unmapped_owners |= other.unmapped_owners
        return self


def ingest(work: Work, entity: str, records: Sequence[Any] | Checked, *, actor: str,
           resolve_owner: Callable[[str], int | None], history: bool = False) -> IngestResult:
    """Validate (unless `check`ed already: then only its times against `now`) and upsert; new
    leads' history and nudges go into the session's batch when one is open (the caller writes them after
    routing, in one statement per table). `history`: the records are of the past (an import),
    not news of what just happened (a webhook), so a deal's close is not taken to be now
    (`_deal_times`)."""
    checked = window(entity, records, work.now) if isinstance(records, Checked) else \
        check(entity, records, work.now)
    result = IngestResult(rejected=list(checked.rejected))
    ctx = _Context(work, entity, actor, resolve_owner, result, history)
    UPSERT[entity](ctx, checked.parsed)
    home.mark_stale(work, ctx.homes)
    return result


@dataclass
class _Context:
    work: Work
    entity: str
    actor: str
    resolve_owner: Callable[[str], int | None]
    result: IngestResult
    history: bool
    owners: dict[str, int | None] = field(default_factory=dict)
    # the people those are, held: the session's identity map keeps a row only while
    # something else does, so each record's `session.get` of its owner could be a SELECT
    people: dict[str, Person | None] = field(default_factory=dict)
    homes: set[int | None] = field(default_factory=set)  # owners, old and new, of changed leads
    # the work's parts, read for every record
    session: Session = field(init=False)
    team_id: str = field(init=False)
    now: datetime = field(init=False)
    config: Config = field(init=False)

    def __post_init__(self) -> None:
        w = self.work
        self.session, self.team_id, self.now, self.config = w.session, w.team_id, w.now, w.config

    def owner_id(self, email_: str) -> int | None:
        if email_ not in self.owners:
            self.owners[email_] = self.resolve_owner(email_)
            if self.owners[email_] is None:
                self.result.unmapped_owners.add(email_)
        return self.owners[email_]

    def owner(self, email_: str) -> Person | None:
        """The person here with this email (read once a batch)."""
        if email_ not in self.people:
            owner_id = self.owner_id(email_)
            self.people[email_] = None if owner_id is None else self.session.get(Person, owner_id)
        return self.people[email_]

    def stamps(self, columns: dict) -> dict:
        """Defaults of a new row: created now unless the record says when; updated now."""
        return {"updated_at": self.now} | ({} if "created_at" in columns
                                           else {"created_at": self.now})

    def reject(self, index: int, key: str | None, error: str) -> None:
        self.result.rejected.append(Rejection(index, key, [error]))

    def first_in_batch(self, index: int, values: dict[str, Any], seen: set) -> bool:
        """False (and the record rejected) when its key came earlier in this batch."""
        key = key_text(self.entity, values)
        if key in seen:
            self.reject(index, key, f"{'/'.join(KEY_FIELDS[self.entity])}: sent twice in this batch")
            return False
        seen.add(key)
        return True

    def outdated(self, index: int, values: dict[str, Any], row: Any) -> bool:
        """True (and the record skipped) when the CRM's `updated_at` is older than the
        update applied last."""
        given, stored = values.get("updated_at"), row.source_updated_at
        if given is None or stored is None or given >= stored:
            return False
        self.result.unchanged += 1
        self.result.skipped.append(Rejection(index, key_text(self.entity, values), [
            f"updated_at {given.isoformat()} is older than the update already applied "
            f"({stored.isoformat()}); the newer one stays"]))
        return True


def _applied_at(row: Any, values: dict[str, Any]) -> None:
    """The CRM's time of the update just applied (unchanged or not), for `outdated`."""
    if "updated_at" in values:
        row.source_updated_at = values["updated_at"]


def _apply(row: Any, values: dict[str, Any]) -> bool:
    """Set the given values; True when any differs from what is stored."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _simple(ctx: _Context, parsed, model, existing: dict, key: Callable[[dict], Any],
            prepare: Callable[[dict], dict | list[str]], defaults: Callable[[dict], dict]) -> None:
    """Upsert rows whose only rule is 'same key, same row' (deals, customers, spend, content);
    `prepare` gives a record's columns, or every reason it cannot be stored."""
    seen: set[str] = set()
    for index, values in parsed:
        if not ctx.first_in_batch(index, values, seen):
            continue
        columns = prepare(values)
        if isinstance(columns, list):
            ctx.result.rejected.append(Rejection(index, key_text(ctx.entity, values), columns))
            continue
        columns.pop("updated_at", None)  # the CRM's: kept as source_updated_at
        row = existing.get(key(values))
        if row is None:
            extra = {k: v for k, v in defaults(columns).items() if hasattr(model, k)}
            if hasattr(model, "source_updated_at"):
                extra["source_updated_at"] = values.get("updated_at")
            row = model(team_id=ctx.team_id, **extra, **columns)
            ctx.session.add(row)
            existing[key(values)] = row
            ctx.result.created += 1
            continue
        if hasattr(row, "source_updated_at"):
            if ctx.outdated(index, values, row):
                continue
            _applied_at(row, values)
        if _apply(row, columns):
            if hasattr(row, "updated_at"):
                row.updated_at = ctx.now
            ctx.result.updated += 1
        else:
            ctx.result.unchanged += 1


def _out_of_order(entity: str, v: dict[str, Any], row: Any) -> str | None:
    """Why an update's times are out of order with the stored ones it leaves out (a deal's
    closed_at before the stored created_at, a customer's started_at after the stored
    churned_at...), as `_cross_checks` finds a record's own; None when they are not. Only
    what the update changes is checked: a deal stored out of order (before `_deal_times`, a
    new deal without created_at was created when it arrived, even after the closed_at it
    was sent with) sent again as it is changes nothing."""
    for earlier, later in TIME_ORDER.get(entity, ()):
        if earlier in v and later in v:
            continue  # both sent: `_cross_checks` has checked them
        stored_earlier, stored_later = getattr(row, earlier), getattr(row, later)
        start, end = v.get(earlier, stored_earlier), v.get(later, stored_later)
        if start is None or end is None or end >= start or (start, end) == (
                stored_earlier, stored_later):
            continue
        if later in v:
            return f"{later}: is before the stored {earlier} ({iso(stored_earlier)})"
        return f"{earlier}: is after the stored {later} ({iso(stored_later)})"
    return None


CLOSED = ("won", "lost")


def _deal_times(ctx: _Context, v: dict[str, Any], row: Deal | None) -> dict[str, Any] | list[str]:
    """The record with the times it leaves out that the deal needs, or every reason they
    cannot be taken. A new deal without created_at was created when it arrived
    (`_Context.stamps`), unless it had closed by then (`_created_needed`). A deal the record
    wins or loses without closed_at closed when the record arrived: a webhook is the CRM
    telling of the close as it happens (an expected close stored before is replaced), but
    not an import (`_closed_needed`)."""
    errors = _created_needed(ctx, v) if row is None else []
    if v.get("outcome") not in CLOSED or "closed_at" in v or (
            row is not None and row.outcome in CLOSED):
        return errors or v  # it does not close here now
    errors += _closed_needed(ctx, v, row)
    return errors or v | {"closed_at": ctx.now}


def _created_needed(ctx: _Context, v: dict[str, Any]) -> list[str]:
    """Why a new deal cannot be taken as created when it arrived: its sales cycle, from
    created_at to closed_at, would be wrong (or negative)."""
    if "created_at" in v:
        return []
    if (outcome := v.get("outcome")) in CLOSED:
        return [f"created_at: needed for a new deal that is {outcome} (its sales cycle runs "
                "from created_at to closed_at)"]
    if v.get("closed_at", ctx.now) < ctx.now:
        return ["created_at: needed for a new deal whose closed_at is before now (else it is "
                "created when it arrives: after it closed)"]
    return []


def _closed_needed(ctx: _Context, v: dict[str, Any], row: Deal | None) -> list[str]:
    """Why a deal the record wins or loses cannot be taken as closed when it arrived: an
    import is history (when it runs is not when its deals closed), and a deal does not
    close before it was created."""
    outcome = v["outcome"]
    if ctx.history:
        return [f"closed_at: needed when outcome is {outcome} (an import is history: its "
                "deals did not close when it runs)"]
    created = v.get("created_at", row.created_at if row is not None else None)
    if created is not None and created > ctx.now:
        return [f"closed_at: needed when outcome is {outcome} and created_at ({iso(created)}) "
                "is after now"]
    return []


def _deals(ctx: _Context, parsed) -> None:
    """An update sends only what changed; its created_at and closed_at are checked against
    the stored ones it leaves out (`_out_of_order`)."""
    keys = [v["external_id"] for _, v in parsed]
    existing = queries.lock_by_external_ids(ctx.session, Deal, ctx.team_id, keys)
    leads = queries.get_ids_by_external_ids(
        ctx.session, Lead, ctx.team_id, [v["lead_external_id"] for _, v in parsed
                                         if "lead_external_id" in v])

    def prepare(sent: dict) -> dict | list[str]:
        row = existing.get(sent["external_id"])
        v = _deal_times(ctx, sent, row)
        if isinstance(v, list):
            return v
        if row is not None and (why := _out_of_order("deals", v, row)):
            return [why]
        columns = dict(v)
        if "lead_external_id" in v:
            columns["lead_id"] = leads.get(v["lead_external_id"])
        if "owner_email" in v:
            columns["owner_id"] = ctx.owner_id(v["owner_email"])
        return columns

    _simple(ctx, parsed, Deal, existing, lambda v: v["external_id"], prepare, ctx.stamps)


def _customers(ctx: _Context, parsed) -> None:
    """Like a deal, an update sends only what changed: only a new customer needs its
    `started_at` (a customer is active from then on). The times an update leaves out are
    the stored ones, so its `churned_at` is checked against the stored `started_at` (and
    the other way round: `_out_of_order`), as `_cross_checks` does within a record."""
    existing = queries.lock_by_external_ids(ctx.session, Customer, ctx.team_id,
                                            [v["external_id"] for _, v in parsed])

    def prepare(v: dict) -> dict | list[str]:
        row = existing.get(v["external_id"])
        if row is None:
            return dict(v) if "started_at" in v else \
                ["started_at: is required for a new customer (an update may leave it out)"]
        why = _out_of_order("customers", v, row)
        return [why] if why else dict(v)

    _simple(ctx, parsed, Customer, existing, lambda v: v["external_id"], prepare, ctx.stamps)


def _content(ctx: _Context, parsed) -> None:
    existing = queries.lock_by_external_ids(ctx.session, ContentItem, ctx.team_id,
                                            [v["external_id"] for _, v in parsed])
    _simple(ctx, parsed, ContentItem, existing, lambda v: v["external_id"], dict, ctx.stamps)


def _spend(ctx: _Context, parsed) -> None:
    existing = queries.get_spend(ctx.session, ctx.team_id, {v["month"] for _, v in parsed})
    _simple(ctx, parsed, Spend, existing, lambda v: (v["month"], v["team"]), dict, ctx.stamps)


def _content_usage(ctx: _Context, parsed) -> None:
    items = queries.get_ids_by_external_ids(ctx.session, ContentItem, ctx.team_id,
                                            [v["content_external_id"] for _, v in parsed])
    deals = queries.get_ids_by_external_ids(ctx.session, Deal, ctx.team_id,
                                            [v["deal_external_id"] for _, v in parsed
                                             if "deal_external_id" in v])
    existing = queries.get_content_uses(ctx.session, ctx.team_id, list(items.values()))

    def prepare(v: dict) -> dict | list[str]:
        content_id = items.get(v["content_external_id"])
        if content_id is None:
            return [f"content_external_id: no content item {v['content_external_id']} "
                    "(send it to /webhooks/content first)"]
        columns = {"content_id": content_id, "user_email": v["user_email"], "used_at": v["used_at"],
                   "person_id": ctx.owner_id(v["user_email"])}
        if "deal_external_id" in v:
            columns["deal_id"] = deals.get(v["deal_external_id"])
        return columns

    _simple(ctx, parsed, ContentUse, existing,
            lambda v: (items.get(v["content_external_id"]), v["user_email"], v["used_at"]),
            prepare, lambda columns: {})


# ------------------------------------------------------------------ leads

PLAIN = ("source", "email", "name", "company", "title", "score", "segment", "region", "why",
         "crm_url")
RECORD_FIELD = {"crm_owner_email": "owner_email"}  # a column's name in records, where it differs


def _leads(ctx: _Context, parsed) -> None:
    """Stored leads are locked as they are read, until the batch commits: a click on one
    meanwhile (accept, reject, take...) waits, then finds the lead moved and is refused
    (its compare-and-set), instead of the batch writing over it with a move planned from
    the lead as it was; one already stored is read as the click left it."""
    existing = queries.lock_by_external_ids(ctx.session, Lead, ctx.team_id,
                                            [v["external_id"] for _, v in parsed])
    created: list[tuple[Lead, dict[str, Any]]] = []
    seen: set[str] = set()
    fresh = [v for _, v in parsed if v["external_id"] not in existing]
    ids = iter(allocate_lead_ids(ctx.session, len({v["external_id"] for v in fresh})))
    for index, values in parsed:
        lead = existing.get(values["external_id"])
        if not ctx.first_in_batch(index, values, seen):
            continue
        if lead is None:
            if values.get("status", "new") != "new" and "owner_email" not in values:
                ctx.reject(index, values["external_id"],
                           "owner_email: needed to import a lead that is already routed")
                continue
            lead = _new_lead(ctx, values, next(ids))
            existing[values["external_id"]] = lead
            created.append((lead, values))
        elif not ctx.outdated(index, values, lead):
            _existing_lead(ctx, index, lead, values)
    for lead, values in created:  # ids are known: nothing is flushed until the caller is done
        _import_stages(ctx, lead, values)


def _existing_lead(ctx: _Context, index: int, lead: Lead, values: dict[str, Any]) -> None:
    """Its stage move is checked before anything changes: a record the lead cannot take is
    rejected with the lead, its history and the rest of the batch as they were (no
    savepoint, a round trip or three per lead, to undo anything)."""
    try:
        steps, route = _plan(ctx, lead, values)
    except (lifecycle.IllegalTransition, Refused) as exc:
        ctx.reject(index, values["external_id"], f"status: {exc}")
        return
    owner = lead.owner_id
    outcome = _update_lead(ctx, lead, values, steps, route)
    _applied_at(lead, values)
    setattr(ctx.result, outcome, getattr(ctx.result, outcome) + 1)
    if outcome == "updated":
        ctx.homes.update((owner, lead.owner_id))


class Refused(ValueError):
    """A record this lead cannot take; its message is the reason reported."""


def _new_lead(ctx: _Context, v: dict[str, Any], lead_id: int) -> Lead:
    """A new lead: a draft written with the batch's rows when there are any, else an ORM row."""
    mql = v.get("mql_at", ctx.now)
    fields = {k: v[k] for k in PLAIN if k in v}
    fields.update(id=lead_id, team_id=ctx.team_id, external_id=v["external_id"], status="new",
                  created_at=v.get("created_at", mql), mql_at=mql, updated_at=ctx.now,
                  source_updated_at=v.get("updated_at"), crm_owner_email=v.get("owner_email"),
                  rejection_reason=v.get("rejection_reason"))
    ctx.result.created += 1
    if (rows := bulk.batch_of(ctx.session)) is not None:
        return rows.new(Lead, fields)
    lead = Lead(**fields)
    ctx.session.add(lead)
    return lead


def _import_stages(ctx: _Context, lead: Lead, v: dict[str, Any]) -> None:
    """A new lead's history: created, then each stage it was imported at (a new one is routed
    later). Its SLA is worked out from the stage times; nudges only if it still awaits a touch.

    One imported as still awaiting its owner's response (routed, accepted) whose owner nobody
    here can be (no Slack user has the email, Slack could not be asked, or they are
    deactivated) is not imported in that state, owned by nobody and nudging nobody: it waits
    in the handoff channel's queue exactly as a new lead naming that owner does, and is
    routed when someone may take it (its SLA clock starts then). What the CRM said of it is
    kept in its `created` event."""
    status = v.get("status", "new")
    owner = ctx.owner(v["owner_email"]) if status != "new" else None
    if status in sla.OPEN and (owner is None or owner.deactivated):
        lifecycle.record(ctx.session, lead, "created", actor=ctx.actor, at=lead.created_at,
                         data=_as_the_crm_had_it(status, v))
        ctx.result.new_leads.append(lead)
        return
    lifecycle.record(ctx.session, lead, "created", actor=ctx.actor, at=lead.created_at)
    if status == "new":
        ctx.result.new_leads.append(lead)
        return
    lead.owner_id = owner.id if owner else None
    ctx.homes.add(lead.owner_id)
    at = lead.mql_at
    for stage in CHAIN[status]:
        at = v.get(lifecycle.STAMP[stage], at)
        lifecycle.transition(ctx.session, lead, stage, actor=ctx.actor, at=at,
                             data={"reason": v["rejection_reason"]} if stage == "rejected" else None)
        if stage == "routed":
            sla.start(lead, ctx.config, owner, at)
        if stage in ("contacted", "rejected"):
            sla.stop(lead, ctx.config, owner, at)
        if stage == "recycled":
            sla.leave(lead, at)
    if lead.status in sla.OPEN:
        sla.schedule(ctx.work, lead, owner)
    lead.updated_at = ctx.now


def _as_the_crm_had_it(status: str, v: dict[str, Any]) -> dict[str, Any]:
    """The status and stage times a lead that waits for an owner was sent with."""
    return {"crm_status": status} | {name: v[name].isoformat() for name in (
        "routed_at", "accepted_at") if name in v}


def _update_lead(ctx: _Context, lead: Lead, v: dict[str, Any], steps: list[str],
                 route: CrmRoute | None) -> str:
    """'updated' or 'unchanged'; stage moves (`_steps`) go through the lifecycle, a handoff
    (`route`) is the caller's. A new owner_email makes someone the lead's owner only where
    no handoff could: on a lead it leaves answered (or rejected, recycled). A lead left
    open or waiting changes owner only by a handoff: one whose new owner is nobody here
    (or deactivated) stays with the owner it has, not nobody (the admin is told of the
    email), and one waiting waits on."""
    plain = {k: v[k] for k in PLAIN if k in v}
    if "owner_email" in v and v["owner_email"] != lead.crm_owner_email:
        plain["crm_owner_email"] = v["owner_email"]
        owner_id = ctx.owner_id(v["owner_email"])
        left_at = steps[-1] if steps else lead.status
        if route is None and owner_id is not None and left_at not in (sla.WAITING, *sla.OPEN):
            plain["owner_id"] = owner_id
    changed_fields = [RECORD_FIELD.get(k, k) for k, value in plain.items()
                      if getattr(lead, k) != value]
    if changed_fields:
        _apply(lead, plain)
        lifecycle.record(ctx.session, lead, "updated", actor=ctx.actor, at=ctx.now,
                         data={"fields": changed_fields})
    _move(ctx, lead, v, steps)
    if route is not None:
        ctx.result.routes.append(route)
    if changed_fields or steps or route:
        lead.updated_at = ctx.now
        return "updated"
    return "unchanged"


def _plan(ctx: _Context, lead: Lead, v: dict[str, Any]) -> tuple[list[str], CrmRoute | None]:
    """What a record does to a stored lead: the stages it moves through here (`_steps`), or
    a handoff for the caller. The CRM routing a lead is a handoff like any other: one that
    waits for an owner, is rejected or recycled, and is sent as routed or accepted (or,
    waiting, with a new owner_email) is routed to the owner the record names, or the one
    stored (none: by the routing rules), and waits in the queue when nobody here is that
    owner. A new owner_email on an open lead, someone else here, is a reassignment. A lead
    waiting for an owner nobody here is, sent again as routed to them, waits on (the queue
    retries it): the record's stage is not applied, and changes nothing."""
    target = _target(lead, v)
    email = v.get("owner_email", lead.crm_owner_email)
    new_email = "owner_email" in v and v["owner_email"] != lead.crm_owner_email
    then = ("accepted",) if target == "accepted" else ()
    if lead.status in sla.OPEN and new_email and target in (None, *sla.OPEN):
        owner = _active_owner(ctx, email)
        if owner is not None and owner.id != lead.owner_id:
            return [], CrmRoute(lead, owner, then)  # reassigned in the CRM
    steps = _steps(lead, v, target)
    routes = steps[:1] == ["routed"] and steps[-1] in sla.OPEN
    if not routes and not (lead.status == sla.WAITING and new_email and not steps):
        return steps, None
    owner = _active_owner(ctx, email) if email else None
    if owner is None and lead.status == sla.WAITING:
        return [], CrmRoute(lead, None, then) if new_email else None  # why it waits changed
    return [], CrmRoute(lead, owner, then)


def _active_owner(ctx: _Context, email: str) -> Person | None:
    """The person here with this email, unless they are deactivated (or Slack could not say)."""
    owner = ctx.owner(email)
    return owner if owner is not None and not owner.deactivated else None


def _target(lead: Lead, v: dict[str, Any]) -> str | None:
    """The status a record sends the lead to: its `status`, or the stage a newly given
    stage time is."""
    target = v.get("status")
    if target is None:  # a newly given stage time is a move too
        for status, name in (("rejected", "rejected_at"), ("contacted", "first_touch_at"),
                             ("accepted", "accepted_at")):
            if name in v and getattr(lead, name) is None:
                return status
    return target


def _steps(lead: Lead, v: dict[str, Any], target: str | None) -> list[str]:
    """The stages a record moves the lead through, each one checked against the lifecycle
    (IllegalTransition) and a rejection's reason (Refused); none when it stays."""
    if target is None or target == lead.status:
        return []
    if lead.status in lifecycle.SIDE_EXITS and target in sla.OPEN:  # routed again: a handoff anew
        steps = list(CHAIN[target])
    elif lead.status == "new" and target == "recycled":  # taken back before anyone got it
        steps = [target]
    else:
        steps = [s for s in CHAIN.get(target, (target,)) if s not in CHAIN.get(lead.status, ())
                 and s != lead.status] if target in CHAIN else [target]
    # none: been there already (an accepted lead sent as routed)
    if not steps or not lifecycle.can_pass(lead.status, steps):
        raise lifecycle.IllegalTransition(lead, target)
    if "rejected" in steps and "rejection_reason" not in v:
        raise Refused("a rejection needs a rejection_reason")
    return steps


def _move(ctx: _Context, lead: Lead, v: dict[str, Any], steps: list[str]) -> None:
    owner = ctx.session.get(Person, lead.owner_id) if lead.owner_id and steps else None
    for stage, at in zip(steps, _times(ctx, lead, v, steps), strict=True):
        data = {"reason": v.get("rejection_reason")} if stage == "rejected" else None
        if stage == "rejected":
            lead.rejection_reason = v["rejection_reason"]
        if stage == "routed":  # a step only out of the queue, past its handoff (`_plan`)
            owner, data = _handed_off_in_crm(ctx, lead, v)
        lifecycle.transition(ctx.session, lead, stage, actor=ctx.actor, at=at, data=data)
        ctx.result.moved.append(Moved(lead, stage, ctx.actor, at, data))
        if stage == "routed":  # its response is measured from then, as an import's is
            sla.start(lead, ctx.config, owner, at)
        if stage in ("contacted", "rejected"):
            sla.close_clock(ctx.work.at(at), lead, owner)
        if stage == "recycled":
            sla.recycle_clock(ctx.work.at(at), lead)


def _times(ctx: _Context, lead: Lead, v: dict[str, Any], steps: list[str]) -> list[datetime]:
    """When the lead reached each stage: the record's time for it; else, for a stage passed
    on the way, the next one's (a first touch at 14:08 was an acceptance by then, not at
    the update's arrival), and for the last one now. Routed out of the queue, it was routed
    when it qualified (its mql_at), as an imported lead's history is: a lead that waited
    for an owner since then was waiting for its response too."""
    times, at = [], ctx.now
    for stage in reversed(steps):
        default = min(lead.mql_at or at, at) if stage == "routed" else at
        at = v.get(lifecycle.STAMP.get(stage, ""), default)
        times.append(at)
    return times[::-1]


def _handed_off_in_crm(ctx: _Context, lead: Lead, v: dict[str, Any]) -> tuple[Person | None, dict]:
    """A lead waiting in the queue that the CRM says is past its handoff (contacted, won,
    rejected...): it is the owner's the CRM names (the record's owner_email, else the
    stored one; deactivated or not, as an import's: no response is awaited from them), or
    nobody's when nobody here has that email. Its owner, and what its routed event says."""
    email = v.get("owner_email", lead.crm_owner_email)
    owner = ctx.owner(email) if email else None
    lead.owner_id = owner.id if owner else None
    return owner, {"pool": None, "reason": FROM_CRM} | (
        {"owner": owner.slack_id} if owner else {})


UPSERT = {"leads": _leads, "deals": _deals, "customers": _customers, "spend": _spend,
          "content": _content, "content_usage": _content_usage}
