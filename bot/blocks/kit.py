"""Tiny Block Kit helpers the message builders are assembled from.

Slack reads `&`, `<` and `>` in mrkdwn and in a message's fallback `text` as markup:
`<!channel>` pings a channel, `<https://evil.example|Acme login>` is a disguised link.
So every text that did not come from alignbot itself (CRM data, what people typed,
config values, Slack's errors) goes into those through `escape`, and shows as typed.
plain_text (headers, buttons, titles) is never read as markup: it takes text as it is.
"""

from __future__ import annotations

import json
from typing import Any

Block = dict[str, Any]
SECTION_LIMIT = 3000
# A message's blocks as JSON (escapes count): Slack refuses more than ~13,000 (reported, not
# documented), so builders aim lower
MESSAGE_JSON = 12_000


def escape(text: object) -> str:
    """Data as Slack shows it literally in mrkdwn and fallback text (its own escaping rule)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """What Slack shows of escaped mrkdwn: for the shell and tests, which read as people do."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def shown(text: dict[str, Any]) -> str:
    """A text object as Slack shows it: mrkdwn unescaped, plain_text as it is."""
    return unescape(text["text"]) if text.get("type") == "mrkdwn" else text["text"]


def mention(user_id: str) -> str:
    """A Slack user mention; the id is escaped too, so no id can smuggle markup in."""
    return f"<@{escape(user_id)}>"


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    amp = head.rfind("&", -4)  # never half an escape (&amp; &lt; &gt;): Slack shows it raw
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + "…"


def json_clip(text: str, limit: int) -> str:
    """Clipped so that its JSON (quotes, escapes, \\u sequences) is at most `limit` long
    (or down to "…" alone, under a limit too small even for it)."""
    while (size := len(json.dumps(text))) > limit and text != "…":
        text = clip(text, max(1, len(text) * limit // size - 1))
    return text


def section(text: str, *, accessory: Block | None = None, fields: list[str] | None = None,
            block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(clip(text, SECTION_LIMIT))}
    if fields:
        block["fields"] = [mrkdwn(clip(f, 2000)) for f in fields[:10]]
    if accessory:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id
    return block


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text)}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(clip(t, 2000)) for t in texts[:10]]}


def divider() -> Block:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str | None = None, *, style: str | None = None,
           url: str | None = None) -> Block:
    el: Block = {"type": "button", "text": plain(text, 75), "action_id": action_id}
    if value is not None:
        el["value"] = value
    if style:
        el["style"] = style
    if url:
        el["url"] = url
    return el


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)[:25]}
    if block_id:
        block["block_id"] = block_id
    return block


def message(text: str, blocks: list[Block] | None = None) -> dict[str, Any]:
    """A message: fallback `text` (notifications, screen readers) plus its blocks."""
    return {"text": clip(text, 3000), "blocks": blocks or [section(text)]}
