"""Sliding execution: one call per segment gives what every window on its own gives.

Runtime-side tests build sliding-ready models with onnx.helper (tests/sliding_models.py, no TensorFlow) and
compare ``engine="sliding"`` with ``engine="windows"`` and with a float64 numpy reference on random light
curves with gaps of 1-300 cadences, segments shorter than a window, NaNs at both ends, both edge modes, batch
and chunk boundaries. Tests marked ``train`` build sliding graphs with the trainer (``same`` padding,
stella's converted models) and check them on real sectors.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from conftest import HAVE_TF, PARITY_FILES
from sliding_models import reference, tiny_net, write_member, write_sliding
from flarelight.runtime import FlareModel, ModelFileError, Preprocessing, from_arrays
from flarelight.runtime.preprocess import make_windows, prepare
from flarelight.runtime.sliding import CHUNK, load_sliding, sliding_path

W, OFFSET = 48, 17  # small and off-centre: an offset mistake cannot hide
TOL = 5e-5  # float32 sums of flux near 1 in another order differ by up to ~2e-5 here; a one-cadence shift by ~0.1


def lightcurve(seed: int, n: int = 3000):
    """Random flux with gaps of 1-300 missing cadences (some leave segments shorter than a window), flares,
    NaN runs at both ends and a few NaNs inside."""
    rng = np.random.default_rng(seed)
    keep = np.ones(n, bool)
    pos = int(rng.integers(50, 150))
    gaps = []
    while pos < n - 100:
        g = int(rng.choice([1, 2, 3, 5, 20, 300])) if len(gaps) % 3 else int(rng.integers(1, 301))
        keep[pos:pos + g] = False
        gaps.append(g)
        pos += g + int(rng.choice([5, 30, W - 1, W, W + 1, 200, 400]))
    time = 1000.0 + np.arange(n) * (120.0 / 86400.0)
    time = time[keep]
    flux = 1e4 * (1.0 + rng.normal(0, 5e-2, time.size))
    for c in rng.integers(0, time.size, 8):
        flux[c:c + 30] *= 1.0 + rng.uniform(0.01, 0.3) * np.exp(-np.arange(min(30, time.size - c)) / 5.0)
    flux[: int(rng.integers(1, 30))] = np.nan
    flux[-int(rng.integers(1, 30)):] = np.nan
    flux[rng.integers(0, time.size, 5)] = np.nan
    return from_arrays(time, flux)


def pre_for(edge_mode: str) -> Preprocessing:
    return Preprocessing(window=W, offset=OFFSET, edge_mode=edge_mode)


@pytest.fixture(params=["valid", "pad"])
def ensemble(request, tmp_path):
    """Two members with different weights, with sliding graphs, in ``edge_mode`` valid or pad."""
    pre = pre_for(request.param)
    nets = [tiny_net(W, pre.n_channels, seed=s) for s in (1, 2)]
    for s, net in zip((1, 2), nets):
        write_member(tmp_path, net, pre, seed=s)
    return tmp_path, nets, pre


def test_random_lightcurves_have_the_cases_we_test():
    lc = lightcurve(0)
    prep = prepare(lc, pre_for("valid"))
    lengths = np.bincount(prep.seg)
    assert (lengths < W).any() and (lengths >= 2 * W).any()  # short segments and long ones
    assert not np.isfinite(lc.flux[0]) and not np.isfinite(lc.flux[-1])
    steps = np.round(np.diff(lc.time) / (120.0 / 86400.0)).astype(int) - 1
    assert {1, 2}.issubset(set(steps)) and steps.max() >= 100  # bridged holes and long gaps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sliding_equals_windows_and_float64(ensemble, seed):
    folder, nets, pre = ensemble
    lc = lightcurve(seed)
    slide = FlareModel(folder, engine="sliding")
    win = FlareModel(folder, engine="windows", batch_size=37)
    assert slide.engine == "sliding" and win.engine == "windows"
    a = slide.score(lc, per_model=True)
    b = win.score(lc, per_model=True)
    scored = np.isfinite(b.prob)
    assert scored.sum() > 500
    np.testing.assert_array_equal(np.isfinite(a.prob), scored)
    np.testing.assert_allclose(a.members[:, scored], b.members[:, scored], rtol=0, atol=TOL)
    np.testing.assert_allclose(a.prob[scored], b.prob[scored], rtol=0, atol=TOL)
    prep = a.prepared
    windows = make_windows(prep, prep.centres)
    for k, net in enumerate(nets):
        ref = reference(net, windows)
        assert ref.std() > 0.05  # the probabilities really vary
        np.testing.assert_allclose(a.members[k, prep.kept[prep.centres]], ref, rtol=0, atol=TOL)


def test_pad_mode_segments_hold_exactly_the_padded_windows(tmp_path):
    """Each segment padded once holds, window by window, what the per-window engine builds for each cadence."""
    pre = pre_for("pad")
    write_member(tmp_path, tiny_net(W, 2, seed=1), pre, seed=1)
    model = FlareModel(tmp_path, engine="sliding")
    prep = prepare(lightcurve(3), pre)
    sm = model.members[0].sliding
    got = []
    for x, first, n in sm.segments(prep):
        assert x.shape == (2, n + W - 1)
        got.append(np.lib.stride_tricks.sliding_window_view(x, W, axis=1).transpose(1, 2, 0))
    np.testing.assert_array_equal(np.concatenate(got), make_windows(prep, prep.centres))


@pytest.mark.parametrize("chunk", [1, 7, W - 1, W, W + 1, 500])
def test_chunk_boundaries(ensemble, chunk):
    folder, _, pre = ensemble
    lc = lightcurve(4)
    ref = FlareModel(folder, engine="windows", batch_size=256).score(lc, per_model=True).members
    model = FlareModel(folder, engine="sliding")
    for m in model.members:
        m.sliding.chunk = chunk
    got = model.score(lc, per_model=True).members
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)


def test_long_segment_runs_in_bounded_overlapping_chunks(tmp_path):
    """Each call holds at most chunk + window - 1 cadences; consecutive calls overlap by window - 1."""
    pre = pre_for("valid")
    write_member(tmp_path, tiny_net(W, 1, seed=5), pre, seed=5)
    model = FlareModel(tmp_path, engine="sliding")
    sm = model.members[0].sliding
    sm.chunk = 100
    calls = []
    real_run = sm.session.run

    class Recorder:
        def run(self, outputs, feeds):
            x = next(iter(feeds.values()))
            calls.append(x[0, 0].copy())
            return real_run(outputs, feeds)

    sm.session = Recorder()
    n = 1000
    flux = 1.0 + np.random.default_rng(0).normal(0, 1e-3, n)
    prob = model.predict(1000.0 + np.arange(n) / 720.0, flux)
    assert np.isfinite(prob).sum() == n - W + 1
    assert [c.size for c in calls] == [100 + W - 1] * 9 + [n - 900]
    for c0, c1 in zip(calls, calls[1:]):
        np.testing.assert_array_equal(c0[-(W - 1):], c1[: W - 1])


def test_batch_boundaries_and_threads(ensemble):
    folder, _, _ = ensemble
    lc = lightcurve(5)
    ref = FlareModel(folder, engine="sliding", threads=1).score(lc, per_model=True).members
    for batch in (1, 19, 1024):
        got = FlareModel(folder, engine="windows", batch_size=batch, threads=2).score(lc, per_model=True).members
        np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
    np.testing.assert_array_equal(FlareModel(folder, engine="sliding", threads=2).score(lc, per_model=True).members, ref)


def test_light_curve_of_exactly_one_window(ensemble):
    folder, _, pre = ensemble
    t = 1000.0 + np.arange(W) / 720.0
    flux = 1.0 + np.random.default_rng(1).normal(0, 1e-2, W)
    a = FlareModel(folder, engine="sliding").predict(t, flux)
    b = FlareModel(folder, engine="windows").predict(t, flux)
    assert np.isfinite(b).sum() == (1 if pre.edge_mode == "valid" else W)
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL)


# ----------------------------------------------------------------------------- choosing the engine
def test_auto_uses_sliding_only_when_every_member_can(tmp_path):
    pre = pre_for("valid")
    write_member(tmp_path, tiny_net(W, 1, seed=1), pre, seed=1)
    write_member(tmp_path, tiny_net(W, 1, seed=2), pre, seed=2, sliding=False)
    model = FlareModel(tmp_path)
    assert model.engine == "windows"
    reasons = [m.no_sliding_reason for m in model.members]
    assert reasons[0] == "" and "tiny-s2.onnx" in reasons[1] and "missing" in reasons[1]
    with pytest.raises(ModelFileError, match="tiny-s2.onnx.*missing"):
        FlareModel(tmp_path, engine="sliding")
    write_sliding(tmp_path / "tiny-s2.onnx", tiny_net(W, 1, seed=2), pre)
    assert FlareModel(tmp_path).engine == "sliding"
    with pytest.raises(ValueError, match="engine"):
        FlareModel(tmp_path, engine="fast")


def test_folder_glob_skips_sliding_files(tmp_path):
    write_member(tmp_path, tiny_net(W, 1, seed=1), pre_for("valid"), seed=1)
    model = FlareModel(tmp_path)
    assert model.n_models == 1 and model.paths[0].name == "tiny-s1.onnx"
    assert model.members[0].sliding.path == sliding_path(model.paths[0])


def test_stale_sliding_graph_is_not_used(tmp_path):
    """A member re-written after its sliding graph (other weights) must not run the old sliding graph."""
    pre = pre_for("valid")
    path = write_member(tmp_path, tiny_net(W, 1, seed=1), pre, seed=1)
    old = sliding_path(path).read_bytes()
    write_member(tmp_path, tiny_net(W, 1, seed=7), pre, seed=1, sliding=False)  # same name, new weights
    sliding_path(path).write_bytes(old)
    model = FlareModel(tmp_path)
    assert model.engine == "windows" and "stale" in model.members[0].no_sliding_reason
    with pytest.raises(ModelFileError, match="stale"):
        FlareModel(tmp_path, engine="sliding")


@pytest.mark.parametrize("record, match", [
    ({"window": W + 2}, "built for"),
    ({"offset": OFFSET + 1}, "built for"),
    ({"format_version": 99}, "format 99"),
])
def test_inconsistent_sliding_record(tmp_path, record, match):
    pre = pre_for("valid")
    net = tiny_net(W, 1, seed=1)
    path = write_member(tmp_path, net, pre, seed=1, sliding=False)
    write_sliding(path, net, pre, record=record)
    sliding, reason = load_sliding(path, FlareModel(tmp_path).members[0].metadata, 1)
    assert sliding is None and reason.startswith(path.name) and match in reason


def test_unreadable_sliding_file(tmp_path):
    path = write_member(tmp_path, tiny_net(W, 1, seed=1), pre_for("valid"), seed=1)
    sliding_path(path).write_bytes(b"not an onnx file")
    model = FlareModel(tmp_path)
    assert model.engine == "windows" and "unusable" in model.members[0].no_sliding_reason


def test_per_window_normalisation_has_no_sliding_form(tmp_path):
    pre = Preprocessing(window=W, offset=OFFSET, normalisation="median+window_noise")
    write_member(tmp_path, tiny_net(W, 1, seed=1), pre, seed=1)  # even with a sliding file beside it
    model = FlareModel(tmp_path)
    assert model.engine == "windows" and "normalisation" in model.members[0].no_sliding_reason
    with pytest.raises(ModelFileError, match="normalisation"):
        FlareModel(tmp_path, engine="sliding")


def test_chunk_default_is_sane():
    assert 1024 <= CHUNK <= 16384


# ----------------------------------------------------------------------------- graphs built by the trainer
@pytest.mark.train
@pytest.mark.skipif(not HAVE_TF, reason="needs the [train] extra")
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("edge_mode", ["valid", "pad"])
@pytest.mark.parametrize("centre", [True, False])
def test_trainer_sliding_graph_through_the_runtime(tmp_path, padding, edge_mode, centre):
    from flarelight.runtime.metadata import ModelMetadata
    from flarelight.trainer.sliding import example_network, reference_probabilities, write_network_member

    pre = pre_for(edge_mode)
    nets = [example_network(W, pre.n_channels, filters=(4, 8), kernels=(7, 4), dense=8, padding=padding, seed=s)
            for s in (1, 2)]
    for s, net in enumerate(nets):
        write_network_member(net, tmp_path / f"t-s{s}.onnx", ModelMetadata(preprocessing=pre, model_id=f"t/s{s}"),
                             centre=centre)
    lc = lightcurve(6)
    a = FlareModel(tmp_path, engine="sliding").score(lc, per_model=True)
    b = FlareModel(tmp_path, engine="windows").score(lc, per_model=True)
    np.testing.assert_array_equal(np.isfinite(a.prob), np.isfinite(b.prob))
    prep = a.prepared
    windows = make_windows(prep, prep.centres)
    for k, net in enumerate(nets):
        ref = reference_probabilities(net, windows)
        assert ref.std() > 0.01
        got = a.members[k, prep.kept[prep.centres]]
        np.testing.assert_allclose(got, b.members[k, prep.kept[prep.centres]], rtol=0, atol=TOL)
        np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)


@pytest.mark.train
@pytest.mark.skipif(not HAVE_TF, reason="needs the [train] extra")
@pytest.mark.parametrize("seed", range(12))
def test_trainer_sliding_graph_random_architectures(seed):
    """1-3 conv blocks, kernels 1-7 (even ones too), pools of 2 or 3, same/valid/mixed padding, 1 or 2 channels,
    odd windows: the sliding graph equals float64 and the per-window graph at every window start."""
    from flarelight.trainer.sliding import (Conv, Dense, Network, Pool, SlidingUnsupportedError, _feature_shape,
                                            check_sliding, reference_probabilities, reference_segment, sliding_graph,
                                            window_graph)

    rng = np.random.default_rng(seed)
    while True:
        window, ch = int(rng.integers(24, 90)), int(rng.integers(1, 3))
        feats, c = [], ch
        for _ in range(int(rng.integers(1, 4))):
            k, f = int(rng.integers(1, 8)), int(rng.integers(2, 7))
            pad = ["same", "valid"][seed % 2] if seed < 8 else ["same", "valid"][int(rng.integers(0, 2))]
            feats += [Conv(rng.normal(0, 0.5, (k, c, f)).astype(np.float32), rng.normal(0, .1, f).astype(np.float32),
                           pad, ["relu", "linear"][int(rng.integers(0, 2))]), Pool(int(rng.integers(2, 4)))]
            c = f
        n, c = _feature_shape(window, ch, feats)
        if n < 1:
            continue
        try:
            net = Network(window, ch, tuple(feats), (
                Dense(rng.normal(0, .3, (n * c, 5)).astype(np.float32), np.zeros(5, np.float32)),
                Dense(rng.normal(0, .5, (5, 1)).astype(np.float32), np.zeros(1, np.float32), "sigmoid")))
        except SlidingUnsupportedError:
            continue
        break
    segments = [rng.normal(1, 0.3, (ch, window + int(rng.integers(0, 60)))).astype(np.float32) for _ in range(3)]
    for centre in (1.0, 0.0):
        check = check_sliding(net, sliding_graph(net, centre=centre)[0], window_graph(net), segments=segments)
        assert check.n_windows >= 3 and check.vs_float64 <= 1e-5 and check.vs_windows <= 1e-5, check
    for seg in segments:  # the float64 segment reference of the benches is the per-window float64 network
        windows = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(seg, window, axis=1).transpose(1, 2, 0))
        np.testing.assert_allclose(reference_segment(net, seg, batch=7), reference_probabilities(net, windows),
                                   rtol=0, atol=1e-12)


@pytest.mark.train
@pytest.mark.skipif(not HAVE_TF, reason="needs the [train] extra")
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_trainer_reference_is_the_plain_reference(padding):
    """The trainer's float64 reference (im2col GEMMs) against the plain per-position loops of the tests."""
    from flarelight.trainer.sliding import Conv, Dense, Network, Pool, reference_probabilities

    net = tiny_net(W, 2, padding=padding, seed=3)
    feats = []
    for w, b in net.convs:
        feats += [Conv(w, b, padding), Pool(2)]
    full = Network(W, 2, tuple(feats), (Dense(*net.dense[0]), Dense(*net.dense[1], activation="sigmoid")))
    x = (1.0 + np.random.default_rng(0).normal(0, 0.05, (40, W, 2))).astype(np.float32)
    got, ref = reference_probabilities(full, x), reference(net, x)
    assert ref.std() > 0.01
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.train
@pytest.mark.skipif(not HAVE_TF, reason="needs the [train] extra")
def test_write_sliding_refuses_above_tolerance(tmp_path):
    from flarelight.runtime.metadata import ModelMetadata
    from flarelight.trainer.sliding import (SlidingMismatchError, SlidingNotWrittenWarning, example_network,
                                            write_network_member, write_sliding as trainer_write)

    net = example_network(W, 1, filters=(4, 8), kernels=(7, 3), dense=8, padding="same", seed=1)
    path = write_network_member(net, tmp_path / "t-s1.onnx", ModelMetadata(preprocessing=pre_for("valid")))
    assert sliding_path(path).exists()
    with pytest.raises(SlidingMismatchError, match="not written"):
        trainer_write(path, net, atol=0.0, strict=True)
    assert not sliding_path(path).exists()  # the old graph went with it: never a stale file beside the member
    with pytest.warns(SlidingNotWrittenWarning, match="differs from its references"):
        out, reason = trainer_write(path, net, atol=0.0)
    assert out is None and "not written" in reason and not sliding_path(path).exists()
    out, reason = trainer_write(path, net)
    assert out == sliding_path(path) and reason == "" and FlareModel(path).engine == "sliding"
    info = json.loads(__import__("onnx").load(str(out)).metadata_props[-1].value)
    assert info["check"]["vs_float64"] <= 1e-4 and info["member_sha256"]


