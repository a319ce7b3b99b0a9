#!/usr/bin/env python
"""Sliding execution: how to run it (threads, chunks) and how exact it is (numerics), measured.

``--study threads`` (one sector, prepared once, median wall time of ``--repeats`` scorings):
    stella's 10 converted models: the per-window engine; sliding with every chunk of every member as one task
    for ``threads`` 1-thread workers (FlareModel's choice); members in parallel (one task per member); members
    one after another with ``threads`` intra-op threads; one fused graph holding all 10 members (intra-op
    threads, and onnxruntime's parallel executor); the chunk size. The sliding-ready test model (one member):
    chunks on 1-thread workers vs one session with intra-op threads.
``--study numerics`` (DEV light curves of ../shared/eval/dev_manifest.json):
    max |p - float64| and |p - per-window| at every scored cadence of stella's models, for the sliding graph
    with and without input centring (x - 1), and whether the catalogues of both engines are identical. The
    float64 reference is ``flarelight.trainer.sliding.reference_segment`` (each window's float64 evaluation,
    interior positions read from float64 segment-wide layers; equal to the plain per-window float64 network to
    ~1e-13, tests/test_sliding.py).

Usage::

    .venv/bin/python bench/bench_sliding.py --study threads [--model DIR] [--file FITS] [--repeats 5]
    .venv/bin/python bench/bench_sliding.py --study numerics [--files N] [--json bench/results/sliding_numerics.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

MANIFEST = C.SHARED / "eval" / "dev_manifest.json"


def machine_info() -> dict:
    """This CPU: name, flags that matter (AVX2, FMA, AVX-512), clock, cores and an estimate of its float32 peak.

    Peak = cores x clock x FLOPs per cycle per core: 32 with AVX2 + FMA (two 8-lane FMA pipes), 64 with
    AVX-512 (two 16-lane pipes on server Intel; AMD Zen 4 runs AVX-512 at the AVX2 rate). ``cpu MHz`` from
    /proc/cpuinfo is the nominal clock a VM reports; turbo can be higher, so this is an estimate.
    """
    info: dict[str, Any] = {"cpu_model": platform.processor() or "?", "cpu_count": os.cpu_count(), "cpu_mhz": None,
                            "avx2": False, "fma": False, "avx512": False}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name":
            info["cpu_model"] = value
        elif key == "cpu MHz" and info["cpu_mhz"] is None:
            info["cpu_mhz"] = float(value)
        elif key == "flags":
            flags = set(value.split())
            info.update(avx2="avx2" in flags, fma="fma" in flags, avx512="avx512f" in flags)
    per_cycle = 64 if info["avx512"] and "Intel" in info["cpu_model"] else 32 if info["avx2"] and info["fma"] else 16
    info["flops_per_cycle_per_core"] = per_cycle
    info["peak_gflops_estimate"] = (info["cpu_count"] * info["cpu_mhz"] * 1e-3 * per_cycle) if info["cpu_mhz"] else None
    return info


def sliding_test_model(folder: Path, edge_mode: str = "valid", seed: int = 0) -> Path:
    """The sliding-ready test model: stella's layer sizes with ``valid`` convolutions, random weights, written
    (per-window graph + sliding graph, no TensorFlow) as a one-member flarelight model in ``folder``."""
    from flarelight.runtime.metadata import ModelMetadata, Preprocessing
    from flarelight.trainer.sliding import example_network, write_network_member

    pre = Preprocessing(edge_mode=edge_mode)
    folder.mkdir(parents=True, exist_ok=True)
    net = example_network(channels=pre.n_channels, padding="valid", seed=seed)
    write_network_member(net, folder / f"sliding-test-s{seed}.onnx",
                         ModelMetadata(preprocessing=pre, model_id=f"sliding-test/s{seed}", seed=seed))
    return folder


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up (numba, onnxruntime first-run allocations)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fused_session(paths: list[Path], threads: int, parallel: bool):
    """All members' sliding graphs in one ONNX graph sharing the input; output (1, members, starts)."""
    import onnx
    import onnxruntime as ort
    from onnx import compose, helper

    from flarelight.runtime.sessions import session_options

    graph_nodes, inits, outs = [], [], []
    first = None
    for k, p in enumerate(paths):
        m = compose.add_prefix(onnx.load(str(p)), prefix=f"m{k}_")
        g = m.graph
        inp = g.input[0].name
        first = first or g.input[0]
        for n in g.node:
            n.input[:] = ["segment" if i == inp else i for i in n.input]
        graph_nodes.extend(g.node)
        inits.extend(g.initializer)
        outs.append(g.output[0].name)
    graph_nodes.append(helper.make_node("Concat", outs, ["prob"], axis=1))
    inp = helper.make_tensor_value_info("segment", onnx.TensorProto.FLOAT, [1, 1, "L"])
    out = helper.make_tensor_value_info("prob", onnx.TensorProto.FLOAT, [1, len(paths), "S"])
    model = helper.make_model(helper.make_graph(graph_nodes, "fused", [inp], [out], initializer=inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    so = session_options(threads)
    if parallel:
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        so.inter_op_num_threads = threads
        so.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def study_threads(args: argparse.Namespace, model_dir: Path, test_dir: Path) -> dict:
    from flarelight.runtime import FlareModel
    from flarelight.runtime.io import read_lightcurve
    from flarelight.runtime.preprocess import prepare
    from flarelight.runtime.sliding import load_sliding

    threads = args.threads or os.cpu_count() or 1
    rows: list[dict] = []

    def record(group: str, name: str, seconds: float, note: str = "") -> None:
        rows.append({"group": group, "contender": name, "seconds": seconds, "note": note})
        print(f"  {group:<14} {name:<52} {seconds * 1e3:9.1f} ms  {note}", flush=True)

    lc = read_lightcurve(args.file)
    # ---------------------------------------------------------------- stella's 10 models
    mw = FlareModel(model_dir, engine="windows", threads=threads)
    ms = FlareModel(model_dir, engine="sliding", threads=threads)
    prep = prepare(lc, ms.preprocessing)
    print(f"stella's models, {prep.centres.size} scored cadences, {threads} threads", flush=True)
    record("stella x10", "windows engine (FlareModel default)", _median_time(lambda: mw._score_prepared(prep), max(1, args.repeats // 2)))
    record("stella x10", f"sliding: chunks of all members on {threads} 1-thread workers (FlareModel)",
           _median_time(lambda: ms._score_prepared(prep), args.repeats))
    ms1 = FlareModel(model_dir, engine="sliding", threads=1)
    record("stella x10", "sliding: one thread (FlareModel threads=1)", _median_time(lambda: ms1._score_prepared(prep), args.repeats))
    out = np.empty((ms.n_models, prep.centres.size), np.float32)

    def members_parallel() -> None:
        with ThreadPoolExecutor(threads) as pool:
            for f in [pool.submit(m.sliding.score, prep, out[k]) for k, m in enumerate(ms.members)]:
                f.result()

    record("stella x10", "sliding: members in parallel, 1 thread each", _median_time(members_parallel, args.repeats))
    seq = [load_sliding(m.path, m.metadata, threads)[0] for m in ms.members]

    def sequential() -> None:
        for k, s in enumerate(seq):
            s.score(prep, out[k])

    record("stella x10", f"sliding: members one by one, {threads} intra-op threads", _median_time(sequential, args.repeats))
    slide_paths = [m.sliding.path for m in ms.members]
    for parallel in (False, True):
        sess = _fused_session(slide_paths, threads, parallel)
        segs = ms.members[0].sliding.segments(prep)

        def fused() -> None:
            for x, _, n in segs:
                for a in range(0, n, ms.members[0].sliding.chunk):
                    b = min(a + ms.members[0].sliding.chunk, n)
                    sess.run(None, {"segment": np.ascontiguousarray(x[None, :, a:b + 199])})

        record("stella x10", "fused graph, " + ("parallel executor" if parallel else f"{threads} intra-op threads"),
               _median_time(fused, args.repeats))
    for chunk in (1024, 2048, 4096, 8192, 16384):
        for m in ms.members:
            m.sliding.chunk = chunk
        record("stella x10", f"sliding (FlareModel), chunk {chunk}", _median_time(lambda: ms._score_prepared(prep), args.repeats))

    # ---------------------------------------------------------------- the sliding-ready test model
    tw = FlareModel(test_dir, engine="windows", threads=threads)
    ts = FlareModel(test_dir, engine="sliding", threads=threads)
    tprep = prepare(lc, ts.preprocessing)
    print(f"sliding-ready test model, {tprep.centres.size} scored cadences", flush=True)
    record("test model", "windows engine", _median_time(lambda: tw._score_prepared(tprep), args.repeats))
    record("test model", f"sliding: chunks on {threads} 1-thread workers (FlareModel)",
           _median_time(lambda: ts._score_prepared(tprep), args.repeats))
    intra = load_sliding(ts.members[0].path, ts.members[0].metadata, threads)[0]
    tout = np.empty(tprep.centres.size, np.float32)
    record("test model", f"sliding: one session, {threads} intra-op threads",
           _median_time(lambda: intra.score(tprep, tout), args.repeats))
    return {"threads": threads, "rows": rows, "n_centres_stella": int(prep.centres.size)}


def study_numerics(args: argparse.Namespace, model_dir: Path) -> dict:
    """Sliding (centred and not) vs per-window vs float64 on the DEV light curves; catalogues compared."""
    import keras

    from flarelight.runtime import FlareModel
    from flarelight.runtime.find import find_flares
    from flarelight.runtime.sliding import SlidingMember, load_sliding
    from flarelight.runtime.sessions import open_session
    from flarelight.trainer.sliding import network_from_keras, reference_segment, sliding_graph

    nets = [network_from_keras(keras.models.load_model(p, compile=False)) for p in C.stella_keras_models()]
    mw = FlareModel(model_dir, engine="windows")
    ms = FlareModel(model_dir, engine="sliding")
    if [m.path.stem for m in ms.members] != [p.stem for p in C.stella_keras_models()]:
        raise SystemExit("--model must hold the conversion of ../shared/models/stella/*.keras")
    tmp = Path(tempfile.mkdtemp(prefix="flarelight-uncentred-"))
    raw = []
    for m, net in zip(ms.members, nets):  # the same graphs without centring, for the comparison
        p = tmp / (m.path.stem + ".sliding.onnx")
        p.write_bytes(sliding_graph(net, centre=False)[0].SerializeToString())
        raw.append(SlidingMember(p, open_session(p, 1), m.sliding.window, m.sliding.offset, m.sliding.channels, m.sliding.info))
    files = [C.SHARED / e["file"] for e in json.loads(MANIFEST.read_text())["lightcurves"]]
    files = files[: args.files] if args.files else files
    per_file = []
    worst = {"centred_vs_f64": 0.0, "centred_vs_windows": 0.0, "raw_vs_f64": 0.0, "raw_vs_windows": 0.0,
             "windows_vs_f64": 0.0}
    for f in files:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                sw = mw.score(f, per_model=True)
            except Exception as exc:  # a DEV file this model cannot score (too short, ...): recorded, not hidden
                per_file.append({"file": f.name, "error": f"{type(exc).__name__}: {exc}"})
                print(f"{f.name}: {type(exc).__name__}: {exc}")
                continue
            ss = ms.score(f, per_model=True)
            prep = ss.prepared
            win = sw.members[:, prep.kept[prep.centres]]
            sl = ss.members[:, prep.kept[prep.centres]]
            rawp = np.empty_like(sl, dtype=np.float32)
            for k, r in enumerate(raw):
                r.score(prep, rawp[k])
            f64 = np.empty_like(sl, dtype=np.float64)
            for x, first, n in ms.members[0].sliding.segments(prep):  # float64, every window of every segment
                k0 = int(np.searchsorted(prep.centres, first))
                for k, net in enumerate(nets):
                    f64[k, k0:k0 + n] = reference_segment(net, x)
            cat_w = find_flares(sw)
            cat_s = find_flares(ss)
        d = {"centred_vs_f64": float(np.max(np.abs(sl - f64))), "centred_vs_windows": float(np.max(np.abs(sl - win))),
             "raw_vs_f64": float(np.max(np.abs(rawp - f64))), "raw_vs_windows": float(np.max(np.abs(rawp - win))),
             "windows_vs_f64": float(np.max(np.abs(win - f64)))}
        for k, v in d.items():
            worst[k] = max(worst[k], v)
        same = _same_catalogue(cat_w, cat_s)
        mean_d = float(np.nanmax(np.abs(ss.prob - sw.prob)))
        per_file.append({"file": f.name, "n_scored": int(prep.centres.size), **d, "ensemble_vs_windows": mean_d,
                         "catalogue_rows": len(cat_w), "catalogues_identical": same})
        print(f"{f.name:<62} {prep.centres.size:6d}  sliding-f64 {d['centred_vs_f64']:.1e}  sliding-windows "
              f"{d['centred_vs_windows']:.1e}  uncentred-f64 {d['raw_vs_f64']:.1e}  windows-f64 {d['windows_vs_f64']:.1e}  "
              f"rows {len(cat_w)} {'same' if same else 'DIFFERENT'}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    ok = [r for r in per_file if "error" not in r]
    return {"files": per_file, "worst": worst, "n_files": len(ok),
            "catalogues_identical": all(r["catalogues_identical"] for r in ok),
            "bar": 2e-4, "pass": all(v <= 2e-4 for k, v in worst.items() if k.startswith("centred"))}


def _same_catalogue(a, b) -> bool:
    """Identical rows; probability columns within 2e-4 (they are the only ones the engine touches)."""
    if len(a) != len(b) or a.colnames != b.colnames:
        return False
    for c in a.colnames:
        x, y = np.asarray(a[c]), np.asarray(b[c])
        if c.startswith("prob_"):
            if not np.allclose(x, y, rtol=0, atol=2e-4, equal_nan=True):
                return False
        elif not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Run one study; print a table and write JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", choices=["threads", "numerics"], default="threads")
    ap.add_argument("--file", type=Path, default=C.DEFAULT_FILE)
    ap.add_argument("--model", type=Path, help="converted stella ensemble with sliding graphs (default: convert)")
    ap.add_argument("--threads", type=int, default=0, help="threads (default: all cores)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--files", type=int, default=0, help="numerics: first N DEV files (default all)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flarelight-bench-") as tmp:
        model_dir = args.model or C.convert_stella_to(Path(tmp) / "stella")
        if args.study == "threads":
            test_dir = sliding_test_model(Path(tmp) / "test", edge_mode="valid")
            res = study_threads(args, model_dir, test_dir)
        else:
            res = study_numerics(args, model_dir)
    res.update(machine_info())
    res["loadavg_after"] = os.getloadavg()
    path = args.json or C.ROOT / "bench" / "results" / f"sliding_{args.study}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1, default=float))
    print(f"wrote {path}  ({res['cpu_model']}, {res['cpu_count']} cpus, {'AVX-512' if res['avx512'] else 'no AVX-512'}, "
          f"platform {platform.platform()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
