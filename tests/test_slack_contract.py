"""The Slack contract oracle itself: it must accept what Slack accepts and catch what it rejects."""

from __future__ import annotations

import json

import pytest

from tests import slack_contract
from tests.slack_contract import check_call, check_message, check_view

BLOCKS = "[]"


@pytest.mark.parametrize(("method", "args"), [
    ("chat.postMessage", {"channel": "C1", "text": "hi", "blocks": BLOCKS, "thread_ts": "1.2"}),
    ("chat.update", {"channel": "C1", "ts": "1.2", "text": "hi", "blocks": BLOCKS}),
    ("views.publish", {"user_id": "U1", "view": "{}"}),
    ("users.lookupByEmail", {"email": "a@example.com"}),
    ("files.getUploadURLExternal", {"filename": "leads.csv", "length": 120}),
    ("files.completeUploadExternal", {"files": '[{"id": "F1"}]', "channel_id": "C1"}),
    ("chat.postMessage", {"channel": "C1", "text": "hi", "token": "xoxb", "team_id": "T1"}),
    ("auth.test", {}),
])
def test_accepts_calls_the_bot_makes(method, args):
    check_call(method, args)


def test_rejects_a_misspelled_method():
    with pytest.raises(AssertionError, match=r"chat\.postMesage: no such .*did you mean chat\.postMessage"):
        check_call("chat.postMesage", {"channel": "C1", "text": "hi"})


def test_rejects_an_invented_argument():
    with pytest.raises(AssertionError, match=r"chat\.postMessage: unknown argument\(s\) \['chanel'\]"):
        check_call("chat.postMessage", {"chanel": "C1", "text": "hi"})


def test_methods_known_only_from_the_bare_list_take_any_arguments():
    assert slack_contract.known_methods()["apps.datastore.get"] is None
    check_call("apps.datastore.get", {"datastore": "x", "id": "1"})


def test_method_sources_are_merged():
    known = slack_contract.known_methods()
    assert "metadata" in known["chat.postMessage"]  # slack_sdk only
    assert "filename" in known["files.getUploadURLExternal"]  # not in the 2020 OpenAPI spec


def test_events_catalog_uses_manifest_names():
    catalog = slack_contract.events_catalog()
    assert {"app_mention", "reaction_added", "message.im", "app_home_opened"} <= catalog
    assert "app.mention" not in catalog
    assert slack_contract.scopes_for_events()["message.im"] == {"im:history"}


# -- Block Kit limits


def section(text: str, **kw) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **kw}


def button(action_id: str, text: str = "Accept", **kw) -> dict:
    return {"type": "button", "action_id": action_id,
            "text": {"type": "plain_text", "text": text}, **kw}


def normal_message() -> dict:
    return {"text": "New lead: Ada Lovelace", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "New lead"}},
        section("*Ada Lovelace*, Analytical Engines", fields=[
            {"type": "mrkdwn", "text": "*Score*\n92"}, {"type": "mrkdwn", "text": "*Source*\nwebinar"}]),
        {"type": "actions", "elements": [button("handoff.accept", value="L1"),
                                         button("handoff.reject", "Reject", value="L1")]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "SLA due 10:15"}]},
    ]}


def broken(message: dict, match: str) -> None:
    with pytest.raises(AssertionError, match=match):
        check_message(message)


def test_accepts_a_normal_message():
    check_message(normal_message())


def test_accepts_blocks_sent_form_encoded():
    message = normal_message()
    check_message({**message, "blocks": json.dumps(message["blocks"])})


def test_rejects_51_blocks():
    broken({"text": "t", "blocks": [section("x")] * 51}, "51 blocks, max 50")


def test_rejects_a_3001_char_section():
    broken({"text": "t", "blocks": [section("ok"), section("x" * 3001)]},
           r"block 1 \(section\): text is 3001 chars, max 3000")


def test_rejects_missing_or_empty_text():
    message = normal_message()
    del message["text"]
    broken(message, "fallback `text` is missing")
    broken({**message, "text": "  "}, "fallback `text` is missing")


def test_rejects_duplicate_action_ids():
    message = normal_message()
    message["blocks"].append({"type": "actions", "elements": [button("handoff.accept")]})
    broken(message, r"block 4 \(actions\): action_id 'handoff.accept' already used in block 2")


@pytest.mark.parametrize(("block", "match"), [
    (section("x", fields=[{"type": "mrkdwn", "text": "f"}] * 11), r"block 0 \(section\): fields: 11, max 10"),
    (section("x", fields=[{"type": "mrkdwn", "text": "f" * 2001}]), r"block 0 \(section\): field 0 is 2001"),
    ({"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}, r"block 0 \(header\): text is 151"),
    ({"type": "actions", "elements": [button(f"a{i}") for i in range(26)]}, r"block 0 \(actions\): elements: 26"),
    ({"type": "actions", "elements": [button("a", "b" * 76)]}, r"block 0 \(actions\): button 'a' text is 76"),
    ({"type": "actions", "elements": [button("a", value="v" * 2001)]}, "button 'a' value is 2001"),
    (section("x", accessory=button("a" * 256)), r"block 0 \(section\): button '.*' action_id is 256"),
    ({"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}, r"block 0 \(context\): elements: 11"),
])
def test_rejects_each_block_limit(block, match):
    broken({"text": "t", "blocks": [block]}, match)


def test_rejects_more_than_13000_chars_of_blocks():
    broken({"text": "t", "blocks": [section("x" * 2900) for _ in range(5)]}, "max 13000")


def test_views_allow_100_blocks_and_no_more():
    home = {"type": "home", "blocks": [section("x")] * 100}
    check_view(home)
    with pytest.raises(AssertionError, match="101 blocks, max 100"):
        check_view({**home, "blocks": home["blocks"] + [section("x")]})


def test_rejects_a_view_of_unknown_type_or_long_modal_title():
    with pytest.raises(AssertionError, match="type is 'page'"):
        check_view({"type": "page", "blocks": []})
    with pytest.raises(AssertionError, match="view: title is 25 chars, max 24"):
        check_view({"type": "modal", "title": {"type": "plain_text", "text": "t" * 25}, "blocks": []})
