"""Builders for replies to commands: help, an unknown command, a reply's file, plain text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from bot.blocks.kit import context, escape, header, message, section


class HelpEntry(Protocol):
    """What help shows of a command (a bot.platform.command_table.Command)."""

    name: str
    usage: str
    admin: bool

    @property
    def summary(self) -> str: ...

    @property
    def details(self) -> str: ...

HELP_TITLE = "alignbot commands"
HELP_FOOTER = "Type `/align help &lt;command&gt;` for details."
HELP_ADMIN_FOOTER = f"{HELP_FOOTER} Admin-only commands are marked :lock:."
FILE_IN_DM = ":inbox_tray: Slack can't show a file to you alone, so `{name}` is in your " \
    "direct messages with alignbot."
FILE_FAILED = ":warning: I couldn't post `{name}` here: Slack said `{error}`. If I'm not in " \
    "this channel, `/invite @alignbot` and ask again."


def text_blocks(text: str) -> list[dict[str, Any]]:
    return [section(text)]


def _line(cmd: HelpEntry) -> str:
    """Usages like `<id>` and docstrings are meant literally: escaped like data."""
    lock = " :lock:" if cmd.admin else ""
    usage = f" {cmd.usage}" if cmd.usage else ""
    return f"`/align {escape(cmd.name + usage)}`{lock} — {escape(cmd.summary)}"


def help_overview(commands: Sequence[HelpEntry], is_admin: bool) -> dict[str, Any]:
    visible = [c for c in commands if is_admin or not c.admin]
    lines = [_line(c) for c in visible]
    blocks = [header(HELP_TITLE), *(section("\n".join(lines[i:i + 12]))
                                    for i in range(0, len(lines), 12)),
              context(HELP_ADMIN_FOOTER if is_admin else HELP_FOOTER)]
    # the blocks say it all; the text Slack falls back to (a notification, a client that
    # cannot show blocks) names the commands instead of repeating every line (half the bytes)
    names = ", ".join(dict.fromkeys(escape(c.name.split()[0]) for c in visible))
    return {"text": f"{HELP_TITLE}: {names}.", "blocks": blocks}


def help_topic(cmd: HelpEntry) -> dict[str, Any]:
    body = _line(cmd) + (f"\n\n{escape(cmd.details)}" if cmd.details else "")
    return message(body)


def with_file_note(message: dict[str, Any], name: str, *, private: bool,
                   error: str | None) -> dict[str, Any]:
    """A reply whose file went elsewhere (a private reply's, to the asker's DM) or nowhere
    (the upload failed), saying so under it."""
    if error is None and not private:
        return message
    note = FILE_FAILED.format(name=escape(name), error=escape(error)) if error else \
        FILE_IN_DM.format(name=escape(name))
    return {"text": message["text"], "blocks": [*message["blocks"], context(note)]}


def file_failed(name: str, error: str) -> dict[str, Any]:
    """Told after an answer whose file Slack refused."""
    return message(FILE_FAILED.format(name=escape(name), error=escape(error)))


def unknown_command(word: str, suggestions: list[str], topic: bool = False) -> dict[str, Any]:
    what = "no help topic" if topic else "no command"
    text = f"There is {what} `{escape(word)}`."
    if suggestions:
        text += " Did you mean " + " or ".join(f"`/align {escape(s)}`" for s in suggestions) + "?"
    text += " Type `/align help` for the list."
    return message(text)
