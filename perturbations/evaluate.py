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

from .diagnostic import write_jsonl

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

    def sources(self) -> list[str]:
        return list(dict.fromkeys(s["key"].split("/")[0] for s in self.sets))

    def table(self, source: str | None = None):
        """Score rows x set columns; for one ``source``, its sets with the perturbation as
        the column name."""
        import dataclasses

        from human_eval.tables import Table

        if source is None:
            return Table(self.cells, method="somers_d")
        prefix = f"{source}/"
        return Table([dataclasses.replace(c, label=c.label[len(prefix):]) for c in self.cells
                      if c.label.startswith(prefix)], method="somers_d")

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
    from roscoe.chains import InputError, from_record
    from roscoe.io import read_lines

    chains, labels = [], []
    for line_no, record in read_lines(path):
        if limit and len(chains) >= limit:
            break
        if isinstance(record, InputError):
            raise DiagnosticsError(str(record))
        if not isinstance(record, dict) or record.get("label") not in (0, 1):
            raise DiagnosticsError(f"{path}:{line_no}: field 'label': expected 0 or 1")
        chains.append(from_record(record, source=str(path), line=line_no))
        labels.append(record["label"])
    return chains, np.asarray(labels, dtype=float)


def _reuse(path: Path, chains, labels, names) -> tuple[dict, list] | None:
    """Scores of an earlier, interrupted run for the same rows, or None."""
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if [r.get("id") for r in rows] != [c.id for c in chains] or [r.get("label") for r in rows] != labels.tolist():
        return None
    if not all(n in r for r in rows for n in names):
        return None
    return {n: np.array([np.nan if r[n] is None else r[n] for r in rows], dtype=float) for n in names}, rows


def evaluate(diag_dir: Path, scorer, *, scores="reference-free", sets=None, limit=0, n_boot=1000, seed=0,
             out_dir: Path | None = None, resume=False, progress=None) -> Evaluation:
    """Score the sets listed in ``diag_dir/manifest.json`` (all, or those whose
    ``source/perturbation`` key is in ``sets``) and correlate.  ``limit`` keeps the first N
    rows of each set (they are in source order, perturbed and gold rows mixed).

    With ``out_dir``, each set's per-chain scores are written as soon as it is scored, so an
    interrupted run loses at most one set; ``resume`` reuses them when the signature, ids
    and labels match."""
    from human_eval.stats import correlate
    from roscoe import registry

    diag_dir = Path(diag_dir)
    try:
        manifest = json.loads((diag_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DiagnosticsError(f"{diag_dir}/manifest.json: {e}") from e
    names = registry.resolve(scores)
    signature = f"{scorer.signature(names)}\nscores: {','.join(names)}\nlimit: {limit}"
    if out_dir is not None:
        out_dir = Path(out_dir)
        sig_file = out_dir / "scores" / "signature.txt"
        if sig_file.parent.exists():
            if not resume:
                raise DiagnosticsError(f"{out_dir}/scores exists; pass --resume to reuse it or use a new -o")
            if sig_file.exists() and sig_file.read_text().strip() != signature:
                raise DiagnosticsError(f"{out_dir}/scores were made with another signature, score set or "
                                       "limit; use a new -o")
        sig_file.parent.mkdir(parents=True, exist_ok=True)
        sig_file.write_text(signature + "\n")
    ev, t0 = Evaluation(), time.perf_counter()
    for s in manifest["sets"]:
        key = f"{s['source']}/{s['perturbation']}"
        if sets and key not in sets:
            continue
        chains, labels = read_set(diag_dir / s["file"], limit)
        path = out_dir / "scores" / f"{key}.jsonl" if out_dir is not None else None
        earlier = _reuse(path, chains, labels, names) if path is not None and resume else None
        if earlier:
            columns, rows = earlier
        else:
            if progress:
                progress(key)
            table = scorer.score(chains, names)
            columns = {n: table[n] for n in names}
            rows = [{**r, "label": int(y)} for r, y in zip(table.records(), labels)]
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_jsonl(path, rows)
        ev.scored[key] = rows
        ev.sets.append({"key": key, "perturbation": s["perturbation"], "rows": len(chains),
                        "perturbed": int((labels == 0).sum()), "reused": bool(earlier)})
        ev.cells += correlate(columns, {key: labels}, ("somers_d",), n_boot=n_boot, seed=seed)
    ev.seconds = time.perf_counter() - t0
    return ev


def write(ev: Evaluation, out_dir: Path) -> list[Path]:
    from human_eval.tables import cells_csv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = ev.table()
    paths = {"cells.csv": cells_csv(ev.cells), "table.md": table.markdown(), "table.tex": table.latex(),
             "checks.json": json.dumps(ev.checks(), indent=1), "sets.json": json.dumps(ev.sets, indent=1)}
    for source in ev.sources():
        paths[f"table.{source}.md"] = ev.table(source).markdown()
    for name, text in paths.items():
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / name).write_text(text, encoding="utf-8")
    return [out_dir / n for n in paths]
