"""Meta-evaluation on diagnostic sets: score every set of a build, then Somers' D of each
score against the label (1 = unperturbed), one column per (source, perturbation).

A score that catches a perturbation is higher on gold chains than on perturbed ones, so
its D is positive; D = 2·AUROC − 1 for these binary labels."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# What ROSCOE claims each perturbation should trip (checked and reported, never assumed).
EXPECTED = {
    "DuplicateOneStep": ("repetition_step", "repetition_word"),
    "ExtrinsicHallucinatedStep": ("faithfulness", "faithfulness_ww", "informativeness_step"),
    "GrammaticalErrorStep": ("grammar_step", "grammar_step_max"),
    "NegateStep": ("coherence_step_vs_step", "discourse_representation"),
}


class DiagnosticsError(ValueError):
    pass


@dataclass
class Evaluation:
    cells: list = field(default_factory=list)
    sets: list[dict] = field(default_factory=list)
    scored: dict[str, list[dict]] = field(default_factory=dict)
    seconds: float = 0.0

    def table(self):
        from human_eval.tables import Table

        return Table(self.cells, method="somers_d")

    def checks(self) -> list[dict]:
        """For each set whose perturbation has an expected score: that score's D, and
        whether it is positive and significant."""
        by = {(c.score, c.label): c for c in self.cells}
        out = []
        for s in self.sets:
            for part, names in EXPECTED.items():
                if part not in s["perturbation"].split("_"):
                    continue
                for n in names:
                    cell = by.get((n, s["key"]))
                    if cell is not None:
                        out.append({"set": s["key"], "score": n, "D": cell.value, "p": cell.p, "n": cell.n,
                                    "caught": bool(cell.significant and cell.value > 0)})
        return out


def read_set(path: Path, limit=0) -> tuple[list, np.ndarray]:
    from roscoe.chains import from_record

    chains, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if limit and len(chains) >= limit:
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DiagnosticsError(f"{path}:{line_no}: not JSON: {e}") from e
            if not isinstance(record, dict) or record.get("label") not in (0, 1):
                raise DiagnosticsError(f"{path}:{line_no}: field 'label': expected 0 or 1")
            chains.append(from_record(record, source=str(path), line=line_no))
            labels.append(record["label"])
    return chains, np.asarray(labels, dtype=float)


def evaluate(diag_dir: Path, scorer, *, scores="reference-free", sets=None, limit=0, n_boot=1000, seed=0,
             progress=None) -> Evaluation:
    """Score the sets listed in ``diag_dir/manifest.json`` (all, or those whose
    ``source/perturbation`` key is in ``sets``) and correlate.  ``limit`` keeps the first N
    rows of each set (they are in source order, perturbed and gold rows mixed)."""
    from human_eval.stats import correlate
    from roscoe import registry

    diag_dir = Path(diag_dir)
    try:
        manifest = json.loads((diag_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DiagnosticsError(f"{diag_dir}/manifest.json: {e}") from e
    names = registry.resolve(scores)
    ev, t0 = Evaluation(), time.perf_counter()
    for s in manifest["sets"]:
        key = f"{s['source']}/{s['perturbation']}"
        if sets and key not in sets:
            continue
        if progress:
            progress(key)
        chains, labels = read_set(diag_dir / s["file"], limit)
        table = scorer.score(chains, names)
        ev.scored[key] = [{**r, "label": int(y)} for r, y in zip(table.records(), labels)]
        ev.sets.append({"key": key, "perturbation": s["perturbation"], "rows": len(chains),
                        "perturbed": int((labels == 0).sum())})
        ev.cells += correlate({n: table[n] for n in names}, {key: labels}, ("somers_d",), n_boot=n_boot, seed=seed)
    ev.seconds = time.perf_counter() - t0
    return ev


def write(ev: Evaluation, out_dir: Path) -> list[Path]:
    from human_eval.tables import cells_csv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = ev.table()
    paths = {"cells.csv": cells_csv(ev.cells), "table.md": table.markdown(), "table.tex": table.latex(),
             "checks.json": json.dumps(ev.checks(), indent=1), "sets.json": json.dumps(ev.sets, indent=1)}
    for key, rows in ev.scored.items():  # the per-chain scores, to re-correlate or inspect
        paths[f"scores/{key}.jsonl"] = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    for name, text in paths.items():
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / name).write_text(text, encoding="utf-8")
    return [out_dir / n for n in paths]
