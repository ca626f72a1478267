"""Scoring on a Ray cluster with Ray Data (``pip install 'roscoe-metrics[ray]'``).

Two ways in:

- ``score_dataset(ds, scores=..., preset=...)`` adds the score columns and ``reasons`` to a
  Ray Dataset a pipeline already has; it streams and gathers nothing.
- ``score_file(path, plan, ...)`` is what ``roscoe score --engine ray`` runs: the rows of a
  JSONL file, each exactly once and in input order, for the CLI to write.

Why it is built this way:

- Each actor builds one ``Scorer`` in its constructor, so the models load once per actor and
  are never pickled; the functions and classes handed to Ray capture only small settings.
- Ray retries the tasks of a lost actor, so a batch can be scored twice (at least once).
  Every row carries its ordinal in the input and ``InOrder`` lets each through exactly once,
  in order; a missing ordinal at the end is an error, never a silently short file.
- The input file is read by tasks pinned to the driver's node: the path exists there, and
  need not exist on the workers.  Only the lines the driver's validation admitted are read
  (``FilePlan``); a file that changes in between fails the run.
- Aggregates are the CLI's, computed from the gathered file, never averaged per shard.

The core package never imports this module (nor ray).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from . import io, registry
from .chains import DEFAULT_SPLITTERS, FieldMap, InputError, from_record

# Chains per actor task, the unit Ray retries when an actor is lost: the Scorer's block.  Smaller
# batches leave fewer texts to share each model batch (on the CPU 64 chains per task took 30 %
# longer than 100); the CLI shares a small input evenly among its workers instead.
DEFAULT_BATCH_SIZE = 256
KILL_HOOK_ENV = "ROSCOE_RAY_TEST_KILL"  # tests only: a marker path; one actor dies before its second batch


class RayEngineError(RuntimeError):
    """The Ray run could not start or could not be trusted (no worker fits the cluster, actors
    that disagree on the signature, rows missing)."""


class StartError(RayEngineError):
    """No actor could start: nothing was scored."""


# ---------------------------------------------------------------------------- the input plan


@dataclass(frozen=True)
class Part:
    """Lines ``first_line`` up to ``stop_line`` (0: the end) of the input, starting at byte
    ``offset``; their admitted lines get ordinals from ``first_ordinal`` on.  ``skip``: the
    non-blank lines of the part that are not scored (bad input, ids already in the output)."""

    offset: int
    first_line: int
    stop_line: int
    first_ordinal: int
    skip: tuple[int, ...] = ()


@dataclass
class FilePlan:
    """Which lines of the input are scored, cut into parts for the read tasks."""

    parts: list[Part]
    total: int  # lines to score
    fingerprint: tuple[int, int]  # size and modification time when planned

    @property
    def empty(self) -> bool:
        return self.total == 0


def fingerprint(path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class PlanBuilder:
    """A FilePlan built line by line, alongside the validation pass that reads the file anyway:
    ``add`` each (line number, Chain or InputError) of ``io.read_chains`` in order, then
    ``finish``.  A line holding an InputError or a chain whose id is in ``skip_ids`` is
    skipped; every other line is scored.  A part is as long as an actor's batch, so that each
    part is one actor task.  Memory: one entry per part and per skipped line, none per scored
    line."""

    def __init__(self, path, *, skip_ids=frozenset(), lines_per_part: int = DEFAULT_BATCH_SIZE):
        self.path, self.skip_ids, self.per_part = path, skip_ids, lines_per_part
        self.fingerprint = fingerprint(path)  # before the first line is read
        self.starts: list[tuple[int, int]] = []  # (first line, first ordinal)
        self.skips: list[list[int]] = []
        self.total, self.in_part = 0, lines_per_part

    def add(self, lineno: int, item) -> None:
        if isinstance(item, InputError) or str(item.id) in self.skip_ids:
            if not self.skips:  # skipped lines before the first scored one open the first part
                self.starts.append((1, 0))
                self.skips.append([])
                self.in_part = 0
            self.skips[-1].append(lineno)
            return
        if self.in_part >= self.per_part:
            self.starts.append((lineno, self.total))
            self.skips.append([])
            self.in_part = 0
        self.in_part += 1
        self.total += 1

    def finish(self) -> FilePlan:
        offsets = io.line_offsets(self.path, [s for s, _ in self.starts])
        stops = [s for s, _ in self.starts[1:]] + [0]
        parts = [Part(off, first, stop, ordinal, tuple(skip))
                 for off, (first, ordinal), stop, skip in zip(offsets, self.starts, stops, self.skips)]
        return FilePlan(parts, self.total, self.fingerprint)


def plan_file(items: Iterable[tuple[int, object]], path, *, skip_ids=frozenset(),
              lines_per_part: int = DEFAULT_BATCH_SIZE) -> FilePlan:
    """The FilePlan of ``path`` from its validated lines (``io.read_chains`` output)."""
    builder = PlanBuilder(path, skip_ids=skip_ids, lines_per_part=lines_per_part)
    for lineno, item in items:
        builder.add(lineno, item)
    return builder.finish()


def read_part(batch: dict, *, path: str, name: str, fingerprint_: tuple[int, int]) -> dict:
    """The read task: the admitted lines of each part in ``batch``, as JSON text with their
    ordinal and line number."""
    import numpy as np

    if fingerprint(path) != tuple(fingerprint_):
        raise RayEngineError(f"{name} changed while it was being scored; score it again")
    ordinals, lines, texts = [], [], []
    for offset, first, stop, ordinal, skip in zip(batch["offset"], batch["first_line"], batch["stop_line"],
                                                  batch["first_ordinal"], batch["skip"]):
        skip = set(int(x) for x in skip)
        for lineno, value in io.read_lines(path, name=name, start=int(offset), first_line=int(first),
                                           stop_line=int(stop) or None):
            if lineno in skip:
                continue
            if isinstance(value, InputError):  # it was good when validated: the file changed
                raise RayEngineError(f"{value} (the line was valid when checked; the input changed)")
            ordinals.append(int(ordinal))
            lines.append(lineno)
            # ASCII escapes keep lone surrogates (valid JSON, not UTF-8) out of Arrow's strings
            texts.append(json.dumps(value))
            ordinal += 1
    return {"ordinal": np.array(ordinals, dtype=np.int64), "line": np.array(lines, dtype=np.int64),
            "text": np.array(texts, dtype=object)}


# ---------------------------------------------------------------------------- the actor


class ScoreActor:
    """The class Ray Data runs in each actor: one Scorer, built once.

    ``parse`` set: batches hold input lines (``ordinal``, ``line``, ``text``) from ``read_part``
    and come back as one JSON row per chain with its ordinal, the actor's signature and any
    model failure.  ``parse`` None: batches hold chain records (``score_dataset``) and come back
    with the score columns and ``reasons`` added."""

    def __init__(self, *, scorer_kwargs: dict, names: tuple[str, ...], details: bool = False,
                 parse: dict | None = None, fields: dict | None = None, threads: int | None = None,
                 signature_column: str | None = None, kill_marker: str | None = None):
        import torch

        from .scorer import Scorer

        if threads:
            torch.set_num_threads(threads)
        self.names, self.details, self.parse = tuple(names), details, parse
        self.fields = FieldMap(**(fields or {}))
        self.signature_column = signature_column
        self.kill_marker, self.batches = kill_marker, 0
        # A model that cannot be had is reported with the first batch's rows, not raised here:
        # an actor that dies while starting makes Ray print its traceback several times over,
        # where the driver can say it in one line.
        self.start_error = ""
        try:
            self.scorer = Scorer(**scorer_kwargs)
            self.signature = str(self.scorer.signature(self.names))  # loads every model the scores use, now
        except Exception as err:  # noqa: BLE001 - whatever it is, it is this actor's start that failed
            self.start_error = f"{type(err).__name__}: {err}"

    def __call__(self, batch):
        self.batches += 1
        if self.batches == 2 and self.kill_marker and _claim(self.kill_marker):
            os.kill(os.getpid(), signal.SIGKILL)  # the test hook: this batch is lost, Ray must retry it
        if self.parse is None:
            if self.start_error:
                raise StartError(f"a Ray actor could not start: {self.start_error}")
            return self._records(batch)
        return self._lines(batch)

    def _score(self, chains) -> tuple[list[dict], dict[str, str]]:
        start = len(self.scorer.failures)
        rows = [r for t in self.scorer.score_blocks(self.scorer.blocks(chains, self.names), self.names,
                                                    details=self.details)
                for r in t.records()]
        return rows, {str(f["id"]): f["error"] for f in self.scorer.failures[start:]}

    def _lines(self, batch):
        import pyarrow as pa

        if self.start_error:
            n = batch.num_rows
            return pa.table({"ordinal": batch.column("ordinal"), "line": batch.column("line"),
                             **{c: pa.array([""] * n, pa.string()) for c in ("row", "signature", "failure")},
                             "start_error": pa.array([self.start_error] * n, pa.string())})
        p = self.parse
        chains = []
        for lineno, text in zip(batch.column("line").to_pylist(), batch.column("text").to_pylist()):
            chains.append(io.to_chain(json.loads(text), fmt=p["fmt"], fields=self.fields, split=p["split"],
                                      keep_fields=tuple(p["keep_fields"]), source=p["name"], line=lineno))
        rows, failures = self._score(chains)
        return pa.table({
            "ordinal": batch.column("ordinal"),
            "line": batch.column("line"),
            "row": pa.array([json.dumps(r) for r in rows], pa.string()),
            "signature": pa.array([self.signature] * len(rows), pa.string()),
            "failure": pa.array([failures.get(str(r["id"]), "") for r in rows], pa.string()),
            "start_error": pa.array([""] * len(rows), pa.string()),
        })

    def _records(self, batch):
        import pyarrow as pa

        records = batch.to_pylist()
        good, rows = [], [None] * len(records)
        for k, rec in enumerate(records):
            try:
                good.append((k, from_record(rec, fields=self.fields, split=self.scorer.split, source="dataset")))
            except InputError as err:
                warnings.warn(f"dataset row {k} of a batch: {err}; its scores are NaN input_error", stacklevel=2)
                rows[k] = {"reasons": {n: "input_error" for n in self.names}}
        scored, _ = self._score([c for _, c in good])
        for (k, _), row in zip(good, scored):
            rows[k] = row
        out = batch
        for n in self.names:
            out = out.append_column(n, pa.array([r.get(n) for r in rows], pa.float64()))
        out = out.append_column("reasons", pa.array([json.dumps(r["reasons"]) for r in rows], pa.string()))
        if self.details:
            out = out.append_column("details", pa.array([json.dumps(r.get("details")) for r in rows], pa.string()))
        if self.signature_column:
            out = out.append_column(self.signature_column, pa.array([self.signature] * len(rows), pa.string()))
        return out


def _claim(path: str) -> bool:
    """True for exactly one caller across processes: whoever creates ``path``."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


