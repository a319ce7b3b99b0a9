"""The recipe that trains flarelight's shipped ensemble (``models/flarelight-v1``), end to end and seeded.

    python -m flarelight.trainer.recipe --shared ../shared --out models/flarelight-v1

Data (all from ``../shared/data``, read in place):

* SPOC 2-min light curves with labels from Günther et al. 2020, Ilin et al. 2024 (PAPER table) and Ilin &
  Poppenhäger 2022 (AU Mic), matched by TIC, sector and time;
* stella's five training-format ``.npy`` light curves (sector 2) with Günther labels;
* the 90 custom-aperture ultracool-dwarf light curves with the 247+ vetted flares (``real == 1``) of the TESS UCD
  catalogue (and Günther labels where those stars have them), matched by time;
* flare-free stars (PROVENANCE.md) as negatives; stars that flare but carry no labels (YZ CMi, TRAPPIST-1, AU Mic
  S95, V889 Her, the young TOIs, the ``more/`` M dwarfs) are left out: every flare on them would be a false
  negative in training.

Augmentation: every training/validation light curve is copied ``n_copies`` times with Davenport (2014) flares
injected (:func:`flarelight.trainer.inject.inject_flares`): peak amplitude log-uniform between 3 and 2000 times the
light curve's own noise (capped at 3x the flux; so the range reaches the noise level on every star and covers
superflares), FWHM log-uniform 2-60 min,
positions uniform over good cadences (so some fall near gaps and edges), never overlapping a catalogued flare. The
last copy of each light curve also carries impostors, which have no flare label: either periodic eclipses with
sharp ingress and egress (EB-like) plus flux steps (like the jumps of TIC 92873799/389363695), or fast periodic
variability (a spotted fast rotator, or a pulsator-like signal with a fast rise; period 0.1-2 d, amplitude 0.3-25%).

Windows: ``edge_mode="pad"`` (2 channels: flux padded with 1.0 and a real-cadence flag) so the model scores the
cadences near gaps and edges that stella cannot; every cadence inside a flare interval is a positive window; three
negatives per positive, a quarter of them near a gap or edge; at most 16 evenly spaced positive windows per
flare, so long flares do not outweigh short ones.

Split: by star (TIC), fixed lists below for the SPOC stars (so the labelled and flare-free test stars of
``../shared/eval/dev_manifest.json`` are held out) and a seeded deal of the UCD and stella ``.npy`` stars; written
to ``split.json`` beside the models.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from flarelight.runtime.io import LightCurveData
from flarelight.runtime.jsonio import write_json
from flarelight.runtime.metadata import Preprocessing
from flarelight.runtime.preprocess import noise_level as preprocess_noise_level
from flarelight.runtime.preprocess import segment

from .export import restamp, sha256_file
from .inject import inject_flares
from .labels import load_catalogs
from .reading import read_lightcurves
from .split import assign_stars
from .trainingset import TrainingSet
from .windows import build_dataset

log = logging.getLogger(__name__)

#: the name of the model the recipe trains: member ids are ``<MODEL_NAME>/s<seed>``
MODEL_NAME = "flarelight-v1"
#: the recipe's preprocessing: lightkurve's default quality mask, median normalisation then window noise,
#: 200-cadence windows, the runtime's gap rule (``Preprocessing.gap_tolerance``, 3.5 cadences; flarelight-v1
#: itself was trained with 4.0 and re-stamped 3.5, see its model card), and padded 2-channel windows so every
#: kept cadence is scored
PREPROCESSING = Preprocessing(edge_mode="pad", normalisation="median+window_noise")

CATALOGS = ["guenther2020_flare_catalog.csv", "ilin2024_PAPER_flare_table.csv",
            "ilin2022_aumic_final_flare_table_s1_s27.csv", "tess_ucd_flares_20200227_vetted.csv"]

#: SPOC stars, by role. Test stars are the labelled and flare-free stars of the dev manifest held out from training.
SPOC_SPLIT = {
    "test": [29779873, 31740375, 32150630, 358108509, 67646988, 257605131,      # labelled (partial catalogues)
             53842685, 92873799, 93000166, 143699381, 55525572],                # flare-free
    "val": [441420236, 460205581, 130181866],   # AU Mic: 75 vetted flares, the most complete catalogue here
    "train": [410214986, 389363695, 383390264, 21132157],
}
#: stars that flare but have no labels in ../shared: never used (their flares would be false negatives)
EXCLUDED = {266744225, 278892590, 471000657, 159873822, 219423316, 62124646, 461654150, 166597074}
#: AU Mic sector 95 has no labels either (only sector 1 is catalogued)
EXCLUDED_FILES = {"tess2025206162959-s0095-0000000441420236-0292-s_lc.fits"}
#: UCD and stella .npy stars not named above are dealt to train/val/test in these proportions
DEAL = {"train": 0.6, "val": 0.15, "test": 0.25}


@dataclass
class Source:
    """One light curve of the recipe."""

    path: Path
    tic: int
    kind: str  # "spoc", "ucd", "npy"


def find_sources(shared: Path) -> list[Source]:
    """Every light curve the recipe uses, with its TIC (excluded stars and non-2-min files left out)."""
    tess = shared / "data" / "tess"
    out = []
    for p in sorted(tess.glob("tess*_lc.fits")) + sorted(tess.glob("tic*_lc.fits")):
        if p.name in EXCLUDED_FILES:
            continue
        tic = 55525572 if p.name.startswith("tic55525572") else int(p.name.split("-")[2])
        if tic not in EXCLUDED:
            out.append(Source(p, tic, "spoc"))
    for p in sorted((tess / "derived" / "ucd_custom_aperture").glob("*.fits")):
        tic = int(p.name.split("-")[2])
        if tic not in EXCLUDED:
            out.append(Source(p, tic, "ucd"))
    for p in sorted((tess / "stella_training_npy").glob("*.npy")):
        out.append(Source(p, int(p.name.split("_")[0]), "npy"))
    return out


def assign_split(tics: list[int], seed: int) -> dict[int, str]:
    """Split by star (:func:`flarelight.trainer.split.assign_stars`): the fixed SPOC lists, then a seeded deal
    of the remaining stars in the proportions of :data:`DEAL`."""
    fixed = {t: s for s, ts in SPOC_SPLIT.items() for t in ts}
    return assign_stars(tics, (DEAL["train"], DEAL["val"], DEAL["test"]), seed, fixed=fixed)


def noise_level(lc: LightCurveData) -> float:
    """Robust point-to-point scatter of the normalised good flux, differences across gaps included
    (the runtime's :func:`~flarelight.runtime.preprocess.noise_level` over one segment)."""
    f = lc.flux[lc.good]
    return preprocess_noise_level(f / np.median(f), np.zeros(f.size, np.int64))


def add_periodic_variability(lc: LightCurveData, rng: np.random.Generator) -> tuple[LightCurveData, dict]:
    """Multiply in fast periodic variability (no flare labels: negatives): a spotted fast rotator (two
    harmonics) or a pulsator-like signal with a fast rise and slow decline, period 0.1-2 d, amplitude 0.3-25%."""
    t = lc.time - np.nanmin(lc.time)
    period = float(np.exp(rng.uniform(np.log(0.1), np.log(2.0))))
    amp = float(np.exp(rng.uniform(np.log(0.003), np.log(0.25))))
    phase = np.mod(t / period + rng.uniform(), 1.0)
    if rng.uniform() < 0.5:
        kind = "rotator"
        shape = np.sin(2 * np.pi * phase) + rng.uniform(0, 0.6) * np.sin(4 * np.pi * phase + rng.uniform(0, 2 * np.pi))
    else:
        kind = "pulsator"
        rise = float(rng.uniform(0.05, 0.25))  # fraction of the period spent rising
        shape = np.where(phase < rise, phase / rise, 1.0 - (phase - rise) / (1.0 - rise)) ** 2
    shape = (shape - np.nanmean(shape)) / (np.nanmax(shape) - np.nanmin(shape))
    meta = {**lc.meta, "hard_negatives": True}
    new = LightCurveData(time=lc.time, flux=lc.flux * (1.0 + amp * shape), flux_err=lc.flux_err, quality=lc.quality,
                         bad=lc.bad, meta=meta)
    return new, {"kind": kind, "period": period, "amplitude": amp}


def add_hard_negatives(lc: LightCurveData, rng: np.random.Generator) -> tuple[LightCurveData, dict]:
    """Multiply in periodic trapezoidal eclipses and add 1-3 flux steps (no flare labels: negatives)."""
    t = lc.time
    period = float(np.exp(rng.uniform(np.log(0.4), np.log(5.0))))
    depth = float(np.exp(rng.uniform(np.log(0.005), np.log(0.3))))
    dur = float(rng.uniform(1.0, 5.0)) / 24.0
    ramp = float(rng.uniform(0.05, 0.3)) * dur
    phase = np.mod(t - np.nanmin(t) - rng.uniform(0, period), period)
    x = np.minimum(phase, period - phase)  # distance from eclipse centre (days)
    shape = np.clip((dur / 2 - x) / ramp, 0.0, 1.0)
    flux = lc.flux * (1.0 - depth * shape)
    steps = []
    for _ in range(int(rng.integers(1, 4))):
        t0 = float(rng.uniform(np.nanmin(t), np.nanmax(t)))
        size = float(rng.choice([-1, 1]) * np.exp(rng.uniform(np.log(0.002), np.log(0.05))))
        flux = flux * np.where(t >= t0, 1.0 + size, 1.0)
        steps.append((t0, size))
    meta = {**lc.meta, "hard_negatives": True}
    new = LightCurveData(time=lc.time, flux=flux, flux_err=lc.flux_err, quality=lc.quality, bad=lc.bad, meta=meta)
    return new, {"period": period, "depth": depth, "duration_h": dur * 24, "steps": steps}


def thin_positive_runs(ts: TrainingSet, max_per_run: int, negatives_per_positive: float, seed: int) -> TrainingSet:
    """Keep at most ``max_per_run`` evenly spaced positive windows per flare and rebalance the negatives.

    A run is a set of positive windows of one light curve whose centres are not split by the training set's gap
    rule (:func:`flarelight.runtime.preprocess.segment` over the positive centres); without thinning a 60-minute
    flare would outweigh a 4-minute one fifty to one.
    """
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(ts.y == 1)
    pos = pos[np.lexsort((ts.time[pos], ts.source[pos]))]
    run_id = np.empty(pos.size, np.int64)
    start = 0
    for src in np.unique(ts.source[pos]):  # sources in order (pos is sorted by source)
        m = ts.source[pos] == src
        seg, _ = segment(ts.time[pos[m]], ts.preprocessing)
        run_id[m] = start + seg - seg[0]
        start = int(run_id[m][-1]) + 1
    keep = []
    for r in np.unique(run_id):
        members = pos[run_id == r]
        if members.size > max_per_run:
            members = members[np.unique(np.linspace(0, members.size - 1, max_per_run).round().astype(int))]
        keep.append(members)
    keep_pos = np.concatenate(keep)
    neg = np.flatnonzero(ts.y == 0)
    keep_neg = []
    for sp in np.unique(ts.split):  # rebalance within each split, so no split borrows another's windows
        n_pos = int(np.sum(ts.split[keep_pos] == sp))
        cand = neg[ts.split[neg] == sp]
        n = min(cand.size, int(round(negatives_per_positive * n_pos)))
        keep_neg.append(rng.choice(cand, n, replace=False))
    idx = np.sort(np.concatenate([keep_pos, *keep_neg]))
    return ts.subset(idx)


def read_sources(shared: Path, seed: int, **read) -> tuple[list[Source], Any, list[LightCurveData], dict[int, str]]:
    """A recipe's sources (:func:`find_sources`), the flare catalogue, the light curves (``read``: options of
    :func:`~flarelight.trainer.reading.read_lightcurves`) tagged with their TIC, and the seeded split by star."""
    sources = find_sources(shared)
    catalog = load_catalogs([shared / "data" / "catalogs" / c for c in CATALOGS])
    lcs = read_lightcurves([s.path for s in sources], **read)
    for s, lc in zip(sources, lcs):
        lc.meta["tic"] = s.tic  # npy and custom-aperture headers vary; the file name is authoritative
    return sources, catalog, lcs, assign_split([s.tic for s in sources], seed)


def with_injected_copies(sources: list[Source], lcs: list[LightCurveData], catalog: Any, split_of: dict[int, str], *,
                         seed: int, n_copies: int, flares_per_copy: int,
                         impostor: Callable[[LightCurveData, float], LightCurveData], pre: Preprocessing | None = None,
                         visible_labels: bool = False
                         ) -> tuple[list[LightCurveData], list[np.ndarray], list[int], list[np.ndarray], int]:
    """Every light curve with its catalogued flares, each train/val one followed by ``n_copies`` copies with
    ``flares_per_copy`` flares injected (copy ``c`` of light curve ``k`` seeded ``seed * 100003 + k * 101 + c``;
    3-2000x the light curve's noise, FWHM 2-60 min, clear of the catalogued flares), the last copy on top of
    ``impostor(lc, noise)``. With ``visible_labels`` a flare is labelled only where it exceeds the light curve's
    noise: an injected one by its template (:func:`~flarelight.trainer.inject.inject_flares`' ``label_sigma``), a
    catalogued one by the flux (:func:`visible_part`); else injected flares over ``[tpeak - 2 FWHM, tpeak + 5 FWHM]``
    and catalogued ones as their catalogue has them. Returns the light curves, their flare intervals and stars (one each),
    every source's catalogued intervals, and the number of flares injected."""
    all_lcs: list[LightCurveData] = []
    labels: list[np.ndarray] = []
    stars: list[int] = []
    reals: list[np.ndarray] = []
    injected = 0
    for k, (s, lc) in enumerate(zip(sources, lcs)):
        real = catalog.for_lightcurve(lc).intervals()
        reals.append(real)
        sigma = noise_level(lc)
        if visible_labels:
            real = visible_part(lc, real, sigma)
        all_lcs.append(lc)
        labels.append(real)
        stars.append(s.tic)
        if split_of[s.tic] == "test":
            continue  # test stars are scored as they are; injection tests live in bench/
        amp = (max(3.0 * sigma, 5e-4), min(max(2000.0 * sigma, 0.05), 3.0))
        for c in range(n_copies):
            base = impostor(lc, sigma) if c == n_copies - 1 else lc
            new, table = inject_flares(base, flares_per_copy, seed=seed * 100003 + k * 101 + c, amplitude=amp,
                                       fwhm_minutes=(2.0, 60.0), avoid=real, min_separation=2.0, pre=pre,
                                       label_sigma=sigma if visible_labels else None)
            injected += len(table)
            all_lcs.append(new)
            labels.append(np.vstack([real, np.column_stack([table["tstart"], table["tstop"]])]))
            stars.append(s.tic)
    return all_lcs, labels, stars, reals, injected


def visible_part(lc: LightCurveData, intervals: np.ndarray, sigma: float, side_days: float = 0.25) -> np.ndarray:
    """Each labelled interval trimmed to where its flare is visible: the run of consecutive good cadences around its
    brightest one whose relative flux exceeds ``sigma`` over the level beside it (the median of the good cadences
    within ``side_days`` outside every interval), plus half a cadence each side. An interval with no cadence that
    bright, or fewer than 10 beside it, is kept whole."""
    iv = np.asarray(intervals, float).reshape(-1, 2)
    t, f = lc.time, lc.flux
    good = lc.good & np.isfinite(t) & np.isfinite(f)
    gi = np.flatnonzero(good)
    tg, fg = t[gi], f[gi]
    inside = np.zeros(tg.size, bool)
    for a, b in iv:
        inside |= (tg >= a) & (tg <= b)
    half = 0.5 * float(np.median(np.diff(tg))) if tg.size > 1 else 0.0
    out = []
    for a, b in iv:
        idx = np.flatnonzero((tg >= a) & (tg <= b))
        side = ~inside & (tg >= a - side_days) & (tg <= b + side_days)
        if idx.size == 0 or side.sum() < 10:
            out.append((a, b))
            continue
        rel = fg / np.median(fg[side]) - 1.0
        j = int(np.argmax(rel[idx]))
        if not rel[idx[j]] > sigma:
            out.append((a, b))
            continue
        lo = hi = j
        while lo > 0 and idx[lo - 1] == idx[lo] - 1 and rel[idx[lo - 1]] > sigma:
            lo -= 1
        while hi < idx.size - 1 and idx[hi + 1] == idx[hi] + 1 and rel[idx[hi + 1]] > sigma:
            hi += 1
        out.append((tg[idx[lo]] - half, tg[idx[hi]] + half))
    return np.array(out, float).reshape(-1, 2)


def recipe_windows(lcs: list[LightCurveData], labels: list[np.ndarray], stars: list[int], split_of: dict[int, str],
                   pre: Preprocessing, *, seed: int, negatives_per_positive: float, max_per_run: int,
                   description: str) -> TrainingSet:
    """A recipe's windows of ``lcs``: every cadence inside a flare interval positive, ``negatives_per_positive``
    negatives per positive (a quarter near a gap or edge), split by star, at most ``max_per_run`` positives a flare."""
    ts = build_dataset(lcs, labels, pre, positives="interval", negatives_per_positive=negatives_per_positive,
                       negative_margin=3, near_edge_fraction=0.25, fractions=None, seed=seed, star_ids=stars,
                       description=description)
    ts = ts.with_split(np.array([split_of[int(s)] for s in ts.star]))
    return thin_positive_runs(ts, max_per_run, negatives_per_positive, seed)


def sources_record(shared: Path, sources: list[Source], split_of: dict[int, str]) -> dict:
    """What a recipe's training set was built from: the split by star, every file and catalogue with its SHA-256,
    and the stars and files left out."""
    return {
        "split": {sp: sorted({s.tic for s in sources if split_of[s.tic] == sp}) for sp in ("train", "val", "test")},
        "files": [{"file": str(s.path.relative_to(shared)), "tic": s.tic, "kind": s.kind, "split": split_of[s.tic],
                   "sha256": sha256_file(s.path)} for s in sources],
        "catalogs": [{"file": c, "sha256": sha256_file(shared / "data" / "catalogs" / c)} for c in CATALOGS],
        "excluded_tics": sorted(EXCLUDED), "excluded_files": sorted(EXCLUDED_FILES),
    }


def build_training_set(shared: Path, *, seed: int = 0, n_copies: int = 2, flares_per_copy: int = 8,
                       negatives_per_positive: float = 3.0, max_per_run: int = 16, pre: Preprocessing = PREPROCESSING) -> tuple[TrainingSet, dict]:
    """The flarelight-v1 training set and a record of what went into it (files, hashes, split, options)."""
    sources, catalog, lcs, split_of = read_sources(shared, seed)
    rng = np.random.default_rng(seed)
    all_lcs, labels, stars, _, injected_rows = with_injected_copies(
        sources, lcs, catalog, split_of, seed=seed, n_copies=n_copies, flares_per_copy=flares_per_copy, pre=pre,
        # the last copy carries an impostor: eclipses + steps, or fast periodic variability
        impostor=lambda lc, sigma: (add_hard_negatives if rng.uniform() < 0.5 else add_periodic_variability)(lc, rng)[0])
    ts = recipe_windows(all_lcs, labels, stars, split_of, pre, seed=seed, negatives_per_positive=negatives_per_positive,
                        max_per_run=max_per_run,
                        description=f"flarelight-v1 recipe (seed {seed}): {len(sources)} real light curves "
                                    f"+ {n_copies} injected copies of each train/val one ({injected_rows} injected flares)")
    record = {
        "seed": seed, "n_copies": n_copies, "flares_per_copy": flares_per_copy, "injected_flares": injected_rows,
        "negatives_per_positive": negatives_per_positive, "max_positive_windows_per_flare": max_per_run,
        **sources_record(shared, sources, split_of),
        "training_set": ts.summary(),
    }
    return ts, record


THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99)


