#!/usr/bin/env python
"""Survey throughput you can plan with: light curves per hour and peak memory per worker of a bulk run.

``process_files`` end to end (read, verify the checksum, score with the default model, catalogue, write,
run table, flares.fits and stars.ecsv) over ``--n`` real SPOC 2-min light curves: the files of ../shared
symlinked under distinct names into a temporary folder, cycled until there are ``--n``. Each
configuration runs in its own child process, side by side in this one run:

  pool x1      ``workers=1``: in the child process itself
  pool x2      ``workers=2``: two spawned worker processes
  dask local   ``dask_address="local", workers=2``: an in-process Dask cluster with two threads

Reported per configuration: wall time (worker start-up included), light curves per hour, CPU seconds per
light curve (user + system of the run's processes: what a busy, shared machine distorts least) and the
rate it allows when CPU-bound on all cores, the median seconds per file, and the peak resident memory of
each process that scored files (``VmHWM``; the pool's workers report their own, the in-process runs the
child's). The CPU and the load average are printed and written with the JSON.

Usage::

    .venv/bin/python bench/bench_bulk.py [--n 100] [--configs pool1,pool2,dask] [--model NAME]
        [--json bench/results/bulk.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TESS = (ROOT / ".." / "shared" / "data" / "tess").resolve()
CONFIGS = {
    "pool1": ("pool x1", {"workers": 1}),
    "pool2": ("pool x2", {"workers": 2}),
    "dask": ("dask local (2 threads)", {"workers": 2, "dask_address": "local"}),
}


def cpu_name() -> str:
    """The CPU model (Linux /proc/cpuinfo; else platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def real_files() -> list[Path]:
    """The SPOC 2-min light curves of ../shared (TESS-SPOC FFI and custom-aperture files left out)."""
    files = sorted(TESS.glob("tess*-s_lc.fits")) + sorted((TESS / "more").glob("tess*-s_lc.fits"))
    files += [TESS / "tic55525572_lc.fits"]
    if len(files) < 10:
        sys.exit(f"expected the SPOC light curves of ../shared/data/tess, found {len(files)}")
    return files


def make_inputs(folder: Path, n: int) -> list[Path]:
    """``n`` symlinks to the real files under distinct names (``lc0000_<name>``...), cycling through them."""
    real = real_files()
    out = []
    for i in range(n):
        src = real[i % len(real)]
        link = folder / f"lc{i:04d}_{src.name}"
        link.symlink_to(src)
        out.append(link)
    return out


# ----------------------------------------------------------------------------- child: one configuration
def child(args: argparse.Namespace) -> None:
    from flarelight.runtime.bulk import process_files
    from flarelight.runtime.sweep_task import peak_memory_mb

    import resource

    def cpu() -> float:  # this process and its (reaped) worker processes, user + system
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    _, kwargs = CONFIGS[args.child]
    t0, c0 = time.perf_counter(), cpu()
    run = process_files([args.inputs], args.out, model=args.model, threads_per_worker=1, **kwargs)
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    ok = run["status"] == "ok"
    peaks = sorted(set(np.round(run["peak_mb"][ok], 1)))  # each process's last report is its peak so far
    json.dump({"wall_s": wall, "cpu_s": cpu_s, "n_ok": int(ok.sum()), "n_error": int((run["status"] == "error").sum()),
               "median_file_s": float(np.median(run["seconds"][ok])) if ok.any() else float("nan"),
               "worker_peak_mb": float(max(peaks)) if peaks else float("nan"), "child_peak_mb": peak_memory_mb(),
               "n_flares": int(run["n_flares"][ok].sum())}, sys.stdout)


# ----------------------------------------------------------------------------- parent
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="light curves per configuration")
    ap.add_argument("--configs", default="pool1,pool2,dask", help=f"comma-separated, from {','.join(CONFIGS)}")
    ap.add_argument("--model", default=None, help="a shipped model's name or ONNX files (default: the default)")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "bulk.json")
    ap.add_argument("--child", choices=list(CONFIGS), help=argparse.SUPPRESS)
    ap.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    from flarelight.runtime import FlareModel

    model = FlareModel.named(args.model) if args.model else FlareModel.default()
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical cores); model {model.model_id}, engine {model.engine}; "
          f"{args.n} light curves from {len(real_files())} real SPOC files")
    results: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="flarelight-bench-bulk-"))
    try:
        inputs = tmp / "inputs"
        inputs.mkdir()
        make_inputs(inputs, args.n)
        for key in args.configs.split(","):
            label = CONFIGS[key][0]
            cmd = [sys.executable, __file__, "--child", key, "--inputs", str(inputs), "--out", str(tmp / key)]
            if args.model:
                cmd += ["--model", args.model]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"{label} failed:\n{done.stderr[-3000:]}")
            r = json.loads(done.stdout)
            r["lc_per_hour"] = r["n_ok"] / r["wall_s"] * 3600.0
            r["cpu_s_per_lc"] = r["cpu_s"] / max(r["n_ok"], 1)
            results[key] = {"label": label, **r}
            print(f"  {label:<24} {r['wall_s']:8.1f} s  {r['lc_per_hour']:9.0f} LC/h  "
                  f"{r['cpu_s_per_lc']:6.2f} CPU s/LC  {r['median_file_s']:6.2f} s/file  "
                  f"peak {r['worker_peak_mb']:6.0f} MB/worker", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"| configuration | light curves/hour | CPU s per LC | LC/hour if CPU-bound on {cores} cores | "
          f"median s/file | peak MB per worker | wall s ({args.n} files) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results.values():
        print(f"| {r['label']} | {r['lc_per_hour']:.0f} | {r['cpu_s_per_lc']:.2f} | "
              f"{cores * 3600.0 / r['cpu_s_per_lc']:.0f} | {r['median_file_s']:.2f} | {r['worker_peak_mb']:.0f} | "
              f"{r['wall_s']:.1f} |")
    print(f"\nload average at the end: {load:.1f} on {cores} cores (other processes make wall times longer; CPU s "
          "per LC much less so)")
    same = len({r["n_flares"] for r in results.values()}) == 1
    print(f"\nflares found: {', '.join(str(r['n_flares']) for r in results.values())} "
          f"({'identical' if same else 'DIFFERENT'} across configurations)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpu": cpu_name(), "cores": os.cpu_count(), "load_average": load, "n": args.n,
                                     "model": model.model_id, "engine": model.engine, "results": results},
                                    indent=2))
    print(f"-> {args.json}")


if __name__ == "__main__":
    main()
