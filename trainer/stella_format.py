"""stella's training formats: the published FITS training set (windows per split) and the ``.npy`` light curves."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from flarelight.runtime.atomic import atomic_path
from flarelight.runtime.io import LightCurveData
from flarelight.runtime.io import from_arrays as lc_from_arrays
from flarelight.runtime.metadata import STELLA_PREPROCESSING, Preprocessing

from .trainingset import SPLITS, TrainingDataError, TrainingSet

#: FITS extensions of stella's published training set
STELLA_EXTENSIONS = ("TRAIN_DATA", "TRAIN_LABELS", "VAL_DATA", "VAL_LABELS", "TEST_DATA", "TEST_LABELS")


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


__all__ = ["load_stella_fits", "write_stella_fits", "read_stella_npy", "STELLA_EXTENSIONS"]
