"""Training sets: stella's published FITS layout, plain arrays, and windows built from light curves + catalogues.

Windows are built with the runtime's own preprocessing (:func:`flarelight.runtime.preprocess.prepare` and the
window kernels), so a training window is exactly the window the runtime scores at inference.

Fixes to stella's ``FlareDataSet``:

- train/validation/test are split **by star** (:func:`split_by_star`), never by window, so no star is in two
  splits;
- windows never straddle a gap: in "valid" edge mode the centres are the runtime's valid centres (a full
  window inside one segment); in "pad" mode cadences across a gap are padding with a 0 flag;
- a light curve without gaps works (the segmentation handles one segment).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from flarelight.runtime import kernels
from flarelight.runtime.atomic import atomic_path
from flarelight.runtime.errors import FlarelightError, InvalidLightCurveError
from flarelight.runtime.io import LightCurveData, from_arrays as lc_from_arrays
from flarelight.runtime.metadata import STELLA_PREPROCESSING, Preprocessing
from flarelight.runtime.preprocess import Prepared, make_windows, prepare

from .catalogs import CatalogError, FlareCatalog, merge_intervals

SPLITS = ("train", "val", "test")
#: FITS extensions of stella's published training set
STELLA_EXTENSIONS = ("TRAIN_DATA", "TRAIN_LABELS", "VAL_DATA", "VAL_LABELS", "TEST_DATA", "TEST_LABELS")


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
        """A copy with another split assignment (e.g. from :func:`split_by_star`)."""
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
                         source=self.source, meta=np.array(json.dumps(meta, default=_json_default)))
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


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ----------------------------------------------------------------------------- arrays and stella's FITS
def from_arrays(x: np.ndarray, y: np.ndarray, star: np.ndarray | None = None, split: np.ndarray | None = None,
                pre: Preprocessing | None = None, time: np.ndarray | None = None,
                description: str = "arrays") -> TrainingSet:
    """A :class:`TrainingSet` from plain numpy arrays.

    Parameters
    ----------
    x : array, shape (n, window) or (n, window, channels)
    y : array, shape (n,), 0/1
    star : array of int, optional
        Star id per window (-1 if omitted: then :func:`split_by_star` cannot split).
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


