"""Flare catalogues: per-cadence probabilities + the light curve -> one table row per flare.

Two layers:

* :func:`flares_from_probabilities` is pure (numpy, the numba running median and astropy): it takes a
  :class:`~flarelight.runtime.io.LightCurveData` and a probability array of the same length and
  returns an :class:`astropy.table.Table`. Testable without a model.
* :func:`find_flares` coerces any input with :func:`~flarelight.runtime.io.as_lightcurve`, runs a
  :class:`~flarelight.runtime.model.FlareModel` (default: the shipped ensemble) and calls it, with the
  model's own masking and gap rule.

The algorithm, all in the space of the *kept* cadences (good, passing the model's quality rule):

1. **Candidate runs**: maximal runs of consecutive kept cadences with ``prob > threshold`` inside one
   segment (unscored cadences, NaN, are below threshold; a run never crosses a gap).
2. **Merging**: runs of one segment separated by at most ``merge_gap`` kept cadences are one flare
   (a complex flare, or a flare whose probability dips below threshold for a moment). Groups with
   fewer than ``min_cadences`` cadences above threshold are dropped.
3. **Baseline**: a running median of the flux over ``baseline_window`` cadences, per segment,
   computed with the candidate cadences masked (so the flare does not lift its own baseline), then
   recomputed once with the extended flare intervals masked; under each masked stretch it is the
   straight line between the baseline values on either side (no step where the median switches sides).
4. **Extent**: ``tstart``/``tstop`` extend each group outwards, cadence by cadence, while the flux
   stays above the baseline, at most ``max_extend`` cadences each way, never past the segment's
   edge and never into the neighbouring flare (so rows never overlap).
5. **Measurements** over ``[istart, istop]``: ``tpeak``/``ipeak`` at the largest relative excess,
   ``amplitude`` = that excess ``(flux - baseline) / baseline``, ``ed`` = sum of the relative excess
   times the cadence (seconds; masked cadences inside a flare are not counted),
   ``ed_err = sqrt(sum(flux_err**2 / baseline**2)) * cadence``, ``n_peaks`` = local maxima of the
   excess whose height and topographic prominence both exceed ``peak_sigma`` times the segment's
   robust scatter (at least 1), ``prob_max``/``prob_mean`` over the scored cadences of the interval.
6. **Flags**: ``near_edge`` if the interval is within ``edge_window`` kept cadences of the first or
   last kept cadence of the light curve; ``near_gap`` if within ``edge_window`` kept cadences of an
   internal segment boundary. Flares there may be cut, and the model scores no cadence within
   ``offset`` (100 for stella) of an edge in "valid" mode.
7. **Significance**: ``snr`` = ED over its empirical noise (the segment's robust scatter of the flux
   about the baseline, times sqrt(cadences)); rows with ``snr < min_snr`` are dropped.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.table import Table

from . import kernels
from .errors import InvalidLightCurveError
from .io import LightCurveData, as_lightcurve
from .metadata import Preprocessing

#: probability a cadence must exceed to be a flare candidate (stella's FitFlares default)
DEFAULT_THRESHOLD = 0.5
#: cadences above threshold a flare needs (1: a single high-probability cadence is kept, stella issue #30)
DEFAULT_MIN_CADENCES = 1
#: kept cadences below threshold that may separate two runs of one flare
DEFAULT_MERGE_GAP = 5
#: running-median window of the baseline, in cadences (4 h at 2 min)
DEFAULT_BASELINE_WINDOW = 121
#: maximum extension of a flare beyond its above-threshold cadences, each way, in cadences
DEFAULT_MAX_EXTEND = 60
#: distance (kept cadences) to a gap / light-curve edge that sets near_gap / near_edge
DEFAULT_EDGE_WINDOW = 100
#: minimum empirical signal-to-noise of a flare's ED (see the ``snr`` column); 0 keeps every candidate
DEFAULT_MIN_SNR = 5.0
#: a secondary peak counts when its height and prominence exceed this many robust sigmas
DEFAULT_PEAK_SIGMA = 5.0

#: name, dtype, unit, description of every catalogue column (in order)
COLUMNS: list[tuple[str, str, Any, str]] = [
    ("tpeak", "f8", u.d, "time of the largest relative excess (BTJD)"),
    ("tstart", "f8", u.d, "first cadence of the flare (BTJD)"),
    ("tstop", "f8", u.d, "last cadence of the flare (BTJD)"),
    ("ipeak", "i8", None, "input row of tpeak"),
    ("istart", "i8", None, "input row of tstart"),
    ("istop", "i8", None, "input row of tstop"),
    ("n_cadences", "i8", None, "kept cadences in [tstart, tstop]"),
    ("n_above", "i8", None, "cadences with prob > threshold"),
    ("n_peaks", "i8", None, "significant local maxima (complex flare if > 1)"),
    ("amplitude", "f8", u.dimensionless_unscaled, "peak (flux - baseline) / baseline"),
    ("ed", "f8", u.s, "equivalent duration: sum of (flux - baseline) / baseline * cadence"),
    ("ed_err", "f8", u.s, "ED uncertainty from flux_err (NaN without flux_err)"),
    ("snr", "f8", None, "ED / (robust scatter of the residuals x sqrt(n_cadences) x cadence)"),
    ("prob_max", "f8", None, "largest probability in the flare"),
    ("prob_mean", "f8", None, "mean probability of the scored cadences in the flare"),
    ("near_gap", "bool", None, "within edge_window cadences of a gap"),
    ("near_edge", "bool", None, "within edge_window cadences of the light curve's start or end"),
]
_UNITS = {name: unit for name, _, unit, _ in COLUMNS}

#: Table.meta keys holding the parameters (read back by the plot to recompute the baseline)
PARAM_KEYS = ("threshold", "min_cadences", "merge_gap", "baseline_window", "max_extend", "edge_window",
              "peak_sigma", "min_snr", "merge_connected")


def empty_table() -> Table:
    """A zero-row catalogue with every column, dtype and unit."""
    return _build_table({name: np.empty(0, dtype) for name, dtype, _, _ in COLUMNS})


def _build_table(cols: dict[str, np.ndarray]) -> Table:
    t = Table()
    for name, dtype, unit, desc in COLUMNS:
        t[name] = np.asarray(cols[name], dtype=dtype)
        if unit is not None:
            t[name].unit = unit
        t[name].description = desc
    for name, fmt in (("tpeak", ".5f"), ("tstart", ".5f"), ("tstop", ".5f"), ("amplitude", ".4f"),
                      ("ed", ".2f"), ("ed_err", ".2f"), ("snr", ".1f"), ("prob_max", ".3f"), ("prob_mean", ".3f")):
        t[name].format = fmt
    return t


# ----------------------------------------------------------------------------- helpers
def _check_params(threshold: float, min_cadences: int, merge_gap: int, baseline_window: int,
                  max_extend: int, edge_window: int, peak_sigma: float) -> None:
    if not (0.0 <= threshold < 1.0):
        raise ValueError(f"threshold={threshold}: must be in [0, 1)")
    for name, v, lo in (("min_cadences", min_cadences, 1), ("merge_gap", merge_gap, 0),
                        ("baseline_window", baseline_window, 3), ("max_extend", max_extend, 0),
                        ("edge_window", edge_window, 0)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name}={v}: must be an integer >= {lo}")
    if not peak_sigma >= 0:
        raise ValueError(f"peak_sigma={peak_sigma}: must be >= 0")


def _runs(above: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (inclusive) of maximal runs of ``above`` that do not cross a segment boundary."""
    n = above.size
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    brk = np.r_[True, seg[1:] != seg[:-1]]
    prev = np.r_[False, above[:-1]] & ~brk
    nxt = np.r_[above[1:], False] & ~np.r_[brk[1:], True]
    return np.flatnonzero(above & ~prev), np.flatnonzero(above & ~nxt)


