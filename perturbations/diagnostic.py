"""Diagnostic sets: every applicable gold chain perturbed, then a seeded share (or a given id
list) restored to gold, written as scoring input with labels (1 = unperturbed, as in the
paper) and a manifest that makes the build reproducible and checkable."""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import catalogue, sources
from .base import NotApplicable, SplitContext, checked, rng_for

# The reference's id list: which of its sources, and how it named each file.
PARLAI_KEYS = {"aqua": "aqua_synthetic", "entailment_bank": "entailment_bank_synthetic",
               "eqasc": "eqasc_synthetic", "math": "math_dataset_synthetic"}


@dataclass
class SetResult:
    source: str
    perturbation: str
    rows: list[dict] = field(default_factory=list)
    not_applicable: list[dict] = field(default_factory=list)
    selection: str = "seeded"

    @property
    def key(self) -> str:
        return f"{self.source}/{self.perturbation}"

    def counts(self) -> dict:
        perturbed = sum(1 for r in self.rows if r["label"] == 0)
        return {"rows": len(self.rows), "perturbed": perturbed, "unperturbed": len(self.rows) - perturbed,
                "not_applicable": dict(sorted(Counter(r["reason"] for r in self.not_applicable).items()))}


class IdsError(ValueError):
    pass


def load_ids(path: Path) -> dict:
    """Which ids to restore to gold.  Three layouts: this package's ``unperturbed_ids.json``
    ({"source/Perturbation": [ids]}), the reference's ({"aqua_synthetic":
    {"ShuffleSteps_test.jsonl": [row positions]}}), or a plain JSON list of ids for every set."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IdsError(f"{path}: {e}") from e
    if isinstance(data, list):
        return {"*": {"ids": [str(x) for x in data]}}
    if not isinstance(data, dict):
        raise IdsError(f"{path}: expected a JSON object or list")
    out = {}
    for key, value in data.items():
        if isinstance(value, list):
            out[key] = {"ids": [str(x) for x in value]}
        elif isinstance(value, dict):  # the reference's layout: positions per file
            for fname, positions in value.items():
                if not isinstance(positions, list) or not all(isinstance(p, int) for p in positions):
                    raise IdsError(f"{path}: {key}/{fname}: expected a list of row positions")
                out[f"parlai:{key}/{fname}"] = {"positions": positions}
        else:
            raise IdsError(f"{path}: {key!r}: expected a list of ids")
    return out


def _restore_spec(ids: dict | None, source: str, name: str):
    if not ids:
        return None, "seeded"
    if f"{source}/{name}" in ids:
        return ids[f"{source}/{name}"], "ids"
    parlai = f"parlai:{PARLAI_KEYS.get(source, '')}/{name}_test.jsonl"
    if parlai in ids:
        return ids[parlai], "reference-positions"
    if "*" in ids:
        return ids["*"], "ids"
    return None, "seeded"


def build_set(built: sources.Built, perturbation, *, fraction=0.5, seed=42, ids=None, limit=0) -> SetResult:
    name = perturbation.name
    out = SetResult(built.source, name)
    ctx = SplitContext(built.chains)
    chains = built.chains[:limit] if limit else built.chains
    applied = []
    for chain in chains:
        result = checked(perturbation(chain, ctx, rng_for(seed, built.source, name, chain.id)), chain.steps)
        if isinstance(result, NotApplicable):
            out.not_applicable.append({"id": chain.id, **result.as_dict()})
        else:
            applied.append((chain, result))
    spec, out.selection = _restore_spec(ids, built.source, name)
    if spec is None:
        n_perturbed = int(len(applied) * fraction + 0.5)  # half rounds up, on every Python
        restore = set(rng_for(seed, built.source, name, "restore").sample(range(len(applied)),
                                                                          len(applied) - n_perturbed))
    elif "positions" in spec:
        # Best effort: the reference's positions count the rows its generator kept, in
        # source order, which is what ``applied`` is when the same examples apply.
        restore = {p for p in spec["positions"] if 0 <= p < len(applied)}
    else:
        wanted = set(spec["ids"])
        restore = {i for i, (c, _) in enumerate(applied) if c.id in wanted}
    for i, (chain, result) in enumerate(applied):
        gold = i in restore
        out.rows.append({
            "id": chain.id, "source": built.source, "context": chain.context,
            "steps": list(chain.steps if gold else result.steps), "reference": list(chain.steps),
            "answer": chain.answer, "label": 1 if gold else 0, "perturbation": name,
            "changes": [] if gold else [c.as_dict() for c in result.changes],
        })
    return out


def _dumps(row) -> str:
    return json.dumps(row, ensure_ascii=False, sort_keys=False)


def write_jsonl(path: Path, rows) -> str:
    """Write atomically; return the sha256 of what was written."""
    return _write_bytes(path, "".join(_dumps(r) + "\n" for r in rows).encode("utf-8"))


def _write_json(path: Path, doc) -> str:
    return _write_bytes(path, (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> str:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


class OutputExists(FileExistsError):
    pass


def write(out_dir: Path, results: list[SetResult], built: dict[str, sources.Built], *, seed, fraction, limit,
          overwrite=False) -> Path:
    """One JSONL per set (plus ``.not_applicable.jsonl`` when some examples could not be
    perturbed), ``unperturbed_ids.json`` (feed it back to ``--ids`` to rebuild the same
    selection) and ``manifest.json``.  Nothing is replaced unless ``overwrite``."""
    from roscoe import __version__

    out_dir = Path(out_dir)
    targets = [out_dir / r.source / f"{r.perturbation}.jsonl" for r in results]
    targets += [out_dir / "manifest.json", out_dir / "unperturbed_ids.json"]
    clash = [str(t) for t in targets if t.exists()]
    if clash and not overwrite:
        raise OutputExists(f"{clash[0]} exists (and {len(clash) - 1} more); pass --overwrite to replace")
    sets, restored = [], {}
    for r, target in zip(results, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = write_jsonl(target, r.rows)
        na = target.with_name(f"{r.perturbation}.not_applicable.jsonl")
        if r.not_applicable:
            write_jsonl(na, r.not_applicable)
        elif na.exists():
            na.unlink()  # left from an earlier build with --overwrite
        sets.append({"source": r.source, "perturbation": r.perturbation, "file": str(target.relative_to(out_dir)),
                     "sha256": digest, "selection": r.selection, **r.counts()})
        restored[r.key] = [row["id"] for row in r.rows if row["label"] == 1]
    manifest = {
        "package": "roscoe-metrics", "version": __version__, "seed": seed, "fraction_perturbed": fraction,
        "limit": limit or None, "label": "1 = unperturbed (gold), 0 = perturbed",
        "sources": {name: {"files": [{"path": str(p.name), "sha256": sources.sha256(p)} for p in b.files],
                           "chains": len(b.chains),
                           "skipped_rows": dict(sorted(Counter(s.reason for s in b.skipped).items())),
                           "skipped": [s.as_dict() for s in b.skipped]}
                    for name, b in built.items()},
        "sets": sets,
    }
    if any(part in catalogue.LINGUISTIC for r in results for part in r.perturbation.split("_")):
        from .linguistic import analysis_versions

        manifest["analysis"] = analysis_versions()
    _write_json(out_dir / "unperturbed_ids.json", restored)
    _write_json(out_dir / "manifest.json", manifest)
    return out_dir / "manifest.json"


def build(source_names, which="all", *, fraction=0.5, seed=42, ids=None, limit=0, root=None, progress=None):
    """Build every requested set of every source; returns (results, built sources)."""
    results, built = [], {}
    for name in source_names:
        b = sources.build(name, root=root)
        built[name] = b
        for p in catalogue.for_source(name, sources.SOURCES[name].math, which):
            if progress:
                progress(name, p.name)
            results.append(build_set(b, p, fraction=fraction, seed=seed, ids=ids, limit=limit))
    return results, built
