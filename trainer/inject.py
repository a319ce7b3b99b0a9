"""Synthetic flares injected onto real light curves (Davenport et al. 2014 template), with their parameters as labels.

Distributions (all drawn from one seeded ``numpy.random.Generator``):

- amplitude: log-uniform in ``amplitude`` (default 0.003 to 0.3), relative to the local median flux;
- FWHM: log-uniform in ``fwhm_minutes`` (default 2 to 60 minutes);
- peak time: uniform over the usable (good) cadences, at least ``edge_days`` from either end, and at least
  ``min_separation`` FWHM-intervals away from any other injected flare and from every ``avoid`` interval
  (e.g. the catalogue flares), so labels never overlap.

Each flare is added by the runtime's one injector, :func:`flarelight.runtime.simulate.add_flares`:
``amplitude x Q x profile``, with ``Q`` the local quiescent flux (running median of the good flux,
``median_half_width`` cadences each side, within the segment of the model's gap rule) at the peak and
``profile`` the Davenport template averaged over each exposure.
Each injected flare's label interval is ``[tpeak - 2 FWHM, tpeak + 5 FWHM]`` (the Günther 2020 convention used by
the catalogue loaders and by ``flare_eval.py``). With ``label_sigma``, only the part of that interval where the
injected flare is visible is labelled: where ``amplitude x profile`` exceeds ``label_sigma`` (relative flux; the
light curve's noise), the catalogue's ``tstart``/``tstop`` rule. A long flare's label then no longer starts two
FWHM before its visible rise, nor does a faint flare's run five FWHM into the noise after it.
"""
from __future__ import annotations

import numpy as np
from astropy.table import Table

from flarelight.runtime.errors import FlarelightError
from flarelight.runtime.io import LightCurveData
from flarelight.runtime.metadata import Preprocessing
from flarelight.runtime.simulate import add_flares

#: label interval in units of the FWHM around the peak
INTERVAL_BEFORE, INTERVAL_AFTER = 2.0, 5.0


class InjectionError(FlarelightError, ValueError):
    """Flares cannot be injected as asked (bad ranges, no room left for non-overlapping flares)."""


