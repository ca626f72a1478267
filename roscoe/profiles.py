"""Dataset profiles that read the reference implementation's own input formats (docs/formulas.md §5).

A profile is always chosen explicitly (``--format``); it is never guessed from a file name.

* ``roscoe-human`` (DROP, CosmosQA, SemEval), ``roscoe-human-esnli``, ``roscoe-human-gsm8k``:
  the human-annotated JSONL with ``premise``, ``hypothesis``, ``gpt-3`` (and
  ``explanation_1..3`` for e-SNLI).
* ``roscoe-synthetic``: the ParlAI world-log JSONL of the perturbed diagnostic sets, one
  ``{"dialog": [[{question, steps, original_steps, ...}]]}`` per line.

Quirks are kept on purpose (they are what the reference scored): GSM8K reference lines
keep empty strings; synthetic steps lose trailing dots.
"""
from __future__ import annotations

from . import splitters
from .chains import Chain, InputError

GSM8K_MARKER = "IGNORE THIS. Ground truth here for reference. "


def _get(record, key, source, line, kind=str):
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}", source=source, line=line)
    if key not in record:
        raise InputError("missing", source=source, line=line, field=key)
    value = record[key]
    if not isinstance(value, kind):
        raise InputError(f"expected {kind.__name__}, got {type(value).__name__}", source=source, line=line, field=key)
    return value


def _human(record, *, dataset, source, line, keep_fields=()):
    punkt = splitters.get("punkt")
    premise = _get(record, "premise", source, line)
    hypothesis = _get(record, "hypothesis", source, line)
    generation = _get(record, "gpt-3", source, line)
    reference = None
    if dataset == "gsm8k":
        context = punkt(premise)
        steps = [s for s in splitters.get("punkt+newline")(generation) if s]
        if GSM8K_MARKER not in hypothesis:
            raise InputError(f"no {GSM8K_MARKER.strip()!r} marker", source=source, line=line, field="hypothesis")
        reference = hypothesis.split(GSM8K_MARKER)[1].split("\n")  # empty lines kept, as the reference did
    else:
        context = punkt(premise + " " + hypothesis)
        steps = punkt(generation)
        if dataset == "esnli":
            expl = [_get(record, f"explanation_{k}", source, line) for k in (1, 2, 3)]
            reference = punkt(" ".join(expl))
    cid = record.get("id", line)
    extra = {k: record[k] for k in keep_fields if k in record}
    return Chain(cid, steps, context, reference, extra)


def normalise_synthetic(items: list[str]) -> list[str]:
    """Tabs to spaces, trailing dots and spaces stripped, empty items dropped."""
    out = []
    for item in items:
        item = item.replace("\t", " ").rstrip(". ")
        if item:
            out.append(item)
    return out


def _synthetic(record, *, source, line, keep_fields=()):
    try:
        turn = record["dialog"][0][0]
    except (KeyError, IndexError, TypeError):
        raise InputError("expected dialog[0][0] (a ParlAI world log)", source=source, line=line,
                         field="dialog") from None
    question = _get(turn, "question", source, line)
    steps = _get(turn, "steps", source, line, list)
    original = _get(turn, "original_steps", source, line, list)
    for name, items in (("steps", steps), ("original_steps", original)):
        for k, s in enumerate(items):
            if not isinstance(s, str):
                raise InputError("expected a string", source=source, line=line, field=f"dialog[0][0].{name}[{k}]")
    cid = turn.get("id") if isinstance(turn.get("id"), (str, int)) and not isinstance(turn.get("id"), bool) else line
    extra = {k: turn[k] for k in keep_fields if k in turn}
    return Chain(cid, normalise_synthetic(steps), normalise_synthetic(question.split(". ")),
                 normalise_synthetic(original), extra)


PROFILES = {
    "roscoe-human": lambda r, **kw: _human(r, dataset="regular", **kw),
    "roscoe-human-esnli": lambda r, **kw: _human(r, dataset="esnli", **kw),
    "roscoe-human-gsm8k": lambda r, **kw: _human(r, dataset="gsm8k", **kw),
    "roscoe-synthetic": _synthetic,
}
