"""A fake Slack Web API for the local shell and the tests.

`FakeSlack` keeps the state a workspace would (messages, DMs, users, modals, Home
tabs) and answers Web API methods with Slack's response shapes. Given a clock, its
message timestamps follow that clock, as Slack's do (history lookups compare them
with the bot's own time); `lose_answers()` makes a call take effect and its answer
never arrive, as a timeout or a dropped connection would. Each fake has its
own host name (`base_url`); a urllib handler answers HTTP requests to that host
in process, so any slack_sdk `WebClient` pointed at it — including the one Bolt
builds for each request — runs its real encoding, error handling and retry
handlers, and never touches the network. `wsgi_app()` serves the same fake over
real HTTP for out-of-process tests (`SLACK_API_URL`).
"""

from __future__ import annotations

import email.message
import io
import itertools
import json
import threading
import urllib.request
import urllib.response
import weakref
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from slack_sdk import WebClient

from bot.platform.clock import Clock

Response = tuple[int, dict[str, str], dict[str, Any]]


@dataclass
class Message:
    number: int
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    ephemeral_to: str | None = None
    metadata: dict[str, Any] | None = None
    updates: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_api(self, with_metadata: bool) -> dict[str, Any]:
        """As conversations.history shows it (metadata only when asked for)."""
        shown = {"type": "message", "ts": self.ts, "text": self.text, "blocks": self.blocks,
                 "bot_id": "B0ALIGNBOT"}
        if self.thread_ts:
            shown["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata:
            shown["metadata"] = self.metadata
        return shown

    def elements(self) -> list[tuple[str | None, dict[str, Any]]]:
        """Every interactive element, with the id of the block it sits in."""
        return [(block.get("block_id"), el) for block in self.blocks
                for el in [*block.get("elements", []), block.get("accessory") or {}]
                if "action_id" in el]

    def action_ids(self) -> list[str]:
        return [el["action_id"] for _, el in self.elements()]

    def find_element(self, action_id: str) -> tuple[str | None, dict[str, Any]]:
        for block_id, el in self.elements():
            if el["action_id"] == action_id:
                return block_id, el
        raise KeyError(f"message #{self.number} has no element {action_id!r}")


class FakeSlack:
    def __init__(self, team_id: str = "T0LOCAL", bot_user: str = "U0ALIGNBOT",
                 on_change: Callable[[str, Any], None] | None = None,
                 check: Callable[[str, dict[str, Any]], None] | None = None,
                 clock: Clock | None = None):
        self.team_id = team_id
        self.clock = clock
        self.bot_user = bot_user
        self.on_change = on_change  # (post|update|delete|ephemeral|view|home|file, obj)
        self.check = check  # contract check for each call (tests)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.tokens: list[str | None] = []  # the token each of `calls` carried
        self.installed: dict[str, str] = {}  # bot token → its workspace (OAuth installs)
        self._codes: dict[str, str] = {}  # an install's code → the workspace that allowed it
        self._caller: str | None = None  # the token of the call being answered
        self.messages: list[Message] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.homes: dict[str, dict[str, Any]] = {}
        self.views: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        self.missing: set[str] = set()  # channel ids that do not exist (any more)
        self.usergroups: dict[str, tuple[str, list[str]]] = {}  # id → (handle, member ids)
        self._scripted: dict[str, deque[Response]] = defaultdict(deque)
        self._lost: dict[str, deque[BaseException]] = defaultdict(deque)
        self._ts = itertools.count(1)
        self.next_number = 1  # never one given before: not a deleted or vanished message's
        self._lock = threading.RLock()  # several senders may call at once
        self.host = f"slack-{next(_HOSTS)}.fake.invalid"
        _register(self)

    @property
    def base_url(self) -> str:
        return f"https://{self.host}/api/"

    # -- setting the scene

    def add_user(self, user_id: str, name: str, email: str | None = None,
                 tz: str = "America/New_York", deleted: bool = False) -> None:
        self.users[user_id] = {
            "id": user_id, "team_id": self.team_id, "name": name, "real_name": name,
            "deleted": deleted, "is_bot": False, "tz": tz,
            "profile": {"email": email, "real_name": name, "display_name": name},
        }

    def add_usergroup(self, group_id: str, handle: str, members: list[str]) -> None:
        self.usergroups[group_id] = (handle, list(members))

    def script(self, method: str, *responses: Response) -> None:
        """Answer the next calls of `method` with these (status, headers, body) first."""
        self._scripted[method].extend(responses)

    def lose_answers(self, method: str, *errors: BaseException) -> None:
        """Let the next calls of `method` take effect, then raise these errors in the client
        instead of answering (a timeout, a dropped connection): it cannot tell what happened."""
        self._lost[method].extend(errors)

    # -- reading what happened

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        return [args for m, args in self.calls if m == method]

    def in_channel(self, channel: str) -> list[Message]:
        channel = self.dm_id(channel) if channel[:1] in "UW" else channel
        return [m for m in self.messages if m.channel == channel and not m.ephemeral_to]

    def message(self, number: int) -> Message:
        for msg in self.messages:
            if msg.number == number:
                return msg
        raise KeyError(f"there is no message #{number}")

    # -- lasting past the process (the shell's sessions)

    def save(self, path: Path) -> None:
        """Write the messages to `path`, whole or not at all (the old file stays on a crash).
        Without their earlier versions: no later session shows those, and an erased lead's
        name would live on in them. Without ephemeral messages: Slack shows those until the
        reader reloads, and a new session is a reload. The next number is kept, so that a
        number printed for one of those never names a new message."""
        kept = [{k: v for k, v in asdict(m).items() if k != "history"}
                for m in self.messages if not m.ephemeral_to]
        part = path.with_name(path.name + ".part")
        part.write_text(json.dumps({"next_number": self.next_number, "messages": kept}))
        part.replace(path)

    def load(self, path: Path) -> None:
        """The messages `save` wrote, numbered as they were: new ones are numbered after."""
        saved = json.loads(path.read_text())
        if isinstance(saved, list):  # a file written before ephemerals were left out
            saved = {"next_number": len(saved) + 1,
                     "messages": [m for m in saved if not m.get("ephemeral_to")]}
        self.messages = [Message(**m) for m in saved["messages"]]
        self.next_number = saved["next_number"]

    # -- what Slack sends the app when people act (shared by the shell and the tests)

    def block_action(self, msg: Message, action_id: str, user: str, *, trigger_id: str,
                     selected_user: str | None = None, selected_option: str | None = None,
                     at: float = 1700000000.0) -> dict[str, Any]:
        """The block_actions payload of a click on `action_id` in `msg` (for a select, the
        user or the option picked: an option's value or its text)."""
        block_id, element = msg.find_element(action_id)
        action: dict[str, Any] = {"action_id": action_id, "block_id": block_id,
                                  "type": element.get("type", "button"), "action_ts": f"{at:.6f}"}
        if element.get("type") == "users_select":
            action["selected_user"] = selected_user
        elif element.get("type") == "static_select":
            action["selected_option"] = next(
                (o for o in element.get("options", [])
                 if selected_option in (o["value"], o["text"]["text"])), None)
        else:
            action.update(value=element.get("value"), text=element.get("text"))
        payload = {
            "type": "block_actions", "api_app_id": "A0LOCAL", "token": "local",
            "user": {"id": user, "username": user, "name": user, "team_id": self.team_id},
            "team": {"id": self.team_id, "domain": "local"},
            "container": {"type": "message", "message_ts": msg.ts, "channel_id": msg.channel,
                          "is_ephemeral": bool(msg.ephemeral_to)},
            "channel": {"id": msg.channel, "name": msg.channel},
            "trigger_id": trigger_id,
            "response_url": f"https://{self.host}/respond/{msg.channel}/{msg.ts}/{user}",
            "actions": [action],
        }
        if not msg.ephemeral_to:  # Slack sends no copy of an ephemeral message: the app has none
            payload["message"] = {"type": "message", "ts": msg.ts, "text": msg.text,
                                  "blocks": msg.blocks}
        return payload

    def view_submission(self, view: dict[str, Any], user: str,
                        answers: dict[str, str]) -> dict[str, Any]:
        """The view_submission payload of a modal, with `answers` by input block id."""
        values: dict[str, Any] = {}
        for block in view.get("blocks", []):
            if block.get("type") != "input" or block["block_id"] not in answers:
                continue
            element, answer = block["element"], answers[block["block_id"]]
            if element["type"] == "static_select":
                state = {"type": "static_select", "selected_option": {"value": answer}}
            else:
                state = {"type": element["type"], "value": answer}
            values[block["block_id"]] = {element["action_id"]: state}
        return {
            "type": "view_submission", "api_app_id": "A0LOCAL", "token": "local",
            "team": {"id": self.team_id, "domain": "local"},
            "user": {"id": user, "username": user, "name": user, "team_id": self.team_id},
            "trigger_id": "local.trigger",
            "view": {**view, "state": {"values": values}, "team_id": self.team_id},
        }

    # -- the Web API

    def allow_install(self, team_id: str) -> str:
        """A workspace's admin approves the app (Slack's consent page): the code Slack
        redirects to the app with, which `oauth.v2.access` trades for a new bot token."""
        with self._lock:
            code = f"code-{team_id}-{next(self._ts)}"
            self._codes[code] = team_id
            return code

    def handle(self, method: str, args: dict[str, Any], token: str | None = None) -> Response:
        with self._lock:
            self.calls.append((method, args))
            self.tokens.append(token)
            self._caller = token
            if self.check:
                self.check(method, args)
            if self._scripted.get(method):
                return self._scripted[method].popleft()
            answer = getattr(self, "_" + method.replace(".", "_"), None)
            if answer is None:
                return _error("unknown_method")
            response = answer(args)
            if self._lost.get(method):
                raise self._lost[method].popleft()
            return response

    def _auth_test(self, args):
        team_id = self.installed.get(self._caller or "", self.team_id)
        return _ok(team_id=team_id, team="Local workspace", user_id=self.bot_user,
                   user="alignbot", bot_id="B0ALIGNBOT", url="https://local.slack.invalid/")

    def _oauth_v2_access(self, args):
        team_id = self._codes.pop(args.get("code", ""), None)
        if team_id is None:
            return _error("invalid_code")
        token = f"xoxb-{team_id}-{next(self._ts)}"
        self.installed[token] = team_id
        return _ok(app_id="A0LOCAL", access_token=token, token_type="bot",
                   scope="chat:write,commands", bot_user_id=self.bot_user,
                   team={"id": team_id, "name": f"Workspace {team_id}"}, enterprise=None,
                   is_enterprise_install=False, authed_user={"id": "U0ADMIN01"})

    def _chat_postMessage(self, args):
        channel = args.get("channel")
        if not channel or channel in self.missing:
            return _error("channel_not_found")
        if not args.get("text") and not args.get("blocks"):
            return _error("no_text")
        channel = self.dm_id(channel) if channel[:1] in "UW" else channel
        msg = self._new_message(channel, args)
        self._notify("post", msg)
        return _ok(channel=channel, ts=msg.ts, message={"text": msg.text, "ts": msg.ts})

    def _chat_postEphemeral(self, args):
        msg = self._new_message(args.get("channel", ""), args, ephemeral_to=args.get("user"))
        self._notify("ephemeral", msg)
        return _ok(message_ts=msg.ts)

    def _chat_update(self, args):
        msg = self._find(args.get("channel"), args.get("ts"))
        if msg is None:
            return _error("message_not_found")
        if not any(args.get(k) for k in ("text", "blocks", "attachments")):
            return _error("no_text")  # as Slack: an edit must say something
        self._replace(msg, args)
        return _ok(channel=msg.channel, ts=msg.ts, text=msg.text)

    def respond(self, channel: str, ts: str, user: str, args: dict[str, Any]) -> Response:
        """A reply through a click's response_url: it replaces or deletes the clicked message
        (ephemeral or not), or adds one that only the clicker sees (unless it is `in_channel`)."""
        with self._lock:
            self.calls.append(("response_url", args))
            self.tokens.append(None)
            if self.check:
                self.check("response_url", args)
            if not args.get("replace_original") and not args.get("delete_original"):
                self.answer(channel, user, args)
            elif (msg := self._find(channel, ts)) is None:
                return 404, {}, {"ok": False, "error": "message_not_found"}
            elif args.get("delete_original"):
                self.messages.remove(msg)
                self._notify("delete", msg)
            else:  # the message sent replaces it whole (unlike chat.update, which keeps blocks)
                self._replace(msg, {"blocks": [], **args})
            return 200, {}, {"ok": True}

    def answer(self, channel: str, user: str, answer: dict[str, Any]) -> Message:
        """A message answering a person (a slash command's ack, a response_url's new message):
        only they see it, unless it is `in_channel`."""
        private = answer.get("response_type") != "in_channel"
        msg = self._new_message(channel, answer, ephemeral_to=user if private else None)
        self._notify("ephemeral" if private else "post", msg)
        return msg

    def _find(self, channel: str | None, ts: str | None) -> Message | None:
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    def _replace(self, msg: Message, args: dict[str, Any]) -> None:
        msg.history.append({"text": msg.text, "blocks": msg.blocks})
        msg.text = args.get("text", msg.text)
        msg.blocks = _blocks(args.get("blocks", msg.blocks))
        msg.updates += 1
        self._notify("update", msg)

    def _chat_getPermalink(self, args):
        return _ok(permalink=f"https://local.slack.invalid/archives/{args.get('channel')}/"
                             f"p{str(args.get('message_ts', '')).replace('.', '')}")

    def _conversations_history(self, args):
        """A channel's messages (not thread replies) after `oldest`, newest first."""
        channel = args.get("channel") or ""
        if channel[:1] in "UW":
            return _error("channel_not_found")  # history needs the DM channel's id
        return _page([m for m in self.in_channel(channel) if not m.thread_ts], args, newest_first=True)

    def _conversations_replies(self, args):
        """A thread, its parent first, then the replies after `oldest`."""
        ts = args.get("ts")
        thread = [m for m in self.in_channel(args.get("channel") or "")
                  if ts in (m.ts, m.thread_ts)]
        return _page(thread, args, newest_first=False)

    def _conversations_open(self, args):
        users = str(args.get("users", "")).split(",")
        return _ok(channel={"id": self.dm_id(users[0])})

    def _views_open(self, args):
        view = _json(args.get("view"))
        view["id"] = f"V{len(self.views) + 1:08d}"
        self.views.append(view)
        self._notify("view", view)
        return _ok(view=view)

    _views_push = _views_open

    def _views_update(self, args):
        view = _json(args.get("view"))
        view["id"] = args.get("view_id") or f"V{len(self.views) + 1:08d}"
        self.views.append(view)
        return _ok(view=view)

    def _views_publish(self, args):
        user = args.get("user_id")
        if user not in self.users:
            return _error("user_not_found")
        view = _json(args.get("view"))
        self.homes[user] = view
        self._notify("home", (user, view))
        return _ok(view=view)

    def _users_info(self, args):
        user = self.users.get(args.get("user"))
        return _ok(user=user) if user else _error("user_not_found")

    def _users_lookupByEmail(self, args):
        email = str(args.get("email", "")).lower()
        user = next((u for u in self.users.values()
                     if (u["profile"].get("email") or "").lower() == email), None)
        return _ok(user=user) if user else _error("users_not_found")

    def _usergroups_list(self, args):
        return _ok(usergroups=[{"id": gid, "handle": handle, "team_id": self.team_id}
                               for gid, (handle, _) in self.usergroups.items()])

    def _usergroups_users_list(self, args):
        group = self.usergroups.get(args.get("usergroup"))
        return _ok(users=group[1]) if group else _error("no_such_subteam")

    def _reactions_add(self, args):
        return _ok()

    def _files_getUploadURLExternal(self, args):
        file_id = f"F{len(self.files) + 1:08d}"
        self.files.append({"id": file_id, "filename": args.get("filename"), "shared": False})
        return _ok(upload_url=f"https://{self.host}/upload/{file_id}", file_id=file_id)

    def _files_completeUploadExternal(self, args):
        files = _json(args.get("files")) or []
        titles = {f.get("id"): f.get("title") for f in files}
        shared = [known for known in self.files if known["id"] in titles]
        for known in shared:
            known.update(shared=True, title=titles[known["id"]], channel=args.get("channel_id"),
                         thread_ts=args.get("thread_ts"))
        self._notify("file", shared)
        return _ok(files=files)

    # -- helpers

    def new_ts(self) -> str:
        """A message ts no other message of this fake has: the clock's second, a counter."""
        seconds = int(self.clock.now().timestamp()) if self.clock else 1700000000
        return f"{seconds}.{next(self._ts):06d}"

    def number_ts_from(self, first: int) -> None:
        """Count the ts of new messages from `first`: past those a store already holds from
        an earlier fake, which a later clock may reach the same second as."""
        self._ts = itertools.count(first)

    def _new_message(self, channel: str, args: dict[str, Any], ephemeral_to: str | None = None):
        msg = Message(number=self.next_number, channel=channel,
                      ts=self.new_ts(), text=args.get("text") or "",
                      blocks=_blocks(args.get("blocks")), thread_ts=args.get("thread_ts"),
                      ephemeral_to=ephemeral_to, metadata=_json(args.get("metadata")) or None)
        self.messages.append(msg)
        self.next_number += 1
        return msg

    def dm_id(self, user_id: str) -> str:
        """The id of the bot's DM channel with a user (D… for U…)."""
        return "D" + user_id[1:]

    def _notify(self, kind: str, obj: Any) -> None:
        if self.on_change:
            self.on_change(kind, obj)

    def client(self, **kwargs) -> WebClient:
        kwargs.setdefault("token", "xoxb-local-fake")
        return WebClient(base_url=self.base_url, **kwargs)

    def http(self, path: str, content_type: str, body: bytes,
             authorization: str | None = None) -> Response:
        """Answer one HTTP request: /api/<method>, a file upload to /upload/<id>, or a reply
        to a click's /respond/<channel>/<ts>/<user>. The token comes in the Authorization
        header (`Bearer xoxb-…`) or among the arguments."""
        path, _, query = path.partition("?")
        if path.startswith("/respond/"):
            channel, ts, user = path.split("/")[2:5]
            return self.respond(channel, ts, user, parse_args(content_type, body))
        if path.startswith("/upload/"):
            file_id = path.rsplit("/", 1)[-1]
            for f in self.files:
                if f["id"] == file_id:
                    f["bytes"] = body
            return 200, {}, {"ok": True}
        args = parse_args(content_type, body, query)
        bearer = (authorization or "").partition("Bearer ")[2]  # not oauth.v2.access's Basic
        token = args.pop("token", None) or bearer or None
        return self.handle(path.rsplit("/", 1)[-1], args, token)

    def wsgi_app(self):
        """Serve this fake over HTTP at /api/<method> (for processes started by tests)."""
        def app(environ, start_response):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            path = environ["PATH_INFO"] + "?" + environ.get("QUERY_STRING", "")
            status, headers, payload = self.http(path, environ.get("CONTENT_TYPE", ""), body,
                                                 environ.get("HTTP_AUTHORIZATION"))
            data = json.dumps(payload).encode()
            start_response(f"{status} X", [("Content-Type", "application/json"), *headers.items()])
            return [data]
        return app


# ------------------------------------------------------------------ the in-process HTTP hop

_HOSTS = itertools.count(1)
_FAKES: weakref.WeakValueDictionary[str, FakeSlack] = weakref.WeakValueDictionary()


class _FakeSlackHandler(urllib.request.BaseHandler):
    """Answers urllib requests to a fake's host; any other host goes on to the network."""

    handler_order = 100  # before urllib's own HTTP(S) handlers

    def https_open(self, req: urllib.request.Request):
        fake = _FAKES.get(req.host)
        if fake is None:
            return None
        status, headers, body = fake.http(req.selector, req.get_header("Content-type") or "",
                                          req.data or b"", req.get_header("Authorization"))
        msg = email.message.Message()
        msg["Content-Type"] = "application/json; charset=utf-8"
        for k, v in headers.items():
            msg[k] = v
        resp = urllib.response.addinfourl(io.BytesIO(json.dumps(body).encode()), msg,
                                          req.full_url, status)
        resp.msg = "OK" if status == 200 else "Error"
        return resp  # urllib turns a non-2xx status into HTTPError, as with a real server

    http_open = https_open


_install_lock = threading.Lock()
_installed = False


def _register(fake: FakeSlack) -> None:
    global _installed
    with _install_lock:
        _FAKES[fake.host] = fake
        if not _installed:
            urllib.request.install_opener(urllib.request.build_opener(_FakeSlackHandler()))
            _installed = True


def parse_args(content_type: str, body: bytes, query: str = "") -> dict[str, Any]:
    args: dict[str, Any] = dict(parse_qsl(query))
    if "json" in content_type:
        args.update(json.loads(body or b"{}"))
    elif body:
        args.update(parse_qsl(body.decode()))
    return args


def _ok(**fields) -> Response:
    return 200, {}, {"ok": True, **fields}


def _error(error: str) -> Response:
    return 200, {}, {"ok": False, "error": error}


def _page(messages: list[Message], args: dict[str, Any], *, newest_first: bool) -> Response:
    """One page of a history after `oldest` (exclusive, as Slack's default), by `cursor`."""
    oldest = float(args.get("oldest") or 0)
    found = [m for m in messages if float(m.ts) > oldest]
    if newest_first:
        found.reverse()
    start, limit = int(args.get("cursor") or 0), int(args.get("limit") or 100)
    more = start + limit < len(found)
    with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
    return _ok(messages=[m.as_api(with_metadata) for m in found[start:start + limit]],
               has_more=more, response_metadata={"next_cursor": str(start + limit) if more else ""})


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})


def _blocks(value: Any) -> list[dict[str, Any]]:
    return _json(value) if value else []
