"""Model slots, loaded lazily and once: sentence embedder, token model, NLI, causal LM, grammar."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..registry import EMBEDDER, GRAMMAR, LM, NLI, SLOTS, TOKEN
from . import lite
from .encoders import (GrammarClassifier, ModelConfigError, NLIClassifier, SentenceEmbedder, TokenEmbedder,
                       compile_unavailable)
from .lm import CausalLM
from .presets import (LITE_EMBEDDER, LITE_GRAMMAR, LITE_MINILM, LITE_NLI, LITE_SMOLLM, PACKAGE_MODELS, PRESETS, Preset,
                      SlotSpec, get as get_preset)
from .source import ModelSource, ModelUnavailable, resolve

# Default token budgets per batch (rows x padded length), measured on a 2-core CPU with the lite
# preset (benchmarks/README.md): 1,024 for every model took 77.7 s for the 200 human GSM8K chains
# against 83.6 s with the earlier 8,192 (LM 4,096); 2,048 measured the same as 1,024. Small
# batches keep a layer's activations in the core's cache.
DEFAULT_BATCH_TOKENS = {EMBEDDER: 1024, TOKEN: 1024, NLI: 1024, LM: 1024, GRAMMAR: 1024}
# On a GPU: measured on an H100 with the parlai architectures (benchmarks/README.md): 32k tokens
# gave 44.8 chains/s against 38.2 with the CPU budgets and 41.9 with 128k, at 10.7 GB peak.
CUDA_BATCH_TOKENS = {slot: 32768 for slot in DEFAULT_BATCH_TOKENS}

_CLASSES = {EMBEDDER: SentenceEmbedder, TOKEN: TokenEmbedder, NLI: NLIClassifier, LM: CausalLM,
            GRAMMAR: GrammarClassifier}
_NC_MODELS = ("facebook/roscoe-512-roberta-base",)


def resolve_device(device: str | None) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype, device: str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    table = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}; expected auto, fp32, bf16, fp16, {', '.join(AUTOCAST)}")
    return table[dtype]


DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
# fp32 weights, matrix products in the half type, norms / softmax / reductions in fp32 (torch.autocast)
AUTOCAST = {"autocast-fp16": torch.float16, "autocast-bf16": torch.bfloat16}


def resolve_precision(dtype, device: str) -> tuple[torch.dtype, torch.dtype | None]:
    """(dtype of the weights, autocast dtype or None) for a ``--dtype`` value."""
    if isinstance(dtype, str) and dtype in AUTOCAST:
        return torch.float32, AUTOCAST[dtype]
    return resolve_dtype(dtype, device), None


def source_for(spec: SlotSpec, *, allow_hub: bool) -> ModelSource:
    from .encoders import _quiet_transformers

    _quiet_transformers()
    model = spec.model
    if model in PACKAGE_MODELS and not Path(model).expanduser().is_dir():
        model = PACKAGE_MODELS[model]
    if model == LITE_EMBEDDER:
        return lite.shipped("embedder")
    if model == LITE_MINILM:
        return lite.minilm()
    if model == LITE_SMOLLM:
        return lite.smollm2()
    if model == LITE_NLI:
        return lite.shipped("nli")
    if model == LITE_GRAMMAR:
        return lite.shipped("grammar")
    return resolve(spec.model, allow_hub=allow_hub, revision=spec.options.get("revision"))


class ModelSet:
    """The models of one preset (plus overrides), each loaded on first use."""

    def __init__(self, preset: Preset | str = "lite", *, device=None, dtype=None, batch_tokens=None,
                 allow_hub: bool | None = None, compile: bool = False, **overrides):
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        if overrides:
            self.preset = self.preset.with_overrides(**overrides)
        self.device = resolve_device(device)
        self.dtype, self.autocast = resolve_precision(dtype, self.device)
        self.allow_hub = self.preset.hub if allow_hub is None else allow_hub
        if isinstance(batch_tokens, int):
            batch_tokens = {s: batch_tokens for s in SLOTS}
        defaults = CUDA_BATCH_TOKENS if self.device.startswith("cuda") else DEFAULT_BATCH_TOKENS
        self.batch_tokens = {**defaults, **(batch_tokens or {})}
        self._loaded: dict = {}
        # TorchInductor kernels for every model body (fused element-wise work); each model
        # compiles on its first batch
        self.compile = bool(compile)
        if self.compile and (why := compile_unavailable(self.device)):
            raise ModelConfigError(f"cannot compile the models on {self.device}: {why}")
        # False: every slot loads and runs its own model even where two name the same one
        # (the naive baseline does, as the reference does)
        self.share_passes = True

    def available(self, slot: str) -> bool:
        return self.preset.slots[slot].model is not None

    def loaded(self) -> dict:
        """The models loaded so far, by slot (a copy: loading goes through ``get``)."""
        return dict(self._loaded)

    def is_loaded(self, slot: str) -> bool:
        return slot in self._loaded

    @property
    def precision(self) -> str:
        """The signature's name for how the models compute: fp32, bf16, fp16 or autocast-*."""
        if self.autocast is not None:
            return next(k for k, v in AUTOCAST.items() if v == self.autocast)
        return DTYPE_NAMES.get(self.dtype, str(self.dtype))

    def shares_embedder(self) -> bool:
        """Whether the token slot names the sentence embedder's checkpoint, so one loaded model
        and one pass can serve both (the lite preset: all-MiniLM-L6-v2 in both)."""
        token, emb = self.preset.slots[TOKEN].model, self.preset.slots[EMBEDDER].model
        return self.share_passes and token is not None and token == emb

    def get(self, slot: str):
        if slot in self._loaded:
            return self._loaded[slot]
        spec = self.preset.slots[slot]
        if spec.model is None:
            raise ModelUnavailable(f"preset {self.preset.name} has no {slot} model")
        if spec.model in _NC_MODELS:
            warnings.warn(f"{spec.model} is licensed CC-BY-NC-4.0 (non-commercial use only)", stacklevel=2)
        opts = {k: v for k, v in spec.options.items() if k != "revision"}
        if slot == TOKEN and self.shares_embedder():
            try:
                return self._keep(slot, TokenEmbedder.reusing(self.get(EMBEDDER), batch_tokens=self.batch_tokens[slot],
                                                              **opts))
            except ModelConfigError:  # fine as a token model, not as a sentence embedder: load it alone
                pass
        src = source_for(spec, allow_hub=self.allow_hub)
        return self._keep(slot, _CLASSES[slot](src, device=self.device, dtype=self.dtype, autocast=self.autocast,
                                               batch_tokens=self.batch_tokens[slot], **opts))

    def _keep(self, slot: str, model):
        if self.compile:
            model.compile_forward()
        self._loaded[slot] = model
        return model

    def hidden_size(self, slot: str) -> int:
        """The width of the slot model's hidden states, from its configuration: no weights load."""
        if slot in self._loaded:
            return int(self._loaded[slot].model.config.hidden_size)
        import transformers

        src = source_for(self.preset.slots[slot], allow_hub=self.allow_hub)
        return int(transformers.AutoConfig.from_pretrained(str(src.path)).hidden_size)

    def describe(self, slot: str, *, load: bool = False) -> dict:
        """Slot, model, origin, size and hash, without loading the weights unless asked."""
        spec = self.preset.slots[slot]
        if spec.model is None:
            return {"slot": slot, "model": None, "source": f"unavailable in preset {self.preset.name}"}
        src = self._loaded[slot].source if slot in self._loaded else source_for(spec, allow_hub=self.allow_hub)
        info = {"slot": slot, "model": src.name, "source": src.origin, "path": str(src.path),
                "size_mb": round(src.size_bytes() / 2**20, 1), "hash": src.fingerprint()}
        if load or slot in self._loaded:
            info.update(self.get(slot).describe())
        return info


__all__ = ["ModelSet", "PRESETS", "Preset", "SlotSpec", "ModelUnavailable", "ModelConfigError",
           "resolve_device", "resolve_dtype", "resolve_precision", "DTYPE_NAMES", "AUTOCAST", "get_preset"]
