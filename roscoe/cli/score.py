"""``roscoe score``: every chain of a JSONL file scored, one output row per chain.

The run goes validate (flags and every input line, before any model loads) -> build (the
scorer and its signature) -> open the output (resume or overwrite) -> run (rows written per
block) -> finish (summary, meta file, exit code)."""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__, registry
from ..chains import DEFAULT_MAX_CHARS, DEFAULT_MAX_ITEMS, FieldMap, InputError
from . import common
from .common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError


def register(sub) -> None:
    p = sub.add_parser("score", help="score a JSONL file of chains",
                       description="Score every chain of a JSONL file; one output row per chain.")
    p.add_argument("input", help="JSONL input, one chain per line (- reads standard input)")
    p.add_argument("-o", "--output", required=True,
                   help="output file: .jsonl, .csv or .parquet (- writes JSONL rows to standard output, "
                        "everything else to standard error)")
    from ..profiles import PROFILES

    p.add_argument("--format", default="jsonl", choices=["jsonl", *PROFILES],
                   help="input layout: plain JSONL with mappable fields (default), or a profile that reads "
                        "the reference implementation's own formats exactly")
    common.add_fields(p)
    p.add_argument("--scores", default="all",
                   help="comma-separated score names, paper names, families (SA, SS, LI, LC), groups, "
                        "or all / reference-free / reference-based (default all)")
    common.add_models(p)
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
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="keep model outputs on disk in DIR for every later run: a text any run has seen is not "
                        "computed again (keyed by model hash, input recipe, precision and the text)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process (default); ray: actors on a Ray cluster, the same rows in the same "
                        "order (pip install 'roscoe-metrics[ray]')")
    r = p.add_argument_group("Ray engine (--engine ray)")
    r.add_argument("--workers", type=int, default=1, help="actors, each with its own models (default 1)")
    r.add_argument("--cpus-per-worker", type=float, default=1, help="CPUs per actor (default 1)")
    r.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs per actor (default 0)")
    r.add_argument("--ray-address", default=None,
                   help="the cluster to join: auto (the one started with `ray start` on this node) or HOST:PORT; "
                        "default: a cluster of this machine alone, started for the run")
    r.add_argument("--ray-start-timeout", type=float, default=600,
                   help="seconds to wait for room on the cluster and for the actors to load their models "
                        "(default 600)")
    r.add_argument("--ray-batch-size", type=int, default=0,
                   help="chains per actor task, the unit Ray retries when an actor is lost (default: the input "
                        "shared evenly among the workers, at most --block-size)")
    p.add_argument("--resume", action="store_true", help="skip ids already in the output and append")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--keep-fields", default="", help="comma-separated input fields copied into each output row")
    p.add_argument("--details", action="store_true", help="add per-step details (worst steps, pairs, PPL, ...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="print only the signature at the end")
    p.set_defaults(func=run, extra="io")


def run(args) -> int:
    if args.input != "-":
        if not Path(args.input).is_file():
            raise UsageError(f"{args.input}: no such file")
        return score_file(args, args.input, args.input)
    # standard input is read twice (validated, then scored), so it is kept in a file first
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="roscoe-stdin-") as tmp:
        copy = Path(tmp) / "stdin.jsonl"
        with open(copy, "wb") as fh:
            shutil.copyfileobj(sys.stdin.buffer, fh)
        return score_file(args, copy, "<stdin>")


