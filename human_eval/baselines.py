"""Baseline scores computed beside ROSCOE, reference-free: the chain (steps joined with " ")
against the context (sentences joined with " "), as in the paper's baseline inputs."""
from __future__ import annotations

import math

import numpy as np
import torch

BASELINES = ("rouge_l", "bertscore_f1")


def _texts(chains) -> tuple[list[str], list[str]]:
    hyp = [" ".join(c["steps"]) if isinstance(c["steps"], list) else c["steps"] for c in chains]
    ctx = [" ".join(c["context"]) if isinstance(c["context"], list) else c["context"] for c in chains]
    return hyp, ctx


def rouge_l(chains) -> np.ndarray:
    """ROUGE-L F-measure (the ``rouge-score`` package, no stemming); NaN for an empty side."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    out = []
    for h, c in zip(*_texts(chains)):
        out.append(scorer.score(c, h)["rougeL"].fmeasure if h.strip() and c.strip() else math.nan)
    return np.array(out, dtype=float)


def bertscore_f1(chains, token_model) -> np.ndarray:
    """BERTScore-style F1 with the scorer's token model: greedy cosine matching of contextual
    token vectors (no idf, no baseline rescaling), chain string against context string."""
    hyp, ctx = _texts(chains)
    unique = list(dict.fromkeys(t for t in hyp + ctx if t.strip()))
    vecs = dict(zip(unique, token_model.encode(unique, drop="special")))
    out = []
    for h, c in zip(hyp, ctx):
        a, b = vecs.get(h), vecs.get(c)
        if a is None or b is None or not len(a) or not len(b):
            out.append(math.nan)
            continue
        sim = a.float() @ b.float().T
        p, r = float(sim.max(dim=1).values.mean()), float(sim.max(dim=0).values.mean())
        out.append(2 * p * r / (p + r) if p + r > 0 else math.nan)
    return np.array(out, dtype=float)


def compute(chains, scorer) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        return {"rouge_l": rouge_l(chains), "bertscore_f1": bertscore_f1(chains, scorer.models.get("token"))}
