"""Bulk processing: flare catalogues of many light-curve files, in parallel, resumable, interruptible.

Each input ``X.fits`` gives ``<out_dir>/X.flares.ecsv`` (and ``X.prob.npz`` on request), written
atomically; an existing catalogue means "done", so a stopped or killed survey is resumed by running the
same call again. ``run.ecsv`` records what happened to every file; ``flares.fits`` (every flare, with
its star) and ``stars.ecsv`` (one row per light curve) are rebuilt from the per-file catalogues at the
end of every run.

The work is split in small modules: inputs and resume (:mod:`.sweep_inputs`), one file
(:mod:`.sweep_task`), the process pool (:mod:`.sweep_pool`), Dask (:mod:`.sweep_dask`), signals
(:mod:`.sweep_signals`), the run table (:mod:`.sweep_runtable`) and the combined outputs
(:mod:`.sweep_combine`).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from astropy.table import Table

from .errors import BulkInputError, ModelFileError
from .sweep_combine import FLARES, INDEX, STARS, update_index, write_combined
from .sweep_inputs import check_unique_outputs, expand_inputs, is_done, remove_stale_temporaries
from .sweep_runtable import RUN_COLUMNS, RUN_TABLE, read_run_table, run_table, write_run_table
from .sweep_signals import Interrupts, RunInterrupted
from .sweep_task import DEFAULT_TASK, TaskSettings, load_model, make_row, process_one, resolve_task, run_task
from .sweep_warnings import routing

#: seconds between checkpoints of run.ecsv and the combined index during a run
CHECKPOINT_S = 30.0

__all__ = ["process_files", "read_run_table", "RunInterrupted", "RUN_TABLE", "RUN_COLUMNS", "FLARES", "STARS",
           "INDEX"]


def resolve_model(model: str | os.PathLike | Sequence[str | os.PathLike] | None) -> tuple[str, ...]:
    """Member files of ``model``: None (the shipped default), a shipped model's name, or ONNX files/folders."""
    from flarelight.models import DEFAULT_MODEL, model_paths, shipped_models

    if model is None:
        return tuple(str(p) for p in model_paths(DEFAULT_MODEL))
    items = [model] if isinstance(model, (str, os.PathLike)) else list(model)
    if len(items) == 1 and not Path(items[0]).exists() and str(items[0]) in shipped_models():
        return tuple(str(p) for p in model_paths(str(items[0])))
    missing = [str(p) for p in items if not Path(p).exists()]
    if missing:  # a bad model fails the call, not every file
        raise ModelFileError(f"model path(s) not found: {missing} (and not a shipped model: "
                             f"{', '.join(shipped_models())})")
    return tuple(str(p) for p in items)


class _Run:
    """The bookkeeping of one call: rows as they arrive, progress, checkpoints."""

    def __init__(self, out: Path, files: list[str], previous: Table | None, progress: Any) -> None:
        self.out = out
        self.files = files
        self.previous = previous
        self.progress = progress
        self.rows: dict[int, dict] = {}
        self.last_checkpoint = time.monotonic()

    def call(self, method: str, *args: Any) -> None:
        fn = getattr(self.progress, method, None)
        if fn is not None:
            fn(*args)

    def on_row(self, index: int, row: dict) -> None:
        self.rows[index] = row
        self.call("file_done", row)
        if time.monotonic() - self.last_checkpoint > CHECKPOINT_S:
            self.checkpoint()

    def fresh(self) -> list:
        return [r["summary"] for r in self.rows.values() if r.get("summary") is not None]

    def ordered(self) -> list[dict]:
        return [self.rows[i] for i in sorted(self.rows)]

    def checkpoint(self) -> None:
        """Write what is done so far (run.ecsv, the combined index): a killed run loses little."""
        write_run_table(self.out, self.previous, self.ordered())
        update_index(self.out, self.fresh())
        self.last_checkpoint = time.monotonic()


