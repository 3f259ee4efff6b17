"""Choosing the amplitude (flux) calibrator from catalogue measurements.

Quasars vary: a catalogue flux weeks old can be off by more than 10%. Each
candidate's catalogue entries are extrapolated to the observed frequency with
their spectral index, and an effective uncertainty adds in quadrature the
measurement error, the variability expected over the measurement's age and
the spectral-index error times the frequency lever arm:

    sigma_eff^2 = sigma^2 + (f_var * S * |dt| / tau)^2 + (sigma_alpha * ln(nu/nu_cat) * S)^2

The quality metric is S / sigma_eff (a signal-to-uncertainty ratio of the
flux scale it would set); entries older than ``max_age_days`` are not used.
The nominal flux calibrator is kept unless it is missing, stale, weak, or a
candidate is better by ``switch_factor``; the bandpass calibrator is the
preferred fallback. Pure functions; the catalogue is read by the task.
"""
from __future__ import annotations

import csv
import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

CATALOGUE_COLUMNS = ("name", "date", "frequency_ghz", "flux_jy", "flux_err_jy", "spectral_index",
                     "spectral_index_err")


@dataclass
class CatalogueEntry:
    """One catalogue measurement of a calibrator."""

    name: str
    date: _dt.date
    frequency_ghz: float
    flux_jy: float
    flux_err_jy: float
    spectral_index: float = -0.7
    spectral_index_err: float = 0.2


@dataclass
class Candidate:
    """A calibrator's flux at the observed frequency and how much to trust it."""

    name: str
    roles: list[str]
    flux_jy: float | None = None
    sigma_eff_jy: float | None = None
    age_days: float | None = None
    metric: float = 0.0
    entry: CatalogueEntry | None = None
    spectral_index: float | None = None
    rejected: str = ""
    notes: list[str] = field(default_factory=list)


def read_catalogue(path: str | Path) -> list[CatalogueEntry]:
    """Read the offline catalogue CSV (columns CATALOGUE_COLUMNS; date as YYYY-MM-DD)."""
    out = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(row for row in fh if not row.lstrip().startswith("#"))
        missing = set(CATALOGUE_COLUMNS[:5]) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: catalogue lacks column(s) {', '.join(sorted(missing))}; "
                             f"expected {', '.join(CATALOGUE_COLUMNS)}")
        for i, row in enumerate(reader, start=2):
            try:
                out.append(CatalogueEntry(
                    name=row["name"].strip(), date=_dt.date.fromisoformat(row["date"].strip()[:10]),
                    frequency_ghz=float(row["frequency_ghz"]), flux_jy=float(row["flux_jy"]),
                    flux_err_jy=float(row["flux_err_jy"]),
                    spectral_index=float(row.get("spectral_index") or -0.7),
                    spectral_index_err=float(row.get("spectral_index_err") or 0.2)))
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}: line {i}: {exc}") from exc
    return out


def extrapolate(entry: CatalogueEntry, nu_ghz: float, obs_date: _dt.date, f_var: float = 0.1,
                tau_days: float = 30.0) -> tuple[float, float, float]:
    """(flux at nu, sigma_eff, age in days) of one catalogue entry."""
    s = entry.flux_jy * (nu_ghz / entry.frequency_ghz) ** entry.spectral_index
    age = (obs_date - entry.date).days
    rel_err = entry.flux_err_jy / entry.flux_jy if entry.flux_jy else 1.0
    sigma2 = (rel_err * s) ** 2 + (f_var * s * abs(age) / tau_days) ** 2 \
        + (entry.spectral_index_err * math.log(nu_ghz / entry.frequency_ghz) * s) ** 2
    return s, math.sqrt(sigma2), float(age)


def evaluate(name: str, roles: Sequence[str], entries: Iterable[CatalogueEntry], nu_ghz: float,
             obs_date: _dt.date, max_age_days: float = 60.0, f_var: float = 0.1,
             tau_days: float = 30.0) -> Candidate:
    """The best catalogue entry of one source (highest S/sigma_eff) within the age limit."""
    cand = Candidate(name=name, roles=list(roles))
    mine = [e for e in entries if e.name == name]
    if not mine:
        cand.rejected = "no catalogue entry"
        return cand
    best = None
    for e in mine:
        s, sig, age = extrapolate(e, nu_ghz, obs_date, f_var, tau_days)
        if abs(age) > max_age_days:
            cand.notes.append(f"{e.date} at {e.frequency_ghz:g} GHz is {age:.0f} d old (> {max_age_days:g} d)")
            continue
        metric = s / sig if sig > 0 else 0.0
        if best is None or metric > best[0]:
            best = (metric, s, sig, age, e)
    if best is None:
        newest = min(mine, key=lambda e: abs((obs_date - e.date).days))
        cand.age_days = float((obs_date - newest.date).days)
        cand.rejected = f"newest catalogue entry is {cand.age_days:.0f} days old (limit {max_age_days:g})"
        return cand
    cand.metric, cand.flux_jy, cand.sigma_eff_jy, cand.age_days, cand.entry = best
    cand.spectral_index = cand.entry.spectral_index
    return cand


def choose(candidates: Sequence[Candidate], min_metric: float = 5.0, switch_factor: float = 2.0,
           min_flux_jy: float = 0.1) -> tuple[Candidate | None, str]:
    """Pick the amplitude calibrator and say why.

    Keep the nominal flux calibrator (role 'flux') if it is usable (catalogue
    entry within age, metric >= min_metric, flux >= min_flux_jy) and no other
    candidate has a metric ``switch_factor`` times better; otherwise fall back
    to the bandpass calibrator if usable, else the best usable candidate.
    """
    def usable(c: Candidate) -> bool:
        return not c.rejected and c.metric >= min_metric and (c.flux_jy or 0) >= min_flux_jy

    good = [c for c in candidates if usable(c)]
    nominal = next((c for c in candidates if "flux" in c.roles), None)
    if not good:
        return None, "no candidate has a usable catalogue entry"
    best = max(good, key=lambda c: (c.metric, "bandpass" in c.roles))
    if nominal is not None and usable(nominal):
        if best.metric >= switch_factor * nominal.metric and best is not nominal:
            return best, (f"{best.name} chosen over the nominal flux calibrator {nominal.name}: "
                          f"quality {best.metric:.0f} vs {nominal.metric:.0f}")
        return nominal, f"nominal flux calibrator {nominal.name}: quality {nominal.metric:.0f}"
    why = (f"nominal flux calibrator {nominal.name} unusable ({nominal.rejected or 'weak or low quality'})"
           if nominal is not None else "no nominal flux calibrator")
    bandpass = [c for c in good if "bandpass" in c.roles]
    if bandpass:  # the analysts' fallback: the bright, well-monitored bandpass quasar
        chosen = max(bandpass, key=lambda c: c.metric)
        return chosen, f"{why}; fallback to the bandpass calibrator {chosen.name}, quality {chosen.metric:.0f}"
    return best, f"{why}; {best.name} ({', '.join(best.roles)}) chosen, quality {best.metric:.0f}"
