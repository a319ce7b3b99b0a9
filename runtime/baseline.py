"""The quiescent baseline a flare is measured against: a robust local polynomial that follows the star.

:func:`robust_baseline` fits, at every kept cadence, a quadratic in time to the flux around it (tricube kernel,
:func:`flarelight.runtime.kernels.local_poly_baseline`) with

* every candidate flare masked (the caller passes the mask; the catalogue re-fits with the fitted flares'
  full extents masked, so the baseline never rises under a decay),
* short positive excursions (> ``clip_hi`` sigma above the baseline and above the local median of the
  residuals, in chunks of 2 ``LOCAL_HALF`` + 1 cadences) and deep negative ones (< -``clip_lo`` sigma, likewise) clipped,
  iterated ``n_iter`` times, so undetected small flares and single bad cadences do not lift it, while a stretch
  the baseline has not yet followed is never clipped (it would be kept away from the data for good),
* dips (eclipses, transits: :func:`dips`) clipped whole, so the baseline bridges them and their ingress and
  egress leave no positive shoulders that look like flares,
* windows that reach across short gaps (the trend on both sides of a gap sets the baseline there) and grow
  under a long masked stretch until data on both sides is reached, so the baseline bridges a superflare's
  day-long decay with the trend around it (a cubic there, which follows a rotational slope through its
  inflection),
* one-sided fits at segment ends, which continue the local trend (never a flat hold); past a block's last usable
  cadence (a flare masked up to a segment end) one polynomial continues it: the level of that cadence's own fit and
  the slope and curvature of a fit ``END_SCALE`` times as wide as the stretch it continues over (a fit per cadence,
  each with its own window grown back to the data, jumped and bent up or down; the flare's ED, whose unobserved
  tail the template extrapolates, went with it),
* independent blocks where the light curve has a gap longer than ``max_gap`` days (e.g. between TESS orbits),
  where the star's level may jump.

All in relative units (flux / median) internally; the result is in the input's flux units.
"""
from __future__ import annotations

import numpy as np

from . import kernels

#: kernel half width of the local fit, in cadences (2 h at 2-min cadence)
DEFAULT_HALF_WIDTH_CADENCES = 60
#: gaps longer than this (days) separate independent baseline blocks
DEFAULT_MAX_GAP = 0.5
#: clipping thresholds (robust sigmas) of the iterations: above / below the baseline
CLIP_HI, CLIP_LO = 3.0, 5.0
#: half width (cadences) of the running median of the residuals an outlier must stand out from to be clipped
LOCAL_HALF = 15
#: dips (eclipses, transits) up to this long (days) are bridged; their flanks are this many usable cadences
MAX_DIP, DIP_FLANK = 0.3, 10
#: iterations of fit-and-clip
N_ITER = 4
#: usable cadences wanted within 0.7 half widths on each side of a cadence before its window stops growing, as a
#: fraction of the half width in cadences (an unmasked stretch holds 0.7 of it: it never grows there)
MIN_SIDE_FRACTION = 0.35
#: polynomial degree where the window grew to bridge a masked stretch (2 elsewhere)
BRIDGE_DEGREE = 3
#: the window never grows beyond this many half widths
MAX_GROWTH = 24.0
#: the fit is evaluated every ``half width / STRIDE_DIVISOR`` cadences and interpolated linearly between (a smooth
#: quadratic trend sampled every 12 min at 2-min cadence: interpolation error < 1e-5 of the flux on a 1-day rotator)
STRIDE_DIVISOR = 5
#: ... and on both sides of every step longer than this many cadences (a gap), never interpolated across it
STRIDE_MAX_STEP = 3.0
#: past a block's last usable cadence (a flare masked up to a segment end) the baseline continues one polynomial: the
#: level of that cadence's own fit, the slope and curvature of a fit at least this many times wider than the stretch
#: it continues over (a shape that short a window extrapolates is mostly noise, a per-cadence window jumped)
END_SCALE = 3.0


