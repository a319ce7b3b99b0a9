"""flarelight-v2's recipe on tiny data: impostors do what they claim, the normalisation is per cadence, the
sliding form equals the per-window form under it, bit-512 cadences are kept, hard negatives split by star."""
from __future__ import annotations

import numpy as np
import pytest

from flarelight.runtime import FlareModel
from flarelight.runtime.io import from_arrays
from flarelight.runtime.metadata import Preprocessing
from flarelight.runtime.preprocess import make_windows, prepare, segment
from flarelight.runtime.quality import resolve_bitmask
from flarelight.runtime.simulate import simulate_lightcurve
from flarelight.trainer import impostors, recipe_v2
from naive import reference_running_median
from sliding_models import tiny_net, write_member

PRE = recipe_v2.PREPROCESSING


def _time(n_days: float = 6.0, gap: tuple[float, float] = (3.0, 3.3)) -> np.ndarray:
    t = 2000.0 + np.arange(int(n_days * 720)) / 720.0
    return t[~((t - 2000.0 >= gap[0]) & (t - 2000.0 < gap[1]))]


# ----------------------------------------------------------------------------- impostors
def test_eclipsing_binary_is_periodic_with_its_depths():
    t = _time()
    imp = impostors.eclipsing_binary(t, np.random.default_rng(1), period=(0.2, 0.5))
    p, d1 = imp.params["period"], imp.params["depth1"]
    assert imp.factor.min() == pytest.approx(1.0 - d1, abs=0.03 + d1 * 0.05)
    shifted = np.interp(t + p, t, imp.factor)
    inside = (t + p < t[-1]) & (np.abs(np.diff(t, append=t[-1])) < 0.01)
    assert np.allclose(shifted[inside][:1000], imp.factor[inside][:1000], atol=0.02 * d1 + 1e-3)
    assert imp.events.size >= 2 * int((t[-1] - t[0]) / p) - 2  # primary and secondary egress every orbit
    assert not imp.quality.any()


def test_reflection_binary_hump_peaks_near_half_phase_with_a_secondary_eclipse():
    t = _time()
    imp = impostors.reflection_binary(t, np.random.default_rng(2))
    p = imp.params["period"]
    deepest = t[np.argmin(imp.factor)]
    phase = ((t - deepest) / p) % 1.0
    hump = imp.factor[(phase > 0.25) & (phase < 0.75)]
    assert hump.max() > 1.0 + 0.5 * imp.params["hump"]  # the reflection hump brightens the star
    at_half = imp.factor[np.abs(phase - 0.5) < 0.01]
    assert at_half.mean() < hump.max()  # the secondary eclipse sits on top of the hump
    assert imp.factor.min() == pytest.approx(1.0 - imp.params["depth1"], abs=0.05)


def test_cosmic_rays_are_lone_one_cadence_spikes_half_flagged_512():
    t = _time()
    imp = impostors.cosmic_rays(t, np.random.default_rng(3), noise=1e-3)
    spikes = np.flatnonzero(imp.factor > 1.0)
    assert spikes.size == imp.params["n"] >= 10
    assert np.sum(np.diff(spikes) == 1) <= 1  # lone cadences (two random ones may touch, rarely)
    assert np.all(imp.factor[spikes] - 1.0 >= 4e-3 - 1e-12)
    flagged = np.flatnonzero(imp.quality)
    assert set(flagged) <= set(spikes) and np.all(imp.quality[flagged] == 512)
    assert 0.1 < flagged.size / spikes.size < 0.9


@pytest.mark.parametrize("maker,bit", [(impostors.momentum_dumps, 32), (impostors.attitude_tweaks, 1)])
def test_steps_change_the_level_at_flagged_cadences(maker, bit):
    t = _time(gap=(100.0, 100.1))
    imp = maker(t, np.random.default_rng(4))
    assert imp.events.size >= 1
    for t0 in imp.events:
        j = int(np.searchsorted(t, t0))
        if 2 < j < t.size - 2:
            assert imp.factor[j] != pytest.approx(imp.factor[j - 2], abs=1e-6)  # a step at the event
            assert imp.quality[j] & bit


def test_pdc_ramps_start_at_segment_starts_and_decay():
    t = _time()
    imp = impostors.pdc_ramp(t, np.random.default_rng(5))
    starts = imp.events
    assert starts[0] == t[0] and np.any(np.isclose(starts, t[t - 2000.0 >= 3.3][0]))
    dev = np.abs(imp.factor - 1.0)
    j = int(np.searchsorted(t, starts[0]))
    assert dev[j] > 0 and dev[j] >= dev[j + 30] >= dev[j + 300]


def test_pulsators_and_rotators_vary_and_add_no_flags():
    t = _time()
    for maker in (impostors.delta_scuti, impostors.rr_lyrae, impostors.fast_rotator):
        imp = maker(t, np.random.default_rng(6))
        assert np.ptp(imp.factor) > 1e-4 and not imp.quality.any() and np.all(imp.factor > 0)


