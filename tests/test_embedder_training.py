"""roscoe train-embedder: its training data (training side only), its objective, the model
directory it writes, and the shipped roscoe-lite-embedder, all with the real MiniLM."""
import json
import math
import subprocess

import numpy as np
import pytest
import torch

from perturbations import pairs, sources
from roscoe.models import contrastive

from .conftest import gsm8k_chains, load_jsonl


@pytest.fixture(scope="module")
def chains():
    return pairs.training_chains()


@pytest.fixture(scope="module")
def held_out():
    from roscoe.cli.train_embedder import held_out_contexts

    return held_out_contexts()


def test_training_splits_are_not_files_the_evaluations_read():
    from human_eval.pipeline import BENCHMARKS

    evaluated = {f for s in sources.SOURCES.values() for f in s.files if s.name != "math"}
    evaluated |= {rel for rel, _ in BENCHMARKS.values()}
    training = {s.file for s in pairs.TRAINING_SOURCES.values()}
    assert not training & evaluated
    # math_train reads the MATH test file, whose held-out side is MATH-500: no MATH-500 problem is left
    math500 = {pairs.text_key(c.context) for c in sources.build("math500").chains}
    got = pairs.training_chains(["math_train"])
    assert got.counts["math_train"] == 5000 - got.dropped["math_train:in_math500"] > 4400
    assert not {pairs.text_key(c.context) for c in got.chains} & math500


def test_held_out_contexts_are_dropped(chains, held_out):
    kept, dropped = pairs.drop_held_out(chains.chains, held_out)
    keys = {pairs.text_key(t) for t in held_out}
    assert dropped == len(chains.chains) - len(kept)
    assert not any(pairs.text_key(c.context) in keys for c in kept)
    # a held-out chain offered for training is caught, whatever its spacing and case
    gsm = gsm8k_chains(3)
    fake = [sources.GoldChain(f"x{i}", "  " + c["context"].upper() + " ", tuple(c["steps"]), "", "from")
            for i, c in enumerate(gsm)]
    assert pairs.drop_held_out(fake, held_out) == ([], 3)


def test_triples_are_seeded_distinct_and_varied(chains):
    some = chains.chains[::200]
    a, missed = pairs.triples(some, per_chain=2, seed=3)
    b, _ = pairs.triples(some, per_chain=2, seed=3)
    assert a == b and len(a) > len(some)
    assert all(t.positive != t.negative and t.anchor for t in a)
    per = {}
    for t in a:
        per.setdefault(t.chain_id, []).append(t.perturbation)
    assert all(len(v) <= 2 and len(set(v)) == len(v) for v in per.values())
    assert len({t.perturbation for t in a}) >= 8  # the whole catalogue is drawn from, not one kind
    c, _ = pairs.triples(some, per_chain=2, seed=4)
    assert c != a


def test_sample_per_source_caps_each_source_reproducibly(chains):
    got = pairs.sample_per_source(chains.chains, 100, 0)
    counts = {s: sum(c.source == s for c in got) for s in pairs.TRAINING_SOURCES}
    assert counts == {s: min(100, n) for s, n in chains.counts.items()}
    assert got == pairs.sample_per_source(chains.chains, 100, 0) != pairs.sample_per_source(chains.chains, 100, 1)
    assert pairs.sample_per_source(chains.chains, 0, 0) == chains.chains


def test_info_nce_by_hand():
    # anchors a1=(1,0), a2=(0,1); positives p1=(1,0), p2=(1,1)/√2; negative n=(0,1); τ = 0.5
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # a2 unnormalised: cosine ignores the scale
    p = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    n = torch.tensor([[0.0, 1.0]])
    r = 1 / math.sqrt(2)
    # logits = cos / τ over [p1, p2, n]; row 1: [1, r, 0] / .5, target 0; row 2: [0, r, 1] / .5, target 1
    l1 = -(2.0 - math.log(math.exp(2.0) + math.exp(2 * r) + 1.0))
    l2 = -(2 * r - math.log(1.0 + math.exp(2 * r) + math.exp(2.0)))
    assert contrastive.info_nce(a, p, n, 0.5).item() == pytest.approx((l1 + l2) / 2, rel=1e-6)
    # without hard negatives only the other positives compete
    l1b = -(2.0 - math.log(math.exp(2.0) + math.exp(2 * r)))
    l2b = -(2 * r - math.log(1.0 + math.exp(2 * r)))
    assert contrastive.info_nce(a, p, None, 0.5).item() == pytest.approx((l1b + l2b) / 2, rel=1e-6)


