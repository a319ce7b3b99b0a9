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


# ----------------------------------------------------------------------------- checksums, corrupted files
def _plain_ones_complement(words) -> int:
    """The FITS ones'-complement sum, word by word (the reference for the vectorised one)."""
    total = 0
    for w in words:
        total += int(w)
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def test_ones_complement_sum_matches_plain_reference():
    from flarelight.runtime import checksum

    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 5000):
        words = rng.integers(0, 2**32, n, dtype=np.uint64).astype(">u4")
        assert checksum.ones_complement_sum(words) == _plain_ones_complement(words)
    big = np.full(3 * (1 << 20) + 5, 0xFFFFFFFF, ">u4")  # several chunks, every carry folded
    assert checksum.ones_complement_sum(big) == 0xFFFFFFFF


def test_every_shared_file_passes_its_checksum():
    from flarelight.runtime.checksum import checksum_problem

    files = sorted(TESS.glob("*.fits")) + sorted((TESS / "more").glob("*.fits"))
    checked = 0
    for f in files:
        raw = np.fromfile(f, np.uint8)
        with fits.open(f) as h:
            for i, hdu in enumerate(h):
                info = h.fileinfo(i)
                assert checksum_problem(raw, hdu.header, info["hdrLoc"], info["datLoc"],
                                        info["datLoc"] + info["datSpan"]) is None, (f.name, i)
                checked += "CHECKSUM" in hdu.header
    assert checked >= 2 * len(files)  # SPOC files carry CHECKSUM on every HDU (and no DATASUM)
    read_lightcurve(SPOC)  # verified by default, no warning


@pytest.mark.parametrize("where", ["data", "header"])
def test_checksum_mismatch_is_a_corrupt_file(tmp_path, where):
    from flarelight.runtime.errors import CorruptFileError

    raw = bytearray(SPOC.read_bytes())
    with fits.open(SPOC) as h:
        info = h.fileinfo(1)
        dtype = h[1].data.dtype
    if where == "data":  # a bit of one PDCSAP_FLUX value: the file still parses, one flux is wrong
        pos = info["datLoc"] + 2000 * dtype.itemsize + dtype.fields["PDCSAP_FLUX"][1] + 1
    else:
        card = raw.index(b"TSTART", info["hdrLoc"])
        pos = raw.index(b".", card) + 3  # a digit of TSTART's value
    raw[pos] = ord("7") if raw[pos] != ord("7") else ord("3")
    bad = tmp_path / "flipped.fits"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=r"flipped.fits: HDU 1 \(LIGHTCURVE\): CHECKSUM fails.*download"):
        read_lightcurve(bad)
    lc = read_lightcurve(bad, verify_checksum=False)  # the escape hatch reads it anyway
    assert len(lc) == len(read_lightcurve(SPOC))


def test_datasum_mismatch_names_the_data(tmp_path):
    from flarelight.runtime.errors import CorruptFileError

    path = tmp_path / "sums.fits"
    cols = [fits.Column(name="TIME", format="D", array=1500 + np.arange(400) / 720.0),
            fits.Column(name="PDCSAP_FLUX", format="E", array=np.ones(400))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")]).writeto(
        path, checksum=True)
    assert len(read_lightcurve(path)) == 400
    with fits.open(path) as h:
        start = h.fileinfo(1)["datLoc"]
    raw = bytearray(path.read_bytes())
    raw[start + 8 + 2] ^= 0x01  # the first flux value
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="differs from DATASUM"):
        read_lightcurve(path)


def test_gzipped_file_is_read_and_verified(tmp_path):
    import gzip

    gz = tmp_path / "lc.fits.gz"
    gz.write_bytes(gzip.compress(SPOC.read_bytes()))
    np.testing.assert_array_equal(read_lightcurve(gz).flux, read_lightcurve(SPOC).flux, strict=True)


def _header_fuzz(tmp_path, old: bytes, new: bytes):
    raw = SPOC.read_bytes()
    assert old in raw
    bad = tmp_path / "fuzzed.fits"
    bad.write_bytes(raw.replace(old, new, 1))
    return bad


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")
@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
@pytest.mark.parametrize("old,new", [
    (b"TFORM1  = 'D       '", b"TFORM1  = '&       '"),  # astropy VerifyError: Format '&' is not recognized
    (b"TTYPE1  = 'TIME    '", b"TTYPE1  =           "),  # a column name becomes None (was an AttributeError)
])
def test_corrupted_headers_are_read_errors(tmp_path, old, new):
    bad = _header_fuzz(tmp_path, old, new)
    for verify in (True, False):  # caught by the checksum, and without it by the reader
        with pytest.raises(LightCurveReadError, match="fuzzed.fits"):
            read_lightcurve(bad, verify_checksum=verify)


def test_zeroed_time_says_the_file_looks_corrupted(tmp_path):
    path = tmp_path / "zeroed.fits"
    shutil.copy(SPOC, path)
    with fits.open(path, mode="update") as h:  # (astropy updates the CHECKSUM cards: the sums pass)
        h[1].data["TIME"][3000:] = 0.0
    for verify in (True, False):
        with pytest.raises(LightCurveReadError, match="looks corrupted: 17076 of its 20076 finite TIME values are "
                                                      "exactly 0") as exc:
            read_lightcurve(path, verify_checksum=verify)
        assert "np.argsort" not in str(exc.value)


# ----------------------------------------------------------------------------- float32 time
def test_float32_time_is_refused_naming_the_lost_precision():
    lc = read_lightcurve(SPOC)
    t32 = lc.time.astype(np.float32)
    with pytest.raises(InvalidLightCurveError, match=r"held in float32.*resolves only 0.000122 d \(10.5 s\)") as e:
        from_arrays(t32, lc.flux)
    assert "% of the median step" in str(e.value) and "float64" in str(e.value)
    with pytest.raises(InvalidLightCurveError, match="rounded to float32 precision"):  # cast back: still caught
        from_arrays(t32.astype(np.float64), lc.flux)


def test_full_bjd_float32_names_the_real_cause_not_np_unique():
    lc = read_lightcurve(SPOC)
    bjd = (lc.time + 2457000.0).astype(np.float32)
    for t in (bjd, bjd.astype(np.float64)):
        with pytest.raises(InvalidLightCurveError, match="time stamps collide") as exc:
            from_arrays(t, lc.flux)
        assert not isinstance(exc.value, DuplicateTimeError) and "np.unique" not in str(exc.value)


def test_float32_time_that_keeps_the_cadence_is_accepted():
    t = np.arange(0, 27, 2 / 1440).astype(np.float32)  # days since the start: 0.16 s resolution
    assert from_arrays(t, np.ones(t.size)).time.dtype == np.float64
    grid = 1500 + np.arange(2000) / 1024.0  # an exact float64 grid that happens to be float32-representable
    assert len(from_arrays(grid, np.ones(grid.size))) == 2000
    with pytest.raises(DuplicateTimeError, match="np.unique"):  # a real duplicate keeps its own message
        from_arrays(np.array([0.0, 1.0, 1.0, 2.0], np.float32), np.ones(4))
