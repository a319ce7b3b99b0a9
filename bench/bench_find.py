"""A user's default call per sector, over many sectors: ``find_flares(file, model)`` (read + score + catalogue).

Each shipped model runs in its own fresh process over the same TESS sectors (every top-level light curve in
``../shared/data/tess`` by default: quiet stars, variables, an eclipsing binary and very active M dwarfs), warm
(the first sector is run once untimed), ``--repeats`` times each (median). stella 0.3.0 on Keras's JAX backend
(``predict_ensemble`` of its ten models, no reading, no catalogue) is timed in its own venv on ``--stella-files``
of them; its time does not depend on the flares, so for the other sectors it is scaled by the number of
cadences (seconds per cadence of the timed sectors, stated in the output).

Prints a table per sector (cadences, rows, seconds of each contender) and the ratios: per sector and their
median; the worst sector is the most active star (the catalogue's template fits grow with the number of
flares). Writes ``bench/results/find.json``.

    .venv/bin/python bench/bench_find.py [--repeats 3] [--stella-python ../stella-venv/bin/python]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (bench/ is not a package)

QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


def _child(argv: list[str]) -> None:
    """``bench_find.py --child --model DIR --files ... --json OUT``: time find_flares per file, warm."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--files", type=Path, nargs="+", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, required=True)
    a = ap.parse_args(argv)
    import warnings

    from flarelight.runtime import FlareModel, find_flares

    warnings.simplefilter("ignore")
    model = FlareModel(a.model)
    find_flares(str(a.files[0]), model=model)  # warm: numba kernels compiled or loaded from cache, sessions ready
    out = []
    for f in a.files:
        wall, cpu, rows = [], [], 0
        for _ in range(a.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            rows = len(find_flares(str(f), model=model))
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out.append({"file": f.name, "wall_s": float(np.median(wall)), "cpu_s": float(np.median(cpu)), "rows": rows})
    a.json.write_text(json.dumps({"model_id": model.model_id, "engine": model.engine, "files": out}))


def run_model(model_dir: Path, files: list[Path], repeats: int) -> dict[str, Any]:
    """find_flares over ``files`` in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="flarelight-bench-") as tmp:
        out = Path(tmp) / "find.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--model", str(model_dir), "--files",
               *map(str, files), "--repeats", str(repeats), "--json", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0 or not out.exists():
            sys.exit(f"find_flares child for {model_dir} failed:\n" + "\n".join(proc.stderr.splitlines()[-20:]))
        return json.loads(out.read_text())


def run_stella(python: Path, files: list[Path], repeats: int) -> list[dict[str, Any]]:
    """stella's predict_ensemble (JAX) per file, seconds (load of the ten models excluded)."""
    out = []
    for f in files:
        with tempfile.TemporaryDirectory(prefix="flarelight-bench-") as tmp:
            npz = Path(tmp) / "input.npz"
            np.savez(npz, **C.user_arrays(f))
            res = C.run_child(python, "stella", npz, repeats, ["--keras", *map(str, C.stella_keras_models())],
                              env={**QUIET_TF, "KERAS_BACKEND": "jax"})
        out.append({"file": f.name, "predict_s": float(np.median(res["predict_s"])), "n_cadences": int(res["n_rows"]),
                    "versions": res.get("versions", {})})
    return out


def n_cadences(path: Path) -> int:
    """Cadences stella is given for this file (QUALITY == 0 and finite, as a stella user passes them)."""
    return int(C.user_arrays(path)["time"].size)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _child(argv)
        return 0
    from flarelight.models import DEFAULT_MODEL, model_paths, shipped_models

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=Path, nargs="*", help="TESS light curves (default: ../shared/data/tess/*.fits)")
    ap.add_argument("--models", nargs="+", default=[DEFAULT_MODEL, "flarelight-v1"],
                    help="shipped model names, the first timed against the others (default: the default model, v1)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per sector and contender (median)")
    ap.add_argument("--stella-python", type=Path, default=C.ROOT.parent / "stella-venv" / "bin" / "python",
                    help="python of a venv with stella 0.3.0 + jax (skip stella if absent)")
    ap.add_argument("--stella-files", type=int, default=3,
                    help="sectors stella is timed on (the most active star, the median and the quietest by rows)")
    ap.add_argument("--json", type=Path, default=C.ROOT / "bench" / "results" / "find.json")
    a = ap.parse_args(argv)
    files = sorted(a.files or (C.ROOT.parent / "shared" / "data" / "tess").glob("*.fits"))
    if not files:
        sys.exit("no light curves: pass --files")
    from bench_sliding import machine_info

    machine = machine_info()
    load0 = os.getloadavg()
    print(f"CPU: {machine['cpu_model']}, {machine['cpu_count']} cores, AVX2 {machine['avx2']}, AVX-512 "
          f"{machine['avx512']}; load average {load0[0]:.1f}", flush=True)
    res: dict[str, Any] = {}
    for name in a.models:
        if name not in shipped_models():
            sys.exit(f"{name!r} is not a shipped model ({', '.join(shipped_models())})")
        print(f"find_flares with {name} over {len(files)} sectors ...", flush=True)
        res[name] = run_model(model_paths(name)[0].parent, files, a.repeats)
    first = res[a.models[0]]["files"]
    cads = {f.name: n_cadences(f) for f in files}
    by_rows = sorted(first, key=lambda r: -r["rows"])
    picks = list({p["file"]: p for p in [by_rows[0], by_rows[len(by_rows) // 2], by_rows[-1]]}.values())
    picks = picks[:max(a.stella_files, 0)]
    stella: list[dict[str, Any]] = []
    if a.stella_files > 0 and a.stella_python.is_file():
        print(f"stella on {len(picks)} sectors with {a.stella_python} ...", flush=True)
        stella = run_stella(a.stella_python, [next(f for f in files if f.name == p["file"]) for p in picks], a.repeats)
    else:
        print(f"no stella venv at {a.stella_python}: stella columns left out", flush=True)
    per_cad = (sum(s["predict_s"] for s in stella) / sum(s["n_cadences"] for s in stella)) if stella else None
    timed = {s["file"]: s["predict_s"] for s in stella}

    table = []
    for i, f in enumerate(files):
        row: dict[str, Any] = {"file": f.name, "n_cadences": cads[f.name]}
        for name in a.models:
            r = res[name]["files"][i]
            row[name] = {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "rows": r["rows"]}
        if per_cad is not None:
            row["stella_s"] = timed.get(f.name, per_cad * cads[f.name])
            row["stella_timed"] = f.name in timed
        table.append(row)
    v2, v1 = a.models[0], (a.models[1] if len(a.models) > 1 else None)
    hdr = f"{'sector':<44} {'cadences':>8} {'rows':>5} " + " ".join(f"{m + ' s':>16}" for m in a.models)
    hdr += f" {'stella s':>9} {'v1/v2':>6} {'stella/v2':>9}" if per_cad else ""
    print("\n" + hdr)
    ratios: dict[str, list[float]] = {"v1_over_v2": [], "stella_over_v2": [], "stella_over_v2_timed": []}
    for row in table:
        line = f"{row['file'][:44]:<44} {row['n_cadences']:>8} {row[v2]['rows']:>5} "
        line += " ".join(f"{row[m]['wall_s']:>16.3f}" for m in a.models)
        if v1:
            ratios["v1_over_v2"].append(row[v1]["wall_s"] / row[v2]["wall_s"])
        if per_cad is not None:
            s = row["stella_s"] / row[v2]["wall_s"]
            ratios["stella_over_v2"].append(s)
            if row["stella_timed"]:
                ratios["stella_over_v2_timed"].append(s)
            line += f" {row['stella_s']:>8.2f}{'*' if row['stella_timed'] else ' '} " \
                    f"{(row[v1]['wall_s'] / row[v2]['wall_s']) if v1 else float('nan'):>6.1f} {s:>9.1f}"
        print(line)
    summary = {k: {"median": float(np.median(v)), "min": float(np.min(v)), "max": float(np.max(v))}
               for k, v in ratios.items() if v}
    print()
    if per_cad is not None:
        print(f"* stella timed on that sector; others: {per_cad * 1e3:.3f} ms per cadence x cadences "
              "(stella's predict has no per-flare work)")
    targets = {"v1_over_v2": 10.0, "stella_over_v2": 40.0}
    for k, s in summary.items():
        t = targets.get(k)
        print(f"{k:<24} median x{s['median']:6.1f}  (min x{s['min']:.1f}, max x{s['max']:.1f})"
              + (f"   target >= {t:g} (median sector): {'PASS' if s['median'] >= t else 'FAIL'}" if t else ""))
    med = {m: float(np.median([r[m]["wall_s"] for r in table])) for m in a.models}
    print("median seconds per sector: " + ", ".join(f"{m} {v:.3f}" for m, v in med.items())
          + (f", stella {float(np.median([r['stella_s'] for r in table])):.2f}" if per_cad else ""))
    out = {"machine": machine, "loadavg_before": load0,
           "loadavg_after": os.getloadavg(), "repeats": a.repeats, "models": {m: {k: v for k, v in res[m].items()
                                                                                if k != "files"} for m in a.models},
           "stella_seconds_per_cadence": per_cad, "stella": stella, "sectors": table, "ratios": summary,
           "median_seconds": med, "targets": targets}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(out, indent=1))
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
