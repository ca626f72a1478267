"""A leaderboard: versioned tasks and untrusted submissions scored under the task's fixed
config, in one SQLite file (``db.py``).  ``Board(path)`` with ``create_task``, ``submit``,
``rescore``, ``standings`` and ``tasks``; ``roscoe leaderboard`` is its command line."""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import registry
from ..chains import DEFAULT_MAX_CHARS, DEFAULT_MAX_ITEMS, DEFAULT_SPLITTERS, Chain, FieldMap, InputError, _split_field
from ..datasets import sha256
from ..io import read_lines
from . import db as store
from . import validate
from .validate import Problem

DEFAULT_MAX_BYTES = 64 * 2**20
# A test hook, off unless set: SIGKILL this process after its first block of chains.
_KILL_AFTER_BLOCK = os.environ.get("ROSCOE_TEST_KILL_AFTER_BLOCK") == "1"
BLOCK_SIZE = 32  # chains scored between two checks of the time limit
MISSING = ("reject", "worst")


@dataclass
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_items: int | None = DEFAULT_MAX_ITEMS
    max_chars: int | None = DEFAULT_MAX_CHARS
    time_limit: float | None = None   # seconds of wall clock per submission
    max_per_day: int | None = None    # scored submissions per submitter per UTC day
    missing: str = "reject"           # a task id without a line: reject the file, or score it worst


@dataclass
class TaskConfig:
    preset: str
    mode: str
    scores: list[str]
    rank_by: str
    fields: dict
    split: dict
    limits: Limits

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TaskConfig":
        d = json.loads(text)
        d["limits"] = Limits(**d["limits"])
        return cls(**d)


@dataclass
class Outcome:
    """What ``submit`` did: ``status`` scored / rejected / failed, the row id, and the report."""

    status: str
    submission: int
    reason: str | None = None
    problems: list[Problem] = field(default_factory=list)
    n_problems: int = 0
    seconds: float = 0.0
    signature: str | None = None
    missing: list = field(default_factory=list)  # task ids scored as the worst value

    def report(self) -> str:
        lines = [str(p) for p in self.problems]
        if self.n_problems > len(self.problems):
            lines.append(f"... and {self.n_problems - len(self.problems)} more problems")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"status": self.status, "submission": self.submission, "reason": self.reason,
                "problems": [p.as_dict() for p in self.problems], "problems_total": self.n_problems,
                "seconds": round(self.seconds, 3), "signature": self.signature, "missing": len(self.missing)}


class TaskError(ValueError):
    """A task that cannot be created or found (a usage error, not a submission's)."""


class TimeLimit(Exception):
    pass


