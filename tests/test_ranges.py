"""Every score lies within its registry range, in both modes: on random model outputs built as
the models build them (fp32 unit vectors, so a text that repeats another gives a cosine a
hair past 1), and on every chain of the real human-judged sets."""
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from roscoe import batched, registry
from roscoe.chains import Chain
from roscoe.outputs import PassOutputs
from roscoe.plan import Needs, Plan

from .random_outputs import random_outputs


def parse_range(spec: str):
    """``[0,1]``, ``(0,1]``, ``[0.5,1]``, ``[0,0.5], or 1.0 if N<2`` -> (low, high, low open,
    the value allowed for one step or None)."""
    m = re.fullmatch(r"([\[(])([0-9.]+),([0-9.]+)\](?:, or ([0-9.]+) if N<2)?", spec)
    assert m, spec
    return float(m.group(2)), float(m.group(3)), m.group(1) == "(", None if m.group(4) is None else float(m.group(4))


def out_of_range(names, values, mode, n_steps) -> list:
    """(row, score, value) of every defined value outside its documented range."""
    bad = []
    for k, name in enumerate(names):
        info = registry.SCORES[name]
        lo, hi, open_lo, one_step = parse_range(info.range_paper if mode == "paper" else info.range_parlai)
        for row, v in enumerate(values[:, k]):
            if math.isnan(v) or (one_step is not None and n_steps[row] < 2 and v == one_step):
                continue
            if not (lo < v <= hi if open_lo else lo <= v <= hi):
                bad.append((row, name, float(v)))
    return bad


def test_range_specs_parse():
    assert parse_range("[0,1]") == (0.0, 1.0, False, None)
    assert parse_range("(0,1]") == (0.0, 1.0, True, None)
    assert parse_range("[0,0.5], or 1.0 if N<2") == (0.0, 0.5, False, 1.0)
    for info in registry.SCORES.values():
        parse_range(info.range_paper), parse_range(info.range_parlai)


TEXTS = [f"t{i}" for i in range(6)]


@st.composite
def blocks(draw):
    """Chains drawn from six texts, so steps repeat context sentences, each other and the
    reference, and model outputs for those texts made as the models make them."""
    n = draw(st.integers(1, 5))
    pick = st.lists(st.sampled_from(TEXTS), max_size=4)
    chains = [Chain(f"c{i}", draw(pick.filter(bool)), draw(pick), draw(st.none() | pick)) for i in range(n)]
    seed = draw(st.integers(0, 2**16))
    width = draw(st.sampled_from([3, 8, 384]))
    return chains, seed, width


@pytest.mark.parametrize("mode", ["paper", "parlai"])
@settings(max_examples=150, deadline=None)
@given(case=blocks())
def test_batched_formulas_stay_in_range(mode, case):
    chains, seed, width = case
    names = tuple(registry.SCORES)
    plan = Plan(chains, Needs.of(names, lambda slot: True), mode, (lambda t: 5) if mode == "parlai" else None)
    out = random_outputs(plan, seed, width)
    counts = [(len(c.steps), len(c.context), None if c.reference is None else len(c.reference)) for c in chains]
    values, _ = batched.compute(plan.refs, counts, out, names, mode=mode, device=torch.device("cpu"),
                                dtype=torch.float64, nli_pairs=plan.nli_pairs, budget=None)
    assert out_of_range(names, values.numpy(), mode, [c[0] for c in counts]) == []


def test_repeated_text_cosine_past_one_is_clamped():
    """The defect: a step that repeats a context sentence shares its fp32 unit vector, whose
    float64 norm is 1 +- 6e-8, so faithfulness came out 1.0000000227."""
    torch.manual_seed(3)
    v = torch.nn.functional.normalize(torch.randn(50, 384), dim=-1).double()
    assert (v * v).sum(1).max() > 1.0  # the rounding the clamp is for
    chains = [Chain(f"c{i}", ["same"], ["same"]) for i in range(50)]
    plan = Plan(chains, Needs.of(("faithfulness",), lambda slot: True), "paper")
    for k in range(50):
        out = PassOutputs(sentences=v[k:k + 1].float())
        vals, _ = batched.compute(plan.refs[:1], [(1, 1, None)], out, ("faithfulness",), mode="paper",
                                  device=torch.device("cpu"), dtype=torch.float64,
                                  nli_pairs={"context": ([], []), "steps": ([], [])}, budget=None)
        assert vals[0, 0] <= 1.0


# ------------------------------------------------------------------ every chain of the real sets

EMBEDDING_SCORES = tuple(n for n, s in registry.SCORES.items() if s.family in ("SA", "SS"))
# The model-probability scores (NLI, LM, grammar) are bounded by construction (1 - a softmax
# probability, 1 / exp(a mean of non-negative losses), a mean of probabilities) and are checked
# on the whole ROSCOE GSM8K file by test_cli; the embedding scores, where rounding can pass a
# bound, run on every chain of every human-judged set.  CHAMP (540 solutions) and MR-BEN (4,534
# solutions, 7.4 M characters of context and steps) take 18 minutes for both modes on 2 cores,
# so they are left to `make test-exhaustive`.
REAL_SETS = [
    "roscoe-human-gsm8k", "roscoe-human-esnli", "eobqa",
    *(pytest.param(name, marks=pytest.mark.exhaustive)
      for name in ("champ", *(f"mr-ben-{s}" for s in ("biology", "chemistry", "coding", "math", "medicine", "physics")))),
]


@pytest.fixture(scope="module")
def sentence_cache():
    """Sentence vectors are the same in both modes: the second mode reads the first's."""
    from roscoe.cache import LRU

    return LRU(200_000)


@pytest.mark.parametrize("name", REAL_SETS)
@pytest.mark.parametrize("mode", ["paper", "parlai"])
def test_every_real_chain_scores_within_range(lite_scorer, sentence_cache, mode, name):
    from human_eval import pipeline

    from roscoe import Scorer
    from roscoe.chains import coerce

    scorer = Scorer(models=lite_scorer.models, mode=mode)
    scorer.caches["embedder"] = sentence_cache
    chains = pipeline.load_benchmark(name).chains
    table = scorer.score(chains, EMBEDDING_SCORES)
    n_steps = [len(coerce(c, i).steps) for i, c in enumerate(chains)]
    assert out_of_range(table.names, table.values, mode, n_steps) == []
    assert len(table) == len(chains) and np.isfinite(table["faithfulness"]).mean() > 0.9
