"""The batched (whole-block tensor) formulas give the per-chain reference formulas' numbers
and reasons, in both modes, on real chains and on every degenerate shape."""
import numpy as np
import pytest

from roscoe import Scorer

from .conftest import gsm8k_chains

EDGE = [
    {"id": "one", "context": "A man sleeps.", "steps": ["He is asleep."]},
    {"id": "no-context", "context": "", "steps": ["2 + 2 = 4.", "So 4."], "reference": "4"},
    {"id": "empty-reference", "context": "Q is here.", "steps": ["a b.", "c d."], "reference": []},
    {"id": "empty", "context": "x", "steps": []},
    {"id": "punctuation", "context": "Hi.", "steps": [".", "!", "ok"]},
    # U+200B survives str.strip() but gives the token model no token at all
    {"id": "tokenless", "context": "Some context here.", "steps": ["\u200b", "\u200b", "A real step."],
     "reference": "A real step."},
    {"id": "repeat", "context": "c.", "steps": ["Same step.", "Same step.", "Same step."]},
]


@pytest.mark.parametrize("mode", ["paper", "parlai"])
def test_batched_formulas_equal_per_chain(lite_scorer, mode):
    chains = gsm8k_chains(8) + EDGE
    fast = Scorer(models=lite_scorer.models, mode=mode, batched=True)
    slow = Scorer(models=lite_scorer.models, mode=mode, batched=False)
    a, b = fast.score(chains), slow.score(chains)
    assert a.reasons == b.reasons
    np.testing.assert_array_equal(np.isnan(a.values), np.isnan(b.values))
    np.testing.assert_allclose(a.values, b.values, atol=1e-12, equal_nan=True)
    tokless = a.ids.index("tokenless")
    if mode == "paper":  # the only step pair with tokens on both sides does not exist
        assert a.reasons[tokless]["repetition_word"] == "no_tokens"
    else:
        assert a["repetition_word"][tokless] == 1.0


@pytest.mark.parametrize("mode", ["paper", "parlai"])
def test_a_block_without_a_single_token(lite_scorer, mode):
    """No text of the block gives the token model a token (it raised IndexError)."""
    chain = {"id": "z", "context": "", "steps": ["\u200b", "\u200b"]}
    t = Scorer(models=lite_scorer.models, mode=mode).score([chain], ["repetition_word", "faithfulness_ww"])
    if mode == "paper":
        assert t.reasons[0] == {"repetition_word": "no_tokens", "faithfulness_ww": "empty_context"}
    else:
        assert t["repetition_word"][0] == 1.0 and t["faithfulness_ww"][0] == 0.0 and t.reasons[0] == {}
