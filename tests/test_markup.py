"""Slack markup in data never reaches Slack as markup: every builder in bot/blocks is fed
hostile strings (a lead named `<!channel>`, a company that is a disguised link, a note
that pings everyone), and what it builds must show them literally and ping nobody.

The builders are found, not listed: a new one is fed the same way, and a new kind of
argument fails here until it has hostile examples too."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import bot.blocks
from bot.alignment.definitions import Definitions
from bot.alignment.perception import Perception
from bot.alignment.report import Report, build
from bot.blocks import handoff as cards
from bot.blocks.admin import ConfigVerdict
from bot.blocks.handoff import CardView, SummaryLine, SummaryPage
from bot.blocks.kit import json_clip, section, unescape
from bot.blocks.leads import LeadLine
from bot.blocks.surveys import PendingSurvey, PromptView, RunStatus
from bot.digests.content import KPIS, DigestView
from bot.features import FEATURES
from bot.intake.batches import store
from bot.metrics.answers import TREND, Answer, Comparison
from bot.metrics.grammar import Period, Query, QueryError, parse_period
from bot.metrics.registry import METRICS
from bot.platform.command_table import Command
from bot.platform.config import DIGEST_SECTIONS
from bot.surveys.results import Group, QuestionResult, Results
from bot.surveys.templates import CHOICE, SCALE5, SCALE10, TEXT, Question
from tests.slack import all_text, click, reply, slash, submit

HOSTILE = "<!channel> <@U0EVIL> <https://evil.example|Acme login> <!everyone> R&D"
# what would ping, mention or link if Slack read it as markup
MARKUP = re.compile(r"(?<!&lt;)(!channel|!everyone|@U0EVIL|https://evil)")
BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")
NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
NY = ZoneInfo("America/New_York")


def _card(status: str, **changes: Any) -> CardView:
    fields = dict(lead_id=7, external_id=HOSTILE, name=HOSTILE, company=HOSTILE, title=HOSTILE,
                  score=91, hot=True, source=HOSTILE, segment=HOSTILE, region=HOSTILE, why=HOSTILE,
                  crm_url="https://crm.example/lead/7", owner=HOSTILE, status=status,
                  sla_policy=HOSTILE, sla_due_at=NOW, sla_state="due_soon", acted_by=HOSTILE,
                  acted_at=NOW, rejection_reason=HOSTILE, rejection_note=HOSTILE,
                  unassigned_reason=HOSTILE, retry_at=NOW)
    return CardView(**{**fields, **changes})


CARDS = [_card("new", owner=None), _card("routed"), _card("accepted"), _card("rejected"),
         _card("contacted"), _card(HOSTILE)]


def _line() -> SummaryLine:
    return SummaryLine(7, HOSTILE, HOSTILE, HOSTILE, 55, False, HOSTILE, HOSTILE, "accepted")


def _answer(key: str, *, by: str | None = HOSTILE) -> Answer:
    asked = parse_period("Q3 2026", NOW, NY)
    period = Period(asked.start, asked.end, HOSTILE, asked.kind)
    comparison = Comparison("previous", asked.previous(), 0.2, 0.1)
    return Answer(Query(key, period, by, "previous"), METRICS[key], 0.3, {HOSTILE: 0.3, "x": 0.1},
                  comparison, (0.1,) * TREND, 0.25, NOW)


def _report(surveyed: bool, values: dict[str, float] | None = None) -> Report:
    asked = parse_period("Q3 2026", NOW, NY)
    period = Period(asked.start, asked.end, HOSTILE, asked.kind)
    means = {d: {"exec": 4.5, "sales": 1.5, "marketing": None} for d in Definitions().dimensions}
    perception = Perception(HOSTILE, 2, NOW, means, 6.0, 0.5, 0.8, 8, 10) if surveyed else None
    values = {"response_time": 40, "sla_compliance": 0.5, "acceptance_rate": 0.8,
              "not_icp_share": 0.4, "conversion_rate": 0.1, "churn_rate": 0.0} \
        if values is None else values
    return build(period, values, {"churn_rate": 0.02, "response_time": 30, "sla_compliance": 0.9,
                                  "acceptance_rate": 0.7, "not_icp_share": 0.2},
                 perception, Definitions())


def _digest(surveyed: bool, late: bool, empty: bool = False) -> DigestView:
    report = _report(surveyed)
    kpis = {key: _answer(key, by=None) for key in KPIS}
    if empty:
        kpis = {key: Answer(a.query, a.metric, None, None, None, a.trend, None, NOW)
                for key, a in kpis.items()}
    overdue = tuple(LeadLine(HOSTILE * 3, HOSTILE * 3, HOSTILE * 3, HOSTILE, HOSTILE, NOW,
                             "breached") for _ in range(10))
    return DigestView(HOSTILE, report.period, DIGEST_SECTIONS, kpis, 0 if empty else 4,
                      0 if empty else 3, {f"{HOSTILE}{n}": 9 - n for n in range(8)}, overdue,
                      12_345, report, NY, HOSTILE, NOW if late else None)


def _command(admin: bool = False) -> Command:
    def run(inv):
        pass
    run.__doc__ = f"{HOSTILE}\n    {HOSTILE}"
    return Command(HOSTILE, run, usage=HOSTILE, admin=admin)


def _prompts() -> list[PromptView]:
    questions = [Question(HOSTILE, HOSTILE, SCALE5, (HOSTILE,) * 5),
                 Question(HOSTILE, HOSTILE, SCALE10, (HOSTILE,) + ("",) * 10),
                 Question(HOSTILE, HOSTILE, CHOICE, (HOSTILE, "x")),
                 Question(HOSTILE, HOSTILE, TEXT)]
    return [PromptView(HOSTILE, 1, 0, 7, q, NOW, 5, answer) for q in questions
            for answer in (None, HOSTILE)]


def _results(state: str) -> Results:
    group = Group(6, 3.5, {HOSTILE: 6}, 0.5)
    question = QuestionResult(HOSTILE, HOSTILE, SCALE5, group, {HOSTILE: group, "x": None})
    return Results(HOSTILE, 2, state, NOW, NOW, NOW, 5, {HOSTILE: (9, 6)}, (question,),
                   (HOSTILE,))


# Hostile examples of each kind of argument a builder takes (by its annotation); a builder
# runs once per example of its most varied argument, the others taking theirs in turn.
EXAMPLES: dict[str, list[Any]] = {
    "str": [HOSTILE],
    "str | None": [HOSTILE],
    "bool": [True, False],
    "int": [2],
    "int | None": [None, 60],
    "datetime": [NOW],
    "datetime | None": [NOW, None],
    "tzinfo": [NY],
    "list[str]": [[HOSTILE, HOSTILE]],
    "CardView": CARDS,
    "list[CardView]": [CARDS[:1], CARDS * 3],  # one lead, and more than a message lists
    "SummaryLine": [_line()],
    "SummaryPage": [SummaryPage(3, 60, 2, [cards.summary_line(_line())], for_owner=True)],
    "Sequence[LeadLine]": [[LeadLine(HOSTILE, HOSTILE, HOSTILE, HOSTILE, HOSTILE, NOW, HOSTILE)]],
    "Sequence[Any]": [[SimpleNamespace(at=NOW, kind=HOSTILE, actor=HOSTILE),
                       SimpleNamespace(at=NOW, kind=HOSTILE, actor="U" + HOSTILE)]],
    "Answer": [_answer("win_rate"), _answer("cac", by=None)],
    "Sequence[Answer]": [[_answer("win_rate"), _answer("cac", by=None)]],
    "Mapping[str, str] | None": [{HOSTILE: HOSTILE, "x": HOSTILE}, None],
    "QueryError": [QueryError(f"I don't know the metric “{HOSTILE}”.")],
    "ConfigVerdict": [ConfigVerdict(HOSTILE, (f"{HOSTILE}: {HOSTILE}", HOSTILE),
                                    {HOSTILE: True}, {}),
                      ConfigVerdict(HOSTILE, (), {"SLACK_BOT_TOKEN": True}, {HOSTILE: 1})],
    "HelpEntry": [_command(), _command(admin=True)],
    "Report": [_report(True), _report(False), _report(False, {})],
    "DigestView": [_digest(True, True), _digest(False, False), _digest(False, True, empty=True)],
    "Sequence[HelpEntry]": [[_command(), _command(admin=True)]],
    "PromptView": _prompts(),
    "PendingSurvey": [PendingSurvey(HOSTILE, NOW, (HOSTILE, HOSTILE), 5)],
    "Sequence[PendingSurvey]": [[PendingSurvey(HOSTILE, NOW, (HOSTILE,), 5)]],
    "RunStatus": [RunStatus(HOSTILE, 2, NOW, NOW, 9, 8, 6, 5)],
    "Sequence[RunStatus]": [[RunStatus(HOSTILE, 2, NOW, NOW, 9, 8, 6, 5)]],
    "Results": [_results("closed"), _results("open")],
}
# Arguments that are alignbot's own (mrkdwn it wrote, blocks already built) or that the
# builder's caller has already checked: the builder takes them as they are.
OWN = {
    ("text_blocks", "text"): "alignbot's own text",
    ("click_answer", "text"): "alignbot's own text",
    ("answered_card", "said"): "alignbot's own text",  # a click's answer, as click_answer's
    ("with_file_note", "message"): {"text": "alignbot's own text", "blocks": []},
    ("metric_error", "example"): "alignbot's own example",
    ("home_view", "sections"): [[section("alignbot's own text")]],
    ("lead_list", "which"): "open",  # one of mine|open|overdue: unknown_list answers others
    ("lead_list", "page"): 1, ("lead_list", "per_page"): 15, ("lead_list", "total"): 30,
    ("open_leads", "total"): 30,
    ("note", "text"): "alignbot's own text",
}
SHOWS_NO_DATA = {"footer", "away_set", "home_view", "text_blocks", "click_answer", "note"}


def builders() -> Iterator[tuple[str, Callable[..., Any]]]:
    """Every public function of bot/blocks that builds a message, view or blocks."""
    for info in pkgutil.iter_modules(bot.blocks.__path__):
        if info.name == "kit":  # the pieces builders are made of, not builders
            continue
        module = importlib.import_module(f"bot.blocks.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            returns = str(inspect.signature(fn).return_annotation)
            if fn.__module__ == module.__name__ and not name.startswith("_") \
                    and returns.startswith(("dict", "list")):
                yield f"{info.name}.{name}", fn


def calls(name: str, fn: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    options: dict[str, list[Any]] = {}
    for param in inspect.signature(fn).parameters.values():
        own = OWN.get((fn.__name__, param.name), OWN)
        if own is not OWN:
            options[param.name] = [own]
        elif param.annotation in EXAMPLES:
            options[param.name] = EXAMPLES[param.annotation]
        else:
            pytest.fail(f"{name}({param.name}: {param.annotation}): add hostile examples of "
                        f"`{param.annotation}` to EXAMPLES (or the argument to OWN)")
    for i in range(max((len(o) for o in options.values()), default=1)):
        yield {param: examples[i % len(examples)] for param, examples in options.items()}


def texts(built: Any) -> Iterator[tuple[str, str]]:
    """("mrkdwn" | "plain_text", text) of everything Slack would show: a message's fallback
    `text` is read as mrkdwn, like its blocks' mrkdwn."""
    if isinstance(built, list):
        for item in built:
            yield from texts(item)
    elif isinstance(built, dict):
        kind = built.get("type")
        if kind in ("mrkdwn", "plain_text"):
            yield kind, built["text"]
            return
        if isinstance(built.get("text"), str):
            yield "mrkdwn", built["text"]
        for key, value in built.items():
            if key != "text" or not isinstance(value, str):
                yield from texts(value)


