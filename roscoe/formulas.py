"""The ROSCOE formulas, one function per score, over the model outputs of one chain.

Inputs are unit-normalised embeddings (cosines are plain dot products), NLI contradiction
probabilities, perplexities and acceptability probabilities; see ``ChainInputs``.  Every
function returns ``(value, reason)``: a float, or NaN with a machine-readable reason from
``REASONS``.  ``mode`` is ``"paper"`` (the paper's equations) or ``"parlai"`` (the
reference implementation's numbers, quirks included); every formula, in both modes, is written
out in docs/formulas.md.  ``roscoe.batched`` computes the same for a whole block at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

NAN = float("nan")
PAPER, PARLAI = "paper", "parlai"
MODES = (PAPER, PARLAI)

REASONS = {
    "empty_hypothesis": "the chain has no steps",
    "empty_context": "the context has no sentences",
    "no_reference": "the chain has no reference",
    "empty_reference": "the reference has no steps",
    "too_few_steps": "the score compares pairs of steps and the chain has fewer than 2",
    "no_tokens": "no usable token on one side",
    "empty_text": "a text gives 0 model tokens",
    "non_finite": "a model or formula gave NaN or inf",
    "reference_raises": "the reference implementation raises on this input",
    "input_error": "the input line failed validation",
    "model_unavailable": "the preset has no model for a slot this score needs",
    "too_long": "the chain is over the scorer's size limits (max_items, max_chars); it was not scored",
    "model_error": "a model or formula raised on this chain alone; the error is in the run's warnings and meta file",
    "over_memory": "the chain's formula tensors alone need more than the scorer's memory budget (max_memory)",
}

Scored = tuple[float, "str | None"]  # a value, or NaN with its reason

FORMULAS: dict = {}  # score name -> its per-chain formula


def formula(fn):
    """Register ``fn`` as the per-chain formula of the score of the same name."""
    FORMULAS[fn.__name__] = fn
    return fn


@dataclass
class ChainInputs:
    """Model outputs for one chain.  Shapes: N steps, T context sentences, K reference steps.

    Embedding matrices are unit rows (float64); token lists hold one (m, d) unit matrix per
    step or context sentence.  ``con_context[t, i] = P_con(s_t => h_i)``;
    ``con_steps[a, b] = P_con(h_a => h_b)`` (only a < b is needed in paper mode).
    """

    n_steps: int
    n_context: int
    n_reference: int | None = None  # None: no reference at all
    steps: torch.Tensor | None = None
    context: torch.Tensor | None = None
    reference: torch.Tensor | None = None
    chain_steps: torch.Tensor | None = None  # E(h)
    chain_context: torch.Tensor | None = None  # E(s)
    chain_reference: torch.Tensor | None = None  # E(r)
    step_tokens: list[torch.Tensor] | None = None
    context_tokens: list[torch.Tensor] | None = None
    con_context: torch.Tensor | None = None
    con_steps: torch.Tensor | None = None
    step_ppl: torch.Tensor | None = None
    step_lm_tokens: torch.Tensor | None = None
    chain_ppl: float | None = None
    chain_lm_tokens: int | None = None
    step_acc: torch.Tensor | None = None
    details: dict = field(default_factory=dict)


def ra(cos):
    """The paper's r-align: cosine mapped to [0, 1].  A cosine of unit vectors rounded in fp32
    can pass 1 by ~1e-7; it is clamped, so every score stays within its documented range."""
    return (1.0 + _clamp(cos)) / 2.0


def _clamp(cos):
    return cos.clamp(-1.0, 1.0) if torch.is_tensor(cos) else min(1.0, max(-1.0, cos))


# Rows of x per step of ``_align``: bounds the (rows x |Y|) cosine matrix of a long chain's
# tokens (2**22 float64 values: 32 MB).
ALIGN_CHUNK_VALUES = 2**22


def _finite(value: float) -> Scored:
    if value is None or not math.isfinite(value):
        return NAN, "non_finite"
    return float(value), None


def _align(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """align(x_i -> Y) for every row of x: max over Y of r-align."""
    step = max(1, ALIGN_CHUNK_VALUES // max(1, y.shape[0]))
    if x.shape[0] <= step:
        return ra((x @ y.T).max(dim=1).values)
    return torch.cat([ra((x[a:a + step] @ y.T).max(dim=1).values) for a in range(0, x.shape[0], step)])


def _mean_align(x: torch.Tensor, y: torch.Tensor, mode: str, empty_reason: str):
    """MA(X -> Y), with the reference's 0.0 for an empty side in parlai mode."""
    if x.shape[0] == 0 or y.shape[0] == 0:
        return (0.0, None) if mode == PARLAI else (NAN, empty_reason)
    return float(_align(x, y).mean()), None


