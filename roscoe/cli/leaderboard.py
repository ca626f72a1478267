"""``roscoe leaderboard``: tasks and untrusted submissions on a SQLite board.  A task error
(``TaskError``, a ValueError) reaches ``roscoe.cli.main`` and exits 2 with its message.

Exit codes of ``submit``: 0 scored, 2 rejected (the report on standard error), 1 failed while
scoring."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from . import common
from .common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError


def register(sub) -> None:
    p = sub.add_parser("leaderboard", help="score submissions against versioned tasks on a SQLite board")
    lb = p.add_subparsers(dest="action", required=True)

    c = lb.add_parser("create-task", help="a task from a dataset file, with its scoring config fixed")
    _board_task(c)
    c.add_argument("--from", dest="source", required=True, help="JSONL dataset: id, context and reference fields")
    for name, default in (("id", "id"), ("context", "context"), ("reference", "reference")):
        c.add_argument(f"--{name}-field", default=default, help=f"field holding the {name} (default {default})")
    from ..chains import DEFAULT_SPLITTERS

    for name in ("context", "steps", "reference"):
        c.add_argument(f"--{name}-splitter", default=DEFAULT_SPLITTERS[name],
                       help=f"how a string {name} is split (default {DEFAULT_SPLITTERS[name]})")
    c.add_argument("--scores", default=None, help="the scores (default: all with references, else reference-free)")
    c.add_argument("--rank-by", required=True, help="the one score that orders the board")
    c.add_argument("--preset", default="lite")
    c.add_argument("--mode", default="paper", choices=("paper", "parlai"))
    c.add_argument("--limit", type=int, default=0, help="only the first N chains of the file")
    c.add_argument("--max-bytes", type=int, default=64 * 2**20, help="largest submission file (default 64 MB)")
    c.add_argument("--max-items", type=int, default=1000, help="most steps per chain")
    c.add_argument("--max-chars", type=int, default=100_000, help="most characters per chain (with context, reference)")
    c.add_argument("--time-limit", type=float, default=None, help="seconds of scoring per submission")
    c.add_argument("--max-per-day", type=int, default=None, help="scored submissions per submitter per UTC day")
    c.add_argument("--missing", choices=("reject", "worst"), default="reject",
                   help="a task id without a line: reject the file (default), or score it as each score's worst")
    c.set_defaults(func=create_task, extra="io")

    s = lb.add_parser("submit", help="validate, score and record one submission file")
    _board_task(s)
    s.add_argument("file", help="JSONL submission: {\"id\", \"steps\"} per line")
    s.add_argument("--name", required=True)
    s.add_argument("--submitter", default="")
    s.add_argument("--metadata", default=None, help="a JSON object kept with the row")
    s.add_argument("--report-json", default=None, help="write the outcome and every problem here as JSON")
    s.set_defaults(func=submit, extra="io")

    w = lb.add_parser("show", help="the board with CIs, rank groups, rank intervals and p against the leader")
    _board_task(w)
    w.add_argument("--format", choices=("text", "json", "csv"), default="text")
    w.set_defaults(func=show, extra="io")

    r = lb.add_parser("render", help="a self-contained index.html and board.md")
    _board_task(r)
    r.add_argument("-o", "--out-dir", required=True)
    r.set_defaults(func=render, extra="io")

    x = lb.add_parser("rescore", help="score every submission again under the current config")
    _board_task(x)
    x.set_defaults(func=rescore, extra="io")

    t = lb.add_parser("tasks", help="the tasks of a board")
    t.add_argument("board")
    t.set_defaults(func=tasks, extra="io")


def _board_task(p) -> None:
    p.add_argument("board", help="the board's SQLite file (created if missing)")
    p.add_argument("task")
    if p.prog.split()[-1] in ("create-task", "submit", "rescore"):
        p.add_argument("--device", default="auto")
        p.add_argument("--dtype", default="auto", choices=common.DTYPES)


def _board(args):
    from ..leaderboard import Board

    board = Path(args.board)
    if args.action != "create-task" and not board.exists():
        raise UsageError(f"{board}: no such board (create-task makes one)")
    if not board.parent.is_dir():
        raise UsageError(f"{board.parent}: no such directory for the board")
    return Board(args.board, device=getattr(args, "device", "auto"), dtype=getattr(args, "dtype", "auto"))


def create_task(args) -> int:
    from ..chains import FieldMap
    from ..leaderboard import Limits

    limits = Limits(max_bytes=args.max_bytes, max_items=args.max_items or None, max_chars=args.max_chars or None,
                    time_limit=args.time_limit, max_per_day=args.max_per_day, missing=args.missing)
    board = _board(args)
    info = board.create_task(args.task, args.source, rank_by=args.rank_by, scores=args.scores, preset=args.preset,
                             mode=args.mode, fields=FieldMap(args.id_field, args.context_field, "steps",
                                                             args.reference_field),
                             split={"context": args.context_splitter, "steps": args.steps_splitter,
                                    "reference": args.reference_splitter}, limits=limits, limit=args.limit)
    print(f"task {info['task']}: {info['chains']} chains, ranked by {info['rank_by']}; scores "
          f"{', '.join(info['scores'])}\ntask hash: {info['task_hash']}\nsignature: {info['signature']}")
    return EXIT_OK


def submit(args) -> int:
    from ..leaderboard.render import terminal_safe

    metadata = None
    if args.metadata is not None:
        try:
            metadata = json.loads(args.metadata)
        except json.JSONDecodeError as err:
            raise UsageError(f"--metadata is not JSON: {err.msg}") from None
    board = _board(args)
    out = board.submit(args.task, args.file, name=args.name, submitter=args.submitter, metadata=metadata)
    if args.report_json:
        Path(args.report_json).write_text(json.dumps(out.as_dict(), indent=2, ensure_ascii=False) + "\n")
    who = terminal_safe(args.name)
    if out.status == "rejected":
        print(f"rejected {who}: {out.n_problems} problem(s) ({out.reason})", file=sys.stderr)
        for line in out.report().splitlines():
            print(terminal_safe(line), file=sys.stderr)
        return EXIT_USAGE
    if out.status == "failed":
        print(f"failed {who}: {terminal_safe(out.reason)} after {out.seconds:.1f} s; recorded, not ranked",
              file=sys.stderr)
        return EXIT_FAIL
    print(f"scored {who} (submission {out.submission}) in {out.seconds:.1f} s"
          + (f"; {len(out.missing)} missing chain(s) scored as the worst value" if out.missing else ""))
    print(f"signature: {out.signature}")
    return EXIT_OK


def show(args) -> int:
    from ..leaderboard import render as r

    board = _board(args).standings(args.task)
    print({"text": r.text, "csv": r.csv_text, "json": lambda b: json.dumps(b, indent=2, ensure_ascii=False)}
          [args.format](board))
    return EXIT_OK


def render(args) -> int:
    from ..leaderboard import render as r

    board = _board(args).standings(args.task)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.html").write_text(r.page(board), encoding="utf-8")
    (out / "board.md").write_text(r.markdown(board), encoding="utf-8")
    print(f"wrote {out / 'index.html'} and {out / 'board.md'}")
    return EXIT_OK


def rescore(args) -> int:
    outcomes = _board(args).rescore(args.task)
    print(f"rescored {len(outcomes)} submission(s) in {sum(o.seconds for o in outcomes):.1f} s"
          + (f"\nsignature: {outcomes[0].signature}" if outcomes else ""))
    return EXIT_OK


def tasks(args) -> int:
    from ..leaderboard.render import terminal_safe

    if not Path(args.board).exists():
        raise UsageError(f"{args.board}: no such board")
    rows = _board(args).tasks()
    if not rows:
        print("no tasks")
    for t in rows:
        print(f"{terminal_safe(t['task'])}: {t['chains']} chains, {t['scored']} scored, {t['not_scored']} not scored, "
              f"ranked by {t['rank_by']}, created {t['created']}")
    return EXIT_OK