def baseline_blocks(time: np.ndarray, max_gap: float = DEFAULT_MAX_GAP) -> np.ndarray:
    """Block label of each (increasing) time: a new block starts after a step longer than ``max_gap`` days."""
    time = np.asarray(time, np.float64)
    if time.size == 0:
        return np.empty(0, np.int64)
    return np.r_[0, np.cumsum(np.diff(time) > max_gap)].astype(np.int64)


def ptp_sigma(x: np.ndarray) -> float:
    """Robust point-to-point scatter of a series: 1.4826 MAD of its differences / sqrt(2) (insensitive to trends)."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    if x.size < 3:
        return float("nan")
    d = np.diff(x)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def _block_indices(block: np.ndarray) -> list:
    """The positions of each block label (slices where the labels are non-decreasing, as baseline_blocks gives)."""
    block = np.asarray(block)
    if block.size and np.all(block[1:] >= block[:-1]):
        bounds = np.r_[0, np.flatnonzero(block[1:] != block[:-1]) + 1, block.size]
        return [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return [np.flatnonzero(block == b) for b in np.unique(block)]


def chunk_median(x: np.ndarray, block: np.ndarray, size: int) -> np.ndarray:
    """The median of the finite values of consecutive chunks of ``size`` cadences (restarting at every block),
    interpolated linearly between chunk centres: a cheap local level (0 where a chunk has none)."""
    out = np.zeros(x.size)
    for idx in _block_indices(block):
        n = idx.size
        m = -(-n // size)
        pad = np.full(m * size, np.nan)
        pad[:n] = x[idx]
        # nanmedian by sorting (NaN sorts last): the mean of the middle one or two of each chunk's k finite values;
        # all-NaN chunks (k = 0) stay NaN, with no warning to silence (thread-safe)
        chunks = np.sort(pad.reshape(m, size), axis=1)
        k = np.sum(np.isfinite(chunks), axis=1)
        rows = np.arange(m)
        lo, hi = np.maximum(k - 1, 0) // 2, k // 2
        med = np.where(k > 0, (chunks[rows, lo] + chunks[rows, np.minimum(hi, size - 1)]) / 2.0, np.nan)
        centres = np.minimum(np.arange(m) * size + (size - 1) / 2.0, n - 1)
        ok = np.isfinite(med)
        if ok.any():
            out[idx] = np.interp(np.arange(n), centres[ok], med[ok])
    return out


def dips(time: np.ndarray, y: np.ndarray, r: np.ndarray, usable: np.ndarray, sigma: float, depth_sigma: float) -> np.ndarray:
    """True on dips (eclipses, transits): runs of residual ``r`` below -2 sigma, at least ``depth_sigma`` sigma deep,
    at most ``MAX_DIP`` days long, whose flanks (``DIP_FLANK`` usable cadences each side) lie at one level (they
    differ by less than half the dip's depth: a dip, not a step); each is widened by a quarter of its length.

    The baseline bridges a dip instead of following it, so its ingress and egress leave no positive shoulders.
    """
    out = np.zeros(r.size, bool)
    low = r < -2.0 * sigma
    if not low.any():
        return out
    edges = np.flatnonzero(np.diff(np.r_[0, low.astype(np.int8), 0]))
    starts, stops = edges[::2], edges[1::2] - 1
    deepest = np.minimum.reduceat(np.where(low, r, np.inf), starts)  # each run's minimum (runs hold only low)
    cand = (deepest <= -depth_sigma * sigma) & (time[stops] - time[starts] <= MAX_DIP)
    pos = np.flatnonzero(usable)  # the usable cadences, once (not searched again for every run)
    for a, b in zip(starts[cand], stops[cand]):
        ia, ib = np.searchsorted(pos, a), np.searchsorted(pos, b + 1)
        left = pos[max(ia - DIP_FLANK, 0):ia]
        right = pos[ib:ib + DIP_FLANK]
        if left.size < 3 or right.size < 3:
            continue
        ml, mr = float(np.median(y[left])), float(np.median(y[right]))
        depth = min(ml, mr) - float(y[a:b + 1].min())
        if depth <= 0 or abs(ml - mr) > 0.5 * depth:
            continue
        pad = max(2, (b - a + 1) // 4)
        out[max(a - pad, 0):b + pad + 1] = True
    return out


def robust_baseline(time: np.ndarray, flux: np.ndarray, mask: np.ndarray, *, cadence: float,
                    half_width_cadences: float = DEFAULT_HALF_WIDTH_CADENCES, max_gap: float = DEFAULT_MAX_GAP,
                    n_iter: int = N_ITER, clip_hi: float = CLIP_HI, clip_lo: float = CLIP_LO) -> np.ndarray:
    """The baseline flux at every cadence (see the module docstring).

    Parameters
    ----------
    time, flux : ndarray, shape (n,)
        The kept cadences (increasing time, days; finite flux).
    mask : ndarray of bool, shape (n,)
        Cadences never used to fit (candidate flares); the baseline is still evaluated there.
    cadence : float
        The cadence (days): sets the kernel half width.
    half_width_cadences : float
        Kernel half width in cadences.
    max_gap : float
        Gaps longer than this (days) split independent blocks.
    n_iter : int
        Fit-and-clip iterations (>= 1).
    clip_hi, clip_lo : float
        Cadences more than ``clip_hi`` robust sigmas above (``clip_lo`` below) the baseline are not used in the
        next iteration.

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    time = np.asarray(time, np.float64)
    flux = np.asarray(flux, np.float64)
    mask = np.asarray(mask, bool)
    n = time.size
    if n == 0:
        return np.empty(0)
    med = float(np.median(flux[~mask])) if (~mask).any() else float(np.median(flux))
    scale = med if med != 0 else 1.0
    y = flux / scale
    block = baseline_blocks(time, max_gap)
    blocks = _block_indices(block)
    h = float(half_width_cadences) * cadence
    use = ~mask & np.isfinite(y)
    stride = max(1, int(half_width_cadences) // STRIDE_DIVISOR)
    min_side = max(3, int(round(MIN_SIDE_FRACTION * half_width_cadences)))
    base = np.full(n, np.nan)
    for _ in range(max(1, int(n_iter))):
        base = kernels.local_poly_baseline(time, y, use.astype(np.float64), block, h, min_side, MAX_GROWTH * h,
                                           stride=stride, bridge_degree=BRIDGE_DEGREE,
                                           max_step=STRIDE_MAX_STEP * cadence, end_scale=END_SCALE)
        r = y - base
        # clip only short excursions (outliers standing out from their neighbours' residuals), never a stretch the
        # baseline has not followed yet: that would keep it away from the data for good
        local = chunk_median(np.where(mask, np.nan, r), block, 2 * LOCAL_HALF + 1)
        clipped = np.zeros(n, bool)
        for inb in blocks:
            sig = ptp_sigma(r[inb][~mask[inb]])
            if not np.isfinite(sig) or sig <= 0:
                continue
            rb, lb = r[inb], r[inb] - local[inb]
            clipped[inb] = ((rb > clip_hi * sig) & (lb > clip_hi * sig)) | ((rb < -clip_lo * sig) & (lb < -clip_lo * sig))
            clipped[inb] |= dips(time[inb], y[inb], rb, ~mask[inb], sig, clip_lo)
        new_use = ~mask & ~clipped & np.isfinite(y)
        if np.array_equal(new_use, use):
            break
        use = new_use
    hole = ~np.isfinite(base)
    if hole.any():  # a block with no usable cadence at all: its plain median
        for b in np.unique(block[hole]):
            sel = block == b
            base[sel & hole] = np.nanmedian(y[sel])
    return base * scale


__all__ = ["robust_baseline", "baseline_blocks", "ptp_sigma", "DEFAULT_HALF_WIDTH_CADENCES", "DEFAULT_MAX_GAP"]
