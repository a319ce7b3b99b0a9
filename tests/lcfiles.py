"""Small light-curve FITS files written for tests (SPOC-like layout, simulated data)."""
from __future__ import annotations

from pathlib import Path

from flarelight.runtime.simulate import simulate_lightcurve


def small_fits(path: Path, seed: int, n_days: float = 3.0) -> Path:
    """A SPOC-like light-curve file of ``n_days`` with three simulated flares and a gap; TIC 1000+seed."""
    from astropy.io import fits

    lc, _ = simulate_lightcurve(n_days=n_days, seed=seed, n_flares=3, gap_days=(1.5, 1.6), n_holes=0)
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
