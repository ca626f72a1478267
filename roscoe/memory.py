"""The scorer's memory budget: how much working memory a block may use besides the models.

The budget bounds what grows with the input rather than with the models: the block's model
outputs (token vectors above all), the cache of outputs kept across blocks, and the formula
tensors, whose pairwise token matrices grow with the square of a chain's token count.  The
scorer splits it: a quarter for the output cache, a quarter for a block's outputs, half for
the formula tensors of the chains computed together (``groups`` below).
"""
from __future__ import annotations

import os
import re

import numpy as np

_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20, "MIB": 2**20,
          "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40, "TIB": 2**40}
# The default is a share of what is free, capped: past a gigabyte the formulas gain nothing
# measurable (benchmarks/README.md, long chains), and the rest is better left to the models'
# batches and to other processes.
DEFAULT_SHARE = 8
DEFAULT_CAP = {"cpu": 2**30, "cuda": 4 * 2**30}
# Below this, a block could hold next to nothing and every chain would pay the per-group cost.
MIN_BUDGET = 64 * 2**20


def parse_size(text) -> int:
    """Bytes from ``512M``, ``2G``, ``1.5GiB`` or a plain number of bytes."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).upper() not in _UNITS:
        raise ValueError(f"not a memory size: {text!r}; expected e.g. 512M, 2G or a number of bytes")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def format_size(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def available_ram() -> int | None:
    """Bytes of RAM the kernel says are available now (``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def available(device: str) -> int | None:
    """Free memory where the formulas run: the GPU's for a CUDA device, else the host's."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    return available_ram()


def resolve_budget(max_memory, device: str) -> int:
    """The budget in bytes: ``max_memory`` as given (bytes or a size string), or by default
    1/8 of the free memory, capped at 1 GiB on a CPU and 4 GiB on a GPU."""
    if max_memory not in (None, "auto"):
        budget = parse_size(max_memory)
        if budget < MIN_BUDGET:
            raise ValueError(f"memory budget {format_size(budget)} is below the minimum of {format_size(MIN_BUDGET)}")
        return budget
    kind = "cuda" if device.startswith("cuda") else "cpu"
    free = available(device)
    share = DEFAULT_CAP[kind] if free is None else free // DEFAULT_SHARE
    return max(MIN_BUDGET, min(DEFAULT_CAP[kind], share))


# ---------------------------------------------------------------------------- chains grouped within a budget


def chain_sizes(refs, counts, tok) -> np.ndarray:
    """Per chain (N steps, T context, K reference, U step tokens, S context tokens)."""
    rows = [m.shape[0] for m in tok] if tok is not None else []
    return np.array([(n, t, k or 0, sum(rows[i] for i in r.tok_steps), sum(rows[i] for i in r.tok_context))
                     for r, (n, t, k) in zip(refs, counts)], dtype=np.int64).reshape(len(refs), 5)


def footprint(chains: int, dims, *, sent_width: int, tok_width: int, itemsize: int, chunk: int | None = None) -> int:
    """Bytes of the formula tensors of ``chains`` chains padded to ``dims`` (N, T, K, U, S),
    with the token matrices ``chunk`` rows at a time (None: all at once).  The counts follow
    the tensors the methods of ``roscoe.batched.PaddedGroup`` hold at once, with masks at a byte a value."""
    n, t, k, u, s = (int(x) for x in dims)
    c = u if chunk is None else min(chunk, u)
    values = 0
    if sent_width:
        # the gathered step/context/reference vectors, and each cosine matrix with its masked copy
        values += (n + t + k) * sent_width + 3 * (n * t + n * k + k * t + n * n)
    if tok_width:
        # the gathered token vectors (plus the fp32 gather they come from), the per-step best
        # matches with their reductions, and one chunk of the pairwise cosines against the
        # step and the context tokens
        values += 2 * (u + s) * tok_width + 4 * u * max(n, 1) + 2 * c * (u + s)
    return chains * (values * itemsize + itemsize * (n + t + k + u + s))


def groups(sizes: np.ndarray, budget: int, **widths) -> tuple[list[tuple[np.ndarray, int | None]], np.ndarray]:
    """Chains grouped so each group's padded tensors fit ``budget`` bytes: ``([(rows, chunk)],
    rows over budget)``.  Chains are taken largest first, so a group holds chains of about one
    size and pads little.  A chain that fits only alone runs its token matrices ``chunk`` rows
    at a time; one that does not fit even a row at a time is over the budget."""
    order = sorted(range(len(sizes)), key=lambda i: (-int(sizes[i, 3] + sizes[i, 4]), -int(sizes[i, :3].sum()), i))
    out: list[tuple[np.ndarray, int | None]] = []
    over: list[int] = []
    current: list[int] = []
    top = np.zeros(5, dtype=np.int64)
    for i in order:
        grown = np.maximum(top, sizes[i])
        if current and footprint(len(current) + 1, grown, **widths) <= budget:
            current.append(i)
            top = grown
            continue
        if current:
            out.append((np.array(current), None))
        if footprint(1, sizes[i], **widths) <= budget:
            current, top = [i], sizes[i].copy()
            continue
        current, top = [], np.zeros(5, dtype=np.int64)
        chunk = _largest_chunk(sizes[i], budget, widths)
        if chunk is None:
            over.append(i)
        else:
            out.append((np.array([i]), chunk))
    if current:
        out.append((np.array(current), None))
    return out, np.array(over, dtype=np.int64)


def _largest_chunk(dims, budget: int, widths: dict) -> int | None:
    """The most token rows per step with which one chain of ``dims`` fits ``budget``."""
    lo, hi = 1, max(1, int(dims[3]))
    if footprint(1, dims, chunk=lo, **widths) > budget:
        return None
    while lo < hi:  # the footprint grows with the chunk: the largest that fits
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if footprint(1, dims, chunk=mid, **widths) <= budget else (lo, mid - 1)
    return lo
