"""Human-judgment loaders, correlation statistics against SciPy, tables, and the CLI."""
import json
import math
import shutil
import subprocess

import numpy as np
import pytest
from scipy import stats as sps

from human_eval import loaders, stats
from human_eval.tables import Table, cells_csv
from roscoe import cli

from .conftest import EXAMPLE, GSM8K_HUMAN, SHARED

SCIPY = {
    "somers_d": lambda x, y: sps.somersd(x, y),
    "kendall_tau_b": lambda x, y: sps.kendalltau(x, y),
    "spearman": lambda x, y: sps.spearmanr(x, y),
    "pearson": lambda x, y: sps.pearsonr(x, y),
}


@pytest.mark.parametrize("method", stats.METHODS)
@pytest.mark.parametrize("kind", ["binary", "likert"])
def test_statistics_match_scipy(method, kind):
    rng = np.random.default_rng(11)
    for _ in range(4):
        n = int(rng.integers(20, 300))
        label = rng.integers(0, 2, n) if kind == "binary" else rng.integers(1, 6, n)
        label = label.astype(float)
        scores = {f"s{k}": np.round(rng.normal(size=n) + 0.3 * k * label, 1) for k in range(3)}  # ties on purpose
        scores["s0"][rng.integers(0, n, 5)] = np.nan  # dropped pairwise
        cells = stats.correlate(scores, {"y": label}, (method,), n_boot=0)
        for cell in cells:
            s = scores[cell.score]
            ok = ~np.isnan(s)
            ref = SCIPY[method](label[ok], s[ok])
            assert cell.value == pytest.approx(float(ref.statistic), abs=1e-9)
            assert cell.p == pytest.approx(float(ref.pvalue), abs=1e-9)
            assert cell.n == int(ok.sum())


def test_binary_somers_d_is_two_auroc_minus_one():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500).astype(float)
    S = rng.normal(size=(500, 200)) + y[:, None] * np.linspace(0, 1, 200)
    d = stats.somers_d_binary(y, S)
    for k in (0, 57, 199):
        assert d[k] == pytest.approx(sps.somersd(y, S[:, k]).statistic, abs=1e-12)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200).astype(float)
    s = rng.normal(size=200) + y
    a = stats.correlate_pair(y, s, "somers_d", n_boot=500, seed=1)
    b = stats.correlate_pair(y, s, "somers_d", n_boot=500, seed=1)
    c = stats.correlate_pair(y, s, "somers_d", n_boot=500, seed=2)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high) != (c.ci_low, c.ci_high)
    assert a.ci_low < a.value < a.ci_high
    # the many-columns path gives the same cell as one column alone
    many = stats.correlate({"s": s, "t": -s}, {"y": y}, ("somers_d",), n_boot=500, seed=1)[0]
    assert (many.value, many.ci_low, many.ci_high, many.p) == (a.value, a.ci_low, a.ci_high, a.p)


def test_degenerate_cells_have_reasons():
    y = np.array([1.0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4])
    assert stats.correlate_pair(y, s).reason == "constant_label"
    assert stats.correlate_pair(np.array([0.0, 1, 0, 1]), np.ones(4)).reason == "constant_score"
    cell = stats.correlate_pair(np.array([0.0, 1, np.nan, np.nan]), np.array([1.0, np.nan, 2, 3]))
    assert cell.reason == "too_few_pairs" and cell.n == 1 and math.isnan(cell.value)


# ------------------------------------------------------------------ loaders on the real files


def test_roscoe_human_gsm8k_labels():
    ls = loaders.load_roscoe_human(SHARED / "dev/human/roscoe_human/roscoe_human_gsm8k.jsonl")
    raw = [json.loads(line) for line in open(SHARED / "dev/human/roscoe_human/roscoe_human_gsm8k.jsonl")]
    assert len(ls) == 200 and ls.name == "roscoe-human-gsm8k"
    assert ls.chains[0]["context"] == raw[0]["question"] and ls.chains[0]["reference"] == raw[0]["reference_solution"]
    for i, r in enumerate(raw):
        assert ls.labels["QUAL"][i] == r["chain_labels"]["overall_quality"]
        assert ls.labels["MISS"][i] == (0.0 if r["chain_labels"]["missing_steps"] == "yes" else 1.0)
        math_steps = [0.0 if s["arithmetic"] == "yes" else 1.0 for s in r["step_labels"]]
        assert ls.labels["MATH"][i] == min(math_steps)  # any_<X> = min over steps
        final = ls.step_labels["FINAL"][i]
        assert all(math.isnan(v) for v in final[:-1])  # final answer judged on the last step only
    assert ls.kinds["QUAL"] == "likert" and ls.kinds["ANY_ERROR"] == "binary"
    assert (ls.labels["ANY_ERROR"] <= ls.labels["MISS"]).all()