# ---------------------------------------------------------------------------- exactly once, in order


class InOrder:
    """Rows keyed by ordinals 0..total-1 that arrive at least once each, in any order, let
    through exactly once and in order.  Holds only the rows that arrived early."""

    def __init__(self, total: int):
        self.total, self.next, self.duplicates = total, 0, 0
        self.pending: dict[int, object] = {}

    def add(self, ordinal: int, row) -> list:
        if ordinal < self.next or ordinal in self.pending:
            self.duplicates += 1
            return []
        if not 0 <= ordinal < self.total:
            raise RayEngineError(f"row ordinal {ordinal} is outside the input's {self.total} lines")
        self.pending[ordinal] = row
        ready = []
        while self.next in self.pending:
            ready.append(self.pending.pop(self.next))
            self.next += 1
        return ready

    def check_complete(self) -> None:
        if self.next != self.total:
            raise RayEngineError(f"only {self.next} of {self.total} rows came back from Ray "
                                 f"({len(self.pending)} more arrived out of order); nothing after row "
                                 f"{self.next} was written")


@dataclass
class Gathered:
    """Rows ready to write, in input order: (line number, row dict, failure text or "")."""

    rows: list[tuple[int, dict, str]]
    signature: str
    duplicates: int = 0


# ---------------------------------------------------------------------------- the cluster


