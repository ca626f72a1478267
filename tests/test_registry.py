import pytest

from roscoe import registry


def test_twenty_scores_thirteen_reference_free():
    assert len(registry.SCORES) == 20
    assert len(registry.REFERENCE_FREE) == 13
    assert len(registry.REFERENCE_BASED) == 7
    assert set(registry.PAPER_TABLE) == set(registry.REFERENCE_FREE) - {"perplexity_step_max", "grammar_step_max"}


def test_every_score_has_a_formula_and_metadata():
    from roscoe.formulas import FORMULAS

    assert set(FORMULAS) == set(registry.SCORES)
    for s in registry.SCORES.values():
        assert s.family in registry.FAMILIES
        assert s.group in registry.GROUPS
        assert set(s.slots) <= set(registry.SLOTS)
        assert s.direction == "higher is better"


def test_resolve_names_aliases_families_groups():
    assert registry.resolve("Self-Consistency") == ("coherence_step_vs_step",)
    assert registry.resolve("faithfulness-step,Info-Chain") == ("faithfulness", "informativeness_chain")
    assert registry.resolve("LI") == ("coherence_step_vs_step", "discourse_representation")
    assert registry.resolve("fluency") == ("perplexity_step", "perplexity_chain", "perplexity_step_max",
                                           "grammar_step", "grammar_step_max")
    assert registry.resolve("reference-free") == registry.REFERENCE_FREE
    assert registry.resolve(["LC", "perplexity_step"]) == registry.resolve("LC")  # no duplicates
    with pytest.raises(registry.UnknownScoreError, match="unknown score 'bogus'"):
        registry.resolve("faithfulness,bogus")


def test_slots_for():
    assert registry.slots_for(["faithfulness_ww"]) == {"embedder", "token"}
    assert registry.slots_for(registry.resolve("LC")) == {"lm", "grammar"}


def test_table_rows_modes():
    paper = {r["name"]: r for r in registry.table_rows("paper")}
    parlai = {r["name"]: r for r in registry.table_rows("parlai")}
    assert paper["informativeness_chain"]["range"] == "[0,1]"
    assert parlai["informativeness_chain"]["range"] == "[0.5,1]"
    assert paper["reasoning_alignment"]["reference"] == "yes"
