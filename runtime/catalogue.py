"""Flare catalogues: a scored light curve -> one table row per flare component (the pure algorithm), and table I/O.

:func:`flares_from_scored` takes a :class:`~flarelight.runtime.scored.Scored` (a light curve prepared and
scored once) and returns a :class:`Catalogue`: the table and the baseline it was measured against. No
model runs here; :func:`flarelight.runtime.find.find_flares` runs one and calls this. Each step below is
one function. Everything happens on the cadences the model kept (good, passing its quality rule, not absurd).

1. **Candidates** (:func:`candidate_groups`): maximal runs of ``prob > threshold`` inside one segment, merged
   across at most ``merge_gap`` cadences, with at least ``min_cadences`` cadences above threshold.
2. **Baseline** (:func:`_baseline`, :mod:`~flarelight.runtime.baseline`): a robust local quadratic of the flux
   with every candidate masked, iterated with clipping (short outliers, eclipse/transit dips bridged), continued
   across short gaps and segment ends from the trend on both sides (a cubic across long masked stretches, the
   local trend extrapolated at a segment end, never held flat), per block when a gap is longer than
   ``baseline.DEFAULT_MAX_GAP`` (0.5 d). When the star has a dominant period (:func:`star_period`, found once
   with the candidates masked and used by vetting too), long masked stretches follow the star's flux folded at
   that period instead of the cubic, where the fold predicts the flux beside them clearly better
   (:func:`~flarelight.runtime.baseline.periodic_bridges`).
3. **Fits and extents** (:func:`extend_groups`): each group's relative excess ``flux / baseline - 1`` is fitted
   with a flare template (:mod:`~flarelight.runtime.flarefit`; Davenport 2014 by default, peaks within
   ``PEAK_SLACK`` cadences of its candidates -- or of the span where the model fires around them (its probability
   above ``FIRING_PROB``) where a fit pressed on that bound fits better there: a network may pass a high threshold
   only on a long flare's rise, ahead of its peak -- FWHM at most ``FWHM_PER_SPAN`` x the firing span and
   ``MAX_FWHM``) in a window that grows while the fitted flare still exceeds ``LEVEL_SIGMA`` local sigmas at its
   end and the data there still hold a significant excess (at most ``max_extend`` cadences past its candidate
   cadences). A group whose fitted flare still exceeds ``LEVEL_SIGMA`` where the next group starts, with the data
   between holding at least half the fitted flux, is joined with it (:func:`join_connected`): a day-long decay
   stays one flare, and flares separated by a return to the baseline stay separate groups. Components are then
   added while the BIC criterion of :mod:`~flarelight.runtime.flarefit` accepts them. A fit whose peak sits in a
   hole of the data (``HOLE_PEAK_RATIO``) is not used: the group is measured directly.
4. **Iteration**: the baseline is fitted again with each fitted flare masked where it exceeds ``MASK_SIGMA``
   (0.2) local sigmas and ``MASK_TAIL`` of its decay beyond (so it never rises under a decay), and step 3
   repeats, until the masks stop changing (at most ``N_ROUNDS`` rounds; the last round's fits are measured).
5. **Measurements** (:func:`measure`): one row per component, sharing a ``group`` id: ``tstart``/``tstop``
   where the component's fitted (exposure-averaged) template rises above / decays below ``LEVEL_SIGMA`` (1)
   local sigma; ``amplitude``, ``fwhm``, ``ed`` from the fit, with uncertainties; ``ed_sum`` the direct sum of
   the excess over the group's interval, shared among its components in proportion to their fitted flux;
   ``snr`` the group fit's significance, ``sqrt(chi^2(no flare) - chi^2(fit))`` in local sigmas.
6. **Vetting** (:mod:`~flarelight.runtime.vetting`): flags per group (``low_snr``, ``periodic``, ``gap_edge``,
   ``single_cadence``, ``symmetric``, ``sap_disagrees``, ``centroid_jump``) and ``vetted`` = none of them. With
   ``keep_all=False`` (default) only vetted rows are returned.

The local noise sigma of a flare is the robust point-to-point scatter of the excess within ``NOISE_WINDOW``
days of it, the flares masked.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.table import Table

from . import flarefit, vetting
from .baseline import DEFAULT_MAX_GAP, baseline_blocks, ptp_sigma, robust_baseline, runs_within
from .io import LightCurveData
from .kernels import count_peaks
from .metadata import Preprocessing
from .periodic import dominant_period, fold_periods
from .scored import Scored

#: probability a cadence must exceed to be a flare candidate (stella's FitFlares default)
DEFAULT_THRESHOLD = 0.5
#: cadences above threshold a flare needs (1: a single high-probability cadence is kept, stella issue #30)
DEFAULT_MIN_CADENCES = 1
#: kept cadences below threshold that may separate two runs of one flare
DEFAULT_MERGE_GAP = 5
#: span of the baseline's local fit, in cadences (its kernel half width is half of it: 2 h at 2-min cadence)
DEFAULT_BASELINE_WINDOW = 121
#: maximum extension of a flare's fit window beyond its above-threshold cadences, each way, in cadences;
#: None: 1.5 days of cadences (a decay as long as a day stays one flare)
DEFAULT_MAX_EXTEND: int | None = None
MAX_EXTEND_DAYS = 1.5
#: distance (kept cadences) to a gap / light-curve edge that sets near_gap / near_edge
DEFAULT_EDGE_WINDOW = 100
#: minimum signal-to-noise of a flare group's ED (the ``snr`` column); lower -> ``low_snr``
DEFAULT_MIN_SNR = 7.0
#: a secondary peak counts in ``n_peaks`` when its height and prominence exceed this many local sigmas
DEFAULT_PEAK_SIGMA = 5.0
#: tstart / tstop: where the fitted component exceeds this many local sigmas
LEVEL_SIGMA = 1.0
#: the baseline masks a fitted flare where it exceeds this many local sigmas; fit windows grow to it
MASK_SIGMA = 0.2
#: the mask runs this fraction of a fitted flare's decay (peak to MASK_SIGMA) beyond it
MASK_TAIL = 0.5
#: half width (days) of the window in which a flare's local noise is measured
NOISE_WINDOW = 0.5
#: largest FWHM a fitted component may have (days): a wider excess is variability, not a flare
MAX_FWHM = 0.1
#: a group's components are at most FWHM_PER_SPAN times as wide as the span where the model fires around its
#: candidate cadences (at least FWHM_MIN_CAP cadences): the model fires across a flare's peak, so a much wider fit is
#: fitting variability
FWHM_PER_SPAN, FWHM_MIN_CAP = 3.0, 10.0
#: the model fires where its probability exceeds this (the network's own decision level): a candidate run above a
#: higher catalogue threshold is only the most certain part of what it fires on
FIRING_PROB = 0.5
#: a component whose (exposure-averaged) peak is this many times above its largest value at a kept cadence sits in
#: a hole: its fit is not used
HOLE_PEAK_RATIO = 3.0
#: fitted peaks lie within this many cadences of the group's candidate cadences (of where the model fires around
#: them, :func:`firing_span` at ``FIRING_PROB``, when a fit pressed on the first bound fits better there)
PEAK_SLACK = 5
#: fit-baseline-fit rounds at most
N_ROUNDS = 3
#: cadences before the first candidate cadence in a fit window (at least; half the run length if longer)
PRE_CADENCES = 10
#: cadences after the last candidate cadence in a first fit window (at least; twice the run length if longer)
POST_CADENCES = 20

#: name, dtype, unit, description of every catalogue column (in order)
COLUMNS: list[tuple[str, str, Any, str]] = [
    ("tpeak", "f8", u.d, "peak time of the fitted component (BTJD)"),
    ("tstart", "f8", u.d, "first cadence where the fitted component exceeds 1 local sigma (BTJD)"),
    ("tstop", "f8", u.d, "last cadence where the fitted component exceeds 1 local sigma (BTJD)"),
    ("ipeak", "i8", None, "input row of the kept cadence nearest tpeak"),
    ("istart", "i8", None, "input row of tstart"),
    ("istop", "i8", None, "input row of tstop"),
    ("group", "i8", None, "flare group: components of one complex flare share it (0, 1, ... per light curve)"),
    ("component", "i8", None, "index of the component in its group, by tpeak"),
    ("n_components", "i8", None, "components fitted to the group"),
    ("n_cadences", "i8", None, "kept cadences in [tstart, tstop]"),
    ("n_above", "i8", None, "cadences in [tstart, tstop] with prob > threshold"),
    ("n_peaks", "i8", None, "significant local maxima of the group's excess"),
    ("amplitude", "f8", u.dimensionless_unscaled, "fitted peak (flux - baseline) / baseline of the component"),
    ("amplitude_err", "f8", u.dimensionless_unscaled, "uncertainty of amplitude"),
    ("fwhm", "f8", u.d, "fitted full width at half maximum of the component (template parameter)"),
    ("fwhm_err", "f8", u.d, "uncertainty of fwhm"),
    ("ed", "f8", u.s, "equivalent duration of the fitted component (its template's integral)"),
    ("ed_err", "f8", u.s, "uncertainty of ed (fit covariance, residual noise)"),
    ("ed_sum", "f8", u.s, "direct sum of the relative excess over the group's interval x cadence, this "
                          "component's share"),
    ("snr", "f8", None, "significance of the group's fit: sqrt(chi^2 of no flare - chi^2 of the fit) in local "
                        "sigmas (without a fit: ED / (local sigma x sqrt(cadences) x cadence))"),
    ("local_sigma", "f8", u.dimensionless_unscaled, "local noise of the relative flux (robust point-to-point)"),
    ("prob_max", "f8", None, "largest probability in [tstart, tstop]"),
    ("prob_mean", "f8", None, "mean probability of the scored cadences in [tstart, tstop]"),
    ("fitted", "bool", None, "the template fit converged (else amplitude and ed are direct measurements)"),
    ("near_gap", "bool", None, "within edge_window cadences of a gap"),
    ("near_edge", "bool", None, "within edge_window cadences of the light curve's start or end"),
] + [(name, "bool", None, desc) for name, desc in vetting.FLAGS] + [
    ("vetted", "bool", None, "no vetting flag is set"),
]
_UNITS = {name: unit for name, _, unit, _ in COLUMNS}
#: the columns :func:`measure` fills (the rest are the vetting flags and ``vetted``)
MEASURED = tuple(name for name, _, _, _ in COLUMNS if name not in dict(vetting.FLAGS) and name != "vetted")

#: Table.meta keys holding the parameters
PARAM_KEYS = ("threshold", "min_cadences", "merge_gap", "baseline_window", "max_extend", "edge_window",
              "peak_sigma", "min_snr", "merge_connected", "template", "max_components", "delta_bic", "keep_all")


def empty_table() -> Table:
    """A zero-row catalogue with every column, dtype and unit."""
    return _build_table({name: np.empty(0, dtype) for name, dtype, _, _ in COLUMNS})


def _build_table(cols: dict[str, np.ndarray]) -> Table:
    t = Table()
    for name, dtype, unit, desc in COLUMNS:
        t[name] = np.asarray(cols[name], dtype=dtype)
        if unit is not None:
            t[name].unit = unit
        t[name].description = desc
    for name, fmt in (("tpeak", ".5f"), ("tstart", ".5f"), ("tstop", ".5f"), ("amplitude", ".4f"),
                      ("amplitude_err", ".4f"), ("fwhm", ".5f"), ("fwhm_err", ".5f"), ("ed", ".2f"),
                      ("ed_err", ".2f"), ("ed_sum", ".2f"), ("snr", ".1f"), ("local_sigma", ".2e"),
                      ("prob_max", ".3f"), ("prob_mean", ".3f")):
        t[name].format = fmt
    return t


# ----------------------------------------------------------------------------- helpers
def _check_params(threshold: float, min_cadences: int, merge_gap: int, baseline_window: int,
                  max_extend: int | None, edge_window: int, peak_sigma: float, max_components: int,
                  delta_bic: float) -> None:
    if not (0.0 <= threshold < 1.0):
        raise ValueError(f"threshold={threshold}: must be in [0, 1)")
    for name, v, lo in (("min_cadences", min_cadences, 1), ("merge_gap", merge_gap, 0),
                        ("baseline_window", baseline_window, 3), ("edge_window", edge_window, 0),
                        ("max_components", max_components, 1)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name}={v}: must be an integer >= {lo}")
    if max_extend is not None and (int(max_extend) != max_extend or max_extend < 0):
        raise ValueError(f"max_extend={max_extend}: must be None or an integer >= 0")
    if not peak_sigma >= 0:
        raise ValueError(f"peak_sigma={peak_sigma}: must be >= 0")
    if not delta_bic >= 0:
        raise ValueError(f"delta_bic={delta_bic}: must be >= 0")


def _merge(starts: np.ndarray, stops: np.ndarray, seg: np.ndarray, merge_gap: int) -> list[list[int]]:
    """Merge runs of one segment separated by <= merge_gap cadences: [[start, stop, n_runs], ...]."""
    groups: list[list[int]] = []
    for a, b in zip(starts.tolist(), stops.tolist()):
        if groups and seg[a] == seg[groups[-1][1]] and a - groups[-1][1] - 1 <= merge_gap:
            groups[-1][1] = b
            groups[-1][2] += 1
        else:
            groups.append([a, b, 1])
    return groups


def _cadence_s(lc: LightCurveData, time: np.ndarray, seg: np.ndarray) -> float:
    cad = lc.meta.get("cadence_s")
    if cad:
        return float(cad)
    steps = np.diff(time)[seg[1:] == seg[:-1]]
    return float(np.median(steps) * 86400.0) if steps.size else float("nan")


# ----------------------------------------------------------------------------- the kept cadences
@dataclass(frozen=True)
class _Kept:
    """The kept cadences of a scored light curve, as the catalogue steps see them."""

    kept: np.ndarray        # input row of each kept cadence
    time: np.ndarray
    flux: np.ndarray        # the input's flux (not normalised): the baseline is in the input's units
    prob: np.ndarray
    seg: np.ndarray         # the model's segments (gap rule)
    block: np.ndarray       # baseline blocks (gaps > DEFAULT_MAX_GAP days)
    first_of: np.ndarray    # first kept position of each cadence's segment
    last_of: np.ndarray     # last kept position of each cadence's segment
    bfirst_of: np.ndarray   # first kept position of each cadence's block
    blast_of: np.ndarray    # last kept position of each cadence's block

    @classmethod
    def of(cls, scored: Scored) -> "_Kept":
        lc, prep = scored.lc, scored.prepared
        kept, seg = prep.kept, prep.seg
        time = lc.time[kept]
        block = baseline_blocks(time, DEFAULT_MAX_GAP)
        first_of, last_of = _bounds(seg)
        bfirst_of, blast_of = _bounds(block)
        return cls(kept=kept, time=time, flux=lc.flux[kept], prob=scored.prob[kept], seg=seg, block=block,
                   first_of=first_of, last_of=last_of, bfirst_of=bfirst_of, blast_of=blast_of)

    @property
    def n(self) -> int:
        return int(self.kept.size)


def _bounds(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last position of each position's run of equal labels."""
    n = labels.size
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    firsts = np.r_[0, np.flatnonzero(labels[1:] != labels[:-1]) + 1]
    lasts = np.r_[firsts[1:] - 1, n - 1]
    which = np.searchsorted(firsts, np.arange(n), side="right") - 1
    return firsts[which], lasts[which]


