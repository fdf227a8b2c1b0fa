"""Routing: the fairness of the round-robin, and who is skipped."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.routing import pick

PEOPLE = ["A", "B", "C", "D"]
steps = st.lists(st.one_of(st.just(("lead", None)),
                           st.tuples(st.just("toggle"), st.sampled_from(PEOPLE))),
                 max_size=120)


@settings(max_examples=300, deadline=None)
@given(weights=st.lists(st.integers(1, 5), min_size=4, max_size=4), steps=steps)
def test_round_robin_stays_within_one_lead_of_the_fair_share(weights, steps):
    weight = dict(zip(PEOPLE, weights, strict=True))
    available = set(PEOPLE)
    deficits: dict[str, float] = {}
    got = dict.fromkeys(PEOPLE, 0)
    share = dict.fromkeys(PEOPLE, 0.0)  # each lead shared among those eligible for it, by weight
    for kind, who in steps:
        if kind == "toggle":
            available ^= {who}
            continue
        eligible = [p for p in PEOPLE if p in available]
        chosen = pick(deficits, weight, eligible)
        if not eligible:
            assert chosen is None
            continue
        assert chosen in available  # nobody away (or at cap) ever gets a lead
        got[chosen] += 1
        total = sum(weight[p] for p in eligible)
        for p in eligible:
            share[p] += weight[p] / total
        for p in PEOPLE:
            assert abs(got[p] - share[p]) <= 1 + 1e-9, (p, got, share)