@dataclass
class Job:
    """One ``roscoe score`` run: what validation found, then the scorer and the output."""

    args: object
    path: Path
    name: str
    names: tuple[str, ...]
    fields: FieldMap
    split: dict
    keep: tuple[str, ...]
    max_memory: object
    errors: list[InputError] = field(default_factory=list)
    n_good: int = 0
    scorer: object = None
    signature: object = None
    done: set = field(default_factory=set)  # ids already in the output (--resume)
    done_read: bool = False
    limits: dict = field(default_factory=dict)
    engine: dict = field(default_factory=lambda: {"name": "local"})
    failures: list = field(default_factory=list)  # {"id", "error"} of chains a model could not take
    timings: dict = field(default_factory=dict)
    model_stats: dict = field(default_factory=dict)
    plan: object = None  # the Ray engine's roscoe.ray.FilePlan
    meta: dict = field(default_factory=dict)
    written: int = 0
    seconds: float = 0.0
    collected: object = None  # the summary of rows sent to standard output

    @property
    def out(self) -> Path:
        return Path(self.args.output)

    @property
    def to_stdout(self) -> bool:
        from .. import io

        return self.args.output == io.STDOUT

    def read(self):
        from .. import io

        return io.read_chains(self.path, fmt=self.args.format, fields=self.fields, split=self.split,
                              keep_fields=self.keep, name=self.name)

    def emit(self, writer, rows: list[dict]) -> None:
        """Write rows, count them, and add them to the summary of rows sent to standard output."""
        writer.write(rows)
        self.written += len(rows)
        if self.collected is not None:
            for row in rows:
                self.collected.add(row)

    def stopped(self, writer, err: Exception, what: str) -> int:
        """A run that failed after its output was opened: what is written is kept and the meta
        file says why; exit 1."""
        writer.close(self.names)
        self.meta.update(status="failed", error=f"{type(err).__name__}: {err}", rows_written=self.written)
        self.write_meta()
        where = "standard output" if self.to_stdout else f"{self.out}; rerun with --resume to continue"
        print(f"{what}\n{self.written} new row(s) were written to {where}", file=sys.stderr)
        return EXIT_FAIL

    def write_meta(self) -> None:
        from .. import io

        if not self.to_stdout:
            io.write_meta(self.out, self.meta)


