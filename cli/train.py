"""``flarelight train``: build a training set from light curves + catalogues (or load one), train, export ONNX."""
from __future__ import annotations

from pathlib import Path

import click

from .options import overwrite_option, quality_option


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: give comma-separated integers, e.g. 16,64") from exc


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        f = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: give train,val,test fractions, e.g. 0.7,0.15,0.15") from exc
    if len(f) != 3:
        raise click.BadParameter(f"{text!r}: give three fractions train,val,test")
    return f  # type: ignore[return-value]


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the models (.keras, .onnx), histories, plots and ensemble.json.")
@click.option("-c", "--catalog", "catalogs", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Flare catalogue (repeatable): Günther 2020, Ilin 2024, TESS UCD, Ilin 2022 AU Mic, or tic,tstart,tstop CSV.")
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Train on a saved training set (.npz) or stella-format .fits instead of FILES.")
@click.option("--save-dataset", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the built training set (.npz) here.")
@click.option("--flux-column", default="auto", show_default=True,
              help="auto (PDCSAP_FLUX, or FLUX in custom-aperture files), pdcsap_flux, sap_flux, flux.")
@quality_option
@click.option("--edge-mode", type=click.Choice(["valid", "pad"]), default="valid", show_default=True,
              help="valid: stella's full windows; pad: 2-channel windows that also score cadences near gaps.")
@click.option("--positives", type=click.Choice(["peak", "interval"]), default="peak", show_default=True)
@click.option("--negatives-per-positive", type=float, default=3.0, show_default=True)
@click.option("--inject", "n_inject", type=int, default=0, show_default=True,
              help="Synthetic Davenport flares to inject per light curve (labels kept).")
@click.option("--split", "fractions", default="0.7,0.15,0.15", show_default=True, callback=lambda c, p, v: _fractions(v),
              help="train,val,test fractions, by star.")
@click.option("--n-models", type=int, default=1, show_default=True, help="Ensemble size (seeds seed..seed+n-1).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=int, default=50, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--patience", type=int, default=5, show_default=True, help="Early-stopping patience (epochs).")
@click.option("--filters", default="16,64", show_default=True, callback=lambda c, p, v: _ints(v))
@click.option("--kernels", default="7,3", show_default=True, callback=lambda c, p, v: _ints(v))
@click.option("--dense", type=int, default=32, show_default=True)
@click.option("--dropout", type=float, default=0.1, show_default=True)
@overwrite_option
def train(files, out_dir, catalogs, dataset, save_dataset, flux_column, quality_bitmask, edge_mode, positives,
          negatives_per_positive, n_inject, fractions, n_models, seed, epochs, batch_size, patience, filters, kernels,
          dense, dropout, overwrite):
    """Train a stella-architecture CNN ensemble on FILES (light-curve FITS or stella .npy) labelled by --catalog.

    Windows are built with the runtime's own preprocessing; train/val/test are split by star; each member is
    seeded, early-stopped on the validation loss and exported to a verified ONNX file in OUT_DIR.
    """
    from flarelight.runtime import FlarelightError, Preprocessing
    from flarelight.trainer.catalogs import FlareCatalog, load_catalogs
    from flarelight.trainer.dataset import build_dataset, load_training_set, read_lightcurves, split_by_star
    from flarelight.trainer.inject import inject_flares
    from flarelight.trainer.progress import progress_bar
    from flarelight.trainer.train import train_ensemble

    if bool(files) == bool(dataset):
        raise click.UsageError("give light-curve FILES (with --catalog and/or --inject) or --dataset, not both")
    if (out_dir / "ensemble.json").exists() and not overwrite:
        raise click.UsageError(f"{out_dir} already holds a trained ensemble; pass --overwrite to replace it")
    try:
        if dataset:
            ts = load_training_set(dataset)
            if not (ts.split != "").all():
                ts = ts.with_split(split_by_star(ts.star, fractions, seed=seed, y=ts.y))
        else:
            if not catalogs and not n_inject:
                raise click.UsageError("no labels: give --catalog and/or --inject N")
            cat = load_catalogs(catalogs) if catalogs else FlareCatalog.empty()
            with progress_bar(len(files), "reading light curves") as bar:
                lcs = read_lightcurves(files, flux_column=flux_column, quality_bitmask=quality_bitmask, progress=bar)
            labels = []
            for i, lc in enumerate(lcs):
                real = cat.for_lightcurve(lc) if lc.meta.get("tic") is not None else FlareCatalog.empty()
                if n_inject:
                    lc, tab = inject_flares(lc, n_inject, seed=seed + i, avoid=real.intervals())
                    lcs[i] = lc
                    real = FlareCatalog.concatenate([real, FlareCatalog.from_table(tab, lc.meta.get("tic") or -1)])
                labels.append(real)
            pre = Preprocessing(edge_mode=edge_mode)
            desc = (f"{len(lcs)} light curves; catalogues: {', '.join(c.name for c in catalogs) or 'none'}; "
                    f"{n_inject} injected flares per light curve")
            ts = build_dataset(lcs, labels, pre, positives=positives, negatives_per_positive=negatives_per_positive,
                               fractions=fractions, seed=seed, description=desc)
            if save_dataset:
                ts.save(save_dataset)
                click.echo(f"training set -> {save_dataset}")
        s = ts.summary()
        click.echo(f"training set: {s['n_windows']} windows, {s['n_positive']} positive, {s['n_stars']} stars, "
                   f"sha256 {s['sha256'][:12]}; " + ", ".join(
                       f"{k}: {s[k]['n_windows']} windows ({s[k]['n_positive']} positive, {s[k]['n_stars']} stars)"
                       for k in ("train", "val", "test") if k in s))
        cnn = {"filters": filters, "kernels": kernels, "dense": dense, "dropout": dropout}
        with progress_bar(n_models * epochs, f"training {n_models} model(s) (early stopping may end sooner)") as bar:
            members = train_ensemble(ts, out_dir, seeds=range(seed, seed + n_models), epochs=epochs,
                                     batch_size=batch_size, patience=patience, cnn=cnn, progress=bar)
    except FlarelightError as exc:
        raise click.ClickException(str(exc)) from exc
    for m in members:
        t = m.metrics.get("test", {})
        click.echo(f"seed {m.seed}: {m.history['epochs_run']} epochs (best {m.history['best_epoch']}), "
                   f"test AP {t.get('average_precision', float('nan')):.3f} -> {m.onnx_path}")
