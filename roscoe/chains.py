"""Chains: validated records of (id, context, steps, optional reference, passthrough fields)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import splitters

DEFAULT_SPLITTERS = {"context": "punkt", "steps": "punkt+newline", "reference": "punkt+newline"}

# Size limits per chain.  The costly scores grow with the square of the step count (NLI over
# step pairs) and with the text's length (the LM's sliding window), so one oversized chain in
# an untrusted file could hold a run for hours or exhaust memory; such a chain gets NaN
# "too_long" instead.  Far above real chains: the longest in the project's data has 263 steps
# and 11,460 characters (CHAMP).
DEFAULT_MAX_ITEMS = 1000      # sentences in any one of context, steps, reference
DEFAULT_MAX_CHARS = 100_000   # characters of context, steps and reference together


# A lone surrogate (an unpaired \ud800-\udfff escape: valid JSON, but no Unicode character) is
# the one thing in text that the models' tokenizers refuse outright (TypeError); it cannot be
# written as UTF-8 either.  In context, steps and reference it becomes U+FFFD; in an id or a
# kept field, which are written back as given, it is an input error.
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """The text the models see: lone surrogates replaced by U+FFFD, nothing else changed."""
    return _SURROGATE.sub(REPLACEMENT, text)  # the same str object when there is none


def _surrogate_in(value) -> str | None:
    """Which lone surrogate sits where in a JSON value, in words, or None."""
    stack = [("", value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            m = _SURROGATE.search(v)
            if m:
                return f"lone surrogate U+{ord(m.group()):04X} at character {m.start()}" + (f" of {path}" if path else "")
        elif isinstance(v, dict):
            stack += [(f"{path}.{k}", x) for k, x in v.items()] + [(f"{path}.<key>", k) for k in v]
        elif isinstance(v, list):
            stack += [(f"{path}[{i}]", x) for i, x in enumerate(v)]
    return None


class InputError(ValueError):
    """A bad input record.  ``str()`` names the file, line and field."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.message, self.source, self.line, self.field = message, source, line, field
        self.chain_id = None  # set when the line's id was valid, so a skipped line keeps a row
        where = ":".join(str(x) for x in (source, line) if x is not None)
        super().__init__(f"{where + ': ' if where else ''}{'field ' + repr(field) + ': ' if field else ''}{message}")

    def as_dict(self) -> dict:
        return {"source": self.source, "line": self.line, "field": self.field, "message": self.message}


@dataclass
class Chain:
    """One reasoning chain.  ``reference`` is None when the chain has none (reference-based
    scores are then NaN ``no_reference``); an empty list is an empty reference."""

    id: Any
    steps: list[str]
    context: list[str] = field(default_factory=list)
    reference: list[str] | None = None
    extra: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)  # field -> empty items dropped after splitting

    def __post_init__(self):
        for name in ("steps", "context", "reference"):
            value = getattr(self, name)
            if value is None and name == "reference":
                continue
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise InputError("expected a list of strings", field=name)
            setattr(self, name, [clean_text(s) for s in value])


@dataclass(frozen=True)
class FieldMap:
    id: str = "id"
    context: str = "context"
    steps: str = "steps"
    reference: str = "reference"


def _split_field(value, name: str, splitter: str, *, source, line, keep_empty=False):
    if isinstance(value, str):
        items = splitters.get(splitter)(value)
    elif isinstance(value, list):
        items = value
        for k, item in enumerate(items):
            if not isinstance(item, str):
                raise InputError(f"item {k} is {type(item).__name__}, expected a string",
                                 source=source, line=line, field=f"{name}[{k}]")
    else:
        raise InputError(f"expected a string or a list of strings, got {type(value).__name__}",
                         source=source, line=line, field=name)
    if keep_empty:
        return list(items), 0
    stripped = [s.strip() for s in items]
    kept = [s for s in stripped if s]
    return kept, len(stripped) - len(kept)


def from_record(record, *, fields: FieldMap = FieldMap(), split: dict | None = None,
                keep_fields=(), source=None, line=None) -> Chain:
    """Build a chain from one JSON object, validating every field it reads."""
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}", source=source, line=line)
    split = {**DEFAULT_SPLITTERS, **(split or {})}
    if fields.id in record:
        cid = record[fields.id]
        if isinstance(cid, bool) or not isinstance(cid, (str, int)):
            raise InputError(f"expected a string or an integer, got {type(cid).__name__}",
                             source=source, line=line, field=fields.id)
        if (where := _surrogate_in(cid)) is not None:
            raise InputError(f"not valid Unicode ({where})", source=source, line=line, field=fields.id)
    elif line is not None:
        cid = line  # the rule: a missing id gets the line number
    else:
        raise InputError("missing", source=source, line=line, field=fields.id)
    try:
        return _fields(record, cid, fields, split, keep_fields, source, line)
    except InputError as err:
        err.chain_id = cid
        raise


def _fields(record, cid, fields, split, keep_fields, source, line) -> Chain:
    if fields.steps not in record:
        raise InputError("missing", source=source, line=line, field=fields.steps)
    if fields.context not in record:
        raise InputError("missing (map another field with --context-field, or give \"\" for no context)",
                         source=source, line=line, field=fields.context)
    dropped = {}
    steps, dropped["steps"] = _split_field(record[fields.steps], fields.steps, split["steps"], source=source, line=line)
    context, dropped["context"] = _split_field(record[fields.context] if record[fields.context] is not None else [],
                                               fields.context, split["context"], source=source, line=line)
    reference = None
    if record.get(fields.reference) is not None:
        reference, dropped["reference"] = _split_field(record[fields.reference], fields.reference,
                                                       split["reference"], source=source, line=line)
    extra = {}
    for k in keep_fields:
        if k not in record:
            raise InputError("missing (asked for with --keep-fields)", source=source, line=line, field=k)
        if (where := _surrogate_in(record[k])) is not None:
            raise InputError(f"not valid Unicode, so it cannot be written back ({where})",
                             source=source, line=line, field=k)
        extra[k] = record[k]
    return Chain(cid, steps, context, reference, extra, {k: v for k, v in dropped.items() if v})


def coerce(chain, index: int) -> Chain:
    """Accept a Chain, or a dict in the default field layout (a missing id becomes ``index``)."""
    if isinstance(chain, Chain):
        return chain
    if isinstance(chain, dict):
        return from_record(chain, line=index)
    raise TypeError(f"chain {index}: expected a roscoe.Chain or a dict, got {type(chain).__name__}")
