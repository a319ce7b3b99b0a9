"""Vetting flags against constructed impostors and injected flares (hand-made probabilities, no model)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from flarelight.runtime import from_arrays
from flarelight.runtime.catalogue import DEFAULT_MIN_SNR, flares_from_probabilities
from flarelight.runtime.simulate import flare_profile
from flarelight.runtime.periodic import dominant_period
from flarelight.runtime import vetting
from flarelight.runtime.vetting import periodic_flags, poisson_sf

CAD = 2.0 / 1440.0


def lc_with(rel, noise=1e-3, seed=0, n=3000, sap=None, centroids=None, gap=None):
    rng = np.random.default_rng(seed)
    time = 2000.0 + np.arange(n) * CAD
    flux = 1e4 * (1 + rel + rng.normal(0, noise, n))
    keep = np.ones(n, bool)
    if gap is not None:
        keep[gap[0]:gap[1]] = False
    lc = from_arrays(time[keep], flux[keep], np.full(keep.sum(), 10.0), meta={"tic": 1, "sector": 1})
    if sap is not None:
        lc.aux["sap_flux"] = (0.8e4 * (1 + sap + rng.normal(0, noise, n)))[keep]
    if centroids is not None:
        lc.aux["mom_centr1"] = (centroids + rng.normal(0, 1e-3, n))[keep]
        lc.aux["mom_centr2"] = (100.0 + rng.normal(0, 1e-3, n))[keep]
    return lc, keep


def prob_where(rel, level=0.003, p=0.9):
    return np.where(rel > level, p, 0.01)


def one_flare(i=1500, fwhm=8 / 1440, amp=0.03, n=3000):
    time = 2000.0 + np.arange(n) * CAD
    return flare_profile(time, time[i], fwhm, amp, exposure=CAD)


def test_poisson_sf():
    lam = 1.7
    for k in (0, 1, 3, 8):
        ref = 1.0 - sum(math.exp(-lam) * lam ** m / math.factorial(m) for m in range(k))
        assert poisson_sf(k, lam) == pytest.approx(ref, abs=1e-12)


def test_fap_baluev_matches_astropy():
    pytest.importorskip("scipy")  # astropy's own implementation needs it; ours does not
    from astropy.timeseries import LombScargle

    from flarelight.runtime.periodic import fap_baluev

    rng = np.random.default_rng(6)
    t = np.sort(rng.uniform(0, 27, 900))
    y = 0.3 * np.sin(2 * np.pi * t / 3.1) + rng.normal(0, 1, t.size)
    ls = LombScargle(t, y)
    for power in (0.005, 0.01, 0.02, 0.05):
        ref = float(ls.false_alarm_probability(power, maximum_frequency=10.0, method="baluev"))
        assert fap_baluev(power, 10.0, t) == pytest.approx(ref, rel=1e-3, abs=1e-12)  # astropy snaps fmax to its grid


def test_dominant_period_and_phase_clustering():
    rng = np.random.default_rng(1)
    time = 2000.0 + np.arange(18000) * CAD
    flux = 1 + 0.01 * np.sin(2 * np.pi * time / 2.3) + rng.normal(0, 1e-3, time.size)
    period, power = dominant_period(time, flux, np.ones(time.size, bool))
    assert period == pytest.approx(2.3, rel=0.01) and power > 0.5
    noise = 1 + rng.normal(0, 1e-3, time.size)
    assert np.isnan(dominant_period(time, noise, np.ones(time.size, bool))[0])  # no significant period
    # events every cycle at one phase: flagged; random times: (almost) never
    events = 2000.3 + 2.3 * np.arange(10) + rng.normal(0, 0.01, 10)
    assert periodic_flags(events, 2.3).all()
    flagged = [periodic_flags(np.sort(rng.uniform(2000, 2025, 15)), 2.3).sum() for _ in range(40)]
    assert np.mean(flagged) < 0.1


def test_periodic_humps_flagged_random_flares_not():
    """An eclipsing-binary-like light curve: a hump every orbit the model fires on; flares elsewhere."""
    n = 18000
    time = 2000.0 + np.arange(n) * CAD
    porb = 1.7
    phase = np.mod(time / porb, 1.0)
    humps = 0.01 * np.exp(-0.5 * ((phase - 0.3) / 0.02) ** 2)
    rng = np.random.default_rng(2)
    tflares = np.sort(rng.uniform(2001, 2024, 20))
    tflares = tflares[np.abs(np.mod(tflares / porb, 1.0) - 0.3) > 0.15][:6]  # away from the humps' phase
    flares = sum(flare_profile(time, t, 8 / 1440, 0.03, exposure=CAD) for t in tflares)
    rel = 0.02 * np.sin(2 * np.pi * time / porb) + humps + flares
    lc, _ = lc_with(rel, n=n, seed=3)
    prob = np.where((humps > 0.004) | (flares > 0.003), 0.9, 0.01)
    t = flares_from_probabilities(lc, prob, keep_all=True)
    is_hump = np.array([humps[np.argmin(np.abs(time - tp))] > 0.002 for tp in t["tpeak"]])
    assert is_hump.sum() >= 10 and (~is_hump).sum() >= 5
    assert t["periodic"][is_hump].mean() > 0.8
    assert not t["periodic"][~is_hump].any()
    assert t.meta["ls_period_d"] is not None


def test_gap_edge_step_flagged_flare_with_rise_not():
    n = 3000
    time = 2000.0 + np.arange(n) * CAD
    gap = (1400, 1460)
    step = np.where(np.arange(n) >= gap[1], 0.01 * np.exp(-(time - time[gap[1]]) / 0.05), 0.0)  # a ramp after the gap
    later = flare_profile(time, time[2300], 8 / 1440, 0.03, exposure=CAD)
    rel = step + later
    lc, keep = lc_with(rel, gap=gap)
    prob = prob_where(rel)[keep]
    t = flares_from_probabilities(lc, prob, keep_all=True)
    assert len(t) == 2
    at_gap = np.abs(t["tpeak"] - time[gap[1]]) < 0.05
    assert t["gap_edge"][at_gap].all() and not t["gap_edge"][~at_gap].any()
    assert len(flares_from_probabilities(lc, prob)) == 1  # the default table drops it
    # a flare peaking 10 cadences after the gap, its rise observed: not flagged
    rel2 = flare_profile(time, time[gap[1] + 10], 10 / 1440, 0.03, exposure=CAD)
    lc2, keep2 = lc_with(rel2, gap=gap, seed=1)
    t2 = flares_from_probabilities(lc2, prob_where(rel2)[keep2], keep_all=True)
    assert len(t2) == 1 and not t2["gap_edge"][0]


def test_rises_later_matches_a_plain_loop():
    from flarelight.runtime.vetting import RISE_CADENCES, RISE_SIGMA, rises_later

    rng = np.random.default_rng(11)
    seen = set()
    for trial in range(300):
        n = int(rng.integers(2, 40))
        y = rng.normal(0, 1.0, n) + np.where(rng.uniform(size=n) < 0.2, rng.uniform(0, 8, n), 0.0)
        if trial % 3 == 0:
            y[rng.integers(0, n)] = np.nan
        min_rise = float(rng.uniform(0, 6))
        finite = [v for v in y if np.isfinite(v)]
        want = False
        if len(finite) >= 4:
            smooth = [sorted(finite[i:i + 3])[1] for i in range(len(finite) - 2)]
            need = max(min_rise, RISE_SIGMA * 1.0)
            want = any(smooth[j] - smooth[i] >= need for i in range(len(smooth))
                       for j in range(i + 1, min(i + RISE_CADENCES, len(smooth) - 1) + 1))
        assert rises_later(y, 1.0, min_rise) == want
        seen.add(want)
    assert seen == {True, False}


def test_flare_complex_whose_first_peak_fell_in_a_gap_is_not_gap_edge(monkeypatch):
    """A flare whose peak fell in a 36-min hole and a second flare 80 min after it, one group: the second flare's
    rise is observed, so the group is no gap-edge step (a ramp after the same hole still is)."""
    n = 3000
    time = 2000.0 + np.arange(n) * CAD
    gap = (1400, 1418)
    rel = flare_profile(time, time[1414], 15 / 1440, 0.05, exposure=CAD) \
        + flare_profile(time, time[1455], 8 / 1440, 0.03, exposure=CAD)
    lc, keep = lc_with(rel, gap=gap)
    t = flares_from_probabilities(lc, prob_where(rel)[keep], keep_all=True)
    assert len(t) >= 1 and np.unique(t["group"]).size == 1 and not t["gap_edge"].any()
    monkeypatch.setattr(vetting, "rises_later", lambda *args: False)  # without the later rise: flagged (can fail)
    assert flares_from_probabilities(lc, prob_where(rel)[keep], keep_all=True)["gap_edge"].all()
    monkeypatch.undo()
    ramp = np.where(np.arange(n) >= gap[1], 0.03 * np.exp(-(time - time[gap[1]]) / 0.03), 0.0)
    lc2, keep2 = lc_with(ramp, gap=gap)
    t2 = flares_from_probabilities(lc2, prob_where(ramp)[keep2], keep_all=True)
    assert len(t2) >= 1 and t2["gap_edge"].all()


def test_single_cadence_spike_flagged_short_flare_not():
    n = 3000
    rel = np.zeros(n)
    rel[1000] = 0.02  # a cosmic ray
    short = one_flare(2000, fwhm=2 / 1440, amp=0.03)  # a 2-min flare: its decay reaches the next cadence
    lc, _ = lc_with(rel + short)
    prob = np.full(n, 0.01)
    prob[1000] = 0.9
    prob[1999:2002] = 0.9
    t = flares_from_probabilities(lc, prob, keep_all=True)
    assert len(t) == 2
    spike = np.abs(t["tpeak"] - lc.time[1000]) < 2 * CAD
    assert t["single_cadence"][spike].all() and not t["single_cadence"][~spike].any()


def test_sap_disagrees():
    rel = one_flare()
    lc, _ = lc_with(rel, sap=rel)  # the flare is in SAP too
    t = flares_from_probabilities(lc, prob_where(rel), keep_all=True)
    assert len(t) == 1 and not t["sap_disagrees"][0]
    lc2, _ = lc_with(rel, sap=np.zeros_like(rel))  # only in the flux column
    t2 = flares_from_probabilities(lc2, prob_where(rel), keep_all=True)
    assert len(t2) == 1 and t2["sap_disagrees"][0]
    lc2.meta["flux_column"] = "sap_flux"  # the flux is SAP itself: nothing to compare
    assert not flares_from_probabilities(lc2, prob_where(rel), keep_all=True)["sap_disagrees"][0]


def test_centroid_jump():
    """An attitude tweak (a flux step with a centroid jump) is flagged; a flare is not, whether the centroids are
    smooth or jump at it without a flux step of their own (a momentum dump during a flare)."""
    n = 3000
    k = np.arange(n)
    rel = one_flare(n=n)
    smooth = 50.0 + 1e-5 * k
    stepped = smooth + np.where(k >= 1500, 0.05, 0.0)  # the pointing jumps at the event
    for centroids in (smooth, stepped):
        lc, _ = lc_with(rel, centroids=centroids)
        t = flares_from_probabilities(lc, prob_where(rel), keep_all=True)
        assert len(t) == 1 and not t["centroid_jump"][0]
        assert abs(t["tpeak"][0] - lc.time[1500]) < 2 * CAD
    step = np.where(k >= 1500, 0.005, 0.0)  # the flux steps with the jump; the model fires on its first cadences
    prob = np.where((k >= 1500) & (k < 1520), 0.9, 0.01)
    lc2, _ = lc_with(step, centroids=stepped)
    t2 = flares_from_probabilities(lc2, prob, keep_all=True)
    assert len(t2) >= 1 and t2["centroid_jump"].all()
    lc3, _ = lc_with(step, centroids=smooth)  # the same step with steady centroids: not this flag's
    t3 = flares_from_probabilities(lc3, prob, keep_all=True)
    assert len(t3) >= 1 and not t3["centroid_jump"].any()


def test_confident_candidate_survives_a_borderline_snr():
    """A flare whose snr falls between 0.6 x min_snr and min_snr: low_snr unless the model is sure of it."""
    rel = one_flare(amp=0.003, fwhm=6 / 1440)
    lc, _ = lc_with(rel, seed=7)
    base = flares_from_probabilities(lc, prob_where(rel, 1e-3, 0.9), keep_all=True)
    assert len(base) == 1 and abs(base["tpeak"][0] - lc.time[1500]) < 2 * CAD
    snr = float(base["snr"][0])
    assert 0.6 * DEFAULT_MIN_SNR < snr < DEFAULT_MIN_SNR, "the injected flare must be borderline for this test"
    assert base["low_snr"][0]
    sure = flares_from_probabilities(lc, prob_where(rel, 1e-3, 0.97), keep_all=True)
    assert sure["snr"][0] == pytest.approx(snr) and not sure["low_snr"][0]
    assert len(flares_from_probabilities(lc, prob_where(rel, 1e-3, 0.97))) == 1


def test_centroid_drift_or_later_jump_is_not_a_step_at_the_flare():
    """A long flare over a pointing drift (the settling after an orbit starts: a fast, decelerating change) or
    with a pointing jump late in its decay keeps its row; the same flare whose rise coincides with a jump of the
    same size that makes a flux step of its own is flagged."""
    n = 3000
    rel = one_flare(i=400, fwhm=20 / 1440, amp=0.05, n=n)  # its group spans ~100 cadences
    k = np.arange(n)
    settling = 50.0 - 0.08 * np.exp(-k / 250.0)  # 0.08 px settling, fastest at the start
    lc, _ = lc_with(rel, centroids=settling)
    t = flares_from_probabilities(lc, prob_where(rel), keep_all=True)
    assert len(t) >= 1 and not t["centroid_jump"].any()
    jump = np.where(k >= 480, 0.03, 0.0)  # in the decay, 160 min after the peak
    lc2, _ = lc_with(rel, centroids=50.0 + jump)
    t2 = flares_from_probabilities(lc2, prob_where(rel), keep_all=True)
    assert len(t2) >= 1 and not t2["centroid_jump"].any()
    at_rise = np.where(k >= 399, 0.03, 0.0)
    lc3, _ = lc_with(rel + np.where(k >= 399, 0.02, 0.0), centroids=50.0 + at_rise)
    assert flares_from_probabilities(lc3, prob_where(rel), keep_all=True)["centroid_jump"].all()


def test_jump_cadence_and_local_steps_match_plain_loops():
    from flarelight.runtime.vetting import JUMP_SIDE, SIDE_CADENCES, jump_cadence, local_steps

    rng = np.random.default_rng(3)
    c = rng.normal(0, 1e-3, 800)
    c[517:] += 0.02
    c[rng.choice(800, 40, replace=False)] = np.nan
    best, ref_k = -1.0, None
    for kk in range(450, 602):  # plain: the JUMP_SIDE finite values from kk on and before kk
        after = [v for v in c[kk:] if np.isfinite(v)][:JUMP_SIDE]
        before = [v for v in c[:kk] if np.isfinite(v)][-JUMP_SIDE:]
        if len(after) == len(before) == JUMP_SIDE and abs(np.median(after) - np.median(before)) > best:
            best, ref_k = abs(np.median(after) - np.median(before)), kk
    assert jump_cadence(c, 450, 600) == ref_k and abs(ref_k - 517) <= 4
    usable = rng.uniform(size=800) > 0.1
    usable[450:601] = False
    lo, hi = 450, 600
    cu = c[usable & np.isfinite(c)]
    ul = int(np.count_nonzero((usable & np.isfinite(c))[:lo]))
    span = hi - lo + 1
    ref = []
    for a in (ul - SIDE_CADENCES - span, ul + SIDE_CADENCES):
        if a - SIDE_CADENCES >= 0 and a + span + SIDE_CADENCES <= cu.size:
            ref.append(abs(np.median(cu[a + span:a + span + SIDE_CADENCES]) - np.median(cu[a - SIDE_CADENCES:a])))
    assert ref and local_steps(c, usable, lo, hi) == pytest.approx(max(ref), abs=1e-15)
    assert JUMP_SIDE < SIDE_CADENCES


def test_a_bump_every_cycle_is_periodic_a_flare_is_not():
    """The light curve's own periodic signal explains a bump that recurs at the same phase every cycle (an
    eclipsing binary's egress wiggle), even when only one of them is a candidate; a flare elsewhere is kept."""
    n, porb = 6000, 0.7
    time = 2000.0 + np.arange(n) * CAD
    phase = np.mod(time / porb, 1.0)
    cycle_t0 = np.floor(time / porb) * porb
    wiggle = sum(flare_profile(time, t0 + 0.3 * porb, 10 / 1440, 0.01, exposure=CAD) for t0 in np.unique(cycle_t0))
    flare = flare_profile(time, time[4400], 8 / 1440, 0.02, exposure=CAD)
    rel = 0.02 * np.sin(2 * np.pi * time / porb) + wiggle + flare
    lc, _ = lc_with(rel, n=n, seed=4)
    one = (np.abs(time - (np.unique(cycle_t0)[5] + 0.3 * porb)) < 20 / 1440) & (wiggle > 0.002)
    prob = np.where(one | (flare > 0.003), 0.9, 0.01)
    t = flares_from_probabilities(lc, prob, keep_all=True)
    at_wiggle = np.abs(t["tpeak"] - (np.unique(cycle_t0)[5] + 0.3 * porb)) < 0.02
    at_flare = np.abs(t["tpeak"] - time[4400]) < 0.01
    assert at_wiggle.sum() == 1 and at_flare.sum() == 1
    assert t["periodic"][at_wiggle].all() and not t["periodic"][at_flare].any()
    assert t.meta["ls_period_d"] is not None


