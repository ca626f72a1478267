"""What the subcommands share: exit codes, the usage error, and the flags defined once."""
from __future__ import annotations

from ..chains import DEFAULT_SPLITTERS, FieldMap
from ..formulas import MODES

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
DTYPES = ("auto", "fp32", "bf16", "fp16", "autocast-fp16", "autocast-bf16")


class UsageError(Exception):
    """Bad flags or input found before any work: exit 2 with the message."""


def add_models(p, *, preset_help: str = "model preset: lite (offline, default), parlai, paper") -> None:
    """--preset, --mode, --device, --dtype."""
    p.add_argument("--preset", default="lite", help=preset_help)
    p.add_argument("--mode", default="paper", choices=MODES,
                   help="paper: the paper's equations; parlai: the reference implementation's numbers")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="model precision (auto: bf16 on a GPU, fp32 on a CPU; autocast-fp16 keeps scores closest "
                        "to fp32)")


def add_stats(p, *, methods: bool = True) -> None:
    """--methods (optional), --n-boot, --seed."""
    if methods:
        p.add_argument("--methods", default="all",
                       help="comma-separated: somers_d, kendall_tau_b, spearman, pearson, or all (default)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    p.add_argument("--seed", type=int, default=0)


def add_data_root(p) -> None:
    p.add_argument("--data-root", default=None,
                   help="read the datasets from this directory (holding dev/human/ and dev/sources/) instead "
                        "of the copies shipped with the package (default: $ROSCOE_SHARED_DATA if set)")


def add_fields(p) -> None:
    """--id-field, --context-field, --steps-field, --reference-field and the three --*-splitter."""
    for name in ("id", "context", "steps", "reference"):
        p.add_argument(f"--{name}-field", default=name, help=f"input field holding the {name} (default {name})")
    for name in ("context", "steps", "reference"):
        p.add_argument(f"--{name}-splitter", default=DEFAULT_SPLITTERS[name],
                       help=f"how a string {name} is split (default {DEFAULT_SPLITTERS[name]}; "
                            "none, punkt, newline, punkt+newline, dot-space, step-markers)")


def fields(args) -> FieldMap:
    return FieldMap(args.id_field, args.context_field, args.steps_field, args.reference_field)


def splitters(args) -> dict:
    return {"context": args.context_splitter, "steps": args.steps_splitter, "reference": args.reference_splitter}


def methods(text: str) -> tuple[str, ...]:
    from human_eval.stats import METHODS

    chosen = METHODS if text == "all" else tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in chosen if m not in METHODS]
    if bad:
        raise UsageError(f"unknown method(s) {', '.join(bad)}; expected {', '.join(METHODS)} or all")
    return chosen


def scorer(args):
    from ..scorer import Scorer

    return Scorer(args.preset, mode=args.mode, device=args.device, dtype=args.dtype)


def text_table(rows: list[dict]) -> str:
    cols = list(rows[0])
    shown = lambda v: str(v if v is not None else "-")  # noqa: E731
    width = {c: max(len(c), *(len(shown(r[c])) for r in rows)) for c in cols}
    line = lambda r: "  ".join(shown(r[c]).ljust(width[c]) for c in cols).rstrip()  # noqa: E731
    return "\n".join([line({c: c for c in cols}), line({c: "-" * width[c] for c in cols}), *map(line, rows)])
