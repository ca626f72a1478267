"""The package as users install it: the shipped datasets, a core that never imports its tools,
and a wheel installed into a fresh virtualenv running meta-eval, perturb and diag-eval from an
empty directory with no ../shared anywhere."""
from __future__ import annotations

import hashlib
import json
import lzma
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from roscoe import datasets

ROOT = Path(__file__).resolve().parents[1]


def test_every_file_meta_eval_and_perturb_read_is_shipped_intact():
    from human_eval.pipeline import BENCHMARKS
    from perturbations.sources import SOURCES

    shipped = set(datasets.shipped())
    assert {rel for rel, _ in BENCHMARKS.values()} | {f for s in SOURCES.values() for f in s.files} <= shipped
    for rel, digest in datasets.checksums().items():
        data = lzma.decompress((datasets.HERE / f"{rel}.xz").read_bytes())
        assert hashlib.sha256(data).hexdigest() == digest, rel
        original = datasets.checkout_root() / rel
        if original.is_file():  # the bundle is the checkout's data, byte for byte
            assert datasets.sha256(original) == digest, f"{rel}: rerun tools/bundle_data.py"
        folder = (datasets.HERE / rel).parent
        assert (folder / "NOTICE").is_file(), rel
        assert str(Path(rel).parent) in datasets.SETS
    assert (datasets.HERE / "PROVENANCE.md").is_file()


def test_a_shipped_file_is_unpacked_once_into_the_cache_and_a_bad_copy_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("ROSCOE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(datasets.ENV, raising=False)
    rel = "dev/human/roscoe_human/roscoe_human_esnli.jsonl"
    path = datasets.locate(rel)
    assert tmp_path in path.parents and datasets.sha256(path) == datasets.checksums()[rel]
    path.write_text("edited\n")  # a torn or edited copy is never read
    datasets._verified.cache_clear()
    assert datasets.sha256(datasets.locate(rel)) == datasets.checksums()[rel]


def test_a_data_root_is_the_only_place_looked_and_a_missing_set_names_its_source(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.ENV, raising=False)
    with pytest.raises(datasets.DataNotFound, match=r"MR-BEN .*dvlab-research/Mr-Ben.*not under the data root"):
        datasets.locate("dev/human/mr_ben/math.json", tmp_path)
    monkeypatch.setenv(datasets.ENV, str(tmp_path))
    with pytest.raises(datasets.DataNotFound, match="GSM8K .*openai/grade-school-math"):
        datasets.locate("dev/sources/gsm8k/test.jsonl")
    (tmp_path / "dev/sources/gsm8k").mkdir(parents=True)
    (tmp_path / "dev/sources/gsm8k/test.jsonl").write_text("{}\n")
    assert datasets.locate("dev/sources/gsm8k/test.jsonl") == tmp_path / "dev/sources/gsm8k/test.jsonl"


def test_meta_eval_names_a_missing_set_before_any_model_loads(tmp_path, capsys):
    from roscoe.cli import main

    code = main(["meta-eval", "champ", "--data-root", str(tmp_path), "-o", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "CHAMP" in err and "champ-dataset" in err and "Traceback" not in err


def test_the_core_scores_without_importing_its_tools():
    """Nor ray (the [ray] extra is installed for the tests, so this can fail)."""
    code = """
import sys, json, roscoe
t = roscoe.score([{"id": 1, "context": "Tom has 3 apples. He buys 2 more.", "steps": ["3 + 2 = 5.", "Tom has 5."]}],
                 "faithfulness,grammar_step", device="cpu")
print(json.dumps({"value": float(t["faithfulness"][0]),
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("human_eval", "perturbations", "ray")
                                    or m.startswith(("roscoe.cli", "roscoe.leaderboard", "roscoe.ray")))}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["modules"] == [] and 0.5 < got["value"] <= 1.0


@pytest.mark.slow
def test_the_wheel_works_installed_outside_the_checkout(tmp_path):
    """Build the wheel, install it (no dependencies: this environment's packages are reused
    through a .pth line, never the checkout) and run the three data commands from an empty
    directory."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
                    str(ROOT)], check=True, cwd=tmp_path, capture_output=True)
    wheel = next(dist.glob("roscoe_metrics-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # a plain path line: the parent's packages are importable, its .pth files (the editable
    # install of this checkout) are not run
    (site / "_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)
    work = tmp_path / "empty" / "work"
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in (datasets.ENV, "PYTHONPATH")}
    env.update(ROSCOE_CACHE_DIR=str(tmp_path / "cache"), HOME=str(tmp_path / "home"), MPLBACKEND="Agg")
    roscoe = str(venv / "bin" / "roscoe")

    def run(*args):
        return subprocess.run([roscoe, *args], cwd=work, env=env, capture_output=True, text=True, timeout=1200)

    where = subprocess.run([str(python), "-c", "import roscoe, human_eval, perturbations as p; "
                            "print(roscoe.__file__, human_eval.__file__, p.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(f).is_relative_to(venv) for f in where), where
    meta = run("meta-eval", "roscoe-human-gsm8k", "--limit", "20", "-o", "out/")
    assert meta.returncode == 0, meta.stderr
    assert "20 chains" in meta.stdout and (work / "out").is_dir()
    built = run("perturb", "--source", "gsm8k", "--perturbations", "all", "-o", "diag/")
    assert built.returncode == 0, built.stderr
    manifest = json.loads((work / "diag" / "manifest.json").read_text())
    sha = manifest["sources"]["gsm8k"]["files"][0]["sha256"]
    assert sha == datasets.checksums()["dev/sources/gsm8k/test.jsonl"]
    ev = run("diag-eval", "diag/", "--limit", "20", "--n-boot", "0", "--sets", _few_sets(manifest))
    assert ev.returncode == 0, ev.stderr
    assert "signature: " in ev.stdout
    assert (tmp_path / "cache" / "data").is_dir()  # the shipped data was read, from the user cache


def _few_sets(manifest) -> str:
    keys = [f"{s['source']}/{s['perturbation']}" for s in manifest["sets"]]
    return ",".join(keys[:3])
