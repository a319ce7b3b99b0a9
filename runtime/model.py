"""``FlareModel``: one or more flarelight ONNX files (an ensemble) run with onnxruntime."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime as ort

from .errors import ModelFileError
from .io import LightCurveData, as_lightcurve
from .metadata import METADATA_KEY, ModelMetadata, Preprocessing
from .preprocess import Prepared, prepare, window_batches


def _session_options(threads: int | None) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = int(threads) if threads else 0  # 0: onnxruntime's default (all cores)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.enable_cpu_mem_arena = False  # the arena keeps each session's peak buffers: ~1 GB per member at large batches
    return so


def _load_member(path: Path, threads: int | None) -> tuple[ort.InferenceSession, ModelMetadata]:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        sess = ort.InferenceSession(str(path), sess_options=_session_options(threads),
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own non-exported exception types
        raise ModelFileError(f"{path}: not a loadable ONNX model ({type(exc).__name__}: {exc})") from exc
    props = sess.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise ModelFileError(
            f"{path}: ONNX file without flarelight metadata; export it with flarelight.trainer "
            "(or convert a stella .keras model with `flarelight convert-stella`)")
    meta = ModelMetadata.from_json(props[METADATA_KEY], source=str(path))
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise ModelFileError(f"{path}: expected one input, found {[i.name for i in inputs]}")
    shape = inputs[0].shape
    pre = meta.preprocessing
    if len(shape) != 3 or shape[1] != pre.window or shape[2] != pre.n_channels:
        raise ModelFileError(f"{path}: input shape {shape} does not match its metadata "
                             f"(batch, {pre.window}, {pre.n_channels}); the file is inconsistent: re-export it")
    if len(sess.get_outputs()) != 1:
        raise ModelFileError(f"{path}: expected one output (the flare probability)")
    meta.input_name = inputs[0].name
    return sess, meta


class FlareModel:
    """An ensemble of flarelight ONNX models; probabilities are the ensemble mean.

    Thread-safe: the object holds only read-only sessions and settings; each call builds its own
    buffers. Holds no global state: two ``FlareModel`` objects are independent.

    Parameters
    ----------
    paths : path or sequence of paths
        One or more ``.onnx`` files, or a directory of them. All must share one preprocessing.
    threads : int, optional
        CPU threads to use (default: all cores). An ensemble runs its members concurrently, one
        single-threaded onnxruntime session each, ``threads`` at a time (this beats intra-op threading for
        a CNN this small); a single model uses ``threads`` intra-op threads.
    batch_size : int
        Windows per inference call (memory: ``batch_size * window * 4`` bytes per channel).
    """

    def __init__(self, paths: str | os.PathLike | Sequence[str | os.PathLike], *, threads: int | None = None,
                 batch_size: int = 256) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        files: list[Path] = []
        for p in paths:
            p = Path(p)
            files.extend(sorted(p.glob("*.onnx")) if p.is_dir() else [p])
        if not files:
            raise ModelFileError(f"no .onnx files in {[str(p) for p in paths]}")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be >= 1")
        self.threads = max(1, int(threads) if threads else (os.cpu_count() or 1))
        per_session = 1 if len(files) > 1 else self.threads
        loaded = [_load_member(f, per_session) for f in files]
        self.paths: tuple[Path, ...] = tuple(files)
        self._sessions = tuple(s for s, _ in loaded)
        self.metadata: tuple[ModelMetadata, ...] = tuple(m for _, m in loaded)
        pres = {m.preprocessing for m in self.metadata}
        if len(pres) != 1:
            raise ModelFileError(f"ensemble members disagree on preprocessing: {sorted(map(str, pres))}; "
                                 "an ensemble must share window, cadence, normalisation, quality and gap rules")
        self.preprocessing: Preprocessing = self.metadata[0].preprocessing
        self.batch_size = int(batch_size)

    @classmethod
    def default(cls, **kwargs: Any) -> "FlareModel":
        """The ensemble shipped with flarelight (``flarelight.models``)."""
        from flarelight.models import default_model_paths

        return cls(default_model_paths(), **kwargs)

    @property
    def n_models(self) -> int:
        """Number of ensemble members."""
        return len(self._sessions)

    @property
    def threshold(self) -> float:
        """The recommended catalogue threshold: the mean of the members' metadata thresholds."""
        return float(np.mean([m.threshold for m in self.metadata]))

    @property
    def model_id(self) -> str:
        """An identifier of the ensemble (its members' ids, or file names)."""
        ids = sorted({m.model_id or p.stem for m, p in zip(self.metadata, self.paths)})
        return ids[0] if len(ids) == 1 else "+".join(ids) if len(ids) <= 3 else f"{ids[0]}+{len(ids) - 1} more"

    def __repr__(self) -> str:
        return f"FlareModel({self.model_id!r}, n_models={self.n_models}, window={self.preprocessing.window})"

    # ------------------------------------------------------------------ inference
    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        """Raw model output for a batch of windows.

        Parameters
        ----------
        windows : ndarray, shape (m, window, channels)
            Already-normalised windows (converted to C-contiguous float32).

        Returns
        -------
        ndarray of float32, shape (n_models, m)
        """
        pre = self.preprocessing
        x = np.ascontiguousarray(windows, dtype=np.float32)
        if x.ndim == 2 and pre.n_channels == 1:
            x = x[:, :, None]
        if x.ndim != 3 or x.shape[1:] != (pre.window, pre.n_channels):
            raise ValueError(f"windows: expected shape (m, {pre.window}, {pre.n_channels}), got {x.shape}")
        return self._run_members(x)

    def _run_members(self, x: np.ndarray, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
        out = np.empty((self.n_models, x.shape[0]), np.float32)

        def run(k: int) -> None:
            out[k] = self._sessions[k].run(None, {self.metadata[k].input_name: x})[0].reshape(-1)

        if pool is None or self.n_models == 1:
            for k in range(self.n_models):
                run(k)
        else:
            for f in [pool.submit(run, k) for k in range(self.n_models)]:
                f.result()
        return out

    def _score_prepared(self, prep: Prepared) -> np.ndarray:
        scores = np.empty((self.n_models, prep.centres.size), np.float32)
        workers = min(self.threads, self.n_models)
        with ThreadPoolExecutor(max_workers=workers) if workers > 1 else _NoPool() as pool:
            for sl, batch in window_batches(prep, self.preprocessing, self.batch_size):
                scores[:, sl] = self._run_members(batch, pool)
        return scores

    def prepare(self, time: Any, flux: Any = None, flux_err: Any = None, quality: Any = None) -> tuple[LightCurveData, Prepared]:
        """Read/validate the input and apply this model's preprocessing (see :func:`predict`)."""
        lc = as_lightcurve(time, flux, flux_err, quality)
        return lc, prepare(lc, self.preprocessing)

    def predict(self, time: Any, flux: Any = None, flux_err: Any = None, quality: Any = None, *,
                per_model: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Per-cadence flare probability.

        Parameters
        ----------
        time : array-like, or a FITS path, ``LightCurveData`` or lightkurve ``LightCurve``
            With arrays, ``flux`` is required.
        flux, flux_err, quality : array-like, optional
        per_model : bool
            Also return each member's probabilities.

        Returns
        -------
        prob : ndarray of float64, shape (n,)
            Ensemble-mean probability, the same length as the input; NaN where a cadence is not
            scored (masked, or without a full window in "valid" edge mode).
        per_model : ndarray of float64, shape (n_models, n)
            Only with ``per_model=True``.
        """
        _, prep = self.prepare(time, flux, flux_err, quality)
        scores = self._score_prepared(prep)
        mean = prep.scatter(scores.astype(np.float64).mean(axis=0))
        if per_model:
            return mean, prep.scatter(scores)
        return mean

    def find_flares(self, source: Any, **kwargs: Any):
        """Flare catalogue with this model; see :func:`flarelight.runtime.find_flares`."""
        from .catalogue import find_flares

        return find_flares(source, model=self, **kwargs)


class _NoPool:
    """Stands in for a thread pool when one thread is asked for."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def predict(time: Any, flux: Any = None, flux_err: Any = None, quality: Any = None, *,
            per_model: bool = False, model: FlareModel | None = None):
    """:meth:`FlareModel.predict` with the shipped default model (or ``model``)."""
    model = model if model is not None else FlareModel.default()
    return model.predict(time, flux, flux_err, quality, per_model=per_model)
