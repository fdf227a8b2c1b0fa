"""A fake Slack Web API for the local shell and the tests.

`FakeSlack` keeps the state a workspace would (messages, DMs, users, modals, Home
tabs) and answers Web API methods with Slack's response shapes. `FakeWebClient`
is a real slack_sdk `WebClient` whose last hop — the urllib request — is answered
by the fake instead of the network, so argument encoding, error handling and
retry handlers all run exactly as against slack.com. `wsgi_app()` serves the same
fake over real HTTP for out-of-process tests (`SLACK_API_URL`).
"""

from __future__ import annotations

import email.message
import io
import itertools
import json
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qsl, urlsplit
from urllib.request import Request

from slack_sdk import WebClient

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
    updates: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def action_ids(self) -> list[str]:
        return [el["action_id"] for block in self.blocks if block.get("type") == "actions"
                for el in block.get("elements", []) if "action_id" in el] + [
                block["accessory"]["action_id"] for block in self.blocks
                if "action_id" in block.get("accessory", {})]


class FakeSlack:
    def __init__(self, team_id: str = "T0LOCAL", bot_user: str = "U0ALIGNBOT",
                 on_change: Callable[[str, Any], None] | None = None,
                 check: Callable[[str, dict[str, Any]], None] | None = None):
        self.team_id = team_id
        self.bot_user = bot_user
        self.on_change = on_change  # ("post" | "update" | "ephemeral" | "view" | "home", obj)
        self.check = check  # contract check for each call (tests)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: list[Message] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.homes: dict[str, dict[str, Any]] = {}
        self.views: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        self._scripted: dict[str, deque[Response]] = defaultdict(deque)
        self._ts = itertools.count(1)

    # -- setting the scene

    def add_user(self, user_id: str, name: str, email: str | None = None,
                 tz: str = "America/New_York", deleted: bool = False) -> None:
        self.users[user_id] = {
            "id": user_id, "team_id": self.team_id, "name": name, "real_name": name,
            "deleted": deleted, "is_bot": False, "tz": tz,
            "profile": {"email": email, "real_name": name, "display_name": name},
        }

    def script(self, method: str, *responses: Response) -> None:
        """Answer the next calls of `method` with these (status, headers, body) first."""
        self._scripted[method].extend(responses)

    # -- reading what happened

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        return [args for m, args in self.calls if m == method]

    def in_channel(self, channel: str) -> list[Message]:
        channel = self._dm_id(channel) if channel[:1] in "UW" else channel
        return [m for m in self.messages if m.channel == channel and not m.ephemeral_to]

    def message(self, number: int) -> Message:
        return self.messages[number - 1]

    # -- the Web API

    def handle(self, method: str, args: dict[str, Any]) -> Response:
        self.calls.append((method, args))
        if self.check:
            self.check(method, args)
        if self._scripted.get(method):
            return self._scripted[method].popleft()
        answer = getattr(self, "_" + method.replace(".", "_"), None)
        if answer is None:
            return _error("unknown_method")
        return answer(args)

    def _auth_test(self, args):
        return _ok(team_id=self.team_id, team="Local workspace", user_id=self.bot_user,
                   user="alignbot", bot_id="B0ALIGNBOT", url="https://local.slack.invalid/")

    def _chat_postMessage(self, args):
        channel = args.get("channel")
        if not channel:
            return _error("channel_not_found")
        if not args.get("text") and not args.get("blocks"):
            return _error("no_text")
        channel = self._dm_id(channel) if channel[:1] in "UW" else channel
        msg = self._new_message(channel, args)
        self._notify("post", msg)
        return _ok(channel=channel, ts=msg.ts, message={"text": msg.text, "ts": msg.ts})

    def _chat_postEphemeral(self, args):
        msg = self._new_message(args.get("channel", ""), args, ephemeral_to=args.get("user"))
        self._notify("ephemeral", msg)
        return _ok(message_ts=msg.ts)

    def _chat_update(self, args):
        msg = next((m for m in self.messages
                    if m.channel == args.get("channel") and m.ts == args.get("ts")), None)
        if msg is None:
            return _error("message_not_found")
        msg.history.append({"text": msg.text, "blocks": msg.blocks})
        msg.text = args.get("text", msg.text)
        msg.blocks = _blocks(args.get("blocks", msg.blocks))
        msg.updates += 1
        self._notify("update", msg)
        return _ok(channel=msg.channel, ts=msg.ts, text=msg.text)

    def _chat_getPermalink(self, args):
        return _ok(permalink=f"https://local.slack.invalid/archives/{args.get('channel')}/"
                             f"p{str(args.get('message_ts', '')).replace('.', '')}")

    def _conversations_open(self, args):
        users = str(args.get("users", "")).split(",")
        return _ok(channel={"id": self._dm_id(users[0])})

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

    def _reactions_add(self, args):
        return _ok()

    def _files_getUploadURLExternal(self, args):
        file_id = f"F{len(self.files) + 1:08d}"
        self.files.append({"id": file_id, "filename": args.get("filename"), "shared": False})
        return _ok(upload_url=f"https://files.slack.invalid/upload/{file_id}", file_id=file_id)

    def _files_completeUploadExternal(self, args):
        files = _json(args.get("files")) or []
        for f in files:
            for known in self.files:
                if known["id"] == f.get("id"):
                    known.update(shared=True, title=f.get("title"), channel=args.get("channel_id"))
        self._notify("file", files)
        return _ok(files=files)

    # -- helpers

    def _new_message(self, channel: str, args: dict[str, Any], ephemeral_to: str | None = None):
        msg = Message(number=len(self.messages) + 1, channel=channel,
                      ts=f"1700000000.{next(self._ts):06d}", text=args.get("text") or "",
                      blocks=_blocks(args.get("blocks")), thread_ts=args.get("thread_ts"),
                      ephemeral_to=ephemeral_to)
        self.messages.append(msg)
        return msg

    def _dm_id(self, user_id: str) -> str:
        return "D" + user_id[1:]

    def _notify(self, kind: str, obj: Any) -> None:
        if self.on_change:
            self.on_change(kind, obj)

    def client(self, **kwargs) -> FakeWebClient:
        return FakeWebClient(self, **kwargs)

    def wsgi_app(self):
        """Serve this fake over HTTP at /api/<method> (for processes started by tests)."""
        def app(environ, start_response):
            method = environ["PATH_INFO"].rsplit("/", 1)[-1]
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            args = parse_args(environ.get("CONTENT_TYPE", ""), body, environ.get("QUERY_STRING", ""))
            status, headers, payload = self.handle(method, args)
            data = json.dumps(payload).encode()
            start_response(f"{status} X", [("Content-Type", "application/json"), *headers.items()])
            return [data]
        return app


