"""The AltaiPony contender of ``bench/bench_models.py``, flarelight's side.

AltaiPony (PyPI ``altaipony``: Savitzky-Golay detrending + Chang et al. 2015 sigma criteria, no ML) is never a
dependency of flarelight. It lives in its own venv (``bench/altaipony_env.sh``; default ``../altaipony-venv``
beside the project root, or ``$ALTAIPONY_VENV``), and ``bench/altaipony_runner.py`` runs there in a child
process on arrays written here, many light curves per call (its start-up takes seconds).

Each light curve goes to AltaiPony as the cadences flarelight's runtime keeps by default: finite time, flux
and flux_err, QUALITY not matching the "default" bitmask (lightkurve's, with ImpulsiveOutlier 512). Its events
are cached per light curve in ``cache_dir`` as JSON, keyed by those arrays and the runner's source, so a rerun
does not call AltaiPony again. Numpy and the standard library only (plus flarelight's quality helper).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RUNNER = Path(__file__).resolve().parent / "altaipony_runner.py"
#: rule name of the contender in bench_models.CONTENDERS
RULE = "altaipony"


def default_python() -> Path:
    """The AltaiPony venv's interpreter: ``$ALTAIPONY_VENV/bin/python``, else ``../altaipony-venv/bin/python``."""
    venv = os.environ.get("ALTAIPONY_VENV") or str(ROOT.parent / "altaipony-venv")
    return Path(venv) / "bin" / "python"


def arrays(lc: Any) -> dict[str, np.ndarray]:
    """time, flux, flux_err of the cadences flarelight's runtime keeps by default (``LightCurveData`` in)."""
    from flarelight.runtime.quality import quality_mask

    n = len(lc)
    err = lc.flux_err if lc.flux_err is not None else np.full(n, np.nan)
    keep = np.isfinite(lc.time) & np.isfinite(lc.flux) & np.isfinite(err) & lc.good
    if lc.quality is not None:
        keep &= ~quality_mask(lc.quality, "default", n)
    return {"time": np.asarray(lc.time[keep], float), "flux": np.asarray(lc.flux[keep], float),
            "flux_err": np.asarray(err[keep], float)}


def digest(arr: dict[str, np.ndarray], salt: str) -> str:
    """Cache key of one light curve's arrays (and ``salt``: the runner's source)."""
    h = hashlib.sha1(salt.encode())
    for k in ("time", "flux", "flux_err"):
        h.update(np.ascontiguousarray(arr[k], np.float64).tobytes())
    return h.hexdigest()[:24]


def write_inputs(path: Path, items: list[tuple[str, dict[str, np.ndarray]]]) -> None:
    """The runner's input: ``names`` and ``time_i``, ``flux_i``, ``flux_err_i`` per light curve."""
    out: dict[str, np.ndarray] = {"names": np.array([n for n, _ in items], dtype=str)}
    for i, (_, arr) in enumerate(items):
        for k in ("time", "flux", "flux_err"):
            out[f"{k}_{i}"] = arr[k]
    np.savez(path, **out)


def to_events(ev: dict[str, list[float]]) -> np.ndarray:
    """The runner's event columns -> the bench's (n, 3) [tpeak, tstart, tstop], sorted by tstart."""
    a = np.column_stack([np.asarray(ev[k], float) for k in ("tpeak", "tstart", "tstop")]) if ev["tpeak"] \
        else np.empty((0, 3))
    return a[np.argsort(a[:, 1], kind="stable")]


class AltaiPony:
    """AltaiPony run in its venv on flarelight light curves; events cached in memory and in ``cache_dir``."""

    def __init__(self, python: Path, cache_dir: Path | None = None, runner: Path = RUNNER,
                 log: Callable[[str], None] = print, timeout: float = 7200) -> None:
        self.python, self.cache_dir, self.runner, self.log, self.timeout = Path(python), cache_dir, runner, log, timeout
        self.salt = hashlib.sha1(Path(runner).read_bytes()).hexdigest()
        self._events: dict[str, dict] = {}
        self.calls = 0  # runner processes started
        self.seconds = 0.0  # their wall time
        self.versions: dict[str, str] = {}
        self.errors: list[str] = []

    @property
    def model_id(self) -> str:
        v = self.versions.get("altaipony", "?").rstrip(".")
        return f"AltaiPony {v} (detrend('savgol'), find_flares() defaults)"

    def _key(self, lc: Any) -> tuple[str, dict[str, np.ndarray]]:
        arr = arrays(lc)
        return digest(arr, self.salt), arr

    def _cached(self, key: str) -> dict | None:
        if key not in self._events and self.cache_dir is not None and (self.cache_dir / f"{key}.json").is_file():
            self._events[key] = json.loads((self.cache_dir / f"{key}.json").read_text())
        return self._events.get(key)

    def prefetch(self, lcs: list[Any]) -> None:
        """Run AltaiPony once on every light curve of ``lcs`` that is not cached yet (one child process)."""
        todo: dict[str, dict[str, np.ndarray]] = {}
        for lc in lcs:
            key, arr = self._key(lc)
            if self._cached(key) is None:
                todo[key] = arr
        if not todo:
            return
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="flarelight-altaipony-") as tmp:
            inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.json"
            write_inputs(inp, list(todo.items()))
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            proc = subprocess.run([str(self.python), "-W", "ignore", str(self.runner), str(inp), str(out)],
                                  capture_output=True, text=True, cwd=tmp, env=env, timeout=self.timeout)
            if proc.returncode != 0 or not out.is_file():
                tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
                raise RuntimeError(f"altaipony_runner.py failed (exit {proc.returncode}) with {self.python}:\n{tail}")
            doc = json.loads(out.read_text())
        self.calls += 1
        self.seconds += time.perf_counter() - t0
        self.versions = doc["versions"]
        for row in doc["lightcurves"]:
            row["versions"] = doc["versions"]
            if row["error"]:
                self.errors.append(row["error"])
                self.log(f"altaipony failed on one light curve (no events counted): {row['error'].splitlines()[-1]}")
            else:  # failures are not cached: a rerun tries again
                self._events[row["name"]] = row
                if self.cache_dir is not None:
                    self.cache_dir.mkdir(parents=True, exist_ok=True)
                    (self.cache_dir / f"{row['name']}.json").write_text(json.dumps(row))
        self.log(f"altaipony: {len(todo)} light curves in one child process, {time.perf_counter() - t0:.0f} s")

    def events(self, lc: Any) -> np.ndarray:
        """(n, 3) [tpeak, tstart, tstop] of ``lc`` (run now, alone, if no prefetch covered it)."""
        key, _ = self._key(lc)
        if self._cached(key) is None:
            self.prefetch([lc])
        row = self._cached(key)
        if row is not None and not self.versions:
            self.versions = row.get("versions", {})
        return to_events(row["events"]) if row is not None else np.empty((0, 3))

    def exposure_days(self, lc: Any) -> float:
        """Days of data AltaiPony is given: kept cadences x the median cadence."""
        t = arrays(lc)["time"]
        return float(t.size * np.median(np.diff(t))) if t.size > 1 else 0.0
