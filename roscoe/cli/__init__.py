"""The ``roscoe`` command line: one module per subcommand, each registering its own parser.
Exit codes: 0 ok, 1 scoring failure, 2 bad usage or input."""
from __future__ import annotations

import argparse
import sys

from .. import __version__, registry
from . import correlate, diag_eval, leaderboard, meta_eval, models, perturb, score, scores, train_embedder
from .common import EXIT_FAIL, EXIT_USAGE, UsageError

COMMANDS = (score, scores, correlate, meta_eval, perturb, diag_eval, leaderboard, models, train_embedder)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roscoe", description="ROSCOE scores for step-by-step reasoning chains")
    parser.add_argument("--version", action="version", version=f"roscoe-metrics {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, registry.UnknownScoreError, ValueError, FileExistsError) as err:
        print(f"roscoe {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as err:
        print(f"roscoe {args.command}: error: the optional package {err.name!r} is missing; "
              f"pip install 'roscoe-metrics[{args.extra}]'", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; rows written so far are kept (use --resume)", file=sys.stderr)
        return EXIT_FAIL


__all__ = ["build_parser", "main", "UsageError"]
