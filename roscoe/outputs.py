"""What the model passes give for one block: one entry per unique item of the plan's work
lists, shared by the plan's indices, the formulas and the per-step details."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class PassOutputs:
    """Model outputs of one block, indexed as the plan's unique lists (``Plan.sentences``,
    ``tokens``, ``pairs``, ``lm_texts``, ``grammar_texts``); None where no pass ran."""

    sentences: torch.Tensor | None = None       # (sentences, d) unit rows, fp32
    tokens: list[torch.Tensor] | None = None    # per token item, (its tokens, d) unit rows, fp32
    contradiction: torch.Tensor | None = None   # per NLI pair, P(contradiction), float64
    perplexity: torch.Tensor | None = None      # per LM text, float64
    lm_tokens: torch.Tensor | None = None       # per LM text, how many tokens were scored, int64
    acceptability: torch.Tensor | None = None   # per grammar text, P(acceptable), float64

    def on(self, device, dtype) -> "PassOutputs":
        """The tensors moved to ``device``, floating ones in ``dtype`` (token matrices stay on
        the host: a group gathers its own share)."""
        moved = {}
        for f in fields(self):
            v = getattr(self, f.name)
            moved[f.name] = v.to(device, dtype if v.is_floating_point() else None) if torch.is_tensor(v) else v
        return PassOutputs(**moved)

    def sentence_width(self) -> int:
        return 0 if self.sentences is None else int(self.sentences.shape[1])

    def token_width(self) -> int:
        """The width of the token vectors (0 without any)."""
        return next((m.shape[1] for m in self.tokens if m.ndim == 2), 0) if self.tokens else 0
