"""Seeded training of stella-style CNN ensembles, with early stopping, saved history and a verified ONNX export.

Output layout of :func:`train_ensemble` (``out_dir``), for a model named ``model`` and seed 42::

    model_s0042.keras          the Keras model (best validation loss)
    model_s0042.onnx           the flarelight ONNX model (checked against Keras, metadata inside)
    model_s0042.history.json   loss/metrics per epoch, stopping epoch, seed, timings
    model_s0042.meta.json      the ModelMetadata written into the ONNX file (reused by ``flarelight export``)
    model_s0042.history.png    loss curves
    ensemble.json              the training-set summary and each member's files and test metrics

Each member's id (``ModelMetadata.model_id``) is ``<model name>/s<seed>``, e.g. ``model/s42`` or
``flarelight-v1/s1000``: the runtime shows the model's name and size from it.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from flarelight.runtime.errors import FlarelightError
from flarelight.runtime.jsonio import write_json
from flarelight.runtime.metadata import ModelMetadata

from .evaluate import plot_history, window_metrics
from .trainingset import TrainingSet

log = logging.getLogger(__name__)

#: model name used when none is given
DEFAULT_MODEL_NAME = "model"


class TrainingError(FlarelightError, ValueError):
    """Training cannot run as asked (empty split, bad settings)."""


@dataclass
class TrainedModel:
    """One trained ensemble member."""

    seed: int
    model: Any
    history: dict
    metrics: dict = field(default_factory=dict)
    keras_path: Path | None = None
    onnx_path: Path | None = None
    metadata: ModelMetadata | None = None


def set_determinism(seed: int) -> bool:
    """Seed Python, numpy and TensorFlow, and ask TensorFlow for deterministic ops.

    Returns True if op determinism is enabled (TensorFlow allows it only before some ops are created; CPU
    training is then bit-for-bit repeatable for a given seed and thread setting).
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    try:
        tf.config.experimental.enable_op_determinism()
    except (AttributeError, RuntimeError) as exc:  # older TF, or too late in this process
        log.warning("TensorFlow op determinism not enabled (%s); results may vary slightly between runs", exc)
        return False
    return True


class _EpochProgress:
    """A Keras callback advancing a progress bar once per epoch."""

    def __new__(cls, bar: Any):
        import keras

        class _CB(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                bar.update(1)

        return _CB()


def train_model(ts: TrainingSet, seed: int = 0, *, epochs: int = 50, batch_size: int = 64, patience: int = 5,
                cnn: dict | None = None, class_weight: str | dict | None = None, progress: Any = None) -> TrainedModel:
    """Train one CNN on ``ts``'s "train" windows, early-stopping on the "val" loss (best weights restored).

    Parameters
    ----------
    ts : TrainingSet
        Must have "train" windows; "val" windows drive early stopping (without them, the training loss does and a
        warning is logged).
    seed : int
    epochs, batch_size, patience : int
    cnn : dict, optional
        Keyword arguments of :func:`flarelight.trainer.cnn.build_cnn` (filters, kernels, dense, dropout,
        learning_rate); window and channels come from ``ts.preprocessing``.
    class_weight : "balanced", dict or None
        Weight the classes (e.g. when negatives are not balanced).
    progress : object with ``update(n)``, optional
        Advanced once per epoch.
    """
    import keras

    from .cnn import build_cnn

    tr, va = ts.subset("train"), ts.subset("val")
    if len(tr) == 0:
        raise TrainingError("training set has no 'train' windows; split it with split_by_star first")
    if tr.n_positive == 0 or tr.n_positive == len(tr):
        raise TrainingError(f"'train' split has {tr.n_positive} positives in {len(tr)} windows; it needs both classes")
    set_determinism(seed)
    pre = ts.preprocessing
    model = build_cnn(pre.window, pre.n_channels, seed=seed, **(cnn or {}))
    monitor = "val_loss" if len(va) else "loss"
    if not len(va):
        log.warning("no 'val' windows: early stopping on the training loss")
    callbacks = [keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True)]
    if progress is not None:
        callbacks.append(_EpochProgress(progress))
    cw = None
    if class_weight == "balanced":
        n1 = tr.n_positive
        n0 = len(tr) - n1
        cw = {0: len(tr) / (2 * n0), 1: len(tr) / (2 * n1)}
    elif isinstance(class_weight, dict):
        cw = class_weight
    t0 = time.perf_counter()
    hist = model.fit(tr.x, tr.y, validation_data=(va.x, va.y) if len(va) else None, epochs=epochs,
                     batch_size=batch_size, shuffle=True, callbacks=callbacks, class_weight=cw, verbose=0)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    losses = history[monitor]
    history.update(seed=seed, epochs_run=len(losses), best_epoch=int(np.argmin(losses)) + 1, monitor=monitor,
                   train_seconds=round(time.perf_counter() - t0, 3), batch_size=batch_size, patience=patience,
                   cnn=cnn or {}, class_weight=cw)
    metrics = {}
    for split in ("val", "test"):
        sub = ts.subset(split)
        if len(sub):
            p = np.asarray(model.predict(sub.x, verbose=0, batch_size=4096)).reshape(-1)
            metrics[split] = window_metrics(sub.y, p)
    return TrainedModel(seed=seed, model=model, history=history, metrics=metrics)


def member_id(model_name: str, seed: int) -> str:
    """A member's id: ``<model name>/s<seed>`` (e.g. ``flarelight-v1/s1000``)."""
    if not model_name or "/" in model_name:
        raise TrainingError(f"model name {model_name!r}: give a non-empty name without '/'")
    return f"{model_name}/s{int(seed)}"


