"""flarelight against a faithful transcription of stella 0.3.0's prediction, without stella installed.

``stella_reference`` below transcribes ``ConvNN.predict`` and its nested ``identify_gaps`` from
stella/neural_network.py (stella 0.3.0, github.com/benjaminpope/stella) line for line, bugs included,
and runs it with Keras on stella's .keras models. flarelight must equal it wherever stella scores a
real window inside one segment, and must *not* copy stella's bugs:

(a) stella scores every cadence, feeding an all-zero window where it has no real one;
    flarelight leaves those NaN.
(b) stella excludes ``b-100 .. b+99`` around a gap after diff index ``b``, but the window of
    cadence ``b+100`` is ``lc[b : b+200]``, reaching one cadence back across the gap;
    flarelight leaves it NaN.
(c) with a gap within 100 cadences of the start, stella's excluded range has negative indices
    (``np.delete`` wraps them to the end); flarelight scores exactly the cadences with a full window.
(d) with a gap within 100 cadences of the end, stella's excluded range runs past the end and
    ``np.delete`` raises IndexError; flarelight scores the light curve.

stella also drops cadences ``b-100``, ``b-99`` and ``len-100``, whose windows are complete and inside
one segment; flarelight scores them ("extra" below) and they are checked against Keras directly.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import HAVE_TF, PARITY_FILES, STELLA_KERAS, shared_path

pytestmark = [pytest.mark.slow, pytest.mark.train,
              pytest.mark.skipif(not HAVE_TF, reason="needs TensorFlow/Keras (the trainer extra)")]

TOL = 1e-5
# Keras predictions come from the session's ``keras_predict`` (conftest): stella's real windows of AU Mic are
# byte-identical to the windows tests/test_parity_keras.py predicts, so they are predicted once per session.
# stella uses Keras' default batch (32), keras_predict 1024: the batch size does not change the maths.


# ----------------------------------------------------------------------------- the transcription
def identify_gaps(t: np.ndarray, cad_pad: int) -> np.ndarray:
    """stella 0.3.0 ``ConvNN.predict.identify_gaps`` (stella/neural_network.py), verbatim logic."""
    all_inds = np.arange(0, len(t), 1, dtype=int)
    bad_inds = np.arange(0, cad_pad, 1, dtype=int)
    bad_inds = np.append(bad_inds, np.arange(len(t) - cad_pad, len(t), 1, dtype=int))
    diff = np.diff(t)
    med, std = np.nanmedian(diff), np.nanstd(diff)
    bad = np.where(np.abs(diff) >= med + 1.5 * std)[0]
    for b in bad:
        bad_inds = np.append(bad_inds, np.arange(b - cad_pad, b + cad_pad, 1, dtype=int))
    bad_inds = np.sort(bad_inds)
    return np.delete(all_inds, bad_inds)


def stella_windows(times, fluxes, errs, cadences: int = 200):
    """stella 0.3.0 ``ConvNN.predict`` for one light curve up to the model call.

    Returns (kept-cadence mask q over the input, normalised kept flux lc, good_inds, reshaped_data).
    """
    cad_pad = cadences // 2
    time = np.array(times, dtype=float)
    lc = np.array(fluxes, dtype=float)
    err = np.array(errs, dtype=float)
    med = np.nanmedian(lc)
    if not np.isfinite(med) or med == 0.0:
        med = 1.0
    lc = lc / med
    q = (~np.isnan(time)) & (~np.isnan(lc))
    if err is not None and err.shape == time.shape:
        q = q & (~np.isnan(err))
    time, lc = time[q], lc[q]
    good_inds = identify_gaps(time, cad_pad)
    reshaped_data = np.zeros((len(lc), cadences))
    for i in good_inds:
        loc0 = int(i - cad_pad)
        loc1 = int(i + cad_pad)
        reshaped_data[i] = lc[loc0:loc1]
    reshaped_data = reshaped_data.reshape(reshaped_data.shape[0], reshaped_data.shape[1], 1)
    return q, lc, good_inds, reshaped_data


def categories(t: np.ndarray, good_inds: np.ndarray, cad_pad: int = 100) -> dict[str, np.ndarray]:
    """Split stella's kept cadences: real window in one segment / real window across a gap /
    zero window though a full in-segment window exists / zero window and no full window."""
    n = len(t)
    diff = np.diff(t)
    gap_after = np.flatnonzero(np.abs(diff) >= np.nanmedian(diff) + 1.5 * np.nanstd(diff))
    full = np.zeros(n, bool)
    full[cad_pad:n - cad_pad + 1] = True  # window [i-100, i+100) inside the light curve
    for b in gap_after:  # the window of i holds diff b when i-100 <= b < i+99
        full[max(b - cad_pad + 2, 0):min(b + cad_pad + 1, n)] = False
    good = np.zeros(n, bool)
    good[good_inds] = True
    return {"real_ok": good & full, "straddle": good & ~full, "extra": ~good & full, "zero": ~good & ~full,
            "gaps": gap_after}


# ----------------------------------------------------------------------------- fixtures
def user_arrays(lc):
    """What a stella user passes: the QUALITY == 0, finite cadences (and their input rows)."""
    keep = (lc.quality == 0) & np.isfinite(lc.time) & np.isfinite(lc.flux) & np.isfinite(lc.flux_err)
    rows = np.flatnonzero(keep)
    return rows, lc.time[rows], lc.flux[rows], lc.flux_err[rows]


@pytest.fixture(scope="module")
def au_mic(stella_scored, keras_predict):
    """AU Mic sector 1 (many flares, 29 stella segments): flarelight's scores, stella's windows and stella's
    scores of them by each of the 10 models (``ref``, shape (10, rows))."""
    from flarelight.runtime import read_lightcurve

    lc = read_lightcurve(shared_path("data", "tess", PARITY_FILES[0].name))
    rows, t, f, e = user_arrays(lc)
    q, lc_norm, good, x = stella_windows(t, f, e)
    assert q.all()
    scored = stella_scored(PARITY_FILES[0])
    assert np.array_equal(scored.lc.flux, lc.flux, equal_nan=True)
    ref = np.stack([keras_predict(k, x) for k in range(len(STELLA_KERAS))])
    return {"lc": lc, "rows": rows, "t": t, "lc_norm": lc_norm, "good": good, "x": x, "mean": scored.prob,
            "per_model": scored.members, "ref": ref, "cat": categories(t, good)}


# ----------------------------------------------------------------------------- tests on a real sector
def test_member_order(fl_model) -> None:
    assert [p.stem for p in fl_model.paths] == [p.stem for p in STELLA_KERAS]


def test_matches_stella_on_real_windows(au_mic) -> None:
    cat, rows = au_mic["cat"], au_mic["rows"]
    ok = cat["real_ok"]
    assert ok.sum() > 10_000
    for k, ref in enumerate(au_mic["ref"]):  # every member
        fl = au_mic["per_model"][k, rows]
        assert np.all(np.isfinite(fl[ok]))
        d = np.abs(fl[ok] - ref[ok])
        assert d.max() <= TOL, f"{STELLA_KERAS[k].stem}: max |flarelight - stella| = {d.max():.3g}"


def test_ensemble_mean_matches_stella(au_mic) -> None:
    assert au_mic["ref"].shape == (10, len(au_mic["rows"]))
    ref = np.nanmean(au_mic["ref"], axis=0)
    ok = au_mic["cat"]["real_ok"]
    d = np.abs(au_mic["mean"][au_mic["rows"]][ok] - ref[ok])
    assert d.max() <= TOL


def test_a_no_score_for_zero_windows(au_mic, keras_predict) -> None:
    """(a) stella's all-zero windows get a real-looking score; flarelight gives NaN there."""
    zero = au_mic["cat"]["zero"]
    assert zero.sum() >= 200  # first and last 100 cadences at least, plus the gaps
    assert np.all(au_mic["x"][zero] == 0.0)
    assert np.all(np.isnan(au_mic["mean"][au_mic["rows"]][zero]))
    z = keras_predict(0, np.zeros((1, 200, 1)))
    assert np.isfinite(z[0])  # stella would report this number for every zero-window cadence
    # rows that are not kept at all (QUALITY != 0, NaN) are NaN too
    other = np.ones(len(au_mic["lc"]), bool)
    other[au_mic["rows"]] = False
    assert other.sum() > 0 and np.all(np.isnan(au_mic["mean"][other]))


