"""Progress bars for long work: rich when installed (the ``progress`` extra), else plain lines on stderr."""
from __future__ import annotations

import contextlib
import importlib.util
import sys
from typing import Iterator

HAVE_RICH = importlib.util.find_spec("rich") is not None


class _Plain:
    """Minimal bar: prints ``description: k/total`` lines (about ten per task)."""

    def __init__(self, total: int, description: str) -> None:
        self.total, self.description, self.n = max(int(total), 0), description, 0
        self._step = max(1, self.total // 10)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n == self.total or self.n % self._step == 0:
            print(f"{self.description}: {self.n}/{self.total}", file=sys.stderr, flush=True)


class _Rich:
    def __init__(self, progress, task) -> None:
        self._p, self._t = progress, task

    def update(self, n: int = 1) -> None:
        self._p.advance(self._t, n)


@contextlib.contextmanager
def progress_bar(total: int, description: str, enabled: bool = True) -> Iterator[object]:
    """Context manager yielding an object with ``update(n)``; a rich bar if available, else plain lines.

    With ``enabled=False`` the object does nothing.
    """
    if not enabled:
        yield _Null()
        return
    if HAVE_RICH:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      transient=False) as p:
            yield _Rich(p, p.add_task(description, total=total))
        return
    yield _Plain(total, description)


class _Null:
    def update(self, n: int = 1) -> None:
        """Do nothing."""


__all__ = ["progress_bar", "HAVE_RICH"]
