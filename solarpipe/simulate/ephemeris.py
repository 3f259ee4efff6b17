"""Sun geometry for the simulator: topocentric ephemeris, P/B0 angles, radius, offsets.

Why our own ephemeris: casadata's JPL Sun table is geocentric and daily, and a
geocentric Sun is ~6 arcsec (parallax) away from where ALMA sees it. The
simulator computes the *astrometric topocentric* direction from ALMA (light-time
corrected, ICRS/J2000 axes, no aberration; what JPL Horizons calls
"astrometric RA/Dec" for an observer at the site) with astropy's built-in
ephemeris, samples it every 5 minutes and writes it as a CASA ephemeris table
that ``ms.addephemeris`` attaches to the Sun fields.

Sky-plane conventions used throughout the simulator:

* ``xi``/``eta``: tangent-plane (SIN) offsets in arcsec, ``xi`` towards east
  (increasing RA), ``eta`` towards north, from the Sun centre.
* helioprojective ``x``/``y`` (arcsec): ``x`` towards solar west, ``y`` towards
  solar north; they map to the sky by the solar P angle (position angle of the
  solar north pole, east of celestial north):
  ``xi = -x cos P + y sin P``, ``eta = x sin P + y cos P``.
* CASA's ephemeris-field offsets (FIELD PHASE_DIR when EPHEMERIS_ID >= 0) follow
  casacore's ``MVDirection::shift(lon, lat, trueAngle=True)``: the direction is
  moved by the true angle ``lon`` along the great circle through
  ``(ra_eph, dec_eph + lat)`` perpendicular to its meridian.
"""
from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np

from ..heuristics.solar_coords import casa_shift as _casa_shift
from ..heuristics.solar_coords import helioprojective_to_sky, sky_to_helioprojective

LOG = logging.getLogger(__name__)

ARCSEC = math.pi / 180.0 / 3600.0
AU_KM = 149_597_870.7
SUN_RADIUS_KM = 695_700.0
#: ALMA array reference (casacore ``me.observatory('ALMA')``, WGS84).
ALMA_LON_RAD = -1.1825465955049892
ALMA_LAT_RAD = -0.4018251640113072
ALMA_HEIGHT_M = 5056.8


def _astropy_offline() -> None:
    """Keep astropy from trying to download IERS tables (offline machines)."""
    from astropy.utils import iers

    iers.conf.auto_download = False
    iers.conf.auto_max_age = None


def alma_location():
    """ALMA as an astropy EarthLocation."""
    import astropy.units as u
    from astropy.coordinates import EarthLocation

    return EarthLocation.from_geodetic(lon=ALMA_LON_RAD * u.rad, lat=ALMA_LAT_RAD * u.rad,
                                       height=ALMA_HEIGHT_M * u.m)


def sun_topocentric(mjd_utc: np.ndarray) -> dict[str, np.ndarray]:
    """Astrometric topocentric Sun seen from ALMA at the given UTC MJDs.

    Returns ``ra``, ``dec`` (rad, ICRS), ``dist_au`` and ``radvel_au_d`` arrays.
    """
    _astropy_offline()
    import astropy.units as u
    from astropy.coordinates import get_body_barycentric_posvel
    from astropy.time import Time

    mjd_utc = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    t = Time(mjd_utc, format="mjd", scale="utc")
    loc = alma_location()
    pe, ve = get_body_barycentric_posvel("earth", t)
    og, ov = loc.get_gcrs_posvel(t)
    robs = (pe.xyz + og.xyz).to(u.km).value
    vobs = (ve.xyz + ov.xyz).to(u.km / u.s).value
    # one light-time iteration is plenty for the Sun (moves ~13 m/s about the SSB)
    ps, vs = get_body_barycentric_posvel("sun", t)
    d = ps.xyz.to(u.km).value - robs
    lt_s = np.linalg.norm(d, axis=0) / 299792.458
    ps2, _ = get_body_barycentric_posvel("sun", t - lt_s * u.s)
    d = ps2.xyz.to(u.km).value - robs
    dist = np.linalg.norm(d, axis=0)
    dv = vs.xyz.to(u.km / u.s).value - vobs
    radvel = np.sum(d * dv, axis=0) / dist  # km/s
    ra = np.mod(np.arctan2(d[1], d[0]), 2 * np.pi)
    dec = np.arcsin(d[2] / dist)
    return {"ra": ra, "dec": dec, "dist_au": dist / AU_KM, "radvel_au_d": radvel * 86400.0 / AU_KM}


