"""FITS products in kelvin with a helioprojective WCS (readable by astropy and sunpy).

The CASA image (RA/Dec, Jy/beam) of a Sun field tracked with its ephemeris is
converted with the Rayleigh-Jeans factor of its restoring beam and given
HPLN-TAN/HPLT-TAN axes: the reference pixel's helioprojective coordinates
come from its sky offset from the Sun centre, and the axes are rotated by the
solar P angle. Pixels outside the primary-beam limit are NaN.
"""
from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

import numpy as np

from .heuristics import imaging as himg
from .heuristics import solar_coords as hsun


def casa_image_plane(path: str | Path) -> dict[str, Any]:
    """Pixels (x, y) of the first channel/Stokes, mask, beam, axes increments (arcsec),
    reference pixel (0-based), frequency and unit of a CASA image."""
    from casatools import image

    ia = image()
    ia.open(str(path))
    try:
        data = ia.getchunk(getmask=False)[:, :, 0, 0].astype(float)
        mask = ia.getchunk(getmask=True)[:, :, 0, 0].astype(bool)
        cs = ia.coordsys()
        inc = cs.increment(format="n", type="direction")["numeric"]
        refpix = cs.referencepixel(type="direction")["numeric"]
        freq = float(cs.referencevalue(format="n", type="spectral")["numeric"][0])
        beam = ia.restoringbeam()
        unit = ia.brightnessunit()
        epoch = cs.epoch()
        cs.done()
    finally:
        ia.close()
    if "beams" in beam:  # per-plane beams: take the first
        beam = beam["beams"]["*0"]["*0"]
    if "major" not in beam:  # no beam (e.g. the .pb image)
        beam = {k: {"value": float("nan"), "unit": "arcsec"} for k in ("major", "minor")}
        beam["positionangle"] = {"value": float("nan"), "unit": "deg"}
    mjd_s = None
    if isinstance(epoch, dict) and "m0" in epoch and epoch["m0"].get("value", 0) > 0:
        mjd_s = float(epoch["m0"]["value"]) * (86400.0 if epoch["m0"].get("unit", "d") == "d" else 1.0)
    return {"data": np.where(mask, data, np.nan), "cdelt_arcsec": np.degrees(inc[:2]) * 3600, "mjd_s": mjd_s,
            "refpix": refpix[:2], "freq_hz": freq, "unit": unit,
            "bmaj": float(beam["major"]["value"]) * (60.0 if beam["major"]["unit"] == "arcmin" else 1.0),
            "bmin": float(beam["minor"]["value"]) * (60.0 if beam["minor"]["unit"] == "arcmin" else 1.0),
            "bpa": float(beam["positionangle"]["value"])}


def helioprojective_header(shape: tuple[int, int], refpix: np.ndarray, cdelt_arcsec: np.ndarray,
                           centre_sky_offset_arcsec: tuple[float, float], mjd_s: float,
                           freq_hz: float) -> dict[str, Any]:
    """FITS keywords of a 2-D helioprojective image whose reference pixel lies
    (east, north) arcsec from the Sun centre, pixel axes along -RA and +Dec (signs
    from ``cdelt_arcsec``)."""
    jd = hsun.mjd_seconds_to_jd(mjd_s)
    sun = hsun.solar_orientation(jd)
    p = math.radians(sun["p_angle_deg"])
    tx, ty = hsun.sky_to_helioprojective(*centre_sky_offset_arcsec, sun["p_angle_deg"])
    # pixel axes as sky directions: +x goes west if cdelt1 < 0, +y north if cdelt2 > 0
    sx = 1.0 if cdelt_arcsec[0] < 0 else -1.0  # +1: x towards west (RA decreasing)
    sy = 1.0 if cdelt_arcsec[1] > 0 else -1.0
    date = _dt.datetime(1858, 11, 17) + _dt.timedelta(seconds=float(mjd_s))
    return {
        "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec",
        "CRPIX1": float(refpix[0]) + 1.0, "CRPIX2": float(refpix[1]) + 1.0,
        "CRVAL1": float(tx), "CRVAL2": float(ty),
        "CDELT1": float(abs(cdelt_arcsec[0])), "CDELT2": float(abs(cdelt_arcsec[1])),
        # [Tx, Ty] = R(P) [west, north]; pixel steps are sx*west, sy*north
        "PC1_1": math.cos(p) * sx, "PC1_2": math.sin(p) * sy,
        "PC2_1": -math.sin(p) * sx, "PC2_2": math.cos(p) * sy,
        "DATE-OBS": date.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], "MJD-OBS": float(mjd_s) / 86400.0,
        "TIMESYS": "UTC",
        "DSUN_OBS": sun["dsun_m"], "HGLN_OBS": 0.0, "HGLT_OBS": sun["b0_deg"],
        "RSUN_REF": hsun.RSUN_M, "RSUN_OBS": sun["radius_arcsec"],
        "SOLAR_P": sun["p_angle_deg"], "WAVELNTH": 299792458.0 / freq_hz * 1e3, "WAVEUNIT": "mm",
        "FREQ": freq_hz, "TELESCOP": "ALMA", "INSTRUME": "ALMA", "OBSRVTRY": "ALMA",
    }


def write_kelvin_fits(image_path: str | Path, out: str | Path, centre_sky_offset_arcsec: tuple[float, float],
                      mjd_s: float, extra: dict[str, Any] | None = None) -> Path:
    """Write a CASA Sun image (Jy/beam) as a kelvin FITS with helioprojective axes."""
    from astropy.io import fits

    img = casa_image_plane(image_path)
    factor = himg.jy_per_beam_to_kelvin(img["freq_hz"], img["bmaj"], img["bmin"])
    hdr = fits.Header()
    for k, v in helioprojective_header(img["data"].shape, img["refpix"], img["cdelt_arcsec"],
                                       centre_sky_offset_arcsec, mjd_s, img["freq_hz"]).items():
        hdr[k] = v
    hdr["BUNIT"] = "K"
    hdr["BTYPE"] = "Brightness temperature (Rayleigh-Jeans)"
    hdr["BMAJ"], hdr["BMIN"], hdr["BPA"] = img["bmaj"] / 3600, img["bmin"] / 3600, img["bpa"]
    hdr["JYB2K"] = (factor, "K per Jy/beam (Rayleigh-Jeans, restoring beam)")
    hdr["ORIGIN"] = "solarpipe"
    for k, v in (extra or {}).items():
        hdr[k] = v
    fits.PrimaryHDU(data=(img["data"] * factor).T.astype(np.float32), header=hdr).writeto(out, overwrite=True)
    return Path(out)
