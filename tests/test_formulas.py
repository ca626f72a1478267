"""Every formula against numbers worked out by hand (spec §3.3), in both modes, plus the
degenerate inputs of §3.4 with their reasons."""
import math

import pytest
import torch

from roscoe import formulas as F
from roscoe.formulas import PAPER, PARLAI, ChainInputs

S2 = math.sqrt(2)
# ra(cos 45 deg) = (1 + 1/sqrt2)/2
RA45 = (1 + 1 / S2) / 2  # 0.853553...


def unit(*rows):
    t = torch.tensor(rows, dtype=torch.float64)
    return t / t.norm(dim=1, keepdim=True)


def toy(**kw):
    """The spec's toy chain: s1=(1,0), s2=(0,1); h1=(1,0), h2=(1,1); r1=(0,1);
    E(h)=(1,1), E(s)=(1,0), E(r)=(0,1)."""
    c = ChainInputs(
        n_steps=2, n_context=2, n_reference=1,
        steps=unit([1, 0], [1, 1]), context=unit([1, 0], [0, 1]), reference=unit([0, 1]),
        chain_steps=unit([1, 1])[0], chain_context=unit([1, 0])[0], chain_reference=unit([0, 1])[0],
    )
    for k, v in kw.items():
        setattr(c, k, v)
    return c


# value = by hand from the toy vectors
HAND = {
    # MA(h->s) = (ra(1) + ra(1/sqrt2)) / 2 = (1 + 0.853553)/2
    "faithfulness": ((1 + RA45) / 2, (1 + RA45) / 2),
    # MA(s->h) = (1 + 0.853553)/2, MA(h->s) the same, mean of both
    "informativeness_step": ((1 + RA45) / 2, (1 + RA45) / 2),
    # MA(r->s) = 1; 1 - |1 - 0.926777|
    "semantic_coverage_step": ((1 + RA45) / 2, (1 + RA45) / 2),
    # MA(h->r) = (ra(0) + ra(1/sqrt2))/2 = (0.5 + 0.853553)/2
    "reasoning_alignment": ((0.5 + RA45) / 2, (0.5 + RA45) / 2),
    # min(ra(0), ra(1/sqrt2))
    "redundancy": (0.5, 0.5),
    # 1 - max[(1-0.5)(1-1), (1-0.853553)(1-0.853553)] = 1 - 0.146447^2
    "external_hallucination": (1 - (1 - RA45) ** 2, 1 - (1 - RA45) ** 2),
    # r1 -> h: max(ra(0), ra(1/sqrt2))
    "missing_step": (RA45, RA45),
    # r1 aligns perfectly with s2: (1 - 0.853553)(1 - 1) = 0
    "common_sense_error": (1.0, 1.0),
    # ra(cos45) in paper; (1 + ra)/2 in parlai
    "informativeness_chain": (RA45, (1 + RA45) / 2),
    "semantic_coverage_chain": (RA45, (1 + RA45) / 2),
    # 1 - ra(cos45) = (1 - 1/sqrt2)/2 in paper; (1 - ra)/2 = (1 - 1/sqrt2)/4 in parlai
    "repetition_step": ((1 - 1 / S2) / 2, (1 - 1 / S2) / 4),
}


@pytest.mark.parametrize("name", sorted(HAND))
@pytest.mark.parametrize("mode", [PAPER, PARLAI])
def test_toy_chain_by_hand(name, mode):
    value, reason = F.FORMULAS[name](toy(), mode)
    expected = HAND[name][0 if mode == PAPER else 1]
    assert reason is None
    assert value == pytest.approx(expected, abs=1e-12)


def test_spec_printed_values():
    # The spec's table, to 6 decimals, as an independent check of the hand formulas above.
    printed = {"faithfulness": 0.926777, "reasoning_alignment": 0.676777, "external_hallucination": 0.978553,
               "missing_step": 0.853553, "informativeness_chain": 0.853553, "repetition_step": 0.146447}
    for name, v in printed.items():
        assert F.FORMULAS[name](toy(), PAPER)[0] == pytest.approx(v, abs=1e-6)


def test_faithfulness_ww_token_mean():
    # Step alignments (1, 0.853553) and 3 tokens aligned at 0.9, 0.8, 0.7: one mean over 5.
    cosines = [0.8, 0.6, 0.4]  # ra = 0.9, 0.8, 0.7
    ctx_tok = unit([1, 0, 0])
    toks = [torch.tensor([[c, math.sqrt(1 - c * c), 0.0]], dtype=torch.float64) for c in cosines]
    c = toy(steps=unit([1, 0, 0], [1, 1, 0]), context=unit([1, 0, 0], [0, 1, 0]),
            step_tokens=[toks[0], torch.cat(toks[1:])], context_tokens=[ctx_tok])
    for mode in (PAPER, PARLAI):
        v, why = F.faithfulness_ww(c, mode)
        assert why is None
        assert v == pytest.approx((1 + RA45 + 0.9 + 0.8 + 0.7) / 5, abs=1e-12)  # 0.850711
    assert F.faithfulness_ww(c, PAPER)[0] == pytest.approx(0.850711, abs=1e-6)


