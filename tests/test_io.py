"""Reading light curves: real SPOC files, lightkurve objects, arrays, and every kind of bad input."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits

from conftest import TESS, shared_path
from flarelight.runtime import (AllNaNError, DuplicateTimeError, InvalidLightCurveError, LightCurveReadError,
                                MissingColumnError, UnsortedTimeError, from_arrays, read_lightcurve)
from flarelight.runtime import quality as q

SPOC = TESS / "tess2018206045859-s0001-0000000031740375-0120-s_lc.fits"


def test_read_spoc_file_columns_and_meta():
    path = shared_path("data", "tess", SPOC.name)
    lc = read_lightcurve(path)
    with fits.open(path) as h:
        d = h[1].data
        np.testing.assert_array_equal(lc.time, d["TIME"].astype(float))
        np.testing.assert_array_equal(lc.flux, d["PDCSAP_FLUX"].astype(float))
        np.testing.assert_array_equal(lc.flux_err, d["PDCSAP_FLUX_ERR"].astype(float))
        expected_bad = ~np.isfinite(d["TIME"]) | ~np.isfinite(d["PDCSAP_FLUX"]) | ((d["QUALITY"] & q.DEFAULT_BITMASK) != 0)
        np.testing.assert_array_equal(lc.bad, expected_bad)
    assert lc.meta["tic"] == 31740375 and lc.meta["sector"] == 1
    assert lc.meta["camera"] in (1, 2, 3, 4) and lc.meta["ccd"] in (1, 2, 3, 4)
    assert lc.meta["cadence_s"] == pytest.approx(120.0, rel=1e-3)
    assert lc.time.dtype == np.float64 and lc.time.dtype.byteorder in ("=", "<")


def test_read_sap_flux_and_bitmasks():
    sap = read_lightcurve(SPOC, flux_column="sap_flux")
    with fits.open(SPOC) as h:
        np.testing.assert_array_equal(sap.flux, h[1].data["SAP_FLUX"].astype(float))
    n_none = read_lightcurve(SPOC, quality_bitmask="none").bad.sum()
    n_def = read_lightcurve(SPOC, quality_bitmask="default").bad.sum()
    n_hard = read_lightcurve(SPOC, quality_bitmask="hard").bad.sum()
    n_any = read_lightcurve(SPOC, quality_bitmask="any").bad.sum()
    assert n_none <= n_def <= n_hard <= n_any
    assert n_none < n_any  # this file has flagged cadences
    assert read_lightcurve(SPOC, quality_bitmask=q.DEFAULT_BITMASK).bad.sum() == n_def


def test_bitmasks_match_lightkurve():
    lk = pytest.importorskip("lightkurve")
    flags = lk.utils.TessQualityFlags
    assert q.DEFAULT_BITMASK == flags.DEFAULT_BITMASK
    assert q.HARD_BITMASK == flags.HARD_BITMASK
    assert q.HARDEST_BITMASK == flags.HARDEST_BITMASK


def test_read_lightkurve_object_matches_fits():
    lk = pytest.importorskip("lightkurve")
    from flarelight.runtime import as_lightcurve

    lkc = lk.read(SPOC, quality_bitmask="default")
    ours = as_lightcurve(lkc)
    direct = read_lightcurve(SPOC)
    assert ours.meta["tic"] == 31740375 and ours.meta["sector"] == 1
    # lightkurve drops the flagged rows; every row it keeps must match ours
    idx = np.searchsorted(direct.time[np.isfinite(direct.time)], ours.time[np.isfinite(ours.time)])
    np.testing.assert_allclose(ours.flux[np.isfinite(ours.time)], direct.flux[np.isfinite(direct.time)][idx], equal_nan=True)


def test_custom_aperture_file_needs_flux_column():
    ucd = sorted((TESS / "derived" / "ucd_custom_aperture").glob("*.fits"))[0]
    with pytest.raises(MissingColumnError, match="flux_column='flux'"):
        read_lightcurve(ucd)
    lc = read_lightcurve(ucd, flux_column="flux")
    assert lc.good.sum() > 1000 and lc.meta["tic"] is not None


# ----------------------------------------------------------------------------- bad files
def test_missing_file(tmp_path):
    with pytest.raises(LightCurveReadError, match="no such file"):
        read_lightcurve(tmp_path / "nope.fits")


@pytest.mark.parametrize("keep", [100, 2880, 2880 * 3 + 17, -2880])
def test_truncated_file(tmp_path, keep):
    raw = SPOC.read_bytes()
    bad = tmp_path / "trunc.fits"
    bad.write_bytes(raw[:keep] if keep > 0 else raw[:keep])
    with pytest.raises(LightCurveReadError) as exc:
        read_lightcurve(bad)
    assert "trunc.fits" in str(exc.value)


def test_corrupted_file(tmp_path):
    raw = bytearray(SPOC.read_bytes())
    raw[:2880] = b"X" * 2880  # primary header destroyed
    bad = tmp_path / "corrupt.fits"
    bad.write_bytes(bytes(raw))
    with pytest.raises(LightCurveReadError, match="corrupt.fits"):
        read_lightcurve(bad)
    txt = tmp_path / "text.fits"
    txt.write_text("not a fits file\n" * 400)
    with pytest.raises(LightCurveReadError):
        read_lightcurve(txt)


def test_fits_that_is_not_a_lightcurve(tmp_path):
    img = tmp_path / "image.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((10, 10)))]).writeto(img)
    with pytest.raises(LightCurveReadError, match="not a light-curve file"):
        read_lightcurve(img)


def test_missing_columns(tmp_path):
    path = tmp_path / "nocol.fits"
    cols = [fits.Column(name="TIME", format="D", array=np.arange(300.0)),
            fits.Column(name="SAP_FLUX", format="E", array=np.ones(300))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")]).writeto(path)
    with pytest.raises(MissingColumnError, match="PDCSAP_FLUX"):
        read_lightcurve(path)
    assert read_lightcurve(path, flux_column="sap_flux").quality is None
    notime = tmp_path / "notime.fits"
    cols = [fits.Column(name="PDCSAP_FLUX", format="E", array=np.ones(300))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")]).writeto(notime)
    with pytest.raises(MissingColumnError, match="TIME"):
        read_lightcurve(notime)


def test_all_nan_file(tmp_path):
    path = tmp_path / "allnan.fits"
    shutil.copy(SPOC, path)
    with fits.open(path, mode="update") as h:
        h[1].data["PDCSAP_FLUX"][:] = np.nan
    with pytest.raises(AllNaNError, match="allnan.fits"):
        read_lightcurve(path)


def test_bad_bitmask_name():
    with pytest.raises(ValueError, match="quality_bitmask"):
        read_lightcurve(SPOC, quality_bitmask="medium")


# ----------------------------------------------------------------------------- arrays
def test_arrays_big_endian_and_integer_are_converted():
    t = np.arange(500.0)
    f = np.arange(500) + 1000
    a = from_arrays(t.astype(">f8"), f.astype(">i4"))
    b = from_arrays(t, f.astype(float))
    np.testing.assert_array_equal(a.flux, b.flux)
    assert a.flux.dtype == np.float64 and a.flux.dtype.isnative


def test_arrays_nan_inf_are_masked_not_dropped():
    t = np.arange(10.0)
    f = np.ones(10)
    f[[0, 4, 9]] = [np.nan, np.inf, -np.inf]
    t[5] = np.nan
    lc = from_arrays(t, f)
    assert len(lc) == 10
    np.testing.assert_array_equal(np.flatnonzero(lc.bad), [0, 4, 5, 9])


@pytest.mark.parametrize("time,flux,err,exc,match", [
    (np.arange(5.0), np.ones(4), None, InvalidLightCurveError, "flux has 4"),
    (np.arange(5.0), np.ones(5), np.ones(3), InvalidLightCurveError, "flux_err has 3"),
    (np.arange(6.0).reshape(2, 3), np.ones(6), None, InvalidLightCurveError, "1-D"),
    (np.array(["a", "b"]), np.ones(2), None, InvalidLightCurveError, "dtype"),
    (np.arange(5.0), np.array(["1"] * 5), None, InvalidLightCurveError, "dtype"),
    (np.array([0.0, 2.0, 1.0]), np.ones(3), None, UnsortedTimeError, "sort"),
    (np.array([0.0, 1.0, 1.0]), np.ones(3), None, DuplicateTimeError, "duplicate"),
    (np.arange(4.0), np.full(4, np.nan), None, AllNaNError, "no usable cadence"),
])
def test_array_errors(time, flux, err, exc, match):
    with pytest.raises(exc, match=match):
        from_arrays(time, flux, err)


def test_unsorted_ignores_nan_times_and_quality_checks():
    lc = from_arrays(np.array([0.0, np.nan, 1.0, 2.0]), np.ones(4))
    assert lc.bad.tolist() == [False, True, False, False]
    with pytest.raises(InvalidLightCurveError, match="quality"):
        from_arrays(np.arange(3.0), np.ones(3), quality=np.ones(3) * 0.5)
    lc = from_arrays(np.arange(3.0), np.ones(3), quality=np.array([0, 32, 4096], ">i4"))
    assert lc.bad.tolist() == [False, True, False]  # 4096 (straylight) is not in the default mask
