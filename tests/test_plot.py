"""Pictures: plot_flares and the `flarelight plot` / `flarelight find` commands."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from flarelight.cli.main import cli
from flarelight.runtime.catalogue import flares_from_probabilities, read_catalogue
from flarelight.runtime.simulate import flare_profile, simulate_lightcurve


pytest.importorskip("matplotlib")


def test_plot_flares_figure(tmp_path):
    from flarelight.runtime.plot import plot_flares

    lc, flares = simulate_lightcurve(seed=2, n_flares=5)
    rel = sum(flare_profile(lc.time, f.tpeak, f.fwhm, f.amplitude) for f in flares)
    prob = np.where(rel > 0.004, 0.9, 0.02)
    t = flares_from_probabilities(lc, prob)
    out = tmp_path / "f.png"
    fig = plot_flares(lc, prob, t, out, max_zooms=3)
    assert out.stat().st_size > 10_000
    axes = fig.get_axes()
    assert "TIC 0" in fig._suptitle.get_text() and "sector 0" in fig._suptitle.get_text()
    assert "BTJD" in axes[0].get_xlabel() and axes[0].get_ylabel() == "normalised flux"
    assert sum(a.get_xlabel() == "hours from tpeak" for a in axes) == min(3, len(t))
    empty = flares_from_probabilities(lc, np.zeros(len(lc)))
    plot_flares(lc, np.zeros(len(lc)), empty, tmp_path / "empty.png")


def small_fits(path, seed):
    """A 3-day SPOC-like light-curve file (small, so the CLI's default batch stays small in memory)."""
    from astropy.io import fits

    lc, _ = simulate_lightcurve(n_days=3.0, seed=seed, n_flares=3, gap_days=(1.5, 1.6), n_holes=0)
    cols = [fits.Column(name="TIME", format="D", array=lc.time),
            fits.Column(name="PDCSAP_FLUX", format="E", array=lc.flux),
            fits.Column(name="PDCSAP_FLUX_ERR", format="E", array=lc.flux_err),
            fits.Column(name="QUALITY", format="J", array=lc.quality)]
    hdu = fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")
    hdu.header["TIMEDEL"] = 120.0 / 86400.0
    prim = fits.PrimaryHDU()
    prim.header.update(TICID=1000 + seed, SECTOR=seed)
    fits.HDUList([prim, hdu]).writeto(path)
    return path


def test_cli_find_and_plot(stella_onnx_dir, tmp_path):
    runner = CliRunner()
    f = str(small_fits(tmp_path / "a_lc.fits", 1))
    f2 = str(small_fits(tmp_path / "b_lc.fits", 2))
    res = runner.invoke(cli, ["find", f, "-m", str(stella_onnx_dir)])
    assert res.exit_code == 0, res.output
    assert "tpeak" in res.output
    out = tmp_path / "flares.ecsv"
    bad = tmp_path / "broken_lc.fits"
    bad.write_bytes(b"not a fits file" * 300)
    res = runner.invoke(cli, ["find", f, str(bad), f2, "-m", str(stella_onnx_dir), "-o", str(out)])
    assert res.exit_code == 1  # one file failed, the others were written
    assert "broken_lc.fits" in res.output
    t = read_catalogue(out)
    assert t.colnames[:3] == ["file", "tic", "sector"] and set(t["file"]) <= {"a_lc.fits", "b_lc.fits"}
    assert len(t.meta["files"]) == 2
    res = runner.invoke(cli, ["find", f, "-m", str(stella_onnx_dir), "-o", str(out)])
    assert res.exit_code != 0 and "--overwrite" in res.output
    png = tmp_path / "lc.png"
    res = runner.invoke(cli, ["plot", f, "-m", str(stella_onnx_dir), "-o", str(png)])
    assert res.exit_code == 0, res.output
    assert png.stat().st_size > 10_000
