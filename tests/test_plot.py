"""Pictures: plot_flares draws exactly what the catalogue measured."""
from __future__ import annotations

import numpy as np
import pytest

from flarelight.runtime.catalogue import flares_from_scored
from flarelight.runtime.scored import Scored
from flarelight.runtime.simulate import flare_profile, simulate_lightcurve

pytest.importorskip("matplotlib")


def test_plot_flares_figure(tmp_path):
    from flarelight.runtime.plot import plot_flares

    lc, flares = simulate_lightcurve(seed=2, n_flares=5)
    rel = sum(flare_profile(lc.time, f.tpeak, f.fwhm, f.amplitude) for f in flares)
    prob = np.where(rel > 0.004, 0.9, 0.02)
    cat = flares_from_scored(Scored.from_probabilities(lc, prob))
    assert len(cat.table) >= 3, "the simulated flares must give rows for the zooms to be tested"
    out = tmp_path / "f.png"
    fig = plot_flares(cat, out, max_zooms=3)
    assert out.stat().st_size > 10_000
    axes = fig.get_axes()
    assert "TIC 0" in fig._suptitle.get_text() and "sector 0" in fig._suptitle.get_text()
    assert "BTJD" in axes[0].get_xlabel() and axes[0].get_ylabel() == "normalised flux"
    zooms = [a for a in axes if a.get_xlabel() == "hours from tpeak"]
    assert len(zooms) == 3
    # each zoom's baseline line is the catalogue's baseline, not a recomputation
    med = float(np.nanmedian(lc.flux[cat.scored.prepared.kept]))
    first = zooms[0].get_lines()[1]
    assert first.get_label() == "baseline"
    drawn = np.asarray(first.get_ydata()) * med
    assert np.isin(np.round(drawn, 6), np.round(cat.baseline, 6)).all()
    # each zoom draws the fitted template on the baseline: its peak is the catalogue's amplitude above the baseline
    fitted = [ln for ln in zooms[0].get_lines() if ln.get_label() == "fitted template"]
    assert len(fitted) == 1
    k = int(zooms[0].get_title().split()[0][1:])
    row = cat.table[k]
    members = np.flatnonzero(cat.table["group"] == row["group"])
    x = np.asarray(fitted[0].get_xdata())
    tref = float(cat.table["tpeak"][members[np.argmax(cat.table["amplitude"][members])]])
    tt = tref + x / 24.0
    base = np.interp(tt, lc.time[np.isfinite(cat.baseline)], cat.baseline[np.isfinite(cat.baseline)])
    drawn_excess = np.asarray(fitted[0].get_ydata()) * med / base - 1.0
    np.testing.assert_allclose(drawn_excess, cat.model_flux(tt, members), atol=1e-9)
    assert drawn_excess.max() > 0.5 * float(np.max(cat.table["amplitude"][members]))
    empty = flares_from_scored(Scored.from_probabilities(lc, np.zeros(len(lc))))
    assert len(empty.table) == 0
    fig = plot_flares(empty, tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 5_000 and "0 flares" in fig._suptitle.get_text()
