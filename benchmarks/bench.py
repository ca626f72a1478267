#!/usr/bin/env python3
"""Throughput, per-stage cost and hardware utilisation of the scorer, against a naive
per-chain baseline on the same input.

    python benchmarks/bench.py                                   # lite, 200 ROSCOE human GSM8K chains, CPU
    python benchmarks/bench.py --n 10000 --device cuda --preset parlai-random --baseline-n 200
    python benchmarks/bench.py --memory 10000,100000 --scores SA  # streaming peak RSS of `roscoe score`

Prints chains/s; wall time per stage (embed, token embed, NLI, LM, grammar, formulas);
tokens/s per model; achieved FLOP/s per stage and its ratio to the device's peak (the CPU's
GEMM peak is measured on the spot, the GPU's bf16 dense peak comes from a table); peak host
and device memory; the signature; and the naive baseline's chains/s, the speed-up and the max
absolute score difference.  ``parlai-random`` builds the parlai preset's architectures
(mpnet-base, DeBERTa-v3-large, gpt2-large, roberta-large) with RANDOM weights from their
configs: the same cost per token as the real models, meaningless scores.  ``parlai-tiny``
builds the same architectures one layer deep and 64 wide: the models then cost next to nothing,
so its chains/s is the ceiling the host side (planning, tokenizing, batching, formulas) allows.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from roscoe import registry  # noqa: E402
from roscoe.models import lm  # noqa: E402
from roscoe.scorer import Scorer  # noqa: E402
from roscoe.datasets import shared_root  # noqa: E402

SHARED = shared_root()
GPU_BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}
# what a BERT tokenizer folder holds: copied beside each random model, and carried to the GPU
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


# ---------------------------------------------------------------------------- inputs


def _gsm8k_solutions() -> list[dict]:
    """The GSM8K model solutions (four models per question) against the gold solution, each
    distinct (question, solution) once."""
    base, seen = [], set()
    for i, line in enumerate(open(SHARED / "dev/sources/gsm8k/example_model_solutions.jsonl")):
        r = json.loads(line)
        for key in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
            sol = (r.get(key) or {}).get("solution")
            if sol and (r["question"], sol) not in seen:
                seen.add((r["question"], sol))
                base.append({"id": f"{i}-{key}", "context": r["question"], "steps": sol,
                             "reference": r["ground_truth"]})
    return base


def _with_math_perturbations(base: list[dict], seed: int) -> list[dict]:
    """Each chain followed by its RandomNumber and RandomOperation perturbations (one number,
    one operator per step replaced: the diagnostic sets' math perturbations), so N distinct
    chains run past the solutions rather than repeating them; a repeat would be deduplicated by
    the batched path and not by the naive one."""
    from perturbations.arithmetic import RandomNumber, RandomOperation
    from perturbations.base import GoldChain, NotApplicable, SplitContext, rng_for

    out, seen = [], {(c["context"], c["steps"]) for c in base}
    for c in base:
        gold = GoldChain(c["id"], c["context"], tuple(c["steps"].split("\n")))
        out.append(c)
        for p in (RandomNumber(), RandomOperation()):
            got = p(gold, SplitContext(), rng_for(seed, p.name, c["id"]))
            if isinstance(got, NotApplicable):
                continue
            steps = "\n".join(got.steps)
            if (c["context"], steps) not in seen:
                seen.add((c["context"], steps))
                out.append(dict(c, id=f"{c['id']}-{p.name}", steps=steps))
    return out


def load_chains(source: str, n: int, seed: int = 0) -> list[dict]:
    if source == "gsm8k-human":
        rows = [json.loads(line) for line in open(SHARED / "dev/human/roscoe_human/roscoe_human_gsm8k.jsonl")]
        base = [{"id": r["id"], "context": r["question"], "steps": r["steps"], "reference": r["reference_solution"]}
                for r in rows]
    elif source == "gsm8k-solutions":
        base = _gsm8k_solutions()
    elif source == "gsm8k-perturbed":
        base = _with_math_perturbations(_gsm8k_solutions(), seed)
    else:
        raise SystemExit(f"unknown source {source!r}")
    if n <= len(base):
        return base[:n]
    rng = random.Random(seed)
    return [dict(rng.choice(base), id=f"s{i}") for i in range(n)]  # sampled to N, ids unique


# ---------------------------------------------------------------------------- peaks


def cpu_gemm_peak(dtype=torch.float32, size=2048, reps=5) -> float:
    if dtype == torch.float16:  # CPUs without fp16 arithmetic emulate it: 2048^3 would take minutes
        size, reps = 512, 2
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * size ** 3 * reps / (time.perf_counter() - t0)


def device_peak(device: str, dtype: torch.dtype) -> tuple[float, str]:
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name()
        for key, peak in GPU_BF16_PEAK.items():
            if key in name:
                return peak, f"{name} bf16 dense peak (spec sheet)"
        return float("nan"), f"{name}: peak unknown"
    return cpu_gemm_peak(dtype), f"CPU {str(dtype).split('.')[-1]} GEMM measured now ({torch.get_num_threads()} threads)"


def model_flops(model, stats) -> float:
    """2 x non-embedding parameters per token, plus attention (4 x layers x d x len per token)."""
    m = getattr(model, "model", None)
    if m is None:
        return float("nan")
    params = sum(p.numel() for n, p in m.named_parameters() if "embed" not in n and "wte" not in n and "wpe" not in n)
    cfg = m.config
    d = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 0)
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 0)
    avg_len = stats.tokens / max(1, stats.texts)
    flops = 2 * params * stats.tokens + 4 * layers * d * avg_len * stats.tokens
    if hasattr(model, "nll"):  # the LM head is tied to the embeddings, left out above
        flops += 2 * m.get_output_embeddings().weight.numel() * stats.tokens
    return flops


# ---------------------------------------------------------------------------- random paper-size models


def build_random_parlai(root: Path, tiny: bool = False, tokenizer: Path | None = None) -> dict:
    """The parlai preset's architectures from configs, random weights, a BERT tokenizer (the
    lite MiniLM's unless ``tokenizer`` names a folder holding one).  ``tiny``: the same
    architectures one layer deep and 64 wide, so the models cost next to nothing and what is
    left is the host's share (planning, tokenizing, batching, formulas)."""
    import shutil

    import transformers

    if tokenizer is None:
        from roscoe.models import lite

        tokenizer = lite.minilm().path
    tok_src = Path(tokenizer)
    torch.manual_seed(0)

    def save(name, build):
        d = root / name
        if (d / "config.json").exists():  # the baseline reuses the models built for the batched run
            return str(d)
        build().save_pretrained(d)
        for f in TOKENIZER_FILES:
            shutil.copy(tok_src / f, d / f)
        return str(d)

    v = 30522

    def size(d, layers, heads):  # (width, depth, heads), or the tiny stand-in
        return (64, 1, 2) if tiny else (d, layers, heads)

    d, n, h = size(768, 12, 12)
    mpnet = transformers.MPNetConfig(vocab_size=v, hidden_size=d, num_hidden_layers=n, num_attention_heads=h,
                                     intermediate_size=4 * d, max_position_embeddings=514)
    d, n, h = size(1024, 24, 16)
    deberta = transformers.DebertaV2Config(vocab_size=v, hidden_size=d, num_hidden_layers=n, num_attention_heads=h,
                                           intermediate_size=4 * d, max_position_embeddings=512, relative_attention=True,
                                           position_buckets=256, pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm",
                                           share_att_key=True, position_biased_input=False, num_labels=3,
                                           id2label={0: "entailment", 1: "neutral", 2: "contradiction"})
    roberta = transformers.RobertaConfig(vocab_size=v, hidden_size=d, num_hidden_layers=n, num_attention_heads=h,
                                         intermediate_size=4 * d, max_position_embeddings=514, num_labels=2)
    d, n, h = size(1280, 36, 20)
    gpt2 = transformers.GPT2Config(vocab_size=50257, n_embd=d, n_layer=n, n_head=h, n_positions=1024)
    tag = "tiny" if tiny else "random"
    return {
        "embedder": save(f"mpnet-base-{tag}", lambda: transformers.MPNetModel(mpnet)),
        # a model of its own, as in the real preset (all-mpnet-base-v2 and mpnet-base): one path
        # for both would let the scorer share a single pass and hide the token stage's cost
        "token": save(f"mpnet-base-token-{tag}", lambda: transformers.MPNetModel(mpnet)),
        "nli": save(f"deberta-v3-large-{tag}", lambda: transformers.DebertaV2ForSequenceClassification(deberta)),
        "lm": save(f"gpt2-large-{tag}", lambda: transformers.GPT2LMHeadModel(gpt2)),
        "grammar": save(f"roberta-large-{tag}", lambda: transformers.RobertaForSequenceClassification(roberta)),
    }


def make_scorer(args, *, dtype, root: Path | None, compile=False):
    model_kw = dict(device=args.device, dtype=dtype, batch_tokens=args.batch_tokens, compile=compile)
    scorer_kw = dict(mode=args.mode, block_size=args.block_size, cache_size=0,
                     overlap={"auto": None, "on": True, "off": False}[args.overlap])
    if args.preset in ("parlai-random", "parlai-tiny"):
        from dataclasses import replace

        from roscoe.models import ModelSet, SlotSpec, get_preset

        paths = build_random_parlai(root, tiny=args.preset == "parlai-tiny", tokenizer=args.tokenizer)
        base = get_preset("parlai")
        slots = {s: SlotSpec(paths[s], {**base.slots[s].options}) for s in paths}
        slots["grammar"].options["preset_index"] = 0
        slots["lm"].options["add_prefix_space"] = False  # a BERT tokenizer stands in for GPT-2's
        slots["lm"].options["bos_id"] = 0
        preset = replace(base, name=args.preset, slots=slots, hub=False)
        return Scorer(models=ModelSet(preset, **model_kw), **scorer_kw)
    return Scorer(args.preset, **model_kw, **scorer_kw)


def warm_up(scorer, chains, names) -> float:
    """Load the models and run each kind of pass once on a few chains, so one-time costs (CUDA
    context and kernel loading, cuBLAS heuristics, lazy imports, compiling) are not billed to
    either path.  Returns its seconds."""
    t0 = time.perf_counter()
    scorer.load(names)
    scorer.score(chains[:8], names)
    if scorer.models.device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def run_batched(scorer, chains, names, profile=0):
    """(table, wall seconds, warm-up seconds) of the batched path."""
    warm = warm_up(scorer, chains, names)
    scorer.timings.clear()
    for m in scorer.models.loaded().values():
        m.stats.__init__()
    if scorer.models.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    if profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if scorer.models.device.startswith("cuda") else [])
        with torch_profile(activities=acts) as prof:
            table = scorer.score(chains, names)
        key = "self_cuda_time_total" if len(acts) > 1 else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=profile), file=sys.stderr)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=profile), file=sys.stderr)
    else:
        table = scorer.score(chains, names)
    if scorer.models.device.startswith("cuda"):
        torch.cuda.synchronize()
    return table, time.perf_counter() - t0, warm


