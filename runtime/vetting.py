"""Vetting: flags that mark flare candidates a flare astronomer would reject, as columns (never silent drops).

Every flag is decided per flare group (all components of a group share it); ``vetted`` = no flag set.

``low_snr``
    The group's ``snr`` is below ``min_snr``; a candidate the model is sure of (``prob_max >= CONFIDENT_PROB``)
    is held to ``CONFIDENT_SNR_FRACTION x min_snr`` only, so a borderline SNR does not drop it.
``periodic``
    Candidates cluster in phase at the light curve's dominant period (found once by the catalogue with
    :func:`flarelight.runtime.periodic.dominant_period`: astropy's Lomb-Scargle periodogram of the flux with the
    candidates masked): at least
    ``PERIODIC_MIN_OTHERS`` other groups, in other cycles, lie within ``PHASE_WIDTH`` in phase, and that many or
    more has a Poisson probability below ``PERIODIC_P`` for uniformly random phases. Flares are not periodic;
    eclipses, pulsations and their humps are. Also periodic: a group the light curve's own periodic signal explains.
    The flux folded at the dominant period (and at twice it: an eclipsing binary's periodogram often peaks at half
    its orbit; each refined to its sharpest fold: :func:`flarelight.runtime.periodic.fold_periods`) over at least
    ``periodic.FOLD_MIN_CYCLES`` cycles gives a median profile (bins about a cadence wide); the group's excess over
    that profile (shifted by a straight line fitted to the difference on either side of the group), summed over its
    cadences above 2 local sigmas, is below ``FOLD_FRACTION`` of its excess over the baseline summed alike and not
    significant (within ``FOLD_SIGMA`` local sigmas x the square root of their number: on a steep eclipse edge the
    folded profile is only as sharp as the period is precise, so a flare there keeps a significant excess). No
    verdict where the shifted fold misses the flux on either side by more than ``FOLD_MATCH`` local sigmas
    (point-to-point scatter): spots evolve between rotations. A flare does not come back at the same phase in other
    cycles; an eclipse's wiggles and a pulsation's hump do.
``gap_edge``
    The excess begins at a gap or a segment start with no observed rise: the group's first cadence above
    2 local sigmas is the first cadence of a segment (after a gap of the model's gap rule, or the light curve's
    first), it already holds at least ``GAP_EDGE_FRACTION`` of the group's peak excess, and none of the last three
    cadences before the gap (if it is shorter than ``GAP_RISE_MAX`` days) is above 3 sigma (steps, ramps at a
    sector start), and the excess does not rise again within the group (a step or a ramp only declines: a flare
    complex whose first peak fell in the gap shows its next flare's rise, the three-cadence running median
    climbing by ``GAP_EDGE_FRACTION`` of the peak excess and ``RISE_SIGMA`` sigma within ``RISE_CADENCES``
    cadences). Holes shorter than a gap are not enough: SPOC flags many flare peaks (impulsive outliers),
    and a flare whose peak is masked also shows "no rise".
``single_cadence``
    Only the peak cadence is elevated: no other cadence within 2 of it exceeds ``SINGLE_FRACTION`` of the peak
    excess and 1.5 local sigmas (a cosmic ray or a bad cadence; a real flare's decay spreads its light over
    the next cadence).
``symmetric``
    The group's widest component is at least ``SYMMETRIC_MIN_FWHM`` cadences wide (shorter ones cannot show a
    shape), its rise is observed (3 cadences of its segment within 2 widest FWHM before its brightest peak), and a
    single Gaussian bump (three parameters) fits its window better than the flare fit (all its components), by
    more than ``SYMMETRIC_DELTA_BIC`` in the BIC (``RSS / sigma^2 + p ln n``, p parameters): a slow symmetric
    brightening (pointing jitter, pulsation) that flare templates fit only with several components, not a
    flare's fast rise and slower decay. A fit of several components whose sum stays above half its maximum more
    than ``SYMMETRIC_MAX_SKEW`` times longer after its peak than before is a complex flare's shape, never flagged.
``sap_disagrees``
    The file has SAP_FLUX (and the flux is not SAP itself) and SAP shows no matching excess: SAP scaled to the
    flux on the ``SIDE_CADENCES`` usable cadences nearest either side (within ``SIDE_MAX`` days), less the flux's
    baseline and a straight line fitted to that difference on the sides (through one side when only one has them
    and it spans at least the group, else a constant), measured with the group's fitted shape as a matched filter,
    is below ``SAP_FRACTION`` of the flux less its baseline and its own side line, measured alike, and the
    difference exceeds ``SAP_SIGMA`` standard errors.
``centroid_jump``
    The file has MOM_CENTR1/2 and either centroid steps at the event: the difference of its medians over the
    ``SIDE_CADENCES`` usable cadences nearest after and before the group exceeds ``CENTROID_Z`` standard errors and
    ``CENTROID_CONTROL`` times the median of the same difference at control positions of the light curve, taken
    across the same number of usable cadences as the group spans, and ``CENTROID_LOCAL`` times the same difference
    across the equally long stretches just before and just after the group's: a pointing drift (the settling after
    an orbit starts, say) changes the centroids across any long flare, a jump only at the event. The jump must also
    be where the excess begins: its cadence (the largest difference of the medians of ``JUMP_SIDE`` finite
    centroids after and before it, within the group) lies no later than ``JUMP_SLACK`` cadences after the group's
    peak (a pointing jump makes its own flux step; one during a flare's decay did not make the flare). And the flux
    must step with it: the difference of the flux's medians over the same cadences after and before the group is at
    least ``CENTROID_FLUX_STEP`` of the group's peak excess. A candidate made by a pointing jump is the jump's flux
    step; a flare returns to the star's level, so a flare that merely coincides with a jump (a momentum dump during
    a superflare) keeps its row.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import flarefit
from .baseline import ptp_sigma
from .io import LightCurveData
from .periodic import PhaseFold

#: (name, description) of every flag column, in table order
FLAGS: list[tuple[str, str]] = [
    ("low_snr", "snr below min_snr (a prob_max >= 0.95 candidate: below 0.6 x min_snr)"),
    ("periodic", "candidates cluster in phase at the light curve's dominant (Lomb-Scargle) period, or the folded "
                 "light curve holds the excess"),
    ("gap_edge", "the excess begins at a gap or segment start with no observed rise"),
    ("single_cadence", "only the peak cadence is elevated"),
    ("symmetric", "a symmetric bump fits better than the flare fit (no fast rise)"),
    ("sap_disagrees", "no matching excess in SAP_FLUX"),
    ("centroid_jump", "a MOM_CENTR1/2 jump where the excess begins"),
]

CONFIDENT_PROB = 0.95
CONFIDENT_SNR_FRACTION = 0.6
PHASE_WIDTH = 0.05
PERIODIC_MIN_OTHERS = 2
PERIODIC_P = 1e-3
FOLD_FRACTION = 0.5
FOLD_SIGMA = 5.0
FOLD_MATCH = 1.5
GAP_EDGE_FRACTION = 0.5
GAP_RISE_MAX = 0.1
RISE_CADENCES = 5
RISE_SIGMA = 5.0
SINGLE_FRACTION = 0.2
SAP_FRACTION = 0.3
SAP_SIGMA = 3.0
SYMMETRIC_DELTA_BIC = 10.0
SYMMETRIC_MIN_FWHM = 5.0
SYMMETRIC_MAX_SKEW = 1.5
SIDE_CADENCES = 30
SIDE_MAX = 0.3
CENTROID_Z = 8.0
CENTROID_CONTROL = 5.0
CENTROID_LOCAL = 3.0
CENTROID_FLUX_STEP = 0.25
JUMP_SIDE = 10
JUMP_SLACK = 5


def poisson_sf(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    term = math.exp(-lam)
    cdf = term
    for m in range(1, k):
        term *= lam / m
        cdf += term
    return max(0.0, 1.0 - cdf)


def periodic_flags(tpeaks: np.ndarray, period: float) -> np.ndarray:
    """True for the events whose phase at ``period`` is shared by improbably many others (module docstring)."""
    tpeaks = np.asarray(tpeaks, np.float64)
    n = tpeaks.size
    out = np.zeros(n, bool)
    if n < PERIODIC_MIN_OTHERS + 1 or not (np.isfinite(period) and period > 0):
        return out
    phase = np.mod(tpeaks / period, 1.0)
    cycle = np.floor(tpeaks / period)
    lam_per = 2.0 * PHASE_WIDTH
    for i in range(n):
        d = np.abs(phase - phase[i])
        d = np.minimum(d, 1.0 - d)
        others = (d < PHASE_WIDTH) & (cycle != cycle[i])
        c = int(others.sum())
        lam = (n - 1) * lam_per
        if c >= PERIODIC_MIN_OTHERS and poisson_sf(c, lam) < PERIODIC_P:
            out[i] = True
    return out


def fold_explains(fold: PhaseFold, y: np.ndarray, rel: np.ndarray, usable: np.ndarray, time: np.ndarray, lo: int,
                  hi: int, sigma: float, bfirst: int, blast: int) -> bool:
    """Does ``fold`` explain the group [lo, hi] (module docstring, ``periodic``)?"""
    idx = np.arange(lo, hi + 1)
    sel = idx[np.isfinite(y[idx]) & np.isfinite(rel[idx]) & (y[idx] > 2.0 * sigma)]
    if sel.size == 0:
        return False
    b, a = _sides(lo, hi, usable, time, bfirst, blast)
    sides = np.r_[b, a]
    if b.size < 5 or a.size < 5:
        return False
    diff = rel[sides] - fold.at(time[sides])
    fold_sel = fold.at(time[sel])
    if not (np.isfinite(diff).all() and np.isfinite(fold_sel).all()):
        return False
    tm = 0.5 * (time[lo] + time[hi])
    line = np.polyfit(time[sides] - tm, diff, 1)  # this cycle's level and slope against the fold
    if ptp_sigma(diff - np.polyval(line, time[sides] - tm)) > FOLD_MATCH * sigma:
        return False  # the fold does not describe this cycle (spots evolve, the period drifts): no verdict
    over_base = float(np.sum(y[sel]))
    over_fold = float(np.sum(rel[sel] - fold_sel - np.polyval(line, time[sel] - tm)))
    return over_base > 0 and over_fold < FOLD_FRACTION * over_base \
        and abs(over_fold) < FOLD_SIGMA * sigma * math.sqrt(sel.size)


def gap_edge_flag(y: np.ndarray, time: np.ndarray, seg: np.ndarray, lo: int, hi: int, sigma: float,
                  cad_d: float) -> bool:
    """The excess of [lo, hi] begins after missing cadences (or at the start) with no observed rise."""
    yy = y[lo:hi + 1]
    if not np.isfinite(yy).any():
        return False
    peak = float(np.nanmax(yy))
    elevated = np.flatnonzero(yy > 2.0 * sigma)
    f = lo + int(elevated[0]) if elevated.size else lo + int(np.nanargmax(yy))
    after_gap = f == 0 or seg[f] != seg[f - 1]
    if not (after_gap and y[f] >= GAP_EDGE_FRACTION * peak):
        return False
    # a rise seen just before the gap (the last three cadences before it, across a gap shorter than GAP_RISE_MAX,
    # above 3 sigma) is a rise
    before = np.arange(max(f - 3, 0), f)
    before = before[(time[f] - time[before]) < GAP_RISE_MAX]
    if np.any(y[before] > 3.0 * sigma):
        return False
    return not rises_later(y[f:hi + 1], sigma, GAP_EDGE_FRACTION * peak)


def rises_later(y: np.ndarray, sigma: float, min_rise: float) -> bool:
    """Does ``y`` rise somewhere, a flare's fast rise: its three-cadence running median climbs by at least
    ``min_rise`` and ``RISE_SIGMA`` sigma within ``RISE_CADENCES`` cadences (NaN cadences skipped)?"""
    y = y[np.isfinite(y)]
    if y.size < 4:
        return False
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(y, 3), axis=1)
    need = max(min_rise, RISE_SIGMA * sigma)
    for lag in range(1, min(RISE_CADENCES, smooth.size - 1) + 1):
        if np.any(smooth[lag:] - smooth[:-lag] >= need):
            return True
    return False


def single_cadence_flag(y: np.ndarray, lo: int, hi: int, sigma: float) -> bool:
    """Only the peak cadence of [lo, hi] is elevated (module docstring)."""
    yy = y[lo:hi + 1]
    if not np.isfinite(yy).any():
        return False
    p = lo + int(np.nanargmax(yy))
    near = np.r_[y[max(p - 2, 0):p], y[p + 1:p + 3]]
    cut = max(SINGLE_FRACTION * y[p], 1.5 * sigma)
    return bool(not np.any(near > cut))


def _sides(lo: int, hi: int, usable: np.ndarray, time: np.ndarray, bfirst: int,
           blast: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``SIDE_CADENCES`` usable cadences nearest before ``lo`` and after ``hi`` (same block, within
    ``SIDE_MAX`` days): the flare's neighbourhood without the flare or its neighbours' masks."""
    before = bfirst + np.flatnonzero(usable[bfirst:lo])
    before = before[time[before] >= time[lo] - SIDE_MAX][-SIDE_CADENCES:]
    after = hi + 1 + np.flatnonzero(usable[hi + 1:blast + 1])
    after = after[time[after] <= time[hi] + SIDE_MAX][:SIDE_CADENCES]
    return before, after