def _merge(starts: np.ndarray, stops: np.ndarray, seg: np.ndarray, merge_gap: int) -> list[list[int]]:
    """Merge runs of one segment separated by <= merge_gap cadences: [[start, stop, n_runs], ...]."""
    groups: list[list[int]] = []
    for a, b in zip(starts.tolist(), stops.tolist()):
        if groups and seg[a] == seg[groups[-1][1]] and a - groups[-1][1] - 1 <= merge_gap:
            groups[-1][1] = b
            groups[-1][2] += 1
        else:
            groups.append([a, b, 1])
    return groups


def _baseline(flux: np.ndarray, time: np.ndarray, seg: np.ndarray, mask: np.ndarray, half: int) -> np.ndarray:
    """Running median of ``flux`` with ``mask`` cadences excluded, NaN holes interpolated per segment."""
    x = flux.copy()
    x[mask] = np.nan
    base = kernels.running_median(x, seg, half)
    base[mask] = np.nan  # under a flare: a straight line between the baselines on either side (below)
    hole = ~np.isfinite(base)
    if hole.any():
        for s in np.unique(seg[hole]):
            sel = np.flatnonzero(seg == s)
            ok = np.isfinite(base[sel])
            if ok.any():
                base[sel[~ok]] = np.interp(time[sel[~ok]], time[sel[ok]], base[sel[ok]])
            else:  # the whole segment is masked: fall back to its plain median
                base[sel] = np.nanmedian(flux[sel])
    return base


