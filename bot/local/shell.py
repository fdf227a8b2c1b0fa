"""The local shell: the same Bolt app, driven by typed lines instead of Slack.

Every line becomes a Slack-shaped payload passed to the real `app.dispatch()`; the
Web API is a `FakeSlack` that prints each message as text with its number and
buttons, and keeps the messages in a file next to the store for the next session. The
clock is a `FakeClock` that only `tick` moves, and `tick` runs the scheduled jobs whose
time came, in order.
"""

from __future__ import annotations

import difflib
import json
import re
import secrets
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from slack_bolt import App, BoltRequest

from bot.blocks.kit import shown, unescape
from bot.local.fakeslack import FakeSlack, Message
from bot.platform.clock import FakeClock
from bot.platform.command_table import positive_number
from bot.platform.config import parse_duration
from bot.platform.jobs import Job
from bot.platform.scheduler import fire_times, next_fire
from bot.platform.services import Services

if TYPE_CHECKING:
    from bot.app import AfterAck

PROMPT = "alignbot> "
DATE_TOKEN = re.compile(r"<!date\^(\d+)\^[^|>]*(?:\|[^>]*)?>")
MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")
SLACK_ID = re.compile(r"[UW][A-Z0-9]+")  # a user id: one --as may name before anyone knows it
HELP = """Lines you can type:
  /align <command>          a slash command, as the current user (try /align help)
  @alignbot <question>      mention the bot in the channel: a metric question or a command
  click <action> [msg#] [pick]  click a button (default: the latest message having it);
                            for a picker, name the person or the option to pick
  submit block=value ...    submit the open modal (e.g. submit reason=not_icp note="no budget")
  react <emoji> <msg#>      add an emoji reaction to a message (e.g. react three 12)
  unreact <emoji> <msg#>    remove it again
  home [user]               open the App Home tab (yours, or that person's)
  webhook <entity> <json>   what a CRM would POST to /webhooks/<entity>
  import <entity> FILE [mapping]  import a CSV file (mapping: hubspot or salesforce)
  as <user>                 act as another person (Slack id, email or name)
  tick <duration>           advance the clock (15m, 4h, 2d) and run the jobs that fall due
  jobs                      list the scheduled jobs and when they run next
  run <job>                 run one job now
  whoami | time | help | quit"""

# Jobs a `tick` runs once, at their last due time: a metrics refresh depends only on the
# data and the time, so the runs before the last would only redo what the last one does
# (each redoes the last days, a second or so on the demo's data).
ONCE_A_TICK = frozenset({"metrics.refresh"})
SENDER = "outbox.sweep"
INSTANT = timedelta(microseconds=1)  # a firing after a time, not at it

@dataclass
class ShellState:
    user: str
    last_tick: datetime


