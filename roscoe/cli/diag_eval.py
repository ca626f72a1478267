"""``roscoe diag-eval``: score diagnostic sets and correlate each score with the perturbation label."""
from __future__ import annotations

import sys
from pathlib import Path

from . import common
from .common import EXIT_OK, UsageError


def register(sub) -> None:
    p = sub.add_parser("diag-eval", help="score diagnostic sets and correlate each score with the label")
    p.add_argument("diag_dir", help="a directory written by roscoe perturb")
    common.add_models(p)
    p.add_argument("--scores", default="reference-free")
    p.add_argument("--sets", default="", help="comma-separated source/perturbation keys (default: all)")
    p.add_argument("--limit", type=int, default=0, help="only the first N rows of each set")
    common.add_stats(p, methods=False)
    p.add_argument("-o", "--out-dir", default=None,
                   help="write the per-set scores (as each set finishes), cells.csv, table.md, table.tex, "
                        "checks.json here")
    p.add_argument("--resume", action="store_true", help="reuse the per-set scores of an interrupted run in -o")
    p.set_defaults(func=run, extra="human")


def run(args) -> int:
    from perturbations import evaluate

    if args.resume and not args.out_dir:
        raise UsageError("--resume needs -o/--out-dir")
    if not (Path(args.diag_dir) / "manifest.json").is_file():
        raise UsageError(f"{args.diag_dir}: no manifest.json (build it with roscoe perturb)")
    scorer = common.scorer(args)
    sets = {s.strip() for s in args.sets.split(",") if s.strip()} or None
    ev = evaluate.evaluate(Path(args.diag_dir), scorer, scores=args.scores, sets=sets, limit=args.limit,
                           n_boot=args.n_boot, seed=args.seed, out_dir=args.out_dir and Path(args.out_dir),
                           resume=args.resume, progress=lambda k: print(f"scoring {k}", file=sys.stderr))
    print(f"{sum(s['rows'] for s in ev.sets)} chains in {len(ev.sets)} sets, {ev.seconds:.1f} s\n")
    for source in ev.sources():
        print(f"## {source}: Somers' D(score | label), label 1 = unperturbed (CIs in table.{source}.md)\n")
        print(ev.table(source).markdown(ci=False))
    checks = ev.checks()
    if checks:
        print("\nexpected behaviour (positive, significant D):")
        for c in checks:
            print(f"  {c['set']:<45} {c['score']:<26} D = {c['D']:+.3f}  {'caught' if c['caught'] else 'NOT caught'}")
    if args.out_dir:
        paths = evaluate.write(ev, Path(args.out_dir))
        print(f"wrote {len(paths)} files to {args.out_dir} (cells.csv, table.md, table.<source>.md, table.tex, "
              "checks.json, sets.json; scores/ per set)")
    print(f"signature: {scorer.signature(args.scores)}")
    return EXIT_OK
