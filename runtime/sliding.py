"""Sliding execution: each member's network applied once to a whole segment, exactly.

A member ``X.onnx`` scores one window at a time; its sliding form ``X.sliding.onnx`` (a second file beside it,
written by the trainer from the same weights: ``flarelight.trainer.sliding``) takes a whole segment
``(1, channels, L)`` and returns the probability of every window start ``(1, 1, L - window + 1)``, so a
sector costs one onnxruntime call per segment instead of one network evaluation per cadence. ``same``
padding is exact: the window-edge positions are part of the graph (see the trainer module).

Decisions
---------
* **A second file**, ``X.sliding.onnx`` next to ``X.onnx``; folder globs skip ``*.sliding.onnx``
  (``FlareModel``, ``flarelight.models.model_paths``). It records the SHA-256 of the member file it was built
  from, the window, offset and channels, the level it subtracts from its input (centring), its cost in
  FLOPs per window start and its build-time check.
* **The runtime never builds graphs** (it has no ``onnx`` package): the trainer writes them when it exports a
  member or converts stella's models, after checking them against the per-window ONNX, Keras and float64.
* **No sliding form** when the member normalises each window on its own (``normalisation ==
  "median+window_noise"``, e.g. the shipped flarelight-v1: a cadence has a different input value in every
  window) or its sliding file is missing, unreadable, for another member file (stale) or inconsistent:
  :func:`load_sliding` returns ``(None, "<file>: <reason>")``; ``FlareModel(engine="auto")`` then runs every
  member per window and ``engine="sliding"`` raises :class:`~flarelight.runtime.errors.ModelFileError` with
  that reason.
* **Segments**: "valid" edge mode runs each segment as it is (segments shorter than a window have no
  scored cadence); "pad" edge mode pads each segment once, ``offset`` cadences before and
  ``window - 1 - offset`` after, with flux ``pre.pad_value`` (1.0; 0.0 for "baseline+noise") and flag 0 (exactly what each padded window holds).
* **Chunks**: a long segment runs in chunks of ``chunk`` window starts (default :data:`CHUNK`), each reading
  its ``chunk + window - 1`` cadences (consecutive chunks overlap by ``window - 1``), so memory stays bounded
  whatever the segment length; results go straight into the caller's output row. Sliding sessions allocate
  tensor by tensor (no onnxruntime memory pattern): half the memory per call at the same speed; one sector
  through stella's 10 members then peaks at ~300 MB, of which ~280 MB is the runtime itself (numba ~125 MB).
* **Threads**: every chunk of every member is an independent task (:meth:`SlidingMember.tasks`); FlareModel
  runs them ``threads`` at a time on single-threaded sessions. Measured on 2 cores (``bench/bench_sliding.py
  --study threads``): for stella's 10 members this beats running the members one by one with intra-op threads
  and one fused graph of all members (intra-op or onnxruntime's parallel executor); for a single member,
  chunks in parallel ran 2.6x faster than intra-op threads.
"""
from __future__ import annotations

import hashlib
import json
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

from .errors import ModelFileError
from .metadata import ModelMetadata
from .preprocess import Prepared
from .sessions import open_session

#: metadata key of the sliding graph's own record
SLIDING_KEY = "flarelight_sliding"
SLIDING_FORMAT = 1
#: window starts per onnxruntime call: stella's network holds ~10 MB per call in flight; 1024-4096 cost the same
#: CPU time, 512 10% more (bench/bench_sliding.py)
CHUNK = 1024


