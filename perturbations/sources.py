"""Gold chains from the real source datasets.  Each builder validates every row and returns
the chains with a list of the rows it skipped and why (never a silent drop)."""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from roscoe import datasets

from .base import GoldChain


@dataclass(frozen=True)
class Skipped:
    line: int
    id: str | None
    reason: str
    message: str = ""

    def as_dict(self) -> dict:
        return {"line": self.line, "id": self.id, "reason": self.reason, "message": self.message}


@dataclass
class Built:
    source: str
    chains: list[GoldChain] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def skip(self, line, id_, reason, message=""):
        self.skipped.append(Skipped(line, id_, reason, message))


class SourceError(ValueError):
    """A source file that cannot be read at all (missing, not the expected format)."""


def source_file(rel: str, root: Path | str | None = None) -> Path:
    """A source dataset file: shipped with the package, or under ``root`` (see ``roscoe.datasets``)."""
    try:
        return datasets.locate(rel, root)
    except datasets.DataNotFound as err:
        raise SourceError(str(err)) from None


sha256 = datasets.sha256


def _json_lines(path: Path, built: Built) -> Iterator[tuple[int, dict]]:
    """The JSON objects of a JSONL file, through the scorer's own line reader (UTF-8, size
    limit, JSON); every bad line becomes a reported skip."""
    from roscoe.chains import InputError
    from roscoe.io import read_lines

    for line_no, row in read_lines(path):
        if isinstance(row, InputError):
            built.skip(line_no, None, "malformed_row", str(row))
        elif not isinstance(row, dict):
            built.skip(line_no, None, "malformed_row", f"{path}:{line_no}: not a JSON object")
        else:
            yield line_no, row


def _strings(row: dict, *names) -> str | None:
    """The first of ``names`` missing or not a non-empty string, else None."""
    for n in names:
        if not isinstance(row.get(n), str) or not row[n].strip():
            return n
    return None


def _add(built: Built, line: int, id_: str, context: str, steps, answer: str):
    steps = tuple(s.strip() for s in steps if s and s.strip())
    if not steps:
        built.skip(line, id_, "no_steps", "no non-empty step")
        return
    built.chains.append(GoldChain(id_, context.strip(), steps, answer.strip(), built.source))


# ---------------------------------------------------------------------------- builders

_CALC = re.compile(r"<<[^<>]*>>")


def gsm8k(path: Path, built: Built):
    """Steps: the answer's lines with the calculator annotations removed; the answer is what
    follows ``####``."""
    for line, row in _json_lines(path, built):
        id_ = f"gsm8k-{line - 1}"
        bad = _strings(row, "question", "answer")
        if bad:
            built.skip(line, id_, "missing_field", f"field {bad!r} missing or empty")
            continue
        body, sep, answer = row["answer"].rpartition("####")
        if not sep or not answer.strip():
            built.skip(line, id_, "no_answer", "no '#### answer' line")
            continue
        _add(built, line, id_, row["question"], _CALC.sub("", body).split("\n"), answer)


def aqua(path: Path, built: Built):
    """Steps: the rationale split on newlines, trailing dots stripped (as the reference)."""
    for line, row in _json_lines(path, built):
        id_ = f"aqua-{line - 1}"
        bad = _strings(row, "question", "rationale", "correct")
        if bad:
            built.skip(line, id_, "missing_field", f"field {bad!r} missing or empty")
            continue
        options = row.get("options") if isinstance(row.get("options"), list) else []
        answer = next((o for o in options if isinstance(o, str) and o.startswith(row["correct"] + ")")),
                      row["correct"])
        _add(built, line, id_, row["question"], [s.strip().rstrip(".") for s in row["rationale"].split("\n")],
             answer)


_ASY = re.compile(r"\[asy\].*?\[/asy\]", re.DOTALL)
# '. ' as the reference, plus a sentence that ends inside inline math ("= 3.$  Also")
_MATH_SPLIT = re.compile(r"\.\s+|(?<=\.\$)\s+(?=[A-Z])")


def boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``, braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def math_solutions(path: Path, built: Built):
    """Steps: the solution with Asymptote figures removed, newlines turned into sentence
    breaks and split at '. ' (the reference's rule); the answer is the ``answer`` field or
    the last boxed expression."""
    for line, row in _json_lines(path, built):
        raw_id = row.get("unique_id") or row.get("idx")
        id_ = f"{built.source}-{raw_id if raw_id is not None else line - 1}"
        bad = _strings(row, "problem", "solution")
        if bad:
            built.skip(line, id_, "missing_field", f"field {bad!r} missing or empty")
            continue
        answer = row.get("answer") if isinstance(row.get("answer"), str) else boxed(row["solution"])
        if not answer:
            built.skip(line, id_, "no_answer", "no answer field and no \\boxed{} in the solution")
            continue
        text = _ASY.sub(" ", row["solution"]).replace("\n", ". ")
        steps = [s.strip() for s in _MATH_SPLIT.split(text)]
        _add(built, line, id_, row["problem"], [s for s in steps if s.strip(". ")], answer)


_SENT = re.compile(r"sent\d+:\s*")
_PROOF = re.compile(r"\[(?:BECAUSE|AND|INFER)\]")
_INT = re.compile(r"^int\d+:\s*")


def entailment_bank(path: Path, built: Built):
    """Context: the facts joined with '. ', then the question.  Steps: the proof split at
    [BECAUSE]/[AND]/[INFER] with 'intN:' replaced by 'Therefore'.  A step that only refers
    back to an intermediate ('int1') is dropped: its text was already a step."""
    for line, row in _json_lines(path, built):
        id_ = row.get("id") if isinstance(row.get("id"), str) else f"entailment_bank-{line - 1}"
        bad = _strings(row, "context", "question", "full_text_proof")
        if bad:
            built.skip(line, id_, "missing_field", f"field {bad!r} missing or empty")
            continue
        facts = [f.strip() for f in _SENT.split(row["context"]) if f.strip()]
        context = ". ".join(facts) + ". " + row["question"]
        steps = []
        for piece in _PROOF.split(row["full_text_proof"]):
            piece = piece.strip()
            if not piece or re.fullmatch(r"int\d+", piece):
                continue
            steps.append(_INT.sub("Therefore ", piece) if _INT.match(piece) else piece)
        answer = row.get("hypothesis") if isinstance(row.get("hypothesis"), str) else ""
        _add(built, line, id_, context, steps, answer)


def _strategyqa(field_name: str) -> Callable[[Path, Built], None]:
    def build(path: Path, built: Built):
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SourceError(f"{path}: {e}") from e
        if not isinstance(rows, list):
            raise SourceError(f"{path}: expected a JSON list of questions")
        for i, row in enumerate(rows, 1):
            id_ = row.get("qid") if isinstance(row, dict) and isinstance(row.get("qid"), str) else f"strategyqa-{i}"
            if not isinstance(row, dict) or _strings(row, "question"):
                built.skip(i, id_, "missing_field", "field 'question' missing or empty")
                continue
            steps = row.get(field_name)
            if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
                built.skip(i, id_, "missing_field", f"field {field_name!r} is not a list of strings")
                continue
            answer = {True: "yes", False: "no"}.get(row.get("answer"), "")
            _add(built, i, id_, row["question"], steps, answer)

    build.__doc__ = f"Context: the question.  Steps: the annotated {field_name}.  Answer: yes/no."
    return build


def esnli(path: Path, built: Built):
    """Context: premise and hypothesis.  Steps: the first annotator's explanation, split into
    sentences and at ' ; '.  Answer: the NLI label.  (The text is the tokenised, lower-cased release.)"""
    from roscoe.splitters import get

    split = get("punkt")
    for line, row in _json_lines(path, built):
        id_ = f"esnli-{row.get('idx', line - 1)}"
        bad = _strings(row, "premise", "hypothesis", "label")
        expl = row.get("explanations")
        if bad or not isinstance(expl, list) or not expl or not isinstance(expl[0], str):
            built.skip(line, id_, "missing_field", f"field {bad or 'explanations'!r} missing or empty")
            continue
        # the tokenised release separates an explanation's clauses with " ; "
        steps = [clause for sent in split(expl[0]) for clause in sent.split(" ; ")]
        _add(built, line, id_, f"{row['premise']} {row['hypothesis']}", steps, row["label"])