class FakeWebClient(WebClient):
    """A real WebClient whose HTTP exchange is answered by a FakeSlack, in process."""

    def __init__(self, fake: FakeSlack, **kwargs):
        kwargs.setdefault("token", "xoxb-local-fake")
        kwargs.setdefault("base_url", "https://slack.invalid/api/")
        super().__init__(**kwargs)
        self.fake = fake

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = urlsplit(url)
        method = parts.path.rsplit("/", 1)[-1]
        args = parse_args(req.get_header("Content-type") or "", req.data or b"", parts.query)
        status, headers, body = self.fake.handle(method, args)
        data = json.dumps(body)
        if status != 200:
            hdrs = email.message.Message()
            hdrs["Content-Type"] = "application/json; charset=utf-8"
            for k, v in headers.items():
                hdrs[k] = v
            raise HTTPError(url, status, "fake Slack error", hdrs, io.BytesIO(data.encode()))
        return {"status": 200, "headers": {"content-type": "application/json", **headers},
                "body": data}


def parse_args(content_type: str, body: bytes, query: str = "") -> dict[str, Any]:
    args: dict[str, Any] = dict(parse_qsl(query))
    if "json" in content_type:
        args.update(json.loads(body or b"{}"))
    elif body:
        args.update(parse_qsl(body.decode()))
    args.pop("token", None)
    return args


def _ok(**fields) -> Response:
    return 200, {}, {"ok": True, **fields}


def _error(error: str) -> Response:
    return 200, {}, {"ok": False, "error": error}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})


def _blocks(value: Any) -> list[dict[str, Any]]:
    return _json(value) if value else []