def test_repetition_word_by_hand():
    # step 0 tokens: a, b; step 1 tokens: a (identical), c (orthogonal to a, cos(c,b)=0.6)
    a = [1.0, 0.0, 0.0]
    b = [0.0, 1.0, 0.0]
    cvec = [0.0, 0.6, 0.8]
    t0 = torch.tensor([a, b], dtype=torch.float64)
    t1 = torch.tensor([a, cvec], dtype=torch.float64)
    c = ChainInputs(2, 1, step_tokens=[t0, t1])
    # MA_tok(h1 -> h0) = (ra(1) + ra(0.6)) / 2 = (1 + 0.8)/2 = 0.9
    for mode in (PAPER, PARLAI):
        v, why = F.repetition_word(c, mode)
        assert why is None and v == pytest.approx(1 - 0.9, abs=1e-12)


def test_repetition_word_tokenless_pairs():
    empty = torch.zeros(0, 3, dtype=torch.float64)
    c = ChainInputs(2, 1, step_tokens=[empty, torch.eye(3, dtype=torch.float64)[:1]])
    v, why = F.repetition_word(c, PAPER)
    assert math.isnan(v) and why == "no_tokens"
    assert F.repetition_word(c, PARLAI) == (1.0, None)  # Q6: running max starts at 0


def test_coherence_by_hand():
    # P(h1=>h2)=0.2, P(h2=>h1)=0.7, self-pairs 0.01; con[a, b] = P(h_a => h_b)
    con = torch.tensor([[0.01, 0.2], [0.7, 0.01]], dtype=torch.float64)
    c = ChainInputs(2, 1, con_steps=con)
    assert F.coherence_step_vs_step(c, PAPER) == (pytest.approx(0.8), None)
    assert F.coherence_step_vs_step(c, PARLAI) == (pytest.approx(0.3), None)
    assert c.details["coherence_step_vs_step_pair"] == [1, 0]


def test_coherence_three_steps_uses_earlier_premise_only():
    con = torch.zeros(3, 3, dtype=torch.float64)
    con[2, 0] = 0.9  # later step as premise: ignored in paper mode
    con[0, 2] = 0.4
    con[1, 2] = 0.3
    c = ChainInputs(3, 1, con_steps=con)
    assert F.coherence_step_vs_step(c, PAPER)[0] == pytest.approx(0.6)
    assert F.coherence_step_vs_step(c, PARLAI)[0] == pytest.approx(0.1)


def test_discourse_by_hand():
    con = torch.tensor([[0.1, 0.25, 0.05], [0.6, 0.2, 0.3]], dtype=torch.float64)  # T=2, N=3
    c = ChainInputs(3, 2, con_context=con)
    for mode in (PAPER, PARLAI):
        assert F.discourse_representation(c, mode) == (pytest.approx(0.4), None)
    assert c.details["discourse_representation_pair"] == [1, 0]


def lm_chain(ppl, n, chain_ppl=2.0, chain_n=4):
    return ChainInputs(len(ppl), 1, step_ppl=torch.tensor(ppl, dtype=torch.float64),
                       step_lm_tokens=torch.tensor(n), chain_ppl=chain_ppl, chain_lm_tokens=chain_n)


def test_perplexity_by_hand():
    c = lm_chain([2.0, 20.0], [1, 3])
    assert F.perplexity_step(c, PAPER)[0] == pytest.approx(2 / 22)  # N / sum PPL
    assert F.perplexity_step(c, PARLAI)[0] == pytest.approx(4 / 62)  # sum n / sum n*PPL
    for mode in (PAPER, PARLAI):
        assert F.perplexity_step_max(c, mode)[0] == pytest.approx(0.05)
        assert F.perplexity_chain(c, mode)[0] == pytest.approx(0.5)


def test_reference_unit_test_values():
    # The reference's own unit test: (PPL, n) = (2,2), (20,2), chain PPL 2.
    c = lm_chain([2.0, 20.0], [2, 2])
    for mode in (PAPER, PARLAI):
        assert F.perplexity_chain(c, mode)[0] == pytest.approx(0.5)
        assert F.perplexity_step(c, mode)[0] == pytest.approx(1 / 11)
        assert F.perplexity_step_max(c, mode)[0] == pytest.approx(0.05)


def test_perplexity_empty_text():
    c = lm_chain([2.0, 20.0], [1, 0])
    assert F.perplexity_step(c, PAPER)[1] == "empty_text"
    assert F.perplexity_step_max(c, PARLAI)[1] == "empty_text"