# ----------------------------------------------------------------------------- the steps
def candidate_groups(prob: np.ndarray, seg: np.ndarray, threshold: float, merge_gap: int,
                     min_cadences: int) -> list[tuple[int, int]]:
    """Step 1: runs of ``prob > threshold`` inside a segment, merged across at most ``merge_gap`` cadences,
    kept when at least ``min_cadences`` cadences are above threshold: ``[(first, last), ...]`` (kept positions)."""
    above = prob > threshold  # NaN -> False
    starts, stops = runs_within(above, seg)
    return [(a, b) for a, b, _ in _merge(starts, stops, seg, merge_gap) if above[a:b + 1].sum() >= min_cadences]


def interval_mask(intervals: list[tuple[int, int]], n: int) -> np.ndarray:
    """True on the cadences of ``intervals`` (inclusive pairs of positions)."""
    mask = np.zeros(n, bool)
    for a, b in intervals:
        mask[max(a, 0):b + 1] = True
    return mask


def candidate_mask(groups: list[tuple[int, int]], k: _Kept) -> np.ndarray:
    """The first baseline mask: each group's cadences, 2 before and its own length (at least 5) after."""
    return interval_mask([(max(a - 2, k.bfirst_of[a]), min(b + max(5, b - a + 1), k.blast_of[b]))
                          for a, b in groups], k.n)


