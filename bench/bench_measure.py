#!/usr/bin/env python
"""Issue 12: flare rows an astronomer can use, measured in one run (JSON to ``bench/results/measure.json``).

Flares are injected with the one injector (:func:`flarelight.runtime.simulate.add_flares`, Davenport 2014
shape, into PDCSAP and SAP alike) into the real flare-free light curves of ``../shared`` (the quiet negatives of
``dev_manifest.json``), scored by the shipped model (``FlareModel.default()``), and catalogued by ``find_flares``
(vetted rows, the default). Parts:

* **population**: amplitude log-uniform in 3-300 local sigma, FWHM 2-60 min, >= 0.5 d apart. A flare is matched
  by the row nearest its peak (within max(3 cadences, its FWHM)); its *group* holds the measurement: ED = the
  group's summed ``ed``, duration = the group's [min tstart, max tstop] + one cadence, against the injected
  flare's cadences above 1 local sigma (the catalogue's own noise estimate of the clean light curve). Amplitude:
  the matched row's ``amplitude``. Targets: ED median ratio in 1 +- 0.05 for injected ED >= 3 s; scatter (robust,
  1.4826 MAD of log10 ratio) <= 0.1 dex for ED >= 5 s; amplitude median ratio within 5%; duration median ratio
  within 1.3x.
* **superflares**: amplitude 0.1-0.5, FWHM 20-90 min (decays to 1 sigma of 0.3-1.3 d); target: those decaying
  within 1 day come out as one group holding >= 95% of the injected ED.
* **pairs**: two flares 10-60 min apart (FWHM <= half the separation); target: two rows, one at each peak.
* **edges**: a steep rotational slope (3%, 1-day period, steepest decline at the edge) multiplied onto the light
  curve, a flare peaking 5-30 cadences before a segment end (the orbit gap, the light curve's end) or before an
  artificial 3-h gap; target: found, ED within 20%.
* **outliers**: three cadences at +1e30 and three at -1e30 near a real AU Mic flare: the probability shift
  (max over all cadences) and that flare's ED change, and ``n_outliers`` in the table meta.
* **dev**: the labelled DEV light curves, with the catalogue before this issue (``runtime/catalogue.py`` at
  commit ``BEFORE_COMMIT``, loaded from git) and after (vetted rows; components collapsed to one event per
  group), scored with ``flare_eval.py``: false detections on the variable stars and the eclipsing binary, recall
  on the labelled test stars (``models/flarelight-v1/split.json``), precision on all labelled stars. The false
  detections are split by the star's label status (negative: every row is false; partial: a thresholded list,
  an unlisted flare counts as false), and each of the "after" ones is drawn with its file's PDCSAP, SAP and
  MOM_CENTR1 (``bench/results/measure_dev_unlabelled_<model>.png``) to be judged by eye.
* **speed**: catalogue CPU time on AU Mic sector 1 (dozens of flares) beside the model's scoring time, and the
  import time of ``flarelight.runtime``; the size of the runtime-only venv (``.venv-runtime``) when present.

Usage::

    .venv/bin/python bench/bench_measure.py [--quick] [--seed 12] [--out bench/results/measure.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
RESULTS = ROOT / "bench" / "results"
MANIFEST = SHARED / "eval" / "dev_manifest.json"
FLARE_EVAL = SHARED / "eval" / "flare_eval.py"
SPLIT = ROOT / "models" / "flarelight-v1" / "split.json"
AU_MIC = SHARED / "data" / "tess" / "tess2018206045859-s0001-0000000441420236-0120-s_lc.fits"
BEFORE_COMMIT = "8c32556"
#: stars whose false detections the issue wants halved (notes of dev_manifest.json / PROVENANCE.md)
VARIABLE_EB = {92873799: "variable", 389363695: "variable", 67646988: "variable", 32150630: "EB"}
SPECIAL = {53842685, 143699381} | set(VARIABLE_EB)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------- scoring with a cache
class Scorer:
    """``model.score`` with whole-light-curve probabilities cached on disk for the real (uninjected) files."""

    def __init__(self, model: Any, cache: Path | None) -> None:
        self.model = model
        self.cache = cache
        self.seconds = 0.0

    def score(self, lc: Any, name: str | None = None) -> Any:
        from flarelight.runtime.scored import Scored

        f = None
        if name is not None and self.cache is not None:
            tag = "".join(c if c.isalnum() else "_" for c in self.model.model_id)[:40]
            f = self.cache / f"{Path(name).stem}-{tag}-{len(lc)}.npz"
            if f.is_file():
                prob = np.load(f)["prob"]
                lc = self.model.adopt_default_mask(lc)  # the cadences model.score(lc) would have kept
                return Scored.from_probabilities(lc, prob, self.model.preprocessing, model_id=self.model.model_id,
                                                 threshold=self.model.threshold)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = self.model.score(lc)
        self.seconds += time.perf_counter() - t0
        if f is not None:
            f.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(f, prob=s.prob)
        return s


# ----------------------------------------------------------------------------- injection
@dataclasses.dataclass
class Truth:
    tpeak: np.ndarray
    fwhm: np.ndarray
    amplitude: np.ndarray
    ed: np.ndarray
    sigma: np.ndarray
    duration: np.ndarray      # days, cadences above 1 sigma (last - first + cadence); nan if none
    decay: np.ndarray         # days from the peak to the last cadence above 1 sigma


def quiet_entries(manifest: list[dict]) -> list[dict]:
    return [e for e in manifest if e["status"] == "negative" and e["tic"] not in SPECIAL]


def local_sigmas(time: np.ndarray, rel: np.ndarray, good: np.ndarray, tpeaks: np.ndarray) -> np.ndarray:
    from flarelight.runtime.baseline import ptp_sigma

    out = []
    for tp in tpeaks:
        w = good & (np.abs(time - tp) <= 0.5)
        out.append(ptp_sigma(rel[w]))
    return np.array(out)


def inject(lc: Any, keep: np.ndarray, tpeak: np.ndarray, fwhm: np.ndarray, amp: np.ndarray,
           extra_flux: np.ndarray | None = None) -> tuple[Any, Truth]:
    """``lc`` with flares added to its flux (times ``extra_flux`` first, if given) and SAP; the truth."""
    from flarelight.runtime.flarefit import template_integral
    from flarelight.runtime.simulate import add_flares, flare_profile

    flux = lc.flux if extra_flux is None else lc.flux * extra_flux
    inj = add_flares(lc.time, flux, tpeak, fwhm, amp, good=keep)
    aux = dict(getattr(lc, "aux", {}) or {})
    if "sap_flux" in aux:
        sap = aux["sap_flux"] if extra_flux is None else aux["sap_flux"] * extra_flux
        okg = keep & np.isfinite(sap)
        aux["sap_flux"] = add_flares(lc.time, sap, tpeak, fwhm, amp, good=okg).flux
    out = dataclasses.replace(lc, flux=inj.flux, aux=aux)
    med = float(np.median(flux[keep]))
    sigma = local_sigmas(lc.time, flux / med, keep, tpeak)
    cad = float(np.median(np.diff(lc.time[keep])))
    dur, dec = [], []
    for tp, fw, a, s in zip(tpeak, fwhm, amp, sigma):
        near = keep & (lc.time > tp - 2 * fw - cad) & (lc.time < tp + 60 * fw + 2.0)
        prof = flare_profile(lc.time[near], tp, fw, a, exposure=cad)
        above = np.flatnonzero(prof > s)
        if above.size:
            tt = lc.time[near]
            dur.append(tt[above[-1]] - tt[above[0]] + cad)
            dec.append(tt[above[-1]] - tp)
        else:
            dur.append(np.nan)
            dec.append(np.nan)
    ed = amp * fwhm * 86400.0 * template_integral()
    return out, Truth(tpeak=np.asarray(tpeak), fwhm=np.asarray(fwhm), amplitude=np.asarray(amp), ed=ed, sigma=sigma,
                      duration=np.array(dur), decay=np.array(dec))


def positions(time: np.ndarray, n: int, rng: np.random.Generator, min_sep: float, margin: float,
              seg_last: np.ndarray | None = None) -> np.ndarray:
    """Up to ``n`` peak times among ``time`` at least ``min_sep`` apart and ``margin`` days from the ends."""
    pool = time[(time > time[0] + margin) & (time < time[-1] - margin)]
    chosen: list[float] = []
    for _ in range(50 * n):
        if len(chosen) == n:
            break
        t = float(rng.choice(pool))
        if all(abs(t - c) >= min_sep for c in chosen):
            chosen.append(t)
    cad = float(np.median(np.diff(time)))
    return np.sort(np.array(chosen)) + rng.uniform(-0.5, 0.5, len(chosen)) * cad


# ----------------------------------------------------------------------------- matching
def match(table: Any, truth: Truth, cad: float) -> list[dict]:
    """Per injected flare: the nearest row within max(3 cadences, FWHM) and its group's measurements."""
    out = []
    tp = np.asarray(table["tpeak"], float) if len(table) else np.empty(0)
    for i in range(truth.tpeak.size):
        tol = max(3 * cad, truth.fwhm[i])
        d = np.abs(tp - truth.tpeak[i])
        if d.size == 0 or d.min() > tol:
            out.append({"found": False})
            continue
        r = int(np.argmin(d))
        g = table["group"][r]
        rows = np.flatnonzero(np.asarray(table["group"]) == g)
        out.append({"found": True, "row": r, "group": int(g), "n_rows": int(rows.size),
                    "ed": float(np.sum(np.asarray(table["ed"], float)[rows])),
                    "ed_sum": float(np.sum(np.asarray(table["ed_sum"], float)[rows])),
                    "amplitude": float(table["amplitude"][r]),
                    "duration": float(np.max(np.asarray(table["tstop"])[rows]) - np.min(np.asarray(table["tstart"])[rows])
                                      + cad)})
    return out


