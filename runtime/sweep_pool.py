"""A small process pool for bulk runs, built so that one failure stays one failure.

``concurrent.futures.ProcessPoolExecutor`` turns one dead worker into ``BrokenProcessPool`` for every
queued file and cannot be stopped without draining its queue. Here each worker is a spawned process with
its own pipe and at most one file at a time:

- a worker that dies costs only its file: the file is retried once in a fresh worker, then recorded as a
  ``WorkerDiedError`` row, and a new worker takes the dead one's place;
- files are handed out one at a time, so a stop (first Ctrl-C) schedules nothing more and waits only for
  the files in flight; a forced stop (second Ctrl-C) kills the workers at once;
- workers ignore Ctrl-C (the main process decides) and exit by themselves when the main process dies
  (a watchdog thread polls the parent's pid), so a killed run leaves no orphans holding a model.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

from .errors import FlarelightError, WorkerDiedError
from .sweep_signals import Interrupts, block_interrupts, ignore_interrupts_in_worker, restore_mask
from .sweep_task import TaskSettings, load_model, make_row, resolve_task, run_task
from .sweep_warnings import route_for_good

#: seconds between the checks of a worker's parent
WATCHDOG_INTERVAL = 0.5
#: seconds the main loop waits for a message before checking signals again
POLL = 0.2
#: a worker that dies before it is ready this many times in a row means the workers cannot start
MAX_STARTUP_FAILURES = 3


# ----------------------------------------------------------------------------- the worker side
def _watch_parent(parent: int) -> None:
    """Exit this process as soon as its parent is gone (it was killed: nobody will read our results)."""
    while True:
        time.sleep(WATCHDOG_INTERVAL)
        if os.getppid() != parent:
            os._exit(3)


def worker_main(conn: Connection, parent: int, settings: TaskSettings, task: str) -> None:
    """A worker process: load the model once, then process one file per message until told to stop.

    Messages in: ``(index, path)`` or None (stop). Out: ``("ready",)``, ``("done", index, row)``, or
    ``("fatal", message)`` when the model cannot be loaded.
    """
    ignore_interrupts_in_worker()
    route_for_good()
    threading.Thread(target=_watch_parent, args=(parent,), name="flarelight-watchdog", daemon=True).start()
    try:
        fn = resolve_task(task)
        model = load_model(settings)
    except Exception as exc:  # reported to the main process, which stops the run with it
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready",))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the main process closed the pipe or died
            return
        if msg is None:
            return
        index, path = msg
        conn.send(("done", index, run_task(fn, path, settings, model)))


# ----------------------------------------------------------------------------- the main side
@dataclass
class _Worker:
    proc: Any
    conn: Connection
    ready: bool = False
    task: int | None = None
    reserved: int | None = None  # a file to retry, kept for this (fresh) worker
    started: float = field(default_factory=time.perf_counter)


class WorkerPool:
    """Run ``task`` over files in ``workers`` spawned processes; see the module docstring.

    Parameters
    ----------
    files : list of str
    settings : TaskSettings
    workers : int
    on_row : callable(index, row)
        Called in the main thread with each file's row, as files finish.
    interrupts : Interrupts
    task : str
        ``"module:function"`` called as ``function(path, settings, model)`` in the workers.
    retries : int
        Fresh-worker retries of a file whose worker died.
    """

    def __init__(self, files: list[str], settings: TaskSettings, workers: int, on_row: Callable[[int, dict], None],
                 interrupts: Interrupts, task: str, retries: int = 1) -> None:
        self.files = files
        self.settings = settings
        self.n_workers = max(1, min(int(workers), len(files)))
        self.on_row = on_row
        self.interrupts = interrupts
        self.task = task
        self.retries = retries
        self.queue: deque[int] = deque(range(len(files)))
        self.deaths: dict[int, list[str]] = {}
        self.pool: list[_Worker] = []
        self.startup_failures = 0
        self._ctx = multiprocessing.get_context("spawn")

    @property
    def in_flight(self) -> int:
        """Files being processed now."""
        return sum(w.task is not None for w in self.pool)

    def _start(self, reserved: int | None = None) -> None:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=worker_main, args=(child_end, os.getpid(), self.settings, self.task),
                                 name="flarelight-worker", daemon=True)
        mask = block_interrupts()  # the child starts with Ctrl-C blocked until it ignores it
        try:
            proc.start()
        finally:
            restore_mask(mask)
        child_end.close()
        self.pool.append(_Worker(proc, parent_end, reserved=reserved))

    def _assign(self) -> None:
        for w in self.pool:
            if not w.ready or w.task is not None:
                continue
            if w.reserved is not None:
                w.task, w.reserved = w.reserved, None
            elif self.queue:
                w.task = self.queue.popleft()
            else:
                continue
            try:
                w.conn.send((w.task, self.files[w.task]))
            except OSError:  # it died just now: handled with its sentinel
                pass

    def _receive(self, w: _Worker) -> None:
        while w.conn.poll():
            try:
                msg = w.conn.recv()
            except (EOFError, OSError):
                return
            if msg[0] == "ready":
                w.ready = True
                self.startup_failures = 0
            elif msg[0] == "done":
                _, index, row = msg
                w.task = None
                if index in self.deaths:
                    row["warnings"] = " | ".join(filter(None, [*self.deaths[index], row.get("warnings", "")]))
                self.on_row(index, row)
            elif msg[0] == "fatal":
                raise FlarelightError(f"a worker process could not start: {msg[1]}")

    def _buried(self, w: _Worker) -> None:
        """A worker process ended: account for its file and replace it while there is work."""
        self._receive(w)  # a result it sent just before dying still counts
        self.pool.remove(w)
        w.conn.close()
        w.proc.join(timeout=1.0)
        code = w.proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        stopping = self.interrupts.stop
        if not w.ready:  # died while starting: not its file's fault
            self.startup_failures += 1
            if self.startup_failures >= MAX_STARTUP_FAILURES:
                raise FlarelightError(
                    f"worker processes die while starting ({how}, {self.startup_failures} times in a row); a script "
                    "that calls process_files must do so under `if __name__ == '__main__':` (workers are spawned "
                    "and import it), else check memory limits and the installation")
            if not stopping and (w.reserved is not None or (self.queue and len(self.pool) < self.n_workers)):
                self._start(reserved=w.reserved)
            return
        index = w.task
        if stopping:
            return  # its file is simply not done (nothing was written for it)
        if index is not None:
            self.deaths.setdefault(index, []).append(f"WorkerDied: its worker process died ({how})")
            if len(self.deaths[index]) <= self.retries:
                self._start(reserved=index)  # retried in a fresh worker
                return
            self.on_row(index, make_row(self.files[index], "error", time.perf_counter(), exc=WorkerDiedError(
                f"its worker process died {len(self.deaths[index])} times while processing it ({how}); it may "
                "need more memory than a worker has, or crash a library: try it alone with `flarelight find FILE`")))
        if self.queue and len(self.pool) < self.n_workers:
            self._start()

    def run(self) -> None:
        """Process every file (or until interrupted); workers are gone when this returns or raises."""
        try:
            for _ in range(self.n_workers):
                self._start()
            while True:
                self.interrupts.check()
                if not self.interrupts.stop:
                    self._assign()
                if self.interrupts.stop:
                    if self.in_flight == 0:
                        break
                elif not self.queue and self.in_flight == 0 and all(w.reserved is None for w in self.pool):
                    break
                ready = wait([w.conn for w in self.pool] + [w.proc.sentinel for w in self.pool], timeout=POLL)
                for w in list(self.pool):
                    if w.conn in ready:
                        self._receive(w)
                for w in list(self.pool):
                    if w.proc.sentinel in ready or not w.proc.is_alive():
                        self._buried(w)
        finally:
            self._shutdown(force=self.interrupts.force)

    def _shutdown(self, force: bool) -> None:
        for w in self.pool:
            if force:
                w.proc.kill()
            else:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + (0.5 if force else 5.0)
        for w in self.pool:
            w.proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=2.0)
            w.conn.close()
        self.pool.clear()
