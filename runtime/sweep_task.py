"""One file of a bulk run: read, score once, catalogue, write atomically, and report a run-table row.

:func:`process_one` never raises an ``Exception``: bad input and bugs alike become an "error" row;
:func:`run_task` records the warnings raised while a file is processed in its row instead of printing them. It runs in
this process, in a worker process of the pool, or in a Dask worker; each process keeps its own model.
"""
from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .atomic import atomic_path
from .errors import FlarelightError
from .sweep_combine import file_summary
from .sweep_names import catalogue_name, probabilities_name
from .sweep_warnings import recording

#: the default per-file function, as an import path (workers import it by name)
DEFAULT_TASK = "flarelight.runtime.sweep_task:process_one"


@dataclass(frozen=True)
class TaskSettings:
    """Everything a worker needs to process a file (picklable; the model is loaded by each process).

    Attributes
    ----------
    out_dir : str
    model_paths : tuple of str
        The model's member ONNX files (a shipped name is resolved to its files before the run).
    threads : int or None
        onnxruntime threads of each process's model.
    engine : str
        ``FlareModel`` engine.
    overwrite, write_probabilities : bool
    read : dict
        ``read_lightcurve`` options (quality_bitmask, flux_column, verify_checksum).
    find : dict
        Catalogue parameters (threshold, min_cadences, ...).
    """

    out_dir: str
    model_paths: tuple[str, ...]
    threads: int | None = 1
    engine: str = "auto"
    overwrite: bool = False
    write_probabilities: bool = False
    read: dict = field(default_factory=dict)
    find: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- the model, once per process
_MODELS: dict[tuple, Any] = {}
_MODELS_LOCK = threading.Lock()


def load_model(settings: TaskSettings) -> Any:
    """A new FlareModel from the settings."""
    from .model import FlareModel

    return FlareModel(list(settings.model_paths), threads=settings.threads, engine=settings.engine)


def process_model(settings: TaskSettings) -> Any:
    """This process's FlareModel for ``settings`` (loaded on first use, then reused by every file)."""
    key = (settings.model_paths, settings.threads, settings.engine)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_model(settings)
        return _MODELS[key]


def resolve_task(task: str | Callable | None) -> Callable:
    """The per-file function from ``"module:function"`` (default :data:`DEFAULT_TASK`) or a callable."""
    if callable(task):
        return task
    module, _, name = (task or DEFAULT_TASK).partition(":")
    return getattr(importlib.import_module(module), name)


# ----------------------------------------------------------------------------- rows
def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, MB (NaN where unknown).

    Linux: ``VmHWM`` of /proc/self/status (reset when a process execs, unlike ``ru_maxrss``, which a spawned
    worker can inherit from its parent); elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def make_row(path: str | os.PathLike, status: str, t0: float, *, n_flares: int = -1,
             exc: BaseException | None = None, message: str | None = None, warnings: list[str] | None = None,
             **extra: Any) -> dict:
    """A run-table row (see :data:`flarelight.runtime.sweep_runtable.RUN_COLUMNS`); ``extra`` keys travel with
    it to the main process (``summary``: what the combined outputs need)."""
    if message is None:
        message = "" if exc is None else str(exc)
    row = {"file": str(path), "status": status, "n_flares": int(n_flares),
           "error_type": "" if exc is None else type(exc).__name__, "message": " ".join(message.split()),
           "warnings": " | ".join(dict.fromkeys(warnings or ())), "seconds": time.perf_counter() - t0,
           "output": catalogue_name(path), "peak_mb": float("nan") if status == "skipped" else peak_memory_mb()}
    row.update(extra)
    return row


def light_curve_meta(lc: Any, scored: Any, path: str | os.PathLike) -> dict:
    """What a per-star row needs, for the per-file catalogue's meta (so stars.ecsv can be rebuilt from it)."""
    t = lc.time[np.isfinite(lc.time)]
    return {"camera": lc.meta.get("camera"), "ccd": lc.meta.get("ccd"), "n_cadences": int(len(lc)),
            "n_used": int(scored.prepared.kept.size),
            "observing_d": float(t[-1] - t[0]) if t.size > 1 else 0.0, "source": str(path)}


# ----------------------------------------------------------------------------- one file
def process_one(path: str | os.PathLike, settings: TaskSettings, model: Any = None) -> dict:
    """Process one file; every failure becomes an "error" row, never an exception (the runners call it
    through :func:`run_task`, which records its warnings).

    Parameters
    ----------
    path : path
    settings : TaskSettings
    model : FlareModel, optional
        Default: this process's model for ``settings`` (:func:`process_model`).

    Returns
    -------
    dict
        The run-table row, plus ``summary`` (the file's combined rows, see
        :func:`flarelight.runtime.sweep_combine.file_summary`) when it is "ok".
    """
    from .catalogue import write_catalogue
    from .find import find_flares
    from .io import read_lightcurve

    t0 = time.perf_counter()
    out = Path(settings.out_dir)
    cat = out / catalogue_name(path)
    npz = out / probabilities_name(path)
    try:
        model = model if model is not None else process_model(settings)
        lc = read_lightcurve(path, **settings.read)
        scored = model.score(lc)
        table = find_flares(scored, **settings.find)
        table.meta.update(light_curve_meta(lc, scored, path))
        if settings.write_probabilities:
            with atomic_path(npz) as tmp:
                np.savez(tmp, time=lc.time, prob=scored.prob)
        with atomic_path(cat) as tmp:  # the catalogue last: its existence marks the file as done
            write_catalogue(table, tmp)
        stat = cat.stat()
    except (FlarelightError, OSError) as exc:
        return make_row(path, "error", t0, exc=exc)
    except Exception as exc:  # a bug: recorded with where it happened, so the survey goes on
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return make_row(path, "error", t0, exc=exc,
                        message=f"{exc} (at {Path(where.filename).name}:{where.lineno}; please report this bug)")
    summary = file_summary(table, cat.name, mtime_ns=stat.st_mtime_ns, size=stat.st_size)
    return make_row(path, "ok", t0, n_flares=len(table), summary=summary)


def run_task(fn: Callable, path: str | os.PathLike, settings: TaskSettings, model: Any) -> dict:
    """``fn(path, settings, model)`` with the warnings it raises recorded in its row (``warnings``), not printed."""
    with recording() as caught:
        row = fn(path, settings, model)
    earlier = [w for w in str(row.get("warnings", "")).split(" | ") if w]
    row["warnings"] = " | ".join(dict.fromkeys(earlier + caught))
    return row
