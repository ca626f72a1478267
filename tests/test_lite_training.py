"""The pieces that turn a trained model into what the lite preset ships, on tiny random models."""
import math
import sys
from pathlib import Path

import pytest
import torch

from roscoe.models import ModelSet, lora

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))


def _tiny_pair():
    import transformers

    cfg = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=32, num_labels=3)
    torch.manual_seed(0)
    base = transformers.BertForSequenceClassification(cfg).eval()
    tuned = transformers.BertForSequenceClassification(cfg).eval()
    tuned.load_state_dict(base.state_dict())
    with torch.no_grad():  # a "fine-tune": every encoder weight and the head move, the embeddings do not
        for name, p in tuned.named_parameters():
            if ".embeddings." not in name:
                p.add_(0.05 * torch.randn_like(p))
    return base, tuned


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_factorised_full_rank_delta_rebuilds_the_fine_tuned_model():
    base, tuned = _tiny_pair()
    state = lora.factorise(tuned, base, rank=32)  # 32 = full rank of every 32-wide layer's delta
    assert not [k for k in state if "embeddings" in k]  # only what changed is shipped
    assert all(v.dtype == torch.float16 for v in state.values())
    rebuilt = type(base)(base.config).eval()
    rebuilt.load_state_dict(base.state_dict())
    lora.merge(rebuilt, state, r=32, alpha=32.0)
    ids = torch.randint(0, 50, (4, 12))
    want, got = _logits(tuned, ids), _logits(rebuilt, ids)
    assert torch.allclose(got, want, atol=5e-3), (got - want).abs().max()
    assert not torch.allclose(_logits(base, ids), want, atol=5e-2)  # the check can fail


def test_truncation_is_the_best_low_rank_cut():
    base, tuned = _tiny_pair()
    full = lora.factorise(tuned, base, rank=32)
    cut = lora.truncate(full, 4)
    direct = lora.factorise(tuned, base, rank=4)
    for key in direct:
        assert cut[key].shape == direct[key].shape
        assert torch.equal(cut[key], direct[key])
    # Eckart-Young: the rank-4 error of one layer is the norm of its discarded singular values
    key = "0.intermediate.dense"
    delta = (dict(tuned.named_parameters())[f"bert.encoder.layer.{key}.weight"]
             - dict(base.named_parameters())[f"bert.encoder.layer.{key}.weight"]).double()
    approx = cut[f"lora.{key}.B"].double() @ cut[f"lora.{key}.A"].double()
    s = torch.linalg.svdvals(delta)
    assert math.isclose(torch.linalg.norm(delta - approx).item(), s[4:].norm().item(), rel_tol=1e-2)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_folded_threshold_moves_the_decision_to_one_half(threshold):
    import train_lite_models as T

    before = torch.tensor([0.25, -0.5]).half()
    state = {"head.classifier.bias": before.clone()}
    T.fold_threshold(state, threshold)
    shift = state["head.classifier.bias"].float() - before.float()
    z = torch.tensor([0.0, math.log(threshold / (1 - threshold))])  # an input at exactly P(acceptable) = t
    assert abs(torch.softmax(z, 0)[1].item() - threshold) < 1e-6
    assert abs(torch.softmax(z + shift, 0)[1].item() - 0.5) < 2e-3  # fp16 bias: within its rounding


def test_gpu_runs_default_to_the_measured_larger_batches():
    assert set(ModelSet("lite", device="cuda", dtype="fp32").batch_tokens.values()) == {32768}
    cpu = ModelSet("lite", device="cpu").batch_tokens
    assert cpu["nli"] == 1024 and cpu["lm"] == 1024
    assert ModelSet("lite", device="cuda", dtype="fp32", batch_tokens={"lm": 1024}).batch_tokens["lm"] == 1024