def choose_threshold(model_dir: Path, shared: Path, seed: int = 0) -> tuple[float, list[dict]]:
    """The catalogue threshold with the best event-level F1 on the validation stars' real light curves.

    Events are :func:`flarelight.runtime.find_flares` rows; the matching rule is that of
    ``shared/eval/flare_eval.py`` (overlap within 2 cadences), via :func:`flarelight.trainer.evaluate.event_scores`.
    Flare-free validation stars count through their false positives. Ties go to the higher threshold.
    """
    import warnings

    from flarelight.runtime import FlareModel

    from .evaluate import catalogue_events, event_scores, pool

    model = FlareModel(model_dir)
    sources = find_sources(shared)
    split_of = assign_split([s.tic for s in sources], seed)
    catalog = load_catalogs([shared / "data" / "catalogs" / c for c in CATALOGS])
    val = [s for s in sources if split_of[s.tic] == "val"]
    from flarelight.runtime.quality import resolve_bitmask

    # read as the model's "default" rule does (flarelight-v2 keeps ImpulsiveOutlier cadences)
    lcs = read_lightcurves([s.path for s in val],
                           quality_bitmask=resolve_bitmask("default") & model.preprocessing.quality_bitmask)
    scored = []
    for s, lc in zip(val, lcs):
        lc.meta["tic"] = s.tic
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 200-s UCD cadences: the model is run on them knowingly
            scored.append((model.score(lc), catalog.for_lightcurve(lc).intervals()))
    rows = []
    for thr in THRESHOLDS:
        per = []
        for sc, true in scored:
            kept_t = sc.prepared.time
            per.append(event_scores(catalogue_events(sc, thr), true, float(np.median(np.diff(kept_t))), kept_t))
        p = pool(per)
        rows.append({"threshold": thr, **{k: p[k] for k in ("n_true", "n_recovered", "n_pred", "n_tp")},
                     "recall": p["recall"], "precision": p["precision"], "f1": p["f1"]})
    best = max(rows, key=lambda row: (round(row["f1"], 3) if np.isfinite(row["f1"]) else -1.0, row["threshold"]))
    return float(best["threshold"]), rows


