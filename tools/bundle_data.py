"""Write roscoe/datasets/ (the data the installed package ships) from the checkout's
../shared/data: every file meta-eval and perturb read, xz-compressed, with the licences of
its set, the provenance README and SHA256SUMS of the decompressed files.

    python tools/bundle_data.py          # write the bundle
    python tools/bundle_data.py --check  # exit 1 when the bundle differs from ../shared/data
"""
from __future__ import annotations

import argparse
import hashlib
import lzma
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from human_eval.pipeline import BENCHMARKS  # noqa: E402
from perturbations.pairs import TRAINING_SOURCES  # noqa: E402
from perturbations.sources import SOURCES  # noqa: E402
from roscoe import datasets  # noqa: E402

EXTRA = ("dev/sources/roscoe_parlai/unperturbed_ids.json",)  # perturb --ids takes it as a documented example


def wanted() -> list[str]:
    files = {rel for rel, _ in BENCHMARKS.values()} | {f for s in SOURCES.values() for f in s.files} | set(EXTRA)
    files |= {s.file for s in TRAINING_SOURCES.values()}  # roscoe train-embedder's default data
    return sorted(files)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    src = datasets.shared_root()
    sums = {rel: hashlib.sha256((src / rel).read_bytes()).hexdigest() for rel in wanted()}
    text = "".join(f"{digest}  {rel}\n" for rel, digest in sums.items())
    if args.check:
        same = (datasets.HERE / "SHA256SUMS").is_file() and (datasets.HERE / "SHA256SUMS").read_text() == text
        print("bundle matches ../shared/data" if same else "bundle differs from ../shared/data: rerun tools/bundle_data.py")
        return 0 if same else 1
    total = 0
    for rel in sums:
        out = datasets.HERE / f"{rel}.xz"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(lzma.compress((src / rel).read_bytes(), preset=9 | lzma.PRESET_EXTREME))
        total += out.stat().st_size
        for lic in (src / rel).parent.glob("LICENSE*"):
            shutil.copyfile(lic, out.parent / lic.name)
        title, origin, licence = datasets.SETS[str(Path(rel).parent)]
        (out.parent / "NOTICE").write_text(f"{title}\nfrom {origin}\nlicence: {licence}\n"
                                          "(see PROVENANCE.md at the top of this folder)\n")
    shutil.copyfile(src / "README.md", datasets.HERE / "PROVENANCE.md")
    (datasets.HERE / "SHA256SUMS").write_text(text)
    print(f"{len(sums)} files, {sum((src / r).stat().st_size for r in sums) / 1e6:.1f} MB -> {total / 1e6:.2f} MB xz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
