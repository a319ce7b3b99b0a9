"""Export Keras models to flarelight ONNX files (tf2onnx), checked against Keras; convert stella's models."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from flarelight.runtime.atomic import atomic_path
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


def set_metadata(proto: Any, metadata: ModelMetadata) -> Any:
    """Write ``metadata`` into an ONNX ModelProto's ``metadata_props["flarelight"]`` (the one metadata writer).

    Every other metadata entry is removed; the graph is not touched. Returns ``proto``.
    """
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()
    return proto


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """The :class:`ModelMetadata` of a flarelight ONNX file (read with ``onnx``).

    Raises
    ------
    ModelFileError
        Not a loadable ONNX file, or no flarelight metadata in it.
    """
    return ModelMetadata.from_json(_metadata_entry(_load_proto(path), path), source=str(path))


def restamp(path: str | os.PathLike, **changes: Any) -> ModelMetadata:
    """Change fields of a flarelight ONNX file's metadata in place (atomically); weights and graph untouched.

    ``changes`` are :class:`ModelMetadata` fields (e.g. ``threshold=0.9``, ``model_id="flarelight-v1/s1000"``,
    ``preprocessing=meta.preprocessing.replace(gap_tolerance=3.5)``). A sliding form beside the member
    (``X.sliding.onnx``) gets the same metadata and the member's new SHA-256, so it stays in use. Returns the
    new metadata.
    """
    import onnx

    proto = _load_proto(path)
    meta = ModelMetadata.from_json(_metadata_entry(proto, path), source=str(path)).replace(**changes)
    set_metadata(proto, meta)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
    _restamp_sliding(Path(path), meta)
    return meta


def _restamp_sliding(member: Path, meta: ModelMetadata) -> None:
    """Copy a member's new metadata into its sliding form and re-point that at the member's new bytes."""
    import json

    import onnx

    from flarelight.runtime.sliding import SLIDING_KEY, sliding_path

    side = sliding_path(member)
    if not side.is_file():
        return
    proto = _load_proto(side)
    for e in proto.metadata_props:
        if e.key == METADATA_KEY:
            e.value = meta.to_json()
        elif e.key == SLIDING_KEY:
            info = json.loads(e.value)
            info["member_sha256"] = sha256_file(member)
            e.value = json.dumps(info, sort_keys=True)
    with atomic_path(side) as tmp:
        onnx.save(proto, str(tmp))


def graph_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of an ONNX file's model without its ``metadata_props``: equal before and after :func:`restamp`,
    and different as soon as a weight, an op or the graph's structure changes."""
    proto = _load_proto(path)
    del proto.metadata_props[:]
    return hashlib.sha256(proto.SerializeToString(deterministic=True)).hexdigest()


def _load_proto(path: str | os.PathLike) -> Any:
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises protobuf DecodeError, OSError, ...
        raise ModelFileError(f"{path}: not a loadable ONNX file ({type(exc).__name__}: {exc})") from exc


def _metadata_entry(proto: Any, path: str | os.PathLike) -> str:
    for e in proto.metadata_props:
        if e.key == METADATA_KEY:
            return e.value
    raise ModelFileError(f"{path}: no flarelight metadata (metadata_props[{METADATA_KEY!r}]); "
                         "export it with flarelight.trainer.export")


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
        Written to ``metadata_props["flarelight"]`` with ``metrics["onnx_max_abs_diff"]`` and
        ``metrics["onnx_check_windows"]`` added (read it back with :func:`read_metadata`).
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
    metadata = metadata.replace(
        flarelight_version=metadata.flarelight_version or runtime.__version__,
        metrics={**metadata.metrics, "onnx_max_abs_diff": diff, "onnx_check_windows": int(len(windows))})
    set_metadata(proto, metadata)
    proto.producer_name = "flarelight"
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    from .sliding import write_sliding  # X.sliding.onnx beside it, checked (none for per-window normalisation)

    write_sliding(path, keras_model=model, real=() if real_windows is None else [real_windows])
    return path


def stella_seed(path: str | os.PathLike) -> int | None:
    """The seed in a stella model's file name (``ensemble_s0004_i0350_b0.73_savedmodel.keras`` -> 4), else None."""
    m = re.search(r"(?:^|_)s(\d+)(?:_|$)", Path(path).stem)
    return int(m.group(1)) if m else None


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
        seed = stella_seed(src)
        meta = ModelMetadata(preprocessing=pre, model_id=f"stella/s{seed}" if seed is not None else f"stella/{src.stem}",
                             seed=seed, training={"source": STELLA_SOURCE, "keras_file": src.name, "keras_sha256": sha256_file(src),
                                       "note": "converted from stella's published ensemble; trained by stella, not flarelight"})
        out.append(export_onnx(model, Path(out_dir) / (src.stem + ".onnx"), meta, real_windows=real_windows))
        if progress is not None:
            progress.update(1)
    return out