def _no_hypothesis(c: ChainInputs) -> Scored | None:
    return (NAN, "empty_hypothesis") if c.n_steps == 0 else None


def _reference_state(c: ChainInputs) -> str | None:
    if c.n_reference is None:
        return "no_reference"
    if c.n_reference == 0:
        return "empty_reference"
    return None


# ---------------------------------------------------------------- semantic alignment


@formula
def faithfulness(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    v, why = _mean_align(c.steps, c.context, mode, "empty_context")
    if why is None and c.n_context:
        al = _align(c.steps, c.context)
        c.details["faithfulness_step_alignment"] = al.tolist()
        c.details["faithfulness_worst_step"] = int(al.argmin())
    return _finite(v) if why is None else (v, why)


@formula
def faithfulness_ww(c: ChainInputs, mode: str = PAPER) -> Scored:
    """Step alignments and token alignments to the context, averaged together over N + M."""
    if (r := _no_hypothesis(c)) is not None:
        return r
    if c.n_context == 0:
        return (0.0, None) if mode == PARLAI else (NAN, "empty_context")
    step_part = _align(c.steps, c.context)
    h_tok = _cat(c.step_tokens)
    s_tok = _cat(c.context_tokens)
    if h_tok.shape[0] and s_tok.shape[0]:
        tok_part = _align(h_tok, s_tok)
    elif h_tok.shape[0] and mode == PAPER:
        return NAN, "no_tokens"
    else:
        # parlai mode, or no step tokens at all: a token with nothing to align to counts 0.
        tok_part = torch.zeros(h_tok.shape[0], dtype=step_part.dtype)
    total = float(step_part.sum() + tok_part.sum())
    return _finite(total / (step_part.shape[0] + tok_part.shape[0]))


@formula
def informativeness_step(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    a, why_a = _mean_align(c.context, c.steps, mode, "empty_context")
    b, why_b = _mean_align(c.steps, c.context, mode, "empty_context")
    if why_a or why_b:
        return NAN, why_a or why_b
    return _finite(0.5 * (a + b))


def _token_ma(hi: torch.Tensor, hj: torch.Tensor) -> float:
    return float(_align(hi, hj).mean())


@formula
def repetition_word(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    if c.n_steps < 2:
        return (1.0, None) if mode == PARLAI else (NAN, "too_few_steps")
    toks = c.step_tokens
    worst, pair, seen = (0.0 if mode == PARLAI else -math.inf), None, False
    for i in range(1, c.n_steps):
        for j in range(i):
            if toks[i].shape[0] == 0 or toks[j].shape[0] == 0:
                continue  # parlai: such a pair contributes 0, which never beats the running max
            seen = True
            v = _token_ma(toks[i], toks[j])
            if v > worst:
                worst, pair = v, (j, i)
    if not seen and mode == PAPER:
        return NAN, "no_tokens"
    if pair is not None:
        c.details["repetition_word_pair"] = list(pair)
    return _finite(1.0 - worst)


@formula
def reasoning_alignment(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    ref = _reference_state(c)
    if ref == "no_reference":
        return NAN, ref
    v, why = _mean_align(c.steps, c.reference, mode, "empty_reference")
    return _finite(v) if why is None else (v, why)


def _needs_ref_and_context(c: ChainInputs, mode: str, *, needs_context: bool) -> Scored | None:
    if (r := _no_hypothesis(c)) is not None:
        return r
    ref = _reference_state(c)
    if ref == "no_reference":
        return NAN, ref
    if ref == "empty_reference":
        return NAN, ("reference_raises" if mode == PARLAI else ref)
    if needs_context and c.n_context == 0:
        return NAN, ("reference_raises" if mode == PARLAI else "empty_context")
    return None


@formula
def external_hallucination(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _needs_ref_and_context(c, mode, needs_context=True)) is not None:
        return r
    miss = (1 - _align(c.steps, c.reference)) * (1 - _align(c.steps, c.context))
    c.details["external_hallucination_worst_step"] = int(miss.argmax())
    return _finite(1.0 - float(miss.max()))


@formula
def redundancy(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _needs_ref_and_context(c, mode, needs_context=False)) is not None:
        return r
    al = _align(c.steps, c.reference)
    c.details["redundancy_worst_step"] = int(al.argmin())
    return _finite(float(al.min()))


@formula
def common_sense_error(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _needs_ref_and_context(c, mode, needs_context=True)) is not None:
        return r
    miss = (1 - _align(c.reference, c.steps)) * (1 - _align(c.reference, c.context))
    return _finite(1.0 - float(miss.max()))


@formula
def missing_step(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _needs_ref_and_context(c, mode, needs_context=False)) is not None:
        return r
    al = _align(c.reference, c.steps)
    c.details["missing_step_worst_reference_step"] = int(al.argmin())
    return _finite(float(al.min()))


@formula
def semantic_coverage_step(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    ref = _reference_state(c)
    if ref == "no_reference" or (ref and mode == PAPER):
        return NAN, ref
    if c.n_context == 0 and mode == PAPER:
        return NAN, "empty_context"
    a, _ = _mean_align(c.reference, c.context, mode, "empty_context")
    b, _ = _mean_align(c.steps, c.context, mode, "empty_context")
    c.details["semantic_coverage_step_distance"] = abs(a - b)
    return _finite(1.0 - abs(a - b))


# ---------------------------------------------------------------- semantic similarity


def _chain_similarity(h: torch.Tensor, x: torch.Tensor, mode: str) -> Scored:
    v = ra(float(h @ x))
    return _finite((1.0 + v) / 2.0 if mode == PARLAI else v)


@formula
def informativeness_chain(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    if c.n_context == 0 and mode == PAPER:
        return NAN, "empty_context"
    return _chain_similarity(c.chain_steps, c.chain_context, mode)


@formula
def semantic_coverage_chain(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    ref = _reference_state(c)
    if ref == "no_reference" or (ref and mode == PAPER):
        return NAN, ref
    return _chain_similarity(c.chain_steps, c.chain_reference, mode)


def _lower_pairs(n: int):
    """Index tensors (i, j) for every i > j: the later step i and each earlier step j."""
    i, j = torch.tril_indices(n, n, offset=-1)
    return i, j


@formula
def repetition_step(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    if c.n_steps < 2:
        return (1.0, None) if mode == PARLAI else (NAN, "too_few_steps")
    i, j = _lower_pairs(c.n_steps)
    cos = (c.steps[i] * c.steps[j]).sum(dim=1)
    k = int(cos.argmax())
    c.details["repetition_step_pair"] = [int(j[k]), int(i[k])]
    best = _clamp(float(cos[k]))
    return _finite((1.0 - best) / 4.0 if mode == PARLAI else (1.0 - best) / 2.0)


# ---------------------------------------------------------------- logical inference


@formula
def discourse_representation(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    if c.n_context == 0:
        return NAN, ("reference_raises" if mode == PARLAI else "empty_context")
    p = c.con_context
    k = int(p.argmax())
    c.details["discourse_representation_pair"] = [k // p.shape[1], k % p.shape[1]]
    c.details["step_max_contradiction_with_context"] = p.max(dim=0).values.tolist()
    return _finite(1.0 - float(p.max()))


@formula
def coherence_step_vs_step(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    p = c.con_steps
    if mode == PARLAI:
        k = int(p.argmax())
        c.details["coherence_step_vs_step_pair"] = [k // p.shape[1], k % p.shape[1]]
        return _finite(1.0 - float(p.max()))
    if c.n_steps < 2:
        return NAN, "too_few_steps"
    later, earlier = _lower_pairs(c.n_steps)
    vals = p[earlier, later]
    k = int(vals.argmax())
    c.details["coherence_step_vs_step_pair"] = [int(earlier[k]), int(later[k])]
    return _finite(1.0 - float(vals[k]))


# ---------------------------------------------------------------- language coherence


def _ppl_guard(c: ChainInputs) -> Scored | None:
    if (r := _no_hypothesis(c)) is not None:
        return r
    if bool((c.step_lm_tokens == 0).any()):
        return NAN, "empty_text"
    return None


@formula
def perplexity_step(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _ppl_guard(c)) is not None:
        return r
    ppl, n = c.step_ppl, c.step_lm_tokens.to(c.step_ppl.dtype)
    c.details["step_perplexity"] = ppl.tolist()
    c.details["perplexity_worst_step"] = int(ppl.argmax())
    if mode == PARLAI:
        return _finite(float(n.sum() / (n * ppl).sum()))
    return _finite(c.n_steps / float(ppl.sum()))


@formula
def perplexity_chain(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    if not c.chain_lm_tokens:
        return NAN, "empty_text"
    return _finite(1.0 / c.chain_ppl)


@formula
def perplexity_step_max(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _ppl_guard(c)) is not None:
        return r
    return _finite(1.0 / float(c.step_ppl.max()))


@formula
def grammar_step(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    c.details["step_acceptability"] = c.step_acc.tolist()
    c.details["grammar_worst_step"] = int(c.step_acc.argmin())
    return _finite(float(c.step_acc.mean()))


@formula
def grammar_step_max(c: ChainInputs, mode: str = PAPER) -> Scored:
    if (r := _no_hypothesis(c)) is not None:
        return r
    return _finite(float(c.step_acc.min()))


def _cat(mats: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(mats, dim=0) if mats else torch.zeros(0, 1, dtype=torch.float64)
