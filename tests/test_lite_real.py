"""Score behaviour with the real lite models on real chains (ROSCOE human GSM8K / e-SNLI)."""
import random

import numpy as np
import torch
import pytest

from roscoe import registry
from roscoe.metric import ROSCOEMetric

from .conftest import ESNLI_HUMAN, gsm8k_chains, load_jsonl

LITE_SCORES = [n for n in registry.SCORES if registry.SCORES[n].slots[0] not in ("nli", "grammar")]


def _set_batch_tokens(scorer, n):
    for m in scorer.models.loaded().values():
        m.batch_tokens = n


@pytest.fixture(scope="module")
def base(lite_scorer):
    chains = gsm8k_chains(10) + [
        {"id": "one-step", "context": "A man sleeps.", "steps": ["He is asleep."]},
        {"id": "no-context", "context": "", "steps": ["2 + 2 = 4.", "So 4."], "reference": "4"},
    ]
    _set_batch_tokens(lite_scorer, 8192)
    table = lite_scorer.score(chains, LITE_SCORES)
    return chains, table


def test_batch_size_does_not_change_scores(lite_scorer, base):
    chains, table = base
    try:
        _set_batch_tokens(lite_scorer, 1)  # every text in a batch of its own
        lite_scorer.clear_cache()  # recompute everything rather than reuse the first pass
        alone = lite_scorer.score(chains, LITE_SCORES)
    finally:
        _set_batch_tokens(lite_scorer, 8192)
    np.testing.assert_allclose(alone.values, table.values, atol=1e-6, equal_nan=True)
    assert alone.reasons == table.reasons


def test_input_order_and_block_size_do_not_change_scores(lite_scorer, base):
    chains, table = base
    order = list(range(len(chains)))
    random.Random(7).shuffle(order)
    old = lite_scorer.block_size
    try:
        lite_scorer.block_size = 3
        lite_scorer.clear_cache()
        shuffled = lite_scorer.score([chains[i] for i in order], LITE_SCORES)
    finally:
        lite_scorer.block_size = old
    back = np.empty_like(shuffled.values)
    back[order] = shuffled.values
    np.testing.assert_allclose(back, table.values, atol=1e-6, equal_nan=True)
    assert [shuffled.ids[order.index(i)] for i in range(len(chains))] == table.ids


def test_cache_reuses_outputs_across_calls(lite_scorer, base):
    chains, table = base
    lite_scorer.clear_cache()
    first = lite_scorer.score(chains[:4], ["faithfulness", "perplexity_step"])
    misses = lite_scorer.cache_stats()["embedder"]["misses"]
    again = lite_scorer.score(chains[:4], ["faithfulness", "perplexity_step"])
    stats = lite_scorer.cache_stats()
    assert stats["embedder"]["misses"] == misses and stats["embedder"]["hits"] >= misses
    assert stats["lm"]["hits"] > 0
    np.testing.assert_array_equal(first.values, again.values)


def test_overlapped_preparation_changes_no_score(lite_scorer, base, monkeypatch):
    """Planning and tokenizing the next block on a worker thread (the GPU default) gives the
    same values and reasons, also when the output cache answers part of a block so a pass uses
    only some of the token ids worked out ahead; and the passes really use those ids."""
    import threading

    chains, _ = base
    names = registry.resolve("reference-free")  # every model slot
    old = lite_scorer.block_size, lite_scorer.overlap
    try:
        lite_scorer.block_size = 4

        def warm_cache_then(overlap):
            # the first 3 chains cached, so the first block is mostly hits; the same warm-up
            # both times, since a batch's make-up moves the last float bits
            lite_scorer.overlap = False
            lite_scorer.clear_cache()
            lite_scorer.score(chains[:3], names)
            lite_scorer.overlap = overlap

        warm_cache_then(False)
        plain = lite_scorer.score(chains, names)
        warm_cache_then(True)
        threads = []
        for model in lite_scorer.models.loaded().values():
            real = model.tokenize
            monkeypatch.setattr(model, "tokenize", lambda items, real=real: (
                threads.append(threading.current_thread().name), real(items))[1])
        over = lite_scorer.score(chains, names)
    finally:
        lite_scorer.block_size, lite_scorer.overlap = old
    np.testing.assert_array_equal(over.values, plain.values)
    assert over.reasons == plain.reasons
    assert lite_scorer.cache_stats()["nli"]["hits"] > 0
    assert len(threads) == 5 * 3  # every slot, once per block, and never on the scoring thread
    assert all(t.startswith("roscoe-prepare") for t in threads)


def test_one_minilm_pass_serves_embedder_and_token_slots(lite_scorer, base):
    """lite names all-MiniLM-L6-v2 for both the sentence and the token slot: one loaded model,
    and the sentence pass hands the token vectors over; the scores equal separate passes."""
    chains, _ = base
    names = ["faithfulness_ww", "repetition_word", "faithfulness", "repetition_step"]
    ms = lite_scorer.models
    assert ms.get("token").model is ms.get("embedder").model
    tok = ms.get("token")
    try:
        ms.share_passes = False
        lite_scorer.clear_cache()
        separate = lite_scorer.score(chains, names)
        ms.share_passes = True
        lite_scorer.clear_cache()
        before = tok.stats.texts, tok.stats.shared
        shared = lite_scorer.score(chains, names)
    finally:
        ms.share_passes = True
    np.testing.assert_allclose(shared.values, separate.values, atol=1e-6, equal_nan=True)
    assert shared.reasons == separate.reasons
    assert tok.stats.shared - before[1] > 0 and tok.stats.texts == before[0]  # no text went through the token pass