def eqasc(path: Path, built: Built):
    """The unedited two-fact QASC chains: steps [fact 1, fact 2]; the combined conclusion is
    both the claim to support (context) and the answer.  (The file has no question text.)"""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        need = {"QID", "Fact1", "Fact2", "Combined"}
        if not need <= set(reader.fieldnames or ()):
            raise SourceError(f"{path}: expected columns {sorted(need)}, found {reader.fieldnames}")
        for line, row in enumerate(reader, 2):
            id_ = row["QID"] or f"eqasc-{line}"
            bad = _strings(row, "Fact1", "Fact2", "Combined")
            if bad:
                built.skip(line, id_, "missing_field", f"field {bad!r} missing or empty")
                continue
            _add(built, line, id_, row["Combined"], [row["Fact1"], row["Fact2"]], row["Combined"])


def cosmosqa(path: Path, built: Built):
    """A one-step chain: context = passage + question, step = the correct answer.  Rows whose
    correct answer is 'None of the above choices' have no answer text to form a step."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        need = {"id", "context", "question", "label", "answer0"}
        if not need <= set(reader.fieldnames or ()):
            raise SourceError(f"{path}: expected columns {sorted(need)}, found {reader.fieldnames}")
        for line, row in enumerate(reader, 2):
            id_ = row["id"] or f"cosmosqa-{line}"
            label = row.get("label", "")
            if label not in {"0", "1", "2", "3"}:
                built.skip(line, id_, "missing_field", f"field 'label' is {label!r}, not 0-3")
                continue
            answer = row.get(f"answer{label}") or ""
            if answer.strip().lower().startswith("none of the above"):
                built.skip(line, id_, "no_answer", "the correct answer is 'None of the above choices'")
                continue
            _add(built, line, id_, f"{row['context']} {row['question']}", [answer], answer)


# ---------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Source:
    name: str
    files: tuple[str, ...]  # relative to the data root
    build: Callable[[Path, Built], None]
    math: bool  # gets the math perturbations too


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("gsm8k", ("dev/sources/gsm8k/test.jsonl",), gsm8k, True),
    Source("aqua", ("dev/sources/aqua/test.json",), aqua, True),
    Source("math", ("dev/sources/math/math_test_5000.jsonl",), math_solutions, True),
    Source("math500", ("dev/sources/math/math500_test.jsonl",), math_solutions, True),
    Source("entailment_bank", ("dev/sources/entailment_bank/task_1_test.jsonl",), entailment_bank, False),
    Source("strategyqa", ("dev/sources/strategyqa/dev.json",), _strategyqa("facts"), False),
    Source("strategyqa_decomposition", ("dev/sources/strategyqa/dev.json",), _strategyqa("decomposition"), False),
    Source("esnli", ("dev/sources/esnli/esnli_dev_tokenized.jsonl",), esnli, False),
    Source("eqasc", ("dev/sources/eqasc_perturbed/turk_modified_test.tsv",), eqasc, False),
    Source("cosmosqa", ("dev/sources/cosmosqa/valid.csv",), cosmosqa, False),
)}


def build(name: str, path: Path | str | None = None, *, root: Path | None = None) -> Built:
    """Gold chains of source ``name`` from its file under the data root (or ``path``).
    Chain ids are unique: a repeated id is reported and its later rows skipped."""
    if name not in SOURCES:
        raise SourceError(f"unknown source {name!r}; expected one of {', '.join(SOURCES)}")
    src = SOURCES[name]
    paths = [Path(path)] if path else [source_file(f, root) for f in src.files]
    built = Built(name)
    for p in paths:
        if not p.is_file():
            raise SourceError(f"{p}: source file not found")
        built.files.append(p)
        src.build(p, built)
    seen, unique = set(), []
    for c in built.chains:
        if c.id in seen:
            built.skip(None, c.id, "duplicate_id", "an earlier row has the same id")
            continue
        seen.add(c.id)
        unique.append(c)
    built.chains = unique
    return built
