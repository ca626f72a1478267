"""``roscoe score --engine ray`` and ``roscoe.ray``: the same rows as the local engine, each
exactly once and in input order, a killed actor survived, bad input refused before Ray
starts.  The cluster is local (``ray.init(num_cpus=2)``), one for all the tests here; the
chains are real (ROSCOE's human-judged e-SNLI and GSM8K), scored by the real lite models."""
import json
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roscoe import cli, io, registry
from roscoe.chains import InputError
from roscoe.ray import InOrder, RayEngineError, plan_file, read_part

from .conftest import ESNLI_HUMAN, GSM8K_HUMAN, ROOT, load_jsonl

N_ESNLI, N_GSM8K = 151, 50
LM_SCORES = ("perplexity_step", "perplexity_chain", "perplexity_step_max")
# The engine does not know one model slot from another.  The LM's three perplexity scores
# (two thirds of the CPU time on these chains) are held to the local engine on 24 chains in
# the score_dataset test; the other 17 on all 201 here.
OTHER_SCORES = tuple(n for n in registry.resolve("all") if n not in LM_SCORES)
FAULT_SCORES = ("faithfulness", "grammar_step")  # two slots: the embedder and the grammar model
TOL = 1e-6  # actors batch and thread differently from one process, so fp32 sums round differently


def run(*argv):
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def chains_file(tmp_path_factory):
    """201 real chains: e-SNLI (no reference) then GSM8K (with one), a kept field."""
    rows = [{"id": r["id"], "context": [r["question"], r["hypothesis"]], "steps": r["steps"],
             "reference": r["reference_solution"], "dataset": "esnli"} for r in load_jsonl(ESNLI_HUMAN)[:N_ESNLI]]
    rows += [{"id": r["id"], "context": r["question"], "steps": r["steps"], "reference": r["reference_solution"],
              "dataset": "gsm8k"} for r in load_jsonl(GSM8K_HUMAN)[:N_GSM8K]]
    path = tmp_path_factory.mktemp("ray") / "chains.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def local_rows(chains_file):
    """The local engine's output for every score: what the Ray engine is held to."""
    out = chains_file.with_name("local.jsonl")
    assert run("score", chains_file, "-o", out, "--device", "cpu", "--dtype", "fp32", "--keep-fields", "dataset",
               "--no-progress", "--quiet", "--scores", ",".join(OTHER_SCORES)) == 0
    return list(io.iter_rows(out)), json.loads(io.meta_path(out).read_text())


@pytest.fixture(scope="module")
def cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def assert_same_rows(got, want, names):
    ids = [r["id"] for r in got]
    assert ids == [r["id"] for r in want] and len(set(ids)) == len(ids)
    worst = 0.0
    for g, w in zip(got, want):
        assert g["dataset"] == w["dataset"]
        for n in names:
            a, b = (None if r.get(n) in (None, "") else float(r[n]) for r in (g, w))  # CSV: "" for NaN
            assert (a is None) == (b is None), (g["id"], n, a, b)
            if a is not None:
                worst = max(worst, abs(a - b))
            assert (g["reasons"] or {}).get(n) == (w["reasons"] or {}).get(n)
    assert worst <= TOL
    return worst


# ---------------------------------------------------------------------------- on the cluster


def test_ray_engine_gives_the_local_engines_rows(cluster, chains_file, local_rows, tmp_path):
    want, want_meta = local_rows
    out = tmp_path / "ray.jsonl"
    code = run("score", chains_file, "-o", out, "--engine", "ray", "--workers", "2", "--ray-batch-size", "32",
               "--device", "cpu", "--dtype", "fp32", "--keep-fields", "dataset", "--no-progress",
               "--scores", ",".join(OTHER_SCORES))
    assert code == 0
    assert_same_rows(list(io.iter_rows(out)), want, OTHER_SCORES)
    meta = json.loads(io.meta_path(out).read_text())
    local_sig = dict(f.split(":", 1) for f in want_meta["signature"].split("|"))
    ray_sig = dict(f.split(":", 1) for f in meta["signature"].split("|"))
    assert ray_sig == local_sig
    assert meta["status"] == "complete" and meta["rows_written"] == N_ESNLI + N_GSM8K
    assert meta["engine"]["name"] == "ray" and meta["engine"]["workers"] == 2
    assert meta["columns"] == ["id", "dataset", *OTHER_SCORES, "reasons"]


