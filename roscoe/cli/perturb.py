"""``roscoe perturb``: labelled diagnostic sets built from the source datasets."""
from __future__ import annotations

import sys
from pathlib import Path

from . import common
from .common import EXIT_OK, UsageError


def register(sub) -> None:
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
    common.add_data_root(p)
    p.add_argument("-o", "--out-dir", default=None, help="output directory")
    p.add_argument("--overwrite", action="store_true", help="replace files of an earlier build")
    p.add_argument("--list", action="store_true", help="list sources and perturbations, then exit")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run, extra="perturb")


def run(args) -> int:
    from perturbations import catalogue, diagnostic, sources

    if args.list:
        print("sources:", ", ".join(f"{n}{' (math)' if s.math else ''}" for n, s in sources.SOURCES.items()))
        print("perturbations:", ", ".join(catalogue.CATALOGUE))
        for name, combos in catalogue.COMBINATIONS.items():
            print(f"combinations for {name}: {combos}")
        return EXIT_OK
    if not args.source or not args.out_dir:
        raise UsageError("--source and -o/--out-dir are required")
    if not 0.0 <= args.fraction <= 1.0:
        raise UsageError(f"--fraction must be within [0, 1], got {args.fraction}")
    names = list(sources.SOURCES) if args.source == "all" else [s.strip() for s in args.source.split(",") if s]
    unknown = [n for n in names if n not in sources.SOURCES]
    if unknown:
        raise UsageError(f"unknown source {', '.join(unknown)}; expected one of {', '.join(sources.SOURCES)}")
    try:
        for n in names:  # resolve names before any work
            catalogue.for_source(n, sources.SOURCES[n].math, args.perturbations)
    except KeyError as e:
        raise UsageError(e.args[0]) from None
    if (Path(args.out_dir) / "manifest.json").exists() and not args.overwrite:
        raise UsageError(f"{args.out_dir} holds an earlier build; pass --overwrite to replace it")
    ids = diagnostic.load_ids(Path(args.ids)) if args.ids else None
    root = Path(args.data_root) if args.data_root else None
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    try:
        results, built = diagnostic.build(names, args.perturbations, fraction=args.fraction, seed=args.seed,
                                          ids=ids, limit=args.limit, root=root,
                                          progress=lambda s, p: say(f"{s}: {p}"))
    except sources.SourceError as err:
        raise UsageError(str(err)) from None
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
    return EXIT_OK
