"""The flarelight-v1 recipe's own pieces: the split by star, thinning, impostors, the metadata rewrites."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.train

from conftest import ROOT, SHARED  # noqa: E402
from onnx_models import linear_model  # noqa: E402
from flarelight.runtime import FlareModel, Preprocessing  # noqa: E402
from flarelight.runtime.simulate import simulate_lightcurve  # noqa: E402
from flarelight.trainer import recipe  # noqa: E402
from flarelight.trainer.trainingset import from_arrays  # noqa: E402


def test_sources_and_split_keep_every_star_in_one_split():
    sources = recipe.find_sources(SHARED)
    tics = [s.tic for s in sources]
    assert {s.kind for s in sources} == {"spoc", "ucd", "npy"}
    assert not set(tics) & recipe.EXCLUDED
    assert sum(s.kind == "ucd" for s in sources) == 90 and sum(s.kind == "npy" for s in sources) == 5
    split = recipe.assign_split(tics, seed=0)
    assert set(split) == set(tics) and set(split.values()) == {"train", "val", "test"}
    for name, fixed in recipe.SPOC_SPLIT.items():
        assert all(split[t] == name for t in fixed)
    assert split == recipe.assign_split(tics, seed=0)            # seeded
    assert split != recipe.assign_split(tics, seed=1)            # and the seed matters
    # every light curve of a star (e.g. the two sectors of TIC 383390264) lands in the same split
    by_star = {}
    for s in sources:
        by_star.setdefault(s.tic, set()).add(split[s.tic])
    assert all(len(v) == 1 for v in by_star.values())


def test_recipe_split_reproduces_the_shipped_split():
    """The one by-star split (trainer.split) deals the recipe's stars exactly as flarelight-v1 was trained."""
    shipped = json.loads((ROOT / "models" / "flarelight-v1" / "split.json").read_text())
    split = recipe.assign_split([s.tic for s in recipe.find_sources(SHARED)], seed=0)
    for name in ("train", "val", "test"):
        assert sorted(t for t, v in split.items() if v == name) == sorted(shipped[name])
    assert sum(len(v) for v in shipped.values()) == len(split) > 60


def test_thin_positive_runs_caps_each_flare_and_rebalances():
    rng = np.random.default_rng(0)
    cad = 2 / 1440
    # source 0: one 100-cadence flare and one 5-cadence flare; source 1: one 40-cadence flare
    t_pos = np.r_[np.arange(100) * cad, 10 + np.arange(5) * cad, 20 + np.arange(40) * cad]
    src_pos = np.r_[np.zeros(105, int), np.ones(40, int)]
    n_neg = 2000
    time = np.r_[t_pos, rng.uniform(30, 40, n_neg)]
    source = np.r_[src_pos, rng.integers(0, 2, n_neg)]
    y = np.r_[np.ones(t_pos.size), np.zeros(n_neg)]
    ts = from_arrays(np.zeros((y.size, 4, 1), np.float32), y, star=source, split=np.full(y.size, "train"), time=time)
    ts.source[:] = source
    out = recipe.thin_positive_runs(ts, max_per_run=16, negatives_per_positive=3.0, seed=0)
    assert out.n_positive == 16 + 5 + 16                        # long flares capped, short one kept whole
    assert len(out) - out.n_positive == 3 * out.n_positive
    assert np.all(np.isin(out.time[out.y == 1], t_pos))
    # a run is split by the gap rule (3.5 cadences), not by any missing cadence: two missing cadences inside
    # the 100-cadence flare keep it one run, four split it in two
    for hole, n_runs in (((40, 41), 1), ((40, 41, 42, 43), 2)):
        keep = ~np.isin(np.arange(y.size), hole)
        ts2 = from_arrays(np.zeros((keep.sum(), 4, 1), np.float32), y[keep], star=source[keep],
                          split=np.full(keep.sum(), "train"), time=time[keep])
        ts2.source[:] = source[keep]
        out2 = recipe.thin_positive_runs(ts2, max_per_run=16, negatives_per_positive=3.0, seed=0)
        assert out2.n_positive == 16 * n_runs + 5 + 16


def test_impostors_change_flux_but_not_time_or_mask():
    lc, _ = simulate_lightcurve(seed=1, n_flares=0)
    rng = np.random.default_rng(3)
    for fn in (recipe.add_hard_negatives, recipe.add_periodic_variability):
        new, params = fn(lc, rng)
        assert new.time is lc.time and np.array_equal(new.bad, lc.bad)
        assert not np.allclose(new.flux[lc.good], lc.flux[lc.good])
        assert new.meta["hard_negatives"] and params


def test_set_threshold_rewrites_metadata_only(tmp_path):
    from flarelight.trainer.export import graph_sha256

    path = linear_model(tmp_path / "m.onnx", Preprocessing(window=20, offset=10))
    before, graph = FlareModel(path), graph_sha256(path)
    recipe.set_threshold(path, 0.85)
    after = FlareModel(path)
    assert before.threshold == 0.5 and after.threshold == pytest.approx(0.85)
    assert after.preprocessing == before.preprocessing and graph_sha256(path) == graph
    x = np.random.default_rng(0).normal(1, 0.01, (5, 20, 1)).astype(np.float32)
    np.testing.assert_array_equal(after.score_windows(x), before.score_windows(x))
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # atomic: no temporary file left