def sliding_path(member_path: str | Path) -> Path:
    """``X.sliding.onnx`` beside the member ``X.onnx``."""
    member_path = Path(member_path)
    return member_path.with_name(member_path.stem + ".sliding.onnx")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file: what a sliding graph records of the member it was built from."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class SlidingMember:
    """A member's sliding-form graph, run one segment (chunk) per call.

    Parameters
    ----------
    path : Path
        The ``X.sliding.onnx`` file.
    session : onnxruntime.InferenceSession
    window, offset, channels : int
        From the member's preprocessing (checked against the file).
    info : dict
        The file's ``flarelight_sliding`` record.
    chunk : int
        Window starts per call.
    """

    def __init__(self, path: Path, session: ort.InferenceSession, window: int, offset: int, channels: int,
                 info: dict, chunk: int = CHUNK) -> None:
        if chunk < 1:
            raise ValueError(f"chunk={chunk}: must be >= 1")
        self.path = path
        self.session = session
        self.window = int(window)
        self.offset = int(offset)
        self.channels = int(channels)
        self.info = info
        self.chunk = int(chunk)
        self.input_name = session.get_inputs()[0].name
        #: FLOPs per window start of the sliding graph (for benches)
        self.flops_per_start = int(info.get("flops_per_start", 0))

    def __repr__(self) -> str:
        return f"SlidingMember({self.path.name!r}, window={self.window}, chunk={self.chunk})"

    def segments(self, prep: Prepared) -> list[tuple[np.ndarray, int, int]]:
        """The graph inputs of ``prep``: ``(segment (channels, L), first window start's centre, starts)``.

        Centres are positions into the kept cadences; a segment with no scored cadence is left out.
        """
        w, off = self.window, self.offset
        seg = prep.seg
        bounds = np.flatnonzero(np.diff(seg)) + 1
        starts = np.r_[0, bounds]
        ends = np.r_[bounds, seg.size]
        out = []
        for a, b in zip(starts.tolist(), ends.tolist()):
            if self.channels == 1:
                if b - a < w:
                    continue
                out.append((prep.flux[a:b][None], a + off, b - a - w + 1))
            else:
                x = np.empty((2, b - a + w - 1), np.float32)
                x[0] = prep.pre.pad_value
                x[1] = 0.0
                x[0, off:off + b - a] = prep.flux[a:b]
                x[1, off:off + b - a] = 1.0
                out.append((x, a, b - a))
        return out

    def tasks(self, prep: Prepared, out: np.ndarray) -> list[Callable[[], None]]:
        """One callable per chunk; together they write this member's probability at every ``prep.centres``
        into ``out`` (float32, shape (centres,)). Independent of each other: run them in any order or thread."""
        if prep.pre.window != self.window or prep.pre.offset != self.offset or prep.pre.n_channels != self.channels:
            raise ModelFileError(f"{self.path}: built for window {self.window} (offset {self.offset}) x {self.channels} "
                                 f"channels, the light curve was prepared for {prep.pre.window} (offset "
                                 f"{prep.pre.offset}) x {prep.pre.n_channels}")
        if out.shape != prep.centres.shape or out.dtype != np.float32:
            raise ValueError(f"out: need float32 of shape {prep.centres.shape}, got {out.dtype} {out.shape}")
        jobs: list[Callable[[], None]] = []
        filled = 0
        for x, first_centre, n in self.segments(prep):
            k0 = int(np.searchsorted(prep.centres, first_centre))
            if k0 + n > prep.centres.size or prep.centres[k0] != first_centre or \
                    prep.centres[k0 + n - 1] != first_centre + n - 1:
                raise AssertionError(f"{self.path.name}: the prepared centres are not the segment's window "
                                     "starts (preprocessing and sliding execution disagree)")
            for a in range(0, n, self.chunk):
                b = min(a + self.chunk, n)
                jobs.append(partial(self._run, x[:, a:b + self.window - 1], out[k0 + a:k0 + b]))
            filled += n
        if filled != prep.centres.size:
            raise AssertionError(f"{self.path.name}: {filled} window starts for {prep.centres.size} centres")
        return jobs

    def score(self, prep: Prepared, out: np.ndarray) -> None:
        """Write this member's probability at every ``prep.centres`` into ``out`` (float32, (centres,)), chunk
        after chunk in this thread."""
        for job in self.tasks(prep, out):
            job()

    def _run(self, x: np.ndarray, out: np.ndarray) -> None:
        seg = np.ascontiguousarray(x[None], dtype=np.float32)
        out[:] = self.session.run(None, {self.input_name: seg})[0].reshape(-1)


def load_sliding(member_path: Path, meta: ModelMetadata, threads: int | None,
                 chunk: int = CHUNK) -> tuple[SlidingMember | None, str]:
    """The sliding form of a member, or None and the reason it has none (``"<file>: <reason>"``).

    Checks that the sliding file was built from this very member file (SHA-256), for its window, offset and
    channels, with one input (1, channels, L) and one output.
    """
    member_path = Path(member_path)
    name = member_path.name
    pre = meta.preprocessing
    if not pre.per_cadence:
        return None, (f"{name}: normalisation {pre.normalisation!r} rescales each window on its own, so windows "
                      "share no work; it runs per window")
    path = sliding_path(member_path)
    if not path.is_file():
        return None, f"{name}: no sliding graph ({path.name} missing; export the member again with the trainer)"
    try:
        sess = open_session(path, threads, mem_pattern=False)  # half the memory per call, same speed
    except ModelFileError as exc:
        return None, f"{name}: sliding graph unusable ({exc})"
    props = sess.get_modelmeta().custom_metadata_map
    try:
        info = json.loads(props[SLIDING_KEY])
    except (KeyError, json.JSONDecodeError) as exc:
        return None, f"{name}: {path.name} has no valid {SLIDING_KEY!r} record ({type(exc).__name__}); rebuild it"
    if info.get("format_version") != SLIDING_FORMAT:
        return None, (f"{name}: {path.name} is sliding format {info.get('format_version')!r}, this flarelight "
                      f"reads {SLIDING_FORMAT}; rebuild it")
    if info.get("member_sha256") != file_sha256(member_path):
        return None, (f"{name}: {path.name} was built from another version of {name} (stale); export the member "
                      "again to rebuild it")
    expect = {"window": pre.window, "offset": pre.offset, "channels": pre.n_channels}
    found = {k: info.get(k) for k in expect}
    if found != expect:
        return None, f"{name}: {path.name} was built for {found}, the member's metadata says {expect}; rebuild it"
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 3 or inputs[0].shape[1] != pre.n_channels:
        return None, (f"{name}: {path.name} has inputs {[(i.name, i.shape) for i in inputs]} and "
                      f"{len(outputs)} outputs, expected one input (1, {pre.n_channels}, L) and one output")
    return SlidingMember(path, sess, pre.window, pre.offset, pre.n_channels, info, chunk=chunk), ""
