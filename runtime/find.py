"""``find_flares``: read a light curve, score it once with a model, and build its flare catalogue.

The layer above :mod:`~flarelight.runtime.model` (scoring) and :mod:`~flarelight.runtime.catalogue`
(the pure algorithm); neither of those imports this module.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from astropy.table import Table

from .catalogue import (DEFAULT_BASELINE_WINDOW, DEFAULT_EDGE_WINDOW, DEFAULT_MAX_EXTEND, DEFAULT_MERGE_GAP,
                        DEFAULT_MIN_CADENCES, DEFAULT_MIN_SNR, DEFAULT_PEAK_SIGMA, Catalogue, flares_from_scored)
from .flarefit import DEFAULT_DELTA_BIC, DEFAULT_MAX_COMPONENTS, DEFAULT_TEMPLATE
from .io import LightCurveData, as_lightcurve
from .model import FlareModel
from .scored import Scored


def find_flares(source: Any, model: FlareModel | None = None, *, threshold: float | None = None,
                min_cadences: int = DEFAULT_MIN_CADENCES, merge_gap: int = DEFAULT_MERGE_GAP,
                baseline_window: int = DEFAULT_BASELINE_WINDOW, max_extend: int | None = DEFAULT_MAX_EXTEND,
                edge_window: int = DEFAULT_EDGE_WINDOW, peak_sigma: float = DEFAULT_PEAK_SIGMA,
                min_snr: float = DEFAULT_MIN_SNR, merge_connected: bool = True,
                template: str = DEFAULT_TEMPLATE, max_components: int = DEFAULT_MAX_COMPONENTS,
                delta_bic: float = DEFAULT_DELTA_BIC, keep_all: bool = False,
                flux: Any = None, flux_err: Any = None, quality: Any = None, prob: Any = None,
                quality_bitmask: str | int = "default", flux_column: str = "pdcsap_flux",
                return_prob: bool = False, full: bool = False
                ) -> Table | Catalogue | tuple[Table, LightCurveData, np.ndarray]:
    """Find flares in a light curve: score it once and build the catalogue.

    Parameters
    ----------
    source : path, LightCurveData, lightkurve LightCurve, Scored, or time array
        With a time array, ``flux`` is required (``flux_err`` gives ED uncertainties). A :class:`Scored`
        (from :meth:`FlareModel.score`) is used as it is: no model runs.
    model : FlareModel, optional
        Default: the shipped model (:meth:`FlareModel.default`).
    threshold : float, optional
        Probability a cadence must exceed to be a flare candidate; default: the model's recommended
        threshold (its metadata; 0.5 for stella's models).
    min_cadences : int
        Cadences above threshold a flare needs (default 1).
    merge_gap : int
        Runs separated by at most this many kept cadences are one flare (default 5).
    baseline_window : int
        Span of the baseline's local quadratic fit, cadences (default 121: a kernel half width of 60 cadences).
    max_extend : int, optional
        Maximum extension of a flare's fit window beyond its above-threshold cadences, each way, in cadences
        (default None: 1.5 days, so a decay as long as a day stays one flare).
    edge_window : int
        Distance in kept cadences that sets ``near_gap``/``near_edge`` (default 100).
    peak_sigma : float
        Significance (local sigmas) of a secondary peak for ``n_peaks`` (default 5).
    min_snr : float
        Flag groups whose ``snr`` is below this as ``low_snr`` (default 7; a candidate with ``prob_max >= 0.95`` is
        flagged only below 0.6 x ``min_snr``; ``-inf`` flags none).
    merge_connected : bool
        Join neighbouring candidates into one group when the fitted flare has not returned to the baseline where
        the next one starts (default True).
    template : str
        Flare template fitted to every flare: "davenport2014" (default) or "mendoza2022".
    max_components : int
        At most this many components per flare group (default 4; 1: no complex-flare splitting).
    delta_bic : float
        BIC improvement that accepts one more component (default 10).
    keep_all : bool
        Return every row with its vetting flags (default False: only rows with ``vetted`` True).
    flux, flux_err, quality : array-like, optional
        With a time array as ``source``.
    prob : array-like, optional
        Probabilities computed elsewhere (input length): no model runs; the model's masking and gap rule
        are used if ``model`` is given, else the reader's mask and the default gap rule.
    quality_bitmask, flux_column
        Used when reading a FITS path or a lightkurve object.
    return_prob : bool
        Return ``(table, lc, prob)``.
    full : bool
        Return the :class:`~flarelight.runtime.catalogue.Catalogue` (table, scored light curve and the
        baseline the rows were measured against: what :func:`~flarelight.runtime.plot.plot_flares` draws).

    Returns
    -------
    Table
        One row per flare component (components of one complex flare share ``group``); see
        :data:`flarelight.runtime.catalogue.COLUMNS` and :mod:`flarelight.runtime.vetting` for the flags.
    """
    scored = _scored(source, model, flux, flux_err, quality, prob, quality_bitmask, flux_column)
    cat = flares_from_scored(scored, threshold=threshold, min_cadences=min_cadences, merge_gap=merge_gap,
                             baseline_window=baseline_window, max_extend=max_extend, edge_window=edge_window,
                             peak_sigma=peak_sigma, min_snr=min_snr, merge_connected=merge_connected,
                             template=template, max_components=max_components, delta_bic=delta_bic,
                             keep_all=keep_all)
    if full:
        return cat
    if return_prob:
        return cat.table, scored.lc, scored.prob
    return cat.table


def _scored(source: Any, model: FlareModel | None, flux: Any, flux_err: Any, quality: Any, prob: Any,
            quality_bitmask: str | int, flux_column: str) -> Scored:
    if isinstance(source, Scored):
        if prob is not None or model is not None:
            raise ValueError("source is already scored: give no model and no prob with it")
        return source
    if prob is not None:
        lc = as_lightcurve(source, flux, flux_err, quality, quality_bitmask=quality_bitmask, flux_column=flux_column)
        if model is None:
            return Scored.from_probabilities(lc, prob)
        return Scored.from_probabilities(lc, prob, model.preprocessing, model_id=model.model_id,
                                         threshold=model.threshold)
    model = model if model is not None else FlareModel.default()
    return model.score(source, flux, flux_err, quality, quality_bitmask=quality_bitmask, flux_column=flux_column)