class Shell:
    def __init__(self, services: Services, app: App, after_ack: AfterAck, fake: FakeSlack,
                 clock: FakeClock, user: str, out: TextIO = sys.stdout,
                 messages_file: Path | None = None):
        self.services, self.app, self.fake, self.clock, self.out = services, app, fake, clock, out
        self.messages_file = messages_file  # where the fake's messages outlive the session
        self._unsaved = False
        self.after_ack = after_ack  # what the app leaves until its ack is shown
        self.state = ShellState(user=user, last_tick=clock.now())
        # in the ids of the events this session sends: the store remembers processed event
        # ids for days, and another session on it (even at the same --at) must not repeat one
        self.session = secrets.token_hex(5).upper()
        self._seq = 0
        self._console: Any = None  # a tick's progress bar's, while it shows
        fake.on_change = self._show
        self.commands: dict[str, Callable[[list[str]], None]] = {
            "click": self.click, "submit": self.submit, "react": self.react,
            "unreact": lambda args: self.react(args, added=False), "home": self.home,
            "import": self.import_file, "as": self.act_as, "tick": self.tick,
            "jobs": self.jobs, "run": self.run_job, "whoami": self.whoami, "time": self.time,
            "help": lambda _: self.say(HELP),
        }

    # -- the loop

    def loop(self, lines: Iterable[str], echo: bool) -> None:
        for raw in lines:
            line = raw.strip()
            if echo and line:
                self.say(f"{PROMPT}{line}")
            if line in ("quit", "exit"):
                return
            if line and not line.startswith("#"):
                self.execute(line)

    def execute(self, line: str) -> None:
        try:
            if line.startswith("/"):
                self.slash(line)
            elif line.startswith("@"):
                self.mention(line)
            elif line.split(maxsplit=1)[0] == "webhook":
                self.webhook(line)
            else:
                words = shlex.split(line)
                handler = self.commands.get(words[0].lower())
                if handler is None:
                    self.say(self._unknown(words[0]))
                    return
                handler(words[1:])
        except ShellError as exc:
            self.say(f"! {exc}")
        self.flush()

    def flush(self) -> None:
        """Deliver what the bot queued, as the sender would right after the commit, and
        keep the messages for the next session."""
        self.services.sender.flush()
        self._save()

    def _save(self) -> None:
        """After each line that posted or edited: quitting any time loses nothing."""
        if self._unsaved and self.messages_file is not None:
            self.fake.save(self.messages_file)
        self._unsaved = False

    def _unknown(self, word: str) -> str:
        close = difflib.get_close_matches(word.lower(), [*self.commands, "webhook", "quit"], n=1)
        guess = f" — did you mean {close[0]!r}?" if close else ""
        return f"unknown line {word!r}{guess}; type help"

    # -- lines

    def slash(self, line: str) -> None:
        command, _, text = line.partition(" ")
        body = urlencode({
            "token": "local", "team_id": self.services.team_id, "team_domain": "local",
            "channel_id": self.channel, "channel_name": "shell", "user_id": self.state.user,
            "user_name": self.state.user, "command": command, "text": text.strip(),
            "api_app_id": "A0LOCAL",
            "response_url": f"https://{self.fake.host}/respond/{self.channel}/-/{self.state.user}",
            "trigger_id": self._trigger(),
        })
        resp = self._dispatch(body, "application/x-www-form-urlencoded")
        self._post_answer(resp.body)
        self.after_ack.run()  # a file follows its answer

    def click(self, args: list[str]) -> None:
        if not args:
            raise ShellError("usage: click <action> [msg#] [user, for a user picker]")
        action_id = args[0]
        # a word of digits (any script) is meant as the message, else it is the pick
        number = self._message_number(args[1]) if len(args) > 1 and args[1].isdigit() else None
        picked = args[2 if number else 1] if len(args) > (2 if number else 1) else None
        msg = self._message_with(action_id, number)
        _, element = msg.find_element(action_id)
        if element.get("type") in ("users_select", "static_select") and not picked:
            what = "a person" if element["type"] == "users_select" else "an option"
            raise ShellError(f"{action_id} picks {what}: click {action_id} {msg.number} <pick>")
        person = element.get("type") == "users_select"
        payload = self.fake.block_action(
            msg, action_id, self.state.user, trigger_id=self._trigger(),
            selected_user=resolve_user(self.fake.users, picked) if picked and person else None,
            selected_option=picked if not person else None, at=self.clock.now().timestamp())
        self._send_payload(payload)

    def submit(self, args: list[str]) -> None:
        """Submit the modal opened last, with block=value answers."""
        if not self.fake.views:
            raise ShellError("no modal is open")
        answers = dict(a.split("=", 1) for a in args if "=" in a)
        self._send_payload(self.fake.view_submission(self.fake.views[-1], self.state.user, answers))

    def _send_payload(self, payload: dict[str, Any]) -> None:
        resp = self._dispatch(urlencode({"payload": json.dumps(payload)}),
                              "application/x-www-form-urlencoded")
        self._show_errors(resp.body)
        self.after_ack.run()  # the clicker's answer follows the ack

    def react(self, args: list[str], added: bool = True) -> None:
        if len(args) != 2:
            raise ShellError(f"usage: {'' if added else 'un'}react <emoji> <msg#>")
        msg = self._message(self._message_number(args[1]))
        if msg.ephemeral_to:
            raise ShellError(f"message #{msg.number} is ephemeral: Slack takes no reactions on it")
        self._send_event({
            "type": "reaction_added" if added else "reaction_removed", "user": self.state.user,
            "reaction": args[0].strip(":"),
            "item": {"type": "message", "channel": msg.channel, "ts": msg.ts},
            "item_user": self.fake.bot_user, "event_ts": f"{self.clock.now().timestamp():.6f}",
        })

    def home(self, args: list[str]) -> None:
        user = resolve_user(self.fake.users, " ".join(args)) if args else self.state.user
        self._send_event({"type": "app_home_opened", "user": user, "channel": self.fake.dm_id(user),
                          "tab": "home", "event_ts": f"{self.clock.now().timestamp():.6f}"})

    def mention(self, line: str) -> None:
        """`@alignbot <text>`: a message in the channel that mentions the bot."""
        self._seq += 1
        ts = self.fake.new_ts()  # a message of the channel's: its own thread
        self._send_event({
            "type": "app_mention", "user": self.state.user, "team": self.services.team_id,
            "text": f"<@{self.fake.bot_user}> {line.partition(' ')[2]}", "channel": self.channel,
            "client_msg_id": f"local-{self.session}-{self._seq}", "ts": ts, "event_ts": ts,
        })

    def _send_event(self, event: dict[str, Any]) -> None:
        self._seq += 1
        body = {"token": "local", "team_id": self.services.team_id, "api_app_id": "A0LOCAL",
                "event": event, "type": "event_callback",
                "event_id": f"Ev0LOCAL{self.session}{self._seq:06d}",
                "event_time": int(self.clock.now().timestamp()),
                "authorizations": [{"team_id": self.services.team_id,
                                    "user_id": self.fake.bot_user, "is_bot": True}]}
        self._dispatch(json.dumps(body), "application/json")
        self.after_ack.run()  # the answer follows the HTTP 200

    def webhook(self, line: str) -> None:
        """`webhook leads {"external_id": ...}`: what a CRM would POST, without the signature."""
        from bot.intake.batches import store
        from bot.intake.webhooks import records_of

        _, entity, *rest = line.split(maxsplit=2) + [""]
        try:
            records = records_of(entity, json.loads(rest[0] or "null"))
            result = store(self.services, entity, records, actor="shell")
        except ValueError as exc:
            raise ShellError(f"{exc} — usage: webhook <entity> <json>") from None
        self.say(f"  {json.dumps(result.as_dict())}")

    def import_file(self, args: list[str]) -> None:
        from pathlib import Path

        from bot.intake.imports import ImportStopped, import_csv

        if len(args) < 2:
            raise ShellError("usage: import <entity> FILE.csv [hubspot|salesforce]")
        try:
            summary = import_csv(self.services, args[0], Path(args[1]),
                                 mapping=args[2] if len(args) > 2 else None)
        except ImportStopped as stopped:  # what came before it is imported: show that too
            self.say(f"  stopped: {stopped}")
            if not stopped.summary.rows:
                self.say("  nothing is imported")
                return
            summary = stopped.summary
        except (ValueError, OSError) as exc:
            raise ShellError(str(exc)) from None
        self.say(f"  {json.dumps(summary.as_dict())}")

    def act_as(self, args: list[str]) -> None:
        if not args:
            raise ShellError("usage: as <user>")
        self.state.user = resolve_user(self.fake.users, " ".join(args))
        self.whoami([])

    def tick(self, args: list[str]) -> None:
        if len(args) != 1:
            raise ShellError("usage: tick <duration>, e.g. tick 30m")
        try:
            delta = parse_duration(args[0])
        except ValueError as exc:
            raise ShellError(str(exc)) from None
        start, end = self.clock.now(), self.clock.now() + delta
        once = {j.id: times[-1] for j in self.services.features.jobs if j.id in ONCE_A_TICK
                if (times := fire_times(j, self.services, start, end))}
        with self._progress(f"tick {args[0]}") as step:
            while (due := self._next_runs(start, end, once)) is not None:
                start, jobs = due
                self.clock.set(start)
                # the outbox sweep goes last: it delivers what the others queued, as the
                # sender (woken by their commits) would
                for j in sorted(jobs, key=lambda j: j.id == SENDER):
                    step(f"{self._local(start)} {j.id}")
                    j.run(self.services, start)
                if j.id != SENDER:
                    self.flush()
        self.clock.set(end)
        self.time([])

    def _next_runs(self, after: datetime, until: datetime, once: dict[str, datetime]
                   ) -> tuple[datetime, list[Job]] | None:
        """The next firing in (after, until] at which a job has work, and the jobs due then:
        a job that says when it next has work (`next_due`) skips the firings before that."""
        runs = []
        for j in self.services.features.jobs:
            if j.id in once:
                when = once[j.id] if once[j.id] > after else None
            elif j.next_due is None:
                when = next_fire(j, self.services, after + INSTANT)
            else:
                due = j.next_due(self.services)
                when = None if due is None else next_fire(j, self.services,
                                                          max(due, after + INSTANT))
            if when is not None and when <= until:
                runs.append((when, j))
        if not runs:
            return None
        first = min(when for when, _ in runs)
        return first, [j for when, j in runs if when == first]

    @contextmanager
    def _progress(self, what: str) -> Iterator[Callable[[str], None]]:
        """A bar while a tick's jobs run, on a terminal (a script gets the result alone);
        what the bot posts meanwhile is printed above it."""
        if not self.out.isatty():
            yield lambda _: None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.description}"), console=Console(file=self.out),
                      transient=True) as bar:
            task = bar.add_task("", total=None)
            self._console = bar.console
            try:
                yield lambda doing: bar.update(task, advance=1, description=doing)
            finally:
                self._console = None

    def jobs(self, _: list[str]) -> None:
        now = self.clock.now()
        for j in self.services.features.jobs:
            nxt = j.trigger(self.services.config).get_next_fire_time(None, now)
            self.say(f"  {j.id:<16} next {self._local(nxt)}  — {j.description}")

    def run_job(self, args: list[str]) -> None:
        try:
            result = self.services.features.job(args[0] if args else "").run(
                self.services, self.clock.now())
        except KeyError as exc:
            raise ShellError(exc.args[0]) from None
        for line in report_lines(args[0], result, self._local):
            self.say(f"  {args[0]}: {line}")

    def whoami(self, _: list[str]) -> None:
        user = self.fake.users.get(self.state.user, {})
        self.say(f"  you are {self.state.user} ({user.get('real_name', 'unknown')})")

    def time(self, _: list[str]) -> None:
        self.say(f"  it is {self._local(self.clock.now())}")

    # -- plumbing

    @property
    def channel(self) -> str:
        return self.services.config.channels.handoff or "C0SHELL"

    def _dispatch(self, body: str, content_type: str):
        req = BoltRequest(body=body, headers={"content-type": [content_type]})
        return self.app.dispatch(req)

    def _trigger(self) -> str:
        self._seq += 1
        return f"{self._seq}.local.trigger"

    @staticmethod
    def _message_number(word: str) -> int:
        number = positive_number(word)
        if number is None:
            raise ShellError(f"{word!r} is not a message number (the #3 printed before a message)")
        return number

    def _message(self, number: int) -> Message:
        try:
            return self.fake.message(number)
        except KeyError as exc:
            raise ShellError(exc.args[0]) from None

    def _message_with(self, action_id: str, number: int | None) -> Message:
        """The message to click: an ephemeral one only by the person who sees it (Slack shows
        it to no one else)."""
        if number is not None:
            msg = self._message(number)
            if not self._sees(msg):
                raise ShellError(f"message #{number} is only for {msg.ephemeral_to}: "
                                 f"as {msg.ephemeral_to}, then click it")
            if action_id not in msg.action_ids():
                raise ShellError(f"message #{number} has no button {action_id!r}; "
                                 f"it has: {', '.join(msg.action_ids()) or 'none'}")
            return msg
        for msg in reversed(self.fake.messages):
            if action_id in msg.action_ids() and self._sees(msg):
                return msg
        raise ShellError(f"no message has a button {action_id!r}")

    def _sees(self, msg: Message) -> bool:
        return msg.ephemeral_to in (None, self.state.user)

    def _local(self, when: datetime | None) -> str:
        if when is None:
            return "never"
        return when.astimezone(self.services.config.workspace.tz).strftime("%a %Y-%m-%d %H:%M %Z")

    def _show(self, kind: str, obj: Any) -> None:
        if kind in ("post", "update", "delete", "ephemeral"):
            self._unsaved = True
            self.say(render_message(obj, kind, self.state.user))
        elif kind == "view":
            self.say(f"  [modal] {render_view(obj)}")
        elif kind == "home":
            user, view = obj
            self.say(f"  [App Home of {user} updated] {render_view(view)}")
        elif kind == "file":
            for f in obj:
                thread = f" (thread {f['thread_ts']})" if f.get("thread_ts") else ""
                self.say(f"  [file {f['filename']}, {len(f.get('bytes', b''))} bytes, "
                         f"in {f['channel']}{thread}]")

    def _post_answer(self, body: str) -> None:
        """A slash command's ack carries its answer, which Slack shows as a message (only to
        the user unless `in_channel`): numbered like any other, its buttons clickable."""
        if not body:
            return
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {"text": body}  # a plain-text ack
        if answer.get("text") or answer.get("blocks"):
            self.fake.answer(self.channel, self.state.user, answer)

    def _show_errors(self, body: str) -> None:
        """A modal's errors, the one ack of a click or submission Slack shows."""
        data = json.loads(body) if body.startswith("{") else {}
        if data.get("response_action") == "errors":
            self.say("  ! " + "; ".join(f"{k}: {v}" for k, v in data["errors"].items()))

    def say(self, text: str) -> None:
        if self._console is not None:  # above the progress bar of a tick
            self._console.print(self._as_slack_shows(text), markup=False, highlight=False,
                                emoji=False, soft_wrap=True)
            return
        print(self._as_slack_shows(text), file=self.out, flush=True)

    def _as_slack_shows(self, text: str) -> str:
        """Mentions and <!date> tokens rendered for the current user, in their timezone."""
        user = self.fake.users.get(self.state.user, {})
        tz = ZoneInfo(user.get("tz") or self.services.config.workspace.timezone)

        def date(m: re.Match) -> str:
            return datetime.fromtimestamp(int(m[1]), tz).strftime("%a %b %d %H:%M %Z")

        def mention(m: re.Match) -> str:
            return "@" + (self.fake.users.get(m[1], {}).get("real_name") or m[1])

        return MENTION.sub(mention, DATE_TOKEN.sub(date, text))


