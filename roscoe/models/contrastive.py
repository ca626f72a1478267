"""Contrastive fine-tuning of a sentence embedder, the objective of the paper's ROSCOE embedder
(supervised SimCSE): each anchor (a context) must pick its positive (the gold chain) out of
every positive and hard negative (a perturbed chain) in the batch, under a cosine softmax at
a temperature.  LoRA over the frozen encoder, or every encoder weight (embeddings frozen).

This module trains on text triples; which triples (and from which data) is the caller's
business, so the core never imports the perturbation catalogue.
"""
from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import lora

# The sentence-transformers files that tell an embedder slot how to pool (mean over tokens)
# and how far to read (max_seq_length): copied from the base model into every trained one.
ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json")


# Defaults by measurement (2 CPU cores, the default data: 2,199 training chains, 458 held-out
# triples whose base accuracy is 0.701): LoRA lr 1e-4 1 epoch 0.718; LoRA lr 5e-4 1 epoch 0.769;
# full fine-tune lr 3e-5 1 epoch 0.755 (as shipped, rank-8 factors); LoRA lr 5e-4 2 epochs 0.810,
# 1,132 s.  A batch of 32 chains with 2 negatives each peaks near 10 GB RSS at max length 128.
@dataclass
class Recipe:
    method: str = "lora"        # "lora" or "full"
    epochs: int = 2
    batch_size: int = 32
    lr: float = 5e-4
    temperature: float = 0.05
    rank: int = 8
    alpha: float = 16.0
    max_length: int = 128
    warmup: float = 0.1          # share of the steps with a linear warm-up
    seed: int = 0
    threads: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class History:
    steps: int = 0
    dropped_identical: int = 0   # triples whose positive and negative read the same after truncation
    losses: list = field(default_factory=list)  # mean loss per logged window
    seconds: float = 0.0


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor | None,
             temperature: float) -> torch.Tensor:
    """Cross-entropy of each anchor's cosine softmax over [all positives; all negatives],
    its own positive being the target (the hard negatives of every chain in the batch count
    against every anchor)."""
    a = torch.nn.functional.normalize(anchor, dim=-1)
    cands = positive if negative is None else torch.cat([positive, negative])
    logits = a @ torch.nn.functional.normalize(cands, dim=-1).T / temperature
    return torch.nn.functional.cross_entropy(logits, torch.arange(len(a)))


def prepare(model, recipe: Recipe) -> None:
    """Make only what the recipe trains trainable: the LoRA factors, or every encoder weight."""
    if recipe.method == "lora":
        lora.add_lora(model, recipe.rank, recipe.alpha)
        for name, p in model.named_parameters():
            p.requires_grad_(name.endswith((".A", ".B")))
    elif recipe.method == "full":
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("encoder."))
    else:
        raise ValueError(f"unknown method {recipe.method!r}; expected lora or full")


def _encode(model, tok, texts, max_length):
    batch = tok(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])


def distinct(tok, triples, max_length: int) -> tuple[list, int]:
    """The triples whose positive and negative still differ once truncated to ``max_length``
    tokens (a perturbation past the cut would teach the model that equal texts differ)."""
    keep = []
    for t in triples:
        p, n = tok([t.positive, t.negative], truncation=True, max_length=max_length)["input_ids"]
        if p != n:
            keep.append(t)
    return keep, len(triples) - len(keep)


@dataclass
class Group:
    """One gold chain's anchor and positive with all of its hard negatives: the anchor and
    positive are encoded once however many perturbations the chain got."""

    anchor: str
    positive: str
    negatives: list
    length: int = 0  # positive's token count, for length-sorted batches


def groups(triples) -> list[Group]:
    by: dict[tuple, Group] = {}
    for t in triples:
        g = by.setdefault((t.anchor, t.positive), Group(t.anchor, t.positive, []))
        if t.negative not in g.negatives:
            g.negatives.append(t.negative)
    return list(by.values())


