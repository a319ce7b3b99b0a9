"""Flare catalogues: a scored light curve -> one table row per flare (the pure algorithm), and table I/O.

:func:`flares_from_scored` takes a :class:`~flarelight.runtime.scored.Scored` (a light curve prepared and
scored once) and returns a :class:`Catalogue`: the table and the baseline it was measured against. No
model runs here; :func:`flarelight.runtime.find.find_flares` runs one and calls this. Each step below is
one function.

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
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy import units as u
from astropy.table import Table

from . import kernels
from .io import LightCurveData
from .metadata import Preprocessing
from .scored import Scored

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


# ----------------------------------------------------------------------------- the steps
@dataclass(frozen=True)
class _Kept:
    """The kept cadences of a scored light curve, as the catalogue steps see them."""

    kept: np.ndarray        # input row of each kept cadence
    time: np.ndarray
    flux: np.ndarray        # the input's flux (not normalised): the baseline is in the input's units
    err: np.ndarray
    prob: np.ndarray
    seg: np.ndarray
    first_of: np.ndarray    # first kept position of each cadence's segment
    last_of: np.ndarray     # last kept position of each cadence's segment

    @classmethod
    def of(cls, scored: Scored) -> "_Kept":
        lc, prep = scored.lc, scored.prepared
        kept, seg = prep.kept, prep.seg
        n = kept.size
        seg_first = np.r_[0, np.flatnonzero(seg[1:] != seg[:-1]) + 1] if n else np.empty(0, np.int64)
        seg_last = np.r_[seg_first[1:] - 1, n - 1] if n else np.empty(0, np.int64)
        which = np.searchsorted(seg_first, np.arange(n), side="right") - 1
        err = lc.flux_err[kept] if lc.flux_err is not None else np.full(n, np.nan)
        return cls(kept=kept, time=lc.time[kept], flux=lc.flux[kept], err=err, prob=scored.prob[kept], seg=seg,
                   first_of=seg_first[which], last_of=seg_last[which])

    @property
    def n(self) -> int:
        return int(self.kept.size)


def candidate_groups(prob: np.ndarray, seg: np.ndarray, threshold: float, merge_gap: int,
                     min_cadences: int) -> list[tuple[int, int]]:
    """Steps 1-2: runs of ``prob > threshold`` inside a segment, merged across at most ``merge_gap`` cadences,
    kept when at least ``min_cadences`` cadences are above threshold: ``[(first, last), ...]`` (kept positions)."""
    above = prob > threshold  # NaN -> False
    starts, stops = _runs(above, seg)
    return [(a, b) for a, b, _ in _merge(starts, stops, seg, merge_gap) if above[a:b + 1].sum() >= min_cadences]


def extend_groups(groups: list[tuple[int, int]], above_base: np.ndarray, k: _Kept,
                  max_extend: int) -> list[tuple[int, int]]:
    """Step 4: grow each group while the flux stays above the baseline, at most ``max_extend`` cadences each way,
    never past its segment or into a neighbour (rows never overlap)."""
    intervals: list[tuple[int, int]] = []
    for j, (a, b) in enumerate(groups):
        lo_lim = max(k.first_of[a], a - max_extend, intervals[-1][1] + 1 if intervals else 0)
        hi_lim = min(k.last_of[b], b + max_extend, groups[j + 1][0] - 1 if j + 1 < len(groups) else k.n - 1)
        while a > lo_lim and above_base[a - 1]:
            a -= 1
        while b < hi_lim and above_base[b + 1]:
            b += 1
        intervals.append((a, b))
    return intervals


def join_connected(intervals: list[tuple[int, int]], groups: list[tuple[int, int]], above_base: np.ndarray,
                   seg: np.ndarray) -> list[tuple[int, int]]:
    """Step 4b: neighbours between which the flux never returned to the baseline are one complex flare."""
    joined: list[tuple[int, int]] = []
    for (a, b), (g_first, _) in zip(intervals, groups):
        if joined and a == joined[-1][1] + 1 and seg[a] == seg[joined[-1][1]] and above_base[a - 1] \
                and joined[-1][1] == g_first - 1:
            joined[-1] = (joined[-1][0], b)
        else:
            joined.append((a, b))
    return joined


def interval_mask(intervals: list[tuple[int, int]], n: int) -> np.ndarray:
    """True on the cadences of ``intervals`` (inclusive pairs of positions)."""
    mask = np.zeros(n, bool)
    for a, b in intervals:
        mask[a:b + 1] = True
    return mask


def measure(intervals: list[tuple[int, int]], k: _Kept, base: np.ndarray, above: np.ndarray, cad_s: float,
            peak_sigma: float, edge_window: int) -> dict[str, np.ndarray]:
    """Steps 5-6: one row of measurements and flags per interval (see the module docstring)."""
    rel = k.flux / base - 1.0
    masked = interval_mask(intervals, k.n)
    sigma = {int(s): _robust_sigma(rel[(k.seg == s) & ~masked]) for s in np.unique(k.seg)}
    rows: dict[str, list] = {name: [] for name, _, _, _ in COLUMNS}
    for a, b in intervals:
        r = rel[a:b + 1]
        pw = k.prob[a:b + 1]
        ipk = a + int(np.nanargmax(r)) if np.isfinite(r).any() else a + int(np.nanargmax(pw))
        sig = sigma[int(k.seg[a])]
        min_h = peak_sigma * sig if math.isfinite(sig) else 0.0
        ed_sum = float(np.nansum(r))
        rows["tpeak"].append(k.time[ipk])
        rows["tstart"].append(k.time[a])
        rows["tstop"].append(k.time[b])
        rows["ipeak"].append(k.kept[ipk])
        rows["istart"].append(k.kept[a])
        rows["istop"].append(k.kept[b])
        rows["n_cadences"].append(b - a + 1)
        rows["n_above"].append(int(above[a:b + 1].sum()))
        rows["n_peaks"].append(count_peaks(r, min_h))
        rows["amplitude"].append(rel[ipk])
        rows["ed"].append(ed_sum * cad_s)
        rows["snr"].append(ed_sum / (sig * math.sqrt(b - a + 1)) if sig > 0 else np.nan)
        rows["ed_err"].append(float(np.sqrt(np.nansum((k.err[a:b + 1] / base[a:b + 1]) ** 2))) * cad_s)
        rows["prob_max"].append(float(np.nanmax(pw)) if np.isfinite(pw).any() else np.nan)
        rows["prob_mean"].append(float(np.nanmean(pw)) if np.isfinite(pw).any() else np.nan)
        gap_before = k.first_of[a] > 0 and a - k.first_of[a] < edge_window
        gap_after = k.last_of[b] < k.n - 1 and k.last_of[b] - b < edge_window
        rows["near_gap"].append(bool(gap_before or gap_after))
        rows["near_edge"].append(bool(a < edge_window or (k.n - 1) - b < edge_window))
    return {name: np.asarray(rows[name], dtype=dtype) for name, dtype, _, _ in COLUMNS}


# ----------------------------------------------------------------------------- the pure algorithm
@dataclass(frozen=True)
class Catalogue:
    """A flare catalogue with what it was measured from.

    Attributes
    ----------
    table : astropy Table
        One row per flare (:data:`COLUMNS`).
    scored : Scored
        The scored light curve.
    baseline : ndarray of float64, shape (len(lc),)
        The baseline flux the rows were measured against (input units); NaN on rows not kept.
    """

    table: Table
    scored: Scored
    baseline: np.ndarray


def flares_from_scored(scored: Scored, *, threshold: float | None = None,
                       min_cadences: int = DEFAULT_MIN_CADENCES, merge_gap: int = DEFAULT_MERGE_GAP,
                       baseline_window: int = DEFAULT_BASELINE_WINDOW, max_extend: int = DEFAULT_MAX_EXTEND,
                       edge_window: int = DEFAULT_EDGE_WINDOW, peak_sigma: float = DEFAULT_PEAK_SIGMA,
                       min_snr: float = DEFAULT_MIN_SNR, merge_connected: bool = True) -> Catalogue:
    """Turn a scored light curve into a flare catalogue (one row per flare), in the space of the cadences
    the model kept. See the module docstring for the steps and :func:`flarelight.runtime.find.find_flares`
    for the parameters; ``threshold`` defaults to ``scored.threshold``.
    """
    threshold = scored.threshold if threshold is None else float(threshold)
    _check_params(threshold, min_cadences, merge_gap, baseline_window, max_extend, edge_window, peak_sigma)
    if math.isnan(min_snr):
        raise ValueError("min_snr is NaN: give a number (-inf keeps every candidate)")
    lc = scored.lc
    k = _Kept.of(scored)
    half = int(baseline_window) // 2
    cad_s = _cadence_s(lc, k.time, k.seg)
    meta: dict[str, Any] = {
        "tic": lc.meta.get("tic"), "sector": lc.meta.get("sector"), "model_id": scored.model_id,
        "threshold": threshold, "min_cadences": int(min_cadences), "merge_gap": int(merge_gap),
        "baseline_window": int(2 * half + 1), "max_extend": int(max_extend), "edge_window": int(edge_window),
        "peak_sigma": float(peak_sigma), "min_snr": float(min_snr), "merge_connected": bool(merge_connected),
        "cadence_s": cad_s,
        "exposure_d": float(k.n * cad_s / 86400.0) if math.isfinite(cad_s) else float("nan"),
        "max_step": float(scored.prepared.max_step),
        "time_scale": "BTJD = BJD_TDB - 2457000 (TESS); else the input's time unit, days",
    }
    if lc.meta.get("path"):
        meta["file"] = os.path.basename(str(lc.meta["path"]))

    above = k.prob > threshold
    groups = candidate_groups(k.prob, k.seg, threshold, merge_gap, min_cadences)          # steps 1-2
    base = _baseline(k.flux, k.time, k.seg, interval_mask(groups, k.n), half)            # step 3
    above_base = k.flux > base
    intervals = extend_groups(groups, above_base, k, max_extend)                          # step 4
    if merge_connected:
        intervals = join_connected(intervals, groups, above_base, k.seg)
    if intervals:
        base = _baseline(k.flux, k.time, k.seg, interval_mask(intervals, k.n), half)      # step 3 again
    table = _build_table(measure(intervals, k, base, above, cad_s, peak_sigma, edge_window))  # steps 5-6
    table = table[~(table["snr"] < min_snr)]  # step 7 (NaN snr: no scatter estimate, kept)
    table.meta.update(meta)
    baseline = np.full(len(lc), np.nan)
    baseline[k.kept] = base
    return Catalogue(table=table, scored=scored, baseline=baseline)


def flares_from_probabilities(lc: LightCurveData, prob: np.ndarray, *, pre: Preprocessing | None = None,
                              model_id: str = "", threshold: float = DEFAULT_THRESHOLD, **params: Any) -> Table:
    """:func:`flares_from_scored` for probabilities computed elsewhere; returns the table.

    The cadences used and the segments follow ``pre`` (default: the reader's mask and the default gap rule;
    pass a model's ``preprocessing`` to use its quality and gap rules).
    """
    scored = Scored.from_probabilities(lc, prob, pre, model_id=model_id, threshold=threshold)
    return flares_from_scored(scored, **params).table


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


__all__ = ["Catalogue", "flares_from_scored", "flares_from_probabilities", "empty_table", "count_peaks", "write_catalogue",
           "read_catalogue", "COLUMNS", "DEFAULT_THRESHOLD", "DEFAULT_MIN_CADENCES", "DEFAULT_MERGE_GAP",
           "DEFAULT_BASELINE_WINDOW", "DEFAULT_MAX_EXTEND", "DEFAULT_EDGE_WINDOW", "DEFAULT_PEAK_SIGMA"]