def sap_flag(sap: np.ndarray, flux: np.ndarray, base: np.ndarray, y: np.ndarray, time: np.ndarray, lo: int, hi: int,
             usable: np.ndarray, bfirst: int, blast: int, shape: np.ndarray | None = None) -> bool:
    """No matching excess in SAP flux over the group (module docstring).

    Both excesses (flux units) are measured with the group's fitted shape ``shape`` (its model on [lo, hi]; the
    clipped excess itself without a fit) as a matched filter: ``a = sum(m x excess) / sum(m^2)``.
    """
    yy = y[lo:hi + 1]
    m = np.clip(np.nan_to_num(shape if shape is not None else yy), 0.0, None)
    if not m.any():
        return False
    before, after = _sides(lo, hi, usable & np.isfinite(sap), time, bfirst, blast)
    side = np.r_[before, after]
    idx = np.arange(lo, hi + 1)
    ok = np.isfinite(sap[idx]) & np.isfinite(flux[idx])
    if side.size < 10 or not ok.any():
        return False
    idx, m = idx[ok], m[ok]
    # both fluxes in the flux's units over the same baseline (SAP scaled to the flux on the sides: the star's
    # rotation is in both, curvature and all, and the baseline continues it past a segment end), each less a
    # straight line through its own residual on both sides (what PDC removed from SAP; the level left on the sides
    # of a group inside a bigger flare's decay); through one side only when it spans at least the group, else a
    # constant
    scale = float(np.median(flux[side]) / np.median(sap[side])) if np.median(sap[side]) > 0 else float("nan")
    if not np.isfinite(scale):
        return False
    one = before if before.size >= after.size else after
    deg = 1 if (before.size >= 5 and after.size >= 5) or (
        one.size >= 10 and time[one[-1]] - time[one[0]] >= time[hi] - time[lo]) else 0
    w2 = float(np.sum(m * m))
    if w2 <= 0:
        return False
    amp, scatter = [], []
    for series in (flux - base, scale * sap - base):
        coef = np.polyfit(time[side] - time[lo], series[side], deg)
        amp.append(float(np.sum(m * (series[idx] - np.polyval(coef, time[idx] - time[lo])))) / w2)
        scatter.append(ptp_sigma(series[side] - np.polyval(coef, time[side] - time[lo])))
    (a_pdc, a_sap), (s_pdc, s_sap) = amp, scatter
    if not (a_pdc > 0 and np.isfinite(s_sap) and np.isfinite(s_pdc)):
        return False
    noise = math.hypot(s_sap, s_pdc) / math.sqrt(w2)
    return bool(a_sap < SAP_FRACTION * a_pdc and a_pdc - a_sap > SAP_SIGMA * noise)