def _baseline(k: _Kept, mask: np.ndarray, half_cadences: int, cad_d: float,
              folds_at: tuple[float, ...]) -> np.ndarray:
    """Step 2: the baseline flux at every kept cadence with ``mask`` excluded (:func:`robust_baseline`), long
    masked stretches bridged with the star's flux folded at ``folds_at`` (none: no bridge of that kind)."""
    if k.n == 0:
        return np.empty(0)
    return robust_baseline(k.time, k.flux, mask, cadence=cad_d, half_width_cadences=half_cadences,
                           fold_periods=folds_at)


def star_period(k: _Kept, mask: np.ndarray, cad_d: float) -> tuple[float, float, tuple[float, ...]]:
    """The star's dominant period (days), its Lomb-Scargle power (NaN when there is none) and the periods to fold
    it at, the candidates masked (:func:`flarelight.runtime.periodic.dominant_period`, :func:`fold_periods`)."""
    if k.n == 0 or mask.all():
        return math.nan, math.nan, ()
    rel = k.flux / float(np.median(k.flux[~mask]))
    period, power = dominant_period(k.time, rel, ~mask)
    return period, power, fold_periods(k.time, rel, ~mask, period, cad_d)


def local_sigma(y: np.ndarray, usable: np.ndarray, k: _Kept, centre: int, fallback: float) -> float:
    """Robust point-to-point scatter of ``y`` over the usable cadences of ``centre``'s block within
    ``NOISE_WINDOW`` days of it (``fallback`` when fewer than 20 are there)."""
    t0 = k.time[centre]
    lo = max(int(np.searchsorted(k.time, t0 - NOISE_WINDOW)), int(k.bfirst_of[centre]))
    hi = min(int(np.searchsorted(k.time, t0 + NOISE_WINDOW, side="right")), int(k.blast_of[centre]) + 1)
    sel = usable[lo:hi]
    if sel.sum() < 20:
        return fallback
    s = ptp_sigma(y[lo:hi][sel])
    return s if np.isfinite(s) and s > 0 else fallback


