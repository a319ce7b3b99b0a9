"""``flarelight find``: flare catalogues of light-curve files, printed or written (.ecsv, .fits, .csv), or
with ``--out-dir`` a survey run (one catalogue per file, resumable, interruptible; see
:mod:`flarelight.runtime.bulk`)."""
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

from .options import check_output, load_model, scoring_options

#: ``--template`` choices: the flarefit template names
TEMPLATES = {"davenport": "davenport2014", "mendoza": "mendoza2022"}
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
@click.argument("files", nargs=-1, required=True, type=str)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the table here (.ecsv, .fits or .csv) instead of printing it.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Bulk mode: <name>.flares.ecsv per file, run.ecsv, flares.fits and stars.ecsv here; FILES may be "
                   "folders, quoted globs ('**' recurses) and @list.txt; finished files are skipped (resume).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="With --out-dir: worker processes (with --dask local: threads).")
@click.option("--dask", "dask_address", default=None,
              help='With --out-dir: a Dask scheduler address (tcp://host:8786), or "local" for an in-process cluster.')
@click.option("--dask-timeout", type=float, default=10.0, show_default=True,
              help="With --dask: seconds to wait for the scheduler.")
@click.option("--probabilities", is_flag=True, help="With --out-dir: also write <name>.prob.npz (time, prob).")
@click.option("--no-verify-checksum", "verify_checksum", is_flag=True, flag_value=False, default=True,
              help="Read files whose FITS checksum fails (by default they are refused as corrupted).")
@click.option("-q", "--quiet", is_flag=True, help="With --out-dir: no progress bar and no summary, errors only.")
@click.option("--threshold", type=float, default=None,
              help="Probability a cadence must exceed to be a flare candidate (default: the model's recommended one).")
@click.option("--min-cadences", type=int, default=DEFAULT_MIN_CADENCES, show_default=True,
              help="Cadences above threshold a flare needs.")
@click.option("--merge-gap", type=int, default=DEFAULT_MERGE_GAP, show_default=True,
              help="Runs separated by at most this many cadences are one flare.")
@click.option("--min-snr", type=float, default=DEFAULT_MIN_SNR, show_default=True,
              help="Flag flares whose ED signal-to-noise is lower as low_snr (dropped unless --keep-all).")
@click.option("--keep-all", is_flag=True,
              help="Keep the rows vetting rejects too (column vetted False, the flag columns say why); by default "
                   "only vetted rows.")
@click.option("--template", type=click.Choice(sorted(TEMPLATES)), default="davenport", show_default=True,
              help="Flare template fitted to every flare: davenport (Davenport et al. 2014) or mendoza "
                   "(Mendoza et al. 2022); recorded in the table's meta.")
@scoring_options
@click.pass_context
def find(ctx, files, output, out_dir, workers, dask_address, dask_timeout, probabilities, verify_checksum, quiet,
         threshold, min_cadences, merge_gap, min_snr, keep_all, template, model_paths, threads, engine, quality_bitmask,
         flux_column, overwrite):
    """Find flares in FILES (SPOC light-curve FITS): one row per flare.

    With several files the rows are combined into one table with a `file` column. A file that
    cannot be read or scored is reported and skipped; the exit status is 1 if any failed. The
    output is written atomically and never replaced without --overwrite.

    With --out-dir each file gets its own catalogue (in parallel with --workers or --dask), run.ecsv
    records each file's status, and flares.fits (every flare) and stars.ecsv (every light curve) are
    rebuilt at the end. Running again skips finished files. Ctrl-C stops scheduling and finishes the
    files in flight (a second Ctrl-C abandons them); the exit status is 130 then.
    """
    params = dict(threshold=threshold, min_cadences=min_cadences, merge_gap=merge_gap, min_snr=min_snr,
                  keep_all=keep_all, template=TEMPLATES[template])
    if out_dir is not None:
        if output is not None:
            raise click.UsageError("--output and --out-dir are mutually exclusive")
        root_quiet = bool(ctx.find_root().params.get("quiet"))
        _bulk(files, out_dir, workers, dask_address, dask_timeout, probabilities, model_paths, threads, engine,
              overwrite, quiet or root_quiet, quality_bitmask=quality_bitmask, flux_column=flux_column,
              verify_checksum=verify_checksum, **params)
        return
    if workers != 1 or dask_address is not None or probabilities:
        raise click.UsageError("--workers, --dask and --probabilities need --out-dir")
    if output is not None:
        try:
            catalogue_format(output)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--output") from exc
        check_output(output, overwrite)
    from flarelight.runtime.sweep_inputs import expand_inputs

    try:
        paths = [Path(f) for f in expand_inputs(files)]
    except FlarelightError as exc:
        raise click.ClickException(str(exc)) from None
    model = load_model(model_paths, threads, engine)
    tables: list[tuple[str, Table]] = []
    failed = 0
    for f in paths:
        try:
            lc = read_lightcurve(f, quality_bitmask=quality_bitmask, flux_column=flux_column,
                                 verify_checksum=verify_checksum)
            t = find_flares(lc, model, **params)
        except FlarelightError as exc:
            failed += 1
            click.echo(f"error: {exc}", err=True)
            continue
        tables.append((f.name, t))
        click.echo(f"{f.name}: {len(t)} flare{'s' if len(t) != 1 else ''}", err=True)
    if tables:
        table = tables[0][1] if len(paths) == 1 else combine(tables)
        if output is None:
            table.pprint_all()
        else:
            with atomic_path(output) as tmp:
                write_catalogue(table, tmp)
            click.echo(f"{len(table)} flares from {len(tables)} file(s) -> {output}", err=True)
    if failed:
        raise SystemExit(1)


def _bulk(files: tuple[str, ...], out_dir: Path, workers: int, dask_address: str | None, dask_timeout: float,
          probabilities: bool, model_paths: tuple[str, ...], threads: int | None, engine: str, overwrite: bool,
          quiet: bool, **kwargs) -> None:
    """``find --out-dir``: a survey run via :func:`~flarelight.runtime.bulk.process_files`."""
    import os

    from flarelight.runtime.bulk import RunInterrupted, process_files

    from .find_progress import BulkProgress

    if workers < 1:
        raise click.BadParameter(f"{workers}: must be >= 1", param_hint="--workers")
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    progress = BulkProgress(quiet=quiet)
    try:
        run = process_files(files, out_dir, model=list(model_paths) or None, workers=workers,
                            dask_address=dask_address, dask_timeout=dask_timeout, overwrite=overwrite,
                            write_probabilities=probabilities, threads_per_worker=threads, engine=engine,
                            progress=progress, **kwargs)
    except RunInterrupted as exc:
        progress.close()
        progress.echo(str(exc), error=True)
        raise SystemExit(130) from None
    except FlarelightError as exc:  # bad inputs, model or scheduler: one line, no traceback
        progress.close()
        raise click.ClickException(str(exc)) from None
    finally:
        progress.close()
    progress.summary(run, out_dir)
    if (run["status"] == "error").any():
        raise SystemExit(1)
