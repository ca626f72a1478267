"""Token-budgeted, length-sorted batches with back-off on out-of-memory."""
from __future__ import annotations

from typing import Callable, Sequence

import torch


def token_batches(lengths: Sequence[int], budget: int, max_batch: int | None = None, *,
                  exact: bool = False) -> list[list[int]]:
    """Group item indices into batches whose padded size (rows x longest row) fits ``budget``.

    Items are taken longest first, so the first batch is the most memory-hungry one and an
    out-of-memory error shows up at once.  An item longer than the budget gets a batch of
    its own.  Ties keep input order, so the grouping is a pure function of the lengths.

    ``exact``: a batch holds items of one length only, so nothing is padded.  In fp32 a text's
    outputs then no longer depend on the texts it happens to be batched with: padding changed
    a probability by up to 1.5e-6, the row count alone by about 1e-7 (measured on the lite NLI
    model), so the same chain scores the same in any file, block or Ray actor.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        n = max(1, lengths[i])
        new_longest = max(longest, n)
        too_many = max_batch is not None and len(current) >= max_batch
        if current and (new_longest * (len(current) + 1) > budget or too_many or (exact and n != longest)):
            batches.append(current)
            current, new_longest = [], n
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def is_oom(err: BaseException) -> bool:
    if isinstance(err, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def run_with_backoff(batch: list[int], fn: Callable[[list[int]], None],
                     on_oom: Callable[[list[int]], None] | None = None) -> None:
    """Run ``fn`` on a batch; on out-of-memory, halve the batch and retry both halves.

    Nothing is lost: every item is eventually run, alone if need be.  A single item that
    still does not fit re-raises.  ``on_oom(batch)`` hears of every batch that did not fit.
    """
    try:
        fn(batch)
    except Exception as err:  # noqa: BLE001 - only OOM is handled, the rest re-raises
        if not is_oom(err) or len(batch) == 1:
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if on_oom is not None:
            on_oom(batch)
        half = len(batch) // 2
        run_with_backoff(batch[:half], fn, on_oom)
        run_with_backoff(batch[half:], fn, on_oom)


def run_batches(batches: list[list[int]], collate: Callable, compute: Callable, *, prefetch: bool,
                on_oom: Callable[[list[int]], bool] | None = None,
                replan: Callable[[list[int]], list[list[int]]] | None = None) -> None:
    """``compute(idx, collate(idx))`` for every batch.  With ``prefetch`` (a GPU run) the next
    batch is collated on a background thread while the device works on this one, so
    host-side padding and copies overlap with the kernels.  Out-of-memory halves a batch and
    re-collates the halves; when ``on_oom`` then returns True (it lowered the budget), the
    batches not yet run are re-planned by ``replan`` so they do not fail in turn."""
    from collections import deque

    shrunk = False

    def told(batch):
        nonlocal shrunk
        if on_oom is not None and on_oom(batch):
            shrunk = True

    def run(idx, ready=None):
        def attempt(sub):
            compute(sub, ready if (ready is not None and sub is idx) else collate(sub))

        run_with_backoff(idx, attempt, told)

    queue = deque(batches)
    pool = None
    if prefetch and len(queue) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1)
    try:
        pending = pool.submit(collate, queue[0]) if pool else None
        while queue:
            idx = queue.popleft()
            ready = pending.result() if pending else None
            pending = pool.submit(collate, queue[0]) if pool and queue else None
            run(idx, ready)
            if shrunk and replan is not None and queue:
                shrunk = False
                if pending:
                    pending.result()  # collated for the old plan: dropped
                queue = deque(replan([i for b in queue for i in b]))
                pending = pool.submit(collate, queue[0]) if pool and queue else None
    finally:
        if pool:
            pool.shutdown(wait=True)


def run_budgeted(items: list[int], lengths, owner, collate: Callable, compute: Callable, *, prefetch: bool) -> None:
    """Plan ``items`` (indices, ``lengths[i]`` tokens each) into length-sorted batches of at most
    ``owner.batch_tokens`` padded tokens and run them with ``run_batches``.  A batch that runs
    out of memory lowers ``owner.batch_tokens`` for good to half its padded size (the budget is
    halved, not only that batch), and the batches not yet run are re-planned with it."""

    def plan(subset):
        return [[subset[j] for j in b] for b in token_batches([lengths[i] for i in subset], owner.batch_tokens,
                                                              exact=getattr(owner, "exact_lengths", False))]

    def lower(batch) -> bool:
        padded = len(batch) * max(max(1, lengths[i]) for i in batch)
        owner.stats.backoffs += 1
        if padded // 2 < owner.batch_tokens:
            owner.batch_tokens = max(1, padded // 2)
            return True
        return False

    run_batches(plan(items), collate, compute, prefetch=prefetch, on_oom=lower, replan=plan)


def gather_to_host(results: list[tuple[list[int], torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """A pass's ``[(item indices, values on the device)]`` as (all indices, all values on the
    host), with one device-to-host copy for the whole pass instead of one per batch."""
    order = torch.tensor([i for idx, _ in results for i in idx], dtype=torch.long)
    return order, torch.cat([values for _, values in results]).cpu()