@dataclass
class GroupFit:
    """One flare group: its candidate cadences, its fit window and the fitted components."""

    first: int                     # first candidate cadence (kept position)
    last: int                      # last candidate cadence
    ws: int                        # fit window
    we: int
    sigma: float                   # local noise of the relative flux
    fit: flarefit.Fit | None       # None: too few cadences to fit
    n_groups: int = 1              # candidate groups joined into it
    comp: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))  # component models on [ws, we]

    def total(self) -> np.ndarray:
        return self.comp.sum(axis=0) if self.comp.size else np.zeros(self.we - self.ws + 1)


@dataclass(frozen=True)
class _Setup:
    cad_d: float
    template: str
    max_components: int
    delta_bic: float
    max_extend: int
    merge_connected: bool
    fwhm_bounds: tuple[float, float]
    threshold: float


def _peak_bounds(k: _Kept, ws: int, we: int, first: int, last: int, s: _Setup) -> tuple[float, float]:
    """Times a fitted peak may take: ``PEAK_SLACK`` cadences around [first, last], inside the window [ws, we] where
    the data go on beyond it (those cadences belong to a neighbouring group; a peak may fall in the gap before a
    segment start)."""
    lo_t, hi_t = k.time[first] - PEAK_SLACK * s.cad_d, k.time[last] + PEAK_SLACK * s.cad_d
    if ws > 0 and k.seg[ws] == k.seg[ws - 1]:
        lo_t = max(lo_t, float(k.time[ws]))
    if we < k.n - 1 and k.seg[we] == k.seg[we + 1]:
        hi_t = min(hi_t, float(k.time[we]))
    return lo_t, hi_t


def _fit_window(k: _Kept, y: np.ndarray, ws: int, we: int, first: int, last: int, sigma: float, s: _Setup,
                seed: np.ndarray | None, search: bool, cache: dict, max_fwhm: float,
                fire: tuple[int, int] | None = None) -> tuple[flarefit.Fit | None, np.ndarray]:
    """Fit the window [ws, we] (components added with ``search``, FWHM at most ``max_fwhm``, peaks within
    :func:`_peak_bounds` of the candidate cadences [first, last]). Where a fitted peak presses on one of those
    bounds and the model fires beyond it (``fire``: :func:`firing_span`), the fit is repeated from there with the
    peaks free over the firing span, and the better fit (smaller BIC) kept: a network may pass a high threshold only
    on a long flare's rise, ahead of its peak. A fit of the same window, seed and search whose data changed by less
    than 1% of the noise since (an earlier round) is reused from ``cache``."""
    tt, yy = k.time[ws:we + 1], y[ws:we + 1]
    key = (ws, we, first, last, fire, search, max_fwhm, None if seed is None else np.round(seed, 12).tobytes())
    hit = cache.get(key)
    if hit is not None and np.nanmax(np.abs(hit[0] - yy), initial=0.0) < 0.01 * sigma:
        return hit[1], hit[2]
    ok = np.isfinite(yy)
    if ok.sum() < 4:
        return None, np.empty((0, we - ws + 1))

    def fit_within(bounds: tuple[float, float], start: np.ndarray | None) -> flarefit.Fit:
        with np.errstate(all="ignore"):  # trial steps may overflow; thread-local, unlike warnings.catch_warnings
            return flarefit.fit_components(tt[ok], yy[ok], sigma, s.cad_d, template=s.template,
                                           max_components=s.max_components, delta_bic=s.delta_bic, seed=start,
                                           fwhm_bounds=(s.fwhm_bounds[0], max_fwhm), search=search,
                                           tpeak_bounds=bounds)

    tb = _peak_bounds(k, ws, we, first, last, s)
    fit = fit_within(tb, seed)
    if fire is not None and fit.ok:
        # the span the model fires over, and never less than the candidates (after a join at the growth loop's
        # last round the firing span was found before the run grew)
        wide = _peak_bounds(k, ws, we, min(fire[0], first), max(fire[1], last), s)
        peaks = fit.params[:, 0]
        pressed = (wide[0] < tb[0] and np.any(peaks <= tb[0] + 0.5 * s.cad_d)) or \
                  (wide[1] > tb[1] and np.any(peaks >= tb[1] - 0.5 * s.cad_d))
        if pressed:
            freed = fit_within(wide, fit.params)
            if freed.ok and freed.bic < fit.bic:  # the same cadences; a search may end with other components
                fit = freed
    comp = flarefit.components(tt, fit.params, s.cad_d, s.template)
    if fit.ok and _peak_in_hole(fit.params, comp, s):
        fit = dataclasses.replace(fit, ok=False)
    cache[key] = (yy.copy(), fit, comp)
    return fit, comp


def _peak_in_hole(params: np.ndarray, comp: np.ndarray, s: _Setup) -> bool:
    """Does a component peak where no cadence was kept, ``HOLE_PEAK_RATIO`` times above anything the kept cadences
    see of it? Then its amplitude is extrapolated into a hole, not measured."""
    fine = np.linspace(-1.0, 1.0, 21) * s.cad_d
    for (tp, w, a), c in zip(params, comp):
        top = float(np.max(flarefit.model(tp + fine, np.array([[tp, w, a]]), s.cad_d, s.template)))
        if top > HOLE_PEAK_RATIO * float(np.max(c, initial=0.0)):
            return True
    return False


