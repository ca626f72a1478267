#!/usr/bin/env python3
"""Peak memory and time of `roscoe score` on long real chains.

    python benchmarks/long_chains.py                         # build the 300 chains, score them, print the figures
    python benchmarks/long_chains.py --max-memory 512M       # the same under a smaller formula budget
    python benchmarks/long_chains.py --checkout /tmp/old     # score with another checkout's code (before/after)
    python benchmarks/long_chains.py --compare a.jsonl b.jsonl   # max |difference| of every score

The chains are the longest model solutions in the project's data by characters: MR-BEN (all six
subjects), CHAMP and the MATH test solutions. Each gets, as its reference, the longest other
solution of the same question where there is one, so the reference-based scores run on long
texts too. The script prints their step, character and token counts, then runs `roscoe score`
(all 20 scores, lite preset, CPU fp32 by default) in a child process and prints its wall time
and peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from roscoe.datasets import shared_root  # noqa: E402

SHARED = shared_root()


def _question_key(source: str, chain_id: str) -> str:
    """Solutions of one question share this key: MR-BEN ids are ``qid#k``, CHAMP ids
    ``problem|model|prompt``."""
    if source.startswith("mr-ben"):
        return source + ":" + chain_id.rsplit("#", 1)[0]
    if source == "champ":
        return "champ:" + chain_id.split("|", 1)[0]
    return source + ":" + chain_id


def candidates() -> list[tuple[str, dict]]:
    from human_eval import loaders
    from perturbations import sources

    out = []
    for path in sorted((SHARED / "dev/human/mr_ben").glob("*.json")):
        ls = loaders.load_mr_ben(path)
        out += [(ls.name, c) for c in ls.chains]
    champ = loaders.load_champ(SHARED / "dev/human/champ/champ_fws_annotations.jsonl")
    out += [("champ", c) for c in champ.chains]
    for g in sources.build("math").chains:
        out.append(("math", {"id": g.id, "context": g.context, "steps": list(g.steps)}))
    return out


def build(n: int = 300) -> list[dict]:
    """The ``n`` longest chains (by characters of their steps), with references."""
    cands = [(src, c) for src, c in candidates() if c["steps"]]
    by_question: dict[str, list[dict]] = {}
    for src, c in cands:
        by_question.setdefault(_question_key(src, str(c["id"])), []).append(c)
    size = lambda c: sum(map(len, c["steps"]))  # noqa: E731
    cands.sort(key=lambda sc: (-size(sc[1]), sc[0], str(sc[1]["id"])))
    rows = []
    for src, c in cands[:n]:
        others = [o for o in by_question[_question_key(src, str(c["id"]))] if o is not c]
        ref = max(others, key=size)["steps"] if others else None
        rows.append({"id": f"{src}/{c['id']}", "context": c["context"], "steps": c["steps"], "reference": ref})
    return rows


def describe(rows: list[dict]) -> dict:
    """Step, character and token counts (the lite token model's word pieces, special tokens
    left out) of the chains' steps."""
    from roscoe.models import lite
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(lite.minilm().path))
    steps = [len(r["steps"]) for r in rows]
    chars = [sum(map(len, r["steps"])) for r in rows]
    longest = [max(map(len, r["steps"])) for r in rows]
    tokens = [sum(len(tok(s, add_special_tokens=False, truncation=True, max_length=512)["input_ids"])
                  for s in r["steps"]) for r in rows]

    def spread(xs):
        return {"min": min(xs), "median": statistics.median(xs), "max": max(xs), "total": sum(xs)}

    return {"chains": len(rows), "with_reference": sum(r["reference"] is not None for r in rows),
            "steps": spread(steps), "step_chars": spread(chars), "longest_step_chars": spread(longest),
            "step_tokens": spread(tokens)}


_CHILD = ("import resource, sys; from roscoe.cli import main; rc = main(sys.argv[1:]); "
          "print('RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def score(inp: Path, out: Path, *, checkout: Path, extra: list[str]) -> dict:
    """Run `roscoe score` with ``checkout``'s code in a child process: wall time, peak RSS."""
    cmd = [sys.executable, "-c", _CHILD, "score", str(inp), "-o", str(out), "--overwrite", "--scores", "all",
           "--reference-field", "reference", *extra]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rss = [int(line.split()[1]) for line in res.stderr.splitlines() if line.startswith("RSS_KB")]
    return {"exit": res.returncode, "wall_s": round(wall, 1),
            "peak_rss_mb": round(rss[0] / 1024) if rss else None,
            "stderr_tail": res.stderr.strip().splitlines()[-3:] if res.returncode else []}


def compare(a: Path, b: Path) -> dict:
    """Max |a - b| per score over the ids of both files, and whether the NaNs agree."""
    def rows(p):
        return {str(r["id"]): r for r in map(json.loads, open(p, encoding="utf-8")) if r}

    ra, rb = rows(a), rows(b)
    if set(ra) != set(rb):
        return {"error": f"different ids: {len(set(ra) ^ set(rb))} differ"}
    names = [k for k in next(iter(ra.values())) if k not in ("id", "reasons")]
    worst, nan_mismatch = {}, 0
    for i, x in ra.items():
        y = rb[i]
        for n in names:
            u, v = x.get(n), y.get(n)
            if (u is None) != (v is None):
                nan_mismatch += 1
            elif u is not None:
                worst[n] = max(worst.get(n, 0.0), abs(u - v))
    return {"max_abs_diff": max(worst.values(), default=0.0), "per_score": worst, "nan_mismatch": nan_mismatch}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="chains (default 300)")
    ap.add_argument("--checkout", type=Path, default=ROOT, help="the code to run (default: this checkout)")
    ap.add_argument("--out", type=Path, default=None, help="scores file (default: a temporary one)")
    ap.add_argument("--compare", nargs=2, type=Path, default=None, metavar=("A", "B"))
    ap.add_argument("--no-describe", action="store_true", help="skip the token counts")
    args, extra = ap.parse_known_args(argv)
    if args.compare:
        print(json.dumps(compare(*args.compare), indent=2), flush=True)
        return 0
    rows = build(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "long_chains.jsonl"
        inp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        if not args.no_describe:
            print(json.dumps(describe(rows), indent=2))
        out = args.out or Path(tmp) / "scores.jsonl"
        res = score(inp, out, checkout=args.checkout.resolve(), extra=extra)
        res.update(checkout=str(args.checkout), options=" ".join(extra) or "(defaults)")
        print(json.dumps(res, indent=2))
    return 0 if res["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