def test_rr_lyrae_rises_faster_than_it_declines():
    t = _time(gap=(100.0, 100.1))
    imp = impostors.rr_lyrae(t, np.random.default_rng(7))
    d = np.diff(imp.factor)
    assert d.max() > 2.0 * -d.min()


def test_apply_multiplies_and_ors_quality():
    lc, _ = simulate_lightcurve(n_days=4.0, seed=1, n_flares=0)
    imp = impostors.cosmic_rays(lc.time, np.random.default_rng(8), noise=1e-3)
    new = impostors.apply(lc, imp)
    ok = np.isfinite(lc.flux)
    assert np.allclose(new.flux[ok], lc.flux[ok] * imp.factor[ok])
    assert np.array_equal(new.quality, lc.quality | imp.quality) and new.meta["impostor"] == "cosmic_rays"
    with pytest.raises(ValueError, match="unknown"):
        impostors.simulate("nova", lc.time, np.random.default_rng(0))


# ----------------------------------------------------------------------------- normalisation
def test_baseline_noise_matches_a_plain_reference():
    lc, _ = simulate_lightcurve(n_days=3.0, seed=2, n_flares=3)
    prep = prepare(lc, PRE)
    f = (lc.flux[prep.kept] / np.median(lc.flux[prep.kept])).astype(np.float32).astype(np.float64)
    seg, _ = segment(lc.time[prep.kept], PRE)
    base = reference_running_median(f, seg, PRE.baseline_half_width)
    ref = np.arcsinh((f - base) / prep.noise)
    assert np.allclose(prep.flux, ref, atol=2e-5)
    assert abs(np.median(prep.flux)) < 0.2 and 0.5 < np.std(prep.flux[np.abs(prep.flux) < 3]) < 2.0


def test_a_cadence_has_the_same_input_in_every_window():
    lc, _ = simulate_lightcurve(n_days=3.0, seed=3, n_flares=4)
    prep = prepare(lc, PRE)
    w = make_windows(prep, prep.centres)
    off = PRE.offset
    k = np.arange(PRE.window)
    pos = prep.centres[:, None] - off + k[None, :]
    real = w[:, :, 1] > 0.5
    assert real.sum() > 0.9 * real.size * 0.9
    assert np.array_equal(w[:, :, 0][real], prep.flux[pos[real]])  # identical in every window holding it
    assert np.all(w[:, :, 0][~real] == PRE.pad_value) and PRE.pad_value == 0.0


def test_sliding_form_equals_per_window_under_baseline_noise(tmp_path):
    pre = Preprocessing(window=48, offset=24, edge_mode="pad", normalisation="baseline+noise", baseline_half_width=10)
    member = write_member(tmp_path, tiny_net(48, 2, seed=1), pre)
    slide = FlareModel(member, engine="sliding")
    windows = FlareModel(member, engine="windows")
    assert slide.engine == "sliding"
    lc, _ = simulate_lightcurve(n_days=2.0, seed=4, n_flares=3)
    a, b = slide.predict(lc), windows.predict(lc)
    ok = np.isfinite(b)
    assert np.array_equal(ok, np.isfinite(a)) and ok.sum() > 1000
    assert np.max(np.abs(a[ok] - b[ok])) < 2e-5 and np.ptp(b[ok]) > 0.01


def test_per_window_normalisation_still_has_no_sliding_form(tmp_path):
    pre = Preprocessing(window=48, offset=24, edge_mode="pad", normalisation="median+window_noise")
    member = write_member(tmp_path, tiny_net(48, 2, seed=1), pre, sliding=False)
    assert FlareModel(member).engine == "windows" and not pre.per_cadence and PRE.per_cadence


# ----------------------------------------------------------------------------- quality
def test_v2_keeps_impulsive_outliers_and_drops_the_rest_of_the_default_mask(tmp_path):
    assert PRE.quality_bitmask == resolve_bitmask("default") & ~512
    lc, _ = simulate_lightcurve(n_days=2.0, seed=5, n_flares=0)
    q = np.array(lc.quality, copy=True)
    q[500], q[700] = 512, 32
    raw = dict(time=lc.time, flux=np.nan_to_num(lc.flux, nan=1e4), flux_err=lc.flux_err, quality=q)
    pre = PRE.replace(window=48, offset=24)
    v2 = FlareModel(write_member(tmp_path / "v2", tiny_net(48, 2, seed=2), pre))
    v1 = FlareModel(write_member(tmp_path / "v1", tiny_net(48, 2, seed=2), pre.replace(
        quality_bitmask=resolve_bitmask("default"))))
    s2 = v2.score(raw["time"], raw["flux"], raw["flux_err"], raw["quality"])
    s1 = v1.score(raw["time"], raw["flux"], raw["flux_err"], raw["quality"])
    assert 500 in s2.prepared.kept and 700 not in s2.prepared.kept and np.isfinite(s2.prob[500])
    assert 500 not in s1.prepared.kept and np.isnan(s1.prob[500])


