"""Plots and a self-contained HTML report (tables, heatmap, distributions, signature, sizes, CIs)."""
from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np

from roscoe import registry

from .tables import ORACLE_NOTE, Table


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def heatmap(table: Table) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = np.array([[table.cells[(r, c)].value if (r, c) in table.cells else np.nan for c in table.columns]
                     for r in table.rows])
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(table.columns), 0.9 + 0.32 * len(table.rows)))
    im = ax.imshow(data, cmap="RdBu", vmin=-0.6, vmax=0.6, aspect="auto")
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(table.rows)), table.rows)
    for i, r in enumerate(table.rows):
        for j, c in enumerate(table.columns):
            cell = table.cells.get((r, c))
            if cell is not None and not math.isnan(cell.value):
                ax.text(j, i, f"{cell.value:.2f}" + ("*" if cell.significant else ""), ha="center", va="center",
                        fontsize=7)
    fig.colorbar(im, ax=ax, label="Somers' D (* p < 0.05)")
    ax.set_title("Somers' D(score | human label)")
    return _png(fig)


def distributions(result, label: str) -> bytes:
    """Box plots of each paper-table score per value of one label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in registry.PAPER_TABLE if n in result.scores] + \
            [n for n in ("rouge_l", "bertscore_f1") if n in result.scores]
    lab = result.label_values[label]
    values = sorted(v for v in np.unique(lab[~np.isnan(lab)]))
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        s = result.scores[name]
        groups = [s[(lab == v) & ~np.isnan(s)] for v in values]
        ax.boxplot(groups, tick_labels=[f"{v:g}" for v in values], showfliers=False)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"Scores by {label}", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for r in table.rows:
        tds = []
        for c in table.columns:
            cell = table.cells.get((r, c))
            if cell is None or math.isnan(cell.value):
                tds.append(f"<td class='na' title='{html.escape(str(cell.reason) if cell else '')}'>–</td>")
                continue
            cls = "sig" if cell.significant else ""
            ci = "" if math.isnan(cell.ci_low) else f"<br><small>[{cell.ci_low:.2f}, {cell.ci_high:.2f}]</small>"
            tds.append(f"<td class='{cls}' title='p={cell.p:.3g}, n={cell.n}'>{cell.value:.3f}{ci}</td>")
        body.append(f"<tr><th>{html.escape(r)}</th>{''.join(tds)}</tr>")
    for fam, by_col in table.family.items():
        tds = "".join(f"<td>{'–' if by_col[c] is None else f'{by_col[c].value:.3f}'}</td>" for c in table.columns)
        body.append(f"<tr class='fam'><th>{fam}</th>{tds}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(body)}</table>"


def write_report(result, out_dir: Path) -> Path:
    table = result.table()
    img = lambda b: f"<img alt='plot' src='data:image/png;base64,{base64.b64encode(b).decode()}'>"
    binary = [k for k in ("ANY_ERROR", "CORRECT", "NO_WRONG_STEP", "VALID", "MISS") if k in result.label_values]
    dist_label = binary[0] if binary else next(iter(result.label_values))
    sizes = "".join(f"<li>{html.escape(k)}: {v} labelled chains</li>" for k, v in result.label_counts.items())
    step = f"<h2>Step level</h2>{_html_table(Table(result.step_cells))}" if result.step_cells else ""
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ROSCOE meta-evaluation: {html.escape(result.name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}} th{{background:#f4f4f4}} td.sig{{font-weight:bold}}
tr.fam td,tr.fam th{{background:#eef4ff}} td.na{{color:#999}} code{{font-size:11px;word-break:break-all}}</style>
</head><body>
<h1 id="title">ROSCOE meta-evaluation: {html.escape(result.name)}</h1>
<p>{result.n_chains} chains. Somers' D(score | human label), label first; bold: p &lt; 0.05;
brackets: seeded bootstrap 95 % CI over chains. Labels: 1 = good, 0 = an error (Likert: higher is better).</p>
<p>Signature: <code>{html.escape(result.signature)}</code></p>
<ul>{sizes}</ul>
<h2>Chain level</h2>
{_html_table(table)}
<p><small>{html.escape(ORACLE_NOTE)}</small></p>
{step}
<h2>Heatmap</h2>{img(heatmap(table))}
<h2>Score distributions by {html.escape(dist_label)}</h2>{img(distributions(result, dist_label))}
<p><small>Timings (s): {html.escape(str(result.seconds))}</small></p>
</body></html>
"""
    path = out_dir / f"{result.name}.report.html"
    path.write_text(doc, encoding="utf-8")
    return path
