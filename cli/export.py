"""``flarelight export``: a trained Keras model to a verified flarelight ONNX file."""
from __future__ import annotations

from pathlib import Path

import click

from .options import check_output, overwrite_option


@click.command()
@click.argument("keras_model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ONNX file to write (default: beside the model, .onnx).")
@click.option("--name", "model_name", default=None,
              help="Model name for the member id <name>/s<seed> (default: the id in --meta, or the file's stem).")
@click.option("--meta", "meta_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="ModelMetadata JSON (default: <model>.meta.json written by `flarelight train`, if present).")
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Training set (.npz or stella .fits): its preprocessing and real windows for the check.")
@click.option("--atol", type=float, default=1e-5, show_default=True, help="Largest accepted |ONNX - Keras|.")
@overwrite_option
def export(keras_model, output, model_name, meta_path, dataset, atol, overwrite):
    """Export KERAS_MODEL to ONNX (tf2onnx), checked against Keras on real, random and adversarial windows.

    Fails, writing nothing, if ONNX and Keras differ by more than --atol. The ONNX metadata (window,
    cadence, normalisation, quality and gap rules, training data hash, seed, metrics) is taken from --meta,
    or the model's .meta.json sidecar, or built from --dataset's preprocessing.
    """
    import keras
    import numpy as np

    from flarelight.runtime import FlarelightError, ModelMetadata, Preprocessing
    from flarelight.trainer.export import export_onnx, read_metadata, sha256_file
    from flarelight.trainer.train import member_id
    from flarelight.trainer.trainingset import load_training_set

    output = output or keras_model.with_suffix(".onnx")
    check_output(output, overwrite)
    sidecar = keras_model.with_name(keras_model.stem + ".meta.json")
    meta_path = meta_path or (sidecar if sidecar.is_file() else None)
    try:
        ts = load_training_set(dataset) if dataset else None
        model = keras.models.load_model(keras_model, compile=False)
        if meta_path:
            meta = ModelMetadata.from_json(meta_path.read_text(), source=str(meta_path))
        else:
            shape = model.input_shape
            pre = ts.preprocessing if ts is not None else Preprocessing(
                window=int(shape[1]), offset=int(shape[1]) // 2, edge_mode="pad" if shape[2] == 2 else "valid")
            training = {"keras_file": keras_model.name, "keras_sha256": sha256_file(keras_model)}
            if ts is not None:
                training.update(description=ts.meta.get("description", ""), data_sha256=ts.content_hash())
            meta = ModelMetadata(preprocessing=pre, model_id=keras_model.stem, training=training)
        if model_name:
            meta = meta.replace(model_id=member_id(model_name, meta.seed) if meta.seed is not None else model_name)
        real = None
        if ts is not None:
            idx = np.random.default_rng(0).choice(len(ts), min(256, len(ts)), replace=False)
            real = ts.x[np.sort(idx)]
        path = export_onnx(model, output, meta, real_windows=real, atol=atol)
        written = read_metadata(path)
    except FlarelightError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{keras_model.name} -> {path} ({written.model_id}; max |ONNX - Keras| = "
               f"{written.metrics['onnx_max_abs_diff']:.2g})")

