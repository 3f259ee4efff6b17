"""Sky-model and total-power (TP) map images (CASA image + FITS).

Both are written in **K** (Rayleigh-Jeans brightness temperature) with an
equatorial SIN (RA---SIN/DEC--SIN, J2000) coordinate system whose reference
pixel is the Sun centre at the reference time ``t_ref`` (the topocentric
ephemeris position used for the fields), RA increasing to the left. Extra FITS
keywords give the solar geometry: ``SOLAR_P`` and ``SOLAR_B0`` (deg),
``RSUN_OBS`` (arcsec), ``DSUN_OBS`` (m), ``SUNCENRA``/``SUNCENDE`` (deg) and
``SIMCONV`` (this convention). Helioprojective coordinates follow from sky
offsets by the P-angle rotation (:func:`.ephemeris.sky_to_hp`).

* sky model: exactly the pixels the visibilities were predicted from
  (multiply by ``2 k nu^2 / c^2 * pixel^2`` for Jy/pixel);
* TP map: the same Sun model over the whole disc, pixel-averaged and convolved
  with a Gaussian TP beam of FWHM ``1.2 lambda / 12 m`` at the band centre
  (BMAJ = BMIN = FWHM, BPA = 0), the variable feature at its mean level over the
  science scans.
"""
from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np

from .sky import C_LIGHT, SkyGrid, SunModel

LOG = logging.getLogger(__name__)


def _write_image(image_path: str, fits_path: str, data_xy: np.ndarray, ra0: float, dec0: float,
                 refpix: tuple[float, float], pixel_arcsec: float, freq_hz: float, date_obs_mjd_s: float,
                 beam_fwhm_arcsec: float | None, extra: dict) -> None:
    """Write ``data_xy[ix, iy]`` (RA axis first, RA increasing to the left) as CASA image and FITS."""
    import casatools

    ia = casatools.image()
    cs = casatools.coordsys()
    me = casatools.measures()
    qa = casatools.quanta()
    for p in (image_path,):
        if Path(p).exists():
            shutil.rmtree(p)
    csys = cs.newcoordsys(direction=True, spectral=True, stokes=["I"])
    csys.setreferencecode("J2000", "direction", True)
    csys.setprojection("SIN")
    csys.setunits(["rad", "rad", "", "Hz"])
    inc = pixel_arcsec * math.pi / 180.0 / 3600.0
    csys.setincrement([-inc, inc, 1.0, 1.0e6])
    csys.setreferencevalue([ra0, dec0, 1.0, freq_hz])
    csys.setreferencepixel([refpix[0], refpix[1], 0.0, 0.0])
    csys.setrestfrequency(qa.quantity(freq_hz, "Hz"))
    csys.setepoch(me.epoch("UTC", qa.quantity(date_obs_mjd_s, "s")))
    csys.settelescope("ALMA")
    pix = data_xy.astype(np.float32)[:, :, None, None]
    ia.fromarray(outfile=image_path, pixels=pix, csys=csys.torecord(), overwrite=True)
    try:
        ia.setbrightnessunit("K")
        if beam_fwhm_arcsec:
            ia.setrestoringbeam(major=qa.quantity(beam_fwhm_arcsec, "arcsec"),
                                minor=qa.quantity(beam_fwhm_arcsec, "arcsec"), pa=qa.quantity(0.0, "deg"))
        ia.tofits(outfile=fits_path, velocity=False, overwrite=True, stokeslast=True)
    finally:
        ia.close()
        ia.done()
        csys.done()
    from astropy.io import fits

    with fits.open(fits_path, mode="update") as hdul:
        h = hdul[0].header
        for k, (v, c) in extra.items():
            h[k] = (v, c)
        h["BUNIT"] = "K"
        hdul.flush()


def write_sky_model(grid: SkyGrid, out_base: str, ra0: float, dec0: float, freq_hz: float, t_ref: float,
                    extra: dict) -> tuple[str, str]:
    """The sky-model grid (K) as ``<out_base>.image`` and ``<out_base>.fits``."""
    ny, nx = grid.t_static.shape
    data = grid.t_static[:, ::-1].T  # [ix', iy] with ix' increasing westwards
    refx = (nx - 1) + grid.xi0 / grid.pixel_arcsec
    refy = -grid.eta0 / grid.pixel_arcsec
    img, fit = out_base + ".image", out_base + ".fits"
    _write_image(img, fit, data, ra0, dec0, (refx, refy), grid.pixel_arcsec, freq_hz, t_ref, None, extra)
    if grid.t_var is not None:
        _write_image(out_base + "_variable.image", out_base + "_variable.fits", grid.t_var[:, ::-1].T, ra0, dec0,
                     (refx, refy), grid.pixel_arcsec, freq_hz, t_ref, None, extra)
    return img, fit


def tp_map(model: SunModel, freq_hz: float, light_level: float) -> tuple[np.ndarray, float, float, float]:
    """Full-disc TP map (K) on an east/north grid: (t[iy, ix], xi0, pixel, beam FWHM arcsec)."""
    from scipy.ndimage import gaussian_filter

    fwhm = math.degrees(1.2 * C_LIGHT / freq_hz / 12.0) * 3600.0
    pixel = round(fwhm / 10.0, 3)
    half = model.radius_arcsec + 4.0 * fwhm
    n = int(math.ceil(half / pixel))
    ax = np.arange(-n, n + 1) * pixel
    xx, yy = np.meshgrid(ax, ax)
    t = model.pixel_average(xx, yy, pixel, "static", oversample=5)
    if model.has_variable and light_level:
        t = t + light_level * model.pixel_average(xx, yy, pixel, "variable", oversample=5)
    sigma_pix = fwhm / pixel / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    tconv = gaussian_filter(t, sigma_pix, mode="constant", cval=0.0)
    return tconv, float(ax[0]), pixel, fwhm


def write_tp_map(model: SunModel, out_base: str, ra0: float, dec0: float, freq_hz: float, t_ref: float,
                 light_level: float, extra: dict) -> dict:
    """Write the TP map; returns its truth description."""
    t, x0, pixel, fwhm = tp_map(model, freq_hz, light_level)
    n = t.shape[0]
    data = t[:, ::-1].T
    ref = (n - 1) / 2.0
    img, fit = out_base + ".image", out_base + ".fits"
    _write_image(img, fit, data, ra0, dec0, (ref, ref), pixel, freq_hz, t_ref, fwhm, extra)
    LOG.info("TP map: %d x %d pixels of %.2f arcsec, beam %.1f arcsec", n, n, pixel, fwhm)
    return {"fits": fit, "image": img, "unit": "K", "beam_fwhm_arcsec": fwhm, "pixel_arcsec": pixel,
            "freq_hz": freq_hz, "shape": [n, n], "centre": "Sun centre (topocentric) at t_ref",
            "wcs": "RA---SIN/DEC--SIN J2000, reference pixel = Sun centre", "date_obs_mjd_s": t_ref,
            "peak_K": float(t.max()), "disc_centre_K": float(t[n // 2, n // 2]),
            "variable_feature_level": float(light_level)}
