"""An eval-loop adapter in the torchmetrics style: ``update()`` per batch, ``compute()`` at
the end, ``reset()`` between epochs.  Per-chain scores are the state, so ``compute()`` is
exact (a mean over chains, NaN skipped), and states gather across processes."""
from __future__ import annotations

import numpy as np

from . import registry
from .table import ScoreTable


class ROSCOEMetric:
    def __init__(self, scores=None, *, scorer=None, **scorer_kwargs):
        from .scorer import Scorer

        self.names = registry.resolve(scores)
        self.scorer = scorer or Scorer(**scorer_kwargs)
        self._tables: list[ScoreTable] = []
        self._offset = 0

    def update(self, chains) -> ScoreTable:
        """Score a batch of chains (dicts or ``roscoe.Chain``) and keep the per-chain scores."""
        from .chains import coerce

        chains = [coerce(c, self._offset + i) for i, c in enumerate(chains)]
        self._offset += len(chains)
        table = self.scorer.score(chains, self.names)
        self._tables.append(table)
        return table

    def _values(self) -> np.ndarray:
        local = (np.concatenate([t.values for t in self._tables]) if self._tables
                 else np.zeros((0, len(self.names))))
        try:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                gathered = [None] * dist.get_world_size()
                dist.all_gather_object(gathered, local)
                return np.concatenate(gathered)
        except ImportError:  # pragma: no cover
            pass
        return local

    def compute(self) -> dict:
        """Mean of each score over every chain seen (all processes), NaN skipped, and counts."""
        values = self._values()
        out = {}
        for k, name in enumerate(self.names):
            col = values[:, k]
            ok = col[~np.isnan(col)]
            out[name] = float(ok.mean()) if len(ok) else float("nan")
        out["n_chains"] = int(values.shape[0])
        return out

    def reset(self) -> None:
        self._tables.clear()
        self._offset = 0
