"""Where model weights come from: local directories, the installed lite packages, or the hub
(only when the user picked a hub preset), and the content hash that goes into signatures."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded without a download that the user did not allow."""


def cache_dir() -> Path:
    """The user cache directory of this package (``$ROSCOE_CACHE`` overrides it)."""
    env = os.environ.get("ROSCOE_CACHE")
    if env:
        base = Path(env)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "roscoe-metrics"
    base.mkdir(parents=True, exist_ok=True)
    return base


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: the directory to load from, the name users know it by, and where
    it came from (``local``, ``package:<dist>==<version>`` or ``hub``)."""

    path: Path
    name: str
    origin: str
    revision: str | None = None
    shipped_bytes: int | None = None  # what the package ships, when less than the loaded checkpoint

    def fingerprint(self) -> str:
        return self.revision or content_hash(self.path)

    def size_bytes(self) -> int:
        if self.shipped_bytes is not None:
            return self.shipped_bytes
        return sum(f.stat().st_size for f in _weight_files(self.path))


def resolve(spec: str | os.PathLike, *, allow_hub: bool, revision: str | None = None) -> ModelSource:
    """A local directory is used as is; anything else is a hub id, fetched only if allowed,
    or else taken from the local hub cache if it is already there."""
    p = Path(spec).expanduser()
    if p.is_dir():
        return ModelSource(p.resolve(), p.name, "local")
    spec = str(spec)
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:  # pragma: no cover - transformers depends on it
        raise ModelUnavailable(f"{spec!r} is not a local directory and huggingface_hub is missing") from err
    try:
        path = snapshot_download(spec, revision=revision, local_files_only=not allow_hub)
    except Exception as err:  # noqa: BLE001 - the hub client raises many kinds
        hint = ("" if allow_hub else
                " (downloads are off: pick a hub preset such as 'parlai', pass allow_hub=True, "
                "or give a local directory)")
        raise ModelUnavailable(f"cannot load model {spec!r}: {err.__class__.__name__}: {err}{hint}") from err
    path = Path(path)
    return ModelSource(path, spec, "hub", revision=path.name[:12])


def _weight_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(f for f in path.rglob("*") if f.is_file() and f.suffix in WEIGHT_SUFFIXES)


def content_hash(path: Path, length: int = 12) -> str:
    """sha256 over the weight files (names and bytes), cached by path, size and mtime."""
    files = _weight_files(Path(path))
    key = json.dumps([[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files])
    memo_file = cache_dir() / "hashes.json"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key][:length]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    digest = h.hexdigest()
    memo[key] = digest
    tmp = memo_file.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(memo))
        tmp.replace(memo_file)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest[:length]
