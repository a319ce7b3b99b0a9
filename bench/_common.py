"""Shared helpers for the benches, and the child-process entry points they run.

This module is imported by the benches (flarelight's venv) *and* run as a script by child processes,
possibly with another interpreter (the stella venv), so at import time it needs only the standard
library and numpy. Child roles (``python bench/_common.py ROLE ...``):

``flarelight``   load a flarelight ONNX ensemble and predict (flarelight's venv)
``stella``       stella 0.3.0 ``predict_ensemble`` (a venv with stella installed)
``keras-loop``   stella's procedure re-enacted with Keras: per-model load, zero-filled window array
                 built by a Python loop, ``model.predict`` (fallback reference, flarelight's venv + TF)

Each child reads its inputs from an ``.npz``, times model loading and prediction separately for a
number of repeats, and writes a JSON summary (and optionally the probabilities as ``.npz``). Peak
memory is the child's own high-water mark (``VmHWM`` from ``/proc/self/status``, which is reset at
exec, unlike ``ru_maxrss``, which on Linux can inherit the parent's peak through ``vfork``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
TESS = SHARED / "data" / "tess"
STELLA_KERAS_DIR = SHARED / "models" / "stella"
DEFAULT_FILE = TESS / "tess2018206045859-s0001-0000000441420236-0120-s_lc.fits"
DEFAULT_STELLA_PYTHON = Path("/work/stella-venv/bin/python")
CAD_PAD = 100  # stella: cadences // 2 for its 200-cadence models
_T0 = time.perf_counter()


# ----------------------------------------------------------------------------- inputs
def stella_keras_models() -> list[Path]:
    """stella's ten published ``.keras`` models in ../shared, sorted; exits if they are missing."""
    paths = sorted(STELLA_KERAS_DIR.glob("*.keras"))
    if len(paths) != 10:
        sys.exit(f"expected 10 stella .keras models in {STELLA_KERAS_DIR}, found {len(paths)}")
    return paths


def user_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays a stella user passes: PDCSAP time/flux/flux_err of the QUALITY == 0, finite cadences.

    Read with astropy directly (not flarelight's reader). ``index`` maps each returned cadence to its
    row in the file, so kept-length stella output can be placed beside flarelight's input-length output.
    """
    from astropy.io import fits

    with fits.open(path) as hdul:
        d = hdul[1].data
        t = np.asarray(d["TIME"], np.float64)
        f = np.asarray(d["PDCSAP_FLUX"], np.float64)
        e = np.asarray(d["PDCSAP_FLUX_ERR"], np.float64)
        q = np.asarray(d["QUALITY"], np.int64)
    keep = (q == 0) & np.isfinite(t) & np.isfinite(f) & np.isfinite(e)
    idx = np.flatnonzero(keep)
    return {"time": t[idx], "flux": f[idx], "flux_err": e[idx], "index": idx, "n_rows": np.int64(t.size),
            "quality": q}


def file_arrays(path: Path) -> dict[str, np.ndarray]:
    """All rows of a SPOC file (time, PDCSAP flux/err, QUALITY), as flarelight's array API takes them."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        d = hdul[1].data
        return {"time": np.asarray(d["TIME"], np.float64), "flux": np.asarray(d["PDCSAP_FLUX"], np.float64),
                "flux_err": np.asarray(d["PDCSAP_FLUX_ERR"], np.float64),
                "quality": np.asarray(d["QUALITY"], np.int64)}


# ----------------------------------------------------------------------------- stella's window logic
def stella_good_inds(t: np.ndarray, cad_pad: int = CAD_PAD) -> np.ndarray:
    """Transcription of stella 0.3.0 ``ConvNN.predict.identify_gaps`` (stella/neural_network.py).

    Cadences stella gives a real window ``lc[i - cad_pad : i + cad_pad]``; all others get an all-zero
    window and are still scored. Bugs kept on purpose: the excluded range around a gap at diff index
    ``b`` is ``b - cad_pad .. b + cad_pad - 1`` (so cadence ``b + cad_pad`` straddles the gap, and
    ``b - cad_pad``, ``b - cad_pad + 1`` are dropped though their windows are complete), the end
    exclusion drops ``len - cad_pad`` whose window is complete, negative indices wrap to the end, and
    indices past the end raise ``IndexError`` (a gap within ``cad_pad`` cadences of the end).
    """
    all_inds = np.arange(0, len(t), 1, dtype=int)
    bad_inds = np.arange(0, cad_pad, 1, dtype=int)
    bad_inds = np.append(bad_inds, np.arange(len(t) - cad_pad, len(t), 1, dtype=int))
    diff = np.diff(t)
    med, std = np.nanmedian(diff), np.nanstd(diff)
    bad = np.where(np.abs(diff) >= med + 1.5 * std)[0]
    for b in bad:
        bad_inds = np.append(bad_inds, np.arange(b - cad_pad, b + cad_pad, 1, dtype=int))
    bad_inds = np.sort(bad_inds)
    return np.delete(all_inds, bad_inds)


def full_window_mask(t: np.ndarray, cad_pad: int = CAD_PAD) -> np.ndarray:
    """True where ``[i - cad_pad, i + cad_pad)`` lies inside the light curve and crosses no stella gap."""
    n = len(t)
    diff = np.diff(t)
    gap = np.abs(diff) >= np.nanmedian(diff) + 1.5 * np.nanstd(diff)
    # gaps_before[k] = number of gaps among diffs 0..k-1
    gaps_before = np.concatenate([[0], np.cumsum(gap)])
    i = np.arange(n)
    lo, hi = i - cad_pad, i + cad_pad - 1
    ok = (lo >= 0) & (hi <= n - 1)
    lo_c, hi_c = np.clip(lo, 0, n - 1), np.clip(hi, 0, n - 1)
    # a gap at diff k lies inside the window when lo <= k < hi
    ok &= gaps_before[hi_c] - gaps_before[lo_c] == 0
    return ok


def stella_categories(t: np.ndarray, cad_pad: int = CAD_PAD) -> dict[str, np.ndarray]:
    """Boolean masks over the kept cadences (stella's indexing).

    real_ok    stella scores a real window that crosses no gap (flarelight must match it)
    straddle   stella scores a real window that crosses a gap (its off-by-one; flarelight NaN)
    extra      stella scores an all-zero window although the full window is in one segment
               (flarelight scores it; stella has nothing to compare)
    zero       stella scores an all-zero window and there is no full window (flarelight NaN)
    """
    good = np.zeros(len(t), bool)
    good[stella_good_inds(t, cad_pad)] = True
    full = full_window_mask(t, cad_pad)
    return {"real_ok": good & full, "straddle": good & ~full, "extra": ~good & full, "zero": ~good & ~full}


# ----------------------------------------------------------------------------- child plumbing
def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (VmHWM; ru_maxrss where /proc is absent)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass  # not Linux: fall back to getrusage below
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024.0 * 1024.0) if sys.platform == "darwin" else r / 1024.0


