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
* when the star has a dominant period (given by the caller), masked stretches at least a half width and 0.3 of
  the period long bridged with the star's own flux folded at that period, scaled and tilted to the flux beside
  them, where that predicts the flux beside them clearly better than the plain bridge's polynomial
  (:func:`periodic_bridges`): a day-long decay on a rotating star runs over the rotation's minimum, which the
  other rotations show,
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
#: with a dominant period (:mod:`~flarelight.runtime.periodic`), masked stretches at least this many kernel half
#: widths long are bridged with the star's folded profile (:func:`periodic_bridges`)
GUIDE_MIN_HALF_WIDTHS = 1.0
#: ... and at least this fraction of the period (over less, the rotation is smooth enough for the plain bridge)
GUIDE_MIN_PHASE = 0.3
#: the scaled and tilted profile must meet the flux at the stretch's ends: the median residual of the half width of
#: usable cadences next to either end within this many times their point-to-point noise
GUIDE_EDGE = 2.0
#: the fold bridges only where it predicts the held-out flux beside the stretch clearly better than the plain
#: bridge's polynomial: its median absolute error at most this fraction of the polynomial's (the fold of a star whose
#: spots evolve is off by a fraction of the noise, which small flares feel; a cubic under a day-long decay is off by
#: many times the noise)
GUIDE_TIE = 0.7
#: ... and at least this many usable cadences beside the stretch
GUIDE_MIN_SIDES = 10


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


