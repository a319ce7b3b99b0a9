"""The recipe of flarelight-v2 (issue 11): sliding-ready, bit-512 cadences kept, hard negatives.

    python -m flarelight.trainer.recipe_v2 --shared ../shared --out models/flarelight-v2

What changes from flarelight-v1's recipe (:mod:`flarelight.trainer.recipe`, whose data, split, injection,
thinning and threshold choice are reused by import):

* **Per-cadence normalisation** "baseline+noise": divide by the median, subtract a running median of 121
  cadences (4 h) computed once per segment, divide by the light curve's robust noise, arcsinh. A cadence has
  the same input in every window, so the sliding form shares all work between windows.
* **Architecture**: three valid-padded conv blocks (16, 32, 32 filters; kernels 7, 5, 3; max-pool 2) and a
  16-unit dense layer: ~17,000 multiply-adds per cadence in sliding form per member (stella's: ~106,000).
* **Quality mask**: lightkurve's default without ImpulsiveOutlier (512): on active M dwarfs the peak cadence
  of a flare is often flagged 512, and v1's mask deleted it.
* **Hard negatives** (:mod:`flarelight.trainer.impostors`): the last injected copy of each train/val light
  curve carries one or two impostors under its flares (flares on eclipses, pulsations, ramps, steps), and one
  more copy carries two impostors and no injected flare; from it :data:`HARD_PER_LC` negative windows are
  sampled where the impostor signal is sharpest (eclipse egresses, hump tops, steps, spikes, ramps).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from flarelight.runtime.errors import InvalidLightCurveError
from flarelight.runtime.io import LightCurveData
from flarelight.runtime.jsonio import write_json
from flarelight.runtime.metadata import Preprocessing
from flarelight.runtime.preprocess import make_windows, prepare
from flarelight.runtime.quality import resolve_bitmask

from . import impostors
from .labels import cadence_labels
from .recipe import assign_split  # noqa: F401 (the recipe's split, by this name too)
from .recipe import (choose_threshold, noise_level, read_sources, recipe_parser, recipe_windows, run_recipe,
                     sources_record, with_injected_copies, write_threshold)
from .trainingset import TrainingSet

log = logging.getLogger(__name__)

MODEL_NAME = "flarelight-v2"
#: lightkurve's default mask without ImpulsiveOutlier (512)
QUALITY_BITMASK = resolve_bitmask("default") & ~512
PREPROCESSING = Preprocessing(edge_mode="pad", normalisation="baseline+noise", baseline_half_width=60,
                              quality_bitmask=QUALITY_BITMASK)
#: the architecture (keyword arguments of :func:`flarelight.trainer.cnn.build_cnn`)
CNN = {"filters": [16, 32, 32], "kernels": [7, 5, 3], "dense": 16, "padding": "valid", "dropout": 0.1}
#: hard-negative windows sampled from each pure-impostor copy
HARD_PER_LC = 300
#: impostor kinds of the training copies (the bench's held-out impostors use another seed)
KINDS = tuple(impostors.SIMULATORS)
#: seed offset of the impostors, so bench/ can use seeds no training run used
IMPOSTOR_SEED_BASE = 7_000_000


def sharpness(imp_factor: np.ndarray, time: np.ndarray, noise: float) -> np.ndarray:
    """Where an impostor is most flare-like: |its cadence-to-cadence change| + its excess over a 1-hour running
    median, in units of the light curve's noise (a weight for sampling negative windows)."""
    f = np.asarray(imp_factor, np.float64)
    f = np.where(np.isfinite(f), f, 1.0)
    d = np.abs(np.diff(f, prepend=f[0]))
    k = 15
    pad = np.pad(f, k, mode="edge")
    idx = np.arange(f.size)[:, None] + np.arange(2 * k + 1)[None, :]
    excess = np.clip(f - np.median(pad[idx], axis=1), 0, None)
    return (d + excess) / max(noise, 1e-7)


def hard_negative_centres(prep, weight_kept: np.ndarray, avoid: np.ndarray, n: int,
                          rng: np.random.Generator) -> np.ndarray:
    """``n`` scored centres drawn with probability ~ ``1 + weight`` (kept-cadence weights, smoothed over +-10
    cadences so the windows around a feature are drawn too), never within 5 cadences of ``avoid`` (bool, kept)."""
    w = np.convolve(weight_kept, np.ones(21), "same")
    near = np.convolve(avoid.astype(float), np.ones(11), "same") > 0
    cand = prep.centres[~near[prep.centres]]
    if cand.size == 0:
        return cand
    p = 0.05 + np.minimum(w[cand], 50.0)
    p = p / p.sum()
    return np.sort(rng.choice(cand, min(n, cand.size), replace=False, p=p))


