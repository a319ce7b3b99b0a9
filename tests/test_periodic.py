"""The star's period and fold: phase dispersion against a plain loop, and the refined period of an eclipsing binary
against the truth (the Lomb-Scargle peak of narrow eclipses is off it)."""
from __future__ import annotations

import numpy as np
import pytest

from flarelight.runtime.periodic import dominant_period, fold_periods, phase_dispersion, refine_period

CAD = 2.0 / 1440.0


def test_phase_dispersion_matches_a_plain_loop():
    rng = np.random.default_rng(2)
    time = np.sort(rng.uniform(0, 20, 3000))
    flux = np.sin(time * 3.0) + rng.normal(0, 0.3, time.size)
    for period, n_bins in ((2.1, 10), (0.7, 37), (5.0, 8)):
        bins = [[] for _ in range(n_bins)]
        for t, f in zip(time, flux):
            bins[min(int((t / period) % 1.0 * n_bins), n_bins - 1)].append(f)
        ss = sum(sum((v - np.mean(b)) ** 2 for v in b) for b in bins if len(b) > 1)
        dof = sum(len(b) - 1 for b in bins if len(b) > 1)
        assert phase_dispersion(time, flux, period, n_bins) == pytest.approx(ss / dof, rel=1e-9)


def _eclipsing(period=1.4921, n=19000, seed=3):
    rng = np.random.default_rng(seed)
    time = 1325.0 + np.arange(n) * CAD
    phase = np.mod((time - 1325.3) / period, 1.0)
    d1 = np.minimum(phase, 1 - phase)
    d2 = np.abs(phase - 0.5)
    flux = 1.0 - 0.06 * np.exp(-0.5 * (d1 / 0.012) ** 2) - 0.02 * np.exp(-0.5 * (d2 / 0.012) ** 2)
    return time, flux + rng.normal(0, 2e-3, n)


def test_refined_period_of_an_eclipsing_binary_is_sharper_and_true():
    """Narrow eclipses: started 0.1% off the orbit (as the periodogram of TIC 32150630 was), the refined period is the
    orbit to 1e-4 and folds several times sharper; from the periodogram's peak at half the orbit, the second fold
    period is the orbit."""
    time, flux = _eclipsing()
    usable = np.ones(time.size, bool)
    for start in (1.4921 * 1.001, 1.4921 * 0.999):
        refined = refine_period(time, flux, usable, start, CAD)
        assert refined == pytest.approx(1.4921, rel=1e-4)
        assert phase_dispersion(time, flux, refined, 100) < 0.5 * phase_dispersion(time, flux, start, 100)
    period, _ = dominant_period(time, flux, usable)
    assert period == pytest.approx(1.4921 / 2, rel=0.01)
    folds = fold_periods(time, flux, usable, period, CAD)
    assert len(folds) == 2 and folds[1] == pytest.approx(1.4921, rel=1e-4)
    # a light curve holding fewer than FOLD_MIN_CYCLES of twice the period folds at the period only
    short = time < time[0] + 6.0
    assert len(fold_periods(time, flux, short, period, CAD)) == 1
