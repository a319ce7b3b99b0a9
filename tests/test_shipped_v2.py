"""flarelight-v2, the shipped default: its contract, cost, card and training record, sliding == per-window on a real
sector, and (slow) held-out labelled and flare-free stars with the matching rule of ../shared/eval/flare_eval.py."""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from conftest import SHARED, held_out_scores
from flarelight.models import MODELS_DIR, model_card
from flarelight.runtime import FlareModel

V1 = MODELS_DIR / "flarelight-v1"


@pytest.fixture(scope="module")
def model():
    return FlareModel.named("flarelight-v1")


# ----------------------------------------------------------------------------- flarelight-v2, the default
V2 = MODELS_DIR / "flarelight-v2"


@pytest.fixture(scope="module")
def v2():
    return FlareModel.named("flarelight-v2")


def test_v2_is_the_default_and_v1_stays_selectable(v2, model):
    from flarelight.models import DEFAULT_MODEL, shipped_models

    assert DEFAULT_MODEL == "flarelight-v2" and {"flarelight-v1", "flarelight-v2"} <= set(shipped_models())
    assert FlareModel.default().paths == v2.paths != model.paths
    assert model.model_id.startswith("flarelight-v1") and v2.model_id == f"flarelight-v2 ({v2.n_models} members)"


def test_v2_contract(v2):
    from flarelight.runtime.quality import resolve_bitmask

    pre = v2.preprocessing
    assert (pre.window, pre.offset, pre.edge_mode, pre.normalisation) == (200, 100, "pad", "baseline+noise")
    assert pre.quality_bitmask == resolve_bitmask("default") & ~512 and pre.per_cadence
    assert v2.engine == "sliding" and all(m.sliding is not None for m in v2.members)
    assert [m.metadata.model_id for m in v2.members] == [f"flarelight-v2/s{m.metadata.seed}" for m in v2.members]
    assert [p.name for p in v2.paths] == [f"flarelight-v2_s{m.metadata.seed:04d}.onnx" for m in v2.members]
    assert 0.5 <= v2.threshold < 1.0 and len({m.metadata.threshold for m in v2.members}) == 1
    for m in v2.members:
        assert m.metadata.metrics["onnx_max_abs_diff"] <= 1e-5
        assert m.sliding.info["check"] and m.sliding.info["member_sha256"]


def test_v2_costs_at_most_250k_multiply_adds_per_cadence(v2):
    macs = sum(m.sliding.flops_per_start for m in v2.members) / 2
    assert 0 < macs <= 250_000
    assert f"{macs:,.0f} multiply-adds per cadence" in model_card("flarelight-v2")


def test_v2_card_split_and_training_record(v2):
    card = model_card("flarelight-v2")
    for path in v2.paths:
        assert path.name in card and hashlib.sha256(path.read_bytes()).hexdigest() in card
        assert hashlib.sha256(path.with_name(path.stem + ".sliding.onnx").read_bytes()).hexdigest() in card
    split = json.loads((V2 / "split.json").read_text())
    assert split == json.loads((V1 / "split.json").read_text())  # the same held-out stars as v1
    assert not (set(split["train"]) & set(split["test"])) and not (set(split["val"]) & set(split["test"]))
    rec = json.loads((V2 / "training.json").read_text())
    assert all(re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) for f in rec["files"] + rec["catalogs"])
    for f in rec["files"][:3] + rec["files"][-2:]:  # spot-check the recorded hashes against ../shared
        assert hashlib.sha256((SHARED / f["file"]).read_bytes()).hexdigest() == f["sha256"]
    assert rec["threshold"] == v2.threshold and rec["hard_negatives"]["n_windows"] > 0


def test_v2_sliding_equals_per_window_on_a_real_sector(v2):
    """The sliding graphs against the per-window members on windows of a real sector (bit-512 cadences kept)."""
    from flarelight.runtime.preprocess import make_windows

    sc = v2.score(SHARED / "data" / "tess" / "tess2018206045859-s0001-0000000031740375-0120-s_lc.fits",
                  per_model=True)
    prep = sc.prepared
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(prep.centres.size, 600, replace=False))
    pick = np.unique(np.r_[pick, np.arange(5), np.arange(prep.centres.size - 5, prep.centres.size)])  # edges too
    per_window = v2.score_windows(make_windows(prep, prep.centres[pick]))
    sliding = sc.members[:, prep.kept[prep.centres[pick]]]
    assert per_window.shape == sliding.shape and np.ptp(per_window) > 0.5
    assert np.max(np.abs(per_window - sliding)) <= 2e-4


@pytest.mark.slow
def test_v2_recovers_labelled_flares_on_held_out_stars(v2, flare_eval):
    pooled = held_out_scores(v2, flare_eval, "partial")
    assert pooled["n_true"] >= 20
    assert pooled["recall"] >= 0.8, pooled  # bench_models: 0.90
    assert pooled["precision"] >= 0.45, pooled  # bench_models: 0.58 (v1 0.53)


@pytest.mark.slow
def test_v2_few_false_positives_on_held_out_flare_free_stars(v2, flare_eval):
    pooled = held_out_scores(v2, flare_eval, "negative")
    assert pooled["exposure_days"] > 50
    assert pooled["fp_per_day"] <= 0.05, pooled
