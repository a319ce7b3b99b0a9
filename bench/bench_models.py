#!/usr/bin/env python
"""Issue 6: a flarelight ensemble against stella's ensemble, side by side in one run.

Prints a table and writes JSON (``--out``) and a completeness plot (``--plot``):

* event-level recall / precision / precision_unique / F1 with ``../shared/eval/flare_eval.py`` on the
  labelled test stars of ``--split`` and on every labelled light curve of ``dev_manifest.json``;
* false positives per day on the negative stars, pooled and per star (eclipsing binary / variables /
  junk rows on their own), flagged above 2 per day;
* injection-recovery of Davenport flares into the flare-free light curves: completeness vs amplitude
  (relative and in units of the robust noise), FWHM, equivalent duration, and near a gap vs far;
* a targets block (recall >= 0.75 with precision >= stella's, <= 0.2 FP/day on flare-free stars, no star
  above 2 FP/day).

Contenders: each model's probabilities are computed once per light curve and every event rule is derived
from them: (a) flarelight + our catalogue rule (``find_flares``), (b) flarelight + runs of prob > 0.5
(flare_eval's ``events_from_prob``), (c) stella + stella's rule, here runs of prob > 0.5 (stella's own
``FitFlares`` needs the stella package, which flarelight does not use), (d) stella + our rule.

Run:  .venv/bin/python bench/bench_models.py --model DIR [--quick]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _eval as ev  # noqa: E402  (bench/ is not a package)
import report  # noqa: E402

ROOT = ev.ROOT
RESULTS = ROOT / "bench" / "results"
STELLA_KERAS_DIR = ev.SHARED / "models" / "stella"
DEFAULT_SPLIT = ROOT / "models" / "flarelight-v1" / "split.json"
THRESHOLD = 0.5

#: stars reported on their own rows (notes from dev_manifest.json / PROVENANCE.md)
SPECIAL = {
    32150630: "EB",          # 'EB with a flare (close to the secondary eclipse)' (partial, labelled)
    92873799: "variable",    # 'Variable star, flux jumps partway through'
    389363695: "variable",   # 'More flux jumps', Teff 9576 K
    53842685: "junk",        # 'Junk LC, no transits'
    143699381: "blip",       # 'No flares, big gaussian blip partway through', Teff 31000 K
    67646988: "variable",    # labelled star where stella fires on sharp variability (issue 6)
}

CONTENDERS = {  # name -> (model key, rule)
    "flarelight+ours": ("flarelight", "ours"),
    "flarelight+runs>0.5": ("flarelight", "runs"),
    "stella+stella-rule": ("stella", "runs"),
    "stella+ours": ("stella", "ours"),
}

AMP_EDGES = np.geomspace(1e-3, 0.3, 7)
FWHM_EDGES_MIN = np.geomspace(2.0, 60.0, 5)
SNR_EDGES = np.array([0.3, 1, 2, 3, 5, 10, 30, 100, 1e5])
ED_EDGES = np.array([0.1, 0.3, 1, 3, 10, 30, 100, 300, 3000])


def log(msg: str) -> None:
    """Progress line on stderr (the results go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- inputs
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="flarelight ensemble (dir of .onnx); default: the shipped one")
    ap.add_argument("--stella-model", type=Path,
                    help="stella converted to ONNX; default: bench/results/stella_onnx (converted if missing)")
    ap.add_argument("--split", type=Path, help=f"JSON split {{train,val,test: [tic]}}; default {DEFAULT_SPLIT}")
    ap.add_argument("--out", type=Path, default=RESULTS / "models.json")
    ap.add_argument("--plot", type=Path, default=RESULTS / "completeness.png")
    ap.add_argument("--quick", action="store_true", help="fewer injections (smoke run)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads per session (default 1)")
    ap.add_argument("--batch-size", type=int, default=512,
                    help="windows per onnxruntime call (default 512: the runtime's 8192 needs ~7 GB for 10 models)")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--prob-cache", type=Path, default=RESULTS / "prob_cache",
                    help="directory for whole-LC probabilities reused across runs (default bench/results/prob_cache)")
    ap.add_argument("--no-prob-cache", action="store_true", help="always run the models on the real LCs")
    ap.add_argument("--realisations", type=int, help="injected copies of each flare-free LC (default 8, quick 2)")
    ap.add_argument("--flares-per-lc", type=int, default=15)
    return ap.parse_args(argv)


