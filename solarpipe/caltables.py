"""Reading calibration tables back for QA and plots (casatools table)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def read_caltable(path: str | Path) -> dict[str, np.ndarray]:
    """TIME, ANTENNA1, SPECTRAL_WINDOW_ID, FIELD_ID, SCAN_NUMBER and the parameter, FLAG and
    SNR columns stacked as (nrow, npol, nchan) (rows may differ in nchan per SPW: padded NaN)."""
    from casatools import table

    tb = table()
    tb.open(str(path))
    try:
        n = tb.nrows()
        out: dict[str, Any] = {c: tb.getcol(c) for c in ("TIME", "ANTENNA1", "SPECTRAL_WINDOW_ID",
                                                          "FIELD_ID", "SCAN_NUMBER")}
        pcol = "CPARAM" if "CPARAM" in tb.colnames() else "FPARAM"
        cells = [tb.getcell(pcol, i) for i in range(n)]
        flags = [tb.getcell("FLAG", i) for i in range(n)]
        snr = [tb.getcell("SNR", i) for i in range(n)]
    finally:
        tb.close()
    if n == 0:
        out.update(param=np.zeros((0, 1, 1)), flag=np.zeros((0, 1, 1), bool), snr=np.zeros((0, 1, 1)))
        return out
    npol = max(c.shape[0] for c in cells)
    nchan = max(c.shape[1] for c in cells)
    dtype = complex if pcol == "CPARAM" else float
    param = np.full((n, npol, nchan), np.nan, dtype=dtype)
    flag = np.ones((n, npol, nchan), bool)
    s = np.full((n, npol, nchan), np.nan)
    for i, (c, f, r) in enumerate(zip(cells, flags, snr)):
        param[i, :c.shape[0], :c.shape[1]] = c
        flag[i, :c.shape[0], :c.shape[1]] = f
        s[i, :c.shape[0], :c.shape[1]] = r
    out.update(param=param, flag=flag, snr=s)
    return out


def solution_stats(path: str | Path) -> dict[str, float]:
    """Fraction of flagged (failed) solutions and median SNR of the good ones.

    Channels flagged for every antenna (TDM edges, flagged bad channels) had no
    data to solve for: they are not counted as failures.
    """
    t = read_caltable(path)
    flag = t["flag"]
    valid = ~np.isnan(np.abs(t["param"]))
    if flag.shape[0]:
        no_data = np.zeros(flag.shape, bool)
        for spw in np.unique(t["SPECTRAL_WINDOW_ID"]):
            rows = t["SPECTRAL_WINDOW_ID"] == spw
            everywhere = np.all(flag[rows] | ~valid[rows], axis=0)  # (npol, nchan)
            no_data[rows] = everywhere[None]
        valid = valid & ~no_data
    n = int(valid.sum())
    failed = float((flag & valid).sum() / n) if n else 1.0
    good = valid & ~flag
    snr = float(np.nanmedian(t["snr"][good])) if good.any() else 0.0
    return {"n_solutions": n, "failed_fraction": failed, "median_snr": snr}