def report_lines(job_id: str, result: Any, local: Callable[[datetime | None], str]) -> list[str]:
    """A job's report for people, a line each (`run <job>`). Every job has its own words:
    a job without them is a KeyError here, not a Python repr on the screen."""
    return JOB_REPORTS[job_id](result, local)


def _refresh_lines(r, local) -> list[str]:
    return [f"{r.team_id}: {r.days} day(s) recomputed, {r.rows:,} snapshot rows, as of "
            f"{local(r.as_of)}"]


def _outbox_lines(result, local) -> list[str]:
    after = f"; next one due {local(result.next_due)}" if result.next_due else ""
    return [f"{result.sent} message(s) sent, {result.retried} to retry, "
            f"{result.dead} given up{after}"]


def _import_lines(result, local) -> list[str]:
    return [f"{name}: " + (summary.get("failed") or
                           f"{summary['created']} created, {summary['updated']} updated, "
                           f"{summary['rejected']} rejected")
            for name, summary in result] or \
        ["no new files (a file is imported once it is unchanged since the previous look)"]


JOB_REPORTS: dict[str, Callable[[Any, Callable[[datetime | None], str]], list[str]]] = {
    "metrics.refresh": _refresh_lines,
    "sla.sweep": lambda r, _: [f"{r.sent} nudge(s) sent, {r.held} held for working hours, "
                               f"{r.dropped} no longer needed"],
    "outbox.sweep": _outbox_lines,
    "home.refresh": lambda r, _: [f"{r} Home tab(s) republished"],
    "imports.folder": _import_lines,
    "surveys.sweep": lambda r, _: [f"{r['opened']} run(s) opened, {r['prompted']} prompt(s) "
                                   f"and {r['reminded']} reminder(s) sent, {r['closed']} run(s) "
                                   "closed"],
    "owners.retry": lambda r, _: [f"{email}: {what}" for email, what in r.items()]
    or ["no CRM owner email waiting for Slack's answer"],
    "digests.post": lambda r, _: [f"{o.digest} for {o.period}: {DIGEST_OUTCOMES[o.kind]}"
                                  for o in r] or ["no digest due"],
    "retention.prune": lambda r, _: [str(r)],
}