ALL = list(builders())


def test_the_builders_are_found():
    names = {name for name, _ in ALL}
    assert {"handoff.handoff_card", "sla.reminder", "handoff.rejection_notice",
            "metrics.metric_answer", "leads.lead_detail", "home.open_leads",
            "admin.config_verdict", "replies.unknown_command",
            "admin.dead_letters"} <= names  # the outbox's notice to admins, once built in place


@pytest.mark.parametrize(("name", "builder"), ALL, ids=[name for name, _ in ALL])
def test_a_builder_shows_hostile_data_literally_and_pings_nobody(name, builder):
    for kwargs in calls(name, builder):
        built = texts(builder(**kwargs))
        shown = []
        for kind, text in built:
            if kind == "mrkdwn":
                assert not MARKUP.search(text), (name, text)
                assert not BARE_AMPERSAND.search(text), (name, text)
                assert not re.search(r"&amp;(amp|lt|gt);", text), (name, text)  # escaped twice
                shown.append(unescape(text))
            else:  # Slack never reads plain_text as markup: it needs no escaping, and gets none
                assert not re.search(r"&(amp|lt|gt);", text), (name, text)
                shown.append(text)
        if builder.__name__ not in SHOWS_NO_DATA:
            assert "<!channel> <@U0EVIL>" in "\n".join(shown), (name, kwargs)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "slack://open?team=T0EVIL",
                                 "JavaScript:alert(1)"])
