"""Run AltaiPony on a batch of light curves; the AltaiPony contender of ``bench/bench_models.py``.

This script runs INSIDE the AltaiPony venv (``bench/altaipony_env.sh``), never in flarelight's: it imports
neither flarelight nor anything from ``bench/``, only numpy and AltaiPony, and it never touches the network
(no ``from_mast``: every light curve is built from the arrays it is given).

    <altaipony-venv>/bin/python bench/altaipony_runner.py IN.npz OUT.json

``IN.npz`` (written by ``bench_models.AltaiPony``): ``names`` (n strings) and, for light curve ``i``,
``time_i``, ``flux_i``, ``flux_err_i`` (BTJD days, PDCSAP flux and its error), already restricted to the
cadences flarelight's runtime keeps by default (finite, quality bitmask "default" = lightkurve's
DEFAULT_BITMASK 17087, which includes ImpulsiveOutlier 512).

For each light curve, AltaiPony's documented procedure for Kepler and TESS light curves ("Finding flares"
tutorial; ``detrend`` and ``find_flares`` with their defaults)::

    flc = FlareLightCurve(time=Time(time, format="btjd", scale="tdb"), flux=flux, flux_err=flux_err,
                          cadenceno=np.arange(n))
    flcd = flc.detrend("savgol")        # Savitzky-Golay, window 0.1 d (73 cadences at 2 min), 3-sigma clipping
    flcd = flcd.find_flares()           # Chang et al. 2015 criteria: N1=3, N2=2, N3=3, minsep=3,
                                        # sigma = detrended_flux_err (= PDCSAP_FLUX_ERR)

``OUT.json``: ``{"versions": {...}, "lightcurves": [{"name", "n_cadences", "seconds", "error",
"events": {"tstart", "tstop", "tpeak", "ed"}}]}``, one entry per input in order. ``tstart``/``tstop`` are
AltaiPony's; ``tpeak`` is the time of the highest detrended flux in [istart, istop] (AltaiPony's table has
no peak time); ``ed`` is ``ed_rec`` (s). A light curve AltaiPony fails on gets ``error`` and no events.
"""
from __future__ import annotations

import json
import sys
import time as _time
import traceback
import warnings

import numpy as np


def find(time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray) -> dict[str, list[float]]:
    """AltaiPony's default TESS procedure on one light curve -> event columns."""
    from astropy.time import Time
    from altaipony.flarelc import FlareLightCurve

    flc = FlareLightCurve(time=Time(time, format="btjd", scale="tdb"), flux=flux, flux_err=flux_err,
                          cadenceno=np.arange(time.size))
    flcd = flc.detrend("savgol")
    flcd = flcd.find_flares()
    fl = flcd.flares
    t = np.asarray(flcd.time.value, float)
    det = np.asarray(flcd.detrended_flux, float)
    ev: dict[str, list[float]] = {"tstart": [], "tstop": [], "tpeak": [], "ed": []}
    for _, r in fl.iterrows():
        i, j = int(r["istart"]), int(r["istop"])
        ev["tstart"].append(float(r["tstart"]))
        ev["tstop"].append(float(r["tstop"]))
        ev["tpeak"].append(float(t[i + int(np.nanargmax(det[i:j + 1]))]))
        ev["ed"].append(float(r["ed_rec"]))
    return ev


def main(argv: list[str]) -> None:
    """Read IN.npz, run every light curve, write OUT.json."""
    if len(argv) != 2:
        sys.exit("usage: altaipony_runner.py IN.npz OUT.json")
    import altaipony.version
    import astropy
    import lightkurve

    out = []
    with np.load(argv[0]) as z:
        names = [str(n) for n in z["names"]]
        for i, name in enumerate(names):
            t0 = _time.perf_counter()
            row = {"name": name, "n_cadences": int(z[f"time_{i}"].size), "error": None,
                   "events": {"tstart": [], "tstop": [], "tpeak": [], "ed": []}}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    row["events"] = find(z[f"time_{i}"], z[f"flux_{i}"], z[f"flux_err_{i}"])
            except Exception:  # noqa: BLE001  (one failing light curve must not lose the batch)
                row["error"] = traceback.format_exc(limit=3)[-2000:]
            row["seconds"] = _time.perf_counter() - t0
            out.append(row)
    versions = {"altaipony": getattr(altaipony.version, "__version__", "?"), "numpy": np.__version__,
                "astropy": astropy.__version__, "lightkurve": lightkurve.__version__,
                "python": sys.version.split()[0]}
    with open(argv[1], "w") as fh:
        json.dump({"versions": versions, "lightcurves": out}, fh)


if __name__ == "__main__":
    sys.path.pop(0)  # bench/ itself must not shadow packages
    main(sys.argv[1:])
