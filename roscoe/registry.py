"""The score registry: one entry per ROSCOE score, with everything a user needs to read it.

Canonical names are the reference implementation's output keys; the paper's names are
accepted as aliases.  Every score is higher = better in both modes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Model slots: the models a preset fills.
EMBEDDER, TOKEN, NLI, LM, GRAMMAR = "embedder", "token", "nli", "lm", "grammar"
SLOTS = (EMBEDDER, TOKEN, NLI, LM, GRAMMAR)

# What a formula reads, each made by one model pass over one kind of text.  A score declares
# these; the plan builds exactly the work they name (``plan.Needs.of``).
SENTENCES = "sentences"          # sentence vectors of each step, context sentence, reference step
CHAIN_TEXTS = "chain_texts"      # sentence vectors of the whole chain, context, reference joined
TOKENS = "tokens"                # token vectors of each step and context sentence
NLI_CONTEXT = "nli_context"      # P(contradiction) of (context sentence, step) pairs
NLI_STEPS = "nli_steps"          # P(contradiction) of (step, step) pairs
PERPLEXITY = "perplexity"        # LM perplexity of each step and of the steps joined
ACCEPTABILITY = "acceptability"  # grammar classifier P(acceptable) of each step
READS = {SENTENCES: EMBEDDER, CHAIN_TEXTS: EMBEDDER, TOKENS: TOKEN, NLI_CONTEXT: NLI, NLI_STEPS: NLI,
         PERPLEXITY: LM, ACCEPTABILITY: GRAMMAR}  # what -> the slot whose pass makes it

FAMILIES = {
    "SA": "semantic alignment",
    "SS": "semantic similarity",
    "LI": "logical inference",
    "LC": "language coherence",
}
GROUPS = ("semantic consistency", "logicality", "informativeness", "fluency", "factuality")


@dataclass(frozen=True)
class ScoreInfo:
    name: str
    paper_name: str
    family: str
    group: str
    needs_reference: bool
    reads: tuple[str, ...]  # keys of READS: the model outputs the formula reads
    range_paper: str = "[0,1]"
    range_parlai: str = "[0,1]"
    tags: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default=())
    direction: str = "higher is better"
    description: str = ""

    @property
    def slots(self) -> tuple[str, ...]:
        """The model slots whose passes the score reads."""
        return tuple(dict.fromkeys(READS[r] for r in self.reads))


_SC, _LO, _IN, _FL, _FA = GROUPS

SCORES: dict[str, ScoreInfo] = {
    s.name: s
    for s in (
        ScoreInfo("faithfulness", "Faithfulness-Step", "SA", _FA, False, (SENTENCES,),
                  description="mean over steps of the best alignment of the step to a context sentence"),
        ScoreInfo("faithfulness_ww", "Faithfulness-Token", "SA", _FA, False, (SENTENCES, TOKENS),
                  description="step and token alignments to the context, one mean over both"),
        ScoreInfo("informativeness_step", "Info-Step", "SA", _IN, False, (SENTENCES,),
                  description="how well context and steps cover each other (mean of both directions)"),
        ScoreInfo("repetition_word", "Repetition-Token", "SA", _SC, False, (TOKENS,), tags=(_IN,),
                  description="1 minus the largest token-level alignment of a step to an earlier step"),
        ScoreInfo("reasoning_alignment", "Reasoning Alignment", "SA", _SC, True, (SENTENCES,),
                  description="mean alignment of the steps to the reference steps"),
        ScoreInfo("external_hallucination", "Hallucination", "SA", _FA, True, (SENTENCES,),
                  description="1 minus the worst step's joint misalignment to reference and context"),
        ScoreInfo("redundancy", "Redundancy", "SA", _SC, True, (SENTENCES,), tags=(_IN,),
                  description="the worst step's alignment to the reference"),
        ScoreInfo("common_sense_error", "Commonsense", "SA", _FA, True, (SENTENCES,),
                  description="1 minus the worst reference step's joint misalignment to steps and context"),
        ScoreInfo("missing_step", "Missing Step", "SA", _SC, True, (SENTENCES,), tags=(_IN,),
                  description="the worst reference step's alignment to the steps"),
        ScoreInfo("semantic_coverage_step", "Semantic Coverage-Step", "SA", _SC, True, (SENTENCES,), tags=(_IN,),
                  description="1 - |MA(r->s) - MA(h->s)|: steps cover the context as much as the reference does"),
        ScoreInfo("informativeness_chain", "Info-Chain", "SS", _IN, False, (CHAIN_TEXTS,),
                  range_parlai="[0.5,1]",
                  description="similarity of the whole chain to the whole context"),
        ScoreInfo("repetition_step", "Repetition-Step", "SS", _SC, False, (SENTENCES,), tags=(_IN,),
                  range_parlai="[0,0.5], or 1.0 if N<2",
                  description="1 minus the largest similarity of a step to an earlier step"),
        ScoreInfo("semantic_coverage_chain", "Semantic Coverage-Chain", "SS", _SC, True, (CHAIN_TEXTS,), tags=(_IN,),
                  range_parlai="[0.5,1]",
                  description="similarity of the whole chain to the whole reference"),
        ScoreInfo("coherence_step_vs_step", "Self-Consistency", "LI", _LO, False, (NLI_STEPS,),
                  description="1 minus the largest contradiction probability between a step and an earlier step"),
        ScoreInfo("discourse_representation", "Source-Consistency", "LI", _LO, False, (NLI_CONTEXT,), tags=(_FA,),
                  description="1 minus the largest contradiction probability of a step given a context sentence"),
        ScoreInfo("perplexity_step", "Perplexity-Step", "LC", _FL, False, (PERPLEXITY,), range_paper="(0,1]",
                  range_parlai="(0,1]", description="inverse of the mean step perplexity"),
        ScoreInfo("perplexity_chain", "Perplexity-Chain", "LC", _FL, False, (PERPLEXITY,), range_paper="(0,1]",
                  range_parlai="(0,1]", description="inverse perplexity of the steps joined with spaces"),
        ScoreInfo("perplexity_step_max", "worst-step perplexity (reference only)", "LC", _FL, False, (PERPLEXITY,),
                  range_paper="(0,1]", range_parlai="(0,1]",
                  description="inverse perplexity of the worst step"),
        ScoreInfo("grammar_step", "Grammar", "LC", _FL, False, (ACCEPTABILITY,),
                  description="mean probability that a step is grammatically acceptable"),
        ScoreInfo("grammar_step_max", "worst-step grammar (reference only)", "LC", _FL, False, (ACCEPTABILITY,),
                  description="acceptability probability of the worst step"),
    )
}

REFERENCE_FREE = tuple(n for n, s in SCORES.items() if not s.needs_reference)
REFERENCE_BASED = tuple(n for n, s in SCORES.items() if s.needs_reference)
# The paper's human-judgment tables leave out the *_max scores.
PAPER_TABLE = tuple(n for n in REFERENCE_FREE if not n.endswith("_max"))

_ALIASES: dict[str, str] = {}
for _s in SCORES.values():
    for _a in (_s.name, _s.paper_name, _s.paper_name.replace(" ", "-"), _s.paper_name.replace(" ", "_")):
        _ALIASES[_a.lower()] = _s.name

_SETS = {
    "all": tuple(SCORES),
    "reference-free": REFERENCE_FREE,
    "unsupervised": REFERENCE_FREE,
    "reference-based": REFERENCE_BASED,
    "supervised": REFERENCE_BASED,
    "paper-table": PAPER_TABLE,
}


class UnknownScoreError(ValueError):
    pass


def resolve(selection: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Turn score names, paper names, families (SA/SS/LI/LC), groups or set names into
    canonical names, in registry order, without duplicates."""
    if selection is None:
        return tuple(SCORES)
    items = selection.split(",") if isinstance(selection, str) else list(selection)
    wanted: set[str] = set()
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        key = item.lower()
        if key in _SETS:
            wanted.update(_SETS[key])
        elif item.upper() in FAMILIES:
            wanted.update(n for n, s in SCORES.items() if s.family == item.upper())
        elif key in GROUPS:
            wanted.update(n for n, s in SCORES.items() if s.group == key)
        elif key in _ALIASES:
            wanted.add(_ALIASES[key])
        else:
            raise UnknownScoreError(
                f"unknown score {item!r}; expected a score name, a paper name, a family "
                f"({', '.join(FAMILIES)}), a group ({', '.join(GROUPS)}) or one of {', '.join(_SETS)}"
            )
    if not wanted:
        raise UnknownScoreError("empty score selection")
    return tuple(n for n in SCORES if n in wanted)


def slots_for(names) -> set[str]:
    return {slot for n in names for slot in SCORES[n].slots}


def table_rows(mode: str = "paper") -> list[dict]:
    rows = []
    for s in SCORES.values():
        rows.append({
            "name": s.name,
            "paper name": s.paper_name,
            "family": s.family,
            "group": s.group + (f" ({', '.join(s.tags)})" if s.tags else ""),
            "direction": s.direction,
            "reference": "yes" if s.needs_reference else "no",
            "range": s.range_paper if mode == "paper" else s.range_parlai,
            "models": "+".join(s.slots),
        })
    return rows
