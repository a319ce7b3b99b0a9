"""Reading light curves: plain arrays, lightkurve ``LightCurve`` objects (duck-typed) and SPOC FITS files.

Every reader returns a :class:`LightCurveData` holding *all* input cadences (so probabilities line up
row for row with the input) and a ``bad`` mask of the cadences that cannot be used.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .checksum import checksum_problem
from .errors import (AllNaNError, CorruptFileError, DuplicateTimeError, InvalidLightCurveError, LightCurveReadError,
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
    aux : dict
        Extra per-cadence float64 columns of a file (:data:`AUX_COLUMNS` present in it, lower-case names), every
        row; the catalogue's vetting compares SAP flux and centroids with the flux.
    """

    time: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray | None = None
    quality: np.ndarray | None = None
    bad: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    aux: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.time.size)

    @property
    def good(self) -> np.ndarray:
        """True where a cadence can be used."""
        return ~self.bad

    def reader_mask(self, quality_bitmask: str | int | None = None) -> np.ndarray:
        """What the reader marks bad: non-finite time or flux, or QUALITY matching ``quality_bitmask`` (default:
        the one it was read with, ``meta["quality_bitmask"]``)."""
        bitmask = self.meta.get("quality_bitmask", 0) if quality_bitmask is None else quality_bitmask
        return reader_bad(self.time, self.flux, self.quality, bitmask)

    def with_quality_bitmask(self, quality_bitmask: str | int) -> "LightCurveData":
        """The same light curve with ``bad`` recomputed for another QUALITY bitmask: non-finite time or flux stays
        bad, and so does a cadence masked for any other reason (``bad`` set by hand); ``meta["quality_bitmask"]``
        records it. Without QUALITY flags nothing changes."""
        if self.quality is None:
            return self
        other = self.bad & ~self.reader_mask()
        bad = self.reader_mask(quality_bitmask) | other
        if bad.all():
            raise AllNaNError(f"{self.label}: no usable cadence with quality_bitmask={quality_bitmask!r}")
        return dataclasses.replace(self, bad=bad, meta={**self.meta, "quality_bitmask": resolve_bitmask(quality_bitmask)})

    @property
    def label(self) -> str:
        """A short name for messages: the file name, or TIC/sector, or "<arrays>"."""
        if self.meta.get("path"):
            return os.path.basename(str(self.meta["path"]))
        if self.meta.get("tic") is not None:
            return f"TIC {self.meta['tic']} sector {self.meta.get('sector')}"
        return "<arrays>"


def reader_bad(time: np.ndarray, flux: np.ndarray, quality: np.ndarray | None, bitmask: str | int) -> np.ndarray:
    """The reader's rule for an unusable cadence: non-finite time or flux, or QUALITY matching ``bitmask``."""
    return ~(np.isfinite(time) & np.isfinite(flux)) | quality_mask(quality, bitmask, time.size)


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


#: float32 time is refused when its resolution at the largest |time| exceeds this fraction of the median step
FLOAT32_TOLERANCE = 0.01


def _source_dtype(a: Any) -> np.dtype | None:
    """The dtype of an array-like as given (before any conversion to float64), or None if unknown."""
    a = getattr(a, "unmasked", a)
    a = getattr(a, "value", a)
    dtype = getattr(a, "dtype", None)
    return np.dtype(dtype) if dtype is not None else None


