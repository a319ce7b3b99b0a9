"""Pure helpers of ``bench/bench_models.py``: flare_eval loading, flare placement (the flux is added by the
runtime's one injector, :func:`flarelight.runtime.simulate.add_flares`), recovery matching, completeness
binning, and scoring a light curve only where injected flares change the model's windows.

Everything here but :func:`load_flare_eval` and :func:`rescore_near_flares` is numpy-only and unit-tested
in ``tests/test_bench_models.py``.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
FLARE_EVAL = SHARED / "eval" / "flare_eval.py"
MANIFEST = SHARED / "eval" / "dev_manifest.json"
SLACK_CAD = 2  # flare_eval's slack, cadences


# ----------------------------------------------------------------------------- flare_eval
def load_flare_eval(path: Path = FLARE_EVAL) -> ModuleType:
    """Import ``../shared/eval/flare_eval.py`` by path (it is not a package)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: flare_eval.py missing; ../shared must sit beside the project root")
    spec = importlib.util.spec_from_file_location("flare_eval", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def runs_events(time: np.ndarray, prob: np.ndarray, threshold: float, fe: ModuleType) -> np.ndarray:
    """flare_eval's ``events_from_prob`` on the rows with a finite time (NaN prob = below threshold)."""
    ok = np.isfinite(time)
    return fe.events_from_prob(time[ok], np.nan_to_num(prob[ok], nan=0.0), threshold)


def table_events(table: Any) -> np.ndarray:
    """A flarelight catalogue (astropy Table) -> (n, 3) [tpeak, tstart, tstop]."""
    if len(table) == 0:
        return np.empty((0, 3))
    return np.column_stack([np.asarray(table[c], float) for c in ("tpeak", "tstart", "tstop")])


# ----------------------------------------------------------------------------- noise, gaps, ED
def robust_sigma(rel_flux: np.ndarray) -> float:
    """Point-to-point robust scatter of a relative flux: 1.4826 MAD(diff) / sqrt(2) (insensitive to trends)."""
    x = np.asarray(rel_flux, float)
    d = np.diff(x[np.isfinite(x)])
    if d.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def segment_edge_distance(time: np.ndarray, pre: Any = None) -> np.ndarray:
    """For each (good, sorted) cadence, its distance in cadences to the nearest segment edge.

    Segments follow the runtime's gap rule (:func:`flarelight.runtime.preprocess.segment`, ``pre`` default
    ``Preprocessing()``); the light curve's first and last cadences are edges too. A cadence at an edge has
    distance 0.
    """
    from flarelight.runtime.metadata import Preprocessing
    from flarelight.runtime.preprocess import segment
    from flarelight.runtime.simulate import segment_edge_distance as edge_distance

    seg, _ = segment(np.asarray(time, float), pre or Preprocessing())
    return edge_distance(seg)


def template_integral() -> float:
    """Integral of the Davenport template over x = (t - tpeak) / fwhm (dimensionless, ~1.83)."""
    from flarelight.runtime.simulate import davenport_template

    x = np.linspace(-1.0, 200.0, 2_000_001)
    return float(np.trapezoid(davenport_template(x), x))


# ----------------------------------------------------------------------------- injection
@dataclasses.dataclass
class Injection:
    """Injected flares of one light curve (arrays of equal length) and the injected flux."""

    flux: np.ndarray
    excess: np.ndarray  # added flux / quiescent level, input length (sum of exposure-averaged profiles)
    tpeak: np.ndarray
    fwhm: np.ndarray  # days
    amplitude: np.ndarray  # relative, before exposure averaging
    ed: np.ndarray  # s
    snr: np.ndarray  # amplitude / robust sigma
    snr_mf: np.ndarray  # matched-filter SNR: sqrt(sum over good cadences of (profile / sigma)^2), the most any
    #                     detector can reach even knowing the flare's time and shape (noise-limited detectability)
    edge_dist: np.ndarray  # cadences to the nearest segment edge (good cadences)
    near_gap: np.ndarray  # edge_dist < near_gap_cad
    level: np.ndarray  # quiescent flux each amplitude is relative to (flux units)


def choose_positions(good_time: np.ndarray, edge_dist: np.ndarray, n: int, rng: np.random.Generator, *,
                     min_sep: float = 0.5, near_fraction: float = 0.3, near_gap_cad: int = 100,
                     max_tries: int = 2000) -> np.ndarray:
    """Indices into ``good_time`` for up to ``n`` flare peaks at least ``min_sep`` days apart.

    About ``near_fraction`` of them are drawn from cadences within ``near_gap_cad`` of a segment edge, the
    rest from all good cadences. Fewer than ``n`` are returned if the light curve has no room.
    """
    near_pool = np.flatnonzero(edge_dist < near_gap_cad)
    n_near = int(round(n * near_fraction)) if near_pool.size else 0
    chosen: list[int] = []
    for k in range(n):
        pool = near_pool if k < n_near else np.arange(good_time.size)
        for _ in range(max_tries):
            i = int(pool[rng.integers(pool.size)])
            if all(abs(good_time[i] - good_time[j]) >= min_sep for j in chosen):
                chosen.append(i)
                break
    return np.array(sorted(chosen), np.int64)


def inject_flares(time: np.ndarray, flux: np.ndarray, good: np.ndarray, n: int, rng: np.random.Generator, *,
                  amp_range: tuple[float, float] = (1e-3, 0.3), fwhm_min_range: tuple[float, float] = (2.0, 60.0),
                  min_sep: float = 0.5, near_fraction: float = 0.3, near_gap_cad: int = 100) -> Injection:
    """Add Davenport flares at random good cadences with the runtime's one injector
    (:func:`flarelight.runtime.simulate.add_flares`: ``amplitude x local quiescent flux x profile``).

    Amplitude and FWHM are log-uniform in ``amp_range`` (relative) and ``fwhm_min_range`` (minutes); peak
    times are a good cadence's time plus a uniform offset of +-0.5 cadence. ED (s) is the integral of the
    template times amplitude times FWHM; SNR is amplitude / the light curve's robust point-to-point sigma.
    """
    from flarelight.runtime.simulate import add_flares, flare_profile

    gi = np.flatnonzero(good)
    gt = time[gi]
    cad = float(np.median(np.diff(gt)))
    dist = segment_edge_distance(gt)
    pos = choose_positions(gt, dist, n, rng, min_sep=min_sep, near_fraction=near_fraction,
                           near_gap_cad=near_gap_cad)
    m = pos.size
    amp = np.exp(rng.uniform(np.log(amp_range[0]), np.log(amp_range[1]), m))
    fwhm = np.exp(rng.uniform(np.log(fwhm_min_range[0]), np.log(fwhm_min_range[1]), m)) / 1440.0
    tpeak = gt[pos] + rng.uniform(-0.5, 0.5, m) * cad
    inj = add_flares(time, flux, tpeak, fwhm, amp, good=good, exposure=cad)
    sigma = robust_sigma(flux[gi] / np.median(flux[gi]))
    ed = amp * fwhm * 86400.0 * template_integral()
    snr_mf = np.array([np.sqrt(np.sum(flare_profile(gt, tp, w, a, exposure=cad) ** 2)) for tp, w, a in
                       zip(tpeak, fwhm, amp)]) / sigma
    return Injection(flux=inj.flux, excess=inj.excess, tpeak=tpeak, fwhm=fwhm, amplitude=amp, ed=ed,
                     snr=amp / sigma, snr_mf=snr_mf, edge_dist=dist[pos], near_gap=dist[pos] < near_gap_cad,
                     level=inj.level)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """The standard normal distribution function (``math.erf`` per element: numpy only, no scipy)."""
    import math

    return 0.5 * (1.0 + np.vectorize(math.erf, otypes=[float])(np.asarray(x, float) / math.sqrt(2.0)))


# ----------------------------------------------------------------------------- recovery
def recovered(tpeak: np.ndarray, fwhm: np.ndarray, events: np.ndarray, slack: float) -> np.ndarray:
    """True for each flare overlapped by an event: [tstart, tstop] meets [tpeak - fwhm, tpeak + 3 fwhm] +- slack."""
    tpeak, fwhm = np.asarray(tpeak, float), np.asarray(fwhm, float)
    ev = np.asarray(events, float).reshape(-1, 3)
    if ev.shape[0] == 0 or tpeak.size == 0:
        return np.zeros(tpeak.size, bool)
    lo = tpeak - fwhm - slack
    hi = tpeak + 3.0 * fwhm + slack
    return ((ev[None, :, 1] <= hi[:, None]) & (ev[None, :, 2] >= lo[:, None])).any(axis=1)


def completeness_1d(x: np.ndarray, rec: np.ndarray, edges: np.ndarray) -> dict[str, list]:
    """Recovered fraction per bin of ``x`` (bins [edges[i], edges[i+1]); values outside are dropped)."""
    x, rec = np.asarray(x, float), np.asarray(rec, bool)
    k = np.digitize(x, edges) - 1
    ok = (k >= 0) & (k < len(edges) - 1)
    n = np.bincount(k[ok], minlength=len(edges) - 1)
    r = np.bincount(k[ok], weights=rec[ok].astype(float), minlength=len(edges) - 1).astype(int)
    frac = [float(a / b) if b else None for a, b in zip(r, n)]
    return {"edges": [float(e) for e in edges], "n": n.tolist(), "n_recovered": r.tolist(), "completeness": frac}


def completeness_2d(x: np.ndarray, y: np.ndarray, rec: np.ndarray, xedges: np.ndarray,
                    yedges: np.ndarray) -> dict[str, Any]:
    """Recovered fraction on an (x bins) x (y bins) grid; ``completeness[i][j]`` is x bin i, y bin j."""
    x, y, rec = np.asarray(x, float), np.asarray(y, float), np.asarray(rec, bool)
    n, _, _ = np.histogram2d(x, y, [xedges, yedges])
    r, _, _ = np.histogram2d(x[rec], y[rec], [xedges, yedges])
    frac = [[float(a / b) if b else None for a, b in zip(ra, na)] for ra, na in zip(r, n)]
    return {"xedges": [float(e) for e in xedges], "yedges": [float(e) for e in yedges],
            "n": n.astype(int).tolist(), "n_recovered": r.astype(int).tolist(), "completeness": frac}


# ----------------------------------------------------------------------------- partial rescoring
def affected_centres(excess_kept: np.ndarray, centres: np.ndarray, window: int, offset: int,
                     tol: float = 1e-7) -> np.ndarray:
    """The subset of ``centres`` whose window ``[c - offset, c - offset + window)`` (kept space) holds a
    cadence with ``|excess| > tol``; all other windows are unchanged by the injection."""
    hit = np.abs(np.nan_to_num(excess_kept)) > tol
    cs = np.r_[0, np.cumsum(hit)]
    a = np.clip(centres - offset, 0, hit.size)
    b = np.clip(centres - offset + window, 0, hit.size)
    return centres[cs[b] - cs[a] > 0]


def rescore_near_flares(model: Any, lc_injected: Any, excess: np.ndarray, base_prob: np.ndarray,
                        tol_sigma: float = 0.01) -> np.ndarray:
    """Ensemble probability of ``lc_injected`` computed only for windows touched by the injected ``excess``
    (input length); every other cadence keeps ``base_prob`` (the model's output on the un-injected light
    curve, identical there up to the tiny change of the normalising median).

    A window counts as touched where the excess exceeds ``tol_sigma`` times the light curve's robust noise
    (the far decay tail of a long flare, 100x below the noise, is ignored: a large saving, no visible change).
    Models running sliding graphs over a per-cadence normalisation are simply scored again, whole (exact).
    """
    from flarelight.runtime.preprocess import prepare, window_batches

    if getattr(model, "engine", "windows") == "sliding" and model.preprocessing.per_cadence:
        return model.predict(lc_injected)  # one pass per segment: cheaper than the touched windows, and exact
    pre = model.preprocessing
    prep = prepare(lc_injected, pre)
    sigma = prep.noise  # of the median-normalised flux, whatever the model's input normalisation
    tol = tol_sigma * sigma if np.isfinite(sigma) and sigma > 0 else 1e-7
    exc = np.abs(np.nan_to_num(excess[prep.kept]))
    if pre.normalisation == "baseline+noise":  # a running-median baseline carries the excess further
        exc = np.convolve((exc > tol).astype(float), np.ones(2 * pre.baseline_half_width + 1), "same")
    sel = affected_centres(exc, prep.centres, pre.window, pre.offset, tol=tol)
    prob = np.array(base_prob, float, copy=True)
    if sel.size == 0:
        return prob
    sub = dataclasses.replace(prep, centres=sel)
    scores = np.empty(sel.size, np.float64)
    for sl, batch in window_batches(sub, model.batch_size):
        scores[sl] = model.score_windows(batch).astype(np.float64).mean(axis=0)
    prob[prep.kept[sel]] = scores
    return prob


# ----------------------------------------------------------------------------- flare_eval, several contenders
def evaluate_many(fe: ModuleType, entries: list[dict], preds: dict[str, dict[str, np.ndarray]],
                  root: Path = SHARED) -> dict[str, dict[str, Any]]:
    """``fe.evaluate`` for several contenders at once: each light curve and its labels are read once.

    Uses flare_eval's own ``read_lightcurve``, ``load_labels``, ``score_lightcurve`` and ``pool``, in the
    order and with the status rules of ``fe.evaluate`` (the bench cross-checks one contender against it).
    """
    per: dict[str, list] = {c: [] for c in preds}
    for e in entries:
        lc = fe.read_lightcurve(Path(root, e["file"]))
        base = Path(e["file"]).name
        true, ign = fe.load_labels(e, lc, root)
        if e["status"] in ("negative", "unlabelled"):
            true, ign = np.empty((0, 2)), np.empty((0, 2))
        for c, p in preds.items():
            r = fe.score_lightcurve(p.get(base, np.empty((0, 3))), true, ign, lc, e.get("window"), fe.SLACK_CAD)
            per[c].append(dict(file=base, tic=e["tic"], sector=e["sector"], star=e.get("star", ""),
                               status=e["status"], labels=e.get("labels", []), **r))
    out = {}
    for c, rows in per.items():
        pooled = {st: fe.pool([r for r in rows if r["status"] == st])
                  for st in ("complete", "partial", "negative", "unlabelled")}
        pooled["labelled"] = fe.pool([r for r in rows if r["status"] in ("complete", "partial")])
        out[c] = dict(slack_cadences=fe.SLACK_CAD, per_lc=rows, pooled=pooled)
    return out