def robust_dex(ratio: np.ndarray) -> float:
    lr = np.log10(ratio[np.isfinite(ratio) & (ratio > 0)])
    return float(1.4826 * np.median(np.abs(lr - np.median(lr)))) if lr.size else float("nan")


def med(x: np.ndarray) -> float:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


# ----------------------------------------------------------------------------- parts
def part_population(scorer: Scorer, quiet: list[dict], rng: np.random.Generator, realisations: int,
                    per_lc: int) -> dict[str, Any]:
    from flarelight.runtime import find_flares, read_lightcurve
    from flarelight.runtime.preprocess import kept_mask

    rows: list[dict] = []
    for e in quiet:
        lc = read_lightcurve(SHARED / e["file"])
        keep = kept_mask(lc, scorer.model.preprocessing)
        tk = lc.time[keep]
        cad = float(np.median(np.diff(tk)))
        sig0 = float(np.nanmedian(local_sigmas(lc.time, lc.flux / np.median(lc.flux[keep]), keep,
                                            np.linspace(tk[0] + 1, tk[-1] - 1, 9))))
        for _ in range(realisations):
            tpk = positions(tk, per_lc, rng, 0.5, 0.3)
            m = tpk.size
            amp = np.exp(rng.uniform(np.log(3), np.log(300), m)) * sig0
            fwhm = np.exp(rng.uniform(np.log(2), np.log(60), m)) / 1440.0
            lc_inj, truth = inject(lc, keep, tpk, fwhm, amp)
            sc = scorer.score(lc_inj)
            vetted = find_flares(sc)
            every = find_flares(sc, keep_all=True)
            mv, ma = match(vetted, truth, cad), match(every, truth, cad)
            for i in range(m):
                rows.append({"file": Path(e["file"]).name, "tpeak": truth.tpeak[i], "fwhm_min": truth.fwhm[i] * 1440,
                             "amplitude": truth.amplitude[i], "ed": truth.ed[i], "sigma": truth.sigma[i],
                             "duration": truth.duration[i], "found_all": ma[i]["found"],
                             **{("m_" + k if k != "found" else k): v for k, v in mv[i].items()}})
        log(f"population: {Path(e['file']).name}")
    return summarise_population(rows)