def run_child(python: str | os.PathLike, role: str, inputs: Path, repeats: int, extra: list[str],
              env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run ``python _common.py ROLE`` in a fresh process and return the JSON it wrote."""
    with tempfile.TemporaryDirectory(prefix="flarelight-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [str(python), str(Path(__file__).resolve()), role, "--inputs", str(inputs), "--repeats",
               str(repeats), "--json", str(out), *extra]
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=tmp)
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
            raise RuntimeError(f"child {role!r} failed (exit {proc.returncode}):\n{tail}")
        return json.loads(out.read_text())


def convert_stella_to(out_dir: Path) -> Path:
    """Convert stella's .keras models to flarelight ONNX in ``out_dir`` (a subprocess, so TF stays out of the caller)."""
    code = ("import sys, glob; from flarelight.trainer.export import convert_stella; "
            "convert_stella(sorted(glob.glob(sys.argv[1] + '/*.keras')), sys.argv[2])")
    proc = subprocess.run([sys.executable, "-c", code, str(STELLA_KERAS_DIR), str(out_dir)],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode != 0:
        raise RuntimeError(f"convert_stella failed:\n{proc.stderr[-3000:]}")
    members = [p for p in out_dir.glob("*.onnx") if not p.name.endswith(".sliding.onnx")]  # each has a sliding twin
    if len(members) != 10:
        raise RuntimeError(f"convert_stella wrote {len(members)} member ONNX files, expected 10")
    return out_dir


def _median(xs: list[float]) -> float:
    return float(np.median(np.asarray(xs)))


# ----------------------------------------------------------------------------- child roles
def _child_flarelight(args: argparse.Namespace, data: dict[str, np.ndarray]) -> dict[str, Any]:
    t_imp = time.perf_counter()
    from flarelight.runtime import FlareModel

    import_s = time.perf_counter() - t_imp
    loads, preds, prob = [], [], None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        model = FlareModel(args.model, threads=args.threads or None)
        t1 = time.perf_counter()
        prob = model.predict(data["time"], data["flux"], data["flux_err"], data["quality"])
        t2 = time.perf_counter()
        loads.append(t1 - t0)
        preds.append(t2 - t1)
    assert prob is not None
    return {"import_s": import_s, "load_s": loads, "predict_s": preds, "n_models": model.n_models,
            "n_scored": int(np.isfinite(prob).sum()), "n_rows": int(prob.size), "probabilities": prob}


def _child_stella(args: argparse.Namespace, data: dict[str, np.ndarray]) -> dict[str, Any]:
    t_imp = time.perf_counter()
    import stella
    from stella.pipeline import predict_ensemble  # first: it picks stella's default Keras backend (jax)

    import keras

    import_s = time.perf_counter() - t_imp
    paths = [str(p) for p in args.keras]
    loads, totals, out = [], [], None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for p in paths:  # stella loads inside predict; time that part on its own for the load column
            keras.models.load_model(p)
        t1 = time.perf_counter()
        out = predict_ensemble(paths, data["time"], data["flux"], data["flux_err"], verbose=False)
        t2 = time.perf_counter()
        loads.append(t1 - t0)
        totals.append(t2 - t1)
    assert out is not None
    _, _, _, agg, per_model = out  # stella keeps predictions in object arrays: make them float
    agg, per_model = np.asarray(agg, np.float64), np.asarray(per_model.tolist(), np.float64)
    return {"import_s": import_s, "load_s": loads, "predict_s": [t - l for t, l in zip(totals, loads)],
            "total_s": totals, "n_models": len(paths), "n_rows": int(agg.size), "probabilities": agg,
            "per_model": per_model, "versions": {"stella": getattr(stella, "__version__", "?"),
                                                 "keras": keras.__version__, "backend": keras.backend.backend()}}


def _child_keras_loop(args: argparse.Namespace, data: dict[str, np.ndarray]) -> dict[str, Any]:
    t_imp = time.perf_counter()
    import keras

    import_s = time.perf_counter() - t_imp
    paths = [str(p) for p in args.keras]
    t_kept = data["time"]
    lc = data["flux"] / np.nanmedian(data["flux"])
    good = stella_good_inds(t_kept)
    loads, predicts, per_model = [], [], None
    for _ in range(args.repeats):
        load_s = predict_s = 0.0
        per_model = []
        for p in paths:  # as stella: load per model, then build the windows and predict
            t0 = time.perf_counter()
            model = keras.models.load_model(p)
            t1 = time.perf_counter()
            reshaped = np.zeros((len(lc), 2 * CAD_PAD))
            for i in good:
                reshaped[i] = lc[int(i - CAD_PAD):int(i + CAD_PAD)]
            preds = model.predict(reshaped.reshape(len(lc), 2 * CAD_PAD, 1), verbose=0)
            per_model.append(np.reshape(preds, (len(preds),)))
            t2 = time.perf_counter()
            load_s += t1 - t0
            predict_s += t2 - t1
        loads.append(load_s)
        predicts.append(predict_s)
    pm = np.asarray(per_model)
    return {"import_s": import_s, "load_s": loads, "predict_s": predicts, "n_models": len(paths),
            "n_rows": int(pm.shape[1]), "probabilities": np.nanmean(pm, axis=0), "per_model": pm,
            "versions": {"keras": keras.__version__, "backend": keras.backend.backend()}}


def _child_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("role", choices=["flarelight", "stella", "keras-loop"])
    ap.add_argument("--inputs", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--arrays", type=Path, help="also write probabilities (and per-model) here (.npz)")
    ap.add_argument("--model", type=Path, help="flarelight: ONNX dir")
    ap.add_argument("--threads", type=int, default=0, help="flarelight: onnxruntime threads (0: default)")
    ap.add_argument("--keras", type=Path, nargs="*", default=[], help="stella/keras-loop: .keras files")
    args = ap.parse_args(argv)
    with np.load(args.inputs) as z:
        data = {k: z[k] for k in z.files}
    fn = {"flarelight": _child_flarelight, "stella": _child_stella, "keras-loop": _child_keras_loop}[args.role]
    res = fn(args, data)
    arrays = {k: res.pop(k) for k in ("probabilities", "per_model") if k in res}
    if args.arrays:
        np.savez(args.arrays, **arrays)
    res["peak_rss_mb"] = peak_rss_mb()
    res["process_s"] = time.perf_counter() - _T0
    res["python"] = sys.executable
    args.json.write_text(json.dumps(res))


if __name__ == "__main__":
    sys.path.pop(0)  # bench/ itself must not shadow packages in the child
    _child_main(sys.argv[1:])
