"""SLA nudges: their buttons, and the sweep that sends them and retries waiting leads."""

from __future__ import annotations

from bot.platform.descriptor import Feature
from bot.platform.jobs import Job, every
from bot.sla.nudges import sweep

FEATURE = Feature(
    "sla",
    listeners=("handlers.sla",),
    jobs=(Job("sla.sweep", sweep, lambda c: every(minutes=1), 60,
              "send due SLA nudges, escalations and reassignments; route leads waiting for an "
              "owner"),),
)
