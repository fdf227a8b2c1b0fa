"""`/align gap` and `/align index`: the answers of `report`, in Slack."""

from __future__ import annotations

from bot.alignment.report import Report, report
from bot.blocks import alignment as views
from bot.blocks.metrics import metric_error
from bot.metrics.grammar import QueryError, asked_period
from bot.platform.command_table import Command, Invocation, Reply

ASK_GAP = "Ask like `/align gap last quarter` (default: the last 90 days)."
ASK_INDEX = "Ask like `/align index last quarter` (default: the last 90 days)."
SHARE = "share"


def gap_command(inv: Invocation) -> Reply:
    """Perception vs. reality: how each role rates the survey's dimensions beside what the metrics say.
    `/align gap [period]` (default: the last 90 days), with the latest closed pulse survey run.
    A dimension's reality is the lowest level of its metrics against their targets; a role
    one level or more off is marked. Add `share` to post it in the channel."""
    found = _report(inv, ASK_GAP)
    if isinstance(found, Reply):
        return found
    return Reply.of(views.gap_answer(found), public=_shared(inv))


def index_command(inv: Invocation) -> Reply:
    """The alignment index (0–100) and its stage, component by component.
    `/align index [period]` (default: the last 90 days): KPI attainment, perceived alignment
    and the agreement of perception with reality, and what would raise it most. Add `share`
    to post it in the channel."""
    found = _report(inv, ASK_INDEX)
    if isinstance(found, Reply):
        return found
    return Reply.of(views.index_answer(found), public=_shared(inv))


def _report(inv: Invocation, example: str) -> Report | Reply:
    config = inv.services.config
    words = " ".join(w for w in inv.args if w.lower() != SHARE)
    try:
        period = asked_period(words, inv.now, config.workspace.tz)
    except QueryError as exc:
        return Reply.of(metric_error(exc, example))
    with inv.reading() as work:
        return report(work, period)


def _shared(inv: Invocation) -> bool:
    return any(w.lower() == SHARE for w in inv.args)


COMMANDS = [
    Command("index", index_command, usage="[period]"),
    Command("gap", gap_command, usage="[period]"),
]
