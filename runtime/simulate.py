"""Synthetic flares and light curves (numpy only): the Davenport et al. (2014) template.

Used by ``make demo``, by tests, and by the trainer's flare injection (one template for all).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .io import LightCurveData, from_arrays

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
