"""Ephemeris fields of an MS: read them, and re-centre them for imaging.

ALMA solar fields carry an ephemeris (FIELD/EPHEMn_*.tab, FIELD EPHEMERIS_ID)
and, in PHASE_DIR, offsets from it. Whether the ephemeris is the Sun centre
(offsets of hundreds of arcsec) or the pointing centre (offsets ~0) varies;
tclean's phasecenter='TRACKFIELD' centres the image on the ephemeris
position. So the imaging copy of the Sun data gets an ephemeris moved to the
pointing (or mosaic) centre, with the field offsets made relative to it: the
image then tracks the Sun and is centred on the observed region, whatever the
convention. Never applied to the raw data or the calibrated working MS.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .heuristics.solar_coords import casa_shift

LOG = logging.getLogger(__name__)


@dataclass
class EphemerisField:
    field_id: int
    name: str
    table: Path
    offset_rad: tuple[float, float]  # (lon, lat) offset of the field from the ephemeris


def ephemeris_fields(vis: str | Path) -> list[EphemerisField]:
    """The ephemeris fields of an MS with their table and offset."""
    from casatools import table

    tb = table()
    tb.open(f"{vis}/FIELD")
    try:
        if "EPHEMERIS_ID" not in tb.colnames():
            return []
        eph = tb.getcol("EPHEMERIS_ID")
        names = tb.getcol("NAME")
        phase = tb.getcol("PHASE_DIR")  # (2, npoly, nfield)
    finally:
        tb.close()
    out = []
    for i, e in enumerate(eph):
        if e < 0:
            continue
        tabs = sorted(Path(vis, "FIELD").glob(f"EPHEM{e}_*.tab"))
        if tabs:
            out.append(EphemerisField(i, str(names[i]), tabs[0], (float(phase[0, 0, i]), float(phase[1, 0, i]))))
    return out


def read_ephemeris(path: str | Path) -> dict[str, np.ndarray]:
    """MJD (days), RA and DEC (degrees) of a CASA ephemeris table."""
    from casatools import table

    tb = table()
    tb.open(str(path))
    try:
        return {c: tb.getcol(c) for c in ("MJD", "RA", "DEC")}
    finally:
        tb.close()


def position_at(path: str | Path, mjd_s: float) -> tuple[float, float]:
    """Ephemeris position (radians) interpolated at a time (MJD seconds)."""
    e = read_ephemeris(path)
    mjd = mjd_s / 86400.0
    ra = np.interp(mjd, e["MJD"], np.unwrap(np.radians(e["RA"])))
    dec = np.interp(mjd, e["MJD"], np.radians(e["DEC"]))
    return float(ra % (2 * np.pi)), float(dec)


def recentre_ephemeris_code(vis: str, centre_offset: tuple[float, float]) -> str:
    """The self-contained casatools/numpy block that moves the ephemeris of every ephemeris
    field of ``vis`` by ``centre_offset`` (lon, lat radians) and makes the fields' offsets
    relative to it: FIELD/EPHEM<k>_centred.tab, a copy of the first table with shifted
    RA/DEC, becomes the fields' ephemeris. The pipeline runs this block and records it
    verbatim (CasaCalls.run_code), so the imaging script repeats it without solarpipe."""
    shift_source = inspect.getsource(casa_shift)
    lon, lat = (float(c) for c in centre_offset)
    return f'''import glob, math, os, shutil
import numpy as np
from casatools import table as casa_table

{shift_source}

def recentre_ephemeris(vis, centre_offset):
    """Move the Sun ephemeris of the ephemeris fields of vis by centre_offset (lon, lat rad)
    and make the fields' offsets relative to it (imaging copy only); returns the new table."""
    tb = casa_table()
    tb.open(os.path.join(vis, 'FIELD'))
    eph = tb.getcol('EPHEMERIS_ID') if 'EPHEMERIS_ID' in tb.colnames() else None
    phase = tb.getcol('PHASE_DIR')
    tb.close()
    fields = []
    for i, e in enumerate([] if eph is None else eph):
        tabs = sorted(glob.glob(os.path.join(vis, 'FIELD', 'EPHEM%d_*.tab' % e))) if e >= 0 else []
        if tabs:
            fields.append((i, tabs[0], (float(phase[0, 0, i]), float(phase[1, 0, i]))))
    if not fields:
        return None
    new_id = int(max(eph)) + 1
    dst = os.path.join(vis, 'FIELD', 'EPHEM%d_centred.tab' % new_id)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(fields[0][1], dst)
    tb.open(dst, nomodify=False)
    ra = np.radians(tb.getcol('RA'))
    dec = np.radians(tb.getcol('DEC'))
    moved = [casa_shift(r, d, centre_offset[0], centre_offset[1]) for r, d in zip(ra, dec)]
    tb.putcol('RA', np.degrees([m[0] for m in moved]))
    tb.putcol('DEC', np.degrees([m[1] for m in moved]))
    tb.close()
    tb.open(os.path.join(vis, 'FIELD'), nomodify=False)
    for col in ('PHASE_DIR', 'DELAY_DIR', 'REFERENCE_DIR'):
        d = tb.getcol(col)
        for i, _, offset in fields:
            d[0, 0, i] = offset[0] - centre_offset[0]
            d[1, 0, i] = offset[1] - centre_offset[1]
        tb.putcol(col, d)
    for i, _, _ in fields:
        eph[i] = new_id
    tb.putcol('EPHEMERIS_ID', eph)
    tb.close()
    return dst


recentred_table = recentre_ephemeris({vis!r}, ({lon!r}, {lat!r}))
'''
