"""The run's combined outputs, rebuilt from the per-file catalogues: ``flares.fits`` and ``stars.ecsv``.

``flares.fits`` holds every flare row of every ``*.flares.ecsv`` in the output folder, with the
light curve's file, TIC, sector, camera, CCD and cadence in front; ``stars.ecsv`` one row per light
curve (per catalogue), flares or not. Both are rebuilt at the end of every run from the per-file
outputs alone (their meta holds what a star row needs), so a resumed run gives exactly what an
uninterrupted one does. Rows are ordered by file name (then as in each catalogue).

Reading 20,000 ECSV files takes minutes, so a hidden index (``.flarelight-index.npz``) keeps each
catalogue's summary keyed by its name, size and modification time; a catalogue that changed, or that the
index does not know, is read again. Deleting the index only makes the next rebuild slower.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from astropy.table import Table

from .atomic import atomic_path
from .catalogue import COLUMNS, read_catalogue, write_catalogue
from .sweep_names import CATALOGUE_SUFFIX

FLARES = "flares.fits"
STARS = "stars.ecsv"
INDEX = ".flarelight-index.npz"

#: light-curve columns placed before the catalogue's columns in flares.fits
FILE_COLUMNS = (("file", "U"), ("tic", "i8"), ("sector", "i8"), ("camera", "i8"), ("ccd", "i8"),
                ("cadence_s", "f8"))
#: stars.ecsv columns: name, dtype, unit, description
STAR_COLUMNS = (
    ("file", "U", None, "light-curve file name"),
    ("tic", "i8", None, "TIC id (-1 if unknown)"),
    ("sector", "i8", None, "TESS sector (-1 if unknown)"),
    ("camera", "i8", None, "camera (-1 if unknown)"),
    ("ccd", "i8", None, "CCD (-1 if unknown)"),
    ("cadence_s", "f8", "s", "cadence"),
    ("observing_d", "f8", "d", "last minus first finite time stamp of the light curve"),
    ("n_cadences", "i8", None, "rows of the light curve"),
    ("n_used", "i8", None, "cadences the model used (finite, passing the quality rules)"),
    ("frac_masked", "f8", None, "1 - n_used / n_cadences"),
    ("exposure_d", "f8", "d", "n_used x cadence: the time flares could be found in"),
    ("n_flares", "i8", None, "flares in the catalogue"),
    ("flares_per_day", "f8", "1 / d", "n_flares / exposure_d"),
)
#: catalogue meta that describe one light curve (the rest, model and parameters, is shared by a run)
PER_FILE_META = ("tic", "sector", "camera", "ccd", "file", "source", "cadence_s", "exposure_d", "max_step",
                 "n_cadences", "n_used", "observing_d", "nonekeys")


@dataclass(frozen=True)
class FileSummary:
    """What one per-file catalogue contributes to the combined outputs.

    Attributes
    ----------
    name : str
        The catalogue's file name (the index key).
    mtime_ns, size : int
        The catalogue file's modification time and size when summarised.
    star : dict
        Its ``stars.ecsv`` row.
    flares : dict of ndarray
        Its catalogue columns (``COLUMNS``), one entry per flare.
    shared : str
        JSON of the meta it shares with the run (model and parameters).
    """

    name: str
    mtime_ns: int
    size: int
    star: dict
    flares: dict
    shared: str


def _int(v: Any) -> int:
    return -1 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def file_summary(table: Table, name: str, *, mtime_ns: int = 0, size: int = 0) -> FileSummary:
    """Summarise a per-file catalogue (as written by a bulk run, or read back) for the combined outputs."""
    m = table.meta
    n_cad = _int(m.get("n_cadences"))
    n_used = _int(m.get("n_used"))
    exposure = float(m.get("exposure_d", float("nan")))
    star = {
        "file": str(m.get("file") or name[: -len(CATALOGUE_SUFFIX)]),
        "tic": _int(m.get("tic")), "sector": _int(m.get("sector")), "camera": _int(m.get("camera")),
        "ccd": _int(m.get("ccd")), "cadence_s": float(m.get("cadence_s", float("nan"))),
        "observing_d": float(m.get("observing_d", float("nan"))), "n_cadences": n_cad, "n_used": n_used,
        "frac_masked": 1.0 - n_used / n_cad if n_cad > 0 and n_used >= 0 else float("nan"),
        "exposure_d": exposure, "n_flares": len(table),
        "flares_per_day": len(table) / exposure if exposure > 0 else float("nan"),
    }
    flares = {c: np.asarray(table[c], dtype=dt) for c, dt, _, _ in COLUMNS}
    shared = json.dumps({k: _plain(v) for k, v in m.items() if k not in PER_FILE_META}, sort_keys=True)
    return FileSummary(name=name, mtime_ns=int(mtime_ns), size=int(size), star=star, flares=flares, shared=shared)


# ----------------------------------------------------------------------------- many files as column arrays
def _dtype(dt: str) -> Any:
    return str if dt == "U" else dt


@dataclass(frozen=True)
class Block:
    """The summaries of many files as column arrays (fast at 20,000 files): per file ``name``, ``mtime_ns``,
    ``size``, ``shared``, ``count`` (flares) and the ``star:<col>`` columns; per flare the ``flare:<col>``
    columns, file after file in file order. This is also the index file's content."""

    arrays: dict

    @property
    def n_files(self) -> int:
        return int(self.arrays["count"].size)

    @classmethod
    def from_summaries(cls, summaries: list[FileSummary]) -> "Block":
        a: dict[str, np.ndarray] = {
            "name": np.array([s.name for s in summaries], dtype=str).astype("U"),
            "mtime_ns": np.array([s.mtime_ns for s in summaries], np.int64),
            "size": np.array([s.size for s in summaries], np.int64),
            "shared": np.array([s.shared for s in summaries], dtype=str).astype("U"),
            "count": np.array([len(s.flares["tpeak"]) for s in summaries], np.int64),
        }
        for c, dt, _, _ in STAR_COLUMNS:
            a["star:" + c] = np.array([s.star[c] for s in summaries], dtype=_dtype(dt))
        for c, dt, _, _ in COLUMNS:
            a["flare:" + c] = (np.concatenate([s.flares[c] for s in summaries]) if summaries
                               else np.empty(0, dt)).astype(dt)
        return cls(a)

    @classmethod
    def load(cls, path: Path) -> "Block":
        """The index file; an empty block if it is missing or unreadable (catalogues are then read again)."""
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    a = {k: z[k] for k in z.files}
                expected = {"name", "mtime_ns", "size", "shared", "count"} | {"star:" + c for c, *_ in STAR_COLUMNS} \
                    | {"flare:" + c for c, *_ in COLUMNS}
                if set(a) == expected and int(a["count"].sum()) == a["flare:tpeak"].size:
                    return cls(a)
            except (OSError, KeyError, ValueError, EOFError):  # damaged: rebuilt from the catalogues
                pass
        return cls.from_summaries([])

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **self.arrays)

    def take(self, files: np.ndarray) -> "Block":
        """The block of the files at positions ``files`` (in that order)."""
        files = np.asarray(files, np.int64)
        count = self.arrays["count"]
        starts = np.cumsum(count) - count
        n = count[files]
        rows = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + np.repeat(starts[files], n)
        return Block({k: v[rows] if k.startswith("flare:") else v[files] for k, v in self.arrays.items()})

    @staticmethod
    def concat(blocks: list["Block"]) -> "Block":
        keys = blocks[0].arrays.keys()
        return Block({k: np.concatenate([b.arrays[k] for b in blocks]) for k in keys})