@pytest.mark.train
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TF, reason="needs the [train] extra")
def test_stella_sliding_parity_on_real_sectors(stella_onnx_dir, fl_model, stella_scored, keras_models):
    """stella's 10 converted models: sliding vs per-window at every scored cadence of real sectors, vs float64
    on one, and identical catalogues (bench/bench_sliding.py --study numerics runs every DEV light curve).
    The per-window scores are the session's (conftest ``stella_scored``: the same models on the windows engine)."""
    from flarelight.runtime.find import find_flares
    from flarelight.trainer.sliding import network_from_keras, reference_segment

    slide = FlareModel(stella_onnx_dir)
    assert slide.engine == "sliding" and all(m.sliding is not None for m in slide.members)
    assert fl_model.engine == "windows" and fl_model.paths == slide.paths
    for k, f in enumerate(PARITY_FILES[:2]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a, b = slide.score(f, per_model=True), stella_scored(f)
        assert b.members.shape == a.members.shape and b.model_id == a.model_id
        prep = a.prepared
        idx = prep.kept[prep.centres]
        assert idx.size > 10000
        np.testing.assert_array_equal(np.isfinite(a.prob), np.isfinite(b.prob))
        assert np.max(np.abs(a.members[:, idx] - b.members[:, idx])) <= 2e-4
        ca, cb = find_flares(a), find_flares(b)
        assert len(ca) == len(cb) and (k > 0 or len(ca) > 5)  # AU Mic flares a lot
        for c in ca.colnames:
            x, y = np.asarray(ca[c]), np.asarray(cb[c])
            if c.startswith("prob_"):
                np.testing.assert_allclose(x, y, rtol=0, atol=2e-4)
            else:
                np.testing.assert_array_equal(x, y)
        if k == 0:  # float64 at every scored cadence of every member
            segments = slide.members[0].sliding.segments(prep)
            assert sum(n for _, _, n in segments) == idx.size
            assert len(keras_models) == 10
            for j, km in enumerate(keras_models):
                net = network_from_keras(km)
                ref = np.concatenate([reference_segment(net, x) for x, _, _ in segments])
                assert np.max(np.abs(a.members[j, idx] - ref)) <= 2e-4


@pytest.mark.train
@pytest.mark.skipif(not HAVE_TF, reason="needs the [train] extra")
def test_restamp_keeps_the_sliding_graph_bound(tmp_path):
    """export.restamp rewrites the member; its sliding graph follows (new hash), and a re-stamp that rules
    sliding out (per-window normalisation, another offset) makes the runtime fall back with the reason."""
    from flarelight.runtime.metadata import ModelMetadata
    from flarelight.trainer.export import restamp
    from flarelight.trainer.sliding import example_network, write_network_member

    net = example_network(W, 1, filters=(4, 8), kernels=(7, 3), dense=8, padding="same", seed=1)
    path = write_network_member(net, tmp_path / "t-s1.onnx", ModelMetadata(preprocessing=pre_for("valid")))
    before = sliding_path(path).read_bytes()
    meta = restamp(path, threshold=0.7)
    model = FlareModel(path)
    assert model.engine == "sliding" and model.threshold == pytest.approx(0.7)
    assert sliding_path(path).read_bytes() != before
    restamp(path, preprocessing=meta.preprocessing.replace(offset=OFFSET + 3))
    model = FlareModel(path)
    assert model.engine == "windows" and "built for" in model.members[0].no_sliding_reason
    restamp(path, preprocessing=meta.preprocessing.replace(normalisation="median+window_noise"))
    assert "normalisation" in FlareModel(path).members[0].no_sliding_reason