class Board:
    def __init__(self, path: Path | str, *, device: str = "auto", dtype: str = "auto"):
        self.path = Path(path)
        self.db = store.connect(self.path)
        self.device, self.dtype = device, dtype
        self._scorers: dict[str, object] = {}

    @property
    def cache_dir(self) -> Path:
        """The model-output cache every submission of every task on this board shares."""
        return self.path.with_name(self.path.name + ".cache")

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ tasks

    def create_task(self, name: str, source, *, rank_by: str, scores=None, preset: str = "lite", mode: str = "paper",
                    fields: FieldMap = FieldMap(), split: dict | None = None, limits: Limits | None = None,
                    limit: int = 0) -> dict:
        """A task from the dataset file ``source`` (JSONL; id, context and reference fields as
        mapped; steps are not read).  ``limit``: only the first N chains."""
        if (why := validate.check_text(name, "the task name")) is not None or not name:
            raise TaskError(why or "the task name is empty")
        limits = limits or Limits()
        if limits.missing not in MISSING:
            raise TaskError(f"--missing must be one of {', '.join(MISSING)}")
        split = {**DEFAULT_SPLITTERS, **(split or {})}
        chains = _task_chains(Path(source), fields, split, limit)
        has_reference = any(c.reference is not None for c in chains)
        names = list(registry.resolve(scores or ("all" if has_reference else "reference-free")))
        rank = registry.resolve(rank_by)
        if len(rank) != 1:
            raise TaskError(f"--rank-by names one score, not {rank_by!r} ({len(rank)} scores)")
        if rank[0] not in names:
            raise TaskError(f"the rank-by score {rank[0]} is not among the task's scores")
        config = TaskConfig(preset, mode, names, rank[0], asdict(fields), split, limits)
        content = json.dumps([[str(c.id), c.context, c.reference] for c in chains], ensure_ascii=False)
        task_hash = hashlib.sha256((config.as_json() + "\n" + content).encode("utf-8", "surrogatepass")).hexdigest()
        scorer = self._scorer_for(config)
        signature = str(scorer.signature(names))
        with store.transaction(self.db):
            if self.db.execute("SELECT 1 FROM tasks WHERE name = ?", (name,)).fetchone():
                raise TaskError(f"task {name!r} exists on {self.path}")
            self.db.execute("INSERT INTO tasks (name, created, config, task_hash, signature) VALUES (?, ?, ?, ?, ?)",
                            (name, _now(), config.as_json(), task_hash, signature))
            self.db.executemany(
                "INSERT INTO task_chains (task, position, id, raw_id, context, reference) VALUES (?, ?, ?, ?, ?, ?)",
                [(name, k, str(c.id), json.dumps(c.id), json.dumps(c.context),
                  None if c.reference is None else json.dumps(c.reference)) for k, c in enumerate(chains)])
        return {"task": name, "chains": len(chains), "scores": names, "rank_by": rank[0], "task_hash": task_hash,
                "signature": signature}

    def tasks(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT t.name, t.created, t.config, t.task_hash, t.signature, "
            "(SELECT COUNT(*) FROM task_chains c WHERE c.task = t.name) AS chains, "
            "(SELECT COUNT(*) FROM submissions s WHERE s.task = t.name AND s.status = 'scored') AS scored, "
            "(SELECT COUNT(*) FROM submissions s WHERE s.task = t.name AND s.status != 'scored') AS not_scored "
            "FROM tasks t ORDER BY t.created, t.name").fetchall()
        return [{"task": r["name"], "created": r["created"], "chains": r["chains"], "scored": r["scored"],
                 "not_scored": r["not_scored"], "rank_by": json.loads(r["config"])["rank_by"],
                 "task_hash": r["task_hash"], "signature": r["signature"]} for r in rows]

    def task(self, name: str) -> tuple[dict, TaskConfig]:
        row = self.db.execute("SELECT * FROM tasks WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = [r["name"] for r in self.db.execute("SELECT name FROM tasks ORDER BY name")]
            raise TaskError(f"no task {name!r} on {self.path}" + (f"; tasks: {', '.join(known)}" if known else ""))
        return dict(row), TaskConfig.from_json(row["config"])

    def chains(self, name: str) -> list[Chain]:
        rows = self.db.execute("SELECT raw_id, context, reference FROM task_chains WHERE task = ? ORDER BY position",
                               (name,)).fetchall()
        return [Chain(json.loads(r["raw_id"]), [], json.loads(r["context"]),
                      None if r["reference"] is None else json.loads(r["reference"])) for r in rows]

    # ------------------------------------------------------------------ submissions

    def submit(self, task: str, path, *, name: str, submitter: str = "", metadata: dict | None = None) -> Outcome:
        """Validate, score and record one submission file.  Nothing is written until the end,
        in one transaction: a crash or kill mid-scoring leaves no row."""
        row, config = self.task(task)
        path = Path(path)
        digest = sha256(path) if path.is_file() else ""
        label = path.name
        t0 = time.perf_counter()
        problems = self._check_names(name, submitter, metadata, label)
        if not path.is_file():
            problems.append(Problem(label, None, None, "no such file"))
        if problems:
            return self._record_rejected(task, name, submitter, metadata, digest, problems, "invalid_fields")
        if self._over_quota(task, submitter, config.limits):
            return self._record_rejected(task, name, submitter, metadata, digest, [Problem(
                label, None, None, f"{submitter!r} already has {config.limits.max_per_day} scored submission(s) "
                                   "to this task today (UTC)")], "quota")
        chains = self.chains(task)
        ids = {str(c.id): c.id for c in chains}
        extra = {str(c.id): sum(map(len, c.context)) + sum(map(len, c.reference or [])) for c in chains}
        lim = config.limits
        checked = validate.check(path, ids, extra, name=label, splitter=config.split["steps"], max_bytes=lim.max_bytes,
                                 max_items=lim.max_items, max_chars=lim.max_chars, missing=lim.missing)
        if checked.problems:
            return self._record_rejected(task, name, submitter, metadata, digest, checked.problems, "invalid_file")
        try:
            rows, signature = self._score_rows(config, chains, checked.steps, checked.missing, t0,
                                               time_limit=lim.time_limit)
        except TimeLimit:
            return self._record(task, name, submitter, metadata, digest, "failed", "time_limit",
                                seconds=time.perf_counter() - t0)
        except Exception as err:  # noqa: BLE001 - recorded as failed, never ranked
            return self._record(task, name, submitter, metadata, digest, "failed", f"{type(err).__name__}: {err}",
                                seconds=time.perf_counter() - t0)
        return self._record(task, name, submitter, metadata, digest, "scored", None, scores=rows,
                            signature=signature, task_hash=row["task_hash"], seconds=time.perf_counter() - t0,
                            missing=checked.missing, limits=lim, steps=checked.steps)

    def rescore(self, task: str) -> list[Outcome]:
        """Every scored submission of ``task`` scored again under the current config and
        environment; the task's signature becomes the current one."""
        row, config = self.task(task)
        chains = self.chains(task)
        outcomes = []
        signature = str(self._scorer_for(config).signature(config.scores))
        subs = self.db.execute("SELECT id FROM submissions WHERE task = ? AND status = 'scored' ORDER BY id",
                               (task,)).fetchall()
        for sub in subs:
            t0 = time.perf_counter()
            kept = self.db.execute("SELECT steps, missing FROM submission_steps WHERE submission = ?",
                                   (sub["id"],)).fetchone()
            rows, _ = self._score_rows(config, chains, json.loads(kept["steps"]), json.loads(kept["missing"]), t0)
            with store.transaction(self.db):
                self.db.execute("DELETE FROM scores WHERE submission = ?", (sub["id"],))
                self.db.executemany("INSERT INTO scores (submission, chain, score, value, reason) VALUES (?, ?, ?, ?, ?)",
                                    [(sub["id"], *r) for r in rows])
                self.db.execute("UPDATE submissions SET signature = ?, task_hash = ?, seconds = ? WHERE id = ?",
                                (signature, row["task_hash"], time.perf_counter() - t0, sub["id"]))
            outcomes.append(Outcome("scored", sub["id"], seconds=time.perf_counter() - t0, signature=signature))
        with store.transaction(self.db):
            self.db.execute("UPDATE tasks SET signature = ? WHERE name = ?", (signature, task))
        return outcomes

    def standings(self, task: str, **kw) -> dict:
        from .standings import standings

        return standings(self, task, **kw)

    # ------------------------------------------------------------------ internals

    def _scorer_for(self, config: TaskConfig):
        key = json.dumps([config.preset, config.mode, config.split, config.limits.max_items, config.limits.max_chars],
                         sort_keys=True)
        if key not in self._scorers:
            from ..scorer import Scorer

            lim = config.limits
            self._scorers[key] = Scorer(config.preset, mode=config.mode, device=self.device, dtype=self.dtype,
                                        split=config.split, block_size=BLOCK_SIZE, max_items=lim.max_items,
                                        max_chars=lim.max_chars, cache_dir=self.cache_dir)
        return self._scorers[key]

    def _score_rows(self, config: TaskConfig, chains: list[Chain], steps: dict, missing, t0: float, *,
                    time_limit: float | None = None):
        """Score the task's ``chains`` with the submitted ``steps`` (task id -> steps): rows
        ``(chain, score, value or None, reason)``, the ids in ``missing`` at each score's
        worst value, and the signature.  Past ``time_limit`` seconds since ``t0``: TimeLimit."""
        scorer = self._scorer_for(config)
        names = tuple(config.scores)
        scored = [Chain(c.id, steps[str(c.id)], c.context, c.reference) for c in chains if str(c.id) in steps]
        rows = []
        done = 0
        for table in scorer.score_blocks(scorer.blocks(scored, names), names):
            for c, v, why in zip(scored[done:], table.values.tolist(), table.reasons):
                rows += [(str(c.id), n, None if v[k] != v[k] else float(v[k]), why.get(n)) for k, n in enumerate(names)]
            done += len(table)
            if _KILL_AFTER_BLOCK:  # tests: the process dies mid-scoring, as under a kill -9
                os.kill(os.getpid(), signal.SIGKILL)
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                raise TimeLimit
        rows += [(cid, n, worst(n, config.mode), "missing") for cid in missing for n in names]
        return rows, str(scorer.signature(names))

    def _check_names(self, name, submitter, metadata, label) -> list[Problem]:
        problems = []
        for value, what in ((name, "name"), (submitter, "submitter")):
            if (why := validate.check_text(value, f"the {what}")) is not None:
                problems.append(Problem(label, None, what, why))
        if not (isinstance(name, str) and name.strip()):
            problems.append(Problem(label, None, "name", "empty"))
        if metadata is not None:
            text = json.dumps(metadata, ensure_ascii=False) if isinstance(metadata, dict) else None
            if text is None:
                problems.append(Problem(label, None, "metadata", "must be a JSON object"))
            elif (why := validate.check_text(text.replace("\n", " "), "the metadata", validate.MAX_METADATA)):
                problems.append(Problem(label, None, "metadata", why))
        return problems

    def _over_quota(self, task, submitter, limits: Limits) -> bool:
        if limits.max_per_day is None:
            return False
        n = self.db.execute("SELECT COUNT(*) FROM submissions WHERE task = ? AND submitter = ? AND day = ? "
                            "AND status = 'scored'", (task, submitter, _today())).fetchone()[0]
        return n >= limits.max_per_day

    def _record_rejected(self, task, name, submitter, metadata, digest, problems, reason) -> Outcome:
        out = self._record(task, name, submitter, metadata, digest, "rejected", reason,
                           report=[p.as_dict() for p in problems[:validate.MAX_LISTED]])
        out.problems, out.n_problems = problems[:validate.MAX_LISTED], len(problems)
        return out

    def _record(self, task, name, submitter, metadata, digest, status, reason, *, scores=(), signature=None,
                task_hash=None, seconds=0.0, missing=(), report=None, limits: Limits | None = None,
                steps: dict | None = None) -> Outcome:
        name = name if isinstance(name, str) else repr(name)
        submitter = submitter if isinstance(submitter, str) else repr(submitter)
        meta = json.dumps(metadata if isinstance(metadata, dict) else {}, ensure_ascii=False)
        with store.transaction(self.db):
            if status == "scored" and limits is not None and self._over_quota(task, submitter, limits):
                status, reason, scores = "rejected", "quota", ()  # another process took the last slot meanwhile
            cur = self.db.execute(
                "INSERT INTO submissions (task, name, submitter, metadata, file_sha256, submitted, day, status, reason,"
                " report, signature, task_hash, seconds, n_missing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (task, name[:validate.MAX_NAME * 4], submitter[:validate.MAX_NAME * 4], meta[:validate.MAX_METADATA * 4],
                 digest, _now(), _today(), status, reason, None if report is None else json.dumps(report), signature,
                 task_hash, seconds, len(missing)))
            sid = cur.lastrowid
            if status == "scored" and steps is not None:
                self.db.execute("INSERT INTO submission_steps (submission, steps, missing) VALUES (?, ?, ?)",
                                (sid, json.dumps(steps, ensure_ascii=False), json.dumps(list(missing))))
            if scores:
                self.db.executemany("INSERT INTO scores (submission, chain, score, value, reason) VALUES (?, ?, ?, ?, ?)",
                                    [(sid, *r) for r in scores])
        return Outcome(status, sid, reason, seconds=seconds, signature=signature, missing=list(missing))