def test_groups_share_anchor_and_positive():
    t = [pairs.Triple("c", "p", "n1", "A", "1"), pairs.Triple("c", "p", "n2", "B", "1"),
         pairs.Triple("c", "p", "n1", "C", "1"), pairs.Triple("d", "q", "m", "A", "2")]
    g = contrastive.groups(t)
    assert [(x.anchor, x.positive, x.negatives) for x in g] == [("c", "p", ["n1", "n2"]), ("d", "q", ["m"])]


def _write_chains(path, chains):
    with open(path, "w", encoding="utf-8") as fh:
        for c in chains:
            fh.write(json.dumps({"qid": c.id, "question": c.context, "facts": list(c.steps)}) + "\n")


def _train(args):
    """The command in this process (the models and held-out sets load once for every test)."""
    import contextlib
    import io

    from roscoe.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["train-embedder", *args])
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


FIELDS = ["--id-field", "qid", "--context-field", "question", "--steps-field", "facts"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, chains):
    """A real (small) run on the user's own chains: StrategyQA training chains as a JSONL file."""
    tmp = tmp_path_factory.mktemp("emb")
    src = tmp / "mine.jsonl"
    _write_chains(src, [c for c in chains.chains if c.source == "strategyqa_train"][:48])
    out = tmp / "model"
    r = _train(["--from", str(src), "-o", str(out), *FIELDS, "--epochs", "2", "--batch-size", "8",
                "--max-length", "48", "--val-share", "0.25", "--lr", "5e-4", "--threads", "2"])
    assert r.returncode == 0, r.stderr
    return out, r.stdout, src


def test_train_embedder_writes_a_model_directory(trained):
    out, stdout, _ = trained
    for f in ("config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json",
              "adapter.safetensors", "adapter.json", "training.json", "README.md"):
        assert (out / f).is_file(), f
    training = json.loads((out / "training.json").read_text())
    assert training["data"]["from"].endswith("mine.jsonl") and training["data"]["chains"] == 48
    assert training["steps"] > 0 and training["loss"] and training["val_triple_accuracy"]["n"] > 0
    card = (out / "README.md").read_text()
    assert "held-out triple accuracy" in card and "mine.jsonl" in card and "method lora" in card
    from roscoe.models.source import content_hash

    assert f"content hash: {content_hash(out)}" in stdout