def test_restamp_model_names_members_and_keeps_weights(tmp_path):
    from flarelight.trainer.export import graph_sha256
    from flarelight.trainer.restamp import restamp_model

    pre = Preprocessing(window=20, offset=10, gap_tolerance=4.0)
    paths = [linear_model(tmp_path / f"m_s{s}.onnx", pre, seed=s, model_id=f"model_s{s}") for s in (1000, 1001)]
    (tmp_path / "training.json").write_text(json.dumps({"seed": 0}))
    graphs = [graph_sha256(p) for p in paths]
    x = np.random.default_rng(1).normal(1, 0.01, (7, 20, 1)).astype(np.float32)
    scores = FlareModel(paths).score_windows(x)
    rec = restamp_model(tmp_path, "mymodel", gap_tolerance=3.5, note="test")
    model = FlareModel(paths)
    assert [m.model_id for m in model.metadata] == ["mymodel/s1000", "mymodel/s1001"]
    assert model.model_id == "mymodel (2 members)" and model.preprocessing == pre.replace(gap_tolerance=3.5)
    assert [graph_sha256(p) for p in paths] == graphs
    np.testing.assert_array_equal(model.score_windows(x), scores)
    doc = json.loads((tmp_path / "training.json").read_text())
    assert doc["seed"] == 0 and doc["restamps"] == [rec] and rec["members"][0]["gap_tolerance"] == [4.0, 3.5]


@pytest.mark.slow
def test_recipe_end_to_end_on_three_stars(tmp_path, monkeypatch):
    """`make train-default` in miniature: three SPOC stars (one per split), one member, one epoch."""
    keep = {410214986: "train", 441420236: "val", 93000166: "test"}
    real = recipe.find_sources
    monkeypatch.setattr(recipe, "find_sources",
                        lambda shared: [s for s in real(shared) if s.tic in keep and "s0095" not in s.path.name])
    out = tmp_path / "out"
    recipe.main(["--shared", str(SHARED), "--out", str(out), "--work", str(tmp_path / "work"), "--n-models", "1",
                 "--epochs", "1", "--n-copies", "1", "--name", "smoke"])
    assert sorted(p.name for p in out.glob("*.onnx")) == ["smoke_s1000.onnx"]
    record = json.loads((out / "training.json").read_text())
    split = json.loads((out / "split.json").read_text())
    assert {t: k for k, ts in split.items() for t in ts} == keep
    model = FlareModel(out)
    assert model.model_id == "smoke/s1000" and model.preprocessing == recipe.PREPROCESSING
    assert record["threshold"] in recipe.THRESHOLDS and model.threshold == pytest.approx(record["threshold"])
    assert len(record["threshold_scan"]) == len(recipe.THRESHOLDS) and record["threshold_scan"][0]["n_true"] > 0
    assert record["model_name"] == "smoke" and record["training_set"]["n_positive"] > 0


def test_visible_part_trims_catalogue_intervals_to_the_visible_flare():
    """A catalogued interval [tpeak - 2 FWHM, tpeak + 5 FWHM] is trimmed to where the flux exceeds the level beside
    it by sigma: the template's own visible interval (inject.visible_interval) within a cadence; an interval on
    flat flux is kept whole."""
    from flarelight.runtime import from_arrays
    from flarelight.runtime.simulate import flare_profile
    from flarelight.trainer.inject import visible_interval
    from flarelight.trainer.recipe import visible_part

    cad = 2.0 / 1440.0
    time = 1000.0 + np.arange(4000) * cad
    rng = np.random.default_rng(4)
    flares = [(1000.0 + 1000.3 * cad, 6 / 1440, 0.02), (1000.0 + 2500.6 * cad, 40 / 1440, 0.005)]
    rel = sum(flare_profile(time, tp, w, a, exposure=cad) for tp, w, a in flares)
    lc = from_arrays(time, 1e4 * (1 + rel + rng.normal(0, 1e-5, time.size)), None, meta={"tic": 1})
    sigma = 1e-3
    iv = np.array([(tp - 2 * w, tp + 5 * w) for tp, w, _ in flares] + [(1000.0 + 3500 * cad, 1000.0 + 3520 * cad)])
    got = visible_part(lc, iv, sigma)
    assert got.shape == iv.shape
    for (tp, w, a), (lo, hi), (a0, b0) in zip(flares, got, iv):
        vlo, vhi = visible_interval(tp, w, a, sigma, a0, b0)
        assert abs(lo - vlo) <= 1.5 * cad and abs(hi - vhi) <= 1.5 * cad
        assert a0 <= lo < tp < hi <= b0 + cad
    assert got[1, 1] - got[1, 0] < 0.6 * (iv[1, 1] - iv[1, 0])  # the faint, long flare: much narrower
    np.testing.assert_array_equal(got[2], iv[2])  # nothing visible: kept whole
