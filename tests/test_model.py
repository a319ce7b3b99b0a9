"""FlareModel: the whole flow against a plain-Python reference, thread safety, bad model files."""
from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest

from onnx_models import linear_model, linear_reference
from flarelight.runtime import (FlareModel, ModelFileError, NonPositiveMedianError, Preprocessing, TooShortError,
                                from_arrays)
from flarelight.runtime.metadata import ModelMetadata

W = 50  # a small window keeps the references fast; the logic is the same as for 200
PRE = Preprocessing(window=W, offset=W // 2, gap_tolerance=3.5)


def reference_predict(time, flux, quality, pre: Preprocessing, seed=0):
    """The flow written plainly: keep good cadences, divide by their median, split at long steps,
    score every cadence whose whole window lies inside its segment, NaN everywhere else."""
    n = len(time)
    bits = pre.quality_bitmask
    keep = [i for i in range(n) if np.isfinite(time[i]) and np.isfinite(flux[i])
            and (quality is None or (int(quality[i]) & bits) == 0)]
    t = np.array([time[i] for i in keep])
    f = (np.array([flux[i] for i in keep]) / np.median([flux[i] for i in keep])).astype(np.float32)
    steps = np.diff(t)
    limit = pre.gap_tolerance * np.median(steps)
    seg = [0]
    for s in steps:
        seg.append(seg[-1] + (1 if s > limit else 0))
    d = np.array([f[k + 1] - f[k] for k in range(len(f) - 1) if seg[k + 1] == seg[k]], np.float64)
    noise = 1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2)
    out = np.full(n, np.nan)
    for k in range(len(keep)):
        lo, hi = k - pre.offset, k - pre.offset + pre.window
        if pre.edge_mode == "pad":
            idx = range(lo, hi)
            real = np.array([0 <= i < len(keep) and seg[i] == seg[k] for i in idx])
            x = np.array([f[i] if r else 1.0 for i, r in zip(idx, real)], np.float64)
        elif lo >= 0 and hi <= len(keep) and seg[lo] == seg[k] == seg[hi - 1]:
            real = np.ones(pre.window, bool)
            x = f[lo:hi].astype(np.float64)
        else:
            continue
        if pre.normalisation == "median+window_noise":
            x = np.where(real, np.arcsinh((x - np.median(x[real])) / noise), 0.0)
        win = x.reshape(1, pre.window, 1) if pre.n_channels == 1 else np.stack([x, real], -1)[None]
        out[keep[k]] = linear_reference(win.astype(np.float32), seed)[0]
    return out


@pytest.fixture
def model_path(tmp_path):
    return linear_model(tmp_path / "lin.onnx", PRE, seed=0)


def synthetic(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    cad = 2.0 / 1440
    time = 1000 + np.arange(n) * cad
    flux = 5000 * (1 + rng.normal(0, 1e-3, n))
    quality = np.zeros(n, np.int32)
    return time, flux, quality


@pytest.mark.parametrize("case", ["clean", "nan_start_mid_end", "gaps", "quality", "short_segments", "gap_last"])
def test_predict_matches_reference(model_path, case):
    time, flux, quality = synthetic()
    if case == "nan_start_mid_end":
        flux[[0, 1, 700, 701, 702, 1499]] = np.nan
        flux[400] = np.inf
    elif case == "gaps":
        for start, missing in [(200, 1), (500, 2), (800, 3), (1000, W - 1), (1200, W)]:
            time[start:] += missing * 2.0 / 1440
    elif case == "quality":
        quality[[10, 300, 301, 900]] = [32, 128, 1, 4096]
    elif case == "short_segments":
        for start in (100, 130, 160, 900):
            time[start:] += 1.0
    elif case == "gap_last":
        time[-1] += 5.0
    m = FlareModel(model_path)
    got = m.predict(time, flux, quality=quality)
    ref = reference_predict(time, flux, quality, PRE)
    assert got.shape == time.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6, equal_nan=True)
    assert np.isfinite(got).sum() > 0


