"""The board as text (terminal), CSV, Markdown and a self-contained HTML page (inline CSS and
JS, no network).  Every name, submitter and reason is submitter-controlled: escaped for HTML
and Markdown, and stripped of control characters for the terminal."""
from __future__ import annotations

import csv
import html
import io
import json

from .validate import has_control


def terminal_safe(text) -> str:
    """Text with control characters (terminal escape sequences) shown as escapes."""
    text = str(text)
    return text.encode("unicode_escape").decode("ascii") if has_control(text) else text


def _by(row: dict, escape) -> str:
    return f" ({escape(row['submitter'])})" if row.get("submitter") else ""


def _fmt(v, digits=4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _p(v) -> str:
    return "-" if v is None else (f"{v:.4f}" if v >= 1e-4 else f"{v:.1e}")


def text(board: dict) -> str:
    head = ["rank", "group", "rank 95%", "name", "submitter", "n", board["rank_by"], "95% CI", "p vs leader", ""]
    body = [[str(r["rank"]), str(r["group"]), f"{r['rank_ci'][0]}-{r['rank_ci'][1]}", terminal_safe(r["name"]),
             terminal_safe(r["submitter"]), str(r["n"]), _fmt(r["value"]),
             f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]", _p(r["p_vs_leader"]),
             "*" if r["significant_vs_leader"] else ""] for r in board["rows"]]
    width = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, width)).rstrip()  # noqa: E731
    out = [f"task {terminal_safe(board['task'])}: {len(board['rows'])} ranked by {board['rank_by']} "
           f"({board['paired_chains']} of {board['chains']} chains paired)", line(head),
           line(["-" * w for w in width]), *map(line, body)]
    out.append(f"* significantly worse than the leader (approximate randomisation, {board['n_trials']} trials, "
               f"Holm-corrected, p < {board['alpha']}); groups: not significantly worse than the group's best")
    if board["not_ranked"]:
        out.append("\nnot ranked:")
        out += [f"  {terminal_safe(r['name'])}{_by(r, terminal_safe)}: {r['status']}: {terminal_safe(r['reason'])}"
                for r in board["not_ranked"]]
    out.append(f"\nsignature: {board['signature']}\ntask hash: {board['task_hash']}")
    return "\n".join(out)


def csv_text(board: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["rank", "group", "rank_ci_low", "rank_ci_high", "name", "submitter", "n", "value", "ci_low",
                "ci_high", "p_vs_leader", *(f"{s}_mean" for s in board["scores"])])
    for r in board["rows"]:
        w.writerow([r["rank"], r["group"], *r["rank_ci"], _csv_safe(r["name"]), _csv_safe(r["submitter"]), r["n"],
                    r["value"], r["ci_low"], r["ci_high"], r["p_vs_leader"],
                    *(r["scores"][s]["mean"] for s in board["scores"])])
    return buf.getvalue()


def _csv_safe(text: str) -> str:
    # a cell starting with = + - @ is a formula to a spreadsheet
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _md(text) -> str:
    return html.escape(str(text)).replace("|", "&#124;").replace("\n", " ")