def load_flarelight(path: Path | None, threads: int, batch_size: int) -> Any:
    """The flarelight ensemble to evaluate: ``path``, or the shipped default (exits if there is none)."""
    from flarelight.runtime import FlareModel
    from flarelight.runtime.errors import ModelFileError

    if path is not None:
        return FlareModel(path, threads=threads, batch_size=batch_size)
    try:
        return FlareModel.default(threads=threads, batch_size=batch_size)
    except ModelFileError as exc:
        sys.exit(f"no --model given and the shipped ensemble does not load ({exc}); pass --model DIR "
                 "(e.g. --model bench/results/stella_onnx to run stella against itself)")


def load_stella(path: Path | None, threads: int, batch_size: int) -> Any:
    """stella's ensemble as ONNX: ``path``, or bench/results/stella_onnx (converted with the trainer if missing)."""
    from flarelight.runtime import FlareModel

    if path is None:
        path = RESULTS / "stella_onnx"
        if len(list(path.glob("*.onnx"))) != 10:
            keras_files = sorted(STELLA_KERAS_DIR.glob("*.keras"))
            if len(keras_files) != 10:
                sys.exit(f"expected 10 stella .keras models in {STELLA_KERAS_DIR}, found {len(keras_files)}")
            log(f"converting stella's 10 models to ONNX into {path} (needs TensorFlow)")
            from flarelight.trainer.export import convert_stella

            path.mkdir(parents=True, exist_ok=True)
            convert_stella(keras_files, path)
    return FlareModel(path, threads=threads, batch_size=batch_size)


def load_split(path: Path | None) -> tuple[dict | None, str]:
    """The split file and a sentence saying where it came from (or that there is none)."""
    p = path or DEFAULT_SPLIT
    if not p.is_file():
        if path is not None:
            sys.exit(f"--split {path}: no such file")
        return None, f"no split file ({DEFAULT_SPLIT} absent): test-star rows not reported, full manifest only"
    split = json.loads(p.read_text())
    if "test" not in split:
        sys.exit(f"{p}: no 'test' list")
    return split, f"split {p} ({len(split['test'])} test TICs)"


def split_of(tic: int, split: dict | None) -> str:
    """'train', 'val', 'test' or '-' (not in the split / no split)."""
    for k in ("train", "val", "test"):
        if split and tic in set(split.get(k, [])):
            return k
    return "-"


def star_category(entry: dict) -> str:
    """'quiet' for flare-free negatives, else the special category (EB, variable, junk, blip) or 'labelled'."""
    if entry["tic"] in SPECIAL:
        return SPECIAL[entry["tic"]]
    return "quiet" if entry["status"] == "negative" else "labelled"


# ----------------------------------------------------------------------------- probabilities and events
class ProbCache:
    """Per-cadence probabilities, computed once per (model, light curve); models with the same files share.

    With ``disk`` set, the probabilities of whole light curves are also kept as ``.npz`` there, keyed by the
    model files (name, size, mtime) and the light curve's name and length, so a rerun skips inference.
    """

    def __init__(self, disk: Path | None = None) -> None:
        self._probs: dict[tuple, np.ndarray] = {}
        self.seconds = 0.0
        self.disk = disk
        self.disk_hits = 0

    @staticmethod
    def key(model: Any) -> tuple:
        """Identity of a model: its resolved member paths."""
        return tuple(str(p.resolve()) for p in model.paths)

    @staticmethod
    def _digest(model: Any, name: str, n: int) -> str:
        import hashlib

        h = hashlib.sha1()
        for p in model.paths:
            st = p.stat()
            h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns};".encode())
        h.update(f"{name}|{n}".encode())
        return h.hexdigest()[:20]

    def get(self, model: Any, name: str, lc: Any) -> np.ndarray:
        """Probability of ``lc`` (named ``name``) under ``model``, cached."""
        k = (self.key(model), name)
        if k in self._probs:
            return self._probs[k]
        f = self.disk / f"{Path(name).stem}-{self._digest(model, name, len(lc))}.npz" if self.disk else None
        if f is not None and f.is_file():
            self._probs[k] = np.load(f)["prob"]
            self.disk_hits += 1
            return self._probs[k]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cadence warnings are reported by the runtime elsewhere
            self._probs[k] = model.predict(lc)
        self.seconds += time.perf_counter() - t0
        if f is not None:
            f.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(f, prob=self._probs[k])
        return self._probs[k]