DIGEST_OUTCOMES = {"on_time": "posted", "late": "posted late, with a note", "sent": "posted",
                   "skipped": "more than a period late: not posted",
                   "empty": "nothing to report: not posted (skip_if_empty)",
                   "already": "posted before"}


class ShellError(Exception):
    """A line the shell could not carry out; printed, never fatal."""


def resolve_user(users: dict[str, dict[str, Any]], who: str) -> str:
    """The Slack id of the one person `who` names (`as`, `--as`, `home`, a picked user):
    their id, email or full name, else their first name; a ShellError for nobody or several."""
    who_l = who.strip().lower()
    exact = [uid for uid, u in users.items()
             if who_l in (uid.lower(), u["name"].lower(), (u["profile"].get("email") or "").lower())]
    found = exact or [uid for uid, u in users.items()
                      if who_l == next(iter(u["name"].lower().split()), None)]
    if len(found) == 1:
        return found[0]
    if found:
        people = ", ".join(f"{uid} ({users[uid]['name']})" for uid in sorted(found))
        raise ShellError(f"{who!r} is several people: {people}; name one by id or email")
    raise ShellError(f"nobody called {who!r}; known: {', '.join(sorted(users))}")


# ------------------------------------------------------------------ rendering


def render_message(msg: Message, kind: str, viewer: str) -> str:
    """The header says who sees an ephemeral message: `(only you)` to the viewer."""
    thread = f" (thread {msg.thread_ts})" if msg.thread_ts else ""
    only = "" if not msg.ephemeral_to else \
        " (only you)" if msg.ephemeral_to == viewer else f" (only <@{msg.ephemeral_to}>)"
    label = {"update": " (updated)", "delete": " (deleted)"}.get(kind, "")
    head = f"#{msg.number} [{msg.channel}]{thread}{only}{label}"
    if kind == "delete":
        return head
    return head + "\n" + _indent(blocks_text(msg.blocks, msg.text, msg.number))


