"""Perturbation catalogue and diagnostic datasets built from real sources.

>>> from perturbations import CATALOGUE, GoldChain, SplitContext, rng_for
>>> chain = GoldChain("ex1", "Tom has 3 apples and buys 2 more.", ("3 + 2 = 5", "Tom has 5 apples"))
>>> result = CATALOGUE["RemoveOneStep"](chain, SplitContext(), rng_for(42, "demo", "RemoveOneStep", chain.id))
>>> result.steps, result.changes[0].kind
(('3 + 2 = 5',), 'remove')
"""
from .base import Change, GoldChain, NotApplicable, Perturbed, SplitContext, rng_for
from .catalogue import CATALOGUE, Combined, resolve

__all__ = ["CATALOGUE", "Change", "Combined", "GoldChain", "NotApplicable", "Perturbed", "SplitContext",
           "resolve", "rng_for"]
