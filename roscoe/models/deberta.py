"""A leaner disentangled-attention bias for DeBERTa-v2/v3 (the parlai and paper NLI model).

The transformers implementation projects all 2 x 256 relative-position embeddings in every
layer, copies the projections once per batch row (``repeat``), multiplies every query by all
512 of them and gathers the few it needs.  For a sequence of L <= 129 tokens only the 2L - 1
distances -(L-1)..L-1 occur, and below the bucketing threshold each maps to its own embedding.
So this version projects just those rows, multiplies per head with no per-row copies, and
gathers from a (L, 2L - 1) product: the same sums, on a fraction of the memory traffic.
Longer batches, or a configuration it does not recognise, take the original code path.
"""
from __future__ import annotations

import types

import torch


def _fits(attn, length: int) -> bool:
    """Whether every relative distance of a length-``length`` sequence is its own embedding row."""
    span = attn.pos_ebd_size
    if length > span:
        return False
    if attn.position_buckets > 0:  # log buckets start past half the bucket count
        return length - 1 <= attn.position_buckets // 2
    return True


def _bias(self, query_layer, key_layer, relative_pos, rel_embeddings, scale_factor):
    length = query_layer.size(-2)
    if key_layer.size(-2) != length or not _fits(self, length):
        return self._roscoe_full_bias(query_layer, key_layer, relative_pos, rel_embeddings, scale_factor)
    heads = self.num_attention_heads
    rows, d = query_layer.size(0) // heads, query_layer.size(-1)
    span = self.pos_ebd_size
    # distances -(length-1)..(length-1): embedding rows span-(length-1) .. span+(length-1)
    rel = rel_embeddings[span - length + 1: span + length].unsqueeze(0)
    width = rel.size(1)
    # index of the distance i - j for query i and key j, in the sliced rows
    pos = torch.arange(length, device=query_layer.device)
    index = (pos[:, None] - pos[None, :] + length - 1).expand(heads, rows, length, length)
    scale = torch.sqrt(torch.tensor(d, dtype=torch.float) * scale_factor)

    def per_head(states, proj):
        """(heads, rows, length, width): every token of every row against the used positions."""
        p = self.transpose_for_scores(proj(rel), heads)  # (heads, width, d)
        s = states.view(rows, heads, length, d).transpose(0, 1).reshape(heads, rows * length, d)
        return torch.bmm(s, p.transpose(-1, -2)).view(heads, rows, length, width)

    score = 0
    if "c2p" in self.pos_att_type:
        proj = self.key_proj if self.share_att_key else self.pos_key_proj
        c2p = torch.gather(per_head(query_layer, proj), -1, index)  # [h, b, i, j]: q_i . k_pos(i - j)
        score = score + c2p / scale.to(dtype=c2p.dtype)
    if "p2c" in self.pos_att_type:
        proj = self.query_proj if self.share_att_key else self.pos_query_proj
        # [h, b, j, i]: k_j . q_pos(i - j), then i and j swapped into place
        p2c = torch.gather(per_head(key_layer, proj), -1, index.transpose(-1, -2)).transpose(-1, -2)
        score = score + p2c / scale.to(dtype=p2c.dtype)
    if not torch.is_tensor(score):
        return score
    return score.transpose(0, 1).reshape(rows * heads, length, length)


def lean_relative_attention(model) -> int:
    """Give every DeBERTa-v2 attention layer of ``model`` the lean bias; returns how many.

    Only these model instances change (bound methods), never the transformers class.
    """
    try:
        from transformers.models.deberta_v2.modeling_deberta_v2 import DisentangledSelfAttention
    except ImportError:  # pragma: no cover - transformers without DeBERTa-v2
        return 0
    patched = 0
    for module in model.modules():
        if isinstance(module, DisentangledSelfAttention) and getattr(module, "relative_attention", False):
            if not hasattr(module, "_roscoe_full_bias"):
                module._roscoe_full_bias = module.disentangled_attention_bias
                module.disentangled_attention_bias = types.MethodType(_bias, module)
            patched += 1
    return patched


def full_relative_attention(model) -> int:
    """Undo ``lean_relative_attention``: the transformers code path again (the naive baseline)."""
    restored = 0
    for module in model.modules():
        full = module.__dict__.pop("_roscoe_full_bias", None)
        if full is not None:
            module.disentangled_attention_bias = full
            restored += 1
    return restored