# ----------------------------------------------------------------------------- rebuilding
def catalogue_files(out_dir: str | os.PathLike) -> list[os.DirEntry]:
    """The per-file catalogues in ``out_dir`` (hidden temporaries excluded), by name."""
    with os.scandir(out_dir) as it:
        found = [e for e in it if e.name.endswith(CATALOGUE_SUFFIX) and not e.name.startswith(".") and e.is_file()]
    return sorted(found, key=lambda e: e.name)


def collect(out_dir: str | os.PathLike, fresh: Iterable[FileSummary] = ()) -> Block:
    """A summary of every catalogue in ``out_dir``, by name: from ``fresh`` (this run's), the index, or the
    file itself. A summary is used only while the catalogue's size and modification time still match it.
    The index is rewritten with the result."""
    out = Path(out_dir)
    sources = [Block.from_summaries(list(fresh)), Block.load(out / INDEX)]
    where: dict[str, tuple[int, int]] = {}
    for k in (1, 0):  # this run's summaries win over the index's
        a = sources[k].arrays
        where.update({str(n): (k, i) for i, n in enumerate(a["name"])})
    picks: list[list[int]] = [[], []]
    read: list[FileSummary] = []
    order: list[tuple[int, int]] = []  # (source, position in its pick list), in name order
    for entry in catalogue_files(out):
        st = entry.stat()
        hit = where.get(entry.name)
        if hit is not None:
            a = sources[hit[0]].arrays
            if (int(a["mtime_ns"][hit[1]]), int(a["size"][hit[1]])) == (st.st_mtime_ns, st.st_size):
                order.append((hit[0], len(picks[hit[0]])))
                picks[hit[0]].append(hit[1])
                continue
        order.append((2, len(read)))
        read.append(file_summary(read_catalogue(entry.path), entry.name, mtime_ns=st.st_mtime_ns, size=st.st_size))
    parts = [sources[0].take(picks[0]), sources[1].take(picks[1]), Block.from_summaries(read)]
    offsets = np.cumsum([0] + [p.n_files for p in parts])
    block = Block.concat(parts).take(np.array([offsets[k] + i for k, i in order], np.int64))
    block.save(out / INDEX)
    return block