def test_a_killed_actor_loses_nothing_and_repeats_nothing(cluster, chains_file, local_rows, tmp_path, monkeypatch):
    """The test hook kills one actor process (SIGKILL) as its second batch begins: Ray restarts
    it and runs the batch again; the file still has every chain once, in order."""
    want, want_meta = local_rows
    marker = tmp_path / "killed"
    monkeypatch.setenv("ROSCOE_RAY_TEST_KILL", str(marker))
    out = tmp_path / "ray.parquet"
    code = run("score", chains_file, "-o", out, "--engine", "ray", "--workers", "2", "--ray-batch-size", "32",
               "--device", "cpu", "--dtype", "fp32", "--keep-fields", "dataset", "--no-progress",
               "--scores", ",".join(FAULT_SCORES))
    assert code == 0
    assert marker.exists()  # an actor did die
    assert_same_rows(list(io.iter_rows(out)), want, FAULT_SCORES)
    meta = json.loads(io.meta_path(out).read_text())
    assert meta["status"] == "complete" and meta["rows_written"] == N_ESNLI + N_GSM8K


def test_resume_on_ray_scores_only_the_missing_chains(cluster, chains_file, local_rows, tmp_path):
    want, _ = local_rows
    out = tmp_path / "part.csv"
    head = tmp_path / "head.jsonl"
    head.write_text("".join(chains_file.read_text().splitlines(keepends=True)[:40]))
    common = ["--device", "cpu", "--dtype", "fp32", "--keep-fields", "dataset", "--no-progress", "--quiet",
              "--scores", "faithfulness"]
    assert run("score", head, "-o", out, *common) == 0
    # the first 40 rows are there, from the local engine (whose signature the actors must match);
    # Ray scores the other 161 after them
    assert run("score", chains_file, "-o", out, "--resume", "--engine", "ray", "--workers", "2", *common) == 0
    assert_same_rows(list(io.iter_rows(out)), want, ("faithfulness",))
    meta = json.loads(io.meta_path(out).read_text())
    assert meta["previous_rows"] == 40 and meta["rows_written"] == N_ESNLI + N_GSM8K - 40


def test_skipped_bad_lines_land_where_the_local_engine_puts_them(cluster, chains_file, tmp_path):
    lines = chains_file.read_text().splitlines(keepends=True)[:40]
    lines.insert(3, '{"id": "bad-with-id", "context": "c", "steps": [1]}\n')  # a row of NaN input_error
    lines.insert(20, "{not json\n")  # no id: no row
    src = tmp_path / "mixed.jsonl"
    src.write_text("".join(lines))
    outs = {}
    for engine in ("local", "ray"):
        out = outs[engine] = tmp_path / f"{engine}.jsonl"
        assert run("score", src, "-o", out, "--engine", engine, "--on-error", "skip", "--device", "cpu",
                   "--dtype", "fp32", "--keep-fields", "dataset", "--scores", "faithfulness", "--no-progress",
                   "--quiet", "--ray-batch-size", "8") == 0
    local, ray_ = (list(io.iter_rows(outs[e])) for e in ("local", "ray"))
    # Ray writes each row where its line stands; the local engine writes a bad line's row when
    # it reads it, ahead of the good rows of the block being filled
    order = [json.loads(x)["id"] for x in lines if x.startswith('{"id"')]
    assert [r["id"] for r in ray_] == order and ray_[3]["id"] == "bad-with-id"
    assert ray_[3]["reasons"] == {"faithfulness": "input_error"}
    local = sorted(local, key=lambda r: order.index(r["id"]))
    for a, b in zip(ray_, local):
        assert a["reasons"] == b["reasons"] and (a["faithfulness"] is None) == (b["faithfulness"] is None)
        assert a["faithfulness"] is None or abs(a["faithfulness"] - b["faithfulness"]) <= TOL
    meta = json.loads(io.meta_path(outs["ray"]).read_text())
    assert [e["line"] for e in meta["input_errors"]] == [4, 21]


