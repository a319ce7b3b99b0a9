"""Plain references for every numba kernel of ``flarelight.runtime.kernels``: Python loops and numpy, written
for clarity, not speed. The kernel tests compare each kernel with its reference here (and run once more with
``NUMBA_DISABLE_JIT=1``, see the Makefile)."""
from __future__ import annotations

import numpy as np


def segment_ids_ref(time, max_step):
    out, seg = [], 0
    for i, t in enumerate(time):
        if i > 0 and t - time[i - 1] > max_step:
            seg += 1
        out.append(seg)
    return np.array(out, dtype=np.int64)


def valid_centres_ref(seg, window, offset):
    n = len(seg)
    out = np.zeros(n, bool)
    for i in range(n):
        idx = range(i - offset, i - offset + window)
        out[i] = all(0 <= j < n and seg[j] == seg[i] for j in idx)
    return out


def gather_windows_ref(flux, starts, window):
    view = np.lib.stride_tricks.sliding_window_view(np.asarray(flux, np.float32), window)
    return view[np.asarray(starts, int)].copy()


def gather_padded_ref(flux, seg, centres, window, offset, fill=1.0):
    out = np.zeros((len(centres), window, 2), np.float32)
    for k, c in enumerate(centres):
        for j in range(window):
            i = c - offset + j
            if 0 <= i < len(flux) and seg[i] == seg[c]:
                out[k, j] = (flux[i], 1.0)
            else:
                out[k, j] = (fill, 0.0)
    return out


def robust_scale_ref(windows, scale):
    out = windows.astype(np.float64).copy()
    for k in range(out.shape[0]):
        real = np.ones(out.shape[1], bool) if out.shape[2] == 1 else out[k, :, 1] > 0.5
        if not real.any():
            out[k, :, 0] = 0.0
            continue
        med = np.median(out[k, real, 0])
        out[k, :, 0] = np.where(real, np.arcsinh((out[k, :, 0] - med) / scale), 0.0)
    return out


def reference_running_median(x: np.ndarray, seg: np.ndarray, half: int) -> np.ndarray:
    """np.median over a Python loop: finite values within ``half`` cadences, same segment, truncated at edges."""
    x = np.asarray(x, float)
    out = np.full(x.size, np.nan)
    for i in range(x.size):
        lo, hi = max(0, i - half), min(x.size, i + half + 1)
        w = x[lo:hi][(seg[lo:hi] == seg[i]) & np.isfinite(x[lo:hi])]
        if w.size:
            out[i] = np.median(w)
    return out