def _decay_end(fit: flarefit.Fit | None, level: float, template: str) -> float:
    """Latest time at which a component of ``fit`` still exceeds ``level`` (-inf without a fit)."""
    if fit is None:
        return -math.inf
    end = -math.inf
    for tp, w, a in fit.params:
        if a > level > 0:
            end = max(end, tp + flarefit.extent_x(level / a, template)[1] * w)
        elif a > 0:
            end = max(end, tp)
    return end


def join_connected(fit: flarefit.Fit | None, k: _Kept, y: np.ndarray, last: int, next_first: int,
                   sigma: float, template: str) -> bool:
    """Step 3b: does the flare fitted up to ``last`` continue into the next group starting at ``next_first``?

    Yes when the fitted flare still exceeds ``LEVEL_SIGMA`` local sigmas at the next group's first cadence (the next
    group starts inside this flare's [tstart, tstop]) and the
    data between the groups hold at least half of the fitted flux there (they follow the fitted decay: the flux
    has not returned to the baseline).
    """
    if fit is None or not fit.ok:
        return False
    if _decay_end(fit, LEVEL_SIGMA * sigma, template) < k.time[next_first]:
        return False
    between = slice(last + 1, next_first)
    if next_first - last - 1 <= 0:
        return True
    pred = flarefit.model(k.time[between], fit.params, 0.0, template)
    data = y[between]
    ok = np.isfinite(data)
    return bool(ok.any() and np.sum(data[ok]) >= 0.5 * np.sum(pred[ok]))


def firing_span(prob: np.ndarray, seg: np.ndarray, first: int, last: int, level: float) -> tuple[int, int]:
    """``[first, last]`` widened over the neighbouring cadences of its segment whose probability exceeds ``level``
    (where the model fires around a candidate run)."""
    a, b = first, last
    while a > 0 and seg[a - 1] == seg[first] and prob[a - 1] > level:
        a -= 1
    while b < prob.size - 1 and seg[b + 1] == seg[last] and prob[b + 1] > level:
        b += 1
    return a, b


