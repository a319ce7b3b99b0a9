"""``flarelight predict``: per-cadence probabilities for light-curve files, written as .npz."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from flarelight.runtime import FlarelightError, read_lightcurve
from flarelight.runtime.atomic import atomic_path

from .options import flux_column_option, load_model, model_option, overwrite_option, quality_option, threads_option


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for <basename>.npz (arrays time, prob) per input.")
@model_option
@threads_option
@quality_option
@flux_column_option
@overwrite_option
def predict(files, out_dir, model_paths, threads, quality_bitmask, flux_column, overwrite):
    """Write per-cadence flare probabilities of FILES (SPOC light-curve FITS) to OUT_DIR.

    Outputs are written atomically; existing ones are skipped, so a rerun resumes where the last
    stopped. A file that cannot be read is reported and skipped; the exit status is 1 if any failed.
    """
    model = load_model(model_paths, threads)
    failed = 0
    for f in files:
        dest = out_dir / (f.name.removesuffix(".fits") + ".npz")
        if dest.exists() and not overwrite:
            click.echo(f"{f.name}: {dest} exists, skipped (resume); --overwrite to redo")
            continue
        try:
            lc = read_lightcurve(f, quality_bitmask=quality_bitmask, flux_column=flux_column)
            prob = model.predict(lc)
        except FlarelightError as exc:
            failed += 1
            click.echo(f"error: {exc}", err=True)
            continue
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, time=lc.time, prob=prob, model_id=model.model_id)
        n = int(np.isfinite(prob).sum())
        click.echo(f"{f.name}: {n}/{prob.size} cadences scored, max p = {np.nanmax(prob) if n else float('nan'):.3f} -> {dest}")
    if failed:
        raise SystemExit(1)
