"""Channel digests: `/align digest preview|send`, and the job that posts them on schedule."""

from __future__ import annotations

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger

from bot.digests import commands, schedule
from bot.platform.config import Config
from bot.platform.descriptor import Feature
from bot.platform.jobs import Job, every


def digests_trigger(config: Config) -> BaseTrigger:
    """At every digest's firing, and every CATCH_UP minutes for what a restart missed."""
    return OrTrigger([*(schedule.crontab(config, d) for d in config.digests),
                      every(minutes=schedule.CATCH_UP)])


FEATURE = Feature(
    "digests",
    commands=tuple(commands.COMMANDS),
    jobs=(Job("digests.post", schedule.sweep, digests_trigger, 3600,
              "post the channel digests whose schedule fired, each period once"),),
)
