"""The loading paths of the hub presets, exercised with tiny random models built from configs
in a temp dir: pooling, label indices read from id2label, BOS handling, batching invariance.
No network: every model here is a local directory."""
import json
import math
import shutil

import pytest
import torch

pytest.importorskip("transformers")
import transformers  # noqa: E402

from roscoe.models.encoders import (GrammarClassifier, ModelConfigError, NLIClassifier, SentenceEmbedder,  # noqa: E402
                                    TokenEmbedder, compile_unavailable)
from roscoe.models.lm import CausalLM  # noqa: E402
from roscoe.models.source import ModelSource, ModelUnavailable, resolve  # noqa: E402

TEXTS = ["A man is sleeping.", "The cat sat on the mat, quietly.", "3 + 4 = 7", "Yes."]


def _bert_tokenizer_into(d):
    from roscoe.models import lite

    src = lite.minilm().path
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / f, d / f)


def _bert_config(**kw):
    return transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=64, max_position_embeddings=128, **kw)


def _src(d):
    return ModelSource(d, d.name, "local")


@pytest.fixture
def bert_dir(tmp_path):
    torch.manual_seed(0)
    d = tmp_path / "sup-simcse-tiny"
    d.mkdir()
    transformers.BertModel(_bert_config()).save_pretrained(d)
    _bert_tokenizer_into(d)
    return d


def test_simcse_cls_pooling_uses_the_pooler(bert_dir):
    emb = SentenceEmbedder(_src(bert_dir), max_length=128)
    assert (emb.pooling, emb.pooling_from) == ("cls", "SimCSE name rule")
    got = emb.encode(TEXTS)
    enc = emb.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        want = torch.nn.functional.normalize(emb.model(**enc).pooler_output, dim=-1)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(got.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)


def test_cls_without_pooler_weights_fails(tmp_path):
    d = tmp_path / "no-pooler"
    d.mkdir()
    transformers.BertModel(_bert_config(), add_pooling_layer=False).save_pretrained(d)
    _bert_tokenizer_into(d)
    with pytest.raises(ModelConfigError, match="pooler"):
        SentenceEmbedder(_src(d), pooling="cls")
    emb = SentenceEmbedder(_src(d), pooling="cls_before_pooler")  # the CLS state needs no pooler
    assert emb.encode(TEXTS[:1]).shape == (1, 32)


def _one_model_preset(path):
    from dataclasses import replace

    from roscoe.models import ModelSet, SlotSpec, get_preset

    base = get_preset("parlai")
    slots = {**base.slots, "embedder": SlotSpec(str(path), {"max_length": 64}),
             "token": SlotSpec(str(path), {"max_length": 128})}
    return ModelSet(replace(base, slots=slots, hub=False), device="cpu")


def test_token_slot_naming_the_embedders_model_shares_it(bert_dir):
    ms = _one_model_preset(bert_dir)
    tok, emb = ms.get("token"), ms.get("embedder")
    assert tok.model is emb.model and tok.max_length == 128 and emb.max_length == 64
    assert tok.tokenizer is not emb.tokenizer  # each keeps its own truncation setting
    # what one sentence pass hands over equals the token pass, for the texts neither limit cuts
    long_text = " ".join(TEXTS * 8)  # over 64 tokens: cut by the embedder, so left to the token pass
    texts = [*TEXTS, long_text]
    for drop in ("special", "ends"):
        vectors, mats = emb.encode_with_tokens(texts, want=set(TEXTS[1:]) | {long_text}, drop=drop,
                                               limit=tok.max_length)
        assert torch.allclose(vectors, emb.encode(texts), atol=1e-6)
        assert set(mats) == set(TEXTS[1:])
        alone = dict(zip(texts, tok.encode(texts, drop=drop)))
        for t, m in mats.items():
            assert m.shape == alone[t].shape and torch.allclose(m, alone[t], atol=1e-6)


def test_token_slot_loads_alone_when_the_model_is_no_sentence_embedder(tmp_path):
    d = tmp_path / "no-pooler"
    d.mkdir()
    transformers.BertModel(_bert_config(), add_pooling_layer=False).save_pretrained(d)
    _bert_tokenizer_into(d)
    ms = _one_model_preset(d)  # SimCSE's name rule asks for 'cls' pooling, which needs a pooler
    tok = ms.get("token")
    assert not ms.is_loaded("embedder") and tok.encode(TEXTS[:1])[0].shape[1] == 32


