"""Numba kernels against plain Python / numpy references, on random and adversarial inputs."""
from __future__ import annotations

import numpy as np
import pytest

from flarelight.runtime import kernels
from flarelight.runtime.errors import InvalidLightCurveError


from naive import (count_peaks_ref, gather_padded_ref, gather_windows_ref, robust_scale_ref, segment_ids_ref,
                   valid_centres_ref)


def times_with_gaps(n, gaps, cadence=1.0):
    """Regular times with `gaps` = {position: missing cadences} removed after that position."""
    t, cur = [], 0.0
    for i in range(n):
        t.append(cur)
        cur += cadence * (1 + gaps.get(i, 0))
    return np.array(t)


# ----------------------------------------------------------------------------- segment_ids
@pytest.mark.parametrize("seed", range(5))
def test_segment_ids_random(seed):
    rng = np.random.default_rng(seed)
    steps = rng.choice([1.0, 1.0, 1.0, 2.0, 3.0, 50.0], size=500)
    t = np.cumsum(steps)
    for max_step in (1.5, 2.5, 3.0, 10.0):
        np.testing.assert_array_equal(kernels.segment_ids(t, max_step), segment_ids_ref(t, max_step))


@pytest.mark.parametrize("missing", [1, 99, 100, 101])
def test_segment_ids_gap_sizes(missing):
    t = times_with_gaps(400, {150: missing, 399: 0})
    seg = kernels.segment_ids(t, 1.5)
    np.testing.assert_array_equal(seg, segment_ids_ref(t, 1.5))
    assert seg[150] == 0 and seg[151] == 1


def test_segment_ids_edge_cases():
    assert kernels.segment_ids(np.array([], float), 1.0).size == 0
    np.testing.assert_array_equal(kernels.segment_ids(np.array([5.0]), 1.0), [0])
    t = np.r_[np.arange(10.0), 100.0]  # a gap at the last cadence
    np.testing.assert_array_equal(kernels.segment_ids(t, 1.5), [0] * 10 + [1])
    with pytest.raises(InvalidLightCurveError, match="NaN"):
        kernels.segment_ids(np.array([0.0, np.nan, 2.0]), 1.0)
    with pytest.raises(ValueError, match="max_step"):
        kernels.segment_ids(np.arange(3.0), 0.0)
    with pytest.raises(InvalidLightCurveError, match="1-D"):
        kernels.segment_ids(np.zeros((2, 2)), 1.0)


def test_segment_ids_big_endian_and_int():
    t = np.arange(20, dtype=">f8")
    t[10:] += 5
    np.testing.assert_array_equal(kernels.segment_ids(t, 1.5), segment_ids_ref(t.astype(float), 1.5))
    np.testing.assert_array_equal(kernels.segment_ids(np.arange(5), 1.5), np.zeros(5, int))


# ----------------------------------------------------------------------------- valid_centres
@pytest.mark.parametrize("window,offset", [(200, 100), (10, 5), (7, 3), (1, 0), (5, 0), (5, 4)])
@pytest.mark.parametrize("seed", range(3))
def test_valid_centres_random(window, offset, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 3 * window + 5, size=8)  # segments shorter and longer than a window
    seg = np.repeat(np.arange(lengths.size), lengths)
    np.testing.assert_array_equal(kernels.valid_centres(seg, window, offset), valid_centres_ref(seg, window, offset))


@pytest.mark.parametrize("missing", [1, 99, 100, 101])
def test_valid_centres_at_gaps(missing):
    """stella's off-by-one: the cadence 99 after a gap's first cadence has a window reaching back across it."""
    t = times_with_gaps(1000, {499: missing})
    seg = kernels.segment_ids(t, 1.5)
    ok = kernels.valid_centres(seg, 200, 100)
    np.testing.assert_array_equal(ok, valid_centres_ref(seg, 200, 100))
    first_after = 500
    assert not ok[first_after + 99]          # window [499, 699) straddles the gap: stella scores it, we must not
    assert ok[first_after + 100]             # window [500, 700) is the first one fully after the gap
    assert ok[499 - 99] and not ok[499 - 98]  # last full window before the gap ends at cadence 499
    assert not ok[:100].any() and not ok[-99:].any()


def test_valid_centres_short_segments_score_nothing():
    seg = np.repeat(np.arange(4), [199, 1, 150, 200])
    ok = kernels.valid_centres(seg, 200, 100)
    assert not ok[:350].any()               # segments of 199, 1 and 150 cadences: nothing scorable
    assert ok[350 + 100] and ok.sum() == 1  # a segment of exactly 200: one full window


