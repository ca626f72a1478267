"""The catalogue by name, multi-perturbation combinations, and which sets each source gets."""
from __future__ import annotations

import dataclasses
import random

from .arithmetic import RandomNumber, RandomOperation, ShuffleNumbers, ShuffleOperations
from .base import GoldChain, NotApplicable, Perturbed, SplitContext
from .linguistic import GrammaticalErrorStep, NegateStep, SemanticChangeStep
from .steps import (
    DuplicateOneStep,
    ExtrinsicHallucinatedStep,
    RemoveOneStep,
    ShuffleSteps,
    SwapOneStep,
)

STEP_LEVEL = (ShuffleSteps(), DuplicateOneStep(), RemoveOneStep(), SwapOneStep(), ExtrinsicHallucinatedStep(),
              GrammaticalErrorStep(), NegateStep(), SemanticChangeStep())
MATH = (ShuffleNumbers(), ShuffleOperations(), RandomNumber(), RandomOperation())
CATALOGUE = {p.name: p for p in STEP_LEVEL + MATH}
LINGUISTIC = {"GrammaticalErrorStep", "NegateStep", "SemanticChangeStep"}


class Combined:
    """Several perturbations applied in order to the same chain (the reference's "sentinel"
    sets).  Not applicable as soon as one part is.  The name puts DuplicateOneStep first
    whatever the order, as the reference's file names do."""

    def __init__(self, parts):
        self.parts = tuple(parts)
        names = [p.name for p in self.parts]
        first = [n for n in names if n == "DuplicateOneStep"][:1]
        rest = list(names)
        if first:
            rest.remove("DuplicateOneStep")
        self.name = "_".join(first + rest)
        self.order = "+".join(names)

    def __call__(self, chain: GoldChain, ctx: SplitContext, rng: random.Random):
        current, changes = chain, []
        for part in self.parts:
            result = part(current, ctx, rng)
            if isinstance(result, NotApplicable):
                return NotApplicable(result.reason, f"{part.name}: {result.message or result.reason}")
            changes += [dataclasses.replace(c, detail={**c.detail, "by": part.name}) for c in result.changes]
            current = dataclasses.replace(current, steps=result.steps)
        return Perturbed(current.steps, tuple(changes))


def _combos(spec: str) -> list[Combined]:
    return [Combined([CATALOGUE[ABBREV.get(n, n)] for n in item.split("+")]) for item in spec.split()]


ABBREV = {"Dup": "DuplicateOneStep", "ExtHall": "ExtrinsicHallucinatedStep", "Gram": "GrammaticalErrorStep",
          "Neg": "NegateStep", "Shuffle": "ShuffleSteps", "Swap": "SwapOneStep", "Remove": "RemoveOneStep",
          "SemChange": "SemanticChangeStep", "ShufNum": "ShuffleNumbers", "ShufOp": "ShuffleOperations",
          "RandNum": "RandomNumber", "RandOp": "RandomOperation"}
# The reference's multi-perturbation sets (spec 9.3).
_EB_COMBOS = "Dup+Dup Dup+ExtHall Dup+Gram Dup+Neg Dup+Shuffle Dup+Swap Swap+Dup+ExtHall"
_MATH_COMBOS = ("Dup+ExtHall Dup+Gram Dup+Neg Dup+ShufNum Dup+ShufOp Dup+RandNum Dup+RandOp Swap+Dup+ExtHall "
                "Swap+Dup+ShufNum Swap+Dup+ShufOp Swap+Dup+RandNum Swap+Dup+RandOp")
COMBINATIONS = {"entailment_bank": _EB_COMBOS, "math": _MATH_COMBOS, "math500": _MATH_COMBOS}


def resolve(name: str):
    """A catalogue name, an abbreviation, or a combination written A+B(+C)."""
    parts = [ABBREV.get(n.strip(), n.strip()) for n in name.split("+")]
    unknown = [p for p in parts if p not in CATALOGUE]
    if unknown:
        raise KeyError(f"unknown perturbation {', '.join(unknown)}; expected one of "
                       f"{', '.join(CATALOGUE)} (or A+B combinations)")
    return CATALOGUE[parts[0]] if len(parts) == 1 else Combined([CATALOGUE[p] for p in parts])


def for_source(source: str, is_math: bool, which: str = "all") -> list:
    """The sets a source gets: ``all`` (single perturbations, plus the reference's
    combinations where it had them), ``single``, ``combinations``, or a comma list."""
    singles = list(STEP_LEVEL) + (list(MATH) if is_math else [])
    combos = _combos(COMBINATIONS[source]) if source in COMBINATIONS else []
    if which == "all":
        return singles + combos
    if which == "single":
        return singles
    if which == "combinations":
        return combos
    return [resolve(n) for n in which.split(",") if n.strip()]
