"""flarelight.trainer data side: input labels, training sets, the by-star split, injection, metrics.

None of these tests runs TensorFlow, but ``import flarelight.trainer`` needs the [train] extra installed.
"""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.train

from conftest import DATA, TESS, shared_path  # noqa: E402
from flarelight.runtime import FlarelightError, Preprocessing, read_lightcurve  # noqa: E402
from flarelight.runtime.preprocess import prepare, window_batches  # noqa: E402
from flarelight.runtime.scored import Scored  # noqa: E402
from flarelight.runtime.simulate import simulate_lightcurve  # noqa: E402
from flarelight.trainer.evaluate import (average_precision, catalogue_events, confusion_matrix,  # noqa: E402
                                         event_scores, evaluate_lightcurves, pool, precision_recall_curve, prf,
                                         window_metrics)
from flarelight.trainer.inject import InjectionError, inject_flares  # noqa: E402
from flarelight.trainer.labels import CatalogError, CatalogMatchError, FlareCatalog, load_catalog  # noqa: E402
from flarelight.trainer.reading import read_lightcurves  # noqa: E402
from flarelight.trainer.split import assign_stars, deal_counts, split_by_star  # noqa: E402
from flarelight.trainer.stella_format import load_stella_fits, read_stella_npy, write_stella_fits  # noqa: E402
from flarelight.trainer.trainingset import TrainingDataError, TrainingSet, from_arrays  # noqa: E402
from flarelight.trainer.windows import build_dataset  # noqa: E402

CAT = DATA / "catalogs"
AUMIC = "tess2018206045859-s0001-0000000441420236-0120-s_lc.fits"


# ----------------------------------------------------------------------------- catalogues
def test_guenther_catalog_in_btjd_with_flare_eval_intervals():
    cat = load_catalog(shared_path("data", "catalogs", "guenther2020_flare_catalog.csv"))
    assert len(cat) == 8695
    assert 1300 < np.median(cat.tpeak) < 1400  # BTJD of sectors 1-2, not BJD
    # interval = [tpeak - 2 FWHM, tpeak + 5 FWHM]: tpeak sits at 2/7 of the interval
    frac = (cat.tpeak - cat.tstart) / (cat.tstop - cat.tstart)
    assert np.allclose(frac, 2 / 7)
    row = cat.select(2760232)
    assert np.isclose(row.tpeak[0], 2458357.381046 - 2457000)


@pytest.mark.parametrize("name, fmt, n", [
    ("ilin2024_PAPER_flare_table.csv", "ilin2024", 829),
    ("ilin2024_planet_host_flares_vetted.csv", "ilin2024_vetted", 829),
    ("tess_ucd_flares_20200227_vetted.csv", "ucd", 313),
    ("ilin2022_aumic_final_flare_table_s1_s27.csv", "ilin2022_aumic", 189),
])
def test_other_catalog_formats(name, fmt, n):
    cat = load_catalog(shared_path("data", "catalogs", name))
    assert fmt in cat.source
    if n is not None:
        assert len(cat) == n
    assert len(cat) > 0 and np.all(cat.tstop >= cat.tstart) and np.all(cat.tstart < 5000)