def _batches(items: list[Group], batch_size: int, rng: random.Random) -> list[list[Group]]:
    """Shuffled, then length-sorted within windows of 20 batches (little padding; a batch's
    in-batch negatives are then chains of similar length, which makes them harder), in a
    shuffled batch order."""
    order = list(range(len(items)))
    rng.shuffle(order)
    out = []
    window = batch_size * 20
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: items[i].length)
        out += [[items[i] for i in chunk[b:b + batch_size]] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


def train(model, tok, triples, recipe: Recipe, *, log=None, log_every: int = 20) -> History:
    """Fine-tune ``model`` (a transformers encoder, already ``prepare``d) on ``triples``
    (objects with ``anchor``, ``positive``, ``negative``) in place; ``recipe.batch_size``
    counts gold chains, each with all of its negatives."""
    hist, t0 = History(), time.perf_counter()
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    triples, hist.dropped_identical = distinct(tok, triples, recipe.max_length)
    items = groups(triples)
    if len(items) < 2:
        raise ValueError("fewer than two chains have a perturbed negative that differs within max_length")
    for g in items:
        g.length = len(tok(g.positive, truncation=True, max_length=recipe.max_length)["input_ids"])
    rng = random.Random(recipe.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=0.01)
    plan = [_batches(items, recipe.batch_size, rng) for _ in range(recipe.epochs)]
    total = sum(len(b) for b in plan)
    warm = max(1, int(total * recipe.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    model.train()
    window = []
    for epoch, batches in enumerate(plan):
        for batch in batches:
            if len(batch) < 2:
                continue  # one anchor has no in-batch negatives
            a = _encode(model, tok, [g.anchor for g in batch], recipe.max_length)
            p = _encode(model, tok, [g.positive for g in batch], recipe.max_length)
            n = _encode(model, tok, [x for g in batch for x in g.negatives], recipe.max_length)
            loss = info_nce(a, p, n, recipe.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            hist.steps += 1
            window.append(loss.detach().item())
            if len(window) == log_every:
                hist.losses.append(round(sum(window) / len(window), 4))
                if log:
                    log(f"epoch {epoch + 1}/{recipe.epochs} step {hist.steps}/{total} loss {hist.losses[-1]:.4f}")
                window = []
    if window:
        hist.losses.append(round(sum(window) / len(window), 4))
    model.eval()
    hist.seconds = round(time.perf_counter() - t0, 1)
    return hist


def shippable(model, base, recipe: Recipe) -> tuple[dict, dict]:
    """The trained change as the package ships it (fp16 LoRA factors; a full fine-tune as its
    best rank-``recipe.rank`` factors plus every other changed weight) and its config."""
    state = lora.export(model) if recipe.method == "lora" else lora.factorise(model, base, recipe.rank)
    alpha = recipe.alpha if recipe.method == "lora" else float(recipe.rank)
    return state, {"kind": "embedder", "rank": recipe.rank, "alpha": alpha, "targets": list(lora.TARGETS)}


def merged(base_path: Path, state: dict, cfg: dict):
    """The base encoder with a shipped change folded in: the model an embedder slot loads."""
    import transformers

    model = transformers.AutoModel.from_pretrained(str(base_path))
    lora.merge(model, state, r=cfg["rank"], alpha=cfg["alpha"])
    return model.eval()


def write_model_dir(model, tokenizer, base_path: Path, target: Path) -> None:
    """A checkpoint directory any embedder slot accepts: weights, tokenizer and the base's
    sentence-transformers pooling files (so the slot pools the way the model was trained)."""
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    for rel in ST_FILES:
        src = Path(base_path) / rel
        if src.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target / rel)


def write_json(path: Path, doc) -> None:
    Path(path).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def triple_accuracy(model, tok, triples, max_length: int, batch_size: int = 64) -> float:
    """The share of triples whose anchor is closer (cosine) to the positive than to the negative."""
    hits = 0
    with torch.inference_mode():
        for start in range(0, len(triples), batch_size):
            batch = triples[start:start + batch_size]
            a, p, n = (torch.nn.functional.normalize(_encode(model, tok, [getattr(t, k) for t in batch], max_length),
                                                     dim=-1) for k in ("anchor", "positive", "negative"))
            hits += int(((a * p).sum(-1) > (a * n).sum(-1)).sum())
    return hits / len(triples) if triples else float("nan")


@dataclass
class Fitted:
    model: object          # the base with the shipped (fp16) change merged: what a slot loads
    tokenizer: object
    state: dict            # the shipped change
    config: dict
    recipe: Recipe
    history: History
    val: dict


def fit(base, train_triples, val_triples, recipe: Recipe, *, log=None) -> Fitted:
    """Train from ``base`` (a ModelSource) and measure held-out triple accuracy on the base and
    on the result exactly as it will be loaded (the fp16 change merged into a fresh base)."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    tok = transformers.AutoTokenizer.from_pretrained(str(base.path))
    torch.manual_seed(recipe.seed)
    model = transformers.AutoModel.from_pretrained(str(base.path))
    model.eval()
    val_triples, _ = distinct(tok, val_triples, recipe.max_length)
    before = triple_accuracy(model, tok, val_triples, recipe.max_length) if val_triples else None
    reference = transformers.AutoModel.from_pretrained(str(base.path)) if recipe.method == "full" else None
    prepare(model, recipe)
    history = train(model, tok, train_triples, recipe, log=log)
    state, cfg = shippable(model, reference, recipe)
    loaded = merged(base.path, state, cfg)
    val = {}
    if val_triples:
        val = {"n": len(val_triples), "before": round(before, 4),
               "after": round(triple_accuracy(loaded, tok, val_triples, recipe.max_length), 4)}
    return Fitted(loaded, tok, state, cfg, recipe, history, val)


ADAPTER = "adapter.safetensors"
ADAPTER_CONFIG = "adapter.json"


def save(fitted: Fitted, base, target: Path, *, data: dict, options: dict | None = None, name: str | None = None) -> dict:
    """The model directory: the merged checkpoint with its pooling files, the adapter alone
    (``adapter.safetensors`` + ``adapter.json``: what the package ships for its lite embedder),
    ``training.json`` and a model card (``README.md``)."""
    from safetensors.torch import save_file

    from .. import __version__
    from .source import content_hash

    target = Path(target)
    write_model_dir(fitted.model, fitted.tokenizer, base.path, target)
    save_file(fitted.state, str(target / ADAPTER))
    card = {"package": f"roscoe-metrics=={__version__}", "base": base.name, "base_origin": base.origin,
            "base_hash": content_hash(base.path), **fitted.config, "recipe": fitted.recipe.as_dict(),
            "torch": torch.__version__, "options": options or {}}
    write_json(target / ADAPTER_CONFIG, card)
    h = fitted.history
    training = {"data": data, "steps": h.steps, "dropped_identical": h.dropped_identical, "seconds": h.seconds,
                "loss": h.losses, "val_triple_accuracy": fitted.val}
    write_json(target / "training.json", training)
    (target / "README.md").write_text(model_card(name or target.name, card, training), encoding="utf-8")
    return card


def model_card(name: str, card: dict, training: dict) -> str:
    r, data, val = card["recipe"], training["data"], training["val_triple_accuracy"]
    if "sources" in data:
        rows = "\n".join(f"| {n} | {s['chains']} | {s['used']} | {s['split']} |" for n, s in data["sources"].items())
        where = ("Training-side splits shipped with roscoe-metrics:\n\n| source | chains | used | split |\n"
                 f"|---|---|---|---|\n{rows}\n")
    else:
        where = f"The user's chains from `{data.get('from')}` ({data.get('chains')} chains).\n"
    loss = training["loss"]
    lines = [
        f"# {name}", "",
        f"A sentence embedder for ROSCOE's semantic-alignment and similarity scores, fine-tuned from {card['base']} "
        f"by `roscoe train-embedder` ({card['package']}).", "",
        "Use it in any embedder slot: `roscoe score IN.jsonl -o OUT.jsonl --embedder <this directory>`; the "
        "signature carries this directory's content hash.", "",
        "## Data", "", where,
        f"- chains dropped because their context is in a human-judged or diagnostic set: "
        f"{data.get('dropped_held_out', 'not checked (--keep-held-out)')}",
        f"- chains: {data['train_chains']} for training, {data['val_chains']} held out; triples: "
        f"{data['train_triples']} / {data['val_triples']} (up to {data.get('per_chain')} perturbations per chain)",
        f"- triples dropped because positive and negative read the same within {r['max_length']} tokens: "
        f"{training['dropped_identical']}", "",
        "## Recipe", "",
        "Anchor: the context; positive: the gold steps joined with \". \"; hard negative: the same steps after one "
        "catalogue perturbation; every other positive and negative in the batch is an in-batch negative "
        "(supervised SimCSE's objective, mean pooling, cosine softmax).", "",
        f"- method {r['method']}" + (f" (rank {card['rank']}, alpha {card['alpha']})" if r["method"] == "lora" else
                                     f" (shipped as rank-{card['rank']} factors of the weight change)"),
        f"- epochs {r['epochs']}, batch {r['batch_size']} chains (each with its negatives), lr {r['lr']}, temperature {r['temperature']}, "
        f"max length {r['max_length']}, seed {r['seed']}, torch {card['torch']}",
        "- options: " + ", ".join(f"`{k}={v}`" for k, v in card["options"].items() if v not in (None, "", False))
        if card.get("options") else "", "",
        "## Figures", "",
        f"- training: {training['steps']} steps in {training['seconds']} s; loss {loss[0] if loss else '-'} "
        f"(first window) -> {loss[-1] if loss else '-'} (last)",
    ]
    if val:
        lines.append(f"- held-out triple accuracy (anchor closer to the gold chain than to the perturbed one): "
                     f"{val['before']} with the base model, {val['after']} after ({val['n']} triples)")
    return "\n".join(lines) + "\n"
