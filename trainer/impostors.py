"""Light-curve impostors: signals that are not flares but can look like one (flarelight-v2's hard negatives).

Each simulator takes the light curve's times (BTJD days) and a numpy Generator and returns an
:class:`Impostor`: a multiplicative flux ``factor`` (1 = unchanged), optional QUALITY bits to OR in, the
times of its sharpest features (for sampling negative windows there) and its parameters. None of them adds a
flare. :func:`apply` multiplies one into a :class:`~flarelight.runtime.io.LightCurveData`.

Kinds (:data:`SIMULATORS`): detached eclipsing binaries (hours to days, primary and secondary eclipses,
ellipsoidal variation), HW Vir-like reflection binaries (a deep narrow primary eclipse, a reflection hump with
a secondary eclipse at its top), delta Scuti pulsators (several modes), RR Lyrae-like pulsators (fast rise,
slow decline), fast rotators (two spots), PDC ramps after gaps, scattered-light ramps before orbit ends,
momentum-dump flux steps (the dump cadence flagged Desat), attitude-tweak steps (flagged AttitudeTweak) and
one-cadence cosmic rays (about half flagged ImpulsiveOutlier, bit 512).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from flarelight.runtime.io import LightCurveData

#: QUALITY bits the simulators set
ATTITUDE_TWEAK, DESAT, IMPULSIVE_OUTLIER = 1, 32, 512


@dataclass
class Impostor:
    """A simulated non-flare signal.

    Attributes
    ----------
    kind : str
    factor : ndarray of float64
        Multiplies the flux (1 = unchanged).
    quality : ndarray of int32
        Bits to OR into QUALITY (0 = none).
    events : ndarray of float64
        Times (BTJD) of its sharpest features: eclipse egresses, steps, spikes, ramp starts.
    params : dict
    """

    kind: str
    factor: np.ndarray
    quality: np.ndarray
    events: np.ndarray
    params: dict = field(default_factory=dict)


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _eclipse(dphase: np.ndarray, half_width: float, ingress: float) -> np.ndarray:
    """Trapezoid of depth 1 at phase distance ``dphase`` (0 at mid-eclipse), ``half_width`` and ``ingress`` in
    phase units."""
    return np.clip((half_width - np.abs(dphase)) / max(ingress, 1e-9), 0.0, 1.0)


def _phase_distance(phase: np.ndarray, centre: float) -> np.ndarray:
    return (phase - centre + 0.5) % 1.0 - 0.5


def _phase_events(time: np.ndarray, period: float, t0: float, phases: tuple[float, ...], offset: float) -> np.ndarray:
    """Times of the given orbital phases (+ ``offset`` in phase units) over ``time``'s span."""
    lo, hi = float(np.nanmin(time)), float(np.nanmax(time))
    n = np.arange(np.floor((lo - t0) / period) - 1, np.ceil((hi - t0) / period) + 1)
    ev = np.concatenate([t0 + (n + p + offset) * period for p in phases])
    return np.sort(ev[(ev >= lo) & (ev <= hi)])


def _none(time: np.ndarray) -> np.ndarray:
    return np.zeros(time.size, np.int32)


def eclipsing_binary(time: np.ndarray, rng: np.random.Generator, period: tuple[float, float] = (0.15, 6.0)) -> Impostor:
    """A detached/semi-detached eclipsing binary: primary eclipse 1-50% deep, secondary 5-60% of it, eclipse
    duration 3-15% of the period with sharp ingress/egress, ellipsoidal variation up to 3%."""
    p = _loguniform(rng, *period)
    t0 = float(np.nanmin(time) + rng.uniform(0, p))
    phase = ((time - t0) / p) % 1.0
    d1 = _loguniform(rng, 0.01, 0.5)
    d2 = d1 * rng.uniform(0.05, 0.6)
    hw = rng.uniform(0.015, 0.075)
    ing = hw * rng.uniform(0.2, 0.9)
    ell = _loguniform(rng, 1e-4, 0.03)
    shape = 1.0 - d1 * _eclipse(_phase_distance(phase, 0.0), hw, ing) - d2 * _eclipse(_phase_distance(phase, 0.5), hw, ing)
    shape *= 1.0 - ell * 0.5 * (1.0 - np.cos(4 * np.pi * phase))
    ev = _phase_events(time, p, t0, (0.0, 0.5), hw)
    return Impostor("eb", shape, _none(time), ev, {"period": p, "depth1": d1, "depth2": d2, "half_width": hw})


