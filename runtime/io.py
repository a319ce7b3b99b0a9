"""Reading light curves: plain arrays, lightkurve ``LightCurve`` objects (duck-typed) and SPOC FITS files.

Every reader returns a :class:`LightCurveData` holding *all* input cadences (so probabilities line up
row for row with the input) and a ``bad`` mask of the cadences that cannot be used.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import (AllNaNError, DuplicateTimeError, InvalidLightCurveError, LightCurveReadError,
                     MissingColumnError, UnsortedTimeError)
from .quality import quality_mask, resolve_bitmask


@dataclass
class LightCurveData:
    """One light curve, every input cadence kept.

    Attributes
    ----------
    time : ndarray of float64
        Time stamps (BTJD for TESS); NaN where the input had none.
    flux, flux_err : ndarray of float64
        Flux and its uncertainty (``flux_err`` may be None).
    quality : ndarray of int64 or None
        The QUALITY flags as read.
    bad : ndarray of bool
        True where a cadence is unusable: non-finite time or flux, or flagged by the reader's bitmask.
    meta : dict
        ``tic``, ``sector``, ``camera``, ``ccd``, ``cadence_s``, ``path``, ``flux_column``, ``quality_bitmask``
        where known.
    """

    time: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray | None = None
    quality: np.ndarray | None = None
    bad: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.time.size)

    @property
    def good(self) -> np.ndarray:
        """True where a cadence can be used."""
        return ~self.bad

    @property
    def label(self) -> str:
        """A short name for messages: the file name, or TIC/sector, or "<arrays>"."""
        if self.meta.get("path"):
            return os.path.basename(str(self.meta["path"]))
        if self.meta.get("tic") is not None:
            return f"TIC {self.meta['tic']} sector {self.meta.get('sector')}"
        return "<arrays>"


def _float_array(name: str, a: Any, where: str) -> np.ndarray:
    """Native-endian float64 copy of a 1-D numeric array (big-endian and integer input converted)."""
    if hasattr(a, "unmasked") and hasattr(a, "mask"):  # astropy Masked quantities (lightkurve)
        mask = np.asarray(a.mask, bool)
        a = getattr(a.unmasked, "value", a.unmasked)
        arr = np.array(a, dtype=np.float64)
        arr[mask] = np.nan
        a = arr
    elif isinstance(a, np.ma.MaskedArray):
        a = a.astype(np.float64).filled(np.nan)
    a = getattr(a, "value", a)  # Quantity / Time
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiu":
        raise InvalidLightCurveError(
            f"{where}: {name} has dtype {arr.dtype}; give a numeric (float or int) array")
    if arr.ndim != 1:
        raise InvalidLightCurveError(f"{where}: {name} must be 1-D, got shape {arr.shape}")
    return np.array(arr, dtype=np.float64)  # copy, native byte order


def from_arrays(time: Any, flux: Any, flux_err: Any = None, quality: Any = None,
                quality_bitmask: str | int = "default", meta: dict | None = None) -> LightCurveData:
    """Build a :class:`LightCurveData` from arrays, validating them.

    Parameters
    ----------
    time, flux : array-like, shape (n,)
        Numeric; any byte order. NaN/inf cadences are marked bad, never dropped.
    flux_err : array-like, optional
    quality : array-like of int, optional
        TESS QUALITY flags; cadences matching ``quality_bitmask`` are marked bad.
    quality_bitmask : str or int
        "none", "default", "hard", "hardest", "any" or an int (see :mod:`flarelight.runtime.quality`).
    meta : dict, optional

    Raises
    ------
    InvalidLightCurveError
        Wrong dtype or shape, or mismatched lengths.
    UnsortedTimeError, DuplicateTimeError
        Finite time stamps that are not strictly increasing.
    AllNaNError
        No cadence with finite time and flux.
    """
    meta = dict(meta or {})
    where = meta.get("path") or "arrays"
    t = _float_array("time", time, where)
    f = _float_array("flux", flux, where)
    if f.size != t.size:
        raise InvalidLightCurveError(f"{where}: time has {t.size} cadences but flux has {f.size}")
    e = None
    if flux_err is not None:
        e = _float_array("flux_err", flux_err, where)
        if e.size != t.size:
            raise InvalidLightCurveError(f"{where}: time has {t.size} cadences but flux_err has {e.size}")
    q = None
    if quality is not None:
        qa = np.asarray(getattr(quality, "value", quality))
        if qa.ndim != 1 or qa.size != t.size:
            raise InvalidLightCurveError(f"{where}: quality must be 1-D with {t.size} entries, got shape {qa.shape}")
        if qa.dtype.kind not in "iub":
            raise InvalidLightCurveError(f"{where}: quality has dtype {qa.dtype}; give integer TESS QUALITY flags")
        q = qa.astype(np.int64)
    finite_t = np.isfinite(t)
    steps = np.diff(t[finite_t])
    if np.any(steps < 0):
        i = int(np.flatnonzero(steps < 0)[0])
        raise UnsortedTimeError(
            f"{where}: time is not increasing (step {i}: {t[finite_t][i]!r} -> {t[finite_t][i + 1]!r}); "
            "sort the cadences by time first (e.g. order = np.argsort(time))")
    if np.any(steps == 0):
        i = int(np.flatnonzero(steps == 0)[0])
        raise DuplicateTimeError(
            f"{where}: duplicate time stamp {t[finite_t][i]!r}; remove repeated cadences (e.g. with np.unique)")
    bad = ~(finite_t & np.isfinite(f)) | quality_mask(q, quality_bitmask, t.size)
    if bad.all():
        raise AllNaNError(
            f"{where}: no usable cadence ({t.size} cadences: none has finite time and flux "
            f"and passes quality_bitmask={quality_bitmask!r}); check the flux column and the bitmask")
    meta.setdefault("quality_bitmask", resolve_bitmask(quality_bitmask))
    if "cadence_s" not in meta and steps.size:
        meta["cadence_s"] = float(np.median(steps) * 86400.0)
    return LightCurveData(time=t, flux=f, flux_err=e, quality=q, bad=bad, meta=meta)


def from_lightkurve(lc: Any, quality_bitmask: str | int = "default") -> LightCurveData:
    """Build a :class:`LightCurveData` from a lightkurve ``LightCurve`` (duck-typed; lightkurve not imported).

    Uses ``lc.time`` (its ``.value``, BTJD for TESS), ``lc.flux``, ``lc.flux_err`` and ``lc.quality`` when present,
    and TIC/sector/camera/CCD from ``lc.meta``.
    """
    if not (hasattr(lc, "time") and hasattr(lc, "flux")):
        raise InvalidLightCurveError(f"{type(lc).__name__} has no .time/.flux: not a LightCurve")
    m = {str(k).upper(): v for k, v in dict(getattr(lc, "meta", {}) or {}).items()}
    meta = _meta_from_header(m)
    meta["origin"] = "lightkurve"
    err = getattr(lc, "flux_err", None)
    qual = getattr(lc, "quality", None) if "quality" in getattr(lc, "colnames", ["quality"]) else None
    return from_arrays(lc.time, lc.flux, err, qual, quality_bitmask=quality_bitmask, meta=meta)


def _meta_from_header(h: Any) -> dict:
    def get(*keys):
        for k in keys:
            if k in h and h[k] not in (None, ""):
                return h[k]
        return None

    tic = get("TICID", "TARGETID")
    if tic is None:
        obj = get("OBJECT", "LABEL")
        mt = re.search(r"TIC\s*(\d+)", str(obj or ""))
        tic = int(mt.group(1)) if mt else None
    meta = {"tic": int(tic) if tic is not None else None}
    for key in ("SECTOR", "CAMERA", "CCD"):
        v = get(key)
        meta[key.lower()] = int(v) if v is not None else None
    return meta


def _find_lightcurve_hdu(hdul: Any, where: str) -> Any:
    from astropy.io import fits

    if "LIGHTCURVE" in hdul:
        return hdul["LIGHTCURVE"]
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and "TIME" in [c.upper() for c in hdu.columns.names]:
            return hdu
    raise LightCurveReadError(
        f"{where}: not a light-curve file (no LIGHTCURVE extension or binary table with a TIME column; "
        f"HDUs: {[h.name for h in hdul]}); give a SPOC/TESS-SPOC *_lc.fits file")


def read_lightcurve(path: str | os.PathLike, quality_bitmask: str | int = "default",
                    flux_column: str = "pdcsap_flux") -> LightCurveData:
    """Read a SPOC or TESS-SPOC light-curve FITS file (or a lightkurve-written one).

    Parameters
    ----------
    path : str or path-like
    quality_bitmask : str or int
        Cadences whose QUALITY matches are marked bad: "none", "default", "hard", "hardest" (lightkurve's
        bits), "any" (QUALITY != 0) or an int.
    flux_column : str
        Flux column, case-insensitive: "pdcsap_flux" (default), "sap_flux", or "flux" for custom-aperture
        files. Its uncertainty is ``<flux_column>_err`` when present.

    Returns
    -------
    LightCurveData
        All rows of the file, in file order; ``meta`` holds tic, sector, camera, ccd, cadence_s, path.

    Raises
    ------
    LightCurveReadError
        Missing, truncated or corrupted file, or not a light curve.
    MissingColumnError
        No TIME or no ``flux_column`` column.
    InvalidLightCurveError
        See :func:`from_arrays`.
    """
    from astropy.io import fits

    path = Path(path)
    where = str(path)
    resolve_bitmask(quality_bitmask)  # fail early on a bad name
    if not path.is_file():
        raise LightCurveReadError(f"{where}: no such file")
    size = path.stat().st_size
    if size < 2880:
        raise LightCurveReadError(f"{where}: {size} bytes is too small for a FITS file (truncated or empty)")
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=False) as hdul:
            for i in range(len(hdul)):
                info = hdul.fileinfo(i)
                if info["datLoc"] + info["datSpan"] > size:
                    raise LightCurveReadError(
                        f"{where}: truncated: HDU {i} needs {info['datLoc'] + info['datSpan']} bytes, "
                        f"the file has {size}; download it again")
            hdu = _find_lightcurve_hdu(hdul, where)
            names = {c.upper(): c for c in hdu.columns.names}
            col = flux_column.upper()
            if "TIME" not in names:
                raise MissingColumnError(f"{where}: no TIME column (columns: {sorted(names)})")
            if col not in names:
                hint = " (this file has FLUX: pass flux_column='flux')" if "FLUX" in names else ""
                raise MissingColumnError(
                    f"{where}: no {col} column{hint}; columns: {sorted(names)}")
            data = hdu.data
            time = data[names["TIME"]]
            flux = data[names[col]]
            err = data[names[col + "_ERR"]] if col + "_ERR" in names else None
            qual = data[names["QUALITY"]] if "QUALITY" in names else None
            meta = _meta_from_header({**hdul[0].header, **{k: v for k, v in hdu.header.items() if k in ("TICID", "OBJECT")}})
            timedel = hdu.header.get("TIMEDEL")
            if timedel:
                meta["cadence_s"] = float(timedel) * 86400.0
            meta.update(path=str(path), flux_column=col.lower(), origin=str(hdul[0].header.get("ORIGIN", "")))
            return from_arrays(time, flux, err, qual, quality_bitmask=quality_bitmask, meta=meta)
    except (LightCurveReadError, InvalidLightCurveError):
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise LightCurveReadError(f"{where}: cannot be read as FITS ({type(exc).__name__}: {exc}); "
                                  "the file may be corrupted: download it again") from exc


def as_lightcurve(source: Any, flux: Any = None, flux_err: Any = None, quality: Any = None, *,
                  quality_bitmask: str | int = "default", flux_column: str = "pdcsap_flux") -> LightCurveData:
    """Coerce any supported input into a :class:`LightCurveData`.

    ``source`` is a FITS path, a :class:`LightCurveData`, a lightkurve ``LightCurve``, or a time array
    (then ``flux`` is required).
    """
    if isinstance(source, LightCurveData):
        return source
    if isinstance(source, (str, os.PathLike)):
        return read_lightcurve(source, quality_bitmask=quality_bitmask, flux_column=flux_column)
    if flux is None:
        if hasattr(source, "time") and hasattr(source, "flux"):
            return from_lightkurve(source, quality_bitmask=quality_bitmask)
        raise InvalidLightCurveError(
            f"got a {type(source).__name__} and no flux: give (time, flux) arrays, a FITS path, "
            "a LightCurveData or a lightkurve LightCurve")
    return from_arrays(source, flux, flux_err, quality, quality_bitmask=quality_bitmask)