def concat(a: TrainingSet, b: TrainingSet, description: str) -> TrainingSet:
    """Two training sets with the same preprocessing as one (``b``'s sources offset past ``a``'s)."""
    if a.preprocessing != b.preprocessing:
        raise ValueError("training sets with different preprocessing cannot be joined")
    off = int(a.source.max()) + 1 if a.source.size else 0
    meta = {**a.meta, "description": description,
            "lightcurves": list(a.meta.get("lightcurves", [])) + list(b.meta.get("lightcurves", []))}
    return TrainingSet(np.concatenate([a.x, b.x]), np.concatenate([a.y, b.y]), np.concatenate([a.star, b.star]),
                       np.concatenate([a.split, b.split]), np.concatenate([a.time, b.time]),
                       np.concatenate([a.source, b.source + off]), a.preprocessing, meta)


def hard_negative_set(lcs: list[LightCurveData], real: list[np.ndarray], stars: list[int], split_of: dict,
                      pre: Preprocessing, seed: int, per_lc: int = HARD_PER_LC) -> tuple[TrainingSet, dict]:
    """Negative windows from pure-impostor copies of the train/val light curves (two impostors each)."""
    rng = np.random.default_rng(IMPOSTOR_SEED_BASE + seed)
    xs, stars_out, times, sources, kinds_used = [], [], [], [], {}
    labels = []
    for k, (lc, iv, star) in enumerate(zip(lcs, real, stars)):
        if split_of[star] == "test":
            continue
        sigma = noise_level(lc)
        kinds = tuple(rng.choice(KINDS, 2, replace=False))
        new, imps = impostors.combined(lc, kinds, rng, noise=sigma)
        for kd in kinds:
            kinds_used[kd] = kinds_used.get(kd, 0) + 1
        try:
            prep = prepare(new, pre)
        except InvalidLightCurveError:
            continue
        factor = np.prod([imp.factor for imp in imps], axis=0)
        weight = sharpness(factor, lc.time, sigma)[prep.kept]
        avoid = cadence_labels(prep.time, iv) if len(iv) else np.zeros(prep.time.size, bool)
        cen = hard_negative_centres(prep, weight, avoid, per_lc, rng)
        if cen.size == 0:
            continue
        xs.append(make_windows(prep, cen))
        stars_out.append(np.full(cen.size, star))
        times.append(prep.time[cen])
        sources.append(np.full(cen.size, len(labels)))
        labels.append(f"{lc.label} + {'+'.join(kinds)}")
    x = np.concatenate(xs)
    star_arr = np.concatenate(stars_out)
    ts = TrainingSet(x, np.zeros(len(x)), star_arr, np.array([split_of[int(s)] for s in star_arr]),
                     np.concatenate(times), np.concatenate(sources), pre,
                     {"description": "hard negatives", "lightcurves": labels})
    return ts, {"per_lc": per_lc, "n_windows": int(len(x)), "kinds": kinds_used,
                "seed": IMPOSTOR_SEED_BASE + seed}


def build_training_set(shared: Path, *, seed: int = 0, n_copies: int = 2, flares_per_copy: int = 8,
                       negatives_per_positive: float = 3.0, max_per_run: int = 16, hard_per_lc: int = HARD_PER_LC,
                       pre: Preprocessing = PREPROCESSING, visible_labels: bool = False) -> tuple[TrainingSet, dict]:
    """The flarelight-v2 training set and a record of what went into it (files, hashes, split, options).

    ``visible_labels`` labels an injected flare only where it exceeds the light curve's noise (flarelight-v2: over
    ``[tpeak - 2 FWHM, tpeak + 5 FWHM]``, which starts two FWHM before a long flare's visible rise)."""
    sources, catalog, lcs, split_of = read_sources(shared, seed, quality_bitmask=pre.quality_bitmask)
    rng = np.random.default_rng(IMPOSTOR_SEED_BASE + 1 + seed)

    def on_impostors(lc: LightCurveData, sigma: float) -> LightCurveData:
        """Flares on top of impostors (eclipses, pulsations, ramps, steps, spikes): one or two kinds."""
        kinds = tuple(rng.choice(KINDS, int(rng.integers(1, 3)), replace=False))
        return impostors.combined(lc, kinds, rng, noise=sigma)[0]

    all_lcs, labels, stars, reals, injected_rows = with_injected_copies(
        sources, lcs, catalog, split_of, seed=seed, n_copies=n_copies, flares_per_copy=flares_per_copy,
        impostor=on_impostors, visible_labels=visible_labels)
    ts = recipe_windows(all_lcs, labels, stars, split_of, pre, seed=seed, negatives_per_positive=negatives_per_positive,
                        max_per_run=max_per_run, description="main")
    hard, hard_record = hard_negative_set(lcs, reals, [s.tic for s in sources], split_of, pre, seed, hard_per_lc)
    ts = concat(ts, hard, f"flarelight-v2 recipe (seed {seed}): {len(sources)} real light curves + {n_copies} "
                          f"injected copies of each train/val one ({injected_rows} injected flares, the last on "
                          f"impostors) + {len(hard)} hard-negative windows from impostor copies")
    record = {
        "seed": seed, "n_copies": n_copies, "flares_per_copy": flares_per_copy, "injected_flares": injected_rows,
        "negatives_per_positive": negatives_per_positive, "max_positive_windows_per_flare": max_per_run,
        "hard_negatives": hard_record, "impostor_kinds": list(KINDS), "cnn": CNN,
        "injected_label_rule": ("where the injected flare exceeds the light curve's noise, within [tpeak - 2 FWHM, "
                                "tpeak + 5 FWHM]") if visible_labels else "[tpeak - 2 FWHM, tpeak + 5 FWHM]",
        "preprocessing": pre.__dict__,
        **sources_record(shared, sources, split_of),
        "training_set": ts.summary(),
    }
    return ts, record