def set_threshold(onnx_path: Path, threshold: float) -> None:
    """Rewrite the recommended threshold in a flarelight ONNX file's metadata (atomically; weights untouched)."""
    restamp(onnx_path, threshold=float(threshold))


def recipe_parser(description: str, *, name: str, n_models: int, epochs: int, patience: int) -> argparse.ArgumentParser:
    """The options every recipe takes, with its own defaults (``--out models/<name>``, ``--work build/<name>``)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--shared", type=Path, default=Path("../shared"), help="the shared reference-data folder")
    ap.add_argument("--out", type=Path, default=Path("models") / name, help="where the ONNX members go")
    ap.add_argument("--name", default=name, help="model name: member ids <name>/s<seed>, files <name>_s<seed>.onnx")
    ap.add_argument("--work", type=Path, default=Path("build") / name, help="Keras models, histories, plots")
    ap.add_argument("--seed", type=int, default=0, help="seed of the data build and split")
    ap.add_argument("--n-models", type=int, default=n_models)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--patience", type=int, default=patience)
    ap.add_argument("--n-copies", type=int, default=2)
    ap.add_argument("--finalize-only", action="store_true",
                    help="only choose the threshold on the validation stars and write it into the --out models")
    return ap


def run_recipe(a: argparse.Namespace, argv: list[str] | None, *, module: str,
               build: Callable[[argparse.Namespace], tuple[TrainingSet, dict]], seed_base: int,
               finalize: Callable[[Path, Path, int], float], cnn: dict | None = None) -> None:
    """A recipe's run from its parsed options (:func:`recipe_parser`): build the training set (``build(a)`` ->
    training set, record), train members seeded ``seed_base * (seed + 1) + i``, put them (with their sliding forms)
    in ``--out`` in place of the ONNX files there, write split.json and training.json, and ``finalize`` (choose and
    write the threshold); with --finalize-only only that."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if a.finalize_only:
        finalize(a.out, a.shared, a.seed)
        return
    from .train import member_stem, train_ensemble

    t0 = time.perf_counter()
    ts, record = build(a)
    log.info("training set: %s", json.dumps(ts.summary()))
    t1 = time.perf_counter()
    seeds = [seed_base * (a.seed + 1) + i for i in range(a.n_models)]
    members = train_ensemble(ts, a.work, seeds=seeds, epochs=a.epochs, batch_size=a.batch_size, patience=a.patience,
                             cnn=cnn, model_name=a.name)
    t2 = time.perf_counter()
    a.out.mkdir(parents=True, exist_ok=True)
    for old in a.out.glob("*.onnx"):
        old.unlink()
    for m in members:
        stem = member_stem(a.name, m.seed)
        shutil.copy2(m.onnx_path, a.out / f"{stem}.onnx")
        sl = m.onnx_path.with_name(m.onnx_path.stem + ".sliding.onnx")
        if sl.exists():  # none for per-window normalisation (flarelight-v1)
            shutil.copy2(sl, a.out / f"{stem}.sliding.onnx")
    record.update(model_name=a.name, seeds=seeds, epochs=a.epochs, batch_size=a.batch_size, patience=a.patience,
                  build_seconds=round(t1 - t0, 1), train_seconds=round(t2 - t1, 1),
                  members=[{"seed": m.seed, "epochs_run": m.history["epochs_run"], "best_epoch": m.history["best_epoch"],
                            "metrics": m.metrics} for m in members],
                  command=f"python -m {module} " + " ".join(sys.argv[1:] if argv is None else argv))
    write_json(a.out / "split.json", {k: record["split"][k] for k in ("train", "val", "test")})
    write_json(a.out / "training.json", record)
    finalize(a.out, a.shared, a.seed)
    log.info("done: %d members in %s (build %.0f s, training %.0f s)", len(members), a.out, t1 - t0, t2 - t1)


