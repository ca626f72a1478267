"""A persistent cache of model outputs on disk, shared by runs and processes.

Keyed by a namespace (the model's content hash, its input recipe, precision and device kind:
everything that changes an output besides the text) and the exact item a model saw (a text,
a text pair, a token item), so a hit returns what a fresh pass gave.  Values are stored raw
(fp32 vectors byte for byte, float64 probabilities), so a run served from the cache repeats
the earlier one to the last digit.  One SQLite file in WAL mode: concurrent readers and
writers in several processes are safe; a write lands whole or not at all.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

# how each slot's values are stored
VECTOR, NUMBER, PAIR = "vector", "number", "pair"
_LOOKUP_CHUNK = 500  # keys per SELECT (SQLite's variable limit is 32766; small batches keep it quick)


class DiskCache:
    """``lookup(space, kind, items, compute)``: values from disk, the rest from one
    ``compute(missing)`` call, written back in one transaction."""

    def __init__(self, directory: Path | str):
        self.path = Path(directory) / "outputs.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS outputs (space TEXT NOT NULL, key BLOB NOT NULL, "
                        "value BLOB NOT NULL, PRIMARY KEY (space, key)) WITHOUT ROWID")
        self.hits = self.misses = 0

    def close(self) -> None:
        self.db.close()

    def lookup(self, space: str, kind: str, items: Sequence, compute: Callable[[list], Sequence]) -> list:
        keys = [_key(item) for item in items]
        found: dict[bytes, bytes] = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start:start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT key, value FROM outputs WHERE space = ? AND key IN ({marks})",
                                         [space, *chunk]).fetchall())
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        out = [None if k not in found else _decode(kind, found[k]) for k in keys]
        if missing:
            new = compute([items[i] for i in missing])
            rows = [(space, keys[i], _encode(kind, v)) for i, v in zip(missing, new)]
            with self.db:  # one transaction: all of this pass's outputs or none
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("INSERT OR IGNORE INTO outputs (space, key, value) VALUES (?, ?, ?)", rows)
            for i, v in zip(missing, new):
                out[i] = v
        return out

    def stats(self) -> dict:
        return {"hits": self.hits, "misses": self.misses}


def space(**parts) -> str:
    """The namespace of one model's outputs: a hash of what, besides the text, shapes them."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _key(item) -> bytes:
    return hashlib.sha256(json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass")).digest()


def _encode(kind: str, value) -> bytes:
    if kind == VECTOR:
        a = value.detach().to("cpu", torch.float32).contiguous().numpy()
        return struct.pack("<B", a.ndim) + struct.pack(f"<{a.ndim}q", *a.shape) + a.tobytes()
    if kind == NUMBER:
        return struct.pack("<d", value)
    return struct.pack("<dq", value[0], value[1])


def _decode(kind: str, blob: bytes):
    if kind == VECTOR:
        ndim = blob[0]
        shape = struct.unpack_from(f"<{ndim}q", blob, 1)
        data = np.frombuffer(blob, dtype="<f4", offset=1 + 8 * ndim).reshape(shape)
        return torch.from_numpy(data.copy())
    if kind == NUMBER:
        return struct.unpack("<d", blob)[0]
    return struct.unpack("<dq", blob)
