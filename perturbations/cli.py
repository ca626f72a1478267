"""``roscoe perturb`` (build diagnostic sets) and ``roscoe diag-eval`` (score them and
correlate with the labels).  Registered by ``roscoe.cli``."""
from __future__ import annotations

import sys
from pathlib import Path


def add_parsers(sub):
    p = sub.add_parser("perturb", help="build labelled diagnostic sets from the source datasets",
                       description="Perturb gold chains of real source datasets; write one JSONL per "
                                   "(source, perturbation), an id list and a manifest.")
    p.add_argument("--source", default=None,
                   help="comma-separated sources, or all: gsm8k, aqua, math, math500, entailment_bank, "
                        "strategyqa, strategyqa_decomposition, esnli, eqasc, cosmosqa")
    p.add_argument("--perturbations", default="all",
                   help="all (single ones plus the reference's combinations), single, combinations, or a "
                        "comma list of names / A+B combinations")
    p.add_argument("--fraction", type=float, default=0.5, help="share of applicable chains left perturbed")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--ids", default=None,
                   help="JSON of ids to restore to gold: a build's unperturbed_ids.json, the reference's "
                        "unperturbed_ids.json (row positions, best effort), or a list of ids")
    p.add_argument("--limit", type=int, default=0, help="only the first N chains of each source")
    p.add_argument("--data-root", default=None, help="the data directory holding dev/sources/ "
                                                     "(default: $ROSCOE_SHARED_DATA or ../shared/data)")
    p.add_argument("-o", "--out-dir", default=None, help="output directory")
    p.add_argument("--overwrite", action="store_true", help="replace files of an earlier build")
    p.add_argument("--list", action="store_true", help="list sources and perturbations, then exit")
    p.add_argument("--quiet", action="store_true")

    e = sub.add_parser("diag-eval", help="score diagnostic sets and correlate each score with the label")
    e.add_argument("diag_dir", help="a directory written by roscoe perturb")
    e.add_argument("--preset", default="lite")
    e.add_argument("--mode", default="paper", choices=["paper", "parlai"])
    e.add_argument("--scores", default="reference-free")
    e.add_argument("--sets", default="", help="comma-separated source/perturbation keys (default: all)")
    e.add_argument("--device", default="auto")
    e.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    e.add_argument("--limit", type=int, default=0, help="only the first N rows of each set")
    e.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("-o", "--out-dir", default=None,
                   help="write the per-set scores (as each set finishes), cells.csv, table.md, table.tex, "
                        "checks.json here")
    e.add_argument("--resume", action="store_true", help="reuse the per-set scores of an interrupted run in -o")


def cmd_perturb(args, usage_error) -> int:
    from . import catalogue, diagnostic, sources

    if args.list:
        print("sources:", ", ".join(f"{n}{' (math)' if s.math else ''}" for n, s in sources.SOURCES.items()))
        print("perturbations:", ", ".join(catalogue.CATALOGUE))
        for name, combos in catalogue.COMBINATIONS.items():
            print(f"combinations for {name}: {combos}")
        return 0
    if not args.source or not args.out_dir:
        raise usage_error("--source and -o/--out-dir are required")
    if not 0.0 <= args.fraction <= 1.0:
        raise usage_error(f"--fraction must be within [0, 1], got {args.fraction}")
    names = list(sources.SOURCES) if args.source == "all" else [s.strip() for s in args.source.split(",") if s]
    unknown = [n for n in names if n not in sources.SOURCES]
    if unknown:
        raise usage_error(f"unknown source {', '.join(unknown)}; expected one of {', '.join(sources.SOURCES)}")
    try:
        for n in names:  # resolve names before any work
            catalogue.for_source(n, sources.SOURCES[n].math, args.perturbations)
    except KeyError as e:
        raise usage_error(e.args[0]) from None
    if (Path(args.out_dir) / "manifest.json").exists() and not args.overwrite:
        raise usage_error(f"{args.out_dir} holds an earlier build; pass --overwrite to replace it")
    ids = diagnostic.load_ids(Path(args.ids)) if args.ids else None
    root = Path(args.data_root) if args.data_root else None
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    results, built = diagnostic.build(names, args.perturbations, fraction=args.fraction, seed=args.seed, ids=ids,
                                      limit=args.limit, root=root, progress=lambda s, p: say(f"{s}: {p}"))
    manifest = diagnostic.write(Path(args.out_dir), results, built, seed=args.seed, fraction=args.fraction,
                                limit=args.limit, overwrite=args.overwrite)
    if not args.quiet:
        for name, b in built.items():
            print(f"{name}: {len(b.chains)} chains, {len(b.skipped)} source rows skipped")
        for r in results:
            c = r.counts()
            na = ", ".join(f"{k} {v}" for k, v in c["not_applicable"].items()) or "none"
            print(f"  {r.key}: {c['rows']} rows ({c['perturbed']} perturbed), not applicable: {na}")
        print(f"wrote {manifest}")
    return 0


def cmd_diag_eval(args, usage_error) -> int:
    from roscoe.scorer import Scorer

    from . import evaluate

    if args.resume and not args.out_dir:
        raise usage_error("--resume needs -o/--out-dir")
    if not (Path(args.diag_dir) / "manifest.json").is_file():
        raise usage_error(f"{args.diag_dir}: no manifest.json (build it with roscoe perturb)")
    scorer = Scorer(args.preset, mode=args.mode, device=args.device, dtype=args.dtype)
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
    return 0