def connect(address: str | None = None) -> bool:
    """Join (``address``: "auto", "HOST:PORT") or start (None) a Ray cluster unless this process
    already has one; whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    if address and address.startswith("ray://"):
        raise RayEngineError("Ray Client (ray://) is not supported: the input is read on the driver's node, so run "
                             "roscoe on a node of the cluster (`ray job submit`, or a shell there) with "
                             "--ray-address auto")
    # The CLI reports what goes wrong itself, in one line naming the cause; the actors' output
    # stays in Ray's session logs (/tmp/ray/session_latest/logs).
    ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    return True


@dataclass
class Workers:
    """How many actors score, and what each takes from the cluster."""

    count: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    batch_size: int = DEFAULT_BATCH_SIZE
    start_timeout: float = 600.0

    def describe(self) -> str:
        return f"{self.count} worker(s) with {self.cpus:g} CPU(s)" + (f" and {self.gpus:g} GPU(s)" if self.gpus else "")


def wait_for_room(w: Workers, say: Callable[[str], None] = print, poll_s: float = 1.0) -> None:
    """Wait (up to ``w.start_timeout``, for an autoscaler) until some node of the cluster has the
    CPUs and GPUs of one worker; StartError naming what is missing if none ever does."""
    import ray

    deadline, told = time.monotonic() + w.start_timeout, False
    while True:
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        if any(r.get("CPU", 0) >= w.cpus and r.get("GPU", 0) >= w.gpus for r in nodes):
            return
        if time.monotonic() >= deadline:
            have = "; ".join(f"{r.get('CPU', 0):g} CPU(s), {r.get('GPU', 0):g} GPU(s)" for r in nodes) or "no nodes"
            raise StartError(f"no node of the Ray cluster can hold a worker with {w.cpus:g} CPU(s) and "
                             f"{w.gpus:g} GPU(s) (nodes: {have}); waited {w.start_timeout:g} s "
                             "(--ray-start-timeout). Lower --gpus-per-worker / --cpus-per-worker or add such a node")
        if not told:
            say(f"waiting up to {w.start_timeout:g} s for a node with {w.cpus:g} CPU(s) and {w.gpus:g} GPU(s)")
            told = True
        time.sleep(poll_s)


@contextlib.contextmanager
def _data_context(**settings):
    """Ray Data's settings for this run only (the driver's global context is put back after),
    with its log lines and warnings about its own internals kept off the user's terminal."""
    import logging

    import ray.data

    ctx = ray.data.DataContext.get_current()
    before = {k: getattr(ctx, k) for k in settings}
    order = ctx.execution_options.preserve_order
    for k, v in settings.items():
        setattr(ctx, k, v)
    ctx.execution_options.preserve_order = True
    # ray.data's INFO lines, and the warning that its own progress bars are off (ours is on)
    logs = {name: logging.getLogger(name) for name in ("ray.data", "ray.data._internal.progress")}
    levels = {name: log.level for name, log in logs.items()}
    logs["ray.data"].setLevel(logging.WARNING)
    logs["ray.data._internal.progress"].setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"ray\..*")
            yield ctx
    finally:
        for name, log in logs.items():
            log.setLevel(levels[name])
        for k, v in before.items():
            setattr(ctx, k, v)
        ctx.execution_options.preserve_order = order


