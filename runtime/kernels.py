"""All of flarelight's numba kernels.

Each private ``_name`` kernel takes arrays and scalars only; its public wrapper validates dtype,
shape and contiguity and says what it found and what to do. Plain-numpy / Python-loop references
for every kernel live in ``tests/`` beside the tests that compare them.
"""
from __future__ import annotations

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
    return _running_median(a, s, int(half_width))


__all__ = ["segment_ids", "valid_centres", "gather_windows", "gather_padded_windows", "robust_scale_windows",
           "running_median"]
