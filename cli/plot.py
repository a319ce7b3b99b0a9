"""``flarelight plot``: a picture of one light curve, its flare probabilities and its flare catalogue."""
from __future__ import annotations

from pathlib import Path

import click

from flarelight.runtime import FlarelightError
from flarelight.runtime.atomic import atomic_path
from flarelight.runtime.catalogue import DEFAULT_MIN_SNR
from flarelight.runtime.find import find_flares

from .options import (check_output, flux_column_option, load_model, model_option, overwrite_option, quality_option,
                      threads_option)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Image to write (.png, .pdf, .svg).")
@click.option("--threshold", type=float, default=None, help="Probability threshold (default: the model's recommended one).")
@click.option("--min-snr", type=float, default=DEFAULT_MIN_SNR, show_default=True,
              help="Drop flares whose ED signal-to-noise is below this.")
@click.option("--max-zooms", type=int, default=12, show_default=True, help="Flare zoom panels at most.")
@model_option
@threads_option
@quality_option
@flux_column_option
@overwrite_option
def plot(file, output, threshold, min_snr, max_zooms, model_paths, threads, quality_bitmask, flux_column, overwrite):
    """Plot FILE (a SPOC light-curve FITS) coloured by flare probability, with its flares and zooms on each."""
    from flarelight.runtime.plot import plot_flares

    check_output(output, overwrite)
    model = load_model(model_paths, threads)
    try:
        cat = find_flares(file, model, threshold=threshold, min_snr=min_snr, quality_bitmask=quality_bitmask,
                          flux_column=flux_column, full=True)
    except FlarelightError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from exc
    try:
        with atomic_path(output) as tmp:
            plot_flares(cat, tmp, max_zooms=max_zooms)
    except ImportError as exc:  # matplotlib missing: the message names `pip install flarelight[plot]`
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{file.name}: {len(cat.table)} flares -> {output}")