def member_stem(model_name: str, seed: int) -> str:
    """A member's file name without suffix: ``<model name>_s<seed, 4 digits>`` (e.g. ``model_s0042``)."""
    return f"{model_name}_s{int(seed):04d}"


def model_metadata(ts: TrainingSet, member: TrainedModel, model_id: str) -> ModelMetadata:
    """The metadata written into a trained model's ONNX file (training data, hash, seed, metrics).

    ``model_id`` is the member's id, ``<model name>/s<seed>`` (:func:`member_id`).
    """
    summ = ts.summary()
    test = member.metrics.get("test", {})
    keep = ("precision", "recall", "accuracy", "f1", "average_precision", "n", "n_positive")
    return ModelMetadata(
        preprocessing=ts.preprocessing, model_id=model_id, seed=member.seed,
        training={"description": summ["description"], "data_sha256": summ["sha256"], "n_windows": summ["n_windows"],
                  "n_positive": summ["n_positive"], "n_stars": summ["n_stars"],
                  "splits": {s: summ[s] for s in ("train", "val", "test") if s in summ},
                  "epochs_run": member.history.get("epochs_run"), "best_epoch": member.history.get("best_epoch"),
                  "architecture": member.history.get("cnn") or "stella default", "trainer": "flarelight.trainer"},
        metrics={f"test_{k}": test[k] for k in keep if k in test})


def save_member(ts: TrainingSet, member: TrainedModel, out_dir: str | os.PathLike, *,
                model_name: str = DEFAULT_MODEL_NAME, export: bool = True, n_real_windows: int = 256) -> TrainedModel:
    """Save a trained member: ``.keras``, ``.history.json``, ``.history.png``, ``.meta.json`` and (``export``) ``.onnx``.

    Files are named :func:`member_stem` and the metadata carries :func:`member_id`. The ONNX export is checked
    against Keras on up to ``n_real_windows`` windows of ``ts`` plus random and adversarial ones
    (:func:`flarelight.trainer.export.export_onnx`), and fails loudly above the tolerance.
    """
    from flarelight.runtime.atomic import atomic_path

    from .export import export_onnx, read_metadata

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = member_stem(model_name, member.seed)
    member.keras_path = out / f"{stem}.keras"
    with atomic_path(member.keras_path) as tmp:
        member.model.save(tmp)
    write_json(out / f"{stem}.history.json", {**member.history, "metrics": member.metrics})
    plot_history(member.history, out / f"{stem}.history.png")
    meta = model_metadata(ts, member, member_id(model_name, member.seed))
    if export:
        rng = np.random.default_rng(member.seed)
        idx = rng.choice(len(ts), min(n_real_windows, len(ts)), replace=False)
        member.onnx_path = export_onnx(member.model, out / f"{stem}.onnx", meta, real_windows=ts.x[np.sort(idx)])
        meta = read_metadata(member.onnx_path)  # with the export check's figures
    with atomic_path(out / f"{stem}.meta.json") as tmp:
        tmp.write_text(meta.to_json())
    member.metadata = meta
    return member


def train_ensemble(ts: TrainingSet, out_dir: str | os.PathLike, *, n_models: int = 1, seeds: Sequence[int] | None = None,
                   epochs: int = 50, batch_size: int = 64, patience: int = 5, cnn: dict | None = None,
                   class_weight: str | dict | None = None, export: bool = True, progress: Any = None,
                   model_name: str = DEFAULT_MODEL_NAME) -> list[TrainedModel]:
    """Train ``n_models`` seeded members and save each (see the module docstring for the files).

    Parameters
    ----------
    ts : TrainingSet
        With "train" (and ideally "val" and "test") splits.
    out_dir : path-like
    n_models : int
        Ensemble size (ignored if ``seeds`` is given).
    seeds : sequence of int, optional
        Default ``0 .. n_models - 1``.
    epochs, batch_size, patience, cnn, class_weight
        See :func:`train_model`.
    export : bool
        Also write each member's verified ONNX file.
    progress : object with ``update(n)``, optional
        Advanced once per epoch of every member.
    model_name : str
        The ensemble's name: members are ``<model_name>/s<seed>`` in their metadata, ``<model_name>_s<seed>.*`` on disk.

    Returns
    -------
    list of TrainedModel
    """
    seeds = list(seeds) if seeds is not None else list(range(n_models))
    member_id(model_name, 0)  # refuse a bad name before training
    if not seeds:
        raise TrainingError("n_models must be >= 1")
    if len(set(seeds)) != len(seeds):
        raise TrainingError(f"seeds {seeds} repeat; ensemble members need distinct seeds")
    out = Path(out_dir)
    members = []
    for seed in seeds:
        m = train_model(ts, seed, epochs=epochs, batch_size=batch_size, patience=patience, cnn=cnn,
                        class_weight=class_weight, progress=progress)
        members.append(save_member(ts, m, out, model_name=model_name, export=export))
    summary = {"training_set": ts.summary(), "members": [
        {"seed": m.seed, "keras": m.keras_path.name, "onnx": m.onnx_path.name if m.onnx_path else None,
         "epochs_run": m.history["epochs_run"], "best_epoch": m.history["best_epoch"], "metrics": m.metrics}
        for m in members]}
    summary["model_name"] = model_name
    write_json(out / "ensemble.json", summary)
    return members


__all__ = ["train_model", "train_ensemble", "save_member", "model_metadata", "member_id", "member_stem",
           "set_determinism", "TrainedModel", "TrainingError", "DEFAULT_MODEL_NAME"]
