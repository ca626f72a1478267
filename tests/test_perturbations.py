"""Contracts of every perturbation, as properties over generated chains (hypothesis), plus
hand-worked cases for the number/operator finder."""
from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perturbations import (
    CATALOGUE,
    Combined,
    GoldChain,
    NotApplicable,
    Perturbed,
    SplitContext,
    rng_for,
)
from perturbations.arithmetic import OPERATORS, canonical, numbers, operators
from perturbations.base import REASONS, checked, normalise, same_chain
from perturbations.linguistic import negate, question_entities

WORDS = ["apples", "Tom", "buys", "sold", "the", "red", "box", "is", "has", "eggs", "market", "Mary", "gave"]
word_steps = st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
                      min_size=0, max_size=6)
seeds = st.integers(0, 2**32)


def chain_of(steps, context="Tom has a red box of apples at the market.", id_="c0"):
    return GoldChain(id_, context, tuple(steps))


def run(name, chain, seed, pool=()):
    p = CATALOGUE[name]
    return checked(p(chain, SplitContext(pool), rng_for(seed, "t", name, chain.id)), chain.steps)


def _contract(name, chain, seed, pool=()):
    """What every perturbation promises: typed outcome, a real change, the same result for
    the same stream."""
    out = run(name, chain, seed, pool)
    again = run(name, chain, seed, pool)
    assert out == again
    if isinstance(out, NotApplicable):
        assert out.reason in REASONS
    else:
        assert isinstance(out, Perturbed) and out.changes
        assert not same_chain(out.steps, chain.steps)
    return out


# --------------------------------------------------------------------------- step level


@given(word_steps, seeds)
def test_shuffle_steps_is_a_different_permutation(steps, seed):
    chain = chain_of(steps)
    out = _contract("ShuffleSteps", chain, seed)
    distinct = len({normalise(s) for s in steps})
    assert isinstance(out, NotApplicable) == (distinct < 2)
    if isinstance(out, Perturbed):
        assert sorted(out.steps) == sorted(steps)
        order = out.changes[0].detail["order"]
        assert [steps[i] for i in order] == list(out.steps)


@given(word_steps, seeds)
def test_duplicate_one_step_inserts_a_copy_next_to_the_original(steps, seed):
    out = _contract("DuplicateOneStep", chain_of(steps), seed)
    assert isinstance(out, NotApplicable) == (not steps)
    if isinstance(out, Perturbed):
        k = out.changes[0].step
        assert len(out.steps) == len(steps) + 1 and out.steps[k] == out.steps[k - 1]
        assert list(out.steps[:k] + out.steps[k + 1:]) == steps


@given(word_steps, seeds)
def test_remove_one_step_never_empties_a_chain(steps, seed):
    out = _contract("RemoveOneStep", chain_of(steps), seed)
    assert isinstance(out, NotApplicable) == (len(steps) < 2)
    if isinstance(out, Perturbed):
        c = out.changes[0]
        assert len(out.steps) == len(steps) - 1 >= 1
        assert list(out.steps[:c.step]) + [c.old] + list(out.steps[c.step:]) == steps


@given(word_steps, seeds)
def test_swap_one_step_exchanges_two_different_steps(steps, seed):
    out = _contract("SwapOneStep", chain_of(steps), seed)
    assert isinstance(out, NotApplicable) == (len({normalise(s) for s in steps}) < 2)
    if isinstance(out, Perturbed):
        i, j = out.changes[0].step, out.changes[0].detail["with"]
        diff = [k for k in range(len(steps)) if out.steps[k] != steps[k]]
        assert diff == [i, j]
        assert out.steps[i] == steps[j] and out.steps[j] == steps[i]


@given(word_steps, st.lists(word_steps, min_size=0, max_size=4), seeds)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_extrinsic_step_comes_from_another_example_and_is_new(steps, others, seed):
    chain = chain_of(steps)
    pool = [chain] + [chain_of(s, id_=f"o{i}") for i, s in enumerate(others)]
    out = _contract("ExtrinsicHallucinatedStep", chain, seed, pool)
    own = {normalise(s).lower() for s in steps}
    fresh = [s for ex in pool[1:] for s in ex.steps
             if normalise(s).lower() not in own and normalise(s).lower() not in normalise(chain.context).lower()]
    assert isinstance(out, NotApplicable) == (not steps or not fresh)
    if isinstance(out, Perturbed):
        c = out.changes[0]
        assert c.detail["from"] != chain.id
        assert c.new in {ex.id: ex.steps for ex in pool}[c.detail["from"]]
        assert normalise(c.new).lower() not in own
        assert c.step < len(steps)  # never after the last step
        assert list(out.steps[:c.step] + out.steps[c.step + 1:]) == steps


