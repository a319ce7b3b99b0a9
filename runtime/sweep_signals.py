"""Ctrl-C (and SIGTERM) during a bulk run: the first stops scheduling, the second stops at once.

While :class:`Interrupts` is active (main thread only) SIGINT and SIGTERM set :attr:`Interrupts.stop`
instead of raising; the run then schedules no new file, lets the files in flight finish, writes what is
done and raises :class:`RunInterrupted`. A second signal sets :attr:`Interrupts.force` and raises
``RunInterrupted`` right away (the runner kills its workers on the way out). Outside the main thread
(where Python cannot handle signals) nothing is installed and Ctrl-C behaves as usual.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Callable

_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


class RunInterrupted(KeyboardInterrupt):
    """A bulk run stopped by Ctrl-C or SIGTERM; ``table`` is its run table (the files it finished),
    ``forced`` is True after a second signal (files in flight abandoned)."""

    def __init__(self, message: str, table: Any = None, forced: bool = False) -> None:
        super().__init__(message)
        self.table = table
        self.forced = forced


class Interrupts:
    """Context manager turning SIGINT/SIGTERM into a graceful stop (first) and an immediate one (second).

    Parameters
    ----------
    on_stop : callable, optional
        Called (from the signal handler) on the first signal, e.g. to print "finishing N files".
    """

    def __init__(self, on_stop: Callable[[], None] | None = None) -> None:
        self.stop = False
        self.force = False
        self.signal_name = ""
        self._on_stop = on_stop
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        if self.stop:
            self.force = True
            raise RunInterrupted(f"stopped at once by a second {self.signal_name}", forced=True)
        self.stop = True
        if self._on_stop is not None:
            self._on_stop()

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for s in _SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def check(self) -> None:
        """Raise :class:`RunInterrupted` if a second signal arrived (for loops that poll)."""
        if self.force:
            raise RunInterrupted(f"stopped at once by a second {self.signal_name}", forced=True)


def block_interrupts() -> Any:
    """Block SIGINT in this thread (returns the previous mask, for :func:`restore_mask`); new processes
    started meanwhile inherit the block, so Ctrl-C cannot reach them before they choose to ignore it."""
    if hasattr(signal, "pthread_sigmask"):
        return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    return None


def restore_mask(mask: Any) -> None:
    """Undo :func:`block_interrupts` (a SIGINT that arrived meanwhile is delivered now)."""
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def ignore_interrupts_in_worker() -> None:
    """In a worker process: ignore SIGINT (the main process decides what Ctrl-C means), then unblock it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
