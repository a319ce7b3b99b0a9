"""Synthetic flares: the Davenport et al. (2014) template, the one flare injector, and a
light-curve simulator.

:func:`add_flares` is the injector the trainer (augmentation), the benches (injection-recovery) and the
tests share. A flare *adds* flux relative to the star's quiescent level: ``amplitude x Q x profile``,
where ``Q`` is the local quiescent flux (running median of the good flux, within the segment) at the
peak and ``profile`` the exposure-averaged template. In units of ``Q`` the excess is exactly the
template, which is what Davenport's relative flux ``(F - Q) / Q`` describes and what the catalogue
measures an equivalent duration against; the star's noise and any other signal (eclipses, steps,
another flare) are left as they are, not scaled by the flare.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .io import LightCurveData, from_arrays
from .kernels import running_median
from .metadata import Preprocessing
from .preprocess import segment

# Davenport et al. 2014, ApJ 797, 122, eqs. 1-4 (time in units of the FWHM, flux in units of the peak)
_RISE = (1.0, 1.941, -0.175, -2.246, -1.125)
_DECAY = (0.6890, -1.600, 0.3030, -0.2783)


def davenport_template(x: np.ndarray) -> np.ndarray:
    """Davenport (2014) flare shape at ``x = (t - tpeak) / fwhm``: peak 1 at x = 0, 0 before x = -1."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    rise = (x >= -1.0) & (x <= 0.0)
    xr = x[rise]
    out[rise] = _RISE[0] + _RISE[1] * xr + _RISE[2] * xr**2 + _RISE[3] * xr**3 + _RISE[4] * xr**4
    dec = x > 0.0
    xd = x[dec]
    out[dec] = _DECAY[0] * np.exp(_DECAY[1] * xd) + _DECAY[2] * np.exp(_DECAY[3] * xd)
    return np.clip(out, 0.0, None)


def flare_profile(time: np.ndarray, tpeak: float, fwhm: float, amplitude: float,
                  exposure: float | None = None, oversample: int = 11) -> np.ndarray:
    """Relative flux excess of one flare, averaged over each exposure (so short flares are not aliased).

    Parameters
    ----------
    time : ndarray
        Mid-exposure times (days).
    tpeak, fwhm : float
        Peak time and full width at half maximum (days).
    amplitude : float
        Peak relative amplitude (before exposure averaging).
    exposure : float, optional
        Exposure length (days); default the median step of ``time``.
    oversample : int
        Sub-samples per exposure.
    """
    time = np.asarray(time, dtype=np.float64)
    if fwhm <= 0:
        raise ValueError(f"fwhm={fwhm}: must be > 0")
    if exposure is None:
        finite = time[np.isfinite(time)]
        exposure = float(np.median(np.diff(finite))) if finite.size > 1 else 0.0
    offs = (np.arange(oversample) + 0.5) / oversample - 0.5
    sub = time[:, None] + offs[None, :] * exposure
    return amplitude * davenport_template((sub - tpeak) / fwhm).mean(axis=1)


#: the profile is evaluated from ``tpeak - BEFORE x fwhm`` to ``tpeak + AFTER x fwhm`` (plus one exposure each
#: side): the template is 0 before ``-1`` FWHM and below 5e-6 of its peak after 40 FWHM
PROFILE_BEFORE_FWHM, PROFILE_AFTER_FWHM = 2.0, 40.0
#: half width (cadences) of the running median that gives the quiescent level
QUIESCENT_HALF_WIDTH = 180


def segment_edge_distance(seg: np.ndarray) -> np.ndarray:
    """Cadences from each cadence to the nearest edge of its segment (0 at a segment's first and last cadence).

    Parameters
    ----------
    seg : ndarray of int, shape (n,)
        Segment label of each (kept, time-ordered) cadence, e.g. from
        :func:`flarelight.runtime.preprocess.segment`; a new segment starts wherever the label changes.
    """
    seg = np.asarray(seg)
    n = seg.size
    if n == 0:
        return np.empty(0, np.int64)
    change = np.diff(seg) != 0
    brk = np.flatnonzero(change)
    firsts = np.r_[0, brk + 1]
    lasts = np.r_[brk, n - 1]
    k = np.r_[0, np.cumsum(change)]
    idx = np.arange(n)
    return np.minimum(idx - firsts[k], lasts[k] - idx).astype(np.int64)


