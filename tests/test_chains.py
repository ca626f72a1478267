import json

import pytest

from roscoe import io, splitters
from roscoe.chains import Chain, FieldMap, InputError, coerce, from_record
from roscoe.profiles import GSM8K_MARKER, PROFILES, normalise_synthetic

from .conftest import GSM8K_HUMAN, ESNLI_HUMAN, load_jsonl


def test_splitters():
    text = "Dr. Smith paid $3.50. He left\nThen 2 + 2 = 4"
    assert splitters.get("punkt")(text) == ["Dr. Smith paid $3.50.", "He left\nThen 2 + 2 = 4"]
    assert splitters.get("punkt+newline")(text) == ["Dr. Smith paid $3.50.", "He left", "Then 2 + 2 = 4"]
    assert splitters.get("newline")("a\n\nb") == ["a", "", "b"]
    assert splitters.get("dot-space")("a b. c d. e") == ["a b", "c d", "e"]
    assert splitters.get("step-markers")("Step 1 - add 2.\nStep 2 - So 4.") == ["", "add 2.", "So 4."]
    assert splitters.get("none")("x. y.") == ["x. y."]
    with pytest.raises(ValueError, match="unknown splitter"):
        splitters.get("spacy")


def test_from_record_defaults_and_drops():
    c = from_record({"id": "a", "context": "It rains. The ground is wet.", "steps": ["  one ", "", "two"]})
    assert c.context == ["It rains.", "The ground is wet."]
    assert c.steps == ["one", "two"]
    assert c.reference is None
    assert c.dropped == {"steps": 1}


def test_field_mapping_and_keep_fields():
    rec = {"qid": 7, "question": "Q?", "rationale": "A. B.", "gold": "A.\nB.", "model": "m1"}
    c = from_record(rec, fields=FieldMap(id="qid", context="question", steps="rationale", reference="gold"),
                    keep_fields=("model",))
    assert (c.id, c.context, c.steps, c.reference, c.extra) == (7, ["Q?"], ["A.", "B."], ["A.", "B."], {"model": "m1"})


def test_missing_id_gets_line_number():
    assert from_record({"context": "c", "steps": "s"}, line=12).id == 12


@pytest.mark.parametrize("record,field,message", [
    ({"id": "x", "context": "c"}, "steps", "missing"),
    ({"id": "x", "steps": "s"}, "context", "missing"),
    ({"id": "x", "context": "c", "steps": 5}, "steps", "got int"),
    ({"id": "x", "context": "c", "steps": ["a", 3]}, "steps[1]", "item 1 is int"),
    ({"id": [1], "context": "c", "steps": "s"}, "id", "got list"),
    ({"id": True, "context": "c", "steps": "s"}, "id", "got bool"),
    ({"id": "x", "context": {"a": 1}, "steps": "s"}, "context", "got dict"),
    ({"id": "x", "context": "c", "steps": "s", "reference": 1.5}, "reference", "got float"),
])
def test_bad_records_name_file_line_field(record, field, message):
    with pytest.raises(InputError) as info:
        from_record(record, source="in.jsonl", line=4)
    err = info.value
    assert (err.source, err.line, err.field) == ("in.jsonl", 4, field)
    assert message in str(err) and str(err).startswith("in.jsonl:4: field")


def test_coerce_rejects_other_types():
    with pytest.raises(TypeError, match="expected a roscoe.Chain or a dict"):
        coerce("a string", 0)
    assert coerce(Chain("a", ["s"]), 0).id == "a"


def test_read_chains_reports_every_bad_line(tmp_path):
    p = tmp_path / "in.jsonl"
    good = json.dumps({"id": "g1", "context": "c", "steps": ["s"]}).encode()
    p.write_bytes(b"\n".join([
        good,
        b'{"id": "bad-json", ',
        b'\xff\xfe not utf8',
        json.dumps({"id": "g1", "context": "c", "steps": ["t"]}).encode(),  # duplicate id
        json.dumps({"id": "w", "context": "c", "steps": 3}).encode(),
        b"",
        json.dumps([1, 2]).encode(),
        json.dumps({"id": "g2", "context": "", "steps": "x"}).encode(),
    ]) + b"\n")
    items = list(io.read_chains(p))
    kinds = [(line, type(x).__name__) for line, x in items]
    assert kinds == [(1, "Chain"), (2, "InputError"), (3, "InputError"), (4, "InputError"), (5, "InputError"),
                     (7, "InputError"), (8, "Chain")]
    errors = {line: str(x) for line, x in items if isinstance(x, InputError)}
    assert "malformed JSON" in errors[2] and errors[2].startswith(f"{p}:2:")
    assert "not UTF-8" in errors[3]
    assert "duplicate id 'g1' (first on line 1)" in errors[4]
    assert "field 'steps'" in errors[5]
    assert "expected a JSON object" in errors[7]
    bad = dict(items)[5]
    assert bad.chain_id == "w"  # known id: a skipped line can still get its row


