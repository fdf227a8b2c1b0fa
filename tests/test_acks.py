"""Nothing slow before the ack. Slack gives a request three seconds: every listener answers
the HTTP request first, and only then calls the Web API or draws a chart."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from matplotlib.figure import Figure
from slack_bolt.context.ack import Ack

from bot.app import AfterAck, create_app
from bot.blocks import handoff as cards
from bot.blocks import sla as nudge_views
from bot.platform.command_table import Reply
from bot.platform.config import parse_config
from tests.conftest import TEST_CONFIG
from tests.metric_fixture import add_metric_fixture
from tests.slack import request, send_event, slash
from tests.test_handoff import card, new_lead
from tests.test_nudges import run_until

ACK = "ack"
# one case per command of the table: `test_every_command_is_covered` keeps it so
COMMANDS = {
    "help": "help", "lead": "lead L-1", "leads": "leads overdue", "away": "away",
    "back": "back", "metric": "metric win rate Q3 2026 by source chart",
    "scorecard": "scorecard Q3 2026 chart", "export": "export win rate Q3 2026 share",
    "config check": "config check", "survey start": "survey start pulse",
    "survey close": "survey close pulse", "survey status": "survey status",
    "survey results": "survey results pulse", "gap": "gap last quarter", "index": "index",
    "digest preview": "digest preview weekly", "digest send": "digest send weekly",
}
ADMIN = ("config check", "digest send", "survey start", "survey close")


@pytest.fixture
def timeline(fake_slack, monkeypatch) -> list[str]:
    """What happened, in order: each Slack call, each chart drawn, and the ack."""
    seen: list[str] = []
    check = fake_slack.check

    def called(method, args):
        seen.append(method)
        check(method, args)
    fake_slack.check = called
    init = Figure.__init__

    def drawing(self, *args, **kwargs):
        seen.append("draw")
        init(self, *args, **kwargs)
    monkeypatch.setattr(Figure, "__init__", drawing)
    return seen


@pytest.fixture
def later(services, fake_slack) -> tuple:
    """An app whose after-ack work waits until `run()`, as Slack's HTTP response would not."""
    with services.transaction() as session:
        add_metric_fixture(session)
    after = AfterAck()
    return create_app(services, after_ack=after), after


def acked(timeline: list[str], after: AfterAck, send: Callable[[], object]) -> list[str]:
    """Send one request; what happened before its ack (must be nothing), and after it."""
    timeline.clear()
    response = send()
    assert response.status == 200, response.body
    timeline.append(ACK)
    after.run()
    return timeline


def payload(body: dict) -> str:
    return urlencode({"payload": json.dumps(body)})


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_is_acked_before_slack_hears_or_a_chart_is_drawn(
        name, later, services, fake_slack, clock, timeline):
    app, after = later
    new_lead(services)
    services.config = parse_config({**TEST_CONFIG, "digests": [
        {"name": "weekly", "schedule": "0 9 * * mon", "period": "Q3 2026"}]}, "<tests>")
    user = "U0ADMIN01" if name in ADMIN else "U0SALES01"
    seen = acked(timeline, after, lambda: slash(app, COMMANDS[name], clock.now(), user=user))
    assert seen[0] == ACK, seen
    if "chart" in COMMANDS[name] or name == "export":
        assert "draw" in seen or name == "export"
        assert "files.completeUploadExternal" in seen  # the file did follow
    if name == "digest send":  # posted, and its chart drawn, by the outbox after the ack
        services.sender.flush()
        assert seen.index("chat.postMessage") < seen.index("draw") < seen.index(
            "files.completeUploadExternal"), seen


def bolts_ack(reply: Reply) -> str:
    """What Bolt's own `ack()` answers with the reply."""
    return Ack()(response_type=reply.response_type, **reply.message()).body


@pytest.mark.parametrize("reply", [Reply("hi"), Reply("hi all", public=True), Reply(""),
                                   Reply("x", [{"type": "divider"}]), Reply("é ✓ \n <&>")])
def test_a_replys_answer_is_the_json_bolts_ack_writes(reply):
    """The same JSON, written compactly (no spaces, UTF-8 as it is)."""
    assert json.loads(reply.answer_json) == json.loads(bolts_ack(reply))
    assert len(reply.answer_json) <= len(bolts_ack(reply))


