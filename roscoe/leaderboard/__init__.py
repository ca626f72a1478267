"""Leaderboards: untrusted submission files scored against versioned tasks in one SQLite
board, with validation reports, CIs, paired significance and rank groups, and a static page.

>>> from roscoe.leaderboard import Board                       # doctest: +SKIP
>>> board = Board("board.sqlite")                              # doctest: +SKIP
>>> board.create_task("gsm8k", "task.jsonl", rank_by="faithfulness")   # doctest: +SKIP
>>> board.submit("gsm8k", "run.jsonl", name="my model")        # doctest: +SKIP
>>> board.standings("gsm8k")["rows"][0]["name"]                # doctest: +SKIP
"""
from .board import Board, Limits, Outcome, TaskError
from .validate import Problem

__all__ = ["Board", "Limits", "Outcome", "Problem", "TaskError"]
