"""The platform's part of the app: requests (the redelivery filter, the error handler, the
slash command, uninstalls), admin commands, the outbox's sweep, and the scopes every reply
needs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from bot import retention
from bot.platform import admin
from bot.platform.descriptor import Feature
from bot.platform.jobs import Job, every
from bot.platform.manifest import COMMAND
from bot.platform.scheduler import first_due
from bot.platform.services import Services
from storage.outbox import get_first_due


def outbox_sweep(services: Services, now: datetime) -> Any:
    """Deliver whatever the immediate flush missed: retries, held rows, another process's crash."""
    return services.sender.flush()


FEATURE = Feature(
    "platform",
    listeners=("handlers.middleware", "handlers.errors", "handlers.slash_command",
               "handlers.installs"),
    commands=tuple(admin.COMMANDS),
    jobs=(
        Job("outbox.sweep", outbox_sweep, lambda c: every(seconds=30), 30,
            "deliver queued Slack messages that are due (retries, held messages)",
            first_due(get_first_due), per_workspace=False),
        Job("retention.prune", retention.prune,
            lambda c: CronTrigger(hour=3, timezone=c.workspace.tz), 3600,
            "delete Slack event ids, delivered messages, lead history and closed survey runs "
            "older than [retention] says", per_workspace=False),
    ),
    scopes={
        "commands": (COMMAND,),
        "chat:write": ("chat.postMessage", "chat.update", "chat.postEphemeral"),  # every reply
        "chat:write.public": ("chat.postMessage",),  # posts in channels the bot was not invited to
        "im:write": ("conversations.open",),  # the DM a private answer's file goes to
        "files:write": ("files.getUploadURLExternal", "files.completeUploadExternal"),  # CSV, PNG
        # finding a post whose answer was lost, instead of posting it twice (bot/platform/sender.py)
        "channels:history": ("conversations.history", "conversations.replies"),
        "groups:history": ("conversations.history", "conversations.replies"),
        "im:history": ("conversations.history",),
    },
    events={
        # a workspace's tokens deleted, its queued messages dropped (bot/platform/installations.py)
        "app_uninstalled": "a workspace removed alignbot",
        "tokens_revoked": "a workspace revoked alignbot's bot token",
    },
)