def _robust_sigma(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if x.size < 3:
        return float("nan")
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def count_peaks(excess: np.ndarray, min_height: float) -> int:
    """Number of local maxima of ``excess`` with height and topographic prominence >= ``min_height``.

    Prominence as in scipy.signal.peak_prominences: the peak's height above the higher of the two
    lowest points between it and the nearest higher cadence on each side (or the interval's end).
    Always at least 1 for a non-empty interval (the highest cadence is the flare's peak).
    """
    y = np.asarray(excess, dtype=np.float64)
    y = np.where(np.isfinite(y), y, -np.inf)
    n = y.size
    if n == 0:
        return 0
    count = 0
    for i in range(n):
        if not ((i == 0 or y[i] > y[i - 1]) and (i == n - 1 or y[i] >= y[i + 1])):
            continue
        if y[i] < min_height:
            continue
        j = i - 1
        lmin = y[i]
        while j >= 0 and y[j] <= y[i]:
            lmin = min(lmin, y[j])
            j -= 1
        k = i + 1
        rmin = y[i]
        while k < n and y[k] <= y[i]:
            if y[k] == y[i] and k > i:  # plateau: the first cadence of it is the peak
                break
            rmin = min(rmin, y[k])
            k += 1
        if y[i] - max(lmin, rmin) >= min_height:
            count += 1
    return max(count, 1)


def _cadence_s(lc: LightCurveData, time: np.ndarray, seg: np.ndarray) -> float:
    cad = lc.meta.get("cadence_s")
    if cad:
        return float(cad)
    steps = np.diff(time)[seg[1:] == seg[:-1]]
    return float(np.median(steps) * 86400.0) if steps.size else float("nan")


# ----------------------------------------------------------------------------- the pure function
def flares_from_probabilities(lc: LightCurveData, prob: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD,
                              min_cadences: int = DEFAULT_MIN_CADENCES, merge_gap: int = DEFAULT_MERGE_GAP,
                              baseline_window: int = DEFAULT_BASELINE_WINDOW, max_extend: int = DEFAULT_MAX_EXTEND,
                              edge_window: int = DEFAULT_EDGE_WINDOW, peak_sigma: float = DEFAULT_PEAK_SIGMA,
                              min_snr: float = DEFAULT_MIN_SNR, merge_connected: bool = True,
                              kept: np.ndarray | None = None, seg: np.ndarray | None = None,
                              max_step: float | None = None, model_id: str = "",
                              return_baseline: bool = False) -> Table | tuple[Table, np.ndarray]:
    """Turn per-cadence flare probabilities into a flare catalogue (one row per flare).

    See the module docstring for the algorithm.

    Parameters
    ----------
    lc : LightCurveData
    prob : ndarray, shape (len(lc),)
        Flare probability per input cadence; NaN where not scored.
    threshold : float
        Candidates are cadences with ``prob > threshold`` (default 0.5).
    min_cadences : int
        Minimum cadences above threshold per flare (default 1).
    merge_gap : int
        Runs separated by at most this many kept cadences merge into one flare (default 5).
    baseline_window : int
        Running-median window, cadences (default 121; an even value is rounded up to odd).
    max_extend : int
        Maximum extension each way beyond the above-threshold cadences (default 60).
    edge_window : int
        Distance in kept cadences that sets ``near_gap``/``near_edge`` (default 100, the model's half window).
    peak_sigma : float
        Significance (robust sigmas) of a secondary peak for ``n_peaks`` (default 5).
    min_snr : float
        Drop flares whose ``snr`` (ED over its empirical noise) is below this (default 5; 0 keeps all
        with a non-negative ED sum, use ``-inf`` to keep every candidate).
    merge_connected : bool
        Merge neighbouring groups when the flux stays above the baseline between them (default True).
    kept : ndarray of int, optional
        Input rows to use (the model's kept cadences); default the good cadences of ``lc``.
    seg : ndarray of int, optional
        Segment label of each kept cadence; default by the "tolerance" gap rule (``Preprocessing().gap_tolerance``
        x the median step), or by ``max_step`` if given.
    max_step : float, optional
        Longest step (days) inside a segment, used when ``seg`` is not given.
    model_id : str
        Written to the table meta.
    return_baseline : bool
        Also return the baseline flux at input length (NaN on rows not kept).

    Returns
    -------
    Table
        Columns :data:`COLUMNS`; meta ``tic``, ``sector``, ``model_id``, the parameters, ``cadence_s``,
        ``exposure_d`` (kept cadences x cadence) and ``time_scale``. Empty (with every column) if no flare.
    """
    _check_params(threshold, min_cadences, merge_gap, baseline_window, max_extend, edge_window, peak_sigma)
    if math.isnan(min_snr):
        raise ValueError("min_snr is NaN: give a number (-inf keeps every candidate)")
    prob = np.asarray(prob, dtype=np.float64)
    n_in = len(lc)
    if prob.shape != (n_in,):
        raise InvalidLightCurveError(f"{lc.label}: prob has shape {prob.shape}, the light curve {n_in} cadences")
    if kept is None:
        kept = np.flatnonzero(lc.good) if n_in else np.empty(0, np.int64)
    kept = np.asarray(kept, dtype=np.int64)
    time = lc.time[kept]
    flux = lc.flux[kept]
    if seg is None:
        if max_step is None:
            max_step = Preprocessing().gap_tolerance * float(np.median(np.diff(time))) if kept.size > 1 else 1.0
        seg = kernels.segment_ids(time, max_step) if kept.size else np.empty(0, np.int64)
    seg = np.asarray(seg, dtype=np.int64)
    if seg.shape != kept.shape:
        raise ValueError(f"seg has {seg.size} entries, kept has {kept.size}")
    err = lc.flux_err[kept] if lc.flux_err is not None else np.full(kept.size, np.nan)
    p = prob[kept]
    n = kept.size
    half = int(baseline_window) // 2
    cad_s = _cadence_s(lc, time, seg) if n > 1 else float(lc.meta.get("cadence_s") or float("nan"))

    meta: dict[str, Any] = {
        "tic": lc.meta.get("tic"), "sector": lc.meta.get("sector"), "model_id": model_id,
        "threshold": float(threshold), "min_cadences": int(min_cadences), "merge_gap": int(merge_gap),
        "baseline_window": int(2 * half + 1), "max_extend": int(max_extend), "edge_window": int(edge_window),
        "peak_sigma": float(peak_sigma), "min_snr": float(min_snr), "merge_connected": bool(merge_connected),
        "cadence_s": cad_s,
        "exposure_d": float(n * cad_s / 86400.0) if math.isfinite(cad_s) else float("nan"),
        "time_scale": "BTJD = BJD_TDB - 2457000 (TESS); else the input's time unit, days",
    }
    if lc.meta.get("path"):
        meta["file"] = os.path.basename(str(lc.meta["path"]))

    base_full = np.full(n_in, np.nan)
    # 1-2: candidate runs, merged
    above = p > threshold  # NaN -> False
    starts, stops = _runs(above, seg)
    groups = [g for g in _merge(starts, stops, seg, merge_gap) if above[g[0]:g[1] + 1].sum() >= min_cadences]
    if n == 0 or not groups:
        table = empty_table()
        table.meta.update(meta)
        if n:
            base_full[kept] = _baseline(flux, time, seg, np.zeros(n, bool), half)
        return (table, base_full) if return_baseline else table

    # 3: first baseline with the candidate cadences masked
    mask = np.zeros(n, bool)
    for a, b, _ in groups:
        mask[a:b + 1] = True
    base = _baseline(flux, time, seg, mask, half)

    # 4: extend while the flux stays above the baseline; never past the segment or a neighbour
    seg_first = np.r_[0, np.flatnonzero(seg[1:] != seg[:-1]) + 1]
    seg_last = np.r_[seg_first[1:] - 1, n - 1]
    first_of = seg_first[np.searchsorted(seg_first, np.arange(n), side="right") - 1]
    last_of = seg_last[np.searchsorted(seg_first, np.arange(n), side="right") - 1]
    above_base = flux > base
    intervals: list[tuple[int, int]] = []
    for k, (a, b, _) in enumerate(groups):
        lo_lim = max(first_of[a], a - max_extend, intervals[-1][1] + 1 if intervals else 0)
        hi_lim = min(last_of[b], b + max_extend, groups[k + 1][0] - 1 if k + 1 < len(groups) else n - 1)
        while a > lo_lim and above_base[a - 1]:
            a -= 1
        while b < hi_lim and above_base[b + 1]:
            b += 1
        intervals.append((a, b))
    if merge_connected:  # the flux never returned to the baseline between two groups: one complex flare
        merged: list[tuple[int, int]] = []
        for k, (a, b) in enumerate(intervals):
            if merged and a == merged[-1][1] + 1 and seg[a] == seg[merged[-1][1]] and above_base[a - 1] \
                    and merged[-1][1] == groups[k][0] - 1:
                merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        intervals = merged

    # 3 again: final baseline with the extended intervals masked
    mask[:] = False
    for a, b in intervals:
        mask[a:b + 1] = True
    base = _baseline(flux, time, seg, mask, half)
    rel = flux / base - 1.0
    sigma = {int(s): _robust_sigma(rel[(seg == s) & ~mask]) for s in np.unique(seg)}

    # 5-6: measurements and flags
    rows: dict[str, list] = {name: [] for name, _, _, _ in COLUMNS}
    for a, b in intervals:
        r = rel[a:b + 1]
        ipk = a + int(np.nanargmax(r)) if np.isfinite(r).any() else a + int(np.nanargmax(p[a:b + 1]))
        pw = p[a:b + 1]
        sig = sigma[int(seg[a])]
        min_h = peak_sigma * sig if math.isfinite(sig) else 0.0
        rows["tpeak"].append(time[ipk])
        rows["tstart"].append(time[a])
        rows["tstop"].append(time[b])
        rows["ipeak"].append(kept[ipk])
        rows["istart"].append(kept[a])
        rows["istop"].append(kept[b])
        rows["n_cadences"].append(b - a + 1)
        rows["n_above"].append(int(above[a:b + 1].sum()))
        rows["n_peaks"].append(count_peaks(r, min_h))
        rows["amplitude"].append(rel[ipk])
        rows["ed"].append(float(np.nansum(r)) * cad_s)
        rows["snr"].append(float(np.nansum(r)) / (sig * math.sqrt(b - a + 1)) if sig > 0 else np.nan)
        rows["ed_err"].append(float(np.sqrt(np.nansum((err[a:b + 1] / base[a:b + 1]) ** 2))) * cad_s)
        rows["prob_max"].append(float(np.nanmax(pw)) if np.isfinite(pw).any() else np.nan)
        rows["prob_mean"].append(float(np.nanmean(pw)) if np.isfinite(pw).any() else np.nan)
        gap_before = first_of[a] > 0 and a - first_of[a] < edge_window
        gap_after = last_of[b] < n - 1 and last_of[b] - b < edge_window
        rows["near_gap"].append(bool(gap_before or gap_after))
        rows["near_edge"].append(bool(a < edge_window or (n - 1) - b < edge_window))
    table = _build_table({k: np.asarray(v) for k, v in rows.items()})
    table = table[~(table["snr"] < min_snr)]  # NaN snr (no scatter estimate) is kept
    table.meta.update(meta)
    if return_baseline:
        base_full[kept] = base
        return table, base_full
    return table


# ----------------------------------------------------------------------------- with a model
def find_flares(source: Any, model: Any = None, *, threshold: float | None = None,
                min_cadences: int = DEFAULT_MIN_CADENCES, merge_gap: int = DEFAULT_MERGE_GAP,
                baseline_window: int = DEFAULT_BASELINE_WINDOW, max_extend: int = DEFAULT_MAX_EXTEND,
                edge_window: int = DEFAULT_EDGE_WINDOW, peak_sigma: float = DEFAULT_PEAK_SIGMA,
                min_snr: float = DEFAULT_MIN_SNR, merge_connected: bool = True,
                flux: Any = None, flux_err: Any = None, quality: Any = None, prob: Any = None,
                quality_bitmask: str | int = "default", flux_column: str = "pdcsap_flux",
                return_prob: bool = False) -> Table | tuple[Table, LightCurveData, np.ndarray]:
    """Find flares in a light curve: run the model and build the catalogue.

    Parameters
    ----------
    source : path, LightCurveData, lightkurve LightCurve, or time array
        With a time array, ``flux`` is required (``flux_err`` gives ED uncertainties).
    model : FlareModel, optional
        Default: the shipped ensemble (:meth:`FlareModel.default`).
    threshold : float, optional
        Probability threshold; default: the model's recommended threshold (its metadata; 0.5 for stella's
        models), or 0.5 without a model.
    min_cadences, merge_gap, baseline_window, max_extend, edge_window, peak_sigma
        See :func:`flares_from_probabilities` (defaults 1, 5, 121, 60, 100, 5), min_snr (5), merge_connected (True).
    flux, flux_err, quality : array-like, optional
        With a time array as ``source``.
    prob : array-like, optional
        Precomputed probabilities (input length): the model is not run (but its masking and gap rule
        are used if ``model`` is given).
    quality_bitmask, flux_column
        Passed to :func:`~flarelight.runtime.io.read_lightcurve` for a path.
    return_prob : bool
        Return ``(table, lc, prob)`` instead of the table (for plotting).

    Returns
    -------
    Table
        One row per flare; see :data:`COLUMNS`.
    """
    from .model import FlareModel
    from .preprocess import CadenceWarning, prepare

    lc = as_lightcurve(source, flux, flux_err, quality, quality_bitmask=quality_bitmask, flux_column=flux_column)
    if prob is None and model is None:
        model = FlareModel.default()
    if prob is None:
        prob = model.predict(lc)
    prob = np.asarray(prob, dtype=np.float64)
    kept = seg = None
    max_step = None
    model_id = ""
    if model is not None:
        model_id = model.model_id
        with warnings.catch_warnings():  # predict already warned about a cadence mismatch
            warnings.simplefilter("ignore", CadenceWarning)
            prep = prepare(lc, model.preprocessing)
        kept, seg, max_step = prep.kept, prep.seg, prep.max_step
    if threshold is None:
        threshold = model.threshold if model is not None else DEFAULT_THRESHOLD
    table = flares_from_probabilities(lc, prob, threshold=threshold, min_cadences=min_cadences, merge_gap=merge_gap,
                                      baseline_window=baseline_window, max_extend=max_extend, edge_window=edge_window,
                                      peak_sigma=peak_sigma, min_snr=min_snr, merge_connected=merge_connected,
                                      kept=kept, seg=seg, model_id=model_id)
    if max_step is not None:
        table.meta["max_step"] = float(max_step)
    if return_prob:
        return table, lc, prob
    return table


# ----------------------------------------------------------------------------- files
_FORMATS = {".ecsv": "ecsv", ".fits": "fits", ".fit": "fits", ".fts": "fits", ".csv": "csv"}


def catalogue_format(path: str | os.PathLike) -> str:
    """"ecsv", "fits" or "csv" from the file suffix (``.fits.gz`` counts as fits)."""
    name = Path(path).name.lower()
    for suf in (".fits.gz", ".fit.gz"):
        if name.endswith(suf):
            return "fits"
    fmt = _FORMATS.get(Path(name).suffix)
    if fmt is None:
        raise ValueError(f"{path}: unknown catalogue format; use .ecsv, .fits or .csv")
    return fmt


def write_catalogue(table: Table, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write a catalogue with its units and meta, format by suffix (.ecsv, .fits, .csv).

    ``.csv`` is written as ECSV with comma delimiters: a plain CSV (header row, then data) preceded by
    ``#`` comment lines holding units and meta, so ``pandas.read_csv(path, comment="#")`` reads it and
    :func:`read_catalogue` restores units and meta. Not atomic; wrap in
    :func:`flarelight.runtime.atomic.atomic_path` for that.
    """
    fmt = catalogue_format(path)
    if fmt == "fits":
        from astropy.io.fits.verify import VerifyWarning

        t = table.copy(copy_data=False)
        t.meta = {k: ("" if v is None else v) for k, v in table.meta.items()}
        t.meta["nonekeys"] = ",".join(k for k, v in table.meta.items() if v is None)
        with warnings.catch_warnings():  # long keys become HIERARCH cards, which is what we want
            warnings.simplefilter("ignore", VerifyWarning)
            t.write(path, format="fits", overwrite=overwrite)
    elif fmt == "csv":
        table.write(path, format="ascii.ecsv", delimiter=",", overwrite=overwrite)
    else:
        table.write(path, format="ascii.ecsv", overwrite=overwrite)


def read_catalogue(path: str | os.PathLike) -> Table:
    """Read a catalogue written by :func:`write_catalogue` (units and meta restored, meta keys lower case)."""
    fmt = catalogue_format(path)
    if fmt != "fits":
        return Table.read(path, format="ascii.ecsv")
    t = Table.read(path, format="fits")
    meta = {str(k).lower(): v for k, v in t.meta.items()}
    none_keys = str(meta.pop("nonekeys", "") or "").split(",")
    t.meta = {k: (None if k in none_keys else v) for k, v in meta.items()}
    for name, unit in _UNITS.items():
        if name in t.colnames and unit is not None and t[name].unit is None:
            t[name].unit = unit
    return t


__all__ = ["find_flares", "flares_from_probabilities", "empty_table", "count_peaks", "write_catalogue",
           "read_catalogue", "COLUMNS", "DEFAULT_THRESHOLD", "DEFAULT_MIN_CADENCES", "DEFAULT_MERGE_GAP",
           "DEFAULT_BASELINE_WINDOW", "DEFAULT_MAX_EXTEND", "DEFAULT_EDGE_WINDOW", "DEFAULT_PEAK_SIGMA"]