# --------------------------------------------------------------------------- linguistic

sentences = st.lists(
    st.sampled_from(["Tom sold the red box.", "Mary has 3 apples.", "The eggs are fresh.", "She didn't buy eggs.",
                     "He will give Mary the box.", "3 + 4 = 7", "Apples, eggs and boxes.", "They have eaten lunch.",
                     "Is the market open?", "Tom gave Mary 5 eggs at the market."]),
    min_size=0, max_size=5)


def _one_step_changed(out, steps):
    changed = [k for k in range(len(steps)) if out.steps[k] != steps[k]]
    assert len(out.steps) == len(steps) and changed == [out.changes[0].step]
    return changed[0]


@given(sentences, seeds)
@settings(max_examples=60, deadline=None)
def test_grammatical_error_changes_exactly_one_step(steps, seed):
    out = _contract("GrammaticalErrorStep", chain_of(steps), seed)
    if isinstance(out, Perturbed):
        k = _one_step_changed(out, steps)
        assert out.changes[0].kind in ("verb_tense", "dropped_verb", "swapped_words")
        assert normalise(out.steps[k]) != normalise(steps[k])
    else:
        assert out.reason == "no_grammar_candidate"


@given(sentences, seeds)
@settings(max_examples=60, deadline=None)
def test_negate_step_negates_one_step(steps, seed):
    out = _contract("NegateStep", chain_of(steps), seed)
    if isinstance(out, Perturbed):
        k = _one_step_changed(out, steps)
        rule = out.changes[0].detail["rule"]
        has_not = lambda s: len(re.findall(r"\bnot\b|n't", s))
        assert has_not(out.steps[k]) == has_not(steps[k]) + (-1 if rule == "remove_negation" else 1)
    else:
        assert out.reason == "no_negatable_step"
        assert all(negate(s) is None for s in steps)


@given(sentences, seeds)
@settings(max_examples=60, deadline=None)
def test_semantic_change_swaps_in_another_question_entity(steps, seed):
    context = "Tom gave Mary a red box of fresh eggs at the market."
    out = _contract("SemanticChangeStep", chain_of(steps, context), seed)
    if isinstance(out, Perturbed):
        k = _one_step_changed(out, steps)
        d = out.changes[0].detail
        ents = [e.lower() for e in question_entities(context)]
        assert d["entity"].lower() in ents and d["replacement"].lower() in ents
        assert d["replacement"].lower() in out.steps[k].lower()


@pytest.mark.parametrize("text, expected", [
    ("She sold 5 eggs.", "She did not sell 5 eggs."),
    ("Tom has eaten lunch.", "Tom has not eaten lunch."),
    ("The eggs are fresh.", "The eggs are not fresh."),
    ("She didn't buy eggs.", "She did buy eggs."),
    ("He sells apples.", "He does not sell apples."),
    ("Is the market open?", None),
])
def test_negation_rules_by_hand(text, expected):
    out = negate(text)
    assert (out[0] if out else None) == expected


# --------------------------------------------------------------------------- math


@pytest.mark.parametrize("text, nums, ops", [
    ("Janet sells 16 - 3 - 4 = 9 duck eggs.", ["16", "3", "4", "9"], ["-", "-"]),
    ("It costs $1,200.50 or 3.5 each", ["1,200.50", "3.5"], []),
    ("1/2 of them, so 48/2=24", ["1/2", "48", "2", "24"], ["/"]),
    ("the x-axis, a 3-year-old at 5 km/h on 12/25/2020, the 3rd", ["3", "5"], []),
    ("$y=\\frac{2}{x^2+x-6}$ and 2x-3", ["2", "2", "6", "2", "3"], ["^", "+", "-", "-"]),
    ("A is -3 and 5 × 4 ÷ 2 − 1", ["3", "5", "4", "2", "1"], ["×", "÷", "−"]),
    ("Total = 6\\times 7", ["6", "7"], ["\\times"]),
])
def test_number_and_operator_finder_by_hand(text, nums, ops):
    assert [n.text for n in numbers(text)] == nums
    assert [o.text for o in operators(text)] == ops


