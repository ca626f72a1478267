"""The batched scorer: chains -> plan -> one pass per model -> formulas -> ScoreTable."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
import torch

from . import __version__, apply, diskcache, registry, splitters
from .cache import DEFAULT_SIZES, LRU
from .chains import DEFAULT_MAX_CHARS, DEFAULT_MAX_ITEMS, DEFAULT_SPLITTERS, Chain, coerce
from .formulas import MODES, PARLAI
from .memory import resolve_budget
from .models import ModelSet
from .models.encoders import Tokenized
from .outputs import PassOutputs
from .plan import Needs, Plan, drop_rule
from .registry import EMBEDDER, GRAMMAR, LM, NLI, TOKEN
from .table import ScoreTable, Signature

DEFAULT_BLOCK_SIZE = 256
# A block is also cut when its chains would form this many NLI pairs (before de-duplication),
# so a block of long chains stays within memory.
BLOCK_PAIRS = 1_000_000
_SIG_KEYS = {EMBEDDER: "emb", TOKEN: "tok", NLI: "nli", LM: "lm", GRAMMAR: "gram"}
_DISK_KINDS = {EMBEDDER: diskcache.VECTOR, TOKEN: diskcache.VECTOR, NLI: diskcache.NUMBER, LM: diskcache.PAIR,
               GRAMMAR: diskcache.NUMBER}


class Scorer:
    """Loads models once (lazily, only those the requested scores need) and scores chains.

    Model outputs are kept in a bounded LRU cache per slot (``cache_size``: items per slot,
    0 to turn it off), so texts repeated across blocks or calls are computed once.  With
    ``cache_dir`` they are also kept on disk (``roscoe.diskcache``) for every later run and
    process: a text any run has seen is never computed again.

    ``max_memory`` bounds the working memory that grows with the input (bytes or a size such
    as ``"2G"``; ``"auto"``: 1/8 of the free memory, at most 1 GiB on a CPU and 4 GiB on a GPU;
    None: no bound): a quarter for the token-vector cache, a quarter for a block's model
    outputs, half for the formula tensors (see ``roscoe.memory``).

    >>> scorer = Scorer(preset="lite")                      # doctest: +SKIP
    >>> table = scorer.score([{"id": 1, "context": "...", "steps": ["...", "..."]}])  # doctest: +SKIP
    """

    def __init__(self, preset="lite", *, mode="paper", device=None, dtype=None, batch_tokens=None,
                 block_size=DEFAULT_BLOCK_SIZE, allow_hub=None, split=None, models: ModelSet | None = None,
                 cache_size=None, batched=True, overlap=None, compile=False, max_items=DEFAULT_MAX_ITEMS,
                 max_chars=DEFAULT_MAX_CHARS, max_memory="auto", cache_dir=None, **model_overrides):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        self.mode = mode
        self.models = models or ModelSet(preset, device=device, dtype=dtype, batch_tokens=batch_tokens,
                                         allow_hub=allow_hub, compile=compile, **model_overrides)
        self.block_size = int(block_size)
        self.max_items, self.max_chars = max_items, max_chars  # None: no limit
        self.batched = batched  # False: the per-chain reference formulas (slower, same numbers)
        # Plan and tokenize block k+1 on a worker thread while block k runs: on by default on a
        # GPU, where the host work would otherwise leave the device idle; on a 2-core CPU the
        # worker only competes with the model's own threads.
        self.overlap = self.models.device.startswith("cuda") if overlap is None else bool(overlap)
        self.split = {**DEFAULT_SPLITTERS, **(split or {})}
        self.timings: dict[str, float] = {}
        self.failures: list[dict] = []  # chains a model or formula could not take: {"id", "error"}
        self.formula_stats: dict[str, int] = {}  # groups run, chains chunked, chains over the budget
        self.max_memory = None if max_memory is None else resolve_budget(max_memory, self.models.device)
        self.formula_budget = None if self.max_memory is None else self.max_memory // 2
        sizes = {**DEFAULT_SIZES, **({s: cache_size for s in DEFAULT_SIZES} if isinstance(cache_size, int)
                                     else (cache_size or {}))}
        self.caches = {slot: self._cache(slot, n) for slot, n in sizes.items()}
        self.disk = None if cache_dir is None else diskcache.DiskCache(cache_dir)
        self._spaces: dict[str, str] = {}

    # ------------------------------------------------------------------ public API

    def score(self, chains: Iterable, scores=None, *, details: bool = False) -> ScoreTable:
        """Score chains (``roscoe.Chain`` objects or dicts with id/context/steps/reference)."""
        names = registry.resolve(scores)
        chains = [coerce(c, i) for i, c in enumerate(chains)]
        _check_unique(chains)
        tables = list(self.score_blocks(self.blocks(chains, names), names, details=details))
        if not tables:
            return self._empty(names, details)
        return ScoreTable.concat(tables)

    def signature(self, scores=None) -> Signature:
        names = registry.resolve(scores)
        used = registry.slots_for(names)
        f = {"roscoe": __version__, "mode": self.mode, "preset": self.models.preset.label}
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
        f["dtype"] = self.models.precision
        if self.models.compile:  # fused kernels round differently, so the last digits can differ
            f["compile"] = "inductor"
        f["device"] = self.models.device.split(":")[0]
        import transformers

        f["torch"] = torch.__version__.split("+")[0]
        f["tf"] = transformers.__version__
        return Signature(f)

    def load(self, scores=None) -> None:
        """Load now every available model the scores use (otherwise each loads on first use)."""
        for slot in registry.slots_for(registry.resolve(scores)):
            if self.models.available(slot):
                self.models.get(slot)

    def _lookup(self, slot: str, items: list, compute) -> list:
        """Outputs for ``items`` from the memory cache, then the disk cache (``cache_dir``),
        then one ``compute(missing)`` call."""
        if self.disk is None:
            return self.caches[slot].lookup(items, compute)
        if slot not in self._spaces:
            d = {k: v for k, v in self.models.describe(slot, load=True).items() if k not in ("path", "source")}
            self._spaces[slot] = diskcache.space(slot=slot, model=d, precision=self.models.precision,
                                                 device=self.models.device.split(":")[0], compile=self.models.compile,
                                                 torch=torch.__version__)
        space, kind = self._spaces[slot], _DISK_KINDS[slot]
        return self.caches[slot].lookup(items, lambda missing: self.disk.lookup(space, kind, missing, compute))

    def _cache(self, slot: str, max_items: int) -> LRU:
        if slot != TOKEN or self.max_memory is None:
            return LRU(max_items)
        return LRU(max_items, max_bytes=self.max_memory // 4, size=lambda m: m.nelement() * m.element_size())

    def clear_cache(self) -> None:
        for slot, cache in self.caches.items():
            self.caches[slot] = self._cache(slot, cache.max_items)

    def cache_stats(self) -> dict:
        stats = {slot: c.stats() for slot, c in self.caches.items()}
        if self.disk is not None:
            stats["disk"] = self.disk.stats()
        return stats

    def too_long(self, chain: Chain) -> bool:
        """Whether the chain is over the size limits (it is then not scored: NaN ``too_long``)."""
        fields = [chain.context, chain.steps, chain.reference or []]
        return ((self.max_items is not None and max(map(len, fields)) > self.max_items)
                or (self.max_chars is not None and sum(len(s) for f in fields for s in f) > self.max_chars))

    def blocks(self, chains: Iterable[Chain], scores=None) -> Iterator[list[Chain]]:
        """Chains in blocks of ``block_size``, cut earlier where a block's NLI pairs would pass
        ``BLOCK_PAIRS`` or the estimated size of its model outputs a quarter of ``max_memory``
        (a chain over the size limits counts for nothing: it gets no model work)."""
        out_budget = None if self.max_memory is None else self.max_memory // 4
        per_char = self._output_bytes_per_char(registry.resolve(scores)) if out_budget is not None else 0
        block, pairs, size = [], 0, 0
        for c in chains:
            long = self.too_long(c)
            cost = 0 if long else len(c.steps) * (len(c.steps) + len(c.context))
            est = 0 if long or not per_char else per_char * sum(len(s) + 4 for f in (c.steps, c.context) for s in f)
            if block and (len(block) >= self.block_size or pairs + cost > BLOCK_PAIRS
                          or (out_budget is not None and size + est > out_budget)):
                yield block
                block, pairs, size = [], 0, 0
            block.append(c)
            pairs += cost
            size += est
        if block:
            yield block

    def _output_bytes_per_char(self, names) -> int:
        """Bytes of token vectors per character of text, for sizing blocks before any text is
        tokenized.  Assumes a token per two characters: English averages four or more, so only
        text of one token a character (CJK) is underestimated, by half."""
        if not any(TOKEN in registry.SCORES[n].slots for n in names) or not self.models.available(TOKEN):
            return 0
        return self.models.hidden_size(TOKEN) * 4 // 2

    def score_blocks(self, blocks: Iterable[list[Chain]], names, *, details=False) -> Iterator[ScoreTable]:
        """One table per block, in order.  With ``overlap`` the next block is taken from
        ``blocks``, planned and tokenized on a worker thread while this one is scored.

        A block whose scoring raises is scored again in halves, down to single chains, so a
        chain that a model or formula cannot take gets NaN ``model_error`` (and an entry in
        ``self.failures``) while the rest of its block is scored.  When every chain of the
        block fails alone the failure is not the chains' and is raised."""
        names = tuple(names)
        if not self.overlap:
            for block in blocks:
                yield self._isolated(block, names, details)
            return
        self.load(names)  # here, never from two threads at once
        from concurrent.futures import ThreadPoolExecutor

        it = iter(blocks)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="roscoe-prepare") as pool:
            block = next(it, None)
            pending = None if block is None else pool.submit(self.prepare, block, names, tokenize=True)
            while pending is not None:
                try:
                    ready = pending.result()
                except Exception:  # noqa: BLE001 - scored again below, where a bad chain is found
                    ready = None
                following = next(it, None)
                pending = None if following is None else pool.submit(self.prepare, following, names, tokenize=True)
                yield self._isolated(block, names, details, ready)
                block = following

    def _isolated(self, block: list[Chain], names, details, prepared: Prepared | None = None) -> ScoreTable:
        try:
            return self.score_block(block, names, details=details, prepared=prepared)
        except Exception:  # noqa: BLE001 - narrowed down to the chains below
            if len(block) < 2:
                raise
            half = len(block) // 2
            parts = self._split_scores(block[:half], names, details) + self._split_scores(block[half:], names, details)
            if not any(isinstance(t, ScoreTable) for t in parts):
                raise
        return ScoreTable.concat([t if isinstance(t, ScoreTable) else self._failed(c, t, names, details)
                                  for c, t in zip(block, parts)])

    def _split_scores(self, block: list[Chain], names, details) -> list[ScoreTable | str]:
        """Per chain of ``block`` a one-row table, or the error it fails with alone."""
        try:
            table = self.score_block(block, names, details=details)
        except Exception as err:  # noqa: BLE001
            if len(block) == 1:
                return [f"{type(err).__name__}: {err}"]
            half = len(block) // 2
            return self._split_scores(block[:half], names, details) + self._split_scores(block[half:], names, details)
        return [table.take([row]) for row in range(len(block))]

    def _failed(self, chain: Chain, error: str, names, details) -> ScoreTable:
        self.failures.append({"id": chain.id, "error": error})
        warnings.warn(f"chain {chain.id!r}: {error}; its scores are NaN model_error", RuntimeWarning, stacklevel=4)
        return ScoreTable([chain.id], names, np.full((1, len(names)), np.nan), [{n: "model_error" for n in names}],
                          [dict(chain.extra)], [{}] if details else None)

    # ------------------------------------------------------------------ one block

    def prepare(self, chains: list[Chain], names, *, tokenize: bool = False) -> Prepared:
        """The block's work plan; with ``tokenize``, every pass's unique texts tokenized too
        (all of them: which ones the output cache will answer is known only when the pass runs)."""
        t0 = time.perf_counter()
        needs = Needs.of(tuple(names), self.models.available)
        admitted = self._admitted(chains)
        texts = self._token_texts(admitted) if needs.tokens else None
        plan = Plan(admitted, needs, self.mode, None if texts is None else texts.length)
        ahead = {}
        if texts is not None:  # tokenized already for the widths: the pass reads the same ids
            ahead[TOKEN] = Tokenized(plan.tokens.items, self.models.get(TOKEN).tokenize(plan.tokens.items, texts))
        if tokenize:
            work = {EMBEDDER: plan.sentences.items, TOKEN: plan.tokens.items,
                    NLI: plan.pairs.items, LM: plan.lm_texts.items, GRAMMAR: plan.grammar_texts.items}
            ahead.update({slot: Tokenized.by(self.models.get(slot), items) for slot, items in work.items()
                          if items and slot not in ahead})
        self._tick("prepare" if tokenize else "plan", t0)
        return Prepared(plan, ahead)

    def score_block(self, chains: list[Chain], names, *, details=False, prepared: Prepared | None = None) -> ScoreTable:
        names = tuple(names)
        if prepared is None:
            prepared = self.prepare(chains, names)
        plan = prepared.plan
        out = self._run_models(plan, prepared.ahead)
        t0 = time.perf_counter()
        work = plan.chains
        shared = {"mode": self.mode, "available": self.models.available}
        if self.batched:
            values, reasons = apply.batched_scores(work, plan, out, names, device=self.models.device,
                                                   budget=self.formula_budget, stats=self.formula_stats, **shared)
        else:
            values, reasons = apply.per_chain_scores(work, plan, out, names, **shared)
        for row, (chain, admitted) in enumerate(zip(chains, work)):
            if admitted is not chain:
                values[row] = np.nan
                reasons[row] = {n: "too_long" for n in names}
        self._tick("formulas", t0)
        chain_details = None
        if details:  # per-step diagnostics come from the readable per-chain formulas
            t0 = time.perf_counter()
            chain_details = apply.details(work, plan, out, names, **shared)
            self._tick("details", t0)
        return ScoreTable([c.id for c in chains], names, values, reasons, [dict(c.extra) for c in chains],
                          chain_details, stats={"plan": plan.sizes()})

    def _token_texts(self, chains: list[Chain]) -> Tokenized | None:
        """parlai mode: every step and context sentence tokenized by the token model, whose
        counts set the width each chain's side is padded to; paper mode: None."""
        if self.mode != PARLAI:
            return None
        return self.models.get(TOKEN).tokenize_texts([t for c in chains for t in (*c.steps, *c.context)])

    def _admitted(self, chains: list[Chain]) -> list[Chain]:
        """The chains the models work on: one over the limits is replaced by a chain without
        text (no model work), and the block's rows for it are set to ``too_long``."""
        return [Chain(c.id, []) if self.too_long(c) else c for c in chains]

    def _run_models(self, plan: Plan, ahead: dict) -> PassOutputs:
        """One pass per model over the block's unique work, minus what the cache already has.
        ``ahead``: token ids per slot worked out beforehand (see ``prepare``)."""
        out = PassOutputs()
        drop = drop_rule(self.mode)
        from_embedder: dict = {}  # text -> token vectors that the sentence pass gave on the way
        if len(plan.sentences):
            t0 = time.perf_counter()
            emb = self.models.get(EMBEDDER)
            share = len(plan.tokens) > 0 and self.models.shares_embedder()
            want = {item[0] for item in plan.tokens.items if plan.runs_alone(item)} if share else frozenset()
            limit = self.models.get(TOKEN).max_length if share else None

            def embed(texts):
                vectors, mats = emb.encode_with_tokens(texts, ahead.get(EMBEDDER), want=want, drop=drop, limit=limit)
                from_embedder.update(mats)
                return list(vectors)

            out.sentences = torch.stack(self._lookup(EMBEDDER, plan.sentences.items, embed))  # fp32, widened later
            self._tick("embed", t0)
        if len(plan.tokens):
            t0 = time.perf_counter()
            tok = self.models.get(TOKEN)

            def shared(item):
                return item[0] in from_embedder and plan.runs_alone(item)

            def token_vectors(items):
                todo = [item for item in items if not shared(item)]
                fresh = dict(zip(todo, tok.encode_items(todo, ahead=ahead.get(TOKEN))))
                tok.stats.shared += len(items) - len(todo)
                return [fresh[item] if item in fresh else from_embedder[item[0]] for item in items]

            out.tokens = self._lookup(TOKEN, plan.tokens.items, token_vectors)
            self._tick("token_embed", t0)
        if len(plan.pairs):
            t0 = time.perf_counter()
            nli = self.models.get(NLI)
            out.contradiction = torch.tensor(self._lookup(NLI, plan.pairs.items, lambda ps: nli.p_contradiction(
                ps, ahead=ahead.get(NLI)).tolist()), dtype=torch.float64)
            self._tick("nli", t0)
        if len(plan.lm_texts):
            t0 = time.perf_counter()
            lm = self.models.get(LM)

            def nll(texts):
                s, n = lm.nll(texts, ahead=ahead.get(LM))
                return list(zip(s.tolist(), n.tolist()))

            pairs = self._lookup(LM, plan.lm_texts.items, nll)
            s = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
            n = torch.tensor([p[1] for p in pairs], dtype=torch.int64)
            out.perplexity = torch.exp(s / n.clamp(min=1).double())
            out.lm_tokens = n
            self._tick("lm", t0)
        if len(plan.grammar_texts):
            t0 = time.perf_counter()
            gram = self.models.get(GRAMMAR)
            out.acceptability = torch.tensor(self._lookup(GRAMMAR, plan.grammar_texts.items, lambda ts: gram.p_acceptable(
                ts, ahead=ahead.get(GRAMMAR)).tolist()), dtype=torch.float64)
            self._tick("grammar", t0)
        return out

    def _tick(self, stage: str, t0: float):
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0

    def _empty(self, names, details):
        return ScoreTable([], names, np.zeros((0, len(names))), [], [], [] if details else None)


@dataclass
class Prepared:
    """A block made ready before its model passes: its work plan and (when prepared ahead)
    every pass's texts tokenized, per slot."""

    plan: Plan
    ahead: dict = field(default_factory=dict)


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
