"""SLA nudges: their buttons, and the sweep that sends them and retries waiting leads."""

from __future__ import annotations

from bot.platform.descriptor import Feature
from bot.platform.jobs import Job, every
from bot.platform.scheduler import first_due
from bot.sla.nudges import sweep
from storage.nudges import get_first_pending_due

FEATURE = Feature(
    "sla",
    listeners=("handlers.sla",),
    jobs=(Job("sla.sweep", sweep, lambda c: every(minutes=1), 60,
              "send due SLA nudges, escalations and reassignments; route leads waiting for an "
              "owner", first_due(get_first_pending_due),
              per_workspace=False),),  # each nudge fires for its lead's workspace
)
