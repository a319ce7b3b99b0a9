"""``Scored``: a prepared light curve with its per-cadence flare probabilities, the one thing a model's
scoring hands to the catalogue and the plots."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidLightCurveError
from .io import LightCurveData
from .metadata import Preprocessing
from .preprocess import Prepared, prepare

#: the preprocessing used to place external probabilities when no model is given: the reader's mask only
#: (no quality bits of its own), the default gap rule
EXTERNAL_PREPROCESSING = Preprocessing(quality_bitmask=0)


@dataclass(frozen=True)
class Scored:
    """A light curve scored once.

    Attributes
    ----------
    lc : LightCurveData
        The input, every row.
    prepared : Prepared
        Kept cadences, normalised flux, segments and the preprocessing that made them.
    prob : ndarray of float64, shape (len(lc),)
        Ensemble-mean probability; NaN where a cadence was not scored.
    members : ndarray of float64, shape (n_models, len(lc)), or None
        Each member's probability (only when asked for).
    model_id : str
        Who scored it (``FlareModel.model_id``), "" for external probabilities.
    threshold : float
        The scorer's recommended catalogue threshold.
    """

    lc: LightCurveData
    prepared: Prepared
    prob: np.ndarray
    members: np.ndarray | None = None
    model_id: str = ""
    threshold: float = 0.5

    @classmethod
    def from_probabilities(cls, lc: LightCurveData, prob: np.ndarray, pre: Preprocessing | None = None, *,
                           model_id: str = "", threshold: float = 0.5) -> "Scored":
        """Wrap probabilities computed elsewhere (a Keras model, a file) with ``pre``'s masking and gap rule.

        ``pre`` defaults to :data:`EXTERNAL_PREPROCESSING` (the reader's mask, the default gap rule).
        """
        prob = np.asarray(prob, dtype=np.float64)
        if prob.shape != (len(lc),):
            raise InvalidLightCurveError(f"{lc.label}: prob has shape {prob.shape}, the light curve has "
                                         f"{len(lc)} cadences; give one probability per input row")
        prepared = prepare(lc, pre if pre is not None else EXTERNAL_PREPROCESSING, require_window=False)
        return cls(lc=lc, prepared=prepared, prob=prob, model_id=model_id, threshold=float(threshold))
