"""The rules of surveys without Slack: the k rule (property tests), the configuration,
the manifest's reaction events, and a whole survey in the shell."""

from __future__ import annotations

import itertools
import random
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.features import FEATURES
from bot.platform.config import ConfigError, load_config, parse_config
from bot.surveys.results import anonymised, comments_shown, shown_groups
from bot.surveys.templates import SCALE5, TEXT
from tests import slack_contract
from tests.conftest import TEST_CONFIG, check_slack_call
from tests.shelltools import make_shell, run
from tests.slack import send_event

ROLES = ("sales", "marketing", "exec", "other", "ops")
sizes_st = st.dictionaries(st.sampled_from(ROLES), st.integers(0, 40), min_size=1)
k_st = st.integers(3, 12)


def derivable(sizes, everyone, roles):
    """Every group size a reader can work out from what is shown: sums of shown roles, and
    everyone minus any of them."""
    total = sum(sizes.values())
    for n in range(len(roles) + 1):
        for subset in itertools.combinations(sorted(roles), n):
            part = sum(sizes[r] for r in subset)
            yield part
            if everyone:
                yield total - part


@settings(max_examples=500, deadline=None)
@given(sizes_st, k_st)
def test_no_shown_or_derivable_group_is_below_k(sizes, k):
    everyone, roles = shown_groups(sizes, k)
    assert everyone == (sum(sizes.values()) >= k)
    assert all(sizes[r] >= k for r in roles)
    assert all(n == 0 or n >= k for n in derivable(sizes, everyone, roles))


@settings(max_examples=300, deadline=None)
@given(sizes_st, k_st)
def test_a_role_is_hidden_only_when_showing_it_would_expose_a_smaller_group(sizes, k):
    everyone, roles = shown_groups(sizes, k)
    big = {r for r, n in sizes.items() if n >= k}
    hidden_big = big - roles
    assert len(hidden_big) <= 1  # one hidden role is always enough to cover the rest
    if hidden_big:
        rest = sum(n for r, n in sizes.items() if r not in big)
        assert 0 < rest < k


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ROLES), st.integers(1, 5)), max_size=60), k_st,
       st.integers(0, 30))
def test_what_a_close_stores_never_holds_a_group_below_k(answers, k, comments):
    """The rows the close writes are all results will ever read: whatever the role sizes,
    each question's rows, each role among them, and the rows without a role are none or
    at least k; comments are kept only when more than k."""
    scale = SimpleNamespace(id=1, type=SCALE5)
    note = SimpleNamespace(id=2, type=TEXT)
    rows, role_of = [], {}
    for i, (role, value) in enumerate(answers):
        role_of[f"key{i}"] = role
        rows.append(SimpleNamespace(question_id=1, respondent_key=f"key{i}", value=value,
                                    text=None))
    rows += [SimpleNamespace(question_id=2, respondent_key=f"key{i}", value=None, text="hi")
             for i in range(comments)]
    role_of.update({f"key{i}": "sales" for i in range(comments)})
    kept = anonymised([scale, note], rows, role_of, k, random.Random(0))
    scales = [r for r in kept if r["question_id"] == 1]
    groups = {}
    for r in scales:
        groups[r["role"]] = groups.get(r["role"], 0) + 1
    assert len(scales) in (0, len(answers)) and (not scales or len(scales) >= k)
    assert all(n >= k for n in groups.values())  # the roleless rest included
    texts = [r for r in kept if r["question_id"] == 2]
    assert len(texts) == (comments if comments_shown(comments, k) else 0)
    assert all(r["role"] is None for r in texts)


def test_comments_need_more_than_k():
    assert not comments_shown(5, 5) and comments_shown(6, 5)


# ------------------------------------------------------------------ configuration


def problems(surveys) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config({**TEST_CONFIG, "surveys": surveys})
    return err.value.problems


