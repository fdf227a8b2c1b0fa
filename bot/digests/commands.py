"""`/align digest preview <name>` (anyone, only they see it) and `/align digest send <name>`
(admins: posts it now, as the period's post), and what `alignbot digest preview` prints."""

from __future__ import annotations

from datetime import datetime

from bot.blocks.digests import digest_message
from bot.blocks.kit import escape
from bot.digests.content import DigestView, compose
from bot.digests.schedule import EMPTY, SENT, post
from bot.metrics.grammar import parse_period
from bot.platform.command_table import Command, Invocation, Reply
from bot.platform.config import Config, Digest
from bot.platform.services import Services


def find(config: Config, words: list[str]) -> Digest | str:
    """The digest `words` name, or what to say instead."""
    names = ", ".join(f"`{d.name}`" for d in config.digests) or \
        "none yet: add [[digests]] to the config"
    if len(words) != 1:
        return f"Which digest? Name one: {names}."
    return config.digest(words[0].lower()) or \
        f"There is no digest `{escape(words[0])}`. Digests: {names}."


def preview(services: Services, team_id: str, digest: Digest, now: datetime) -> DigestView:
    """The digest as it would be posted now, for the period its words read now."""
    period = parse_period(digest.period, now, services.config.workspace.tz)
    with services.sessions() as session:
        return compose(services.work_in(session, team_id, now), digest, period)


def preview_command(inv: Invocation) -> Reply:
    """Show a digest as it would be posted now, only to you: `/align digest preview weekly`."""
    digest = find(inv.services.config, inv.args)
    if isinstance(digest, str):
        return Reply(digest)
    view = preview(inv.services, inv.request.team_id, digest, inv.now)
    return Reply.of(digest_message(view, preview=True))


def send_command(inv: Invocation) -> Reply:
    """Post a digest now, for the period it reads now: `/align digest send weekly`.
    It counts as that period's post: the schedule does not post it again."""
    digest = find(inv.services.config, inv.args)
    if isinstance(digest, str):
        return Reply(digest)
    period = parse_period(digest.period, inv.now, inv.services.config.workspace.tz)
    done = post(inv.services, digest, period, inv.now, fired_at=inv.now, kind=SENT)
    label = escape(period.label)
    if done.kind == SENT:
        return Reply(f":white_check_mark: The {digest.name} digest for {label} is on its way to "
                     f"<#{escape(digest.channel)}>.")
    if done.kind == EMPTY:
        return Reply(f"Nothing to report for {label}, and the {digest.name} digest skips empty "
                     "periods (`skip_if_empty`): nothing posted.")
    return Reply(f"The {digest.name} digest for {label} has been posted already (or skipped as "
                 "too late): a digest posts once per period.")


COMMANDS = [
    Command("digest preview", preview_command, usage="<name>"),
    Command("digest send", send_command, usage="<name>", admin=True),
]
