"""Encoder-side model passes: sentence embeddings, token vectors, NLI and grammar classifiers.

Each wrapper takes a list of unique texts (or text pairs), runs them in length-sorted,
token-budgeted batches and returns results in input order.  Outputs that feed formulas
(normalised vectors, softmax probabilities) are computed in fp32 whatever the model dtype.

Length: the four encoder kinds share one batching, tokenizing and compiling base
(``_Encoder``); each subclass is short, and keeping them beside the base keeps that contract
in one place.
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import torch

from .batching import gather_to_host, run_budgeted
from .deberta import lean_relative_attention
from .source import ModelSource


class ModelConfigError(ValueError):
    """A model's configuration does not say what a slot needs (a label index, a pooler...)."""


def _quiet_transformers():
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()


@dataclass
class PassStats:
    texts: int = 0
    tokens: int = 0
    batches: int = 0
    truncated: int = 0
    shared: int = 0  # texts read off another text's pass (an LM prefix), not run themselves
    backoffs: int = 0  # batches that ran out of memory and were split (the budget went down)
    seconds: float = 0.0

    def as_dict(self):
        return dict(self.__dict__)


class Tokenized:
    """Token ids of a pass's items, worked out before the pass (while the device runs the
    previous block); ``take`` gives the pass the rows of the items it still has to compute,
    which may be fewer than were tokenized when the output cache already has some."""

    def __init__(self, items: list, columns: dict[str, list]):
        self._row = {item: i for i, item in enumerate(items)}
        self.columns = columns

    @classmethod
    def by(cls, model, items: list) -> Tokenized:
        """``items`` tokenized now by ``model`` (any pass wrapper with a ``tokenize``)."""
        return cls(items, model.tokenize(items))

    def __len__(self):
        return len(self._row)

    def length(self, item) -> int:
        """How many token ids ``item`` has (special tokens included)."""
        return len(self.columns["input_ids"][self._row[item]])

    def take(self, items) -> dict[str, list] | None:
        """The columns for ``items`` in that order, or None if any of them was not tokenized."""
        rows = [self._row.get(x) for x in items]
        if any(r is None for r in rows):
            return None
        return {k: [col[r] for r in rows] for k, col in self.columns.items()}


def token_columns(model, items, ahead: Tokenized | None) -> dict[str, list]:
    """``items``' token columns: from ``ahead`` when it has them all, else tokenized now."""
    cols = ahead.take(items) if ahead is not None else None
    return cols if cols is not None else model.tokenize(items)


def compile_unavailable(device: str) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here, or None: TorchInductor writes C++
    for a CPU and Triton kernels for a GPU, and a missing toolchain would otherwise surface as
    an error in the middle of the first batch."""
    import importlib.util
    import os
    import shutil

    if device.startswith("cuda"):
        return None if importlib.util.find_spec("triton") else "the triton package is not installed"
    cxx = os.environ.get("CXX") or "c++"
    return None if shutil.which(cxx) or shutil.which("g++") else f"no C++ compiler ({cxx}) on PATH"


def compile_in_place(module: torch.nn.Module) -> None:
    """Compile ``module``'s forward with TorchInductor, in place and once (two slots can hold
    one model).  Dynamic shapes: batches differ in rows and length, and a graph per shape would
    recompile on nearly every batch."""
    if not getattr(module, "_roscoe_compiled", False):
        module.compile(dynamic=True)
        module._roscoe_compiled = True


def exact_lengths(device: torch.device) -> bool:
    """Whether an encoder batches only texts of one token length (``batching.token_batches``),
    so padding never enters a text's bidirectional attention: on a CPU, at the price of more,
    smaller batches (the 200 GSM8K chains' 13 reference-free scores took 149.1 s against
    140.7 s with mixed lengths, part of that run-to-run noise).  A GPU keeps
    mixed-length batches, whose fewer, larger launches it needs; its default half precision
    rounds far more coarsely than batch composition does."""
    return device.type == "cpu"


def amp(device: torch.device, dtype: torch.dtype | None):
    """torch.autocast to ``dtype`` on ``device``, or nothing when ``dtype`` is None."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _in_input_order(results, n: int) -> torch.Tensor:
    """Per-row batch results, gathered to the host with one copy, in input order."""
    if not results:
        return torch.empty(0)
    order, values = gather_to_host(results)
    out = torch.empty((n, *values.shape[1:]), dtype=values.dtype)
    out[order] = values
    return out