def symmetric_flag(time: np.ndarray, y: np.ndarray, seg: np.ndarray, g: dict[str, Any], sigma: float,
                   cad_d: float) -> bool:
    """A single symmetric (Gaussian) bump describes the window of a group whose widest component is at least
    ``SYMMETRIC_MIN_FWHM`` cadences wide better than its flare fit (all its components) by the BIC (more than
    ``SYMMETRIC_DELTA_BIC``): a slow, symmetric brightening, not a flare's fast rise and slow decay. (A slow bump
    fitted with flare templates needs several of them; a complex flare's peaks and fast rises a Gaussian cannot
    follow.)"""
    fit = g.get("fit")
    if fit is None or float(np.max(fit.params[:, 1])) < SYMMETRIC_MIN_FWHM * cad_d:
        return False
    ws, we = g["ws"], g["we"]
    tp, w = float(fit.params[int(np.argmax(fit.params[:, 2])), 0]), float(np.max(fit.params[:, 1]))
    ip = int(np.clip(np.searchsorted(time, tp), ws, we))
    rise = np.arange(ws, ip)
    rise = rise[(seg[rise] == seg[ip]) & (time[rise] >= tp - 2.0 * w)]
    if rise.size < 3:  # the rise is not observed (a gap, the light curve's start): no shape to judge
        return False
    tt, yy = time[ws:we + 1], y[ws:we + 1]
    ok = np.isfinite(yy)
    if fit.k > 1 and fit.n == int(ok.sum()) and _decay_over_rise(tt[ok], fit.model, cad_d) > SYMMETRIC_MAX_SKEW:
        return False  # several components making a fast rise and a slower decay: a complex flare's shape
    return bool(flarefit.gaussian_preference(tt[ok], yy[ok], fit, sigma) > SYMMETRIC_DELTA_BIC)