def solar_p_b0(mjd_utc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solar P angle and B0 (degrees) with the classical (Meeus ch. 29) formulae."""
    _astropy_offline()
    from astropy.coordinates import GeocentricTrueEcliptic, get_sun
    from astropy.time import Time

    mjd_utc = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    t = Time(mjd_utc, format="mjd", scale="utc")
    jd = t.tt.jd
    sun = get_sun(t).transform_to(GeocentricTrueEcliptic(equinox=t))
    lam = np.radians(sun.lon.deg)
    tcent = (jd - 2451545.0) / 36525.0
    eps0 = 23.4392911 - 0.0130042 * tcent  # mean obliquity (deg), nutation neglected (<0.003 deg)
    eps = np.radians(eps0)
    inc = np.radians(7.25)
    k = np.radians(73.6667 + 1.3958333 * (jd - 2396758.0) / 36525.0)
    x = np.arctan(-np.cos(lam) * np.tan(eps))
    y = np.arctan(-np.cos(lam - k) * np.tan(inc))
    p = np.degrees(x + y)
    b0 = np.degrees(np.arcsin(np.sin(lam - k) * np.sin(inc)))
    return p, b0


def apparent_radius_arcsec(dist_au: float | np.ndarray) -> float | np.ndarray:
    """Photospheric solar radius seen from distance ``dist_au`` (arcsec)."""
    return np.degrees(np.arcsin(SUN_RADIUS_KM / (np.asarray(dist_au) * AU_KM))) * 3600.0


def hp_to_sky(x_arcsec, y_arcsec, p_angle_deg: float):
    """Helioprojective (x west, y north) -> sky tangent offsets (xi east, eta north).

    The pipeline's own conversion (solarpipe.heuristics.solar_coords), so the
    simulator and the pipeline can never disagree on the convention."""
    return helioprojective_to_sky(x_arcsec, y_arcsec, p_angle_deg)


def sky_to_hp(xi_arcsec, eta_arcsec, p_angle_deg: float):
    """Inverse of :func:`hp_to_sky`."""
    return sky_to_helioprojective(xi_arcsec, eta_arcsec, p_angle_deg)


def tangent_to_radec(ra0: float, dec0: float, xi_arcsec, eta_arcsec):
    """SIN-projection offsets (arcsec) around (ra0, dec0) -> (ra, dec) in rad."""
    l = np.asarray(xi_arcsec, dtype=float) * ARCSEC
    m = np.asarray(eta_arcsec, dtype=float) * ARCSEC
    n = np.sqrt(1.0 - l * l - m * m)
    dec = np.arcsin(m * math.cos(dec0) + n * math.sin(dec0))
    ra = ra0 + np.arctan2(l, n * math.cos(dec0) - m * math.sin(dec0))
    return np.mod(ra, 2 * np.pi), dec


def radec_to_tangent(ra0: float, dec0: float, ra, dec):
    """(ra, dec) in rad -> SIN-projection offsets (arcsec) around (ra0, dec0)."""
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    dra = ra - ra0
    l = np.cos(dec) * np.sin(dra)
    m = np.sin(dec) * math.cos(dec0) - np.cos(dec) * math.sin(dec0) * np.cos(dra)
    return l / ARCSEC, m / ARCSEC


def _unit(ra: float, dec: float) -> np.ndarray:
    return np.array([math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)])


casa_shift = _casa_shift  # one implementation for simulator and pipeline (heuristics.solar_coords)


def casa_offset(ra_e: float, dec_e: float, ra_f: float, dec_f: float) -> tuple[float, float]:
    """Inverse of :func:`casa_shift`: PHASE_DIR offsets (rad) that put the field at (ra_f, dec_f)."""
    f = _unit(ra_f, dec_f)
    east = np.array([-math.sin(ra_e), math.cos(ra_e), 0.0])
    lon = math.asin(float(np.dot(f, east)))
    sin_decp = f[2] / math.cos(lon)
    lat = math.asin(max(-1.0, min(1.0, sin_decp))) - dec_e
    return lon, lat


def geodist_km() -> float:
    """Geocentric distance of ALMA (km), the ephemeris-table ``GeoDist`` keyword."""
    a, f = 6378.137, 1 / 298.257223563
    e2 = f * (2 - f)
    lat = ALMA_LAT_RAD
    n = a / math.sqrt(1 - e2 * math.sin(lat) ** 2)
    h = ALMA_HEIGHT_M / 1000.0
    x = (n + h) * math.cos(lat)
    z = (n * (1 - e2) + h) * math.sin(lat)
    return math.hypot(x, z)


def write_ephemeris_table(path: str | Path, mjd: np.ndarray, ra: np.ndarray, dec: np.ndarray,
                          dist_au: np.ndarray, radvel_au_d: np.ndarray, p_angle_deg: np.ndarray,
                          b0_deg: np.ndarray, name: str = "Sun") -> str:
    """Write a CASA ephemeris table (JPL-Horizons layout, topocentric ALMA, ICRF/J2000).

    ``ra``/``dec`` in rad; returns the absolute path (``ms.addephemeris`` needs one).
    """
    import casatools

    path = Path(path).resolve()
    if path.exists():
        shutil.rmtree(path)
    units = {"MJD": "d", "RA": "deg", "DEC": "deg", "Rho": "AU", "RadVel": "AU/d", "NP_ang": "deg",
             "NP_dist": "arcsec", "DiskLong": "deg", "DiskLat": "deg"}
    desc = {c: {"valueType": "double", "dataManagerType": "StandardStMan",
                "dataManagerGroup": "StandardStMan", "option": 0, "maxlen": 0, "comment": ""}
            for c in units}
    n = len(mjd)
    tb = casatools.table()
    qa = casatools.quanta()
    tb.create(str(path), desc, nrow=n)
    try:
        radius = apparent_radius_arcsec(dist_au)
        tb.putcol("MJD", np.asarray(mjd, float))
        tb.putcol("RA", np.degrees(ra))
        tb.putcol("DEC", np.degrees(dec))
        tb.putcol("Rho", np.asarray(dist_au, float))
        tb.putcol("RadVel", np.asarray(radvel_au_d, float))
        tb.putcol("NP_ang", np.asarray(p_angle_deg, float))
        tb.putcol("NP_dist", -np.asarray(radius, float))
        tb.putcol("DiskLong", np.zeros(n))
        tb.putcol("DiskLat", np.asarray(b0_deg, float))
        for c, unit in units.items():
            tb.putcolkeyword(c, "QuantumUnits", np.array([unit]))
        dmjd = float(mjd[1] - mjd[0]) if n > 1 else 1.0
        kws = {
            "MJD0": float(mjd[0] - dmjd), "dMJD": dmjd, "NAME": name,
            "VS_CREATE": "2017/01/01/00:00", "VS_DATE": "2017/01/01/00:00",
            "VS_TYPE": "Table of comet/planetary positions", "VS_VERSION": "0003.0001",
            "GeoDist": geodist_km(), "GeoLat": math.degrees(ALMA_LAT_RAD),
            "GeoLong": math.degrees(ALMA_LON_RAD), "obsloc": "ALMA", "posrefsys": "ICRF/J2000.0",
            "earliest": {"type": "epoch", "refer": "UTC", "m0": qa.quantity(float(mjd[0]), "d")},
            "latest": {"type": "epoch", "refer": "UTC", "m0": qa.quantity(float(mjd[-1]), "d")},
            "meanrad": {"unit": "km", "value": SUN_RADIUS_KM},
            "radii": {"unit": "km", "value": np.array([SUN_RADIUS_KM] * 3)},
        }
        for k, v in kws.items():
            tb.putkeyword(k, v)
        tb.putinfo({"type": "IERS", "subType": "", "readme": "solarpipe simulator: topocentric (ALMA) Sun"})
    finally:
        tb.close()
    return str(path)


def elevation_deg(ra: float, dec: float, mjd_utc: np.ndarray) -> np.ndarray:
    """Approximate elevation at ALMA (deg; J2000 coordinates, refraction ignored)."""
    _astropy_offline()
    import astropy.units as u
    from astropy.time import Time

    t = Time(np.atleast_1d(mjd_utc), format="mjd", scale="utc")
    lst = t.sidereal_time("apparent", longitude=ALMA_LON_RAD * u.rad).rad
    ha = lst - ra
    lat = ALMA_LAT_RAD
    s = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * np.cos(ha)
    return np.degrees(np.arcsin(s))


def azel_deg(ra: float, dec: float, mjd_utc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Approximate azimuth (from north through east) and elevation at ALMA (deg)."""
    _astropy_offline()
    import astropy.units as u
    from astropy.time import Time

    t = Time(np.atleast_1d(mjd_utc), format="mjd", scale="utc")
    lst = t.sidereal_time("apparent", longitude=ALMA_LON_RAD * u.rad).rad
    ha = lst - ra
    lat = ALMA_LAT_RAD
    el = np.arcsin(math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * np.cos(ha))
    az = np.arctan2(-math.cos(dec) * np.sin(ha),
                    math.sin(dec) * math.cos(lat) - math.cos(dec) * math.sin(lat) * np.cos(ha))
    return np.degrees(np.mod(az, 2 * np.pi)), np.degrees(el)
