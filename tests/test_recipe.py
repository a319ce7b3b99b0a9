"""The flarelight-v1 recipe's own pieces: the split by star, thinning, impostors, the threshold rewrite."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED
from onnx_models import linear_model
from flarelight.runtime import FlareModel, Preprocessing
from flarelight.runtime.simulate import simulate_lightcurve
from flarelight.trainer import recipe
from flarelight.trainer.dataset import from_arrays


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


def test_impostors_change_flux_but_not_time_or_mask():
    lc, _ = simulate_lightcurve(seed=1, n_flares=0)
    rng = np.random.default_rng(3)
    for fn in (recipe.add_hard_negatives, recipe.add_periodic_variability):
        new, params = fn(lc, rng)
        assert new.time is lc.time and np.array_equal(new.bad, lc.bad)
        assert not np.allclose(new.flux[lc.good], lc.flux[lc.good])
        assert new.meta["hard_negatives"] and params


def test_set_threshold_rewrites_metadata_only(tmp_path):
    path = linear_model(tmp_path / "m.onnx", Preprocessing(window=20, offset=10))
    before = FlareModel(path)
    recipe.set_threshold(path, 0.85)
    after = FlareModel(path)
    assert before.threshold == 0.5 and after.threshold == pytest.approx(0.85)
    assert after.preprocessing == before.preprocessing
    x = np.random.default_rng(0).normal(1, 0.01, (5, 20, 1)).astype(np.float32)
    np.testing.assert_array_equal(after.score_windows(x), before.score_windows(x))