def test_no_node_with_room_for_a_worker_is_a_clear_error(cluster, chains_file, tmp_path, capsys):
    out = tmp_path / "x.jsonl"
    code = run("score", chains_file, "-o", out, "--engine", "ray", "--gpus-per-worker", "1",
               "--ray-start-timeout", "2", "--scores", "faithfulness", "--no-progress")
    err = capsys.readouterr().err
    assert code == 2
    assert "1 GPU(s)" in err and "0 GPU(s)" in err and "--gpus-per-worker" in err and "Traceback" not in err
    assert not out.exists() and not io.meta_path(out).exists()


def test_a_model_no_actor_can_load_is_one_clear_error(cluster, chains_file, tmp_path, capsys):
    out = tmp_path / "x.jsonl"
    code = run("score", chains_file, "-o", out, "--engine", "ray", "--embedder", str(tmp_path / "no-such-model"),
               "--scores", "faithfulness", "--no-progress")
    err = capsys.readouterr().err
    assert code == 2
    assert "a Ray actor could not start: ModelUnavailable" in err and "no-such-model" in err
    assert "Traceback" not in err and not out.exists()


def test_score_dataset_adds_the_columns_to_a_ray_dataset(cluster, lite_scorer):
    import ray.data

    from roscoe.ray import score_dataset

    names = (*LM_SCORES, "grammar_step")
    rows = load_jsonl(ESNLI_HUMAN)[:24]
    records = [{"qid": r["id"], "context": [r["question"], r["hypothesis"]], "rationale": r["steps"]} for r in rows]
    want = lite_scorer.score([{"id": r["qid"], "context": r["context"], "steps": r["rationale"]} for r in records],
                             names).records()
    records.append({"qid": None, "context": ["A premise."], "rationale": ["A step."]})  # an id must be given
    ds = score_dataset(ray.data.from_items(records), names, fields={"id": "qid", "steps": "rationale"},
                       device="cpu", dtype="fp32", workers=1, batch_size=10, signature_column="signature")
    got = {r["qid"]: r for r in ds.take_all()}
    assert set(got) == {r["qid"] for r in records}
    assert {r["signature"] for r in got.values()} == {str(lite_scorer.signature(names))}
    for w, rec in zip(want, records):
        for n in names:
            assert abs(got[w["id"]][n] - w[n]) <= TOL
        assert list(got[w["id"]]["rationale"]) == rec["rationale"]  # the input columns are kept
    bad = got[None]
    assert all(bad[n] is None or math.isnan(bad[n]) for n in names)
    assert json.loads(bad["reasons"]) == {n: "input_error" for n in names}


# ---------------------------------------------------------------------------- before Ray


def test_a_bad_line_is_refused_as_by_the_local_engine_and_ray_never_starts(chains_file, tmp_path):
    bad = tmp_path / "bad.jsonl"
    lines = chains_file.read_text().splitlines(keepends=True)[:5]
    bad.write_text("".join(lines[:2]) + '{"id": "x", "context": "c", "steps": [1, 2]}\n' + "".join(lines[2:]))
    code = """
import sys, json
from roscoe import cli
rc = cli.main(sys.argv[1:])
print(json.dumps({"rc": rc, "ray": sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))}))
"""
    results = {}
    for engine in ("local", "ray"):
        p = subprocess.run([sys.executable, "-c", code, "score", str(bad), "-o", str(tmp_path / f"{engine}.jsonl"),
                            "--engine", engine, "--no-progress"], capture_output=True, text=True, cwd=ROOT)
        results[engine] = (json.loads(p.stdout.strip().splitlines()[-1]), p.stderr)
    (local, local_err), (ray_, ray_err) = results["local"], results["ray"]
    assert local["rc"] == ray_["rc"] == 2 and local_err == ray_err
    assert f"{bad}:3: field 'steps[0]'" in ray_err
    assert ray_["ray"] == []
    assert not (tmp_path / "ray.jsonl").exists()


