"""TESS quality flags and named bitmasks, with the same bits as lightkurve's ``TessQualityFlags``."""
from __future__ import annotations

import numpy as np

#: bit values of the TESS QUALITY column (TESS Science Data Products Description, table 28)
FLAGS = {
    "AttitudeTweak": 1,
    "SafeMode": 2,
    "CoarsePoint": 4,
    "EarthPoint": 8,
    "Argabrightening": 16,
    "Desat": 32,
    "ApertureCosmic": 64,
    "ManualExclude": 128,
    "Discontinuity": 256,
    "ImpulsiveOutlier": 512,
    "CollateralCosmic": 1024,
    "Straylight": 2048,
    "Straylight2": 4096,
    "PlanetSearchExclude": 8192,
    "BadCalibrationExclude": 16384,
    "InsufficientTargets": 32768,
}

#: lightkurve's DEFAULT_BITMASK: AttitudeTweak, SafeMode, CoarsePoint, EarthPoint, Argabrightening,
#: Desat, ManualExclude, ImpulsiveOutlier, BadCalibrationExclude (= 1 2 4 8 16 32 128 512 16384)
DEFAULT_BITMASK = 1 | 2 | 4 | 8 | 16 | 32 | 128 | 512 | 16384
#: lightkurve's HARD_BITMASK: default plus ApertureCosmic, CollateralCosmic, Straylight, Straylight2
HARD_BITMASK = DEFAULT_BITMASK | 64 | 1024 | 2048 | 4096
#: lightkurve's HARDEST_BITMASK: every defined flag
HARDEST_BITMASK = sum(FLAGS.values())
#: every bit: a cadence is kept only when QUALITY == 0 (stella's rule)
ANY_BITMASK = 0xFFFFFFFF

NAMED_BITMASKS = {
    "none": 0,
    "default": DEFAULT_BITMASK,
    "hard": HARD_BITMASK,
    "hardest": HARDEST_BITMASK,
    "any": ANY_BITMASK,
}


def resolve_bitmask(bitmask: str | int) -> int:
    """Turn a bitmask name ("none", "default", "hard", "hardest", "any") or int into an int.

    Parameters
    ----------
    bitmask : str or int
        A name from :data:`NAMED_BITMASKS` or a non-negative integer.

    Returns
    -------
    int
    """
    if isinstance(bitmask, (bool, np.bool_)):
        raise ValueError(f"quality_bitmask={bitmask!r}: give a name {sorted(NAMED_BITMASKS)} or an int")
    if isinstance(bitmask, (int, np.integer)):
        if bitmask < 0:
            raise ValueError(f"quality_bitmask={bitmask}: must be >= 0")
        return int(bitmask)
    if isinstance(bitmask, str):
        key = bitmask.strip().lower()
        if key in NAMED_BITMASKS:
            return NAMED_BITMASKS[key]
        if key.isdigit():
            return int(key)
    raise ValueError(
        f"quality_bitmask={bitmask!r} is not understood: use one of {sorted(NAMED_BITMASKS)} or an integer"
    )


def quality_mask(quality: np.ndarray | None, bitmask: str | int, n: int) -> np.ndarray:
    """Boolean array, True where a cadence is flagged bad by ``bitmask``.

    Parameters
    ----------
    quality : ndarray or None
        The QUALITY column (any integer dtype); None means no flags.
    bitmask : str or int
        See :func:`resolve_bitmask`.
    n : int
        Length of the light curve (used when ``quality`` is None).
    """
    bits = resolve_bitmask(bitmask)
    if quality is None or bits == 0:
        return np.zeros(n, dtype=bool)
    q = np.asarray(quality).astype(np.int64, copy=False)
    return (q & bits) != 0
