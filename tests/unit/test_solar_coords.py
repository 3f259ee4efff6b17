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
