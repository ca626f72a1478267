import math

import numpy as np
import pytest

from roscoe.table import BOOTSTRAP_MAX_N, ScoreTable, Signature, bootstrap_ci, format_summary, summarize


def test_bootstrap_ci_is_seeded_and_sane():
    x = np.random.default_rng(0).normal(0.5, 0.1, 400)
    a, b = bootstrap_ci(x, seed=3), bootstrap_ci(x, seed=3)
    assert a == b and a[0] < x.mean() < a[1]
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    assert a[1] - a[0] == pytest.approx(2 * half, rel=0.15)
    assert bootstrap_ci(np.array([0.3])) == (0.3, 0.3)
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([])))


def test_large_n_uses_the_normal_interval_which_agrees_with_the_bootstrap():
    x = np.random.default_rng(1).uniform(0, 1, BOOTSTRAP_MAX_N + 1)
    big = summarize(["s"], {"s": x}, {})["s"]
    small = summarize(["s"], {"s": x[:-1]}, {})["s"]
    assert (big["ci_method"], small["ci_method"]) == ("normal", "bootstrap")
    assert abs(big["ci_low"] - small["ci_low"]) < 1e-3 and abs(big["ci_high"] - small["ci_high"]) < 1e-3


def test_summary_counts_reasons_both_ways():
    values = np.array([[0.5, np.nan], [0.7, np.nan], [np.nan, 0.2]])
    reasons = [{"b": "too_few_steps"}, {"b": "too_few_steps"}, {"a": "empty_context"}]
    s1 = summarize(["a", "b"], values, reasons)
    s2 = summarize(["a", "b"], {"a": values[:, 0], "b": values[:, 1]},
                   {"a": {"empty_context": 1}, "b": {"too_few_steps": 2}})
    for s in (s1, s2):
        assert s["a"]["n"] == 2 and s["a"]["mean"] == pytest.approx(0.6)
        assert s["b"]["nan_reasons"] == {"too_few_steps": 2} and s["b"]["nan"] == 2
    text = format_summary(s1, "roscoe:0.1.0|mode:paper")
    assert "2 too_few_steps" in text and text.endswith("signature: roscoe:0.1.0|mode:paper")


def test_signature_round_trip_and_table_records():
    sig = Signature({"roscoe": "0.1.0", "mode": "paper", "emb": "m@abc+mean+256"})
    assert Signature.parse(str(sig)) == sig
    t = ScoreTable(["a", 2], ("x", "y"), np.array([[0.1, np.nan], [0.2, 0.3]]), [{"y": "no_reference"}, {}],
                   [{"k": 1}, {"k": 2}], signature=sig)
    recs = t.records()
    assert recs[0] == {"id": "a", "k": 1, "x": 0.1, "y": None, "reasons": {"y": "no_reference"}}
    assert t["y"][1] == 0.3 and len(t) == 2
    both = ScoreTable.concat([t, t])
    assert len(both) == 4 and both.ids[2] == "a"
