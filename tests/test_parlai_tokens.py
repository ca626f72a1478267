"""parlai mode's token pass is the reference's: each chain's steps (and its context sentences)
right-padded together and run WITHOUT an attention mask, so padding leaks into the shorter
texts' vectors; paper mode runs every text alone.  Checked against a hand-written copy of the
reference's computation on a tiny random BERT (no network)."""
import numpy as np
import pytest
import torch

import roscoe.chains

pytest.importorskip("transformers")

from tests.test_tiny_models import _bert_config, _bert_tokenizer_into  # noqa: E402

# steps of very different lengths, so the shorter ones see many padding positions
CHAINS = [
    {"id": "a", "context": ["Tom has 3 apples and a very large basket full of old red pears.", "He buys 4 more."],
     "steps": ["3 + 4 = 7.", "So Tom now has seven apples in his very large basket of pears.", "Seven."]},
    {"id": "b", "context": ["A cat sat on the mat."], "steps": ["The cat sat.", "It was on the mat, sitting quietly."]},
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import transformers

    torch.manual_seed(1)
    d = tmp_path_factory.mktemp("tiny-bert")
    transformers.BertModel(_bert_config()).save_pretrained(d)
    _bert_tokenizer_into(d)
    return d


def _scorer(path, mode):
    from dataclasses import replace

    from roscoe import Scorer
    from roscoe.models import ModelSet, SlotSpec, get_preset

    base = get_preset("parlai")
    slots = {**base.slots, "embedder": SlotSpec(str(path), {"max_length": 128, "pooling": "mean"}),
             "token": SlotSpec(str(path), {"max_length": 128})}
    return Scorer(models=ModelSet(replace(base, slots=slots, hub=False), device="cpu"), mode=mode)


def _words_reference(tokenizer, model, texts, *, masked):
    """The reference's ``embed_words``: the texts padded together, input ids only (no
    attention mask), each row cut at [1 : first pad - 1].  ``masked``: each text alone."""
    if masked:
        return [_words_reference(tokenizer, model, [t], masked=False)[0] for t in texts]
    ids = tokenizer(texts, truncation=True, padding=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        hidden = model(ids)[0]
    out = []
    for row, h in zip(ids, hidden):
        pads = (row == tokenizer.pad_token_id).nonzero()
        end = int(pads[0]) - 1 if len(pads) else len(row) - 1
        out.append(h[1:end].double().numpy())
    return out


def _ra(u, v):
    return (1 + u @ v / (np.linalg.norm(u) * np.linalg.norm(v))) / 2


def _alignment(ref, hypo):
    return [max(_ra(h, r) for r in ref) for h in hypo]


def _by_hand(scorer, chain, *, masked):
    """faithfulness_ww and repetition_word as the reference computes them (utils.py, score.py)."""
    emb = scorer.models.get("embedder")
    tok = scorer.models.get("token")
    steps, context = chain["steps"], chain["context"]
    s_vec = emb.encode(steps).double().numpy()
    c_vec = emb.encode(context).double().numpy()
    sent_part = _alignment(c_vec, s_vec)
    h_words = _words_reference(tok.tokenizer, tok.model, steps, masked=masked)
    c_words = _words_reference(tok.tokenizer, tok.model, context, masked=masked)
    tok_part = _alignment(np.concatenate(c_words), np.concatenate(h_words))
    faithfulness_ww = float(np.mean(sent_part + tok_part))
    best = max(max(np.mean(_alignment(h_words[j], h_words[i])) for j in range(i)) for i in range(1, len(steps)))
    return {"faithfulness_ww": faithfulness_ww, "repetition_word": 1 - best}


@pytest.mark.parametrize("mode", ["parlai", "paper"])
def test_token_scores_match_the_hand_computation(tiny, mode):
    scorer = _scorer(tiny, mode)
    table = scorer.score(CHAINS, ["faithfulness_ww", "repetition_word"])
    for row, chain in enumerate(CHAINS):
        want = _by_hand(scorer, chain, masked=mode == "paper")
        for name, value in want.items():
            assert table[name][row] == pytest.approx(value, abs=1e-6), (mode, chain["id"], name)
    if mode == "parlai":  # the padding matters here, far above rounding (1e-9), so the test tells them apart
        masked = _by_hand(scorer, CHAINS[0], masked=True)
        assert max(abs(table[n][0] - v) for n, v in masked.items()) > 1e-5


@pytest.mark.parametrize("mode", ["parlai", "paper"])
def test_token_scores_do_not_depend_on_the_other_chains(tiny, mode):
    """Padding is the chain's own: a chain scores the same alone, in any block, in any order,
    and with the output cache warm (the cache keys carry the padded width)."""
    scorer = _scorer(tiny, mode)
    names = ["faithfulness_ww", "repetition_word"]
    together = scorer.score(CHAINS, names)
    alone = [scorer.score([c], names) for c in CHAINS]
    scorer.clear_cache()
    reversed_ = scorer.score(CHAINS[::-1], names)
    for row in range(len(CHAINS)):
        for name in names:
            v = together[name][row]
            assert alone[row][name][0] == pytest.approx(v, abs=1e-9)
            assert reversed_[name][len(CHAINS) - 1 - row] == pytest.approx(v, abs=1e-9)


def test_shared_step_texts_get_one_vector_per_width(tiny):
    """One step text in two chains whose longest steps differ runs once per width in parlai mode
    (its vectors differ), once in paper mode."""
    short = {"id": "s", "context": ["A cat."], "steps": ["The cat sat.", "Yes."]}
    long_ = {"id": "l", "context": ["A cat."], "steps": ["The cat sat.", "It was on the mat, sitting there all day."]}
    for mode, runs in (("parlai", 2), ("paper", 1)):
        scorer = _scorer(tiny, mode)
        prepared = scorer.prepare([roscoe.chains.coerce(c, 0) for c in (short, long_)], ["repetition_word"])
        items = [i for i in prepared.plan.tokens.items if i[0] == "The cat sat."]
        assert len(items) == runs, (mode, items)
