"""The work plan of a block of chains: de-duplicated texts and pairs per model pass.

Each chain keeps indices into the unique lists, so the same context sentence in 500
chains is embedded once and the results are scattered back by index.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .chains import Chain
from .formulas import PARLAI
from .registry import READS, SCORES


class Interner:
    """Unique items in first-seen order, with the index of each."""

    def __init__(self):
        self.index: dict = {}
        self.items: list = []

    def __call__(self, item) -> int:
        i = self.index.get(item)
        if i is None:
            i = self.index[item] = len(self.items)
            self.items.append(item)
        return i

    def __len__(self):
        return len(self.items)


def joined(items: list[str]) -> str:
    """E(X): the items as one string, joined with ". " (both modes keep the reference's joiner)."""
    return ". ".join(items)


@dataclass
class ChainRefs:
    steps: list[int] = field(default_factory=list)
    context: list[int] = field(default_factory=list)
    reference: list[int] | None = None
    chain_steps: int | None = None
    chain_context: int | None = None
    chain_reference: int | None = None
    tok_steps: list[int] = field(default_factory=list)
    tok_context: list[int] = field(default_factory=list)
    nli_context: list[list[int]] | None = None  # [t][i]
    nli_steps: dict | None = None  # (a, b) -> pair index
    lm_steps: list[int] = field(default_factory=list)
    lm_chain: int | None = None
    gram_steps: list[int] = field(default_factory=list)


@dataclass
class Needs:
    """The work the requested scores read (``ScoreInfo.reads``), where the preset has the
    model for it, and whether any of them reads the reference."""

    sentences: bool = False
    chain_texts: bool = False
    tokens: bool = False
    nli_context: bool = False
    nli_steps: bool = False
    perplexity: bool = False
    acceptability: bool = False
    reference: bool = False

    @classmethod
    def of(cls, names, available) -> "Needs":
        infos = [SCORES[n] for n in names]
        reads = {r for info in infos for r in info.reads if available(READS[r])}
        return cls(**{r: True for r in reads}, reference=any(info.needs_reference for info in infos))


def drop_rule(mode: str) -> str:
    """Which token positions the token embedder leaves out: the reference drops the first and
    last, the paper mode the tokenizer's special tokens."""
    return "ends" if mode == PARLAI else "special"


class Plan:
    """Flattens a block of chains into unique work lists, one per model pass.

    Token-pass items are ``(text, drop rule, width)``.  In paper mode the width is None: each
    text runs alone.  In parlai mode ``token_length`` (text -> its token count) is given and
    the width is the longest text of the chain's steps (or of its context sentences): the
    reference runs each side of a chain as one padded batch without an attention mask, so a
    text's vectors depend on that width (see ``TokenEmbedder``).
    """

    def __init__(self, chains: list[Chain], needs: Needs, mode: str, token_length=None):
        self.chains = chains
        self.token_length = token_length
        drop = drop_rule(mode)
        self.sentences, self.tokens, self.pairs = Interner(), Interner(), Interner()
        self.lm_texts, self.grammar_texts = Interner(), Interner()
        self.refs: list[ChainRefs] = []
        # every chain's NLI pairs flat, with the chain (row in the block) each belongs to, so the
        # block formulas reduce them with one scatter instead of walking chains and pairs
        self.nli_pairs = {"context": ([], []), "steps": ([], [])}
        for row, c in enumerate(chains):
            r = ChainRefs()
            self.refs.append(r)
            if not c.steps:
                continue  # every score is NaN empty_hypothesis: no model work
            has_ref = needs.reference and c.reference is not None
            if needs.sentences:
                r.steps = [self.sentences(s) for s in c.steps]
                r.context = [self.sentences(s) for s in c.context]
                if has_ref:
                    r.reference = [self.sentences(s) for s in c.reference]
            if needs.chain_texts:
                r.chain_steps = self.sentences(joined(c.steps))
                r.chain_context = self.sentences(joined(c.context))
                if has_ref:
                    r.chain_reference = self.sentences(joined(c.reference))
            if needs.tokens:
                r.tok_steps = self._token_items(c.steps, drop)
                r.tok_context = self._token_items(c.context, drop)
            if needs.nli_context:
                r.nli_context = [[self.pairs((s, h)) for h in c.steps] for s in c.context]
                self._flat("context", row, [i for per_sentence in r.nli_context for i in per_sentence])
            if needs.nli_steps:
                n = len(c.steps)
                if mode == PARLAI:
                    ab = [(a, b) for a in range(n) for b in range(n)]
                else:
                    ab = [(a, b) for b in range(n) for a in range(b)]
                r.nli_steps = {(a, b): self.pairs((c.steps[a], c.steps[b])) for a, b in ab}
                self._flat("steps", row, list(r.nli_steps.values()))
            if needs.perplexity:
                r.lm_steps = [self.lm_texts(s) for s in c.steps]
                r.lm_chain = self.lm_texts(" ".join(c.steps))
            if needs.acceptability:
                r.gram_steps = [self.grammar_texts(s) for s in c.steps]

    def _token_items(self, texts: list[str], drop: str) -> list[int]:
        width = max(map(self.token_length, texts), default=0) if self.token_length else None
        return [self.tokens((t, drop, width)) for t in texts]

    def runs_alone(self, item) -> bool:
        """Whether a token item's vectors are those of its text run alone (no padding attended
        to), so the sentence embedder's pass over the same model can give them."""
        text, _, width = item
        return width is None or width == self.token_length(text)

    def _flat(self, kind: str, row: int, pair_indices: list[int]) -> None:
        owners, indices = self.nli_pairs[kind]
        owners.extend([row] * len(pair_indices))
        indices.extend(pair_indices)

    def sizes(self) -> dict:
        return {"sentences": len(self.sentences), "token_texts": len(self.tokens), "nli_pairs": len(self.pairs),
                "lm_texts": len(self.lm_texts), "grammar_texts": len(self.grammar_texts)}