def test_trained_directory_loads_as_the_embedder_slot(trained):
    from safetensors.torch import load_file

    from roscoe import Scorer
    from roscoe.models import lite

    out, _, _ = trained
    cfg = json.loads((out / "adapter.json").read_text())
    # the directory's weights are the base with the shipped (fp16) adapter merged in, exactly
    rebuilt = contrastive.merged(lite.minilm().path, load_file(str(out / "adapter.safetensors")), cfg)
    import transformers

    saved = transformers.AutoModel.from_pretrained(str(out))
    for (k, v), (k2, v2) in zip(rebuilt.state_dict().items(), saved.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    chains = gsm8k_chains(4)
    base = Scorer("lite", device="cpu", dtype="fp32")
    mine = Scorer("lite", device="cpu", dtype="fp32", embedder=str(out))
    names = ["faithfulness", "informativeness_chain", "repetition_step"]
    a, b = base.score(chains, names), mine.score(chains, names)
    from roscoe.models.source import content_hash

    assert f"emb:model@{content_hash(out)}+mean+256" in str(mine.signature(names))
    assert all(np.isfinite(b[n]).all() for n in names)
    assert any(not np.allclose(a[n], b[n], atol=1e-6) for n in names)  # training changed the embeddings


def test_train_embedder_refuses_bad_input_and_existing_output(trained, tmp_path):
    out, _, src = trained
    r = _train(["--from", str(src), "-o", str(out), *FIELDS])
    assert r.returncode == 2 and "exists" in r.stderr
    bad = tmp_path / "bad.jsonl"
    rows = load_jsonl(src)[:3]
    rows[1]["facts"] = 7
    bad.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    r = _train(["--from", str(bad), "-o", str(tmp_path / "m"), *FIELDS])
    assert r.returncode == 2
    assert f"{bad}:2: field 'facts'" in r.stderr and f"{bad}:4" in r.stderr and "2 bad line(s)" in r.stderr
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.*"))
    for base in (tmp_path / "no-such-model", tmp_path):  # missing; a directory that is not a model
        r = _train(["--from", str(src), "-o", str(tmp_path / "m"), *FIELDS, "--base", str(base)])
        assert r.returncode == 2 and "--base" in r.stderr and not (tmp_path / "m").exists()


def test_held_out_chains_offered_with_from_are_dropped(tmp_path):
    src = tmp_path / "gsm.jsonl"
    with open(src, "w") as fh:
        for c in gsm8k_chains(12):
            fh.write(json.dumps(c) + "\n")
    r = _train(["--from", str(src), "-o", str(tmp_path / "m")])
    assert r.returncode == 2 and "no chain to train on" in r.stderr  # every one is a human-judged chain


def test_shipped_lite_embedder_changes_only_the_embedder_scores(lite_scorer):
    from roscoe import Scorer, registry
    from roscoe.registry import EMBEDDER

    chains = gsm8k_chains(6)
    shipped = Scorer("lite", device="cpu", dtype="fp32", embedder="roscoe-lite-embedder")
    emb = [n for n, s in registry.SCORES.items() if EMBEDDER in s.slots]
    other = ["repetition_word", "discourse_representation", "coherence_step_vs_step", "grammar_step",
             "perplexity_step"]
    a, b = lite_scorer.score(chains, emb + other), shipped.score(chains, emb + other)
    for n in other:
        np.testing.assert_array_equal(a[n], b[n])
    assert any(not np.allclose(a[n], b[n], atol=1e-5) for n in emb)
    sig = str(shipped.signature(emb))
    assert "emb:roscoe-lite-embedder@" in sig and "tok:all-MiniLM-L6-v2@" in sig
    assert shipped.models.describe("embedder")["source"].startswith("package:roscoe-metrics")


def test_a_directory_named_like_the_package_model_wins(tmp_path, monkeypatch, trained):
    import shutil

    from roscoe.models import ModelSet

    out, _, _ = trained
    shutil.copytree(out, tmp_path / "roscoe-lite-embedder")
    monkeypatch.chdir(tmp_path)
    ms = ModelSet("lite", embedder="roscoe-lite-embedder")
    assert ms.describe("embedder")["source"] == "local"


def _eval_tool():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "eval_embedder.py"
    spec = importlib.util.spec_from_file_location("eval_embedder", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_eval_tool_paired_delta_and_targets():
    from human_eval.stats import somers_d

    ev = _eval_tool()
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 300).astype(float)
    a = label + rng.normal(0, 1.0, 300)
    b = label + rng.normal(0, 0.3, 300)  # a much better score of the same label
    same = ev.paired_delta(label, a, a, n_boot=200, seed=0)
    assert same["delta"] == 0 and same["ci"] == [0.0, 0.0] and same["p"] == 1.0
    up = ev.paired_delta(label, a, b, n_boot=200, seed=0)
    assert up["delta"] == pytest.approx(somers_d(label, b) - somers_d(label, a))
    assert 0 < up["ci"][0] < up["delta"] < up["ci"][1] and up["p"] < 0.05
    down = ev.paired_delta(label, b, a, n_boot=200, seed=0)
    assert down["ci"][1] < 0 and down["delta"] == pytest.approx(-up["delta"])
    # the embedding-targeted perturbations are those whose expected scores read the embedder
    assert ev.TARGETED == {"DuplicateOneStep": ("repetition_step",),
                           "ExtrinsicHallucinatedStep": ("faithfulness", "faithfulness_ww", "informativeness_step")}
    diag = {"x/DuplicateOneStep": {"n": 10, "base": {"repetition_step": 0.4}, "trained": {"repetition_step": 0.6}},
            "x/NegateStep": {"n": 10, "base": {"faithfulness": 0.9}, "trained": {"faithfulness": 0.9}}}
    assert [(c["model"], c["caught"]) for c in ev.checks(diag)] == [("base", False), ("trained", True)]