def _check_time_precision(t: np.ndarray, steps: np.ndarray, dtype: np.dtype | None, where: str) -> None:
    """Refuse time stamps held in float32 (or float64 values that went through float32) when float32's
    resolution at their magnitude is a sizeable fraction of the cadence.

    TESS times near 1,500 d in float32 are rounded to 1.2e-4 d (10.5 s): steps become uneven, segments
    break at random, every ED and exposure is biased; full BJD (2.46e6 d) rounds to 0.25 d, so cadences
    collide. ``t``: the finite times; ``steps``: their differences.
    """
    if t.size < 3:
        return
    held = dtype is not None and dtype.kind == "f" and dtype.itemsize < 8
    if not held and not bool(np.all(t.astype(np.float32) == t)):
        return  # float64 that never went through float32 (almost surely, when not every value is a float32)
    top = float(np.max(np.abs(t)))
    resolution = float(np.spacing(np.float32(top)))
    positive = steps[steps > 0]
    median = float(np.median(positive)) if positive.size else 0.0
    collide = int(np.count_nonzero(steps == 0))
    if median == 0 or resolution <= FLOAT32_TOLERANCE * median:
        return  # float32 resolves the cadence: repeated stamps, if any, are real duplicates
    regular = steps[(steps > 0.5 * median) & (steps < 1.5 * median)]
    if collide == 0 and not held and np.unique(regular).size <= 1:
        return  # an exact float64 grid that happens to be float32-representable: nothing was rounded
    held = f"held in {dtype}" if held else "rounded to float32 precision (every value is exactly a float32)"
    what = (f"{collide} time stamps collide" if collide else
            f"that is {resolution / median:.0%} of the median step of {median * 86400.0:.4g} s, so steps become "
            "uneven, gaps appear or vanish, and every equivalent duration and exposure is biased")
    raise InvalidLightCurveError(
        f"{where}: time is {held}: near |t| = {top:.6g} d float32 resolves only {resolution:.3g} d "
        f"({resolution * 86400.0:.3g} s); {what}. Pass time as float64, as stored in the file (do not cast it "
        "to float32, e.g. via a float32 table or array)")


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
    InvalidLightCurveError
        Time held in float32 (or rounded to it) where float32 cannot resolve the cadence
        (see :data:`FLOAT32_TOLERANCE`).
    UnsortedTimeError, DuplicateTimeError
        Finite time stamps that are not strictly increasing.
    AllNaNError
        No cadence with finite time and flux.
    """
    meta = dict(meta or {})
    where = meta.get("path") or "arrays"
    time_dtype = _source_dtype(time)
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
    _check_time_precision(t[finite_t], steps, time_dtype, where)
    if np.any(steps < 0):
        i = int(np.flatnonzero(steps < 0)[0])
        raise UnsortedTimeError(
            f"{where}: time is not increasing (step {i}: {float(t[finite_t][i])!r} -> {float(t[finite_t][i + 1])!r}); "
            "sort the cadences by time first (e.g. order = np.argsort(time))")
    if np.any(steps == 0):
        i = int(np.flatnonzero(steps == 0)[0])
        raise DuplicateTimeError(
            f"{where}: duplicate time stamp {float(t[finite_t][i])!r}; remove repeated cadences (e.g. with np.unique)")
    bad = reader_bad(t, f, q, quality_bitmask)
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


def _column_names(hdu: Any) -> dict[str, str]:
    """Upper-case name -> name of a table HDU's columns (a corrupted TTYPE can leave a name None)."""
    return {c.upper(): c for c in hdu.columns.names if isinstance(c, str)}


def _find_lightcurve_hdu(hdul: Any, where: str) -> Any:
    from astropy.io import fits

    if "LIGHTCURVE" in hdul:
        return hdul["LIGHTCURVE"]
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and "TIME" in _column_names(hdu):
            return hdu
    raise LightCurveReadError(
        f"{where}: not a light-curve file (no LIGHTCURVE extension or binary table with a TIME column; "
        f"HDUs: {[h.name for h in hdul]}); give a SPOC/TESS-SPOC *_lc.fits file")


def _file_bytes(path: Path) -> np.ndarray:
    """The file's bytes as uint8 (gzip-compressed files decompressed): what the HDU offsets refer to."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if gz:
        import gzip

        with gzip.open(path, "rb") as fh:
            return np.frombuffer(fh.read(), dtype=np.uint8)
    return np.fromfile(path, dtype=np.uint8)


def _check_hdus(hdul: Any, path: Path, where: str, verify_checksum: bool) -> None:
    """Refuse truncated files, and (with ``verify_checksum``) HDUs whose CHECKSUM/DATASUM fails."""
    raw = _file_bytes(path)
    size = raw.size
    for i in range(len(hdul)):
        info = hdul.fileinfo(i)
        end = info["datLoc"] + info["datSpan"]
        if end > size:
            raise LightCurveReadError(f"{where}: truncated: HDU {i} needs {end} bytes, the file has {size}; "
                                      "download it again")
        if verify_checksum:
            problem = checksum_problem(raw, hdul[i].header, info["hdrLoc"], info["datLoc"], end)
            if problem:
                raise CorruptFileError(
                    f"{where}: HDU {i} ({hdul[i].name or 'PRIMARY'}): {problem}: the file is corrupted; "
                    "download it again (verify_checksum=False / --no-verify-checksum reads it anyway)")


def _check_file_times(time: Any, where: str) -> None:
    """A light-curve file's finite TIME must increase; anything else means the file is damaged."""
    t = np.asarray(time, dtype=np.float64)
    t = t[np.isfinite(t)]
    steps = np.diff(t)
    if not np.any(steps <= 0):
        return
    i = int(np.flatnonzero(steps <= 0)[0])
    zeros = int(np.count_nonzero(t == 0.0))
    what = f"{zeros} of its {t.size} finite TIME values are exactly 0" if zeros else \
        f"TIME goes from {float(t[i])!r} to {float(t[i + 1])!r} at finite cadence {i}"
    raise CorruptFileError(
        f"{where}: looks corrupted: {what}, and a light-curve file's TIME always increases; download it again "
        "(if you wrote this file yourself, sort its rows by TIME and remove repeated cadences)")


