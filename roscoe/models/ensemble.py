"""A classifier made of several members over the same input: the mean of their class
probabilities, with an optional per-class log-offset (a decision threshold folded in).

The lite grammar model is one: the members of a cross-validation, whose averaged probabilities
are steadier than any one member's (tools/lite_experiments.md).  It is registered with the
transformers Auto classes, so a saved ensemble loads like any other sequence classifier and its
``logits`` feed a softmax exactly as a single model's do.
"""
from __future__ import annotations

import torch
import transformers
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

MODEL_TYPE = "roscoe-ensemble"


class EnsembleConfig(transformers.PretrainedConfig):
    model_type = MODEL_TYPE

    def __init__(self, member: dict | None = None, members: int = 1, log_offset: list[float] | None = None, **kw):
        super().__init__(**kw)
        self.member = member or {}
        self.members = int(members)
        # added to the log of the mean probabilities: softmax of the result then crosses 0.5
        # where the mean probability crosses the folded threshold
        self.log_offset = list(log_offset) if log_offset is not None else None

    def member_config(self) -> transformers.PretrainedConfig:
        return transformers.AutoConfig.for_model(**self.member)

    # what the benchmark's FLOP count and the encoders' length limit read off a config
    @property
    def hidden_size(self) -> int:
        return self.member_config().hidden_size

    @property
    def num_hidden_layers(self) -> int:
        return self.member_config().num_hidden_layers * self.members

    @property
    def max_position_embeddings(self) -> int:
        return self.member_config().max_position_embeddings


class EnsembleForSequenceClassification(transformers.PreTrainedModel):
    config_class = EnsembleConfig
    base_model_prefix = "members"

    def __init__(self, config: EnsembleConfig):
        super().__init__(config)
        cfg = config.member_config()
        # the dtype the ensemble is being built in (from_pretrained(dtype=...) sets it), not the
        # one the members were saved in
        self.members = nn.ModuleList(transformers.AutoModelForSequenceClassification.from_config(
            cfg, dtype=torch.get_default_dtype()) for _ in range(config.members))
        self.post_init()

    def _init_weights(self, module):  # every weight comes from the members' checkpoints
        pass

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **_):
        probs = torch.stack([torch.softmax(m(input_ids=input_ids, attention_mask=attention_mask,
                                             token_type_ids=token_type_ids).logits.float(), dim=-1)
                             for m in self.members]).mean(0)
        logits = probs.log()
        if self.config.log_offset is not None:
            logits = logits + torch.tensor(self.config.log_offset, dtype=logits.dtype, device=logits.device)
        return SequenceClassifierOutput(logits=logits)


def threshold_offset(threshold: float) -> list[float]:
    """The log-offset that moves the 2-class decision from P(class 1) >= ``threshold`` to >= 0.5:
    softmax([log p0, log p1 - logit(t)]) gives class 1 at least 0.5 exactly when p1 >= t."""
    import math

    return [0.0, -math.log(threshold / (1 - threshold))]


def build(members: list[nn.Module], log_offset: list[float] | None = None) -> EnsembleForSequenceClassification:
    """An ensemble of the given (already trained) members, which it takes over, not copies."""
    first = members[0].config
    config = EnsembleConfig(member=first.to_dict(), members=len(members), log_offset=log_offset,
                            id2label=first.id2label, label2id=first.label2id)
    with torch.device("meta"):  # a shell only: the trained members themselves go in below
        model = EnsembleForSequenceClassification(config)
    model.members = nn.ModuleList(members)
    return model.eval()


transformers.AutoConfig.register(MODEL_TYPE, EnsembleConfig)
transformers.AutoModelForSequenceClassification.register(EnsembleConfig, EnsembleForSequenceClassification)
