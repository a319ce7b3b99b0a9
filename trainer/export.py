"""Export Keras models to flarelight ONNX files (tf2onnx), checked against Keras; convert stella's models."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from flarelight.runtime.errors import ModelFileError
from flarelight.runtime.metadata import METADATA_KEY, STELLA_PREPROCESSING, ModelMetadata

#: largest |ONNX - Keras| accepted by :func:`export_onnx` (float32 CNNs agree to ~3e-7)
EXPORT_ATOL = 1e-5
STELLA_SOURCE = "benjaminpope/stella@e4ace0b842caa6d9f8cb158828d3d161bf2eee82 (stella/data)"


class ExportMismatchError(ModelFileError):
    """The exported ONNX model disagrees with the Keras model beyond the tolerance."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_windows(window: int, channels: int = 1, n: int = 256, seed: int = 0,
                  real: np.ndarray | None = None) -> np.ndarray:
    """Windows to compare ONNX against Keras: real ones (if given) plus random and adversarial ones.

    Random: noise around 1 at several noise levels, with injected flare-like spikes; adversarial:
    all ones, all zeros, a step, large values.
    """
    rng = np.random.default_rng(seed)
    x = 1.0 + rng.normal(0, 1, (n, window)) * rng.choice([1e-4, 1e-3, 1e-2, 5e-2], size=(n, 1))
    for k in range(0, n, 4):  # flare-like spikes with exponential decay
        c = rng.integers(0, window)
        amp = rng.uniform(0.005, 0.5)
        tail = np.arange(window - c)
        x[k, c:] += amp * np.exp(-tail / rng.uniform(1, 20))
    adv = np.stack([np.ones(window), np.zeros(window), np.r_[np.ones(window // 2), 1.1 * np.ones(window - window // 2)],
                    np.full(window, 50.0)])
    x = np.concatenate([x, adv]).astype(np.float32)
    if channels == 2:
        flag = np.ones_like(x)
        flag[::3, : window // 3] = 0.0  # padded windows too
        x = np.where(flag == 0, 1.0, x).astype(np.float32)
        x = np.stack([x, flag], axis=-1)
    else:
        x = x[..., None]
    if real is not None and len(real):
        real = np.asarray(real, np.float32).reshape(len(real), window, channels)
        x = np.concatenate([real, x])
    return x


def to_onnx_proto(model, opset: int = 17):
    """Convert a Keras model with input (None, window, channels) to an ONNX ModelProto.

    Uses ``tf2onnx.convert.from_function`` with an explicit input signature (``from_keras`` fails on
    TensorFlow 2.21 / Keras 3); the batch dimension is dynamic; the input is named "window".
    """
    import tensorflow as tf
    import tf2onnx

    shape = tuple(model.input_shape)
    spec = (tf.TensorSpec((None,) + shape[1:], tf.float32, name="window"),)
    fn = tf.function(lambda x: model(x, training=False))
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=opset)
    return proto


def onnx_vs_keras(model, proto, windows: np.ndarray) -> float:
    """Largest |ONNX - Keras| probability over ``windows``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    a = sess.run(None, {sess.get_inputs()[0].name: windows})[0].reshape(-1)
    b = np.concatenate([np.asarray(model(windows[i:i + 1024], training=False)).reshape(-1)
                        for i in range(0, len(windows), 1024)])  # direct calls: no predict() retracing
    return float(np.max(np.abs(a.astype(np.float64) - b)))


def export_onnx(model, path: str | os.PathLike, metadata: ModelMetadata, *, real_windows: np.ndarray | None = None,
                atol: float = EXPORT_ATOL, opset: int = 17) -> Path:
    """Export a Keras model to a flarelight ONNX file, verified against Keras, written atomically.

    Parameters
    ----------
    model : keras.Model
        Input shape (None, window, channels) matching ``metadata.preprocessing``.
    path : path-like
        Destination ``.onnx`` file.
    metadata : ModelMetadata
        Written to ``metadata_props["flarelight"]``; ``metrics["onnx_max_abs_diff"]`` is filled in.
    real_windows : ndarray, optional
        Real, preprocessed windows to include in the check (random and adversarial ones always are).
    atol : float
        Largest accepted |ONNX - Keras| difference.

    Raises
    ------
    ExportMismatchError
        ONNX and Keras disagree by more than ``atol``; nothing is written.
    """
    from flarelight import runtime

    pre = metadata.preprocessing
    shape = tuple(model.input_shape)
    if shape[1:] != (pre.window, pre.n_channels):
        raise ModelFileError(f"model input {shape} does not match the metadata's (None, {pre.window}, {pre.n_channels})")
    proto = to_onnx_proto(model, opset=opset)
    windows = check_windows(pre.window, pre.n_channels, real=real_windows)
    diff = onnx_vs_keras(model, proto, windows)
    if not diff <= atol:
        raise ExportMismatchError(f"ONNX export differs from Keras by {diff:.3g} > {atol:g} on {len(windows)} windows; "
                                  "not written (check the tf2onnx/onnx versions)")
    metadata.flarelight_version = metadata.flarelight_version or runtime.__version__
    metadata.metrics = {**metadata.metrics, "onnx_max_abs_diff": diff, "onnx_check_windows": int(len(windows))}
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()
    proto.producer_name = "flarelight"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(proto.SerializeToString())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def convert_stella(sources: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                   real_windows: np.ndarray | None = None, progress: Iterable | None = None) -> list[Path]:
    """Convert stella ``.keras`` models to flarelight ONNX files carrying stella's preprocessing.

    One ``<basename>.onnx`` per input, in ``out_dir``. The metadata records stella's rules (QUALITY == 0,
    divide by the median, 200-cadence windows ``flux[i-100:i+100]``, gaps at steps >= median + 1.5 sigma),
    so the runtime reproduces stella's probabilities wherever stella scores a real window.
    """
    import keras

    out = []
    for src in sources:
        src = Path(src)
        if not src.is_file():
            raise ModelFileError(f"{src}: no such stella model")
        try:
            model = keras.models.load_model(src, compile=False)
        except Exception as exc:  # keras raises many types for a bad archive
            raise ModelFileError(f"{src}: not a loadable Keras model ({type(exc).__name__}: {exc})") from exc
        window = int(model.input_shape[1])
        pre = STELLA_PREPROCESSING.replace(window=window, offset=window // 2)
        meta = ModelMetadata(preprocessing=pre, model_id=f"stella-{src.stem.split('_')[1] if '_' in src.stem else src.stem}",
                             training={"source": STELLA_SOURCE, "keras_file": src.name, "keras_sha256": sha256_file(src),
                                       "note": "converted from stella's published ensemble; trained by stella, not flarelight"})
        out.append(export_onnx(model, Path(out_dir) / (src.stem + ".onnx"), meta, real_windows=real_windows))
        if progress is not None:
            progress.update(1)
    return out
