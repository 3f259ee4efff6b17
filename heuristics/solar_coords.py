"""Solar ephemeris quantities and helioprojective offsets (pure numpy, Meeus 1998).

Enough precision for imaging products (P angle ~0.01 deg, radius ~0.1"):
the position angle P of solar north, the heliographic latitude B0 of the disc
centre, the Earth-Sun distance and the apparent radius, and the conversion of
sky offsets from the Sun centre (east, north) to helioprojective (Tx, Ty).
"""
from __future__ import annotations

import math

import numpy as np

AU_M = 1.495978707e11
RSUN_M = 6.957e8  # IAU nominal solar radius (RSUN_REF)


def _sun_longitude(jd: float) -> tuple[float, float, float, float]:
    """(apparent longitude deg, true obliquity deg, distance AU, T centuries)."""
    t = (jd - 2451545.0) / 36525.0
    l0 = 280.46646 + 36000.76983 * t + 0.0003032 * t * t
    m = 357.52911 + 35999.05029 * t - 0.0001537 * t * t
    mr = math.radians(m)
    c = ((1.914602 - 0.004817 * t - 0.000014 * t * t) * math.sin(mr)
         + (0.019993 - 0.000101 * t) * math.sin(2 * mr) + 0.000289 * math.sin(3 * mr))
    true_long = l0 + c
    omega = math.radians(125.04 - 1934.136 * t)
    lam = true_long - 0.00569 - 0.00478 * math.sin(omega)
    e = 0.016708634 - 0.000042037 * t
    nu = math.radians(m + c)
    r = 1.000001018 * (1 - e * e) / (1 + e * math.cos(nu))
    eps0 = 23.0 + 26.0 / 60 + 21.448 / 3600 - (46.8150 * t) / 3600
    eps = eps0 + 0.00256 * math.cos(omega)
    return lam, eps, r, t


def solar_orientation(jd: float) -> dict[str, float]:
    """P angle (deg), B0 (deg), distance (AU, m) and apparent radius (arcsec) at a Julian date."""
    lam, eps, r, _ = _sun_longitude(jd)
    k = 73.6667 + 1.3958333 * (jd - 2396758.0) / 36525.0
    inc = 7.25
    lam_r, eps_r, k_r, inc_r = (math.radians(x) for x in (lam, eps, k, inc))
    x = math.degrees(math.atan(-math.cos(lam_r) * math.tan(eps_r)))
    y = math.degrees(math.atan(-math.cos(lam_r - k_r) * math.tan(inc_r)))
    b0 = math.degrees(math.asin(math.sin(lam_r - k_r) * math.sin(inc_r)))
    return {"p_angle_deg": x + y, "b0_deg": b0, "dsun_au": r, "dsun_m": r * AU_M,
            "radius_arcsec": math.degrees(math.atan(RSUN_M / (r * AU_M))) * 3600}


def mjd_seconds_to_jd(mjd_s: float) -> float:
    return mjd_s / 86400.0 + 2400000.5


def sky_to_helioprojective(east_arcsec, north_arcsec, p_angle_deg: float):
    """(Tx, Ty) from sky offsets relative to the Sun centre (east = +RA cos(dec)).

    Tx points to solar west, Ty to solar north (position angle P east of celestial north).
    """
    p = math.radians(p_angle_deg)
    e = np.asarray(east_arcsec, float)
    n = np.asarray(north_arcsec, float)
    return -e * math.cos(p) + n * math.sin(p), e * math.sin(p) + n * math.cos(p)


def helioprojective_to_sky(tx_arcsec, ty_arcsec, p_angle_deg: float):
    """Inverse of sky_to_helioprojective: (east, north) offsets from (Tx, Ty)."""
    p = math.radians(p_angle_deg)
    tx = np.asarray(tx_arcsec, float)
    ty = np.asarray(ty_arcsec, float)
    return -tx * math.cos(p) + ty * math.sin(p), tx * math.sin(p) + ty * math.cos(p)


def casa_shift(ra: float, dec: float, lon: float, lat: float) -> tuple[float, float]:
    """A direction moved by CASA's ephemeris-field offset (lon, lat), radians.

    casacore's ``MVDirection::shift(lon, lat, trueAngle=True)``: go ``lat`` north
    along the meridian, then ``lon`` along the great circle perpendicular to it.
    """
    d = dec + lat
    p = np.array([math.cos(d) * math.cos(ra), math.cos(d) * math.sin(ra), math.sin(d)])
    east = np.array([-math.sin(ra), math.cos(ra), 0.0])
    v = math.cos(lon) * p + math.sin(lon) * east
    return math.atan2(v[1], v[0]) % (2 * math.pi), math.asin(max(-1.0, min(1.0, float(v[2]))))
