"""The third-party datasets the package ships: the human-judgment sets of ``roscoe meta-eval``
and the source datasets of ``roscoe perturb``, xz-compressed, with their licences
(``LICENSE*`` beside each set) and provenance (``PROVENANCE.md``).

A file is looked up as a path relative to the data root (``dev/human/...``, ``dev/sources/...``):

1. under ``root`` or ``$ROSCOE_SHARED_DATA`` when either is given (and only there);
2. in the shipped bundle, decompressed once into the user's cache directory
   (``$ROSCOE_CACHE_DIR``, else ``$XDG_CACHE_HOME/roscoe-metrics``, else
   ``~/.cache/roscoe-metrics``) and checked against ``SHA256SUMS``;
3. under ``../shared/data`` beside a source checkout (the training sets and the other files
   that only the tools, tests and benchmarks read).

``tools/bundle_data.py`` writes the bundle from the checkout's data.
"""
from __future__ import annotations

import hashlib
import lzma
import os
import tempfile
from functools import lru_cache
from pathlib import Path

ENV = "ROSCOE_SHARED_DATA"
HERE = Path(__file__).resolve().parent

# (what the set is, where it comes from, its licence), by the folder the files sit in
SETS = {
    "dev/human/roscoe_human": ("ROSCOE human judgments (GSM8K, e-SNLI)",
                               "facebookresearch/ParlAI projects/roscoe, via dmg-illc/JUDGE-BENCH @5a0bf50", "MIT"),
    "dev/human/mr_ben": ("MR-BEN", "dvlab-research/Mr-Ben @6eb1eca data/", "MIT"),
    "dev/human/champ": ("CHAMP first-wrong-step annotations", "PyPI champ-dataset 1.0.0", "MIT"),
    "dev/human/eobqa": ("eOBQA chain validity labels", "harsh19/Reasoning-Chains-MultihopQA @65e25d0 data/eobqa/",
                        "CC BY 4.0"),
    "dev/sources/gsm8k": ("GSM8K", "openai/grade-school-math @3101c7d", "MIT"),
    "dev/sources/aqua": ("AQuA-RAT", "google-deepmind/AQuA @26b64ed", "Apache-2.0"),
    "dev/sources/math": ("MATH test and MATH-500", "ZubinGou/math-evaluation-harness @db77bc6", "MIT"),
    "dev/sources/entailment_bank": ("EntailmentBank task 1", "allenai/entailment_bank @daac2fd", "CC BY 4.0"),
    "dev/sources/strategyqa": ("StrategyQA", "eladsegal/strategyqa @1ba1e97", "MIT"),
    "dev/sources/esnli": ("e-SNLI dev", "OanaMariaCamburu/e-SNLI @7b585a3", "MIT; SNLI CC BY-SA 4.0"),
    "dev/sources/eqasc_perturbed": ("eQASC perturbed chains", "harsh19/Reasoning-Chains-MultihopQA @65e25d0",
                                    "CC BY 4.0"),
    "dev/sources/cosmosqa": ("CosmosQA valid", "wilburOne/cosmosqa @b6eb99c (allenai/cosmos_qa)", "CC BY 4.0"),
    "dev/sources/roscoe_parlai": ("ROSCOE's unperturbed ids", "facebookresearch/ParlAI @a29567f", "MIT"),
}


class DataNotFound(FileNotFoundError):
    """A dataset file that is neither under the given root, nor shipped, nor in a checkout."""


def origin(rel: str) -> str:
    """What the file at ``rel`` belongs to and where that set comes from, for error messages."""
    folder = str(Path(rel).parent)
    if folder not in SETS:
        return f"{rel} (not a set this package ships)"
    title, source, licence = SETS[folder]
    return f"{title} ({rel}; from {source}, {licence})"


@lru_cache(maxsize=1)
def checksums() -> dict[str, str]:
    """rel -> sha256 of the decompressed file, for every file of the bundle."""
    sums = HERE / "SHA256SUMS"
    if not sums.is_file():
        return {}
    pairs = (line.split(maxsplit=1) for line in sums.read_text().splitlines() if line.strip())
    return {rel.strip(): digest for digest, rel in pairs}


def shipped() -> tuple[str, ...]:
    """The relative paths of every file in the bundle."""
    return tuple(checksums())


def checkout_root() -> Path:
    """``../shared/data`` beside a source checkout (absent where the package is installed)."""
    return HERE.parents[2] / "shared" / "data"


def given_root() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def shared_root() -> Path:
    """The full data directory of a checkout (training sets included): ``$ROSCOE_SHARED_DATA``,
    else ``../shared/data``.  For the tools, tests and benchmarks; the package itself reads
    through ``locate``."""
    return given_root() or checkout_root()


def locate(rel: str, root: Path | str | None = None) -> Path:
    """A readable path for the dataset file ``rel`` (see the module docstring for the order)."""
    root = Path(root) if root is not None else given_root()
    if root is not None:
        path = root / rel
        if path.is_file():
            return path
        raise DataNotFound(f"{origin(rel)} is not under the data root {root}")
    if rel in checksums():
        return _unpacked(rel)
    path = checkout_root() / rel
    if path.is_file():
        return path
    raise DataNotFound(f"{origin(rel)} is not shipped with this package and no data root holds it; pass "
                       f"--data-root or set {ENV} to the directory that holds {rel}")


def cache_dir() -> Path:
    base = os.environ.get("ROSCOE_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
        / "roscoe-metrics"
    return Path(base)


def _unpacked(rel: str) -> Path:
    """The bundled file decompressed into the cache (once; a copy whose checksum is not the
    bundle's is written again, so a torn or edited copy is never read)."""
    digest = checksums()[rel]
    for base in (cache_dir(), Path(tempfile.gettempdir()) / f"roscoe-metrics-{os.getuid()}"):
        path = base / "data" / digest[:16] / rel
        try:
            if not (path.is_file() and _verified(path, digest)):
                _decompress(HERE / f"{rel}.xz", path, digest)
            return path
        except PermissionError:
            continue  # a read-only cache: the temp directory instead
    raise DataNotFound(f"{origin(rel)}: no writable directory to decompress it into (set ROSCOE_CACHE_DIR)")


@lru_cache(maxsize=None)
def _verified(path: Path, digest: str) -> bool:
    return sha256(path) == digest


def _decompress(packed: Path, path: Path, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = lzma.decompress(packed.read_bytes())
    if hashlib.sha256(data).hexdigest() != digest:
        raise DataNotFound(f"{packed}: the shipped copy does not match its checksum; reinstall roscoe-metrics")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)  # another process may do the same at once: both write the same bytes
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _verified.cache_clear()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
