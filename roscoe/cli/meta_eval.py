"""``roscoe meta-eval``: score a shipped human-labelled set and correlate with its labels."""
from __future__ import annotations

from pathlib import Path

from . import common
from .common import EXIT_OK, UsageError


def register(sub) -> None:
    p = sub.add_parser("meta-eval", help="score a shipped human-labelled set and correlate: tables, plots, report")
    p.add_argument("benchmarks", nargs="+",
                   help="roscoe-human-gsm8k, roscoe-human-esnli, mr-ben-<subject>, champ, eobqa")
    common.add_models(p)
    p.add_argument("--scores", default="all")
    p.add_argument("--limit", type=int, default=0, help="only the first N chains of each set")
    p.add_argument("--no-report", action="store_true", help="skip the plots and the HTML report")
    common.add_stats(p)
    common.add_data_root(p)
    p.add_argument("-o", "--out-dir", default="meta-eval", help="output directory (default meta-eval/)")
    p.set_defaults(func=run, extra="human")


def run(args) -> int:
    from human_eval import pipeline
    from human_eval.tables import summary_markdown

    methods = common.methods(args.methods)
    for name in args.benchmarks:
        if name not in pipeline.BENCHMARKS:
            raise UsageError(f"unknown benchmark {name!r}; expected one of {', '.join(pipeline.BENCHMARKS)}")
    from ..datasets import DataNotFound

    try:  # every set before any model loads, so a missing one is reported at once
        sets = {name: pipeline.load_benchmark(name, args.data_root) for name in args.benchmarks}
    except DataNotFound as err:
        raise UsageError(str(err)) from None
    scorer = common.scorer(args)
    out = Path(args.out_dir)
    summaries, rows = {}, None
    for name, labelled in sets.items():
        if args.limit:
            labelled = labelled.head(args.limit)
        result = pipeline.run(labelled, scorer, scores=args.scores, methods=methods, n_boot=args.n_boot,
                              seed=args.seed)
        paths = pipeline.write_outputs(result, out, report=not args.no_report)
        table = result.table()
        print(f"# {name}: {result.n_chains} chains ({result.seconds})\n")
        print(table.markdown())
        summaries[name] = table.summary()
        rows = rows or list(summaries[name])
        print("wrote " + ", ".join(str(p) for p in paths.values()) + "\n")
    if len(summaries) > 1:
        text = summary_markdown(summaries, rows)
        (out / "summary.md").write_text(text)
        print("# per-dataset summary (max significant D over the error columns)\n\n" + text)
    print(f"signature: {scorer.signature(args.scores)}")
    return EXIT_OK
