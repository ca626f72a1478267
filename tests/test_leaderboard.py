"""Leaderboards on real GSM8K questions and real GPT-3 solutions, scored by the lite models:
every validation rule with a bad file, escaping of hostile names, identical re-submissions
and re-scores, quota and failures never ranked nor counted, two processes at once, a kill
mid-scoring, and the rendered page."""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from roscoe.cli import main
from roscoe.datasets import locate, shared_root
from roscoe.leaderboard import Board, Limits, render
from roscoe.leaderboard.validate import MAX_LISTED, check

QUESTIONS = "dev/sources/gsm8k/test.jsonl"
SOLUTIONS = shared_root() / "dev/sources/gsm8k/example_model_solutions.jsonl"
SCORES = "faithfulness,repetition_step,grammar_step"
N = 6
TASK_ARGS = dict(rank_by="faithfulness", scores=SCORES, limit=N,
                 split={"reference": "newline"})


def _fields():
    from roscoe.chains import FieldMap

    return FieldMap("id", "question", "steps", "answer")


def write_system(path, system: str, ids=range(1, N + 1)):
    rows = [json.loads(line) for line in SOLUTIONS.read_text().splitlines()[:N]]
    with open(path, "w") as fh:
        for i in ids:
            fh.write(json.dumps({"id": i, "steps": rows[i - 1][system]["solution"], "ignored": "x"}) + "\n")
    return path


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    b = Board(root / "board.sqlite", device="cpu")
    b.create_task("gsm8k", locate(QUESTIONS), fields=_fields(), **TASK_ARGS)
    for system in ("6b_finetuning", "175b_verification"):
        out = b.submit("gsm8k", write_system(root / f"{system}.jsonl", system), name=system, submitter="openai")
        assert out.status == "scored", out
    yield b
    b.close()


# ------------------------------------------------------------------ validation, no model


IDS = {str(i): i for i in range(1, N + 1)}


def _check(tmp_path, text: bytes | str, **kw):
    path = tmp_path / "sub.jsonl"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    opts = dict(name="sub.jsonl", splitter="punkt+newline", max_bytes=10**6, max_items=5, max_chars=2000,
                missing="worst")
    opts.update(kw)
    return check(path, IDS, {k: 100 for k in IDS}, **opts)


GOOD = '{"id": 1, "steps": ["a."]}\n'
RULES = [  # (rule, file, line, field, words in the message)
    ("size", GOOD * 50, None, None, "over the 100-byte limit"),
    ("utf8", GOOD.encode() + b'{"id": 2, "steps": ["\xff"]}\n', 2, None, "not UTF-8"),
    ("json", GOOD + '{"id": 2, "steps": [}\n', 2, None, "malformed JSON"),
    ("depth", GOOD + '{"id": 2, "steps": ' + "[" * 70 + "]" * 70 + "}\n", 2, None, "nested more than"),
    ("object", GOOD + '["a", "b"]\n', 2, None, "expected a JSON object"),
    ("id type", GOOD + '{"id": 2.5, "steps": ["a."]}\n', 2, "id", "got float"),
    ("id missing", GOOD + '{"steps": ["a."]}\n', 2, "id", "missing"),
    ("unknown id", GOOD + '{"id": "nope", "steps": ["a."]}\n', 2, "id", "not an id of this task"),
    ("duplicate id", GOOD + '{"id": "1", "steps": ["b."]}\n', 2, "id", "repeats line 1"),
    ("steps type", GOOD + '{"id": 2, "steps": {"a": 1}}\n', 2, "steps", "expected a string or a list"),
    ("step item type", GOOD + '{"id": 2, "steps": ["a.", 3]}\n', 2, "steps[1]", "expected a string"),
    ("empty steps", GOOD + '{"id": 2, "steps": []}\n', 2, "steps", "no steps"),
    ("blank steps", GOOD + '{"id": 2, "steps": "   "}\n', 2, "steps", "no steps"),
    ("too many steps", GOOD + '{"id": 2, "steps": ["a.", "b.", "c.", "d.", "e.", "f."]}\n', 2, "steps",
     "over the 5-step limit"),
    ("too many characters", GOOD + '{"id": 2, "steps": ["' + "x" * 1950 + '"]}\n', 2, "steps",
     "over the 2000-character limit"),
]


@pytest.mark.parametrize("rule,text,line,field,words", RULES, ids=[r[0] for r in RULES])
def test_every_validation_rule_names_file_line_and_field(tmp_path, rule, text, line, field, words):
    got = _check(tmp_path, text, max_bytes=100 if rule == "size" else 10**6)
    assert len(got.problems) == 1, got.report()
    p = got.problems[0]
    assert (p.file, p.line, p.field) == ("sub.jsonl", line, field) and words in p.what, str(p)
    assert str(p).startswith("sub.jsonl" + (f":{line}" if line else "") + ": ")


def test_a_board_is_made_only_by_create_task(tmp_path, capsys):
    for argv in (["submit", str(tmp_path / "none.sqlite"), "t", str(tmp_path / "x.jsonl"), "--name", "n"],
                 ["show", str(tmp_path / "none.sqlite"), "t"], ["tasks", str(tmp_path / "none.sqlite")],
                 ["create-task", str(tmp_path / "no" / "dir.sqlite"), "t", "--from", "x", "--rank-by", "faithfulness"]):
        assert main(["leaderboard", *argv]) == 2
        assert "no such" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()


