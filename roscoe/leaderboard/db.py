"""The board's SQLite file: schema and connection.  WAL mode, a busy timeout long enough for
another process's write, every write in one ``BEGIN IMMEDIATE`` transaction, and only
parameterised queries (names and texts from submitters never reach SQL as code)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    name TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    config TEXT NOT NULL,        -- JSON: preset, mode, scores, rank_by, fields, split, limits
    task_hash TEXT NOT NULL,     -- sha256 of the chains and the config
    signature TEXT NOT NULL      -- the scorer's signature under which rows are ranked
);
CREATE TABLE IF NOT EXISTS task_chains (
    task TEXT NOT NULL REFERENCES tasks(name),
    position INTEGER NOT NULL,
    id TEXT NOT NULL,            -- str() of the id, as submissions are matched
    raw_id TEXT NOT NULL,        -- JSON of the id as the task file gave it
    context TEXT NOT NULL,       -- JSON list of sentences (never shown to submitters)
    reference TEXT,              -- JSON list of steps, or NULL
    PRIMARY KEY (task, id)
);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL REFERENCES tasks(name),
    name TEXT NOT NULL,
    submitter TEXT NOT NULL,
    metadata TEXT NOT NULL,      -- JSON object
    file_sha256 TEXT NOT NULL,
    submitted TEXT NOT NULL,     -- UTC, ISO 8601
    day TEXT NOT NULL,           -- UTC date, for --max-per-day
    status TEXT NOT NULL,        -- scored | rejected | failed
    reason TEXT,                 -- why rejected or failed
    report TEXT,                 -- JSON list of problems of a rejected file
    signature TEXT,
    task_hash TEXT,
    seconds REAL,
    n_missing INTEGER
);
CREATE INDEX IF NOT EXISTS submissions_by_task ON submissions (task, status);
CREATE TABLE IF NOT EXISTS submission_steps (
    submission INTEGER PRIMARY KEY REFERENCES submissions(id),
    steps TEXT NOT NULL,         -- JSON: task id -> the submitted steps (for rescore)
    missing TEXT NOT NULL        -- JSON: task ids scored as the worst value (--missing worst)
);
CREATE TABLE IF NOT EXISTS scores (
    submission INTEGER NOT NULL REFERENCES submissions(id),
    chain TEXT NOT NULL,
    score TEXT NOT NULL,
    value REAL,                  -- NULL: NaN
    reason TEXT,                 -- why NaN, or "missing" for a chain scored as the worst value
    PRIMARY KEY (submission, score, chain)
) WITHOUT ROWID;
"""


def connect(path: Path | str) -> sqlite3.Connection:
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise FileNotFoundError(f"{path.parent}: no such directory for the board")
    db = sqlite3.connect(path, timeout=120, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(SCHEMA)  # idempotent: every statement is IF NOT EXISTS
    return db


class transaction:
    """``with transaction(db):`` one write transaction, committed on success, rolled back on
    any error (so a failed or killed write leaves nothing)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, tb):
        if not self.db.in_transaction:
            return False
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        return False