#: the model v2 must not lose completeness against: its recorded validation scan and threshold
REFERENCE_MODEL = "flarelight-v1"


def reference_recall(models_dir: Path, name: str = REFERENCE_MODEL) -> float | None:
    """The validation event recall of ``name`` at its own threshold, from its ``training.json`` scan."""
    path = models_dir / name / "training.json"
    if not path.is_file():
        return None
    rec = json.loads(path.read_text())
    rows = [r for r in rec.get("threshold_scan", []) if r["threshold"] == rec.get("threshold")]
    return float(rows[0]["recall"]) if rows else None


def pick_threshold(scan: list[dict], min_recall: float | None) -> float:
    """The highest scanned threshold whose validation event recall is at least ``min_recall`` (issue 11: keep
    v1's completeness, gain precision); without a reference, the best validation F1 (ties to the higher)."""
    ok = [r["threshold"] for r in scan if min_recall is not None and r["recall"] >= min_recall]
    if ok:
        return float(max(ok))
    best = max(scan, key=lambda r: (round(r["f1"], 3) if np.isfinite(r["f1"]) else -1.0, r["threshold"]))
    return float(best["threshold"])


def finalize(out: Path, shared: Path, seed: int, models_dir: Path = Path(__file__).resolve().parents[1] / "models") -> float:
    """Scan thresholds on the validation stars (:func:`flarelight.trainer.recipe.choose_threshold`), pick one
    with :func:`pick_threshold` against :data:`REFERENCE_MODEL`'s validation recall, write it into every member
    (their sliding forms follow) and into training.json."""
    _, scan = choose_threshold(out, shared, seed)
    ref = reference_recall(models_dir)
    threshold = pick_threshold(scan, ref)
    write_threshold(out, threshold, scan,
                    threshold_rule=(f"highest threshold whose validation event recall >= {REFERENCE_MODEL}'s at its "
                                    f"own threshold ({ref}); F1 if no reference"))
    log.info("threshold %.2f chosen on the validation stars (reference recall %s)", threshold, ref)
    return threshold


def main(argv: list[str] | None = None) -> None:
    """Build the training set, train the members, write ONNX + sliding graphs, split.json, training.json."""
    ap = recipe_parser(__doc__.split("\n")[0], name=MODEL_NAME, n_models=2, epochs=12, patience=3)
    ap.add_argument("--hard-per-lc", type=int, default=HARD_PER_LC)
    ap.add_argument("--visible-labels", action="store_true",
                    help="label injected flares only where they exceed the noise (not flarelight-v2's recipe: see "
                         "build_training_set)")
    ap.add_argument("--cache", type=Path, help="save/load the training set here (.npz)")
    a = ap.parse_args(argv)
    run_recipe(a, argv, module="flarelight.trainer.recipe_v2", build=_build, seed_base=2000, finalize=finalize, cnn=CNN)


def _build(a: argparse.Namespace) -> tuple[TrainingSet, dict]:
    """The training set and its record: loaded from --cache where it is there, else built (and saved there)."""
    from .trainingset import load_training_set

    if a.cache and a.cache.exists() and (a.cache.with_suffix(".json")).exists():
        return load_training_set(a.cache), json.loads(a.cache.with_suffix(".json").read_text())
    ts, record = build_training_set(a.shared, seed=a.seed, n_copies=a.n_copies, hard_per_lc=a.hard_per_lc,
                                    visible_labels=a.visible_labels)
    if a.cache:
        ts.save(a.cache)
        write_json(a.cache.with_suffix(".json"), record)
    return ts, record


if __name__ == "__main__":
    main()