class _Encoder:
    """Shared loading and batching for encoder models."""

    slot = "encoder"
    auto_class = "AutoModel"

    def __init__(self, source: ModelSource, *, device="cpu", dtype=torch.float32, max_length=None,
                 batch_tokens=8192, autocast=None):
        import transformers

        _quiet_transformers()
        self.source = source
        self.device = torch.device(device)
        self.dtype = dtype
        self.autocast = autocast  # a half type: matrix products in it under torch.autocast
        self.batch_tokens = batch_tokens
        self.exact_lengths = exact_lengths(self.device)
        from . import ensemble  # noqa: F401  (registers the ensemble classifier with the Auto classes)

        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(source.path))
        cls = getattr(transformers, self.auto_class)
        self.model, info = cls.from_pretrained(str(source.path), dtype=dtype, output_loading_info=True)
        self.loading_info = info
        self.model.to(self.device).eval()
        lean_relative_attention(self.model)  # DeBERTa-v2/v3 only; the same sums, less traffic
        self.max_length = self._limit(max_length)
        self.stats = PassStats()

    @classmethod
    def reusing(cls, other: _Encoder, *, max_length=None, batch_tokens=None):
        """This kind of pass over ``other``'s already loaded model (two slots that name the same
        checkpoint hold one copy of its weights)."""
        import transformers

        self = cls.__new__(cls)
        self.source, self.device, self.dtype, self.autocast = other.source, other.device, other.dtype, other.autocast
        self.batch_tokens = batch_tokens or other.batch_tokens
        self.exact_lengths = other.exact_lengths
        self.model, self.loading_info = other.model, other.loading_info
        # A tokenizer of its own: the two slots truncate at different lengths, and a shared Rust
        # tokenizer re-set for each call could be mid-change on the worker thread (overlap)
        # while the scoring thread reads it.
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(other.source.path))
        self.max_length = self._limit(max_length)
        self.stats = PassStats()
        return self

    def _limit(self, max_length) -> int:
        limit = max_length or getattr(self.tokenizer, "model_max_length", None)
        positional = getattr(self.model.config, "max_position_embeddings", 512)
        if not limit or limit > 100_000:
            limit = positional
        return int(min(limit, positional))

    def _tokenize(self, texts, pair=None) -> dict[str, list]:
        # split_special_tokens: a literal "[SEP]" or "</s>" in user text stays plain text, so an
        # input cannot add a segment boundary to an NLI pair or a token the token pass drops
        kw = dict(truncation=True if pair is None else "longest_first", max_length=self.max_length,
                  split_special_tokens=True)
        enc = self.tokenizer(texts, pair, **kw) if pair is not None else self.tokenizer(texts, **kw)
        return {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc}

    def tokenize(self, items: list) -> dict[str, list]:
        """Token-id columns (``input_ids``...) of the items this model's pass takes."""
        return self._tokenize(items)

    def _prepare(self, items, ahead: Tokenized | None = None):
        """The items' token columns (from ``ahead`` when it has them all) and lengths; counted."""
        cols = token_columns(self, items, ahead)
        lengths = [len(ids) for ids in cols["input_ids"]]
        self.stats.truncated += sum(n >= self.max_length for n in lengths)
        self.stats.texts += len(lengths)
        self.stats.tokens += sum(lengths)
        return cols, lengths

    def _batches(self, enc, lengths, fn, *, per_row=True, pad_to: int | None = None):
        """Run ``fn(idx, batch)`` on each right-padded, length-sorted, token-budgeted batch.

        ``fn`` returns its result on the device, which keeps it there: the pass costs one
        device-to-host copy (and one synchronisation) at its end instead of one per batch.
        With ``per_row`` each result has one row per text and the return value is a host tensor
        of them in input order; otherwise the raw ``[(idx, result)]`` list, still on the device.
        ``pad_to``: every row padded to that width and run WITHOUT an attention mask, so the
        padding takes part in every row's attention (the reference's token pass; parlai mode).
        """
        t0 = time.perf_counter()
        keys = [k for k in enc if not (pad_to and k == "attention_mask")]  # padded alike: ids with the pad id, the rest with 0
        pad_id = self.tokenizer.pad_token_id or 0
        cuda = self.device.type == "cuda"

        def collate(idx):
            rows = torch.tensor([lengths[i] for i in idx])
            width = pad_to or int(rows.max())
            filled = torch.arange(width)[None, :] < rows[:, None]  # row-major, as the ids are chained
            total = int(rows.sum())
            batch = {}
            for k in keys:
                flat = torch.from_numpy(np.fromiter(chain.from_iterable(enc[k][i] for i in idx), np.int64, total))
                t = torch.full((len(idx), width), pad_id if k == "input_ids" else 0, dtype=torch.long)
                t[filled] = flat
                batch[k] = t.pin_memory().to(self.device, non_blocking=True) if cuda else t
            return batch

        results = []

        def compute(idx, batch):
            with torch.inference_mode(), amp(self.device, self.autocast):
                res = fn(idx, batch)
            results.append((idx, res))  # only once fn succeeded: an out-of-memory retry adds nothing
            self.stats.batches += 1

        budget_lengths = [pad_to] * len(lengths) if pad_to else lengths
        run_budgeted(list(range(len(lengths))), budget_lengths, self, collate, compute, prefetch=cuda)
        if per_row:
            results = _in_input_order(results, len(lengths))
        self.stats.seconds += time.perf_counter() - t0
        return results

    def _class_probability(self, items, ahead: Tokenized | None, index: int) -> torch.Tensor:
        """P(class ``index``) per item: softmax over all logits, in fp32."""
        if not items:
            return torch.empty(0, dtype=torch.float32)
        enc, lengths = self._prepare(items, ahead)
        return self._batches(enc, lengths, lambda idx, batch: torch.softmax(
            self.model(**batch).logits.float(), dim=-1)[:, index])

    def compile_forward(self) -> None:
        compile_in_place(self.model)

    def describe(self) -> dict:
        return {"max_length": self.max_length}


