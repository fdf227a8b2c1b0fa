"""The App Home's scorecard: every metric against its target, the same for everyone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.blocks import home as views
from bot.blocks.kit import Block
from bot.metrics import answers
from storage.models import Person

if TYPE_CHECKING:
    from bot.home import Context


def team_scorecard(ctx: Context, person: Person | None) -> list[Block]:
    """Computed once a refresh, however many Homes it builds."""
    if "scorecard" not in ctx.shared:
        ctx.shared["scorecard"] = answers.scorecard(ctx)
    return views.scorecard(ctx.shared["scorecard"], ctx.config.workspace.currency)