def quiescent_level(time: np.ndarray, flux: np.ndarray, good: np.ndarray, *, pre: Preprocessing | None = None,
                    half_width: int = QUIESCENT_HALF_WIDTH) -> np.ndarray:
    """The local quiescent flux of the good cadences: a running median within segments.

    Parameters
    ----------
    time, flux : ndarray, shape (n,)
    good : ndarray of bool, shape (n,)
        The cadences to use (finite, unflagged, time-ordered).
    pre : Preprocessing, optional
        Its gap rule splits the segments (:func:`~flarelight.runtime.preprocess.segment`); default
        ``Preprocessing()``.
    half_width : int
        Cadences each side of the running median.

    Returns
    -------
    ndarray of float64, shape (good.sum(),)
        The level at each good cadence, in order.
    """
    gi = np.flatnonzero(good)
    seg, _ = segment(np.asarray(time, np.float64)[gi], pre or Preprocessing())
    return running_median(np.asarray(flux, np.float64)[gi], seg, half_width)


@dataclass(frozen=True)
class InjectedFlares:
    """The result of :func:`add_flares`.

    Attributes
    ----------
    flux : ndarray, shape (n,)
        The input flux with the flares added.
    excess : ndarray of float64, shape (n,)
        The added flux in units of each flare's quiescent level (the sum of the exposure-averaged
        profiles); 0 where no flare reaches.
    level : ndarray of float64, shape (m,)
        Each flare's quiescent level (flux units): its amplitude is relative to this.
    index : ndarray of int64, shape (m,)
        Each flare's good cadence nearest its peak (an input row).
    """

    flux: np.ndarray
    excess: np.ndarray
    level: np.ndarray
    index: np.ndarray


def add_flares(time: np.ndarray, flux: np.ndarray, tpeak: np.ndarray, fwhm: np.ndarray, amplitude: np.ndarray, *,
               good: np.ndarray | None = None, pre: Preprocessing | None = None,
               half_width: int = QUIESCENT_HALF_WIDTH, exposure: float | None = None) -> InjectedFlares:
    """Add Davenport flares to a light curve: ``amplitude x Q x profile`` each (the one flare injector).

    ``Q`` is the flare's local quiescent level (:func:`quiescent_level` at the good cadence nearest its
    peak); ``profile`` is :func:`flare_profile`, averaged over each exposure. Rows with a NaN time are left
    as they are.

    Parameters
    ----------
    time, flux : ndarray, shape (n,)
        Time (days) and flux of every row, time-ordered where finite.
    tpeak, fwhm, amplitude : array-like, shape (m,)
        Peak times and FWHMs (days), peak amplitudes relative to ``Q`` (before exposure averaging).
    good : ndarray of bool, shape (n,), optional
        Cadences that define ``Q`` and the exposure; default: finite time and flux.
    pre : Preprocessing, optional
        Gap rule of the segments ``Q`` stays within (default ``Preprocessing()``).
    half_width : int
        Half width (cadences) of the running median.
    exposure : float, optional
        Exposure (days); default the median step of the good cadences.

    Raises
    ------
    ValueError
        Parameter arrays of different lengths, a non-positive FWHM, or fewer than two good cadences.
    """
    time = np.asarray(time, np.float64)
    flux = np.asarray(flux)
    tpeak, fwhm, amp = (np.atleast_1d(np.asarray(a, np.float64)) for a in (tpeak, fwhm, amplitude))
    if not tpeak.shape == fwhm.shape == amp.shape or tpeak.ndim != 1:
        raise ValueError(f"tpeak, fwhm and amplitude have shapes {tpeak.shape}, {fwhm.shape}, {amp.shape}; "
                         "give one value per flare")
    if np.any(fwhm <= 0):
        raise ValueError(f"fwhm must be > 0, found {fwhm[fwhm <= 0][:5]}")
    if good is None:
        good = np.isfinite(time) & np.isfinite(flux)
    gi = np.flatnonzero(good)
    if gi.size < 2:
        raise ValueError(f"{gi.size} good cadence(s): flares need a light curve to be added to")
    gt = time[gi]
    cad = float(np.median(np.diff(gt)))
    exposure = cad if exposure is None else float(exposure)
    level_good = quiescent_level(time, flux, good, pre=pre, half_width=half_width)
    j = np.clip(np.searchsorted(gt, tpeak), 1, gt.size - 1)
    j = np.where(np.abs(gt[j - 1] - tpeak) <= np.abs(gt[j] - tpeak), j - 1, j)
    level = level_good[j]
    out = np.array(flux, dtype=np.result_type(flux.dtype, np.float64), copy=True)
    excess = np.zeros(time.size, np.float64)
    finite = np.isfinite(time)
    for tp, fw, a, q in zip(tpeak, fwhm, amp, level):
        near = finite & (time >= tp - PROFILE_BEFORE_FWHM * fw - exposure) & \
            (time <= tp + PROFILE_AFTER_FWHM * fw + exposure)
        prof = flare_profile(time[near], tp, fw, a, exposure=exposure)
        out[near] += q * prof
        excess[near] += prof
    return InjectedFlares(flux=out, excess=excess, level=level, index=gi[j].astype(np.int64))


