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


@given(st.lists(st.integers(min_value=0, max_value=60), max_size=200), st.integers(min_value=1, max_value=512))
def test_exact_token_batches_hold_one_length_each(lengths, budget):
    batches = token_batches(lengths, budget, exact=True)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len({max(1, lengths[i]) for i in b}) == 1
        assert len(b) == 1 or max(1, lengths[b[0]]) * len(b) <= budget
    # as few batches as the budget allows: one length fills its batches before the next starts
    for n in {max(1, x) for x in lengths}:
        count = sum(1 for x in lengths if max(1, x) == n)
        per = max(1, budget // n)
        assert sum(1 for b in batches if max(1, lengths[b[0]]) == n) == -(-count // per)


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


def test_lru_cache_bounds_and_order():
    from roscoe.cache import LRU

    calls = []

    def compute(keys):
        calls.append(list(keys))
        return [k.upper() for k in keys]

    c = LRU(3)
    assert c.lookup(["a", "b", "a"], compute) == ["A", "B", "A"]  # a duplicate in one call is computed twice
    assert c.lookup(["b", "c", "d"], compute) == ["B", "C", "D"]
    assert calls[-1] == ["c", "d"] and len(c) == 3
    c.lookup(["a"], compute)  # "a" was evicted (least recently used)
    assert calls[-1] == ["a"]
    assert c.stats() == {"items": 3, "bytes": 0, "hits": 1, "misses": 6}  # only "b" in the second call hit
    off = LRU(0)
    off.lookup(["x"], compute)
    off.lookup(["x"], compute)
    assert len(off) == 0 and calls[-1] == ["x"] and calls[-2] == ["x"]


def test_lru_cache_byte_bound():
    """Token matrices differ a hundredfold in size: the cache also keeps to a byte bound,
    evicting the least recently used values until the rest fit."""
    from roscoe.cache import LRU

    c = LRU(100, max_bytes=10, size=len)
    c.lookup(["aaaa", "bbbb"], lambda ks: ks)
    assert len(c) == 2 and c.bytes == 8
    c.lookup(["aaaa"], lambda ks: ks)  # "aaaa" is now the most recently used
    c.lookup(["cccccc"], lambda ks: ks)  # 14 bytes: "bbbb" goes, then 10 fit
    assert c.bytes == 10 and c.lookup(["aaaa", "cccccc"], lambda ks: ["miss"] * len(ks)) == ["aaaa", "cccccc"]
    c.lookup(["x" * 11], lambda ks: ks)  # larger than the bound alone: kept by nobody
    assert len(c) == 0 and c.bytes == 0


@pytest.mark.parametrize("prefetch", [False, True])
def test_run_batches_prefetch_and_backoff(prefetch):
    from roscoe.models.batching import run_batches

    collated, computed = [], []

    def collate(idx):
        collated.append(list(idx))
        return [i * 10 for i in idx]

    def compute(idx, batch):
        if len(idx) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        assert batch == [i * 10 for i in idx]  # the prepared batch belongs to these items
        computed.extend(idx)

    run_batches([[0, 1, 2, 3], [4], [5, 6]], collate, compute, prefetch=prefetch)
    assert sorted(computed) == list(range(7))
    assert [0, 1] in collated and [2, 3] in collated  # halves are re-collated


@pytest.mark.parametrize("prefetch", [False, True])
def test_out_of_memory_halves_the_budget_and_replans_the_rest(prefetch):
    """One batch that does not fit lowers the budget for good, so the batches after it are
    planned small enough and never fail in turn; every item still runs exactly once."""
    from types import SimpleNamespace

    from roscoe.models.batching import run_budgeted
    from roscoe.models.encoders import PassStats

    owner = SimpleNamespace(batch_tokens=100, stats=PassStats())
    lengths = [10] * 40  # 4 batches of 10 items under the first budget
    computed, failed = [], []

    def compute(idx, batch):
        if len(idx) * 10 > 40:  # the device holds 40 tokens
            failed.append(len(idx))
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        assert batch == idx
        computed.extend(idx)

    run_budgeted(list(range(40)), lengths, owner, lambda idx: list(idx), compute, prefetch=prefetch)
    assert sorted(computed) == list(range(40))
    # the first batch (100 tokens) and its halves (50) fail; then the budget is 25 for good
    assert failed == [10, 5, 5] and owner.stats.backoffs == 3 and owner.batch_tokens == 25


def test_tokenized_ahead_gives_a_subset_in_order_or_none():
    from roscoe.models.encoders import Tokenized

    t = Tokenized(["a", "b", "c"], {"input_ids": [[1], [2, 2], [3, 3, 3]], "keep": [[0], [1, 1], [0, 1, 0]]})
    assert len(t) == 3
    assert t.take(["c", "a"]) == {"input_ids": [[3, 3, 3], [1]], "keep": [[0, 1, 0], [0]]}
    assert t.take(["a", "z"]) is None  # not tokenized ahead: the pass tokenizes itself
