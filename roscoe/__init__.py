"""roscoe-metrics: the ROSCOE scores for step-by-step reasoning chains.

>>> import roscoe
>>> roscoe.registry.resolve("LI")
('coherence_step_vs_step', 'discourse_representation')
"""
__version__ = "0.1.0"

from . import registry  # noqa: E402
from .chains import Chain, InputError  # noqa: E402
from .table import ScoreTable, Signature  # noqa: E402


def __getattr__(name):
    # Scorer pulls in torch and transformers: import it only when asked for.
    if name in ("Scorer", "score"):
        from . import scorer

        return getattr(scorer, name)
    if name == "ROSCOEMetric":
        from .metric import ROSCOEMetric

        return ROSCOEMetric
    raise AttributeError(f"module 'roscoe' has no attribute {name!r}")


__all__ = ["__version__", "Chain", "InputError", "ScoreTable", "Signature", "Scorer", "score",
           "ROSCOEMetric", "registry"]