def test_byte_order_mark_on_the_first_line_and_error_columns(tmp_path):
    p = tmp_path / "in.jsonl"
    row = json.dumps({"id": 1, "context": "c", "steps": ["x"]}).encode()
    p.write_bytes(b"\xef\xbb\xbf" + row + b"\r\n" + b'{"id": 2, "context": "c"\r\n' + b"\xef\xbb\xbf" + row + b"\n")
    items = list(io.read_chains(p))
    assert isinstance(items[0][1], Chain) and items[0][1].id == 1  # a BOM at the start of the file is not data
    assert str(items[1][1]).endswith("malformed JSON: Expecting ',' delimiter at column 25")  # on its own line
    assert "Unexpected UTF-8 BOM" in str(items[2][1])  # mid-file it is, and is reported


def test_huge_line_is_an_error_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "MAX_LINE_BYTES", 100)
    p = tmp_path / "in.jsonl"
    p.write_text(json.dumps({"id": 1, "context": "c", "steps": ["x" * 200]}) + "\n")
    [(line, err)] = list(io.read_chains(p))
    assert isinstance(err, InputError) and "over the 100-byte limit" in str(err)


# ------------------------------------------------------------------ reference formats


def _as_reference_human(row):
    """The reference's human-annotated layout, rebuilt from the shared ROSCOE annotation file."""
    if row["dataset"] == "gsm8k":
        return {"premise": row["question"], "hypothesis": GSM8K_MARKER + row["reference_solution"],
                "gpt-3": "\n".join(row["steps"])}
    return {"premise": row["question"], "hypothesis": row["hypothesis"], "gpt-3": " ".join(row["steps"]),
            "explanation_1": "A first explanation.", "explanation_2": "A second one.", "explanation_3": ""}


def test_profile_gsm8k_keeps_empty_reference_lines():
    row = load_jsonl(GSM8K_HUMAN)[0]
    rec = _as_reference_human(row)
    rec["hypothesis"] = rec["hypothesis"].replace("\n", "\n\n", 1)
    c = PROFILES["roscoe-human-gsm8k"](rec, source="f", line=1)
    assert c.context == splitters.get("punkt")(row["question"])
    assert c.steps == row["steps"]
    assert "" in c.reference and c.reference[0] == row["reference_solution"].split("\n")[0]


def test_profile_esnli_context_and_reference():
    row = load_jsonl(ESNLI_HUMAN)[0]
    c = PROFILES["roscoe-human-esnli"](_as_reference_human(row), source="f", line=3)
    assert c.context == splitters.get("punkt")(row["question"] + " " + row["hypothesis"])
    assert c.reference == ["A first explanation.", "A second one."]
    assert c.id == 3
    c2 = PROFILES["roscoe-human"](_as_reference_human(row), source="f", line=3)
    assert c2.reference is None and c2.context == c.context


def test_profile_errors_name_the_field():
    with pytest.raises(InputError, match="field 'gpt-3'"):
        PROFILES["roscoe-human"]({"premise": "p", "hypothesis": "h"}, source="f", line=1)
    with pytest.raises(InputError, match="dialog"):
        PROFILES["roscoe-synthetic"]({"text": "x"}, source="f", line=1)


def test_profile_synthetic_world_log():
    rec = {"dialog": [[{"question": "Tom has 3 apples. He buys 2 more. How many?",
                        "steps": ["3 + 2 = 5.", "\t", "So 5 apples .. "],
                        "original_steps": ["3 + 2 = 5", "The answer is 5."]}]]}
    c = PROFILES["roscoe-synthetic"](rec, source="f", line=9)
    assert c.steps == ["3 + 2 = 5", "So 5 apples"]
    assert c.reference == ["3 + 2 = 5", "The answer is 5"]
    assert c.context == ["Tom has 3 apples", "He buys 2 more", "How many?"]
    assert c.id == 9
    assert normalise_synthetic(["a.\tb. .", ""]) == ["a. b"]
