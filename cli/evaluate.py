"""``flarelight evaluate``: score ONNX model(s) on a held-out training split and/or labelled light curves."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .options import check_output, model_option, overwrite_option, quality_option, threads_option


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@model_option
@click.option("-c", "--catalog", "catalogs", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Flare catalogue(s) labelling FILES (repeatable).")
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Training set (.npz or stella .fits) whose --split windows are scored.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test", "all"]))
@click.option("-o", "--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for metrics.json and PR-curve / confusion-matrix PNGs.")
@click.option("--threshold", type=float, default=0.5, show_default=True)
@click.option("--flux-column", default="auto", show_default=True)
@quality_option
@threads_option
@overwrite_option
def evaluate(files, model_paths, catalogs, dataset, split, out_dir, threshold, flux_column, quality_bitmask, threads,
             overwrite):
    """Evaluate a model: window metrics on a --dataset split, and per-cadence and per-event scores on FILES.

    Writes OUT_DIR/metrics.json (confusion matrix, precision, recall, accuracy, F1, average precision) and
    PNG plots (PR curve, confusion matrix) for the windows and for the cadences of FILES.
    """
    import numpy as np

    from flarelight.runtime import FlarelightError
    from flarelight.trainer.catalogs import FlareCatalog, load_catalogs
    from flarelight.trainer.dataset import cadence_labels, load_training_set, read_lightcurves
    from flarelight.trainer.evaluate import evaluate_lightcurves, window_metrics, write_report
    from flarelight.trainer.progress import progress_bar

    from .options import load_model

    if not files and not dataset:
        raise click.UsageError("give light-curve FILES (with --catalog) and/or --dataset")
    check_output(out_dir / "metrics.json", overwrite)
    result: dict = {"threshold": threshold}
    try:
        model = load_model(model_paths, threads)
        result["model"] = model.model_id
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
            cat = load_catalogs(catalogs) if catalogs else FlareCatalog.empty()
            with progress_bar(len(files), "reading light curves") as bar:
                lcs = read_lightcurves(files, flux_column=flux_column, quality_bitmask=quality_bitmask, progress=bar)
            with progress_bar(len(lcs), "scoring light curves") as bar:
                probs = {}

                def predict(lc):
                    probs[lc.label] = model.predict(lc)
                    return probs[lc.label]

                result["lightcurves"] = evaluate_lightcurves(predict, lcs, cat, threshold, progress=bar)
            ys, ps = [], []
            for lc in lcs:
                prob = probs[lc.label]
                ok = np.isfinite(prob) & lc.good
                ys.append(cadence_labels(lc.time[ok], cat.for_lightcurve(lc).intervals()))
                ps.append(prob[ok])
            write_report(result["lightcurves"]["cadence"], np.concatenate(ys), np.concatenate(ps), out_dir,
                         prefix="cadences_")
    except FlarelightError as exc:
        raise click.ClickException(str(exc)) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=str))
    if "windows" in result:
        w = result["windows"]
        click.echo(f"windows ({split}): precision {w['precision']:.3f} recall {w['recall']:.3f} "
                   f"accuracy {w['accuracy']:.3f} AP {w['average_precision']:.3f}")
    if "lightcurves" in result:
        c, e = result["lightcurves"]["cadence"], result["lightcurves"]["event"]
        click.echo(f"cadences: precision {c['precision']:.3f} recall {c['recall']:.3f} AP {c['average_precision']:.3f}; "
                   f"events: recall {e['recall']:.3f} precision {e['precision']:.3f} ({e['n_recovered']}/{e['n_true']} "
                   f"flares, {e['n_fp']} false events)")
    click.echo(f"-> {out_dir / 'metrics.json'}")