def worst(name: str, mode: str) -> float:
    """The lowest value ``name`` can take in ``mode`` (its documented range's lower end)."""
    info = registry.SCORES[name]
    spec = info.range_paper if mode == "paper" else info.range_parlai
    return float(re.match(r"[\[(]([0-9.]+),", spec).group(1))


def _task_chains(path: Path, fields: FieldMap, split: dict, limit: int) -> list[Chain]:
    if not path.is_file():
        raise TaskError(f"{path}: no such file")
    chains, errors, seen = [], [], set()
    for line, row in read_lines(path):
        if limit and len(chains) >= limit:
            break
        try:
            if isinstance(row, InputError):
                raise row
            chains.append(_task_chain(row, line, fields, split, str(path)))
        except InputError as err:
            errors.append(err)
            continue
        if str(chains[-1].id) in seen:
            errors.append(InputError(f"repeats the id {chains[-1].id!r}", source=str(path), line=line, field=fields.id))
            chains.pop()
            continue
        seen.add(str(chains[-1].id))
    if errors:
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        raise TaskError("the task file has bad lines:\n" + "\n".join(map(str, errors[:20])) + more)
    if not chains:
        raise TaskError(f"{path}: no chains")
    return chains


def _task_chain(row, line, fields: FieldMap, split: dict, source: str) -> Chain:
    if not isinstance(row, dict):
        raise InputError(f"expected a JSON object, got {type(row).__name__}", source=source, line=line)
    cid = row.get(fields.id, line)  # as roscoe score: a missing id is the line number
    if isinstance(cid, bool) or not isinstance(cid, (str, int)):
        raise InputError(f"expected a string or an integer, got {type(cid).__name__}", source=source, line=line,
                         field=fields.id)
    if fields.context not in row:
        raise InputError("missing", source=source, line=line, field=fields.context)
    context, _ = _split_field(row[fields.context] or [], fields.context, split["context"], source=source, line=line)
    reference = None
    if row.get(fields.reference) is not None:
        reference, _ = _split_field(row[fields.reference], fields.reference, split["reference"], source=source,
                                    line=line)
    return Chain(cid, [], context, reference)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())
