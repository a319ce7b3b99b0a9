"""Bulk processing: flare catalogues of many light-curve files, in parallel and resumable.

Each input ``X.fits`` gives ``<out_dir>/X.flares.ecsv`` (and ``X.prob.npz`` on request); an existing
catalogue means "done", so an interrupted survey is resumed by running the same call again. A run
table (one row per input) is returned and merged into ``<out_dir>/run.ecsv``.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

import numpy as np
from astropy.table import Table

from .atomic import atomic_path
from .errors import FlarelightError, ModelFileError

log = logging.getLogger(__name__)

RUN_TABLE = "run.ecsv"
#: columns of the run table and their dtypes
RUN_COLUMNS = (("file", str), ("status", str), ("n_flares", np.int64), ("error_type", str), ("message", str),
               ("seconds", np.float64), ("output", str))

#: per-worker-process model cache: one FlareModel per (paths, threads), filled only inside the worker processes
#: of ProcessPoolExecutor or Dask (never by an in-process run); nothing is shared between processes.
_MODEL: dict[tuple, Any] = {}
_MODEL_LOCK = threading.Lock()


class Progress(Protocol):
    def update(self, n: int) -> Any: ...


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".fits.gz", ".fits", ".fit", ".fts"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _get_model(model_paths: Sequence[str] | None, threads: int | None) -> Any:
    """This process's FlareModel for ``model_paths`` (default: the shipped one), loaded once."""
    key = (tuple(model_paths) if model_paths else None, threads)
    with _MODEL_LOCK:
        if key not in _MODEL:
            _MODEL[key] = _load_model(model_paths, threads)
        return _MODEL[key]


def _init_worker(model_paths: Sequence[str] | None, threads: int | None) -> None:
    """ProcessPoolExecutor initializer: load the model once per worker process."""
    _get_model(model_paths, threads)


def _record(path: Path, status: str, output: str, t0: float, n_flares: int = -1, exc: BaseException | None = None,
            ) -> dict:
    return {"file": str(path), "status": status, "n_flares": n_flares,
            "error_type": "" if exc is None else type(exc).__name__, "message": "" if exc is None else str(exc),
            "seconds": time.perf_counter() - t0, "output": output}


def _load_model(model_paths: Sequence[str] | None, threads: int | None) -> Any:
    from .model import FlareModel

    return FlareModel(list(model_paths), threads=threads) if model_paths else FlareModel.default(threads=threads)


def _process_one(path: str | os.PathLike, out_dir: str, model_paths: Sequence[str] | None, threads: int | None,
                 overwrite: bool, write_probabilities: bool, find_kwargs: dict, model: Any = None) -> dict:
    """Process one file; never raises an Exception: every failure becomes an "error" record.

    ``model``: the FlareModel to use; None in worker processes, which use their per-process cache."""
    from .catalogue import find_flares, write_catalogue

    t0 = time.perf_counter()
    path = Path(path)
    cat = Path(out_dir) / f"{_stem(path)}.flares.ecsv"
    npz = Path(out_dir) / f"{_stem(path)}.prob.npz"
    if not overwrite and cat.exists() and (npz.exists() or not write_probabilities):
        return _record(path, "skipped", cat.name, t0)
    try:
        model = model if model is not None else _get_model(model_paths, threads)
        table, lc, prob = find_flares(path, model, return_prob=True, **find_kwargs)
        if write_probabilities:
            with atomic_path(npz) as tmp:
                np.savez(tmp, time=lc.time, prob=prob)
        with atomic_path(cat) as tmp:  # the catalogue last: its existence marks the file as done
            write_catalogue(table, tmp)
    except (FlarelightError, OSError) as exc:
        log.warning("%s: %s: %s", path, type(exc).__name__, exc)
        return _record(path, "error", cat.name, t0, exc=exc)
    except Exception as exc:  # a bug: recorded so the survey goes on, logged with its traceback
        log.error("%s: unexpected error\n%s", path, traceback.format_exc())
        return _record(path, "error", cat.name, t0, exc=exc)
    return _record(path, "ok", cat.name, t0, n_flares=len(table))


def _run_table(rows: list[dict]) -> Table:
    return Table({name: np.array([r[name] for r in rows], dtype=dtype) for name, dtype in RUN_COLUMNS})


def read_run_table(path: str | os.PathLike) -> Table:
    """Read a ``run.ecsv`` (empty ``error_type``/``message`` as "", not masked as ``Table.read`` gives)."""
    t = Table.read(path, format="ascii.ecsv")
    return _run_table([{name: ("" if np.ma.is_masked(row[name]) else row[name]) for name, _ in RUN_COLUMNS}
                       for row in t])


