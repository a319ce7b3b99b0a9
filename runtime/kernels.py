"""All of flarelight's numba kernels.

Each private ``_name`` kernel takes arrays and scalars only; its public wrapper validates dtype,
shape and contiguity and says what it found and what to do. Plain-numpy / Python-loop references
for every kernel live in ``tests/`` beside the tests that compare them.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from .errors import InvalidLightCurveError

_njit = numba.njit(cache=True, nogil=True)


def _as_1d(name: str, a: np.ndarray, dtype: type) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1:
        raise InvalidLightCurveError(f"{name}: expected a 1-D array, got shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise InvalidLightCurveError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=dtype)


# ----------------------------------------------------------------------------- segmentation
@_njit
def _segment_ids(time, max_step):
    n = time.shape[0]
    out = np.empty(n, np.int64)
    seg = 0
    for i in range(n):
        if i > 0 and time[i] - time[i - 1] > max_step:
            seg += 1
        out[i] = seg
    return out


def segment_ids(time: np.ndarray, max_step: float) -> np.ndarray:
    """Label each cadence with the index of its segment; a new segment starts after a step > ``max_step``.

    Parameters
    ----------
    time : ndarray of float, shape (n,)
        Increasing time stamps of the kept cadences.
    max_step : float
        Longest step (same unit as ``time``) that does not break a segment.

    Returns
    -------
    ndarray of int64, shape (n,)
        0 for the first segment, incremented at every gap.
    """
    t = _as_1d("time", time, np.float64)
    if not np.isfinite(max_step) or max_step <= 0:
        raise ValueError(f"max_step={max_step}: must be a positive finite number")
    if t.size and not np.all(np.isfinite(t)):
        raise InvalidLightCurveError("time: contains NaN/inf; mask those cadences before segmenting")
    return _segment_ids(t, float(max_step))


# ----------------------------------------------------------------------------- windows
@_njit
def _valid_centres(seg, window, offset):
    n = seg.shape[0]
    out = np.zeros(n, np.bool_)
    after = window - offset - 1
    for i in range(n):
        lo = i - offset
        hi = i + after
        if lo >= 0 and hi < n and seg[lo] == seg[i] and seg[hi] == seg[i]:
            out[i] = True
    return out


def valid_centres(seg: np.ndarray, window: int, offset: int) -> np.ndarray:
    """True for each cadence whose whole window ``[i - offset, i - offset + window)`` lies in its own segment.

    Parameters
    ----------
    seg : ndarray of int, shape (n,)
        Segment labels from :func:`segment_ids` (non-decreasing).
    window, offset : int
        Window length and cadences before the centre.
    """
    s = _as_1d("seg", seg, np.int64)
    _check_window(window, offset)
    return _valid_centres(s, int(window), int(offset))


@_njit
def _gather_windows(flux, starts, window, out):
    for k in range(starts.shape[0]):
        s = starts[k]
        for j in range(window):
            out[k, j] = flux[s + j]


def gather_windows(flux: np.ndarray, starts: np.ndarray, window: int, out: np.ndarray | None = None) -> np.ndarray:
    """Copy the windows ``flux[s : s + window]`` for each start ``s`` into one contiguous float32 batch.

    Parameters
    ----------
    flux : ndarray of float32, shape (n,)
    starts : ndarray of int, shape (m,)
        First cadence of each window; every window must fit inside ``flux``.
    window : int
    out : ndarray of float32, shape (m, window), optional
        Buffer to fill (reused between batches).

    Returns
    -------
    ndarray of float32, shape (m, window)
    """
    f = _as_1d("flux", flux, np.float32)
    st = _as_1d("starts", starts, np.int64)
    _check_window(window, 0)
    if st.size and (st.min() < 0 or st.max() + window > f.size):
        raise IndexError(f"window starts out of range: need 0 <= start <= {f.size - window}, got {st.min()}..{st.max()}")
    if out is None:
        out = np.empty((st.size, window), np.float32)
    elif out.shape != (st.size, window) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out: need a C-contiguous float32 array of shape {(st.size, window)}, got {out.dtype} {out.shape}")
    _gather_windows(f, st, int(window), out)
    return out


@_njit
def _gather_padded(flux, seg, centres, window, offset, fill, out):
    n = flux.shape[0]
    for k in range(centres.shape[0]):
        c = centres[k]
        for j in range(window):
            i = c - offset + j
            if 0 <= i < n and seg[i] == seg[c]:
                out[k, j, 0] = flux[i]
                out[k, j, 1] = 1.0
            else:
                out[k, j, 0] = fill
                out[k, j, 1] = 0.0


def gather_padded_windows(flux: np.ndarray, seg: np.ndarray, centres: np.ndarray, window: int, offset: int,
                          fill: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """Two-channel windows centred on ``centres``: channel 0 the flux, channel 1 a flag (1 real, 0 padding).

    Cadences outside the light curve or in another segment are replaced by ``fill`` (1.0: the
    normalised baseline) with flag 0, so a window near a gap or edge never mixes two segments.

    Returns
    -------
    ndarray of float32, shape (m, window, 2)
    """
    f = _as_1d("flux", flux, np.float32)
    s = _as_1d("seg", seg, np.int64)
    c = _as_1d("centres", centres, np.int64)
    _check_window(window, offset)
    if s.size != f.size:
        raise ValueError(f"seg has {s.size} entries but flux has {f.size}")
    if c.size and (c.min() < 0 or c.max() >= f.size):
        raise IndexError(f"centres out of range 0..{f.size - 1}")
    if out is None:
        out = np.empty((c.size, window, 2), np.float32)
    elif out.shape != (c.size, window, 2) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out: need a C-contiguous float32 array of shape {(c.size, window, 2)}")
    _gather_padded(f, s, c, int(window), int(offset), np.float32(fill), out)
    return out


def _check_window(window: int, offset: int) -> None:
    if int(window) != window or window < 1:
        raise ValueError(f"window={window}: must be a positive integer")
    if int(offset) != offset or not (0 <= offset < max(window, 1)):
        raise ValueError(f"offset={offset}: must be an integer in [0, window)")


# ----------------------------------------------------------------------------- window scaling
@_njit
def _robust_scale_windows(windows, scale):
    m, w, c = windows.shape
    buf = np.empty(w, np.float64)
    inv = 1.0 / scale
    for k in range(m):
        n = 0
        for j in range(w):
            if c == 1 or windows[k, j, 1] > 0.5:
                buf[n] = windows[k, j, 0]
                n += 1
        if n == 0:
            for j in range(w):
                windows[k, j, 0] = 0.0
            continue
        b = np.sort(buf[:n])
        med = b[n // 2] if n % 2 == 1 else 0.5 * (b[n // 2 - 1] + b[n // 2])
        for j in range(w):
            if c == 1 or windows[k, j, 1] > 0.5:
                windows[k, j, 0] = np.arcsinh((windows[k, j, 0] - med) * inv)
            else:
                windows[k, j, 0] = 0.0


def robust_scale_windows(windows: np.ndarray, scale: float) -> np.ndarray:
    """In place: channel 0 of each window becomes ``arcsinh((x - median) / scale)``.

    The median is over the window's real cadences (all of them for 1-channel windows; those with flag 1 in
    channel 1 otherwise); padded cadences become 0. Windows are then in units of the light curve's noise,
    compressed for large excursions (arcsinh is linear below ~1 and logarithmic above).

    Parameters
    ----------
    windows : ndarray of float32, shape (m, window, channels), C-contiguous
    scale : float
        Positive noise level of the normalised flux.
    """
    if windows.dtype != np.float32 or windows.ndim != 3 or not windows.flags.c_contiguous or windows.shape[2] not in (1, 2):
        raise ValueError(f"windows: need a C-contiguous float32 array (m, window, 1 or 2), got {windows.dtype} {windows.shape}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale={scale}: must be a positive finite number")
    _robust_scale_windows(windows, float(scale))
    return windows


# ----------------------------------------------------------------------------- running median
@_njit
def _running_median(x, seg, half):
    n = x.shape[0]
    out = np.empty(n, np.float64)
    buf = np.empty(2 * half + 1, np.float64)
    for i in range(n):
        m = 0
        lo = max(0, i - half)
        hi = min(n - 1, i + half)
        for j in range(lo, hi + 1):
            if seg[j] == seg[i] and np.isfinite(x[j]):
                buf[m] = x[j]
                m += 1
        if m == 0:
            out[i] = np.nan
        else:
            b = np.sort(buf[:m])
            if m % 2 == 1:
                out[i] = b[m // 2]
            else:
                out[i] = 0.5 * (b[m // 2 - 1] + b[m // 2])
    return out


@_njit
def _running_median_runs(x, starts, ends, half):
    """The same medians as :func:`_running_median` when every segment label is one contiguous run: a sorted
    buffer of the window's finite values, one insertion and one removal per step (O(window) instead of a sort)."""
    n = x.shape[0]
    out = np.empty(n, np.float64)
    buf = np.empty(2 * half + 1, np.float64)
    for r in range(starts.shape[0]):
        a, b = starts[r], ends[r]
        m = 0
        hi = a - 1
        lo = a
        for i in range(a, b):
            # leave the cadence that fell out of the window first, so the buffer never holds more than 2*half+1
            while lo < max(i - half, a):
                v = x[lo]
                if np.isfinite(v):
                    k = 0
                    while buf[k] != v:
                        k += 1
                    for j in range(k, m - 1):
                        buf[j] = buf[j + 1]
                    m -= 1
                lo += 1
            while hi < min(i + half, b - 1):
                hi += 1
                v = x[hi]
                if np.isfinite(v):
                    k = m
                    while k > 0 and buf[k - 1] > v:
                        buf[k] = buf[k - 1]
                        k -= 1
                    buf[k] = v
                    m += 1
            if m == 0:
                out[i] = np.nan
            elif m % 2 == 1:
                out[i] = buf[m // 2]
            else:
                out[i] = 0.5 * (buf[m // 2 - 1] + buf[m // 2])
    return out


def running_median(x: np.ndarray, seg: np.ndarray, half_width: int) -> np.ndarray:
    """Median of the finite values of ``x`` within ``half_width`` cadences of each cadence, in its own segment.

    Near edges and gaps the window is truncated (not padded); a cadence whose window holds no finite
    value gets NaN.

    Parameters
    ----------
    x : ndarray of float, shape (n,)
    seg : ndarray of int, shape (n,)
        Segment labels; the median never reaches across segments.
    half_width : int
        The window is ``2 * half_width + 1`` cadences.
    """
    a = _as_1d("x", x, np.float64)
    s = _as_1d("seg", seg, np.int64)
    if s.size != a.size:
        raise ValueError(f"seg has {s.size} entries but x has {a.size}")
    if int(half_width) != half_width or half_width < 0:
        raise ValueError(f"half_width={half_width}: must be a non-negative integer")
    if a.size:
        bounds = np.flatnonzero(s[1:] != s[:-1]) + 1
        starts = np.r_[0, bounds].astype(np.int64)
        if np.unique(s[starts]).size == starts.size:  # each label one contiguous run (segment_ids' output)
            return _running_median_runs(a, starts, np.r_[bounds, a.size].astype(np.int64), int(half_width))
    return _running_median(a, s, int(half_width))


# ----------------------------------------------------------------------------- local polynomial baseline
@_njit
def _solve_small(a, b, m):
    """Solve the m x m system a x = b in place (Gaussian elimination, partial pivoting); False if singular."""
    for c in range(m):
        p = c
        for r in range(c + 1, m):
            if abs(a[r, c]) > abs(a[p, c]):
                p = r
        if abs(a[p, c]) < 1e-12 * (abs(a[0, 0]) + 1e-300):
            return False
        if p != c:
            for k in range(m):
                tmp = a[c, k]
                a[c, k] = a[p, k]
                a[p, k] = tmp
            tmp = b[c]
            b[c] = b[p]
            b[p] = tmp
        for r in range(c + 1, m):
            f = a[r, c] / a[c, c]
            for k in range(c, m):
                a[r, k] -= f * a[c, k]
            b[r] -= f * b[c]
    for c in range(m - 1, -1, -1):
        acc = b[c]
        for k in range(c + 1, m):
            acc -= a[c, k] * b[k]
        b[c] = acc / a[c, c]
    return True


@_njit
def _fit_point(time, y, weight, cum, uidx, i, lo_b, hi_b, h, half_width, min_side, max_half_width, degree,
               bridge_degree, a, b, mom, rhs, coef):
    """The local polynomial at cadence i from half width h (grown while a side lacks usable cadences): its value
    (NaN if none), the half width used, and its coefficients in (t - time[i]) / h in ``coef``."""
    t0 = time[i]
    left_all = cum[i] - cum[lo_b]
    right_all = cum[hi_b + 1] - cum[i + 1]
    while True:  # grow until min_side usable cadences lie within 0.7 h on each side (tricube weight > 0.28)
        lo = lo_b + np.searchsorted(time[lo_b:i + 1], t0 - h)  # first cadence at or after t0 - h
        hi = i - 1 + np.searchsorted(time[i:hi_b + 1], t0 + h, side="right")  # last at or before t0 + h
        pl = lo + np.searchsorted(time[lo:i], t0 - 0.7 * h)
        nl = cum[i] - cum[pl]
        pr = i + np.searchsorted(time[i + 1:hi + 1], t0 + 0.7 * h, side="right")
        nr = cum[pr + 1] - cum[i + 1]
        if (nl >= min_side or (cum[i] - cum[lo] == left_all and nl == left_all)) and \
                (nr >= min_side or (cum[hi + 1] - cum[i + 1] == right_all and nr == right_all)):
            break
        if h >= max_half_width:
            break
        h = min(h * 1.5, max_half_width)
    for k in range(7):
        mom[k] = 0.0
    for k in range(4):
        rhs[k] = 0.0
        coef[k] = 0.0
    npts = 0
    for q in range(cum[lo], cum[hi + 1]):
        j = uidx[q]
        u = (time[j] - t0) / h
        au = abs(u)
        if au >= 1.0:
            continue
        k3 = 1.0 - au * au * au
        w = weight[j] * k3 * k3 * k3
        p = 1.0
        for k in range(7):
            mom[k] += w * p
            if k < 4:
                rhs[k] += w * p * y[j]
            p *= u
        npts += 1
    both = (cum[i] - cum[lo]) > 0 and (cum[hi + 1] - cum[i + 1]) > 0  # data on both sides: interpolation
    deg = min(bridge_degree if (h > half_width and both) else degree, npts - 1)
    while deg >= 0:
        m = deg + 1
        for r in range(m):
            b[r] = rhs[r]
            for c in range(m):
                a[r, c] = mom[r + c]
        if _solve_small(a, b, m):
            for k in range(m):
                coef[k] = b[k]
            return b[0], h
        deg -= 1
    return np.nan, h


@_njit
def _local_poly(time, y, weight, block, half_width, min_side, max_half_width, degree, bridge_degree, stride, max_step,
                end_scale):
    n = time.shape[0]
    out = np.full(n, np.nan)
    # the cadences fitted: every stride-th of a block, its last, and both sides of a step longer than max_step (a
    # gap: the trend is never interpolated across it)
    fit_here = np.zeros(n, np.bool_)
    cum = np.zeros(n + 1, np.int64)
    for i in range(n):
        cum[i + 1] = cum[i] + (1 if weight[i] > 0.0 else 0)
    first = np.empty(n, np.int64)
    last = np.empty(n, np.int64)
    s = 0
    for i in range(1, n + 1):
        if i == n or block[i] != block[s]:
            for j in range(s, i):
                first[j] = s
                last[j] = i - 1
            s = i
    for i in range(n):
        if (i - first[i]) % stride == 0 or i == last[i]:
            fit_here[i] = True
        elif time[i] - time[i - 1] > max_step or time[i + 1] - time[i] > max_step:
            fit_here[i] = True
    # the usable cadences in order: a window's are uidx[cum[lo]:cum[hi + 1]] (masked ones are never visited)
    uidx = np.empty(cum[n], np.int64)
    k = 0
    for i in range(n):
        if weight[i] > 0.0:
            uidx[k] = i
            k += 1
    a = np.empty((4, 4))
    b = np.empty(4)
    mom = np.empty(7)
    rhs = np.empty(4)
    coef = np.empty(4)
    own = np.empty(4)
    for i in range(n):
        if fit_here[i]:
            out[i], _ = _fit_point(time, y, weight, cum, uidx, i, first[i], last[i], half_width, half_width, min_side,
                                   max_half_width, degree, bridge_degree, a, b, mom, rhs, coef)
    if stride > 1:  # linear interpolation in time between the fitted cadences of each block
        j0 = 0
        j1 = 0
        for i in range(n):
            if fit_here[i]:
                j0 = i
                continue
            if j1 <= i:
                j1 = i + 1
                while not fit_here[j1]:
                    j1 += 1
            f = (time[i] - time[j0]) / (time[j1] - time[j0])
            out[i] = out[j0] + f * (out[j1] - out[j0])
    if end_scale > 0.0:  # past a block's last (before its first) usable cadence: one polynomial continued
        s = 0
        while s < n:
            lo_b = first[s]
            hi_b = last[s]
            s = hi_b + 1
            if cum[hi_b + 1] - cum[lo_b] == 0:
                continue
            for side in range(2):
                j = uidx[cum[hi_b + 1] - 1] if side == 0 else uidx[cum[lo_b]]  # the last (first) usable cadence
                far = hi_b if side == 0 else lo_b
                if j == far:
                    continue
                # the shape from a window at least end_scale x the stretch to continue, the level from j's own fit
                h0 = max(half_width, end_scale * abs(time[far] - time[j]))
                v_wide, h = _fit_point(time, y, weight, cum, uidx, j, lo_b, hi_b, h0, half_width, min_side,
                                       max_half_width, degree, bridge_degree, a, b, mom, rhs, coef)
                v_own, _ = _fit_point(time, y, weight, cum, uidx, j, lo_b, hi_b, half_width, half_width, min_side,
                                      max_half_width, degree, bridge_degree, a, b, mom, rhs, own)
                if not (np.isfinite(v_wide) and np.isfinite(v_own)):
                    continue
                lo = j + 1 if side == 0 else lo_b
                hi = hi_b if side == 0 else j - 1
                for i in range(lo, hi + 1):
                    u = (time[i] - time[j]) / h
                    out[i] = v_own + coef[1] * u + coef[2] * u * u + coef[3] * u * u * u
    return out


def local_poly_baseline(time: np.ndarray, y: np.ndarray, weight: np.ndarray, block: np.ndarray, half_width: float,
                        min_side: int = 10, max_half_width: float | None = None, degree: int = 2,
                        stride: int = 1, bridge_degree: int | None = None, max_step: float = np.inf,
                        end_scale: float = 0.0) -> np.ndarray:
    """Weighted local polynomial regression (tricube kernel) of ``y`` evaluated at every cadence.

    At each cadence a polynomial of ``degree`` (<= 2) in time is fitted to the cadences of the same ``block``
    within ``half_width`` (time units), weighted by ``weight`` (0 = not used: masked or clipped) times the
    tricube kernel, and its value at the cadence is returned. Where fewer than ``min_side`` usable cadences lie
    within 0.7 half widths on one side although the block has more, the window grows (x1.5 steps, at most
    ``max_half_width``), so the
    fit bridges a masked stretch from the data on both sides; at a block's end the fit is one-sided (the local
    trend continues, it is not held flat). NaN where no usable cadence is in reach.

    Parameters
    ----------
    time, y, weight : ndarray of float, shape (n,)
        Increasing times, values and non-negative weights.
    block : ndarray of int, shape (n,)
        Labels (non-decreasing); the fit never reaches across blocks.
    half_width : float
        Kernel half width (time units, > 0).
    min_side : int
        Usable cadences wanted on each side before the window stops growing.
    max_half_width : float, optional
        Largest half width (default ``8 x half_width``).
    degree : int
        0, 1, 2 or 3 (lowered where the window cannot support it).
    bridge_degree : int, optional
        Degree where the window had to grow and holds usable cadences on both sides (bridging a masked stretch;
        default ``degree``): a cubic follows a rotational slope through its inflection across a long bridge,
        where a quadratic cannot. Never used to extrapolate past a block's end.
    stride : int
        Fit at every ``stride``-th cadence of a block (and its last) and interpolate linearly in time between
        them (1: fit everywhere).
    max_step : float
        With ``stride`` > 1, the cadences on both sides of a step longer than this (time units: a gap) are fitted
        too, so the trend is never interpolated across a gap (default: no step counts).
    end_scale : float
        If > 0, past a block's last usable cadence j (and before its first) the result is one polynomial: j's own
        fitted value plus the slope and curvature of j's fit from a half width of at least ``end_scale`` times the
        stretch to continue (default 0: every cadence its own fit, its window grown back to the data).
    """
    t = _as_1d("time", time, np.float64)
    v = _as_1d("y", y, np.float64)
    w = _as_1d("weight", weight, np.float64)
    blk = _as_1d("block", block, np.int64)
    if not (v.size == w.size == blk.size == t.size):
        raise ValueError(f"time, y, weight, block have sizes {t.size}, {v.size}, {w.size}, {blk.size}; give equal sizes")
    if not (np.isfinite(half_width) and half_width > 0):
        raise ValueError(f"half_width={half_width}: must be a positive finite number")
    mx = 8.0 * half_width if max_half_width is None else float(max_half_width)
    if not mx >= half_width:
        raise ValueError(f"max_half_width={max_half_width}: must be >= half_width={half_width}")
    bridge_degree = degree if bridge_degree is None else bridge_degree
    if degree not in (0, 1, 2, 3) or bridge_degree not in (0, 1, 2, 3):
        raise ValueError(f"degree={degree}, bridge_degree={bridge_degree}: each must be 0, 1, 2 or 3")
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride={stride}: must be a positive integer")
    if int(min_side) != min_side or min_side < 0:
        raise ValueError(f"min_side={min_side}: must be a non-negative integer")
    if t.size and not np.all(np.isfinite(t)):
        raise InvalidLightCurveError("time: contains NaN/inf; pass the kept cadences only")
    bad = ~np.isfinite(v)
    if bad.any():
        w = np.where(bad, 0.0, w)
        v = np.where(bad, 0.0, v)
    if np.any(w < 0):
        raise ValueError("weight: must be non-negative")
    if not max_step > 0:
        raise ValueError(f"max_step={max_step}: must be positive (np.inf: no step splits the stride)")
    if not (np.isfinite(end_scale) and end_scale >= 0):
        raise ValueError(f"end_scale={end_scale}: must be a finite number >= 0")
    return _local_poly(t, v, w, blk, float(half_width), int(min_side), mx, int(degree), int(bridge_degree),
                       int(stride), float(max_step), float(end_scale))


# ----------------------------------------------------------------------------- flare templates
# Davenport et al. 2014 (ApJ 797, 122) in x = (t - tpeak) / fwhm: rise polynomial on [-1, 0], two exponentials after
_DR = (1.0, 1.941, -0.175, -2.246, -1.125)
_DC1, _DD1, _DC2, _DD2 = 0.6890, 1.600, 0.3030, 0.2783


@_njit
def _dav_q(x):
    return x * (_DR[0] + x * (_DR[1] / 2.0 + x * (_DR[2] / 3.0 + x * (_DR[3] / 4.0 + x * _DR[4] / 5.0))))


@_njit
def _dav_f(x):
    if x < -1.0:
        return 0.0
    if x <= 0.0:
        v = _DR[0] + x * (_DR[1] + x * (_DR[2] + x * (_DR[3] + x * _DR[4])))
        return v if v > 0.0 else 0.0
    return _DC1 * np.exp(-_DD1 * x) + _DC2 * np.exp(-_DD2 * x)


@_njit
def _dav_df(x):
    if x < -1.0:
        return 0.0
    if x <= 0.0:
        return _DR[1] + x * (2.0 * _DR[2] + x * (3.0 * _DR[3] + x * 4.0 * _DR[4]))
    return -_DD1 * _DC1 * np.exp(-_DD1 * x) - _DD2 * _DC2 * np.exp(-_DD2 * x)


@_njit
def _dav_F(x):
    """Antiderivative of the template, 0 before x = -1."""
    if x <= -1.0:
        return 0.0
    if x <= 0.0:
        return _dav_q(x) - _dav_q(-1.0)
    return (-_dav_q(-1.0) + _DC1 / _DD1 * (1.0 - np.exp(-_DD1 * x)) + _DC2 / _DD2 * (1.0 - np.exp(-_DD2 * x)))


@_njit
def _davenport_model(time, params, exposure, model, jac):
    n = time.shape[0]
    k = params.shape[0]
    for i in range(n):
        model[i] = 0.0
    for j in range(k):
        tp = params[j, 0]
        w = params[j, 1]
        amp = params[j, 2]
        hx = 0.5 * exposure / w
        # in the decay both ends of an exposure share exp(-d x): two exponentials per cadence instead of eight
        up1, dn1 = np.exp(-_DD1 * hx), np.exp(_DD1 * hx)
        up2, dn2 = np.exp(-_DD2 * hx), np.exp(_DD2 * hx)
        f0 = -_dav_q(-1.0)
        for i in range(n):
            x = (time[i] - tp) / w
            if hx > 0.0 and x - hx > 0.0:
                e1 = np.exp(-_DD1 * x)
                e2 = np.exp(-_DD2 * x)
                fp = _DC1 * e1 * up1 + _DC2 * e2 * up2
                fm = _DC1 * e1 * dn1 + _DC2 * e2 * dn2
                big_p = f0 + _DC1 / _DD1 * (1.0 - e1 * up1) + _DC2 / _DD2 * (1.0 - e2 * up2)
                big_m = f0 + _DC1 / _DD1 * (1.0 - e1 * dn1) + _DC2 / _DD2 * (1.0 - e2 * dn2)
                g = (big_p - big_m) / (2.0 * hx)
                dgdx = (fp - fm) / (2.0 * hx)
                dgdh = ((fp + fm) * 0.5 - g) / hx
            elif hx > 0.0:
                if x + hx < -1.0:  # before the rise: nothing
                    jac[i, 3 * j] = 0.0
                    jac[i, 3 * j + 1] = 0.0
                    jac[i, 3 * j + 2] = 0.0
                    continue
                fp = _dav_f(x + hx)
                fm = _dav_f(x - hx)
                g = (_dav_F(x + hx) - _dav_F(x - hx)) / (2.0 * hx)
                dgdx = (fp - fm) / (2.0 * hx)
                dgdh = ((fp + fm) * 0.5 - g) / hx
            else:
                g = _dav_f(x)
                dgdx = _dav_df(x)
                dgdh = 0.0
            model[i] += amp * g
            jac[i, 3 * j] = -amp * dgdx / w
            jac[i, 3 * j + 1] = -amp * (dgdx * x + dgdh * hx) / w
            jac[i, 3 * j + 2] = g


def davenport_model(time: np.ndarray, params: np.ndarray, exposure: float) -> tuple[np.ndarray, np.ndarray]:
    """Sum of exposure-averaged Davenport (2014) flares and its Jacobian (exact: the template's antiderivative).

    Parameters
    ----------
    time : ndarray of float, shape (n,)
        Mid-exposure times (days).
    params : ndarray of float, shape (k, 3)
        ``tpeak`` (days), ``fwhm`` (days, > 0), ``amplitude`` (relative) of each component.
    exposure : float
        Exposure length (days, >= 0; 0 = the instantaneous template).

    Returns
    -------
    model : ndarray of float64, shape (n,)
    jac : ndarray of float64, shape (n, 3k)
        d model / d (tpeak, fwhm, amplitude) of each component, in that order.
    """
    t = _as_1d("time", time, np.float64)
    p = np.ascontiguousarray(params, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"params: need shape (k, 3) of tpeak, fwhm, amplitude, got {p.shape}")
    if np.any(~(p[:, 1] > 0)):
        raise ValueError(f"params: every fwhm must be > 0, got {p[:, 1]}")
    if not (np.isfinite(exposure) and exposure >= 0):
        raise ValueError(f"exposure={exposure}: must be a finite number >= 0")
    model = np.empty(t.size)
    jac = np.empty((t.size, 3 * p.shape[0]))
    _davenport_model(t, p, float(exposure), model, jac)
    return model, jac


# Mendoza et al. 2022 (AJ 164, 17): a Gaussian convolved with a double exponential, in x = (t - tcentre) / fwhm
_MA, _MB, _MC, _MD1, _MD2, _MF1 = (0.9687734504375167, -0.251299705922117, 0.22675974948468916,
                                   0.15551880775110513, 1.2150539528490194, 0.12695865022878844)


@_njit
def _mendoza_raw(x):
    if x < -12.0:
        return 0.0
    out = 0.0
    for d, f in ((_MD1, _MF1), (_MD2, 1.0 - _MF1)):
        z = (_MB - x) / _MC + _MC * d / 2.0
        c = _MB / _MC + d * _MC / 2.0
        if z < 5.0:
            term = np.exp(-d * x + c * c) * math.erfc(z)
        else:  # exp(a) erfc(z) = exp(a - z^2) erfcx(z), erfcx from its asymptotic series
            zi2 = 1.0 / (z * z)
            erfcx = (1.0 - 0.5 * zi2 + 0.75 * zi2 * zi2 - 1.875 * zi2 * zi2 * zi2) / (z * np.sqrt(np.pi))
            term = np.exp(-d * x + c * c - z * z) * erfcx
        out += 0.5 * np.sqrt(np.pi) * _MA * _MC * f * term
    return out


@_njit
def _mendoza_model(time, params, exposure, oversample, xshift, norm, model):
    n = time.shape[0]
    for i in range(n):
        model[i] = 0.0
    for j in range(params.shape[0]):
        tp = params[j, 0]
        w = params[j, 1]
        amp = params[j, 2]
        for i in range(n):
            acc = 0.0
            for s in range(oversample):
                off = ((s + 0.5) / oversample - 0.5) * exposure if oversample > 1 else 0.0
                acc += _mendoza_raw((time[i] + off - tp) / w + xshift)
            model[i] += amp * acc / (oversample * norm)


def mendoza_model(time: np.ndarray, params: np.ndarray, exposure: float, xshift: float, norm: float,
                  oversample: int = 7) -> np.ndarray:
    """Sum of exposure-averaged Mendoza et al. (2022) flares (``oversample`` sub-exposures each).

    The template is evaluated at ``(t - tpeak) / fwhm + xshift`` and divided by ``norm``; with ``xshift``, ``norm``
    the position and value of the raw template's maximum, ``tpeak`` is the peak time and ``amplitude`` the peak.

    Parameters
    ----------
    time : ndarray of float, shape (n,)
    params : ndarray of float, shape (k, 3)
        ``tpeak``, ``fwhm`` (> 0), ``amplitude`` of each component.
    exposure : float
        Exposure (days, >= 0).
    xshift, norm : float
    oversample : int
        Sub-exposures averaged per cadence (>= 1).
    """
    t = _as_1d("time", time, np.float64)
    p = np.ascontiguousarray(params, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"params: need shape (k, 3) of tpeak, fwhm, amplitude, got {p.shape}")
    if np.any(~(p[:, 1] > 0)):
        raise ValueError(f"params: every fwhm must be > 0, got {p[:, 1]}")
    if int(oversample) != oversample or oversample < 1:
        raise ValueError(f"oversample={oversample}: must be a positive integer")
    if not (np.isfinite(exposure) and exposure >= 0 and norm > 0):
        raise ValueError(f"exposure={exposure}, norm={norm}: need exposure >= 0 and norm > 0")
    model = np.empty(t.size)
    _mendoza_model(t, p, float(exposure), int(oversample), float(xshift), float(norm), model)
    return model


# ----------------------------------------------------------------------------- peaks
@_njit
def _count_peaks(y, min_height):
    n = y.shape[0]
    count = 0
    for i in range(n):
        if not (y[i] >= min_height and (i == 0 or y[i] > y[i - 1]) and (i == n - 1 or y[i] >= y[i + 1])):
            continue
        lmin = y[i]
        j = i - 1
        while j >= 0 and y[j] <= y[i]:
            lmin = min(lmin, y[j])
            j -= 1
        rmin = y[i]
        k = i + 1
        while k < n and y[k] < y[i]:  # a plateau ends the search: its first cadence is the peak
            rmin = min(rmin, y[k])
            k += 1
        if y[i] - max(lmin, rmin) >= min_height:
            count += 1
    return count


def count_peaks(excess: np.ndarray, min_height: float) -> int:
    """Number of local maxima of ``excess`` with height and topographic prominence >= ``min_height``.

    Prominence as in scipy.signal.peak_prominences: the peak's height above the higher of the two
    lowest points between it and the nearest higher cadence on each side (or the interval's end).
    Always at least 1 for a non-empty interval (the highest cadence is the flare's peak); NaN counts as -inf.
    """
    y = np.asarray(excess, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"excess: expected a 1-D array, got shape {y.shape}")
    if y.size == 0:
        return 0
    y = np.ascontiguousarray(np.where(np.isfinite(y), y, -np.inf))
    return max(int(_count_peaks(y, float(min_height))), 1)


# ----------------------------------------------------------------------------- Levenberg-Marquardt (Davenport)
@_njit
def _lm_davenport(time, y, init, exposure, lo_t, hi_t, lw_lo, lw_hi, max_iter, rtol, params, model, jac):
    n = time.shape[0]
    k = init.shape[0]
    p = 3 * k
    th = np.empty(p)
    for j in range(k):
        th[3 * j] = min(max(init[j, 0], lo_t), hi_t)
        th[3 * j + 1] = min(max(np.log(init[j, 1]), lw_lo), lw_hi)
        th[3 * j + 2] = init[j, 2]
    for j in range(k):
        params[j, 0] = th[3 * j]
        params[j, 1] = np.exp(th[3 * j + 1])
        params[j, 2] = th[3 * j + 2]
    _davenport_model(time, params, exposure, model, jac)
    rss = 0.0
    r = np.empty(n)
    for i in range(n):
        r[i] = y[i] - model[i]
        rss += r[i] * r[i]
    trial = np.empty((k, 3))
    m_new = np.empty(n)
    j_new = np.empty((n, p))
    a = np.empty((p, p))
    g = np.empty(p)
    mat = np.empty((p, p))
    step = np.empty(p)
    th_new = np.empty(p)
    scale = np.empty(p)
    row = np.empty(p)
    lam = 1e-3
    for _ in range(max_iter):
        for c in range(p):
            g[c] = 0.0
            for c2 in range(p):
                a[c, c2] = 0.0
        for c in range(p):
            scale[c] = params[c // 3, 1] if c % 3 == 1 else 1.0
        for i in range(n):
            nz = False
            for c in range(p):
                row[c] = jac[i, c] * scale[c]
                if row[c] != 0.0:
                    nz = True
            if not nz:
                continue
            for c in range(p):
                jc = row[c]
                if jc == 0.0:
                    continue
                g[c] += jc * r[i]
                for c2 in range(c, p):
                    a[c, c2] += jc * row[c2]
        for c in range(p):
            for c2 in range(c):
                a[c, c2] = a[c2, c]
        improved = False
        done = False
        while lam < 1e12:
            for c in range(p):
                for c2 in range(p):
                    mat[c, c2] = a[c, c2]
                mat[c, c] += lam * (a[c, c] if a[c, c] > 0.0 else 1e-300)
                step[c] = g[c]
            if not _solve_small(mat, step, p):
                lam *= 10.0
                continue
            for j in range(k):
                th_new[3 * j] = min(max(th[3 * j] + step[3 * j], lo_t), hi_t)
                th_new[3 * j + 1] = min(max(th[3 * j + 1] + step[3 * j + 1], lw_lo), lw_hi)
                th_new[3 * j + 2] = th[3 * j + 2] + step[3 * j + 2]
                trial[j, 0] = th_new[3 * j]
                trial[j, 1] = np.exp(th_new[3 * j + 1])
                trial[j, 2] = th_new[3 * j + 2]
            _davenport_model(time, trial, exposure, m_new, j_new)
            rss_new = 0.0
            for i in range(n):
                d = y[i] - m_new[i]
                rss_new += d * d
            if np.isfinite(rss_new) and rss_new <= rss:
                improved = True
                done = rss - rss_new <= rtol * max(rss, 1e-300)
                for c in range(p):
                    th[c] = th_new[c]
                for j in range(k):
                    for c in range(3):
                        params[j, c] = trial[j, c]
                for i in range(n):
                    model[i] = m_new[i]
                    r[i] = y[i] - m_new[i]
                    for c in range(p):
                        jac[i, c] = j_new[i, c]
                rss = rss_new
                lam = max(lam / 3.0, 1e-9)
                break
            lam *= 4.0
        if not improved or done:
            break
    return rss


def lm_davenport(time: np.ndarray, y: np.ndarray, init: np.ndarray, exposure: float, tpeak_bounds: tuple[float, float],
                 fwhm_bounds: tuple[float, float], max_iter: int = 60,
                 rtol: float = 1e-7) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Levenberg-Marquardt least squares of a sum of exposure-averaged Davenport templates (see
    :func:`davenport_model`) in ``(tpeak, ln fwhm, amplitude)``, clamped to the bounds.

    Parameters
    ----------
    time, y : ndarray of float, shape (n,)
    init : ndarray of float, shape (k, 3)
        Starting ``tpeak``, ``fwhm`` (> 0), ``amplitude``.
    exposure : float
    tpeak_bounds, fwhm_bounds : (float, float)
    max_iter : int
    rtol : float
        Converged when an accepted step lowers the residual sum of squares by less than this fraction.

    Returns
    -------
    params : ndarray (k, 3), rss : float, model : ndarray (n,), jac : ndarray (n, 3k)
        ``jac`` is d model / d (tpeak, fwhm, amplitude) at ``params``.
    """
    t = _as_1d("time", time, np.float64)
    v = _as_1d("y", y, np.float64)
    p0 = np.ascontiguousarray(init, dtype=np.float64)
    if v.size != t.size:
        raise ValueError(f"time has {t.size} entries but y has {v.size}")
    if p0.ndim != 2 or p0.shape[1] != 3 or p0.shape[0] < 1:
        raise ValueError(f"init: need shape (k >= 1, 3) of tpeak, fwhm, amplitude, got {p0.shape}")
    if np.any(~(p0[:, 1] > 0)) or not np.all(np.isfinite(p0)) or not np.all(np.isfinite(v)):
        raise ValueError("init must be finite with every fwhm > 0, and y finite")
    lo_w, hi_w = float(fwhm_bounds[0]), float(fwhm_bounds[1])
    if not (0 < lo_w <= hi_w) or not tpeak_bounds[0] <= tpeak_bounds[1]:
        raise ValueError(f"bounds: need 0 < fwhm_lo <= fwhm_hi and tpeak_lo <= tpeak_hi, got {fwhm_bounds}, {tpeak_bounds}")
    k = p0.shape[0]
    params = np.empty((k, 3))
    model = np.empty(t.size)
    jac = np.empty((t.size, 3 * k))
    rss = _lm_davenport(t, v, p0, float(exposure), float(tpeak_bounds[0]), float(tpeak_bounds[1]), np.log(lo_w),
                        np.log(hi_w), int(max_iter), float(rtol), params, model, jac)
    return params, float(rss), model, jac


__all__ = ["segment_ids", "valid_centres", "gather_windows", "gather_padded_windows", "robust_scale_windows",
           "running_median", "local_poly_baseline", "davenport_model", "mendoza_model",
           "lm_davenport"]
