"""``roscoe correlate``: a scored file against human labels (Somers' D and friends)."""
from __future__ import annotations

import sys
from pathlib import Path

from . import common
from .common import EXIT_OK, UsageError


def register(sub) -> None:
    p = sub.add_parser("correlate", help="correlate a scored file with human labels (Somers' D and friends)")
    p.add_argument("--scores", required=True, dest="scored", help="scored file (.jsonl, .csv, .parquet)")
    p.add_argument("--labels", required=True, help="labels (.jsonl or .csv) with an id column")
    p.add_argument("--on", default="id", help="the id column of both files (default id)")
    p.add_argument("--label-columns", default="",
                   help="comma-separated label columns; nested objects by dotted path (chain_labels.overall_quality); "
                        "default: every column but the id that holds numbers or yes/no (the others are skipped with "
                        "a note)")
    p.add_argument("--score-columns", default="", help="comma-separated score columns (default: every numeric one)")
    common.add_stats(p)
    p.add_argument("-o", "--out-dir", default=None, help="write cells CSV, Markdown and LaTeX tables here")
    p.set_defaults(func=run, extra="human")


def run(args) -> int:
    from human_eval import loaders, pipeline
    from human_eval.stats import correlate
    from human_eval.tables import Table, cells_csv

    for p in (args.scored, args.labels):
        if not Path(p).is_file():
            raise UsageError(f"{p}: no such file")
    methods = common.methods(args.methods)
    rows = pipeline.read_rows(args.scored, on=args.on)
    notes: list[str] = []
    label_ids, labels = loaders.load_labels(args.labels, on=args.on, notes=notes,
                                            columns=[c for c in args.label_columns.split(",") if c] or None)
    for note in notes:
        print(f"note: {args.labels}: {note}", file=sys.stderr)
    names = [c for c in args.score_columns.split(",") if c] or None
    scores, labels, counts = pipeline.join(rows, label_ids, labels, names, on=args.on)
    if not counts["joined"]:
        raise UsageError(f"no id of {args.scored} is in {args.labels} (joined on {args.on!r})")
    cells = correlate(scores, labels, methods, n_boot=args.n_boot, seed=args.seed)
    print(f"joined {counts['joined']} of {counts['scored']} scored and {counts['labelled']} labelled rows on {args.on!r}")
    for m in methods:
        print(f"\n## {m}\n")
        print(Table(cells, method=m).markdown())
    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "cells.csv").write_text(cells_csv(cells))
        (out / "table.md").write_text(Table(cells).markdown())
        (out / "table.tex").write_text(Table(cells).latex())
        print(f"wrote {out}/cells.csv, table.md, table.tex")
    return EXIT_OK