def test_roscoe_human_esnli_context_and_no_reference():
    ls = loaders.load_roscoe_human(SHARED / "dev/human/roscoe_human/roscoe_human_esnli.jsonl")
    raw = json.loads(open(SHARED / "dev/human/roscoe_human/roscoe_human_esnli.jsonl").readline())
    assert len(ls) == 151
    assert ls.chains[0]["context"] == raw["question"] + " " + raw["hypothesis"]
    assert "reference" not in ls.chains[0]


def test_mr_ben_champ_eobqa():
    mb = loaders.load_mr_ben(SHARED / "dev/human/mr_ben/math.json")
    assert len(mb) == 918 and int(mb.labels["CORRECT"].sum()) == 149
    k = next(i for i, c in enumerate(mb.chains) if mb.labels["CORRECT"][i] == 0 and 0.0 in mb.step_labels["STEP_OK"][i])
    row = mb.step_labels["STEP_OK"][k]
    first = row.index(0.0)
    assert all(v == 1.0 for v in row[:first]) and all(math.isnan(v) for v in row[first + 1:])
    assert not mb.chains[0]["steps"][0].lower().startswith("step 1")
    ch = loaders.load_champ(SHARED / "dev/human/champ/champ_fws_annotations.jsonl")
    assert len(ch) == 540 and int(ch.labels["NO_WRONG_STEP"].sum()) == 96
    eo = loaders.load_eobqa(SHARED / "dev/human/eobqa/obqa_chains.tsv.processed.tsv")
    assert len(eo) == 998 and int(np.isnan(eo.labels["VALID"]).sum()) == 193
    assert eo.chains[0]["steps"] == ["Wind turbines produce electricity with no pollution.",
                                     "wind is a renewable resource"]


def test_mr_ben_coding_steps_are_program_lines():
    # coding solutions are programs, not step lists; the first error step is named by its line
    path = SHARED / "dev/human/mr_ben/coding.json"
    raw = json.load(open(path, encoding="utf-8"))
    sol = next(iter(raw.values()))[0]
    mb = loaders.load_mr_ben(path)
    assert len(mb) == 238 and int(mb.labels["CORRECT"].sum()) == 74
    first = mb.chains[0]
    assert first["steps"] == [ln.strip() for ln in sol["Model_Solution_Steps"].split("\n") if ln.strip()]
    row = mb.step_labels["STEP_OK"][0]
    assert first["steps"][row.index(0.0)] == sol["Model_Solution_First_Error_Step"].strip()
    assert all(v == 1.0 for v in row[:row.index(0.0)])
    # an incorrect solution whose error line is not named has unknown step labels, not "no error"
    k = next(i for i, s in enumerate(s for sols in raw.values() for s in sols)
             if s["Model_Solution_Correctness"] == "incorrect" and not s["Model_Solution_First_Error_Step"].strip())
    assert mb.labels["CORRECT"][k] == 0.0 and math.isnan(mb.labels["NO_ERROR_STEP"][k])
    assert mb.labels["NO_ERROR_STEP"][mb.labels["CORRECT"] == 1.0].tolist() == [1.0] * 74


def test_champ_first_wrong_step_maps_to_the_step_holding_the_span():
    r = json.loads(open(SHARED / "dev/human/champ/champ_fws_annotations.jsonl").readline())
    ch = loaders.load_champ(SHARED / "dev/human/champ/champ_fws_annotations.jsonl")
    row = ch.step_labels["STEP_OK"][0]
    wrong = ch.chains[0]["steps"][row.index(0.0)]
    assert wrong[:30] in r["first_wrong_step_text"] or r["first_wrong_step_text"][:30] in wrong


