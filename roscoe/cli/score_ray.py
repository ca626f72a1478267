"""``roscoe score --engine ray``: the input validated here (as for the local engine), then
scored by actors on a Ray cluster (``roscoe.ray``) and written here, in input order, through
the same writer, meta file and summary as the local engine."""
from __future__ import annotations

import sys
import time

from .common import EXIT_FAIL, EXIT_USAGE, UsageError
from .score import Job, _error_row, finish, open_output, scorer_kwargs


def run(job: Job) -> int | None:
    """The exit code; None when there is nothing to score (the local engine then finishes the
    run without starting Ray)."""
    from .. import ray as engine

    a = job.args
    plan = job.plan
    if plan.empty:
        return None
    workers = engine.Workers(count=a.workers, cpus=a.cpus_per_worker, gpus=a.gpus_per_worker,
                             batch_size=a.ray_batch_size, start_timeout=a.ray_start_timeout)
    say = (lambda m: None) if a.quiet else (lambda m: print(m, file=sys.stderr))
    try:
        started = engine.connect(a.ray_address)
    except Exception as err:  # noqa: BLE001 - whatever ray.init raises, it is the address or the install
        print(f"error: cannot reach a Ray cluster{' at ' + a.ray_address if a.ray_address else ''}: "
              f"{type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_USAGE
    import ray

    job.limits = {"max_items": a.max_items or None, "max_chars": a.max_chars or None,
                  "max_memory": job.max_memory or None}
    job.engine = {"name": "ray", "workers": a.workers, "cpus_per_worker": a.cpus_per_worker,
                  "gpus_per_worker": a.gpus_per_worker, "batch_size": a.ray_batch_size, "ray": ray.__version__,
                  "cluster": a.ray_address or "local"}
    parse = {"fmt": a.format, "fields": job.fields.__dict__, "split": job.split, "keep_fields": list(job.keep),
             "name": job.name}
    gathered = engine.score_file(job.path, plan, names=job.names, scorer_kwargs=scorer_kwargs(job), parse=parse,
                                 workers=workers, details=a.details, say=say)
    try:
        return _write(job, gathered, plan.total)
    finally:
        gathered.close()
        if started:
            ray.shutdown()


def _write(job: Job, gathered, total: int) -> int:
    from .. import io
    from ..ray import StartError

    a = job.args
    bad = list(job.errors)  # in line order: each written where it stands
    pending_bad = 0
    writer = progress = None
    duplicates = 0
    t0 = time.perf_counter()

    def bad_rows_before(line):
        nonlocal pending_bad
        rows = []
        while pending_bad < len(bad) and (line is None or bad[pending_bad].line < line):
            row = _error_row(bad[pending_bad], job.names, job.done)
            if row is not None:
                rows.append(row)
            pending_bad += 1
        return rows

    try:
        for part in gathered:
            if writer is None:  # the first rows carry the actors' signature: now the output can be opened
                job.signature = part.signature
                writer = open_output(job)
                job.collected = io.SummaryCollector(job.names) if job.to_stdout else None
                if not a.no_progress and not a.quiet:
                    from tqdm import tqdm

                    progress = tqdm(total=job.n_good, initial=job.n_good - total, unit="chain", file=sys.stderr,
                                    dynamic_ncols=True)
            duplicates += part.duplicates
            rows = []
            for line, row, failure in part.rows:
                rows += bad_rows_before(line)
                rows.append(row)
                if failure:
                    job.failures.append({"id": row["id"], "error": failure})
            if rows:
                job.emit(writer, rows)
            if progress:
                progress.update(len(part.rows))
        job.emit(writer, bad_rows_before(None))
    except StartError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError:
        raise
    except Exception as err:  # noqa: BLE001 - RayEngineError or any other: keep what is written, exit 1
        if writer is None:
            print(f"error while scoring on Ray: {err}\nnothing was written", file=sys.stderr)
            return EXIT_FAIL
        return job.stopped(writer, err, f"error while scoring on Ray: {err}")
    finally:
        if progress:
            progress.close()
    job.seconds = time.perf_counter() - t0
    job.engine["duplicates_dropped"] = duplicates
    return finish(job, writer)
