import pytest
import torch
from hypothesis import given, strategies as st

from roscoe.models.batching import run_with_backoff, token_batches


@given(st.lists(st.integers(min_value=0, max_value=600), max_size=200), st.integers(min_value=1, max_value=4096))
def test_token_batches_cover_every_item_once_within_budget(lengths, budget):
    batches = token_batches(lengths, budget)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    for b in batches:
        longest = max(max(1, lengths[i]) for i in b)
        assert len(b) == 1 or longest * len(b) <= budget


def test_token_batches_longest_first_and_max_batch():
    batches = token_batches([3, 10, 5, 10], budget=100, max_batch=2)
    assert batches == [[1, 3], [2, 0]]


def test_backoff_halves_on_oom_and_loses_nothing():
    done, calls = [], []

    def fn(batch):
        calls.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        done.extend(batch)

    run_with_backoff(list(range(7)), fn)
    assert sorted(done) == list(range(7))
    assert calls[0] == 7 and max(c for c in calls if c <= 2) == 2


def test_backoff_reraises_other_errors_and_single_item_oom():
    def bad(batch):
        raise ValueError("not memory")

    with pytest.raises(ValueError):
        run_with_backoff([1, 2], bad)

    def oom(batch):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        run_with_backoff([1], oom)
