"""Masking, normalisation, segmentation and window building: the one preprocessing path.

The trainer builds its training windows through these same functions, so a model never sees data
prepared differently from what it was trained on.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from . import kernels
from .errors import AllNaNError, NonPositiveMedianError, TooShortError
from .io import LightCurveData
from .metadata import Preprocessing
from .quality import quality_mask


class CadenceWarning(UserWarning):
    """The light curve's cadence differs from the cadence the model was trained on."""


@dataclass
class Prepared:
    """A light curve ready for the model.

    Attributes
    ----------
    n_input : int
        Cadences in the input; probabilities are returned at this length.
    kept : ndarray of int64
        Input index of each kept cadence (good, and passing the model's quality rule).
    time : ndarray of float64
        Times of the kept cadences.
    flux : ndarray of float32
        Normalised flux of the kept cadences (the model's input values, by ``pre.normalisation``).
    seg : ndarray of int64
        Segment label of each kept cadence.
    centres : ndarray of int64
        Positions (into the kept arrays) of the cadences the model scores.
    median : float
        The normalisation constant.
    max_step : float
        The longest time step (days) that does not break a segment.
    noise : float
        Robust point-to-point scatter of the median-normalised flux (1.4826 MAD of in-segment differences / sqrt 2).
    pre : Preprocessing
        The preprocessing that made it (the model's).
    n_outliers : int
        Good cadences dropped as physically absurd flux (:func:`absurd_flux`).
    """

    n_input: int
    kept: np.ndarray
    time: np.ndarray
    flux: np.ndarray
    seg: np.ndarray
    centres: np.ndarray
    median: float
    max_step: float
    noise: float
    pre: Preprocessing
    n_outliers: int = 0

    def scatter(self, values: np.ndarray) -> np.ndarray:
        """Place per-centre values (last axis) back at input length, NaN where not scored."""
        values = np.asarray(values)
        out = np.full(values.shape[:-1] + (self.n_input,), np.nan, dtype=np.float64)
        out[..., self.kept[self.centres]] = values
        return out


#: a flux farther than this many times |median| from the median of the good flux is physically absurd (no
#: stellar flare brightens a star a thousandfold in the TESS band): such cadences are outliers, not data
ABSURD_FLUX_FACTOR = 1000.0


def absurd_flux(flux: np.ndarray, good: np.ndarray) -> np.ndarray:
    """True where a good cadence's flux is physically absurd: ``|flux - median| > ABSURD_FLUX_FACTOR x |median|``
    (median of the good flux). Such values (e.g. +-1e30) would otherwise enter the model's windows and shift the
    probabilities of every cadence whose window holds them."""
    flux = np.asarray(flux, np.float64)
    out = np.zeros(flux.size, bool)
    if not good.any():
        return out
    med = float(np.median(flux[good]))
    out[good] = np.abs(flux[good] - med) > ABSURD_FLUX_FACTOR * abs(med)
    return out


def kept_mask(lc: LightCurveData, pre: Preprocessing) -> np.ndarray:
    """True for cadences that are good, pass the model's quality rule and are not absurd (:func:`absurd_flux`)."""
    usable = lc.good & ~quality_mask(lc.quality, pre.quality_bitmask, len(lc))
    return usable & ~absurd_flux(lc.flux, usable)


def gap_step(time: np.ndarray, pre: Preprocessing) -> float:
    """Longest step between kept cadences (days) that stays inside one segment: the one home of the gap rule.

    "tolerance": ``gap_tolerance`` x the median step (3.5 by default: a step of 3 cadences, two missing, is
    bridged; a step of 4, three missing, splits; half a cadence from either, so timing jitter never decides).
    "stella": a step ``>= median + gap_nsigma * std`` of the steps breaks (stella 0.3.0), so the longest
    allowed step is just below that.
    """
    steps = np.diff(time)
    if steps.size == 0:
        return np.inf
    med = float(np.median(steps))
    if pre.gap_rule == "stella":
        return float(np.nextafter(med + pre.gap_nsigma * float(np.std(steps)), -np.inf))
    return pre.gap_tolerance * med


def segment(time: np.ndarray, pre: Preprocessing) -> tuple[np.ndarray, float]:
    """Segment labels of increasing times by ``pre``'s gap rule, and the longest step inside a segment."""
    time = np.asarray(time, np.float64)
    max_step = gap_step(time, pre)
    if time.size < 2:
        return np.zeros(time.size, np.int64), max_step
    return kernels.segment_ids(time, max_step), max_step


