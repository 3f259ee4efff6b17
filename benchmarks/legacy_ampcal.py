"""A faithful re-implementation of the legacy Tsys+Tant *pattern*, for benchmarking only.

The legacy QA2 routine (sol_ampcal_2 in the CasaGuides solar utilities) is slow
because of its structure, not its arithmetic: per-antenna, per-polarisation
``ms.statistics`` calls to get the SQLD powers; for every on-Sun sub-scan a copy
of the Tsys table, a per-channel loop writing Tsys+Tant into it, and one
``applycal`` restricted to that sub-scan (one pass over the MS each). This module
reproduces that pattern with solarpipe's metadata (so it finds the right scans
and SPWs) to measure the speed-up; it is not used by the pipeline.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np


def _power(msx, spws: list[int], ant: int, pol: str, timerange: str) -> list[float]:
    """Mean real SQLD power per SPW for one antenna and pol, as the legacy code asks for it."""
    stats = msx.statistics(column="data", spw=",".join(map(str, spws)), correlation=pol,
                           baseline=f"{ant}&&&", complex_value="real", time=timerange,
                           reportingaxes="ddid")
    return [float(v["mean"]) for _, v in sorted(stats.items())]


def legacy_ampcal(run, tsys_table: str, workdir: str | Path) -> int:
    """Run the legacy pattern on ``run`` (an ObservingRun); returns the number of applycals."""
    from casatasks import applycal
    from casatools import ms, table

    from solarpipe.heuristics import tant as htant
    from solarpipe.msutil import casa_timerange

    workdir = Path(workdir)
    sqld = run.spw_ids("sqld", science_setup=True)
    zero = run.spw_ids("sqld", science_setup=False) or sqld
    science = run.science_spw_ids
    ants = list(range(len(run.antennas)))
    msx = ms()
    msx.open(run.vis)
    atm = [s for s in run.scans_with_intent("CALIBRATE_ATMOSPHERE") if set(s.spw_ids) & set(sqld)]
    sun = [s for s in run.scans_with_intent("OBSERVE_TARGET") if set(s.field_ids) & set(run.sun_field_ids)]
    choices = {c.science_scan: c.atm_scan for c in htant.match_atm_scans(
        [htant.ScanSpan(s.number, s.start_mjd_s, s.end_mjd_s, s.field_ids) for s in sun],
        [htant.ScanSpan(s.number, s.start_mjd_s, s.end_mjd_s, s.field_ids) for s in atm])}
    scans = {s.number: s for s in run.scans}
    zscan = next(s for s in run.scans if set(s.spw_ids) & set(zero))
    p_zero = {(a, p): _power(msx, zero, a, p, casa_timerange(zscan.start_mjd_s, zscan.end_mjd_s))
              for a in ants for p in ("XX", "YY")}
    n_applycal = 0
    tb = table()
    try:
        for sci in sun:
            a_scan = scans[choices[sci.number]]
            sub = {i.split("#")[1]: ss for ss in a_scan.subscans for i in ss.intents if "#" in i}
            pw = {}
            for key in ("OFF_SOURCE", "AMBIENT", "HOT"):
                ss = sub[key]
                tr = casa_timerange(ss.start_mjd_s - 0.5, ss.end_mjd_s + 0.5)
                pw[key] = {(a, p): _power(msx, sqld, a, p, tr) for a in ants for p in ("XX", "YY")}
            offs = [ss for ss in sci.subscans if "OBSERVE_TARGET#OFF_SOURCE" in ss.intents]
            tr_off = ",".join(casa_timerange(o.start_mjd_s - 0.5, o.end_mjd_s + 0.5) for o in offs)
            p_off = {(a, p): _power(msx, sqld, a, p, tr_off) for a in ants for p in ("XX", "YY")}
            for ss in sci.subscans:
                if "OBSERVE_TARGET#ON_SOURCE" not in ss.intents:
                    continue
                tr = casa_timerange(ss.start_mjd_s - 0.5, ss.end_mjd_s + 0.5)
                p_sun = {(a, p): _power(msx, sqld, a, p, tr) for a in ants for p in ("XX", "YY")}
                modtbl = workdir / f"legacy.tsystant_{sci.number:03d}_{ss.number:03d}"
                if modtbl.exists():
                    shutil.rmtree(modtbl)
                shutil.copytree(tsys_table, modtbl)
                tb.open(str(modtbl), nomodify=False)
                try:
                    for a in ants:
                        for k, spw in enumerate(science):
                            q = tb.query(f"ANTENNA1=={a} && SCAN_NUMBER=={a_scan.number} && SPECTRAL_WINDOW_ID=={spw}")
                            try:
                                if q.nrows() == 0:
                                    continue
                                fparam = q.getcol("FPARAM")
                                flag = q.getcol("FLAG")
                                for p, pol in enumerate(("XX", "YY")[:fparam.shape[0]]):
                                    kk = min(k, len(p_sun[(a, pol)]) - 1)
                                    t = htant.tant(p_sun[(a, pol)][kk], p_off[(a, pol)][kk], pw["OFF_SOURCE"][(a, pol)][kk],
                                                   pw["AMBIENT"][(a, pol)][kk], pw["HOT"][(a, pol)][kk],
                                                   p_zero[(a, pol)][kk], 288.0, 356.0)
                                    for ch in range(fparam.shape[1]):  # the per-channel write loop
                                        if not flag[p, ch, 0]:
                                            fparam[p, ch, 0] += float(t)
                                            q.putcol("FPARAM", fparam)
                            finally:
                                q.close()
                finally:
                    tb.close()
                applycal(vis=run.vis, scan=str(sci.number), spw=",".join(map(str, science)),
                         gaintable=[str(modtbl)], timerange=tr, calwt=False, flagbackup=False)
                n_applycal += 1
    finally:
        msx.close()
    return n_applycal
