"""Plain references for every numba kernel of ``flarelight.runtime.kernels``: Python loops and numpy, written
for clarity, not speed. The kernel tests compare each kernel with its reference here (and run once more with
``NUMBA_DISABLE_JIT=1``, see the Makefile)."""
from __future__ import annotations

import math

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


def local_poly_ref(time, y, weight, block, half, min_side, max_half, degree=2, bridge_degree=None, end_scale=0.0):
    """Weighted local polynomial (tricube) at every cadence, window grown x1.5 until ``min_side`` usable cadences
    lie within 0.7 half widths on each side (or the block has no more), with np.linalg.lstsq. With ``end_scale`` > 0,
    past a block's last (before its first) usable cadence j: j's own value plus the slope and curvature of j's fit
    from a half width of at least ``end_scale`` x the stretch to continue."""
    time, y, weight = (np.asarray(a, float) for a in (time, y, weight))

    def fit(i, h):
        inb = block == block[i]
        use = inb & (weight > 0)
        left_all = int(np.sum(use & (time < time[i])))
        right_all = int(np.sum(use & (time > time[i])))
        while True:
            nl = int(np.sum(use & (time < time[i]) & (time >= time[i] - 0.7 * h)))
            nr = int(np.sum(use & (time > time[i]) & (time <= time[i] + 0.7 * h)))
            inl = int(np.sum(use & (time < time[i]) & (time >= time[i] - h)))
            inr = int(np.sum(use & (time > time[i]) & (time <= time[i] + h)))
            if (nl >= min_side or (inl == left_all and nl == left_all)) and \
                    (nr >= min_side or (inr == right_all and nr == right_all)):
                break
            if h >= max_half:
                break
            h = min(h * 1.5, max_half)
        u = (time - time[i]) / h
        sel = use & (np.abs(u) < 1) & (np.abs(time - time[i]) <= h)
        w = weight[sel] * (1 - np.abs(u[sel]) ** 3) ** 3
        both = inl > 0 and inr > 0
        top = (degree if bridge_degree is None else bridge_degree) if (h > half and both) else degree
        for deg in range(min(top, int(sel.sum()) - 1), -1, -1):
            a = np.vander(u[sel], deg + 1, increasing=True) * np.sqrt(w)[:, None]
            if np.linalg.matrix_rank(a) < deg + 1:
                continue
            coef = np.linalg.lstsq(a, y[sel] * np.sqrt(w), rcond=None)[0]
            return coef[0], np.r_[coef, np.zeros(4 - coef.size)], h
        return np.nan, np.zeros(4), h

    out = np.array([fit(i, half)[0] for i in range(time.size)])
    if end_scale > 0:
        for b in np.unique(block):
            inb = np.flatnonzero(block == b)
            usable = inb[weight[inb] > 0]
            if usable.size == 0:
                continue
            for j, rest in ((usable[-1], inb[inb > usable[-1]]), (usable[0], inb[inb < usable[0]])):
                if rest.size == 0:
                    continue
                far = inb[-1] if rest[0] > j else inb[0]
                _, coef, h = fit(j, max(half, end_scale * abs(time[far] - time[j])))
                own = fit(j, half)[0]
                u = (time[rest] - time[j]) / h
                out[rest] = own + coef[1] * u + coef[2] * u ** 2 + coef[3] * u ** 3
    return out


def davenport_average_ref(time, params, exposure, sub=4001):
    """Sum of Davenport templates averaged over each exposure by brute force (``sub`` sub-samples)."""
    from flarelight.runtime.simulate import davenport_template

    time = np.asarray(time, float)
    offs = (np.arange(sub) + 0.5) / sub - 0.5 if exposure > 0 else np.zeros(1)
    out = np.zeros(time.size)
    for tp, w, a in np.atleast_2d(params):
        out += a * davenport_template((time[:, None] + offs[None, :] * exposure - tp) / w).mean(axis=1)
    return out


def lm_ref(model, time, y, init, n_iter=200):
    """Plain Levenberg-Marquardt in (tpeak, ln fwhm, amplitude) with central-difference derivatives of ``model``."""
    th = np.array(init, float).reshape(-1, 3).copy()
    th[:, 1] = np.log(th[:, 1])
    th = th.ravel()

    def f(t):
        p = t.reshape(-1, 3).copy()
        p[:, 1] = np.exp(p[:, 1])
        return model(time, p)

    lam = 1e-3
    r = y - f(th)
    rss = r @ r
    for _ in range(n_iter):
        jac = np.empty((time.size, th.size))
        for c in range(th.size):
            h = 1e-6 * max(abs(th[c]), 1e-3)
            hi, lo = th.copy(), th.copy()
            hi[c] += h
            lo[c] -= h
            jac[:, c] = (f(hi) - f(lo)) / (2 * h)
        a, g = jac.T @ jac, jac.T @ r
        while lam < 1e12:
            new = th + np.linalg.solve(a + lam * np.diag(np.diag(a)), g)
            rn = y - f(new)
            if rn @ rn <= rss:
                th, r, done = new, rn, rss - rn @ rn <= 1e-12 * rss
                rss = r @ r
                lam /= 3
                break
            lam *= 4
        else:
            break
        if done:
            break
    p = th.reshape(-1, 3).copy()
    p[:, 1] = np.exp(p[:, 1])
    return p


def count_peaks_ref(excess, min_height):
    """Local maxima with height and prominence >= min_height, by scanning each side (at least 1 when non-empty)."""
    y = [(-math.inf if not math.isfinite(v) else float(v)) for v in excess]
    n = len(y)
    if n == 0:
        return 0
    count = 0
    for i in range(n):
        is_max = (i == 0 or y[i] > y[i - 1]) and (i == n - 1 or y[i] >= y[i + 1])
        if not is_max or y[i] < min_height:
            continue
        left = [y[j] for j in range(i - 1, -1, -1)]
        lmin = y[i]
        for v in left:
            if v > y[i]:
                break
            lmin = min(lmin, v)
        rmin = y[i]
        for v in y[i + 1:]:
            if v >= y[i]:
                break
            rmin = min(rmin, v)
        if y[i] - max(lmin, rmin) >= min_height:
            count += 1
    return max(count, 1)