def test_b_off_by_one_after_each_gap_is_nan(au_mic) -> None:
    """(b) cadence b+100 after a gap at diff index b: stella scores lc[b:b+200] (straddling); flarelight NaN."""
    t, good, cat = au_mic["t"], au_mic["good"], au_mic["cat"]
    fl = au_mic["mean"][au_mic["rows"]]
    n = len(t)
    checked = 0
    for b in cat["gaps"]:
        i = b + 100
        if np.isin(i, good):
            assert au_mic["x"][i, 0, 0] == au_mic["lc_norm"][b]  # stella's window starts before the gap
            assert np.isnan(fl[i]), f"cadence {i} (gap after {b}) is scored across the gap"
            checked += 1
        # the first cadence whose window lies after the gap is scored, if that segment is long enough
        nxt = cat["gaps"][cat["gaps"] > b]
        end = nxt[0] if nxt.size else n - 1
        if b + 101 + 99 <= end:
            assert np.isfinite(fl[b + 101])
    assert checked >= 3 and checked == cat["straddle"].sum()


def test_extra_cadences_match_keras(au_mic, keras_predict) -> None:
    """Cadences stella needlessly zero-fills (b-100, b-99, len-100) have complete windows; flarelight scores them right."""
    extra = np.flatnonzero(au_mic["cat"]["extra"])
    assert extra.size > 0 and (len(au_mic["t"]) - 100) in extra
    lcn = au_mic["lc_norm"]
    x = np.stack([lcn[i - 100:i + 100] for i in extra])[:, :, None]
    for k in range(len(STELLA_KERAS)):
        fl = au_mic["per_model"][k, au_mic["rows"][extra]]
        assert np.abs(fl - keras_predict(k, x)).max() <= TOL


