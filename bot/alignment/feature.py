"""Perception vs. reality: `/align gap|index`, and the index on every Home."""

from __future__ import annotations

from bot.alignment import commands
from bot.alignment.home import alignment
from bot.platform.descriptor import Feature, HomeSection

FEATURE = Feature("alignment", commands=tuple(commands.COMMANDS),
                  home=(HomeSection(50, alignment),))
