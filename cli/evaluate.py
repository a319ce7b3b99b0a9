"""``flarelight evaluate``: score ONNX model(s) on a held-out training split and/or labelled light curves."""
from __future__ import annotations

from pathlib import Path

import click

from .deprecated import merge_alias
from .options import check_output, model_option, overwrite_option, quality_option, threads_option


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@model_option
@click.option("--labels", "labels", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Flare catalogue labelling FILES (repeatable).")
@click.option("-c", "--catalog", "labels_old", multiple=True, hidden=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Deprecated alias of --labels.")
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Training set (.npz or stella .fits) whose --split windows are scored.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test", "all"]),
              help="Which windows of --dataset to score.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for metrics.json and the PR-curve / confusion-matrix PNGs (required).")
@click.option("-o", "out_dir_old", type=click.Path(file_okay=False, path_type=Path), default=None, hidden=True,
              help="Deprecated alias of --out-dir.")
@click.option("--threshold", type=float, default=None,
              help="Catalogue (and cadence) threshold. Default: the model's recommended one.")
@click.option("--flux-column", default="auto", show_default=True,
              help="auto (PDCSAP_FLUX, or FLUX in custom-aperture files), pdcsap_flux, sap_flux, flux.")
@quality_option
@threads_option
@overwrite_option
def evaluate(files, model_paths, labels, labels_old, dataset, split, out_dir, out_dir_old, threshold, flux_column,
             quality_bitmask, threads, overwrite):
    """Evaluate a model: window metrics on a --dataset split, and per-event and per-cadence scores on FILES.

    On FILES the events are the rows of the runtime's catalogue (`flarelight find`), matched to the --labels
    flares with the rule of flare_eval.py (overlap within 2 cadences); per-cadence precision/recall and the PR
    curve are an extra view. Writes OUT_DIR/metrics.json and PNG plots.
    """
    from flarelight.runtime import FlarelightError
    from flarelight.runtime.jsonio import write_json
    from flarelight.trainer.evaluate import evaluate_lightcurves, window_metrics, write_report
    from flarelight.trainer.labels import FlareCatalog, load_catalogs
    from flarelight.trainer.progress import progress_bar
    from flarelight.trainer.reading import read_lightcurves
    from flarelight.trainer.trainingset import load_training_set

    from .options import load_model

    out_dir = merge_alias(out_dir, out_dir_old, "--out-dir", "-o")
    labels = merge_alias(labels, labels_old, "--labels", "-c/--catalog")
    if out_dir is None:
        raise click.UsageError("give --out-dir (the folder for metrics.json and the plots)")
    if not files and not dataset:
        raise click.UsageError("give light-curve FILES (with --labels) and/or --dataset")
    check_output(out_dir / "metrics.json", overwrite)
    result: dict = {}
    try:
        model = load_model(model_paths, threads)
        threshold = model.threshold if threshold is None else threshold
        result.update(model=model.model_id, threshold=threshold)
        if dataset:
            ts = load_training_set(dataset)
            sub = ts if split == "all" else ts.subset(split)
            if len(sub) == 0:
                raise click.UsageError(f"{dataset}: no windows in split {split!r}")
            if sub.preprocessing.window != model.preprocessing.window or \
                    sub.preprocessing.n_channels != model.preprocessing.n_channels:
                raise click.UsageError(f"{dataset}: windows {sub.x.shape[1:]} do not fit the model's "
                                       f"({model.preprocessing.window}, {model.preprocessing.n_channels})")
            p = model.score_windows(sub.x).mean(axis=0)
            result["windows"] = {"split": split, **window_metrics(sub.y, p, threshold)}
            write_report(result["windows"], sub.y, p, out_dir, prefix="windows_")
        if files:
            cat = load_catalogs(labels) if labels else FlareCatalog.empty()
            with progress_bar(len(files), "reading light curves") as bar:
                lcs = read_lightcurves(files, flux_column=flux_column, quality_bitmask=quality_bitmask, progress=bar)
            with progress_bar(len(lcs), "scoring light curves") as bar:
                res, y, p = evaluate_lightcurves(model.score, lcs, cat, threshold, progress=bar, return_arrays=True)
            result["lightcurves"] = res
            write_report(res["cadence"], y, p, out_dir, prefix="cadences_")
    except FlarelightError as exc:
        raise click.ClickException(str(exc)) from exc
    write_json(out_dir / "metrics.json", result)
    if "windows" in result:
        w = result["windows"]
        click.echo(f"windows ({split}): precision {w['precision']:.3f} recall {w['recall']:.3f} "
                   f"accuracy {w['accuracy']:.3f} AP {w['average_precision']:.3f}")
    if "lightcurves" in result:
        c, e = result["lightcurves"]["cadence"], result["lightcurves"]["event"]
        click.echo(f"events (catalogue rows, threshold {threshold:.2f}): recall {e['recall']:.3f} precision "
                   f"{e['precision']:.3f} F1 {e['f1']:.3f} ({e['n_recovered']}/{e['n_true']} flares, {e['n_fp']} false "
                   f"rows); cadences: precision {c['precision']:.3f} recall {c['recall']:.3f} "
                   f"AP {c['average_precision']:.3f}")
    click.echo(f"-> {out_dir / 'metrics.json'}")