@dataclass
class SimulatedFlare:
    """Parameters of one injected flare (times in days, amplitude relative to the quiescent flux)."""

    tpeak: float
    fwhm: float
    amplitude: float


def simulate_lightcurve(n_days: float = 27.0, cadence_s: float = 120.0, *, seed: int | None = 0,
                        flares: list[SimulatedFlare] | None = None, n_flares: int = 6,
                        rotation_period: float = 3.1, rotation_amplitude: float = 0.01, noise: float = 1e-3,
                        t0: float = 2000.0, base_flux: float = 1.0e4, gap_days: tuple[float, float] = (13.0, 14.0),
                        n_holes: int = 4) -> tuple[LightCurveData, list[SimulatedFlare]]:
    """A realistic 2-minute TESS-like light curve: rotation, white noise, a mid-sector gap, short holes, flares.

    Returns
    -------
    lc : LightCurveData
        With flux errors, QUALITY flags (the short holes are flagged 32 "Desat" and NaN) and TIC 0.
    flares : list of SimulatedFlare
        The injected flares (drawn if not given: log-uniform amplitude 0.5%-20%, FWHM 4-40 min).
    """
    rng = np.random.default_rng(seed)
    cad = cadence_s / 86400.0
    time = t0 + np.arange(int(n_days / cad)) * cad
    time = time[~((time - t0 >= gap_days[0]) & (time - t0 < gap_days[1]))]
    phase = rng.uniform(0, 2 * np.pi)
    rel = (rotation_amplitude * np.sin(2 * np.pi * (time - t0) / rotation_period + phase)
           + 0.3 * rotation_amplitude * np.sin(4 * np.pi * (time - t0) / rotation_period + 2 * phase))
    if flares is None:
        usable = time[(time > time[0] + 0.5) & (time < time[-1] - 0.5)]
        flares = [SimulatedFlare(tpeak=float(rng.choice(usable)), fwhm=float(rng.uniform(4, 40)) / 1440.0,
                                 amplitude=float(np.exp(rng.uniform(np.log(0.005), np.log(0.2)))))
                  for _ in range(n_flares)]
    for fl in flares:
        rel += flare_profile(time, fl.tpeak, fl.fwhm, fl.amplitude, exposure=cad)
    flux = base_flux * (1.0 + rel + rng.normal(0, noise, time.size))
    flux_err = np.full(time.size, base_flux * noise)
    quality = np.zeros(time.size, np.int32)
    for start in rng.integers(200, time.size - 200, n_holes):
        quality[start:start + 2] = 32
        flux[start:start + 2] = np.nan
    lc = from_arrays(time, flux, flux_err, quality, meta={"tic": 0, "sector": 0, "origin": "flarelight.simulate"})
    return lc, sorted(flares, key=lambda f: f.tpeak)
