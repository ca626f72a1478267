"""Model outputs for a plan made as the models make them, without models: fp32 unit vectors
(so a repeated text gives a cosine a hair past 1), texts with no token at all, probabilities,
perplexities and LM token counts (0 for an LM text, sometimes, as an empty text gives)."""
from __future__ import annotations

import torch

from roscoe.outputs import PassOutputs
from roscoe.plan import Plan


def random_outputs(plan: Plan, seed: int, width: int, *, empty_lm: bool = False) -> PassOutputs:
    g = torch.Generator().manual_seed(seed)

    def unit(rows):
        return torch.nn.functional.normalize(torch.randn(rows, width, generator=g), dim=-1)

    n = torch.randint(0 if empty_lm else 1, 30, (len(plan.lm_texts),), generator=g)
    return PassOutputs(
        sentences=unit(len(plan.sentences)),
        tokens=[unit(int(torch.randint(0, 4, (1,), generator=g))) for _ in plan.tokens.items],
        contradiction=torch.rand(len(plan.pairs), generator=g, dtype=torch.float64),
        perplexity=torch.exp(torch.rand(len(plan.lm_texts), generator=g, dtype=torch.float64) * 8),
        lm_tokens=n,
        acceptability=torch.rand(len(plan.grammar_texts), generator=g, dtype=torch.float64),
    )
