"""The features of alignbot, in one list: the one registration a new feature touches.

The app factory registers their listeners, the command table lists their commands (in
this order, after `help`), the scheduler runs their jobs, the Home shows their sections
and `alignbot manifest` asks Slack for their scopes and events (bot/platform/descriptor.py).
"""

from __future__ import annotations

from bot import home
from bot.alignment import feature as alignment
from bot.digests import feature as digests
from bot.handoff import feature as handoff
from bot.intake import feature as intake
from bot.metrics import feature as metrics
from bot.platform import feature as platform
from bot.platform.descriptor import Features
from bot.sla import feature as sla
from bot.surveys import feature as surveys

# The platform goes first: Bolt tries listeners in this order, and `/align` is the
# request that must be answered fastest.
FEATURES = Features(f.FEATURE for f in (
    platform, handoff, sla, intake, metrics, surveys, alignment, digests, home))
