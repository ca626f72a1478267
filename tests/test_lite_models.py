"""The lite preset's own NLI and grammar models, as shipped, on hand-written cases."""
import numpy as np
import pytest

from roscoe.models import lite

from .conftest import gsm8k_chains

# (grammatical, ungrammatical): agreement, word order, missing or doubled words, tense.
MINIMAL_PAIRS = [
    ("The dogs are barking loudly.", "The dogs is barking loudly."),
    ("She has finished her homework.", "She have finished her homework."),
    ("He went to the store yesterday.", "He goed to the store yesterday."),
    ("They are playing in the park.", "They playing are in the park."),
    ("I would like a cup of tea.", "I would like a cup tea of."),
    ("The book is on the table.", "The book on the table is the."),
    ("We saw three birds in the garden.", "We saw three bird in the garden."),
    ("Tom bought 5 apples and ate 2.", "Tom bought 5 apples and ate and 2."),
    ("The answer is 18 dollars.", "The answer are 18 dollars."),
    ("She sells the remaining eggs at the market.", "She sell the remaining eggs at market the."),
    ("John gave Mary a book.", "John gave Mary book a."),
    ("Each box contains twelve pencils.", "Each box contain twelve pencils."),
    ("The children were tired after school.", "The children was tired after school."),
    ("If it rains, the ground gets wet.", "If it rains, the ground get wet."),
    ("He does not like spinach.", "He do not likes spinach."),
    ("There are four people in the car.", "There is four people in the car."),
    ("Mary has written two letters.", "Mary has wrote two letters."),
    ("The cat chased the mouse.", "The cat the mouse chased the."),
    ("So the total cost is 40 dollars.", "So the total cost 40 dollars is is."),
    ("Who did you see at the party?", "Who you did see at the party?"),
]


@pytest.fixture(scope="module")
def models(lite_scorer):
    return lite_scorer.models.get("nli"), lite_scorer.models.get("grammar")


def test_shipped_files_are_small_and_labelled():
    for task in ("nli", "grammar"):
        size = (lite.SHIPPED / f"{task}.safetensors").stat().st_size
        assert size < 10 * 2**20, (task, size)  # the issue: a few MB, at most ~50 MB (grammar: 5 members)
    src = lite.shipped("nli")
    assert src.origin.startswith("package:roscoe-metrics==") and len(src.revision) == 12


def test_nli_contradiction(models):
    nli, _ = models
    probs = _three_way(nli, [("A man is sleeping.", "A man is awake.")])[0]
    assert probs.argmax() == nli.index and probs[nli.index] > 0.5


def test_nli_entailment(models):
    nli, _ = models
    names = {v.lower(): int(k) for k, v in nli.model.config.id2label.items()}
    probs = _three_way(nli, [("A man is playing a guitar on a stage in front of a crowd.",
                              "A man is playing an instrument.")])[0]
    assert probs.argmax() == names["entailment"]


def test_grammar_prefers_grammatical_in_minimal_pairs(models):
    _, gram = models
    good = gram.p_acceptable([g for g, _ in MINIMAL_PAIRS]).numpy()
    bad = gram.p_acceptable([b for _, b in MINIMAL_PAIRS]).numpy()
    wins = int((good > bad).sum())
    assert wins >= 17, list(zip(good.round(3), bad.round(3)))


def test_contradicting_step_lowers_self_consistency(lite_scorer):
    base = {"id": "a", "context": "Tom has 3 apples. He buys 4 more apples at the shop.",
            "steps": ["Tom has 3 apples.", "He buys 4 more apples.", "So Tom has 7 apples."]}
    bad = dict(base, id="b", steps=base["steps"][:2] + ["Tom does not have any apples."])
    t = lite_scorer.score([base, bad], ["coherence_step_vs_step"], details=True)
    assert t["coherence_step_vs_step"][1] < t["coherence_step_vs_step"][0]
    assert t.details[1]["coherence_step_vs_step_pair"][1] == 2  # the new step is the one caught


def test_step_contradicting_context_lowers_source_consistency(lite_scorer):
    chains = gsm8k_chains(4)
    bad = []
    for c in chains:
        first = c["context"].split(". ")[0].rstrip(".")
        bad.append(dict(c, id=c["id"] + "-neg", steps=[f"It is not true that {first[0].lower() + first[1:]}."]
                        + c["steps"]))
    t = lite_scorer.score(chains + bad, ["discourse_representation"])
    n = len(chains)
    lower = t["discourse_representation"][n:] < t["discourse_representation"][:n]
    assert lower.all(), t["discourse_representation"]


def test_every_lite_score_is_available(lite_scorer):
    t = lite_scorer.score(gsm8k_chains(3))
    assert not np.isnan(t.values).any(), t.reasons
    sig = str(lite_scorer.signature())
    assert "nli:roscoe-lite-nli@" in sig and "+con2(id2label)" in sig
    assert "gram:roscoe-lite-cola@" in sig and "+acc1(id2label)" in sig


def _three_way(nli, pairs):
    import torch

    enc = nli.tokenizer([p for p, _ in pairs], [h for _, h in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        return torch.softmax(nli.model(**enc).logits.float(), -1).numpy()
