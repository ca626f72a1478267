"""The ``roscoe`` command line.  Exit codes: 0 ok, 1 scoring failure, 2 bad usage or input."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import __version__, registry
from .chains import DEFAULT_MAX_CHARS, DEFAULT_MAX_ITEMS, DEFAULT_SPLITTERS, FieldMap, InputError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


DTYPES = ["auto", "fp32", "bf16", "fp16", "autocast-fp16", "autocast-bf16"]


def _score_parser(sub):
    p = sub.add_parser("score", help="score a JSONL file of chains",
                       description="Score every chain of a JSONL file; one output row per chain.")
    p.add_argument("input", help="JSONL input, one chain per line (- reads standard input)")
    p.add_argument("-o", "--output", required=True,
                   help="output file: .jsonl, .csv or .parquet (- writes JSONL rows to standard output, "
                        "everything else to standard error)")
    p.add_argument("--format", default="jsonl", choices=["jsonl", "roscoe-human", "roscoe-human-esnli",
                                                          "roscoe-human-gsm8k", "roscoe-synthetic"],
                   help="input layout: plain JSONL with mappable fields (default), or a profile that reads "
                        "the reference implementation's own formats exactly")
    for name, default in (("id", "id"), ("context", "context"), ("steps", "steps"), ("reference", "reference")):
        p.add_argument(f"--{name}-field", default=default, help=f"input field holding the {name} (default {default})")
    for name in ("context", "steps", "reference"):
        p.add_argument(f"--{name}-splitter", default=DEFAULT_SPLITTERS[name],
                       help=f"how a string {name} is split (default {DEFAULT_SPLITTERS[name]}; "
                            "none, punkt, newline, punkt+newline, dot-space, step-markers)")
    p.add_argument("--scores", default="all",
                   help="comma-separated score names, paper names, families (SA, SS, LI, LC), groups, "
                        "or all / reference-free / reference-based (default all)")
    p.add_argument("--preset", default="lite", help="model preset: lite (offline, default), parlai, paper")
    p.add_argument("--mode", default="paper", choices=["paper", "parlai"])
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="model precision (auto: bf16 on a GPU, fp32 on a CPU; autocast-fp16 keeps scores closest to fp32)")
    p.add_argument("--compile", action="store_true",
                   help="compile every model body with torch.compile (TorchInductor: a C++ compiler on a CPU, "
                        "triton on a GPU); each model compiles on its first batch, so it pays off on large files")
    p.add_argument("--batch-tokens", type=int, default=None, help="token budget per batch (rows x padded length)")
    p.add_argument("--block-size", type=int, default=256, help="chains per block; rows are written per block")
    p.add_argument("--max-items", type=int, default=DEFAULT_MAX_ITEMS,
                   help="a chain with more sentences than this in its context, steps or reference is not scored "
                        f"(NaN too_long); 0: no limit (default {DEFAULT_MAX_ITEMS})")
    p.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS,
                   help="a chain with more characters than this in context, steps and reference together is not "
                        f"scored (NaN too_long); 0: no limit (default {DEFAULT_MAX_CHARS})")
    p.add_argument("--max-memory", default="auto",
                   help="working memory for what grows with the input: token-vector cache, a block's model "
                        "outputs, formula tensors (e.g. 512M, 2G; auto: 1/8 of the free memory, at most 1 GiB on "
                        "a CPU, 4 GiB on a GPU; 0: no bound). Chains are grouped to fit it; a chain that cannot "
                        "fit alone gets NaN over_memory")
    p.add_argument("--overlap", choices=["auto", "on", "off"], default="auto",
                   help="plan and tokenize the next block on a worker thread while this one is scored "
                        "(auto: on for a GPU)")
    for slot, flag in (("embedder", "embedder"), ("token", "token-model"), ("nli", "nli-model"),
                       ("lm", "lm"), ("grammar", "grammar-model")):
        p.add_argument(f"--{flag}", dest=f"model_{slot}", default=None,
                       help=f"override the preset's {slot} model: a local directory or a hub id")
    p.add_argument("--allow-hub", action="store_true",
                   help="allow hub downloads for models given by id under an offline preset")
    p.add_argument("--on-error", default="fail", choices=["fail", "skip"],
                   help="bad input lines: fail (exit 2 before scoring anything) or skip (report them, "
                        "score the rest). A chain that a model cannot take gets NaN model_error either way and the "
                        "rest is scored; the exit code is then 1 under fail, 0 under skip")
    p.add_argument("--resume", action="store_true", help="skip ids already in the output and append")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--keep-fields", default="", help="comma-separated input fields copied into each output row")
    p.add_argument("--details", action="store_true", help="add per-step details (worst steps, pairs, PPL, ...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="print only the signature at the end")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roscoe", description="ROSCOE scores for step-by-step reasoning chains")
    parser.add_argument("--version", action="version", version=f"roscoe-metrics {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _score_parser(sub)
    s = sub.add_parser("scores", help="list the scores: names, families, groups, directions")
    s.add_argument("--mode", default="paper", choices=["paper", "parlai"])
    s.add_argument("--json", action="store_true")
    s.add_argument("--markdown", action="store_true")
    c = sub.add_parser("correlate", help="correlate a scored file with human labels (Somers' D and friends)")
    c.add_argument("--scores", required=True, dest="scored", help="scored file (.jsonl, .csv, .parquet)")
    c.add_argument("--labels", required=True, help="labels (.jsonl or .csv) with an id column")
    c.add_argument("--on", default="id", help="the id column of both files (default id)")
    c.add_argument("--label-columns", default="",
                   help="comma-separated label columns; nested objects by dotted path (chain_labels.overall_quality); "
                        "default: every column but the id that holds numbers or yes/no (the others are skipped with a note)")
    c.add_argument("--score-columns", default="", help="comma-separated score columns (default: every numeric one)")
    _stats_args(c)
    c.add_argument("-o", "--out-dir", default=None, help="write cells CSV, Markdown and LaTeX tables here")
    e = sub.add_parser("meta-eval", help="score a bundled human-labelled set and correlate: tables, plots, report")
    e.add_argument("benchmarks", nargs="+", help="roscoe-human-gsm8k, roscoe-human-esnli, mr-ben-<subject>, champ, "
                                                 "eobqa")
    e.add_argument("--preset", default="lite")
    e.add_argument("--mode", default="paper", choices=["paper", "parlai"])
    e.add_argument("--scores", default="all")
    e.add_argument("--device", default="auto")
    e.add_argument("--dtype", default="auto", choices=DTYPES)
    e.add_argument("--limit", type=int, default=0, help="only the first N chains of each set")
    e.add_argument("--no-report", action="store_true", help="skip the plots and the HTML report")
    _stats_args(e)
    e.add_argument("-o", "--out-dir", default="meta-eval", help="output directory (default meta-eval/)")
    from perturbations.cli import add_parsers

    add_parsers(sub)
    m = sub.add_parser("models", help="list each model slot of a preset: model, source, size, hash")
    m.add_argument("--preset", default="lite")
    m.add_argument("--json", action="store_true")
    return parser


def _stats_args(p):
    p.add_argument("--methods", default="all",
                   help="comma-separated: somers_d, kendall_tau_b, spearman, pearson, or all (default)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    p.add_argument("--seed", type=int, default=0)


def _methods(text: str):
    from human_eval.stats import METHODS

    methods = METHODS if text == "all" else tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UsageError(f"unknown method(s) {', '.join(bad)}; expected {', '.join(METHODS)} or all")
    return methods


# ---------------------------------------------------------------------------- commands


def cmd_correlate(args) -> int:
    from human_eval import loaders, pipeline
    from human_eval.stats import correlate
    from human_eval.tables import Table, cells_csv

    for p in (args.scored, args.labels):
        if not Path(p).is_file():
            raise UsageError(f"{p}: no such file")
    methods = _methods(args.methods)
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


def cmd_meta_eval(args) -> int:
    from human_eval import pipeline
    from human_eval.tables import summary_markdown

    from .scorer import Scorer

    methods = _methods(args.methods)
    for name in args.benchmarks:
        if name not in pipeline.BENCHMARKS:
            raise UsageError(f"unknown benchmark {name!r}; expected one of {', '.join(pipeline.BENCHMARKS)}")
    scorer = Scorer(args.preset, mode=args.mode, device=args.device, dtype=args.dtype)
    out = Path(args.out_dir)
    summaries, rows = {}, None
    for name in args.benchmarks:
        labelled = pipeline.load_benchmark(name)
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



def cmd_scores(args) -> int:
    rows = registry.table_rows(args.mode)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.markdown:
        cols = list(rows[0])
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        print("\n".join("| " + " | ".join(f"`{r[c]}`" if c == "name" else str(r[c]) for c in cols) + " |"
                        for r in rows))
    else:
        print(_text_table(rows))
    return EXIT_OK


def cmd_models(args) -> int:
    from .models import ModelSet, ModelUnavailable

    ms = ModelSet(args.preset)
    rows = []
    for slot in registry.SLOTS:
        try:
            d = ms.describe(slot)
        except ModelUnavailable as err:
            d = {"slot": slot, "model": ms.preset.slots[slot].model, "source": f"not available: {err}"}
        rows.append({k: d.get(k, "") for k in ("slot", "model", "source", "size_mb", "hash")})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"preset {ms.preset.name}: {ms.preset.description}")
        print(_text_table(rows))
    return EXIT_OK


def _text_table(rows: list[dict]) -> str:
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c] if r[c] is not None else "-")) for r in rows)) for c in cols}
    line = lambda r: "  ".join(str(r[c] if r[c] is not None else "-").ljust(width[c]) for c in cols).rstrip()
    return "\n".join([line({c: c for c in cols}), line({c: "-" * width[c] for c in cols}), *map(line, rows)])


def _check_output(args, io) -> None:
    out = Path(args.output)
    io.output_format(out)
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if args.output == io.STDOUT:
        if args.resume:
            raise UsageError("--resume needs an output file to read back; standard output has none")
        return
    written = (out, io.journal_path(out), io.meta_path(out))
    if args.input != "-" and any(p.resolve() == Path(args.input).resolve() for p in written):
        raise UsageError(f"{out} would overwrite the input {args.input}; write the scores to another file")
    exists = out.exists() or io.journal_path(out).exists()
    if exists and not (args.resume or args.overwrite):
        raise UsageError(f"{out} exists; pass --resume to append the missing rows or --overwrite to replace it")
    if not out.parent.exists():
        raise UsageError(f"output directory {out.parent} does not exist")


def cmd_score(args) -> int:
    if args.input != "-":
        if not Path(args.input).is_file():
            raise UsageError(f"{args.input}: no such file")
        return _score(args, args.input, args.input)
    # standard input is read twice (validated, then scored), so it is kept in a file first
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="roscoe-stdin-") as tmp:
        copy = Path(tmp) / "stdin.jsonl"
        with open(copy, "wb") as fh:
            shutil.copyfileobj(sys.stdin.buffer, fh)
        return _score(args, copy, "<stdin>")


def _score(args, path, name: str) -> int:
    from . import io

    names = registry.resolve(args.scores)
    fields = FieldMap(args.id_field, args.context_field, args.steps_field, args.reference_field)
    split = {"context": args.context_splitter, "steps": args.steps_splitter, "reference": args.reference_splitter}
    from . import splitters

    for v in split.values():
        splitters.get(v)
    keep = tuple(k for k in args.keep_fields.split(",") if k)
    if args.max_items < 0 or args.max_chars < 0:
        raise UsageError("--max-items and --max-chars take a count, or 0 for no limit")
    from .memory import parse_size

    try:
        max_memory = "auto" if args.max_memory == "auto" else (parse_size(args.max_memory) or None)
    except ValueError as err:
        raise UsageError(f"--max-memory: {err}") from None
    _check_output(args, io)
    read = lambda: io.read_chains(path, fmt=args.format, fields=fields, split=split, keep_fields=keep, name=name)

    # Validation pass: bad input is reported before any model loads or any row is written.
    errors: list[InputError] = []
    n_good = 0
    for _, item in read():
        if isinstance(item, InputError):
            errors.append(item)
        else:
            n_good += 1
    if errors:
        for err in errors[:20]:
            print(f"error: {err}", file=sys.stderr)
        if len(errors) > 20:
            print(f"error: ... and {len(errors) - 20} more bad lines", file=sys.stderr)
        if args.on_error == "fail":
            print(f"{len(errors)} bad input line(s); nothing was scored (use --on-error skip to score the rest)",
                  file=sys.stderr)
            return EXIT_USAGE

    from .models import ModelConfigError, ModelUnavailable
    from .scorer import Scorer

    overrides = {slot: getattr(args, f"model_{slot}") for slot in registry.SLOTS}
    try:
        scorer = Scorer(args.preset, mode=args.mode, device=args.device, dtype=args.dtype,
                        batch_tokens=args.batch_tokens, block_size=args.block_size, split=split,
                        overlap={"auto": None, "on": True, "off": False}[args.overlap], compile=args.compile,
                        allow_hub=True if args.allow_hub else None, max_items=args.max_items or None,
                        max_chars=args.max_chars or None, max_memory=max_memory, **overrides)
        signature = scorer.signature(names)
    except (ModelUnavailable, ModelConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE

    out = Path(args.output)
    to_stdout = args.output == io.STDOUT
    report = sys.stderr if to_stdout else sys.stdout  # standard output holds only the rows then
    done: set[str] = set()
    previous = None
    if args.resume:
        if io.drop_torn_row(out):
            print(f"warning: the last row of {out} was cut off by an interrupted write; it was removed and "
                  "its chain is scored again", file=sys.stderr)
        done = set(io.existing_ids(out))
        if io.meta_path(out).exists():
            previous = json.loads(io.meta_path(out).read_text())
            if previous.get("signature") != str(signature) or previous.get("scores") != list(names):
                raise UsageError(f"{out} was written with another configuration "
                                 f"(signature {previous.get('signature')}, scores {previous.get('scores')}); "
                                 "resume with the same flags, or use --overwrite")

    if args.overwrite and not to_stdout:  # only now: input and models are known good, so a failed start loses nothing
        for p in (out, io.journal_path(out), io.meta_path(out)):
            p.unlink(missing_ok=True)
    columns = ["id", *keep, *names, "reasons"] + (["details"] if args.details else [])
    meta = {
        "roscoe_version": __version__, "signature": str(signature), "scores": list(names),
        "input": name, "format": args.format, "fields": fields.__dict__, "split": split,
        "preset": args.preset, "mode": args.mode, "status": "running", "columns": columns,
        "limits": {"max_items": scorer.max_items, "max_chars": scorer.max_chars, "max_memory": scorer.max_memory},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "input_errors": [e.as_dict() for e in errors],
        "previous_rows": len(done),
    }
    write_meta = (lambda m: None) if to_stdout else (lambda m: io.write_meta(out, m))
    write_meta(meta)
    writer = io.RowWriter(out, columns, append=bool(done) or args.resume)
    collected = io.SummaryCollector(names) if to_stdout else None  # a file is summarised by reading it back

    def emit(rows):
        writer.write(rows)
        if collected is not None:
            for row in rows:
                collected.add(row)
    progress = None
    if not args.no_progress and not args.quiet:
        from tqdm import tqdm

        progress = tqdm(total=n_good, unit="chain", file=sys.stderr, dynamic_ncols=True)
    t0 = time.perf_counter()
    written = 0

    def chains():
        # Bad lines are written as they are read; with the scorer's overlap (on a GPU) reading
        # runs one block ahead, so such a row may land one block earlier than the lines around it.
        nonlocal written
        for _, item in read():
            if isinstance(item, InputError):
                row = _error_row(item, names, done)
                if row is not None:
                    emit([row])
                    written += 1
                continue
            if str(item.id) in done:
                if progress:
                    progress.update(1)
                continue
            yield item

    try:
        for table in scorer.score_blocks(scorer.blocks(chains(), names), names, details=args.details):
            emit(table.records())
            written += len(table)
            if progress:
                progress.update(len(table))
    except BrokenPipeError:
        if not to_stdout:
            raise
        # the reader stopped (`| head`): what it took was whole rows; no more can reach it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"error: standard output was closed after {written} row(s); scoring stopped", file=sys.stderr)
        return EXIT_FAIL
    except Exception as err:  # noqa: BLE001 - any failure while scoring: keep what is written, exit 1
        writer.close(names)
        meta.update(status="failed", error=f"{type(err).__name__}: {err}", rows_written=written)
        write_meta(meta)
        where = "standard output" if to_stdout else f"{out}; rerun with --resume to continue"
        print(f"error while scoring: {type(err).__name__}: {err}\n{written} new row(s) were written to {where}",
              file=sys.stderr)
        return EXIT_FAIL
    finally:
        if progress:
            progress.close()
    elapsed = time.perf_counter() - t0
    writer.close(names, metadata={b"roscoe_signature": str(signature).encode()})
    if scorer.failures:
        meta["model_errors"] = [{"id": f["id"], "error": f["error"]} for f in scorer.failures]

    from .table import format_summary

    summary = collected.summary() if to_stdout else io.summarize_file(out, names)
    rows_total = summary[names[0]]["n"] + summary[names[0]]["nan"]
    meta.update(status="complete", rows_written=written, rows_total=rows_total,
                seconds=round(elapsed, 3), chains_per_second=round(written / elapsed, 3) if elapsed else None,
                timings={k: round(v, 3) for k, v in scorer.timings.items()},
                model_stats={slot: m.stats.as_dict() for slot, m in scorer.models._loaded.items()},
                summary=summary)
    write_meta(meta)
    if args.quiet:
        print(signature, file=report)
    else:
        print(f"scored {written} chain(s) in {elapsed:.1f} s -> {'standard output' if to_stdout else out}"
              + (f" ({len(done)} already there)" if done else "")
              + (f"; {len(errors)} bad line(s) skipped" if errors else ""), file=report)
        print(format_summary(summary, signature), file=report)
    if scorer.failures:
        ids = ", ".join(repr(f["id"]) for f in scorer.failures[:10]) + (" ..." if len(scorer.failures) > 10 else "")
        print(f"{'warning' if args.on_error == 'skip' else 'error'}: {len(scorer.failures)} chain(s) failed in a "
              f"model or formula and got NaN model_error ({ids}); every other chain was scored", file=sys.stderr)
        if args.on_error == "fail":
            return EXIT_FAIL
    return EXIT_OK


def _error_row(err: InputError, names, done: set) -> dict | None:
    """With --on-error skip, a bad line whose id is known gets a row of NaN ``input_error``, so
    the output still has one row per identifiable input chain."""
    if err.chain_id is None or str(err.chain_id) in done:
        return None
    return {"id": err.chain_id, **{n: None for n in names}, "reasons": {n: "input_error" for n in names}}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "score":
            return cmd_score(args)
        if args.command == "scores":
            return cmd_scores(args)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "correlate":
            return cmd_correlate(args)
        if args.command == "meta-eval":
            return cmd_meta_eval(args)
        if args.command in ("perturb", "diag-eval"):
            from perturbations import cli as pcli

            run = pcli.cmd_perturb if args.command == "perturb" else pcli.cmd_diag_eval
            return run(args, UsageError)
    except (UsageError, registry.UnknownScoreError, ValueError, FileExistsError) as err:
        print(f"roscoe {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as err:
        extra = {"correlate": "human", "meta-eval": "human", "diag-eval": "human", "perturb": "perturb"}.get(
            args.command, "io")
        print(f"roscoe {args.command}: error: the optional package {err.name!r} is missing; "
              f"pip install 'roscoe-metrics[{extra}]'", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; rows written so far are kept (use --resume)", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
