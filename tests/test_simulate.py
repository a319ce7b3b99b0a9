"""The one flare injector (runtime.simulate.add_flares) against a plain reference; segment edge distances.

Runtime only: no TensorFlow.
"""
from __future__ import annotations

import numpy as np
import pytest

from flarelight.runtime.metadata import Preprocessing
from flarelight.runtime.simulate import (add_flares, davenport_template, flare_profile, quiescent_level,
                                         segment_edge_distance, simulate_lightcurve)
from naive import reference_running_median, segment_ids_ref

CAD = 2.0 / 1440.0


def _reference_injection(time, flux, good, tpeak, fwhm, amp, gap_tolerance, half):
    """Plain loops: segments by the tolerance rule, a running median per good cadence, then each flare adds
    amplitude x level(nearest good cadence to the peak) x the exposure-averaged template, everywhere."""
    gi = np.flatnonzero(good)
    gt = time[gi]
    steps = np.diff(gt)
    seg = segment_ids_ref(gt, gap_tolerance * float(np.median(steps)))
    level = reference_running_median(flux[gi].astype(float), seg, half)
    out = flux.astype(float).copy()
    excess = np.zeros(time.size)
    ok = np.isfinite(time)
    sub = (np.arange(11) + 0.5) / 11 - 0.5
    for tp, fw, a in zip(tpeak, fwhm, amp):
        j = int(np.argmin(np.abs(gt - tp)))
        prof = np.zeros(time.size)
        for i in np.flatnonzero(ok):
            prof[i] = a * np.mean(davenport_template((time[i] + sub * float(np.median(steps)) - tp) / fw))
        out += level[j] * prof
        excess += prof
    return out, excess, level


def test_add_flares_matches_a_plain_reference():
    lc, _ = simulate_lightcurve(n_days=2.0, seed=3, n_flares=0, gap_days=(1.0, 1.01), n_holes=3,
                                rotation_amplitude=0.05, rotation_period=0.7)
    rng = np.random.default_rng(5)
    good_t = lc.time[lc.good]
    tpeak = np.sort(rng.choice(good_t[50:-50], 4, replace=False)) + rng.uniform(-0.4, 0.4, 4) * CAD
    fwhm = np.array([3.0, 10.0, 25.0, 6.0]) / 1440
    amp = np.array([0.02, 0.3, 0.005, 0.1])
    inj = add_flares(lc.time, lc.flux, tpeak, fwhm, amp, good=lc.good, pre=Preprocessing(gap_tolerance=3.5),
                     half_width=60)
    ref_flux, ref_excess, level = _reference_injection(lc.time, lc.flux, lc.good, tpeak, fwhm, amp, 3.5, 60)
    ok = np.isfinite(lc.flux)
    assert ok.sum() > 1000 and (inj.excess > 1e-3).sum() > 20
    # the profile is cut 40 FWHM after the peak, where the template is below 5e-6 of its peak
    np.testing.assert_allclose(inj.excess, ref_excess, rtol=0, atol=5e-6 * amp.max())
    np.testing.assert_allclose(inj.flux[ok], ref_flux[ok], rtol=0, atol=5e-6 * amp.max() * np.nanmax(lc.flux))
    assert np.array_equal(np.isnan(inj.flux), np.isnan(lc.flux))
    # the level is the running median at the good cadence nearest each peak (rotation makes it differ per flare)
    j = np.argmin(np.abs(good_t[None, :] - tpeak[:, None]), axis=1)
    assert np.array_equal(inj.index, np.flatnonzero(lc.good)[j])
    np.testing.assert_allclose(inj.level, level[j], rtol=1e-12)
    assert np.ptp(inj.level) / np.mean(inj.level) > 0.01
    # in units of the quiescent level the flare is exactly the template: ED = amplitude x FWHM x its integral
    added = (inj.flux - lc.flux)[ok]
    assert np.all(added >= 0) and added.max() > 0.1 * inj.level.mean()


def test_add_flares_is_additive_not_multiplicative():
    """The star's noise is not scaled by the flare: two light curves that differ only in noise get the same
    added flux when their quiescent level is the same."""
    n = 3000
    time = 1000 + np.arange(n) * CAD
    rng = np.random.default_rng(0)
    a = 1000 * (1 + 1e-3 * rng.standard_normal(n))
    b = 1000 * (1 + 1e-3 * rng.standard_normal(n))
    fa = add_flares(time, a, [time[1500]], [0.01], [0.5], half_width=1000)
    fb = add_flares(time, b, [time[1500]], [0.01], [0.5], half_width=1000)
    assert fa.level[0] == pytest.approx(fb.level[0], rel=2e-4)
    np.testing.assert_allclose(fa.flux - a, fb.flux - b, rtol=3e-4)
    np.testing.assert_allclose(fa.flux - a, fa.level[0] * fa.excess, rtol=0, atol=1e-9 * fa.level[0])


def test_add_flares_errors():
    t = np.arange(10.0)
    with pytest.raises(ValueError, match="one value per flare"):
        add_flares(t, np.ones(10), [1.0, 2.0], [0.1], [0.1])
    with pytest.raises(ValueError, match="fwhm must be > 0"):
        add_flares(t, np.ones(10), [1.0], [0.0], [0.1])
    with pytest.raises(ValueError, match="good cadence"):
        add_flares(t, np.full(10, np.nan), [1.0], [0.1], [0.1])


def test_quiescent_level_stays_inside_segments():
    t = np.r_[np.arange(100), 103 + np.arange(100)] * CAD  # a step of 4 cadences: split at 3.5, bridged at 4.5
    f = np.arange(200.0)
    good = np.ones(200, bool)
    split = quiescent_level(t, f, good, pre=Preprocessing(gap_tolerance=3.5), half_width=80)
    bridged = quiescent_level(t, f, good, pre=Preprocessing(gap_tolerance=4.5), half_width=80)
    np.testing.assert_array_equal(split, reference_running_median(f, np.repeat([0, 1], 100), 80))
    np.testing.assert_array_equal(bridged, reference_running_median(f, np.zeros(200, int), 80))
    assert split[99] == 59.0 and bridged[99] == 99.0


def test_segment_edge_distance_against_a_loop():
    rng = np.random.default_rng(2)
    seg = np.repeat(np.arange(7), rng.integers(1, 30, 7))
    d = segment_edge_distance(seg)
    ref = []
    for i, s in enumerate(seg):
        idx = np.flatnonzero(seg == s)
        ref.append(min(i - idx[0], idx[-1] - i))
    assert d.tolist() == ref and d.dtype == np.int64
    assert segment_edge_distance(np.r_[5, 5, 9, 9, 9]).tolist() == [0, 0, 0, 1, 0]  # labels need not be 0..k
    assert segment_edge_distance(np.empty(0, int)).size == 0


def test_flare_profile_integral():
    t = np.arange(0.0, 3.0, 10.0 / 86400.0)
    prof = flare_profile(t, 1.0, 10.0 / 1440.0, 0.05, exposure=10.0 / 86400.0)
    x = np.linspace(-1.0, 200.0, 2_000_001)
    integral = np.trapezoid(davenport_template(x), x)
    assert prof.sum() * 10.0 == pytest.approx(0.05 * 10.0 / 1440.0 * 86400.0 * integral, rel=2e-3)
