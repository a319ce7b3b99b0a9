"""The AltaiPony contender of bench/bench_models.py (bench/_altaipony.py): flarelight's side needs no AltaiPony.

The arrays handed to the runner, the runner's JSON read back into the bench's (n, 3) [tpeak, tstart, tstop],
batching and the cache are checked with a fake runner (a plain Python script). One test runs the real
runner (bench/altaipony_runner.py) in the AltaiPony venv and is skipped when that venv is absent
(``bash bench/altaipony_env.sh`` creates it).
"""
from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "_altaipony.py"
_spec = importlib.util.spec_from_file_location("bench_altaipony", _PATH)
ap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ap)

CAD = 2.0 / 1440.0

#: a stand-in for altaipony_runner.py: same input/output format, one event per light curve around its highest
#: flux (tstart - 2 cadences .. tstop + 3), ED = number of cadences; every call appends a line to calls.txt
FAKE_RUNNER = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import numpy as np
    z = np.load(sys.argv[1])
    rows = []
    for i, name in enumerate(z["names"]):
        t, f = z[f"time_{i}"], z[f"flux_{i}"]
        k = int(np.argmax(f))
        rows.append({"name": str(name), "n_cadences": int(t.size), "error": None, "seconds": 0.0,
                     "events": {"tstart": [float(t[max(k - 2, 0)])], "tstop": [float(t[min(k + 3, t.size - 1)])],
                                "tpeak": [float(t[k])], "ed": [float(t.size)]}})
    Path(sys.argv[2]).write_text(json.dumps({"versions": {"altaipony": "fake"}, "lightcurves": rows}))
    with open(Path(__file__).with_name("calls.txt"), "a") as fh:
        fh.write(f"{len(rows)}\\n")