def test_the_ray_flags_are_checked_before_the_input(tmp_path, capsys, monkeypatch):
    assert run("score", tmp_path / "none.jsonl", "-o", tmp_path / "o.jsonl", "--engine", "ray") == 2
    f = tmp_path / "in.jsonl"
    f.write_text('{"id": 1, "context": "c", "steps": ["s"]}\n')
    assert run("score", f, "-o", tmp_path / "o.jsonl", "--engine", "ray", "--workers", "0") == 2
    assert "--workers" in capsys.readouterr().err
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find(name, *a))
    assert run("score", f, "-o", tmp_path / "o.jsonl", "--engine", "ray") == 2
    assert "pip install 'roscoe-metrics[ray]'" in capsys.readouterr().err


# ---------------------------------------------------------------------------- the pieces, without Ray


def odd_file(tmp_path):
    """Blank lines, CRLF, a byte-order mark, bad lines, a duplicate id, a missing id."""
    lines = ['\ufeff{"id": "a", "context": "c", "steps": ["s1"]}', "", "   ",
             '{"id": "b", "context": "c", "steps": ["s2"]}\r', "{not json", '{"id": "c", "context": "c"}',
             '{"id": "a", "context": "c", "steps": ["dup"]}', '{"context": "c", "steps": ["no id"]}']
    lines += [json.dumps({"id": f"n{k}", "context": "c", "steps": [f"x {k}"]}) for k in range(9)]
    path = tmp_path / "odd.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    assert io.count_lines(path) == len(lines)
    return path


@pytest.mark.parametrize("per_part", [1, 2, 3, 64])
def test_the_read_tasks_return_exactly_the_validated_lines(tmp_path, per_part):
    path = odd_file(tmp_path)
    items = list(io.read_chains(path))
    good = [(n, c) for n, c in items if not isinstance(c, InputError) and c.id != "n3"]
    plan = plan_file(items, path, skip_ids={"n3"}, lines_per_part=per_part)
    assert plan.total == len(good)
    got = []
    for p in plan.parts:
        b = read_part({"offset": [p.offset], "first_line": [p.first_line], "stop_line": [p.stop_line],
                       "first_ordinal": [p.first_ordinal], "skip": [list(p.skip)]}, path=str(path), name="odd",
                      fingerprint_=plan.fingerprint)
        got += list(zip(b["ordinal"].tolist(), b["line"].tolist(), b["text"].tolist()))
    assert [o for o, _, _ in got] == list(range(len(good)))
    assert [n for _, n, _ in got] == [n for n, _ in good]
    for (_, n, text), (_, chain) in zip(got, good):
        assert io.to_chain(json.loads(text), line=n) == chain


def test_a_read_task_refuses_a_file_that_changed(tmp_path):
    path = odd_file(tmp_path)
    plan = plan_file(io.read_chains(path), path)
    p = plan.parts[0]
    with open(path, "a") as fh:
        fh.write('{"id": "late", "context": "c", "steps": ["s"]}\n')
    with pytest.raises(RayEngineError, match="changed"):
        read_part({"offset": [p.offset], "first_line": [p.first_line], "stop_line": [p.stop_line],
                   "first_ordinal": [p.first_ordinal], "skip": [list(p.skip)]}, path=str(path), name="odd",
                  fingerprint_=plan.fingerprint)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40).flatmap(lambda n: st.tuples(
    st.just(n), st.permutations(range(n)), st.lists(st.integers(0, max(n - 1, 0)), max_size=20), st.randoms())))
def test_in_order_lets_each_row_through_once_in_order(case):
    n, order, repeats, rnd = case
    arrivals = list(order) + ([r for r in repeats] if n else [])
    rnd.shuffle(arrivals)  # retried batches come back at any time, more than once
    seq = InOrder(n)
    out = [row for o in arrivals for row in seq.add(o, f"row{o}")]
    assert out == [f"row{k}" for k in range(n)]
    assert seq.duplicates == len(arrivals) - n
    seq.check_complete()


def test_in_order_names_rows_that_never_came():
    seq = InOrder(3)
    assert seq.add(0, "a") == ["a"] and seq.add(2, "c") == []
    with pytest.raises(RayEngineError, match="only 1 of 3 rows"):
        seq.check_complete()
    with pytest.raises(RayEngineError, match="outside"):
        seq.add(7, "x")
