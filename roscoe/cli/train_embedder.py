"""``roscoe train-embedder``: fine-tune the sentence embedder on contrastive triples built by
perturbing gold chains (the paper's recipe), and write a model directory any embedder slot
accepts, with its adapter, a model card and the training figures.

Data: the training-side splits the package ships (``perturbations.pairs.TRAINING_SOURCES``),
or the user's own chains (``--from FILE``, mapped like ``roscoe score``'s input).  Chains whose
context appears in a human-judged or diagnostic set are dropped unless ``--keep-held-out``."""
from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import common
from .common import EXIT_OK, UsageError

MAX_REPORTED = 20  # input problems listed before the count of the rest


def register(sub) -> None:
    from ..models.contrastive import Recipe

    d = Recipe()
    p = sub.add_parser("train-embedder", help="fine-tune a ROSCOE sentence embedder on perturbed chains",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", required=True, help="model directory to write (refused if it exists)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.add_argument("--from", dest="from_file", default=None, metavar="FILE",
                   help="train on these chains (JSONL, fields as in roscoe score) instead of the shipped "
                        "training splits")
    common.add_fields(p)
    p.add_argument("--gold", choices=["steps", "reference"], default="steps",
                   help="with --from: which field holds the gold chain (default steps)")
    p.add_argument("--sources", default="",
                   help="comma-separated shipped training splits (default: all of them)")
    common.add_data_root(p)
    p.add_argument("--keep-held-out", action="store_true",
                   help="keep chains whose context is also in a human-judged or diagnostic set")
    p.add_argument("--limit", type=int, default=0, help="use only the first N chains (0: all)")
    p.add_argument("--max-per-source", type=int, default=1000,
                   help="at most N chains of each shipped training split, a seeded sample (default 1000: "
                        "MATH alone has 4,500; 0: all)")
    p.add_argument("--per-chain", type=int, default=2, help="perturbed negatives per gold chain (default 2)")
    p.add_argument("--val-share", type=float, default=0.1,
                   help="share of chains held out to measure triple accuracy before and after (default 0.1)")
    p.add_argument("--base", default=None,
                   help="the encoder to start from: a local directory (default: the installed all-MiniLM-L6-v2)")
    p.add_argument("--method", choices=["lora", "full"], default=d.method)
    for name, kind in (("epochs", int), ("batch_size", int), ("lr", float), ("temperature", float),
                       ("rank", int), ("alpha", float), ("max_length", int), ("seed", int)):
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=getattr(d, name),
                       help=f"default {getattr(d, name)}")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run, extra="perturb")  # the linguistic perturbations need spaCy


