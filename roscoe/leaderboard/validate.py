"""Validation of an untrusted submission file, before any model: every problem found, as
``file:line: field: what``, capped at ``MAX_LISTED`` with a count of the rest.

A submission is JSONL ``{"id": ..., "steps": [...] or "..."}``; every other field is ignored,
so nothing in it can choose a path, a model, a config or code."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..chains import InputError, _split_field, clean_text
from ..io import read_lines

MAX_LISTED = 200
MAX_NAME = 100       # characters of a submission's name or submitter
MAX_METADATA = 4096  # characters of its metadata as JSON


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str | None
    what: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field or '-'}: {self.what}"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "field": self.field, "what": self.what}


@dataclass
class Checked:
    """A validated submission: steps by task id (str), or the problems that reject it."""

    steps: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # task ids without a line

    def listed(self) -> list[Problem]:
        return self.problems[:MAX_LISTED]

    def report(self) -> str:
        lines = [str(p) for p in self.listed()]
        if len(self.problems) > MAX_LISTED:
            lines.append(f"... and {len(self.problems) - MAX_LISTED} more problems")
        return "\n".join(lines)


def check_text(value, what: str, limit: int = MAX_NAME) -> str | None:
    """Why a name, submitter or other short text is refused, or None."""
    if not isinstance(value, str):
        return f"{what} must be text"
    if len(value) > limit:
        return f"{what} is {len(value)} characters, over the {limit}-character limit"
    if has_control(value):
        return f"{what} holds control characters"
    return None


def has_control(text: str) -> bool:
    """Whether ``text`` holds C0/C1 control characters (terminal escapes) or lone surrogates."""
    return any(ord(c) < 32 or 0x7f <= ord(c) < 0xa0 or 0xd800 <= ord(c) < 0xe000 for c in text)


def check(path, task_ids: dict[str, object], context_chars: dict[str, int], *, name: str, splitter: str,
          max_bytes: int, max_items: int | None, max_chars: int | None, missing: str) -> Checked:
    """Every problem of the submission at ``path`` against the task's ids.  ``context_chars``:
    per task id, the characters of its context and reference (the scorer's size limit counts
    them with the steps)."""
    out = Checked()
    size = os.path.getsize(path)
    if size > max_bytes:
        out.problems.append(Problem(name, None, None, f"the file is {size} bytes, over the {max_bytes}-byte limit"))
        return out  # not read at all
    first_line: dict[str, int] = {}
    for line, row in read_lines(path, name=name):
        if isinstance(row, InputError):
            out.problems.append(Problem(name, line, None, row.message))
            continue
        if not isinstance(row, dict):
            out.problems.append(Problem(name, line, None, f"expected a JSON object, got {type(row).__name__}"))
            continue
        cid = _check_id(row, line, name, task_ids, first_line, out)
        steps = _check_steps(row, line, name, splitter, max_items, out)
        if cid is None or steps is None:
            continue
        if max_chars is not None and sum(map(len, steps)) + context_chars.get(cid, 0) > max_chars:
            out.problems.append(Problem(name, line, "steps", f"{sum(map(len, steps))} characters; with the task's "
                                        f"context and reference that is over the {max_chars}-character limit"))
            continue
        out.steps[cid] = steps
    absent = [cid for cid in task_ids if cid not in first_line]
    if absent and missing == "reject":
        shown = ", ".join(repr(task_ids[c]) for c in absent[:10]) + (" ..." if len(absent) > 10 else "")
        out.problems.append(Problem(name, None, "id", f"{len(absent)} of the task's {len(task_ids)} ids have no "
                                    f"line ({shown}); submit every one, or ask for --missing worst"))
    out.missing = absent
    return out


def _check_id(row, line, name, task_ids, first_line, out) -> str | None:
    if "id" not in row:
        out.problems.append(Problem(name, line, "id", "missing"))
        return None
    raw = row["id"]
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        out.problems.append(Problem(name, line, "id", f"expected a string or an integer, got {type(raw).__name__}"))
        return None
    cid = str(raw)
    if cid not in task_ids:
        out.problems.append(Problem(name, line, "id", f"{_short(cid)} is not an id of this task"))
        return None
    if cid in first_line:
        out.problems.append(Problem(name, line, "id", f"{_short(cid)} repeats line {first_line[cid]}"))
        return None
    first_line[cid] = line
    return cid


def _check_steps(row, line, name, splitter, max_items, out) -> list[str] | None:
    if "steps" not in row:
        out.problems.append(Problem(name, line, "steps", "missing"))
        return None
    try:
        steps, _ = _split_field(row["steps"], "steps", splitter, source=name, line=line)
    except InputError as err:
        out.problems.append(Problem(name, line, err.field, err.message))
        return None
    if not steps:
        out.problems.append(Problem(name, line, "steps", "no steps (empty, or only blank text)"))
        return None
    if max_items is not None and len(steps) > max_items:
        out.problems.append(Problem(name, line, "steps", f"{len(steps)} steps, over the {max_items}-step limit"))
        return None
    return [clean_text(s) for s in steps]


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
