#!/usr/bin/env python
"""Bench the flare catalogue against the labelled real light curves of ``../shared/eval/dev_manifest.json``.

Runs :func:`flarelight.runtime.find_flares` on every light curve of the manifest (stella's ten models
converted to ONNX in a temporary folder, or ``--model``), scores the rows with ``flare_eval.py``'s
``evaluate`` and prints per-status recall / precision / F1 / false positives per day, plus duplicate
counts. For comparison it also scores the naive events (runs of prob > threshold, flare_eval's
``events_from_prob``) from the same probabilities.

Matching rule (flare_eval.py, slack = 2 cadences): a catalogue row [tstart, tstop] and a labelled
flare [ls, le] match when tstart <= le + slack and tstop >= ls - slack. A labelled flare is recovered
when any row matches it; a row is a true positive when it matches any labelled flare, else a false
positive (every row on a `negative` star is one). Overlapping labels (flare components) are merged
into one flare first. `dup` = extra rows on an already-matched flare (flare_eval's n_dup);
`overlap` = pairs of catalogue rows whose [tstart, tstop] intersect (must be 0).
Precision on `partial` stars is a lower bound (the catalogues are thresholded).

Usage::

    .venv/bin/python bench/bench_catalogue.py [--model DIR] [--probs DIR] [--out bench/results/catalogue.json]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
import warnings
from glob import glob
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()


def load_flare_eval(path: Path):
    """Import ``flare_eval.py`` by path (it is not a package)."""
    spec = importlib.util.spec_from_file_location("flare_eval", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def overlapping_rows(table) -> int:
    """Pairs of consecutive rows (sorted by tstart) whose [tstart, tstop] intersect."""
    if len(table) < 2:
        return 0
    order = np.argsort(np.asarray(table["tstart"]))
    ts, te = np.asarray(table["tstart"])[order], np.asarray(table["tstop"])[order]
    return int(np.sum(ts[1:] <= np.maximum.accumulate(te)[:-1]))


def _fmt(x, nd=2):
    return "  -  " if x is None else f"{x:.{nd}f}"


def print_pooled(title: str, pooled: dict, overlaps: dict | None = None) -> None:
    print(f"\n{title}")
    print("| status | LCs | true | recovered | rows | TP | FP | dup | overlap | recall | precision | precision (dups collapsed) | F1 | FP/day |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for st in ("labelled", "complete", "partial", "negative", "unlabelled"):
        s = pooled[st]
        if not s["n_lightcurves"]:
            continue
        ov = "-" if overlaps is None else str(overlaps.get(st, 0))
        print(f"| {st} | {s['n_lightcurves']} | {s['n_true']} | {s['n_recovered']} | {s['n_pred']} | {s['n_tp']} | "
              f"{s['n_fp']} | {s['n_dup']} | {ov} | {_fmt(s['recall'])} | {_fmt(s['precision'])} | "
              f"{_fmt(s['precision_unique'])} | {_fmt(s['f1'])} | {_fmt(s['fp_per_day'])} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", type=Path, default=SHARED / "eval" / "dev_manifest.json")
    ap.add_argument("--eval-script", type=Path, default=SHARED / "eval" / "flare_eval.py")
    ap.add_argument("--model", type=Path, nargs="+", help="ONNX files or folder (default: stella's models converted)")
    ap.add_argument("--probs", type=Path, help="reuse <basename>.npz (arrays time, prob) from `flarelight predict`")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--min-cadences", type=int, default=None)
    ap.add_argument("--merge-gap", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "catalogue.json")
    ap.add_argument("--batch-size", type=int, default=1024, help="windows per inference call (memory)")
    a = ap.parse_args(argv)

    from flarelight.runtime import FlareModel, find_flares, read_lightcurve
    from flarelight.runtime.catalogue import DEFAULT_THRESHOLD
    from flarelight.runtime.jsonio import write_json

    fe = load_flare_eval(a.eval_script)
    manifest = json.loads(a.manifest.read_text())["lightcurves"]
    shared_root = a.manifest.resolve().parents[1]
    params = {k: v for k, v in (("threshold", a.threshold), ("min_cadences", a.min_cadences),
                                ("merge_gap", a.merge_gap)) if v is not None}
    threshold = params.get("threshold", DEFAULT_THRESHOLD)  # of the naive runs (the catalogue: the model's)

    with tempfile.TemporaryDirectory() as tmp:
        if a.model:
            model = FlareModel(a.model, batch_size=a.batch_size)
        else:
            from flarelight.trainer.export import convert_stella

            keras = sorted(glob(str(SHARED / "models" / "stella" / "*.keras")))
            if not keras:
                print(f"no stella models in {SHARED / 'models' / 'stella'}; pass --model", file=sys.stderr)
                return 2
            print(f"converting {len(keras)} stella models to ONNX ...", flush=True)
            convert_stella(keras, Path(tmp))
            model = FlareModel(Path(tmp), batch_size=a.batch_size)
        print(f"model: {model!r}")

        cat_events, naive_events, per_file, overlaps = {}, {}, [], {}
        t0 = time.perf_counter()
        for e in manifest:
            path = shared_root / e["file"]
            base = path.name
            lc = read_lightcurve(path)
            prob = None
            if a.probs is not None:
                z = np.load(a.probs / base.replace(".fits", ".npz"))
                prob = z["prob"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # 200-s TESS-SPOC cadence warning
                table, lc, prob = find_flares(lc, model, prob=prob, return_prob=True, **params)
            n_overlap = overlapping_rows(table)
            overlaps[e["status"]] = overlaps.get(e["status"], 0) + n_overlap
            cat_events[base] = np.column_stack([table["tpeak"], table["tstart"], table["tstop"]]).astype(float)
            naive_events[base] = fe.events_from_prob(lc.time, np.nan_to_num(prob, nan=0.0), threshold)
            per_file.append(dict(file=base, status=e["status"], n_rows=len(table), overlapping_rows=n_overlap,
                                 n_complex=int(np.sum(table["n_peaks"] > 1)),
                                 rows=[[float(r["tpeak"]), float(r["tstart"]), float(r["tstop"]), int(r["n_peaks"]),
                                        float(r["ed"]), float(r["prob_max"])] for r in table]))
            print(f"  {base[:60]:60s} {e['status']:10s} rows={len(table):3d} overlap={n_overlap}", flush=True)
        elapsed = time.perf_counter() - t0
        overlaps["labelled"] = overlaps.get("partial", 0) + overlaps.get("complete", 0)

        res_cat = fe.evaluate(manifest, cat_events, shared_root)
        res_naive = fe.evaluate(manifest, naive_events, shared_root)

    print(f"\n{len(manifest)} light curves in {elapsed:.1f} s; parameters: {params or 'defaults'}")
    print(__doc__.split("Usage::")[0].split("\n\n", 1)[1].strip())
    print_pooled("flarelight find_flares (catalogue rows)", res_cat["pooled"], overlaps)
    print_pooled(f"naive: runs of prob > {threshold} (same probabilities)", res_naive["pooled"])
    total_overlap = sum(v for k, v in overlaps.items() if k != "labelled")
    print(f"\noverlapping (duplicate) catalogue rows on all {len(manifest)} light curves: {total_overlap}")

    out = dict(model=model.model_id, params=params, elapsed_s=elapsed, overlapping_rows=total_overlap,
               catalogue=res_cat, naive=res_naive, per_file=per_file)
    write_json(a.out, out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
