"""The benchmark runs end to end on tiny stand-ins of the paper architectures and reports what
it promises; its timings are printed, never asserted."""
import importlib.util
import json
import os
import subprocess
import sys

from roscoe.models.encoders import compile_unavailable

from .conftest import ROOT


def _bench():
    spec = importlib.util.spec_from_file_location("roscoe_bench", ROOT / "benchmarks" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_reports_stages_baseline_and_signature(tmp_path, capsys):
    out = tmp_path / "bench.json"
    compile = compile_unavailable("cpu") is None  # the batched path compiled, the naive one not
    _bench().main(["--preset", "parlai-tiny", "--source", "gsm8k-solutions", "--n", "6", "--baseline-n", "3",
                   "--overlap", "on", "--json", str(out)] + (["--compile"] if compile else []))
    res = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == res
    assert res["chains"] == 6 and res["scores"] == 13 and res["overlap"] is True
    assert res["compile"] is compile and res["warm_up_s"] > 0
    assert ("|compile:inductor|" in res["signature"]) is compile
    for stage in ("embed", "token_embed", "nli", "lm", "grammar"):  # every model ran, each on its own
        row = res["stages"][stage]
        assert row["tokens"] > 0 and row["texts"] > 0 and row["tflops"] > 0 and 0 < row["peak_ratio"]
    assert "prepare" in res["stages"] and "formulas" in res["stages"]
    base = res["baseline"]
    assert base["chains"] == 3 and base["nan_pattern_equal"]
    assert base["max_abs_diff"] < 1e-5  # fp32 both ways: the batched engine (compiled or not) changes no score
    assert len(base["max_abs_diff_per_score"]) == 13
    assert res["signature"].startswith("roscoe:") and "preset:parlai-tiny" in res["signature"]


def test_gpu_check_script_needs_nothing_beyond_the_device_image(tmp_path):
    """`gpu_check.sh prepare` packs what the GPU image lacks; the check then runs under a stand-in
    of that image (tests/device_image: the lite weight packages cannot be imported, punkt only
    from the carried zip), on the CPU with the tiny architectures."""
    carry, out = tmp_path / "carry", tmp_path / "out"
    env = {**os.environ, "GPU_CHECK_CARRY": str(carry), "PYTHON": sys.executable}
    script = str(ROOT / "benchmarks" / "gpu_check.sh")
    subprocess.run(["bash", script, "prepare"], env=env, check=True, capture_output=True)
    assert sum(f.stat().st_size for f in carry.rglob("*") if f.is_file()) < 16 * 2 ** 20  # the tool carries 64 MiB
    env.update(PYTHONPATH=str(ROOT / "tests" / "device_image"), OUT=str(out), GPU_CHECK_DEVICE="cpu",
               GPU_CHECK_PRESET="parlai-tiny", GPU_CHECK_RUNS="fp32:12:4 no-such-dtype:4:2")
    res = subprocess.run(["bash", script], env=env, capture_output=True, text=True)
    assert res.returncode == 1, res.stdout + res.stderr  # the second run fails, and the call says so
    assert "punkt.zip/punkt/__init__.py" in (out / "env.txt").read_text()
    run = json.loads((out / "parlai-tiny-fp32.json").read_text())
    assert run["chains"] == 12 and run["source"] == "gsm8k-perturbed"
    assert run["baseline"]["max_abs_diff"] < 1e-5 and run["baseline"]["nan_pattern_equal"]
    summary = (out / "summary.txt").read_text()
    assert "FAILED parlai-tiny no-such-dtype: exit 1" in summary
    assert f"parlai-tiny-fp32: 12 chains in {run['wall_s']} s" in summary and summary in res.stdout


def test_perturbed_source_holds_distinct_chains():
    bench = _bench()
    chains = bench.load_chains("gsm8k-perturbed", 10_000)
    assert len({(c["context"], c["steps"]) for c in chains}) == 10_000  # nothing for the batched path to dedupe
    solution, perturbed = chains[0], chains[1]
    assert perturbed["id"] == solution["id"] + "-RandomNumber" and perturbed["context"] == solution["context"]
    old, new = solution["steps"].split("\n"), perturbed["steps"].split("\n")
    assert len(old) == len(new) and all(a != b for a, b in zip(old, new) if any(ch.isdigit() for ch in a))
