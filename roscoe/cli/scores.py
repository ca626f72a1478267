"""``roscoe scores``: the score registry as a table."""
from __future__ import annotations

import json

from .. import registry
from ..formulas import MODES
from .common import EXIT_OK, text_table


def register(sub) -> None:
    p = sub.add_parser("scores", help="list the scores: names, families, groups, directions")
    p.add_argument("--mode", default="paper", choices=MODES)
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", action="store_true")
    p.set_defaults(func=run, extra="io")


def run(args) -> int:
    rows = registry.table_rows(args.mode)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.markdown:
        cols = list(rows[0])
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        print("\n".join("| " + " | ".join(f"`{r[c]}`" if c == "name" else str(r[c]) for c in cols) + " |"
                        for r in rows))
    else:
        print(text_table(rows))
    return EXIT_OK
