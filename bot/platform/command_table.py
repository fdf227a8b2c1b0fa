"""The `/align` command table: each command declared once, with its help.

Transport-neutral: Slack's slash command, an @mention and the shell all call
`CommandTable.dispatch`, which returns a `Reply`. A command's docstring is its
help (first line the summary, the rest the details of `/align help <name>`).
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from bot.blocks import replies as views
from bot.platform.turns import Turns
from bot.platform.work import Work
from storage.db import read_only

# Answers (metrics, the gap, a lead) are Python and SQLite's C, and take turns, in the order
# they came: two at once only share the GIL, each waiting for it again after every statement
# while the other runs, and a semaphore lets a newcomer overtake those already waiting (8
# clients asking at once on a 1M store, p99: 165-192 ms with cores + 1 at once and no order,
# 118-148 one at a time in order). A read never waits for a lock, so a turn is short.
READERS = Turns(1)

NOT_ADMIN = "Only admins can run `/align {name}`. Admins are listed under `[workspace] admins` in the config."
ASK_ME = ("Ask me about a metric, like `win rate last quarter by source`, or a lead, like "
          "`lead L-123`; `help` lists everything I can do.")
GREETING = "Hi <@{user}>! " + ASK_ME
THANKS = "You're welcome, <@{user}>! " + ASK_ME

# small talk: a message made only of these words is a greeting or thanks, not a question
_HELLO = frozenset({"hi", "hello", "hey", "heya", "hiya", "howdy", "yo", "greetings", "morning",
                    "afternoon", "evening", "good", "gm"})
_THANK = frozenset({"thanks", "thank", "thx", "ty", "cheers", "appreciated", "appreciate"})
_POLITE = frozenset({"there", "you", "all", "team", "everyone", "folks", "so", "much", "a", "lot",
                     "again", "alignbot", "bot", "very", "many", "ok", "okay", "great", "it",
                     "that", "this", "for", "the", "help", "and", "i", "we", "really"})
# asking what alignbot can do, in words: answered with the help, not read as a metric
HELP_ASKED = re.compile(
    r"(?:(?:hey|hi|hello) )?(?:alignbot )?(?:please )?(?:"
    r"help(?: me| us)?(?: out)?|i need help|"
    r"what (?:can|do|else can) (?:you|u) do(?: for (?:me|us))?|what do you know|"
    r"what can i ask(?: you)?|what (?:are|is) (?:your|the) (?:commands|options)|"
    r"how (?:do i|can i|to|does this|do you) (?:use (?:you|this|it|alignbot)|work)|"
    r"(?:list |show )?(?:your |the |all )?commands"
    r")(?: please)?")


def asks_for_help(text: str) -> bool:
    """"What can you do?", "help me", "how do I use this": a request for the command list."""
    return bool(HELP_ASKED.fullmatch(" ".join(re.findall(r"[a-z]+", text.lower()))))


@dataclass(frozen=True)
class Upload:
    """A file that comes with a reply (a CSV export, a chart). The transport calls `make`
    once the answer is out: drawing a chart takes a second or two, and Slack gives an ack
    three."""

    filename: str
    title: str
    make: Callable[[], bytes | str]


@dataclass(frozen=True)
class Reply:
    text: str
    blocks: list[dict[str, Any]] | None = None
    public: bool = False  # posted in the channel instead of shown only to the caller
    file: Upload | None = None
    # work that asks Slack (which may take longer than the ack's three seconds): the
    # transport runs it once this reply is out, and shows its reply after this one
    later: Callable[[], Reply] | None = None

    @classmethod
    def of(cls, message: dict[str, Any], public: bool = False, file: Upload | None = None,
           later: Callable[[], Reply] | None = None) -> Reply:
        return cls(message["text"], message.get("blocks"), public, file, later)

    def message(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks or views.text_blocks(self.text)}

    @property
    def response_type(self) -> str:
        """Where Slack shows it: in the channel, or to the asker alone."""
        return "in_channel" if self.public else "ephemeral"

    @cached_property
    def answer_json(self) -> str:
        """`message()` as the JSON answer to a slash command: what Bolt's
        `ack(response_type=…, **message())` writes. Kept with the reply, so that one built
        once (the help: 2.5 KB of blocks) is encoded once too, compactly (UTF-8, no spaces)."""
        message = self.message()
        answer = {"text": message["text"], "response_type": self.response_type}
        if message["blocks"]:
            answer["blocks"] = message["blocks"]
        return json.dumps(answer, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class CommandRequest:
    team_id: str
    user_id: str
    channel_id: str | None
    text: str


@dataclass(frozen=True)
class Invocation:
    """What a command function receives: who asked, where, the words after its name."""

    services: Any  # the Services (bot.platform.services), which hold this table: not imported
    request: CommandRequest
    args: list[str]
    now: datetime
    table: CommandTable

    @contextmanager
    def work(self) -> Iterator[Work]:
        """A transaction for the workspace that asked, at the command's time."""
        with self.services.work(self.request.team_id, self.now) as work:
            yield work

    @contextmanager
    def reading(self) -> Iterator[Work]:
        """`work`, read-only: it never waits for a writer, only for its turn (`READERS`)."""
        with READERS, read_only(self.services.sessions) as session:
            yield self.services.work_in(session, self.request.team_id, self.now)


