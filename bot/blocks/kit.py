"""Tiny Block Kit helpers the message builders are assembled from."""

from __future__ import annotations

from typing import Any

Block = dict[str, Any]
SECTION_LIMIT = 3000


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