def test_config_check_names_every_bad_survey_key():
    found = problems([
        {"name": "Pulse!", "templat": "alignment", "audience": ["sale", "S0GROUP1"],
         "schedule": "0 10 * * 1", "every": "fortnight", "open_for": "0m",
         "reminders": -1, "remind_every": 3, "min_responses": 2, "channel": "#digest"},
        {"name": "custom", "audience": [], "questions": [
            {"key": "q", "text": "Pick", "type": "choice", "options": ["only"]},
            {"key": "q", "type": "stars"},
            {"key": "r", "text": "Rate", "type": "scale5", "options": ["a"], "extra": 1}]},
        {"name": "both", "template": "alignment", "audience": ["sales"],
         "questions": [{"key": "x", "text": "X", "type": "text"}]},
    ])
    for expected in ("surveys[0].templat: unknown key (did you mean 'template'?)",
                     "surveys[0].name:", "surveys[0].audience: 'sale'",
                     "surveys[0].schedule: '0 10 * * 1': name the days",
                     "surveys[0].every:", "surveys[0].open_for: '0m' must be longer",
                     "surveys[0].reminders:", "surveys[0].remind_every:",
                     "surveys[0].min_responses: 2 is below 3", "surveys[0].channel:",
                     "surveys[1].audience:", "surveys[1].questions[0].options: a choice needs",
                     "surveys[1].questions[1].key: 'q' is asked twice",
                     "surveys[1].questions[1].text: is required",
                     "surveys[1].questions[1].type:",
                     "surveys[1].questions[2].extra: unknown key",
                     "surveys[1].questions[2].options: only a choice has options",
                     "surveys[2].questions: give a template or questions"):
        assert any(p.startswith(expected) for p in found), (expected, found)


def test_a_survey_needs_questions_and_a_channel():
    found = problems([{"name": "bare", "audience": ["sales"], "every": "2w"}])
    assert any("needs template" in p for p in found)
    assert any(p.startswith("surveys[0].every: needs a schedule") for p in found)
    no_digest = {**TEST_CONFIG, "channels": {}, "surveys": [
        {"name": "p", "template": "alignment", "audience": ["sales"]}]}
    with pytest.raises(ConfigError) as err:
        parse_config(no_digest)
    assert any("results need a channel" in p for p in err.value.problems)


def test_the_example_config_documents_every_survey_key():
    from pathlib import Path

    from bot.platform.config import SURVEY_KEYS

    example = Path(__file__).resolve().parent.parent / "alignbot.example.toml"
    config = load_config(example)
    assert config.surveys and config.surveys[0].every
    text = example.read_text()
    for key in (*SURVEY_KEYS, "key", "text", "type", "options"):
        assert f"\n{key} = " in text or f"[[surveys.{key}]]" in text, key


# ------------------------------------------------------------------ manifest


def test_the_manifest_subscribes_to_reactions_with_their_scopes_and_listens(app, clock):
    assert {"reaction_added", "reaction_removed"} <= set(FEATURES.events)
    assert {"reactions:read", "usergroups:read"} <= set(FEATURES.scopes)
    for n, event in enumerate(("reaction_added", "reaction_removed")):
        assert slack_contract.scopes_for_events()[event] <= set(FEATURES.scopes)
        body = {"type": event, "user": "U0SALES01", "reaction": "one", "item_user": "U0ALIGNBOT",
                "item": {"type": "message", "channel": "D0SALES01", "ts": "1.2"},
                "event_ts": "1.3"}
        assert send_event(app, body, f"EvR{n}", clock.now()).status == 200  # Bolt: 404 unheard


# ------------------------------------------------------------------ the shell


SHELL_CONFIG = {**TEST_CONFIG, "surveys": [
    {"name": "pulse", "template": "alignment", "audience": ["sales", "marketing"],
     "reminders": 1, "remind_every": "1d", "min_responses": 3}]}


def test_a_whole_survey_runs_in_the_shell(tmp_path):
    """start → answer by click and by reaction (and change it) → remind → close → results."""
    shell = make_shell(tmp_path, SHELL_CONFIG, check_slack_call, user="U0ADMIN01")
    opened = run(shell, "/align survey start pulse", "tick 1m")
    assert "pulse* run 1 is open: 4 people invited" in opened.replace("*pulse", "pulse")
    first = next(m for m in shell.fake.in_channel("U0SALES01") if m.action_ids())
    answered = run(shell, "as Sam", f"click survey.answer.4 {first.number}",
                   f"react two {first.number + 1}", f"react three {first.number + 1}",
                   "tick 1m")
    assert "Your answer: *4 · Rather high*" in answered
    assert "Your answer: *3 · Medium*" in answered  # the latest reaction counts
    reminded = run(shell, "tick 1d")
    assert "4 questions are still waiting for you" in reminded  # Sam: 4 of 6 (the comment is optional)
    closed = run(shell, "as U0ADMIN01", "/align survey close pulse", "/align survey results")
    assert "run 1 is closed: 1 of 4 answered" in closed.replace("*", "")
    assert "pulse — run 1 results" in closed and "Everyone*: hidden" in closed