def test_the_crm_button_opens_web_pages_only(url):
    """A link stored before records were checked for one: the card shows no button for it."""
    for link, buttons in ((url, 0), ("https://crm.example/lead/7", 1)):
        card = cards.handoff_card(_card("routed", crm_url=link))
        assert [b["accessory"]["url"] for b in card["blocks"] if "accessory" in b] == \
            [link] * buttons


def test_escaping_keeps_alignbots_own_markup():
    """Mentions and dates alignbot writes stay markup: only the data around them is escaped."""
    card = cards.handoff_card(_card("routed", owner="U0SALES01", sla_due_at=NOW + timedelta(hours=1)))
    fields = "\n".join(f["text"] for f in card["blocks"][1]["fields"])
    assert "<@U0SALES01>" in fields and "<!date^" in fields
    assert "&lt;!channel&gt;" in fields


# ------------------------------------------------------------------ end to end


def test_hostile_crm_data_and_notes_reach_slack_literally(app, services, fake_slack, clock):
    """A CRM lead full of markup, an owner email nobody has, a reject note that pings the
    marketing channel, and commands echoing what was typed: everything Slack is sent (posts,
    updates, private answers, replies to commands) shows it as typed and pings nobody."""
    hostile = {"source": "webinar<!channel>", "name": HOSTILE, "company": HOSTILE,
               "title": HOSTILE, "why": HOSTILE, "score": 60}
    store(services, "leads", [{"external_id": "L-1", **hostile}, {"external_id": "L-2", **hostile},
                              {"external_id": "L-3", **hostile,
                               "owner_email": "r&d@evil.example"}], actor="webhook")
    services.sender.flush()
    manager = "U0SALESMG1"  # may act on any rep's lead
    first, second = (m for m in fake_slack.in_channel("C0HANDOFF1")
                     if {"Lead L-1", "Lead L-2"} & set(all_text({"blocks": m.blocks}).splitlines()))
    click(app, fake_slack, first, cards.REJECT, manager, clock.now())
    submit(app, fake_slack, fake_slack.views[-1], manager,
           {cards.REASON_BLOCK: "other", cards.NOTE_BLOCK: f"{HOSTILE} budget"}, clock.now())
    click(app, fake_slack, second, cards.ACCEPT, manager, clock.now())
    services.sender.flush()
    answers = [reply(slash(app, text, clock.now(), user="U0ADMIN01"))
               for text in ("lead L-1", "leads open", f"lead {HOSTILE}", "<!channel> hi")]

    sent = [args for method, args in fake_slack.calls if method != "auth.test"] + answers
    shown = []
    for kind, text in texts(sent):
        if kind == "mrkdwn":
            assert not MARKUP.search(text), text
            shown.append(unescape(text))
    shown = "\n".join(shown)
    assert "r&d@evil.example" in shown  # the admins' notice of an unknown owner
    assert f"{HOSTILE} budget" in shown  # the reject note, in the marketing channel
    assert f"You accepted *{HOSTILE}*" in shown  # the click's private answer
    assert "No lead `<!channel>`" in shown  # the first word of what was typed


