"""A bounded least-recently-used cache of model outputs, shared across blocks.

Keys are the exact texts (or text pairs) a model saw, plus anything that changes the output
(the token-dropping rule), so a hit returns what a fresh pass would; bounded size keeps host
memory flat however long the input file is.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

# Items kept per model slot.  Token matrices are the big ones (tens of KB each).
DEFAULT_SIZES = {"embedder": 50_000, "token": 5_000, "nli": 200_000, "lm": 200_000, "grammar": 200_000}


class LRU:
    """At most ``max_items`` values, and, with ``max_bytes``, at most that many bytes of them
    as ``size(value)`` counts them (token matrices differ a hundredfold in size)."""

    def __init__(self, max_items: int, max_bytes: int | None = None, size: Callable | None = None):
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._size = size or (lambda v: 0)
        self.bytes = 0
        self._d: OrderedDict = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self):
        return len(self._d)

    def lookup(self, keys: Sequence, compute: Callable[[list], Sequence]) -> list:
        """Values for ``keys``; the missing ones come from one ``compute(missing_keys)`` call."""
        out = [None] * len(keys)
        missing = []
        for i, k in enumerate(keys):
            v = self._d.get(k)
            if v is None:
                missing.append(i)
            else:
                self._d.move_to_end(k)
                out[i] = v
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            new = compute([keys[i] for i in missing])
            for j, i in enumerate(missing):
                out[i] = new[j]
                if self.max_items > 0 and keys[i] not in self._d:
                    self._d[keys[i]] = new[j]
                    self.bytes += self._size(new[j])
            while len(self._d) > self.max_items or (self.max_bytes is not None and self.bytes > self.max_bytes):
                self.bytes -= self._size(self._d.popitem(last=False)[1])
        return out

    def stats(self) -> dict:
        return {"items": len(self._d), "bytes": self.bytes, "hits": self.hits, "misses": self.misses}