def test_generic_label_loader(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("id,good,error\na,4,yes\nb,2,no\nc,,no\n")
    ids, labels = loaders.load_labels(p)
    assert ids == ["a", "b", "c"]
    assert labels["good"].tolist()[:2] == [4.0, 2.0] and math.isnan(labels["good"][2])
    assert labels["error"].tolist() == [0.0, 1.0, 1.0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 1, "q": "maybe"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: field 'q'"):
        loaders.load_labels(bad, columns=["q"])
    with pytest.raises(ValueError, match=r"bad.jsonl: no column holds numbers or yes/no labels \(columns: q\)"):
        loaders.load_labels(bad)
    # every bad line is named by its line number, blank lines counted
    for text, where in (('{"id": 1, "q": 1}\n\n{"q": 2}\n', r"bad.jsonl:3: field 'id': missing"),
                        ('{"id": 1, "q": 1}\n\n{"id": 2, "q"\n', r"bad.jsonl:3: malformed JSON"),
                        ('{"id": 1, "q": 1}\n7\n', r"bad.jsonl:2: expected a JSON object, got int")):
        bad.write_text(text)
        with pytest.raises(ValueError, match=where):
            loaders.load_labels(bad)
    (tmp_path / "bad.csv").write_bytes(b"id,q\na,1\n\xff,2\n")
    with pytest.raises(ValueError, match=r"bad.csv: not UTF-8"):
        loaders.load_labels(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text('id,q\na,1\n"two\nlines",x\n')
    with pytest.raises(ValueError, match=r"bad.csv:4: field 'q': 'x'"):  # the line the row ends on
        loaders.load_labels(tmp_path / "bad.csv")


def test_label_columns_by_dotted_path_and_text_columns_skipped(tmp_path):
    """Nested label objects are columns by dotted path; by default a text column is left out
    with a note, a column that mixes labels with text is an error naming the line, and a named
    column that does not exist is an error listing the ones that do."""
    p = tmp_path / "labels.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in (
        {"id": "a", "dataset": "drop", "chain_labels": {"overall_quality": 4, "contradiction": "no"}, "steps": ["x"]},
        {"id": "b", "dataset": "gsm8k", "chain_labels": {"overall_quality": 2, "contradiction": "yes"}, "steps": []},
        {"id": "c", "dataset": "drop", "chain_labels": {"overall_quality": None}, "other": None})))
    notes = []
    ids, labels = loaders.load_labels(p, notes=notes)
    assert ids == ["a", "b", "c"] and list(labels) == ["chain_labels.overall_quality", "chain_labels.contradiction"]
    assert labels["chain_labels.overall_quality"][:2].tolist() == [4.0, 2.0]
    assert labels["chain_labels.contradiction"][:2].tolist() == [1.0, 0.0]
    assert math.isnan(labels["chain_labels.contradiction"][2])
    assert notes == ["column 'dataset' skipped: not a number or yes/no (e.g. 'drop')",
                     "column 'steps' skipped: not a number or yes/no (e.g. ['x'])",
                     "column 'other' skipped: no values"]
    _, one = loaders.load_labels(p, columns=["chain_labels.overall_quality"])
    assert list(one) == ["chain_labels.overall_quality"]
    with pytest.raises(ValueError, match=r"no label column 'overall_quality'; the columns are: dataset, "
                                         r"chain_labels.overall_quality, chain_labels.contradiction, steps, other"):
        loaders.load_labels(p, columns=["overall_quality"])
    with pytest.raises(ValueError, match=r"labels.jsonl:1: field 'dataset': 'drop' is not a number"):
        loaders.load_labels(p, columns=["dataset"])
    p.write_text(json.dumps({"id": "a", "q": 3}) + "\n" + json.dumps({"id": "b", "q": "three"}) + "\n")
    with pytest.raises(ValueError, match=r"labels.jsonl:2: field 'q': 'three'"):
        loaders.load_labels(p)


def test_correlate_names_a_missing_label_column(tmp_path, capsys):
    """A label column that does not exist ends the command with exit 2 and the columns that do
    (it printed an empty table with n = 0 and exit 0); the ROSCOE human file's nested labels are
    read by dotted path, its text columns skipped with a note."""
    rows = [json.loads(line) for line in open(GSM8K_HUMAN)][:24]
    scored = tmp_path / "scored.jsonl"
    scored.write_text("".join(json.dumps({"id": r["id"], "faithfulness": i / 24, "reasons": {}}) + "\n"
                              for i, r in enumerate(rows)))
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()
    argv = ["correlate", "--scores", str(scored), "--labels", str(labels), "--n-boot", "0"]
    assert cli.main([*argv, "--label-columns", "overall_quality"]) == 2
    err = capsys.readouterr().err
    assert "no label column 'overall_quality'" in err and "chain_labels.overall_quality" in err
    assert cli.main([*argv, "--label-columns", "chain_labels.overall_quality"]) == 0
    out = capsys.readouterr().out
    assert "joined 24 of 24" in out and "chain_labels.overall_quality" in out
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "note: " in captured.err and "column 'dataset' skipped" in captured.err
    assert "chain_labels.contradiction" in captured.out


