"""Step-level perturbations: reorder, duplicate, remove, swap, or insert a foreign step."""
from __future__ import annotations

import random

from .base import (
    Change,
    GoldChain,
    NotApplicable,
    Perturbed,
    SplitContext,
    differing_order,
    normalise,
)

_MAX_DRAWS = 64  # rejection sampling first (cheap, and what the reference did), then an exhaustive pick


class ShuffleSteps:
    """A random permutation of the steps whose text differs from the gold order."""

    name = "ShuffleSteps"

    def __call__(self, chain: GoldChain, ctx: SplitContext, rng: random.Random):
        steps = list(chain.steps)
        order = differing_order([normalise(s) for s in steps], rng, _MAX_DRAWS)
        if order is None:
            return NotApplicable("too_few_distinct_steps")
        return Perturbed(tuple(steps[i] for i in order), (Change("shuffle", detail={"order": order}),))


class DuplicateOneStep:
    """A copy of one random step inserted right next to it."""

    name = "DuplicateOneStep"

    def __call__(self, chain: GoldChain, ctx: SplitContext, rng: random.Random):
        steps = list(chain.steps)
        if not steps:
            return NotApplicable("too_few_steps")
        k = rng.randrange(len(steps))
        steps.insert(k + 1, steps[k])
        return Perturbed(tuple(steps), (Change("duplicate", step=k + 1, new=steps[k], detail={"of": k}),))


class RemoveOneStep:
    """One random step deleted; chains of one step are not applicable (they would be empty)."""

    name = "RemoveOneStep"

    def __call__(self, chain: GoldChain, ctx: SplitContext, rng: random.Random):
        steps = list(chain.steps)
        if len(steps) < 2:
            return NotApplicable("too_few_steps")
        k = rng.randrange(len(steps))
        old = steps.pop(k)
        return Perturbed(tuple(steps), (Change("remove", step=k, old=old),))


class SwapOneStep:
    """Two steps with different texts exchange places."""

    name = "SwapOneStep"

    def __call__(self, chain: GoldChain, ctx: SplitContext, rng: random.Random):
        steps = list(chain.steps)
        norm = [normalise(s) for s in steps]
        pairs = [(i, j) for i in range(len(steps)) for j in range(i + 1, len(steps)) if norm[i] != norm[j]]
        if not pairs:
            return NotApplicable("too_few_distinct_steps")
        i, j = pairs[rng.randrange(len(pairs))]
        steps[i], steps[j] = steps[j], steps[i]
        return Perturbed(tuple(steps), (Change("swap", step=i, old=steps[j], new=steps[i], detail={"with": j}),))


class ExtrinsicHallucinatedStep:
    """A step of another example of the same split, inserted before a random step (never
    after the last one, as in the reference).  Unlike the reference, the step never comes
    from this example and never repeats text already in its chain or context."""

    name = "ExtrinsicHallucinatedStep"

    def __call__(self, chain: GoldChain, ctx: SplitContext, rng: random.Random):
        steps = list(chain.steps)
        if not steps:
            return NotApplicable("too_few_steps")
        own = {normalise(s).lower() for s in steps}
        context = normalise(chain.context).lower()
        others = [ex for ex in ctx.pool if ex.id != chain.id and ex.steps]

        def fresh(text):
            t = normalise(text).lower()
            return t and t not in own and t not in context

        pick = None
        for _ in range(_MAX_DRAWS if others else 0):
            ex = others[rng.randrange(len(others))]
            text = ex.steps[rng.randrange(len(ex.steps))]
            if fresh(text):
                pick = (ex.id, text)
                break
        if pick is None:
            candidates = [(ex.id, s) for ex in others for s in ex.steps if fresh(s)]
            if not candidates:
                return NotApplicable("no_extrinsic_step")
            pick = candidates[rng.randrange(len(candidates))]
        k = rng.randrange(len(steps))
        steps.insert(k, pick[1])
        return Perturbed(tuple(steps), (Change("insert_extrinsic", step=k, new=pick[1], detail={"from": pick[0]}),))
