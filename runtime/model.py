"""``FlareModel``: one or more flarelight ONNX files (an ensemble) run with onnxruntime.

A light curve is prepared once and scored once (:meth:`FlareModel.score`); every other call
(:meth:`FlareModel.predict`, :func:`flarelight.runtime.find.find_flares`) goes through it.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime as ort

from .errors import ModelFileError
from .io import LightCurveData, as_lightcurve
from .metadata import METADATA_KEY, ModelMetadata, Preprocessing
from .preprocess import Prepared, prepare, window_batches
from .scored import Scored
from .quality import resolve_bitmask
from .sessions import open_session
from .sliding import SlidingMember, load_sliding

#: execution engines: "auto" (sliding wherever every member has a sliding form), "sliding", "windows"
ENGINES = ("auto", "sliding", "windows")


@dataclass(frozen=True)
class Member:
    """One ensemble member: its per-window session, metadata and (if it has one) sliding form."""

    path: Path
    session: ort.InferenceSession
    metadata: ModelMetadata
    input_name: str
    sliding: SlidingMember | None
    no_sliding_reason: str

    @property
    def member_id(self) -> str:
        """``<model name>/s<seed>``, or the file name for files without an id."""
        return self.metadata.model_id or self.path.stem


def _load_member(path: Path, threads: int | None) -> Member:
    sess = open_session(path, threads)
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
    sliding, reason = load_sliding(path, meta, 1)  # one thread: FlareModel runs chunks of all members in parallel
    return Member(path=path, session=sess, metadata=meta, input_name=inputs[0].name, sliding=sliding,
                  no_sliding_reason=reason)


def _model_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(f for f in sorted(p.glob("*.onnx")) if not f.name.endswith(".sliding.onnx"))
        else:
            files.append(p)
    if not files:
        raise ModelFileError(f"no .onnx files in {[str(p) for p in paths]}")
    return files


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
        a CNN this small); a single model uses ``threads`` intra-op threads. The sliding engine runs the
        chunks of every member as independent tasks, ``threads`` at a time, on single-threaded sessions.
    batch_size : int
        Windows per inference call of the per-window engine (memory: ``batch_size * window * 4`` bytes per
        channel).
    engine : {"auto", "sliding", "windows"}
        "sliding" runs each member once over every segment (exact, and much faster; raises
        :class:`ModelFileError` if a member has no sliding form), "windows" runs every window on its own (the
        reference path), "auto" (default) slides when every member can. :attr:`engine` says which is in use.
    """

    def __init__(self, paths: str | os.PathLike | Sequence[str | os.PathLike], *, threads: int | None = None,
                 batch_size: int = 256, engine: str = "auto") -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        files = _model_files(paths)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be >= 1")
        if engine not in ENGINES:
            raise ValueError(f"engine={engine!r}: choose one of {ENGINES}")
        self.threads = max(1, int(threads) if threads else (os.cpu_count() or 1))
        per_session = 1 if len(files) > 1 else self.threads
        self.members: tuple[Member, ...] = tuple(_load_member(f, per_session) for f in files)
        pres = {m.metadata.preprocessing for m in self.members}
        if len(pres) != 1:
            raise ModelFileError(f"ensemble members disagree on preprocessing: {sorted(map(str, pres))}; "
                                 "an ensemble must share window, cadence, normalisation, quality and gap rules")
        self.preprocessing: Preprocessing = self.members[0].metadata.preprocessing
        self.batch_size = int(batch_size)
        cannot = [m.no_sliding_reason for m in self.members if m.sliding is None]
        if engine == "sliding" and cannot:
            raise ModelFileError("engine='sliding' but " + "; ".join(cannot) +
                                 " (export it again with this flarelight's trainer, or use engine='windows')")
        #: the engine in use: "sliding" or "windows"
        self.engine: str = "windows" if engine == "windows" or cannot else "sliding"

    @classmethod
    def default(cls, **kwargs: Any) -> "FlareModel":
        """The ensemble shipped with flarelight as the default (``flarelight models`` lists them all)."""
        from flarelight.models import DEFAULT_MODEL

        return cls.named(DEFAULT_MODEL, **kwargs)

    @classmethod
    def named(cls, name: str, **kwargs: Any) -> "FlareModel":
        """A shipped ensemble by name, e.g. ``FlareModel.named("flarelight-v1")``."""
        from flarelight.models import model_paths

        return cls(model_paths(name), **kwargs)

    # ------------------------------------------------------------------ description
    @property
    def paths(self) -> tuple[Path, ...]:
        """The members' ONNX files."""
        return tuple(m.path for m in self.members)

    @property
    def metadata(self) -> tuple[ModelMetadata, ...]:
        """The members' metadata."""
        return tuple(m.metadata for m in self.members)

    @property
    def n_models(self) -> int:
        """Number of ensemble members."""
        return len(self.members)

    @property
    def threshold(self) -> float:
        """The recommended catalogue threshold: the mean of the members' metadata thresholds."""
        return float(np.mean([m.metadata.threshold for m in self.members]))

    @property
    def model_id(self) -> str:
        """The ensemble's name and size, e.g. ``flarelight-v1 (5 members)``; one member: its id."""
        if self.n_models == 1:
            return self.members[0].member_id
        names = sorted({m.member_id.split("/", 1)[0] for m in self.members})
        name = names[0] if len(names) == 1 else "+".join(names[:3]) + ("+..." if len(names) > 3 else "")
        return f"{name} ({self.n_models} members)"

    def __repr__(self) -> str:
        return (f"FlareModel({self.model_id!r}, window={self.preprocessing.window}, engine={self.engine!r})")

    # ------------------------------------------------------------------ inference
    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        """Raw model output for a batch of already-normalised windows (the per-window graphs).

        Parameters
        ----------
        windows : ndarray, shape (m, window, channels)
            Converted to C-contiguous float32.

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
        out = np.empty((self.n_models, x.shape[0]), np.float32)
        for k in range(self.n_models):
            out[k] = self._run_windows(k, x)
        return out

    def _run_windows(self, k: int, x: np.ndarray) -> np.ndarray:
        m = self.members[k]
        return m.session.run(None, {m.input_name: x})[0].reshape(-1)

    def _score_prepared(self, prep: Prepared) -> np.ndarray:
        """Each member's probability at ``prep.centres``: float32, shape (n_models, centres)."""
        scores = np.empty((self.n_models, prep.centres.size), np.float32)
        # sliding: every chunk of every member is one task for `threads` workers (measured faster than intra-op
        # threads or a fused graph: bench/bench_sliding.py); windows: members in parallel
        workers = self.threads if self.engine == "sliding" else min(self.threads, self.n_models)
        with ThreadPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
            def each_member(fn) -> None:
                if pool is None:
                    for k in range(self.n_models):
                        fn(k)
                else:
                    for f in [pool.submit(fn, k) for k in range(self.n_models)]:
                        f.result()

            if self.engine == "sliding":
                tasks = [t for k, m in enumerate(self.members) for t in m.sliding.tasks(prep, scores[k])]
                if pool is None:
                    for task in tasks:
                        task()
                else:
                    for f in [pool.submit(task) for task in tasks]:
                        f.result()
            else:
                for sl, batch in window_batches(prep, self.batch_size):
                    each_member(lambda k: scores[k].__setitem__(sl, self._run_windows(k, batch)))
        return scores

    def score(self, source: Any, flux: Any = None, flux_err: Any = None, quality: Any = None, *,
              quality_bitmask: str | int = "default", flux_column: str = "pdcsap_flux",
              per_model: bool = False) -> Scored:
        """Prepare a light curve once and score it once.

        Parameters
        ----------
        source : array-like time, a FITS path, ``LightCurveData`` or lightkurve ``LightCurve``
            With a time array, ``flux`` is required.
        flux, flux_err, quality : array-like, optional
        quality_bitmask, flux_column
            Used when reading a FITS path or a lightkurve object (see :func:`~flarelight.runtime.io.read_lightcurve`);
            "default" is lightkurve's default mask restricted to the model's own (``preprocessing.quality_bitmask``);
            a :class:`LightCurveData` read with lightkurve's default is re-masked the same way (the flagged cadences
            the model keeps become usable; one read with another bitmask is used as it is).
        per_model : bool
            Also keep each member's probabilities (``Scored.members``).

        Returns
        -------
        Scored
            The light curve, its :class:`~flarelight.runtime.preprocess.Prepared` form, the ensemble-mean
            probability at input length (NaN = not scored) and, on request, the members'.
        """
        if isinstance(quality_bitmask, str) and quality_bitmask == "default":
            # the model's own rule within lightkurve's default: flarelight-v2 keeps ImpulsiveOutlier (512) cadences
            quality_bitmask = self.default_bitmask
            if isinstance(source, LightCurveData):
                source = self.adopt_default_mask(source)
        lc = as_lightcurve(source, flux, flux_err, quality, quality_bitmask=quality_bitmask, flux_column=flux_column)
        prep = prepare(lc, self.preprocessing)
        scores = self._score_prepared(prep)
        mean = prep.scatter(scores.astype(np.float64).mean(axis=0))
        members = prep.scatter(scores) if per_model else None
        return Scored(lc=lc, prepared=prep, prob=mean, members=members, model_id=self.model_id,
                      threshold=self.threshold)

    @property
    def default_bitmask(self) -> int:
        """The QUALITY bitmask "default" means for this model: lightkurve's default within the model's own rule
        (flarelight-v2 keeps ImpulsiveOutlier, 512)."""
        return resolve_bitmask("default") & self.preprocessing.quality_bitmask

    def adopt_default_mask(self, lc: LightCurveData) -> LightCurveData:
        """``lc`` as this model's "default" quality rule sees it: one read with lightkurve's default mask (say
        ``read_lightcurve(path)``) is re-masked with :attr:`default_bitmask`, so the flagged cadences the model keeps
        (often flare peaks) are not silently lost; one read with any other bitmask, or whose ``bad`` mask was
        changed after reading, is returned as it is."""
        if lc.quality is not None and lc.meta.get("quality_bitmask") == resolve_bitmask("default") \
                != self.default_bitmask and np.array_equal(lc.bad, lc.reader_mask()):
            return lc.with_quality_bitmask(self.default_bitmask)
        return lc

    def predict(self, time: Any, flux: Any = None, flux_err: Any = None, quality: Any = None, *,
                per_model: bool = False, quality_bitmask: str | int = "default",
                flux_column: str = "pdcsap_flux") -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Per-cadence flare probability (see :meth:`score`, which also returns the prepared light curve).

        Returns
        -------
        prob : ndarray of float64, shape (n,)
            Ensemble-mean probability, the same length as the input; NaN where a cadence is not
            scored (masked, or without a full window in "valid" edge mode).
        per_model : ndarray of float64, shape (n_models, n)
            Only with ``per_model=True``.
        """
        scored = self.score(time, flux, flux_err, quality, quality_bitmask=quality_bitmask,
                            flux_column=flux_column, per_model=per_model)
        return (scored.prob, scored.members) if per_model else scored.prob


def predict(time: Any, flux: Any = None, flux_err: Any = None, quality: Any = None, *,
            per_model: bool = False, model: FlareModel | None = None):
    """:meth:`FlareModel.predict` with the shipped default model (or ``model``)."""
    model = model if model is not None else FlareModel.default()
    return model.predict(time, flux, flux_err, quality, per_model=per_model)
