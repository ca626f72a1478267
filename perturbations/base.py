"""The shapes every perturbation shares: a gold chain in, a perturbed chain plus a record of
what changed out, or a typed reason why it cannot apply.  Never a silent no-op."""
from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class GoldChain:
    """One source example: the question or premises (``context``), the gold ``steps`` and the
    ``answer``.  ``id`` is unique within its source; ``source`` names the split it came from."""

    id: str
    context: str
    steps: tuple[str, ...]
    answer: str = ""
    source: str = ""


@dataclass(frozen=True)
class Change:
    """What one perturbation did.  ``step`` is the index in the chain it was applied to (for
    an insertion, the index of the new step); ``old``/``new`` are the texts replaced."""

    kind: str
    step: int | None = None
    old: str | None = None
    new: str | None = None
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {"kind": self.kind, "step": self.step, "old": self.old, "new": self.new}
        if self.detail:
            out["detail"] = dict(self.detail)
        return out


@dataclass(frozen=True)
class Perturbed:
    steps: tuple[str, ...]
    changes: tuple[Change, ...]


# Reason codes, one per way a perturbation can fail to apply.  Stable strings: they end up
# in manifests and skipped-row files.
REASONS = {
    "too_few_steps": "the chain has fewer steps than the perturbation needs",
    "too_few_distinct_steps": "the chain needs at least two steps with different texts",
    "no_extrinsic_step": "no step from another example of the split is new to this example",
    "no_grammar_candidate": "no step yields a grammatical error that changes its text",
    "no_negatable_step": "no step has a verb that can be negated",
    "no_entities": "the question has no entity or noun phrase to swap in",
    "no_entity_in_steps": "no step mentions a swappable entity of the question",
    "no_number_pair": "no step has two or more numbers that are not all equal",
    "no_operator_pair": "no step has two or more operators that are not all equal",
    "no_number": "no step has a number",
    "no_operator": "no step has an arithmetic operator",
    "no_change": "the perturbed chain equals the gold chain after whitespace normalisation",
}


@dataclass(frozen=True)
class NotApplicable:
    reason: str
    message: str = ""

    def __post_init__(self):
        if self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}")

    def as_dict(self) -> dict:
        return {"reason": self.reason, "message": self.message or REASONS[self.reason]}


@dataclass(frozen=True)
class SplitContext:
    """What a perturbation may know beyond the chain itself: the other examples of the same
    split (the pool extrinsic steps are drawn from)."""

    pool: Sequence[GoldChain] = ()


class Perturbation(Protocol):
    name: str

    def __call__(self, chain: GoldChain, ctx: SplitContext, rng: random.Random) -> Perturbed | NotApplicable:
        ...


_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _WS.sub(" ", text).strip()


def same_chain(a: Sequence[str], b: Sequence[str]) -> bool:
    return [normalise(s) for s in a] == [normalise(s) for s in b]


def differing_order(keys: Sequence, rng: random.Random, max_draws: int = 64) -> list[int] | None:
    """A random permutation of positions under which ``keys`` read differently, drawn by
    rejection as the reference did; None when every key is equal (no such order)."""
    keys = list(keys)
    if len(set(keys)) < 2:
        return None
    for _ in range(max_draws):
        order = list(range(len(keys)))
        rng.shuffle(order)
        if [keys[i] for i in order] != keys:
            return order
    # A sequence equals its rotation by one only when it is constant, which was ruled out.
    return list(range(1, len(keys))) + [0]


def rng_for(seed: int, *parts: str) -> random.Random:
    """An independent stream per (seed, source, perturbation, example): one example's
    failure or a change in the set never shifts another example's draws, and Python's
    Mersenne Twister with an integer seed is the same on every machine and version."""
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def checked(result: Perturbed | NotApplicable, gold: Sequence[str]) -> Perturbed | NotApplicable:
    """The package's guarantee: a perturbed chain really differs from its gold chain."""
    if isinstance(result, Perturbed) and same_chain(result.steps, gold):
        return NotApplicable("no_change")
    return result