# ------------------------------------------------------------------ tables


def _cell(score, label, value, p=0.01):
    return stats.Cell(score, label, "somers_d", value, p, value - 0.1, value + 0.1, 100)


def test_family_row_is_the_best_significant_member():
    cells = [_cell("faithfulness", "FACT", 0.2), _cell("informativeness_step", "FACT", 0.4, p=0.2),
             _cell("repetition_word", "FACT", 0.3), _cell("perplexity_step", "FACT", -0.1, p=0.5),
             _cell("reasoning_alignment", "FACT", math.nan, p=math.nan)]
    t = Table(cells)
    assert t.family["ROSCOE-SA"]["FACT"].score == "repetition_word"  # 0.4 is not significant
    assert t.family["ROSCOE-LC"]["FACT"] is None
    assert "reasoning_alignment" not in t.rows  # no defined cell: not rendered
    md, tex = t.markdown(), t.latex()
    assert "**0.300**" in md and "0.400 [0.30, 0.50]" in md and "oracle" in md
    assert "\\textbf{0.300}" in tex and "repetition\\_word" in tex
    assert t.summary()["ROSCOE-SA"] == (pytest.approx(0.3), "FACT")
    assert cells_csv(cells).splitlines()[0].startswith("score,label,method,value,p,ci_low,ci_high,n,reason")


# ------------------------------------------------------------------ CLI


def test_correlate_command(tmp_path, capsys):
    rows = [json.loads(line) for line in open(EXAMPLE)]
    scored = tmp_path / "scored.jsonl"
    assert cli.main(["score", str(EXAMPLE), "-o", str(scored), "--scores", "SA", "--no-progress", "--quiet"]) == 0
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"id": r["id"], "QUAL": r["overall_quality"]}) + "\n" for r in rows[:-2]))
    capsys.readouterr()
    out = tmp_path / "corr"
    assert cli.main(["correlate", "--scores", str(scored), "--labels", str(labels), "--on", "id",
                     "--methods", "somers_d,spearman", "--n-boot", "200", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "joined 30 of 32 scored and 30 labelled rows" in text
    assert "| faithfulness |" in text and "## spearman" in text
    cells = (out / "cells.csv").read_text()
    assert cells.count("\n") == 1 + 10 * 2  # the 10 SA scores x 2 methods
    assert cli.main(["correlate", "--scores", str(scored), "--labels", str(labels), "--methods", "tau"]) == 2


def test_meta_eval_end_to_end(tmp_path, capsys):
    out = tmp_path / "me"
    assert cli.main(["meta-eval", "roscoe-human-gsm8k", "--limit", "24", "--n-boot", "50", "--methods",
                     "somers_d", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "# roscoe-human-gsm8k: 24 chains" in text and "signature: roscoe:" in text
    for suffix in ("cells.csv", "table.md", "table.tex", "summary.json", "scores.jsonl", "report.html"):
        assert (out / f"roscoe-human-gsm8k.{suffix}").stat().st_size > 0, suffix
    html = (out / "roscoe-human-gsm8k.report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "Signature:" in html and "ROSCOE-LC" in html
    scores = [json.loads(line) for line in open(out / "roscoe-human-gsm8k.scores.jsonl")]
    assert len(scores) == 24 and {"rouge_l", "bertscore_f1", "faithfulness"} <= set(scores[0])
    assert "Step level" in (out / "roscoe-human-gsm8k.table.md").read_text()
    assert cli.main(["meta-eval", "no-such-set"]) == 2


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    out = tmp_path / "me"
    assert cli.main(["meta-eval", "roscoe-human-esnli", "--limit", "20", "--n-boot", "20", "--methods", "somers_d",
                     "-o", str(out)]) == 0
    page = out / "roscoe-human-esnli.report.html"
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-500:]
    assert 'id="title"' in dom.stdout and "faithfulness" in dom.stdout and "<img" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--no-first-run", f"--user-data-dir={tmp_path / 'prof2'}", f"--screenshot={shot}",
                    "--window-size=1400,2000", page.as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000
