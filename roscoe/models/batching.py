"""Token-budgeted, length-sorted batches with back-off on out-of-memory."""
from __future__ import annotations

from typing import Callable, Sequence

import torch


def token_batches(lengths: Sequence[int], budget: int, max_batch: int | None = None) -> list[list[int]]:
    """Group item indices into batches whose padded size (rows x longest row) fits ``budget``.

    Items are taken longest first, so the first batch is the most memory-hungry one and an
    out-of-memory error shows up at once.  An item longer than the budget gets a batch of
    its own.  Ties keep input order, so the grouping is a pure function of the lengths.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        n = max(1, lengths[i])
        new_longest = max(longest, n)
        too_many = max_batch is not None and len(current) >= max_batch
        if current and (new_longest * (len(current) + 1) > budget or too_many):
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


def run_with_backoff(batch: list[int], fn: Callable[[list[int]], None]) -> None:
    """Run ``fn`` on a batch; on out-of-memory, halve the batch and retry both halves.

    Nothing is lost: every item is eventually run, alone if need be.  A single item that
    still does not fit re-raises.
    """
    try:
        fn(batch)
    except Exception as err:  # noqa: BLE001 - only OOM is handled, the rest re-raises
        if not is_oom(err) or len(batch) == 1:
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(batch) // 2
        run_with_backoff(batch[:half], fn)
        run_with_backoff(batch[half:], fn)


def run_batches(batches: list[list[int]], collate: Callable, compute: Callable, *, prefetch: bool) -> None:
    """``compute(idx, collate(idx))`` for every batch.  With ``prefetch`` (a GPU run) the next
    batch is collated on a background thread while the device works on this one, so
    host-side padding and copies overlap with the kernels.  Out-of-memory halves a batch and
    re-collates the halves."""

    def run(idx, ready=None):
        def attempt(sub):
            compute(sub, ready if (ready is not None and sub is idx) else collate(sub))

        run_with_backoff(idx, attempt)

    if not prefetch or len(batches) < 2:
        for idx in batches:
            run(idx)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(collate, batches[0])
        for k, idx in enumerate(batches):
            ready = pending.result()
            if k + 1 < len(batches):
                pending = pool.submit(collate, batches[k + 1])
            run(idx, ready)


def gather_to_host(results: list[tuple[list[int], torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """A pass's ``[(item indices, values on the device)]`` as (all indices, all values on the
    host), with one device-to-host copy for the whole pass instead of one per batch."""
    order = torch.tensor([i for idx, _ in results for i in idx], dtype=torch.long)
    return order, torch.cat([values for _, values in results]).cpu()