def events_for(rule: str, model: Any, lc: Any, prob: np.ndarray, fe: Any) -> np.ndarray:
    """(n, 3) events of one rule from precomputed probabilities."""
    if rule == "runs":
        return ev.runs_events(lc.time, prob, THRESHOLD, fe)
    from flarelight.runtime import find_flares

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ev.table_events(find_flares(lc, model=model, prob=prob, threshold=ours_threshold(model)))


def ours_threshold(model: Any) -> float:
    """Our rule's threshold: the model's recommended one (its metadata) where the runtime has it, else 0.5."""
    return float(getattr(model, "threshold", THRESHOLD))


# ----------------------------------------------------------------------------- detection on real LCs
def detection(entries: list[dict], models: dict[str, Any], cache: ProbCache, fe: Any,
              split: dict | None) -> dict[str, Any]:
    """flare_eval scores of every contender on the full manifest (labelled + negative) and the test split."""
    from flarelight.runtime import read_lightcurve

    preds: dict[str, dict[str, np.ndarray]] = {c: {} for c in CONTENDERS}
    for i, e in enumerate(entries):
        path = ev.SHARED / e["file"]
        base = Path(e["file"]).name
        lc = read_lightcurve(path)
        for c, (mk, rule) in CONTENDERS.items():
            prob = cache.get(models[mk], base, lc)
            preds[c][base] = events_for(rule, models[mk], lc, prob, fe)
        log(f"scored {i + 1}/{len(entries)} {base} (model time so far {cache.seconds:.0f} s)")
    test_tics = set(split["test"]) if split else set()
    scored = ev.evaluate_many(fe, entries, preds, ev.SHARED)
    check = fe.evaluate(entries, preds["flarelight+ours"], ev.SHARED)["pooled"]  # cross-check of evaluate_many
    if check != scored["flarelight+ours"]["pooled"]:
        raise RuntimeError("evaluate_many disagrees with flare_eval.evaluate; fix bench/_eval.py")
    out: dict[str, Any] = {}
    for c in CONTENDERS:
        full = scored[c]
        per = full["per_lc"]
        for r, e in zip(per, entries):
            r["category"] = star_category(e)
            r["note"] = e.get("note", "")
            r["split"] = split_of(e["tic"], split)
        quiet = [r for r in per if r["category"] == "quiet"]
        quiet_test = [r for r in quiet if r["split"] == "test"]
        res = {"full": full["pooled"]["labelled"], "negative_all": full["pooled"]["negative"],
               "negative_flare_free": fe.pool(quiet) if quiet else None,
               "negative_flare_free_test": fe.pool(quiet_test) if quiet_test else None,
               "per_star": [{k: r[k] for k in ("file", "tic", "sector", "star", "status", "category", "note", "split",
                                                "n_true", "n_recovered", "n_pred", "n_fp", "exposure_days",
                                                "fp_per_day", "recall", "precision")} for r in per]}
        if split:
            test_rows = [r for r in per if r["tic"] in test_tics and r["status"] in ("complete", "partial")]
            res["test"] = fe.pool(test_rows) if test_rows else None
            res["test_files"] = [r["file"] for r in test_rows]
            if not test_rows:
                log(f"{c}: none of the split's {len(test_tics)} test TICs is a labelled manifest star")
        out[c] = res
    return out


