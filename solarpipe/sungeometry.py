"""Where the Sun was during an EB: its elevation at the array, and the pointings on its disc.

Computed once by hsol_importdata for the home page and the observation plots
(the ARC analyst checks that the Sun was high enough and which part of the
disc was observed). The elevation comes from CASA's measures (the Sun from
the JPL table shipped in casadata, at the array centre); the pointings are the
Sun fields' offsets from their ephemeris (the Sun centre in ALMA solar EBs),
turned into helioprojective (Tx, Ty) with the P angle at the EB's mid-time.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .heuristics import imaging as himg
from .heuristics import solar_coords as hsun

if TYPE_CHECKING:  # pragma: no cover
    from .observing import ObservingRun

LOG = logging.getLogger(__name__)


def sun_elevation_track(run: "ObservingRun", n_samples: int = 60) -> dict[str, list[float]]:
    """Sun elevation (deg) at the array centre at ``n_samples`` times over the EB."""
    from casatools import measures, quanta

    me, qa = measures(), quanta()
    centre = np.mean([a.position_m for a in run.antennas], axis=0)
    me.doframe(me.position("ITRF", *[qa.quantity(float(x), "m") for x in centre]))
    times = np.linspace(run.start_mjd_s, run.end_mjd_s, max(2, n_samples))
    elevation = []
    for t in times:
        me.doframe(me.epoch("UTC", qa.quantity(float(t), "s")))
        elevation.append(float(np.degrees(me.measure(me.direction("SUN"), "AZEL")["m1"]["value"])))
    return {"mjd_s": [float(t) for t in times], "elevation_deg": elevation}


def elevation_summary(track: dict[str, list[float]]) -> dict[str, float]:
    """Start, end, lowest and highest Sun elevation of a track (deg, 0.1 deg)."""
    el = track["elevation_deg"]
    return {"start": round(el[0], 1), "end": round(el[-1], 1),
            "min": round(min(el), 1), "max": round(max(el), 1)}


def pointings_on_disc(vis: str | Path, run: "ObservingRun") -> dict[str, Any] | None:
    """The Sun pointings in helioprojective arcsec with the disc radius and the 12m PB,
    or None when the Sun fields carry no ephemeris (their place on the disc is unknown)."""
    from .ephemeris import ephemeris_fields

    fields = [f for f in ephemeris_fields(vis) if f.field_id in set(run.sun_field_ids)]
    if not fields:
        return None
    mid = 0.5 * (run.start_mjd_s + run.end_mjd_s)
    sun = hsun.solar_orientation(hsun.mjd_seconds_to_jd(mid))
    east = np.degrees([f.offset_rad[0] for f in fields]) * 3600
    north = np.degrees([f.offset_rad[1] for f in fields]) * 3600
    tx, ty = hsun.sky_to_helioprojective(east, north, sun["p_angle_deg"])
    sci = [s.ref_freq_hz for s in run.spws if s.role == "science"]
    freq = float(np.mean(sci)) if sci else 100e9
    dish = max((a.diameter_m for a in run.antennas), default=12.0)
    return {"names": [f.name for f in fields], "tx_arcsec": [float(v) for v in np.atleast_1d(tx)],
            "ty_arcsec": [float(v) for v in np.atleast_1d(ty)], "p_angle_deg": sun["p_angle_deg"],
            "radius_arcsec": sun["radius_arcsec"], "pb_fwhm_arcsec": himg.primary_beam_fwhm_arcsec(freq, dish),
            "freq_ghz": freq / 1e9}
