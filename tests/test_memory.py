"""The memory budget: formula tensors grouped and chunked to fit it, with the same scores as
one unbounded pass; blocks cut by the size of their model outputs; the budget's parsing."""
import math

import numpy as np
import pytest

from roscoe import batched, memory
from roscoe.memory import footprint, groups
from roscoe.chains import coerce

WIDTHS = {"sent_width": 4, "tok_width": 5, "itemsize": 8}


def test_footprint_by_hand():
    # one chain, N=2 steps, T=1 context, K=0, U=3 step tokens, S=2 context tokens:
    # sentence: (2+1+0)*4 vectors + 3*(2*1 + 0 + 0 + 2*2) cosines = 12 + 18 = 30 values
    # tokens: 2*(3+2)*5 vectors + 4*3*2 per-step + 2*3*(3+2) pairwise = 50 + 24 + 30 = 104 values
    # (30 + 104) * 8 bytes + 8 * (2+1+0+3+2) masks = 1072 + 64
    assert footprint(1, (2, 1, 0, 3, 2), **WIDTHS) == 1136
    # a chunk of one row: the pairwise part is 2*1*(3+2) = 10 values instead of 30
    assert footprint(1, (2, 1, 0, 3, 2), chunk=1, **WIDTHS) == 1136 - 20 * 8
    assert footprint(3, (2, 1, 0, 3, 2), **WIDTHS) == 3 * 1136
    # no embedding scores: only the per-item masks and values of NLI, LM and grammar
    assert footprint(1, (2, 1, 0, 3, 2), sent_width=0, tok_width=0, itemsize=8) == 64


def test_groups_fit_the_budget_and_chunk_only_what_must_be():
    rng = np.random.default_rng(0)
    sizes = np.column_stack([rng.integers(1, 30, 60), rng.integers(1, 10, 60), rng.integers(0, 20, 60),
                             rng.integers(5, 900, 60), rng.integers(5, 300, 60)])
    sizes[7] = (25, 5, 0, 4000, 200)  # far larger than the rest
    sizes[8] = (1, 1, 0, 60000, 10)   # too large even a row at a time
    budget = 40 * 2**20
    widths = {"sent_width": 384, "tok_width": 384, "itemsize": 8}
    plan, over = groups(sizes, budget, **widths)
    seen = sorted(int(i) for rows, _ in plan for i in rows)
    assert seen == sorted(set(range(60)) - {8}) and over.tolist() == [8]
    for rows, chunk in plan:
        top = sizes[rows].max(axis=0)
        assert footprint(len(rows), top, chunk=chunk, **widths) <= budget
        if chunk is not None:  # only a chain alone, with the largest chunk that fits
            assert len(rows) == 1 and footprint(1, top, chunk=chunk + 1, **widths) > budget
    assert [int(rows[0]) for rows, chunk in plan if chunk is not None] == [7]
    assert len(plan) < 30  # chains of about one size share a group
    roomy, _ = groups(np.delete(sizes, [7, 8], axis=0), 2**40, **widths)
    assert len(roomy) == 1 and roomy[0][0].size == 58 and roomy[0][1] is None  # a large budget: one group


def test_sizes_parse():
    assert memory.parse_size("512M") == 512 * 2**20
    assert memory.parse_size("1.5GiB") == 3 * 2**29
    assert memory.parse_size("2g") == 2 * 2**30
    assert memory.parse_size(12345) == 12345
    for bad in ("lots", "12Q", "-5M", ""):
        with pytest.raises(ValueError, match="not a memory size"):
            memory.parse_size(bad)
    with pytest.raises(ValueError, match="below the minimum"):
        memory.resolve_budget("1M", "cpu")
    auto = memory.resolve_budget("auto", "cpu")
    assert memory.MIN_BUDGET <= auto <= memory.DEFAULT_CAP["cpu"]


def _long_real_chains():
    """MR-BEN medicine solutions of the two questions with the longest solutions (3 each), each
    with another solution of its question as reference."""
    from human_eval import loaders

    from .conftest import SHARED

    ls = loaders.load_mr_ben(SHARED / "dev/human/mr_ben/medicine.json")
    by_q = {}
    for c in ls.chains:
        by_q.setdefault(c["id"].rsplit("#", 1)[0], []).append(c)
    size = lambda c: sum(map(len, c["steps"]))  # noqa: E731
    picked = sorted((q for q, cs in by_q.items() if len(cs) >= 3), key=lambda q: -max(map(size, by_q[q])))[:2]
    chains = []
    for q in picked:
        sols = sorted(by_q[q], key=size, reverse=True)[:3]
        for k, c in enumerate(sols):
            chains.append({**c, "reference": sols[(k + 1) % len(sols)]["steps"]})
    return chains


