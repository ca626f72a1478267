"""Low-rank adapters over a frozen encoder: used to train the lite NLI and grammar models
and to rebuild them at load time from the installed backbone plus the shipped deltas."""
from __future__ import annotations

import torch
from torch import nn

# Every linear layer of a BERT block: attention query/key/value/output, feed-forward in/out.
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")


class LoRALinear(nn.Module):
    """y = W x + b + (alpha / r) B A x, with W and b frozen and B initialised to zero."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.base = base
        self.r, self.scale = r, alpha / r
        self.A = nn.Parameter(torch.empty(r, base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.A, a=5 ** 0.5)
        self.dropout = nn.Dropout(dropout)
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)

    def forward(self, x):
        return self.base(x) + (self.dropout(x) @ self.A.T @ self.B.T) * self.scale

    def delta(self) -> torch.Tensor:
        return (self.B @ self.A) * self.scale


def _target_modules(encoder_layers):
    for i, layer in enumerate(encoder_layers):
        for name in TARGETS:
            parent = layer
            *path, leaf = name.split(".")
            for p in path:
                parent = getattr(parent, p)
            yield f"{i}.{name}", parent, leaf


def add_lora(model, r: int, alpha: float, dropout: float = 0.0) -> list[str]:
    """Freeze embeddings and encoder and wrap the encoder's linear layers; the pooler and the
    classifier stay fully trainable (they are small and shipped whole)."""
    for name, p in model.base_model.named_parameters():
        p.requires_grad_(name.startswith("pooler."))
    names = []
    for key, parent, leaf in _target_modules(model.base_model.encoder.layer):
        setattr(parent, leaf, LoRALinear(getattr(parent, leaf), r, alpha, dropout))
        names.append(key)
    return names


def export(model) -> dict[str, torch.Tensor]:
    """The trainable state to ship: LoRA factors and the head, as fp16."""
    out = {}
    for key, parent, leaf in _target_modules(model.base_model.encoder.layer):
        mod = getattr(parent, leaf)
        out[f"lora.{key}.A"] = mod.A.detach().cpu().half().contiguous()
        out[f"lora.{key}.B"] = mod.B.detach().cpu().half().contiguous()
    for name, p in model.named_parameters():
        if p.requires_grad and not name.endswith((".A", ".B")):
            out[f"head.{name}"] = p.detach().cpu().half().contiguous()
    return out


def load_trainable(model, state: dict[str, torch.Tensor]) -> None:
    """The inverse of :func:`export` on a model wrapped by :func:`add_lora`: its factors and head
    set from a shipped state, to train further from there."""
    with torch.no_grad():
        for key, parent, leaf in _target_modules(model.base_model.encoder.layer):
            mod = getattr(parent, leaf)
            mod.A.copy_(state[f"lora.{key}.A"].float())
            mod.B.copy_(state[f"lora.{key}.B"].float())
        _copy_head(model, state)


def _copy_head(model, state: dict[str, torch.Tensor]) -> None:
    """The shipped ``head.*`` parameters (pooler, classifier...) into the model, in its dtype."""
    params = dict(model.named_parameters())
    for key, value in state.items():
        if key.startswith("head."):
            params[key[len("head."):]].copy_(value.float())


def factorise(tuned, base, rank: int) -> dict[str, torch.Tensor]:
    """A fully fine-tuned encoder in the shipped format: each linear layer's change W' - W as
    its best rank-``rank`` factors (truncated SVD, split as B = U sqrt(S), A = sqrt(S) V^T, so
    alpha = rank gives scale 1 and ``A[:k], B[:, :k]`` is still the best rank-k cut), and every
    other parameter that changed (biases, LayerNorms, pooler, classifier) whole; all fp16."""
    out, linear = {}, set()
    pairs = zip(_target_modules(tuned.base_model.encoder.layer), _target_modules(base.base_model.encoder.layer))
    with torch.no_grad():
        for (key, t_parent, leaf), (_, b_parent, _) in pairs:
            delta = getattr(t_parent, leaf).weight.detach().cpu().double() - getattr(b_parent, leaf).weight.double()
            u, s, vh = torch.linalg.svd(delta, full_matrices=False)
            root = s[:rank].sqrt()
            out[f"lora.{key}.B"] = (u[:, :rank] * root).half().contiguous()
            out[f"lora.{key}.A"] = (root[:, None] * vh[:rank]).half().contiguous()
            linear.add(id(getattr(t_parent, leaf).weight))
        before = dict(base.named_parameters())
        for name, p in tuned.named_parameters():
            if id(p) in linear:
                continue
            if name not in before or not torch.equal(p.detach().cpu(), before[name]):
                out[f"head.{name}"] = p.detach().cpu().half().contiguous()
    return out


def truncate(state: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor]:
    """The first ``rank`` components of factors written by :func:`factorise`."""
    return {k: v[:rank] if k.endswith(".A") else v[:, :rank] if k.endswith(".B") else v for k, v in state.items()}


def merge(model, state: dict[str, torch.Tensor], *, r: int, alpha: float, temperature: float = 1.0) -> None:
    """Fold shipped adapters into a plain model in place: W += (alpha/r) B A; the head is
    loaded and divided by the calibration temperature (softmax(z / T) needs no extra layer)."""
    scale = alpha / r
    with torch.no_grad():
        for key, parent, leaf in _target_modules(model.base_model.encoder.layer):
            lin = getattr(parent, leaf)
            a, b = state[f"lora.{key}.A"].float(), state[f"lora.{key}.B"].float()
            lin.weight += (b @ a * scale).to(lin.weight.dtype)
        _copy_head(model, state)
        if temperature != 1.0:  # a classifier's logits layer (an embedder has none)
            params = dict(model.named_parameters())
            for name in ("classifier.weight", "classifier.bias"):
                params[name].div_(temperature)
