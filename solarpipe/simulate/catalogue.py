"""Offline calibrator flux catalogue (``calibrator_catalogue.csv``).

Format: a CSV file with a header row and one measurement per row:

    name,date,frequency_ghz,flux_jy,flux_err_jy,spectral_index,spectral_index_err

* ``name``: source name as in the MS FIELD table (e.g. ``J0423-0120``);
* ``date``: ISO date (UTC) of the measurement (``YYYY-MM-DD``);
* ``frequency_ghz``: measurement frequency (Band 3 ~ 91.5/103.5 GHz, Band 7 ~ 343.5 GHz);
* ``flux_jy`` / ``flux_err_jy``: flux density and its 1-sigma error (Jy);
* ``spectral_index`` / ``spectral_index_err``: the index valid around that date.

Several rows per source (Band 3 and Band 7 at various ages). The catalogue is
generated from the true calibrator spectra with quasar-like variability: a
measurement ``dt`` days before the EB deviates from the truth by
``N(0, 0.1 dt/30 d)`` (clipped at 3 sigma) when ``dt <= 60 d`` and by 12-20 %
(random sign) when older, plus a 1 % measurement scatter (the quoted error is
3 %). The nominal flux calibrator (the field with CALIBRATE_FLUX) has its latest
entry ``flux_cal_catalogue_age_days`` before the EB when that is set; the other
calibrators are recent (2-6 days, so within ~1-2 % of the truth).
"""
from __future__ import annotations

import csv
import logging
from datetime import datetime, timedelta, timezone

import numpy as np

from .config import CalibratorSpec
from .instrument import rng_for

LOG = logging.getLogger(__name__)

COLUMNS = ("name", "date", "frequency_ghz", "flux_jy", "flux_err_jy", "spectral_index", "spectral_index_err")


def build_catalogue(calibrators: dict[str, CalibratorSpec], obs_date_utc: str, seed: int,
                    nominal_flux_role: str, flux_cal_age_days: float | None) -> list[dict]:
    """Catalogue rows (dicts with COLUMNS) for the calibrators actually used."""
    r = rng_for(seed, "catalogue")
    obs = datetime.fromisoformat(obs_date_utc.replace("Z", "")).replace(tzinfo=timezone.utc)
    rows: list[dict] = []
    for role, c in calibrators.items():
        if flux_cal_age_days is not None and role == nominal_flux_role:
            latest = float(flux_cal_age_days)
        else:
            latest = float(r.uniform(2.0, 6.0))
        ages = [latest, latest + r.uniform(8, 20), latest + r.uniform(30, 60), latest + r.uniform(90, 150)]
        for age in ages:
            if age <= 60.0:
                sig = 0.1 * age / 30.0
                dev = float(np.clip(r.normal(0.0, sig), -3 * sig, 3 * sig))
            else:
                dev = float(r.choice([-1.0, 1.0]) * r.uniform(0.12, 0.20))
            date = (obs - timedelta(days=age)).date().isoformat()
            for fghz in (91.5, 103.5, 343.5):
                if fghz == 103.5 and age != ages[0]:
                    continue
                true = c.flux_jy * (fghz * 1e9 / c.ref_freq_hz) ** c.spectral_index
                val = true * (1.0 + dev) * (1.0 + r.normal(0.0, 0.01))
                rows.append({"name": c.name, "date": date, "frequency_ghz": fghz,
                             "flux_jy": round(float(val), 4), "flux_err_jy": round(float(0.03 * true), 4),
                             "spectral_index": round(c.spectral_index + float(r.normal(0, 0.03)), 3),
                             "spectral_index_err": 0.05})
    rows.sort(key=lambda d: (d["name"], d["date"], d["frequency_ghz"]))
    return rows


def latest_band3_ratio(rows: list[dict], calibrators: dict[str, CalibratorSpec]) -> dict[str, dict]:
    """Per calibrator: age (days, from the first row date) and catalogue/true flux of its latest Band 3 entry."""
    out = {}
    for c in calibrators.values():
        mine = [r for r in rows if r["name"] == c.name and r["frequency_ghz"] < 120]
        if not mine:
            continue
        latest = max(r["date"] for r in mine)
        ratios = [r["flux_jy"] / (c.flux_jy * (r["frequency_ghz"] * 1e9 / c.ref_freq_hz) ** c.spectral_index)
                  for r in mine if r["date"] == latest]
        out[c.name] = {"latest_date": latest, "latest_b3_over_true": float(np.mean(ratios))}
    return out


def write_catalogue(path: str, rows: list[dict]) -> None:
    """Write the CSV (header + rows)."""
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        w.writeheader()
        for row in rows:
            w.writerow(row)


def read_catalogue(path: str) -> list[dict]:
    """Read the CSV back (numbers as floats)."""
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            for k in COLUMNS[2:]:
                row[k] = float(row[k])
            out.append(row)
    return out
