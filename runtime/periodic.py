"""The star's own periodic signal: its dominant Lomb-Scargle period and its flux folded at that period.

The catalogue finds the period once per light curve (:func:`dominant_period`, flares masked) and the periods to fold
at (:func:`fold_periods`: it and twice it, each refined to the sharpest fold); the baseline bridges long masked
stretches with the folded profile (:class:`PhaseFold`), and vetting asks whether the fold explains a candidate
(eclipses, pulsations and rotational humps come back every cycle; flares do not).
"""
from __future__ import annotations

import math

import numpy as np

#: shortest period searched (days)
MIN_PERIOD = 0.04
#: the dominant period counts when its false-alarm probability (Baluev 2008: :func:`fap_baluev`) is below this
PERIOD_FAP = 1e-3
#: the periodogram is computed on the flux averaged in bins of this many days
LS_BIN = 1.0 / 48.0
#: a fold needs this many cycles in the light curve, and each phase bin this many cadences
FOLD_MIN_CYCLES = 5
#: trial periods of each step of :func:`refine_period`
REFINE_TRIALS = 51
#: a coarse fold's phase bins (:func:`coarse_bin_days`): a hundredth of the period, at least this many cadences (each
#: bin's median or variance over many cycles' cadences is well determined)
COARSE_BINS_PER_PERIOD = 100
COARSE_BIN_CADENCES = 5


def fap_baluev(power: float, fmax: float, time: np.ndarray) -> float:
    """False-alarm probability of a peak of standard-normalised Lomb-Scargle ``power`` searched up to frequency
    ``fmax`` (Baluev 2008; astropy's "baluev" method, written with :func:`math.lgamma` so that no scipy is needed)."""
    n = time.size
    if n < 5 or not 0.0 <= power < 1.0:
        return 0.0 if power >= 1.0 else 1.0
    nh, nk = n - 1, n - 3
    single = (1.0 - power) ** (0.5 * nk)
    gamma = math.sqrt(2.0 / nh) * math.exp(math.lgamma(nh / 2.0) - math.lgamma((nh - 1) / 2.0))
    w = fmax * math.sqrt(4.0 * math.pi * float(np.var(time)))
    tau = gamma * w * (1.0 - power) ** (0.5 * (nk - 1)) * math.sqrt(0.5 * nh * power)
    return float(1.0 - (1.0 - single) * math.exp(-tau))


def dominant_period(time: np.ndarray, flux: np.ndarray, usable: np.ndarray) -> tuple[float, float]:
    """(period in days, normalised Lomb-Scargle power) of the usable flux, binned to ``LS_BIN``; (nan, nan)
    when the light curve is too short."""
    t, f = time[usable], flux[usable]
    if t.size < 50:
        return float("nan"), float("nan")
    span = float(t[-1] - t[0])
    if span < 3 * MIN_PERIOD * 3:
        return float("nan"), float("nan")
    idx = np.floor((t - t[0]) / LS_BIN).astype(np.int64)
    counts = np.bincount(idx)
    ok = counts > 0
    tb = np.bincount(idx, t)[ok] / counts[ok]
    fb = np.bincount(idx, f)[ok] / counts[ok]
    if tb.size < 20:
        return float("nan"), float("nan")
    from astropy.timeseries import LombScargle

    ls = LombScargle(tb, fb)
    fmin, fmax = 3.0 / span, 1.0 / max(MIN_PERIOD, 2.5 * LS_BIN)
    freq, power = ls.autopower(minimum_frequency=fmin, maximum_frequency=fmax, samples_per_peak=10)
    if freq.size == 0 or not np.isfinite(power).any():
        return float("nan"), float("nan")
    i = int(np.nanargmax(power))
    fap = fap_baluev(float(power[i]), fmax, tb)
    if not fap < PERIOD_FAP:
        return float("nan"), float(power[i])
    fine = np.linspace(freq[max(i - 1, 0)], freq[min(i + 1, freq.size - 1)], 101)  # the peak to 1/50 of the grid
    fine_power = ls.power(fine)
    j = int(np.nanargmax(fine_power))
    return float(1.0 / fine[j]), float(fine_power[j])


