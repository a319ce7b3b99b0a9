"""The run table (``run.ecsv``): one row per input file, what happened to it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
from astropy.table import Table

from .atomic import atomic_path

RUN_TABLE = "run.ecsv"
#: name, dtype, description of every run-table column
RUN_COLUMNS = (
    ("file", str, "the input file, as given"),
    ("status", str, "ok (catalogue written), skipped (done before), error (see error_type and message)"),
    ("n_flares", np.int64, "flares in the catalogue (-1 unless ok)"),
    ("error_type", str, "the error's class (e.g. CorruptFileError, WorkerDiedError)"),
    ("message", str, "what went wrong and what to do"),
    ("warnings", str, "warnings raised while the file was processed, ' | '-separated"),
    ("seconds", np.float64, "processing time of the file"),
    ("output", str, "the catalogue's name in the output folder"),
    ("peak_mb", np.float64, "peak resident memory of the process that processed it, MB"),
)
_DEFAULTS = {"n_flares": -1, "seconds": np.nan, "peak_mb": np.nan}


def run_table(rows: Iterable[dict]) -> Table:
    """A run table from row dicts (extra keys ignored, missing ones defaulted)."""
    rows = list(rows)
    cols = {}
    for name, dtype, _ in RUN_COLUMNS:
        values = [r.get(name, _DEFAULTS.get(name, "")) for r in rows]
        cols[name] = np.array(values, dtype=dtype) if rows else np.empty(0, dtype="U1" if dtype is str else dtype)
    t = Table(cols)
    for name, _, desc in RUN_COLUMNS:
        t[name].description = desc
    return t


def _rows_of(table: Table) -> list[dict]:
    """A run table's rows as dicts, column by column (masked empty strings as "")."""
    cols = {}
    for name in table.colnames:
        col = table[name]
        if getattr(col, "mask", None) is not None and np.any(col.mask):
            col = col.filled("" if col.dtype.kind in "US" else np.nan)
        cols[name] = np.asarray(col).tolist()
    return [dict(zip(cols, values)) for values in zip(*cols.values())]


def read_run_table(path: str | os.PathLike) -> Table:
    """Read a ``run.ecsv`` (empty strings as "", not masked as ``Table.read`` gives them)."""
    return run_table(_rows_of(Table.read(path, format="ascii.ecsv")))


def merge_rows(previous: Table | None, rows: list[dict]) -> Table:
    """The run table after this run: previous rows (by output) replaced by this run's, except that a
    "skipped" row keeps the earlier row of its file when there is one. Ordered by output name."""
    merged: dict[str, dict] = {}
    if previous is not None:
        merged = {str(r["output"]): r for r in _rows_of(previous)}
    for r in rows:
        if r["status"] == "skipped" and r["output"] in merged and merged[r["output"]]["status"] != "error":
            continue
        merged[r["output"]] = r
    return run_table(merged[k] for k in sorted(merged))


def write_run_table(out_dir: str | os.PathLike, previous: Table | None, rows: list[dict]) -> Table:
    """Merge this run's rows into ``previous`` and write ``run.ecsv`` atomically; returns what was written."""
    table = merge_rows(previous, rows)
    with atomic_path(Path(out_dir) / RUN_TABLE) as tmp:
        table.write(tmp, format="ascii.ecsv")
    return table
