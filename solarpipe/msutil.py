"""Small casatools helpers shared by tasks (table look-ups, CASA time strings)."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

_MJD0 = _dt.datetime(1858, 11, 17)


def casa_time(mjd_s: float) -> str:
    """MJD seconds (the MS TIME column) as CASA's 'YYYY/MM/DD/hh:mm:ss.sss'."""
    t = _MJD0 + _dt.timedelta(seconds=float(mjd_s))
    return t.strftime("%Y/%m/%d/%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def casa_timerange(start_mjd_s: float, end_mjd_s: float) -> str:
    """A CASA timerange selection 'start~end'."""
    return f"{casa_time(start_mjd_s)}~{casa_time(end_mjd_s)}"


def ddid_of_spw(vis: str | Path) -> dict[int, int]:
    """SPW id -> DATA_DESCRIPTION id (the MAIN table refers to data descriptions)."""
    from casatools import table

    tb = table()
    tb.open(f"{vis}/DATA_DESCRIPTION")
    try:
        spws = tb.getcol("SPECTRAL_WINDOW_ID")
    finally:
        tb.close()
    return {int(s): i for i, s in enumerate(spws)}


def table_nrows(path: str | Path) -> int:
    """Rows of a CASA table; 0 if it cannot be opened."""
    from casatools import table

    tb = table()
    try:
        tb.open(str(path))
    except Exception:  # noqa: BLE001 - casatools raises RuntimeError with C++ text
        return 0
    try:
        return int(tb.nrows())
    finally:
        tb.close()
