"""Training windows from light curves and flare labels, built by the runtime's own preprocessing.

Windows are made by :func:`flarelight.runtime.preprocess.prepare` and
:func:`~flarelight.runtime.preprocess.make_windows`, so a training window is exactly the window the runtime
scores at inference. Fixes to stella's ``FlareDataSet``:

- train/validation/test are split **by star** (:mod:`flarelight.trainer.split`), never by window, so no
  star is in two splits;
- windows never straddle a gap: in "valid" edge mode the centres are the runtime's valid centres (a full
  window inside one segment); in "pad" mode cadences across a gap are padding with a 0 flag;
- a light curve without gaps works (the segmentation handles one segment).
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from flarelight.runtime.errors import InvalidLightCurveError
from flarelight.runtime.io import LightCurveData
from flarelight.runtime.metadata import Preprocessing
from flarelight.runtime.preprocess import Prepared, make_windows, prepare
from flarelight.runtime.simulate import segment_edge_distance

from .labels import FlareCatalog, cadence_labels, labels_for
from .split import split_by_star
from .trainingset import TrainingDataError, TrainingSet


def _peak_positions(prep: Prepared, iv: np.ndarray, tp: np.ndarray, half_cad: float) -> np.ndarray:
    """Kept-cadence position of each flare's peak (catalogue tpeak, else the brightest kept cadence in the
    interval); -1 for flares with no kept cadence in their interval."""
    out = np.full(len(iv), -1, np.int64)
    t = prep.time
    for k, ((s, e), p) in enumerate(zip(iv, tp)):
        lo = np.searchsorted(t, s - half_cad, side="left")
        hi = np.searchsorted(t, e + half_cad, side="right")
        if hi <= lo:
            continue
        if np.isfinite(p):
            j = lo + int(np.argmin(np.abs(t[lo:hi] - p)))
        else:
            j = lo + int(np.argmax(prep.flux[lo:hi]))
        out[k] = j
    return out


def build_dataset(lightcurves: Sequence[LightCurveData], labels: FlareCatalog | Sequence[Any],
                  pre: Preprocessing | None = None, *, positives: str = "peak",
                  negatives_per_positive: float | None = 3.0, negative_margin: int = 3,
                  near_edge_fraction: float = 0.25, fractions: tuple[float, float, float] | None = (0.7, 0.15, 0.15),
                  seed: int = 0, star_ids: Sequence[int] | None = None, require_match: bool = False,
                  description: str = "") -> TrainingSet:
    """Windows and labels from light curves plus flare labels, as stella's ``FlareDataSet`` does, minus its bugs.

    Every light curve is prepared with the runtime's :func:`~flarelight.runtime.preprocess.prepare`; a kept cadence
    is positive if it lies inside a labelled flare interval.

    Parameters
    ----------
    lightcurves : sequence of LightCurveData
    labels : FlareCatalog or sequence
        One catalogue for all light curves (matched by ``meta["tic"]``, sector and time span), or one entry per light
        curve: a FlareCatalog, an ``(n, 2)`` array of BTJD intervals, or a table with tstart/tstop[/tpeak]
        (e.g. from :func:`flarelight.trainer.inject.inject_flares`).
    pre : Preprocessing
        Default ``Preprocessing()``. With ``edge_mode="pad"`` windows are 2-channel and every kept cadence is a
        candidate centre, including those near gaps and edges.
    positives : {"peak", "interval"}
        "peak": one window per flare, centred on its peak (catalogue tpeak, else the brightest cadence in the
        interval), as stella does. "interval": every scorable centre inside the flare interval.
    negatives_per_positive : float or None
        Class balance: negatives drawn at random (over all light curves, in proportion to their candidates) up to
        this many per positive; None keeps every candidate negative.
    negative_margin : int
        Negative centres are at least this many kept cadences away from any flare cadence.
    near_edge_fraction : float
        In "pad" mode, the share of sampled negatives drawn from centres within one window offset of a segment edge
        (so the model learns to score cadences near gaps); ignored in "valid" mode.
    fractions : (train, val, test) or None
        Split by star with :func:`flarelight.trainer.split.split_by_star` (None: leave unassigned).
    seed : int
        Seeds negative sampling and the split.
    star_ids : sequence of int, optional
        Star id per light curve (default ``lc.meta["tic"]``).
    require_match : bool
        Raise :class:`~flarelight.trainer.labels.CatalogMatchError` for a light curve with no catalogue flare
        (default: it contributes negatives only).

    Raises
    ------
    TrainingDataError
        No light curve, no usable light curve, no positive window, unknown option values.
    CatalogError
        Labels that do not fit (see ``require_match``).
    """
    pre = pre or Preprocessing()
    if positives not in ("peak", "interval"):
        raise TrainingDataError(f"positives={positives!r}: choose 'peak' or 'interval'")
    lightcurves = list(lightcurves)
    if not lightcurves:
        raise TrainingDataError("no light curves given")
    if not isinstance(labels, FlareCatalog):
        labels = list(labels)
        if len(labels) != len(lightcurves):
            raise TrainingDataError(f"{len(labels)} label entries for {len(lightcurves)} light curves; give one each "
                                    "or one FlareCatalog")
    if star_ids is not None and len(star_ids) != len(lightcurves):
        raise TrainingDataError(f"{len(star_ids)} star ids for {len(lightcurves)} light curves")
    rng = np.random.default_rng(seed)
    per: list[dict] = []
    skipped: list[str] = []
    n_flares = n_unobservable = 0
    for k, lc in enumerate(lightcurves):
        star = star_ids[k] if star_ids is not None else lc.meta.get("tic")
        if star is None:
            raise TrainingDataError(f"{lc.label}: no TIC in lc.meta; pass star_ids=[...] so the split can be by star")
        item = labels if isinstance(labels, FlareCatalog) else labels[k]
        iv, tp = labels_for(item, lc, require_match)
        try:
            prep = prepare(lc, pre)
        except InvalidLightCurveError as exc:
            warnings.warn(f"{lc.label}: skipped ({exc})", stacklevel=2)
            skipped.append(lc.label)
            continue
        flare_cad = cadence_labels(prep.time, iv)
        half_cad = 0.5 * float(np.median(np.diff(prep.time)))
        peaks = _peak_positions(prep, iv, tp, half_cad)
        n_flares += len(iv)
        n_unobservable += int(np.sum(peaks < 0))
        is_centre = np.zeros(prep.flux.size, bool)
        is_centre[prep.centres] = True
        if positives == "peak":
            pos = np.unique(peaks[(peaks >= 0)])
            pos = pos[is_centre[pos]]
        else:
            pos = prep.centres[flare_cad[prep.centres]]
        near = flare_cad.copy()
        if negative_margin > 0 and flare_cad.any():
            near = np.convolve(flare_cad.astype(np.int64), np.ones(2 * negative_margin + 1, np.int64), "same") > 0
        neg = prep.centres[~near[prep.centres]]
        edge = segment_edge_distance(prep.seg)[neg] < max(pre.offset, pre.window - pre.offset - 1)
        per.append(dict(lc=lc, prep=prep, star=int(star), pos=pos, neg=neg, edge=edge, index=k))
    if not per:
        raise TrainingDataError(f"no usable light curve (all {len(lightcurves)} skipped: {skipped})")
    n_pos = sum(p["pos"].size for p in per)
    if n_pos == 0:
        raise TrainingDataError(
            f"no positive window: {n_flares} labelled flares in {len(per)} light curves, {n_unobservable} with no kept "
            "cadence, the rest not at a scorable centre; check the labels match the light curves (TIC, sector, BTJD), "
            "or use edge_mode='pad' to score cadences near gaps")
    # ---- class balance: sample negatives over all light curves
    neg_all = np.concatenate([p["neg"] for p in per])
    lc_all = np.concatenate([np.full(p["neg"].size, i) for i, p in enumerate(per)])
    edge_all = np.concatenate([p["edge"] for p in per])
    if negatives_per_positive is None or negatives_per_positive * n_pos >= neg_all.size:
        take = np.arange(neg_all.size)
    else:
        n_take = int(round(negatives_per_positive * n_pos))
        if pre.edge_mode == "pad" and near_edge_fraction > 0:
            e_idx, i_idx = np.flatnonzero(edge_all), np.flatnonzero(~edge_all)
            n_e = min(e_idx.size, int(round(near_edge_fraction * n_take)))
            n_i = min(i_idx.size, n_take - n_e)
            take = np.concatenate([rng.choice(e_idx, n_e, replace=False), rng.choice(i_idx, n_i, replace=False)])
        else:
            take = rng.choice(neg_all.size, n_take, replace=False)
        take = np.sort(take)
    xs, ys, stars, times, sources = [], [], [], [], []
    for i, p in enumerate(per):
        negc = neg_all[take][lc_all[take] == i]
        cen = np.concatenate([p["pos"], negc])
        if cen.size == 0:
            continue
        xs.append(make_windows(p["prep"], cen))
        ys.append(np.r_[np.ones(p["pos"].size), np.zeros(negc.size)])
        stars.append(np.full(cen.size, p["star"]))
        times.append(p["prep"].time[cen])
        sources.append(np.full(cen.size, p["index"]))
    star = np.concatenate(stars)
    y = np.concatenate(ys)
    meta = {"description": description or f"{len(per)} light curves, {n_flares} labelled flares",
            "lightcurves": [lc.label for lc in lightcurves], "skipped": skipped,
            "options": {"positives": positives, "negatives_per_positive": negatives_per_positive,
                        "negative_margin": negative_margin, "near_edge_fraction": near_edge_fraction,
                        "fractions": list(fractions) if fractions else None, "seed": seed},
            "n_flares": n_flares, "n_flares_unobservable": n_unobservable,
            "label_sources": sorted({labels.source} if isinstance(labels, FlareCatalog) else
                                    {getattr(it, "source", type(it).__name__) for it in labels})}
    split = split_by_star(star, fractions, seed=seed, y=y) if fractions else np.full(star.size, "")
    return TrainingSet(np.concatenate(xs), y, star, split, np.concatenate(times), np.concatenate(sources), pre, meta)


__all__ = ["build_dataset"]