def test_scores_in_documented_range_and_degenerate_reasons(base):
    chains, table = base
    for name in LITE_SCORES:
        col = table[name][:10]
        assert not np.isnan(col).any(), name
        assert ((col >= 0) & (col <= 1)).all(), name
    one = table.ids.index("one-step")
    assert table.reasons[one]["repetition_step"] == "too_few_steps"
    assert table.reasons[one]["reasoning_alignment"] == "no_reference"
    nc = table.ids.index("no-context")
    assert table.reasons[nc]["faithfulness"] == "empty_context"
    assert not np.isnan(table["missing_step"][nc])  # needs no context


def test_duplicated_step_lowers_repetition(lite_scorer):
    chains = gsm8k_chains(6)
    dup = [dict(c, id=f"{c['id']}-dup", steps=c["steps"][:2] + c["steps"][1:]) for c in chains]
    t = lite_scorer.score(chains + dup, ["repetition_step", "repetition_word"])
    n = len(chains)
    for name in ("repetition_step", "repetition_word"):
        assert (t[name][n:] < t[name][:n]).all(), name
        assert np.allclose(t[name][n:], 0.0, atol=1e-6)  # an exact copy is maximal repetition


def test_unrelated_steps_lower_faithfulness_and_info(lite_scorer):
    chains = gsm8k_chains(6)
    esnli = load_jsonl(ESNLI_HUMAN)
    swapped = [dict(c, id=f"{c['id']}-x", steps=esnli[i]["steps"]) for i, c in enumerate(chains)]
    t = lite_scorer.score(chains + swapped, ["faithfulness", "informativeness_step"])
    n = len(chains)
    for name in ("faithfulness", "informativeness_step"):
        assert (t[name][n:] < t[name][:n]).all(), name


def test_word_shuffled_step_has_higher_perplexity(lite_scorer):
    chains = gsm8k_chains(6)
    rng = random.Random(3)
    shuffled = []
    for c in chains:
        steps = list(c["steps"])
        words = steps[0].split()
        rng.shuffle(words)
        steps[0] = " ".join(words)
        shuffled.append(dict(c, id=f"{c['id']}-shuf", steps=steps))
    t = lite_scorer.score(chains + shuffled, ["perplexity_step", "perplexity_step_max"], details=True)
    n = len(chains)
    assert (t["perplexity_step"][n:] < t["perplexity_step"][:n]).all()
    for k in range(n):  # the shuffled step itself: PPL up
        assert t.details[n + k]["step_perplexity"][0] > t.details[k]["step_perplexity"][0]


def test_details_name_the_worst_steps(lite_scorer):
    c = gsm8k_chains(1)[0]
    # the three worked steps (not the terse "A: 18" line) plus one off-topic step
    odd = dict(c, steps=c["steps"][:3] + ["The moon landing was filmed in a studio basement."])
    t = lite_scorer.score([odd], ["faithfulness", "perplexity_step"], details=True)
    d = t.details[0]
    assert d["faithfulness_worst_step"] == len(odd["steps"]) - 1
    assert len(d["step_perplexity"]) == len(odd["steps"])
    rec = t.records()[0]
    assert rec["details"] is d and set(rec) >= {"id", "faithfulness", "perplexity_step", "reasons"}


def test_unavailable_models_give_nan_with_reason(lite_scorer):
    from dataclasses import replace

    from roscoe import Scorer
    from roscoe.models import ModelSet, SlotSpec, get_preset

    lite = get_preset("lite")
    partial = replace(lite, name="lite-partial", slots={**lite.slots, "nli": SlotSpec(None), "grammar": SlotSpec(None)})
    scorer = Scorer(models=ModelSet(partial, device="cpu"))
    t = scorer.score(gsm8k_chains(2), ["coherence_step_vs_step", "grammar_step", "faithfulness"])
    assert np.isnan(t["coherence_step_vs_step"]).all() and np.isnan(t["grammar_step"]).all()
    assert not np.isnan(t["faithfulness"]).any()
    assert all(r == {"coherence_step_vs_step": "model_unavailable", "grammar_step": "model_unavailable"}
               for r in t.reasons)
    assert "nli:none" in str(scorer.signature()) and "gram:none" in str(scorer.signature())
    assert not scorer.models.is_loaded("nli")  # nothing loads for a slot the preset lacks