#: columns read into ``LightCurveData.aux`` when a file has them (for vetting)
AUX_COLUMNS = ("SAP_FLUX", "MOM_CENTR1", "MOM_CENTR2")


def read_lightcurve(path: str | os.PathLike, quality_bitmask: str | int = "default",
                    flux_column: str = "pdcsap_flux", *, verify_checksum: bool = True) -> LightCurveData:
    """Read a SPOC or TESS-SPOC light-curve FITS file (or a lightkurve-written one).

    Parameters
    ----------
    path : str or path-like
        A FITS file (gzip-compressed is fine).
    quality_bitmask : str or int
        Cadences whose QUALITY matches are marked bad: "none", "default", "hard", "hardest" (lightkurve's
        bits), "any" (QUALITY != 0) or an int.
    flux_column : str
        Flux column, case-insensitive: "pdcsap_flux" (default), "sap_flux", or "flux" for custom-aperture
        files. Its uncertainty is ``<flux_column>_err`` when present.
    verify_checksum : bool
        Check every HDU that carries a ``CHECKSUM`` (or ``DATASUM``) card (default True; a few ms per file).
        SPOC products carry ``CHECKSUM`` without ``DATASUM``; the ones'-complement sums are computed here
        (:mod:`flarelight.runtime.checksum`), not by astropy, which warns on every such file.

    Returns
    -------
    LightCurveData
        All rows of the file, in file order; ``meta`` holds tic, sector, camera, ccd, cadence_s, path.

    Raises
    ------
    LightCurveReadError
        Missing, truncated or unparsable file, or not a light curve.
    CorruptFileError
        A checksum that fails, or TIME values that do not increase (e.g. zeroed): the file is damaged.
    MissingColumnError
        No TIME or no ``flux_column`` column.
    InvalidLightCurveError
        See :func:`from_arrays`.
    """
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyError

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
            _check_hdus(hdul, path, where, verify_checksum)
            hdu = _find_lightcurve_hdu(hdul, where)
            names = _column_names(hdu)
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
            if _source_dtype(time) is None or _source_dtype(time).itemsize >= 8:
                _check_file_times(time, where)  # (float32 TIME gets from_arrays' own message)
            lc = from_arrays(time, flux, err, qual, quality_bitmask=quality_bitmask, meta=meta)
            lc.aux = {c.lower(): np.array(data[names[c]], dtype=np.float64) for c in AUX_COLUMNS if c in names}
            return lc
    except (LightCurveReadError, InvalidLightCurveError):
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError, AttributeError, VerifyError) as exc:
        raise LightCurveReadError(f"{where}: cannot be read as FITS ({type(exc).__name__}: {exc}); "
                                  "the file looks corrupted: download it again") from exc


def as_lightcurve(source: Any, flux: Any = None, flux_err: Any = None, quality: Any = None, *,
                  quality_bitmask: str | int = "default", flux_column: str = "pdcsap_flux",
                  verify_checksum: bool = True) -> LightCurveData:
    """Coerce any supported input into a :class:`LightCurveData`.

    ``source`` is a FITS path (read with :func:`read_lightcurve`), a :class:`LightCurveData`, a lightkurve
    ``LightCurve``, or a time array (then ``flux`` is required).
    """
    if isinstance(source, LightCurveData):
        return source
    if isinstance(source, (str, os.PathLike)):
        return read_lightcurve(source, quality_bitmask=quality_bitmask, flux_column=flux_column,
                               verify_checksum=verify_checksum)
    if flux is None:
        if hasattr(source, "time") and hasattr(source, "flux"):
            return from_lightkurve(source, quality_bitmask=quality_bitmask)
        raise InvalidLightCurveError(
            f"got a {type(source).__name__} and no flux: give (time, flux) arrays, a FITS path, "
            "a LightCurveData or a lightkurve LightCurve")
    return from_arrays(source, flux, flux_err, quality, quality_bitmask=quality_bitmask)
