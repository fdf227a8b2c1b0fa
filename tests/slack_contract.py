"""Slack's own contracts as test oracles, read from `tests/contracts/slack/` (public files
copied unchanged from Slack's repositories; where each came from is in its `SOURCES.json`).

- `manifest_validator()`: the app-manifest JSON schema, `$ref`s resolved to local files.
- `known_methods()` / `check_call()`: Web API methods and their argument names, merged
  from Slack's OpenAPI spec, slack_sdk's WebClient and Slack's Feb 2025 method list.
- `events_catalog()` / `scopes_for_events()`: the Events API topics.
- `check_message()` / `check_view()`: Block Kit limits Slack enforces on plain dicts.

Nothing here touches the network; every file is loaded once.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT7

CONTRACTS = Path(__file__).resolve().parent / "contracts" / "slack"
MANIFEST_SCHEMA = "manifest/manifest.schema.json"

# Arguments the client adds to any call: the token, and Bolt's team_id (WebClient(team_id=...)).
TRANSPORT_ARGS = frozenset({"token", "team_id"})

# Block Kit limits (https://docs.slack.dev/reference/block-kit/).
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_BLOCKS_JSON = 13_000  # reported rejections above ~13k characters of blocks
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_ID = 255  # action_id, block_id, callback_id
MAX_VIEW_TITLE = 24  # modal title, submit and close texts
MAX_PRIVATE_METADATA = 3000


# -- files


def contracts_dir() -> Path:
    """The folder of Slack's contract files the repository carries."""
    if not (CONTRACTS / "slack_web_openapi_v2.json").is_file():  # a missing oracle fails loudly
        raise FileNotFoundError(f"Slack's contract files are not at {CONTRACTS}")
    return CONTRACTS


@cache
def load(relative: str) -> Any:
    """One JSON file of the shared folder, parsed once."""
    return json.loads((contracts_dir() / relative).read_text(encoding="utf-8"))


# -- app manifest


def _retrieve_local(uri: str) -> Resource:
    """Resolve a remote schema `$ref` to the sibling file of the same name, never the network."""
    path = contracts_dir() / "manifest" / Path(urlsplit(uri).path).name
    if not path.is_file():
        raise NoSuchResource(ref=uri)
    return Resource.from_contents(load(f"manifest/{path.name}"), default_specification=DRAFT7)


@cache
def manifest_validator() -> Validator:
    """A validator for Slack's top-level manifest schema (picks v1/v2 by `_metadata`)."""
    schema = load(MANIFEST_SCHEMA)
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=Registry(retrieve=_retrieve_local))


def manifest_errors(manifest: dict[str, Any]) -> list[str]:
    """Every schema violation, as `path: message` lines (empty when valid)."""
    errors = manifest_validator().iter_errors(manifest)
    return [f"{leaf.json_path}: {leaf.message}" for error in errors for leaf in _leaves(error)]


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The real causes under a `oneOf` failure: the errors of the version branch whose
    selector (`allOf[0]`, e.g. `major_version == 1`) matched, not the other versions'."""
    if not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    chosen = [errs for errs in branches.values() if not any(_in_selector(e) for e in errs)]
    return [leaf for errs in chosen or branches.values() for e in errs for leaf in _leaves(e)]


def _in_selector(error: ValidationError) -> bool:
    return list(error.relative_schema_path)[1:3] == ["allOf", 0]


# -- Web API methods


def _openapi_methods() -> dict[str, set[str]]:
    spec = load("slack_web_openapi_v2.json")
    methods: dict[str, set[str]] = {}
    for path, operations in spec["paths"].items():
        names = methods.setdefault(path.lstrip("/"), set())
        for operation in operations.values():
            for param in operation.get("parameters", []):
                names.update(_param_names(spec, param))
    return methods


def _param_names(spec: dict[str, Any], param: dict[str, Any]) -> set[str]:
    """A formData/query/header parameter's name, or a body schema's property names."""
    if param.get("in") != "body":
        return {param["name"]}
    schema = param.get("schema", {})
    ref = schema.get("$ref", "")
    if ref.startswith("#/definitions/"):
        schema = spec["definitions"][ref.removeprefix("#/definitions/")]
    return set(schema.get("properties", {}))