def test_symmetric_bump_flagged_flares_and_complex_flares_not():
    n = 3000
    time = 2000.0 + np.arange(n) * CAD
    slow = 0.01 * np.exp(-0.5 * ((time - time[1500]) / (60 / 1440 / 2.355)) ** 2)  # FWHM 60 min, no fast rise
    lc, _ = lc_with(slow, n=n, seed=5)
    t = flares_from_probabilities(lc, prob_where(slow, level=0.002), keep_all=True)
    assert len(t) >= 1 and t["symmetric"].all()
    flare = one_flare(fwhm=20 / 1440, amp=0.02, n=n)
    lc2, _ = lc_with(flare, n=n, seed=5)
    t2 = flares_from_probabilities(lc2, prob_where(flare), keep_all=True)
    assert len(t2) == 1 and not t2["symmetric"].any()
    double = one_flare(i=1500, fwhm=8 / 1440, amp=0.03, n=n) + one_flare(i=1512, fwhm=8 / 1440, amp=0.02, n=n)
    lc3, _ = lc_with(double, n=n, seed=5)
    t3 = flares_from_probabilities(lc3, prob_where(double), keep_all=True)
    assert len(t3) == 2 and (t3["n_components"] == 2).all() and not t3["symmetric"].any()


def test_sap_at_a_segment_end_on_a_curved_slope():
    """Flares in the last 60 cadences of a light curve on a steep, curved rotational slope, with a scattered-light
    ramp in SAP that PDC removed: SAP showing the flare too is never flagged; SAP without it almost always is."""
    n = 2500
    time = 2000.0 + np.arange(n) * CAD
    ramp = 0.01 * np.exp((time - time[-1]) / 0.08)
    agree, lacking = [], []
    for k, i in enumerate(range(2440, 2495, 5)):
        star = 0.03 * np.sin(2 * np.pi * (time - time[i]) / 1.3 + 1.0)
        fl = one_flare(i=i, fwhm=8 / 1440, amp=0.02, n=n)
        lc, _ = lc_with(star + fl, n=n, seed=k, sap=star + fl + ramp)
        agree.append(flares_from_probabilities(lc, prob_where(fl), keep_all=True))
        lc2, _ = lc_with(star + fl, n=n, seed=k, sap=star + ramp)
        lacking.append(flares_from_probabilities(lc2, prob_where(fl), keep_all=True))
    assert all(len(t) == 1 for t in agree + lacking)
    assert not any(t["sap_disagrees"][0] for t in agree)
    assert sum(bool(t["sap_disagrees"][0]) for t in lacking) >= 10