def write_threshold(out: Path, threshold: float, scan: list[dict], **record) -> None:
    """Write ``threshold`` into every member in ``out`` (restamping a member restamps its sliding form too) and, with
    the scan it was chosen from and ``record``'s other keys, into training.json."""
    for f in sorted(out.glob("*.onnx")):
        if not f.name.endswith(".sliding.onnx"):
            set_threshold(f, threshold)
    record_path = out / "training.json"
    doc = json.loads(record_path.read_text()) if record_path.exists() else {}
    doc.update(threshold=threshold, threshold_scan=scan, **record)
    write_json(record_path, doc)


def main(argv: list[str] | None = None) -> None:
    """Build the training set, train the seed ensemble, and write the ONNX members, split.json and training.json."""
    a = recipe_parser(__doc__.split("\n")[0], name=MODEL_NAME, n_models=5, epochs=25, patience=5).parse_args(argv)
    run_recipe(a, argv, module="flarelight.trainer.recipe", seed_base=1000, finalize=finalize,
               build=lambda a: build_training_set(a.shared, seed=a.seed, n_copies=a.n_copies))


def finalize(out: Path, shared: Path, seed: int) -> float:
    """Choose the threshold on the validation stars, write it into every member and into training.json."""
    threshold, scan = choose_threshold(out, shared, seed)
    write_threshold(out, threshold, scan)
    log.info("threshold %.2f chosen on the validation stars", threshold)
    return threshold


if __name__ == "__main__":
    main()