def blocks_text(blocks: list[dict[str, Any]], fallback: str, number: int | None = None) -> str:
    if not blocks:
        return unescape(fallback)
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind in ("section", "header"):
            if block.get("text"):
                lines.append(shown(block["text"]))
            lines.extend(shown(f).replace("\n", " ", 1) for f in block.get("fields", []))
            if block.get("accessory", {}).get("action_id"):
                lines.append(_button_text(block["accessory"], number))
        elif kind == "context":
            lines.append("  ".join(shown(e) for e in block.get("elements", []) if "text" in e))
        elif kind == "divider":
            lines.append("─" * 40)
        elif kind == "actions":
            lines.append("  ".join(_button_text(e, number) for e in block.get("elements", [])))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "input":
            el = block.get("element", {})
            options = [o["value"] for o in el.get("options", [])]
            choice = f" one of: {', '.join(options)}" if options else " text"
            optional = " (optional)" if block.get("optional") else ""
            lines.append(f"[{block['block_id']}={choice}]{optional} {block['label']['text']}")
    return "\n".join(lines)


def render_view(view: dict[str, Any]) -> str:
    title = (view.get("title") or {}).get("text", view.get("type", "view"))
    return f"{title}\n" + _indent(blocks_text(view.get("blocks", []), ""))


