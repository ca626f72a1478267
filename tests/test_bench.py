"""The benchmark runs end to end on tiny stand-ins of the paper architectures and reports what
it promises; its timings are printed, never asserted."""
import importlib.util
import json

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