def _pooling_from_sentence_transformers(path: Path):
    modules = path / "modules.json"
    if not modules.exists():
        return None, None
    pooling, max_len = None, None
    for m in json.loads(modules.read_text()):
        if m.get("type", "").endswith("Pooling"):
            cfg = json.loads((path / m["path"] / "config.json").read_text())
            if cfg.get("pooling_mode_mean_tokens"):
                pooling = "mean"
            elif cfg.get("pooling_mode_cls_token"):
                pooling = "cls_before_pooler"
            elif cfg.get("pooling_mode_max_tokens"):
                pooling = "max"
    sbert = path / "sentence_bert_config.json"
    if sbert.exists():
        max_len = json.loads(sbert.read_text()).get("max_seq_length")
    return pooling, max_len


POOLINGS = ("mean", "max", "cls", "cls_before_pooler")


class SentenceEmbedder(_Encoder):
    """Sentence vectors, L2-normalised.

    Pooling follows the checkpoint: a sentence-transformers folder names it in its Pooling
    module; otherwise SimCSE's rule applies (``cls``: the pooler output; ``unsup`` models:
    ``cls_before_pooler``).  ``cls`` on a checkpoint without pooler weights fails, because a
    randomly initialised pooler would silently give meaningless scores.
    """

    slot = "embedder"

    def __init__(self, source: ModelSource, *, pooling=None, max_length=None, **kw):
        st_pool, st_max = _pooling_from_sentence_transformers(source.path)
        if pooling is None:
            pooling = st_pool or ("cls_before_pooler" if "unsup" in source.name.lower() else "cls")
            self.pooling_from = "sentence-transformers config" if st_pool else "SimCSE name rule"
        else:
            self.pooling_from = "explicit"
        if pooling not in POOLINGS:
            raise ModelConfigError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")
        self.pooling = pooling
        super().__init__(source, max_length=max_length or st_max, **kw)
        if pooling == "cls":
            missing = [k for k in self.loading_info.get("missing_keys", []) if "pooler" in k]
            if missing or getattr(self.model, "pooler", None) is None:
                raise ModelConfigError(
                    f"{source.name}: 'cls' pooling needs the checkpoint's pooler weights, which are "
                    f"missing ({', '.join(missing) or 'no pooler layer'}); refusing a random pooler")

    def encode(self, texts: list[str], ahead: Tokenized | None = None) -> torch.Tensor:
        return self.encode_with_tokens(texts, ahead)[0]

    def encode_with_tokens(self, texts: list[str], ahead: Tokenized | None = None, *, want=frozenset(),
                           drop: str = "special", limit: int | None = None):
        """Sentence vectors, and from the same pass the token vectors (exactly as a
        ``TokenEmbedder`` over this model gives them) of the texts in ``want`` that neither this
        model's length limit nor ``limit`` (the token slot's) cuts: ``(vectors, {text: rows})``."""
        if not texts:
            return torch.empty(0, self.model.config.hidden_size, dtype=torch.float32), {}
        enc, lengths = self._prepare(texts, ahead)
        cap = min(self.max_length, limit or self.max_length)
        rows = [i for i, t in enumerate(texts) if t in want and lengths[i] < cap]
        kept: list[int] = []
        if rows:
            keep = [[0] * n for n in lengths]
            for i in rows:
                keep[i] = _keep(self.tokenizer, enc["input_ids"][i], drop)
            enc, kept = {**enc, "keep": keep}, [sum(k) for k in keep]
        token_rows = []

        def fn(idx, batch):
            keep = batch.pop("keep", None)
            res = self.model(**batch)
            mask = batch["attention_mask"].unsqueeze(-1).float()
            hidden = res.last_hidden_state.float()
            if self.pooling == "mean":
                vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            elif self.pooling == "max":
                vec = hidden.masked_fill(mask == 0, -1e9).max(1).values
            elif self.pooling == "cls":
                vec = res.pooler_output.float()
            else:
                vec = hidden[:, 0]
            vec = torch.nn.functional.normalize(vec, dim=-1)
            if keep is not None:  # last, so an out-of-memory retry never leaves a stray entry
                token_rows.append((idx, torch.nn.functional.normalize(hidden[keep.bool()], dim=-1)))
            return vec

        vectors = self._batches(enc, lengths, fn)
        if not rows:
            return vectors, {}
        per_text = _per_text(token_rows, kept, len(texts))
        return vectors, {texts[i]: per_text[i] for i in rows}

    def describe(self):
        return {"max_length": self.max_length, "pooling": self.pooling, "pooling_from": self.pooling_from}