@pytest.fixture(scope="module")
def long_chains():
    chains = _long_real_chains()
    assert len(chains) == 6 and max(sum(map(len, c["steps"])) for c in chains) > 3000
    return chains


@pytest.mark.parametrize("mode,scores", [("paper", "all"), ("parlai", "faithfulness_ww,repetition_word,SS")])
def test_small_budget_scores_as_the_unbounded_run(lite_scorer, long_chains, mode, scores):
    """Under a small formula budget long real chains run in several groups and the largest in
    chunks of rows; every score equals the run without a budget."""
    from roscoe import Scorer

    free = Scorer(models=lite_scorer.models, mode=mode, max_memory=None)
    tight = Scorer(models=free.models, mode=mode)
    tight.formula_budget = 16 * 2**20  # the default's floor is 32 MB; these chains need 3-30 MB each
    want = free.score(long_chains, scores)
    tight.caches = free.caches  # the same model outputs: what differs is how the formulas run
    got = tight.score(long_chains, scores)
    assert free.formula_stats == {"groups": 1, "chunked": 0, "over": 0}
    assert got.reasons == want.reasons
    assert tight.formula_stats["groups"] >= 3 and tight.formula_stats["chunked"] >= 1, tight.formula_stats
    assert tight.formula_stats["over"] == 0
    np.testing.assert_allclose(got.values, want.values, rtol=0, atol=1e-9)
    assert not np.isnan(want["repetition_word"]).any()


def test_a_chain_over_the_budget_alone_gets_nan_and_the_rest_is_scored(lite_scorer):
    from roscoe import Scorer

    short = {"id": "short", "context": "Tom has 3 apples. He buys 4 more.", "steps": ["3 + 4 = 7.", "So 7."]}
    long_ = {"id": "long", "context": "A long one.",
             "steps": [" ".join(f"word{i}" for i in range(k * 40, k * 40 + 40)) for k in range(8)]}
    scorer = Scorer(models=lite_scorer.models)
    scorer.formula_budget = 2**20  # the long chain's token vectors alone need more than this
    table = scorer.score([short, long_], "faithfulness_ww,repetition_word,perplexity_step")
    assert table.reasons[1] == {n: "over_memory" for n in table.names}
    assert scorer.formula_stats["over"] == 1
    alone = lite_scorer.score([short], "faithfulness_ww,repetition_word,perplexity_step")
    np.testing.assert_allclose(table.values[:1], alone.values, rtol=1e-5)  # the LM batches differ: fp32 rounding


def test_blocks_are_cut_by_the_size_of_their_outputs(lite_scorer, long_chains):
    from roscoe import Scorer

    chains = [coerce(c, i) for i, c in enumerate(long_chains)] * 20  # ids repeat: blocks() does not check
    roomy = Scorer(models=lite_scorer.models, max_memory="2G")
    tight = Scorer(models=lite_scorer.models, max_memory="64M")
    assert [len(b) for b in roomy.blocks(chains)] == [120]
    sizes = [len(b) for b in tight.blocks(chains)]
    assert sum(sizes) == 120 and len(sizes) > 3
    # a chain's estimated outputs: 2 bytes of fp32 token vectors per character and hidden unit
    per_chain = [384 * 2 * sum(len(s) + 4 for s in (*c.steps, *c.context)) for c in chains]
    start = 0
    for n in sizes[:-1]:
        assert sum(per_chain[start:start + n]) <= 16 * 2**20 < sum(per_chain[start:start + n + 1])
        start += n
    assert [len(b) for b in tight.blocks(chains, "perplexity_step")] == [120]  # no token vectors to hold


def test_cli_max_memory_is_checked_before_any_model(tmp_path, capsys):
    from roscoe import cli

    from .conftest import EXAMPLE

    for bad, why in (("10M", "below the minimum"), ("plenty", "not a memory size")):
        assert cli.main(["score", str(EXAMPLE), "-o", str(tmp_path / "x.jsonl"), "--max-memory", bad]) == 2
        assert why in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()
    assert math.isfinite(memory.resolve_budget("64M", "cpu"))
    assert batched.CODES.index("over_memory") >= 0