def _decay_over_rise(t: np.ndarray, model: np.ndarray, cad_d: float) -> float:
    """Time the summed model ``model`` stays above half its maximum after its peak over the time before it (the
    rise at least one cadence)."""
    ip = int(np.argmax(model))
    above = model >= 0.5 * model[ip]
    first = ip
    while first > 0 and above[first - 1]:
        first -= 1
    last = ip
    while last < model.size - 1 and above[last + 1]:
        last += 1
    return float((t[last] - t[ip]) / max(t[ip] - t[first], cad_d))


def _step(c: np.ndarray, lo: int, hi: int, usable: np.ndarray, time: np.ndarray, bfirst: int,
          blast: int) -> tuple[float, float]:
    """(median after - median before, its standard error) of series ``c`` around [lo, hi]."""
    b, a = _sides(lo, hi, usable & np.isfinite(c), time, bfirst, blast)
    if b.size < 5 or a.size < 5:
        return float("nan"), float("nan")
    s = ptp_sigma(np.r_[c[b], c[a]])
    return float(np.median(c[a]) - np.median(c[b])), 1.2533 * s * math.sqrt(1.0 / b.size + 1.0 / a.size)


def centroid_flag(centr: list[np.ndarray], lo: int, hi: int, usable: np.ndarray, time: np.ndarray, bfirst: int,
                  blast: int, control: dict[tuple[int, int], float] | None = None, peak: int | None = None,
                  rel: np.ndarray | None = None, excess: float | None = None) -> bool:
    """A step of either centroid at the group (module docstring) whose group peaks at ``peak`` (default ``lo``);
    ``control`` caches :func:`control_steps` by (centroid, span bucket). With the relative flux ``rel`` and the
    group's peak ``excess``, the flux must step too (at least ``CENTROID_FLUX_STEP x excess``)."""
    peak = lo if peak is None else peak
    if rel is not None and excess is not None and excess > 0:
        d_flux, _ = _step(rel, lo, hi, usable, time, bfirst, blast)
        if not (np.isfinite(d_flux) and abs(d_flux) >= CENTROID_FLUX_STEP * excess):
            return False
    control = {} if control is None else control
    span = hi - lo + 1  # the group's own cadences are masked (not usable): count them all
    bucket = int(round(2.0 ** (round(2.0 * math.log2(max(span, 1))) / 2.0)))  # spans within ~19% share a control
    for ci, c in enumerate(centr):
        if (ci, bucket) not in control:
            control[ci, bucket] = control_steps(c, usable, bucket)
        d, se = _step(c, lo, hi, usable, time, bfirst, blast)
        if not (np.isfinite(d) and se > 0 and abs(d) > CENTROID_Z * se
                and abs(d) > CENTROID_CONTROL * control[ci, bucket]):
            continue
        if abs(d) > CENTROID_LOCAL * local_steps(c, usable, lo, hi) and jump_cadence(c, lo, hi) <= peak + JUMP_SLACK:
            return True
    return False