def test_missing_ids_reject_by_default_and_every_problem_is_listed_up_to_the_cap(tmp_path):
    got = _check(tmp_path, GOOD, missing="reject")
    assert [p.field for p in got.problems] == ["id"] and "5 of the task's 6 ids have no line" in got.problems[0].what
    many = _check(tmp_path, "not json\n" * (MAX_LISTED + 50))
    assert len(many.problems) == MAX_LISTED + 50 and len(many.listed()) == MAX_LISTED
    assert many.report().splitlines()[-1] == "... and 50 more problems"
    mixed = _check(tmp_path, GOOD + "oops\n" + '{"id": 9, "steps": 1}\n' + '{"id": 1, "steps": []}\n')
    assert [p.line for p in mixed.problems] == [2, 3, 3, 4, 4]  # every problem, not the first


# ------------------------------------------------------------------ the board, real models


def test_board_ranks_with_cis_groups_and_lists_a_rejected_file_apart(board, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "steps": ["a"]}\n{"id": 1, "steps": ["b"]}\nnot json\n{"id": 99, "steps": "x"}\n')
    code = main(["leaderboard", "submit", str(board.path), "gsm8k", str(bad), "--name", "broken",
                 "--report-json", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 2 and "bad.jsonl:2: id: '1' repeats line 1" in err and "bad.jsonl:3: -: malformed JSON" in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] == "rejected" and report["problems_total"] == 4
    s = board.standings("gsm8k")
    assert set(s) >= {"task", "task_hash", "signature", "rank_by", "rows", "not_ranked"}
    assert [r["rank"] for r in s["rows"]] == [1, 2] and s["rank_by"] == "faithfulness"
    for r in s["rows"]:
        assert set(r) >= {"rank", "group", "rank_ci", "name", "submitter", "n", "value", "ci_low", "ci_high",
                          "p_vs_leader", "scores"}
        assert r["ci_low"] <= r["value"] <= r["ci_high"] and r["n"] == N and 1 <= r["rank_ci"][0] <= r["rank_ci"][1]
        assert set(r["scores"]) == set(SCORES.split(","))
    assert s["rows"][0]["value"] >= s["rows"][1]["value"] and s["rows"][0]["p_vs_leader"] is None
    assert 0 < s["rows"][1]["p_vs_leader"] <= 1
    assert {"name": "broken", "status": "rejected", "reason": "invalid_file"}.items() <= s["not_ranked"][0].items()
    assert main(["leaderboard", "show", str(board.path), "gsm8k", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == json.loads(json.dumps(s["rows"]))


def test_hostile_names_are_escaped_everywhere_and_control_characters_refused(board, tmp_path):
    name, who = "<script>alert(1)</script>", "x'); DROP TABLE tasks;--"
    out = board.submit("gsm8k", write_system(tmp_path / "s.jsonl", "6b_finetuning"), name=name, submitter=who)
    assert out.status == "scored"
    assert [t["task"] for t in board.tasks()] == ["gsm8k"]  # the table is still there
    s = board.standings("gsm8k")
    page, md, text = render.page(s), render.markdown(s), render.text(s)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "x&#x27;); DROP TABLE tasks;--" in page and "&lt;script&gt;" in md
    assert name in text  # the terminal shows it as text; nothing there runs it
    bad = board.submit("gsm8k", tmp_path / "s.jsonl", name="red\x1b[31m", submitter="a" * 500)
    assert bad.status == "rejected" and {p.field for p in bad.problems} == {"name", "submitter"}
    assert "\x1b" not in render.text(board.standings("gsm8k"))


def test_resubmitting_and_rescoring_give_identical_aggregates_and_signature(board, tmp_path):
    path = write_system(tmp_path / "again.jsonl", "175b_verification")
    first = board.submit("gsm8k", path, name="again-1")
    second = board.submit("gsm8k", path, name="again-2")
    assert first.signature == second.signature
    rows = {r["name"]: r for r in board.standings("gsm8k")["rows"]}
    assert rows["again-1"]["scores"] == rows["again-2"]["scores"] == rows["175b_verification"]["scores"]
    before = {r["name"]: r["scores"] for r in board.standings("gsm8k")["rows"]}
    outcomes = board.rescore("gsm8k")
    assert outcomes and {o.signature for o in outcomes} == {first.signature}
    assert {r["name"]: r["scores"] for r in board.standings("gsm8k")["rows"]} == before


def test_a_row_under_another_signature_is_shown_apart(board, tmp_path):
    out = board.submit("gsm8k", write_system(tmp_path / "s.jsonl", "6b_verification"), name="stale one")
    with sqlite3.connect(board.path) as db:
        db.execute("UPDATE submissions SET signature = ? WHERE id = ?", ("roscoe:0.0.1|other", out.submission))
    s = board.standings("gsm8k")
    assert "stale one" not in [r["name"] for r in s["rows"]]
    assert any(r["name"] == "stale one" and r["status"] == "stale" for r in s["not_ranked"])


def test_quota_counts_only_scored_and_failures_are_never_ranked(board, tmp_path):
    good = write_system(tmp_path / "g.jsonl", "6b_finetuning")
    bad = tmp_path / "b.jsonl"
    bad.write_text("nope\n")
    board.create_task("quota", locate(QUESTIONS), fields=_fields(), limits=Limits(max_per_day=1), **TASK_ARGS)
    assert board.submit("quota", bad, name="r", submitter="team").status == "rejected"
    assert board.submit("quota", good, name="first", submitter="team").status == "scored"  # rejection not counted
    again = board.submit("quota", good, name="second", submitter="team")
    assert again.status == "rejected" and again.reason == "quota"
    assert board.submit("quota", good, name="other team", submitter="other").status == "scored"
    board.create_task("slow", locate(QUESTIONS), fields=_fields(), limits=Limits(time_limit=1e-9), **TASK_ARGS)
    code = main(["leaderboard", "submit", str(board.path), "slow", str(good), "--name", "slow one"])
    assert code == 1
    s = board.standings("slow")
    assert s["rows"] == [] and s["not_ranked"][0]["reason"] == "time_limit"


def test_missing_chains_score_as_the_worst_value_when_the_task_says_so(board, tmp_path):
    board.create_task("lenient", locate(QUESTIONS), fields=_fields(), limits=Limits(missing="worst"), **TASK_ARGS)
    out = board.submit("lenient", write_system(tmp_path / "part.jsonl", "6b_finetuning", ids=range(1, 5)),
                       name="part")
    assert out.status == "scored" and sorted(out.missing) == ["5", "6"]
    full = board.submit("lenient", write_system(tmp_path / "full.jsonl", "6b_finetuning"), name="full")
    rows = {r["name"]: r for r in board.standings("lenient")["rows"]}
    assert rows["part"]["missing"] == 2 and rows["part"]["value"] < rows["full"]["value"]
    with sqlite3.connect(board.path) as db:
        got = db.execute("SELECT value, reason FROM scores WHERE submission = ? AND chain = '6' AND "
                         "score = 'faithfulness'", (out.submission,)).fetchone()
    assert got == (0.0, "missing") and full.status == "scored"


def _submit_process(board_path, sub, name, env=None):
    import os

    return subprocess.Popen([sys.executable, "-m", "roscoe.cli", "leaderboard", "submit", str(board_path), "gsm8k",
                             str(sub), "--name", name, "--device", "cpu"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def test_two_processes_submitting_at_once_both_land(board, tmp_path):
    subs = [write_system(tmp_path / f"p{k}.jsonl", system) for k, system in enumerate(("6b_verification",
                                                                                         "175b_finetuning"))]
    procs = [_submit_process(board.path, s, f"process {k}") for k, s in enumerate(subs)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    names = [r["name"] for r in board.standings("gsm8k")["rows"]]
    assert "process 0" in names and "process 1" in names


def test_a_kill_mid_scoring_leaves_no_row_and_the_retry_reuses_the_cache(board, tmp_path):
    sub = write_system(tmp_path / "k.jsonl", "175b_finetuning", ids=range(N, 0, -1))  # another order: new file
    before = board.db.execute("SELECT COUNT(*) FROM submissions").fetchone()[0]
    p = _submit_process(board.path, sub, "killed", env={"ROSCOE_TEST_KILL_AFTER_BLOCK": "1"})
    p.communicate(timeout=600)
    assert p.returncode == -9
    assert board.db.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == before
    retry = board.submit("gsm8k", sub, name="killed")
    disk = next(iter(board._scorers.values())).disk.stats()
    assert retry.status == "scored" and disk["hits"] > 0


def test_score_reuses_a_disk_cache_across_runs_with_identical_rows(tmp_path):
    from .conftest import EXAMPLE

    runs = []
    for k in range(2):
        out = tmp_path / f"o{k}.jsonl"
        assert main(["score", str(EXAMPLE), "-o", str(out), "--scores", "faithfulness,grammar_step", "--cache",
                     str(tmp_path / "cache"), "--no-progress", "--quiet", "--device", "cpu"]) == 0
        runs.append(out.read_text())
    assert runs[0] == runs[1]
    with sqlite3.connect(tmp_path / "cache" / "outputs.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM outputs").fetchone()[0] > 0


def test_the_page_renders_in_headless_chromium(board, tmp_path):
    assert main(["leaderboard", "render", str(board.path), "gsm8k", "-o", str(tmp_path / "site")]) == 0
    page = tmp_path / "site" / "index.html"
    assert "http://" not in page.read_text().replace("http://www.w3.org", "") and "https://" not in page.read_text()
    assert (tmp_path / "site" / "board.md").is_file()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'prof'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0
    order = [r["name"] for r in board.standings("gsm8k")["rows"]]
    import html

    positions = [dom.stdout.find(f'class="name">{html.escape(n)}<') for n in order]
    assert -1 not in positions and positions == sorted(positions)
    assert "<script>alert(1)</script>" not in dom.stdout.split("<script")[0]