def summarise_population(rows: list[dict]) -> dict[str, Any]:
    ed = np.array([r["ed"] for r in rows])
    found = np.array([r["found"] for r in rows])
    found_all = np.array([r["found_all"] for r in rows])
    get = lambda k: np.array([r.get("m_" + k, np.nan) if r["found"] else np.nan for r in rows], float)  # noqa: E731
    ed_ratio = get("ed") / ed
    edsum_ratio = get("ed_sum") / ed
    amp_ratio = get("amplitude") / np.array([r["amplitude"] for r in rows])
    dur_ratio = get("duration") / np.array([r["duration"] for r in rows], float)
    ge3, ge5 = found & (ed >= 3), found & (ed >= 5)
    bins = [0.1, 1, 3, 10, 30, 100, 1000, 1e5]
    by_ed = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = (ed >= lo) & (ed < hi)
        f = sel & found
        by_ed.append({"ed_lo": lo, "ed_hi": hi, "n": int(sel.sum()), "recovered": float(found[sel].mean()) if sel.any() else None,
                      "flagged": float((found_all[sel] & ~found[sel]).mean()) if sel.any() else None,
                      "ed_ratio": med(ed_ratio[f]), "ed_sum_ratio": med(edsum_ratio[f]),
                      "amp_ratio": med(amp_ratio[f]), "dur_ratio": med(dur_ratio[f])})
    res = {
        "n_injected": len(rows), "recovered": float(found.mean()) if rows else None,
        "recovered_any_row": float(found_all.mean()) if rows else None,
        "ed_ratio_median_ge3": med(ed_ratio[ge3]), "n_ge3": int(ge3.sum()),
        "ed_sum_ratio_median_ge3": med(edsum_ratio[ge3]),
        "ed_scatter_dex_ge5": robust_dex(ed_ratio[ge5]), "n_ge5": int(ge5.sum()),
        "ed_sum_scatter_dex_ge5": robust_dex(edsum_ratio[ge5]),
        "amp_ratio_median": med(amp_ratio[found]), "amp_ratio_median_ge3": med(amp_ratio[ge3]),
        "dur_ratio_median": med(dur_ratio[found]), "dur_ratio_median_ge3": med(dur_ratio[ge3]),
        "multi_row_groups": int(sum(1 for r in rows if r["found"] and r["m_n_rows"] > 1)),
        "by_ed": by_ed,
    }
    res["targets"] = {
        "ed_median_ratio_ge3_within_5pct": abs(res["ed_ratio_median_ge3"] - 1) <= 0.05,
        "ed_scatter_ge5_le_0.1dex": res["ed_scatter_dex_ge5"] <= 0.1,
        "amplitude_within_5pct": abs(res["amp_ratio_median"] - 1) <= 0.05,
        "duration_within_1.3x": 1 / 1.3 <= res["dur_ratio_median"] <= 1.3,
    }
    res["flares"] = rows
    return res


def part_superflares(scorer: Scorer, quiet: list[dict], rng: np.random.Generator, realisations: int) -> dict[str, Any]:
    from flarelight.runtime import find_flares, read_lightcurve
    from flarelight.runtime.preprocess import kept_mask

    out = []
    for e in quiet:
        lc = read_lightcurve(SHARED / e["file"])
        keep = kept_mask(lc, scorer.model.preprocessing)
        tk = lc.time[keep]
        cad = float(np.median(np.diff(tk)))
        gaps = np.flatnonzero(np.diff(tk) > 0.5)
        ends = np.r_[tk[gaps], tk[-1]]
        starts = np.r_[tk[0], tk[gaps + 1]]
        for _ in range(realisations):
            tpk = []
            for s0, e0 in zip(starts, ends):  # one per orbit, >= 1.3 d before its end
                if e0 - s0 > 2.0:
                    tpk.append(float(rng.uniform(s0 + 0.3, max(s0 + 0.31, e0 - 1.3))))
            tpk = np.array(tpk)
            amp = np.exp(rng.uniform(np.log(0.1), np.log(0.5), tpk.size))
            fwhm = np.exp(rng.uniform(np.log(20), np.log(90), tpk.size)) / 1440.0
            lc_inj, truth = inject(lc, keep, tpk, fwhm, amp)
            t = find_flares(scorer.score(lc_inj))
            for i in range(tpk.size):
                lo, hi = truth.tpeak[i] - 2 * truth.fwhm[i], truth.tpeak[i] + truth.decay[i]
                inside = (np.asarray(t["tpeak"]) >= lo) & (np.asarray(t["tpeak"]) <= hi)
                groups = np.unique(np.asarray(t["group"])[inside])
                ed_groups = float(np.sum(np.asarray(t["ed"], float)[np.isin(np.asarray(t["group"]), groups)]))
                out.append({"file": Path(e["file"]).name, "tpeak": truth.tpeak[i], "amplitude": truth.amplitude[i],
                            "fwhm_min": truth.fwhm[i] * 1440, "decay_d": truth.decay[i], "ed": truth.ed[i],
                            "n_groups": int(groups.size), "n_rows": int(inside.sum()), "ed_ratio": ed_groups / truth.ed[i]})
        log(f"superflares: {Path(e['file']).name}")
    day = [r for r in out if r["decay_d"] <= 1.0]
    ok = [r for r in day if r["n_groups"] == 1 and r["ed_ratio"] >= 0.95]
    return {"n": len(out), "n_decay_le_1d": len(day), "one_group_ge95pct": len(ok),
            "fraction_ok": len(ok) / len(day) if day else None,
            "ed_ratio_median": med(np.array([r["ed_ratio"] for r in day])),
            "decay_d_range": [float(min(r["decay_d"] for r in out)), float(max(r["decay_d"] for r in out))] if out else None,
            "target_met": bool(day) and len(ok) == len(day), "flares": out}


