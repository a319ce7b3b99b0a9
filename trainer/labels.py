"""Input labels: flare catalogues as per-star flare intervals in BTJD, and the labels of one light curve.

(The runtime's *output* catalogue, one row per flare found, is :mod:`flarelight.runtime.catalogue`.)

Every loader returns a :class:`FlareCatalog`: one row per flare with the star's TIC, the sector where
known, an interval ``[tstart, tstop]`` and a peak time (NaN where the catalogue gives none). The
interval conventions are those of ``../shared/eval/flare_eval.py``:

- Günther et al. 2020: ``tpeak`` (BJD, minus 2457000 for BTJD) and ``FWHMdt`` (days) give the interval
  ``[tpeak - 2 FWHM, tpeak + 5 FWHM]``.
- Ilin et al. 2024 (PAPER table): ``tstart``/``tstop`` (BTJD); rows with an empty ``tstart`` are stars
  searched without a flare and are skipped; only ``mission == TESS``.
- Ilin et al. 2024 vetted candidates: ``tstart``/``tstop`` (BTJD), sector ``qcs``, only TESS rows with ``real == 1``.
- TESS UCD flares (Ilin, vetted): ``tstart``/``tstop`` (BTJD), only rows with ``real == 1``.
- Ilin & Poppenhäger 2022 AU Mic final table: ``$t_s$ [BTJD]``/``$t_f$ [BTJD]``, TIC 441420236.
- A generic CSV with columns ``tic, tstart, tstop`` (and optionally ``tpeak``, ``sector``), any case.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from flarelight.runtime.errors import FlarelightError

BJD_OFFSET = 2457000.0
AU_MIC_TIC = 441420236

#: format name -> columns that identify it (lower case)
FORMATS: dict[str, tuple[str, ...]] = {
    "guenther2020": ("tic", "tpeak", "fwhmdt"),
    "ilin2024": ("tic", "mission", "quarter_or_sector", "tstart", "tstop"),
    "ilin2024_vetted": ("tic", "qcs", "mission", "tstart", "tstop", "real"),
    "ucd": ("tic", "sector", "tstart", "tstop", "real"),
    "ilin2022_aumic": ("sec.", "$t_s$ [btjd]", "$t_f$ [btjd]"),
    "intervals": ("tic", "tstart", "tstop"),
}


class CatalogError(FlarelightError, ValueError):
    """A flare catalogue that cannot be used: missing, empty, or without the columns flarelight needs."""


class CatalogMatchError(CatalogError):
    """A catalogue has no flare for a light curve that needs one."""


@dataclass
class FlareCatalog:
    """Flares as intervals in BTJD, one row per flare (or flare component).

    Attributes
    ----------
    tic : ndarray of int64
    sector : ndarray of int64
        -1 where the catalogue does not say.
    tstart, tstop : ndarray of float64
        The flare interval (BTJD).
    tpeak : ndarray of float64
        Peak time (BTJD), NaN where the catalogue gives none.
    source : str
        Where the rows came from (file names and formats).
    """

    tic: np.ndarray
    sector: np.ndarray
    tstart: np.ndarray
    tstop: np.ndarray
    tpeak: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return int(self.tic.size)

    @property
    def stars(self) -> np.ndarray:
        """The distinct TICs in the catalogue."""
        return np.unique(self.tic)

    def select(self, tic: int, sector: int | None = None, tmin: float = -np.inf,
               tmax: float = np.inf) -> "FlareCatalog":
        """Rows of one star (and sector, where the catalogue gives one) overlapping ``[tmin, tmax]``."""
        m = (self.tic == int(tic)) & (self.tstop >= tmin) & (self.tstart <= tmax)
        if sector is not None:
            m &= (self.sector == int(sector)) | (self.sector < 0)
        return FlareCatalog(self.tic[m], self.sector[m], self.tstart[m], self.tstop[m], self.tpeak[m], self.source)

    def intervals(self) -> np.ndarray:
        """``(n, 2)`` array of ``[tstart, tstop]``."""
        return np.column_stack([self.tstart, self.tstop]).reshape(-1, 2)

    def for_lightcurve(self, lc, *, require: bool = False) -> "FlareCatalog":
        """The flares of a light curve's star (``lc.meta["tic"]``, sector if known) inside its time span.

        Parameters
        ----------
        lc : LightCurveData
        require : bool
            Raise :class:`CatalogMatchError` when there is none (default: return an empty catalogue,
            i.e. the light curve contributes only negatives).
        """
        tic = lc.meta.get("tic")
        if tic is None:
            raise CatalogMatchError(f"{lc.label}: no TIC in its metadata, so no catalogue row can match it; "
                                    "set lc.meta['tic'] or pass labels per light curve")
        t = lc.time[np.isfinite(lc.time)]
        sub = self.select(int(tic), lc.meta.get("sector"), float(t.min()), float(t.max()))
        if require and len(sub) == 0:
            n_star = int(np.sum(self.tic == int(tic)))
            raise CatalogMatchError(
                f"{lc.label}: no flare of TIC {tic} in {self.source or 'the catalogue'} between BTJD {t.min():.3f} "
                f"and {t.max():.3f} ({n_star} rows for this TIC in other sectors/times); check the TIC and the time "
                "system (catalogues in BJD need 2457000 subtracted) or use this light curve for negatives only")
        return sub

    @classmethod
    def empty(cls, source: str = "") -> "FlareCatalog":
        """A catalogue without rows."""
        z = np.empty(0)
        return cls(z.astype(np.int64), z.astype(np.int64), z.copy(), z.copy(), z.copy(), source)

    @classmethod
    def from_intervals(cls, tic: int, intervals: Sequence[Sequence[float]], tpeak: Sequence[float] | None = None,
                       sector: int = -1, source: str = "<intervals>") -> "FlareCatalog":
        """A catalogue of one star from ``(n, 2)`` intervals (BTJD)."""
        iv = np.asarray(intervals, float).reshape(-1, 2)
        tp = np.full(len(iv), np.nan) if tpeak is None else np.asarray(tpeak, float).reshape(-1)
        n = len(iv)
        return cls(np.full(n, int(tic), np.int64), np.full(n, int(sector), np.int64), iv[:, 0].copy(),
                   iv[:, 1].copy(), tp, source)

    @classmethod
    def from_table(cls, table, tic: int, sector: int = -1, source: str = "") -> "FlareCatalog":
        """A catalogue of one star from a table with ``tstart``, ``tstop`` and optionally ``tpeak`` columns
        (e.g. the injected-flare table of :func:`flarelight.trainer.inject.inject_flares`)."""
        names = list(getattr(table, "colnames", None) or table.dtype.names)
        if not {"tstart", "tstop"} <= set(names):
            raise CatalogError(f"label table has columns {names}; it needs tstart, tstop (BTJD)")
        iv = np.column_stack([np.asarray(table["tstart"], float), np.asarray(table["tstop"], float)])
        tp = np.asarray(table["tpeak"], float) if "tpeak" in names else None
        src = source or str(getattr(table, "meta", {}).get("source", "<table>"))
        return cls.from_intervals(tic, iv, tp, sector=sector, source=src)

    @classmethod
    def concatenate(cls, catalogs: Iterable["FlareCatalog"]) -> "FlareCatalog":
        """One catalogue from several."""
        cats = list(catalogs)
        if not cats:
            return cls.empty()
        return cls(*(np.concatenate([getattr(c, k) for c in cats]) for k in ("tic", "sector", "tstart", "tstop", "tpeak")),
                   source="+".join(c.source for c in cats if c.source))


def _read_rows(path: Path) -> tuple[list[str], list[dict]]:
    """Header (lower-cased, stripped) and rows of a CSV or VizieR-style TSV file."""
    if not path.is_file():
        raise CatalogError(f"{path}: no such catalogue file")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        lines = [ln for ln in fh if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise CatalogError(f"{path}: empty catalogue (no header, no rows); give a CSV with a header line")
    delim = "\t" if lines[0].count("\t") > lines[0].count(",") else ","
    reader = csv.reader(lines, delimiter=delim)
    header = [h.strip().lower() for h in next(reader)]
    rows = [dict(zip(header, (v.strip() for v in r))) for r in reader if any(v.strip() for v in r)]
    return header, rows


def detect_format(header: Sequence[str]) -> str | None:
    """The first format in :data:`FORMATS` whose columns are all in ``header`` (lower case), else None."""
    cols = set(header)
    for name, need in FORMATS.items():
        if set(need) <= cols:
            return name
    return None


def _float(v: str) -> float:
    return float(v) if v not in ("", None) else np.nan


def load_catalog(path: str | os.PathLike, fmt: str = "auto") -> FlareCatalog:
    """Read a flare catalogue into a :class:`FlareCatalog` (BTJD intervals per TIC).

    Parameters
    ----------
    path : path-like
        CSV (or tab-separated) file.
    fmt : str
        "auto" (detect from the columns), or one of :data:`FORMATS`.

    Raises
    ------
    CatalogError
        Missing or empty file, unknown format, columns the format needs are missing (the message lists the
        columns found), no usable row, or unparseable values.
    """
    path = Path(path)
    header, rows = _read_rows(path)
    if fmt == "auto":
        fmt = detect_format(header)
        if fmt is None:
            raise CatalogError(
                f"{path}: unknown catalogue layout; columns found: {header}. flarelight reads "
                + "; ".join(f"{k} ({', '.join(v)})" for k, v in FORMATS.items())
                + ". Rename the columns (e.g. to tic, tstart, tstop in BTJD)")
    elif fmt not in FORMATS:
        raise CatalogError(f"fmt={fmt!r}: unknown; choose 'auto' or one of {sorted(FORMATS)}")
    missing = [c for c in FORMATS[fmt] if c not in header]
    if missing:
        raise CatalogError(f"{path}: format {fmt} needs columns {list(FORMATS[fmt])}; missing {missing}; "
                           f"columns found: {header}")
    if not rows:
        raise CatalogError(f"{path}: catalogue has a header ({header}) but no rows")
    tic, sec, ts, te, tp = [], [], [], [], []
    try:
        for r in rows:
            if fmt == "guenther2020":
                peak = float(r["tpeak"]) - BJD_OFFSET
                fwhm = float(r["fwhmdt"])
                tic.append(int(r["tic"])); sec.append(-1)
                ts.append(peak - 2 * fwhm); te.append(peak + 5 * fwhm); tp.append(peak)
            elif fmt == "ilin2024":
                if not r["tstart"] or r["mission"].strip().upper() != "TESS":
                    continue
                tic.append(int(float(r["tic"]))); sec.append(int(float(r["quarter_or_sector"])))
                ts.append(float(r["tstart"])); te.append(float(r["tstop"])); tp.append(np.nan)
            elif fmt == "ilin2024_vetted":
                if not r["tstart"] or r["mission"].strip().upper() != "TESS" or r["real"] in ("", None) \
                        or float(r["real"]) != 1:
                    continue
                tic.append(int(float(r["tic"]))); sec.append(int(float(r["qcs"])))
                ts.append(float(r["tstart"])); te.append(float(r["tstop"])); tp.append(np.nan)
            elif fmt == "ucd":
                if r["real"] in ("", None) or float(r["real"]) != 1:
                    continue
                tic.append(int(float(r["tic"]))); sec.append(int(float(r["sector"])))
                ts.append(float(r["tstart"])); te.append(float(r["tstop"])); tp.append(np.nan)
            elif fmt == "ilin2022_aumic":
                tic.append(AU_MIC_TIC); sec.append(int(float(r["sec."])))
                ts.append(float(r["$t_s$ [btjd]"])); te.append(float(r["$t_f$ [btjd]"])); tp.append(np.nan)
            else:  # intervals
                tic.append(int(float(r["tic"])))
                sec.append(int(float(r["sector"])) if r.get("sector") not in (None, "") else -1)
                ts.append(float(r["tstart"])); te.append(float(r["tstop"])); tp.append(_float(r.get("tpeak", "")))
    except (ValueError, KeyError) as exc:
        raise CatalogError(f"{path}: row {len(tic) + 1} of format {fmt} cannot be parsed ({type(exc).__name__}: "
                           f"{exc}); fix or remove that row") from exc
    if not tic:
        raise CatalogError(f"{path}: no usable flare row (format {fmt}: {len(rows)} rows, all skipped as "
                           "non-flares, non-TESS or not vetted real)")
    ts_a, te_a = np.asarray(ts, float), np.asarray(te, float)
    if not (np.all(np.isfinite(ts_a)) and np.all(np.isfinite(te_a)) and np.all(te_a >= ts_a)):
        raise CatalogError(f"{path}: some flare intervals are NaN or have tstop < tstart; fix those rows")
    if np.nanmedian(ts_a) > 1e5:
        raise CatalogError(f"{path}: times look like BJD (median {np.nanmedian(ts_a):.1f}), not BTJD; "
                           "subtract 2457000 or use the guenther2020 format")
    return FlareCatalog(np.asarray(tic, np.int64), np.asarray(sec, np.int64), ts_a, te_a, np.asarray(tp, float),
                        source=f"{path.name}[{fmt}]")


def load_catalogs(paths: Iterable[str | os.PathLike], fmt: str = "auto") -> FlareCatalog:
    """Several catalogues combined into one (overlapping intervals are merged when labels are built)."""
    return FlareCatalog.concatenate(load_catalog(p, fmt) for p in paths)


def labels_for(item: Any, lc: Any, require: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The labels of one light curve: ``(intervals (n, 2) BTJD, tpeak (n,))`` (tpeak NaN where unknown).

    Parameters
    ----------
    item : FlareCatalog, table or array
        A catalogue (matched by the light curve's TIC, sector and time span), a table with ``tstart``,
        ``tstop`` (and optionally ``tpeak``) columns such as an injected-flare table, an ``(n, 2)`` array of
        intervals, or None (no flare).
    lc : LightCurveData
    require : bool
        Raise :class:`CatalogError` (:class:`CatalogMatchError` for a catalogue) when there is no label.
    """
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


def merge_intervals(iv: np.ndarray) -> np.ndarray:
    """Merge overlapping ``[start, stop]`` intervals (as flare_eval.py does)."""
    iv = np.asarray(iv, float).reshape(-1, 2)
    iv = iv[np.argsort(iv[:, 0], kind="stable")]
    out: list[list[float]] = []
    for s, e in iv:
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return np.array(out, float).reshape(-1, 2)


__all__ = ["FlareCatalog", "CatalogError", "CatalogMatchError", "load_catalog", "load_catalogs",
           "detect_format", "merge_intervals", "labels_for", "cadence_labels", "FORMATS", "BJD_OFFSET"]