# ----------------------------------------------------------------------------- gather_windows
@pytest.mark.parametrize("seed", range(3))
def test_gather_windows_random(seed):
    rng = np.random.default_rng(seed)
    flux = rng.normal(1, 0.01, 1000).astype(np.float32)
    flux[[0, 500, 999]] = [np.inf, -np.inf, 1e30]
    starts = rng.integers(0, 1000 - 200 + 1, 300)
    starts[:2] = [0, 800]
    got = kernels.gather_windows(flux, starts, 200)
    assert got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_array_equal(got, gather_windows_ref(flux, starts, 200))


def test_gather_windows_out_buffer_and_errors():
    flux = np.arange(300, dtype=np.float32)
    out = np.empty((2, 200), np.float32)
    res = kernels.gather_windows(flux, np.array([0, 100]), 200, out=out)
    assert res is out and out[1, 0] == 100 and out[1, -1] == 299
    with pytest.raises(IndexError):
        kernels.gather_windows(flux, np.array([101]), 200)
    with pytest.raises(IndexError):
        kernels.gather_windows(flux, np.array([-1]), 200)
    with pytest.raises(ValueError, match="out"):
        kernels.gather_windows(flux, np.array([0]), 200, out=np.empty((1, 200), np.float64))
    assert kernels.gather_windows(flux, np.array([], int), 200).shape == (0, 200)


# ----------------------------------------------------------------------------- gather_padded_windows
@pytest.mark.parametrize("seed", range(3))
def test_gather_padded_windows_random(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 60, size=10)
    seg = np.repeat(np.arange(lengths.size), lengths)
    flux = rng.normal(1, 0.01, seg.size).astype(np.float32)
    centres = np.r_[0, seg.size - 1, rng.integers(0, seg.size, 50)]
    for window, offset in [(20, 10), (7, 3), (5, 0)]:
        got = kernels.gather_padded_windows(flux, seg, centres, window, offset)
        np.testing.assert_array_equal(got, gather_padded_ref(flux, seg, centres, window, offset))


def test_gather_padded_windows_never_mix_segments():
    seg = np.repeat([0, 1], [30, 30])
    flux = np.r_[np.full(30, 2.0), np.full(30, 3.0)].astype(np.float32)
    w = kernels.gather_padded_windows(flux, seg, np.arange(60), 20, 10)
    assert set(np.unique(w[:30, :, 0])) <= {1.0, 2.0} and set(np.unique(w[30:, :, 0])) <= {1.0, 3.0}
    assert np.all((w[..., 1] == 1) == (w[..., 0] != 1.0))


# ----------------------------------------------------------------------------- robust_scale_windows
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("seed", range(3))
def test_robust_scale_windows_random(channels, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(1, 0.01, (40, 21, channels)).astype(np.float32)
    if channels == 2:
        w[..., 1] = (rng.uniform(size=(40, 21)) > 0.3).astype(np.float32)
        w[0, :, 1] = 0.0   # all padding
        w[1, :, 1] = 1.0   # all real
        w[2, :, 1] = 0.0
        w[2, 5, 1] = 1.0   # a single real cadence
    w[3, 10, 0] = 5.0      # a huge flare
    w[4, :10, 0] = 1.0     # even count of equal values
    ref = robust_scale_ref(w, 0.003)
    got = kernels.robust_scale_windows(w.copy(), 0.003)
    np.testing.assert_allclose(got[..., 0], ref[..., 0], rtol=1e-5, atol=1e-5)
    if channels == 2:
        np.testing.assert_array_equal(got[..., 1], w[..., 1])


def test_robust_scale_windows_validates():
    with pytest.raises(ValueError, match="float32"):
        kernels.robust_scale_windows(np.ones((2, 5, 1)), 1.0)
    with pytest.raises(ValueError, match="scale"):
        kernels.robust_scale_windows(np.ones((2, 5, 1), np.float32), 0.0)


def test_count_peaks_matches_plain_reference():
    from flarelight.runtime.kernels import count_peaks

    rng = np.random.default_rng(11)
    cases = [np.array([]), np.array([np.nan]), np.array([3.0]), np.full(7, 2.0),  # plateaus, NaN, one cadence
             np.array([0, 5, 5, 1, 5, 0.0]), np.array([np.nan, 4, np.nan, 4, 1]), np.array([1, 2, np.inf, 2, 1.0])]
    for _ in range(300):
        y = rng.normal(0, 1, int(rng.integers(1, 60)))
        if rng.uniform() < 0.3:
            y = np.round(y)  # ties
        if rng.uniform() < 0.2:
            y[rng.integers(0, y.size)] = np.nan
        cases.append(y)
    for y in cases:
        for h in (0.0, 0.5, 1.5):
            assert count_peaks(y, h) == count_peaks_ref(y, h), (y, h)
    assert sum(count_peaks(y, 0.5) > 1 for y in cases) > 50  # the random cases do have several peaks