def test_grammar_by_hand():
    c = ChainInputs(3, 1, step_acc=torch.tensor([0.9, 0.6, 0.3], dtype=torch.float64))
    for mode in (PAPER, PARLAI):
        assert F.grammar_step(c, mode)[0] == pytest.approx(0.6)
        assert F.grammar_step_max(c, mode)[0] == pytest.approx(0.3)
    assert c.details["grammar_worst_step"] == 2


# ------------------------------------------------------------------ degenerate inputs


def one_step():
    return ChainInputs(1, 2, 1, steps=unit([1, 1]), context=unit([1, 0], [0, 1]), reference=unit([0, 1]),
                       con_steps=torch.tensor([[0.02]], dtype=torch.float64),
                       step_tokens=[unit([1, 0])], context_tokens=[unit([1, 0])])


def test_one_step():
    c = one_step()
    for name in ("repetition_step", "repetition_word", "coherence_step_vs_step"):
        assert F.FORMULAS[name](c, PAPER)[1] == "too_few_steps"
    assert F.repetition_step(c, PARLAI) == (1.0, None)
    assert F.repetition_word(c, PARLAI) == (1.0, None)
    assert F.coherence_step_vs_step(c, PARLAI)[0] == pytest.approx(0.98)  # 1 - P(h1=>h1)
    assert F.faithfulness(c, PAPER)[0] == pytest.approx(RA45)  # single step still defined


REF_BASED = ["reasoning_alignment", "external_hallucination", "redundancy", "common_sense_error",
             "missing_step", "semantic_coverage_step", "semantic_coverage_chain"]


@pytest.mark.parametrize("mode", [PAPER, PARLAI])
def test_no_reference(mode):
    c = toy(n_reference=None, reference=None, chain_reference=None)
    for name in REF_BASED:
        assert math.isnan(F.FORMULAS[name](c, mode)[0])
        assert F.FORMULAS[name](c, mode)[1] == "no_reference"


def test_empty_reference():
    empty = torch.zeros(0, 2, dtype=torch.float64)
    c = toy(n_reference=0, reference=empty, chain_reference=unit([1, -1])[0])
    for name in REF_BASED:
        assert F.FORMULAS[name](c, PAPER)[1] == "empty_reference"
    assert F.reasoning_alignment(c, PARLAI) == (0.0, None)
    assert F.semantic_coverage_step(c, PARLAI)[0] == pytest.approx(1 - (1 + RA45) / 2)  # 1 - MA(h->s)
    # E(r) is the embedding of "": a value (here orthogonal to E(h) -> ra = 0.5, parlai (1+0.5)/2)
    assert F.semantic_coverage_chain(c, PARLAI)[0] == pytest.approx(0.75)
    for name in ("external_hallucination", "redundancy", "common_sense_error", "missing_step"):
        assert F.FORMULAS[name](c, PARLAI)[1] == "reference_raises"


def test_empty_context():
    empty = torch.zeros(0, 2, dtype=torch.float64)
    c = toy(n_context=0, context=empty, chain_context=unit([0, 1])[0], step_tokens=[], context_tokens=[])
    for name in ("faithfulness", "faithfulness_ww", "informativeness_step", "informativeness_chain",
                 "semantic_coverage_step", "discourse_representation", "external_hallucination",
                 "common_sense_error"):
        assert F.FORMULAS[name](c, PAPER)[1] == "empty_context", name
    for name in ("faithfulness", "faithfulness_ww", "informativeness_step"):
        assert F.FORMULAS[name](c, PARLAI) == (0.0, None)
    assert F.semantic_coverage_step(c, PARLAI) == (1.0, None)  # both means are 0.0
    assert F.informativeness_chain(c, PARLAI)[0] == pytest.approx((1 + RA45) / 2)
    for name in ("discourse_representation", "external_hallucination", "common_sense_error"):
        assert F.FORMULAS[name](c, PARLAI)[1] == "reference_raises"
    # scores that never read the context are unaffected
    assert F.missing_step(c, PAPER)[0] == pytest.approx(RA45)


@pytest.mark.parametrize("mode", [PAPER, PARLAI])
def test_empty_hypothesis(mode):
    c = ChainInputs(0, 2, 1)
    for name, f in F.FORMULAS.items():
        v, why = f(c, mode)
        assert math.isnan(v) and why == "empty_hypothesis", name


def test_non_finite_is_reported():
    c = toy(steps=torch.tensor([[float("nan"), 0.0], [1.0, 0.0]], dtype=torch.float64))
    v, why = F.faithfulness(c, PAPER)
    assert math.isnan(v) and why == "non_finite"


def test_every_reason_is_documented():
    assert {"empty_hypothesis", "empty_context", "no_reference", "empty_reference", "too_few_steps",
            "no_tokens", "empty_text", "non_finite", "reference_raises", "input_error",
            "model_unavailable", "too_long", "over_memory", "model_error"} == set(F.REASONS)
    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    assert [r for r in F.REASONS if f"`{r}`" not in readme] == []