def part_pairs(scorer: Scorer, quiet: list[dict], rng: np.random.Generator, per_lc: int) -> dict[str, Any]:
    from flarelight.runtime import find_flares, read_lightcurve
    from flarelight.runtime.preprocess import kept_mask

    out = []
    for e in quiet:
        lc = read_lightcurve(SHARED / e["file"])
        keep = kept_mask(lc, scorer.model.preprocessing)
        tk = lc.time[keep]
        cad = float(np.median(np.diff(tk)))
        sig0 = float(np.nanmedian(local_sigmas(lc.time, lc.flux / np.median(lc.flux[keep]), keep,
                                            np.linspace(tk[0] + 1, tk[-1] - 1, 9))))
        first = positions(tk, per_lc, rng, 0.8, 0.3)
        sep = rng.uniform(10, 60, first.size) / 1440.0
        fw = np.minimum(rng.uniform(2, 10, first.size), sep * 1440 / 2) / 1440.0
        fw2 = np.minimum(rng.uniform(2, 10, first.size), sep * 1440 / 2) / 1440.0
        tpk = np.r_[first, first + sep]
        fwhm = np.r_[fw, fw2]
        amp = rng.uniform(20, 100, tpk.size) * sig0
        lc_inj, truth = inject(lc, keep, tpk, fwhm, amp)
        t = find_flares(scorer.score(lc_inj))
        tp = np.asarray(t["tpeak"], float)
        for i in range(first.size):
            rows = []
            for j in (i, i + first.size):
                d = np.abs(tp - truth.tpeak[j])
                tol = max(2 * cad, 0.5 * truth.fwhm[j])
                rows.append(int(np.argmin(d)) if d.size and d.min() <= tol else -1)
            out.append({"file": Path(e["file"]).name, "t1": truth.tpeak[i], "sep_min": sep[i] * 1440,
                        "fwhm_min": [fw[i] * 1440, fw2[i] * 1440], "amp_sigma": [amp[i] / sig0, amp[i + first.size] / sig0],
                        "resolved": bool(rows[0] >= 0 and rows[1] >= 0 and rows[0] != rows[1]),
                        "same_group": bool(rows[0] >= 0 and rows[1] >= 0 and t["group"][rows[0]] == t["group"][rows[1]])})
        log(f"pairs: {Path(e['file']).name}")
    n_ok = sum(r["resolved"] for r in out)
    return {"n": len(out), "resolved": n_ok, "fraction": n_ok / len(out) if out else None,
            "in_one_group": sum(r["same_group"] for r in out), "pairs": out}


