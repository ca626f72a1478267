"""`roscoe perturb` and `roscoe diag-eval` end to end on small samples of the real sources."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from perturbations import sources
from roscoe.cli import main


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def gsm8k_build(tmp_path_factory):
    d = tmp_path_factory.mktemp("diag") / "a"
    assert main(["perturb", "--source", "gsm8k", "--limit", "30", "-o", str(d), "--quiet"]) == 0
    return d


def test_perturb_writes_labelled_sets_and_a_consistent_manifest(gsm8k_build):
    manifest = json.loads((gsm8k_build / "manifest.json").read_text())
    assert manifest["seed"] == 42 and manifest["sources"]["gsm8k"]["files"][0]["sha256"] == sources.sha256(
        sources.source_file(sources.SOURCES["gsm8k"].files[0]))
    assert {s["perturbation"] for s in manifest["sets"]} == {
        "ShuffleSteps", "DuplicateOneStep", "RemoveOneStep", "SwapOneStep", "ExtrinsicHallucinatedStep",
        "GrammaticalErrorStep", "NegateStep", "SemanticChangeStep", "ShuffleNumbers", "ShuffleOperations",
        "RandomNumber", "RandomOperation"}
    for s in manifest["sets"]:
        rows = _rows(gsm8k_build / s["file"])
        na_file = gsm8k_build / s["file"].replace(".jsonl", ".not_applicable.jsonl")
        na = _rows(na_file) if na_file.exists() else []
        assert len(rows) == s["rows"] and len(rows) + len(na) == 30  # nothing silently dropped
        assert sum(n for n in s["not_applicable"].values()) == len(na)
        assert sum(r["label"] == 0 for r in rows) == s["perturbed"] == int(len(rows) * 0.5 + 0.5)
        for r in rows:
            assert set(r) >= {"id", "context", "steps", "reference", "label", "perturbation", "changes"}
            assert r["perturbation"] == s["perturbation"]
            if r["label"] == 1:
                assert r["steps"] == r["reference"] and r["changes"] == []
            else:
                assert r["steps"] != r["reference"] and r["changes"]


def test_perturb_is_byte_identical_on_a_second_run(gsm8k_build, tmp_path):
    assert main(["perturb", "--source", "gsm8k", "--limit", "30", "-o", str(tmp_path / "b"), "--quiet"]) == 0
    assert _files(tmp_path / "b") == _files(gsm8k_build)


def test_ids_restore_exactly_the_listed_chains(gsm8k_build, tmp_path):
    ids_file = gsm8k_build / "unperturbed_ids.json"
    out = tmp_path / "c"
    assert main(["perturb", "--source", "gsm8k", "--limit", "30", "--seed", "7", "--ids", str(ids_file),
                 "-o", str(out), "--quiet"]) == 0
    wanted = json.loads(ids_file.read_text())
    for key, ids in wanted.items():
        rows = _rows(out / f"{key}.jsonl")
        assert sorted(r["id"] for r in rows if r["label"] == 1) == sorted(ids)
    assert {s["selection"] for s in json.loads((out / "manifest.json").read_text())["sets"]} == {"ids"}


def test_reference_id_list_restores_its_row_positions(tmp_path):
    ref = sources.source_file("dev/sources/roscoe_parlai/unperturbed_ids.json")
    positions = json.loads(ref.read_text())["aqua_synthetic"]["DuplicateOneStep_test.jsonl"]
    assert main(["perturb", "--source", "aqua", "--perturbations", "DuplicateOneStep", "--ids", str(ref),
                 "-o", str(tmp_path), "--quiet"]) == 0
    rows = _rows(tmp_path / "aqua" / "DuplicateOneStep.jsonl")
    assert [i for i, r in enumerate(rows) if r["label"] == 1] == sorted(p for p in positions if p < len(rows))
    assert json.loads((tmp_path / "manifest.json").read_text())["sets"][0]["selection"] == "reference-positions"


def test_perturb_never_replaces_an_earlier_build(gsm8k_build, capsys):
    before = _files(gsm8k_build)
    assert main(["perturb", "--source", "gsm8k", "--limit", "5", "-o", str(gsm8k_build)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _files(gsm8k_build) == before


@pytest.mark.parametrize("argv, message", [
    (["--source", "nope"], "unknown source"),
    (["--source", "gsm8k", "--perturbations", "Shuffle+Nope"], "unknown perturbation"),
    (["--source", "gsm8k", "--fraction", "1.5"], "--fraction"),
    (["--source", "gsm8k", "--ids", "/nonexistent/ids.json"], "ids.json"),
])
def test_perturb_usage_errors_exit_2(tmp_path, capsys, argv, message):
    assert main(["perturb", *argv, "-o", str(tmp_path / "x"), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_combination_sets_and_listing(tmp_path, capsys):
    assert main(["perturb", "--list"]) == 0
    assert "Dup+Swap" in capsys.readouterr().out
    assert main(["perturb", "--source", "entailment_bank", "--perturbations", "Swap+Dup+ExtHall", "--limit", "6",
                 "-o", str(tmp_path), "--quiet"]) == 0
    rows = _rows(tmp_path / "entailment_bank" / "DuplicateOneStep_SwapOneStep_ExtrinsicHallucinatedStep.jsonl")
    perturbed = [r for r in rows if r["label"] == 0]
    assert perturbed and all([c["detail"]["by"] for c in r["changes"]] ==
                             ["SwapOneStep", "DuplicateOneStep", "ExtrinsicHallucinatedStep"] for r in perturbed)
    assert all(len(r["steps"]) == len(r["reference"]) + 2 for r in perturbed)


def test_diag_eval_finds_duplicated_steps_with_the_lite_embedder(tmp_path, capsys):
    d = tmp_path / "diag"
    assert main(["perturb", "--source", "gsm8k", "--perturbations", "DuplicateOneStep", "--limit", "24",
                 "-o", str(d), "--quiet"]) == 0
    out = tmp_path / "eval"
    assert main(["diag-eval", str(d), "--scores", "repetition_step,faithfulness", "--n-boot", "0",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## gsm8k" in printed and "DuplicateOneStep" in printed and "signature:" in printed
    assert "DuplicateOneStep" in (out / "table.gsm8k.md").read_text()
    cells = {r["score"]: r for r in csv.DictReader((out / "cells.csv").open())}
    # A copied step is maximally similar to its original: Repetition-Step separates the
    # perturbed chains from the gold ones almost perfectly.
    assert float(cells["repetition_step"]["value"]) > 0.8
    assert int(cells["repetition_step"]["n"]) == 24
    checks = json.loads((out / "checks.json").read_text())
    assert any(c["score"] == "repetition_step" and c["caught"] for c in checks)
    scored = _rows(out / "scores" / "gsm8k" / "DuplicateOneStep.jsonl")
    assert len(scored) == 24 and {r["label"] for r in scored} == {0, 1}


def test_diag_eval_names_the_file_and_line_of_a_corrupt_set(tmp_path, capsys):
    d = tmp_path / "diag"
    assert main(["perturb", "--source", "gsm8k", "--perturbations", "RemoveOneStep", "--limit", "4",
                 "-o", str(d), "--quiet"]) == 0
    path = d / "gsm8k" / "RemoveOneStep.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{broken", *lines[2:]]) + "\n")
    assert main(["diag-eval", str(d), "--scores", "repetition_step", "--n-boot", "0"]) == 2
    assert "RemoveOneStep.jsonl:2" in capsys.readouterr().err


def test_a_plain_id_list_restores_those_ids_in_every_set(tmp_path):
    ids = tmp_path / "ids.json"
    ids.write_text(json.dumps(["gsm8k-1", "gsm8k-3", "not-an-id"]))
    out = tmp_path / "d"
    assert main(["perturb", "--source", "gsm8k", "--perturbations", "DuplicateOneStep,RemoveOneStep",
                 "--limit", "6", "--ids", str(ids), "-o", str(out), "--quiet"]) == 0
    for name in ("DuplicateOneStep", "RemoveOneStep"):
        rows = _rows(out / "gsm8k" / f"{name}.jsonl")
        assert {r["id"]: r["label"] for r in rows} == {f"gsm8k-{i}": int(i in (1, 3)) for i in range(6)}


def test_diag_eval_keeps_finished_sets_and_resumes(tmp_path, capsys):
    d = tmp_path / "diag"
    assert main(["perturb", "--source", "gsm8k", "--perturbations", "DuplicateOneStep,RemoveOneStep",
                 "--limit", "8", "-o", str(d), "--quiet"]) == 0
    out = tmp_path / "eval"
    argv = ["diag-eval", str(d), "--scores", "repetition_step", "--n-boot", "0", "-o", str(out)]
    assert main(argv) == 0
    first = (out / "cells.csv").read_text()
    scored = (out / "scores" / "gsm8k" / "RemoveOneStep.jsonl").read_bytes()
    assert main(argv) == 2 and "--resume" in capsys.readouterr().err  # never silently re-scored over
    assert main([*argv, "--resume"]) == 0
    assert all(s["reused"] for s in json.loads((out / "sets.json").read_text()))
    assert (out / "cells.csv").read_text() == first
    assert (out / "scores" / "gsm8k" / "RemoveOneStep.jsonl").read_bytes() == scored
    other = ["diag-eval", str(d), "--scores", "faithfulness", "--n-boot", "0", "-o", str(out), "--resume"]
    assert main(other) == 2 and "another signature" in capsys.readouterr().err
