"""The board of one task: every scored submission under the task's signature ranked by the
rank-by score, with bootstrap CIs for every score, paired significance against the leader,
rank groups and rank intervals (``roscoe.significance``); everything else listed apart."""
from __future__ import annotations

import math

import numpy as np

from .. import significance

ALPHA = 0.05
N_BOOT, N_TRIALS, SEED = 1000, 10_000, 0


def standings(board, task: str, *, n_boot: int = N_BOOT, n_trials: int = N_TRIALS, seed: int = SEED) -> dict:
    row, config = board.task(task)
    chain_ids = [r["id"] for r in board.db.execute("SELECT id FROM task_chains WHERE task = ? ORDER BY position",
                                                     (task,))]
    position = {cid: k for k, cid in enumerate(chain_ids)}
    subs = board.db.execute("SELECT * FROM submissions WHERE task = ? ORDER BY id", (task,)).fetchall()
    ranked, not_ranked = [], []
    for s in subs:
        if s["status"] != "scored":
            not_ranked.append({"name": s["name"], "submitter": s["submitter"], "status": s["status"],
                               "reason": s["reason"], "submitted": s["submitted"]})
        elif s["signature"] != row["signature"]:
            not_ranked.append({"name": s["name"], "submitter": s["submitter"], "status": "stale",
                               "reason": f"scored under another signature ({s['signature']}); rescore to rank it",
                               "submitted": s["submitted"]})
        else:
            ranked.append(s)
    names = config.scores
    values = {}  # submission id -> (scores, chains) array, NaN where undefined or not submitted
    for s in ranked:
        m = np.full((len(names), len(chain_ids)), np.nan)
        index = {n: k for k, n in enumerate(names)}
        for r in board.db.execute("SELECT chain, score, value FROM scores WHERE submission = ?", (s["id"],)):
            if r["value"] is not None and r["score"] in index and r["chain"] in position:
                m[index[r["score"]], position[r["chain"]]] = r["value"]
        values[s["id"]] = m
    k = names.index(config.rank_by)
    means = {sid: _mean(m[k]) for sid, m in values.items()}
    order = sorted(ranked, key=lambda s: (-means[s["id"]] if not math.isnan(means[s["id"]]) else math.inf, s["id"]))
    rows = []
    leader = order[0]["id"] if order else None
    # paired statistics: only chains every ranked submission has a value for
    common = np.ones(len(chain_ids), dtype=bool)
    for sid in values:
        common &= np.isfinite(values[sid][k])
    rank_by = np.array([values[s["id"]][k][common] for s in order]) if order else np.zeros((0, 0))
    p_ar, p_bs = {}, {}
    if len(order) > 1 and common.any():
        others = [s["id"] for s in order[1:]]
        lead = values[leader][k][common]
        raw_ar = [significance.approximate_randomization(lead, values[o][k][common], n=n_trials, seed=seed)
                  for o in others]
        raw_bs = [significance.paired_bootstrap(lead, values[o][k][common], n=n_boot, seed=seed) for o in others]
        p_ar = dict(zip(others, significance.holm(raw_ar)))
        p_bs = dict(zip(others, significance.holm(raw_bs)))
        groups = significance.rank_groups(rank_by, alpha=ALPHA, n=n_trials, seed=seed)
        intervals = significance.rank_intervals(rank_by, n=n_boot, seed=seed)
    else:
        groups, intervals = [1] * len(order), [(1, 1)] * len(order)
    for rank, (s, group, interval) in enumerate(zip(order, groups, intervals), start=1):
        m = values[s["id"]]
        per_score = {}
        for j, n in enumerate(names):
            finite = m[j][np.isfinite(m[j])]
            lo, hi = significance.bootstrap_ci(finite, n=n_boot, seed=seed)
            per_score[n] = {"mean": _num(_mean(m[j])), "ci_low": _num(lo), "ci_high": _num(hi), "n": int(len(finite))}
        top = per_score[config.rank_by]
        rows.append({"rank": rank, "group": group, "rank_ci": list(interval), "name": s["name"],
                     "submitter": s["submitter"], "n": top["n"], "value": top["mean"], "ci_low": top["ci_low"],
                     "ci_high": top["ci_high"], "p_vs_leader": _num(p_ar.get(s["id"])),
                     "p_bootstrap_vs_leader": _num(p_bs.get(s["id"])),
                     "significant_vs_leader": bool(p_ar.get(s["id"], 1.0) < ALPHA),
                     "missing": s["n_missing"], "seconds": _num(s["seconds"]), "submitted": s["submitted"],
                     "scores": per_score})
    return {"task": task, "task_hash": row["task_hash"], "signature": row["signature"], "rank_by": config.rank_by,
            "scores": names, "mode": config.mode, "paired_chains": int(common.sum()) if order else 0,
            "chains": len(chain_ids), "alpha": ALPHA, "n_boot": n_boot, "n_trials": n_trials, "seed": seed,
            "rows": rows, "not_ranked": not_ranked}


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else float("nan")


def _num(v):
    """JSON has no NaN: None stands for it."""
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v
