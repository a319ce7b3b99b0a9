"""flarelight.runtime: TensorFlow-free per-cadence flare probabilities and flare catalogues.

Imports numpy, numba, onnxruntime and astropy only; matplotlib, lightkurve and dask are imported
inside the functions that need them.

The names below load lazily (PEP 562, as scientific Python's SPEC 1 recommends): ``import flarelight.runtime``
imports only the error classes, and the first use of a name imports the module that defines it (numba and astropy
with it). A worker or a command that never builds a catalogue never pays for one.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (AllNaNError, CorruptFileError, DuplicateTimeError, FlarelightError, InvalidLightCurveError,
                     LightCurveReadError, MissingColumnError, ModelFileError, NonPositiveMedianError,
                     TooShortError, UnsortedTimeError)

#: public name -> the submodule that defines it
_LAZY = {
    "LightCurveData": "io", "as_lightcurve": "io", "from_arrays": "io", "from_lightkurve": "io",
    "read_lightcurve": "io",
    "STELLA_PREPROCESSING": "metadata", "ModelMetadata": "metadata", "Preprocessing": "metadata",
    "Scored": "scored",
    "FlareModel": "model", "predict": "model",
    "Catalogue": "catalogue", "flares_from_probabilities": "catalogue", "flares_from_scored": "catalogue",
    "read_catalogue": "catalogue", "write_catalogue": "catalogue",
    "find_flares": "find",
    "plot_flares": "plot",
}

if TYPE_CHECKING:  # what static analysis sees; at run time __getattr__ imports these on first use
    from .catalogue import Catalogue, flares_from_probabilities, flares_from_scored, read_catalogue, write_catalogue
    from .find import find_flares
    from .io import LightCurveData, as_lightcurve, from_arrays, from_lightkurve, read_lightcurve
    from .metadata import STELLA_PREPROCESSING, ModelMetadata, Preprocessing
    from .model import FlareModel, predict
    from .plot import plot_flares
    from .scored import Scored


def __getattr__(name: str) -> Any:
    """Import the submodule defining ``name`` (or the submodule ``name`` itself) on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value
    if name.startswith("__"):  # introspection (__wrapped__, ...) is never a submodule
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
