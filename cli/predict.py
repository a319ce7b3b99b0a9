"""``flarelight predict``: per-cadence probabilities for light-curve files, written as .npz."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from flarelight.runtime import FlarelightError
from flarelight.runtime.atomic import atomic_path

from .options import load_model, scoring_options


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for <name>.npz (arrays time, prob) per input.  [required]")
@click.option("-o", "legacy_out_dir", type=click.Path(file_okay=False, path_type=Path), default=None, hidden=True,
              help="Deprecated spelling of --out-dir (-o always names a file elsewhere).")
@scoring_options
def predict(files, out_dir, legacy_out_dir, model_paths, threads, engine, quality_bitmask, flux_column, overwrite):
    """Write per-cadence flare probabilities of FILES (SPOC light-curve FITS) to OUT_DIR.

    Outputs are written atomically; existing ones are skipped, so a rerun resumes where the last
    stopped. A file that cannot be read is reported and skipped; the exit status is 1 if any failed.
    """
    if legacy_out_dir is not None:
        if out_dir is not None:
            raise click.UsageError("give --out-dir only (-o is its deprecated spelling)")
        click.echo("warning: `predict -o DIR` is deprecated and will be removed: use --out-dir DIR", err=True)
        out_dir = legacy_out_dir
    if out_dir is None:
        raise click.UsageError("missing option --out-dir")
    model = load_model(model_paths, threads, engine)
    failed = 0
    for f in files:
        dest = out_dir / (f.name.removesuffix(".gz").removesuffix(".fits") + ".npz")
        if dest.exists() and not overwrite:
            click.echo(f"{f.name}: {dest} exists, skipped (resume); --overwrite to redo")
            continue
        try:
            scored = model.score(f, quality_bitmask=quality_bitmask, flux_column=flux_column)
        except FlarelightError as exc:
            failed += 1
            click.echo(f"error: {exc}", err=True)
            continue
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, time=scored.lc.time, prob=scored.prob, model_id=model.model_id)
        prob = scored.prob
        n = int(np.isfinite(prob).sum())
        click.echo(f"{f.name}: {n}/{prob.size} cadences scored, max p = {np.nanmax(prob) if n else float('nan'):.3f} -> {dest}")
    if failed:
        raise SystemExit(1)