def part_edges(scorer: Scorer, quiet: list[dict], rng: np.random.Generator, realisations: int) -> dict[str, Any]:
    from flarelight.runtime import find_flares, read_lightcurve
    from flarelight.runtime.preprocess import kept_mask

    out = []
    period, slope_amp = 1.0, 0.03
    for e in quiet:
        lc0 = read_lightcurve(SHARED / e["file"])
        keep0 = kept_mask(lc0, scorer.model.preprocessing)
        for _ in range(realisations):
            lc = dataclasses.replace(lc0, flux=lc0.flux.copy(), bad=lc0.bad.copy(), aux=dict(lc0.aux))
            keep = keep0.copy()
            tk = lc.time[keep]
            cad = float(np.median(np.diff(tk)))
            gaps = np.flatnonzero(np.diff(tk) > 0.5)
            seg_ends = list(np.r_[tk[gaps], tk[-1]])
            # an artificial 3-h gap in the middle of each orbit
            starts = np.r_[tk[0], tk[gaps + 1]]
            art = []
            for s0, e0 in zip(starts, seg_ends):
                tg = float(rng.uniform(s0 + 0.35 * (e0 - s0), s0 + 0.65 * (e0 - s0)))
                hole = (lc.time > tg) & (lc.time < tg + 0.125)
                lc.bad[hole] = True
                keep &= ~hole
                art.append(float(lc.time[keep][np.searchsorted(lc.time[keep], tg) - 1]))
            edges = [("segment_end", t) for t in seg_ends] + [("gap", t) for t in art]
            extra = np.ones(len(lc))
            tpk, kinds = [], []
            for kind, te in edges:  # the slope is steepest (declining) at each edge: one sine per edge region
                near = np.abs(lc.time - te) < 0.75
                extra[near] = 1.0 + slope_amp * np.sin(2 * np.pi * (lc.time[near] - te) / period + np.pi)
                tpk.append(te - rng.integers(5, 31) * cad + rng.uniform(-0.5, 0.5) * cad)
                kinds.append(kind)
            tpk = np.array(tpk)
            fwhm = rng.uniform(4, 20, tpk.size) / 1440.0
            amp = np.exp(rng.uniform(np.log(0.01), np.log(0.1), tpk.size))
            lc_inj, truth = inject(lc, keep, tpk, fwhm, amp, extra_flux=extra)
            sc = scorer.score(lc_inj)
            t = find_flares(sc)
            every = find_flares(sc, keep_all=True)
            mt, ma = match(t, truth, cad), match(every, truth, cad)
            for i in range(tpk.size):
                flags = [f for f in ("low_snr", "periodic", "gap_edge", "single_cadence", "symmetric", "sap_disagrees",
                                     "centroid_jump") if ma[i]["found"] and bool(every[f][ma[i]["row"]])]
                out.append({"file": Path(e["file"]).name, "kind": kinds[i], "tpeak": truth.tpeak[i],
                            "amplitude": truth.amplitude[i], "fwhm_min": truth.fwhm[i] * 1440, "ed": truth.ed[i],
                            "sigma": truth.sigma[i], "found": mt[i]["found"], "found_any_row": ma[i]["found"],
                            "flags": flags, "ed_ratio": mt[i]["ed"] / truth.ed[i] if mt[i]["found"] else None})
        log(f"edges: {Path(e['file']).name}")
    res: dict[str, Any] = {"period_d": period, "rotation_amplitude": slope_amp, "flares": out}
    for kind in ("segment_end", "gap"):
        rows = [r for r in out if r["kind"] == kind]
        ok = [r for r in rows if r["found"] and abs(r["ed_ratio"] - 1) <= 0.2]
        res[kind] = {"n": len(rows), "found": sum(r["found"] for r in rows), "ed_within_20pct": len(ok),
                     "ed_ratio_median": med(np.array([r["ed_ratio"] for r in rows if r["found"]]))}
    return res


def part_outliers(scorer: Scorer) -> dict[str, Any]:
    from flarelight.runtime import find_flares, read_lightcurve

    lc = scorer.model.adopt_default_mask(read_lightcurve(AU_MIC))  # the model's own quality rule, so the variant
    base = scorer.score(lc, AU_MIC.name)                              # masked by hand below keeps it too
    t0 = find_flares(base)
    big = int(np.argmax(np.asarray(t0["ed"], float)))
    ip = int(t0["ipeak"][big])
    good = np.flatnonzero(lc.good)
    j = int(np.searchsorted(good, ip))
    bad_rows = [good[j - 97 - k] for k in range(3)] + [good[j + 140 + k] for k in range(3)]
    flux = lc.flux.copy()
    flux[bad_rows[:3]] = 1e30
    flux[bad_rows[3:]] = -1e30
    lc2 = dataclasses.replace(lc, flux=flux)
    sc2 = scorer.score(lc2)
    t2 = find_flares(sc2)
    # the reference: the same cadences masked (flagged bad): outliers must act exactly like masked cadences
    bad = lc.bad.copy()
    bad[bad_rows] = True
    ref = scorer.score(dataclasses.replace(lc, bad=bad))
    t_ref = find_flares(ref)
    both = np.isfinite(ref.prob) & np.isfinite(sc2.prob)
    shift_vs_clean = float(np.nanmax(np.abs(base.prob - sc2.prob)))
    def group_ed(t: Any) -> float:  # the ED of the group nearest the clean catalogue's largest flare
        r = int(np.argmin(np.abs(np.asarray(t["tpeak"]) - float(t0["tpeak"][big]))))
        return float(np.sum(np.asarray(t["ed"])[np.asarray(t["group"]) == t["group"][r]]))

    ed2 = group_ed(t2)
    ed0 = float(np.sum(np.asarray(t0["ed"])[np.asarray(t0["group"]) == t0["group"][big]]))
    ed_ref = group_ed(t_ref)
    return {"n_outliers_meta": int(t2.meta.get("n_outliers", -1)),
            "max_prob_shift_vs_masked": float(np.max(np.abs(ref.prob[both] - sc2.prob[both]))),
            "same_scored_cadences": bool(np.array_equal(np.isfinite(ref.prob), np.isfinite(sc2.prob))),
            "max_prob_shift_vs_clean": shift_vs_clean,
            "flare_ed_clean": ed0, "flare_ed_masked": ed_ref, "flare_ed_with_outliers": ed2,
            "ed_change_vs_masked": ed2 / ed_ref - 1 if ed_ref else None, "ed_change_vs_clean": ed2 / ed0 - 1 if ed0 else None,
            "rows_clean": len(t0), "rows_with_outliers": len(t2), "rows_masked": len(t_ref)}


def group_events(table: Any) -> np.ndarray:
    """One [tpeak, tstart, tstop] per flare group (components collapsed)."""
    if len(table) == 0:
        return np.empty((0, 3))
    g = np.asarray(table["group"])
    ev = []
    for gid in np.unique(g):
        r = np.flatnonzero(g == gid)
        top = r[int(np.argmax(np.asarray(table["amplitude"], float)[r]))]
        ev.append([float(table["tpeak"][top]), float(np.min(np.asarray(table["tstart"])[r])),
                   float(np.max(np.asarray(table["tstop"])[r]))])
    return np.array(ev)


