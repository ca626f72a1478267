"""Model presets: which model fills each slot, with its input recipe (docs/formulas.md §5; the README lists them)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..registry import EMBEDDER, GRAMMAR, LM, NLI, TOKEN

LITE_MINILM = "lite:all-MiniLM-L6-v2"
LITE_SMOLLM = "lite:SmolLM2-135M"
LITE_NLI = "lite:roscoe-lite-nli"
LITE_GRAMMAR = "lite:roscoe-lite-cola"
LITE_EMBEDDER = "lite:roscoe-lite-embedder"
# Package models a slot may name without the "lite:" prefix (--embedder roscoe-lite-embedder);
# a local directory of the same name wins, as any path does.
PACKAGE_MODELS = {"roscoe-lite-embedder": LITE_EMBEDDER, "roscoe-lite-nli": LITE_NLI,
                  "roscoe-lite-cola": LITE_GRAMMAR}


@dataclass(frozen=True)
class SlotSpec:
    """A model for one slot: a hub id, a local directory, or a ``lite:`` package model."""

    model: str | None
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Preset:
    name: str
    slots: dict
    hub: bool  # True: the preset's models come from the hub, so downloads are allowed
    description: str = ""
    overridden: tuple = ()  # slots whose model the user replaced

    def with_overrides(self, **models) -> "Preset":
        """Replace slot models (``embedder="path"``...).  A slot given another model loses the
        preset's recipe for it (the lite LM's BOS id 0, a max length, a label index): the new
        model's own configuration decides, so the same weights under a preset and under an
        override can score differently.  ``label`` names the result in signatures."""
        slots = dict(self.slots)
        changed = list(self.overridden)
        for slot, model in models.items():
            if model is None:
                continue
            if slot not in slots:
                raise ValueError(f"unknown model slot {slot!r}; expected one of {list(slots)}")
            if model != slots[slot].model:
                slots[slot] = SlotSpec(model, {})
                changed.append(slot)
        return replace(self, slots=slots, overridden=tuple(s for s in slots if s in changed))

    @property
    def label(self) -> str:
        """The preset's name, and which slots were overridden: ``lite(overrides:lm,nli)``."""
        return f"{self.name}(overrides:{','.join(self.overridden)})" if self.overridden else self.name


_PARLAI = {
    EMBEDDER: SlotSpec("sentence-transformers/all-mpnet-base-v2", {"max_length": 384}),
    TOKEN: SlotSpec("microsoft/mpnet-base", {"max_length": 512}),
    NLI: SlotSpec("MoritzLaurer/DeBERTa-v3-large-mnli-fever-anli-ling-wanli", {"max_length": 512}),
    LM: SlotSpec("gpt2-large", {"add_prefix_space": True, "bos_id": 50256, "window": 1024}),
    GRAMMAR: SlotSpec("cointegrated/roberta-large-cola-krishna2020", {"max_length": 512, "preset_index": 0}),
}

PRESETS: dict[str, Preset] = {
    "lite": Preset(
        "lite",
        {
            EMBEDDER: SlotSpec(LITE_MINILM),
            TOKEN: SlotSpec(LITE_MINILM, {"max_length": 512}),
            NLI: SlotSpec(LITE_NLI, {"max_length": 256}),
            LM: SlotSpec(LITE_SMOLLM, {"bos_id": 0}),
            GRAMMAR: SlotSpec(LITE_GRAMMAR, {"max_length": 256}),
        },
        hub=False,
        description="offline: all-MiniLM-L6-v2 and SmolLM2-135M from PyPI packages, and this package's own "
                    "compact NLI and CoLA models (LoRA over all-MiniLM-L6-v2)",
    ),
    "parlai": Preset("parlai", _PARLAI, hub=True,
                     description="the reference implementation's defaults (hub downloads)"),
    "paper": Preset(
        "paper",
        {
            **_PARLAI,
            EMBEDDER: SlotSpec("facebook/roscoe-512-roberta-base", {"pooling": "cls", "max_length": 128}),
            TOKEN: SlotSpec("roberta-base", {"max_length": 512}),
        },
        hub=True,
        description="the paper's headline configuration: roscoe-512-roberta-base (CC-BY-NC-4.0) "
                    "with SimCSE pooling (hub downloads)",
    ),
}


def get(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}") from None
