"""Record the warnings raised while one file is processed, per thread, instead of printing them.

:func:`warnings.catch_warnings` swaps process-wide state and is not safe when several threads process
files at once (a threaded Dask worker). Here one router replaces ``warnings.showwarning`` while any
recording is active (reference-counted), and each thread records into its own list; warnings from
threads that are not recording go where they went before. While recording, the ``"always"`` action
applies, so a message repeated by a second file is recorded again rather than swallowed as a duplicate.

Runners install the router once for a whole run (:func:`routing`, or :func:`route_for_good` in a worker
process), so the per-file :func:`recording` only switches this thread's list. Code that silences warnings
with ``warnings.catch_warnings()`` while other threads run is racy in any case (it swaps the process-wide
filter list): in a threaded Dask worker such a warning can escape to another file's row.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import warnings
from typing import Any, Iterator

_LOCK = threading.Lock()
_LOCAL = threading.local()
_state: dict[str, Any] = {"users": 0, "previous": None, "filter": None, "permanent": False}


def _route(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    sink = getattr(_LOCAL, "sink", None)
    if sink is not None:
        sink.append(f"{category.__name__}: {message}")
        return
    previous = _state["previous"]
    if previous is None:  # called after every recording ended (a stale reference): print as Python would
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
    else:
        previous(message, category, filename, lineno, file, line)


def _install() -> None:
    with _LOCK:
        if _state["users"] == 0:
            _state["previous"] = warnings.showwarning
            warnings.showwarning = _route
            warnings.simplefilter("always")
            _state["filter"] = warnings.filters[0]
        _state["users"] += 1


def _uninstall() -> None:
    with _LOCK:
        _state["users"] -= 1
        if _state["users"] == 0:
            if warnings.showwarning is _route:
                warnings.showwarning = _state["previous"]
            with contextlib.suppress(ValueError):  # someone else removed it already
                warnings.filters.remove(_state["filter"])
            _state["previous"] = _state["filter"] = None


@contextlib.contextmanager
def routing() -> Iterator[None]:
    """Keep the router installed for a whole run (install and removal happen here, in the calling thread,
    not around every file in every worker thread)."""
    _install()
    try:
        yield
    finally:
        _uninstall()


def route_for_good() -> None:
    """Unless a run already routes warnings in this process, install the router for the rest of the
    process's life (a dedicated worker process: a pool worker, a remote Dask worker)."""
    with _LOCK:
        if _state["users"] > 0 or _state["permanent"]:
            return
        _state["permanent"] = True
    _install()


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Collect this thread's warnings as ``"Category: message"`` strings (each once, in order)."""
    _install()
    sink: list[str] = []
    outer = getattr(_LOCAL, "sink", None)
    _LOCAL.sink = sink
    try:
        yield sink
    finally:
        _LOCAL.sink = outer
        _uninstall()
        unique = list(dict.fromkeys(sink))
        sink[:] = unique