def _sdk_methods() -> dict[str, set[str]]:
    methods = load("slack_sdk_web_methods.json")["methods"]
    return {name: set(info["args"]) for name, info in methods.items()}


def _listed_methods() -> set[str]:
    return set(load("slack_api_methods_list_2025-02-19.json")["methods"])


@cache
def known_methods() -> dict[str, frozenset[str] | None]:
    """Method → allowed argument names; None when only the bare method list knows it."""
    merged: dict[str, set[str]] = {}
    for source in (_openapi_methods(), _sdk_methods()):
        for name, args in source.items():
            merged.setdefault(name, set()).update(args)
    known: dict[str, frozenset[str] | None] = {n: frozenset(a) for n, a in merged.items()}
    for name in _listed_methods() - known.keys():
        known[name] = None
    return known


def check_call(method: str, args: dict[str, Any]) -> None:
    """Fail unless `method` exists and every argument name is one Slack documents for it."""
    known = known_methods()
    if method not in known:
        raise AssertionError(f"{method}: no such Slack Web API method{_did_you_mean(method)}")
    allowed = known[method]
    if allowed is None:
        return
    unknown = sorted(set(args) - allowed - TRANSPORT_ARGS)
    if unknown:
        raise AssertionError(
            f"{method}: unknown argument(s) {unknown}; allowed: {sorted(allowed | TRANSPORT_ARGS)}"
        )