# ----------------------------------------------------------------------------- hard negatives, split, seeds
def _tiny_sources():
    lcs, stars = [], [101, 102, 103]
    for i, tic in enumerate(stars):
        lc, _ = simulate_lightcurve(n_days=2.0, seed=10 + i, n_flares=0)
        lc.meta["tic"] = tic
        lcs.append(lc)
    return lcs, stars, {101: "train", 102: "val", 103: "test"}


def test_hard_negatives_skip_test_stars_are_negative_and_seeded():
    lcs, stars, split_of = _tiny_sources()
    real = [np.empty((0, 2))] * 3
    ts, rec = recipe_v2.hard_negative_set(lcs, real, stars, split_of, PRE, seed=0, per_lc=40)
    assert set(ts.star.tolist()) == {101, 102} and np.all(ts.y == 0)
    assert all(split_of[int(s)] == sp for s, sp in zip(ts.star, ts.split))
    assert len(ts) == 80 and rec["n_windows"] == 80 and sum(rec["kinds"].values()) == 4
    again, _ = recipe_v2.hard_negative_set(lcs, real, stars, split_of, PRE, seed=0, per_lc=40)
    other, _ = recipe_v2.hard_negative_set(lcs, real, stars, split_of, PRE, seed=1, per_lc=40)
    assert np.array_equal(ts.x, again.x) and not np.array_equal(ts.time, other.time)


def test_hard_negative_centres_favour_sharp_features_and_avoid_flares():
    lc, _ = simulate_lightcurve(n_days=3.0, seed=6, n_flares=0)
    prep = prepare(lc, PRE)
    weight = np.zeros(prep.time.size)
    weight[1000] = 500.0  # one sharp feature
    avoid = np.zeros(prep.time.size, bool)
    avoid[3000:3010] = True
    cen = recipe_v2.hard_negative_centres(prep, weight, avoid, 200, np.random.default_rng(0))
    assert np.sum(np.abs(cen - 1000) <= 10) >= 15  # 21 candidates near it, most of them drawn
    assert not np.any((cen >= 2995) & (cen < 3015))


def test_split_is_by_star_with_the_fixed_test_stars():
    tics = [29779873, 32150630, 441420236, 410214986] + list(range(1, 40))
    a = recipe_v2.assign_split(tics, 0)
    assert a[29779873] == a[32150630] == "test" and a[441420236] == "val" and a[410214986] == "train"
    assert a == recipe_v2.assign_split(tics, 0) and set(a.values()) == {"train", "val", "test"}


def test_concat_keeps_sources_apart():
    lcs, stars, split_of = _tiny_sources()
    real = [np.empty((0, 2))] * 3
    a, _ = recipe_v2.hard_negative_set(lcs, real, stars, split_of, PRE, seed=0, per_lc=10)
    both = recipe_v2.concat(a, a, "twice")
    assert len(both) == 2 * len(a) and set(both.source[len(a):]).isdisjoint(set(a.source))


@pytest.mark.train
def test_architecture_is_sliding_ready_within_the_cost_budget():
    pytest.importorskip("keras")
    from flarelight.trainer.cnn import build_cnn
    from flarelight.trainer.sliding import network_from_keras, sliding_graph

    net = network_from_keras(build_cnn(PRE.window, PRE.n_channels, seed=0, **recipe_v2.CNN))
    _, flops = sliding_graph(net)
    assert all(c.padding == "valid" for c in net.features if hasattr(c, "padding"))
    assert flops / 2 * 5 <= 250_000  # even five members stay within issue 11's budget (multiply-adds/cadence)


def test_every_impostor_is_finite_where_time_is_finite():
    """Real light curves carry NaN times (the rotator once normalised by a NaN maximum)."""
    t = _time()
    t[100:130] = np.nan
    for kind in impostors.SIMULATORS:
        imp = impostors.simulate(kind, t, np.random.default_rng(9))
        assert np.all(np.isfinite(imp.factor[np.isfinite(t)])), kind


def test_running_median_fast_path_equals_the_general_one():
    """v2 normalises every sector with kernels.running_median; its sorted-buffer path (contiguous segments)
    must give exactly the medians of the general one (any labels), NaN, ties and short segments included."""
    from flarelight.runtime import kernels

    rng = np.random.default_rng(0)
    for _ in range(40):
        n = int(rng.integers(1, 300))
        x = rng.normal(size=n)
        x[rng.uniform(size=n) < 0.1] = np.nan
        x[rng.uniform(size=n) < 0.1] = 0.5  # ties
        seg = np.cumsum(rng.uniform(size=n) < 0.03)
        h = int(rng.integers(0, 25))
        assert np.array_equal(kernels.running_median(x, seg, h), kernels._running_median(x, seg, h), equal_nan=True)
        assert np.array_equal(kernels.running_median(x, seg, h), reference_running_median(x, seg, h), equal_nan=True)