def row_events(table: Any) -> np.ndarray:
    if len(table) == 0:
        return np.empty((0, 3))
    return np.column_stack([np.asarray(table[c], float) for c in ("tpeak", "tstart", "tstop")])


def part_dev(scorer: Scorer, manifest: list[dict], fe: Any) -> dict[str, Any]:
    from flarelight.runtime import read_lightcurve
    from flarelight.runtime.catalogue import flares_from_scored

    before_mod = None
    try:
        src = subprocess.run(["git", "show", f"{BEFORE_COMMIT}:runtime/catalogue.py"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        tmp = RESULTS / f"_catalogue_{BEFORE_COMMIT}.py"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(src)
        before_mod = load_module(f"flarelight.runtime._catalogue_{BEFORE_COMMIT}", tmp)
    except (OSError, subprocess.CalledProcessError) as exc:
        log(f"no 'before' catalogue ({exc}); reporting 'after' only")
    split = json.loads(SPLIT.read_text()) if SPLIT.is_file() else {"test": []}
    test = set(split.get("test", []))
    labelled = [e for e in manifest if e["status"] in ("partial", "complete", "negative")]
    preds: dict[str, dict[str, np.ndarray]] = {"before": {}, "after_groups": {}, "after_rows": {}, "after_all_groups": {}}
    cat_cpu = []
    for e in labelled:
        path = SHARED / e["file"]
        lc = read_lightcurve(path)
        sc = scorer.score(lc, path.name)
        c0 = time.process_time()
        after = flares_from_scored(sc).table
        cat_cpu.append(time.process_time() - c0)
        every = flares_from_scored(sc, keep_all=True).table
        preds["after_groups"][path.name] = group_events(after)
        preds["after_rows"][path.name] = row_events(after)
        preds["after_all_groups"][path.name] = group_events(every)
        if before_mod is not None:
            preds["before"][path.name] = row_events(before_mod.flares_from_scored(sc).table)
        log(f"dev: {path.name}")
    out: dict[str, Any] = {"catalogue_cpu_s_median": med(np.array(cat_cpu)), "before_commit": BEFORE_COMMIT}
    for name, p in preds.items():
        if not p:
            continue
        res = fe.evaluate(labelled, p, SHARED)
        per = res["per_lc"]
        var = [r for r in per if r["tic"] in VARIABLE_EB]
        test_rows = [r for r in per if r["tic"] in test and r["status"] in ("partial", "complete")]
        out[name] = {
            "fp_variable_eb": int(sum(r["n_fp"] for r in var)),
            "fp_per_star": {f"{r['tic']} ({VARIABLE_EB[r['tic']]})": r["n_fp"] for r in var},
            # every event on a negative star is false; on a partial star it only misses a thresholded list
            "fp_variable_eb_negative": int(sum(r["n_fp"] for r in var if r["status"] == "negative")),
            "fp_variable_eb_partial": int(sum(r["n_fp"] for r in var if r["status"] == "partial")),
            "fp_variable_eb_events": [{"file": r["file"], "tic": r["tic"], "status": r["status"], "tpeak": tp}
                                      for r in var for tp in r["false_positives"]],
            "test_stars": [r["file"] for r in test_rows],
            "test": fe.pool(test_rows) if test_rows else None,
            "labelled": res["pooled"]["labelled"],
            "negative": res["pooled"]["negative"],
        }
    if "after_groups" in out:
        name = str(scorer.model.model_id).split()[0]
        out["fp_figure"] = draw_unlabelled(out["after_groups"]["fp_variable_eb_events"],
                                           {Path(e["file"]).name: SHARED / e["file"] for e in labelled},
                                           RESULTS / f"measure_dev_unlabelled_{name}.png")
    if "before" in out:
        b, a = out["before"], out["after_groups"]
        out["targets"] = {
            "fp_variable_eb_halved": a["fp_variable_eb"] <= 0.5 * b["fp_variable_eb"],
            "test_recall_not_lower": (a["test"]["recall"] or 0) >= (b["test"]["recall"] or 0),
            "precision_higher": (a["labelled"]["precision"] or 0) > (b["labelled"]["precision"] or 0),
        }
    return out


def draw_unlabelled(events: list[dict], files: dict[str, Path], path: Path, half: float = 0.1) -> str | None:
    """Draw each event (PDCSAP, SAP, MOM_CENTR1 within ``half`` days, the raw columns of its file, ``files`` mapping
    basenames to paths) so the unlabelled detections on labelled stars can be judged by eye; returns the path
    written (None: no events)."""
    if not events:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.io import fits

    cols = ("PDCSAP_FLUX", "SAP_FLUX", "MOM_CENTR1")
    fig, axs = plt.subplots(len(cols), len(events), figsize=(2.6 * len(events), 5.5), squeeze=False)
    for j, ev in enumerate(events):
        data = fits.getdata(files[ev["file"]], 1)
        t = np.asarray(data["TIME"], float)
        near = np.isfinite(t) & (np.abs(t - ev["tpeak"]) < half)
        for i, c in enumerate(cols):
            axs[i, j].plot(t[near] - ev["tpeak"], np.asarray(data[c], float)[near], ".-", ms=2, lw=0.3)
            axs[i, j].axvline(0.0, color="r", lw=0.5)
            axs[i, j].tick_params(labelsize=6)
        axs[0, j].set_title(f"TIC {ev['tic']} ({ev['status']})\nBTJD {ev['tpeak']:.3f}", fontsize=7)
    for i, c in enumerate(cols):
        axs[i, 0].set_ylabel(c, fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return str(path)


def part_speed(scorer: Scorer, repeats: int) -> dict[str, Any]:
    from flarelight.runtime import read_lightcurve
    from flarelight.runtime.catalogue import flares_from_scored

    lc = read_lightcurve(AU_MIC)
    score_wall, score_cpu, cat_cpu, cat_wall = [], [], [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc = scorer.model.score(lc)
        score_wall.append(time.perf_counter() - t0)
        score_cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        cat = flares_from_scored(sc, keep_all=True)
        cat_wall.append(time.perf_counter() - t0)
        cat_cpu.append(time.process_time() - c0)
    imports, first_use = [], []  # the package (lazy names), then its first find_flares (numba, astropy, onnxruntime)
    for _ in range(repeats):
        r = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import flarelight.runtime; "
                            "a = time.perf_counter() - t; from flarelight.runtime import find_flares; "
                            "print(a, time.perf_counter() - t)"], capture_output=True, text=True, check=True)
        a, b = map(float, r.stdout.strip().splitlines()[-1].split())
        imports.append(a)
        first_use.append(b)
    size = None
    rv = ROOT / ".venv-runtime"
    if rv.is_dir():
        size = int(subprocess.run(["du", "-sb", str(rv)], capture_output=True, text=True).stdout.split()[0])
    return {"file": AU_MIC.name, "n_rows": len(cat.table), "n_groups": int(len(np.unique(cat.table["group"]))),
            "score_wall_s": med(np.array(score_wall)), "score_cpu_s": med(np.array(score_cpu)),
            "catalogue_wall_s": med(np.array(cat_wall)), "catalogue_cpu_s": med(np.array(cat_cpu)),
            "catalogue_over_score_cpu": med(np.array(cat_cpu)) / med(np.array(score_cpu)),
            "import_s_median": med(np.array(imports)), "import_find_flares_s_median": med(np.array(first_use)),
            "runtime_venv_mb": size / 1e6 if size else None,
            "cpu": platform.processor() or platform.machine(), "load_average": os.getloadavg()}


# ----------------------------------------------------------------------------- report
def fmt(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def report(res: dict[str, Any]) -> None:
    p = res["population"]
    print("\n## Injected flares in real flare-free light curves (vetted rows)")
    print(f"{p['n_injected']} injected, recovered {fmt(p['recovered'])} (any row, flags included: "
          f"{fmt(p['recovered_any_row'])})")
    print("| quantity | value | target | met |\n|---|---|---|---|")
    t = p["targets"]
    print(f"| ED median ratio, ED >= 3 s (n={p['n_ge3']}) | {fmt(p['ed_ratio_median_ge3'])} | 1 +- 0.05 | "
          f"{t['ed_median_ratio_ge3_within_5pct']} |")
    print(f"| ED scatter (dex), ED >= 5 s (n={p['n_ge5']}) | {fmt(p['ed_scatter_dex_ge5'])} | <= 0.1 | "
          f"{t['ed_scatter_ge5_le_0.1dex']} |")
    print(f"| amplitude median ratio | {fmt(p['amp_ratio_median'])} | 1 +- 0.05 | {t['amplitude_within_5pct']} |")
    print(f"| duration median ratio (1 sigma) | {fmt(p['dur_ratio_median'])} | within 1.3x | {t['duration_within_1.3x']} |")
    print(f"| ed_sum median ratio ED >= 3 s / scatter ED >= 5 s | {fmt(p['ed_sum_ratio_median_ge3'])} / "
          f"{fmt(p['ed_sum_scatter_dex_ge5'])} dex | (for comparison) | |")
    print("\n| ED bin (s) | n | recovered | flagged | ED ratio | ed_sum ratio | amp ratio | duration ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for b in p["by_ed"]:
        print(f"| {b['ed_lo']:g}-{b['ed_hi']:g} | {b['n']} | {fmt(b['recovered'], 2)} | {fmt(b['flagged'], 2)} | "
              f"{fmt(b['ed_ratio'])} | {fmt(b['ed_sum_ratio'])} | {fmt(b['amp_ratio'])} | {fmt(b['dur_ratio'])} |")
    s = res["superflares"]
    print(f"\n## Superflares: {s['n']} injected, decays {fmt(s['decay_d_range'][0] if s['decay_d_range'] else None, 2)}-"
          f"{fmt(s['decay_d_range'][1] if s['decay_d_range'] else None, 2)} d; {s['n_decay_le_1d']} decay within 1 d, "
          f"{s['one_group_ge95pct']} of them one group with >= 95% of the ED (median ratio "
          f"{fmt(s['ed_ratio_median'])}); target met: {s['target_met']}")
    q = res["pairs"]
    print(f"\n## Pairs 10-60 min apart: {q['resolved']}/{q['n']} resolved into two rows "
          f"({q['in_one_group']} as two components of one group)")
    e = res["edges"]
    print("\n## Flares running into an edge on a 3%/1-d rotational slope")
    for kind in ("segment_end", "gap"):
        k = e[kind]
        print(f"- {kind}: {k['found']}/{k['n']} found, {k['ed_within_20pct']} with ED within 20% "
              f"(median ratio {fmt(k['ed_ratio_median'])})")
    o = res["outliers"]
    print(f"\n## Absurd flux values (3 at +1e30, 3 at -1e30 near AU Mic's largest flare): n_outliers="
          f"{o['n_outliers_meta']}; against the same cadences masked: max probability shift "
          f"{fmt(o['max_prob_shift_vs_masked'], 6)}, flare ED change {fmt(o['ed_change_vs_masked'], 6)} "
          f"(against the clean light curve, where those cadences count as data: {fmt(o['max_prob_shift_vs_clean'], 3)}, "
          f"{fmt(o['ed_change_vs_clean'], 4)})")
    d = res["dev"]
    print("\n## DEV stars (flare_eval; before = catalogue at " + d["before_commit"] + ", after = vetted groups)")
    print("| catalogue | FP on variable + EB | test recall | test precision | labelled recall | labelled precision | "
          "labelled precision (dups collapsed) | negative FP/day |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("before", "after_groups", "after_rows", "after_all_groups"):
        if name not in d:
            continue
        r = d[name]
        tr = r["test"] or {}
        print(f"| {name} | {r['fp_variable_eb']} {r['fp_per_star']} | {fmt(tr.get('recall'))} | {fmt(tr.get('precision'))} | "
              f"{fmt(r['labelled']['recall'])} | {fmt(r['labelled']['precision'])} | "
              f"{fmt(r['labelled']['precision_unique'])} | {fmt(r['negative']['fp_per_day'])} |")
    if "targets" in d:
        print(f"targets: {d['targets']}")
    for name in ("before", "after_groups"):
        if name in d:
            r = d[name]
            print(f"{name}: on the negative (flare-free) variables {r['fp_variable_eb_negative']} false; on the "
                  f"partially labelled EB and variable {r['fp_variable_eb_partial']} not in their lists (a lower "
                  f"bound on precision there)")
    if d.get("fp_figure"):
        events = d["after_groups"]["fp_variable_eb_events"]
        print("after_groups' detections on these stars, not in their labels: "
              + ", ".join(f"TIC {e['tic']} {e['tpeak']:.3f} ({e['status']})" for e in events)
              + f"; drawn (PDCSAP, SAP, centroid) in {d['fp_figure']}")
    sp = res["speed"]
    print(f"\n## Speed ({sp['cpu']}, load {tuple(round(x, 1) for x in sp['load_average'])}): AU Mic S1, "
          f"{sp['n_groups']} groups / {sp['n_rows']} rows: catalogue {fmt(sp['catalogue_cpu_s'])} s CPU "
          f"({fmt(sp['catalogue_wall_s'])} s wall) vs scoring {fmt(sp['score_cpu_s'])} s CPU "
          f"({fmt(sp['score_wall_s'])} s wall): ratio {fmt(sp['catalogue_over_score_cpu'], 2)}; "
          f"import flarelight.runtime {fmt(sp['import_s_median'])} s (with find_flares, its first use: "
          f"{fmt(sp.get('import_find_flares_s_median'))} s); runtime venv {fmt(sp['runtime_venv_mb'], 0)} MB")


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer injections (smoke run)")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--out", type=Path, default=RESULTS / "measure.json")
    ap.add_argument("--cache", type=Path, default=RESULTS / "measure_probs",
                    help="probabilities of the real light curves (reused across runs)")
    ap.add_argument("--parts", nargs="+", default=["population", "superflares", "pairs", "edges", "outliers", "dev",
                                                   "speed"])
    ap.add_argument("--model", default=None,
                    help="shipped model name whose probabilities are catalogued (default: the default model; the "
                         "issue-12 DEV baseline of 16 false detections was measured with flarelight-v1)")
    a = ap.parse_args(argv)
    from flarelight.runtime import FlareModel

    fe = load_module("flare_eval", FLARE_EVAL)
    manifest = json.loads(MANIFEST.read_text())["lightcurves"]
    quiet = quiet_entries(manifest)
    rng = np.random.default_rng(a.seed)
    model = FlareModel.named(a.model) if a.model else FlareModel.default()
    scorer = Scorer(model, a.cache)
    log(f"model {model.model_id}; {len(quiet)} flare-free light curves")
    res: dict[str, Any] = {"model": model.model_id, "seed": a.seed, "quick": a.quick,
                           "quiet_files": [Path(e["file"]).name for e in quiet]}
    t0 = time.perf_counter()
    parts = {
        "population": lambda: part_population(scorer, quiet, rng, 1 if a.quick else 3, 8 if a.quick else 14),
        "superflares": lambda: part_superflares(scorer, quiet[:2] if a.quick else quiet, rng, 1 if a.quick else 2),
        "pairs": lambda: part_pairs(scorer, quiet[:2] if a.quick else quiet, rng, 6 if a.quick else 10),
        "edges": lambda: part_edges(scorer, quiet[:2] if a.quick else quiet, rng, 1 if a.quick else 2),
        "outliers": lambda: part_outliers(scorer),
        "dev": lambda: part_dev(scorer, manifest, fe),
        "speed": lambda: part_speed(scorer, 2 if a.quick else 3),
    }
    for name in a.parts:
        res[name] = parts[name]()
        log(f"{name} done ({time.perf_counter() - t0:.0f} s)")
    res["elapsed_s"] = time.perf_counter() - t0
    if set(parts) <= set(a.parts):
        report(res)
    else:
        print(json.dumps(_jsonable({k: v for k, v in res.items() if k not in ("population",)}), indent=1)[:6000])
        if "population" in res:
            p = {k: v for k, v in res["population"].items() if k != "flares"}
            print(json.dumps(_jsonable(p), indent=1))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(res), indent=1))
    os.replace(tmp, a.out)
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