def run(args) -> int:
    from ..models import contrastive

    target = Path(args.output)
    if target.exists() and not args.overwrite:
        raise UsageError(f"{target} exists; pass --overwrite to replace it")
    if not 0 <= args.val_share < 1:
        raise UsageError("--val-share must be in [0, 1)")
    for name in ("epochs", "batch_size", "per_chain", "rank", "max_length"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.batch_size < 2:
        raise UsageError("--batch-size must be at least 2 (the other chains of a batch are the negatives)")
    log = (lambda *a: None) if args.quiet else (lambda msg: print(f"{time.strftime('%H:%M:%S')} {msg}",
                                                                    file=sys.stderr, flush=True))
    base = _base(args)  # a bad --base is refused before any data is read
    chains, data = _chains(args)
    if args.limit:
        chains = chains[:args.limit]
    if not chains:
        raise UsageError("no chain to train on")
    from perturbations import pairs

    train_chains, val_chains = _split(chains, args.val_share, args.seed)
    is_math = (lambda c: True) if args.from_file else None
    t0 = time.perf_counter()
    train_triples, missed = pairs.triples(train_chains, per_chain=args.per_chain, seed=args.seed, is_math=is_math)
    val_triples, _ = pairs.triples(val_chains, per_chain=args.per_chain, seed=args.seed, is_math=is_math)
    data.update({"per_chain": args.per_chain, "train_chains": len(train_chains), "val_chains": len(val_chains),
                 "train_triples": len(train_triples), "val_triples": len(val_triples),
                 "not_applicable": dict(sorted(missed.items())), "pair_seconds": round(time.perf_counter() - t0, 1)})
    log(f"{len(train_triples)} training triples from {len(train_chains)} chains, {len(val_triples)} held out "
        f"({data['pair_seconds']} s)")
    if len(train_triples) < 2:
        raise UsageError("fewer than 2 training triples: no perturbation applies to these chains")
    recipe = contrastive.Recipe(method=args.method, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                temperature=args.temperature, rank=args.rank, alpha=args.alpha,
                                max_length=args.max_length, seed=args.seed, threads=args.threads)
    result = contrastive.fit(base, train_triples, val_triples, recipe, log=log)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent if target.parent.exists() else None))
    try:
        card = contrastive.save(result, base, tmp, data=data, options=_options(args), name=target.name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from ..models.source import content_hash

    print(f"wrote {target} ({card['recipe']['method']}, {result.history.steps} steps, "
          f"{result.history.seconds} s of training)")
    if result.val:
        print(f"held-out triple accuracy: {result.val['before']:.3f} before, {result.val['after']:.3f} after "
              f"({result.val['n']} triples)")
    print(f"content hash: {content_hash(target)}")
    print(f"use it: roscoe score IN.jsonl -o OUT.jsonl --embedder {target}")
    return EXIT_OK


def _options(args) -> dict:
    """The command's options as given (to repeat the run), without the output's location."""
    return {k: v for k, v in vars(args).items() if k not in ("func", "extra", "command", "output", "overwrite",
                                                              "quiet")}


def _split(chains, share: float, seed: int):
    """A seeded share of the chains for validation (whole chains, so no text is on both sides)."""
    from perturbations.base import rng_for

    if share <= 0:
        return chains, []
    held = {c.id for c in chains if rng_for(seed, "val", c.id).random() < share}
    return [c for c in chains if c.id not in held], [c for c in chains if c.id in held]


def _base(args):
    """The encoder to start from: the installed MiniLM, or --base (a local directory, or a hub
    id already in the local cache: training never downloads)."""
    from ..models import lite
    from ..models.source import ModelUnavailable, resolve

    if args.base is None:
        return lite.minilm()
    try:
        src = resolve(args.base, allow_hub=False)
    except ModelUnavailable as err:
        raise UsageError(f"--base: {err}") from None
    if not (src.path / "config.json").is_file():
        raise UsageError(f"--base {args.base}: not a model directory (no config.json)")
    return src


def _chains(args):
    """Gold chains and a record of where they came from and what was dropped."""
    from perturbations import pairs

    if args.from_file:
        if args.sources:
            raise UsageError("--sources and --from exclude each other")
        chains = _user_chains(args)
        data = {"from": str(args.from_file), "chains": len(chains)}
    else:
        names = [s.strip() for s in args.sources.split(",") if s.strip()] or list(pairs.TRAINING_SOURCES)
        bad = [n for n in names if n not in pairs.TRAINING_SOURCES]
        if bad:
            raise UsageError(f"unknown training source(s) {', '.join(bad)}; expected "
                             f"{', '.join(pairs.TRAINING_SOURCES)}")
        got = pairs.training_chains(names, root=args.data_root)
        chains = pairs.sample_per_source(got.chains, args.max_per_source, args.seed)
        data = {"sources": {n: {"split": pairs.TRAINING_SOURCES[n].split, "chains": got.counts[n],
                                 "used": sum(c.source == n for c in chains)} for n in names},
                "dropped": dict(sorted(got.dropped.items()))}
    if not args.keep_held_out:
        chains, n = pairs.drop_held_out(chains, held_out_contexts(args.data_root))
        data["dropped_held_out"] = n
    return chains, data


@functools.lru_cache(maxsize=4)
def held_out_contexts(root=None) -> tuple[str, ...]:
    """The context of every chain that a human-judged set or a diagnostic evaluation reads."""
    from human_eval.pipeline import BENCHMARKS, load_benchmark
    from perturbations import sources

    out = []
    for name in BENCHMARKS:
        out += [c["context"] if isinstance(c["context"], str) else " ".join(c["context"])
                for c in load_benchmark(name, root).chains]
    for name in sources.SOURCES:
        if name == "math":  # its 4,500 non-MATH-500 problems are math_train; MATH-500 is held out below
            continue
        out += [c.context for c in sources.build(name, root=root).chains]
    return tuple(out)


def _user_chains(args):
    from perturbations.base import GoldChain

    from .. import io
    from ..chains import InputError

    path = Path(args.from_file)
    if not path.is_file():
        raise UsageError(f"--from {path}: no such file")
    chains, problems = [], []
    for line, item in io.read_chains(path, fields=common.fields(args), split=common.splitters(args)):
        if isinstance(item, InputError):
            problems.append(str(item))
            continue
        steps = item.reference if args.gold == "reference" else item.steps
        if not steps:
            field = args.reference_field if args.gold == "reference" else args.steps_field
            problems.append(f"{path}:{line}: field {field!r}: no gold steps")
            continue
        chains.append(GoldChain(str(item.id), " ".join(item.context), tuple(steps), "", "from"))
    if problems:
        more = f"\n... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise UsageError(f"{len(problems)} bad line(s) in {path}:\n" + "\n".join(problems[:MAX_REPORTED]) + more)
    return chains
