"""flarelight's per-model probabilities equal Keras ``model.predict`` on the same windows, for all 10 stella models.

The windows and the set of scored cadences are rebuilt here with plain numpy from
``flarelight.runtime.preprocess.prepare`` (normalised kept flux and time) and stella's gap rule,
independently of the numba kernels (``segment_ids``, ``valid_centres``, ``gather_windows``).
Every scored window of the three PARITY_FILES is compared (no subsampling).
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import HAVE_TF, PARITY_FILES, STELLA_KERAS, shared_path

pytestmark = [pytest.mark.slow, pytest.mark.train,
              pytest.mark.skipif(not HAVE_TF, reason="needs TensorFlow/Keras (the trainer extra)")]

TOL = 1e-5


def numpy_windows(time: np.ndarray, flux: np.ndarray, window: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Kept-cadence positions with a full window inside one segment (stella's gap rule), and those windows."""
    steps = np.diff(time)
    gap = steps >= np.median(steps) + 1.5 * np.std(steps)
    seg = np.concatenate([[0], np.cumsum(gap)])
    n = flux.size
    i = np.arange(n)
    lo, hi = i - offset, i - offset + window - 1
    inside = (lo >= 0) & (hi < n)
    full = np.zeros(n, bool)
    full[inside] = (seg[lo[inside]] == seg[i[inside]]) & (seg[hi[inside]] == seg[i[inside]])
    centres = np.flatnonzero(full)
    windows = np.lib.stride_tricks.sliding_window_view(flux, window)[centres - offset]
    return centres, np.ascontiguousarray(windows, dtype=np.float32)


@pytest.mark.parametrize("path", PARITY_FILES, ids=lambda p: p.name.split("-")[2])
def test_every_model_matches_keras(path, fl_model, stella_scored, keras_predict) -> None:
    from flarelight.runtime import read_lightcurve
    from flarelight.runtime.preprocess import prepare

    assert [p.stem for p in fl_model.paths] == [p.stem for p in STELLA_KERAS]
    lc = read_lightcurve(shared_path("data", "tess", path.name))
    pre = fl_model.preprocessing
    scored = stella_scored(path)
    mean, per_model = scored.prob, scored.members
    assert np.array_equal(scored.lc.flux, lc.flux, equal_nan=True)
    prep = prepare(lc, pre)

    centres, windows = numpy_windows(prep.time, prep.flux, pre.window, pre.offset)
    rows = prep.kept[centres]
    assert centres.size > 10_000, "expected most of a sector to be scored"
    # scored exactly where a full in-segment window exists, NaN everywhere else
    assert np.array_equal(np.flatnonzero(np.isfinite(mean)), rows)
    assert np.array_equal(np.isfinite(per_model), np.broadcast_to(np.isfinite(mean), per_model.shape))

    refs = []
    for k in range(len(STELLA_KERAS)):
        ref = keras_predict(k, windows)
        refs.append(ref)
        diff = np.abs(per_model[k, rows] - ref)
        assert diff.max() <= TOL, f"model {STELLA_KERAS[k].stem}: max |onnx - keras| = {diff.max():.3g}"
    ens = np.mean(np.asarray(refs, np.float64), axis=0)
    assert np.abs(mean[rows] - ens).max() <= TOL