def jump_cadence(c: np.ndarray, lo: int, hi: int) -> int:
    """The cadence in [lo, hi + 1] where series ``c`` jumps: the largest |median of the ``JUMP_SIDE`` finite values
    from it on - median of the ``JUMP_SIDE`` before it|."""
    fin = np.flatnonzero(np.isfinite(c))
    best, where = -1.0, lo
    for k in range(lo, hi + 2):
        j = int(np.searchsorted(fin, k))
        if j < JUMP_SIDE or j + JUMP_SIDE > fin.size:
            continue
        step = abs(float(np.median(c[fin[j:j + JUMP_SIDE]]) - np.median(c[fin[j - JUMP_SIDE:j]])))
        if step > best:
            best, where = step, k
    return where


def local_steps(c: np.ndarray, usable: np.ndarray, lo: int, hi: int) -> float:
    """The larger |step| of series ``c`` across stretches of ``hi - lo + 1`` usable cadences just before and just
    after the group [lo, hi] (each measured like the group's step, medians of ``SIDE_CADENCES`` usable cadences on
    either side); 0 where neither fits in the light curve."""
    ok = usable & np.isfinite(c)
    cu = c[ok]
    ul = int(np.count_nonzero(ok[:lo]))  # cu[:ul] lie before the group, cu[uh:] after it
    uh = int(np.count_nonzero(ok[:hi + 1]))
    span, side = hi - lo + 1, SIDE_CADENCES
    out = 0.0
    for a in (ul - side - span, uh + side):  # the neighbouring stretch [a, a + span)
        if a - side >= 0 and a + span + side <= cu.size:
            out = max(out, abs(float(np.median(cu[a + span:a + span + side]) - np.median(cu[a - side:a]))))
    return out


