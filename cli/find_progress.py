"""What a person sees during ``flarelight find --out-dir``: a progress bar, each error once, a summary.

The bar (files done, files/s, errors so far, ETA) is drawn with rich on a terminal only, never with
``-q`` or when stderr is not a terminal (a log file, a batch job). Errors are printed as they happen,
one line each, also without the bar; the summary table ends the run. Without rich (the ``[cli]`` extra
brings it) the same lines are printed plainly.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click


def _one_line(row: dict) -> str:
    """``error: FILE: Type: message`` (the message's own leading file name dropped)."""
    message = str(row["message"])
    prefix = f"{row['file']}: "
    if message.startswith(prefix):
        message = message[len(prefix):]
    return f"error: {row['file']}: {row['error_type']}: {message}"


class BulkProgress:
    """The ``progress`` object :func:`flarelight.runtime.bulk.process_files` reports to.

    Parameters
    ----------
    quiet : bool
        No bar and no summary (errors are still printed).
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.errors = 0
        self.done = 0
        self.t0 = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        try:
            from rich.console import Console

            self.console: Any = Console(stderr=True, highlight=False)
        except ImportError:
            self.console = None

    # ------------------------------------------------------------------ process_files calls these
    def begin(self, n_todo: int, n_skipped: int) -> None:
        self.t0 = time.perf_counter()
        if n_skipped and not self.quiet:
            self.echo(f"{n_skipped} file(s) already done (skipped); {n_todo} to process")
        if self.quiet or n_todo == 0 or self.console is None or not self.console.is_terminal:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self._bar = Progress(TextColumn("[bold]flarelight find"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[rate]} files/s"), TextColumn("{task.fields[errors]} errors"),
                             TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                             console=self.console, transient=False)
        self._bar.start()
        self._task = self._bar.add_task("files", total=n_todo, rate="-", errors=0)

    def file_done(self, row: dict) -> None:
        self.done += 1
        if row["status"] == "error":
            self.errors += 1
            self.echo(_one_line(row), error=True)
        if self._bar is not None:
            rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
            self._bar.update(self._task, advance=1, rate=f"{rate:.2f}", errors=self.errors)

    def stopping(self) -> None:
        self.echo("stopping: no new files; finishing the files in flight (Ctrl-C again to abandon them)", error=True)

    # ------------------------------------------------------------------ the command calls these
    def echo(self, text: str, error: bool = False) -> None:
        """One line on stderr (above the bar while it is drawn)."""
        if self.console is not None:
            from rich.markup import escape

            self.console.print(f"[red]{escape(text)}[/red]" if error else escape(text), soft_wrap=True)
        else:
            click.echo(text, err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def summary(self, run: Any, out_dir: Path) -> None:
        """The table that ends a run (not with ``-q``)."""
        self.close()
        if self.quiet:
            return
        status = list(run["status"])
        n_ok, n_skip, n_err = (status.count(s) for s in ("ok", "skipped", "error"))
        processed = n_ok + n_err
        elapsed = float(run.meta.get("seconds", time.perf_counter() - self.t0))
        warned = int(sum(bool(w) for w in run["warnings"]))
        lines = [
            ("files", f"{len(run)}: {n_ok} ok, {n_skip} skipped (done before), {n_err} error(s)"),
            ("flares", f"{int(sum(n for n, s in zip(run['n_flares'], status) if s == 'ok'))} in the files "
                       f"processed now; {run.meta.get('flares_total', '?')} in flares.fits "
                       f"({run.meta.get('stars_total', '?')} light curves)"),
            ("time", f"{elapsed:.1f} s, {processed / elapsed if elapsed > 0 else 0.0:.2f} files/s"),
        ]
        if warned:
            lines.append(("warnings", f"{warned} file(s) raised warnings: see the warnings column of run.ecsv"))
        lines.append(("outputs", f"{out_dir}/: flares.fits, stars.ecsv, run.ecsv, <name>.flares.ecsv"))
        if self.console is None:
            for k, v in lines:
                click.echo(f"{k:>9}: {v}", err=True)
            return
        from rich.table import Table

        table = Table(title="flarelight find: summary", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for k, v in lines:
            table.add_row(k, v)
        self.console.print(table)