''')


def _lc(n: int = 3000, peak: int = 1500, seed: int = 0, amp: float = 0.05):
    """A flat noisy light curve with a flare at ``peak``; QUALITY 512 at 10 (dropped by the default bitmask),
    2048 at 11 (kept), NaN flux at 12, NaN flux_err at 13."""
    from flarelight.runtime.io import from_arrays

    rng = np.random.default_rng(seed)
    t = 1400.0 + np.arange(n) * CAD
    f = 1000.0 * (1.0 + 1e-3 * rng.standard_normal(n))
    x = (t - t[peak]) / (10 * CAD)
    f += 1000.0 * amp * np.where(x >= 0, np.exp(-x), 0.0)
    e = np.full(n, 1.0)
    q = np.zeros(n, np.int64)
    q[10], q[11] = 512, 2048
    f[12], e[13] = np.nan, np.nan
    return from_arrays(t, f, e, q, quality_bitmask="none")


def test_arrays_are_the_runtime_default_cadences():
    lc = _lc()
    arr = ap.arrays(lc)
    keep = np.ones(len(lc), bool)
    keep[[10, 12, 13]] = False  # 512 is in the default bitmask, 2048 is not; NaN flux or flux_err dropped
    for k, ref in (("time", lc.time), ("flux", lc.flux), ("flux_err", lc.flux_err)):
        np.testing.assert_array_equal(arr[k], ref[keep])
    assert ap.AltaiPony.exposure_days(None, lc) == pytest.approx(keep.sum() * CAD)


def test_inputs_written_and_events_read_back(tmp_path):
    a = {"time": np.arange(5.0), "flux": np.ones(5), "flux_err": np.full(5, 0.1)}
    b = {"time": np.arange(3.0) + 10, "flux": np.full(3, 2.0), "flux_err": np.full(3, 0.2)}
    ap.write_inputs(tmp_path / "in.npz", [("k1", a), ("k2", b)])
    with np.load(tmp_path / "in.npz") as z:
        assert list(z["names"]) == ["k1", "k2"]
        np.testing.assert_array_equal(z["time_1"], b["time"])
        np.testing.assert_array_equal(z["flux_err_0"], a["flux_err"])
    # the runner's columns -> the bench's [tpeak, tstart, tstop], sorted by tstart
    evs = ap.to_events({"tstart": [5.0, 1.0], "tstop": [6.0, 2.0], "tpeak": [5.5, 1.2], "ed": [3.0, 1.0]})
    np.testing.assert_array_equal(evs, [[1.2, 1.0, 2.0], [5.5, 5.0, 6.0]])
    assert ap.to_events({"tstart": [], "tstop": [], "tpeak": [], "ed": []}).shape == (0, 3)


def test_batch_and_cache_with_a_fake_runner(tmp_path):
    runner = tmp_path / "fake_runner.py"
    runner.write_text(FAKE_RUNNER)
    cache = tmp_path / "cache"
    lcs = [_lc(peak=p, seed=p) for p in (500, 1500, 2500)]
    pony = ap.AltaiPony(Path(sys.executable), cache, runner=runner, log=lambda m: None)
    pony.prefetch(lcs)
    assert (tmp_path / "calls.txt").read_text().split() == ["3"]  # one child process for the batch
    for lc, p in zip(lcs, (500, 1500, 2500)):
        evs = pony.events(lc)
        assert evs.shape == (1, 3)
        assert evs[0, 0] == lc.time[p] and evs[0, 1] == lc.time[p - 2] and evs[0, 2] == lc.time[p + 3]
    assert (tmp_path / "calls.txt").read_text().split() == ["3"]  # events() read the cache
    assert len(list(cache.glob("*.json"))) == 3
    # a new instance (a rerun) reads the disk cache: no child process
    again = ap.AltaiPony(Path(sys.executable), cache, runner=runner, log=lambda m: None)
    again.prefetch(lcs[:2])
    np.testing.assert_array_equal(again.events(lcs[1]), pony.events(lcs[1]))
    assert again.calls == 0 and again.versions == {"altaipony": "fake"}
    # a light curve not prefetched runs alone; different flux = a different key
    again.events(_lc(peak=700, seed=7))
    assert (tmp_path / "calls.txt").read_text().split() == ["3", "1"]


def test_bench_events_for_uses_the_contender(tmp_path):
    """bench_models.events_for routes the 'altaipony' rule to the contender's cached events (no probabilities)."""
    sys.path.insert(0, str(_PATH.parent))
    try:
        import bench_models
    finally:
        sys.path.remove(str(_PATH.parent))
    runner = tmp_path / "fake_runner.py"
    runner.write_text(FAKE_RUNNER)
    pony = bench_models._altaipony.AltaiPony(Path(sys.executable), None, runner=runner, log=lambda m: None)
    lc = _lc()
    evs = bench_models.events_for(bench_models._altaipony.RULE, pony, lc, None, None)
    assert evs.shape == (1, 3) and evs[0, 0] == lc.time[1500]
    assert not bench_models.is_network(pony) and bench_models.ProbCache.key(pony) == ()


@pytest.mark.skipif(not ap.default_python().is_file(),
                    reason="no AltaiPony venv (bash bench/altaipony_env.sh creates it)")
def test_real_runner_finds_one_big_flare(tmp_path):
    lc = _lc(n=6000, peak=3000, amp=0.05)
    pony = ap.AltaiPony(ap.default_python(), tmp_path / "cache", log=lambda m: None)
    evs = pony.events(lc)
    assert pony.calls == 1 and pony.versions["altaipony"].startswith("2.1.2")
    hit = (evs[:, 1] <= lc.time[3000] + CAD) & (evs[:, 2] >= lc.time[3000] - CAD)
    assert hit.sum() == 1, evs
    assert len(evs) <= 3, evs  # white noise of 1e-3 with flux_err 1e-3: hardly any false event
    row = json.loads(next((tmp_path / "cache").glob("*.json")).read_text())
    assert row["events"]["ed"][int(np.flatnonzero(hit)[0])] > 10.0  # injected ED ~ 0.05 x 20 min = 60 s