def _button_text(el: dict[str, Any], number: int | None) -> str:
    label = (el.get("text") or el.get("placeholder") or {}).get("text", el.get("action_id"))
    target = f" {number}" if number else ""
    who = " <user>" if el.get("type") == "users_select" else ""
    if el.get("type") == "static_select":
        who = " <" + "|".join(o["text"]["text"] for o in el.get("options", [])) + ">"
    return f"[{label} → click {el.get('action_id')}{target}{who}]"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


# ------------------------------------------------------------------ start-up

SHELL_TEAM = "T0LOCAL"
SHELL_DB = "sqlite:///alignbot-shell.db"


def build_shell(config, *, db_url: str = SHELL_DB, at: datetime, user: str | None = None,
                demo: bool = False, out: TextIO = sys.stdout, check=None) -> Shell:
    """The shell's own world: a fake Slack, a fake clock at `at`, its own database."""
    from bot.app import AfterAck, create_app
    from bot.platform.config import Secrets
    from bot.platform.runtime import build_services
    from bot.surveys.demo import with_demo_survey
    from storage.db import make_engine
    from storage.migrate import upgrade

    if demo:
        config = with_demo_survey(config)
    engine = make_engine(db_url)
    upgrade(engine)
    clock = FakeClock(at)
    fake = FakeSlack(team_id=SHELL_TEAM, check=check, clock=clock)
    services = build_services(config, Secrets(), clock, engine=engine, slack=fake.client(),
                              team_id=SHELL_TEAM)
    saved = messages_file(db_url)
    _restore_messages(services, fake, saved)
    if demo:
        _load_demo(services, out)
    _introduce_people(services, fake)
    after_ack = AfterAck()
    app = create_app(services, verify_requests=False, after_ack=after_ack)
    if user is not None and not (SLACK_ID.fullmatch(user) and user not in fake.users):
        user = resolve_user(fake.users, user)  # a name or an email, as the `as` line takes
    first = user or (config.workspace.admins[0] if config.workspace.admins else None) \
        or next(iter(fake.users), "U0LOCAL01")
    if first not in fake.users:
        fake.add_user(first, "Local User", tz=config.workspace.timezone)
    return Shell(services, app, after_ack, fake, clock, first, out, saved)