def markdown(board: dict) -> str:
    out = [f"# {_md(board['task'])}: ranked by `{board['rank_by']}`", "",
           "| rank | group | rank 95% | name | submitter | n | value | 95% CI | p vs leader |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in board["rows"]:
        out.append(f"| {r['rank']} | {r['group']} | {r['rank_ci'][0]}-{r['rank_ci'][1]} | {_md(r['name'])} | "
                   f"{_md(r['submitter'])} | {r['n']} | {_fmt(r['value'])} | [{_fmt(r['ci_low'])}, "
                   f"{_fmt(r['ci_high'])}] | {_p(r['p_vs_leader'])}{' *' if r['significant_vs_leader'] else ''} |")
    if board["not_ranked"]:
        out += ["", "## Not ranked", ""]
        out += [f"- {_md(r['name'])}{_by(r, _md)}: {r['status']}: {_md(r['reason'])}" for r in board["not_ranked"]]
    out += ["", f"Signature: `{_md(board['signature'])}`", "", f"Task hash: `{board['task_hash']}`", ""]
    return "\n".join(out)


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
small{color:#666}
th{cursor:pointer;background:#f4f4f4;user-select:none}th:after{content:" \\2195";color:#999}
tr.g-odd td{background:#fafafa}.bar{position:relative;width:220px;height:12px;background:#eee}
.ci{position:absolute;top:3px;height:6px;background:#7a9cc6}.pt{position:absolute;top:0;width:2px;height:12px;background:#123}
.sig{color:#b00;font-weight:bold}code{font-size:12px;word-break:break-all}
"""

_JS = """
document.querySelectorAll('th[data-k]').forEach(function(th){th.addEventListener('click',function(){
 var tb=th.closest('table').tBodies[0],k=+th.dataset.k,num=th.dataset.num==='1',asc=th.dataset.asc!=='1';
 th.dataset.asc=asc?'1':'0';var rows=Array.prototype.slice.call(tb.rows);
 rows.sort(function(a,b){var x=a.cells[k].dataset.v||a.cells[k].textContent,y=b.cells[k].dataset.v||b.cells[k].textContent;
  if(num){x=parseFloat(x);y=parseFloat(y);}return (x<y?-1:x>y?1:0)*(asc?1:-1);});
 rows.forEach(function(r){tb.appendChild(r);});});});
"""


def page(board: dict) -> str:
    e = html.escape
    lo = min([r["ci_low"] for r in board["rows"] if r["ci_low"] is not None] or [0.0])
    hi = max([r["ci_high"] for r in board["rows"] if r["ci_high"] is not None] or [1.0])
    span = (hi - lo) or 1.0
    pos = lambda v: 100.0 * (v - lo) / span  # noqa: E731
    heads = [("rank", 1), ("group", 1), ("rank 95%", 0), ("name", 0), ("submitter", 0), ("n", 1),
             (board["rank_by"], 1), (f"95% CI (axis {lo:.3f} to {hi:.3f})", 0), ("p vs leader", 1)]
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
           "script-src 'unsafe-inline'\">",
           f"<title>{e(board['task'])}: leaderboard</title><style>{_CSS}</style></head><body>",
           f"<h1>{e(board['task'])}</h1>",
           f"<p>Ranked by <b>{e(board['rank_by'])}</b> ({board['mode']} mode) over {board['chains']} chains "
           f"({board['paired_chains']} paired). Groups hold the submissions not significantly worse than the group's "
           f"best; <span class=sig>*</span> marks a submission significantly worse than the leader "
           f"(approximate randomisation, {board['n_trials']} trials, Holm-corrected, p &lt; {board['alpha']}). "
           f"Intervals: bootstrap, {board['n_boot']} resamples, 95 %.</p>",
           "<table id=board><thead><tr>" + "".join(f"<th data-k={k} data-num={int(num)}>{e(h)}</th>"
                                                    for k, (h, num) in enumerate(heads)) + "</tr></thead><tbody>"]
    for r in board["rows"]:
        bar = ""
        if r["value"] is not None and r["ci_low"] is not None:
            bar = (f"<div class=bar title=\"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]\"><div class=ci style=\"left:"
                   f"{pos(r['ci_low']):.2f}%;width:{max(pos(r['ci_high']) - pos(r['ci_low']), 0.5):.2f}%\"></div>"
                   f"<div class=pt style=\"left:{pos(r['value']):.2f}%\"></div></div>")
        sig = " <span class=sig>*</span>" if r["significant_vs_leader"] else ""
        out.append(f"<tr class=g-{'odd' if r['group'] % 2 else 'even'} data-name=\"{e(r['name'])}\">"
                   f"<td>{r['rank']}</td><td>{r['group']}</td><td data-v={r['rank_ci'][0]}>{r['rank_ci'][0]}-"
                   f"{r['rank_ci'][1]}</td><td class=name>{e(r['name'])}</td><td>{e(r['submitter'])}</td>"
                   f"<td>{r['n']}</td><td data-v=\"{r['value']}\">{_fmt(r['value'])}</td><td>{bar}</td>"
                   f"<td data-v=\"{r['p_vs_leader'] if r['p_vs_leader'] is not None else 1}\">"
                   f"{_p(r['p_vs_leader'])}{sig}</td></tr>")
    out.append("</tbody></table>")
    if board["not_ranked"]:
        out.append("<h2>Not ranked</h2><ul id=not-ranked>")
        out += [f"<li><b>{e(r['name'])}</b>{_by(r, e)}: {e(r['status'])}: {e(str(r['reason']))}</li>"
                for r in board["not_ranked"]]
        out.append("</ul>")
    # every score, a row each; the submissions in rank order as columns
    out.append("<h2>Every score</h2><table id=scores><thead><tr><th data-k=0 data-num=0>score</th>" + "".join(
        f"<th data-k={k} data-num=1>{r['rank']}. {e(r['name'])}</th>" for k, r in enumerate(board["rows"], start=1))
        + "</tr></thead><tbody>")
    for s in board["scores"]:
        out.append(f"<tr><td>{e(s)}</td>" + "".join(
            f"<td data-v=\"{r['scores'][s]['mean']}\">{_fmt(r['scores'][s]['mean'])} <small>[{_fmt(r['scores'][s]['ci_low'])}, "
            f"{_fmt(r['scores'][s]['ci_high'])}]</small></td>" for r in board["rows"]) + "</tr>")
    out.append("</tbody></table>")
    out.append(f"<p>Signature: <code>{e(board['signature'])}</code><br>Task hash: <code>{e(board['task_hash'])}"
               f"</code></p><script>{_JS}</script>")
    out.append(f"<script type=application/json id=data>{_json_for_html(board)}</script></body></html>")
    return "\n".join(out)


def _json_for_html(board: dict) -> str:
    # inside <script>, "</" would end the element: escape every "<", ">" and "&"
    return json.dumps(board).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
