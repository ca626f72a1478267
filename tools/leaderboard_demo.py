"""The leaderboard on real data (``make leaderboard-demo``): a task from the first 200 GSM8K
test questions with their gold solutions as references, the four GPT-3 systems of GSM8K's
example_model_solutions.jsonl submitted as four files, and one malformed file.  Prints the
board, writes the page, times each submission, a re-submission and a re-score, and says
whether each score orders the systems as their answer accuracy does (Kendall tau).

    .venv/bin/python tools/leaderboard_demo.py [--out out/leaderboard] [--limit 200]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from roscoe.chains import FieldMap  # noqa: E402
from roscoe.datasets import locate, shared_root  # noqa: E402
from roscoe.leaderboard import Board, render  # noqa: E402

SYSTEMS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
RANK_BY = "reasoning_alignment"  # alignment of the steps to the gold solution


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "out" / "leaderboard"))
    ap.add_argument("--limit", type=int, default=200)
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    (out / "submissions").mkdir(parents=True)
    questions = locate("dev/sources/gsm8k/test.jsonl")
    solutions = [json.loads(line) for line in
                 (shared_root() / "dev/sources/gsm8k/example_model_solutions.jsonl").read_text().splitlines()]
    task_rows = [json.loads(line) for line in questions.read_text().splitlines()[:args.limit]]
    assert all(s["question"] == q["question"] for s, q in zip(solutions, task_rows)), "files out of step"
    board = Board(out / "board.sqlite", device="cpu")
    t0 = time.perf_counter()
    info = board.create_task("gsm8k-test", questions, rank_by=RANK_BY, fields=FieldMap("id", "question", "steps",
                                                                                        "answer"),
                             split={"reference": "newline"}, limit=args.limit)
    print(f"task {info['task']}: {info['chains']} chains, {len(info['scores'])} scores, ranked by {info['rank_by']} "
          f"({time.perf_counter() - t0:.1f} s with model loading)\n")
    accuracy, timings = {}, {}
    for system in SYSTEMS:
        path = out / "submissions" / f"{system}.jsonl"
        with open(path, "w") as fh:
            for i, row in enumerate(solutions[:args.limit], start=1):  # ids: line numbers, as the task file has none
                fh.write(json.dumps({"id": i, "steps": row[system]["solution"]}) + "\n")
        accuracy[system] = sum(r[system]["is_correct"] for r in solutions[:args.limit]) / args.limit
        got = board.submit("gsm8k-test", path, name=f"GPT-3 {system}", submitter="openai/grade-school-math")
        timings[system] = got.seconds
        print(f"submitted {system}: {got.status} in {got.seconds:.1f} s")
    bad = out / "submissions" / "malformed.jsonl"
    bad.write_text('{"id": 1, "steps": ["Janet has 16 eggs."]}\n{"id": 1, "steps": ["again"]}\n'
                   '{"id": 2, "steps": []}\n{"id": "x99", "steps": "text"}\n{"id": 3, "steps": 42}\n'
                   'this is not JSON\n[1, 2, 3]\n')
    rejected = board.submit("gsm8k-test", bad, name="malformed <b>team</b>", submitter="someone")
    print(f"\nsubmitted malformed.jsonl: {rejected.status}, {rejected.n_problems} problems:\n{rejected.report()}\n")
    again = board.submit("gsm8k-test", out / "submissions" / f"{SYSTEMS[0]}.jsonl", name=f"GPT-3 {SYSTEMS[0]} again",
                         submitter="openai/grade-school-math")
    t1 = time.perf_counter()
    board.rescore("gsm8k-test")
    rescore_s = time.perf_counter() - t1
    standings = board.standings("gsm8k-test")
    print(render.text(standings))
    site = out / "site"
    site.mkdir()
    (site / "index.html").write_text(render.page(standings), encoding="utf-8")
    (site / "board.md").write_text(render.markdown(standings), encoding="utf-8")
    print(f"\nwrote {site / 'index.html'} and {site / 'board.md'}")
    print("\nseconds per submission (first four, cold for each system's steps): "
          + ", ".join(f"{s} {t:.1f}" for s, t in timings.items()))
    print(f"re-submission of {SYSTEMS[0]}: {again.seconds:.1f} s (every output from the cache; "
          f"{1 - again.seconds / timings[SYSTEMS[0]]:.0%} less than its first time)")
    print(f"re-score of all {len(standings['rows'])} scored submissions: {rescore_s:.1f} s")
    print("\nagreement with answer accuracy over the four systems (Kendall tau, 1 = same order):")
    from scipy.stats import kendalltau

    rows = {r["name"].removeprefix("GPT-3 "): r for r in standings["rows"] if not r["name"].endswith("again")}
    acc = [accuracy[s] for s in SYSTEMS]
    print("  accuracy: " + ", ".join(f"{s} {accuracy[s]:.3f}" for s in SYSTEMS))
    taus = {}
    for score in standings["scores"]:
        means = [rows[s]["scores"][score]["mean"] for s in SYSTEMS]
        taus[score] = kendalltau(acc, means).statistic
        print(f"  {score:<26} tau = {taus[score]:+.2f}   " + ", ".join(f"{m:.4f}" for m in means))
    (out / "agreement.json").write_text(json.dumps({"accuracy": accuracy, "kendall_tau": taus, "timings": timings,
                                                    "resubmission_s": again.seconds, "rescore_s": rescore_s},
                                                   indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
