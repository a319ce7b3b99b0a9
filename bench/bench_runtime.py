#!/usr/bin/env python
"""Wall time and peak memory of flarelight's runtime beside the stella reference, in one run.

For one TESS sector and stella's 10-model ensemble, each contender runs in its own child process
(so peak memory is its own) and repeats "load the ensemble, predict the light curve"; the table shows
the median of the repeats and the reference / flarelight ratios.

Contenders
----------
flarelight          ``FlareModel(<converted stella ONNX>)`` with onnxruntime's default threads
flarelight (1 thr)  the same with ``threads=1``
reference           stella 0.3.0 itself (``stella.pipeline.predict_ensemble``) run by ``--stella-python``
                    (a separate venv with stella installed; see bench/README.md). Without it the bench
                    says so and falls back to "keras-loop": stella's procedure re-enacted in flarelight's
                    venv with Keras (per-model ``load_model``, zero-filled window array filled by a
                    Python loop, ``model.predict``), which is not stella itself.

Usage::

    .venv/bin/python bench/bench_runtime.py [--file FITS] [--model ONNX_DIR]
        [--stella-python /work/stella-venv/bin/python] [--repeats 3] [--json bench/results/runtime.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None or not np.isfinite(x) else format(x, spec)


def _summarise(name: str, res: dict[str, Any]) -> dict[str, Any]:
    load = float(np.median(res["load_s"]))
    pred = float(np.median(res["predict_s"]))
    return {"name": name, "import_s": res["import_s"], "load_s": load, "predict_s": pred,
            "total_s": load + pred, "peak_rss_mb": res["peak_rss_mb"], "repeats_load_s": res["load_s"],
            "repeats_predict_s": res["predict_s"], "n_models": res["n_models"], "raw": res}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table and write JSON. Returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", type=Path, default=C.DEFAULT_FILE, help="TESS SPOC light-curve FITS")
    ap.add_argument("--model", type=Path, help="flarelight ONNX dir of the converted stella ensemble "
                                              "(default: convert ../shared/models/stella/*.keras into a temp dir)")
    ap.add_argument("--stella-python", type=Path, default=C.DEFAULT_STELLA_PYTHON,
                    help="python of a venv with stella 0.3.0 installed (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=3, help="load+predict repeats per contender (median reported)")
    ap.add_argument("--json", type=Path, default=C.ROOT / "bench" / "results" / "runtime.json")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    keras_paths = C.stella_keras_models()
    have_stella = args.stella_python.is_file() and os.access(args.stella_python, os.X_OK)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="flarelight-bench-") as tmp:
        tmpd = Path(tmp)
        model_dir = args.model
        if model_dir is None:
            t0 = time.perf_counter()
            model_dir = C.convert_stella_to(tmpd / "onnx")
            print(f"converted stella's 10 .keras models to ONNX in {time.perf_counter() - t0:.1f} s")
        all_rows = tmpd / "all_rows.npz"
        np.savez(all_rows, **C.file_arrays(args.file))
        user = C.user_arrays(args.file)
        kept_npz = tmpd / "stella_input.npz"
        np.savez(kept_npz, **user)

        results: list[dict[str, Any]] = []
        arrays: dict[str, Path] = {}
        for name, threads in (("flarelight", 0), ("flarelight (1 thread)", 1)):
            arrays[name] = tmpd / f"fl{threads}.npz"
            print(f"running {name} ...", flush=True)
            res = C.run_child(sys.executable, "flarelight", all_rows, args.repeats,
                              ["--model", str(model_dir), "--threads", str(threads), "--arrays", str(arrays[name])])
            results.append(_summarise(name, res))
        keras_args = ["--keras", *map(str, keras_paths)]
        if have_stella:
            ref_name, ref_kind = "stella 0.3.0 predict_ensemble", "stella"
            print(f"running {ref_name} with {args.stella_python} ...", flush=True)
            arrays[ref_name] = tmpd / "ref.npz"
            res = C.run_child(args.stella_python, "stella", kept_npz, args.repeats,
                              keras_args + ["--arrays", str(arrays[ref_name])], env=QUIET_TF)
        else:
            ref_name, ref_kind = "keras-loop (stella re-enacted, NOT stella)", "keras-loop"
            print(f"NOTE: no stella venv at {args.stella_python}: the reference is NOT stella itself but "
                  "stella's procedure re-enacted with Keras in flarelight's venv (pass --stella-python).",
                  flush=True)
            arrays[ref_name] = tmpd / "ref.npz"
            res = C.run_child(sys.executable, "keras-loop", kept_npz, args.repeats,
                              keras_args + ["--arrays", str(arrays[ref_name])],
                              env={**QUIET_TF, "KERAS_BACKEND": "tensorflow"})
        ref = _summarise(ref_name, res)
        results.append(ref)

        # agreement on the cadences where both score the same real window
        cat = C.stella_categories(user["time"])
        ref_p = np.load(arrays[ref_name])["probabilities"]
        fl = np.load(arrays["flarelight"])["probabilities"]
        fl1 = np.load(arrays["flarelight (1 thread)"])["probabilities"]
        fl_k = fl[user["index"]]
        max_diff = float(np.max(np.abs(fl_k[cat["real_ok"]] - ref_p[cat["real_ok"]])))
        thread_diff = float(np.nanmax(np.abs(fl - fl1)))

    n_stella_real = int((cat["real_ok"] | cat["straddle"]).sum())
    for r in results:
        if r["name"].startswith("flarelight"):
            r["scored"] = r["raw"]["n_scored"]
            r["scored_note"] = "finite probabilities (full window in one segment)"
        else:
            r["scored"] = r["raw"]["n_rows"]
            r["scored_note"] = f"all {r['raw']['n_rows']} kept rows scored; {n_stella_real} with a real window"

    # ------------------------------------------------------------------ print
    fl_def = results[0]
    print()
    print(f"file: {args.file.name}  ({int(user['n_rows'])} rows, {user['time'].size} QUALITY==0 & finite)")
    print(f"ensemble: 10 stella models; repeats: {args.repeats} (median); cpus: {os.cpu_count()}; "
          f"load average before: {load_before[0]:.2f}, after: {os.getloadavg()[0]:.2f}")
    hdr = f"{'contender':<44} {'import s':>8} {'load s':>8} {'predict s':>10} {'load+pred s':>11} {'peak MB':>9} {'scored':>7}"
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        print(f"{r['name']:<44} {_fmt(r['import_s']):>8} {_fmt(r['load_s']):>8} {_fmt(r['predict_s']):>10} "
              f"{_fmt(r['total_s']):>11} {_fmt(r['peak_rss_mb'], '.0f'):>9} {r['scored']:>7}")
    print()
    ratios = {}
    for r in results[:2]:
        ratios[r["name"]] = {
            "predict": ref["predict_s"] / r["predict_s"], "load": ref["load_s"] / r["load_s"],
            "load+predict": ref["total_s"] / r["total_s"], "peak_memory": ref["peak_rss_mb"] / r["peak_rss_mb"]}
        q = ratios[r["name"]]
        print(f"reference / {r['name']}: predict x{q['predict']:.2f}, load x{q['load']:.2f}, "
              f"load+predict x{q['load+predict']:.2f}, peak memory x{q['peak_memory']:.2f}  (>1: flarelight better)")
    print(f"stella scores {ref['raw']['n_rows']} rows, {n_stella_real} of them with a real window "
          f"({int(cat['straddle'].sum())} straddling a gap); flarelight scores {fl_def['raw']['n_scored']}")
    print(f"max |flarelight - reference| over {int(cat['real_ok'].sum())} cadences with the same real window: "
          f"{max_diff:.2e}; max |default threads - 1 thread| = {thread_diff:.2e}")
    if ref_kind == "stella":
        v = ref["raw"].get("versions", {})
        print(f"reference: stella {v.get('stella')}, keras {v.get('keras')}, backend {v.get('backend')} "
              f"(predict_ensemble verbose=False; predict s = predict_ensemble wall time minus the separately "
              f"timed 10x keras.models.load_model, which stella does inside every call)")

    out = {"file": str(args.file), "n_rows": int(user["n_rows"]), "n_kept": int(user["time"].size),
           "reference_kind": ref_kind, "stella_python": str(args.stella_python) if have_stella else None,
           "repeats": args.repeats, "cpu_count": os.cpu_count(), "platform": platform.platform(),
           "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
           "contenders": [{k: v for k, v in r.items() if k != "raw"} | {"details": r["raw"]} for r in results],
           "ratios_reference_over_flarelight": ratios, "max_abs_diff_real_windows": max_diff,
           "n_compared": int(cat["real_ok"].sum()), "max_abs_diff_threads": thread_diff,
           "stella_real_windows": n_stella_real, "stella_straddling": int(cat["straddle"].sum())}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1, default=float))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
