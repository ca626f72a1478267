"""Contrastive training triples for a ROSCOE embedder, as the paper built them: the context as
the anchor, the gold steps as its positive and a perturbed copy of the steps as its hard
negative (every other positive in a batch is an in-batch negative).

Which gold chains may be used is fixed here: only the sources' training-side splits, never a
file that a diagnostic set or a human-judged set reads, and then every chain whose context
also appears in a held-out set is dropped (``drop_held_out``), so a question that two
datasets share cannot leak either.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from roscoe.plan import joined

from . import catalogue, sources
from .base import GoldChain, NotApplicable, SplitContext, checked, rng_for


@dataclass(frozen=True)
class TrainingSource:
    """A training-side split: the file, how its chains are built, and why it is training side."""

    name: str
    file: str
    build: object
    math: bool
    split: str  # what the split is and which held-out split it stands beside


TRAINING_SOURCES: dict[str, TrainingSource] = {s.name: s for s in (
    TrainingSource("strategyqa_train", "dev/sources/strategyqa/train.json", sources._strategyqa("facts"), False,
                   "StrategyQA train (diagnostics read dev)"),
    TrainingSource("aqua_dev", "dev/sources/aqua/dev.json", sources.aqua, True, "AQuA-RAT dev (diagnostics read test)"),
    TrainingSource("entailment_bank_dev", "dev/sources/entailment_bank/task_1_dev.jsonl", sources.entailment_bank,
                   False, "EntailmentBank task 1 dev (diagnostics read test)"),
    TrainingSource("math_train", "dev/sources/math/math_test_5000.jsonl", sources.math_solutions, True,
                   "the 4,500 MATH test problems outside MATH-500, PRM800K's training side (diagnostics of the "
                   "trained embedder read MATH-500)"),
)}
# MATH-500 is the held-out side of math_train: its problems are removed by text.
MATH500 = "dev/sources/math/math500_test.jsonl"

_KEY = re.compile(r"[\W_]+")


def text_key(text: str) -> str:
    """A context compared across datasets: lower case, letters and digits only, first 300."""
    return _KEY.sub("", text.lower())[:300]


@dataclass
class TrainingChains:
    chains: list[GoldChain] = field(default_factory=list)
    counts: dict = field(default_factory=dict)       # source -> chains kept
    dropped: Counter = field(default_factory=Counter)  # reason -> chains dropped
    files: list[Path] = field(default_factory=list)


def training_chains(names=tuple(TRAINING_SOURCES), *, root=None) -> TrainingChains:
    """Gold chains of the training-side splits ``names`` (unique ids across sources)."""
    out = TrainingChains()
    math500 = {text_key(c.context) for c in sources.build("math500", root=root).chains} \
        if "math_train" in names else set()
    for name in names:
        if name not in TRAINING_SOURCES:
            raise sources.SourceError(f"unknown training source {name!r}; expected one of "
                                      f"{', '.join(TRAINING_SOURCES)}")
        src = TRAINING_SOURCES[name]
        path = sources.source_file(src.file, root)
        built = sources.Built(name)
        src.build(path, built)
        out.files.append(path)
        out.dropped.update(f"{name}:{s.reason}" for s in built.skipped)
        kept = 0
        for c in built.chains:
            if name == "math_train" and text_key(c.context) in math500:
                out.dropped["math_train:in_math500"] += 1
                continue
            out.chains.append(GoldChain(f"{name}/{c.id}", c.context, c.steps, c.answer, name))
            kept += 1
        out.counts[name] = kept
    return out


def sample_per_source(chains: list[GoldChain], cap: int, seed: int) -> list[GoldChain]:
    """At most ``cap`` chains of each source (0: all), a seeded sample kept in source order."""
    if not cap:
        return list(chains)
    by: dict[str, list[int]] = {}
    for i, c in enumerate(chains):
        by.setdefault(c.source, []).append(i)
    keep = set()
    for source, idx in by.items():
        keep.update(idx if len(idx) <= cap else rng_for(seed, "sample", source).sample(idx, cap))
    return [c for i, c in enumerate(chains) if i in keep]


def drop_held_out(chains: list[GoldChain], held_out_contexts) -> tuple[list[GoldChain], int]:
    """``chains`` without those whose context matches a held-out context (``text_key``)."""
    keys = {text_key(t) for t in held_out_contexts}
    keys.discard("")
    kept = [c for c in chains if text_key(c.context) not in keys]
    return kept, len(chains) - len(kept)


@dataclass(frozen=True)
class Triple:
    anchor: str
    positive: str
    negative: str
    perturbation: str
    chain_id: str


def triples(chains: list[GoldChain], *, per_chain: int = 2, seed: int = 0, which: str = "single",
            is_math=None) -> tuple[list[Triple], Counter]:
    """Up to ``per_chain`` triples per chain, each with a different perturbation drawn (seeded
    per chain) from those of the catalogue that apply to it; math perturbations only where
    ``is_math(chain)``.  Returns the triples and, per perturbation, how often it did not apply."""
    pool_by_source: dict[str, list[GoldChain]] = {}
    for c in chains:
        pool_by_source.setdefault(c.source, []).append(c)
    contexts = {s: SplitContext(tuple(p)) for s, p in pool_by_source.items()}
    math_flags = is_math or (lambda c: TRAINING_SOURCES[c.source].math if c.source in TRAINING_SOURCES else True)
    out, missed = [], Counter()
    for c in chains:
        options = catalogue.for_source(c.source, math_flags(c), which)
        rng = rng_for(seed, "pairs", c.id)
        order = rng.sample(range(len(options)), len(options))
        made = 0
        for i in order:
            if made >= per_chain:
                break
            p = options[i]
            result = checked(p(c, contexts[c.source], rng_for(seed, c.source, p.name, c.id)), c.steps)
            if isinstance(result, NotApplicable):
                missed[p.name] += 1
                continue
            out.append(Triple(c.context, joined(list(c.steps)), joined(list(result.steps)), p.name, c.id))
            made += 1
    return out, missed