def load_stella_fits(path: str | os.PathLike, pre: Preprocessing | None = None) -> TrainingSet:
    """Read a training set in the layout of stella's published one.

    The FITS file has image (or one-column table) extensions ``TRAIN_DATA``/``TRAIN_LABELS``,
    ``VAL_DATA``/``VAL_LABELS`` and ``TEST_DATA``/``TEST_LABELS`` (names case-insensitive); optional
    ``<SPLIT>_IDS`` give the TIC of each window and ``<SPLIT>_TPEAKS`` its time. The splits are kept as given.

    Parameters
    ----------
    pre : Preprocessing, optional
        Default: stella's (:data:`STELLA_PREPROCESSING`) with the file's window length.

    Raises
    ------
    TrainingDataError
        Missing file, not FITS, missing extensions (named, with the extensions found), or inconsistent shapes.
    """
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(f"{path}: no such training-set file")
    try:
        with fits.open(path, memmap=False) as hdul:
            names = {h.name.upper(): h for h in hdul}
            missing = [e for e in STELLA_EXTENSIONS if e not in names]
            if missing:
                raise TrainingDataError(
                    f"{path}: not a stella-format training set: missing extensions {missing} "
                    f"(extensions found: {[h.name for h in hdul]}); it needs {list(STELLA_EXTENSIONS)}")
            parts = {}
            for s in SPLITS:
                x = _hdu_array(names[f"{s.upper()}_DATA"], path)
                y = _hdu_array(names[f"{s.upper()}_LABELS"], path).reshape(-1)
                ids = _hdu_array(names[f"{s.upper()}_IDS"], path).reshape(-1) if f"{s.upper()}_IDS" in names else None
                tp = _hdu_array(names[f"{s.upper()}_TPEAKS"], path).reshape(-1) if f"{s.upper()}_TPEAKS" in names else None
                if x.ndim == 3 and x.shape[2] == 1:
                    x = x[:, :, 0]
                if x.ndim != 2 or x.shape[0] != y.size:
                    raise TrainingDataError(f"{path}: {s.upper()}_DATA has shape {x.shape} but {s.upper()}_LABELS has "
                                            f"{y.size} entries; need (n, window) and (n,)")
                parts[s] = (x, y, ids, tp)
    except OSError as exc:
        raise TrainingDataError(f"{path}: cannot be read as FITS ({exc})") from exc
    windows = {p[0].shape[1] for p in parts.values()}
    if len(windows) != 1:
        raise TrainingDataError(f"{path}: splits have different window lengths {sorted(windows)}")
    w = windows.pop()
    pre = pre or STELLA_PREPROCESSING.replace(window=w, offset=w // 2)
    x = np.concatenate([p[0] for p in parts.values()]).astype(np.float32)
    y = np.concatenate([p[1] for p in parts.values()])
    y = (y > 0.5).astype(np.float32) if np.all(np.isin(np.unique(y), [0, 1])) else _bad_labels(path, y)
    star = np.concatenate([p[2] if p[2] is not None else np.full(len(p[1]), -1) for p in parts.values()])
    tp = np.concatenate([p[3] if p[3] is not None else np.full(len(p[1]), np.nan) for p in parts.values()])
    split = np.concatenate([np.full(len(p[1]), s) for s, p in parts.items()])
    return TrainingSet(x, y, star.astype(np.int64), split, tp, np.full(len(y), -1), pre,
                       {"description": f"stella-format training set {path.name}", "file": str(path)})


def _bad_labels(path: Path, y: np.ndarray) -> np.ndarray:
    raise TrainingDataError(f"{path}: labels must be 0/1, found values {np.unique(y)[:10]}")


def _hdu_array(hdu: Any, path: Path) -> np.ndarray:
    from astropy.io import fits

    if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
        cols = hdu.columns.names
        if len(cols) != 1:
            raise TrainingDataError(f"{path}: extension {hdu.name} is a table with columns {cols}; expected an image "
                                    "or a one-column table")
        return np.asarray(hdu.data[cols[0]])
    if hdu.data is None:
        raise TrainingDataError(f"{path}: extension {hdu.name} holds no data")
    return np.asarray(hdu.data)


def write_stella_fits(ts: TrainingSet, path: str | os.PathLike) -> Path:
    """Write a 1-channel training set in stella's FITS layout (with ``<SPLIT>_IDS`` and ``<SPLIT>_TPEAKS``)."""
    from astropy.io import fits

    if ts.preprocessing.n_channels != 1:
        raise TrainingDataError("stella's FITS layout holds 1-channel windows only; save 2-channel sets with .save()")
    hdus = [fits.PrimaryHDU()]
    for s in SPLITS:
        m = ts.split == s
        hdus += [fits.ImageHDU(ts.x[m, :, 0], name=f"{s.upper()}_DATA"), fits.ImageHDU(ts.y[m], name=f"{s.upper()}_LABELS"),
                 fits.ImageHDU(ts.star[m], name=f"{s.upper()}_IDS"), fits.ImageHDU(ts.time[m], name=f"{s.upper()}_TPEAKS")]
    path = Path(path)
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return path


def read_stella_npy(path: str | os.PathLike, tic: int | None = None, sector: int | None = None) -> LightCurveData:
    """Read a light curve in stella's training ``.npy`` format (array (3, n): time BTJD, normalised flux, error).

    The TIC and sector are taken from a file name like ``002760232_sector02.npy`` unless given.
    """
    path = Path(path)
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TrainingDataError(f"{path}: cannot be read as .npy ({exc})") from exc
    if a.ndim != 2 or a.shape[0] != 3:
        raise TrainingDataError(f"{path}: array of shape {a.shape}; stella's format is (3, n): time, flux, flux_err")
    m = re.match(r"0*(\d+)_sector0*(\d+)", path.stem)
    meta = {"tic": tic if tic is not None else (int(m.group(1)) if m else None),
            "sector": sector if sector is not None else (int(m.group(2)) if m else None), "path": str(path),
            "origin": "stella npy"}
    return lc_from_arrays(a[0], a[1], a[2], meta=meta)


def load_training_set(path: str | os.PathLike) -> TrainingSet:
    """A training set from ``.npz`` (:meth:`TrainingSet.save`) or ``.fits`` (stella's layout)."""
    path = Path(path)
    if path.suffix.lower() in (".fits", ".fit", ".fz"):
        return load_stella_fits(path)
    return TrainingSet.load(path)


def read_lightcurves(paths: Sequence[str | os.PathLike], *, flux_column: str = "auto",
                     quality_bitmask: str | int = "default", progress: Any = None) -> list[LightCurveData]:
    """Read light curves: FITS files (:func:`~flarelight.runtime.io.read_lightcurve`) and stella ``.npy`` files
    (:func:`read_stella_npy`).

    ``flux_column="auto"`` reads PDCSAP_FLUX, or FLUX in files that have no PDCSAP_FLUX (lightkurve custom-aperture
    files); any other value is passed on as is.
    """
    from flarelight.runtime.io import read_lightcurve

    out = []
    for p in paths:
        p = Path(p)
        if p.suffix.lower() == ".npy":
            out.append(read_stella_npy(p))
        else:
            col = flux_column
            if col == "auto":
                col = "flux" if _has_column(p, "FLUX") and not _has_column(p, "PDCSAP_FLUX") else "pdcsap_flux"
            out.append(read_lightcurve(p, quality_bitmask=quality_bitmask, flux_column=col))
        if progress is not None:
            progress.update(1)
    return out


def _has_column(path: Path, name: str) -> bool:
    """True if a FITS file's first table extension has column ``name`` (False if it cannot be opened: the reader
    then reports the real problem)."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=True) as hdul:
            return len(hdul) > 1 and hasattr(hdul[1], "columns") and name in [c.upper() for c in hdul[1].columns.names]
    except (OSError, ValueError):
        return False


# ----------------------------------------------------------------------------- building from light curves
def cadence_labels(time: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """True for each time inside any ``[tstart, tstop]`` interval (inclusive)."""
    iv = merge_intervals(intervals)
    t = np.asarray(time, float)
    if not len(iv):
        return np.zeros(t.size, bool)
    i = np.searchsorted(iv[:, 0], t, side="right") - 1
    ok = i >= 0
    out = np.zeros(t.size, bool)
    out[ok] = t[ok] <= iv[i[ok], 1]
    return out


def _labels_for(item: Any, lc: LightCurveData, require: bool) -> tuple[np.ndarray, np.ndarray]:
    """(intervals (n,2), tpeaks (n,)) for one light curve from a catalogue, an array or a table."""
    if isinstance(item, FlareCatalog):
        sub = item.for_lightcurve(lc, require=require)
        return sub.intervals(), sub.tpeak
    if hasattr(item, "colnames") or (hasattr(item, "dtype") and getattr(item.dtype, "names", None)):
        names = item.colnames if hasattr(item, "colnames") else item.dtype.names
        if not {"tstart", "tstop"} <= set(names):
            raise CatalogError(f"{lc.label}: label table has columns {list(names)}; it needs tstart, tstop (BTJD)")
        iv = np.column_stack([np.asarray(item["tstart"], float), np.asarray(item["tstop"], float)]).reshape(-1, 2)
        tp = np.asarray(item["tpeak"], float) if "tpeak" in names else np.full(len(iv), np.nan)
    else:
        iv = np.asarray(item if item is not None else [], float).reshape(-1, 2)
        tp = np.full(len(iv), np.nan)
    if require and len(iv) == 0:
        raise CatalogError(f"{lc.label}: no flare labels given for this light curve")
    return iv, tp


def _peak_positions(prep: Prepared, iv: np.ndarray, tp: np.ndarray, half_cad: float) -> np.ndarray:
    """Kept-cadence position of each flare's peak (catalogue tpeak, else the brightest kept cadence in the
    interval); -1 for flares with no kept cadence in their interval."""
    out = np.full(len(iv), -1, np.int64)
    t = prep.time
    for k, ((s, e), p) in enumerate(zip(iv, tp)):
        lo = np.searchsorted(t, s - half_cad, side="left")
        hi = np.searchsorted(t, e + half_cad, side="right")
        if hi <= lo:
            continue
        if np.isfinite(p):
            j = lo + int(np.argmin(np.abs(t[lo:hi] - p)))
        else:
            j = lo + int(np.argmax(prep.flux[lo:hi]))
        out[k] = j
    return out


def gather(prep: Prepared, pre: Preprocessing, centres: np.ndarray) -> np.ndarray:
    """Windows of ``centres`` (positions into the kept cadences) exactly as the runtime builds them.

    Returns
    -------
    ndarray of float32, shape (m, window, channels)
    """
    return make_windows(prep, pre, centres)


def _edge_distance(seg: np.ndarray) -> np.ndarray:
    """Cadences from each kept cadence to the nearest segment edge (0 at the first/last cadence of a segment)."""
    n = seg.size
    idx = np.arange(n)
    starts = np.r_[0, np.flatnonzero(np.diff(seg)) + 1]
    ends = np.r_[starts[1:] - 1, n - 1]
    s = starts[seg - seg[0]] if seg.size else starts
    e = ends[seg - seg[0]] if seg.size else ends
    return np.minimum(idx - s, e - idx)


def build_dataset(lightcurves: Sequence[LightCurveData], labels: FlareCatalog | Sequence[Any],
                  pre: Preprocessing | None = None, *, positives: str = "peak",
                  negatives_per_positive: float | None = 3.0, negative_margin: int = 3,
                  near_edge_fraction: float = 0.25, fractions: tuple[float, float, float] | None = (0.7, 0.15, 0.15),
                  seed: int = 0, star_ids: Sequence[int] | None = None, require_match: bool = False,
                  description: str = "") -> TrainingSet:
    """Windows and labels from light curves plus flare labels, as stella's ``FlareDataSet`` does, minus its bugs.

    Every light curve is prepared with the runtime's :func:`~flarelight.runtime.preprocess.prepare`; a kept cadence
    is positive if it lies inside a labelled flare interval.

    Parameters
    ----------
    lightcurves : sequence of LightCurveData
    labels : FlareCatalog or sequence
        One catalogue for all light curves (matched by ``meta["tic"]``, sector and time span), or one entry per light
        curve: a FlareCatalog, an ``(n, 2)`` array of BTJD intervals, or a table with tstart/tstop[/tpeak]
        (e.g. from :func:`flarelight.trainer.inject.inject_flares`).
    pre : Preprocessing
        Default ``Preprocessing()``. With ``edge_mode="pad"`` windows are 2-channel and every kept cadence is a
        candidate centre, including those near gaps and edges.
    positives : {"peak", "interval"}
        "peak": one window per flare, centred on its peak (catalogue tpeak, else the brightest cadence in the
        interval), as stella does. "interval": every scorable centre inside the flare interval.
    negatives_per_positive : float or None
        Class balance: negatives drawn at random (over all light curves, in proportion to their candidates) up to
        this many per positive; None keeps every candidate negative.
    negative_margin : int
        Negative centres are at least this many kept cadences away from any flare cadence.
    near_edge_fraction : float
        In "pad" mode, the share of sampled negatives drawn from centres within one window offset of a segment edge
        (so the model learns to score cadences near gaps); ignored in "valid" mode.
    fractions : (train, val, test) or None
        Split by star with :func:`split_by_star` (None: leave unassigned).
    seed : int
        Seeds negative sampling and the split.
    star_ids : sequence of int, optional
        Star id per light curve (default ``lc.meta["tic"]``).
    require_match : bool
        Raise :class:`~flarelight.trainer.catalogs.CatalogMatchError` for a light curve with no catalogue flare
        (default: it contributes negatives only).

    Raises
    ------
    TrainingDataError
        No light curve, no usable light curve, no positive window, unknown option values.
    CatalogError
        Labels that do not fit (see ``require_match``).
    """
    pre = pre or Preprocessing()
    if positives not in ("peak", "interval"):
        raise TrainingDataError(f"positives={positives!r}: choose 'peak' or 'interval'")
    lightcurves = list(lightcurves)
    if not lightcurves:
        raise TrainingDataError("no light curves given")
    if not isinstance(labels, FlareCatalog):
        labels = list(labels)
        if len(labels) != len(lightcurves):
            raise TrainingDataError(f"{len(labels)} label entries for {len(lightcurves)} light curves; give one each "
                                    "or one FlareCatalog")
    if star_ids is not None and len(star_ids) != len(lightcurves):
        raise TrainingDataError(f"{len(star_ids)} star ids for {len(lightcurves)} light curves")
    rng = np.random.default_rng(seed)
    per: list[dict] = []
    skipped: list[str] = []
    n_flares = n_unobservable = 0
    for k, lc in enumerate(lightcurves):
        star = star_ids[k] if star_ids is not None else lc.meta.get("tic")
        if star is None:
            raise TrainingDataError(f"{lc.label}: no TIC in lc.meta; pass star_ids=[...] so the split can be by star")
        item = labels if isinstance(labels, FlareCatalog) else labels[k]
        iv, tp = _labels_for(item, lc, require_match)
        try:
            prep = prepare(lc, pre)
        except InvalidLightCurveError as exc:
            warnings.warn(f"{lc.label}: skipped ({exc})", stacklevel=2)
            skipped.append(lc.label)
            continue
        flare_cad = cadence_labels(prep.time, iv)
        half_cad = 0.5 * float(np.median(np.diff(prep.time)))
        peaks = _peak_positions(prep, iv, tp, half_cad)
        n_flares += len(iv)
        n_unobservable += int(np.sum(peaks < 0))
        is_centre = np.zeros(prep.flux.size, bool)
        is_centre[prep.centres] = True
        if positives == "peak":
            pos = np.unique(peaks[(peaks >= 0)])
            pos = pos[is_centre[pos]]
        else:
            pos = prep.centres[flare_cad[prep.centres]]
        near = flare_cad.copy()
        if negative_margin > 0 and flare_cad.any():
            near = np.convolve(flare_cad.astype(np.int64), np.ones(2 * negative_margin + 1, np.int64), "same") > 0
        neg = prep.centres[~near[prep.centres]]
        edge = _edge_distance(prep.seg)[neg] < max(pre.offset, pre.window - pre.offset - 1)
        per.append(dict(lc=lc, prep=prep, star=int(star), pos=pos, neg=neg, edge=edge, index=k))
    if not per:
        raise TrainingDataError(f"no usable light curve (all {len(lightcurves)} skipped: {skipped})")
    n_pos = sum(p["pos"].size for p in per)
    if n_pos == 0:
        raise TrainingDataError(
            f"no positive window: {n_flares} labelled flares in {len(per)} light curves, {n_unobservable} with no kept "
            "cadence, the rest not at a scorable centre; check the labels match the light curves (TIC, sector, BTJD), "
            "or use edge_mode='pad' to score cadences near gaps")
    # ---- class balance: sample negatives over all light curves
    neg_all = np.concatenate([p["neg"] for p in per])
    lc_all = np.concatenate([np.full(p["neg"].size, i) for i, p in enumerate(per)])
    edge_all = np.concatenate([p["edge"] for p in per])
    if negatives_per_positive is None or negatives_per_positive * n_pos >= neg_all.size:
        take = np.arange(neg_all.size)
    else:
        n_take = int(round(negatives_per_positive * n_pos))
        if pre.edge_mode == "pad" and near_edge_fraction > 0:
            e_idx, i_idx = np.flatnonzero(edge_all), np.flatnonzero(~edge_all)
            n_e = min(e_idx.size, int(round(near_edge_fraction * n_take)))
            n_i = min(i_idx.size, n_take - n_e)
            take = np.concatenate([rng.choice(e_idx, n_e, replace=False), rng.choice(i_idx, n_i, replace=False)])
        else:
            take = rng.choice(neg_all.size, n_take, replace=False)
        take = np.sort(take)
    xs, ys, stars, times, sources = [], [], [], [], []
    for i, p in enumerate(per):
        negc = neg_all[take][lc_all[take] == i]
        cen = np.concatenate([p["pos"], negc])
        if cen.size == 0:
            continue
        xs.append(gather(p["prep"], pre, cen))
        ys.append(np.r_[np.ones(p["pos"].size), np.zeros(negc.size)])
        stars.append(np.full(cen.size, p["star"]))
        times.append(p["prep"].time[cen])
        sources.append(np.full(cen.size, p["index"]))
    star = np.concatenate(stars)
    y = np.concatenate(ys)
    meta = {"description": description or f"{len(per)} light curves, {n_flares} labelled flares",
            "lightcurves": [lc.label for lc in lightcurves], "skipped": skipped,
            "options": {"positives": positives, "negatives_per_positive": negatives_per_positive,
                        "negative_margin": negative_margin, "near_edge_fraction": near_edge_fraction,
                        "fractions": list(fractions) if fractions else None, "seed": seed},
            "n_flares": n_flares, "n_flares_unobservable": n_unobservable,
            "label_sources": sorted({labels.source} if isinstance(labels, FlareCatalog) else
                                    {getattr(it, "source", type(it).__name__) for it in labels})}
    split = split_by_star(star, fractions, seed=seed, y=y) if fractions else np.full(star.size, "")
    return TrainingSet(np.concatenate(xs), y, star, split, np.concatenate(times), np.concatenate(sources), pre, meta)


# ----------------------------------------------------------------------------- split
def split_by_star(star_ids: np.ndarray, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                  y: np.ndarray | None = None) -> np.ndarray:
    """Assign every window to "train", "val" or "test" so that all windows of a star share one split.

    Stars are shuffled (seeded) and dealt to the splits in proportion to ``fractions`` (by number of stars); with
    ``y`` given, stars with and without positive windows are dealt separately, so every split gets flaring stars
    when there are enough. Each split with a non-zero fraction gets at least one star.

    Parameters
    ----------
    star_ids : array of int, shape (n,)
        Star of each window; -1 (unknown) is not allowed.
    fractions : (train, val, test)
    seed : int
    y : array, shape (n,), optional

    Returns
    -------
    ndarray of str, shape (n,)

    Raises
    ------
    TrainingDataError
        Unknown stars, bad fractions, or fewer stars than non-empty splits.
    """
    star_ids = np.asarray(star_ids, np.int64).reshape(-1)
    f = np.asarray(fractions, float)
    if f.size != 3 or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise TrainingDataError(f"fractions={tuple(fractions)}: need three non-negative numbers summing to 1")
    if np.any(star_ids < 0):
        raise TrainingDataError("some windows have no star id (-1): a by-star split needs every window's star")
    stars = np.unique(star_ids)
    need = int(np.sum(f > 0))
    if stars.size < need:
        raise TrainingDataError(f"{stars.size} distinct star(s) for {need} non-empty splits: a by-star split needs at "
                                "least one star per split; add stars or set a fraction to 0")
    rng = np.random.default_rng(seed)
    groups = [stars]
    if y is not None:
        flaring = np.unique(star_ids[np.asarray(y).reshape(-1) > 0.5])
        quiet = np.setdiff1d(stars, flaring)
        if flaring.size >= need:
            groups = [flaring, quiet]
    assign: dict[int, str] = {}
    counts = np.zeros(3, int)
    for gi, g in enumerate(groups):
        g = rng.permutation(g)
        n = _deal(g.size, f, ensure=(gi == 0))
        k = 0
        for s, cnt in zip(SPLITS, n):
            for star in g[k:k + cnt]:
                assign[int(star)] = s
            k += cnt
        counts += n
    return np.array([assign[int(s)] for s in star_ids], dtype="<U5")


def _deal(n: int, f: np.ndarray, ensure: bool) -> np.ndarray:
    """Split ``n`` items by fractions (largest remainder), each non-zero fraction >= 1 item if ``ensure``."""
    raw = f * n
    out = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - out), kind="stable")[: n - out.sum()]:
        out[i] += 1
    if ensure:
        for i in np.flatnonzero((f > 0) & (out == 0)):
            j = int(np.argmax(out))
            if out[j] > 1:
                out[j] -= 1
                out[i] += 1
    return out


__all__ = ["TrainingSet", "TrainingDataError", "from_arrays", "load_stella_fits", "write_stella_fits", "read_stella_npy",
           "build_dataset", "split_by_star", "load_training_set", "read_lightcurves", "cadence_labels", "gather", "SPLITS", "STELLA_EXTENSIONS"]
