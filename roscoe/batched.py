"""All formulas for a whole block at once, as masked tensor operations on the device.

Chains are padded to the block's longest (steps, context, reference, tokens) and every score
is a masked max / min / mean over batched cosine or probability matrices: no Python loop over
chains, steps or tokens.  ``formulas.py`` is the readable, hand-checked definition; this module
must give the same numbers and the same NaN reasons (tests/test_formula_parity.py holds it to
that on random outputs, tests/test_batched.py on real chains).

Memory: a padded block costs (chains x longest chain) in every dimension, and the token-level
scores hold (tokens x tokens) matrices per chain, so ``compute`` splits a block into groups of
chains of similar size whose tensors fit a byte budget (``roscoe.memory.groups``), and a chain too large for
the budget alone runs its token matrices in chunks of rows (``PaddedGroup(chunk=...)``).  Every
chain's numbers are the same whatever group or chunk it runs in.

Length: one class holds every batched formula because they all read the same padded views
of a group (built once, on first use); split across modules they would share that state
through imports.
"""
from __future__ import annotations

import numpy as np
import torch

from . import memory
from .formulas import PARLAI, REASONS, ra
from .outputs import PassOutputs

INF = float("inf")
CODES = list(REASONS)  # reason code -> index in the reason tensor; -1 = defined

BATCHED: dict = {}  # score name -> its batched formula, a method of PaddedGroup


def formula(method):
    """Register ``method`` as the batched formula of the score of the same name."""
    BATCHED[method.__name__] = method
    return method