def run_naive(scorer, chains, names):
    """The reference's strategy: chain by chain, each score family's model called per chain."""
    from roscoe.models.deberta import full_relative_attention

    families = {}
    for n in names:
        families.setdefault(registry.SCORES[n].slots, []).append(n)
    warm_up(scorer, chains, names)
    # the reference's model code: every model and text run on its own, transformers' DeBERTa attention
    scorer.models.share_passes = False
    for slot, model in scorer.models.loaded().items():
        if slot == "lm":
            model.share_prefixes = False
            model.feed_last_token = True
            model.head_rows = lm.HEAD_CHUNK  # the whole batch's logits at once, as the reference does
        else:
            full_relative_attention(model.model)
    t0 = time.perf_counter()
    values = np.full((len(chains), len(names)), np.nan)
    for i, c in enumerate(chains):
        for members in families.values():
            t = scorer.score([c], members)
            for name in members:
                values[i, names.index(name)] = t[name][0]
    return values, time.perf_counter() - t0


def benchmark(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    names = registry.resolve(args.scores)
    chains = load_chains(args.source, args.n, args.seed)
    root = args.models_dir or Path(tempfile.mkdtemp(prefix="roscoe-bench-"))
    scorer = make_scorer(args, dtype=args.dtype, root=root, compile=args.compile)
    table, wall, warm = run_batched(scorer, chains, names, args.profile)
    dtype = scorer.models.autocast or scorer.models.dtype  # what the matrix products run in
    peak, peak_what = device_peak(scorer.models.device, dtype)
    stages = {}
    slot_of = {"embed": "embedder", "token_embed": "token", "nli": "nli", "lm": "lm", "grammar": "grammar"}
    for stage, secs in scorer.timings.items():
        row = {"seconds": round(secs, 3)}
        slot = slot_of.get(stage)
        if scorer.models.is_loaded(slot):
            m = scorer.models.loaded()[slot]
            flops = model_flops(m, m.stats)
            row.update(tokens=m.stats.tokens, texts=m.stats.texts, tokens_per_s=round(m.stats.tokens / secs),
                       tflops=round(flops / secs / 1e12, 4), peak_ratio=round(flops / secs / peak, 4),
                       truncated=m.stats.truncated)
        stages[stage] = row
    out = {
        "preset": args.preset, "source": args.source, "chains": len(chains), "scores": len(names),
        "device": scorer.models.device, "dtype": scorer.models.precision, "threads": torch.get_num_threads(),
        "overlap": scorer.overlap, "block_size": scorer.block_size, "compile": scorer.models.compile,
        "warm_up_s": round(warm, 3), "wall_s": round(wall, 3), "chains_per_s": round(len(chains) / wall, 3),
        "stages": stages,
        "peak": f"{peak / 1e12:.2f} TFLOP/s ({peak_what})",
        "peak_host_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "signature": str(scorer.signature(names)),
    }
    if scorer.models.device.startswith("cuda"):
        out["peak_device_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    if args.baseline_n:
        naive = make_scorer(args, dtype="fp32", root=root)  # random models are rebuilt from the same seed
        sub = chains[: args.baseline_n]
        ref_vals, naive_wall = run_naive(naive, sub, list(names))
        ours = table.values[: len(sub)]
        both = ~(np.isnan(ours) | np.isnan(ref_vals))
        out["baseline"] = {
            "chains": len(sub), "wall_s": round(naive_wall, 3), "chains_per_s": round(len(sub) / naive_wall, 3),
            "speedup": round((len(chains) / wall) / (len(sub) / naive_wall), 2),
            "max_abs_diff": float(np.abs(ours - ref_vals)[both].max()) if both.any() else None,
            "max_abs_diff_per_score": {n: round(float(np.nanmax(np.abs(ours[:, j] - ref_vals[:, j]))), 6)
                                       for j, n in enumerate(names) if both[:, j].any()},
            "nan_pattern_equal": bool((np.isnan(ours) == np.isnan(ref_vals)).all()),
        }
    return out


def memory(args) -> dict:
    """Peak RSS of `roscoe score` streaming files of N chains (sampled from real chains)."""
    out = {}
    for n in [int(x) for x in args.memory.split(",")]:
        with tempfile.TemporaryDirectory() as d:
            src = Path(d) / "in.jsonl"
            with open(src, "w") as fh:
                for c in load_chains(args.source, n, args.seed):
                    fh.write(json.dumps(c) + "\n")
            dst = Path(d) / "out.jsonl"
            code = ("import resource,sys; from roscoe.cli import main; rc=main(sys.argv[1:]); "
                    "print('RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", code, "score", str(src), "-o", str(dst), "--scores",
                                  args.scores, "--device", args.device, "--no-progress", "--quiet"],
                                 capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(res.stderr[-2000:])
            rss = int(next(l.split()[1] for l in res.stdout.splitlines() if l.startswith("RSS_KB")))
            out[n] = {"peak_rss_mb": round(rss / 1024), "wall_s": round(time.perf_counter() - t0, 1),
                      "rows": sum(1 for _ in open(dst))}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="lite",
                    help="lite, parlai, paper, parlai-random, or parlai-tiny (the host's share alone)")
    ap.add_argument("--source", default="gsm8k-human", choices=["gsm8k-human", "gsm8k-solutions", "gsm8k-perturbed"],
                    help="gsm8k-human: the 200 ROSCOE human GSM8K chains; gsm8k-solutions: the 5,268 distinct GSM8K "
                         "model solutions; gsm8k-perturbed: each solution then its RandomNumber and "
                         "RandomOperation perturbations (15,797 distinct chains); past its size a source is sampled with replacement")
    ap.add_argument("--tokenizer", type=Path, default=None,
                    help="folder with a BERT tokenizer for the random models (default: the lite MiniLM's)")
    ap.add_argument("--models-dir", type=Path, default=None,
                    help="build the random models here, or reuse those already built there (default: a new temp dir)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--scores", default="reference-free")
    ap.add_argument("--mode", default="paper")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--batch-tokens", type=int, default=None)
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile every model body of the batched path (the compile time is in warm_up_s)")
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--overlap", choices=["auto", "on", "off"], default="auto",
                    help="plan and tokenize the next block on a worker thread (auto: on for a GPU)")
    ap.add_argument("--baseline-n", type=int, default=None,
                    help="chains for the naive per-chain baseline (default: all, on CPU; 0: skip)")
    ap.add_argument("--memory", default=None, help="comma-separated chain counts: measure streaming RSS instead")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--profile", type=int, default=0, metavar="ROWS",
                    help="profile the batched run and print this many top operators (device, then host time) to stderr")
    args = ap.parse_args(argv)
    if args.baseline_n is None:
        args.baseline_n = args.n if args.device == "cpu" else 200
    res = memory(args) if args.memory else benchmark(args)
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