def inject_flares(lc: LightCurveData, n_flares: int, *, seed: int | None = 0,
                  amplitude: tuple[float, float] = (0.003, 0.3), fwhm_minutes: tuple[float, float] = (2.0, 60.0),
                  edge_days: float = 0.1, min_separation: float = 1.0, avoid: np.ndarray | None = None,
                  median_half_width: int = 180, max_tries: int = 1000,
                  pre: Preprocessing | None = None, label_sigma: float | None = None) -> tuple[LightCurveData, Table]:
    """Inject ``n_flares`` Davenport flares into a copy of ``lc``.

    Parameters
    ----------
    lc : LightCurveData
    n_flares : int
    seed : int, optional
    amplitude : (low, high)
        Log-uniform range of the peak amplitude relative to the local median flux.
    fwhm_minutes : (low, high)
        Log-uniform range of the FWHM, minutes.
    edge_days : float
        Peaks stay this far from the first and last good cadence.
    min_separation : float
        Label intervals of injected flares are at least this many (larger) FWHMs apart, and apart from ``avoid``.
    avoid : ndarray (m, 2), optional
        BTJD intervals no injected label interval may overlap (e.g. real catalogue flares).
    median_half_width : int
        Half width (cadences) of the running median the amplitude is relative to.
    pre : Preprocessing, optional
        Whose gap rule bounds that running median (default ``Preprocessing()``; pass the model's).
    label_sigma : float, optional
        Label only where the flare exceeds this relative flux (module docstring); default: the whole
        ``[tpeak - 2 FWHM, tpeak + 5 FWHM]``. Placement and separation always use the whole interval.

    Returns
    -------
    lc : LightCurveData
        A new light curve (same cadences, ``bad`` mask and meta; ``meta["injected"]`` = number of flares).
    table : astropy.table.Table
        One row per flare: ``tpeak``, ``fwhm`` (days), ``amplitude``, ``tstart``, ``tstop`` (BTJD), ``index`` (input
        cadence nearest the peak), ``local_median``; usable directly as labels for
        :func:`flarelight.trainer.windows.build_dataset`.

    Raises
    ------
    InjectionError
        Bad ranges, or no room for the flares without overlaps.
    """
    if n_flares < 0:
        raise InjectionError(f"n_flares={n_flares}: must be >= 0")
    for name, (lo, hi) in (("amplitude", amplitude), ("fwhm_minutes", fwhm_minutes)):
        if not (0 < lo <= hi):
            raise InjectionError(f"{name}=({lo}, {hi}): need 0 < low <= high")
    rng = np.random.default_rng(seed)
    good = np.flatnonzero(lc.good)
    tg = lc.time[good]
    usable = np.flatnonzero((tg >= tg[0] + edge_days) & (tg <= tg[-1] - edge_days)) if tg.size else good
    if n_flares and usable.size == 0:
        raise InjectionError(f"{lc.label}: no good cadence at least {edge_days} d from the ends; nothing to inject into")
    taken = [tuple(iv) for iv in np.asarray(avoid if avoid is not None else [], float).reshape(-1, 2)]
    params: list[tuple[float, float, float, float, float]] = []
    tries = 0
    while len(params) < n_flares:
        tries += 1
        if tries > max_tries:
            raise InjectionError(f"{lc.label}: placed {len(params)} of {n_flares} flares without overlaps in "
                                 f"{max_tries} tries; inject fewer flares or lower min_separation")
        j = int(rng.choice(usable))
        amp = float(np.exp(rng.uniform(np.log(amplitude[0]), np.log(amplitude[1]))))
        fwhm = float(np.exp(rng.uniform(np.log(fwhm_minutes[0]), np.log(fwhm_minutes[1])))) / 1440.0
        tpeak = float(tg[j])
        ts, te = tpeak - INTERVAL_BEFORE * fwhm, tpeak + INTERVAL_AFTER * fwhm
        sep = min_separation * fwhm
        if any(ts - sep <= b and te + sep >= a for a, b in taken):
            continue
        taken.append((ts, te))
        params.append((tpeak, fwhm, amp, ts, te))
    flux = lc.flux.copy()
    rows = []
    if params:
        p = np.array(params)
        inj = add_flares(lc.time, lc.flux, p[:, 0], p[:, 1], p[:, 2], good=lc.good, pre=pre,
                         half_width=median_half_width)
        flux = inj.flux
        if label_sigma is not None:
            half_cad = 0.5 * float(np.median(np.diff(tg))) if tg.size > 1 else 0.0
            params = [(tp, w, a, *visible_interval(tp, w, a, label_sigma, ts, te, half_cad))
                      for tp, w, a, ts, te in params]
        rows = [(*r, int(i), float(q)) for r, i, q in zip(params, inj.index, inj.level)]
    table = Table(rows=rows or None, names=("tpeak", "fwhm", "amplitude", "tstart", "tstop", "index", "local_median"),
                  dtype=(float, float, float, float, float, np.int64, float))
    table.sort("tpeak")
    table.meta.update(template="Davenport et al. 2014", amplitude_range=list(amplitude),
                      fwhm_minutes_range=list(fwhm_minutes), seed=seed, source=f"injected into {lc.label}")
    meta = dict(lc.meta)
    meta["injected"] = int(n_flares)
    out = LightCurveData(time=lc.time.copy(), flux=flux, flux_err=None if lc.flux_err is None else lc.flux_err.copy(),
                         quality=None if lc.quality is None else lc.quality.copy(), bad=lc.bad.copy(), meta=meta)
    return out, table


def visible_interval(tpeak: float, fwhm: float, amplitude: float, level: float, tstart: float,
                     tstop: float, pad: float = 0.0) -> tuple[float, float]:
    """The part of ``[tstart, tstop]`` where ``amplitude x`` the Davenport profile exceeds ``level`` (evaluated every
    FWHM / 50), widened to at least ``tpeak +- pad`` (half a cadence: the peak's cadence is always labelled)."""
    from flarelight.runtime.simulate import flare_profile

    t = np.linspace(tstart, tstop, int(round((tstop - tstart) / fwhm * 50.0)) + 1)
    above = np.flatnonzero(flare_profile(t, tpeak, fwhm, amplitude) > level)
    lo, hi = (float(t[above[0]]), float(t[above[-1]])) if above.size else (tpeak, tpeak)
    return min(lo, tpeak - pad), max(hi, tpeak + pad)


__all__ = ["inject_flares", "visible_interval", "InjectionError"]
