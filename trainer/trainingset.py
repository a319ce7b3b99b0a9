"""The training-set container: labelled model windows with their stars, splits, times and preprocessing,
saved and loaded as ``.npz`` with a content hash."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flarelight.runtime.atomic import atomic_path
from flarelight.runtime.errors import FlarelightError
from flarelight.runtime.jsonio import json_default
from flarelight.runtime.metadata import Preprocessing

SPLITS = ("train", "val", "test")


class TrainingDataError(FlarelightError, ValueError):
    """A training set that cannot be built or read (bad file, wrong shapes, no positives, too few stars)."""


@dataclass
class TrainingSet:
    """Labelled model windows.

    Attributes
    ----------
    x : ndarray of float32, shape (n, window, channels)
    y : ndarray of float32, shape (n,)
        1 = flare at the window centre, 0 = not.
    star : ndarray of int64, shape (n,)
        Star (TIC) of each window; -1 if unknown.
    split : ndarray of str, shape (n,)
        "train", "val", "test" or "" (not assigned).
    time : ndarray of float64, shape (n,)
        Time (BTJD) of the window centre; NaN if unknown.
    source : ndarray of int64, shape (n,)
        Index into ``meta["lightcurves"]`` of the light curve the window came from; -1 if unknown.
    preprocessing : Preprocessing
        How the windows were made (written into the exported model).
    meta : dict
        JSON-serialisable description: ``description``, ``lightcurves``, build options, counts.
    """

    x: np.ndarray
    y: np.ndarray
    star: np.ndarray
    split: np.ndarray
    time: np.ndarray
    source: np.ndarray
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.x = np.ascontiguousarray(self.x, np.float32)
        if self.x.ndim == 2:
            self.x = self.x[:, :, None]
        n = len(self.x)
        self.y = np.asarray(self.y, np.float32).reshape(-1)
        self.star = np.asarray(self.star, np.int64).reshape(-1)
        self.split = np.asarray(self.split, dtype="<U5").reshape(-1)
        self.time = np.asarray(self.time, np.float64).reshape(-1)
        self.source = np.asarray(self.source, np.int64).reshape(-1)
        for name in ("y", "star", "split", "time", "source"):
            if getattr(self, name).size != n:
                raise TrainingDataError(f"TrainingSet: {name} has {getattr(self, name).size} entries for {n} windows")
        if self.x.ndim != 3 or self.x.shape[1:] != (self.preprocessing.window, self.preprocessing.n_channels):
            raise TrainingDataError(
                f"TrainingSet: windows of shape {self.x.shape[1:]} do not match the preprocessing "
                f"({self.preprocessing.window}, {self.preprocessing.n_channels}); pass the matching Preprocessing")
        if not np.all((self.y == 0) | (self.y == 1)):
            raise TrainingDataError(f"TrainingSet: labels must be 0 or 1, found {np.unique(self.y)[:10]}")
        bad = set(np.unique(self.split)) - set(SPLITS) - {""}
        if bad:
            raise TrainingDataError(f"TrainingSet: unknown split names {sorted(bad)}; use {SPLITS} or ''")

    def __len__(self) -> int:
        return int(self.y.size)

    @property
    def n_positive(self) -> int:
        """Number of positive windows."""
        return int(self.y.sum())

    def subset(self, which: str | np.ndarray) -> "TrainingSet":
        """The windows of one split ("train", "val", "test") or of a boolean/index selection."""
        m = self.split == which if isinstance(which, str) else np.asarray(which)
        return TrainingSet(self.x[m], self.y[m], self.star[m], self.split[m], self.time[m], self.source[m],
                           self.preprocessing, dict(self.meta))

    def with_split(self, split: np.ndarray) -> "TrainingSet":
        """A copy with another split assignment (e.g. from :func:`flarelight.trainer.split.split_by_star`)."""
        return TrainingSet(self.x, self.y, self.star, split, self.time, self.source, self.preprocessing, dict(self.meta))

    def content_hash(self) -> str:
        """SHA-256 over windows, labels, stars, splits and the preprocessing: identifies the training data."""
        h = hashlib.sha256()
        for a in (self.x, self.y, self.star, self.split.astype("<U5"), self.time):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(json.dumps(self.preprocessing.__dict__, sort_keys=True).encode())
        return h.hexdigest()

    def summary(self) -> dict:
        """Counts per split: windows, positives, stars; plus the content hash and description."""
        out: dict[str, Any] = {"n_windows": len(self), "n_positive": self.n_positive,
                               "n_stars": int(np.unique(self.star).size), "sha256": self.content_hash(),
                               "description": self.meta.get("description", "")}
        for s in SPLITS:
            m = self.split == s
            if m.any():
                out[s] = {"n_windows": int(m.sum()), "n_positive": int(self.y[m].sum()),
                          "n_stars": int(np.unique(self.star[m]).size)}
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write as ``.npz`` (atomically) with the content hash; read back with :meth:`load`."""
        path = Path(path)
        meta = {**self.meta, "preprocessing": self.preprocessing.__dict__, "sha256": self.content_hash()}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, x=self.x, y=self.y, star=self.star, split=self.split, time=self.time,
                         source=self.source, meta=np.array(json.dumps(meta, default=json_default)))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainingSet":
        """Read a training set written by :meth:`save`, verifying its content hash.

        Raises
        ------
        TrainingDataError
            Missing file, not a flarelight training set, or content that does not match its stored hash.
        """
        path = Path(path)
        if not path.is_file():
            raise TrainingDataError(f"{path}: no such training-set file")
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("x", "y", "star", "split", "time", "source", "meta") if k not in z.files]
                if missing:
                    raise TrainingDataError(f"{path}: not a flarelight training set (missing arrays {missing}; "
                                            f"found {z.files}); build one with build_dataset(...).save()")
                arrays = {k: z[k] for k in ("x", "y", "star", "split", "time", "source")}
                meta = json.loads(str(z["meta"]))
        except (OSError, ValueError) as exc:
            raise TrainingDataError(f"{path}: cannot be read as .npz ({type(exc).__name__}: {exc})") from exc
        pre = Preprocessing(**meta.pop("preprocessing"))
        stored = meta.pop("sha256", None)
        ts = cls(**arrays, preprocessing=pre, meta=meta)
        if stored is not None and stored != ts.content_hash():
            raise TrainingDataError(f"{path}: content does not match its stored hash (file modified or corrupted); "
                                    "rebuild the training set")
        return ts