def test_signature_names_models_and_recipe(lite_scorer):
    sig = str(lite_scorer.signature())
    for part in ("roscoe:0.1.0", "mode:paper", "emb:all-MiniLM-L6-v2@", "+mean+256", "nli:roscoe-lite-nli@",
                 "lm:SmolLM2-135M-Instruct-Q4_1@", "+bos0", "gram:roscoe-lite-cola@", "split:context=punkt",
                 "dtype:fp32"):
        assert part in sig, part
    assert "lm:" not in str(lite_scorer.signature("SA"))  # only the slots the scores use


def test_metric_adapter_update_compute_reset(lite_scorer, base):
    chains, table = base
    m = ROSCOEMetric(["faithfulness", "repetition_step"], scorer=lite_scorer)
    m.update(chains[:5])
    m.update(chains[5:])
    got = m.compute()
    assert got["n_chains"] == len(chains)
    for name in ("faithfulness", "repetition_step"):
        assert got[name] == pytest.approx(float(np.nanmean(table[name])), abs=1e-6)  # batch mix: 1e-6
    m.reset()
    assert m.compute()["n_chains"] == 0


def test_one_call_score_function():
    import roscoe

    t = roscoe.score(gsm8k_chains(2), "faithfulness", device="cpu")
    assert len(t) == 2 and "emb:all-MiniLM-L6-v2" in str(t.signature)
    df = t.to_pandas()
    assert list(df.columns) == ["id", "faithfulness", "reasons"]


def test_autocast_fp16_keeps_every_score_within_1e3_of_fp32(lite_scorer):
    """fp32 weights with the matrix products in fp16 (norms, softmax and reductions in fp32):
    the precision that keeps the scores within the 1e-3 bound, unlike plain bf16."""
    from roscoe import Scorer

    chains = gsm8k_chains(8)
    names = registry.resolve("reference-free")
    fp32 = lite_scorer.score(chains, names)
    amp = Scorer("lite", device="cpu", dtype="autocast-fp16")
    assert amp.models.dtype == torch.float32 and amp.models.autocast == torch.float16
    half = amp.score(chains, names)
    diff = np.abs(half.values - fp32.values)
    assert half.reasons == fp32.reasons
    assert np.nanmax(diff) < 1e-3
    assert np.nanmax(diff) > 0  # the products really ran in fp16
    assert "|dtype:autocast-fp16|" in str(amp.signature(names))


def test_chains_over_the_size_limits_are_nan_too_long_and_cost_no_model_work(lite_scorer, base):
    from roscoe import Scorer
    from roscoe.chains import coerce

    chains, table = base
    limited = Scorer(models=lite_scorer.models, max_items=5, max_chars=600, cache_size=0)
    long_steps = {"id": "many", "context": "A man sleeps.", "steps": [f"Step {k}." for k in range(6)]}
    long_text = {"id": "wordy", "context": "A man sleeps.", "steps": ["He sleeps " + "very " * 150 + "long.", "So."]}
    fits = [c for k, c in enumerate(chains) if not limited.too_long(coerce(c, k))]
    assert fits and len(fits) < len(chains)  # some real GSM8K chains are over 600 characters too
    out = limited.score([long_steps, *chains, long_text], LITE_SCORES)
    for row in (0, len(chains) + 1, *[1 + k for k, c in enumerate(chains) if c not in fits]):
        assert np.isnan(out.values[row]).all()
        assert out.reasons[row] == {n: "too_long" for n in LITE_SCORES}
    kept = [1 + k for k, c in enumerate(chains) if c in fits]
    np.testing.assert_allclose(out.values[kept], table.values[[k - 1 for k in kept]], atol=1e-6, equal_nan=True)
    assert limited.timings.get("lm", 0) > 0
    texts = sum(m.stats.texts for m in lite_scorer.models.loaded().values())
    limited.score([long_steps, long_text], LITE_SCORES)  # its cache is off: only the limits spare the work
    assert sum(m.stats.texts for m in lite_scorer.models.loaded().values()) == texts  # no model ran
    # no limit: the six-step chain is scored
    free = Scorer(models=lite_scorer.models, max_items=None, max_chars=None)
    assert not np.isnan(free.score([long_steps], ["faithfulness"]).values).any()


def test_blocks_are_cut_by_nli_pairs_as_well_as_chains():
    from roscoe import Chain, Scorer
    from roscoe.scorer import BLOCK_PAIRS

    s = Scorer("lite", block_size=4)  # models load lazily: none is loaded here
    n = 600  # 600 steps and 1 context sentence: 600 * 601 = 360,600 pairs, so two fit in 1,000,000
    assert 2 * n * (n + 1) <= BLOCK_PAIRS < 3 * n * (n + 1)
    big = [Chain(f"b{k}", [f"s{j}." for j in range(n)], ["c."]) for k in range(5)]
    small = [Chain(f"s{k}", ["a.", "b."], ["c."]) for k in range(6)]
    over = Chain("over", [f"x{j}." for j in range(2000)], ["c."])  # over max_items: counts for nothing
    sizes = [[c.id for c in b] for b in s.blocks(big + [over] + small)]
    assert sizes == [["b0", "b1"], ["b2", "b3"], ["b4", "over", "s0", "s1"], ["s2", "s3", "s4", "s5"]]
    assert not s.models.loaded()
