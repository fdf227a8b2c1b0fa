"""The App Home's alignment section: the index, its stage, and the dimensions with a gap."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.alignment.report import report
from bot.blocks import alignment as views
from bot.blocks.kit import Block
from storage.models import Person

if TYPE_CHECKING:
    from bot.home import Context


def alignment(ctx: Context, person: Person | None) -> list[Block]:
    """The same for everyone: computed once a refresh."""
    if "alignment" not in ctx.shared:
        ctx.shared["alignment"] = report(ctx)
    return views.home_alignment(ctx.shared["alignment"])
