"""Builders on the real source files, and what they do with bad rows."""
from __future__ import annotations

import json

import pytest

from perturbations import sources


def _data_rows(name) -> int:
    """Rows in the source file, counted independently of the builder."""
    src = sources.SOURCES[name]
    path = sources.source_file(src.files[0])
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl" or name == "aqua":
        return sum(1 for line in text.splitlines() if line.strip())
    if path.suffix == ".json":
        return len(json.loads(text))
    import csv

    delim = "\t" if path.suffix == ".tsv" else ","
    return sum(1 for _ in csv.DictReader(path.open(encoding="utf-8", newline=""), delimiter=delim))


@pytest.mark.parametrize("name", list(sources.SOURCES))
def test_every_source_row_is_a_chain_or_a_reported_skip(name):
    built = sources.build(name)
    assert len(built.chains) + len(built.skipped) == _data_rows(name)
    assert len({c.id for c in built.chains}) == len(built.chains)
    for c in built.chains:
        assert c.steps and all(s and s == s.strip() for s in c.steps)
        assert c.context and c.source == name
    for s in built.skipped:
        assert s.reason in {"malformed_row", "missing_field", "no_steps", "no_answer", "duplicate_id"}


def test_gsm8k_steps_drop_calculator_annotations_and_the_answer_line():
    c = sources.build("gsm8k").chains[0]
    assert c.steps == ("Janet sells 16 - 3 - 4 = 9 duck eggs a day.",
                       "She makes 9 * 2 = $18 every day at the farmer\u2019s market.")
    assert c.answer == "18" and c.id == "gsm8k-0"


def test_entailment_bank_context_and_proof_steps():
    c = sources.build("entailment_bank").chains[0]
    assert c.id == "Mercury_SC_408040"
    assert c.context.startswith("if a place is in summer, then it will have the most sunlight. "
                                "the northern hemisphere is a kind of hemisphere of earth. ")
    assert c.context.endswith("Which season receives the most hours of sunlight in the Northern Hemisphere?")
    assert c.steps == ("the northern hemisphere is a kind of hemisphere of earth",
                       "a hemisphere of earth is a kind of place",
                       "Therefore the northern hemisphere is a kind of place",
                       "if a place is in summer, then it will have the most sunlight",
                       "Therefore northern hemisphere will have the most sunlight in summer")


def test_entailment_bank_reports_its_repeated_id():
    skipped = sources.build("entailment_bank").skipped
    assert [(s.id, s.reason) for s in skipped] == [("Mercury_SC_405304", "duplicate_id")]


def test_aqua_rationale_lines_lose_trailing_dots_and_options_give_the_answer():
    c = sources.build("aqua").chains[0]
    assert c.steps[0] == "Explanation :"
    assert not any(s.endswith(".") for s in c.steps)
    assert c.answer.startswith("A)") and "options" not in c.context


def test_math_answer_is_the_last_boxed_expression():
    assert sources.boxed("so $\\boxed{\\frac{1}{2}}$ and") == "\\frac{1}{2}"
    c = sources.build("math").chains[0]
    assert c.answer == "2" and c.steps[-1].startswith("Therefore, the graph has")


def test_bad_rows_are_reported_with_line_and_reason(tmp_path):
    path = tmp_path / "gsm8k.jsonl"
    path.write_bytes(b'{"question": "Q?", "answer": "a\\n#### 3"}\n'
                     b'{not json\n'
                     b'{"question": "Q?"}\n'
                     b'\xff\xfe bad bytes\n'
                     b'{"question": "Q?", "answer": "no marker"}\n'
                     b'[1, 2]\n')
    built = sources.build("gsm8k", path)
    assert [c.id for c in built.chains] == ["gsm8k-0"]
    assert [(s.line, s.reason) for s in built.skipped] == [
        (2, "malformed_row"), (3, "missing_field"), (4, "malformed_row"), (5, "no_answer"), (6, "malformed_row")]
    assert "gsm8k.jsonl:2" in built.skipped[0].message


def test_unreadable_source_is_an_error(tmp_path):
    with pytest.raises(sources.SourceError, match="not found"):
        sources.build("gsm8k", tmp_path / "missing.jsonl")
    bad = tmp_path / "eqasc.tsv"
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(sources.SourceError, match="expected columns"):
        sources.build("eqasc", bad)
    with pytest.raises(sources.SourceError, match="unknown source"):
        sources.build("nope")
