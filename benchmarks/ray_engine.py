#!/usr/bin/env python3
"""`roscoe score --engine ray` against the local engine: chains/s, and the driver's memory.

    python benchmarks/ray_engine.py                   # both parts below
    python benchmarks/ray_engine.py --part speed      # chains/s: local, 1 worker x 2 CPUs, 2 workers x 1 CPU
    python benchmarks/ray_engine.py --part memory --sizes 10000,100000   # driver peak RSS as the file grows

speed: the 200 ROSCOE human GSM8K chains (question as context, gold solution as reference),
all 20 scores, lite preset, CPU fp32; each run in a child process on a local Ray cluster of
this machine, started for the run, and its wall time from the command's start (cluster start
and model loading included) and the scoring seconds the command reports.

memory: a file of N chains streamed through the Ray engine (2 workers); the chains are the
200 GSM8K chains repeated under new ids, so after the first pass the actors' output caches
answer the models and the run measures what the engine itself holds: the driver's peak RSS
(its own process, not the cluster's), its CPU seconds per row (what one driver can gather),
and the rows written.  The score is `faithfulness`, 256 chains per actor task.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from roscoe.datasets import shared_root  # noqa: E402

GSM8K = shared_root() / "dev/human/roscoe_human/roscoe_human_gsm8k.jsonl"


def chains() -> list[dict]:
    rows = [json.loads(x) for x in GSM8K.read_text().splitlines() if x.strip()]
    return [{"id": r["id"], "context": r["question"], "steps": r["steps"], "reference": r["reference_solution"]}
            for r in rows]


def write(path: Path, n: int) -> Path:
    base = chains()
    with open(path, "w") as fh:
        for k in range(n):
            fh.write(json.dumps({**base[k % len(base)], "id": f"c{k}"}) + "\n")
    return path


def child(argv: list[str]) -> dict:
    """Run `roscoe score` in a child process; wall seconds, and what the child measured of itself."""
    code = ("import json, resource, sys, time; from roscoe import cli; t = time.perf_counter(); "
            "rc = cli.main(sys.argv[1:]); u = resource.getrusage(resource.RUSAGE_SELF); "
            "print(json.dumps({'rc': rc, 'wall': time.perf_counter() - t, 'rss_mb': u.ru_maxrss / 1024, "
            "'cpu_s': u.ru_utime + u.ru_stime}))")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0 or not p.stdout.strip():
        raise SystemExit(f"roscoe score failed:\n{p.stderr[-3000:]}")
    got = json.loads(p.stdout.strip().splitlines()[-1])
    got["process_s"] = time.perf_counter() - t0
    return got


def meta(out: Path) -> dict:
    return json.loads(Path(str(out) + ".meta.json").read_text())


def speed(tmp: Path) -> None:
    src = write(tmp / "gsm8k.jsonl", 200)
    common = ["--device", "cpu", "--dtype", "fp32", "--no-progress", "--quiet"]
    runs = [("local engine (2 threads)", []),
            ("ray, 1 worker x 2 CPUs", ["--engine", "ray", "--workers", "1", "--cpus-per-worker", "2"]),
            ("ray, 2 workers x 1 CPU", ["--engine", "ray", "--workers", "2", "--cpus-per-worker", "1"])]
    print(f"{'run':28s} {'command s':>10s} {'scoring s':>10s} {'chains/s':>9s}  (200 GSM8K chains, 20 scores)")
    outs = []
    for name, extra in runs:
        out = tmp / f"speed{len(outs)}.jsonl"
        got = child(["score", str(src), "-o", str(out), *common, *extra])
        m = meta(out)
        print(f"{name:28s} {got['process_s']:10.1f} {m['seconds']:10.1f} {m['rows_written'] / m['seconds']:9.2f}")
        outs.append(out)
    rows = [[json.loads(x) for x in o.read_text().splitlines()] for o in outs]
    worst = max(abs(a[k] - b[k]) for other in rows[1:] for a, b in zip(rows[0], other)
                for k in a if k not in ("id", "reasons") and a[k] is not None)
    print(f"max |ray - local| over every score: {worst:.2e}")


def memory(tmp: Path, sizes: list[int]) -> None:
    print(f"{'chains':>8s} {'driver peak RSS MB':>19s} {'driver CPU s':>13s} {'us/row':>7s} {'wall s':>7s} "
          f"{'rows':>8s}  (faithfulness, 2 workers, 256 chains per task)")
    for n in sizes:
        src = write(tmp / f"mem{n}.jsonl", n)
        out = tmp / f"mem{n}.out.jsonl"
        got = child(["score", str(src), "-o", str(out), "--device", "cpu", "--dtype", "fp32", "--no-progress",
                     "--quiet", "--scores", "faithfulness", "--engine", "ray", "--workers", "2",
                     "--ray-batch-size", "256"])
        rows = meta(out)["rows_written"]
        print(f"{n:8d} {got['rss_mb']:19.0f} {got['cpu_s']:13.1f} {got['cpu_s'] / n * 1e6:7.0f} {got['wall']:7.1f} "
              f"{rows:8d}")
        src.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["speed", "memory", "all"], default="all")
    ap.add_argument("--sizes", default="10000,100000", help="chains per memory run")
    args = ap.parse_args()
    print(f"peak RSS of this script before any run: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    with tempfile.TemporaryDirectory(prefix="roscoe-ray-bench-") as tmp:
        if args.part in ("speed", "all"):
            speed(Path(tmp))
        if args.part in ("memory", "all"):
            memory(Path(tmp), [int(x) for x in args.sizes.split(",")])


if __name__ == "__main__":
    main()