# ----------------------------------------------------------------------------- injection-recovery
def injection(entries: list[dict], models: dict[str, Any], cache: ProbCache, fe: Any, realisations: int,
              per_lc: int, seed: int, split: dict | None = None) -> dict[str, Any]:
    """Inject flares into the flare-free LCs; per model and rule, the recovered flag of every flare.

    With a split, only flare-free stars of its test split host injections (no model is scored on a star it
    trained on), with proportionally more realisations each so the number of flares stays the same.
    """
    from flarelight.runtime import read_lightcurve

    rng = np.random.default_rng(seed)
    quiet = [e for e in entries if star_category(e) == "quiet"]
    if split is not None:
        held_out = [e for e in quiet if e["tic"] in set(split.get("test", []))]
        if held_out:
            realisations = int(np.ceil(realisations * len(quiet) / len(held_out)))
            quiet = held_out
    rows: dict[str, list] = {k: [] for k in ("tpeak", "fwhm", "amplitude", "ed", "snr", "edge_dist", "near_gap",
                                             "file")}
    rec: dict[str, list] = {c: [] for c in CONTENDERS}
    model_keys = {mk: ProbCache.key(m) for mk, m in models.items()}
    t0 = time.perf_counter()
    for e in quiet:
        base = Path(e["file"]).name
        lc = read_lightcurve(ev.SHARED / e["file"])
        good = lc.good & (lc.quality == 0 if lc.quality is not None else True)
        for _ in range(realisations):
            inj = ev.inject_flares(lc.time, lc.flux, good, per_lc, rng)
            lc_inj = dataclasses.replace(lc, flux=inj.flux)
            probs: dict[tuple, np.ndarray] = {}
            for mk, m in models.items():
                if model_keys[mk] not in probs:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        probs[model_keys[mk]] = ev.rescore_near_flares(m, lc_inj, inj.excess, cache.get(m, base, lc))
            slack = ev.SLACK_CAD * float(np.nanmedian(np.diff(lc.time)))
            done: dict[tuple, np.ndarray] = {}
            for c, (mk, rule) in CONTENDERS.items():
                k = (model_keys[mk], rule)
                if k not in done:
                    evs = events_for(rule, models[mk], lc_inj, probs[model_keys[mk]], fe)
                    done[k] = ev.recovered(inj.tpeak, inj.fwhm, evs, slack)
                rec[c].append(done[k])
            for k in rows:
                rows[k].append(np.full(inj.tpeak.size, base) if k == "file" else getattr(inj, k))
        log(f"injected into {base}: {realisations} x {per_lc} flares ({time.perf_counter() - t0:.0f} s)")
    flares = {k: np.concatenate(v) for k, v in rows.items()}
    return {"flares": flares, "recovered": {c: np.concatenate(v) for c, v in rec.items()},
            "n_lightcurves": len(quiet),
            "lightcurves": [{"file": Path(e["file"]).name, "tic": e["tic"], "split": split_of(e["tic"], split)}
                            for e in quiet]}


def completeness_tables(inj: dict[str, Any]) -> dict[str, Any]:
    """Completeness tables of every contender (amplitude x FWHM, SNR x FWHM, ED, near vs far gap)."""
    f = inj["flares"]
    fwhm_min = f["fwhm"] * 1440.0
    out = {}
    for c, r in inj["recovered"].items():
        near, far = f["near_gap"], ~f["near_gap"]
        out[c] = {
            "overall": float(r.mean()) if r.size else None,
            "amp_x_fwhm": ev.completeness_2d(f["amplitude"], fwhm_min, r, AMP_EDGES, FWHM_EDGES_MIN),
            "snr_x_fwhm": ev.completeness_2d(f["snr"], fwhm_min, r, SNR_EDGES, FWHM_EDGES_MIN),
            "amplitude": ev.completeness_1d(f["amplitude"], r, AMP_EDGES),
            "snr": ev.completeness_1d(f["snr"], r, SNR_EDGES),
            "ed_s": ev.completeness_1d(f["ed"], r, ED_EDGES),
            "snr_near_gap": ev.completeness_1d(f["snr"][near], r[near], SNR_EDGES),
            "snr_far_from_gap": ev.completeness_1d(f["snr"][far], r[far], SNR_EDGES),
            "near_gap_overall": float(r[near].mean()) if near.any() else None,
            "far_from_gap_overall": float(r[far].mean()) if far.any() else None,
        }
    return out


# ----------------------------------------------------------------------------- targets
def targets_set(det: dict[str, Any]) -> str:
    """'test' if the split gave labelled test light curves, else 'full' (the whole manifest)."""
    return "test" if all(d.get("test") for d in det.values()) else "full"


