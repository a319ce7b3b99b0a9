"""flarelight.runtime: TensorFlow-free per-cadence flare probabilities and flare catalogues.

Imports numpy, numba, onnxruntime and astropy only; matplotlib, lightkurve and dask are imported
inside the functions that need them.
"""
from .errors import (AllNaNError, CorruptFileError, DuplicateTimeError, FlarelightError, InvalidLightCurveError,
                     LightCurveReadError, MissingColumnError, ModelFileError, NonPositiveMedianError,
                     TooShortError, UnsortedTimeError)
from .io import LightCurveData, as_lightcurve, from_arrays, from_lightkurve, read_lightcurve
from .metadata import STELLA_PREPROCESSING, ModelMetadata, Preprocessing
from .scored import Scored
from .model import FlareModel, predict
from .catalogue import Catalogue, flares_from_probabilities, flares_from_scored, read_catalogue, write_catalogue
from .find import find_flares
from .plot import plot_flares

try:
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("flarelight")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "read_lightcurve", "from_arrays", "from_lightkurve", "as_lightcurve", "LightCurveData",
    "FlareModel", "Scored", "predict", "find_flares", "Catalogue", "flares_from_scored", "flares_from_probabilities",
    "read_catalogue", "write_catalogue",
    "plot_flares", "Preprocessing", "ModelMetadata", "STELLA_PREPROCESSING",
    "FlarelightError", "LightCurveReadError", "CorruptFileError", "MissingColumnError", "InvalidLightCurveError", "AllNaNError",
    "TooShortError", "UnsortedTimeError", "DuplicateTimeError", "NonPositiveMedianError", "ModelFileError",
]