def process_files(files: Iterable[str | os.PathLike], out_dir: str | os.PathLike, *,
                  model: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                  model_paths: Sequence[str | os.PathLike] | None = None, workers: int = 1,
                  dask_address: Any = None, dask_timeout: float = 10.0, overwrite: bool = False,
                  write_probabilities: bool = False, quality_bitmask: str | int = "default",
                  flux_column: str = "pdcsap_flux", verify_checksum: bool = True,
                  threads_per_worker: int | None = 1, engine: str = "auto", progress: Any = None,
                  task: str | None = None, **find_kwargs: Any) -> Table:
    """Find flares in many files: one catalogue per file, in parallel, resumable, interruptible.

    Parameters
    ----------
    files : iterable of str or path
        Light-curve FITS files, folders (searched recursively), glob patterns (``**`` for any depth) and
        ``@list.txt`` files (one input per line). Two different inputs with the same file name are refused.
    out_dir : path
        Gets ``<stem>.flares.ecsv`` per input (``<stem>``: the name without ``.fits``), ``<stem>.prob.npz``
        (arrays ``time``, ``prob``) with ``write_probabilities``, ``run.ecsv``, ``flares.fits`` and
        ``stars.ecsv``. All written atomically.
    model : str, path or sequence of paths, optional
        A shipped model's name, or ONNX files or folders (default: the shipped default model). Loaded once
        per process, never pickled. ``model_paths`` is the older name of this argument.
    workers : int
        1: in this process. >1: that many worker processes, or with ``dask_address="local"`` the threads of
        an in-process Dask cluster.
    dask_address : str, Client or cluster, optional
        ``"local"`` (an in-process cluster), a scheduler address (``tcp://host:8786``), a
        ``distributed.Client`` or a cluster object such as dask-jobqueue's ``SLURMCluster``: one task per file.
    dask_timeout : float
        Seconds to wait for the scheduler before a :class:`SchedulerError`.
    overwrite : bool
        Reprocess files whose outputs exist (otherwise they are "skipped" before anything is scheduled).
    quality_bitmask, flux_column, verify_checksum
        Passed to :func:`~flarelight.runtime.io.read_lightcurve`.
    threads_per_worker : int, optional
        onnxruntime threads of each process's model (None: all cores).
    engine : str
        The model's engine ("auto", "sliding", "windows").
    progress : object, optional
        Told about the run: ``begin(n_todo, n_skipped)``, ``file_done(row)`` after each file (in the
        calling thread), ``stopping()`` on a first Ctrl-C; any method may be missing.
    task : str, optional
        ``"module:function"`` run per file instead of :func:`~flarelight.runtime.sweep_task.process_one`
        (same signature and row), for tests and custom pipelines.
    **find_kwargs
        Catalogue parameters of :func:`~flarelight.runtime.find.find_flares` (threshold, min_snr, ...).

    Returns
    -------
    Table
        This run's rows, in input order: ``file``, ``status`` (ok / skipped / error), ``n_flares`` (-1
        unless ok), ``error_type``, ``message``, ``warnings`` (raised while processing the file),
        ``seconds``, ``output`` (catalogue name), ``peak_mb``; meta ``seconds`` (the whole call),
        ``flares_total`` and ``stars_total`` (rows of flares.fits and stars.ecsv). ``run.ecsv`` gets the rows
        merged with earlier runs' rows (by output; a skipped file keeps its earlier row).

    Raises
    ------
    BulkInputError
        No inputs, a folder without FITS files, a pattern matching nothing, or two inputs with one name.
    ModelFileError
        The model cannot be loaded (before any file is touched).
    SchedulerError
        The Dask scheduler cannot be reached.
    RunInterrupted
        Ctrl-C or SIGTERM (a ``KeyboardInterrupt``): the first stops scheduling and waits for the files in
        flight, the second abandons them; either way ``run.ecsv`` holds every file finished, and its
        ``table`` attribute this run's rows. Run again to resume.

    Notes
    -----
    Worker processes are spawned: a script that calls this with ``workers > 1`` must do so under
    ``if __name__ == "__main__":``. A file never stops the batch: unreadable, corrupted or unscorable files
    are "error" rows (and get no catalogue, so the next run retries them), as are bugs. A worker process
    that dies costs only its file: it is retried once in a fresh worker, then recorded as a
    ``WorkerDiedError`` row. Worker processes exit when the main process dies.
    """
    t_start = time.perf_counter()
    files = expand_inputs(files)
    if not files:
        raise BulkInputError("no input files given")
    check_unique_outputs(files)
    if workers < 1:
        raise BulkInputError(f"workers={workers}: must be >= 1")
    settings = TaskSettings(
        out_dir=str(out_dir), model_paths=resolve_model(model if model is not None else model_paths),
        threads=threads_per_worker, engine=engine, overwrite=overwrite, write_probabilities=write_probabilities,
        read={"quality_bitmask": quality_bitmask, "flux_column": flux_column, "verify_checksum": verify_checksum},
        find=dict(find_kwargs))
    local_model = load_model(settings)  # a bad model fails here, before any output is written
    if dask_address is not None or workers > 1:
        local_model = None  # the workers load their own
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    previous = read_run_table(out / RUN_TABLE) if (out / RUN_TABLE).exists() else None
    remove_stale_temporaries(out, files)

    skipped = [] if overwrite else [i for i, f in enumerate(files) if is_done(f, out, write_probabilities)]
    skip_set = set(skipped)
    todo = [i for i in range(len(files)) if i not in skip_set]
    run = _Run(out, files, previous, progress)
    for i in skipped:
        run.rows[i] = make_row(files[i], "skipped", time.perf_counter())
    run.call("begin", len(todo), len(skipped))

    todo_files = [files[i] for i in todo]

    def on_row(k: int, row: dict) -> None:
        run.on_row(todo[k], row)

    interrupts = Interrupts(on_stop=lambda: run.call("stopping"))
    try:
        with interrupts:
            if todo_files and dask_address is not None:
                from .sweep_dask import run_dask

                run_dask(todo_files, settings, dask_address, workers, dask_timeout, on_row, interrupts,
                         task or DEFAULT_TASK)
            elif todo_files and workers > 1:
                from .sweep_pool import WorkerPool

                WorkerPool(todo_files, settings, workers, on_row, interrupts, task or DEFAULT_TASK).run()
            else:
                fn = resolve_task(task) if task else process_one
                with routing():
                    for k, f in enumerate(todo_files):
                        if interrupts.stop:
                            break
                        on_row(k, run_task(fn, f, settings, local_model))
    except RunInterrupted:
        run.checkpoint()
        raise RunInterrupted(_stopped_message(run, len(todo), forced=True), run_table(run.ordered()),
                             forced=True) from None
    except BaseException:
        run.checkpoint()  # whatever went wrong, what is done stays recorded
        raise
    if interrupts.stop:
        run.checkpoint()
        raise RunInterrupted(_stopped_message(run, len(todo), forced=False), run_table(run.ordered()))
    write_run_table(out, previous, run.ordered())
    flares, stars = write_combined(out, run.fresh())
    table = run_table(run.ordered())
    table.meta.update(seconds=time.perf_counter() - t_start, flares_total=len(flares), stars_total=len(stars))
    return table


def _stopped_message(run: _Run, n_todo: int, forced: bool) -> str:
    done = sum(r["status"] != "skipped" for r in run.rows.values())
    how = "files in flight abandoned" if forced else "files in flight finished"
    return (f"stopped: {done} of {n_todo} file(s) processed ({how}); {run.out / RUN_TABLE} lists them. "
            f"Run the same command again to resume ({FLARES} and {STARS} are rebuilt when a run completes)")
