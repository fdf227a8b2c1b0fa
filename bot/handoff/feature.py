"""Lead handoff: the card buttons and the reject modal, Slack's changes to people, the
lead commands, and the open leads on each person's Home."""

from __future__ import annotations

from bot.handoff import leads
from bot.handoff.home import open_leads
from bot.platform.descriptor import Feature, HomeSection

FEATURE = Feature(
    "handoff",
    listeners=("handlers.handoff", "handlers.directory"),
    commands=tuple(leads.COMMANDS),
    home=(HomeSection(10, open_leads),),
    scopes={"users:read": ("user_change",)},
    events={"user_change": "deactivations and timezone changes for routing and nudges"},
)
