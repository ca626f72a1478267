"""Human-judgment sets as (chains in the scoring input format, chain labels, step labels).

Label convention everywhere: 1.0 = good, 0.0 = error, NaN = not judged; Likert labels keep
their values (higher = better).  ``any_<X>`` is the minimum over a chain's steps, ignoring NaN.
"""
from __future__ import annotations

import ast
import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NAN = math.nan

# ROSCOE step questions (shared-data names) -> the paper's table columns.  All are "is this
# error present?" questions, so "yes" -> 0.0 (bad).
ROSCOE_STEP = {"grammar": "GRAM", "factuality": "FACT", "hallucination": "HALL", "redundancy": "RED",
               "repetition": "REP", "logic": "LOGIC", "commonsense": "COMMON", "arithmetic": "MATH",
               "final_answer_wrong": "FINAL"}
PAPER_COLUMNS = ("QUAL", "COH", "MISS", "GRAM", "FACT", "HALL", "RED", "REP", "LOGIC", "COMMON", "MATH")
STEP_ERROR_COLUMNS = ("GRAM", "FACT", "HALL", "RED", "REP", "LOGIC", "COMMON", "MATH")


@dataclass
class LabelledSet:
    name: str
    chains: list[dict]                      # id, context, steps, reference?
    labels: dict[str, np.ndarray]           # chain-level, aligned with chains
    step_labels: dict[str, list[list[float]]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # label -> "binary" | "likert"
    notes: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list:
        return [c["id"] for c in self.chains]

    def __len__(self):
        return len(self.chains)

    def head(self, n: int) -> "LabelledSet":
        return LabelledSet(self.name, self.chains[:n], {k: v[:n] for k, v in self.labels.items()},
                           {k: v[:n] for k, v in self.step_labels.items()}, dict(self.kinds), list(self.notes))


def yes_no(value, *, negative: bool = True) -> float:
    """'yes' on an error question -> 0.0 (bad), 'no' -> 1.0; other text -> float (Likert);
    empty -> NaN.  ``negative=False`` flips it for positive questions."""
    if value is None:
        return NAN
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    v = str(value).strip().lower()
    if v == "":
        return NAN
    if v in ("yes", "no"):
        bad = v == "yes" if negative else v == "no"
        return 0.0 if bad else 1.0
    return float(v)


def nanmin(values) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return min(vals) if vals else NAN


def _any(step_rows: list[list[float]]) -> np.ndarray:
    return np.array([nanmin(r) for r in step_rows], dtype=float)


# ---------------------------------------------------------------------------- ROSCOE


def load_roscoe_human(path) -> LabelledSet:
    """The ROSCOE expert annotations (GSM8K or e-SNLI in the shared one-chain-a-line layout).

    Context: GSM8K question; otherwise premise + " " + hypothesis, as the reference did.
    Steps: the annotator's steps, so step labels align.  Reference: GSM8K's solution."""
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    chains, chain_lab, steps_lab = [], {k: [] for k in ("QUAL", "COH", "MISS", "CONTRADICTION")}, {}
    for col in ROSCOE_STEP.values():
        steps_lab[col] = []
    for r in rows:
        ctx = r["question"] if r["dataset"] == "gsm8k" else f"{r['question']} {r['hypothesis']}"
        chain = {"id": r["id"], "context": ctx, "steps": list(r["steps"])}
        if r.get("reference_solution"):
            chain["reference"] = r["reference_solution"]
        chains.append(chain)
        cl = r.get("chain_labels") or {}
        chain_lab["QUAL"].append(yes_no(cl.get("overall_quality")))
        chain_lab["COH"].append(yes_no(cl.get("coherency")))
        chain_lab["MISS"].append(yes_no(cl.get("missing_steps")))
        chain_lab["CONTRADICTION"].append(yes_no(cl.get("contradiction")))
        sl = r.get("step_labels") or [{} for _ in r["steps"]]
        n = len(sl)
        for key, col in ROSCOE_STEP.items():
            vals = [yes_no(s.get(key)) for s in sl]
            if key == "final_answer_wrong":  # only the last step states the final answer
                vals = [NAN] * (n - 1) + vals[-1:] if n else []
            steps_lab[col].append(vals)
    labels = {k: np.array(v, dtype=float) for k, v in chain_lab.items()}
    for col in STEP_ERROR_COLUMNS:
        labels[col] = _any(steps_lab[col])
    any_step = _any([[v for col in ROSCOE_STEP.values() for v in steps_lab[col][i]] for i in range(len(rows))])
    labels["ANY_STEP_ISSUE"] = any_step
    labels["ANY_ERROR"] = np.array([nanmin([labels["MISS"][i], labels["CONTRADICTION"][i], any_step[i]])
                                    for i in range(len(rows))])
    kinds = {k: ("likert" if k in ("QUAL", "COH") else "binary") for k in labels}
    name = f"roscoe-human-{rows[0]['dataset']}" if rows else "roscoe-human"
    return LabelledSet(name, chains, labels, steps_lab, kinds)


# ---------------------------------------------------------------------------- MR-BEN

_STEP_PREFIX = re.compile(r"^\s*Step\s*\d+\s*[:.)-]\s*", re.IGNORECASE)
_MR_BEN_NO_ERROR = "n/a"  # MR-BEN's first-error-step marker for a solution without one (any case)


def _first_error_rows(n_steps: int, first_error: int | None) -> list[float]:
    """1.0 before the first wrong step, 0.0 on it, NaN after (nobody judged those)."""
    if first_error is None:
        return [1.0] * n_steps
    return [1.0 if k < first_error else (0.0 if k == first_error else NAN) for k in range(n_steps)]


def _mr_ben_steps(raw) -> tuple[list[str], bool]:
    """A solution's steps and whether they are code lines.  Most subjects give a list of
    "Step N: ..." strings (or its repr); coding gives the program itself, whose steps are its
    non-blank lines (MR-BEN names a coding solution's first error step by that line's text)."""
    if isinstance(raw, str):
        try:
            raw = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return [line.strip() for line in raw.split("\n") if line.strip()], True
    steps = [_STEP_PREFIX.sub("", str(x)).strip() for x in raw]
    return [x for x in steps if x], False


def _mr_ben_step_labels(s: dict, steps: list[str], code: bool) -> list[float]:
    """The steps' labels from the first wrong step: all 1.0 for a solution judged to have none;
    all NaN (unknown) where the annotation names a step this chain does not have."""
    fe = str(s.get("Model_Solution_First_Error_Step") or "").strip()
    if fe.lower() == _MR_BEN_NO_ERROR or (not fe and s["Model_Solution_Correctness"].strip().lower() == "correct"):
        return _first_error_rows(len(steps), None)
    if code:  # the first line with that text: a repeated line ('else:') is ambiguous, 9 of 238
        first = steps.index(fe) if fe in steps else None
    else:
        first = int(fe) - 1 if fe.isdigit() and 0 < int(fe) <= len(steps) else None
    return [NAN] * len(steps) if first is None else _first_error_rows(len(steps), first)


def load_mr_ben(path) -> LabelledSet:
    """MR-BEN solutions: correctness and the first error step (1-based, or N/A).

    Context: the question plus its options; steps: the model's steps without "Step N:" (for
    coding, the program's non-blank lines)."""
    data = json.load(open(path, encoding="utf-8"))
    chains, correct, step_ok = [], [], []
    for qid, sols in data.items():
        for k, s in enumerate(sols):
            steps, code = _mr_ben_steps(s["Model_Solution_Steps"])
            ctx = s["Question"] + (f"\n{s['Options']}" if s.get("Options") else "")
            chains.append({"id": f"{qid}#{k}", "context": ctx, "steps": steps, "model": s.get("Sampled_Model")})
            correct.append(1.0 if s["Model_Solution_Correctness"].strip().lower() == "correct" else 0.0)
            step_ok.append(_mr_ben_step_labels(s, steps, code))
    labels = {"CORRECT": np.array(correct), "NO_ERROR_STEP": _any(step_ok)}
    return LabelledSet(f"mr-ben-{Path(path).stem}", chains, labels, {"STEP_OK": step_ok},
                       {"CORRECT": "binary", "NO_ERROR_STEP": "binary"})


# ---------------------------------------------------------------------------- CHAMP


def split_with_offsets(text: str) -> list[tuple[str, int]]:
    """punkt+newline steps of ``text`` with the character offset where each starts."""
    from roscoe import splitters

    out, cursor = [], 0
    for piece in splitters.get("punkt+newline")(text):
        piece = piece.strip()
        if not piece:
            continue
        at = text.find(piece, cursor)
        if at < 0:
            at = cursor
        out.append((piece, at))
        cursor = at + len(piece)
    return out


def load_champ(path) -> LabelledSet:
    """CHAMP competition-math solutions with the first wrong step as a character span."""
    chains, correct, step_ok = [], [], []
    for line in open(path, encoding="utf-8"):
        if not line.strip():
            continue
        r = json.loads(line)
        pieces = split_with_offsets(r["model_solution"])
        steps = [p for p, _ in pieces]
        span = r.get("first_wrong_step_char_span")
        first = None
        if span:
            start = json.loads(span)[0] if isinstance(span, str) else span[0]
            starts = [o for _, o in pieces]
            first = max([k for k, o in enumerate(starts) if o <= start] or [0])
        chains.append({"id": r["id"], "context": r["problem"], "steps": steps})
        correct.append(0.0 if span else 1.0)
        step_ok.append(_first_error_rows(len(steps), first))
    return LabelledSet("champ", chains, {"NO_WRONG_STEP": np.array(correct)}, {"STEP_OK": step_ok},
                       {"NO_WRONG_STEP": "binary"})


# ---------------------------------------------------------------------------- eOBQA

EOBQA_INVALID = {"no", "fact1", "fact2", "fact12", "bad-answer"}


def load_eobqa(path) -> LabelledSet:
    """eOBQA two-fact chains with crowd validity votes.

    Context: the question stem + " " + the answer (the chain must explain the answer);
    steps: fact 1 and fact 2.  VALID: the majority label ("yes" -> 1, a named fault -> 0,
    "?" -> NaN); YES_SHARE: the share of individual "yes" votes."""
    chains, valid, share = [], [], []
    with open(path, encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            chains.append({"id": f"{r['QID']}-{r['Chain#']}", "context": f"{r['Question']} {r['Answer']}",
                           "steps": [r["Fact1"], r["Fact2"]]})
            turk = r["Turk"].strip().lower()
            valid.append(1.0 if turk == "yes" else 0.0 if turk in EOBQA_INVALID else NAN)
            votes = r["Turks"].split()
            share.append(sum(v == "yes" for v in votes) / len(votes) if votes else NAN)
    return LabelledSet("eobqa", chains, {"VALID": np.array(valid), "YES_SHARE": np.array(share)}, {},
                       {"VALID": "binary", "YES_SHARE": "likert"})


# ---------------------------------------------------------------------------- generic


def _label_rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) of a CSV (header on line 1) or JSONL label file; a bad line is an
    error naming the file and line."""
    if path.suffix.lower() == ".csv":
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh)
                return [(reader.line_num, r) for r in reader]
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 (byte {err.start})") from None
    from roscoe.io import read_lines

    rows = []
    for line, rec in read_lines(path):
        if isinstance(rec, Exception):
            raise rec
        if not isinstance(rec, dict):
            raise ValueError(f"{path}:{line}: expected a JSON object, got {type(rec).__name__}")
        rows.append((line, rec))
    return rows


def flatten(record: dict, prefix: str = "") -> dict:
    """A JSON object's values by dotted path: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``.  Lists stay
    values (a label column is one value per row)."""
    out = {}
    for k, v in record.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _label_value(value) -> float:
    if isinstance(value, (list, dict, bool)):
        raise TypeError(type(value).__name__)
    return yes_no(value)


def load_labels(path, *, on: str = "id", columns=None, notes: list | None = None) -> tuple[list, dict[str, np.ndarray]]:
    """Ids and label columns from a JSONL or CSV file.  Values: numbers, or yes/no (yes = an
    error = 0.0).  Nested objects are addressed by dotted paths (``chain_labels.overall_quality``).

    ``columns`` named explicitly must exist (else an error lists those that do) and hold only
    numbers, yes/no or nothing.  By default every column but ``on`` is read, and a column with no
    such value at all (text such as ``"dataset": "drop"``, lists, or only nulls) is left out with
    a line in ``notes``; a column mixing labels with other values is an error naming the line."""
    path = Path(path)
    rows = [(line, flatten(r)) for line, r in _label_rows(path)]
    if not rows:
        raise ValueError(f"{path}: no rows")
    for line, r in rows:
        if r.get(on) in (None, ""):
            raise ValueError(f"{path}:{line}: field {on!r}: missing")
    present = list(dict.fromkeys(k for _, r in rows for k in r if k != on))
    explicit = bool(columns)
    if explicit:
        missing = [c for c in columns if c not in present]
        if missing:
            raise ValueError(f"{path}: no label column {', '.join(map(repr, missing))}; the columns are: "
                             f"{', '.join(present) or '(none besides ' + repr(on) + ')'}")
    labels = {}
    for c in (columns if explicit else present):
        vals, bad = [], None
        for line, r in rows:
            try:
                vals.append(_label_value(r.get(c)))
            except (TypeError, ValueError):
                vals.append(NAN)
                bad = bad or (line, r.get(c))
        if bad is not None and (explicit or not all(math.isnan(v) for v in vals)):
            line, value = bad
            raise ValueError(f"{path}:{line}: field {c!r}: {_short(value)} is not a number or yes/no")
        if not explicit and all(math.isnan(v) for v in vals):
            if notes is not None:
                notes.append(f"column {c!r} skipped: " + (f"not a number or yes/no (e.g. {_short(bad[1])})"
                                                          if bad else "no values"))
            continue
        labels[c] = np.array(vals, dtype=float)
    if not labels:
        raise ValueError(f"{path}: no column holds numbers or yes/no labels (columns: {', '.join(present) or 'none'})")
    return [r[on] for _, r in rows], labels


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
