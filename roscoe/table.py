"""Results: the per-chain score table, its signature, and a summary with bootstrap CIs."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Signature:
    """A sacrebleu-style ``key:value|...`` string that pins down how scores were made."""

    fields: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return "|".join(f"{k}:{v}" for k, v in self.fields.items())

    def __eq__(self, other) -> bool:
        return str(self) == str(other)

    @classmethod
    def parse(cls, text: str) -> "Signature":
        pairs = (part.split(":", 1) for part in text.split("|") if part)
        return cls({k: v for k, v in pairs})


@dataclass
class ScoreTable:
    """One row per chain: its id, one float per score (NaN where undefined, with the reason
    in ``reasons[row][score]``), passthrough fields, and optional per-step details."""

    ids: list
    names: tuple[str, ...]
    values: np.ndarray  # (rows, scores), float64
    reasons: list[dict]
    extra: list[dict]
    details: list[dict] | None = None
    signature: Signature = field(default_factory=Signature)
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]

    def records(self) -> list[dict]:
        """Rows as dicts: ``id``, passthrough fields, scores (None where NaN), ``reasons``
        (score -> reason for each None) and, if computed, ``details``."""
        out = []
        for r, cid in enumerate(self.ids):
            row = {"id": cid, **self.extra[r]}
            for k, name in enumerate(self.names):
                v = float(self.values[r, k])
                row[name] = None if math.isnan(v) else v
            row["reasons"] = dict(self.reasons[r])
            if self.details is not None:
                row["details"] = self.details[r]
            out.append(row)
        return out

    to_records = records

    def to_pandas(self):
        import pandas as pd

        df = pd.DataFrame(self.values, columns=list(self.names))
        df.insert(0, "id", self.ids)
        for k in (self.extra[0] if self.extra else {}):
            df.insert(1, k, [e.get(k) for e in self.extra])
        df["reasons"] = [dict(r) for r in self.reasons]
        if self.details is not None:
            df["details"] = self.details
        return df

    def summary(self, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
        return summarize(self.names, self.values, self.reasons, n_boot=n_boot, seed=seed, level=level)

    def take(self, rows: list[int]) -> "ScoreTable":
        """The table of the given rows, in that order."""
        return ScoreTable([self.ids[r] for r in rows], self.names, self.values[rows], [self.reasons[r] for r in rows],
                          [self.extra[r] for r in rows], None if self.details is None else
                          [self.details[r] for r in rows], self.signature, self.stats)

    @staticmethod
    def concat(tables: list["ScoreTable"]) -> "ScoreTable":
        first = tables[0]
        details = None if first.details is None else [d for t in tables for d in t.details]
        return ScoreTable(
            [i for t in tables for i in t.ids], first.names,
            np.concatenate([t.values for t in tables]),
            [r for t in tables for r in t.reasons], [e for t in tables for e in t.extra], details,
            first.signature, first.stats)


BOOTSTRAP_MAX_N = 50_000


def bootstrap_ci(x: np.ndarray, *, n_boot=1000, seed=0, level=0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, resampling rows with a fixed seed."""
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, 2_000_000 // len(x))  # resamples per chunk: bounded memory
    for a in range(0, n_boot, step):
        b = min(n_boot, a + step)
        means[a:b] = x[rng.integers(0, len(x), size=(b - a, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def summarize(names, values, reasons, *, n_boot=1000, seed=0, level=0.95) -> dict:
    """Per score: n defined, mean, a 95 % CI and NaN counts by reason.

    ``values``: a (rows, scores) array or a dict name -> column; ``reasons``: per-row dicts
    or a dict name -> {reason: count}.  The CI is a seeded percentile bootstrap up to
    ``BOOTSTRAP_MAX_N`` defined values and the normal interval of the mean beyond (the two
    agree there to well under 1e-3); ``ci_method`` says which."""
    from statistics import NormalDist

    out = {}
    for k, name in enumerate(names):
        col = values[name] if isinstance(values, dict) else values[:, k]
        ok = col[~np.isnan(col)]
        if isinstance(reasons, dict):
            nan_reasons = dict(reasons.get(name, {}))
        else:
            nan_reasons = {}
            for r in reasons:
                if name in r:
                    nan_reasons[r[name]] = nan_reasons.get(r[name], 0) + 1
        if len(ok) <= BOOTSTRAP_MAX_N:
            lo, hi = bootstrap_ci(ok, n_boot=n_boot, seed=seed, level=level)
            method = "bootstrap"
        else:
            z = NormalDist().inv_cdf(0.5 + level / 2)
            half = z * float(ok.std(ddof=1)) / math.sqrt(len(ok))
            lo, hi = float(ok.mean()) - half, float(ok.mean()) + half
            method = "normal"
        out[name] = {"n": int(len(ok)), "mean": float(ok.mean()) if len(ok) else math.nan,
                     "ci_low": lo, "ci_high": hi, "ci_method": method, "nan": int(len(col) - len(ok)),
                     "nan_reasons": nan_reasons}
    return out


def format_summary(summary: dict, signature: Signature | str | None = None) -> str:
    lines = [f"{'score':<26} {'n':>6} {'mean':>8}  {'95% CI':<19} NaN (reason)"]
    for name, s in summary.items():
        ci = "" if math.isnan(s["ci_low"]) else f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}]"
        mean = "nan" if math.isnan(s["mean"]) else f"{s['mean']:.4f}"
        why = ", ".join(f"{n} {r}" for r, n in sorted(s["nan_reasons"].items(), key=lambda kv: -kv[1]))
        lines.append(f"{name:<26} {s['n']:>6} {mean:>8}  {ci:<19} {why}")
    if signature is not None:
        lines.append(f"signature: {signature}")
    return "\n".join(lines)
