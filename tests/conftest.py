import json
from pathlib import Path

import pytest

from roscoe.datasets import shared_root

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_root()
GSM8K_HUMAN = SHARED / "dev/human/roscoe_human/roscoe_human_gsm8k.jsonl"
ESNLI_HUMAN = SHARED / "dev/human/roscoe_human/roscoe_human_esnli.jsonl"
EXAMPLE = ROOT / "examples" / "chains.jsonl"


def load_jsonl(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def gsm8k_chains(n=None):
    rows = load_jsonl(GSM8K_HUMAN)[:n]
    return [{"id": r["id"], "context": r["question"], "steps": r["steps"], "reference": r["reference_solution"]}
            for r in rows]


@pytest.fixture(scope="session")
def lite_scorer():
    """One fp32 CPU scorer with the real lite models, shared by the tests that need it."""
    from roscoe import Scorer

    return Scorer("lite", device="cpu", dtype="fp32")