@pytest.mark.parametrize("edge_mode", ["valid", "pad"])
def test_window_noise_normalisation_matches_reference(tmp_path, edge_mode):
    pre = PRE.replace(normalisation="median+window_noise", edge_mode=edge_mode)
    m = FlareModel(linear_model(tmp_path / "wn.onnx", pre, seed=3))
    time, flux, quality = synthetic(900, seed=4)
    flux *= 1 + 0.02 * np.sin(time * 7)          # spots: the window median must follow the baseline
    flux[300:305] *= 1.01                        # a flare
    time[600:] += 0.3                            # a gap
    flux[[0, 450]] = np.nan
    got = m.predict(time, flux, quality=quality)
    ref = reference_predict(time, flux, quality, pre, seed=3)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5, equal_nan=True)


def test_nan_is_masked_not_propagated(model_path):
    """A NaN cadence gets NaN; its neighbours are scored exactly as if the cadence were absent."""
    time, flux, _ = synthetic()
    m = FlareModel(model_path)
    holed = flux.copy()
    holed[600] = np.nan
    p_hole = m.predict(time, holed)
    p_drop = m.predict(np.delete(time, 600), np.delete(holed, 600))
    assert np.isnan(p_hole[600])
    np.testing.assert_array_equal(np.delete(p_hole, 600), p_drop)
    assert np.isfinite(p_hole[599]) and np.isfinite(p_hole[601])


def test_per_model_and_ensemble_mean(tmp_path):
    paths = [linear_model(tmp_path / f"m{s}.onnx", PRE, seed=s, model_id="lin") for s in range(3)]
    time, flux, _ = synthetic()
    m = FlareModel(paths)
    mean, per = m.predict(time, flux, per_model=True)
    assert per.shape == (3, time.size) and m.n_models == 3
    for s in range(3):
        np.testing.assert_allclose(per[s], reference_predict(time, flux, None, PRE, seed=s), atol=2e-6, equal_nan=True)
    np.testing.assert_allclose(mean, per.mean(axis=0), atol=1e-7, equal_nan=True)
    assert FlareModel(tmp_path).n_models == 3  # a folder loads every .onnx in it


def test_input_variants_give_identical_results(model_path):
    time, flux, _ = synthetic()
    m = FlareModel(model_path)
    base = m.predict(time, flux)
    np.testing.assert_array_equal(m.predict(time.astype(">f8"), flux.astype(">f4").astype(">f8")),
                                  m.predict(time, flux.astype(np.float32).astype(float)))
    np.testing.assert_array_equal(m.predict(from_arrays(time, flux)), base)
    np.testing.assert_array_equal(m.predict(list(time), list(flux)), base)


def test_pad_mode_scores_every_kept_cadence(tmp_path):
    pre = PRE.replace(edge_mode="pad")
    m = FlareModel(linear_model(tmp_path / "pad.onnx", pre))
    time, flux, _ = synthetic(400)
    time[250:] += 1.0
    flux[10] = np.nan
    p = m.predict(time, flux)
    assert np.isnan(p[10]) and np.isfinite(np.delete(p, 10)).all()


def test_thread_safety_and_independence(model_path):
    m = FlareModel(model_path, batch_size=64)
    inputs = [synthetic(1200, seed=s) for s in range(6)]
    expected = [m.predict(t, f) for t, f, _ in inputs]
    results = [None] * len(inputs)

    def work(k):
        for _ in range(3):
            results[k] = m.predict(inputs[k][0], inputs[k][1])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for exp, got in zip(expected, results):
        np.testing.assert_array_equal(exp, got)
    other = FlareModel(model_path)
    assert other.members[0].session is not m.members[0].session


