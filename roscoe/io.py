"""Reading chains from JSONL and writing score rows as JSONL, CSV or Parquet.

Writers only ever append: rows already written are never rewritten or lost, which is what
makes ``--resume`` safe.  Parquet cannot be appended to, so its rows go to a JSONL journal
beside the output as blocks finish, and the Parquet file is written (atomically) from the
journal at the end.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
from pathlib import Path
from typing import Iterator

from .chains import Chain, FieldMap, InputError, from_record
from .profiles import PROFILES

MAX_LINE_BYTES = 16 * 2**20
# Arrays and objects nested deeper than this make a line bad.  A chain needs 2 levels (an object
# holding lists of strings) and label files a handful; thousands of levels made the JSON parser
# raise RecursionError and took the run down.
MAX_JSON_DEPTH = 64
FORMATS = ("jsonl", *PROFILES)
STDOUT = "-"  # an output path meaning JSONL rows on standard output


def read_lines(path: str | os.PathLike, *, name: str | None = None, start: int = 0, first_line: int = 1,
               stop_line: int | None = None) -> Iterator[tuple[int, object]]:
    """Yield (line number, parsed JSON or InputError) for every non-blank line; errors name the
    file as ``name`` (default: the path).  A part of the file is read from byte ``start``, which
    must begin line ``first_line`` (see ``line_offsets``), up to but not including ``stop_line``."""
    src = name or str(path)
    with open(path, "rb") as fh:
        fh.seek(start)
        for lineno, raw in enumerate(fh, start=first_line):
            if stop_line is not None and lineno >= stop_line:
                break
            if len(raw) > MAX_LINE_BYTES:
                yield lineno, InputError(f"line is {len(raw)} bytes, over the {MAX_LINE_BYTES}-byte limit",
                                         source=src, line=lineno)
                continue
            try:
                # a byte-order mark that Windows tools put at the start of a file is not data
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                yield lineno, InputError(f"not UTF-8 (byte {err.start})", source=src, line=lineno)
                continue
            if not text.strip():
                continue
            try:
                value = json.loads(text)
                # counting brackets (strings included) is cheap and rules out nearly every line
                deep = raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH
            except json.JSONDecodeError as err:
                yield lineno, InputError(f"malformed JSON: {err.msg} at column {err.colno}", source=src, line=lineno)
                continue
            except RecursionError:  # deeper than the parser goes, so deeper than the limit
                deep = True
            if deep:
                yield lineno, InputError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep", source=src, line=lineno)
                continue
            yield lineno, value


def json_depth(value) -> int:
    """How many arrays and objects are nested in ``value`` at its deepest (0 for a scalar),
    found without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, depth)
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def count_lines(path) -> int:
    """Lines in the file (a last line without its line end counts), blank ones included."""
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def line_offsets(path, lines) -> list[int]:
    """The byte offset at which each of ``lines`` (line numbers, ascending) begins."""
    wanted = iter(lines)
    target = next(wanted, None)
    out, pos = [], 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            while target is not None and target == lineno:
                out.append(pos)
                target = next(wanted, None)
            if target is None:
                break
            pos += len(raw)
    while target is not None:  # past the last line
        out.append(pos)
        target = next(wanted, None)
    return out


def to_chain(rec, *, fmt="jsonl", fields=FieldMap(), split=None, keep_fields=(), source=None, line=None) -> Chain:
    """One parsed input line as a Chain, in the given input layout (InputError if it is bad)."""
    if fmt == "jsonl":
        return from_record(rec, fields=fields, split=split, keep_fields=keep_fields, source=source, line=line)
    return PROFILES[fmt](rec, source=source, line=line, keep_fields=keep_fields)


def read_chains(path, *, fmt="jsonl", fields=FieldMap(), split=None, keep_fields=(),
                name: str | None = None) -> Iterator[tuple[int, Chain | InputError]]:
    """Yield (line number, Chain or InputError); duplicate ids are errors on the later line."""
    src = name or str(path)
    seen: dict[str, int] = {}
    for lineno, rec in read_lines(path, name=src):
        if isinstance(rec, InputError):
            yield lineno, rec
            continue
        try:
            chain = to_chain(rec, fmt=fmt, fields=fields, split=split, keep_fields=keep_fields, source=src,
                             line=lineno)
        except InputError as err:
            if err.chain_id is not None:
                if str(err.chain_id) in seen:
                    err.chain_id = None  # its row would duplicate an id already written
                else:
                    seen[str(err.chain_id)] = lineno
            yield lineno, err
            continue
        key = str(chain.id)
        if key in seen:
            yield lineno, InputError(f"duplicate id {chain.id!r} (first on line {seen[key]})", source=src,
                                     line=lineno, field=fields.id if fmt == "jsonl" else "id")
            continue
        seen[key] = lineno
        yield lineno, chain


# ---------------------------------------------------------------------------- output


def output_format(path: str | os.PathLike) -> str:
    if str(path) == STDOUT:
        return "jsonl"
    suffix = Path(path).suffix.lower()
    fmt = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(suffix)
    if fmt is None:
        raise ValueError(f"output {path}: unknown extension {suffix!r}; use .jsonl, .csv or .parquet")
    return fmt


def meta_path(path) -> Path:
    return Path(str(path) + ".meta.json")


def journal_path(path) -> Path:
    return Path(str(path) + ".partial.jsonl")


