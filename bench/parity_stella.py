#!/usr/bin/env python
"""Parity of flarelight with stella 0.3.0 itself, cadence by cadence, on real TESS sectors.

For each file, stella's ``predict_ensemble`` runs in the stella venv (``--stella-python``) on the
arrays a stella user passes (PDCSAP time, flux, flux_err of the QUALITY == 0, finite cadences), and
flarelight runs ``FlareModel(<converted stella ONNX>).predict(read_lightcurve(path), per_model=True)``.
stella returns kept-length arrays, flarelight input-length ones; they are aligned by row index.

stella scores every kept cadence, most with a real window ``lc[i-100:i+100]`` and the rest with an
all-zero window. Each kept cadence falls in one category (see ``_common.stella_categories``):

real_ok   stella scores a real window inside one segment: flarelight must be finite and within
          ``--tol`` of stella for the ensemble mean and for each of the 10 models
straddle  stella's off-by-one: a real window reaching one cadence back across a gap: flarelight NaN
extra     stella scores an all-zero window although the window is complete and in one segment
          (stella drops cadences b-100 and b-99 before each gap and the last-but-99 cadence):
          flarelight scores them; there is no stella value to compare
zero      stella scores an all-zero window and no full window exists: flarelight NaN

Rows outside the kept set (QUALITY != 0, NaN) must be NaN in flarelight. Exit code 1 on any failure.

Usage::

    .venv/bin/python bench/parity_stella.py [--stella-python /work/stella-venv/bin/python]
        [--model ONNX_DIR] [--files FITS ...] [--tol 1e-5] [--json bench/results/parity_stella.json]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

#: tests/conftest.py PARITY_FILES, then more sectors (other stars, cameras, sectors and years)
DEFAULT_FILES = [
    C.TESS / "tess2018206045859-s0001-0000000441420236-0120-s_lc.fits",
    C.TESS / "tess2018206045859-s0001-0000000032150630-0120-s_lc.fits",
    C.TESS / "tess2019085135100-s0010-0000000093000166-0140-s_lc.fits",
    C.TESS / "tess2018292075959-s0004-0000000257605131-0124-s_lc.fits",
    C.TESS / "tess2019357164649-s0020-0000000130181866-0165-s_lc.fits",
    C.TESS / "tess2022302161335-s0058-0000000021132157-0247-s_lc.fits",
]


def compare_file(path: Path, model: Any, stella_python: Path, tmpd: Path, tol: float) -> dict[str, Any]:
    """Run stella and flarelight on one file and compare them category by category."""
    from flarelight.runtime import read_lightcurve

    user = C.user_arrays(path)
    inp = tmpd / f"{path.stem}.npz"
    np.savez(inp, **user)
    arr = tmpd / f"{path.stem}.stella.npz"
    t0 = time.perf_counter()
    C.run_child(stella_python, "stella", inp, 1, ["--keras", *map(str, C.stella_keras_models()), "--arrays", str(arr)],
                env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    t_stella = time.perf_counter() - t0
    with np.load(arr) as z:
        s_mean, s_models = z["probabilities"], z["per_model"]
    t0 = time.perf_counter()
    f_mean, f_models = model.predict(read_lightcurve(path), per_model=True)
    t_fl = time.perf_counter() - t0

    idx = user["index"]
    n_rows = int(user["n_rows"])
    outside = np.ones(n_rows, bool)
    outside[idx] = False
    fm, fpm = f_mean[idx], f_models[:, idx]
    cat = C.stella_categories(user["time"])
    ok = cat["real_ok"]
    d_mean = np.abs(fm[ok] - s_mean[ok])
    d_models = np.abs(fpm[:, ok] - s_models[:, ok])
    checks = {
        "real_ok finite in flarelight": bool(np.all(np.isfinite(fm[ok]))),
        f"|mean diff| <= {tol:g} on real_ok": bool(np.all(d_mean <= tol)),
        f"|per-model diff| <= {tol:g} on real_ok (all 10)": bool(np.all(d_models <= tol)),
        "straddle NaN in flarelight": bool(np.all(np.isnan(fm[cat["straddle"]]))),
        "zero NaN in flarelight": bool(np.all(np.isnan(fm[cat["zero"]]))),
        "extra finite in flarelight": bool(np.all(np.isfinite(fm[cat["extra"]]))),
        "rows outside the kept set NaN": bool(np.all(np.isnan(f_mean[outside]))),
        "same model count": s_models.shape[0] == f_models.shape[0] == 10,
    }
    # where the extra cadences are relative to stella's gaps and end (for the report)
    return {
        "file": path.name, "n_rows": n_rows, "n_kept": int(idx.size),
        "stella_real": int((cat["real_ok"] | cat["straddle"]).sum()), "compared": int(ok.sum()),
        "max_abs_diff_mean": float(d_mean.max()) if d_mean.size else float("nan"),
        "max_abs_diff_per_model": float(d_models.max()) if d_models.size else float("nan"),
        "max_abs_diff_per_model_each": [float(x) for x in d_models.max(axis=1)],
        "straddle_off_by_one": int(cat["straddle"].sum()), "extra_flarelight_only": int(cat["extra"].sum()),
        "zero_window": int(cat["zero"].sum()), "flarelight_scored": int(np.isfinite(f_mean).sum()),
        "stella_s": t_stella, "flarelight_s": t_fl, "checks": checks, "passed": all(checks.values()),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the parity check; print a table, write JSON; exit 1 on any failed check, 2 without stella."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=Path, nargs="+", default=DEFAULT_FILES)
    ap.add_argument("--model", type=Path, help="flarelight ONNX dir of the converted stella ensemble "
                                              "(default: convert ../shared/models/stella/*.keras into a temp dir)")
    ap.add_argument("--stella-python", type=Path, default=C.DEFAULT_STELLA_PYTHON,
                    help="python of a venv with stella 0.3.0 installed (default %(default)s)")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--json", type=Path, default=C.ROOT / "bench" / "results" / "parity_stella.json")
    args = ap.parse_args(argv)
    if not (args.stella_python.is_file() and os.access(args.stella_python, os.X_OK)):
        print(f"stella venv not found at {args.stella_python}: parity with stella itself needs stella 0.3.0 "
              "installed in a separate venv (see bench/README.md); pass --stella-python. "
              "tests/test_stella_reference.py covers the same logic without stella.", file=sys.stderr)
        return 2

    from flarelight.runtime import FlareModel

    rows = []
    with tempfile.TemporaryDirectory(prefix="flarelight-parity-") as tmp:
        tmpd = Path(tmp)
        model_dir = args.model or C.convert_stella_to(tmpd / "onnx")
        model = FlareModel(model_dir)
        for path in args.files:
            print(f"{path.name} ...", flush=True)
            rows.append(compare_file(path, model, args.stella_python, tmpd, args.tol))

    print()
    print(f"flarelight vs stella 0.3.0 predict_ensemble (10 models), tolerance {args.tol:g}")
    hdr = (f"{'file':<52} {'kept':>6} {'compared':>8} {'max|dmean|':>10} {'max|dmodel|':>11} "
           f"{'off-by-1':>8} {'fl-only':>7} {'zero':>5} {'pass':>5}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['file']:<52} {r['n_kept']:>6} {r['compared']:>8} {r['max_abs_diff_mean']:>10.2e} "
              f"{r['max_abs_diff_per_model']:>11.2e} {r['straddle_off_by_one']:>8} {r['extra_flarelight_only']:>7} "
              f"{r['zero_window']:>5} {'yes' if r['passed'] else 'NO':>5}")
    print()
    print("compared: stella real window inside one segment (flarelight finite, mean and all 10 models within tol)")
    print("off-by-1: stella's real window straddling a gap by one cadence (flarelight NaN)")
    print("fl-only:  complete in-segment window that stella replaces by zeros (flarelight scores it)")
    print("zero:     stella all-zero window, no complete window (flarelight NaN)")
    failed = [(r["file"], k) for r in rows for k, v in r["checks"].items() if not v]
    for f, k in failed:
        print(f"FAILED {f}: {k}")
    from flarelight.runtime.jsonio import write_json

    write_json(args.json, {"tolerance": args.tol, "stella_python": str(args.stella_python), "files": rows,
                           "passed": not failed})
    print(f"wrote {args.json}; {'ALL PASSED' if not failed else f'{len(failed)} check(s) FAILED'}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
