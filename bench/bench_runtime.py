#!/usr/bin/env python
"""Speed, memory and parity of flarelight's two engines beside stella 0.3.0, side by side in one run.

For one TESS sector, each contender runs in its own child process (so peak memory is its own) and repeats
"load the model, read the FITS file, predict"; the table gives medians of the repeats.

Contenders
----------
stella's 10 models (converted to flarelight ONNX with their sliding graphs):
  sliding             ``FlareModel(dir)`` (engine "sliding": one pass per segment), default threads
  sliding (1 thread)  the same with ``threads=1``
  windows             ``FlareModel(dir, engine="windows")``: every window on its own (the reference path)
  stella 0.3.0        ``stella.pipeline.predict_ensemble`` on its default JAX backend, run by ``--stella-python``
                      (a separate venv, see bench/README.md; it takes the QUALITY == 0 arrays a stella user
                      passes, so its time has no FITS reading). Without it the bench says so and re-enacts
                      stella's procedure with Keras in flarelight's venv ("keras-loop", NOT stella).
the sliding-ready test model (stella's sizes, ``valid`` convolutions, random weights, one member):
  sliding, windows    as above

Also reported: the CPU time of scoring (all threads; less sensitive than wall time to a busy machine), achieved
GFLOP/s of each path (network FLOPs / score wall time) against an estimate of this CPU's
peak (its name and whether it has AVX-512 are printed), peak resident memory of each child (``VmHWM``), the
peak of one sector through stella's 10 models in a fresh process (load, read, score), and the resident memory of one process scoring ``--sectors`` sectors in a row with the sliding engine (growth).

Usage::

    .venv/bin/python bench/bench_runtime.py [--file FITS] [--model DIR] [--stella-python PY]
        [--repeats 3] [--sectors 200] [--json bench/results/runtime.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
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


# ----------------------------------------------------------------------------- child: one engine in its own process
def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _child(argv: list[str]) -> None:
    """``bench_runtime.py --child ROLE ...``: time load / read / prepare / score, or watch memory over sectors."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", choices=["engine", "growth", "find"])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--file", type=Path)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sectors", type=int, default=200)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--arrays", type=Path)
    args = ap.parse_args(argv)
    t_imp = time.perf_counter()
    from flarelight.runtime import FlareModel
    from flarelight.runtime.io import read_lightcurve
    from flarelight.runtime.preprocess import prepare

    res: dict[str, Any] = {"import_s": time.perf_counter() - t_imp, "rss_after_import_mb": _rss_mb()}
    if args.child == "find":  # a user's default call: find_flares(file, model), read + score + catalogue
        import warnings

        from flarelight.runtime import find_flares

        model = FlareModel(args.model, threads=args.threads or None, engine=args.engine)
        finds, rows = [], 0
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rows = len(find_flares(str(args.file), model=model))
            finds.append(time.perf_counter() - t0)
        res.update(engine=model.engine, n_models=model.n_models, find_s=finds, n_flares=rows,
                   model_id=model.model_id)
    elif args.child == "growth":
        model = FlareModel(args.model, threads=args.threads or None, engine=args.engine)
        rss = []
        t0 = time.perf_counter()
        for _ in range(args.sectors):
            model.score(args.file)
            rss.append(_rss_mb())
        res.update(engine=model.engine, rss_mb=rss, seconds=time.perf_counter() - t0)
    else:
        loads, reads, preps, scores, cpus, prob = [], [], [], [], [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            model = FlareModel(args.model, threads=args.threads or None, engine=args.engine)
            t1 = time.perf_counter()
            lc = read_lightcurve(args.file)
            t2 = time.perf_counter()
            prep = prepare(lc, model.preprocessing)
            t3, c3 = time.perf_counter(), time.process_time()
            s = model._score_prepared(prep)
            t4, c4 = time.perf_counter(), time.process_time()
            cpus.append(c4 - c3)
            prob = prep.scatter(s.astype(np.float64).mean(axis=0))
            loads.append(t1 - t0)
            reads.append(t2 - t1)
            preps.append(t3 - t2)
            scores.append(t4 - t3)
            if args.arrays:
                np.savez(args.arrays, probabilities=prob, per_model=prep.scatter(s))
        sliding = [m.sliding for m in model.members]
        res.update(engine=model.engine, n_models=model.n_models, n_scored=int(prep.centres.size),
                   load_s=loads, read_s=reads, prepare_s=preps, score_s=scores, score_cpu_s=cpus,
                   flops_per_window=[int(m.info.get("flops_per_window", 0)) if m else 0 for m in sliding],
                   flops_per_start=[int(m.info.get("flops_per_start", 0)) if m else 0 for m in sliding])
    with open("/proc/self/status") as fh:
        res["peak_rss_mb"] = next(int(line.split()[1]) / 1024.0 for line in fh if line.startswith("VmHWM:"))
    args.json.write_text(json.dumps(res))


def _run_child(extra: list[str], timeout: float = 3600) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="flarelight-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), *extra, "--json", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
            raise RuntimeError(f"child {extra[:2]} failed (exit {proc.returncode}):\n{tail}")
        return json.loads(out.read_text())


# ----------------------------------------------------------------------------- the bench
def _row(name: str, group: str, res: dict, flops_key: str | None) -> dict[str, Any]:
    """Medians of a child's repeats, end-to-end time (read + prepare + score) and achieved GFLOP/s."""
    med = {k: float(np.median(res[k])) for k in ("load_s", "read_s", "prepare_s", "score_s", "score_cpu_s") if k in res}
    row = {"group": group, "name": name, "engine": res.get("engine"), "peak_rss_mb": res["peak_rss_mb"],
           "n_scored": res.get("n_scored"), **med}
    if "score_s" in med:
        row["end_to_end_s"] = med["read_s"] + med["prepare_s"] + med["score_s"]
        if flops_key:
            flops = res["n_scored"] * float(np.sum(res[flops_key]))
            row["gflop"] = flops / 1e9
            row["gflops_achieved"] = flops / med["score_s"] / 1e9
            row["gflops_per_cpu_s"] = flops / med["score_cpu_s"] / 1e9
    elif "find_s" in res:  # find_flares end to end (read, prepare, score, catalogue)
        row["end_to_end_s"] = float(np.median(res["find_s"]))
    else:  # stella: predict_ensemble's own timing
        row["end_to_end_s"] = float(np.median(res["predict_s"]))
        row["load_s"] = float(np.median(res["load_s"]))
    return row


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print tables and write JSON. Returns the exit code."""
    from flarelight.models import DEFAULT_MODEL
    from bench_sliding import machine_info, sliding_test_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", type=Path, default=C.DEFAULT_FILE, help="TESS SPOC light-curve FITS")
    ap.add_argument("--model", type=Path, help="stella's models converted by flarelight (with sliding graphs); "
                                              "default: convert ../shared/models/stella/*.keras into a temp dir")
    ap.add_argument("--stella-python", type=Path, default=C.DEFAULT_STELLA_PYTHON,
                    help="python of a venv with stella 0.3.0 installed (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats per contender (median reported)")
    ap.add_argument("--sectors", type=int, default=200, help="sectors scored in one process for the growth check (0: skip)")
    ap.add_argument("--json", type=Path, default=C.ROOT / "bench" / "results" / "runtime.json")
    ap.add_argument("--shipped", nargs="*", default=["flarelight-v1", DEFAULT_MODEL],
                    help="shipped models whose default find_flares (read + score + catalogue) is timed per sector")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    machine = machine_info()
    have_stella = args.stella_python.is_file() and os.access(args.stella_python, os.X_OK)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="flarelight-bench-") as tmp:
        tmpd = Path(tmp)
        model_dir = args.model
        if model_dir is None:
            t0 = time.perf_counter()
            model_dir = C.convert_stella_to(tmpd / "onnx")
            print(f"converted stella's 10 .keras models (with sliding graphs) in {time.perf_counter() - t0:.1f} s")
        if len(list(model_dir.glob("*.sliding.onnx"))) != 10:
            sys.exit(f"{model_dir}: expected 10 sliding graphs beside the members; convert again with this trainer")
        test_dir = sliding_test_model(tmpd / "test")
        user = C.user_arrays(args.file)
        kept_npz = tmpd / "stella_input.npz"
        np.savez(kept_npz, **user)
        arrays = {k: tmpd / f"{k}.npz" for k in ("sliding", "windows", "ref")}
        rows: list[dict] = []
        common = ["--file", str(args.file), "--repeats", str(args.repeats)]
        plan = [("sliding", "stella x10", ["--model", str(model_dir), "--engine", "sliding", "--arrays", str(arrays["sliding"])]),
                ("sliding (1 thread)", "stella x10", ["--model", str(model_dir), "--engine", "sliding", "--threads", "1"]),
                ("windows", "stella x10", ["--model", str(model_dir), "--engine", "windows", "--arrays", str(arrays["windows"])]),
                ("sliding", "test model", ["--model", str(test_dir), "--engine", "sliding"]),
                ("windows", "test model", ["--model", str(test_dir), "--engine", "windows"])]
        from flarelight.models import model_paths, shipped_models

        for name in [n for n in args.shipped if n in shipped_models()]:
            plan.append(("find_flares (default)", name, ["--child-find", "--model", str(model_paths(name)[0].parent)]))
        for name, group, extra in plan:
            if extra and extra[0] == "--child-find":
                print(f"running {group}: {name} ...", flush=True)
                res = _run_child(["--child", "find", *common, *extra[1:]])
                rows.append(_row(name, group, res, None))
                rows[-1]["raw"] = res
                continue
            print(f"running {group}: {name} ...", flush=True)
            res = _run_child(["--child", "engine", *common, *extra])
            rows.append(_row(name, group, res, "flops_per_start" if res["engine"] == "sliding" else "flops_per_window"))
            rows[-1]["raw"] = res
        if have_stella:
            ref_name, ref_kind = "stella 0.3.0 predict_ensemble (JAX)", "stella"
            print(f"running {ref_name} with {args.stella_python} ...", flush=True)
            res = C.run_child(args.stella_python, "stella", kept_npz, args.repeats,
                              ["--keras", *map(str, C.stella_keras_models()), "--arrays", str(arrays["ref"])],
                              env={**QUIET_TF, "KERAS_BACKEND": "jax"})
        else:
            ref_name, ref_kind = "keras-loop (stella re-enacted, NOT stella)", "keras-loop"
            print(f"NOTE: no stella venv at {args.stella_python}: the reference is NOT stella itself but stella's "
                  "procedure re-enacted with Keras in flarelight's venv (pass --stella-python).", flush=True)
            res = C.run_child(sys.executable, "keras-loop", kept_npz, args.repeats,
                              ["--keras", *map(str, C.stella_keras_models()), "--arrays", str(arrays["ref"])],
                              env={**QUIET_TF, "KERAS_BACKEND": "tensorflow"})
        ref = _row(ref_name, "stella x10", res, None)
        ref["raw"] = res
        rows.append(ref)
        print("running one sector through stella's 10 models in a fresh process (peak memory) ...", flush=True)
        one = {e: _run_child(["--child", "growth", "--model", str(model_dir), "--file", str(args.file), "--engine", e,
                              "--sectors", "1"]) for e in ("sliding", "windows")}
        growth = None
        if args.sectors:
            print(f"running sliding over {args.sectors} sectors in one process ...", flush=True)
            growth = _run_child(["--child", "growth", "--model", str(model_dir), "--file", str(args.file),
                                 "--engine", "sliding", "--sectors", str(args.sectors)], timeout=7200)

        # parity: sliding vs windows at every scored cadence; sliding vs stella where stella scores a real window
        sl, wi = np.load(arrays["sliding"]), np.load(arrays["windows"])
        scored = np.isfinite(wi["probabilities"])
        same_mask = bool(np.array_equal(scored, np.isfinite(sl["probabilities"])))
        d_members = float(np.max(np.abs(sl["per_model"][:, scored] - wi["per_model"][:, scored])))
        d_mean = float(np.max(np.abs(sl["probabilities"][scored] - wi["probabilities"][scored])))
        cat = C.stella_categories(user["time"])
        ref_p = np.load(arrays["ref"])["probabilities"]
        d_ref = float(np.max(np.abs(sl["probabilities"][user["index"]][cat["real_ok"]] - ref_p[cat["real_ok"]])))

    # ------------------------------------------------------------------ print
    by = {(r["group"], r["name"]): r for r in rows}
    peak = machine["peak_gflops_estimate"]
    print()
    print(f"file: {args.file.name} ({int(user['n_rows'])} rows); repeats: {args.repeats} (median)")
    print(f"cpu: {machine['cpu_model']}, {machine['cpu_count']} cores at {machine['cpu_mhz']} MHz, "
          f"{'AVX-512' if machine['avx512'] else 'AVX2, no AVX-512' if machine['avx2'] else 'no AVX2'}; "
          f"peak estimate {_fmt(peak, '.0f')} GFLOP/s float32 ({machine['flops_per_cycle_per_core']} FLOP/cycle/core)")
    print(f"load average before: {load_before[0]:.2f}, after: {os.getloadavg()[0]:.2f} (wall times: a busy machine inflates them)")
    hdr = (f"{'model':<11} {'contender':<38} {'load s':>7} {'read s':>7} {'prep s':>7} {'score s':>8} "
           f"{'score cpu s':>11} {'end-to-end s':>12} {'GFLOP/s':>8} {'% peak':>7} {'peak MB':>8}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        g = r.get("gflops_achieved")
        print(f"{r['group']:<11} {r['name']:<38} {_fmt(r.get('load_s')):>7} {_fmt(r.get('read_s')):>7} "
              f"{_fmt(r.get('prepare_s')):>7} {_fmt(r.get('score_s')):>8} {_fmt(r.get('score_cpu_s')):>11} "
              f"{_fmt(r['end_to_end_s']):>12} "
              f"{_fmt(g, '.1f'):>8} {_fmt(100 * g / peak if g and peak else None, '.1f'):>7} {_fmt(r['peak_rss_mb'], '.0f'):>8}")
    s10, w10 = by[("stella x10", "sliding")], by[("stella x10", "windows")]
    st, wt = by[("test model", "sliding")], by[("test model", "windows")]
    ratios = {
        "stella_x10_windows_over_sliding_end_to_end": w10["end_to_end_s"] / s10["end_to_end_s"],
        "stella_x10_windows_over_sliding_score": w10["score_s"] / s10["score_s"],
        "stella_x10_reference_over_sliding_end_to_end": ref["end_to_end_s"] / s10["end_to_end_s"],
        "stella_x10_reference_over_sliding_load_plus_end_to_end":
            (ref["end_to_end_s"] + ref["load_s"]) / (s10["end_to_end_s"] + s10["load_s"]),
        "test_model_windows_over_sliding_end_to_end": wt["end_to_end_s"] / st["end_to_end_s"],
        "test_model_windows_over_sliding_score": wt["score_s"] / st["score_s"],
        "stella_x10_windows_over_sliding_score_cpu": w10["score_cpu_s"] / s10["score_cpu_s"],
        "test_model_windows_over_sliding_score_cpu": wt["score_cpu_s"] / st["score_cpu_s"],
    }
    targets = {"stella_x10_windows_over_sliding_end_to_end": 5.0, "stella_x10_reference_over_sliding_end_to_end": 10.0,
               "test_model_windows_over_sliding_score": 10.0}  # "its own per-window path": the network, not the FITS read
    shipped = {r["group"]: r for r in rows if r["name"] == "find_flares (default)"}
    default = next((name for name in shipped if name != "flarelight-v1"), None)  # the sliding-ready one timed
    if "flarelight-v1" in shipped and default is not None:
        v1r, v2r = shipped["flarelight-v1"], shipped[default]
        ratios["find_flares_v1_over_v2"] = v1r["end_to_end_s"] / v2r["end_to_end_s"]
        ratios["stella_reference_over_find_flares_v2"] = ref["end_to_end_s"] / v2r["end_to_end_s"]
        targets["find_flares_v1_over_v2"] = 10.0
        targets["stella_reference_over_find_flares_v2"] = 40.0
        print(f"\nfind_flares per sector (read + score + catalogue, median): v1 {v1r['end_to_end_s']:.2f} s "
              f"({v1r['engine']}), v2 {v2r['end_to_end_s']:.2f} s ({v2r['engine']}); stella {ref_kind} predict "
              f"{ref['end_to_end_s']:.2f} s (no reading, no catalogue)")
    print()
    for k, v in ratios.items():
        t = targets.get(k)
        print(f"{k:<58} x{v:6.2f}" + (f"   target >= {t:g}: {'PASS' if v >= t else 'FAIL'}" if t else ""))
    print(f"parity (stella x10): max |sliding - windows| per member {d_members:.2e}, ensemble mean {d_mean:.2e} "
          f"over {int(scored.sum())} cadences (same scored cadences: {same_mask}); max |sliding - {ref_kind}| "
          f"{d_ref:.2e} over {int(cat['real_ok'].sum())} cadences with the same real window")
    peak_one = one["sliding"]["peak_rss_mb"]
    print(f"peak memory, one sector through stella's 10 models in a fresh process (load, read, score): sliding "
          f"{peak_one:.0f} MB (target <= 300 MB: {'PASS' if peak_one <= 300 else 'FAIL'}), windows "
          f"{one['windows']['peak_rss_mb']:.0f} MB; the runtime itself holds {one['sliding']['rss_after_import_mb']:.0f} MB "
          "after import (numba ~125 MB)")
    growth_summary = None
    if growth:
        rss = np.asarray(growth["rss_mb"])
        early = float(np.median(rss[5:15])) if rss.size > 15 else float(rss[0])
        late = float(np.median(rss[-10:]))
        growth_summary = {"sectors": int(rss.size), "rss_after_10_mb": early, "rss_last_10_mb": late,
                          "growth_mb": late - early, "peak_rss_mb": growth["peak_rss_mb"], "seconds": growth["seconds"]}
        print(f"memory over {rss.size} sectors in one process (sliding): RSS {early:.0f} MB after ~10 sectors, "
              f"{late:.0f} MB at the end (growth {late - early:+.1f} MB), peak {growth['peak_rss_mb']:.0f} MB, "
              f"{growth['seconds'] / rss.size:.2f} s per sector")
    if ref_kind == "stella":
        v = ref["raw"].get("versions", {})
        print(f"reference: stella {v.get('stella')}, keras {v.get('keras')}, backend {v.get('backend')} "
              "(predict s = predict_ensemble wall time minus the separately timed 10 keras.models.load_model)")

    out = {"file": str(args.file), "repeats": args.repeats, "reference_kind": ref_kind, "machine": machine,
           "platform": platform.platform(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
           "rows": rows, "ratios": ratios, "targets": targets,
           "parity": {"sliding_vs_windows_member": d_members, "sliding_vs_windows_mean": d_mean,
                      "same_scored_cadences": same_mask, "sliding_vs_reference": d_ref,
                      "n_compared_reference": int(cat["real_ok"].sum())},
           "memory": {"peak_one_sector_mb": peak_one, "peak_one_sector_windows_mb": one["windows"]["peak_rss_mb"],
                      "rss_after_import_mb": one["sliding"]["rss_after_import_mb"], "target_mb": 300,
                      "growth": growth_summary}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1, default=float))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    if "--child" in sys.argv:
        sys.path.pop(0)  # bench/ itself must not shadow packages in the child
        _child(sys.argv[1:])
    else:
        sys.exit(main())