def _json_safe(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def drop_torn_row(path) -> bool:
    """Cut off a last row that an interrupted write left without its line end (rows are written
    whole and flushed per block, so only the last can be torn).  The row was never complete:
    ``--resume`` scores its chain again.  Returns whether a row was cut."""
    path = Path(path)
    target = journal_path(path) if output_format(path) == "parquet" else path
    if not target.exists() or target.stat().st_size == 0:
        return False
    with open(target, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return False
        pos, keep = fh.seek(0, os.SEEK_END), 0
        while pos > 0:  # back to the last line end, a block at a time
            start = max(0, pos - (1 << 16))
            fh.seek(start)
            cut = fh.read(pos - start).rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            pos = start
        fh.truncate(keep)
    return True


def existing_ids(path) -> list[str]:
    """Ids already in an output (and its Parquet journal), as strings, in order."""
    path = Path(path)
    fmt = output_format(path)
    ids: list = []
    if path.exists():
        if fmt == "jsonl":
            with open(path, encoding="utf-8") as fh:
                ids += [str(json.loads(line)["id"]) for line in fh if line.strip()]
        elif fmt == "csv":
            with open(path, encoding="utf-8", newline="") as fh:
                ids += [row["id"] for row in csv.DictReader(fh)]
        else:
            import pyarrow.parquet as pq

            ids += pq.read_table(path, columns=["id"]).column("id").to_pylist()
    jp = journal_path(path)
    if fmt == "parquet" and jp.exists():
        with open(jp, encoding="utf-8") as fh:
            ids += [str(json.loads(line)["id"]) for line in fh if line.strip()]
    return ids


class RowWriter:
    """Appends score rows.  Columns: id, passthrough fields, scores, reasons (+ details).
    ``path`` "-" writes JSONL to standard output, flushed per block."""

    def __init__(self, path, columns: list[str], *, append: bool):
        self.path = Path(path)
        self.fmt = output_format(path)
        self.columns = columns
        self.count = 0
        self._stdout = str(path) == STDOUT
        if self._stdout:
            self._fh = sys.stdout
            return
        target = journal_path(path) if self.fmt == "parquet" else self.path
        new_file = not (append and target.exists() and target.stat().st_size > 0)
        self._fh = open(target, "a" if append else "w", encoding="utf-8", newline="")
        if self.fmt == "csv":
            self._csv = csv.DictWriter(self._fh, fieldnames=columns, extrasaction="raise")
            if new_file:
                self._csv.writeheader()

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            if self.fmt == "csv":
                self._csv.writerow({k: self._csv_cell(k, row.get(k)) for k in self.columns})
            else:
                self._fh.write(json.dumps({k: _json_safe(row.get(k)) for k in self.columns if k in row},
                                          ensure_ascii=False) + "\n")
        self._fh.flush()
        if not self._stdout:  # a pipe cannot be synced
            os.fsync(self._fh.fileno())
        self.count += len(rows)

    @staticmethod
    def _csv_cell(key, value):
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        return value

    def close(self, score_names, metadata: dict | None = None) -> None:
        if self._stdout:
            return
        self._fh.close()
        if self.fmt == "parquet":
            write_parquet(self.path, journal_path(self.path), list(score_names), self.columns, metadata)


def iter_rows(path) -> Iterator[dict]:
    """Rows of an output file, one at a time (scores as floats or None, reasons as a dict)."""
    fmt = output_format(path)
    if fmt == "jsonl":
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)
    elif fmt == "csv":
        with open(path, encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh):
                r["reasons"] = json.loads(r["reasons"]) if r.get("reasons") else {}
                yield r
    else:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            for r in batch.to_pylist():
                r["reasons"] = json.loads(r["reasons"]) if r.get("reasons") else {}
                yield r


def _number(v) -> float:
    return math.nan if v is None or v == "" else float(v)


class SummaryCollector:
    """The run summary of rows seen one at a time: only one float per row and score is held
    (8 bytes x rows x scores), never the rows themselves."""

    def __init__(self, names):
        from array import array

        self.names = list(names)
        self.cols = {n: array("d") for n in self.names}
        self.counts: dict[str, dict[str, int]] = {n: {} for n in self.names}

    def add(self, row: dict) -> None:
        why = row.get("reasons") or {}
        for n in self.names:
            self.cols[n].append(_number(row.get(n)))
            if n in why:
                self.counts[n][why[n]] = self.counts[n].get(why[n], 0) + 1

    def summary(self) -> dict:
        import numpy as np

        from .table import summarize

        return summarize(self.names, {n: np.frombuffer(self.cols[n], dtype=float) for n in self.names}, self.counts)


def summarize_file(path, names) -> dict:
    """The run summary of an output file, streamed (see SummaryCollector)."""
    collector = SummaryCollector(names)
    for r in iter_rows(path):
        collector.add(r)
    return collector.summary()


def write_parquet(path: Path, journal: Path, score_names: list[str], columns: list[str], metadata=None) -> None:
    """Rewrite ``path`` as its previous rows followed by the journal's, streamed in batches
    and replaced atomically; the journal is removed only after the new file is in place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Scores are float64 (null where undefined); every other column is a string, with
    # non-string passthrough values JSON-encoded, so one schema fits every row.
    schema = pa.schema([pa.field(c, pa.float64() if c in score_names else pa.string()) for c in columns],
                       metadata=metadata)

    def encode(r):
        r["id"] = str(r["id"])
        for c in columns:
            if c not in score_names and not isinstance(r.get(c), (str, type(None))):
                r[c] = json.dumps(r[c], ensure_ascii=False)
        return r

    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        if path.exists():
            for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
                writer.write_table(pa.Table.from_batches([batch]).cast(schema))
        if journal.exists():
            rows = []
            with open(journal, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        rows.append(encode(json.loads(line)))
                    if len(rows) == 10_000:
                        writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                        rows = []
            if rows:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    os.replace(tmp, path)
    journal.unlink(missing_ok=True)


def write_meta(path, meta: dict) -> None:
    mp = meta_path(path)
    tmp = mp.with_name(mp.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False, default=str))
    os.replace(tmp, mp)
