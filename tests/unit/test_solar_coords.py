"""Solar P angle, B0, radius against sunpy; helioprojective rotation round trip."""
import numpy as np
import pytest

from solarpipe.heuristics import solar_coords as h


def test_against_sunpy():
    sun = pytest.importorskip("sunpy.coordinates.sun")
    from astropy.time import Time

    for iso in ("2017-04-27T16:00:00", "2015-12-18T14:00:00", "2023-06-21T12:00:00"):
        t = Time(iso, scale="utc")
        got = h.solar_orientation(t.jd)
        assert got["p_angle_deg"] == pytest.approx(sun.P(t).deg, abs=0.02)
        assert got["b0_deg"] == pytest.approx(sun.B0(t).deg, abs=0.02)
        assert got["dsun_au"] == pytest.approx(sun.earth_distance(t).to("AU").value, rel=1e-4)
        assert got["radius_arcsec"] == pytest.approx(sun.angular_radius(t).to("arcsec").value, abs=0.5)


def test_helioprojective_rotation():
    e, n = np.array([100.0, -50.0, 0.0]), np.array([20.0, 300.0, -10.0])
    for p in (0.0, -24.5, 17.0):
        tx, ty = h.sky_to_helioprojective(e, n, p)
        e2, n2 = h.helioprojective_to_sky(tx, ty, p)
        np.testing.assert_allclose(e2, e, atol=1e-9)
        np.testing.assert_allclose(n2, n, atol=1e-9)
    tx, ty = h.sky_to_helioprojective(100.0, 0.0, 0.0)  # east on the sky is solar east (-Tx) at P=0
    assert tx == pytest.approx(-100.0) and ty == pytest.approx(0.0)


@pytest.mark.parametrize("utc", ["2017-04-27T15:37:05", "2023-10-01T12:00:00", "2024-01-05T16:00:00"])
def test_sky_to_helioprojective_agrees_with_sunpy(utc):
    """Our P-angle rotation (shared by the simulator and the FITS writer) against sunpy's
    own GCRS -> Helioprojective transformation, for an offset of ~300" from the Sun centre."""
    import warnings

    import astropy.units as u
    from astropy.coordinates import SkyCoord, get_body
    from astropy.time import Time
    from sunpy.coordinates import frames

    t = Time(utc, scale="utc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sun = get_body("sun", t)
        hpf = frames.Helioprojective(observer="earth", obstime=t)
        centre = SkyCoord(sun.ra, sun.dec, distance=sun.distance, frame=sun.frame).transform_to(hpf)
        for east, north in [(164.6, 240.6), (-300.0, 20.0)]:
            off = SkyCoord(sun.ra, sun.dec, frame=sun.frame).spherical_offsets_by(east * u.arcsec, north * u.arcsec)
            point = SkyCoord(off.ra, off.dec, distance=sun.distance, frame=sun.frame).transform_to(hpf)
            want = ((point.Tx - centre.Tx).to_value(u.arcsec), (point.Ty - centre.Ty).to_value(u.arcsec))
            p = h.solar_orientation(h.mjd_seconds_to_jd((t.mjd) * 86400.0))["p_angle_deg"]
            got = h.sky_to_helioprojective(east, north, p)
            # within 1" over ~300" (sunpy also models light time and aberration; P agrees to 0.005 deg)
            assert np.hypot(got[0] - want[0], got[1] - want[1]) < 1.0, (got, want)