def prepare(lc: LightCurveData, pre: Preprocessing, *, require_window: bool = True) -> Prepared:
    """Mask, normalise and segment a light curve, and choose the cadences to score.

    ``require_window=False`` accepts light curves shorter than one window (to place probabilities computed
    elsewhere); the model itself always needs one.

    Raises
    ------
    AllNaNError
        No cadence survives masking.
    NonPositiveMedianError
        The median of the kept flux is zero or negative.
    TooShortError
        Fewer kept cadences than one window.
    """
    keep = kept_mask(lc, pre)
    kept = np.flatnonzero(keep)
    usable = lc.good & ~quality_mask(lc.quality, pre.quality_bitmask, len(lc))
    n_outliers = int(np.count_nonzero(usable & ~keep))
    if kept.size == 0 and not require_window:  # nothing to place probabilities on: an empty catalogue follows
        e = np.empty(0)
        return Prepared(n_input=len(lc), kept=kept, time=e, flux=e.astype(np.float32), seg=kept.copy(),
                        centres=kept.copy(), median=float("nan"), max_step=float("nan"), noise=float("nan"), pre=pre,
                        n_outliers=n_outliers)
    if kept.size == 0:
        raise AllNaNError(f"{lc.label}: no cadence left after masking NaN/inf and quality flags "
                          f"(bitmask {pre.quality_bitmask}); nothing to score")
    if require_window and kept.size < pre.window:
        raise TooShortError(f"{lc.label}: {kept.size} usable cadences, the model needs at least one window "
                            f"of {pre.window}; use a longer light curve")
    flux = lc.flux[kept]
    median = float(np.median(flux))
    if not median > 0:
        raise NonPositiveMedianError(
            f"{lc.label}: median flux is {median:g}; flarelight normalises by the median, which needs positive "
            "flux (background-subtracted fluxes near zero cannot be scored; use PDCSAP/SAP flux)")
    time = lc.time[kept]
    _check_cadence(lc, time, pre)
    seg, max_step = segment(time, pre)
    if pre.edge_mode == "valid":
        centres = np.flatnonzero(kernels.valid_centres(seg, pre.window, pre.offset))
    else:
        centres = np.arange(kept.size, dtype=np.int64)
    norm = (flux / median).astype(np.float32)
    noise = noise_level(norm, seg)
    if pre.normalisation == "baseline+noise":
        norm = baseline_noise_normalise(norm, seg, noise, pre.baseline_half_width)
    return Prepared(n_input=len(lc), kept=kept, time=time, flux=norm, seg=seg, centres=centres,
                    median=median, max_step=max_step, noise=noise, pre=pre, n_outliers=n_outliers)


def baseline_noise_normalise(rel_flux: np.ndarray, seg: np.ndarray, noise: float, half_width: int) -> np.ndarray:
    """The "baseline+noise" normalisation of median-normalised flux, per cadence and once per light curve:
    ``arcsinh((f - running_median(f, seg, half_width)) / noise)`` (float32), the running median within each
    segment (:func:`flarelight.runtime.kernels.running_median`)."""
    f = np.asarray(rel_flux, np.float64)
    base = kernels.running_median(f, seg, int(half_width))
    return np.arcsinh((f - base) / float(noise)).astype(np.float32)


def noise_level(flux: np.ndarray, seg: np.ndarray) -> float:
    """Robust point-to-point scatter: 1.4826 x MAD of the in-segment differences / sqrt(2) (floor 1e-7)."""
    d = np.diff(np.asarray(flux, np.float64))[np.diff(seg) == 0]
    if d.size == 0:
        return 1e-7
    return max(float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0)), 1e-7)


def _check_cadence(lc: LightCurveData, time: np.ndarray, pre: Preprocessing) -> None:
    if not lc.meta.get("cadence_s") and time.size < 2:
        return
    cad = lc.meta.get("cadence_s") or float(np.median(np.diff(time)) * 86400.0)
    if abs(cad - pre.cadence_s) > 0.05 * pre.cadence_s:
        warnings.warn(f"{lc.label}: cadence {cad:.0f} s, the model was trained on {pre.cadence_s:.0f} s; "
                      "probabilities may be unreliable (bin or choose a matching model)", CadenceWarning,
                      stacklevel=3)


def make_windows(prep: Prepared, centres: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Model-ready windows centred on ``centres`` (positions into the kept cadences), by ``prep.pre``: the
    one window builder that inference and training share.

    Returns
    -------
    ndarray of float32, shape (m, window, channels), C-contiguous (``out`` if given)
    """
    pre = prep.pre
    centres = np.asarray(centres, np.int64)
    m = centres.size
    if out is None:
        out = np.empty((m, pre.window, pre.n_channels), np.float32)
    if pre.edge_mode == "valid":
        kernels.gather_windows(prep.flux, centres - pre.offset, pre.window, out=out.reshape(m, pre.window))
    else:
        kernels.gather_padded_windows(prep.flux, prep.seg, centres, pre.window, pre.offset, fill=pre.pad_value,
                                      out=out)
    if pre.normalisation == "median+window_noise":
        kernels.robust_scale_windows(out, prep.noise)
    return out


def window_batches(prep: Prepared, batch_size: int) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(slice into prep.centres, float32 batch of shape (m, window, channels))``.

    One buffer is reused between batches, so the caller must consume each batch before the next.
    """
    pre = prep.pre
    n = prep.centres.size
    buf = np.empty((min(batch_size, n), pre.window, pre.n_channels), np.float32)
    for a in range(0, n, batch_size):
        b = min(a + batch_size, n)
        yield slice(a, b), make_windows(prep, prep.centres[a:b], out=buf[: b - a])