@dataclass(frozen=True)
class Command:
    name: str  # one or more words: "help", "config check"
    run: Callable[[Invocation], Reply]
    usage: str = ""  # the arguments, e.g. "[topic]"
    admin: bool = False

    @property
    def summary(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0]

    @property
    def details(self) -> str:
        lines = (self.run.__doc__ or "").strip().splitlines()[1:]
        return "\n".join(line.strip() for line in lines).strip()

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self.name.split())


@dataclass
class CommandTable:
    commands: Sequence[Command]
    _by_words: dict[tuple[str, ...], Command] = field(init=False)
    _overviews: dict[bool, Reply] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._by_words = {c.words: c for c in self.commands}

    def overview(self, is_admin: bool) -> Reply:
        """`/align help`, for admins or everyone else: the same every time, so built once
        (it is the command asked most, and its reply the largest to build)."""
        if is_admin not in self._overviews:
            self._overviews[is_admin] = Reply.of(views.help_overview(self.commands, is_admin))
        return self._overviews[is_admin]

    def find(self, words: list[str]) -> tuple[Command, list[str]] | None:
        """The longest command name that starts `words`, and the words after it."""
        for n in range(min(len(words), 3), 0, -1):
            cmd = self._by_words.get(tuple(w.lower() for w in words[:n]))
            if cmd:
                return cmd, words[n:]
        return None

    def near_miss(self, word: str) -> bool:
        """Is `word` a typo of a command's first word ("hepl", "leeds")? Stricter than
        `suggest`: an unknown first word that is not one is read as a metric question."""
        firsts = {c.words[0] for c in self.commands}
        return word.lower() not in firsts and bool(
            difflib.get_close_matches(word.lower(), firsts, n=1, cutoff=0.75))

    def suggest(self, words: list[str]) -> list[str]:
        names = [c.name for c in self.commands]
        guess = " ".join(words[:2]).lower()
        return difflib.get_close_matches(guess, names, n=3, cutoff=0.5) or \
            difflib.get_close_matches(words[0].lower(), names, n=3, cutoff=0.5)

    def dispatch(self, services: Any, request: CommandRequest) -> Reply:
        talk = small_talk(request.text)
        if talk:
            return Reply(talk.format(user=request.user_id))
        words = split_words(request.text)
        if not words or asks_for_help(request.text):
            words = ["help"]
        found = self.find(words)
        if found is None:
            return Reply.of(views.unknown_command(words[0], self.suggest(words)))
        cmd, args = found
        if cmd.admin and not services.config.is_admin(request.user_id):
            return Reply(NOT_ADMIN.format(name=cmd.name))
        services = services.for_team(request.team_id)  # OAuth mode: the asker's workspace
        return cmd.run(Invocation(services, request, args, services.clock.now(), self))


NUMBER = re.compile(r"[0-9]{1,6}")  # ASCII: str.isdigit takes "²" and "٣"; six digits fit SQLite


def positive_number(word: str) -> int | None:
    """A page, run or message number typed after a command (1, 2, 3 …), else None."""
    number = int(word) if NUMBER.fullmatch(word) else 0
    return number or None


SHELL_WORD = re.compile(r"[^ \t\r\n]+")  # between shlex's whitespace (str.split also splits at \xa0)


def split_words(text: str) -> list[str]:
    """A command's words, as a shell splits them (`lead "Acme Inc"` is two). shlex reads a
    character at a time (14 µs for a metric question), so it reads only text with a quote or
    a backslash; any other text it would split at whitespace alone. An unclosed quote is
    not an error: the words are then split at whitespace."""
    if "'" in text or '"' in text or "\\" in text:
        try:
            return shlex.split(text)
        except ValueError:
            return text.split()
    return SHELL_WORD.findall(text)


def small_talk(text: str) -> str | None:
    """GREETING or THANKS for a message that is only that ("Hi there!", "thanks a lot")."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    if not words <= _HELLO | _THANK | _POLITE:
        return None
    if words & _THANK:
        return THANKS
    return GREETING if words & _HELLO else None


def help_command(inv: Invocation) -> Reply:
    """List the commands, or explain one: `/align help <command>`.
    With a command name, shows what it does and its arguments."""
    is_admin = inv.services.config.is_admin(inv.request.user_id)
    if not inv.args:
        return inv.table.overview(is_admin)
    found = inv.table.find(inv.args)
    if found is None:
        return Reply.of(views.unknown_command(" ".join(inv.args), inv.table.suggest(inv.args),
                                             topic=True))
    return Reply.of(views.help_topic(found[0]))


HELP = Command("help", help_command, usage="[command]")