def messages_file(db_url: str) -> Path | None:
    """Where the fake Slack's messages last between sessions: beside a SQLite store's file
    (`alignbot-shell.db-slack.json`); None for a store elsewhere (a server, memory), whose
    sessions each start with an empty Slack."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(f"{url.database}-slack.json")


def _restore_messages(services: Services, fake: FakeSlack, saved: Path | None) -> None:
    """Earlier sessions' messages, to click and edit again (the store keeps their ts to update
    them), unless the store has posted nothing: it is a new one, started over, and the file
    starts over with it. A new message's ts must be none of theirs, even when the clock is at
    the same second again."""
    from storage.outbox import list_posted_ts

    with services.sessions.begin() as session:
        stored = list_posted_ts(session, services.team_id)
    if stored and saved is not None and saved.exists():
        fake.load(saved)
    known = [*stored, *(m.ts for m in fake.messages)]
    fake.number_ts_from(1 + max((int(ts.partition(".")[2] or 0) for ts in known), default=0))


def _load_demo(services: Services, out: TextIO) -> None:
    """The demo data and its metric snapshots, made once per store (a bar on the terminal
    shows how far). Snapshots of the last week only, the days every refresh redoes: the
    first `tick` then refreshes those, not three years of days, and older periods are read
    live (as fast, for the demo's few thousand leads)."""
    from bot.local.demo import generate_demo
    from bot.metrics.snapshots import SETTLE_DAYS, refresh

    now = services.clock.now()
    recent = now.astimezone(services.config.workspace.tz).date() - timedelta(SETTLE_DAYS)
    with _bar() as bar:
        making = bar.add_task("demo data", total=None)
        with services.work(now=now) as work:
            summary = generate_demo(work)
        bar.update(making, total=1, completed=1)
        if not summary.already_present:
            days = bar.add_task("metric snapshots", total=None)
            refresh(services.sessions, services.config, services.team_id, now, since=recent,
                    progress=lambda done, total: bar.update(days, completed=done, total=total))
    print(f"demo data: {summary}", file=out)


def _bar():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True))


def _introduce_people(services: Services, fake: FakeSlack) -> None:
    """Everyone the store knows becomes a user of the fake workspace."""
    from storage.people import list_people

    with services.sessions.begin() as session:
        for p in list_people(session, services.team_id):
            fake.add_user(p.slack_id, p.name or p.slack_id, p.email,
                          tz=p.timezone or services.config.workspace.timezone,
                          deleted=p.deactivated)