def _shared_meta(shared: np.ndarray) -> dict:
    """The meta every file agrees on; keys that differ are listed under ``differing``."""
    metas = [json.loads(s) for s in dict.fromkeys(str(x) for x in shared)]
    if not metas:
        return {}
    keys = sorted(set().union(*metas))
    same = {k: metas[0].get(k) for k in keys if all(k in m and m[k] == metas[0][k] for m in metas)}
    differing = [k for k in keys if k not in same]
    if differing:
        same["differing"] = ",".join(differing)
    return same


def combined_tables(block: Block) -> tuple[Table, Table]:
    """``(flares, stars)`` tables of the files of ``block`` (in its order)."""
    a = block.arrays
    flares = Table()
    for c, dt in FILE_COLUMNS:
        flares[c] = np.repeat(a["star:" + c], a["count"]).astype(_dtype(dt))
    flares["cadence_s"].unit = "s"
    for c, dt, unit, desc in COLUMNS:
        flares[c] = a["flare:" + c].astype(dt)
        flares[c].unit, flares[c].description = unit, desc
    stars = Table()
    for c, dt, unit, desc in STAR_COLUMNS:
        stars[c] = a["star:" + c].astype(_dtype(dt))
        stars[c].unit, stars[c].description = unit, desc
    if block.n_files == 0:  # empty string columns need a width
        flares["file"] = flares["file"].astype("U1")
        stars["file"] = stars["file"].astype("U1")
    totals = {"n_files": block.n_files, "n_flares": len(flares),
              "exposure_d": float(np.nansum(a["star:exposure_d"])) if block.n_files else 0.0}
    shared = _shared_meta(a["shared"])
    flares.meta = {**shared, **totals}
    stars.meta = {**shared, **totals}
    return flares, stars


def write_combined(out_dir: str | os.PathLike, fresh: Iterable[FileSummary] = ()) -> tuple[Table, Table]:
    """Rebuild ``flares.fits`` and ``stars.ecsv`` in ``out_dir`` (atomically) and return them."""
    out = Path(out_dir)
    flares, stars = combined_tables(collect(out, fresh))
    with atomic_path(out / FLARES) as tmp:
        write_catalogue(flares, tmp)
    with atomic_path(out / STARS) as tmp:
        stars.write(tmp, format="ascii.ecsv")
    return flares, stars


def update_index(out_dir: str | os.PathLike, fresh: Iterable[FileSummary]) -> None:
    """Add this run's summaries to the index without reading any catalogue (a checkpoint)."""
    out = Path(out_dir)
    fresh_block = Block.from_summaries(list(fresh))
    index = Block.load(out / INDEX)
    names = set(fresh_block.arrays["name"].tolist())
    keep = np.array([i for i, n in enumerate(index.arrays["name"]) if n not in names], np.int64)
    Block.concat([index.take(keep), fresh_block]).save(out / INDEX)
