"""Reading the light curves of a training set: FITS files (SPOC, TESS-SPOC, custom aperture) and stella ``.npy``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from flarelight.runtime.io import LightCurveData

from .stella_format import read_stella_npy


def read_lightcurves(paths: Sequence[str | os.PathLike], *, flux_column: str = "auto",
                     quality_bitmask: str | int = "default", progress: Any = None) -> list[LightCurveData]:
    """Read light curves: FITS files (:func:`~flarelight.runtime.io.read_lightcurve`) and stella ``.npy`` files
    (:func:`read_stella_npy`).

    ``flux_column="auto"`` reads PDCSAP_FLUX, or FLUX in files that have no PDCSAP_FLUX (lightkurve custom-aperture
    files); any other value is passed on as is.
    """
    from flarelight.runtime.io import read_lightcurve

    out = []
    for p in paths:
        p = Path(p)
        if p.suffix.lower() == ".npy":
            out.append(read_stella_npy(p))
        else:
            col = flux_column
            if col == "auto":
                col = "flux" if _has_column(p, "FLUX") and not _has_column(p, "PDCSAP_FLUX") else "pdcsap_flux"
            out.append(read_lightcurve(p, quality_bitmask=quality_bitmask, flux_column=col))
        if progress is not None:
            progress.update(1)
    return out


def _has_column(path: Path, name: str) -> bool:
    """True if a FITS file's first table extension has column ``name`` (False if it cannot be opened: the reader
    then reports the real problem)."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=True) as hdul:
            return len(hdul) > 1 and hasattr(hdul[1], "columns") and name in [c.upper() for c in hdul[1].columns.names]
    except (OSError, ValueError):
        return False


__all__ = ["read_lightcurves"]