def _tail_continues(y: np.ndarray, model: np.ndarray, sigma: float) -> bool:
    """Do the last cadences of a window (a fifth of it, at least 10) still hold a significant excess (> 2 standard
    errors) that follows the fitted flare (at least a quarter of its flux there)?"""
    m = max(10, y.size // 5)
    yt, mt = y[-m:], model[-m:]
    ok = np.isfinite(yt)
    if ok.sum() < 3:
        return False
    mean = float(np.mean(yt[ok]))
    return bool(mean > 2.0 * sigma / math.sqrt(ok.sum()) and mean >= 0.25 * float(np.mean(mt[ok])))


def extend_groups(groups: list[tuple[int, int]], y: np.ndarray, usable: np.ndarray, k: _Kept, fallback_sigma: float,
                  s: _Setup, cache: dict | None = None) -> list[GroupFit]:
    """Step 3: fit each group in a window that grows to the fitted flare's decay, joining the groups it runs into.

    The window of a group spans ``PRE_CADENCES`` (or half its length) before its first candidate cadence and
    ``POST_CADENCES`` (or twice its length) after its last, never into the previous group's window, the next
    group or another baseline block, nor more than ``max_extend`` cadences beyond its candidate cadences. After a
    fit, the window grows to where the fitted flare decays below ``LEVEL_SIGMA`` local sigmas (plus a quarter of
    that time); when that reaches the next group and :func:`join_connected` agrees, the two are fitted as one.
    While the window grows one template is fitted (warm-started); components are searched for in the final window.
    """
    out: list[GroupFit] = []
    i = 0
    prev_end = -1
    cache = {} if cache is None else cache
    while i < len(groups):
        j = i
        first, last = groups[i]
        post = max(POST_CADENCES, 2 * (last - first + 1))
        seed = None
        sigma = local_sigma(y, usable, k, (first + last) // 2, fallback_sigma)
        for _ in range(12):
            blk_first, blk_last = int(k.bfirst_of[first]), int(k.blast_of[first])
            nxt = groups[j + 1][0] if j + 1 < len(groups) and k.block[groups[j + 1][0]] == k.block[first] \
                else blk_last + 1
            limit = min(blk_last, last + s.max_extend, nxt - 1)
            ws = max(first - max(PRE_CADENCES, (last - first + 1) // 2), prev_end + 1, blk_first, first - s.max_extend)
            we = max(min(last + post, limit), last)
            fire_first, fire_last = firing_span(k.prob, k.seg, first, last, min(FIRING_PROB, s.threshold))
            max_fwhm = min(s.fwhm_bounds[1], max(FWHM_PER_SPAN * (k.time[fire_last] - k.time[fire_first] + s.cad_d),
                                                 FWHM_MIN_CAP * s.cad_d))
            fit, comp = _fit_window(k, y, ws, we, first, last, sigma, s, seed, False, cache, max_fwhm,
                                    (fire_first, fire_last))
            seed = fit.params if fit is not None and fit.ok else None
            end_t = _decay_end(fit, LEVEL_SIGMA * sigma, s.template)
            if s.merge_connected and nxt <= blk_last and j + 1 < len(groups) \
                    and join_connected(fit, k, y, last, nxt, sigma, s.template):
                j += 1
                last = groups[j][1]
                post = max(post, POST_CADENCES)
                sigma = local_sigma(y, usable, k, (first + last) // 2, fallback_sigma)
                continue
            if fit is not None and fit.ok and end_t > k.time[we] and we < limit \
                    and _tail_continues(y[ws:we + 1], comp.sum(axis=0), sigma):
                tp = float(fit.params[int(np.argmax(fit.params[:, 2])), 0])
                want = int(np.searchsorted(k.time, end_t + 0.25 * max(end_t - tp, 0.0)))
                post = max(want - last, post + 1)
                continue
            break
        if s.max_components > 1 and fit is not None:
            found = _fit_window(k, y, ws, we, first, last, sigma, s, seed, True, cache, max_fwhm,
                                (fire_first, fire_last))
            if found[0] is not None and (found[0].ok or not fit.ok):  # a search that put a component's peak in a
                fit, comp = found  # hole (nothing constrains it there) keeps the one-template fit it started from
        gf = GroupFit(first=first, last=last, ws=ws, we=we, sigma=sigma, fit=fit, n_groups=j - i + 1, comp=comp)
        out.append(gf)
        tot = gf.total()
        above = np.flatnonzero(tot > MASK_SIGMA * sigma)
        prev_end = max(last, ws + int(above[-1]) if above.size else last)
        i = j + 1
    return out


def flare_mask(fits: list[GroupFit], groups: list[tuple[int, int]], k: _Kept) -> np.ndarray:
    """Step 4: the next baseline mask: the candidates, and each fitted flare where it exceeds ``MASK_SIGMA``
    local sigmas, one cadence earlier and ``MASK_TAIL`` of its decay longer (a fit whose tail came out short, the
    baseline having risen under it, must not keep its baseline there); a group without a converged fit masks
    its candidates only."""
    mask = candidate_mask(groups, k)
    for g in fits:
        if g.fit is None or not g.fit.ok:
            continue
        tot = g.total()
        above = np.flatnonzero(tot > MASK_SIGMA * g.sigma)
        if above.size:
            a, b = g.ws + int(above[0]), g.ws + int(above[-1])
            peak = g.ws + int(np.argmax(tot))
            b = min(b + 1 + int(MASK_TAIL * max(b - peak, 0)), int(k.blast_of[b]))
            mask[max(a - 1, int(k.bfirst_of[a])):b + 1] = True
    return mask


def _extent(model: np.ndarray, level: float, offset: int, fallback: int) -> tuple[int, int]:
    above = np.flatnonzero(model > level)
    if above.size == 0:
        return fallback, fallback
    return offset + int(above[0]), offset + int(above[-1])


def measure(fits: list[GroupFit], k: _Kept, base: np.ndarray, y: np.ndarray, threshold: float, cad_s: float,
            peak_sigma: float, edge_window: int, template: str) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Step 5: one row per component (see the module docstring), and per group what the vetting needs."""
    rows: dict[str, list] = {name: [] for name in MEASURED}
    info: list[dict[str, Any]] = []
    for gid, g in enumerate(fits):
        ws, we = g.ws, g.we
        sig = g.sigma
        level = LEVEL_SIGMA * sig
        yy = y[ws:we + 1]
        fitted = g.fit is not None and g.fit.ok
        if fitted:
            params, cov = g.fit.params, g.fit.cov
            comp = g.comp
        else:  # a direct measurement over the candidate cadences
            a, b = g.first, g.last
            seg_y = y[a:b + 1]
            ipk = a + int(np.nanargmax(seg_y)) if np.isfinite(seg_y).any() else a
            params = np.array([[k.time[ipk], np.nan, y[ipk]]])
            cov = np.full((3, 3), np.nan)
            comp = np.zeros((1, we - ws + 1))
            comp[0, a - ws:b - ws + 1] = np.clip(np.nan_to_num(seg_y), 0.0, None)
        total = comp.sum(axis=0)
        peak_fallback = int(np.clip(np.searchsorted(k.time, params[int(np.nanargmax(params[:, 2])), 0]), ws, we))
        g_lo, g_hi = _extent(total, level, ws, peak_fallback)
        if not fitted:
            g_lo, g_hi = g.first, g.last
        share = np.where(total > 0, comp / np.where(total > 0, total, 1.0), 1.0 / len(comp))
        gi = slice(g_lo - ws, g_hi - ws + 1)
        ed_sum_total = np.nansum(yy[gi]) * cad_s
        if fitted:
            ed, ed_err = flarefit.ed_seconds(params, cov, template)
        else:
            ed, ed_err = np.array([ed_sum_total]), np.array([sig * math.sqrt(g_hi - g_lo + 1) * cad_s])
        n_group = g_hi - g_lo + 1
        if not sig > 0:
            snr = float("nan")
        elif fitted:  # the fit's significance: sqrt of its chi^2 improvement over "no flare", in local sigmas
            ok = np.isfinite(yy)
            snr = math.sqrt(max(float(np.sum(yy[ok] ** 2) - np.sum((yy[ok] - total[ok]) ** 2)), 0.0)) / sig
        else:
            snr = float(np.sum(ed) / (sig * math.sqrt(n_group) * cad_s))
        n_peaks = count_peaks(y[g_lo:g_hi + 1], peak_sigma * sig)
        first_of = int(k.first_of[g_lo])
        gap_before = first_of > 0 and g_lo - first_of < edge_window
        gap_after = k.last_of[g_hi] < k.n - 1 and k.last_of[g_hi] - g_hi < edge_window
        near_gap = bool(gap_before or gap_after)
        near_edge = bool(g_lo < edge_window or (k.n - 1) - g_hi < edge_window)
        group_rows = []
        for c, (tp, w, a) in enumerate(params):
            lo, hi = (_extent(comp[c], level, ws, int(np.clip(np.searchsorted(k.time, tp), ws, we)))
                      if fitted else (g_lo, g_hi))
            ipk = int(np.clip(np.searchsorted(k.time, tp), lo, hi))
            if ipk > lo and abs(k.time[ipk - 1] - tp) < abs(k.time[ipk] - tp):
                ipk -= 1
            pw = k.prob[lo:hi + 1]
            scored = np.isfinite(pw)
            rows["tpeak"].append(tp)
            rows["tstart"].append(k.time[lo])
            rows["tstop"].append(k.time[hi])
            rows["ipeak"].append(k.kept[ipk])
            rows["istart"].append(k.kept[lo])
            rows["istop"].append(k.kept[hi])
            rows["group"].append(gid)
            rows["component"].append(c)
            rows["n_components"].append(len(params))
            rows["n_cadences"].append(hi - lo + 1)
            rows["n_above"].append(int(np.sum(pw > threshold)))
            rows["n_peaks"].append(n_peaks)
            rows["amplitude"].append(a)
            rows["amplitude_err"].append(math.sqrt(cov[3 * c + 2, 3 * c + 2]) if fitted else sig)
            rows["fwhm"].append(w)
            rows["fwhm_err"].append(math.sqrt(cov[3 * c + 1, 3 * c + 1]) if fitted else np.nan)
            rows["ed"].append(ed[c])
            rows["ed_err"].append(ed_err[c])
            rows["ed_sum"].append(float(np.nansum(yy[gi] * share[c][gi])) * cad_s)
            rows["snr"].append(snr)
            rows["local_sigma"].append(sig)
            rows["prob_max"].append(float(np.max(pw[scored])) if scored.any() else np.nan)
            rows["prob_mean"].append(float(np.mean(pw[scored])) if scored.any() else np.nan)
            rows["fitted"].append(fitted)
            rows["near_gap"].append(near_gap)
            rows["near_edge"].append(near_edge)
            group_rows.append(len(rows["tpeak"]) - 1)
        pg = k.prob[g_lo:g_hi + 1]
        info.append({"rows": group_rows, "lo": g_lo, "hi": g_hi, "sigma": sig, "snr": snr,
                     "tpeak": float(params[int(np.nanargmax(params[:, 2])), 0]),
                     "ipeak": int(np.clip(np.searchsorted(k.time, params[int(np.nanargmax(params[:, 2])), 0]),
                                          g_lo, g_hi)),
                     "prob_max": float(np.nanmax(pg)) if np.isfinite(pg).any() else float("nan"),
                     "amplitude": float(np.nanmax(params[:, 2])), "fitted": fitted,
                     "model": total[gi] if fitted else None, "ws": ws, "we": we,
                     "fit": g.fit if fitted else None})
    dtypes = {name: dtype for name, dtype, _, _ in COLUMNS}
    return {name: np.asarray(rows[name], dtype=dtypes[name]) for name in MEASURED}, info


# ----------------------------------------------------------------------------- the pure algorithm
@dataclass(frozen=True)
class Catalogue:
    """A flare catalogue with what it was measured from.

    Attributes
    ----------
    table : astropy Table
        One row per flare component (:data:`COLUMNS`); the vetted rows only unless ``keep_all``.
    scored : Scored
        The scored light curve.
    baseline : ndarray of float64, shape (len(lc),)
        The baseline flux the rows were measured against (input units); NaN on rows not kept.
    """

    table: Table
    scored: Scored
    baseline: np.ndarray

    def model_flux(self, time: np.ndarray, rows: Any = None) -> np.ndarray:
        """The fitted flares of ``rows`` (default all) as relative excess at ``time`` (exposure-averaged)."""
        t = self.table if rows is None else self.table[rows]
        ok = np.asarray(t["fitted"], bool)
        if not ok.any():
            return np.zeros(np.size(time))
        params = np.column_stack([np.asarray(t[c], float)[ok] for c in ("tpeak", "fwhm", "amplitude")])
        cad_d = float(self.table.meta.get("cadence_s") or 120.0) / 86400.0
        return flarefit.model(np.asarray(time, float), params, cad_d, self.table.meta.get("template",
                                                                                          flarefit.DEFAULT_TEMPLATE))


def flares_from_scored(scored: Scored, *, threshold: float | None = None,
                       min_cadences: int = DEFAULT_MIN_CADENCES, merge_gap: int = DEFAULT_MERGE_GAP,
                       baseline_window: int = DEFAULT_BASELINE_WINDOW, max_extend: int | None = DEFAULT_MAX_EXTEND,
                       edge_window: int = DEFAULT_EDGE_WINDOW, peak_sigma: float = DEFAULT_PEAK_SIGMA,
                       min_snr: float = DEFAULT_MIN_SNR, merge_connected: bool = True,
                       template: str = flarefit.DEFAULT_TEMPLATE,
                       max_components: int = flarefit.DEFAULT_MAX_COMPONENTS,
                       delta_bic: float = flarefit.DEFAULT_DELTA_BIC, keep_all: bool = False) -> Catalogue:
    """Turn a scored light curve into a flare catalogue (one row per flare component), in the space of the
    cadences the model kept. See the module docstring for the steps and :func:`flarelight.runtime.find.find_flares`
    for the parameters; ``threshold`` defaults to ``scored.threshold``.
    """
    threshold = scored.threshold if threshold is None else float(threshold)
    _check_params(threshold, min_cadences, merge_gap, baseline_window, max_extend, edge_window, peak_sigma,
                  max_components, delta_bic)
    flarefit.check_template(template)
    if math.isnan(min_snr):
        raise ValueError("min_snr is NaN: give a number (-inf keeps every candidate)")
    lc = scored.lc
    k = _Kept.of(scored)
    half = int(baseline_window) // 2
    cad_s = _cadence_s(lc, k.time, k.seg)
    cad_d = cad_s / 86400.0 if math.isfinite(cad_s) else 2.0 / 1440.0
    ext = int(max_extend) if max_extend is not None else int(round(MAX_EXTEND_DAYS / cad_d))
    setup = _Setup(cad_d=cad_d, template=template, max_components=int(max_components), delta_bic=float(delta_bic),
                   max_extend=ext, merge_connected=bool(merge_connected), fwhm_bounds=(0.25 * cad_d, MAX_FWHM),
                   threshold=threshold)
    meta: dict[str, Any] = {
        "tic": lc.meta.get("tic"), "sector": lc.meta.get("sector"), "model_id": scored.model_id,
        "threshold": threshold, "min_cadences": int(min_cadences), "merge_gap": int(merge_gap),
        "baseline_window": int(2 * half + 1), "max_extend": ext, "edge_window": int(edge_window),
        "peak_sigma": float(peak_sigma), "min_snr": float(min_snr), "merge_connected": bool(merge_connected),
        "template": template, "max_components": int(max_components), "delta_bic": float(delta_bic),
        "keep_all": bool(keep_all), "level_sigma": LEVEL_SIGMA,
        "cadence_s": cad_s,
        "exposure_d": float(k.n * cad_s / 86400.0) if math.isfinite(cad_s) else float("nan"),
        "max_step": float(scored.prepared.max_step),
        "n_outliers": int(getattr(scored.prepared, "n_outliers", 0)),
        "time_scale": "BTJD = BJD_TDB - 2457000 (TESS); else the input's time unit, days",
    }
    if lc.meta.get("path"):
        meta["file"] = os.path.basename(str(lc.meta["path"]))

    groups = candidate_groups(k.prob, k.seg, threshold, merge_gap, min_cadences)           # step 1
    mask = candidate_mask(groups, k)
    period, power, folds_at = star_period(k, mask, cad_d) if groups else (math.nan, math.nan, ())
    base = _baseline(k, mask, half, cad_d, folds_at)                                         # step 2
    fits: list[GroupFit] = []
    y = np.empty(0)
    cache: dict = {}
    for r in range(N_ROUNDS if groups else 0):                                              # steps 3-4
        y = k.flux / base - 1.0
        fallback = ptp_sigma(y[~mask]) if (~mask).sum() > 2 else ptp_sigma(y)
        fits = extend_groups(groups, y, ~mask, k, fallback, setup, cache)
        if r == N_ROUNDS - 1:
            break
        new_mask = flare_mask(fits, groups, k)
        if np.array_equal(new_mask, mask):
            break
        mask = new_mask
        base = _baseline(k, mask, half, cad_d, folds_at)
    cols, info = measure(fits, k, base, y, threshold, cad_s, peak_sigma, edge_window, template)  # step 5
    flags, vmeta = vetting.vet(info, k.time, y, ~mask, k.seg, k.kept, lc, base, cad_d, min_snr=min_snr,
                               block_first=k.bfirst_of, block_last=k.blast_of, period=period,
                               power=power, fold_periods=folds_at)                                    # step 6
    n_rows = cols["tpeak"].size
    vetted = np.ones(n_rows, bool)
    for name, _ in vetting.FLAGS:
        cols[name] = flags[name]
        vetted &= ~flags[name]
    cols["vetted"] = vetted
    if not keep_all:  # select before building: slicing an astropy Table copies every column's attributes
        cols = {name: np.asarray(v)[vetted] for name, v in cols.items()}
    table = _build_table(cols)
    meta.update(vmeta)
    meta["n_rows_all"] = int(n_rows)
    table.meta.update(meta)
    baseline = np.full(len(lc), np.nan)
    baseline[k.kept] = base
    return Catalogue(table=table, scored=scored, baseline=baseline)


def flares_from_probabilities(lc: LightCurveData, prob: np.ndarray, *, pre: Preprocessing | None = None,
                              model_id: str = "", threshold: float = DEFAULT_THRESHOLD, **params: Any) -> Table:
    """:func:`flares_from_scored` for probabilities computed elsewhere; returns the table.

    The cadences used and the segments follow ``pre`` (default: the reader's mask and the default gap rule;
    pass a model's ``preprocessing`` to use its quality and gap rules).
    """
    scored = Scored.from_probabilities(lc, prob, pre, model_id=model_id, threshold=threshold)
    return flares_from_scored(scored, **params).table


# ----------------------------------------------------------------------------- files
_FORMATS = {".ecsv": "ecsv", ".fits": "fits", ".fit": "fits", ".fts": "fits", ".csv": "csv"}


def catalogue_format(path: str | os.PathLike) -> str:
    """"ecsv", "fits" or "csv" from the file suffix (``.fits.gz`` counts as fits)."""
    name = Path(path).name.lower()
    for suf in (".fits.gz", ".fit.gz"):
        if name.endswith(suf):
            return "fits"
    fmt = _FORMATS.get(Path(name).suffix)
    if fmt is None:
        raise ValueError(f"{path}: unknown catalogue format; use .ecsv, .fits or .csv")
    return fmt


def _fits_key(key: str) -> str:
    """``key`` as a FITS header keyword: a HIERARCH card where it is no standard keyword (longer than 8
    characters, or other characters than letters, digits, ``_`` and ``-``). Asking for HIERARCH spares astropy's
    VerifyWarning (it would make the same card), which silencing with ``warnings.catch_warnings()`` cannot do
    safely while other threads run."""
    standard = len(key) <= 8 and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if standard or key.upper().startswith("HIERARCH ") else f"HIERARCH {key}"


def write_catalogue(table: Table, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write a catalogue with its units and meta, format by suffix (.ecsv, .fits, .csv).

    ``.csv`` is written as ECSV with comma delimiters: a plain CSV (header row, then data) preceded by
    ``#`` comment lines holding units and meta, so ``pandas.read_csv(path, comment="#")`` reads it and
    :func:`read_catalogue` restores units and meta. Not atomic; wrap in
    :func:`flarelight.runtime.atomic.atomic_path` for that.
    """
    fmt = catalogue_format(path)
    if fmt == "fits":
        t = table.copy(copy_data=False)
        t.meta = {_fits_key(k): ("" if v is None else v) for k, v in table.meta.items()}
        t.meta["nonekeys"] = ",".join(k for k, v in table.meta.items() if v is None)
        t.write(path, format="fits", overwrite=overwrite)
    elif fmt == "csv":
        table.write(path, format="ascii.ecsv", delimiter=",", overwrite=overwrite)
    else:
        table.write(path, format="ascii.ecsv", overwrite=overwrite)


def read_catalogue(path: str | os.PathLike) -> Table:
    """Read a catalogue written by :func:`write_catalogue` (units and meta restored, meta keys lower case)."""
    fmt = catalogue_format(path)
    if fmt != "fits":
        return Table.read(path, format="ascii.ecsv")
    t = Table.read(path, format="fits")
    meta = {str(k).lower(): v for k, v in t.meta.items()}
    none_keys = str(meta.pop("nonekeys", "") or "").split(",")
    t.meta = {k: (None if k in none_keys else v) for k, v in meta.items()}
    for name, unit in _UNITS.items():
        if name in t.colnames and unit is not None and t[name].unit is None:
            t[name].unit = unit
    return t


__all__ = ["Catalogue", "flares_from_scored", "flares_from_probabilities", "empty_table", "count_peaks", "write_catalogue",
           "read_catalogue", "COLUMNS", "DEFAULT_THRESHOLD", "DEFAULT_MIN_CADENCES", "DEFAULT_MERGE_GAP",
           "DEFAULT_BASELINE_WINDOW", "DEFAULT_MAX_EXTEND", "DEFAULT_EDGE_WINDOW", "DEFAULT_PEAK_SIGMA",
           "DEFAULT_MIN_SNR", "LEVEL_SIGMA", "MASK_SIGMA"]
