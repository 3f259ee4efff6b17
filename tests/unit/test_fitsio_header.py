"""The kelvin FITS's helioprojective WCS puts every pixel where the sky geometry says.

A CASA image has RA increasing to the left (cdelt1 < 0) and Dec up. A pixel's
sky offset from the Sun centre is the reference pixel's offset plus the pixel
steps; its helioprojective coordinates must be sky_to_helioprojective of that
offset, for any P angle, as read back by astropy (and so by sunpy).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from solarpipe.fitsio import helioprojective_header
from solarpipe.heuristics import solar_coords as hsun


@pytest.mark.parametrize("mjd_s", [5000024225.0, 5015000000.0])  # P about -25 deg and +20 deg
@pytest.mark.parametrize("cdelt", [(-0.5, 0.5), (0.5, 0.5), (-0.5, -0.5)])
def test_helioprojective_wcs_matches_sky_geometry(mjd_s, cdelt):
    from astropy.io import fits
    from astropy.wcs import WCS

    centre = (164.6, 240.6)  # east, north of the Sun centre (arcsec)
    refpix = np.array([50.0, 40.0])
    hdr = fits.Header()
    for k, v in helioprojective_header((101, 81), refpix, np.array(cdelt), centre, mjd_s, 100e9).items():
        hdr[k] = v
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FITSFixedWarning (MJD-OBS, units...)
        wcs = WCS(hdr)
    p = hsun.solar_orientation(hsun.mjd_seconds_to_jd(mjd_s))["p_angle_deg"]
    for px, py in [(50, 40), (80, 40), (50, 70), (10, 5), (95, 75)]:
        # CASA pixel axes: x along RA (east offset = (x - ref) * cdelt1), y along Dec
        east = centre[0] + (px - refpix[0]) * cdelt[0]
        north = centre[1] + (py - refpix[1]) * cdelt[1]
        want = hsun.sky_to_helioprojective(east, north, p)
        tx, ty = wcs.pixel_to_world_values(px, py)
        got = np.array([tx, ty]) * (3600.0 if str(wcs.wcs.cunit[0]) == "deg" else 1.0)
        assert got == pytest.approx(np.array(want, float), abs=1e-3), (px, py, got, want)