def reflection_binary(time: np.ndarray, rng: np.random.Generator, period: tuple[float, float] = (0.07, 0.5)) -> Impostor:
    """An HW Vir-like reflection binary: a deep, narrow primary eclipse (5-60%), a reflection hump (2-25%)
    peaking at phase 0.5 with a secondary eclipse at its top; the egress of the secondary followed by the hump's
    decline is the flare-like feature."""
    p = _loguniform(rng, *period)
    t0 = float(np.nanmin(time) + rng.uniform(0, p))
    phase = ((time - t0) / p) % 1.0
    d1 = _loguniform(rng, 0.05, 0.6)
    hump = _loguniform(rng, 0.02, 0.25)
    hw = rng.uniform(0.04, 0.09)
    ing = hw * rng.uniform(0.3, 0.8)
    refl = hump * (0.5 * (1.0 - np.cos(2 * np.pi * phase))) ** rng.uniform(1.0, 2.5)
    sec = refl * rng.uniform(0.3, 1.0) * _eclipse(_phase_distance(phase, 0.5), hw, ing)
    shape = (1.0 + refl - sec) * (1.0 - d1 * _eclipse(_phase_distance(phase, 0.0), hw, ing))
    ev = _phase_events(time, p, t0, (0.0, 0.5), hw)
    return Impostor("reflection", shape, _none(time), ev, {"period": p, "depth1": d1, "hump": hump})


def delta_scuti(time: np.ndarray, rng: np.random.Generator) -> Impostor:
    """A delta Scuti-like pulsator: 1-5 modes, periods 0.02-0.25 d, amplitudes 0.05-3%."""
    t = time - np.nanmin(time)
    shape = np.ones(time.size)
    modes = []
    for _ in range(int(rng.integers(1, 6))):
        per, amp = _loguniform(rng, 0.02, 0.25), _loguniform(rng, 5e-4, 0.03)
        shape += amp * np.sin(2 * np.pi * t / per + rng.uniform(0, 2 * np.pi))
        modes.append((per, amp))
    p0 = modes[0][0]
    ev = np.nanmin(time) + np.arange(0.0, float(np.nanmax(t)), p0)
    return Impostor("delta_scuti", shape, _none(time), ev, {"modes": modes})


def rr_lyrae(time: np.ndarray, rng: np.random.Generator) -> Impostor:
    """An RR Lyrae-like pulsator: period 0.25-0.9 d, amplitude 5-60%, a fast rise over 8-20% of the cycle and a
    slow, slightly curved decline (the rise is the flare-like feature)."""
    p = _loguniform(rng, 0.25, 0.9)
    amp = _loguniform(rng, 0.05, 0.6)
    rise = rng.uniform(0.08, 0.2)
    t0 = float(np.nanmin(time) + rng.uniform(0, p))
    phase = ((time - t0) / p) % 1.0
    s = np.where(phase < rise, phase / rise, (1.0 - (phase - rise) / (1.0 - rise)) ** rng.uniform(1.0, 2.0))
    ev = _phase_events(time, p, t0, (0.0,), rise)
    return Impostor("rr_lyrae", 1.0 + amp * (s - 0.5), _none(time), ev, {"period": p, "amplitude": amp, "rise": rise})


