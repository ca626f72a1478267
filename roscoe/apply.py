"""The formulas applied to one block: the plan's indices and the model outputs -> a value or a
NaN reason per chain and score, by the batched formulas or the per-chain ones (same numbers),
and the per-step details, which come from the per-chain formulas."""
from __future__ import annotations

import numpy as np
import torch

from . import batched
from .formulas import FORMULAS, ChainInputs
from .outputs import PassOutputs
from .registry import SCORES


def ready(names, available) -> list[int]:
    """Positions in ``names`` of the scores whose models the preset has (``available(slot)``)."""
    return [k for k, name in enumerate(names) if all(available(s) for s in SCORES[name].slots)]


def batched_scores(chains, plan, out: PassOutputs, names, *, mode: str, available, device, budget=None,
                   stats: dict | None = None):
    """``(values, reasons)``: a (chains, scores) float array and a dict of NaN reasons per chain."""
    n = len(chains)
    values = np.full((n, len(names)), np.nan)
    codes = np.full((n, len(names)), -1)
    empty = np.array([len(c.steps) == 0 for c in chains], dtype=bool)
    device = torch.device(device)
    dtype = torch.float64 if device.type == "cpu" else torch.float32  # reductions: fp64 on CPU, fp32 on GPU
    counts = [(len(c.steps), len(c.context), None if c.reference is None else len(c.reference)) for c in chains]
    have = ready(names, available)
    codes[:, [k for k in range(len(names)) if k not in have]] = batched.CODES.index("model_unavailable")
    if have and not empty.all():
        v, c = batched.compute(plan.refs, counts, out, [names[k] for k in have], mode=mode, device=device,
                               dtype=dtype, nli_pairs=plan.nli_pairs, budget=budget, stats=stats)
        values[:, have] = v.numpy()
        codes[:, have] = c.numpy()
    codes[empty, :] = batched.CODES.index("empty_hypothesis")
    values[codes != -1] = np.nan
    reasons = [{names[k]: batched.CODES[codes[r, k]] for k in np.flatnonzero(codes[r] != -1)} for r in range(n)]
    return values, reasons


def per_chain_scores(chains, plan, out: PassOutputs, names, *, mode: str, available):
    """The same as ``batched_scores`` by the readable per-chain formulas, a chain at a time."""
    values = np.full((len(chains), len(names)), np.nan)
    reasons: list[dict] = []
    have = set(ready(names, available))
    for row, (chain, refs) in enumerate(zip(chains, plan.refs)):
        ci = chain_inputs(chain, refs, out)
        why: dict[str, str] = {}
        for k, name in enumerate(names):
            if ci.n_steps == 0:
                value, reason = np.nan, "empty_hypothesis"
            elif k not in have:
                value, reason = np.nan, "model_unavailable"
            else:
                value, reason = FORMULAS[name](ci, mode)
            values[row, k] = value
            if reason is not None:
                why[name] = reason
        reasons.append(why)
    return values, reasons


def details(chains, plan, out: PassOutputs, names, *, mode: str, available) -> list[dict]:
    """Per chain, the per-step diagnostics the per-chain formulas note down (worst steps,
    pairs, per-step perplexity ...)."""
    have = [names[k] for k in ready(names, available)]
    found = []
    for chain, refs in zip(chains, plan.refs):
        ci = chain_inputs(chain, refs, out)
        if ci.n_steps:
            for name in have:
                FORMULAS[name](ci, mode)
        found.append(ci.details)
    return found


def chain_inputs(chain, r, out: PassOutputs) -> ChainInputs:
    """One chain's model outputs gathered by its plan indices, in float64."""
    ci = ChainInputs(len(chain.steps), len(chain.context), None if chain.reference is None else len(chain.reference))
    if out.sentences is not None:
        def sent(idx):
            return out.sentences[idx].double()

        if r.steps:
            ci.steps = sent(r.steps)
            ci.context = sent(r.context)
        if r.reference is not None:
            ci.reference = sent(r.reference)
        if r.chain_steps is not None:
            ci.chain_steps = sent(r.chain_steps)
            ci.chain_context = sent(r.chain_context)
            if r.chain_reference is not None:
                ci.chain_reference = sent(r.chain_reference)
    if out.tokens is not None and r.tok_steps:
        ci.step_tokens = [out.tokens[i].double() for i in r.tok_steps]
        ci.context_tokens = [out.tokens[i].double() for i in r.tok_context]
    if out.contradiction is not None:
        con = out.contradiction
        if r.nli_context:
            ci.con_context = con[torch.tensor(r.nli_context)]
        if r.nli_steps is not None:
            n = ci.n_steps
            m = torch.zeros(n, n, dtype=con.dtype)
            for (a, b), p in r.nli_steps.items():
                m[a, b] = con[p]
            ci.con_steps = m
    if out.perplexity is not None and r.lm_steps:
        ci.step_ppl = out.perplexity[r.lm_steps]
        ci.step_lm_tokens = out.lm_tokens[r.lm_steps]
        ci.chain_ppl = float(out.perplexity[r.lm_chain])
        ci.chain_lm_tokens = int(out.lm_tokens[r.lm_chain])
    if out.acceptability is not None and r.gram_steps:
        ci.step_acc = out.acceptability[r.gram_steps]
    return ci
