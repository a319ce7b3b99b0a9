"""Fast tests of the pure helpers of bench/bench_models.py (bench/_eval.py): no model, no shared data."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "_eval.py"
_spec = importlib.util.spec_from_file_location("bench_eval", _PATH)
ev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ev)

CAD = 2.0 / 1440.0


def _lightcurve(n: int = 20000, gap: tuple[int, int] = (9000, 9700), seed: int = 1):
    """A flat, noisy 2-min light curve with one gap (rows NaN in time/flux there, as in SPOC files)."""
    rng = np.random.default_rng(seed)
    time = 1000.0 + np.arange(n) * CAD
    flux = 1000.0 * (1.0 + 1e-3 * rng.standard_normal(n))
    good = np.ones(n, bool)
    good[gap[0]:gap[1]] = False
    time[gap[0]:gap[1]] = np.nan
    flux[gap[0]:gap[1]] = np.nan
    return time, flux, good


def test_injected_flares_are_added_relative_to_the_quiescent_level():
    from flarelight.runtime.simulate import flare_profile

    time, flux, good = _lightcurve()
    inj = ev.inject_flares(time, flux, good, 12, np.random.default_rng(3), min_sep=0.5)
    assert inj.tpeak.size >= 8
    added = inj.flux - flux
    # reference: each flare adds level x its exposure-averaged profile (one runtime injector, additive)
    ref = np.zeros(time.size)
    ok = np.isfinite(time)
    for tp, fw, amp, q in zip(inj.tpeak, inj.fwhm, inj.amplitude, inj.level):
        ref[ok] += q * flare_profile(time[ok], tp, fw, amp, exposure=CAD)
    np.testing.assert_allclose(added[good], ref[good], rtol=0, atol=5e-6 * 0.3 * 1000)
    np.testing.assert_allclose(inj.level, 1000.0, rtol=2e-4)  # the running median of a flat light curve
    ratio = added / inj.level.mean()
    for tp, fw, amp in zip(inj.tpeak, inj.fwhm, inj.amplitude):
        near = np.flatnonzero(np.isfinite(time) & (np.abs(time - tp) < 0.25))  # other flares are >= 0.5 d away
        k = near[np.argmax(ratio[near])]
        assert abs(time[k] - tp) <= CAD + 1e-9
        assert 0 < ratio[k] <= amp * 1.001
    # flares are spaced as asked, and about 30 % sit within 100 cadences of the gap or an edge
    assert np.all(np.diff(np.sort(inj.tpeak)) >= 0.5 - CAD)
    assert inj.near_gap.sum() >= 3
    assert np.all(inj.edge_dist[inj.near_gap] < 100)
    assert np.all(inj.ed > 0) and np.all(inj.snr > 0)


def test_segment_edge_distance():
    t = np.r_[np.arange(10), 100 + np.arange(5)].astype(float)
    d = ev.segment_edge_distance(t)
    assert d.tolist() == [0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 0, 1, 2, 1, 0]


def test_template_integral_matches_ed_of_profile():
    from flarelight.runtime.simulate import flare_profile

    t = np.arange(0.0, 3.0, 10.0 / 86400.0)  # 10-s sampling
    fwhm, amp = 10.0 / 1440.0, 0.05
    prof = flare_profile(t, 1.0, fwhm, amp, exposure=10.0 / 86400.0)
    ed_numeric = prof.sum() * 10.0
    assert ed_numeric == pytest.approx(amp * fwhm * 86400.0 * ev.template_integral(), rel=2e-3)


def test_recovered_on_hand_made_events():
    slack = 2 * CAD
    tpeak = np.array([10.0, 20.0, 30.0, 40.0])
    fwhm = np.full(4, 0.01)
    events = np.array([
        [10.005, 10.0, 10.01],                   # inside flare 0
        [20.0 + 0.03 + 1.5 * CAD] * 3,           # past tpeak + 3 FWHM but within the slack of flare 1
        [30.0 + 0.03 + 3 * CAD] * 3,             # beyond 3 FWHM + slack of flare 2: not a match
        [39.9, 39.95, 39.99 - 1.5 * CAD],        # ends before tpeak - FWHM, within slack of flare 3
    ])
    assert ev.recovered(tpeak, fwhm, events, slack).tolist() == [True, True, False, True]
    assert ev.recovered(tpeak, fwhm, np.empty((0, 3)), slack).tolist() == [False] * 4
    assert ev.recovered(tpeak, fwhm, events, 0.0).tolist() == [True, False, False, False]


def test_completeness_binning():
    x = np.array([0.5, 1.5, 1.6, 2.5, 2.6, 2.7, 9.0])
    rec = np.array([True, False, True, True, True, False, True])
    c = ev.completeness_1d(x, rec, np.array([0.0, 1.0, 2.0, 3.0]))
    assert c["n"] == [1, 2, 3]
    assert c["n_recovered"] == [1, 1, 2]
    assert c["completeness"] == [1.0, 0.5, pytest.approx(2 / 3)]
    y = np.array([10.0, 10.0, 30.0, 10.0, 30.0, 30.0, 10.0])
    c2 = ev.completeness_2d(x, y, rec, np.array([0.0, 2.0, 3.0]), np.array([0.0, 20.0, 40.0]))
    assert c2["n"] == [[2, 1], [1, 2]]
    assert c2["n_recovered"] == [[1, 1], [1, 1]]
    assert c2["completeness"] == [[0.5, 1.0], [1.0, 0.5]]
    empty = ev.completeness_1d(np.array([]), np.array([], bool), np.array([0.0, 1.0]))
    assert empty["completeness"] == [None]


def test_affected_centres():
    excess = np.zeros(1000)
    excess[500:510] = 1e-3
    centres = np.arange(100, 900)
    sel = ev.affected_centres(excess, centres, window=200, offset=100)
    # window of centre c is [c - 100, c + 100): it holds cadences 500..509 iff 401 <= c <= 609
    assert sel.min() == 401 and sel.max() == 609 and sel.size == 209


def test_normal_cdf_against_the_integrated_density():
    """The ideal-detector ceiling's distribution function against a trapezoid integral of the Gaussian density."""
    x = np.array([-6.0, -2.5, -1.0, -0.3, 0.0, 0.7, 1.96, 3.0, 8.0])
    grid = np.linspace(-12.0, 8.0, 400001)
    pdf = np.exp(-0.5 * grid ** 2) / np.sqrt(2.0 * np.pi)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    ref = np.interp(x, grid, cum)
    assert np.allclose(ev.normal_cdf(x), ref, atol=1e-7)
    assert np.allclose(ev.normal_cdf(x) + ev.normal_cdf(-x), 1.0)