def fast_rotator(time: np.ndarray, rng: np.random.Generator) -> Impostor:
    """A spotted fast rotator: period 0.1-1.5 d, two spots (fundamental and harmonic), amplitude 0.3-15%."""
    p = _loguniform(rng, 0.1, 1.5)
    amp = _loguniform(rng, 0.003, 0.15)
    t = time - np.nanmin(time)
    s = np.sin(2 * np.pi * t / p) + rng.uniform(0, 0.8) * np.sin(4 * np.pi * t / p + rng.uniform(0, 2 * np.pi))
    s = s / np.nanmax(np.abs(s))
    ev = np.nanmin(time) + np.arange(0.0, float(np.nanmax(t)), p)
    return Impostor("rotator", 1.0 + amp * s, _none(time), ev, {"period": p, "amplitude": amp})


def _gap_starts(time: np.ndarray, min_gap_d: float = 0.1) -> np.ndarray:
    """First times after each gap longer than ``min_gap_d`` (and the first time)."""
    t = time[np.isfinite(time)]
    return np.r_[t[:1], t[1:][np.diff(t) > min_gap_d]]


def _gap_ends(time: np.ndarray, min_gap_d: float = 0.1) -> np.ndarray:
    t = time[np.isfinite(time)]
    return np.r_[t[:-1][np.diff(t) > min_gap_d], t[-1:]]


def pdc_ramp(time: np.ndarray, rng: np.random.Generator) -> Impostor:
    """PDC ramps after gaps: at the start of each segment the flux decays (or recovers) exponentially,
    amplitude 0.05-3%, e-folding 0.02-0.5 d; a rising-then-decaying start looks like a flare's tail."""
    shape = np.ones(time.size)
    starts = _gap_starts(time)
    for t0 in starts:
        amp = float(rng.choice([-1, 1]) * _loguniform(rng, 5e-4, 0.03))
        tau = _loguniform(rng, 0.02, 0.5)
        dt = time - t0
        shape += np.where((dt >= 0) & (dt < 8 * tau), amp * np.exp(-np.clip(dt, 0, None) / tau), 0.0)
    return Impostor("pdc_ramp", shape, _none(time), starts, {"n": int(starts.size)})


def scattered_light(time: np.ndarray, rng: np.random.Generator) -> Impostor:
    """Scattered-light ramps: before each segment end (orbit perigee) the flux grows over 0.3-2 d, by
    0.1-5%, steepening (power 1.5-4); flagged Straylight (2048) on half of the ramps."""
    shape = np.ones(time.size)
    q = _none(time)
    ends = _gap_ends(time)
    for t1 in ends:
        length, amp = rng.uniform(0.3, 2.0), float(rng.choice([-1, 1], p=[0.3, 0.7]) * _loguniform(rng, 1e-3, 0.05))
        x = np.clip((time - (t1 - length)) / length, 0.0, 1.0)
        shape += amp * x ** rng.uniform(1.5, 4.0)
        if rng.uniform() < 0.5:
            q[(time > t1 - length) & (time <= t1)] |= 2048
    return Impostor("scattered_light", shape, q, ends, {"n": int(ends.size)})


def _steps(time: np.ndarray, rng: np.random.Generator, kind: str, times: np.ndarray, size: tuple[float, float],
           bit: int) -> Impostor:
    shape = np.ones(time.size)
    q = _none(time)
    for t0 in times:
        s = float(rng.choice([-1, 1]) * _loguniform(rng, *size))
        shape *= np.where(time >= t0, 1.0 + s, 1.0)
        if rng.uniform() < 0.3:  # some steps relax back over hours (a thermal settle)
            tau = _loguniform(rng, 0.05, 0.5)
            dt = time - t0
            shape *= np.where(dt >= 0, 1.0 - s * (1.0 - np.exp(-np.clip(dt, 0, None) / tau)), 1.0)
        j = int(np.searchsorted(time, t0))
        if j < time.size:
            q[j] |= bit
    return Impostor(kind, shape, q, np.asarray(times, np.float64), {"n": int(len(times))})


def momentum_dumps(time: np.ndarray, rng: np.random.Generator) -> Impostor:
    """Momentum dumps every 2-5 days: a flux step of 0.02-1% at each, the dump cadence flagged Desat (32)."""
    lo, hi = float(np.nanmin(time)), float(np.nanmax(time))
    every = rng.uniform(2.0, 5.0)
    times = np.arange(lo + rng.uniform(0.2, every), hi, every)
    return _steps(time, rng, "momentum_dump", times, (2e-4, 0.01), DESAT)


