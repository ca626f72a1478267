"""Causal-LM perplexity: one BOS, every text token a target, log-softmax in fp32 (docs/formulas.md §4)."""
from __future__ import annotations

import time
from itertools import chain

import numpy as np
import torch

from .batching import gather_to_host, run_budgeted
from .encoders import (ModelConfigError, PassStats, Tokenized, _quiet_transformers, amp, compile_in_place,
                       token_columns)
from .source import ModelSource

# Rows of hidden states sent through the output layer at once: bounds the fp32 logits
# buffer (rows x vocabulary) whatever the batch size.  On a GPU, large chunks keep the output
# GEMM efficient; on a CPU the log-softmax then streams a buffer far larger than the cache
# (200 MB at 1,024 rows of a 49k vocabulary) and every chunk maps fresh pages, so the chunk
# is cut to keep the buffer near the size of a last-level cache.
HEAD_CHUNK = 1024
_CPU_HEAD_BYTES = 24 << 20


def head_chunk(device: torch.device, vocab: int) -> int:
    if device.type != "cpu":
        return HEAD_CHUNK
    return max(16, min(HEAD_CHUNK, _CPU_HEAD_BYTES // (4 * vocab)))


class CausalLM:
    """Sum of token NLLs and token counts per text; PPL = exp(sum / n).

    Texts longer than the context window are scored with the strided sliding window of
    docs/formulas.md §4 (window W, stride W/2, each target scored once, BOS never a target).
    """

    slot = "lm"

    def __init__(self, source: ModelSource, *, device="cpu", dtype=torch.float32, bos_id=None,
                 add_prefix_space=False, batch_tokens=4096, window=None, autocast=None):
        import transformers

        _quiet_transformers()
        self.source = source
        self.device = torch.device(device)
        self.batch_tokens = batch_tokens
        # Right padding is after every real token, so causal attention never sees it: mixed
        # lengths change an LM's outputs only by the row count's rounding (about 1e-7).
        self.exact_lengths = False
        self.autocast = autocast  # a half type: matrix products in it under torch.autocast
        tok_kw = {"add_prefix_space": True} if add_prefix_space else {}
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(source.path), **tok_kw)
        self.add_prefix_space = add_prefix_space
        self.model = transformers.AutoModelForCausalLM.from_pretrained(str(source.path), dtype=dtype)
        self.model.to(self.device).eval()
        cfg = self.model.config
        if bos_id is None:
            bos_id = self.tokenizer.bos_token_id
            self.bos_from = "tokenizer bos"
            if bos_id is None:
                bos_id, self.bos_from = self.tokenizer.eos_token_id, "tokenizer eos"
        else:
            self.bos_from = "preset"
        if bos_id is None:
            raise ModelConfigError(f"{source.name}: the tokenizer has neither BOS nor EOS; the preset must give bos_id")
        self.bos_id = int(bos_id)
        self.window = int(window or next(
            (getattr(cfg, a) for a in ("n_positions", "max_position_embeddings", "n_ctx") if getattr(cfg, a, None)),
            1024))
        self.stats = PassStats()
        self.share_prefixes = True  # False: every text gets its own pass (the reference's way)
        self.feed_last_token = False  # True: the last token is fed in too (the reference's way)
        self.head_rows = head_chunk(self.device, self.model.get_output_embeddings().weight.shape[0])

    def _ids(self, texts: list[str]) -> list[list[int]]:
        # split_special_tokens: a literal "<|endoftext|>" in user text stays plain text.
        enc = self.tokenizer(texts, add_special_tokens=False, split_special_tokens=True)
        return [[self.bos_id] + ids for ids in enc["input_ids"]]

    def tokenize(self, texts: list[str]) -> dict[str, list]:
        return {"ids": self._ids(texts)}

    def nll(self, texts: list[str], ahead: Tokenized | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per text: (sum of NLL over its tokens, number of tokens), float64 / int64."""
        t0 = time.perf_counter()
        sums = torch.zeros(len(texts), dtype=torch.float64)
        counts = torch.zeros(len(texts), dtype=torch.int64)
        if not texts:
            return sums, counts
        seqs = token_columns(self, texts, ahead)["ids"]
        self.stats.texts += len(seqs)
        short = [i for i, s in enumerate(seqs) if len(s) <= self.window]
        long = [i for i, s in enumerate(seqs) if len(s) > self.window]
        self.stats.truncated += len(long)  # not cut: scored by sliding window, but worth reporting
        for i in long:
            sums[i], counts[i] = self._sliding(seqs[i])
        # A text whose ids begin another text's (a chain's first step, within the whole chain)
        # is read off that text's pass: a causal LM gives its tokens the same context there.
        host_of = prefix_hosts(seqs, short) if self.share_prefixes else {}
        guests: dict[int, list[int]] = {}
        for g, h in host_of.items():
            guests.setdefault(h, []).append(g)
        # A text's last token is a target and no position reads it (causal attention), so it is
        # never fed in: each text runs len - 1 positions, and a lone BOS none.
        fed = [len(s) - (0 if self.feed_last_token else 1) for s in seqs]
        run = [i for i in short if i not in host_of and len(seqs[i]) > 1]
        self.stats.shared += len(host_of)
        self.stats.tokens += sum(fed[i] for i in run) + sum(len(seqs[i]) for i in long)

        cuda = self.device.type == "cuda"

        def collate(idx):
            rows = torch.tensor([fed[i] for i in idx])
            columns = torch.arange(int(rows.max()))[None, :]
            filled = columns < rows[:, None]  # row-major, as the ids are chained
            ids = torch.zeros(filled.shape, dtype=torch.long)
            ids[filled] = torch.from_numpy(np.fromiter(chain.from_iterable(seqs[i][:fed[i]] for i in idx), np.int64,
                                                       int(rows.sum())))
            mask = filled.long()
            targets = torch.full_like(ids, -100)
            predicts = torch.tensor([len(seqs[i]) - 1 for i in idx])  # position p predicts token p + 1
            targets[columns < predicts[:, None]] = torch.from_numpy(np.fromiter(
                chain.from_iterable(seqs[i][1:] for i in idx), np.int64, int(predicts.sum())))
            cut = [(g, r, len(seqs[g])) for r, i in enumerate(idx) for g in guests.get(i, ())]
            cut_row = torch.tensor([r for _, r, _ in cut], dtype=torch.long)
            cut_len = torch.tensor([n for _, _, n in cut], dtype=torch.long)
            batch = (*self._targets(ids, mask, targets), cut_row, cut_len)
            return tuple(t.pin_memory().to(self.device, non_blocking=True) if cuda else t for t in batch), \
                [g for g, _, _ in cut]

        parts, guest_parts = [], []

        def compute(idx, ready):
            batch, cut_guests = ready
            s, n, partial = self._forward(*batch)
            parts.append((idx, s, n))  # kept on the device: one copy for the whole pass
            if cut_guests:
                guest_parts.append((cut_guests, partial))
            self.stats.batches += 1

        run_budgeted(run, fed, self, collate, compute, prefetch=cuda)
        if parts:
            order, s = gather_to_host([(idx, s) for idx, s, _ in parts])
            sums[order] = s
            counts[order] = gather_to_host([(idx, n) for idx, _, n in parts])[1]
        if guest_parts:
            order, s = gather_to_host(guest_parts)
            sums[order] = s
            counts[order] = torch.tensor([len(seqs[g]) - 1 for g in order.tolist()])
        self.stats.seconds += time.perf_counter() - t0
        return sums, counts

    @staticmethod
    def _targets(ids, mask, targets):
        """The batch plus, worked out on the host so the device never has to report back, the
        flat positions that have a target and the row of each."""
        keep = (targets.reshape(-1) != -100).nonzero().squeeze(1)
        return ids, mask, targets, keep, keep // ids.shape[1]

    def _forward(self, ids, mask, targets, keep, row, cut_row=None, cut_len=None):
        """targets[b, p] is the token predicted at position p, or -100.  Returns per-row NLL sums
        (float64) and target counts, on the model's device, and the NLL sums of the first
        ``cut_len[c] - 1`` targets of row ``cut_row[c]`` (texts that are prefixes of a row)."""
        with torch.inference_mode(), amp(self.device, self.autocast):
            hidden = self.model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
            head = self.model.get_output_embeddings()
            flat_h = hidden.reshape(-1, hidden.shape[-1])
            flat_t = targets.reshape(-1)
            nll = torch.empty(keep.shape[0], dtype=torch.float32, device=hidden.device)
            step = self.head_rows
            for a in range(0, keep.shape[0], step):
                k = keep[a: a + step]
                logits = head(flat_h[k]).float()
                nll[a: a + step] = torch.nn.functional.cross_entropy(logits, flat_t[k], reduction="none")
            sums = torch.zeros(ids.shape[0], dtype=torch.float64, device=hidden.device)
            sums.index_add_(0, row, nll.double())
            counts = (targets != -100).sum(1)
            partial = None
            if cut_row is not None and cut_row.numel():
                # a row's targets are contiguous in ``nll`` (row-major), so a prefix's sum is a
                # difference of running totals
                total = torch.cumsum(nll.double(), 0)
                first = (torch.cumsum(counts, 0) - counts)[cut_row]
                before = torch.where(first > 0, total[(first - 1).clamp(min=0)], torch.zeros_like(total[first]))
                partial = total[first + cut_len - 2] - before
        return sums, counts, partial

    def _sliding(self, seq: list[int]) -> tuple[float, int]:
        w, stride, total, n = self.window, self.window // 2, 0.0, 0
        length = len(seq)
        for i in range(0, length, stride):
            lo, hi = max(i + stride - w, 0), min(i + stride, length)
            ids = torch.tensor([seq[lo:hi]])
            targets = torch.full_like(ids, -100)
            # position p predicts token p+1; the targets of this window are tokens [max(i,1), hi)
            for tpos in range(max(i, 1), hi):
                targets[0, tpos - 1 - lo] = seq[tpos]
            batch = self._targets(ids, torch.ones_like(ids), targets)
            s, c, _ = self._forward(*(t.to(self.device) for t in batch))
            total += float(s[0])
            n += int(c[0])
        return total, n

    def compile_forward(self) -> None:
        # the body only: the output layer and the log-softmax run in row chunks of their own
        compile_in_place(self.model.base_model)

    def describe(self):
        return {"bos_id": self.bos_id, "bos_from": self.bos_from, "window": self.window,
                "add_prefix_space": self.add_prefix_space}


def prefix_hosts(seqs: list[list[int]], candidates: list[int]) -> dict[int, int]:
    """``{guest: host}`` for candidates whose ids are a proper prefix (at least two ids: BOS and a
    token) of a longer candidate's, each guest under a host that is not itself a guest.

    Longest first, so a prefix of a prefix goes to the longest text; only lengths that occur
    are tried, so the cost is (texts x distinct lengths) slices, not quadratic in the length.
    """
    by_length: dict[int, dict[tuple, int]] = {}
    for i in candidates:
        if len(seqs[i]) >= 2:
            by_length.setdefault(len(seqs[i]), {}).setdefault(tuple(seqs[i]), i)
    lengths = sorted(by_length)
    host_of: dict[int, int] = {}
    for h in sorted(candidates, key=lambda i: (-len(seqs[i]), i)):
        if h in host_of:
            continue
        seq = seqs[h]
        for n in lengths:
            if n >= len(seq):
                break
            g = by_length[n].get(tuple(seq[:n]))
            if g is not None and g not in host_of:
                host_of[g] = h
    return host_of
