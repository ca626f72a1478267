"""Meta-evaluation: load a human-labelled set -> score it -> baselines -> correlate -> tables."""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roscoe import datasets

from . import baselines, loaders
from .stats import METHODS, Cell, correlate
from .tables import Table, cells_csv, summary_markdown



MR_BEN_SUBJECTS = ("biology", "chemistry", "coding", "math", "medicine", "physics")
BENCHMARKS = {
    "roscoe-human-gsm8k": ("dev/human/roscoe_human/roscoe_human_gsm8k.jsonl", loaders.load_roscoe_human),
    "roscoe-human-esnli": ("dev/human/roscoe_human/roscoe_human_esnli.jsonl", loaders.load_roscoe_human),
    **{f"mr-ben-{s}": (f"dev/human/mr_ben/{s}.json", loaders.load_mr_ben) for s in MR_BEN_SUBJECTS},
    "champ": ("dev/human/champ/champ_fws_annotations.jsonl", loaders.load_champ),
    "eobqa": ("dev/human/eobqa/obqa_chains.tsv.processed.tsv", loaders.load_eobqa),
}

# Per-step diagnostics from the scorer, turned higher = better like the chain scores.
STEP_SCORES = {
    "faithfulness_step_alignment": lambda v: v,
    "step_perplexity": lambda v: 1.0 / v,
    "step_acceptability": lambda v: v,
    "step_max_contradiction_with_context": lambda v: 1.0 - v,
}


def load_benchmark(name: str, root: Path | str | None = None) -> loaders.LabelledSet:
    """The labelled set ``name``: shipped with the package, or from ``root`` (see ``roscoe.datasets``)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {', '.join(BENCHMARKS)}")
    rel, loader = BENCHMARKS[name]
    return loader(datasets.locate(rel, root))


@dataclass
class MetaEvalResult:
    name: str
    n_chains: int
    label_counts: dict
    cells: list[Cell]
    step_cells: list[Cell]
    scores: dict[str, np.ndarray]
    ids: list
    signature: str
    seconds: dict = field(default_factory=dict)
    label_values: dict[str, np.ndarray] = field(default_factory=dict)

    def table(self, method="somers_d") -> Table:
        cols = [c for c in loaders.PAPER_COLUMNS if c in self.label_counts] + \
               [c for c in self.label_counts if c not in loaders.PAPER_COLUMNS]
        return Table(self.cells, method=method, columns=cols)


def run(labelled: loaders.LabelledSet, scorer, *, scores="all", methods=METHODS, n_boot=1000, seed=0) -> MetaEvalResult:
    t0 = time.perf_counter()
    table = scorer.score(labelled.chains, scores, details=True)
    t1 = time.perf_counter()
    cols = {n: table[n] for n in table.names}
    cols.update(baselines.compute(labelled.chains, scorer))
    t2 = time.perf_counter()
    cells = correlate(cols, labelled.labels, methods, n_boot=n_boot, seed=seed)
    step_cells = correlate(*_step_columns(labelled, table.details), ("somers_d",), n_boot=n_boot, seed=seed) \
        if labelled.step_labels else []
    t3 = time.perf_counter()
    counts = {k: int((~np.isnan(v)).sum()) for k, v in labelled.labels.items()}
    return MetaEvalResult(labelled.name, len(labelled), counts, cells, step_cells, cols, labelled.ids,
                  str(scorer.signature(scores)),
                  {"score": round(t1 - t0, 2), "baselines": round(t2 - t1, 2), "correlate": round(t3 - t2, 2)},
                  dict(labelled.labels))


def _step_columns(labelled, details):
    """Flatten (chain, step) pairs whose step count matches the labels into aligned columns."""
    scores = {k: [] for k in STEP_SCORES}
    labels = {k: [] for k in labelled.step_labels}
    for i, d in enumerate(details):
        n = len(labelled.chains[i]["steps"])
        if any(len(labelled.step_labels[k][i]) != n for k in labels):
            continue
        for k, f in STEP_SCORES.items():
            vals = d.get(k)
            scores[k] += [f(v) for v in vals] if vals is not None and len(vals) == n else [math.nan] * n
        for k in labels:
            labels[k] += labelled.step_labels[k][i]
    scores = {k: np.array(v, dtype=float) for k, v in scores.items() if not np.isnan(np.array(v, dtype=float)).all()}
    return scores, {k: np.array(v, dtype=float) for k, v in labels.items()}


def read_rows(path, *, on="id") -> list[dict]:
    """Rows of a scored file (.jsonl, .csv, .parquet); empty CSV cells become None."""
    import csv

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            for k, v in r.items():
                if k == on:
                    continue
                try:
                    r[k] = None if v == "" else float(v)
                except ValueError:
                    pass  # a text column (reasons, passthrough): not a score
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    else:
        rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    if not rows or any(on not in r for r in rows):
        raise ValueError(f"{path}: empty, or a row without the {on!r} field")
    return rows


def join(score_rows: list[dict], label_ids: list, labels: dict[str, np.ndarray], score_names=None, *, on="id"):
    """Align a scored file with a label file by id (compared as strings)."""
    pos = {str(i): k for k, i in enumerate(label_ids)}
    names = score_names or [k for k in score_rows[0] if k not in (on, "reasons", "details") and
                            all(r.get(k) is None or (isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool))
                                for r in score_rows) and any(r.get(k) is not None for r in score_rows)]
    matched = [(r, pos[str(r[on])]) for r in score_rows if str(r[on]) in pos]
    scores = {n: np.array([np.nan if r.get(n) is None else float(r[n]) for r, _ in matched]) for n in names}
    lab = {k: v[[p for _, p in matched]] for k, v in labels.items()}
    return scores, lab, {"scored": len(score_rows), "labelled": len(label_ids), "joined": len(matched)}


def write_outputs(result: MetaEvalResult, out_dir: Path, *, report=True) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    t = result.table()
    base = out_dir / result.name
    paths = {"cells": base.with_suffix(".cells.csv"), "table_md": base.with_suffix(".table.md"),
             "table_tex": base.with_suffix(".table.tex"), "summary": base.with_suffix(".summary.json"),
             "scores": base.with_suffix(".scores.jsonl")}
    paths["cells"].write_text(cells_csv(result.cells + result.step_cells))
    md = t.markdown()
    if result.step_cells:
        md += "\n### Step level\n\n" + Table(result.step_cells).markdown()
    paths["table_md"].write_text(md)
    paths["table_tex"].write_text(t.latex())
    summary = t.summary()
    paths["summary"].write_text(json.dumps({
        "name": result.name, "n_chains": result.n_chains, "label_counts": result.label_counts,
        "signature": result.signature, "seconds": result.seconds,
        "summary": {k: {"d": None if math.isnan(v) else v, "column": c} for k, (v, c) in summary.items()},
        "summary_markdown": summary_markdown({result.name: summary}, list(summary)),
    }, indent=2))
    with open(paths["scores"], "w", encoding="utf-8") as fh:
        for i, cid in enumerate(result.ids):
            fh.write(json.dumps({"id": cid, **{k: (None if math.isnan(v[i]) else float(v[i]))
                                              for k, v in result.scores.items()}}) + "\n")
    if report:
        from .report import write_report

        paths["report"] = write_report(result, out_dir)
    return paths
