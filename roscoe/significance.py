"""Uncertainty and significance for comparing systems by one score over the same chains.

Conventions follow sacrebleu's ``significance`` module: a paired bootstrap (1,000 resamples)
whose p-value counts resampled differences, centred on their mean, that exceed the observed
one; approximate randomisation (10,000 trials) swapping each chain's pair of values with
probability 1/2; both with ``p = (c + 1) / (n + 1)``, c counting statistics at least as large
as the observed one.  On top: Holm's step-down correction,
rank groups and rank intervals from the same bootstrap resamples.  Every function takes
per-chain values already paired (same chains, same order) and a seed, so results repeat.
"""
from __future__ import annotations

import numpy as np

CHUNK = 256  # resamples or trials held at once: (CHUNK x chains) values


def bootstrap_ci(x: np.ndarray, *, n: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``x`` (NaN, NaN when empty)."""
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return float("nan"), float("nan")
    means = np.concatenate([x[idx].mean(axis=1) for idx in _resamples(len(x), n, seed)])
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _resamples(size: int, n: int, seed: int):
    """``n`` bootstrap index rows over ``size`` items, CHUNK rows at a time (one seeded stream)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, CHUNK):
        yield rng.integers(0, size, size=(min(CHUNK, n - start), size))


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, n: int = 1000, seed: int = 0) -> float:
    """Two-sided p-value that the means of ``a`` and ``b`` differ, by paired bootstrap."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    observed = abs(a.mean() - b.mean())
    diffs = np.concatenate([np.abs(a[idx].mean(axis=1) - b[idx].mean(axis=1)) for idx in _resamples(len(a), n, seed)])
    return _p_value(diffs - diffs.mean(), observed)


def approximate_randomization(a: np.ndarray, b: np.ndarray, *, n: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value that the means of ``a`` and ``b`` differ, by paired approximate
    randomisation: each trial swaps every chain's two values with probability 1/2."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    observed = abs(np.ones(len(d)) @ d) / len(d)
    stats = []
    for start in range(0, n, CHUNK):
        signs = np.where(rng.integers(0, 2, size=(min(CHUNK, n - start), len(d)), dtype=bool), 1.0, -1.0)
        stats.append(np.abs(signs @ d) / len(d))
    return _p_value(np.concatenate(stats), observed)


def _p_value(stats: np.ndarray, observed: float) -> float:
    # c counts statistics at least as large as the observed one (sacrebleu counts strictly
    # larger ones, which gives two identical systems p = 1 / (n + 1), "significant"; here
    # they get p = 1, as a leaderboard must)
    return float((np.sum(stats >= observed) + 1) / (len(stats) + 1))


def holm(p_values) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def rank_groups(values: np.ndarray, *, alpha: float = 0.05, n: int = 10_000, seed: int = 0) -> list[int]:
    """Group numbers (1 = best) for systems whose per-chain values are the rows of ``values``
    (systems x the same chains).  The best system's group holds every system not
    significantly worse than it (approximate randomisation, Holm-corrected over the
    comparisons); the best of the rest heads the next group, and so on down."""
    values = np.asarray(values, dtype=float)
    remaining = sorted(range(len(values)), key=lambda i: -values[i].mean())
    group = [0] * len(values)
    number = 0
    while remaining:
        number += 1
        head, others = remaining[0], remaining[1:]
        adjusted = holm([approximate_randomization(values[head], values[o], n=n, seed=seed) for o in others])
        members = {head} | {o for o, p in zip(others, adjusted) if p >= alpha}
        for i in members:
            group[i] = number
        remaining = [i for i in remaining if i not in members]
    return group


def rank_intervals(values: np.ndarray, *, n: int = 1000, seed: int = 0, level: float = 0.95) -> list[tuple[int, int]]:
    """Per system, the ``level`` interval of its rank (1 = best) over bootstrap resamples of
    the chains, every system ranked on the same resample."""
    values = np.asarray(values, dtype=float)
    ranks = []
    for idx in _resamples(values.shape[1], n, seed):
        means = values[:, idx].mean(axis=2)  # (systems, resamples)
        # rank 1 = highest mean; ties share the better rank
        ranks.append((means[None, :, :] > means[:, None, :]).sum(axis=1) + 1)
    ranks = np.concatenate(ranks, axis=1)
    lo = np.quantile(ranks, (1 - level) / 2, axis=1, method="lower")
    hi = np.quantile(ranks, (1 + level) / 2, axis=1, method="higher")
    return [(int(a), int(b)) for a, b in zip(lo, hi)]