class TokenEmbedder(_Encoder):
    """Contextual token vectors (last hidden state), unit-normalised, special tokens dropped.

    ``drop="special"`` uses the tokenizer's special-tokens mask (paper mode);
    ``drop="ends"`` drops the first and last non-padding position, as the reference does
    (parlai mode).  The two agree for BERT/RoBERTa/MPNet tokenizers.

    Work items are ``(text, drop, width)``.  ``width`` None: the text alone (masked padding,
    the same vectors in any batch).  ``width`` W: the text right-padded to W tokens and run
    without an attention mask, as the reference runs each chain's steps (and its context
    sentences) as one padded batch; its vectors then depend on W, the longest text of its side.
    """

    slot = "token"

    def tokenize_texts(self, texts: list[str]) -> Tokenized:
        """The texts' token ids as this model's pass takes them, keyed by text (one text can be
        several items: one per drop rule and width)."""
        texts = list(dict.fromkeys(texts))
        return Tokenized(texts, self._tokenize(texts) if texts else {"input_ids": []})

    def tokenize(self, items: list[tuple], texts: Tokenized | None = None) -> dict[str, list]:
        """Items are (text, drop rule, width), as the output cache keys them; the columns carry
        the 0/1 ``keep`` mask of each text's positions besides the token ids.  ``texts``: the
        texts already tokenized (``tokenize_texts``), else they are tokenized here."""
        names = [item[0] for item in items]
        cols = texts.take(names) if texts is not None else None
        if cols is None:
            cols = self.tokenize_texts(names).take(names)
        cols["keep"] = [_keep(self.tokenizer, ids, item[1]) for item, ids in zip(items, cols["input_ids"])]
        return cols

    def encode(self, texts: list[str], drop: str = "special", ahead: Tokenized | None = None) -> list[torch.Tensor]:
        """Each text's kept token vectors, the text run alone."""
        return self.encode_items([(t, drop, None) for t in texts], ahead)

    def encode_items(self, items: list[tuple], ahead: Tokenized | None = None) -> list[torch.Tensor]:
        if not items:
            return []
        for _, drop, _ in items:
            if drop not in ("ends", "special"):
                raise ValueError(f"unknown drop rule {drop!r}; expected 'ends' or 'special'")
        enc, lengths = self._prepare(items, ahead)
        kept = [sum(k) for k in enc["keep"]]

        def fn(idx, batch):
            # the kept positions of the whole batch in one gather, on the device; the padded
            # keep mask came with the batch, so building it never holds up the device
            mask = batch.pop("keep").bool()
            hidden = self.model(**batch).last_hidden_state
            return torch.nn.functional.normalize(hidden[mask].float(), dim=-1)

        by_width: dict = {}
        for i, item in enumerate(items):
            by_width.setdefault(item[2], []).append(i)
        out: list = [None] * len(items)
        for width, idx in by_width.items():
            if width is not None and max(lengths[i] for i in idx) > width:
                raise ValueError(f"a text is longer than the width {width} it is to be padded to")
            sub = {k: [col[i] for i in idx] for k, col in enc.items()}
            results = self._batches(sub, [lengths[i] for i in idx], fn, per_row=False, pad_to=width)
            for i, v in zip(idx, _per_text(results, [kept[i] for i in idx], len(idx))):
                out[i] = v
        return out