def _actor_args(w: Workers) -> dict:
    import ray.data

    return dict(compute=ray.data.ActorPoolStrategy(size=w.count), num_cpus=w.cpus, num_gpus=w.gpus or None,
                batch_size=w.batch_size, batch_format="pyarrow")


def _threads(w: Workers) -> int | None:
    return None if w.gpus else max(1, int(w.cpus))


def score_file(path, plan: FilePlan, *, names, scorer_kwargs: dict, parse: dict, workers: Workers = Workers(),
               details: bool = False, say: Callable[[str], None] = print) -> Iterator[Gathered]:
    """Score the planned lines of ``path`` on the connected cluster; yield what can be written,
    in input order, each row exactly once.  Raises StartError when no actor can start and
    RayEngineError when the actors disagree on the signature or rows are missing."""
    import ray
    import ray.data

    names = tuple(names)
    wait_for_room(workers, say)
    here = ray.get_runtime_context().get_node_id()
    items = [dict(offset=p.offset, first_line=p.first_line, stop_line=p.stop_line, first_ordinal=p.first_ordinal,
                  skip=list(p.skip)) for p in plan.parts]
    constructor = dict(scorer_kwargs=scorer_kwargs, names=names, details=details, parse=parse,
                       fields=parse.get("fields"), threads=_threads(workers),
                       kill_marker=os.environ.get(KILL_HOOK_ENV) or None)
    order = InOrder(plan.total)
    signature = None
    say(f"starting {workers.describe()}; each loads its models before the first batch "
        f"(up to {workers.start_timeout:g} s, --ray-start-timeout)")
    with _data_context(wait_for_min_actors_s=max(1, int(workers.start_timeout)), enable_progress_bars=False,
                       print_on_execution_start=False):
        # one block per part, so that each part is one actor task (parts are one batch long)
        ds = (ray.data.from_items(items, override_num_blocks=len(items))
              .map_batches(read_part, fn_kwargs=dict(path=os.path.abspath(path), name=parse["name"],
                                                     fingerprint_=plan.fingerprint),
                           batch_size=1, batch_format="numpy", num_cpus=0,
                           compute=ray.data.TaskPoolStrategy(size=1), label_selector={"ray.io/node-id": here})
              .map_batches(ScoreActor, fn_constructor_kwargs=constructor, **_actor_args(workers)))
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                failed = [e for e in batch.column("start_error").to_pylist() if e]
                if failed:
                    raise StartError(f"a Ray actor could not start: {failed[0]}")
                sigs = set(batch.column("signature").to_pylist())
                if signature is None and sigs:
                    signature = sorted(sigs)[0]
                if sigs - {signature}:
                    raise RayEngineError("Ray actors report different signatures, so their scores are not "
                                         f"comparable: {' / '.join(sorted(sigs | {signature}))}")
                before = order.duplicates
                ready = []
                for ordinal, line, row, failure in zip(*(batch.column(c).to_pylist()
                                                         for c in ("ordinal", "line", "row", "failure"))):
                    ready += order.add(ordinal, (line, row, failure))
                out = [(line, json.loads(row), failure) for line, row, failure in ready]
                if out or order.duplicates > before:
                    yield Gathered(out, signature, order.duplicates - before)
        except RayEngineError:
            raise
        except Exception as err:  # noqa: BLE001 - Ray wraps what went wrong; name the cause
            raise _explain(err, workers) from err
    order.check_complete()