def _did_you_mean(method: str) -> str:
    from difflib import get_close_matches

    close = get_close_matches(method, known_methods(), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


# -- Events API


def _topics() -> dict[str, list[str]]:
    """Event name (as written in a manifest) → scopes the catalog says it requires."""
    topics = load("slack_events_api_async_v1.json")["topics"]
    return {
        _event_name(topic, spec["subscribe"]): spec["subscribe"].get("x-scopes-required", [])
        for topic, spec in topics.items()
    }


def _event_name(topic: str, subscribe: dict[str, Any]) -> str:
    """Topics are dotted (`app.mention`); the doc URL carries the real name (`app_mention`)."""
    url = subscribe.get("externalDocs", {}).get("url", "")
    return url.rsplit("/", 1)[-1] if "/events/" in url else topic.replace(".", "_")


def _payload_events() -> set[str]:
    """Event types seen in the real payloads of `payloads/` (e.g. app_home_opened,
    which the 2018-era catalog predates)."""
    events = set()
    for path in sorted((contracts_dir() / "payloads").glob("*.json")):
        body = load(f"payloads/{path.name}")
        if isinstance(body, dict) and body.get("type") == "event_callback":
            events.add(body["event"]["type"])
    return events


@cache
def events_catalog() -> frozenset[str]:
    """Every event name Slack's catalog lists, plus those seen in real payloads."""
    return frozenset(_topics()) | _payload_events()


@cache
def scopes_for_events() -> dict[str, frozenset[str]]:
    """Event → scopes the catalog says a subscription needs (empty when none or unknown)."""
    scopes = {name: frozenset(needed) for name, needed in _topics().items()}
    return {name: scopes.get(name, frozenset()) for name in events_catalog()}


# -- Block Kit limits


def check_message(message: dict[str, Any]) -> None:
    """Fail with every Block Kit limit a message ({"text", "blocks"}) breaks."""
    blocks = _decoded(message.get("blocks")) or []
    problems = []
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("message: fallback `text` is missing or empty")
    problems += _check_blocks(blocks, MAX_MESSAGE_BLOCKS)
    size = len(json.dumps(blocks))
    if size > MAX_BLOCKS_JSON:
        problems.append(f"message: blocks serialize to {size} chars, max {MAX_BLOCKS_JSON}")
    _raise(problems)


def check_view(view: dict[str, Any] | str) -> None:
    """Fail with every limit a modal or Home tab view breaks."""
    view = _decoded(view)
    problems = []
    if view.get("type") not in ("modal", "home"):
        problems.append(f"view: type is {view.get('type')!r}, expected 'modal' or 'home'")
    if view.get("type") == "modal":
        problems += _check_modal_texts(view)
    problems += _too_long("view: callback_id", view.get("callback_id"), MAX_ID)
    problems += _too_long("view: private_metadata", view.get("private_metadata"), MAX_PRIVATE_METADATA)
    problems += _check_blocks(view.get("blocks") or [], MAX_VIEW_BLOCKS)
    _raise(problems)


def _check_modal_texts(view: dict[str, Any]) -> list[str]:
    problems = [] if view.get("title") else ["view: a modal needs a title"]
    for key in ("title", "submit", "close"):
        problems += _too_long(f"view: {key}", _text(view.get(key)), MAX_VIEW_TITLE)
    return problems


def _check_blocks(blocks: list[dict[str, Any]], max_blocks: int) -> list[str]:
    problems = []
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks, max {max_blocks}")
    action_ids: dict[str, int] = {}
    block_ids: dict[str, int] = {}
    for index, block in enumerate(blocks):
        where = f"block {index} ({block.get('type')})"
        problems += _check_block(where, block)
        problems += _unique(where, "block_id", block.get("block_id"), index, block_ids)
        for element in _interactive_elements(block):
            problems += _unique(where, "action_id", element.get("action_id"), index, action_ids)
    return problems


def _check_block(where: str, block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    problems = _too_long(f"{where}: block_id", block.get("block_id"), MAX_ID)
    if kind == "section":
        problems += _check_section(where, block)
    elif kind == "header":
        problems += _too_long(f"{where}: text", _text(block.get("text")), MAX_HEADER_TEXT)
    elif kind == "actions":
        problems += _too_many(f"{where}: elements", block.get("elements"), MAX_ACTIONS_ELEMENTS)
    elif kind == "context":
        problems += _too_many(f"{where}: elements", block.get("elements"), MAX_CONTEXT_ELEMENTS)
    for element in _interactive_elements(block):
        problems += _check_element(where, element)
    return problems


def _check_section(where: str, block: dict[str, Any]) -> list[str]:
    problems = _too_long(f"{where}: text", _text(block.get("text")), MAX_SECTION_TEXT)
    fields = block.get("fields") or []
    problems += _too_many(f"{where}: fields", fields, MAX_FIELDS)
    for number, field in enumerate(fields):
        problems += _too_long(f"{where}: field {number}", _text(field), MAX_FIELD_TEXT)
    if not block.get("text") and not fields:
        problems.append(f"{where}: a section needs `text` or `fields`")
    return problems


def _check_element(where: str, element: dict[str, Any]) -> list[str]:
    label = f"{where}: {element.get('type')} {element.get('action_id')!r}"
    problems = _too_long(f"{label} action_id", element.get("action_id"), MAX_ID)
    if element.get("type") == "button":
        problems += _too_long(f"{label} text", _text(element.get("text")), MAX_BUTTON_TEXT)
        problems += _too_long(f"{label} value", element.get("value"), MAX_BUTTON_VALUE)
        problems += _too_long(f"{label} url", element.get("url"), MAX_URL)
    return problems


def _interactive_elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    """Elements that carry an action_id: actions elements, a section accessory, an input element."""
    if block.get("type") == "actions":
        return list(block.get("elements") or [])
    element = block.get("accessory") or block.get("element")
    return [element] if isinstance(element, dict) and "action_id" in element else []


def _unique(where: str, key: str, value: Any, index: int, seen: dict[str, int]) -> list[str]:
    if value is None:
        return []
    if value in seen:
        return [f"{where}: {key} {value!r} already used in block {seen[value]}"]
    seen[value] = index
    return []


def _too_long(label: str, value: Any, limit: int) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [f"{label} is {len(value)} chars, max {limit}"]
    return []


def _too_many(label: str, items: Any, limit: int) -> list[str]:
    count = len(items or [])
    return [f"{label}: {count}, max {limit}"] if count > limit else []


def _text(obj: Any) -> str | None:
    """The string of a text object ({"type": ..., "text": ...})."""
    return obj.get("text") if isinstance(obj, dict) else obj


def _decoded(value: Any) -> Any:
    """Blocks and views arrive as JSON strings when form-encoded."""
    return json.loads(value) if isinstance(value, str) else value


def _raise(problems: list[str]) -> None:
    if problems:
        raise AssertionError("Block Kit limits broken:\n  " + "\n  ".join(problems))