HOSTILE_WORDS = ("<!channel>", "<@U0ADMIN01>", "<https://evil.example|x>")
# what would ping, mention or link if Slack read the words above as markup
TYPED_MARKUP = re.compile(r"<(!channel|@U0ADMIN01|https://evil)")


@pytest.mark.parametrize("name", [c.name for c in FEATURES.commands.commands])
def test_every_command_echoes_hostile_words_literally(name, app, fake_slack, clock):
    """`/align survey results <!channel>` once answered "There is no survey '<!channel>'",
    pinging the channel: every command, given hostile words where its arguments go, answers
    (now or later, through response_url) with them escaped."""
    answers = []
    for words in (*HOSTILE_WORDS, " ".join(HOSTILE_WORDS), f"until {HOSTILE_WORDS[0]}",
                  f"last {HOSTILE_WORDS[2]}", f"{HOSTILE_WORDS[1]} by {HOSTILE_WORDS[0]}"):
        answers.append(reply(slash(app, f"{name} {words}", clock.now(), user="U0ADMIN01")))
    sent = [args for method, args in fake_slack.calls if method != "auth.test"] + answers
    for kind, text in texts(sent):
        if kind == "mrkdwn":
            assert not TYPED_MARKUP.search(text), (name, text)


@pytest.mark.parametrize("limit", [1, 7, 8, 40])
def test_json_clip_fits_its_limit_or_stops_at_an_ellipsis(limit):
    """A limit under the 8 characters of "…" as JSON once looped forever."""
    clipped = json_clip("王" * 100, limit)
    assert len(json.dumps(clipped)) <= limit or clipped == "…"
    assert clipped.startswith("王") == (limit >= 14)  # '"\u738b\u2026"' is 14 long