def test_too_short_and_nonpositive_median(model_path):
    m = FlareModel(model_path)
    time, flux, _ = synthetic(W - 1)
    with pytest.raises(TooShortError, match=str(W)):
        m.predict(time, flux)
    time, flux, _ = synthetic(W + 10)
    flux[W // 3:] = np.nan  # too few finite cadences left
    with pytest.raises(TooShortError):
        m.predict(time, flux)
    for value in (0.0, -100.0):
        time, flux, _ = synthetic()
        with pytest.raises(NonPositiveMedianError, match="median"):
            m.predict(time, flux * 0 + value)


# ----------------------------------------------------------------------------- bad model files
def test_bad_model_files(tmp_path):
    with pytest.raises(ModelFileError, match="no such model"):
        FlareModel(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelFileError, match="not a loadable ONNX"):
        FlareModel(junk)
    with pytest.raises(ModelFileError, match="without flarelight metadata"):
        FlareModel(linear_model(tmp_path / "nometa.onnx", PRE, metadata=""))
    with pytest.raises(ModelFileError, match="not valid JSON"):
        FlareModel(linear_model(tmp_path / "badjson.onnx", PRE, metadata="{oops"))
    newer = json.loads(ModelMetadata(preprocessing=PRE).to_json())
    newer["format_version"] = 99
    with pytest.raises(ModelFileError, match="format_version"):
        FlareModel(linear_model(tmp_path / "newer.onnx", PRE, metadata=json.dumps(newer)))
    liar = json.loads(ModelMetadata(preprocessing=PRE).to_json())
    liar["preprocessing"]["window"] = 200
    with pytest.raises(ModelFileError, match="does not match its metadata"):
        FlareModel(linear_model(tmp_path / "liar.onnx", PRE, metadata=json.dumps(liar)))
    unknown = json.loads(ModelMetadata(preprocessing=PRE).to_json())
    unknown["preprocessing"]["gap_rule"] = "magic"
    with pytest.raises(ModelFileError, match="gap_rule"):
        FlareModel(linear_model(tmp_path / "unknown.onnx", PRE, metadata=json.dumps(unknown)))
    a = linear_model(tmp_path / "a.onnx", PRE)
    b = linear_model(tmp_path / "b.onnx", PRE.replace(gap_tolerance=10.0))
    with pytest.raises(ModelFileError, match="disagree"):
        FlareModel([a, b])
    with pytest.raises(ModelFileError, match="no .onnx"):
        FlareModel(tmp_path / "emptydir" if (tmp_path / "emptydir").mkdir() is None else None)


def test_score_windows_validates_shape(model_path):
    m = FlareModel(model_path)
    with pytest.raises(ValueError, match="expected shape"):
        m.score_windows(np.ones((3, W + 1, 1)))
    x = np.ones((4, W), np.float64)
    np.testing.assert_allclose(m.score_windows(x)[0], 0.5, atol=1e-6)


# ----------------------------------------------------------------------------- score once, names, engines
def test_score_holds_the_prepared_lightcurve_and_probabilities(tmp_path):
    paths = [linear_model(tmp_path / f"m{s}.onnx", PRE, seed=s, model_id=f"lin-v0/s{s}") for s in range(2)]
    m = FlareModel(paths)
    time, flux, quality = synthetic()
    quality[[5, 6]] = 128
    flux[[40]] = np.nan
    scored = m.score(time, flux, quality=quality, per_model=True)
    prep = scored.prepared
    assert prep.pre == m.preprocessing
    np.testing.assert_array_equal(prep.kept, np.setdiff1d(np.arange(time.size), [5, 6, 40]))
    np.testing.assert_array_equal(scored.prob, m.predict(time, flux, quality=quality))
    assert scored.members.shape == (2, time.size)
    np.testing.assert_allclose(scored.prob, scored.members.mean(axis=0), atol=1e-7, equal_nan=True)
    assert np.isfinite(scored.prob[prep.kept[prep.centres]]).all()
    assert scored.model_id == "lin-v0 (2 members)" == m.model_id
    assert scored.threshold == m.threshold
    assert m.score(time, flux).members is None


def test_model_ids_name_the_model_not_the_first_member(tmp_path):
    one = FlareModel(linear_model(tmp_path / "a.onnx", PRE, model_id="lin-v3/s7"))
    assert one.model_id == "lin-v3/s7" and "lin-v3/s7" in repr(one)
    nameless = FlareModel(linear_model(tmp_path / "b.onnx", PRE, model_id=""))
    assert nameless.model_id == "b"
    assert one.metadata[0].model_name == "lin-v3"


def test_metadata_is_frozen_and_replaced():
    meta = ModelMetadata(preprocessing=PRE, model_id="x/s1")
    with pytest.raises(AttributeError):
        meta.threshold = 0.7
    new = meta.replace(threshold=0.7)
    assert new.threshold == 0.7 and meta.threshold == 0.5
    assert ModelMetadata.from_json(new.to_json()) == new


def test_engine_choice(model_path):
    assert FlareModel(model_path).engine == "windows"          # no sliding graph: auto falls back
    assert FlareModel(model_path, engine="windows").engine == "windows"
    with pytest.raises(ModelFileError, match="sliding"):
        FlareModel(model_path, engine="sliding")
    with pytest.raises(ValueError, match="engine"):
        FlareModel(model_path, engine="fast")


def test_predict_takes_reader_options(tmp_path, model_path):
    """predict/score accept quality_bitmask and flux_column as find_flares and read_lightcurve do."""
    from conftest import TESS

    path = TESS / "tess2019085135100-s0010-0000000093000166-0140-s_lc.fits"
    pre = Preprocessing(window=W, offset=W // 2, quality_bitmask=0)
    m = FlareModel(linear_model(tmp_path / "q0.onnx", pre))
    from flarelight.runtime import read_lightcurve

    for bitmask, column in (("none", "sap_flux"), ("hard", "pdcsap_flux")):
        lc = read_lightcurve(path, quality_bitmask=bitmask, flux_column=column)
        np.testing.assert_array_equal(m.predict(path, quality_bitmask=bitmask, flux_column=column), m.predict(lc))
    assert not np.array_equal(m.predict(path, flux_column="sap_flux"), m.predict(path), equal_nan=True)


def test_shipped_models_by_name():
    from flarelight.models import DEFAULT_MODEL, card_summary, shipped_models

    assert DEFAULT_MODEL in shipped_models()
    named = FlareModel.named(DEFAULT_MODEL)
    assert named.paths == FlareModel.default().paths and len(named.paths) >= 1
    assert named.model_id.startswith(DEFAULT_MODEL)
    assert len(card_summary(DEFAULT_MODEL)) > 20
    with pytest.raises(ModelFileError, match="no shipped model named 'nope'"):
        FlareModel.named("nope")


def test_a_lightcurve_read_with_the_default_mask_is_scored_with_the_models_own(tmp_path):
    """read_lightcurve(path) drops ImpulsiveOutlier (512) cadences; a model that keeps them (flarelight-v2's rule)
    scores such a light curve exactly as it scores the path, 512 cadences included; a light curve read with another
    bitmask is used as it is. with_quality_bitmask against a plain loop."""
    from conftest import TESS
    from flarelight.runtime import read_lightcurve
    from flarelight.runtime.quality import resolve_bitmask

    path = TESS / "tess2018206045859-s0001-0000000441420236-0120-s_lc.fits"  # AU Mic: many 512 flags
    keep512 = resolve_bitmask("default") & ~512
    m = FlareModel(linear_model(tmp_path / "k512.onnx", Preprocessing(window=W, offset=W // 2,
                                                                         quality_bitmask=keep512)))
    lc = read_lightcurve(path)
    flagged = (lc.quality & 512 != 0) & np.isfinite(lc.flux) & np.isfinite(lc.time) & (lc.quality & keep512 == 0)
    assert flagged.sum() >= 5 and lc.bad[flagged].all()
    from_path, from_lc = m.score(path), m.score(lc)
    np.testing.assert_array_equal(from_lc.prob, from_path.prob)
    assert np.isfinite(from_lc.prob[flagged]).mean() > 0.5 and from_lc.lc.good[flagged].all()
    assert lc.bad[flagged].all()  # the caller's light curve is not changed
    hard = read_lightcurve(path, quality_bitmask="hard")
    assert np.isnan(m.score(hard).prob[flagged]).all()  # an explicit other bitmask is respected
    by_hand = lc.bad.copy()  # a light curve whose mask the caller changed is scored as the caller left it
    by_hand[np.flatnonzero(flagged)[:3]] = False
    by_hand[np.flatnonzero(lc.good)[:40]] = True
    edited = dataclasses.replace(lc, bad=by_hand)
    assert m.adopt_default_mask(edited) is edited
    assert np.isnan(m.score(edited).prob[np.flatnonzero(lc.good)[:40]]).all()
    redone = edited.with_quality_bitmask(keep512)  # ... and keeps its hand-made mask when re-masked
    assert redone.bad[np.flatnonzero(lc.good)[:40]].all()
    redone = lc.with_quality_bitmask(keep512)
    ref = np.array([not (np.isfinite(t) and np.isfinite(f)) or bool(q & keep512)
                    for t, f, q in zip(lc.time, lc.flux, lc.quality)])
    np.testing.assert_array_equal(redone.bad, ref)
    assert redone.meta["quality_bitmask"] == keep512
