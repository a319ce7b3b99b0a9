"""The numba running-median kernel (the catalogue's baseline) against a plain numpy reference."""
from __future__ import annotations

import numpy as np
import pytest

from flarelight.runtime.kernels import running_median

from naive import reference_running_median


def _check(x, seg, half):
    got = running_median(x, seg, half)
    want = reference_running_median(x, seg, half)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("half", [0, 1, 2, 7, 60])
def test_random(seed, half):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 600))
    x = rng.normal(1.0, 0.01, n)
    x[rng.random(n) < 0.05] = np.nan
    x[rng.random(n) < 0.01] = np.inf
    seg = np.cumsum(rng.random(n) < 0.02)
    _check(x, seg, half)


def test_nan_runs():
    x = np.linspace(0, 1, 300)
    x[50:120] = np.nan  # a NaN run longer than the window: no finite value in some windows
    x[200:203] = np.nan
    _check(x, np.zeros(300, np.int64), 10)
    assert np.isnan(running_median(x, np.zeros(300, np.int64), 10)[85])


def test_segments_shorter_than_window_and_single_cadence_segments():
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    seg = np.array([0] * 5 + [1] + [2] * 3 + [3] + [4] * 30)
    _check(x, seg, 25)
    out = running_median(x, seg, 25)
    assert out[5] == x[5] and out[9] == x[9]  # a single-cadence segment is its own median


def test_ties_even_counts_and_all_nan():
    x = np.array([1.0, 1.0, 2.0, 2.0, np.nan, 3.0, 3.0, 3.0])
    _check(x, np.zeros(8, np.int64), 2)
    _check(np.full(10, np.nan), np.zeros(10, np.int64), 3)
    _check(np.array([]), np.array([], np.int64), 3)


def test_robust_to_a_flare():
    """A flare shorter than half the window barely moves the median (why the catalogue uses it)."""
    x = np.ones(301)
    x[150:170] += np.linspace(0.5, 0.01, 20)
    out = running_median(x, np.zeros(301, np.int64), 60)
    assert np.all(out == 1.0)