def process_files(files: Iterable[str | os.PathLike], out_dir: str | os.PathLike, *,
                  model_paths: Sequence[str | os.PathLike] | None = None, workers: int = 1,
                  dask_address: str | None = None, overwrite: bool = False, write_probabilities: bool = False,
                  quality_bitmask: str | int = "default", flux_column: str = "pdcsap_flux",
                  threads_per_worker: int | None = 1, progress: Progress | None = None, **find_kwargs: Any) -> Table:
    """Find flares in many files: one catalogue per file, in parallel, resumable.

    Parameters
    ----------
    files : iterable of paths
        Light-curve FITS files. Two inputs with the same name (in different folders) are refused.
    out_dir : path
        Gets ``<stem>.flares.ecsv`` per input (``<stem>`` = the name without ``.fits``), ``<stem>.prob.npz``
        (arrays ``time``, ``prob``) with ``write_probabilities``, and ``run.ecsv``. All written atomically.
    model_paths : sequence of paths, optional
        ONNX files or folders (default: the shipped ensemble). Loaded once per process, never pickled.
    workers : int
        1: in this process. >1: a "spawn" process pool, or with ``dask_address`` the threads of the
        local Dask cluster.
    dask_address : str, optional
        ``"local"`` (an in-process ``LocalCluster``) or a scheduler address: one task per file.
    overwrite : bool
        Reprocess files whose outputs exist (otherwise they are "skipped": resume).
    quality_bitmask, flux_column, **find_kwargs
        Passed to :func:`~flarelight.runtime.catalogue.find_flares`.
    threads_per_worker : int, optional
        onnxruntime threads of each model (None: all cores).
    progress : object with ``update(n)``, optional
        Called with 1 after every file.

    Returns
    -------
    Table
        This run's rows, in input order: ``file``, ``status`` (ok / skipped / error), ``n_flares`` (-1 unless
        ok), ``error_type``, ``message``, ``seconds``, ``output`` (catalogue name in ``out_dir``). ``run.ecsv``
        gets these rows plus the previous run's rows for other files (keyed by ``output``).

    Notes
    -----
    A file never stops the batch: ``FlarelightError`` and ``OSError`` (bad input) are "error" rows logged
    at WARNING; any other exception (a bug) is an "error" row too, logged at ERROR with its traceback.
    Errors write no catalogue, so the next run retries them. A missing model path raises ModelFileError
    before any file is processed; a worker process that dies gives "error" rows for its files. KeyboardInterrupt is not caught, but the
    rows finished so far are still written to ``run.ecsv``.
    """
    files = [Path(f) for f in files]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [f"{_stem(f)}.flares.ecsv" for f in files]
    dupes = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) < len(names) else []
    if dupes:
        raise ValueError(f"several inputs would write the same output: {dupes[:5]}")
    previous = read_run_table(out / RUN_TABLE) if (out / RUN_TABLE).exists() else None
    paths = [str(p) for p in model_paths] if model_paths else None
    missing = [p for p in paths or [] if not Path(p).exists()]
    if missing:  # a bad model fails the call, not every file
        raise ModelFileError(f"model path(s) not found: {missing}")
    kwargs = dict(find_kwargs, quality_bitmask=quality_bitmask, flux_column=flux_column)
    args = (str(out), paths, threads_per_worker, overwrite, write_probabilities, kwargs)
    rows: dict[int, dict] = {}

    def done(i: int, result: Any) -> None:
        rows[i] = result
        if progress is not None:
            progress.update(1)

    def failed(i: int, exc: BaseException) -> None:  # the worker itself died (crash, OOM, lost)
        log.error("%s: worker failed: %s: %s", files[i], type(exc).__name__, exc)
        done(i, _record(files[i], "error", names[i], time.perf_counter(), exc=exc))

    try:
        if dask_address is not None:
            _run_dask(files, args, dask_address, workers, done, failed)
        elif workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_init_worker, initargs=(paths, threads_per_worker)) as pool:
                futures = {pool.submit(_process_one, f, *args): i for i, f in enumerate(files)}
                for fut in as_completed(futures):
                    exc = fut.exception()
                    failed(futures[fut], exc) if exc is not None else done(futures[fut], fut.result())
        else:  # in this process: a model of this call only, nothing left behind in module state
            model = _load_model(paths, threads_per_worker)
            for i, f in enumerate(files):
                done(i, _process_one(f, *args, model=model))
    finally:
        table = _run_table([rows[i] for i in sorted(rows)])
        merged = table
        if previous is not None:
            keep = previous[~np.isin(previous["output"], table["output"])]
            merged = _run_table([dict(zip(t.colnames, r)) for t in (keep, table) for r in t])
        with atomic_path(out / RUN_TABLE) as tmp:
            merged.write(tmp, format="ascii.ecsv")
    return table


def _run_dask(files: list[Path], args: tuple, address: str, workers: int, done: Any, failed: Any) -> None:
    """One task per file on a Dask cluster; each worker process caches its own model."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise ImportError("dask_address needs dask.distributed: pip install flarelight[dask]") from exc
    cluster = (LocalCluster(processes=False, n_workers=1, threads_per_worker=max(1, workers), dashboard_address=":0")
               if address == "local" else None)
    try:
        with Client(cluster if cluster is not None else address) as client:
            futures = client.map(_process_one, [str(f) for f in files], *[[a] * len(files) for a in args], pure=False)
            index = {fut.key: i for i, fut in enumerate(futures)}
            for fut in as_completed(futures):
                i = index[fut.key]
                if fut.status == "error":
                    failed(i, fut.exception())
                else:
                    done(i, fut.result())
    finally:
        if cluster is not None:
            cluster.close()