def from_arrays(x: np.ndarray, y: np.ndarray, star: np.ndarray | None = None, split: np.ndarray | None = None,
                pre: Preprocessing | None = None, time: np.ndarray | None = None,
                description: str = "arrays") -> TrainingSet:
    """A :class:`TrainingSet` from plain numpy arrays.

    Parameters
    ----------
    x : array, shape (n, window) or (n, window, channels)
    y : array, shape (n,), 0/1
    star : array of int, optional
        Star id per window (-1 if omitted: then the by-star split cannot split).
    split : array of str, optional
    pre : Preprocessing, optional
        Default: ``Preprocessing(window=x.shape[1], offset=x.shape[1] // 2)``, edge_mode "pad" if 2 channels.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim not in (2, 3) or x.shape[0] != y.reshape(-1).size:
        raise TrainingDataError(f"x has shape {x.shape} and y {y.shape}: need x (n, window[, channels]) and y (n,)")
    n = x.shape[0]
    if pre is None:
        ch = x.shape[2] if x.ndim == 3 else 1
        pre = Preprocessing(window=x.shape[1], offset=x.shape[1] // 2, edge_mode="pad" if ch == 2 else "valid")
    return TrainingSet(x, y, np.full(n, -1) if star is None else star, np.full(n, "") if split is None else split,
                       np.full(n, np.nan) if time is None else time, np.full(n, -1), pre,
                       {"description": description})


def load_training_set(path: str | os.PathLike) -> TrainingSet:
    """A training set from ``.npz`` (:meth:`TrainingSet.save`) or ``.fits`` (stella's layout)."""
    path = Path(path)
    if path.suffix.lower() in (".fits", ".fit", ".fz"):
        from .stella_format import load_stella_fits

        return load_stella_fits(path)
    return TrainingSet.load(path)


__all__ = ["TrainingSet", "TrainingDataError", "from_arrays", "load_training_set", "SPLITS"]
