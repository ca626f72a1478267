"""The batched scorer: chains -> plan -> one pass per model -> formulas -> ScoreTable."""
from __future__ import annotations

import math
import time
from typing import Iterable

import numpy as np
import torch

from . import __version__, registry, splitters
from .cache import DEFAULT_SIZES, LRU
from .chains import DEFAULT_SPLITTERS, Chain, coerce
from .formulas import FORMULAS, MODES, PARLAI, ChainInputs
from .models import DTYPE_NAMES, ModelSet
from .plan import Needs, Plan
from .registry import EMBEDDER, GRAMMAR, LM, NLI, TOKEN
from .table import ScoreTable, Signature

DEFAULT_BLOCK_SIZE = 256
_SIG_KEYS = {EMBEDDER: "emb", TOKEN: "tok", NLI: "nli", LM: "lm", GRAMMAR: "gram"}


class Scorer:
    """Loads models once (lazily, only those the requested scores need) and scores chains.

    Model outputs are kept in a bounded LRU cache per slot (``cache_size``: items per slot,
    0 to turn it off), so texts repeated across blocks or calls are computed once.

    >>> scorer = Scorer(preset="lite")                      # doctest: +SKIP
    >>> table = scorer.score([{"id": 1, "context": "...", "steps": ["...", "..."]}])  # doctest: +SKIP
    """

    def __init__(self, preset="lite", *, mode="paper", device=None, dtype=None, batch_tokens=None,
                 block_size=DEFAULT_BLOCK_SIZE, allow_hub=None, split=None, models: ModelSet | None = None,
                 cache_size=None, batched=True, **model_overrides):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        self.mode = mode
        self.models = models or ModelSet(preset, device=device, dtype=dtype, batch_tokens=batch_tokens,
                                         allow_hub=allow_hub, **model_overrides)
        self.block_size = int(block_size)
        self.batched = batched  # False: the per-chain reference formulas (slower, same numbers)
        self.split = {**DEFAULT_SPLITTERS, **(split or {})}
        self.timings: dict[str, float] = {}
        sizes = {**DEFAULT_SIZES, **({s: cache_size for s in DEFAULT_SIZES} if isinstance(cache_size, int)
                                     else (cache_size or {}))}
        self.caches = {slot: LRU(n) for slot, n in sizes.items()}

    # ------------------------------------------------------------------ public API

    def score(self, chains: Iterable, scores=None, *, details: bool = False) -> ScoreTable:
        """Score chains (``roscoe.Chain`` objects or dicts with id/context/steps/reference)."""
        names = registry.resolve(scores)
        chains = [coerce(c, i) for i, c in enumerate(chains)]
        _check_unique(chains)
        tables = [self.score_block(chains[a: a + self.block_size], names, details=details)
                  for a in range(0, len(chains), self.block_size)]
        if not tables:
            return self._empty(names, details)
        return ScoreTable.concat(tables)

    def signature(self, scores=None) -> Signature:
        names = registry.resolve(scores)
        used = registry.slots_for(names)
        f = {"roscoe": __version__, "mode": self.mode, "preset": self.models.preset.name}
        for slot, key in _SIG_KEYS.items():
            if slot not in used:
                continue
            if not self.models.available(slot):
                f[key] = "none"
                continue
            d = self.models.describe(slot, load=True)
            extra = {EMBEDDER: lambda: f"+{d['pooling']}+{d['max_length']}",
                     TOKEN: lambda: f"+{d['max_length']}",
                     NLI: lambda: f"+con{d['contradiction_index']}({d['index_from']})+{d['max_length']}",
                     LM: lambda: f"+bos{d['bos_id']}+w{d['window']}" + ("+prefix" if d["add_prefix_space"] else ""),
                     GRAMMAR: lambda: f"+acc{d['acceptable_index']}({d['index_from']})+{d['max_length']}"}[slot]()
            f[key] = f"{d['model']}@{d['hash']}{extra}"
        f["split"] = ",".join(f"{k}={v}" for k, v in self.split.items()) + f"({splitters.punkt_version()})"
        f["dtype"] = DTYPE_NAMES.get(self.models.dtype, str(self.models.dtype))
        f["device"] = self.models.device.split(":")[0]
        import transformers

        f["torch"] = torch.__version__.split("+")[0]
        f["tf"] = transformers.__version__
        return Signature(f)

    def clear_cache(self) -> None:
        for slot, cache in self.caches.items():
            self.caches[slot] = LRU(cache.max_items)

    def cache_stats(self) -> dict:
        return {slot: c.stats() for slot, c in self.caches.items()}

    # ------------------------------------------------------------------ one block

    def score_block(self, chains: list[Chain], names, *, details=False) -> ScoreTable:
        names = tuple(names)
        needs = Needs.of(names, self.models.available)
        t0 = time.perf_counter()
        plan = Plan(chains, needs, self.mode)
        self._tick("plan", t0)
        out = self._run_models(plan, needs)
        t0 = time.perf_counter()
        if self.batched:
            values, reasons = self._formulas_batched(chains, plan, out, names)
        else:
            values, reasons = self._formulas_per_chain(chains, plan, out, names)
        self._tick("formulas", t0)
        chain_details = None
        if details:  # per-step diagnostics come from the readable per-chain formulas
            t0 = time.perf_counter()
            chain_details = []
            for chain, refs in zip(chains, plan.refs):
                ci = self._inputs(chain, refs, out)
                for name in names:
                    if ci.n_steps and all(self.models.available(s) for s in registry.SCORES[name].slots):
                        FORMULAS[name](ci, self.mode)
                chain_details.append(ci.details)
            self._tick("details", t0)
        return ScoreTable([c.id for c in chains], names, values, reasons, [dict(c.extra) for c in chains],
                          chain_details, stats={"plan": plan.sizes()})

    def _formulas_per_chain(self, chains, plan, out, names):
        values = np.full((len(chains), len(names)), np.nan)
        reasons: list[dict] = []
        for row, (chain, refs) in enumerate(zip(chains, plan.refs)):
            ci = self._inputs(chain, refs, out)
            why: dict[str, str] = {}
            for k, name in enumerate(names):
                value, reason = self._one(name, ci)
                values[row, k] = value
                if reason is not None:
                    why[name] = reason
            reasons.append(why)
        return values, reasons

    def _formulas_batched(self, chains, plan, out, names):
        from .batched import CODES, Block

        n = len(chains)
        values = np.full((n, len(names)), np.nan)
        codes = np.full((n, len(names)), -1)
        empty = np.array([len(c.steps) == 0 for c in chains])
        device = torch.device(self.models.device)
        dtype = torch.float64 if device.type == "cpu" else torch.float32  # reductions: fp64 on CPU, fp32 on GPU
        counts = [(len(c.steps), len(c.context), None if c.reference is None else len(c.reference)) for c in chains]
        block = Block(plan.refs, counts, out, self.mode, device, dtype) if not empty.all() else None
        for k, name in enumerate(names):
            if not all(self.models.available(s) for s in registry.SCORES[name].slots):
                codes[:, k] = CODES.index("model_unavailable")
            elif block is not None:
                v, c = block.compute(name)
                values[:, k] = v.double().cpu().numpy()
                codes[:, k] = c.cpu().numpy()
            codes[empty, k] = CODES.index("empty_hypothesis")
        values[codes != -1] = np.nan
        reasons = [{names[k]: CODES[codes[r, k]] for k in np.flatnonzero(codes[r] != -1)} for r in range(n)]
        return values, reasons

    def _one(self, name: str, ci: ChainInputs):
        if ci.n_steps == 0:
            return math.nan, "empty_hypothesis"
        if not all(self.models.available(s) for s in registry.SCORES[name].slots):
            return math.nan, "model_unavailable"
        value, reason = FORMULAS[name](ci, self.mode)
        return value, reason

    def _run_models(self, plan: Plan, needs: Needs) -> dict:
        """One pass per model over the block's unique work, minus what the cache already has."""
        out = {}
        c = self.caches
        if len(plan.sentences):
            t0 = time.perf_counter()
            emb = self.models.get(EMBEDDER)
            rows = c[EMBEDDER].lookup(plan.sentences.items, lambda texts: list(emb.encode(texts)))
            out["sent"] = torch.stack(rows).double()
            self._tick("embed", t0)
        if len(plan.tokens):
            t0 = time.perf_counter()
            drop = "ends" if self.mode == PARLAI else "special"
            tok = self.models.get(TOKEN)
            keys = [(t, drop) for t in plan.tokens.items]
            mats = c[TOKEN].lookup(keys, lambda ks: tok.encode([t for t, _ in ks], drop=drop))
            out["tok"] = [m.double() for m in mats]
            self._tick("token_embed", t0)
        if len(plan.pairs):
            t0 = time.perf_counter()
            nli = self.models.get(NLI)
            out["con"] = torch.tensor(c[NLI].lookup(plan.pairs.items, lambda ps: nli.p_contradiction(ps).tolist()),
                                      dtype=torch.float64)
            self._tick("nli", t0)
        if len(plan.lm_texts):
            t0 = time.perf_counter()
            lm = self.models.get(LM)

            def nll(texts):
                s, n = lm.nll(texts)
                return list(zip(s.tolist(), n.tolist()))

            pairs = c[LM].lookup(plan.lm_texts.items, nll)
            s = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
            n = torch.tensor([p[1] for p in pairs], dtype=torch.int64)
            out["ppl"] = torch.exp(s / n.clamp(min=1).double())
            out["lm_n"] = n
            self._tick("lm", t0)
        if len(plan.grammar_texts):
            t0 = time.perf_counter()
            gram = self.models.get(GRAMMAR)
            out["acc"] = torch.tensor(c[GRAMMAR].lookup(plan.grammar_texts.items,
                                                        lambda ts: gram.p_acceptable(ts).tolist()), dtype=torch.float64)
            self._tick("grammar", t0)
        return out

    @staticmethod
    def _inputs(chain: Chain, r, out: dict) -> ChainInputs:
        ci = ChainInputs(len(chain.steps), len(chain.context),
                         None if chain.reference is None else len(chain.reference))
        if "sent" in out:
            sent = out["sent"]
            if r.steps:
                ci.steps = sent[r.steps]
                ci.context = sent[r.context] if r.context else sent.new_zeros(0, sent.shape[1])
            if r.reference is not None:
                ci.reference = sent[r.reference] if r.reference else sent.new_zeros(0, sent.shape[1])
            if r.chain_steps is not None:
                ci.chain_steps = sent[r.chain_steps]
                ci.chain_context = sent[r.chain_context]
                if r.chain_reference is not None:
                    ci.chain_reference = sent[r.chain_reference]
        if "tok" in out and r.tok_steps:
            ci.step_tokens = [out["tok"][i] for i in r.tok_steps]
            ci.context_tokens = [out["tok"][i] for i in r.tok_context]
        if "con" in out:
            con = out["con"]
            if r.nli_src is not None and r.nli_src:
                ci.con_src = con[torch.tensor(r.nli_src)]
            if r.nli_steps is not None:
                n = ci.n_steps
                m = torch.zeros(n, n, dtype=con.dtype)
                for (a, b), p in r.nli_steps.items():
                    m[a, b] = con[p]
                ci.con_steps = m
        if "ppl" in out and r.lm_steps:
            ci.step_ppl = out["ppl"][r.lm_steps]
            ci.step_lm_tokens = out["lm_n"][r.lm_steps]
            ci.chain_ppl = float(out["ppl"][r.lm_chain])
            ci.chain_lm_tokens = int(out["lm_n"][r.lm_chain])
        if "acc" in out and r.gram_steps:
            ci.step_acc = out["acc"][r.gram_steps]
        return ci

    def _tick(self, stage: str, t0: float):
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0

    def _empty(self, names, details):
        return ScoreTable([], names, np.zeros((0, len(names))), [], [], [] if details else None)


def _check_unique(chains: list[Chain]):
    seen: set = set()
    for i, c in enumerate(chains):
        key = str(c.id)
        if key in seen:
            raise ValueError(f"chain {i}: duplicate id {c.id!r}")
        seen.add(key)


def score(chains, scores=None, *, preset="lite", mode="paper", details=False, **kwargs) -> ScoreTable:
    """One call: build a Scorer, score the chains, return the table (with its signature)."""
    scorer = Scorer(preset, mode=mode, **kwargs)
    table = scorer.score(chains, scores, details=details)
    table.signature = scorer.signature(scores)
    return table
