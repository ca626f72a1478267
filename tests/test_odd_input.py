"""Odd but valid input is scored chain by chain: odd strings, deep JSON, and a chain that a
model raises on never take the chains around them down."""
import json

import numpy as np
import pytest

from roscoe import cli, io
from roscoe.chains import REPLACEMENT, InputError, clean_text, from_record

from .conftest import load_jsonl

NAMES = ["faithfulness", "repetition_word", "coherence_step_vs_step", "discourse_representation",
         "perplexity_step", "grammar_step"]  # every model of the lite preset
ODD = {
    "surrogate": "Tom has \ud800 apples and \udfff pears.",
    "nul-and-controls": "Tom\x00 has 3\x01\x02 apples\x1b[31m in red\x7f\x85\x9f.",
    "zero-width": "Tom\u200b has\u200c 3\u200d apples\ufeff\u2060.",
    "long-word": "So the answer is " + "x" * 5000 + ".",
    "cjk": "汤姆有三个苹果。他又买了四个。",
    "rtl": "\u202eمرحبا بالعالم\u202c שלום עולם.",
    "emoji": "🍎🍎🍎 + 🍏 = 👍🏽 for 👨\u200d👩\u200d👧.",
    "markup": "<script>alert(1)</script> <b>bold</b> &amp; $\\frac{1}{2}$ ```code```",
    "crlf": "Step one is 3 + 4.\r\nStep two is 7.\r\n",
}
GOOD = [{"id": "good-1", "context": "Tom has 3 apples. He buys 4 more.", "steps": ["3 + 4 = 7.", "So Tom has 7."]},
        {"id": "good-2", "context": "A cat sat on the mat.", "steps": ["The cat sat.", "It was on the mat."]}]


def odd_chains():
    chains = [GOOD[0]]
    for name, text in ODD.items():
        chains.append({"id": name, "context": "Tom has 3 apples. " + text, "steps": [text, "So 7 " + text, "Done."]})
    return chains + [GOOD[1]]


def test_clean_text_rule():
    assert clean_text("a\ud800b\udc00") == f"a{REPLACEMENT}b{REPLACEMENT}"
    text = "".join(ODD[k] for k in ODD if k != "surrogate")
    assert clean_text(text) is text  # nothing else is touched
    chain = from_record({"id": 1, "context": "x \udfff", "steps": ["\ud800"], "reference": ["ok"]})
    assert chain.context == [f"x {REPLACEMENT}"] and chain.steps == [REPLACEMENT] and chain.reference == ["ok"]
    with pytest.raises(InputError, match=r"field 'id': not valid Unicode \(lone surrogate U\+D800 at character 2\)"):
        from_record({"id": "ab\ud800", "context": "", "steps": ["x"]})
    with pytest.raises(InputError, match=r"field 'meta': not valid Unicode.*U\+DC01 at character 0 of \.tags\[1\]"):
        from_record({"id": 1, "context": "", "steps": ["x"], "meta": {"tags": ["a", "\udc01"]}}, keep_fields=("meta",))


def test_odd_strings_are_scored_and_the_block_survives(lite_scorer):
    chains = odd_chains()
    table = lite_scorer.score(chains, NAMES)
    assert not any("model_error" in r.values() for r in table.reasons), table.reasons
    assert lite_scorer.failures == []
    # the good chains score as they do alone; the odd ones get numbers, not errors
    for good in GOOD:
        alone = lite_scorer.score([good], NAMES)
        np.testing.assert_allclose(table.values[table.ids.index(good["id"])], alone.values[0], rtol=1e-5)
    row = table.ids.index("surrogate")
    assert np.isfinite(table.values[row]).all()
    cleaned = {**chains[row], "context": clean_text(chains[row]["context"]),
               "steps": [clean_text(s) for s in chains[row]["steps"]]}
    np.testing.assert_allclose(lite_scorer.score([cleaned], NAMES).values[0], table.values[row], rtol=1e-5)