class PhaseFold:
    """The median relative flux of the usable cadences folded at ``period``, in phase bins about ``bin_d`` days
    wide, interpolated linearly between bin centres (``ok`` False when the light curve holds fewer than
    ``FOLD_MIN_CYCLES`` cycles; a bin with fewer than ``FOLD_MIN_CYCLES`` cadences is NaN)."""

    def __init__(self, time: np.ndarray, rel: np.ndarray, usable: np.ndarray, period: float, bin_d: float) -> None:
        use = usable & np.isfinite(rel)
        t, r = time[use], rel[use]
        self.period = float(period)
        self.n_bins = max(int(self.period / bin_d), 8)
        self.ok = bool(t.size > 0 and period > 0 and (t[-1] - t[0]) / period >= FOLD_MIN_CYCLES)
        self.median = np.full(self.n_bins, np.nan)
        if not self.ok:
            return
        b = self.bins(t)
        order = np.lexsort((r, b))  # by bin, then by value: each bin's median is at its middle
        counts = np.bincount(b, minlength=self.n_bins)
        start = np.r_[0, np.cumsum(counts)[:-1]]
        full = counts >= FOLD_MIN_CYCLES
        rs = r[order]
        lo_mid = start + (counts - 1) // 2
        hi_mid = start + counts // 2
        self.median[full] = 0.5 * (rs[lo_mid[full]] + rs[hi_mid[full]])

    def bins(self, t: np.ndarray) -> np.ndarray:
        return phase_bins(t, self.period, self.n_bins)

    def at(self, t: np.ndarray) -> np.ndarray:
        """The folded profile at times ``t`` (NaN where a neighbouring bin has too few cadences)."""
        x = np.mod(t / self.period, 1.0) * self.n_bins - 0.5  # in bins, 0 = the first bin's centre
        i0 = np.floor(x).astype(np.int64)
        f = x - i0
        return (1.0 - f) * self.median[i0 % self.n_bins] + f * self.median[(i0 + 1) % self.n_bins]


def phase_bins(time: np.ndarray, period: float, n_bins: int) -> np.ndarray:
    """The phase bin (0 .. ``n_bins`` - 1) of each time at ``period``."""
    return np.minimum((np.mod(time / period, 1.0) * n_bins).astype(np.int64), n_bins - 1)


def coarse_bin_days(period: float, cad_d: float) -> float:
    """The phase-bin width (days) of a coarse fold at ``period``: ``1 / COARSE_BINS_PER_PERIOD`` of it, at least
    ``COARSE_BIN_CADENCES`` cadences of ``cad_d`` days."""
    return max(COARSE_BIN_CADENCES * cad_d, period / COARSE_BINS_PER_PERIOD)


def phase_dispersion(time: np.ndarray, flux: np.ndarray, period: float, n_bins: int) -> float:
    """The pooled variance of ``flux`` within ``n_bins`` phase bins at ``period`` (Stellingwerf's phase dispersion:
    smallest where the fold is sharpest)."""
    b = phase_bins(time, period, n_bins)
    c = np.bincount(b, minlength=n_bins)
    s = np.bincount(b, flux, minlength=n_bins)
    s2 = np.bincount(b, flux * flux, minlength=n_bins)
    ok = c > 1
    dof = float(np.sum(c[ok] - 1))
    return float(np.sum(s2[ok] - s[ok] ** 2 / c[ok]) / dof) if dof > 0 else float("inf")


def refine_period(time: np.ndarray, flux: np.ndarray, usable: np.ndarray, period: float, cad_d: float) -> float:
    """``period`` refined to the sharpest fold of the usable flux: the smallest phase dispersion over
    ``REFINE_TRIALS`` trial periods within the periodogram's resolution (P^2 / span) of it, then as many within two
    trial steps of the best (phase bins of :func:`coarse_bin_days`).

    A Lomb-Scargle peak is a sinusoid's best period; an eclipsing binary's narrow eclipses fold sharpest a little off
    it (TIC 32150630: 0.1% off, 40 minutes of smear over a sector).
    """
    t, f = time[usable], flux[usable]
    if not (np.isfinite(period) and period > 0) or t.size < 50:
        return period
    span = float(t[-1] - t[0])
    n_bins = max(int(period / coarse_bin_days(period, cad_d)), 8)
    best, half = float(period), period * period / span
    for _ in range(2):
        trials = best + np.linspace(-half, half, REFINE_TRIALS)
        trials = trials[trials > 0]
        disp = [phase_dispersion(t, f, p, n_bins) for p in trials]
        best = float(trials[int(np.argmin(disp))])
        half = 2.0 * (trials[1] - trials[0]) if trials.size > 1 else half
    return best


def fold_periods(time: np.ndarray, flux: np.ndarray, usable: np.ndarray, period: float,
                 cad_d: float) -> tuple[float, ...]:
    """The periods to fold the light curve at: the dominant period and twice it (an eclipsing binary's periodogram
    often peaks at half its orbit) where the light curve holds ``FOLD_MIN_CYCLES`` cycles of them, each refined by
    :func:`refine_period`; () without a period."""
    if not (np.isfinite(period) and period > 0) or not usable.any():
        return ()
    span = float(np.max(time[usable]) - np.min(time[usable]))
    return tuple(refine_period(time, flux, usable, k * period, cad_d) for k in (1.0, 2.0)
                 if span >= FOLD_MIN_CYCLES * k * period)


__all__ = ["dominant_period", "fap_baluev", "PhaseFold", "phase_bins", "coarse_bin_days", "phase_dispersion",
           "refine_period", "fold_periods",
           "MIN_PERIOD", "PERIOD_FAP", "LS_BIN", "FOLD_MIN_CYCLES"]
