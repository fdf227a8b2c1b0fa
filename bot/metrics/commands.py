"""Metrics in Slack: `/align metric`, `/align scorecard`, `/align export`, and what an
@mention asks. Answers come from `answers`; files (charts, CSV) ride on the reply as an
`Upload` for the transport to deliver."""

from __future__ import annotations

from bot.blocks import metrics as views
from bot.metrics.answers import Answer, answer, parse, scorecard
from bot.metrics.charts import series, trend_png
from bot.metrics.grammar import QueryError, parse_period
from bot.metrics.registry import vocabulary
from bot.platform.command_table import (
    Command,
    CommandTable,
    Invocation,
    Reply,
    Upload,
    asks_for_help,
    small_talk,
)
from storage.people import list_names

FLAGS = ("share", "chart")  # the scorecard's words besides its period


def metric_command(inv: Invocation) -> Reply:
    """Answer a metric question: `/align metric win rate last quarter by source vs previous`.
    Periods: today, yesterday, this|last week|month|quarter|year, last N days|weeks|months,
    mtd, qtd, ytd, 2026-03, Q3 2026, 2026-01-01..2026-03-31 (default: the last 30 days).
    Break down `by owner|source|segment|region|team`; compare `vs previous` or `vs last year`.
    Only you see the answer unless you add `share`; add `chart` for a chart of its trend."""
    asked = _answer(inv, views.ASK_METRIC, names=True, details=True)
    if isinstance(asked, Reply):
        return asked
    found, names = asked
    currency = inv.services.config.workspace.currency
    chart = None
    if found.query.chart:
        chart = Upload(views.file_name(found.metric.key, found.period, "png"),
                       f"{found.metric.label}, {found.period.label}",
                       lambda: trend_png(series(found, currency)))
    return Reply.of(views.metric_answer(found, currency, names), public=found.query.share,
                    file=chart)


def scorecard_command(inv: Invocation) -> Reply:
    """Every metric against its target: `/align scorecard [period]` (default: the last 30 days).
    Each line: the value, its target (✅ met, ⚠️ missed), the trend and the change since the
    previous period. Add `share` to post it in the channel, `chart` for every trend as charts."""
    words = [w for w in inv.args if w.lower() not in FLAGS]
    flags = {w.lower() for w in inv.args} & set(FLAGS)
    config = inv.services.config
    try:
        period = parse_period(" ".join(words), inv.now, config.workspace.tz)
    except QueryError as exc:
        return Reply.of(views.metric_error(exc, views.ASK_SCORECARD))
    with inv.reading() as work:
        answers = scorecard(work, period)
    chart = None
    if "chart" in flags:
        currency = config.workspace.currency
        chart = Upload(views.file_name("scorecard", period, "png"), f"Scorecard, {period.label}",
                       lambda: trend_png(*(series(a, currency) for a in answers)))
    return Reply.of(views.scorecard(answers, config.workspace.currency),
                    public="share" in flags, file=chart)


def export_command(inv: Invocation) -> Reply:
    """Export a metric as a CSV file: `/align export win rate last quarter by owner`.
    With `by`, one row per group; without, one row per period of its trend (the last 6).
    The file comes to you in a direct message, or to the channel with `share`."""
    # a file people check against their CRM; response time's p90 and business median are
    # columns of it, of each group or each period
    asked = _answer(inv, views.ASK_EXPORT, exact=True, details=True, trend_details=True)
    if isinstance(asked, Reply):
        return asked
    found, _ = asked
    name = views.file_name(found.metric.key, found.period, "csv")
    return Reply.of(views.metric_export(found, name), public=found.query.share,
                    file=Upload(name, f"{found.metric.label}, {found.period.label}", found.csv))


def _answer(inv: Invocation, example: str, *, exact: bool = False, names: bool = False,
            details: bool = False, trend_details: bool = False
            ) -> tuple[Answer, dict[str, str] | None] | Reply:
    """The answer to the words after the command, or what the grammar could not read. With
    `names`, and by owner, people's names by Slack id too (a table in a code block cannot
    show <@mentions>), read in the same turn and transaction; with `details`, the metric's
    (response time's p90 and median in business time), and with `trend_details` each
    trend period's (see `answer`)."""
    config = inv.services.config
    try:
        query = parse(" ".join(inv.args), config, inv.now)
    except QueryError as exc:
        return Reply.of(views.metric_error(exc, example))
    with inv.reading() as work:
        found = answer(work, query, exact=exact, details=details, trend_details=trend_details)
        owners = names and query.by == "owner"
        return found, list_names(work.session, work.team_id) if owners else None


def mention_command(table: CommandTable, text: str) -> str:
    """The `/align` words an @mention stands for. One that starts with a command's name runs
    it ("help", "lead L-123"); small talk ("hi there!") and a typo of a command's name
    ("hepl") go to the table as they are, for a friendly answer or a "did you mean"; anything
    else is a metric question. A metric named by more words than the command wins: "leads
    routed today" asks, "leads mine" lists."""
    words = text.split()
    if not words or small_talk(text) or asks_for_help(text):
        return text
    found = table.find(words)
    if found:
        return f"metric {text}" if _names_metric(words, longer_than=len(found[0].words)) else text
    if table.near_miss(words[0]) and not _names_metric(words):
        return text
    return f"metric {text}"


def _names_metric(words: list[str], longer_than: int = 0) -> bool:
    """Do the words name a metric (at their start, when `longer_than` a command's name)?"""
    said = " " + " ".join(w.lower().strip("?!.,;:") for w in words) + " "
    names = {n for key, synonyms in vocabulary().items()
             for n in (key.replace("_", " "), *synonyms) if len(n.split()) > longer_than}
    if longer_than:
        return any(said.startswith(f" {name} ") for name in names)
    return any(f" {name} " in said for name in names)


COMMANDS = [
    Command("metric", metric_command, usage="<question>"),
    Command("scorecard", scorecard_command, usage="[period]"),
    Command("export", export_command, usage="<question>"),
]