def runs_within(flags: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (inclusive) of maximal runs of ``flags`` that do not cross a change of ``labels`` (a segment,
    a block)."""
    n = flags.size
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    brk = np.r_[True, labels[1:] != labels[:-1]]
    prev = np.r_[False, flags[:-1]] & ~brk
    nxt = np.r_[flags[1:], False] & ~np.r_[brk[1:], True]
    return np.flatnonzero(flags & ~prev), np.flatnonzero(flags & ~nxt)


def _stretches(mask: np.ndarray, block: np.ndarray, join: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of every masked stretch: runs of ``mask`` within one block, joined across fewer than
    ``join`` unmasked cadences (a cluster of flares is one stretch)."""
    starts, stops = runs_within(mask, block)
    if starts.size < 2:
        return starts, stops
    keep_apart = (starts[1:] - stops[:-1] - 1 >= join) | (block[starts[1:]] != block[stops[:-1]])
    return starts[np.r_[True, keep_apart]], stops[np.r_[keep_apart, True]]


def _prediction_error(design: np.ndarray, y: np.ndarray, held_out: np.ndarray) -> float:
    """Median absolute error of the least-squares fit of ``design`` to ``y`` without ``held_out``, on ``held_out``."""
    coef = np.linalg.lstsq(design[~held_out], y[~held_out], rcond=None)[0]
    return float(np.median(np.abs(y[held_out] - design[held_out] @ coef)))


def periodic_bridges(time: np.ndarray, y: np.ndarray, base: np.ndarray, use: np.ndarray, mask: np.ndarray,
                     block: np.ndarray, periods: tuple[float, ...], cadence: float,
                     half_width_cadences: float) -> np.ndarray:
    """``base`` with every long masked stretch bridged by the star's own periodic signal.

    A stretch is a run of masked cadences, joined with the next across fewer than a half width of unmasked ones,
    spanning at least ``GUIDE_MIN_HALF_WIDTHS`` half widths and ``GUIDE_MIN_PHASE`` of the first period. Its
    candidate models: the usable flux folded at each of ``periods`` (the star's period and twice it:
    :func:`flarelight.runtime.periodic.fold_periods`; :class:`~flarelight.runtime.periodic.PhaseFold`, phase bins of
    :func:`~flarelight.runtime.periodic.coarse_bin_days`), as it is or scaled (the spots grew or faded; a scale must
    be positive), plus a straight line (a constant when only one side has data: a segment end), fitted by least
    squares to the usable cadences of the stretch and as far on either side as it is long (at least a half width).
    Each is judged as a bridge must work: fitted without the cadences within half that reach of the stretch, it
    predicts them (median absolute error). The best one bridges the stretch if its error is at most ``GUIDE_TIE``
    times that of the polynomial of a plain bridge (a cubic; a line at a segment end) and, fitted to all, it meets
    the flux at both ends of the stretch (the median residual of the half width next to each end within
    ``GUIDE_EDGE`` point-to-point sigmas: no step); elsewhere (spots that moved, a fold that does not reach the
    star's detail, no period) ``base`` stays.

    A cubic bridged under a day-long decay cannot follow a rotation through its minimum; the other rotations can.
    """
    from .periodic import PhaseFold, coarse_bin_days

    folds = [PhaseFold(time, y, use, p, coarse_bin_days(p, cadence)) for p in periods if np.isfinite(p) and p > 0]
    folds = [f for f in folds if f.ok]
    if not folds:
        return base
    out = base.copy()
    half = int(half_width_cadences)
    starts, stops = _stretches(mask, block, half)
    span = time[stops] - time[starts]
    long = (stops - starts + 1 >= GUIDE_MIN_HALF_WIDTHS * half_width_cadences) \
        & (span >= GUIDE_MIN_PHASE * periods[0])
    bounds = {int(b): (int(idx[0]), int(idx[-1])) for b, idx in zip(np.unique(block), _block_indices(block))}
    for a, b in zip(starts[long], stops[long]):
        first, last = bounds[int(block[a])]
        reach = max(half, int(b - a + 1))
        lo, hi = max(first, int(a) - reach), min(last, int(b) + reach)
        fit = lo + np.flatnonzero(use[lo:hi + 1])
        n_before, n_after = int(np.sum(fit < a)), int(np.sum(fit > b))
        if n_before + n_after < GUIDE_MIN_SIDES:
            continue
        noise = ptp_sigma(y[fit])
        tt, t_run = time[fit] - 0.5 * (time[a] + time[b]), time[a:b + 1] - 0.5 * (time[a] + time[b])
        both = min(n_before, n_after) >= GUIDE_MIN_SIDES // 2
        # held out: the usable cadences within half the reach of the stretch; each model fitted to the others must
        # predict them, as a bridge must predict the stretch. The bar is the polynomial of a plain bridge (a cubic;
        # a line at a segment end)
        near = np.abs(fit - np.clip(fit, a, b)) <= reach // 2
        if near.sum() < GUIDE_MIN_SIDES or (~near).sum() < GUIDE_MIN_SIDES:
            continue
        poly = np.column_stack([tt ** p for p in range((BRIDGE_DEGREE if both else 1) + 1)])
        best = (GUIDE_TIE * _prediction_error(poly, y[fit], near), None)
        line, line_run = (np.column_stack([x ** p for p in range(2 if both else 1)]) for x in (tt, t_run))
        for f in folds:
            at_fit, at_run = f.at(time[fit]), f.at(time[a:b + 1])
            if not (np.isfinite(at_fit).all() and np.isfinite(at_run).all()):
                continue
            mid = float(np.median(at_fit))
            # the fold as it is, or scaled (the spots grew or faded; never turned over), plus the line
            for scaled in (False, True):
                design = np.column_stack([at_fit - mid, line]) if scaled else line
                target = y[fit] if scaled else y[fit] - at_fit
                error = _prediction_error(design, target, near)
                coef = np.linalg.lstsq(design, target, rcond=None)[0]
                resid = target - design @ coef
                edges = [resid[fit < a][-half:], resid[fit > b][:half]]  # it meets the flux at both ends: no step
                meets = all(abs(float(np.median(e))) <= GUIDE_EDGE * noise for e in edges
                            if e.size >= GUIDE_MIN_SIDES // 2)
                if (coef[0] > 0 or not scaled) and meets and error < best[0]:
                    run = np.column_stack([at_run - mid, line_run]) if scaled else line_run
                    best = (error, run @ coef + (0.0 if scaled else at_run))
        if best[1] is not None:
            out[a:b + 1] = best[1]
    return out


def robust_baseline(time: np.ndarray, flux: np.ndarray, mask: np.ndarray, *, cadence: float,
                    half_width_cadences: float = DEFAULT_HALF_WIDTH_CADENCES, max_gap: float = DEFAULT_MAX_GAP,
                    n_iter: int = N_ITER, clip_hi: float = CLIP_HI, clip_lo: float = CLIP_LO,
                    fold_periods: tuple[float, ...] = ()) -> np.ndarray:
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
    fold_periods : tuple of float
        The periods (days) to fold the star at (:func:`flarelight.runtime.periodic.fold_periods`), none by default:
        long masked stretches are then bridged with its folded profile (:func:`periodic_bridges`).

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
    base = periodic_bridges(time, y, base, use, mask, block, tuple(fold_periods), cadence, half_width_cadences)
    hole = ~np.isfinite(base)
    if hole.any():  # a block with no usable cadence at all: its plain median
        for b in np.unique(block[hole]):
            sel = block == b
            base[sel & hole] = np.nanmedian(y[sel])
    return base * scale


__all__ = ["robust_baseline", "periodic_bridges", "runs_within", "baseline_blocks", "ptp_sigma",
           "DEFAULT_HALF_WIDTH_CADENCES", "DEFAULT_MAX_GAP"]