def targets(det: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 6 targets for the flarelight contenders, each with value, pass/fail and margin."""
    where = targets_set(det)
    stella_ps = [det[c][where]["precision"] for c in ("stella+stella-rule", "stella+ours")
                 if det[c].get(where) and det[c][where]["precision"] is not None]
    stella_p = max(stella_ps) if stella_ps else None  # the better of stella's two rows: the stricter bar
    out = []
    for c in ("flarelight+ours", "flarelight+runs>0.5"):
        d = det[c]
        s = d.get(where) or {}
        star_fp = [r["fp_per_day"] for r in d["per_star"]
                   if (r["status"] == "negative" or r["category"] == "EB") and r["fp_per_day"] is not None]
        worst = max(star_fp) if star_fp else None
        q = d["negative_flare_free"]
        checks = [
            (f"recall on labelled {where} stars >= 0.75", s.get("recall"), 0.75, ">="),
            (f"precision on labelled {where} stars >= stella's best ({report.fmt(stella_p)})", s.get("precision"), stella_p, ">="),
            ("FP/day on flare-free stars <= 0.2", q and q["fp_per_day"], 0.2, "<="),
            ("FP/day on flare-free test-split stars <= 0.2",
             d["negative_flare_free_test"] and d["negative_flare_free_test"]["fp_per_day"], 0.2, "<="),
            ("max FP/day of any negative star or EB <= 2", worst, 2.0, "<="),
        ]
        for name, v, lim, op in checks:
            ok = None if v is None or lim is None else (v >= lim if op == ">=" else v <= lim)
            miss = None if ok is None or ok else abs(v - lim)
            out.append({"contender": c, "target": name, "value": v, "limit": lim, "pass": ok, "misses_by": miss})
    return out


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON document."""
    a = parse_args(argv)
    t_start = time.perf_counter()
    fe = ev.load_flare_eval()
    manifest = json.loads(ev.MANIFEST.read_text())["lightcurves"]
    entries = [e for e in manifest if e["status"] in ("complete", "partial", "negative")]
    split, split_note = load_split(a.split)
    models = {"flarelight": load_flarelight(a.model, a.threads, a.batch_size),
              "stella": load_stella(a.stella_model, a.threads, a.batch_size)}
    same = ProbCache.key(models["flarelight"]) == ProbCache.key(models["stella"])
    log(f"flarelight={models['flarelight']!r} stella={models['stella']!r}" + (" (same files: shared cache)" if same else ""))
    cache = ProbCache(None if a.no_prob_cache else a.prob_cache)
    det = detection(entries, models, cache, fe, split)
    t_det = time.perf_counter() - t_start
    reals = a.realisations or (2 if a.quick else 8)
    inj = injection(entries, models, cache, fe, reals, a.flares_per_lc, a.seed, split)
    comp = completeness_tables(inj)
    t_all = time.perf_counter() - t_start
    tg = targets(det)

    print(f"flarelight model: {models['flarelight'].model_id} ({len(models['flarelight'].paths)} members, "
          f"{models['flarelight'].paths[0].parent})")
    print(f"stella model:     {models['stella'].model_id} ({len(models['stella'].paths)} members, "
          f"{models['stella'].paths[0].parent})" + ("  [same files as flarelight]" if same else ""))
    print("thresholds: ours = " + ", ".join(f"{k} {ours_threshold(m):.3g}" for k, m in models.items())
          + " (model's recommended); runs rule = 0.5")
    print(f"manifest: {len(entries)} labelled+negative LCs of {len(manifest)} (unlabelled ones not scored)")
    report.print_detection(det, split_note)
    report.print_injection(comp, inj)
    report.print_targets(tg, targets_set(det))
    a.plot.parent.mkdir(parents=True, exist_ok=True)
    report.plot(comp, a.plot, int(inj["flares"]["tpeak"].size))
    print(f"\nruntime: {t_all:.0f} s (detection {t_det:.0f} s, model inference {cache.seconds:.0f} s of it, "
          f"{cache.disk_hits} LC probabilities from {a.prob_cache if not a.no_prob_cache else 'no disk cache'}); "
          f"JSON {a.out}; plot {a.plot}")

    doc = {"models": {k: {"model_id": m.model_id, "paths": [str(p) for p in m.paths],
                          "preprocessing": dataclasses.asdict(m.preprocessing)} for k, m in models.items()},
           "same_model_both": same,
           "thresholds": {"ours": {k: ours_threshold(m) for k, m in models.items()}, "runs": THRESHOLD}, "split": split_note, "stella_rule_note": report.STELLA_RULE_NOTE,
           "contenders": {c: {"model": mk, "rule": r} for c, (mk, r) in CONTENDERS.items()},
           "detection": det, "injection": {"completeness": comp, "lightcurves": inj["lightcurves"], "n_flares": int(inj["flares"]["tpeak"].size),
                                           "realisations_per_lc": reals, "flares_per_lc": a.flares_per_lc,
                                           "seed": a.seed, "flares": inj["flares"],
                                           "recovered": inj["recovered"]},
           "targets": tg, "runtime_s": round(t_all, 1), "inference_s": round(cache.seconds, 1),
           "prob_cache": None if a.no_prob_cache else str(a.prob_cache), "prob_cache_hits": cache.disk_hits,
           "quick": a.quick}
    from flarelight.runtime.jsonio import write_json

    write_json(a.out, doc)
    return doc


if __name__ == "__main__":
    main()