# ----------------------------------------------------------------------------- synthetic gaps near the ends
def synthetic(n: int, gap_after: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2-min cadence light curve with a 1-day gap after cadence ``gap_after``, noise and a few flares."""
    rng = np.random.default_rng(seed)
    t = 1400.0 + np.arange(n) * (2.0 / 1440.0)
    t[gap_after + 1:] += 1.0
    f = 1000.0 * (1.0 + 1e-3 * rng.standard_normal(n))
    for c in rng.choice(np.arange(n), 4, replace=False):
        f[c:c + 10] += 50.0 * np.exp(-np.arange(min(10, n - c)) / 2.0)
    return t, f, np.full(n, 1.0)


def test_c_gap_near_start(fl_model, keras_predict) -> None:
    """(c) gap within 100 cadences of the start: flarelight NaN exactly where no full window exists."""
    n, g = 1000, 30
    t, f, e = synthetic(n, g)
    q, lcn, good, x = stella_windows(t, f, e)
    # stella's excluded range b-100..b+99 starts at -70: np.delete wraps it to the end
    assert g - 100 < 0 and (g + 100) in good  # ... and cadence 130 straddles the gap
    prob, per_model = fl_model.predict(t, f, e, np.zeros(n, np.int32), per_model=True)
    expected = np.zeros(n, bool)
    expected[g + 1 + 100:n - 100 + 1] = True  # second segment starts at 31: centres 131 .. n-100
    assert np.array_equal(np.isfinite(prob), expected)
    cat = categories(t, good)
    assert cat["straddle"].sum() == 1 and np.isnan(prob[g + 100])
    ref = keras_predict(0, x)
    ok = cat["real_ok"]
    assert ok.sum() > 700 and np.abs(per_model[0][ok] - ref[ok]).max() <= TOL


def test_d_gap_near_end(fl_model) -> None:
    """(d) gap within 100 cadences of the end: stella's np.delete raises IndexError; flarelight scores."""
    n, g = 1000, 950
    t, f, e = synthetic(n, g)
    with pytest.raises(IndexError):
        stella_windows(t, f, e)
    prob = fl_model.predict(t, f, e, np.zeros(n, np.int32))
    expected = np.zeros(n, bool)
    expected[100:g - 99 + 1] = True  # first segment 0..950: centres 100 .. 851
    assert np.array_equal(np.isfinite(prob), expected)