def test_odd_strings_file_end_to_end(tmp_path, capsys):
    src = tmp_path / "odd.jsonl"
    src.write_text("".join(json.dumps(c) + "\n" for c in odd_chains()), encoding="utf-8")  # \ud800 stays escaped
    out = tmp_path / "odd.out.jsonl"
    assert cli.main(["score", str(src), "-o", str(out), "--scores", ",".join(NAMES), "--no-progress"]) == 0
    rows = load_jsonl(out)
    assert [r["id"] for r in rows] == [c["id"] for c in odd_chains()]
    assert all("model_error" not in r["reasons"].values() for r in rows)
    # a lone surrogate in an id or a kept field: an input error naming the field, not a crash of the writer
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x\ud800", "context": "c", "steps": ["s"]}) + "\n"
                   + json.dumps({"id": "y", "context": "c", "steps": ["s"], "note": "\udfff"}) + "\n"
                   + json.dumps(GOOD[0]) + "\n")
    capsys.readouterr()
    assert cli.main(["score", str(bad), "-o", str(tmp_path / "b.jsonl"), "--keep-fields", "note", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:1: field 'id': not valid Unicode" in err and "bad.jsonl:2: field 'note': not valid Unicode" in err


def test_deeply_nested_json_is_a_bad_line(tmp_path, capsys):
    deep = '{"id": "deep", "context": "c", "steps": ' + "[" * 5000 + "]" * 5000 + "}"
    at_limit = json.dumps({"id": "ok-64", "context": "c", "steps": ["a"], "x": json.loads("[" * 63 + "]" * 63)})
    over = json.dumps({"id": "over", "context": "c", "steps": ["a"], "x": json.loads("[" * 64 + "]" * 64)})
    src = tmp_path / "deep.jsonl"
    src.write_text("\n".join([deep, json.dumps(GOOD[0]), at_limit, over]) + "\n")
    out = tmp_path / "o.jsonl"
    assert cli.main(["score", str(src), "-o", str(out), "--scores", "faithfulness", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"deep.jsonl:1: JSON nested more than {io.MAX_JSON_DEPTH} levels deep" in err
    assert "deep.jsonl:4: JSON nested more than" in err and "deep.jsonl:3" not in err
    assert "Traceback" not in err and not out.exists()
    assert cli.main(["score", str(src), "-o", str(out), "--scores", "faithfulness", "--no-progress",
                     "--on-error", "skip"]) == 0
    assert [r["id"] for r in load_jsonl(out)] == ["good-1", "ok-64"]
    assert io.json_depth([[], {"a": [1]}]) == 3 and io.json_depth(7) == 0


@pytest.fixture
def boom(monkeypatch):
    """The NLI model raises on any pair holding "BOOM" (a text no model can take)."""
    from roscoe.models.encoders import NLIClassifier

    real = NLIClassifier.p_contradiction

    def p_contradiction(self, pairs, ahead=None):
        if any("BOOM" in p or "BOOM" in h for p, h in pairs):
            raise TypeError("simulated tokenizer failure")
        return real(self, pairs, ahead)

    monkeypatch.setattr(NLIClassifier, "p_contradiction", p_contradiction)


@pytest.mark.parametrize("overlap", [False, True])
def test_a_chain_a_model_raises_on_gets_nan_and_the_rest_is_scored(lite_scorer, boom, overlap):
    from roscoe import Scorer

    scorer = Scorer(models=lite_scorer.models, overlap=overlap, cache_size=0)
    bad = {"id": "bad", "context": "Tom has 3 apples.", "steps": ["BOOM goes the step.", "So 7."]}
    chains = [GOOD[0], bad, GOOD[1]]
    with pytest.warns(RuntimeWarning, match="chain 'bad': TypeError: simulated tokenizer failure"):
        table = scorer.score(chains, NAMES)
    assert table.ids == ["good-1", "bad", "good-2"]
    assert table.reasons[1] == {n: "model_error" for n in NAMES}
    assert scorer.failures == [{"id": "bad", "error": "TypeError: simulated tokenizer failure"}]
    good = lite_scorer.score(GOOD, NAMES)
    np.testing.assert_allclose(table.values[[0, 2]], good.values, rtol=1e-5)
    with pytest.raises(TypeError, match="simulated"):  # every chain of the block fails alone: not the chains
        scorer.score([bad, {**bad, "id": "bad-2"}], NAMES)


def test_model_errors_in_the_cli(tmp_path, capsys, boom):
    src = tmp_path / "in.jsonl"
    bad = {"id": "bad", "context": "Tom has 3 apples.", "steps": ["BOOM goes the step.", "So 7."]}
    src.write_text("".join(json.dumps(c) + "\n" for c in [GOOD[0], bad, GOOD[1]]))
    out = tmp_path / "o.jsonl"
    argv = ["score", str(src), "-o", str(out), "--scores", "coherence_step_vs_step", "--no-progress", "--overwrite"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "error: 1 chain(s) failed in a model or formula and got NaN model_error ('bad')" in err
    rows = load_jsonl(out)
    assert [r["id"] for r in rows] == ["good-1", "bad", "good-2"] and rows[1]["reasons"] == {
        "coherence_step_vs_step": "model_error"}
    meta = json.loads(io.meta_path(out).read_text())
    assert meta["status"] == "complete" and meta["model_errors"][0]["id"] == "bad"
    assert cli.main([*argv, "--on-error", "skip"]) == 0
    assert "warning: 1 chain(s) failed" in capsys.readouterr().err
