"""``flarelight find``: flare catalogues of light-curve files, printed or written (.ecsv, .fits, .csv)."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from astropy.table import Table, vstack

from flarelight.runtime import FlarelightError, read_lightcurve
from flarelight.runtime.atomic import atomic_path
from flarelight.runtime.catalogue import (DEFAULT_MERGE_GAP, DEFAULT_MIN_CADENCES, DEFAULT_MIN_SNR,
                                          catalogue_format, write_catalogue)
from flarelight.runtime.find import find_flares

from .options import (check_output, flux_column_option, load_model, model_option, overwrite_option, quality_option,
                      threads_option)

#: meta keys that describe one light curve: columns in a combined table
_PER_FILE = ("tic", "sector", "file", "cadence_s", "exposure_d", "max_step")


def combine(tables: list[tuple[str, Table]]) -> Table:
    """One table from several files' catalogues: ``file``, ``tic`` and ``sector`` columns first.

    The shared meta (model and parameters) is kept; ``files`` lists every input and ``exposure_d``
    their total kept exposure (zero-row files included, so flare rates can be computed).
    """
    parts = []
    for name, t in tables:
        t = t.copy()
        t.add_column(np.full(len(t), name, dtype=f"U{max(len(name), 1)}"), name="file", index=0)
        t.add_column(np.full(len(t), -1 if t.meta.get("tic") is None else int(t.meta["tic"]), np.int64),
                     name="tic", index=1)
        t.add_column(np.full(len(t), -1 if t.meta.get("sector") is None else int(t.meta["sector"]), np.int64),
                     name="sector", index=2)
        parts.append(t)
    out = vstack(parts, metadata_conflicts="silent")
    meta = {k: v for k, v in tables[0][1].meta.items() if k not in _PER_FILE}
    meta["files"] = [name for name, _ in tables]
    meta["exposure_d"] = float(sum(t.meta.get("exposure_d", 0.0) for _, t in tables))
    out.meta = meta
    return out


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the table here (.ecsv, .fits or .csv) instead of printing it.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Bulk mode: <name>.flares.ecsv per file and run.ecsv here; finished files are skipped (resume).")
@click.option("--workers", type=int, default=1, show_default=True, help="With --out-dir: parallel worker processes.")
@click.option("--dask", "dask_address", default=None, help='With --out-dir: a Dask scheduler address, or "local".')
@click.option("--probabilities", is_flag=True, help="With --out-dir: also write <name>.prob.npz (time, prob).")
@click.option("--threshold", type=float, default=None,
              help="Probability a cadence must exceed to be a flare candidate (default: the model's recommended one).")
@click.option("--min-cadences", type=int, default=DEFAULT_MIN_CADENCES, show_default=True,
              help="Cadences above threshold a flare needs.")
@click.option("--merge-gap", type=int, default=DEFAULT_MERGE_GAP, show_default=True,
              help="Runs separated by at most this many cadences are one flare.")
@click.option("--min-snr", type=float, default=DEFAULT_MIN_SNR, show_default=True,
              help="Drop flares whose ED signal-to-noise is lower.")
@model_option
@threads_option
@quality_option
@flux_column_option
@overwrite_option
def find(files, output, out_dir, workers, dask_address, probabilities, threshold, min_cadences, merge_gap, min_snr,
         model_paths, threads, quality_bitmask, flux_column, overwrite):
    """Find flares in FILES (SPOC light-curve FITS): one row per flare.

    With several files the rows are combined into one table with a `file` column. A file that
    cannot be read or scored is reported and skipped; the exit status is 1 if any failed. The
    output is written atomically and never replaced without --overwrite.

    With --out-dir each file gets its own catalogue (in parallel with --workers or --dask), and a
    run table (run.ecsv) records each file's status; running again skips finished files.
    """
    if out_dir is not None:
        if output is not None:
            raise click.UsageError("--output and --out-dir are mutually exclusive")
        _bulk(files, out_dir, workers, dask_address, probabilities, model_paths, threads, overwrite,
              quality_bitmask=quality_bitmask, flux_column=flux_column, threshold=threshold,
              min_cadences=min_cadences, merge_gap=merge_gap, min_snr=min_snr)
        return
    if workers != 1 or dask_address is not None or probabilities:
        raise click.UsageError("--workers, --dask and --probabilities need --out-dir")
    if output is not None:
        try:
            catalogue_format(output)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--output") from exc
        check_output(output, overwrite)
    model = load_model(model_paths, threads)
    tables: list[tuple[str, Table]] = []
    failed = 0
    for f in files:
        try:
            lc = read_lightcurve(f, quality_bitmask=quality_bitmask, flux_column=flux_column)
            t = find_flares(lc, model, threshold=threshold, min_cadences=min_cadences, merge_gap=merge_gap,
                            min_snr=min_snr)
        except FlarelightError as exc:
            failed += 1
            click.echo(f"error: {exc}", err=True)
            continue
        tables.append((f.name, t))
        click.echo(f"{f.name}: {len(t)} flare{'s' if len(t) != 1 else ''}", err=True)
    if tables:
        table = tables[0][1] if len(files) == 1 else combine(tables)
        if output is None:
            table.pprint_all()
        else:
            with atomic_path(output) as tmp:
                write_catalogue(table, tmp)
            click.echo(f"{len(table)} flares from {len(tables)} file(s) -> {output}", err=True)
    if failed:
        raise SystemExit(1)


def _bulk(files: tuple[Path, ...], out_dir: Path, workers: int, dask_address: str | None, probabilities: bool,
          model_paths: tuple[Path, ...], threads: int | None, overwrite: bool, **kwargs) -> None:
    """``find --out-dir``: per-file catalogues via :func:`~flarelight.runtime.bulk.process_files`."""
    import os

    from flarelight.runtime.bulk import process_files

    if workers < 1:
        raise click.BadParameter(f"{workers}: must be >= 1", param_hint="--workers")
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    run = process_files(files, out_dir, model_paths=list(model_paths) or None, workers=workers,
                        dask_address=dask_address, overwrite=overwrite, write_probabilities=probabilities,
                        threads_per_worker=threads, **kwargs)
    for row in run[run["status"] == "error"]:
        click.echo(f"error: {row['file']}: {row['error_type']}: {row['message']}", err=True)
    counts = {s: int((run["status"] == s).sum()) for s in ("ok", "skipped", "error")}
    click.echo(f"{counts['ok']} ok, {counts['skipped']} skipped, {counts['error']} error(s) -> {out_dir / 'run.ecsv'}",
               err=True)
    if counts["error"]:
        raise SystemExit(1)
