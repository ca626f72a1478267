"""Every score, NaN reason and per-step detail of the 200 human GSM8K chains in both modes, as
one JSON file, to prove a refactor changes no number:

    python tools/score_fingerprint.py before.json      # on the old commit
    python tools/score_fingerprint.py after.json       # on the new one
    python tools/score_fingerprint.py --compare before.json after.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def fingerprint(path: str) -> None:
    from human_eval.pipeline import load_benchmark
    from roscoe.scorer import Scorer

    chains = load_benchmark("roscoe-human-gsm8k").chains
    rows = {mode: Scorer("lite", mode=mode, device="cpu").score(chains, "all", details=True).records()
            for mode in ("paper", "parlai")}
    Path(path).write_text(json.dumps(rows, sort_keys=True, default=repr))


def compare(a: str, b: str) -> int:
    old, new = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
    differing = 0
    for mode in old:
        rows = sum(x != y for x, y in zip(old[mode], new[mode])) + abs(len(old[mode]) - len(new[mode]))
        print(f"{mode}: {len(new[mode])} rows, {rows} differ")
        differing += rows
    return 1 if differing else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--compare", action="store_true")
    args = ap.parse_args()
    sys.exit(compare(*args.paths) if args.compare else fingerprint(args.paths[0]))
