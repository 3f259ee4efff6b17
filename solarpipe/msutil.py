"""Small casatools helpers shared by tasks (table look-ups, CASA time strings)."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np

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


def unflagged_fraction(vis: str | Path, field_id: int, spw_ids: list[int], chunk: int = 20000) -> float:
    """Fraction of unflagged cross-correlation visibilities of a field in some SPWs
    (0.0 if the field has no rows there)."""
    from casatools import table

    dd = ddid_of_spw(vis)
    good = total = 0
    tb = table()
    tb.open(str(vis))
    try:
        for spw in spw_ids:
            if spw not in dd:
                continue
            q = tb.query(f"FIELD_ID=={int(field_id)} && DATA_DESC_ID=={dd[spw]} && ANTENNA1!=ANTENNA2",
                         columns="FLAG")
            try:
                for start in range(0, q.nrows(), chunk):
                    flag = q.getcol("FLAG", start, min(chunk, q.nrows() - start))
                    good += int((~flag).sum())
                    total += flag.size
            finally:
                q.close()
    finally:
        tb.close()
    return good / total if total else 0.0


def require_calibrator_data(run, field_ids: list[int], role: str, task: str) -> None:
    """BadInputError naming the calibrator if every science-SPW visibility of one of
    ``field_ids`` is flagged: nothing to solve on, and a CASA solve would fail obscurely."""
    from .errors import BadInputError

    for fid in field_ids:
        if unflagged_fraction(run.vis, fid, run.science_spw_ids) == 0.0:
            name = run.fields[fid].name
            raise BadInputError(
                f"{task}: all data of the {role} calibrator {name} (field {fid}) are flagged in {run.vis} "
                f"(science SPWs {','.join(map(str, run.science_spw_ids))}), so there is nothing to solve on. "
                "The stages before this one are kept. Check the flags (flagmanager: the versions saved by "
                "hsol_flagdata, or flags already in the raw data), then 'solarpipe resume'; or calibrate "
                "with another EB's tables")


def sub_measurement_sets(vis: str | Path) -> list[Path]:
    """The sub-MSs of a multi-MS (casatasks.partition output), [] for a plain MS."""
    d = Path(vis) / "SUBMSS"
    return sorted(p for p in d.glob("*.ms") if p.is_dir()) if d.is_dir() else []


def median_interval_s(vis: str | Path) -> float:
    """Median integration time (s) of the cross-correlations of an MS (a sample of rows)."""
    from casatools import table

    tb = table()
    tb.open(str(vis))
    try:
        n = tb.nrows()
        return float(np.median(tb.getcol("INTERVAL", 0, min(n, 5000))))
    finally:
        tb.close()