def test_empty_catalog_gives_clear_error(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(CatalogError, match="empty catalogue"):
        load_catalog(p)
    p.write_text("tic,tstart,tstop\n")
    with pytest.raises(CatalogError, match="no rows"):
        load_catalog(p)


def test_wrong_columns_named_in_error(tmp_path):
    p = tmp_path / "wrong.csv"
    p.write_text("star,begin,end\n1,1500.0,1500.1\n")
    with pytest.raises(CatalogError, match=r"columns found: \['star', 'begin', 'end'\]") as exc:
        load_catalog(p)
    assert isinstance(exc.value, FlarelightError) and "wrong.csv" in str(exc.value)


def test_bjd_times_rejected(tmp_path):
    p = tmp_path / "bjd.csv"
    p.write_text("tic,tstart,tstop\n1,2458500.0,2458500.1\n")
    with pytest.raises(CatalogError, match="BJD"):
        load_catalog(p)


def test_catalog_without_match_for_star():
    cat = load_catalog(shared_path("data", "catalogs", "guenther2020_flare_catalog.csv"))
    lc = read_lightcurve(TESS / "tess2019085135100-s0010-0000000093000166-0140-s_lc.fits")  # quiet A star, S10
    assert len(cat.for_lightcurve(lc)) == 0  # documented default: empty (negatives only)
    with pytest.raises(CatalogMatchError, match="TIC 93000166"):
        cat.for_lightcurve(lc, require=True)
    with pytest.raises(CatalogMatchError):
        build_dataset([lc], cat, require_match=True)
    with pytest.raises(TrainingDataError, match="no positive window"):
        build_dataset([lc], cat, fractions=None)


# ----------------------------------------------------------------------------- building windows
@pytest.fixture(scope="module")
def aumic():
    lc = read_lightcurve(shared_path("data", "tess", AUMIC))
    cat = load_catalog(CAT / "guenther2020_flare_catalog.csv")
    return lc, cat


def test_windows_are_runtime_windows_and_never_straddle_gaps(aumic):
    lc, cat = aumic
    pre = Preprocessing()
    ts = build_dataset([lc], cat, pre, negatives_per_positive=5, fractions=None, seed=1)
    assert ts.n_positive >= 30 and len(ts) > 4 * ts.n_positive
    prep = prepare(lc, pre)
    pos = np.searchsorted(prep.time, ts.time)
    assert np.array_equal(prep.time[pos], ts.time)
    # every window is a valid centre: the whole window lies inside one segment
    after = pre.window - pre.offset - 1
    assert np.all(pos - pre.offset >= 0) and np.all(pos + after < prep.flux.size)
    assert np.all(prep.seg[pos - pre.offset] == prep.seg[pos]) and np.all(prep.seg[pos + after] == prep.seg[pos])
    # and identical to the runtime's inference window at that cadence
    runtime = {}
    for sl, batch in window_batches(prep, 4096):
        for c, w in zip(prep.centres[sl], batch):
            runtime[int(c)] = w.copy()
    for i in range(0, len(ts), 7):
        assert np.array_equal(ts.x[i], runtime[int(pos[i])])
    # positives are centred on catalogue peaks (the nearest kept cadence: within one cadence)
    sub = cat.for_lightcurve(lc)
    d = np.min(np.abs(ts.time[ts.y == 1][:, None] - sub.tpeak[None, :]), axis=1)
    assert np.all(d <= 2 / 1440)


def test_negatives_keep_away_from_flares(aumic):
    lc, cat = aumic
    ts = build_dataset([lc], cat, negatives_per_positive=None, fractions=None, positives="interval")
    iv = cat.for_lightcurve(lc).intervals()
    neg_t = ts.time[ts.y == 0]
    pos_t = ts.time[ts.y == 1]
    assert len(iv) >= 30 and neg_t.size > 10_000 and pos_t.size >= len(iv)  # neither check below runs on nothing
    inside = ((neg_t[:, None] >= iv[None, :, 0]) & (neg_t[:, None] <= iv[None, :, 1])).any(1)
    assert not inside.any()
    assert ((pos_t[:, None] >= iv[None, :, 0]) & (pos_t[:, None] <= iv[None, :, 1])).any(1).all()
    # and at least negative_margin (3) kept cadences from any flare cadence
    prep = prepare(lc, Preprocessing())
    k = np.searchsorted(prep.time, neg_t)
    flare_k = np.flatnonzero(((prep.time[:, None] >= iv[None, :, 0]) & (prep.time[:, None] <= iv[None, :, 1])).any(1))
    j = np.clip(np.searchsorted(flare_k, k), 1, flare_k.size - 1)
    assert np.min(np.minimum(np.abs(k - flare_k[j - 1]), np.abs(k - flare_k[j]))) > 3


def test_lightcurve_without_gaps_and_pad_mode():
    lc, flares = simulate_lightcurve(n_days=3.0, seed=3, n_flares=4, gap_days=(50, 51), n_holes=0)
    assert np.max(np.diff(lc.time)) < 1.5 * 120 / 86400  # no gap at all
    iv = [[f.tpeak - 2 * f.fwhm, f.tpeak + 5 * f.fwhm] for f in flares]
    ts = build_dataset([lc], [np.array(iv)], fractions=None)
    assert ts.n_positive >= 1
    # pad mode: 2 channels, the model scores cadences near the edges too
    pre = Preprocessing(edge_mode="pad")
    ts2 = build_dataset([lc], [np.array(iv)], pre, fractions=None, negatives_per_positive=20)
    assert ts2.x.shape[1:] == (200, 2) and ts2.n_positive == len(flares)
    assert np.any(ts2.x[:, :, 1] == 0)  # some windows reach past an edge (padded, flagged 0)
    padded = ts2.x[:, :, 1] == 0
    assert np.all(ts2.x[:, :, 0][padded] == 1.0)


def test_pad_mode_samples_near_gaps():
    lc, _ = simulate_lightcurve(n_days=8.0, seed=4, n_flares=0, gap_days=(4.0, 4.5))
    lc.meta["tic"] = 5
    new, tab = inject_flares(lc, 10, seed=0)
    ts = build_dataset([new], [tab], Preprocessing(edge_mode="pad"), fractions=None, near_edge_fraction=0.5)
    neg = ts.y == 0
    near = (ts.x[neg, :, 1] == 0).any(1)
    assert near.mean() >= 0.4  # about half the negatives are within a window of a gap or edge


# ----------------------------------------------------------------------------- split by star
def test_split_by_star_puts_no_star_in_two_splits():
    rng = np.random.default_rng(0)
    stars = rng.integers(0, 40, 5000)
    y = (rng.random(5000) < 0.2).astype(float)
    split = split_by_star(stars, (0.6, 0.2, 0.2), seed=3, y=y)
    for s in np.unique(stars):
        assert np.unique(split[stars == s]).size == 1
    for name in ("train", "val", "test"):
        assert (split == name).any() and y[split == name].sum() > 0
    assert np.array_equal(split, split_by_star(stars, (0.6, 0.2, 0.2), seed=3, y=y))  # seeded
    with pytest.raises(TrainingDataError, match="at least one star per split"):
        split_by_star(np.array([1, 1, 2]), (0.6, 0.2, 0.2))
    with pytest.raises(TrainingDataError, match="no star id"):
        split_by_star(np.array([-1, 1, 2, 3]))


def test_deal_counts_round_train_and_val_and_give_test_the_rest():
    for n in range(3, 120):
        for f in ((0.6, 0.15, 0.25), (0.7, 0.15, 0.15), (0.6, 0.2, 0.2)):
            c = deal_counts(n, f)
            assert c.sum() == n and np.all(c >= 1)
            if n >= 10:  # no one-star top-ups needed: exactly the documented rule
                assert (c[0], c[1]) == (round(f[0] * n), round(f[1] * n))
    assert deal_counts(2, (0.5, 0.0, 0.5)).tolist() == [1, 0, 1]


def test_fixed_stars_keep_their_split_and_the_rest_is_dealt():
    stars = np.arange(100, 160)
    fixed = {100: "test", 101: "test", 102: "val", 103: "train"}
    a = assign_stars(stars, (0.6, 0.15, 0.25), seed=4, fixed=fixed)
    assert set(a) == set(stars.tolist()) and all(a[k] == v for k, v in fixed.items())
    dealt = [a[int(t)] for t in stars if int(t) not in fixed]
    assert [dealt.count(x) for x in ("train", "val", "test")] == deal_counts(56, (0.6, 0.15, 0.25)).tolist()
    # the window-level split is the star-level one, window by window
    ids = np.repeat(stars, 3)
    assert split_by_star(ids, (0.6, 0.15, 0.25), seed=4, fixed=fixed).tolist() == [a[int(t)] for t in ids]
    with pytest.raises(TrainingDataError, match="fixed split names"):
        assign_stars(stars, fixed={100: "holdout"})


def test_build_dataset_split_is_by_star():
    lcs, labels = [], []
    for i in range(6):
        lc, fl = simulate_lightcurve(n_days=3, seed=10 + i, n_flares=3)
        lc.meta["tic"] = 1000 + i
        lcs.append(lc)
        labels.append(np.array([[f.tpeak - 2 * f.fwhm, f.tpeak + 5 * f.fwhm] for f in fl]))
    lcs.append(lcs[0])  # a second light curve of star 1000 must land in the same split
    labels.append(labels[0])
    ts = build_dataset(lcs, labels, seed=2)
    for s in np.unique(ts.star):
        assert np.unique(ts.split[ts.star == s]).size == 1
    assert set(np.unique(ts.split)) == {"train", "val", "test"}


# ----------------------------------------------------------------------------- stella formats, save/load
def test_stella_fits_roundtrip_and_missing_extensions(tmp_path):
    rng = np.random.default_rng(0)
    x = 1 + 0.01 * rng.normal(size=(30, 200)).astype(np.float32)
    ts = from_arrays(x, np.r_[np.ones(10), np.zeros(20)], star=np.arange(30) // 3,
                     split=np.repeat(["train", "val", "test"], 10))
    p = write_stella_fits(ts, tmp_path / "set.fits")
    back = load_stella_fits(p)
    assert np.array_equal(back.x, ts.x) and np.array_equal(back.y, ts.y) and np.array_equal(back.split, ts.split)
    assert np.array_equal(back.star, ts.star)
    bad = tmp_path / "bad.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(x, name="TRAIN_DATA")]).writeto(bad)
    with pytest.raises(TrainingDataError, match=r"missing extensions \['TRAIN_LABELS'.*extensions found: \['PRIMARY', 'TRAIN_DATA'\]"):
        load_stella_fits(bad)
    with pytest.raises(TrainingDataError, match="no such"):
        load_stella_fits(tmp_path / "nope.fits")


def test_npz_roundtrip_with_hash(tmp_path):
    ts = from_arrays(np.ones((4, 200), np.float32), [0, 1, 0, 1], star=[1, 1, 2, 2])
    p = ts.save(tmp_path / "ts.npz")
    back = TrainingSet.load(p)
    assert back.content_hash() == ts.content_hash()
    z = dict(np.load(p))
    z["y"] = np.array([1, 1, 0, 1], np.float32)
    np.savez(tmp_path / "tampered.npz", **z)
    with pytest.raises(TrainingDataError, match="does not match its stored hash"):
        TrainingSet.load(tmp_path / "tampered.npz")
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(TrainingDataError, match="not a flarelight training set"):
        TrainingSet.load(tmp_path / "other.npz")


def test_stella_npy_training_lightcurves_with_guenther():
    files = sorted((TESS / "stella_training_npy").glob("*.npy"))
    assert len(files) == 5
    lc = read_stella_npy(files[0])
    assert lc.meta["tic"] == 2760232 and lc.meta["sector"] == 2
    cat = load_catalog(CAT / "guenther2020_flare_catalog.csv")
    ts = build_dataset(read_lightcurves(files), cat, seed=0)
    assert ts.n_positive >= 50 and set(np.unique(ts.star)) == {2760232, 2761472, 5640393, 5656273, 5676537}


def test_custom_aperture_files_read_with_auto_flux_column():
    f = sorted((TESS / "derived" / "ucd_custom_aperture").glob("*.fits"))[0]
    (lc,) = read_lightcurves([f])
    assert lc.meta["flux_column"] == "flux"


# ----------------------------------------------------------------------------- injection
def test_injected_flares_land_where_labels_say():
    lc, _ = simulate_lightcurve(n_days=5, seed=1, n_flares=0)
    new, tab = inject_flares(lc, 8, seed=7, amplitude=(0.01, 0.1), fwhm_minutes=(4, 30))
    assert len(tab) == 8 and np.all(np.diff(tab["tpeak"]) > 0)
    excess = np.where(lc.good, new.flux - lc.flux, 0.0)
    assert np.all(excess >= 0)
    cad = 120 / 86400
    for r in tab:
        i = int(r["index"])
        assert abs(lc.time[i] - r["tpeak"]) < 1e-9
        win = np.flatnonzero((lc.time >= r["tstart"]) & (lc.time <= r["tstop"]))
        assert win[np.argmax(excess[win])] in (i - 1, i, i + 1)  # exposure averaging may shift by one cadence
        before = lc.time < r["tpeak"] - r["fwhm"] - cad
        other = np.zeros(lc.time.size, bool)  # cadences not touched by any other flare
        for r2 in tab:
            if r2["index"] != r["index"]:
                other |= (lc.time >= r2["tpeak"] - r2["fwhm"] - cad) & (lc.time <= r2["tpeak"] + 40 * r2["fwhm"] + 2 * cad)
        assert np.all(excess[before & ~other] == 0)
        # peak excess ~ amplitude x local median (exposure-averaged peak, so a bit lower)
        assert 0.3 * r["amplitude"] * r["local_median"] < excess[i] <= 1.001 * r["amplitude"] * r["local_median"]
    # labels do not overlap
    assert np.all(tab["tstart"][1:] > tab["tstop"][:-1])
    # positives of a dataset built from the table sit on the injected peaks
    ts = build_dataset([new], [tab], Preprocessing(edge_mode="pad"), fractions=None, star_ids=[7])
    assert ts.n_positive == 8
    assert np.allclose(np.sort(ts.time[ts.y == 1]), np.sort(np.asarray(tab["tpeak"])), atol=1e-9)


def test_visible_labels_are_where_the_flare_exceeds_the_noise():
    """With ``label_sigma`` each label is the part of [tpeak - 2 FWHM, tpeak + 5 FWHM] where amplitude x profile
    exceeds it (a plain scan of the template), never less than the peak cadence; the flux is the same as without."""
    from flarelight.runtime.simulate import flare_profile

    lc, _ = simulate_lightcurve(n_days=6, seed=2, n_flares=0)
    sigma = 2e-3
    full, tab_full = inject_flares(lc, 8, seed=5, amplitude=(1.5 * sigma, 0.2), fwhm_minutes=(2, 60))
    vis, tab = inject_flares(lc, 8, seed=5, amplitude=(1.5 * sigma, 0.2), fwhm_minutes=(2, 60), label_sigma=sigma)
    assert np.array_equal(full.flux, vis.flux, equal_nan=True)
    assert np.allclose(tab_full["tstop"] - tab_full["tpeak"], 5 * tab_full["fwhm"])
    half_cad = 60 / 86400
    narrower = 0
    for r, rf in zip(tab, tab_full):
        assert rf["tstart"] <= r["tstart"] <= r["tpeak"] - half_cad + 1e-12
        assert r["tpeak"] + half_cad - 1e-12 <= r["tstop"] <= rf["tstop"]
        fine = np.arange(rf["tstart"], rf["tstop"], r["fwhm"] / 500.0)
        prof = np.array([flare_profile(np.array([t]), r["tpeak"], r["fwhm"], r["amplitude"])[0] for t in fine])
        above = fine[prof > sigma]
        if above.size:  # the scan's first/last point above the level, within the label's grid step
            assert abs(r["tstart"] - min(above[0], r["tpeak"] - half_cad)) <= r["fwhm"] / 50.0 + 1e-9
            assert abs(r["tstop"] - max(above[-1], r["tpeak"] + half_cad)) <= r["fwhm"] / 50.0 + 1e-9
        narrower += r["tstop"] - r["tstart"] < 0.9 * (rf["tstop"] - rf["tstart"])
    assert narrower >= 4  # faint flares' labels end well before 5 FWHM


def test_injection_errors():
    lc, _ = simulate_lightcurve(n_days=1, seed=1, n_flares=0)
    with pytest.raises(InjectionError, match="need 0 < low"):
        inject_flares(lc, 1, amplitude=(0.1, 0.01))
    with pytest.raises(InjectionError, match="without overlaps"):
        inject_flares(lc, 500, fwhm_minutes=(30, 60), max_tries=200)


# ----------------------------------------------------------------------------- metrics
def test_metrics_match_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    p = np.clip(0.4 * y + rng.random(500) * 0.7, 0, 1).round(2)  # ties on purpose
    assert np.isclose(average_precision(y, p), sk.average_precision_score(y, p))
    assert np.array_equal(confusion_matrix(y, p, 0.5), sk.confusion_matrix(y, p > 0.5))
    m = window_metrics(y, p, 0.5)
    assert np.isclose(m["precision"], sk.precision_score(y, p > 0.5))
    assert np.isclose(m["recall"], sk.recall_score(y, p > 0.5))
    assert np.isclose(m["accuracy"], sk.accuracy_score(y, p > 0.5))
    prec, rec, thr = precision_recall_curve(y, p)
    skp, skr, skt = sk.precision_recall_curve(y, p)
    mine = {float(t): (a, b) for t, a, b in zip(thr, prec[1:], rec[1:])}
    for t, a, b in zip(skt, skp[:-1], skr[:-1]):
        assert np.allclose(mine[float(t)], (a, b))
    assert np.isclose(rec[-1], 1.0)


def test_event_scores_on_hand_made_events():
    cad = 2 / 1440
    t = 1000 + np.arange(200) * cad
    ev = np.array([[t[52], t[50], t[54]],      # overlaps the first label
                   [t[121], t[120], t[121]]])  # a false event
    true = np.array([[t[53], t[60]], [t[150], t[160]]])
    s = event_scores(ev, true, cad, t)
    assert (s["n_true"], s["n_recovered"], s["n_pred"], s["n_tp"], s["n_fp"]) == (2, 1, 2, 1, 1)
    assert s["recall"] == 0.5 and s["precision"] == 0.5 and s["f1"] == 0.5
    assert s["exposure_days"] == pytest.approx(200 * cad) and s["fp_per_day"] == pytest.approx(1 / (200 * cad))
    # within 2 cadences of slack an event still matches, beyond it not
    near = np.array([[t[63], t[62], t[63]]])
    far = np.array([[t[64], t[63], t[64]]])
    assert event_scores(near, true, cad, t)["n_tp"] == 1 and event_scores(far, true, cad, t)["n_tp"] == 0


def test_prf_and_pool_follow_flare_eval(flare_eval):
    rows = [dict(n_true=10, n_recovered=6, n_pred=9, n_tp=7, n_fp=2, exposure_days=20.0),
            dict(n_true=0, n_recovered=0, n_pred=3, n_tp=0, n_fp=3, exposure_days=10.0),
            dict(n_true=4, n_recovered=0, n_pred=0, n_tp=0, n_fp=0, exposure_days=5.0)]
    p = pool(rows)
    ref = flare_eval._prf(14, 6, 12, 7)
    assert (p["n_true"], p["n_recovered"], p["n_pred"], p["n_tp"], p["n_fp"]) == (14, 6, 12, 7, 5)
    assert p["recall"] == pytest.approx(ref["recall"]) and p["precision"] == pytest.approx(ref["precision"])
    assert p["f1"] == pytest.approx(ref["f1"]) and p["fp_per_day"] == pytest.approx(5 / 35)
    assert np.isnan(prf(0, 0, 3, 0)["recall"]) and np.isnan(prf(4, 0, 0, 0)["f1"]) and prf(4, 0, 3, 0)["f1"] == 0.0


def test_evaluation_scores_catalogue_rows_not_runs():
    lc, flares = simulate_lightcurve(n_days=6, seed=8, n_flares=5, gap_days=(3.0, 3.2))
    iv = np.array([[f.tpeak - 2 * f.fwhm, f.tpeak + 5 * f.fwhm] for f in flares])
    # a flickering "model": high inside each label, with one dip below threshold inside the flare, and a
    # single-cadence false alarm; runs of prob > 0.5 would give two events per flare, the catalogue one row
    prob = np.where(np.isfinite(lc.time), 0.02, np.nan)
    for s_, e_ in iv:
        inside = np.flatnonzero((lc.time >= s_) & (lc.time <= s_ + 0.4 * (e_ - s_)))
        prob[inside] = 0.95
        prob[inside[len(inside) // 2]] = 0.3
    pre = Preprocessing()
    res = evaluate_lightcurves(lambda _: prob, [lc], [iv], threshold=0.5, pre=pre)
    rows = catalogue_events(Scored.from_probabilities(lc, prob, pre, threshold=0.5), 0.5)
    from flarelight.runtime import find_flares

    table = find_flares(Scored.from_probabilities(lc, prob, pre, threshold=0.5), threshold=0.5)
    assert len(table) >= 3 and np.array_equal(rows[:, 1], np.asarray(table["tstart"], float))
    e = res["event"]
    assert e["n_pred"] == len(table) and e["n_true"] == len(flares)
    assert e == pool([res["per_lightcurve"][0]["event"]])
    ok = np.isfinite(prob) & lc.good
    assert res["cadence"]["n"] == int(ok.sum()) and res["cadence"]["n_positive"] > 0


def test_old_catalogs_module_still_imports_with_a_warning():
    import importlib
    import sys

    sys.modules.pop("flarelight.trainer.catalogs", None)
    with pytest.warns(DeprecationWarning, match="renamed flarelight.trainer.labels"):
        old = importlib.import_module("flarelight.trainer.catalogs")
    assert old.load_catalog is load_catalog and old.FlareCatalog is FlareCatalog
