#!/usr/bin/env python3
"""Evaluate a trained ROSCOE embedder against the base all-MiniLM-L6-v2, everything else equal
(the lite preset with only the embedder slot replaced), and write the tables the model card
quotes.

1. Human judgments: Somers' D (95 % bootstrap CI) of every score that reads the embedder,
   against every label of every human-labelled set, with ROUGE-L and the BERTScore-style
   baseline in the same tables; the overall-quality label of each set gets a paired bootstrap
   of the change in D (trained - base) for the best SA and the best SS score.
2. Diagnostics: D of the same scores on every (source, perturbation) set built from the
   test-side splits (never a split that ``roscoe train-embedder`` reads), and whether each
   embedding-targeted perturbation is caught (D >= 0.5) by its targeted score.
3. No regression elsewhere: the scores that do not read the embedder, base vs trained.

    python tools/eval_embedder.py --trained roscoe-lite-embedder -o build/embedder-eval
    python tools/eval_embedder.py --trained DIR --sets roscoe-human-gsm8k --diag-limit 20 --n-boot 200
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from human_eval import baselines  # noqa: E402
from human_eval.pipeline import BENCHMARKS, load_benchmark  # noqa: E402
from human_eval.stats import correlate, somers_d  # noqa: E402
from perturbations import catalogue, diagnostic, sources  # noqa: E402
from perturbations.evaluate import EXPECTED  # noqa: E402
from roscoe import registry  # noqa: E402
from roscoe.registry import EMBEDDER  # noqa: E402
from roscoe.scorer import Scorer  # noqa: E402

# The label that stands for overall quality on each set.
OVERALL = {"roscoe-human-gsm8k": "QUAL", "roscoe-human-esnli": "QUAL", "champ": "NO_WRONG_STEP", "eobqa": "VALID",
           **{b: "CORRECT" for b in BENCHMARKS if b.startswith("mr-ben-")}}
# Test-side diagnostic sources: MATH-500 stands for MATH (train-embedder reads the other 4,500).
DIAG_SOURCES = ("gsm8k", "aqua", "math500", "entailment_bank", "strategyqa", "esnli", "eqasc", "cosmosqa")
EMBEDDING_SCORES = tuple(n for n, s in registry.SCORES.items() if EMBEDDER in s.slots)
OTHER_SCORES = tuple(n for n in registry.SCORES if n not in EMBEDDING_SCORES)
# Perturbations whose expected scores (perturbations.evaluate.EXPECTED) read the embedder.
TARGETED = {p: tuple(n for n in names if n in EMBEDDING_SCORES) for p, names in EXPECTED.items()}
TARGETED = {p: names for p, names in TARGETED.items() if names}
CAUGHT = 0.5


def family(name: str) -> str:
    return registry.SCORES[name].family


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def score_columns(scorer, chains, names) -> dict[str, np.ndarray]:
    table = scorer.score(chains, list(names))
    return {n: np.asarray(table[n], dtype=float) for n in names}


def applicable(chains: list[dict], names):
    """The scores a labelled set can have: the reference-based ones only where chains have a reference."""
    has_ref = any(c.get("reference") for c in chains)
    return [n for n in names if has_ref or not registry.SCORES[n].needs_reference]


def best(cells, names) -> tuple[str | None, float]:
    """The member with the highest D among ``names`` (NaN cells skipped)."""
    live = [(c.value, c.score) for c in cells if c.score in names and not math.isnan(c.value)]
    if not live:
        return None, math.nan
    v, n = max(live)
    return n, v


def paired_delta(label, a, b, *, n_boot: int, seed: int) -> dict:
    """D(b) - D(a) on the same chains, with a paired bootstrap 95 % CI and two-sided p."""
    ok = ~(np.isnan(label) | np.isnan(a) | np.isnan(b))
    label, a, b = label[ok], a[ok], b[ok]
    observed = somers_d(label, b) - somers_d(label, a)
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(label), len(label))
        if np.ptp(label[idx]) == 0:
            continue
        deltas.append(somers_d(label[idx], b[idx]) - somers_d(label[idx], a[idx]))
    deltas = np.array(deltas)
    lo, hi = np.quantile(deltas, [0.025, 0.975])
    p = min(1.0, 2 * min((deltas <= 0).mean(), (deltas >= 0).mean()) + 1 / (len(deltas) + 1))
    return {"delta": float(observed), "ci": [float(lo), float(hi)], "p": float(p), "n": int(ok.sum())}


def human(args, base, trained) -> dict:
    out = {}
    for name in args.sets:
        t0 = time.perf_counter()
        ls = load_benchmark(name, args.data_root)
        names = applicable(ls.chains, EMBEDDING_SCORES)
        cols_base = score_columns(base, ls.chains, names)
        cols_tr = score_columns(trained, ls.chains, names)
        base_line = baselines.compute(ls.chains, base)
        cols = {**{f"{n}@base": v for n, v in cols_base.items()}, **{f"{n}@trained": v for n, v in cols_tr.items()},
                **base_line}
        cells = correlate(cols, ls.labels, ("somers_d",), n_boot=args.n_boot, seed=args.seed)
        overall = OVERALL[name]
        label = ls.labels[overall]
        cmp = {}
        for fam in ("SA", "SS"):
            members = [n for n in names if family(n) == fam]
            oc = [c for c in cells if c.label == overall]
            nb, db = best([_renamed(c, "@base") for c in oc if c.score.endswith("@base")], members)
            nt, dt = best([_renamed(c, "@trained") for c in oc if c.score.endswith("@trained")], members)
            d = paired_delta(label, cols_base[nb], cols_tr[nt], n_boot=args.n_boot, seed=args.seed) \
                if nb and nt else {"delta": math.nan, "ci": [math.nan, math.nan], "p": math.nan, "n": 0}
            cmp[fam] = {"base": nb, "base_d": db, "trained": nt, "trained_d": dt, **d,
                        "improved": bool(dt > db), "lost_significantly": bool(d["ci"][1] < 0)}
        per_score = {n: paired_delta(label, cols_base[n], cols_tr[n], n_boot=args.n_boot, seed=args.seed)
                     for n in names}
        out[name] = {"n": len(ls), "overall": overall, "cells": [c.as_dict() for c in cells], "best": cmp,
                     "per_score": per_score, "seconds": round(time.perf_counter() - t0, 1)}
        log(f"{name}: {len(ls)} chains, {out[name]['seconds']} s; best SA {cmp['SA']['base_d']:+.3f} -> "
            f"{cmp['SA']['trained_d']:+.3f}, best SS {cmp['SS']['base_d']:+.3f} -> {cmp['SS']['trained_d']:+.3f}")
    return out


def _renamed(cell, suffix):
    import dataclasses

    return dataclasses.replace(cell, score=cell.score[: -len(suffix)])


def diagnostics(args, base, trained) -> dict:
    from roscoe.chains import from_record

    out = {}
    for src in DIAG_SOURCES:
        built = sources.build(src, root=args.data_root)
        for p in catalogue.for_source(src, sources.SOURCES[src].math, "single"):
            s = diagnostic.build_set(built, p, seed=args.seed, limit=args.diag_limit)
            if len(s.rows) < 4 or len({r["label"] for r in s.rows}) < 2:
                continue
            chains = [from_record(r) for r in s.rows]
            labels = np.array([r["label"] for r in s.rows], dtype=float)
            names = list(EMBEDDING_SCORES)
            row = {"n": len(chains)}
            for tag, scorer in (("base", base), ("trained", trained)):
                cols = score_columns(scorer, chains, names)
                row[tag] = {n: d for n, v in cols.items() if (d := _d(labels, v)) is not None}
            out[f"{src}/{p.name}"] = row
        log(f"diagnostics {src}: {sum(k.startswith(src + '/') for k in out)} sets")
    return out


def _d(labels, values):
    """D on the chains the score is defined for (a 1-step chain has no repetition_step), or None."""
    ok = ~np.isnan(values)
    if ok.sum() < 4 or len(np.unique(labels[ok])) < 2:
        return None
    d = somers_d(labels[ok], values[ok])
    return None if math.isnan(d) else round(d, 4)


def unchanged(args, base, trained) -> dict:
    ls = load_benchmark("roscoe-human-gsm8k", args.data_root).head(args.regression_chains)
    a = score_columns(base, ls.chains, OTHER_SCORES)
    b = score_columns(trained, ls.chains, OTHER_SCORES)
    diff = {n: float(np.nanmax(np.abs(a[n] - b[n]))) if not np.isnan(a[n]).all() else 0.0 for n in OTHER_SCORES}
    same_nan = all(np.array_equal(np.isnan(a[n]), np.isnan(b[n])) for n in OTHER_SCORES)
    return {"chains": len(ls), "max_abs_diff": diff, "same_nan": same_nan}


def checks(diag: dict) -> list[dict]:
    out = []
    for key, row in diag.items():
        pert = key.split("/")[1]
        if pert not in TARGETED:
            continue
        for tag in ("base", "trained"):
            vals = {n: row[tag].get(n) for n in TARGETED[pert] if row[tag].get(n) is not None}
            if vals:
                n, d = max(vals.items(), key=lambda kv: kv[1])
                out.append({"set": key, "model": tag, "score": n, "D": d, "caught": d >= CAUGHT})
    return out


def markdown(res: dict) -> str:
    lines = []
    h = res.get("human", {})
    if h:
        lines += ["### Human judgments: overall quality, best SA and best SS member (Somers' D)", "",
                  "| set | label | n | SA base | SA trained | ΔD [95% CI] | SS base | SS trained | ΔD [95% CI] |"
                  " ROUGE-L | BERTScore |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in h.items():
            cells = {(c["score"], c["label"]): c for c in r["cells"]}
            bl = [cells.get((b, r["overall"]), {}).get("value", math.nan) for b in baselines.BASELINES]
            row = [name, r["overall"], str(r["n"])]
            for fam in ("SA", "SS"):
                b = r["best"][fam]
                row += [f"{b['base_d']:+.3f} ({b['base']})", f"{b['trained_d']:+.3f} ({b['trained']})",
                        f"{b['delta']:+.3f} [{b['ci'][0]:+.3f}, {b['ci'][1]:+.3f}]"]
            row += [f"{v:+.3f}" for v in bl]
            lines.append("| " + " | ".join(row) + " |")
        imp = {f: sum(r["best"][f]["improved"] for r in h.values()) for f in ("SA", "SS")}
        lost = {f: [n for n, r in h.items() if r["best"][f]["lost_significantly"]] for f in ("SA", "SS")}
        lines += ["", f"Improved on overall quality: best SA on {imp['SA']}/{len(h)} sets, best SS on "
                      f"{imp['SS']}/{len(h)}; significant losses: SA {lost['SA'] or 'none'}, SS {lost['SS'] or 'none'}.",
                  ""]
        lines += ["### Human judgments: every embedder score on overall quality, base -> trained", "",
                  "| set | " + " | ".join(EMBEDDING_SCORES) + " |", "|---|" + "---|" * len(EMBEDDING_SCORES)]
        for name, r in h.items():
            cells = {(c["score"], c["label"]): c for c in r["cells"]}
            vals = []
            for n in EMBEDDING_SCORES:
                a, b = cells.get((f"{n}@base", r["overall"])), cells.get((f"{n}@trained", r["overall"]))
                vals.append("-" if a is None else f"{a['value']:+.2f} → {b['value']:+.2f}")
            lines.append(f"| {name} | " + " | ".join(vals) + " |")
        lines.append("")
    d = res.get("diagnostics", {})
    if d:
        lines += ["### Diagnostics (test side): Somers' D base → trained, reference-free scores", "",
                  "| set | n | " + " | ".join(n for n in EMBEDDING_SCORES if not registry.SCORES[n].needs_reference)
                  + " |", "|---|---|" + "---|" * sum(not registry.SCORES[n].needs_reference for n in EMBEDDING_SCORES)]
        for key, row in d.items():
            vals = []
            for n in EMBEDDING_SCORES:
                if registry.SCORES[n].needs_reference:
                    continue
                a, b = row["base"].get(n), row["trained"].get(n)
                vals.append("-" if a is None or b is None else f"{a:+.2f} → {b:+.2f}")
            lines.append(f"| {key} | {row['n']} | " + " | ".join(vals) + " |")
        lines += ["", "### Embedding-targeted perturbations (caught: D ≥ 0.5 for the best targeted score)", "",
                  "| set | base | trained |", "|---|---|---|"]
        by = {}
        for c in res["checks"]:
            by.setdefault(c["set"], {})[c["model"]] = c
        for key, m in by.items():
            lines.append(f"| {key} | " + " | ".join(
                f"{m[t]['D']:+.3f} {m[t]['score']} {'caught' if m[t]['caught'] else 'NOT caught'}" if t in m else "-"
                for t in ("base", "trained")) + " |")
        lines.append("")
    u = res.get("unchanged")
    if u:
        worst = max(u["max_abs_diff"].values())
        lines += [f"Scores that do not read the embedder, on {u['chains']} GSM8K chains: largest difference "
                  f"{worst:.3g}, same NaNs: {u['same_nan']}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trained", default="roscoe-lite-embedder", help="model directory or package model name")
    ap.add_argument("-o", "--out", default="build/embedder-eval")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--sets", default=",".join(BENCHMARKS))
    ap.add_argument("--diag-limit", type=int, default=100, help="gold chains per diagnostic set (0: all)")
    ap.add_argument("--skip-diagnostics", action="store_true")
    ap.add_argument("--regression-chains", type=int, default=40)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=None, help="a scorer cache directory shared by both runs")
    ap.add_argument("--reuse", action="store_true", help="no scoring: the tables from -o's results.json")
    ap.add_argument("--parts", default="human,diagnostics,unchanged",
                    help="what to (re)compute; the other parts are kept from -o's results.json")
    ap.add_argument("--ship", action="store_true",
                    help="copy --trained's adapter into roscoe/lite_models/ as roscoe-lite-embedder and write "
                         "its model card (the directory's card plus these tables)")
    args = ap.parse_args(argv)
    args.sets = [s for s in args.sets.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.reuse:
        res = json.loads((out / "results.json").read_text())
    else:
        res = evaluate(args, out)
    md = markdown(res)
    (out / "tables.md").write_text(md)
    print(md)
    print(f"base:    {res['base_signature']}\ntrained: {res['trained_signature']}\n{res['seconds']} s")
    if args.ship:
        ship(Path(args.trained), md, res)
    return 0


def ship(trained: Path, tables: str, res: dict) -> None:
    import shutil

    from roscoe.models import contrastive, lite

    shutil.copyfile(trained / contrastive.ADAPTER, lite.SHIPPED / "embedder.safetensors")
    shutil.copyfile(trained / contrastive.ADAPTER_CONFIG, lite.SHIPPED / "embedder.json")
    card = (trained / "README.md").read_text().split("\n", 1)[1]
    card = "# roscoe-lite-embedder (the embedder shipped in roscoe/lite_models)\n" + card.replace(
        "batch 32 triples", "batch 32 chains (each with its negatives)")
    recipe = Path(__file__).with_name("embedder_recipe.md")
    if recipe.is_file():
        card += "\n" + recipe.read_text()
    card += ("\n## Evaluation (tools/eval_embedder.py): the lite preset with all-MiniLM-L6-v2 (base) against "
             "the same preset with this embedder (trained), everything else equal\n\n"
             f"Evaluated as `{trained.name}`; base signature `{res['base_signature']}`, "
             f"trained `{res['trained_signature']}`; {res['seconds']} s.\n\n" + tables)
    (lite.SHIPPED / "EMBEDDER_CARD.md").write_text(card)
    print(f"shipped {trained} as roscoe-lite-embedder ({lite.SHIPPED})")


def evaluate(args, out: Path) -> dict:
    base = Scorer("lite", cache_dir=args.cache)
    trained = Scorer("lite", cache_dir=args.cache, embedder=args.trained)
    parts = set(args.parts.split(","))
    earlier = out / "results.json"
    res = json.loads(earlier.read_text()) if parts != {"human", "diagnostics", "unchanged"} and earlier.is_file() \
        else {}
    res.update({"base_signature": str(base.signature(EMBEDDING_SCORES)),
                "trained_signature": str(trained.signature(EMBEDDING_SCORES))})
    seconds = res.setdefault("part_seconds", {})
    for part, fn in (("human", human), ("diagnostics", diagnostics), ("unchanged", unchanged)):
        if part in parts and not (part == "diagnostics" and args.skip_diagnostics):
            t0 = time.perf_counter()
            res[part] = fn(args, base, trained)
            seconds[part] = round(time.perf_counter() - t0, 1)
    if "diagnostics" in res:
        res["checks"] = checks(res["diagnostics"])
    res["seconds"] = round(sum(seconds.values()), 1)
    (out / "results.json").write_text(json.dumps(res, indent=1, default=float))
    return res


if __name__ == "__main__":
    sys.exit(main())
