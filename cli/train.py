"""``flarelight train``: build a training set from light curves + flare labels (or load one), train, export ONNX."""
from __future__ import annotations

from pathlib import Path

import click

from .deprecated import merge_alias
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
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the models (.keras, .onnx), histories, plots and ensemble.json (required).")
@click.option("-o", "out_dir_old", type=click.Path(file_okay=False, path_type=Path), default=None, hidden=True,
              help="Deprecated alias of --out-dir.")
@click.option("--labels", "labels", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Flare catalogue labelling FILES (repeatable): Günther 2020, Ilin 2024, TESS UCD, Ilin 2022 AU Mic, "
                   "or a tic,tstart,tstop CSV in BTJD.")
@click.option("-c", "--catalog", "labels_old", multiple=True, hidden=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Deprecated alias of --labels.")
@click.option("--name", "model_name", default="model", show_default=True,
              help="Model name: members are <name>/s<seed> in their metadata and <name>_s<seed>.* on disk.")
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Train on a saved training set (.npz) or stella-format .fits instead of FILES.")
@click.option("--save-dataset", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the built training set (.npz) to this file.")
@click.option("--flux-column", default="auto", show_default=True,
              help="auto (PDCSAP_FLUX, or FLUX in custom-aperture files), pdcsap_flux, sap_flux, flux.")
@quality_option
@click.option("--edge-mode", type=click.Choice(["valid", "pad"]), default="valid", show_default=True,
              help="valid: stella's full windows; pad: 2-channel windows that also score cadences near gaps.")
@click.option("--positives", type=click.Choice(["peak", "interval"]), default="peak", show_default=True,
              help="peak: one window per flare, centred on its peak (as stella); interval: every cadence of a flare.")
@click.option("--negatives-per-positive", type=float, default=3.0, show_default=True,
              help="Class balance: negative windows drawn per positive one.")
@click.option("--inject", "n_inject", type=int, default=0, show_default=True,
              help="Synthetic Davenport flares to inject per light curve (labels kept).")
@click.option("--split", "fractions", default="0.7,0.15,0.15", show_default=True, callback=lambda c, p, v: _fractions(v),
              help="train,val,test fractions, by star.")
@click.option("--n-models", type=int, default=1, show_default=True, help="Ensemble size (seeds seed..seed+n-1).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the injection, negative sampling, the split and the first member.")
@click.option("--epochs", type=int, default=50, show_default=True, help="Most epochs per member.")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Training batch size.")
@click.option("--patience", type=int, default=5, show_default=True, help="Early-stopping patience (epochs).")
@click.option("--filters", default="16,64", show_default=True, callback=lambda c, p, v: _ints(v),
              help="Filters of each Conv1D layer (stella: 16,64).")
@click.option("--kernels", default="7,3", show_default=True, callback=lambda c, p, v: _ints(v),
              help="Kernel size of each Conv1D layer (stella: 7,3).")
@click.option("--dense", type=int, default=32, show_default=True, help="Units of the dense layer (stella: 32).")
@click.option("--dropout", type=float, default=0.1, show_default=True, help="Dropout rate (stella: 0.1).")
@overwrite_option
def train(files, out_dir, out_dir_old, labels, labels_old, model_name, dataset, save_dataset, flux_column,
          quality_bitmask, edge_mode, positives, negatives_per_positive, n_inject, fractions, n_models, seed, epochs,
          batch_size, patience, filters, kernels, dense, dropout, overwrite):
    """Train a stella-architecture CNN ensemble on FILES (light-curve FITS or stella .npy) labelled by --labels.

    Windows are built with the runtime's own preprocessing; train/val/test are split by star; each member is
    seeded, early-stopped on the validation loss and exported to a verified ONNX file in --out-dir.
    """
    from flarelight.runtime import FlarelightError, Preprocessing
    from flarelight.trainer.inject import inject_flares
    from flarelight.trainer.labels import FlareCatalog, load_catalogs
    from flarelight.trainer.progress import progress_bar
    from flarelight.trainer.reading import read_lightcurves
    from flarelight.trainer.split import split_by_star
    from flarelight.trainer.train import train_ensemble
    from flarelight.trainer.trainingset import load_training_set
    from flarelight.trainer.windows import build_dataset

    out_dir = merge_alias(out_dir, out_dir_old, "--out-dir", "-o")
    labels = merge_alias(labels, labels_old, "--labels", "-c/--catalog")
    if out_dir is None:
        raise click.UsageError("give --out-dir (the folder for the trained models)")
    if bool(files) == bool(dataset):
        raise click.UsageError("give light-curve FILES (with --labels and/or --inject) or --dataset, not both")
    if (out_dir / "ensemble.json").exists() and not overwrite:
        raise click.UsageError(f"{out_dir} already holds a trained ensemble; pass --overwrite to replace it")
    try:
        if dataset:
            ts = load_training_set(dataset)
            if not (ts.split != "").all():
                ts = ts.with_split(split_by_star(ts.star, fractions, seed=seed, y=ts.y))
        else:
            if not labels and not n_inject:
                raise click.UsageError("no labels: give --labels and/or --inject N")
            cat = load_catalogs(labels) if labels else FlareCatalog.empty()
            with progress_bar(len(files), "reading light curves") as bar:
                lcs = read_lightcurves(files, flux_column=flux_column, quality_bitmask=quality_bitmask, progress=bar)
            pre = Preprocessing(edge_mode=edge_mode)
            per_lc = []
            for i, lc in enumerate(lcs):
                real = cat.for_lightcurve(lc) if lc.meta.get("tic") is not None else FlareCatalog.empty()
                if n_inject:
                    lc, tab = inject_flares(lc, n_inject, seed=seed + i, avoid=real.intervals(), pre=pre)
                    lcs[i] = lc
                    real = FlareCatalog.concatenate([real, FlareCatalog.from_table(tab, lc.meta.get("tic") or -1)])
                per_lc.append(real)
            desc = (f"{len(lcs)} light curves; catalogues: {', '.join(c.name for c in labels) or 'none'}; "
                    f"{n_inject} injected flares per light curve")
            ts = build_dataset(lcs, per_lc, pre, positives=positives, negatives_per_positive=negatives_per_positive,
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
                                     batch_size=batch_size, patience=patience, cnn=cnn, progress=bar,
                                     model_name=model_name)
    except FlarelightError as exc:
        raise click.ClickException(str(exc)) from exc
    for m in members:
        t = m.metrics.get("test", {})
        click.echo(f"seed {m.seed}: {m.history['epochs_run']} epochs (best {m.history['best_epoch']}), "
                   f"test AP {t.get('average_precision', float('nan')):.3f} -> {m.onnx_path}")