def score_file(args, path, name: str) -> int:
    job = validate(args, path, name)
    if job.errors and args.on_error == "fail":
        print(f"{len(job.errors)} bad input line(s); nothing was scored (use --on-error skip to score the rest)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.engine == "ray":
        from . import score_ray

        status = score_ray.run(job)
        if status is not None:
            return status  # else: nothing to score, which the local engine finishes the same way
    if not build(job):
        return EXIT_USAGE
    writer = open_output(job)
    status = score_chains(job, writer)
    return status if status is not None else finish(job, writer)


def validate(args, path, name: str) -> Job:
    """Flags, output path and every input line, before any model loads or any row is written."""
    from .. import io, splitters
    from ..memory import parse_size

    split = common.splitters(args)
    for v in split.values():
        splitters.get(v)
    if args.max_items < 0 or args.max_chars < 0:
        raise UsageError("--max-items and --max-chars take a count, or 0 for no limit")
    if args.engine == "ray":
        if args.workers < 1 or args.ray_batch_size < 0 or args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
            raise UsageError("--workers takes a count of 1 or more, --ray-batch-size a count (0: automatic), "
                             "--cpus-per-worker a positive number, --gpus-per-worker 0 or more")
        if args.ray_start_timeout <= 0:
            raise UsageError("--ray-start-timeout takes a positive number of seconds")
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise UsageError("--engine ray needs Ray Data: pip install 'roscoe-metrics[ray]'")
    try:
        max_memory = "auto" if args.max_memory == "auto" else (parse_size(args.max_memory) or None)
    except ValueError as err:
        raise UsageError(f"--max-memory: {err}") from None
    job = Job(args, path, name, registry.resolve(args.scores),
              common.fields(args), split,
              tuple(k for k in args.keep_fields.split(",") if k), max_memory)
    _check_output(args, io)
    plan = None
    if args.engine == "ray":  # the Ray engine's read plan is made in this same pass over the file
        from ..ray import PlanBuilder

        read_done(job)
        if not args.ray_batch_size:
            # Smaller batches score slower (fewer texts to share a model batch: 64 chains cost
            # 30 % more time than 100 on the CPU), larger ones leave workers idle on small files.
            args.ray_batch_size = max(1, min(args.block_size, -(-io.count_lines(path) // args.workers)))
        plan = PlanBuilder(path, skip_ids=job.done, lines_per_part=args.ray_batch_size)
    for lineno, item in job.read():
        if isinstance(item, InputError):
            job.errors.append(item)
        else:
            job.n_good += 1
        if plan is not None:
            plan.add(lineno, item)
    job.plan = plan.finish() if plan is not None else None
    for err in job.errors[:20]:
        print(f"error: {err}", file=sys.stderr)
    if len(job.errors) > 20:
        print(f"error: ... and {len(job.errors) - 20} more bad lines", file=sys.stderr)
    return job


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


def scorer_kwargs(job: Job) -> dict:
    """The Scorer's arguments from the flags (the Ray engine hands them to every actor)."""
    a = job.args
    return dict(preset=a.preset, mode=a.mode, device=a.device, dtype=a.dtype, batch_tokens=a.batch_tokens,
                block_size=a.block_size, split=job.split, overlap={"auto": None, "on": True, "off": False}[a.overlap],
                compile=a.compile, allow_hub=True if a.allow_hub else None, max_items=a.max_items or None,
                max_chars=a.max_chars or None, max_memory=job.max_memory, cache_dir=a.cache,
                **{slot: getattr(a, f"model_{slot}") for slot in registry.SLOTS})


def build(job: Job) -> bool:
    """The scorer and its signature; False (with the error printed) when a model cannot be had."""
    from ..models import ModelConfigError, ModelUnavailable
    from ..scorer import Scorer

    try:
        job.scorer = Scorer(**scorer_kwargs(job))
        job.limits = {"max_items": job.scorer.max_items, "max_chars": job.scorer.max_chars,
                      "max_memory": job.scorer.max_memory}
        job.signature = job.scorer.signature(job.names)
    except (ModelUnavailable, ModelConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return False
    return True


def read_done(job: Job) -> None:
    """With --resume: the ids already in the output (a row torn by an interrupted write is cut
    off first, and its chain scored again)."""
    from .. import io

    if job.args.resume and job.done_read is False:
        if io.drop_torn_row(job.out):
            print(f"warning: the last row of {job.out} was cut off by an interrupted write; it was removed and "
                  "its chain is scored again", file=sys.stderr)
        job.done = set(io.existing_ids(job.out))
        job.done_read = True


def open_output(job: Job):
    """The row writer: appending after the rows already there (--resume) or over nothing
    (--overwrite removes the old files only now, when input and models are known good)."""
    from .. import io

    a, out = job.args, job.out
    previous_rows = 0
    if a.resume:
        read_done(job)
        previous_rows = len(job.done)
        if io.meta_path(out).exists():
            previous = json.loads(io.meta_path(out).read_text())
            if previous.get("signature") != str(job.signature) or previous.get("scores") != list(job.names):
                raise UsageError(f"{out} was written with another configuration "
                                 f"(signature {previous.get('signature')}, scores {previous.get('scores')}); "
                                 "resume with the same flags, or use --overwrite")
    if a.overwrite and not job.to_stdout:
        for p in (out, io.journal_path(out), io.meta_path(out)):
            p.unlink(missing_ok=True)
    columns = ["id", *job.keep, *job.names, "reasons"] + (["details"] if a.details else [])
    job.meta = {
        "roscoe_version": __version__, "signature": str(job.signature), "scores": list(job.names),
        "input": job.name, "format": a.format, "fields": job.fields.__dict__, "split": job.split,
        "preset": a.preset, "mode": a.mode, "status": "running", "columns": columns,
        "limits": job.limits, "engine": job.engine,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "input_errors": [e.as_dict() for e in job.errors],
        "previous_rows": previous_rows,
    }
    job.write_meta()
    return io.RowWriter(out, columns, append=bool(job.done) or a.resume)


def score_chains(job: Job, writer) -> int | None:
    """Every chain not yet in the output, scored and written block by block; an exit code when
    the run cannot finish, else None."""
    from .. import io

    a, names = job.args, job.names
    job.collected = io.SummaryCollector(names) if job.to_stdout else None  # a file is read back
    progress = None
    if not a.no_progress and not a.quiet:
        from tqdm import tqdm

        progress = tqdm(total=job.n_good, unit="chain", file=sys.stderr, dynamic_ncols=True)

    def chains():
        # Bad lines are written as they are read; with the scorer's overlap (on a GPU) reading
        # runs one block ahead, so such a row may land one block earlier than the lines around it.
        for _, item in job.read():
            if isinstance(item, InputError):
                row = _error_row(item, names, job.done)
                if row is not None:
                    job.emit(writer, [row])
                continue
            if str(item.id) in job.done:
                if progress:
                    progress.update(1)
                continue
            yield item

    t0 = time.perf_counter()
    try:
        for table in job.scorer.score_blocks(job.scorer.blocks(chains(), names), names, details=a.details):
            job.emit(writer, table.records())
            if progress:
                progress.update(len(table))
    except BrokenPipeError:
        if not job.to_stdout:
            raise
        # the reader stopped (`| head`): what it took was whole rows; no more can reach it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"error: standard output was closed after {job.written} row(s); scoring stopped", file=sys.stderr)
        return EXIT_FAIL
    except Exception as err:  # noqa: BLE001 - any failure while scoring: keep what is written, exit 1
        return job.stopped(writer, err, f"error while scoring: {type(err).__name__}: {err}")
    finally:
        if progress:
            progress.close()
    job.seconds = time.perf_counter() - t0
    job.failures = job.scorer.failures
    job.timings = job.scorer.timings
    job.model_stats = {slot: m.stats.as_dict() for slot, m in job.scorer.models.loaded().items()}
    return None


def finish(job: Job, writer) -> int:
    """Close the output, complete the meta file, print the summary; the exit code."""
    from .. import io
    from ..table import format_summary

    a, names, elapsed, failures = job.args, job.names, job.seconds, job.failures
    writer.close(names, metadata={b"roscoe_signature": str(job.signature).encode()})
    if failures:
        job.meta["model_errors"] = [{"id": f["id"], "error": f["error"]} for f in failures]
    summary = job.collected.summary() if job.to_stdout else io.summarize_file(job.out, names)
    job.meta.update(status="complete", rows_written=job.written,
                    rows_total=summary[names[0]]["n"] + summary[names[0]]["nan"],
                    seconds=round(elapsed, 3),
                    chains_per_second=round(job.written / elapsed, 3) if elapsed else None,
                    timings={k: round(v, 3) for k, v in job.timings.items()}, model_stats=job.model_stats,
                    summary=summary)
    job.write_meta()
    report = sys.stderr if job.to_stdout else sys.stdout  # standard output holds only the rows then
    if a.quiet:
        print(job.signature, file=report)
    else:
        print(f"scored {job.written} chain(s) in {elapsed:.1f} s -> {'standard output' if job.to_stdout else job.out}"
              + (f" ({len(job.done)} already there)" if job.done else "")
              + (f"; {len(job.errors)} bad line(s) skipped" if job.errors else ""), file=report)
        print(format_summary(summary, job.signature), file=report)
    if failures:
        ids = ", ".join(repr(f["id"]) for f in failures[:10]) + (" ..." if len(failures) > 10 else "")
        print(f"{'warning' if a.on_error == 'skip' else 'error'}: {len(failures)} chain(s) failed in a "
              f"model or formula and got NaN model_error ({ids}); every other chain was scored", file=sys.stderr)
        if a.on_error == "fail":
            return EXIT_FAIL
    return EXIT_OK


def _error_row(err: InputError, names, done: set) -> dict | None:
    """With --on-error skip, a bad line whose id is known gets a row of NaN ``input_error``, so
    the output still has one row per identifiable input chain."""
    if err.chain_id is None or str(err.chain_id) in done:
        return None
    return {"id": err.chain_id, **{n: None for n in names}, "reasons": {n: "input_error" for n in names}}