def test_unsup_name_rule_and_sentence_transformers_config(tmp_path, bert_dir):
    unsup = tmp_path / "unsup-simcse-tiny"
    shutil.copytree(bert_dir, unsup)
    assert SentenceEmbedder(_src(unsup)).pooling == "cls_before_pooler"
    st = tmp_path / "st-tiny"
    shutil.copytree(bert_dir, st)
    (st / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (st / "1_Pooling").mkdir()
    (st / "1_Pooling/config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    (st / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 16}))
    emb = SentenceEmbedder(_src(st))
    assert (emb.pooling, emb.pooling_from, emb.max_length) == ("mean", "sentence-transformers config", 16)
    got = emb.encode(TEXTS)
    enc = emb.tokenizer(TEXTS, padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        h = emb.model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    want = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    assert torch.allclose(got, want, atol=1e-5)


def test_token_embedder_drops_special_tokens_both_ways(bert_dir):
    tok = TokenEmbedder(_src(bert_dir))
    special = tok.encode(TEXTS, drop="special")
    ends = tok.encode(TEXTS, drop="ends")
    for text, a, b in zip(TEXTS, special, ends):
        n = len(tok.tokenizer(text, add_special_tokens=False)["input_ids"])
        assert a.shape == (n, 32)
        assert torch.allclose(a, b)  # [CLS] ... [SEP]: the two rules agree for BERT


def _classifier_dir(tmp_path, name, id2label):
    torch.manual_seed(1)
    d = tmp_path / name
    d.mkdir()
    cfg = _bert_config(num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()})
    transformers.BertForSequenceClassification(cfg).save_pretrained(d)
    _bert_tokenizer_into(d)
    return d


def test_nli_index_from_id2label_in_any_order(tmp_path):
    d = _classifier_dir(tmp_path, "nli", {0: "CONTRADICTION", 1: "neutral", 2: "entailment"})
    nli = NLIClassifier(_src(d))
    assert (nli.index, nli.index_from) == (0, "id2label")
    pairs = [("A man is sleeping.", "A man is awake."), ("It rains.", "It is wet outside.")]
    got = nli.p_contradiction(pairs)
    enc = nli.tokenizer([p for p, _ in pairs], [h for _, h in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        want = torch.softmax(nli.model(**enc).logits, -1)[:, 0]
    assert torch.allclose(got, want, atol=1e-5)


def test_nli_generic_labels_need_an_index_and_two_way_is_refused(tmp_path):
    d = _classifier_dir(tmp_path, "generic", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(ModelConfigError, match="contradiction"):
        NLIClassifier(_src(d))
    assert NLIClassifier(_src(d), contradiction_index=2).index_from == "explicit"
    d2 = _classifier_dir(tmp_path, "two", {0: "entailment", 1: "not_entailment"})
    with pytest.raises(ModelConfigError, match="3-way"):
        NLIClassifier(_src(d2))


def test_grammar_index_resolution(tmp_path):
    generic = _classifier_dir(tmp_path, "cola-generic", {0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(ModelConfigError, match="acceptable"):
        GrammarClassifier(_src(generic))
    g = GrammarClassifier(_src(generic), preset_index=0)
    assert (g.index, g.index_from) == (0, "preset")
    assert GrammarClassifier(_src(generic), acceptable_index=1, preset_index=0).index == 1
    named = _classifier_dir(tmp_path, "cola-named", {0: "unacceptable", 1: "acceptable"})
    g2 = GrammarClassifier(_src(named))
    assert (g2.index, g2.index_from) == (1, "id2label")
    p = g2.p_acceptable(TEXTS)
    assert p.shape == (4,) and bool(((p > 0) & (p < 1)).all())


# ------------------------------------------------------------------ causal LM


def _byte_bpe_tokenizer(d, *, bos=True, eos=True):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(TEXTS * 3, trainer)
    kw = {}
    if bos:
        kw["bos_token"] = "<|endoftext|>"
    if eos:
        kw["eos_token"] = "<|endoftext|>"
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, **kw)
    fast.save_pretrained(d)
    return fast


@pytest.fixture
def gpt2_dir(tmp_path):
    torch.manual_seed(2)
    d = tmp_path / "gpt2-tiny"
    d.mkdir()
    tok = _byte_bpe_tokenizer(d)
    cfg = transformers.GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(d)
    return d


def _manual_nll(lm, text):
    ids = [lm.bos_id] + lm.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = lm.model(x).logits[0, :-1].float()
    return float(torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="sum")), len(ids) - 1


def test_lm_nll_matches_manual_and_batching(gpt2_dir):
    lm = CausalLM(_src(gpt2_dir))
    assert (lm.bos_id, lm.bos_from, lm.window) == (0, "tokenizer bos", 64)
    sums, counts = lm.nll(TEXTS)
    for i, text in enumerate(TEXTS):
        s, n = _manual_nll(lm, text)
        assert int(counts[i]) == n
        assert float(sums[i]) == pytest.approx(s, rel=1e-5)
    lm.batch_tokens = 1  # one text per batch: padding must not change anything
    sums1, counts1 = lm.nll(TEXTS)
    assert torch.equal(counts, counts1)
    assert torch.allclose(sums, sums1, rtol=1e-5)
    lm.batch_tokens, lm.head_rows = 4096, 3  # output-layer chunks that cut through texts
    sums3, counts3 = lm.nll(TEXTS)
    assert torch.equal(counts, counts3)
    assert torch.allclose(sums, sums3, rtol=1e-5)
    lm.stats.__init__()
    sums_e, counts_e = lm.nll(["", TEXTS[0]])  # an empty text is a lone BOS: nothing to predict, nothing run
    assert counts_e.tolist() == [0, int(counts[0])] and float(sums_e[0]) == 0.0
    assert lm.stats.tokens == int(counts[0])  # the last token is a target only, never fed in
    lm.feed_last_token = True  # the reference's way: the same NLL
    sums_f, counts_f = lm.nll(TEXTS)
    assert torch.equal(counts, counts_f)
    assert torch.allclose(sums, sums_f, rtol=1e-5)


def test_lm_head_chunk_by_hand():
    from roscoe.models.lm import head_chunk

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert head_chunk(cpu, 49152) == 128  # 24 MiB / (4 bytes x 49,152)
    assert head_chunk(cpu, 50257) == 125
    assert head_chunk(cpu, 1000) == 1024  # never above the GPU chunk
    assert head_chunk(cpu, 10 ** 7) == 16  # nor below 16 rows
    assert head_chunk(gpu, 49152) == 1024


def test_prefix_hosts_by_hand():
    from roscoe.models.lm import prefix_hosts

    seqs = [[0, 1, 2], [0, 1, 2, 3, 4], [0, 1], [0, 5], [0, 1, 2, 3], [0], [7, 1, 2, 3, 4, 5]]
    # the longest text that begins with them hosts [0,1], [0,1,2] and [0,1,2,3], even though
    # [0,1,2,3] could host the first two itself; [0,5] and [7,...] begin no other; [0] is too short
    assert prefix_hosts(seqs, list(range(len(seqs)))) == {0: 1, 2: 1, 4: 1}
    assert prefix_hosts(seqs, [0, 2, 3]) == {2: 0}  # only among the candidates


def test_lm_prefix_texts_are_read_off_the_longer_pass(gpt2_dir):
    """A chain's first step is a prefix of the whole chain: its NLL comes from the chain's pass
    and equals its own pass (a causal LM gives those tokens the same context)."""
    lm = CausalLM(_src(gpt2_dir))
    steps = TEXTS[:3]
    texts = [*steps, " ".join(steps), TEXTS[3]]
    ids = lm._ids(texts)
    assert ids[3][: len(ids[0])] == ids[0]  # the first step's ids begin the chain's
    lm.head_rows = 2  # the running totals must carry across output-layer chunks
    shared_s, shared_n = lm.nll(texts)
    assert lm.stats.shared >= 1
    # the first step runs inside the chain; no text's last token is fed in (it is only a target)
    assert lm.stats.tokens == sum(len(x) - 1 for i, x in enumerate(ids) if i != 0)
    lm.share_prefixes = False
    alone_s, alone_n = lm.nll(texts)
    assert torch.equal(shared_n, alone_n)
    assert torch.allclose(shared_s, alone_s, rtol=1e-5)
    for i, text in enumerate(texts):  # and each equals the hand-computed NLL of the text alone
        assert float(shared_s[i]) == pytest.approx(_manual_nll(lm, text)[0], rel=1e-5)


def test_lm_special_token_text_stays_text(gpt2_dir):
    lm = CausalLM(_src(gpt2_dir))
    ids = lm._ids(["a <|endoftext|> b"])[0]
    assert ids[0] == lm.bos_id and lm.bos_id not in ids[1:]


def test_encoder_special_token_text_stays_text(tmp_path, bert_dir):
    """A literal "[SEP]" in user text neither splits an NLI pair into more segments nor becomes
    a token the token pass drops: it is tokenized as the characters it is."""
    nli = NLIClassifier(_src(_classifier_dir(tmp_path, "nli", {0: "entailment", 1: "neutral", 2: "contradiction"})))
    sep, cls = nli.tokenizer.sep_token_id, nli.tokenizer.cls_token_id
    enc = nli.tokenize([("A man [SEP] sleeps [CLS].", "He is [SEP] awake.")])
    ids = enc["input_ids"][0]
    assert ids.count(sep) == 2 and ids.count(cls) == 1  # the pair template's own, no more
    assert sum(enc["token_type_ids"][0]) == len(ids) - ids.index(sep) - 1  # segment B starts after the first
    tok = TokenEmbedder(_src(bert_dir))
    [vectors] = tok.encode(["a [SEP] b"], drop="special")
    plain = tok.tokenizer("a [SEP] b", add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert vectors.shape[0] == len(plain) == 5  # a [ sep ] b


def test_lm_bos_fallbacks(tmp_path):
    d = tmp_path / "no-bos"
    d.mkdir()
    tok = _byte_bpe_tokenizer(d, bos=False)
    cfg = transformers.GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(d)
    lm = CausalLM(_src(d))
    assert (lm.bos_id, lm.bos_from) == (tok.eos_token_id, "tokenizer eos")
    assert CausalLM(_src(d), bos_id=5).bos_from == "preset"
    d2 = tmp_path / "neither"
    d2.mkdir()
    _byte_bpe_tokenizer(d2, bos=False, eos=False)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(d2)
    with pytest.raises(ModelConfigError, match="neither BOS nor EOS"):
        CausalLM(_src(d2))


def test_lm_sliding_window(gpt2_dir):
    lm = CausalLM(_src(gpt2_dir))
    text = " ".join(TEXTS * 2)
    s_full, n_full = lm.nll([text])
    seq = lm._ids([text])[0]
    assert len(seq) <= lm.window
    # one window covering everything is exactly the single pass
    assert lm._sliding(seq)[0] == pytest.approx(float(s_full[0]), rel=1e-5)
    lm.window = 8  # force striding: every token is still scored exactly once
    s_win, n_win = lm.nll([text])
    assert int(n_win[0]) == int(n_full[0]) == len(seq) - 1
    assert math.isfinite(float(s_win[0])) and float(s_win[0]) != pytest.approx(float(s_full[0]), rel=1e-6)
    assert lm.stats.truncated == 1


# ------------------------------------------------------------------ sources and presets


def test_hub_ids_are_not_fetched_unless_allowed(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelUnavailable, match="downloads are off"):
        resolve("roscoe-test/does-not-exist", allow_hub=False)


def test_parlai_preset_with_local_tiny_models_scores_everything(tmp_path, bert_dir, gpt2_dir):
    from roscoe import Scorer

    nli = _classifier_dir(tmp_path, "nli", {0: "entailment", 1: "neutral", 2: "contradiction"})
    cola = _classifier_dir(tmp_path, "cola", {0: "acceptable", 1: "unacceptable"})
    chains = [{"id": "a", "context": "Tom has 3 apples. He buys 4 more.", "steps": ["3 + 4 = 7.", "Tom has 7 apples."],
               "reference": "3 + 4 = 7. So 7."}]
    for mode in ("paper", "parlai"):
        sc = Scorer("parlai", mode=mode, device="cpu", embedder=str(bert_dir), token=str(bert_dir), nli=str(nli),
                    lm=str(gpt2_dir), grammar=str(cola))
        table = sc.score(chains)
        assert not table.reasons[0], table.reasons[0]
        for name in table.names:
            assert 0.0 <= table[name][0] <= 1.0, name
        sig = str(sc.signature())
        assert f"mode:{mode}" in sig and "nli:nli@" in sig and "+con2(id2label)" in sig and "+acc0(id2label)" in sig
        assert "|preset:parlai(overrides:embedder,token,nli,lm,grammar)|" in sig


def test_a_slot_override_drops_the_presets_recipe_and_says_so():
    """`--lm DIR` replaces the lite LM's recipe (BOS id 0) by the model's own configuration, so
    the signature names the overridden slots; naming the preset's own model changes nothing."""
    from roscoe.models.presets import get

    lite = get("lite")
    same = lite.with_overrides(lm=lite.slots["lm"].model, nli=None)
    assert same.label == "lite" and same.slots["lm"].options == {"bos_id": 0}
    other = lite.with_overrides(lm="/models/smollm2", grammar="/models/cola")
    assert other.label == "lite(overrides:lm,grammar)" and other.slots["lm"].options == {}
    assert other.slots["nli"] == lite.slots["nli"]


def _oom_above(model, rows):
    """Make ``model`` run out of memory on any batch of more than ``rows`` texts."""
    forward = model.forward

    def patched(*args, **kw):
        ids = kw.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[0] > rows:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(*args, **kw)

    model.forward = patched


def test_out_of_memory_in_a_pass_loses_and_repeats_nothing(tmp_path, bert_dir, gpt2_dir):
    texts = TEXTS * 3 + ["One more sentence about apples and pears."]
    pairs = list(zip(texts, reversed(texts)))
    nli = NLIClassifier(_src(_classifier_dir(tmp_path, "nli", {0: "entailment", 1: "neutral", 2: "contradiction"})))
    tok, emb, lm = TokenEmbedder(_src(bert_dir)), SentenceEmbedder(_src(bert_dir)), CausalLM(_src(gpt2_dir))
    want = (nli.p_contradiction(pairs), emb.encode(texts), tok.encode(texts), lm.nll(texts))
    before = nli.stats.batches
    for m in (nli, emb, tok, lm):
        m.batch_tokens = 10_000  # one batch of everything, then halves until 2 rows fit
        _oom_above(m.model.base_model if m is lm else m.model, 2)
    got = (nli.p_contradiction(pairs), emb.encode(texts), tok.encode(texts), lm.nll(texts))
    assert torch.allclose(got[0], want[0], atol=1e-6)
    assert torch.allclose(got[1], want[1], atol=1e-6)
    assert len(got[2]) == len(texts) and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got[2], want[2]))
    assert torch.equal(got[3][1], want[3][1]) and torch.allclose(got[3][0], want[3][0], rtol=1e-6)
    assert nli.stats.batches - before >= math.ceil(len(pairs) / 2)  # the halving really happened
    for m in (nli, emb, tok, lm):  # and the budget went down for good, to half a failed batch or less
        assert m.stats.backoffs > 0 and m.batch_tokens < 10_000


# ------------------------------------------------------------------ DeBERTa's relative attention


@pytest.mark.parametrize("share_att_key,buckets,max_relative,fallback", [
    (True, 256, -1, [130, 200]),   # DeBERTa-v3: log buckets past 128, so lengths up to 129 fit
    (False, 256, -1, [130, 200]),  # separate position projections
    (True, -1, 64, [129, 130, 200]),  # no buckets: every distance below 64 has its own row
])
def test_lean_deberta_bias_equals_the_transformers_bias(share_att_key, buckets, max_relative, fallback):
    """The lean relative-attention bias equals transformers' own, layer by layer, for short
    sequences (where it is used) and hands longer ones to the original code."""
    from roscoe.models.deberta import full_relative_attention, lean_relative_attention

    torch.manual_seed(0)
    cfg = transformers.DebertaV2Config(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64, max_position_embeddings=512, relative_attention=True,
                                       position_buckets=buckets, max_relative_positions=max_relative,
                                       pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm",
                                       share_att_key=share_att_key, position_biased_input=False)
    model = transformers.DebertaV2Model(cfg).eval()
    assert lean_relative_attention(model) == 2
    pairs, fallbacks = [], []
    for mod in model.modules():
        if hasattr(mod, "_roscoe_full_bias"):
            lean, full = mod.disentangled_attention_bias, mod._roscoe_full_bias

            def counted(*a, full=full):
                fallbacks.append(a[0].size(-2))
                return full(*a)

            def both(*a, lean=lean, full=full):
                out = lean(*a)
                pairs.append((out, full(*a)))
                return out

            mod._roscoe_full_bias, mod.disentangled_attention_bias = counted, both
    for length in (1, 2, 37, 129, 130, 200):  # 129: the last length below the log buckets
        ids = torch.randint(5, 100, (3, length))
        mask = torch.ones(3, length, dtype=torch.long)
        mask[1, length // 2:] = 0
        pairs.clear()
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)
        assert len(pairs) == 2
        for lean_out, full_out in pairs:
            assert lean_out.shape == full_out.shape == (3 * 2, length, length)
            assert float(full_out.abs().max()) > 1e-3  # a bias big enough for the comparison to mean something
            assert torch.allclose(lean_out, full_out, atol=1e-6, rtol=0)
    assert sorted(set(fallbacks)) == fallback
    assert full_relative_attention(model) == 2 and lean_relative_attention(model) == 2


def _deberta_nli_dir(tmp_path):
    d = tmp_path / "deberta-nli"
    d.mkdir()
    _bert_tokenizer_into(d)
    cfg = transformers.DebertaV2Config(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=64, relative_attention=True, position_buckets=256,
                                       pos_att_type=["p2c", "c2p"], share_att_key=True, position_biased_input=False,
                                       num_labels=3, id2label={0: "entailment", 1: "neutral", 2: "contradiction"})
    torch.manual_seed(2)
    transformers.DebertaV2ForSequenceClassification(cfg).save_pretrained(d)
    return d


def test_nli_classifier_uses_the_lean_deberta_bias(tmp_path):
    d = _deberta_nli_dir(tmp_path)
    nli = NLIClassifier(_src(d))
    assert any(hasattr(m, "_roscoe_full_bias") for m in nli.model.modules())
    p = nli.p_contradiction([("A man sleeps.", "A man is awake."), ("It rains.", "It is wet outside today.")])
    from roscoe.models.deberta import full_relative_attention

    full_relative_attention(nli.model)
    assert torch.allclose(p, nli.p_contradiction([("A man sleeps.", "A man is awake."),
                                                  ("It rains.", "It is wet outside today.")]), atol=1e-6)


@pytest.mark.skipif(compile_unavailable("cpu") is not None, reason="TorchInductor needs a C++ compiler")
def test_compiled_models_score_as_the_eager_ones(tmp_path, bert_dir, gpt2_dir):
    """--compile: every model body compiled (DeBERTa with the lean bias included), the same scores
    within float rounding, over batches of several shapes, and the signature says so."""
    from roscoe import Scorer
    from tests.conftest import gsm8k_chains

    models = dict(embedder=str(bert_dir), token=str(bert_dir), nli=str(_deberta_nli_dir(tmp_path)), lm=str(gpt2_dir),
                  grammar=str(_classifier_dir(tmp_path, "cola", {0: "acceptable", 1: "unacceptable"})))
    chains = gsm8k_chains(12)
    eager = Scorer("parlai", device="cpu", block_size=5, **models)
    compiled = Scorer("parlai", device="cpu", block_size=5, compile=True, **models)
    want, got = eager.score(chains), compiled.score(chains)
    assert got.reasons == want.reasons
    assert float(abs(got.values - want.values).max()) < 1e-5
    for slot, m in compiled.models.loaded().items():
        body = m.model.base_model if slot == "lm" else m.model
        assert body._roscoe_compiled, slot
        # several batch shapes through one compiled model (the token slot's vectors come off the
        # embedder's pass: one model for both)
        assert m.stats.batches > 1 or (slot == "token" and m.model is compiled.models.get("embedder").model), slot
    assert "|compile:inductor|" in str(compiled.signature()) and "compile:" not in str(eager.signature())


def test_compile_without_a_toolchain_is_refused_up_front(monkeypatch):
    from roscoe.models import ModelSet

    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CXX", raising=False)
    assert compile_unavailable("cpu") == "no C++ compiler (c++) on PATH"
    with pytest.raises(ModelConfigError, match="cannot compile the models on cpu: no C"):
        ModelSet("lite", device="cpu", compile=True)
    ModelSet("lite", device="cpu")  # without --compile nothing is checked
