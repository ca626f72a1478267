"""Correlations between scores and human labels: Somers' D (label first), Kendall tau-b,
Spearman and Pearson, each with a p-value, a seeded bootstrap CI and the pairwise n.

Somers' D(score | label) = tau_a(label, score) / tau_a(label, label), which is
``scipy.stats.somersd(label, score).statistic``: pairs tied on the label leave the
denominator; pairs tied only on the score stay in it and count as neither concordant nor
discordant.  For a binary label it equals 2 * AUROC - 1 (score ties half credit), computed
from ranks.

Every statistic is implemented for many score columns at once (``STAT_MANY``), so one
bootstrap resample of the chains serves every score; p-values come from SciPy.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

METHODS = ("somers_d", "kendall_tau_b", "spearman", "pearson")
_PAIR_CHUNK = 2_000_000  # pair-sign matrices are built in chunks of about this many entries


@dataclass
class Cell:
    score: str
    label: str
    method: str
    value: float
    p: float
    ci_low: float
    ci_high: float
    n: int
    reason: str | None = None

    def as_dict(self):
        return asdict(self)

    @property
    def significant(self) -> bool:
        return self.p is not None and not math.isnan(self.p) and self.p < 0.05


def _is_binary(y: np.ndarray) -> bool:
    return len(np.unique(y)) == 2


def somers_d_binary(label: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """D for a two-valued label against every column of ``scores`` (n x k), via ranks.

    The higher label value is the positive class, so a score that is higher for good chains
    gets a positive D, as with scipy.stats.somersd(label, score)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1:
        scores = scores[:, None]
    hi = label == label.max()
    n_pos, n_neg = int(hi.sum()), int((~hi).sum())
    ranks = sps.rankdata(scores, axis=0)
    auc = (ranks[hi].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return 2 * auc - 1


def _pair_signs(x: np.ndarray, S: np.ndarray):
    """Sums over pairs i < j of sign(dx)*sign(dS), |sign(dx)|, |sign(dS)| per column."""
    n, k = len(x), S.shape[1]
    ii, jj = np.triu_indices(n, 1)
    num, ts, tx = np.zeros(k), np.zeros(k), 0.0
    step = max(1, _PAIR_CHUNK // max(1, k))
    for a in range(0, len(ii), step):
        i, j = ii[a: a + step], jj[a: a + step]
        dx = np.sign(x[i] - x[j])
        dS = np.sign(S[i] - S[j])
        num += dx @ dS
        tx += np.abs(dx).sum()
        ts += np.abs(dS).sum(axis=0)
    return num, tx, ts


def somers_d_many(x: np.ndarray, S: np.ndarray) -> np.ndarray:
    if _is_binary(x):
        return somers_d_binary(x, S)
    num, tx, _ = _pair_signs(x, S)
    return num / tx if tx else np.full(S.shape[1], math.nan)


def kendall_tau_b_many(x: np.ndarray, S: np.ndarray) -> np.ndarray:
    num, tx, ts = _pair_signs(x, S)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / np.sqrt(tx * ts)


def pearson_many(x: np.ndarray, S: np.ndarray) -> np.ndarray:
    xc = x - x.mean()
    Sc = S - S.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc @ Sc) / np.sqrt((xc @ xc) * (Sc * Sc).sum(axis=0))


def spearman_many(x: np.ndarray, S: np.ndarray) -> np.ndarray:
    return pearson_many(sps.rankdata(x), sps.rankdata(S, axis=0))


STAT_MANY = {"somers_d": somers_d_many, "kendall_tau_b": kendall_tau_b_many, "spearman": spearman_many,
             "pearson": pearson_many}


def somers_d(label, score) -> float:
    """D(score | label) for any ordinal label."""
    return float(somers_d_many(np.asarray(label, dtype=float), np.asarray(score, dtype=float)[:, None])[0])


def pvalue(method: str, x: np.ndarray, y: np.ndarray) -> float:
    if method == "somers_d":
        return float(sps.somersd(x, y).pvalue)
    if method == "kendall_tau_b":
        return float(sps.kendalltau(x, y).pvalue)
    if method == "spearman":
        return float(sps.spearmanr(x, y).pvalue)
    if method == "pearson":
        return float(sps.pearsonr(x, y).pvalue)
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def _block(x, S, names, lname, method, *, n_boot, seed, level) -> list[Cell]:
    """Cells for score columns that share the same rows (no NaN among them)."""
    stat = STAT_MANY[method]
    values = stat(x, S)
    boots = np.empty((0, S.shape[1]))
    if n_boot:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(x), size=(n_boot, len(x)))
        boots = np.array([stat(x[row], S[row]) for row in idx if np.ptp(x[row]) > 0]).reshape(-1, S.shape[1])
    out = []
    for k, name in enumerate(names):
        col = boots[:, k][np.isfinite(boots[:, k])] if len(boots) else boots[:, 0]
        if n_boot and len(col) >= n_boot // 2:
            lo, hi = (float(v) for v in np.quantile(col, [(1 - level) / 2, 1 - (1 - level) / 2]))
        else:
            lo = hi = math.nan
        out.append(Cell(name, lname, method, float(values[k]), pvalue(method, x, S[:, k]), lo, hi, int(len(x))))
    return out


def correlate_pair(label, score, method="somers_d", *, score_name="", label_name="", n_boot=1000, seed=0,
                   level=0.95) -> Cell:
    """One cell: NaN dropped pairwise; too few pairs or a constant side give NaN and a reason."""
    return correlate({score_name: score}, {label_name: label}, (method,), n_boot=n_boot, seed=seed, level=level)[0]


def correlate(scores: dict, labels: dict, methods=("somers_d",), *, n_boot=1000, seed=0, level=0.95) -> list[Cell]:
    """Every (score, label, method) cell.  ``scores`` and ``labels`` map names to arrays
    aligned on the same chains.  Score columns with the same missing-value pattern on a
    label's rows are computed together; the numbers are those of one column at a time."""
    for m in methods:
        if m not in STAT_MANY:
            raise ValueError(f"unknown method {m!r}; expected one of {METHODS}")
    out: dict[tuple, Cell] = {}
    nan = math.nan
    for lname, lab in labels.items():
        lab = np.asarray(lab, dtype=float)
        groups: dict[bytes, list[str]] = {}
        cols = {n: np.asarray(s, dtype=float) for n, s in scores.items()}
        for n, s in cols.items():
            ok = ~(np.isnan(lab) | np.isnan(s))
            groups.setdefault(ok.tobytes(), []).append(n)
        for key, names in groups.items():
            ok = np.frombuffer(key, dtype=bool)
            x = lab[ok]
            live = []
            for n in names:
                y = cols[n][ok]
                reason = ("too_few_pairs" if len(x) < 3 else "constant_label" if np.ptp(x) == 0
                          else "constant_score" if np.ptp(y) == 0 else None)
                if reason:
                    for m in methods:
                        out[(n, lname, m)] = Cell(n, lname, m, nan, nan, nan, nan, int(len(x)), reason)
                else:
                    live.append(n)
            if not live:
                continue
            S = np.column_stack([cols[n][ok] for n in live])
            for m in methods:
                for cell in _block(x, S, live, lname, m, n_boot=n_boot, seed=seed, level=level):
                    out[(cell.score, lname, m)] = cell
    return [out[(s, l, m)] for l in labels for s in scores for m in methods]