def attitude_tweaks(time: np.ndarray, rng: np.random.Generator) -> Impostor:
    """1-4 attitude tweaks: a flux step of 0.05-2% (the centroid moves), the cadence flagged AttitudeTweak (1)."""
    times = np.sort(rng.uniform(np.nanmin(time), np.nanmax(time), int(rng.integers(1, 5))))
    return _steps(time, rng, "attitude_tweak", times, (5e-4, 0.02), ATTITUDE_TWEAK)


def cosmic_rays(time: np.ndarray, rng: np.random.Generator, noise: float = 1e-3) -> Impostor:
    """10-60 one-cadence positive spikes, 4-300 times ``noise`` (relative flux), about half flagged
    ImpulsiveOutlier (512): a lone spike is not a flare, flagged or not."""
    n = int(rng.integers(10, 61))
    idx = np.unique(rng.integers(0, time.size, n))
    shape = np.ones(time.size)
    amp = np.array([_loguniform(rng, 4.0, 300.0) for _ in idx]) * noise
    shape[idx] += amp
    q = _none(time)
    q[idx[rng.uniform(size=idx.size) < 0.5]] |= IMPULSIVE_OUTLIER
    return Impostor("cosmic_rays", shape, q, time[idx], {"n": int(idx.size), "noise": noise})


#: every simulator by kind (cosmic_rays takes the light curve's noise as well)
SIMULATORS: dict[str, Callable[..., Impostor]] = {
    "eb": eclipsing_binary, "reflection": reflection_binary, "delta_scuti": delta_scuti, "rr_lyrae": rr_lyrae,
    "rotator": fast_rotator, "pdc_ramp": pdc_ramp, "scattered_light": scattered_light,
    "momentum_dump": momentum_dumps, "attitude_tweak": attitude_tweaks, "cosmic_rays": cosmic_rays,
}
#: the short-period binaries of issue 11's must-show list (simulated with a held-out seed in bench/)
BINARIES = ("eb", "reflection")


def simulate(kind: str, time: np.ndarray, rng: np.random.Generator, noise: float = 1e-3) -> Impostor:
    """One impostor of ``kind`` (a key of :data:`SIMULATORS`)."""
    if kind not in SIMULATORS:
        raise ValueError(f"impostor kind {kind!r} unknown: choose from {sorted(SIMULATORS)}")
    if kind == "cosmic_rays":
        return cosmic_rays(time, rng, noise=noise)
    return SIMULATORS[kind](time, rng)


def apply(lc: LightCurveData, imp: Impostor) -> LightCurveData:
    """``lc`` with the impostor multiplied in (and its QUALITY bits OR-ed in); ``meta["impostor"]`` names it."""
    base = np.zeros(len(lc), np.int64) if lc.quality is None else np.asarray(lc.quality)
    quality = (base.astype(np.int64) | imp.quality).astype(base.dtype)
    meta = {**lc.meta, "impostor": imp.kind, "hard_negatives": True}
    return LightCurveData(time=lc.time, flux=lc.flux * imp.factor, flux_err=lc.flux_err, quality=quality,
                          bad=lc.bad, meta=meta, aux=lc.aux)


def combined(lc: LightCurveData, kinds: tuple[str, ...], rng: np.random.Generator,
             noise: float = 1e-3) -> tuple[LightCurveData, list[Impostor]]:
    """``lc`` with several impostors multiplied in, and the impostors."""
    imps = [simulate(k, lc.time, rng, noise) for k in kinds]
    out = lc
    for imp in imps:
        out = apply(out, imp)
    return out, imps


__all__ = ["Impostor", "SIMULATORS", "BINARIES", "simulate", "apply", "combined", "eclipsing_binary",
           "reflection_binary", "delta_scuti", "rr_lyrae", "fast_rotator", "pdc_ramp", "scattered_light",
           "momentum_dumps", "attitude_tweaks", "cosmic_rays"]
