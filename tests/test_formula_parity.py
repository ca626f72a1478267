"""One spec per score: every registered score has a per-chain and a batched formula, and the
two give the same numbers and the same NaN reasons on random model outputs (no models), in
both modes: zero and one step, empty contexts and references, texts without tokens, LM texts
of no token, slots the preset lacks, and memory budgets that group, chunk and refuse chains."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roscoe import apply, registry
from roscoe.batched import BATCHED
from roscoe.chains import Chain
from roscoe.formulas import FORMULAS
from roscoe.plan import Needs, Plan

from .random_outputs import random_outputs

TEXTS = [f"t{i}" for i in range(7)]
NAMES = tuple(registry.SCORES)


def test_every_score_has_both_formulas_and_declares_what_it_reads():
    assert set(FORMULAS) == set(registry.SCORES), "a score without a per-chain formula, or one without a score"
    assert set(BATCHED) == set(registry.SCORES), "a score without a batched formula, or one without a score"
    for info in registry.SCORES.values():
        assert info.reads and set(info.reads) <= set(registry.READS), info.name


def test_the_plan_builds_only_what_the_scores_read():
    every = lambda slot: True  # noqa: E731
    assert Needs.of(("repetition_word",), every) == Needs(tokens=True)
    assert Needs.of(("informativeness_chain",), every) == Needs(chain_texts=True)
    assert Needs.of(("semantic_coverage_chain",), every) == Needs(chain_texts=True, reference=True)
    assert Needs.of(("faithfulness_ww", "coherence_step_vs_step"), every) == \
        Needs(sentences=True, tokens=True, nli_steps=True)
    # a slot the preset lacks builds no work, though the reference is still read
    no_embedder = lambda slot: slot != registry.EMBEDDER  # noqa: E731
    assert Needs.of(("reasoning_alignment", "grammar_step"), no_embedder) == Needs(acceptability=True, reference=True)
    chains = [Chain("a", ["x", "y"], ["c"], ["r"])]
    plan = Plan(chains, Needs.of(("informativeness_chain",), every), "paper")
    assert plan.sizes() == {"sentences": 2, "token_texts": 0, "nli_pairs": 0, "lm_texts": 0, "grammar_texts": 0}


@st.composite
def cases(draw):
    n = draw(st.integers(1, 6))
    pick = st.lists(st.sampled_from(TEXTS), max_size=5)
    chains = [Chain(f"c{i}", draw(pick), draw(pick), draw(st.none() | pick)) for i in range(n)]
    missing = draw(st.sets(st.sampled_from(registry.SLOTS), max_size=2)) if draw(st.booleans()) else set()
    budget = draw(st.sampled_from([None, None, 1_500, 4_000, 20_000, 10**7]))
    return chains, draw(st.integers(0, 2**16)), draw(st.sampled_from([3, 8, 64])), missing, budget


@pytest.mark.parametrize("mode", ["paper", "parlai"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_batched_formulas_equal_the_per_chain_ones(mode, case):
    chains, seed, width, missing, budget = case
    available = lambda slot: slot not in missing  # noqa: E731
    plan = Plan(chains, Needs.of(NAMES, available), mode, (lambda t: 5) if mode == "parlai" else None)
    out = random_outputs(plan, seed, width, empty_lm=True)
    kw = {"mode": mode, "available": available}
    stats: dict = {}
    values, reasons = apply.batched_scores(chains, plan, out, NAMES, device="cpu", budget=budget, stats=stats, **kw)
    expected, expected_reasons = apply.per_chain_scores(chains, plan, out, NAMES, **kw)
    over = {r for r, why in enumerate(reasons) if "over_memory" in why.values()}
    assert len(over) <= stats.get("over", 0)  # a chain without steps may be counted, then reads empty_hypothesis
    for row in range(len(chains)):
        if row in over:  # refused whole, with that reason alone
            assert all(math.isnan(v) for v in values[row])
            assert {why for name, why in reasons[row].items()} <= {"over_memory", "empty_hypothesis",
                                                                    "model_unavailable"}
            continue
        assert reasons[row] == expected_reasons[row], (row, chains[row])
        np.testing.assert_allclose(values[row], expected[row], rtol=1e-9, atol=1e-12, equal_nan=True,
                                   err_msg=str(chains[row]))
