"""Bulk runs on a Dask cluster: an in-process ``LocalCluster`` ("local") or a running scheduler.

Files are submitted a few at a time (twice as many as the cluster has threads), so a first Ctrl-C
schedules nothing more, cancels what has not started and waits only for the files running; a second
cancels those too and returns at once. Dask's own logging is silenced to errors for the run, and a
local cluster works in a temporary folder that is removed afterwards (no ``dask-scratch-space`` left
behind). Each Dask worker process loads its own model once
(:func:`~flarelight.runtime.sweep_task.process_model`); with a remote cluster every worker must see the
input files and the output folder at the same paths.
"""
from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import tempfile
import time
from typing import Any, Callable, Iterator

from .errors import SchedulerError, WorkerDiedError
from .sweep_signals import Interrupts
from .sweep_task import TaskSettings, make_row, process_model, resolve_task, run_task
from .sweep_warnings import route_for_good, routing

#: seconds the main loop waits for a result before checking signals again
POLL = 0.2
#: the level the ``distributed`` loggers are raised to while our own in-process cluster closes: its worker's
#: heartbeat can race the closing scheduler and log "Failed to communicate with scheduler during heartbeat" at
#: ERROR (dask/distributed#7105), after every result is in; nothing for the user to act on
TEARDOWN_LEVEL = logging.CRITICAL


def dask_task(path: str, settings: TaskSettings, task: str) -> dict:
    """What runs on a Dask worker: the per-file function with this worker process's model."""
    route_for_good()  # a worker process of a remote cluster; in-process, process_files routes already
    return run_task(resolve_task(task), path, settings, process_model(settings))


@contextlib.contextmanager
def quiet_dask(level: int = logging.ERROR) -> Iterator[None]:
    """Raise every ``distributed`` logger to ``level`` for the duration (Dask logs INFO by default)."""
    with contextlib.suppress(ImportError):  # importing it sets its loggers' levels: do that first
        import distributed  # noqa: F401
    names = ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logger = logging.getLogger(n)
        if logger.level < level:
            logger.setLevel(level)
    try:
        yield
    finally:
        for n, lvl in saved.items():
            logging.getLogger(n).setLevel(lvl)


@contextlib.contextmanager
def dask_client(address: Any, threads: int, timeout: float) -> Iterator[Any]:
    """A connected ``distributed.Client``: to an in-process cluster of ``threads`` threads ("local"), to the
    scheduler at ``address`` (a :class:`SchedulerError` if it cannot be reached within ``timeout`` s), or,
    given a ``Client`` or a cluster object (e.g. dask-jobqueue's ``SLURMCluster``), to that."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise SchedulerError("--dask needs dask.distributed: pip install 'flarelight[dask]'") from exc
    if isinstance(address, Client):  # the caller's client: used, not closed
        yield address
        return
    if not isinstance(address, str):
        address = getattr(address, "scheduler_address", None) or str(address)
    if address == "local":
        import dask

        scratch = tempfile.mkdtemp(prefix="flarelight-dask-")
        try:  # the scheduler and the worker make their scratch folders under "temporary-directory"
            with dask.config.set({"temporary-directory": scratch}):
                cluster = LocalCluster(processes=False, n_workers=1, threads_per_worker=max(1, threads),
                                       dashboard_address=None, silence_logs=logging.ERROR, local_directory=scratch)
                try:
                    client = Client(cluster)
                    try:
                        yield client
                    finally:
                        with quiet_dask(TEARDOWN_LEVEL):
                            client.close()
                finally:
                    with quiet_dask(TEARDOWN_LEVEL):
                        cluster.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    try:
        client = Client(address, timeout=timeout)
    except (OSError, ValueError, TypeError) as exc:
        raise SchedulerError(f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s ({exc}); "
                             "is it running, and is the address (e.g. tcp://host:8786) right?") from None
    try:
        yield client
    finally:
        client.close(timeout=5)


def run_dask(files: list[str], settings: TaskSettings, address: Any, threads: int, timeout: float,
             on_row: Callable[[int, dict], None], interrupts: Interrupts, task: str) -> None:
    """Process ``files`` on a Dask cluster, calling ``on_row(index, row)`` as each finishes."""
    with routing(), quiet_dask(), dask_client(address, threads, timeout) as client:
        slots = max(1, sum(client.nthreads().values()))
        done: queue.Queue = queue.Queue()
        outstanding: dict[Any, int] = {}
        todo = iter(range(len(files)))
        stopped = False
        try:
            while True:
                interrupts.check()
                if interrupts.stop and not stopped:  # cancel what has not started; wait for what runs
                    stopped = True
                    running = {k for keys in client.processing().values() for k in keys}
                    waiting = [f for f in outstanding if f.key not in running]
                    client.cancel(waiting)
                    for f in waiting:
                        outstanding.pop(f, None)
                while not interrupts.stop and len(outstanding) < 2 * slots:
                    i = next(todo, None)
                    if i is None:
                        break
                    fut = client.submit(dask_task, files[i], settings, task, pure=False,
                                        key=f"flarelight-{i}-{files[i].rsplit('/', 1)[-1]}")
                    outstanding[fut] = i
                    fut.add_done_callback(done.put)
                if not outstanding:
                    break
                try:
                    fut = done.get(timeout=POLL)
                except queue.Empty:
                    continue
                i = outstanding.pop(fut)
                if fut.status == "finished":
                    on_row(i, fut.result())
                elif fut.status != "cancelled":  # the worker died (KilledWorker) or the task could not run
                    exc = fut.exception()
                    on_row(i, make_row(files[i], "error", time.perf_counter(), exc=WorkerDiedError(
                        f"the Dask task failed outside flarelight ({type(exc).__name__}: {exc})")))
        finally:
            if outstanding:
                client.cancel(list(outstanding), force=True)