@pytest.mark.parametrize("admin", [True, False])
def test_the_help_built_once_is_answered_as_bolts_ack_would(admin, app, services, clock):
    user = "U0ADMIN01" if admin else "U0SALES01"
    first, again = (slash(app, "help", clock.now(), user=user) for _ in range(2))
    assert first.body == again.body
    assert json.loads(first.body) == json.loads(bolts_ack(services.commands.overview(admin)))
    assert first.headers["content-type"] == ["application/json;charset=utf-8"]


def test_every_command_is_covered(services):
    assert {c.name for c in services.commands.commands} == set(COMMANDS)


@pytest.mark.parametrize("text", ["scorecard Q3 2026 chart", "win rate Q3 2026 chart", "help"])
def test_a_mention_is_acked_before_it_is_answered(text, later, clock, timeline):
    app, after = later
    event = {"type": "app_mention", "user": "U0SALES01", "text": f"<@U0ALIGNBOT> {text}",
             "channel": "C0HANDOFF1", "ts": "1764000000.000100", "event_ts": "1764000000.000100"}
    seen = acked(timeline, after, lambda: send_event(app, event, "Ev1", clock.now()))
    assert seen[0] == ACK and "chat.postMessage" in seen, seen


def test_a_direct_message_is_acked_before_it_is_answered(later, clock, timeline):
    app, after = later
    event = {"type": "message", "channel_type": "im", "channel": "D0SALES01", "user": "U0SALES01",
             "text": "win rate Q3 2026 chart", "ts": "1764000000.000200",
             "event_ts": "1764000000.000200"}
    seen = acked(timeline, after, lambda: send_event(app, event, "Ev2", clock.now()))
    assert seen[0] == ACK and "draw" in seen and "chat.postMessage" in seen, seen


def test_the_home_tab_is_published_after_the_ack(later, clock, timeline):
    app, after = later
    event = {"type": "app_home_opened", "user": "U0SALES01", "channel": "D0SALES01",
             "tab": "home", "event_ts": "1764000000.000300"}
    seen = acked(timeline, after, lambda: send_event(app, event, "Ev3", clock.now()))
    assert seen == [ACK, "views.publish"]


@pytest.mark.parametrize("action", [cards.ACCEPT, cards.REJECT, cards.REASSIGN])
def test_a_card_click_is_acked_before_slack_is_called(action, later, services, fake_slack, clock,
                                                      timeline):
    app, after = later
    new_lead(services)
    body = fake_slack.block_action(card(fake_slack), action, "U0SALES01",
                                   trigger_id="111.222.trigger", selected_user="U0SALES02")
    seen = acked(timeline, after, lambda: app.dispatch(request(
        payload(body), "application/x-www-form-urlencoded", clock.now())))
    assert seen[0] == ACK and len(seen) > 1, seen  # the modal, or the clicker's answer


def test_the_reject_modal_is_acked_before_the_clicker_is_answered(later, services, fake_slack,
                                                                  clock, timeline):
    app, after = later
    new_lead(services)
    reject = fake_slack.block_action(card(fake_slack), cards.REJECT, "U0SALES01",
                                     trigger_id="111.222.trigger")
    acked(timeline, after, lambda: app.dispatch(request(
        payload(reject), "application/x-www-form-urlencoded", clock.now())))
    submission = fake_slack.view_submission(fake_slack.views[-1], "U0SALES01",
                                            {cards.REASON_BLOCK: "not_icp"})
    seen = acked(timeline, after, lambda: app.dispatch(request(
        payload(submission), "application/x-www-form-urlencoded", clock.now())))
    assert seen[0] == ACK and "chat.postEphemeral" in seen, seen


def test_a_nudge_click_is_acked_before_slack_is_called(later, services, fake_slack, clock,
                                                       timeline):
    app, after = later
    new_lead(services)
    run_until(services, clock, datetime(2026, 11, 24, 16, 0, tzinfo=UTC))  # the reminder
    reminder = fake_slack.in_channel("U0SALES01")[-1]
    body = fake_slack.block_action(reminder, nudge_views.SNOOZE, "U0SALES01",
                                   trigger_id="111.222.trigger")
    seen = acked(timeline, after, lambda: app.dispatch(request(
        payload(body), "application/x-www-form-urlencoded", clock.now())))
    assert seen[0] == ACK and "chat.postEphemeral" in seen, seen