def control_steps(c: np.ndarray, usable: np.ndarray, span: int, n_pos: int = 40) -> float:
    """Median |step| of series ``c`` at ``n_pos`` positions spread over the light curve: the difference of the
    medians of ``SIDE_CADENCES`` usable cadences after and before ``span`` usable cadences (the typical change of
    ``c`` across an event that long)."""
    cu = c[usable & np.isfinite(c)]
    n = cu.size - 2 * SIDE_CADENCES - span
    if n < n_pos:
        return float("nan")
    start = np.linspace(0, n - 1, n_pos).astype(np.int64)
    side = np.arange(SIDE_CADENCES)
    before = np.median(cu[start[:, None] + side], axis=1)
    after = np.median(cu[(start + SIDE_CADENCES + span)[:, None] + side], axis=1)
    return float(np.median(np.abs(after - before)))


def vet(info: list[dict[str, Any]], time: np.ndarray, y: np.ndarray, usable: np.ndarray, seg: np.ndarray,
        kept: np.ndarray, lc: LightCurveData, base: np.ndarray, cad_d: float, *, min_snr: float,
        block_first: np.ndarray, block_last: np.ndarray, period: float = math.nan, power: float = math.nan,
        fold_periods: tuple[float, ...] = ()) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every flag of every row (rows of a group share their group's flags) and meta for the table.

    Parameters
    ----------
    info : list of dict
        Per group: ``rows`` (row indices), ``lo``/``hi`` (kept positions of its interval), ``sigma``, ``snr``,
        ``tpeak``, ``prob_max``.
    time, y, usable, seg, kept, base : ndarray
        Kept cadences: time, relative excess, not masked, segment, input row, baseline flux.
    lc : LightCurveData
        For ``aux`` (SAP_FLUX, MOM_CENTR1/2) and the flux column.
    period, power : float
        The light curve's dominant period (days) and its Lomb-Scargle power
        (:func:`flarelight.runtime.periodic.dominant_period`; NaN: none).
    fold_periods : tuple of float
        The periods to fold at (:func:`flarelight.runtime.periodic.fold_periods`).
    """
    n_rows = sum(len(g["rows"]) for g in info)
    flags = {name: np.zeros(n_rows, bool) for name, _ in FLAGS}
    meta: dict[str, Any] = {}
    if not info:
        return flags, meta
    flux = lc.flux[kept]
    aux = getattr(lc, "aux", None) or {}
    flux_column = str(lc.meta.get("flux_column", "")).lower()
    sap = aux.get("sap_flux")
    sap = sap[kept] if sap is not None and flux_column != "sap_flux" and np.isfinite(sap[kept]).any() else None
    centr = [aux[c][kept] for c in ("mom_centr1", "mom_centr2") if c in aux and np.isfinite(aux[c][kept]).any()]
    control: dict[tuple[int, int], float] = {}
    rel = flux / np.nanmedian(flux)
    folds = [PhaseFold(time, rel, usable, p, cad_d) for p in fold_periods if np.isfinite(p)]
    folds = [f for f in folds if f.ok]
    meta.update(ls_period_d=period if np.isfinite(period) else None,  # None, not NaN: survives every format
                ls_power=power if np.isfinite(power) else None)
    periodic = periodic_flags(np.array([g["tpeak"] for g in info]), period)
    for gi, g in enumerate(info):
        lo, hi, sig = g["lo"], g["hi"], g["sigma"]
        bf, bl = int(block_first[lo]), int(block_last[hi])
        snr = g["snr"]
        need = min_snr * (CONFIDENT_SNR_FRACTION if g["prob_max"] >= CONFIDENT_PROB else 1.0)
        values = {
            "low_snr": bool(np.isfinite(snr) and snr < need),
            "periodic": bool(periodic[gi])
            or any(fold_explains(f, y, rel, usable, time, lo, hi, sig, bf, bl) for f in folds),
            "gap_edge": gap_edge_flag(y, time, seg, lo, hi, sig, cad_d),
            "single_cadence": single_cadence_flag(y, lo, hi, sig),
            "sap_disagrees": sap_flag(sap, flux, base, y, time, lo, hi, usable, bf, bl, g.get("model"))
            if sap is not None else False,
            "symmetric": symmetric_flag(time, y, seg, g, sig, cad_d),
            "centroid_jump": centroid_flag(centr, lo, hi, usable, time, bf, bl, control,
                                            int(np.searchsorted(time, g["tpeak"])), rel,
                                            float(np.nanmax(y[lo:hi + 1]))) if centr else False,
        }
        for name, v in values.items():
            flags[name][g["rows"]] = v
    for name, _ in FLAGS:
        meta[f"n_{name}"] = int(len({gi for gi, g in enumerate(info) if flags[name][g["rows"]].any()}))
    return flags, meta


__all__ = ["FLAGS", "vet", "periodic_flags", "fold_explains", "gap_edge_flag",
           "rises_later", "single_cadence_flag", "sap_flag", "centroid_flag", "control_steps", "local_steps",
           "jump_cadence", "poisson_sf"]
