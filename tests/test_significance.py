"""Paired significance, Holm, rank groups and rank intervals against hand-worked cases."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roscoe import significance as sig


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.04); back in input order
    assert sig.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert sig.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert sig.holm([]) == []


def test_a_system_against_itself_is_never_significant():
    x = np.random.default_rng(1).random(50)
    # every trial gives 0, as large as the observed 0: c = n, p = (n + 1) / (n + 1)
    assert sig.approximate_randomization(x, x, n=999) == 1.0
    assert sig.paired_bootstrap(x, x, n=999) == 1.0


def test_a_clear_difference_gets_the_smallest_p():
    rng = np.random.default_rng(2)
    a = rng.random(200)
    b = a - 0.2  # every chain worse by 0.2: no swap or resample exceeds it
    assert sig.approximate_randomization(a, b, n=999) == pytest.approx(1 / 1000)
    assert sig.paired_bootstrap(a, b, n=999) < 0.01


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=30), st.integers(0, 100))
def test_p_values_are_in_range_and_symmetric(values, seed):
    a = np.array(values)
    b = np.roll(a, 1)
    p = sig.approximate_randomization(a, b, n=200, seed=seed)
    assert 1 / 201 <= p <= 1.0
    assert p == sig.approximate_randomization(b, a, n=200, seed=seed)  # two-sided


def test_rank_groups_and_intervals_separate_what_differs():
    rng = np.random.default_rng(3)
    base = rng.random(300)
    systems = np.array([base + 0.30, base + 0.30 + rng.normal(0, 0.05, 300), base, base + rng.normal(0, 0.05, 300)])
    groups = sig.rank_groups(systems, n=999)
    assert groups[0] == groups[1] == 1 and groups[2] == groups[3] == 2
    intervals = sig.rank_intervals(systems, n=200)
    assert set(intervals[0]) <= {1, 2} and set(intervals[1]) <= {1, 2}
    assert set(intervals[2]) <= {3, 4} and set(intervals[3]) <= {3, 4}
    lo, hi = sig.bootstrap_ci(base, n=500)
    assert lo < base.mean() < hi