math_steps = st.lists(
    st.lists(st.one_of(st.sampled_from(["apples", "cost", "$", "=", "x", "of", "km/h", "x-axis"]),
                       st.integers(0, 2000).map(str), st.sampled_from(["3.5", "1,250", "3/4"]),
                       st.sampled_from(["+", "-", "*", "/", "×"])),
             min_size=1, max_size=9).map(" ".join),
    min_size=1, max_size=4)


def _respliced(text, finder, new_items):
    """``text`` with its items (as found in the gold text) replaced in place: the edit
    touches the items' own spans and nothing else."""
    items = finder(text)
    assert len(items) == len(new_items)
    parts, pos = [], 0
    for i, value in zip(items, new_items):
        parts += [text[pos:i.start], value]
        pos = i.end
    return "".join(parts) + text[pos:]


@pytest.mark.parametrize("name, finder, key", [
    ("ShuffleNumbers", numbers, lambda t: t.replace(",", "")),
    ("ShuffleOperations", operators, canonical),
])
@given(steps=math_steps, seed=seeds)
def test_shuffles_permute_items_and_leave_the_rest(name, finder, key, steps, seed):
    out = _contract(name, chain_of(steps), seed)
    eligible = [k for k, s in enumerate(steps) if len({key(i.text) for i in finder(s)}) >= 2]
    if isinstance(out, NotApplicable):
        assert not eligible
        return
    assert sorted(c.step for c in out.changes) == eligible  # every eligible step, no other
    changes = {c.step: c for c in out.changes}
    for k, (old, new) in enumerate(zip(steps, out.steps)):
        if k not in eligible:
            assert new == old
            continue
        items, new_items = changes[k].detail["items"], changes[k].detail["new_items"]
        assert items == [i.text for i in finder(old)]
        assert Counter(new_items) == Counter(items)
        assert [key(v) for v in new_items] != [key(v) for v in items]
        assert new == _respliced(old, finder, new_items)


@pytest.mark.parametrize("name, finder, new_value_ok", [
    ("RandomNumber", numbers, lambda old, new: 0 <= int(new) <= 100),
    ("RandomOperation", operators, lambda old, new: new in OPERATORS and new != canonical(old)),
])
@given(steps=math_steps, seed=seeds)
def test_random_edits_change_one_item_per_step(name, finder, new_value_ok, steps, seed):
    out = _contract(name, chain_of(steps), seed)
    eligible = [k for k, s in enumerate(steps) if finder(s)]
    if isinstance(out, NotApplicable):
        assert not eligible
        return
    assert sorted(c.step for c in out.changes) == eligible
    for c in out.changes:
        old, new = c.detail["items"], c.detail["new_items"]
        diff = [i for i in range(len(old)) if old[i] != new[i]]
        assert len(diff) == 1 and new_value_ok(old[diff[0]], new[diff[0]])
        assert out.steps[c.step] == _respliced(steps[c.step], finder, new)


# --------------------------------------------------------------------------- combinations


@given(word_steps, seeds)
def test_combination_applies_parts_in_order_and_names_duplicate_first(steps, seed):
    combo = Combined([CATALOGUE["SwapOneStep"], CATALOGUE["DuplicateOneStep"]])
    assert combo.name == "DuplicateOneStep_SwapOneStep" and combo.order == "SwapOneStep+DuplicateOneStep"
    chain = chain_of(steps)
    out = combo(chain, SplitContext(), rng_for(seed, "t", combo.name, chain.id))
    if len({normalise(s) for s in steps}) < 2:
        assert isinstance(out, NotApplicable) and out.message.startswith("SwapOneStep")
    else:
        assert [c.detail["by"] for c in out.changes] == ["SwapOneStep", "DuplicateOneStep"]
        assert len(out.steps) == len(steps) + 1


def test_rng_streams_are_independent_and_stable():
    a = rng_for(42, "gsm8k", "ShuffleSteps", "gsm8k-0").random()
    assert a == rng_for(42, "gsm8k", "ShuffleSteps", "gsm8k-0").random()
    assert a != rng_for(42, "gsm8k", "ShuffleSteps", "gsm8k-1").random()
    assert a != rng_for(43, "gsm8k", "ShuffleSteps", "gsm8k-0").random()
