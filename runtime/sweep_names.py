"""Names of a bulk run's per-file outputs: ``X.fits`` -> ``X.flares.ecsv`` (and ``X.prob.npz``)."""
from __future__ import annotations

import os

#: input suffixes stripped to name the outputs
FITS_SUFFIXES = (".fits.gz", ".fits", ".fit", ".fts")
CATALOGUE_SUFFIX = ".flares.ecsv"
PROB_SUFFIX = ".prob.npz"


def output_stem(path: str | os.PathLike) -> str:
    """The input's name without its FITS suffix."""
    name = os.path.basename(os.fspath(path))
    lower = name.lower()
    for suffix in FITS_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def catalogue_name(path: str | os.PathLike) -> str:
    """Name of the per-file catalogue of an input."""
    return output_stem(path) + CATALOGUE_SUFFIX


def probabilities_name(path: str | os.PathLike) -> str:
    """Name of the per-file probabilities of an input (``--probabilities``)."""
    return output_stem(path) + PROB_SUFFIX