def _keep(tokenizer, ids: list[int], drop: str) -> list[int]:
    """1 for each position whose vector the token embedder keeps, 0 for the dropped ones."""
    n = len(ids)
    if drop == "ends":
        return [0] + [1] * (n - 2) + [0] if n >= 2 else [0] * n
    return [1 - m for m in tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)]


def _per_text(results, kept: list[int], n: int) -> list[torch.Tensor | None]:
    """A pass's flat kept-token rows, gathered to the host with one copy, split per text."""
    order, flat = gather_to_host(results)
    order = order.tolist()
    out: list[torch.Tensor | None] = [None] * n
    for i, v in zip(order, flat.split([kept[i] for i in order])):
        out[i] = v
    return out


def _label_names(config) -> dict[int, str]:
    return {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}


def _generic(names: dict[int, str]) -> bool:
    return all(v.upper().startswith("LABEL_") for v in names.values())


class NLIClassifier(_Encoder):
    """P(contradiction) for (premise, hypothesis) pairs: softmax over all logits, fp32."""

    slot = "nli"
    auto_class = "AutoModelForSequenceClassification"

    def __init__(self, source: ModelSource, *, contradiction_index=None, **kw):
        super().__init__(source, **kw)
        names = _label_names(self.model.config)
        if len(names) < 3:
            raise ModelConfigError(f"{source.name}: NLI needs a 3-way model (entailment/neutral/"
                                   f"contradiction); this one has labels {names}")
        if contradiction_index is not None:
            self.index, self.index_from = int(contradiction_index), "explicit"
        else:
            hits = [i for i, v in names.items() if v.lower().startswith("contradict")]
            if len(hits) != 1 or _generic(names):
                raise ModelConfigError(
                    f"{source.name}: cannot find the contradiction label in id2label={names}; "
                    "pass contradiction_index")
            self.index, self.index_from = hits[0], "id2label"

    def tokenize(self, items: list[tuple[str, str]]) -> dict[str, list]:
        return self._tokenize([p for p, _ in items], [h for _, h in items])

    def p_contradiction(self, pairs: list[tuple[str, str]], ahead: Tokenized | None = None) -> torch.Tensor:
        return self._class_probability(pairs, ahead, self.index)

    def describe(self):
        return {"max_length": self.max_length, "contradiction_index": self.index, "index_from": self.index_from}


ACCEPTABLE_NAMES = ("acceptable", "grammatical", "correct")


class GrammarClassifier(_Encoder):
    """P(acceptable) per text.  The index comes from an override, the preset, or an
    unambiguous ``id2label`` name, in that order (docs/formulas.md §4)."""

    slot = "grammar"
    auto_class = "AutoModelForSequenceClassification"

    def __init__(self, source: ModelSource, *, acceptable_index=None, preset_index=None, **kw):
        super().__init__(source, **kw)
        names = _label_names(self.model.config)
        if acceptable_index is not None:
            self.index, self.index_from = int(acceptable_index), "explicit"
        elif preset_index is not None:
            self.index, self.index_from = int(preset_index), "preset"
        else:
            hits = [i for i, v in names.items() if v.lower() in ACCEPTABLE_NAMES]
            if len(hits) != 1:
                raise ModelConfigError(
                    f"{source.name}: cannot tell which label means 'acceptable' from id2label={names}; "
                    "pass acceptable_index")
            self.index, self.index_from = hits[0], "id2label"

    def p_acceptable(self, texts: list[str], ahead: Tokenized | None = None) -> torch.Tensor:
        return self._class_probability(texts, ahead, self.index)

    def describe(self):
        return {"max_length": self.max_length, "acceptable_index": self.index, "index_from": self.index_from}


__all__ = ["SentenceEmbedder", "TokenEmbedder", "NLIClassifier", "GrammarClassifier",
           "ModelConfigError", "PassStats", "Tokenized"]
