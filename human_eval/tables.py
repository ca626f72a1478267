"""Paper-style tables of correlation cells: metric rows x label columns, family rows, and the
per-dataset summary; written as CSV (every statistic, long format), Markdown and LaTeX."""
from __future__ import annotations

import csv
import io
import math

from roscoe import registry

from .stats import Cell

SUMMARY_COLUMNS = ("GRAM", "FACT", "HALL", "RED", "REP", "MISS", "LOGIC", "COMMON", "MATH")
# The paper groups only reference-free scores, without the *_max ones.
FAMILY_MEMBERS = {f"ROSCOE-{fam}": [n for n in registry.PAPER_TABLE if registry.SCORES[n].family == fam]
                  for fam in ("SA", "SS", "LI", "LC")}
ORACLE_NOTE = ("ROSCOE-SA/SS/LI/LC rows: the best significant member (p < 0.05) per column, an optimistic "
               "oracle pick over member scores, not a combined score.")


class Table:
    """Cells of one method (e.g. Somers' D), indexed by (row, column)."""

    def __init__(self, cells: list[Cell], *, method="somers_d", columns=None, rows=None):
        self.method = method
        self.cells = {(c.score, c.label): c for c in cells if c.method == method}
        seen_cols = list(dict.fromkeys(c.label for c in cells if c.method == method))
        self.columns = [c for c in (columns or seen_cols) if c in seen_cols]
        # A row with no defined cell (e.g. reference-based scores on a set without references)
        # says nothing: it is left out of the rendered tables, not out of the CSV.
        defined = {c.score for c in cells if c.method == method and not math.isnan(c.value)}
        seen_rows = list(dict.fromkeys(c.score for c in cells if c.method == method))
        self.rows = [r for r in (rows or seen_rows) if r in seen_rows and r in defined]
        self.family = {fam: {col: self._best(members, col) for col in self.columns}
                       for fam, members in FAMILY_MEMBERS.items() if any(m in self.rows for m in members)}

    def _best(self, members, col) -> Cell | None:
        sig = [self.cells[(m, col)] for m in members if (m, col) in self.cells and self.cells[(m, col)].significant]
        return max(sig, key=lambda c: c.value) if sig else None

    def summary(self, rows=None) -> dict[str, tuple[float, str | None]]:
        """Per row (and family): the max significant D over the step-error columns + MISS,
        with the column it came from."""
        cols = [c for c in SUMMARY_COLUMNS if c in self.columns]
        out = {}
        for r in rows or self.rows:
            best = [(self.cells[(r, c)].value, c) for c in cols if (r, c) in self.cells and self.cells[(r, c)].significant]
            out[r] = max(best) if best else (math.nan, None)
        for fam, by_col in self.family.items():
            best = [(cell.value, c) for c, cell in by_col.items() if cell is not None and c in cols]
            out[fam] = max(best) if best else (math.nan, None)
        return out

    # ------------------------------------------------------------------ renderers

    def _fmt(self, cell: Cell | None, *, ci=True, latex=False) -> str:
        if cell is None or math.isnan(cell.value):
            return "–" if not latex else "--"
        v = f"{cell.value:.3f}"
        if cell.significant:
            v = f"\\textbf{{{v}}}" if latex else f"**{v}**"
        if ci and not math.isnan(cell.ci_low):
            v += f" [{cell.ci_low:.2f}, {cell.ci_high:.2f}]"
        return v

    def markdown(self, *, ci=True) -> str:
        head = "| metric | " + " | ".join(self.columns) + " |\n|---|" + "---|" * len(self.columns)
        lines = [head]
        for r in self.rows:
            lines.append(f"| {r} | " + " | ".join(self._fmt(self.cells.get((r, c)), ci=ci) for c in self.columns) + " |")
        for fam, by_col in self.family.items():
            lines.append(f"| *{fam}* | " + " | ".join(self._fmt(by_col[c], ci=False) for c in self.columns) + " |")
        n = {c: max((self.cells[(r, c)].n for r in self.rows if (r, c) in self.cells), default=0) for c in self.columns}
        lines.append("| n | " + " | ".join(str(n[c]) for c in self.columns) + " |")
        return "\n".join(lines) + f"\n\nBold: p < 0.05. {ORACLE_NOTE}\n"

    def latex(self) -> str:
        esc = lambda s: s.replace("_", "\\_")
        lines = ["\\begin{tabular}{l" + "r" * len(self.columns) + "}", "\\toprule",
                 "Metric & " + " & ".join(esc(c) for c in self.columns) + " \\\\", "\\midrule"]
        for r in self.rows:
            lines.append(esc(r) + " & " + " & ".join(self._fmt(self.cells.get((r, c)), ci=False, latex=True)
                                                      for c in self.columns) + " \\\\")
        if self.family:
            lines.append("\\midrule")
            for fam, by_col in self.family.items():
                lines.append(esc(fam) + " & " + " & ".join(self._fmt(by_col[c], ci=False, latex=True)
                                                            for c in self.columns) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}"]
        return "\n".join(lines) + "\n"


def cells_csv(cells: list[Cell]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(cells[0].as_dict()) if cells else ["score"])
    w.writeheader()
    for c in cells:
        w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in c.as_dict().items()})
    return buf.getvalue()


def summary_markdown(summaries: dict[str, dict], rows) -> str:
    """Per-dataset summary: rows = metrics and families, columns = datasets."""
    names = list(summaries)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for r in rows:
        vals = []
        for d in names:
            v, col = summaries[d].get(r, (math.nan, None))
            vals.append("–" if math.isnan(v) else f"{v:.3f} ({col})")
        lines.append(f"| {r} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"