def pad_index(lists, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Index lists (or int arrays) as one zero-padded (rows, longest) index tensor and its mask."""
    lengths = np.array([len(x) for x in lists], dtype=np.int64)
    width = max(int(lengths.max(initial=0)), 1)
    mask = np.arange(width)[None, :] < lengths[:, None]
    idx = np.zeros((len(lists), width), dtype=np.int64)
    if lengths.sum():
        idx[mask] = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists])
    return torch.from_numpy(idx).to(device), torch.from_numpy(mask).to(device)


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``arange(starts[k], starts[k] + sizes[k])`` for every k, concatenated."""
    total = int(sizes.sum())
    return np.repeat(starts - (np.cumsum(sizes) - sizes), sizes) + np.arange(total)


def _max(x, mask, dim):
    return x.masked_fill(~mask, -INF).amax(dim=dim)


def _min(x, mask, dim):
    return x.masked_fill(~mask, INF).amin(dim=dim)


def _mean(x, mask, dim):
    # padded entries may hold -inf (an empty max): fill them, never multiply them by 0
    return x.masked_fill(~mask, 0).sum(dim=dim) / mask.sum(dim=dim).clamp(min=1).to(x.dtype)


class Column:
    """Values and reason codes of one score for every chain of a group."""

    def __init__(self, n: int, device, dtype):
        self.value = torch.full((n,), float("nan"), dtype=dtype, device=device)
        self.code = torch.full((n,), -1, dtype=torch.long, device=device)
        self._set = torch.zeros(n, dtype=torch.bool, device=device)  # decided: a value or a reason

    def nan(self, cond, reason: str):
        """Chains meeting ``cond`` and not yet decided become NaN with ``reason``."""
        cond = cond & ~self._set
        self.code[cond] = CODES.index(reason)
        self._set = self._set | cond

    def put(self, cond, value):
        """Chains meeting ``cond`` and not yet decided get ``value``."""
        cond = cond & ~self._set
        v = value if torch.is_tensor(value) else torch.full_like(self.value, float(value))
        self.value = torch.where(cond, v.to(self.value.dtype), self.value)
        self._set = self._set | cond

    def rest(self, value):
        """Every chain not yet decided gets ``value``."""
        self.put(~self._set, value)

    def finish(self):
        bad = (self.code == -1) & ~torch.isfinite(self.value)
        self.code[bad] = CODES.index("non_finite")
        self.value[self.code != -1] = float("nan")
        return self.value, self.code


class PaddedGroup:
    """A group of chains padded to its longest, with views of the block's model outputs; each
    formula below (registered in ``BATCHED`` under its score's name) gives one ``Column``."""

    def __init__(self, refs, counts, out: dict, mode: str, device, dtype, nli_pairs: dict | None = None,
                 chunk: int | None = None):
        self.mode, self.dev, self.dt = mode, device, dtype
        self.chunk = chunk  # rows of a token matrix per step of the pairwise token scores; None: all
        self.B = len(refs)
        t = lambda xs: torch.as_tensor(xs, device=device)
        self.N = t([c[0] for c in counts])
        self.T = t([c[1] for c in counts])
        self.has_ref = t([c[2] is not None for c in counts])
        self.K = t([c[2] or 0 for c in counts])
        self.out = out
        self.refs = refs
        self.nli_pairs = nli_pairs or {}  # kind -> (chain of each pair, pair index): Plan.nli_pairs

    # ------------------------------------------------------------------ sentence level

    def _sent(self):
        if hasattr(self, "_H"):
            return
        E = self.out.sentences.to(self.dev, self.dt)
        for name, attr in (("_H", "steps"), ("_C", "context"), ("_R", "reference")):
            idx, mask = pad_index([getattr(r, attr) or [] for r in self.refs], self.dev)
            setattr(self, name, (E[idx], mask))
        H, mh = self._H
        C, mc = self._C
        R, mr = self._R
        hc = torch.einsum("bnd,btd->bnt", H, C)
        vhc = mh[:, :, None] & mc[:, None, :]
        self.al_h_c = ra(_max(hc, vhc, 2))            # align(h_i -> s), (B, N)
        self.al_c_h = ra(_max(hc, vhc, 1))            # align(s_t -> h), (B, T)
        hr = torch.einsum("bnd,bkd->bnk", H, R)
        vhr = mh[:, :, None] & mr[:, None, :]
        self.al_h_r = ra(_max(hr, vhr, 2))            # (B, N)
        self.al_r_h = ra(_max(hr, vhr, 1))            # (B, K)
        rc = torch.einsum("bkd,btd->bkt", R, C)
        self.al_r_c = ra(_max(rc, mr[:, :, None] & mc[:, None, :], 2))  # (B, K)
        self.hh = torch.einsum("bnd,bmd->bnm", H, H)
        self.mh, self.mc, self.mr = mh, mc, mr

    def _ma(self, al, mask, other_empty):
        """MA with the parlai rule: 0.0 when either side is empty."""
        v = _mean(al, mask, 1)
        empty = (mask.sum(1) == 0) | other_empty
        return torch.where(empty, torch.zeros_like(v), v), empty

    def _new(self):
        r = Column(self.B, self.dev, self.dt)
        r.nan(self.N == 0, "empty_hypothesis")
        return r

    @formula
    def faithfulness(self):
        self._sent()
        r, p = self._new(), self.mode == PARLAI
        ma, _ = self._ma(self.al_h_c, self.mh, self.T == 0)
        if p:
            r.put(self.T == 0, 0.0)
        r.nan(self.T == 0, "empty_context")
        r.rest(ma)
        return r

    @formula
    def informativeness_step(self):
        self._sent()
        r = self._new()
        a, _ = self._ma(self.al_c_h, self.mc, self.N == 0)
        b, _ = self._ma(self.al_h_c, self.mh, self.T == 0)
        if self.mode == PARLAI:
            r.put(self.T == 0, 0.0)
        r.nan(self.T == 0, "empty_context")
        r.rest(0.5 * (a + b))
        return r

    @formula
    def reasoning_alignment(self):
        self._sent()
        r = self._new()
        r.nan(~self.has_ref, "no_reference")
        ma, _ = self._ma(self.al_h_r, self.mh, self.K == 0)
        if self.mode == PARLAI:
            r.put(self.K == 0, 0.0)
        r.nan(self.K == 0, "empty_reference")
        r.rest(ma)
        return r

    def _ref_ctx(self, needs_context: bool):
        self._sent()
        r = self._new()
        r.nan(~self.has_ref, "no_reference")
        p = self.mode == PARLAI
        r.nan(self.K == 0, "reference_raises" if p else "empty_reference")
        if needs_context:
            r.nan(self.T == 0, "reference_raises" if p else "empty_context")
        return r

    @formula
    def external_hallucination(self):
        r = self._ref_ctx(True)
        miss = (1 - self.al_h_r) * (1 - self.al_h_c)
        r.rest(1 - _max(miss, self.mh, 1))
        return r

    @formula
    def redundancy(self):
        r = self._ref_ctx(False)
        r.rest(_min(self.al_h_r, self.mh, 1))
        return r

    @formula
    def common_sense_error(self):
        r = self._ref_ctx(True)
        miss = (1 - self.al_r_h) * (1 - self.al_r_c)
        r.rest(1 - _max(miss, self.mr, 1))
        return r

    @formula
    def missing_step(self):
        r = self._ref_ctx(False)
        r.rest(_min(self.al_r_h, self.mr, 1))
        return r

    @formula
    def semantic_coverage_step(self):
        self._sent()
        r = self._new()
        r.nan(~self.has_ref, "no_reference")
        if self.mode != PARLAI:
            r.nan(self.K == 0, "empty_reference")
            r.nan(self.T == 0, "empty_context")
        a, _ = self._ma(self.al_r_c, self.mr, self.T == 0)
        b, _ = self._ma(self.al_h_c, self.mh, self.T == 0)
        r.rest(1 - (a - b).abs())
        return r

    def _chain_sim(self, key, r):
        E = self.out.sentences.to(self.dev, self.dt)
        hi = torch.as_tensor([x.chain_steps if x.chain_steps is not None else 0 for x in self.refs], device=self.dev)
        xi = torch.as_tensor([getattr(x, key) if getattr(x, key) is not None else 0 for x in self.refs],
                             device=self.dev)
        v = ra((E[hi] * E[xi]).sum(1))
        r.rest((1 + v) / 2 if self.mode == PARLAI else v)
        return r

    @formula
    def informativeness_chain(self):
        r = self._new()
        if self.mode != PARLAI:
            r.nan(self.T == 0, "empty_context")
        return self._chain_sim("chain_context", r)

    @formula
    def semantic_coverage_chain(self):
        r = self._new()
        r.nan(~self.has_ref, "no_reference")
        if self.mode != PARLAI:
            r.nan(self.K == 0, "empty_reference")
        return self._chain_sim("chain_reference", r)

    def _lower(self, n_max):
        i = torch.arange(n_max, device=self.dev)
        return i[:, None] > i[None, :]  # later step i, earlier step j

    @formula
    def repetition_step(self):
        self._sent()
        r = self._new()
        if self.mode == PARLAI:
            r.put(self.N < 2, 1.0)
        r.nan(self.N < 2, "too_few_steps")
        valid = self._lower(self.hh.shape[1])[None] & self.mh[:, :, None] & self.mh[:, None, :]
        best = _max(self.hh, valid, (1, 2)).clamp(max=1.0)  # see ra: fp32 rounding
        r.rest((1 - best) / (4 if self.mode == PARLAI else 2))
        return r

    # ------------------------------------------------------------------ token level

    def _tok(self):
        if hasattr(self, "_ht"):
            return
        # the block's token vectors in one matrix, sent to the device in one copy; each chain's
        # rows are then gathered there by index instead of concatenated and padded on the host.
        # Only the texts these chains use: a group of a larger block copies its own share.
        tok = self.out.tokens
        used = np.unique(np.concatenate([np.asarray(r.tok_steps + r.tok_context, dtype=np.int64)
                                         for r in self.refs] + [np.zeros(0, np.int64)]))
        local = np.full(len(tok), -1, dtype=np.int64)
        local[used] = np.arange(len(used))
        sizes = np.array([tok[i].shape[0] for i in used], dtype=np.int64)
        starts = np.cumsum(sizes) - sizes
        d = next((tok[i].shape[1] for i in used if tok[i].ndim == 2), 1)
        # plus a zero row: with no token here at all, the padded gather below still reads row 0
        flat = torch.cat([*(tok[i] for i in used), torch.zeros(1, d)]).to(self.dev)

        def gather(texts_per_chain):
            texts = [local[np.asarray(t, dtype=np.int64)] for t in texts_per_chain]
            rows = [_ranges(starts[t], sizes[t]) for t in texts]
            idx, mask = pad_index(rows, self.dev)
            vectors = flat[idx].to(self.dt)
            return vectors.masked_fill_(~mask[:, :, None], 0), mask, texts

        self._ht, self._mht, steps = gather([r.tok_steps for r in self.refs])
        self._ct, self._mct, _ = gather([r.tok_context for r in self.refs])
        # the step (within its chain) of each token row
        step_of = [np.repeat(np.arange(len(t)), sizes[t]) for t in steps]
        self._step_of = pad_index(step_of, self.dev)[0]

    def _row_chunks(self, rows: int):
        """Slices over ``rows`` token rows, ``self.chunk`` at a time (all at once without one)."""
        step = max(1, self.chunk or rows)
        return [slice(a, min(a + step, rows)) for a in range(0, max(rows, 1), step)]

    @formula
    def faithfulness_ww(self):
        self._sent()
        self._tok()
        r, p = self._new(), self.mode == PARLAI
        if p:
            r.put(self.T == 0, 0.0)
        r.nan(self.T == 0, "empty_context")
        M = self._mht.sum(1)
        S = self._mct.sum(1)
        if not p:
            r.nan((M > 0) & (S == 0), "no_tokens")
        tok_al = torch.zeros(self._mht.shape, dtype=self.dt, device=self.dev)
        for rows in self._row_chunks(self._ht.shape[1]):
            sim = torch.einsum("bmd,bsd->bms", self._ht[:, rows], self._ct)
            sim.masked_fill_(~(self._mht[:, rows, None] & self._mct[:, None, :]), -INF)
            tok_al[:, rows] = ra(sim.amax(dim=2))
            del sim
        tok_al = torch.where(self._mht & (S > 0)[:, None], tok_al, torch.zeros_like(tok_al))
        step_sum = (self.al_h_c.masked_fill(~self.mh, 0)).sum(1)
        r.rest((step_sum + tok_al.sum(1)) / (self.N + M).clamp(min=1))
        return r

    @formula
    def repetition_word(self):
        self._tok()
        r, p = self._new(), self.mode == PARLAI
        if p:
            r.put(self.N < 2, 1.0)
        r.nan(self.N < 2, "too_few_steps")
        n_max = max(1, int(self.N.max()))
        ht, mt, step_of = self._ht, self._mht, self._step_of
        # best match of token u within each step j: (B, U, n_max), a chunk of rows u at a time
        per_step = torch.full((self.B, ht.shape[1], n_max), -INF, dtype=self.dt, device=self.dev)
        for rows in self._row_chunks(ht.shape[1]):
            sim = torch.einsum("bud,bvd->buv", ht[:, rows], ht)
            sim.clamp_(-1.0, 1.0).add_(1.0).div_(2.0)  # ra, in place
            sim.masked_fill_(~(mt[:, rows, None] & mt[:, None, :]), -INF)
            per_step[:, rows] = per_step[:, rows].scatter_reduce(2, step_of[:, None, :].expand_as(sim), sim, "amax")
            del sim
        # mean over the tokens u of step i: (B, n_max_i, n_max_j)
        contrib = per_step.masked_fill(~mt[:, :, None], 0).masked_fill(per_step == -INF, 0)
        sums = torch.zeros(self.B, n_max, n_max, dtype=self.dt, device=self.dev)
        sums = sums.scatter_add(1, step_of[:, :, None].expand(-1, -1, n_max), contrib)
        counts = torch.zeros(self.B, n_max, dtype=self.dt, device=self.dev).scatter_add(1, step_of, mt.to(self.dt))
        ma = sums / counts[:, :, None].clamp(min=1)
        steps_exist = torch.arange(n_max, device=self.dev)[None] < self.N[:, None]
        nonempty = (counts > 0) & steps_exist
        pairs = self._lower(n_max)[None] & nonempty[:, :, None] & nonempty[:, None, :]
        any_pair = pairs.any(dim=(1, 2))
        if not p:
            r.nan(~any_pair, "no_tokens")
        best = _max(ma, pairs, (1, 2))
        best = torch.where(any_pair, best, torch.zeros_like(best))
        if p:
            best = best.clamp(min=0.0)  # the reference's running max starts at 0
        r.rest(1 - best)
        return r

    # ------------------------------------------------------------------ NLI, LM, grammar

    def _worst_contradiction(self, kind: str):
        """Per chain, the largest P(contradiction) among its pairs of ``kind`` (-inf: none)."""
        best = torch.full((self.B,), -INF, dtype=self.dt, device=self.dev)
        owners, indices = self.nli_pairs.get(kind, ([], []))
        if len(indices):
            con = self.out.contradiction.to(self.dev, self.dt)
            best = best.scatter_reduce(0, torch.as_tensor(owners, device=self.dev),
                                       con[torch.as_tensor(indices, device=self.dev)], "amax")
        return best

    @formula
    def discourse_representation(self):
        r = self._new()
        r.nan(self.T == 0, "reference_raises" if self.mode == PARLAI else "empty_context")
        r.rest(1 - self._worst_contradiction("context"))
        return r

    @formula
    def coherence_step_vs_step(self):
        r = self._new()
        if self.mode != PARLAI:
            r.nan(self.N < 2, "too_few_steps")
        r.rest(1 - self._worst_contradiction("steps"))  # the plan built only the pairs this mode uses
        return r

    def _per_step(self, key):
        idx, mask = pad_index([getattr(ref, key) for ref in self.refs], self.dev)
        return idx, mask

    def _lm(self):
        idx, mask = self._per_step("lm_steps")
        ppl = self.out.perplexity.to(self.dev, self.dt)[idx]
        n = self.out.lm_tokens.to(self.dev)[idx]
        empty = ((n == 0) & mask).any(1)
        return ppl, n.to(self.dt), mask, empty

    @formula
    def perplexity_step(self):
        r = self._new()
        ppl, n, mask, empty = self._lm()
        r.nan(empty, "empty_text")
        if self.mode == PARLAI:
            v = (n * mask).sum(1) / (n * ppl * mask).sum(1)
        else:
            v = mask.sum(1) / (ppl * mask).sum(1)
        r.rest(v)
        return r

    @formula
    def perplexity_step_max(self):
        r = self._new()
        ppl, n, mask, empty = self._lm()
        r.nan(empty, "empty_text")
        r.rest(1 / _max(ppl, mask, 1))
        return r

    @formula
    def perplexity_chain(self):
        r = self._new()
        ci = torch.as_tensor([ref.lm_chain if ref.lm_chain is not None else 0 for ref in self.refs], device=self.dev)
        n = self.out.lm_tokens.to(self.dev)[ci]
        r.nan(n == 0, "empty_text")
        r.rest(1 / self.out.perplexity.to(self.dev, self.dt)[ci])
        return r

    def _acc(self):
        idx, mask = self._per_step("gram_steps")
        return self.out.acceptability.to(self.dev, self.dt)[idx], mask

    @formula
    def grammar_step(self):
        r = self._new()
        acc, mask = self._acc()
        r.rest(_mean(acc, mask, 1))
        return r

    @formula
    def grammar_step_max(self):
        r = self._new()
        acc, mask = self._acc()
        r.rest(_min(acc, mask, 1))
        return r

    def compute(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return BATCHED[name](self).finish()


# ---------------------------------------------------------------------------- a block, group by group


def _pairs_of(nli_pairs: dict, rows: np.ndarray) -> dict:
    """The NLI pairs of ``rows`` (chains of the block), their owners renumbered within ``rows``.
    ``nli_pairs`` holds int64 arrays; a plan lists each chain's pairs together, in row order."""
    out = {}
    for kind, (owners, indices) in nli_pairs.items():
        lo = np.searchsorted(owners, rows, side="left")
        hi = np.searchsorted(owners, rows, side="right")
        take = _ranges(lo, hi - lo) if len(rows) else np.zeros(0, np.int64)
        out[kind] = (np.repeat(np.arange(len(rows)), hi - lo), indices[take])
    return out


def compute(refs, counts, out: PassOutputs, names, *, mode: str, device, dtype, nli_pairs: dict,
            budget: int | None, stats: dict | None = None):
    """Every score in ``names`` for every chain: ``(values, codes)``, (chains, scores) tensors
    on the host; the chains run in groups within ``budget`` bytes (None: all in one group,
    see ``roscoe.memory.groups``).  Chains over the budget even alone get the code
    ``over_memory``.  ``stats`` counts the groups, the chains run in chunks and those over
    the budget."""
    n = len(refs)
    # as arrays once, not once per group
    nli_pairs = {k: (np.asarray(o, dtype=np.int64), np.asarray(i, dtype=np.int64)) for k, (o, i) in nli_pairs.items()}
    out = out.on(device, dtype)  # once, not once per group
    values = torch.full((n, len(names)), float("nan"), dtype=torch.float64)
    codes = torch.full((n, len(names)), -1, dtype=torch.long)
    widths = {"sent_width": out.sentence_width(), "tok_width": out.token_width(),
              "itemsize": torch.finfo(dtype).bits // 8}
    if budget is None:
        plan, over = [(np.arange(n), None)], np.zeros(0, np.int64)
    else:
        plan, over = memory.groups(memory.chain_sizes(refs, counts, out.tokens), budget, **widths)
    codes[torch.from_numpy(over), :] = CODES.index("over_memory")
    if stats is not None:
        for key, k in (("groups", len(plan)), ("chunked", sum(c is not None for _, c in plan)), ("over", len(over))):
            stats[key] = stats.get(key, 0) + k
    for rows, chunk in plan:
        sub = rows.tolist()
        group = PaddedGroup([refs[i] for i in sub], [counts[i] for i in sub], out, mode, device, dtype,
                            _pairs_of(nli_pairs, rows), chunk=chunk)
        got = [group.compute(name) for name in names]
        idx = torch.from_numpy(rows)
        values[idx] = torch.stack([v.double() for v, _ in got], 1).cpu()
        codes[idx] = torch.stack([c for _, c in got], 1).cpu()
        del group, got
    return values, codes