def _explain(err: Exception, w: Workers) -> Exception:
    import ray.exceptions

    text = str(err)
    if isinstance(err, ray.exceptions.GetTimeoutError) or "Timed out while starting actors" in text:
        return StartError(f"no Ray actor finished loading its models within {w.start_timeout:g} s "
                          f"({w.describe()}); raise --ray-start-timeout, or check that the cluster has room")
    if isinstance(err, ray.exceptions.ActorDiedError) or "__init__" in text or "creation task" in text:
        return StartError(f"a Ray actor could not start: {_last_line(text)}")
    return RayEngineError(f"{type(err).__name__}: {_last_line(text)}")


def _last_line(text: str) -> str:
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else text


# ---------------------------------------------------------------------------- for Ray pipelines


def score_dataset(ds, scores=None, *, preset: str = "lite", mode: str = "paper", fields: FieldMap | dict | None = None,
                  split: dict | None = None, details: bool = False, workers: int = 1, cpus_per_worker: float = 1,
                  gpus_per_worker: float = 0, batch_size: int = DEFAULT_BATCH_SIZE,
                  signature_column: str | None = None, **scorer_kwargs):
    """``ds`` with a float column per score and ``reasons`` (JSON text: score -> why it is NaN)
    added, scored by ``workers`` actors that each load the models once.  Lazy and streaming,
    like every Ray Data transform.  A row whose fields are bad gets NaN ``input_error`` (and a
    warning in the actor's log naming the field); ``signature_column`` adds the actor's
    signature to every row.

    ``fields`` maps the columns (``{"id": "qid", "steps": "rationale"}``); ``split`` picks the
    splitters for string fields; other keyword arguments go to ``roscoe.Scorer``."""
    names = registry.resolve(scores)
    fmap = fields if isinstance(fields, FieldMap) else FieldMap(**(fields or {}))
    w = Workers(count=workers, cpus=cpus_per_worker, gpus=gpus_per_worker, batch_size=batch_size)
    constructor = dict(scorer_kwargs=dict(preset=preset, mode=mode, split={**DEFAULT_SPLITTERS, **(split or {})},
                                          **scorer_kwargs),
                       names=names, details=details, fields=fmap.__dict__, threads=_threads(w),
                       signature_column=signature_column)
    return ds.map_batches(ScoreActor, fn_constructor_kwargs=constructor, **_actor_args(w))


__all__ = ["score_dataset", "score_file", "plan_file", "PlanBuilder", "FilePlan", "Part", "InOrder", "Gathered", "Workers",
           "connect", "wait_for_room", "RayEngineError", "StartError", "ScoreActor", "read_part"]
