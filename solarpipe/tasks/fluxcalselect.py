"""hsol_fluxcalselect: choose the amplitude calibrator from catalogue measurements.

Candidates are the flux, bandpass and phase calibrators of the EB. Their
catalogue entries (an offline CSV: name,date,frequency_ghz,flux_jy,flux_err_jy,
spectral_index,spectral_index_err -- the simulator writes one; a user can
point to an export of the ALMA calibrator catalogue in that format) are scored
by solarpipe.heuristics.fluxcal; the choice and the flux model (flux at the
mean science frequency, spectral index) go into the context for hsol_gaincal.
"""
from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInputError
from ..heuristics import fluxcal as hflux
from ..qa import QAScore
from ..task import Results, Task, TaskInputs

LOG = logging.getLogger(__name__)

CATALOGUE_NAME = "calibrator_catalogue.csv"


@dataclass
class FluxCalSelectInputs(TaskInputs):
    """catalogue: CSV of calibrator measurements (None: calibrator_catalogue.csv beside the
    raw MS, or in the working directory). max_age_days: older entries are not used."""

    catalogue: str | None = None
    max_age_days: float = 60.0
    variability: float = 0.1
    variability_timescale_days: float = 30.0
    min_quality: float = 5.0


class FluxCalSelectResults(Results):
    choice: dict[str, Any] | None = None

    def merge_with_context(self, context) -> None:
        context.flux_calibrator = self.choice


class FluxCalSelect(Task):
    name = "hsol_fluxcalselect"
    Inputs = FluxCalSelectInputs
    topic = "calibration"

    def find_catalogue(self) -> Path:
        inp: FluxCalSelectInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        looked = [Path(inp.catalogue)] if inp.catalogue else [
            Path(run.source_vis).parent / CATALOGUE_NAME, Path(self.context.workdir) / CATALOGUE_NAME]
        for p in looked:
            if p.exists():
                return p
        raise BadInputError("hsol_fluxcalselect: no calibrator catalogue found (looked at "
                            f"{', '.join(map(str, looked))}); give catalogue='file.csv' with columns "
                            f"{','.join(hflux.CATALOGUE_COLUMNS)}")

    def prepare(self) -> dict[str, Any]:
        inp: FluxCalSelectInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        res = self.new_results()
        path = self.find_catalogue()
        res.decide("catalogue", str(path), "given" if inp.catalogue else "found beside the raw MS",
                   by="user" if inp.catalogue else "heuristic")
        try:
            entries = hflux.read_catalogue(path)
        except (OSError, ValueError) as exc:
            raise BadInputError(f"calibrator catalogue {path}: {exc}") from exc
        nu_ghz = float(np.mean([s.ref_freq_hz for s in run.spws if s.role == "science"])) / 1e9
        obs_date = (_dt.datetime(1858, 11, 17) + _dt.timedelta(seconds=run.start_mjd_s)).date()
        cands = []
        for f in run.fields:
            roles = [r for r in f.roles if r in ("flux", "bandpass", "phase")]
            if roles:
                cands.append(hflux.evaluate(f.name, roles, entries, nu_ghz, obs_date, inp.max_age_days,
                                            inp.variability, inp.variability_timescale_days))
        if not cands:
            raise BadInputError(f"{run.vis}: no flux, bandpass or phase calibrator field")
        chosen, why = hflux.choose(cands, min_metric=inp.min_quality)
        if chosen is None:
            raise BadInputError(f"hsol_fluxcalselect: {why} in {path} for "
                                f"{', '.join(c.name for c in cands)} (observed {obs_date})")
        res.decide("amplitude_calibrator", chosen.name, why)
        return {"results": res, "cands": cands, "chosen": chosen, "nu_ghz": nu_ghz,
                "obs_date": obs_date}

    def analyse(self, raw: dict[str, Any]) -> Results:
        res = FluxCalSelectResults(**vars(raw["results"]))
        c = raw["chosen"]
        res.choice = {"field": c.name, "flux_jy": c.flux_jy, "reffreq_ghz": raw["nu_ghz"],
                      "spectral_index": c.spectral_index, "sigma_jy": c.sigma_eff_jy,
                      "age_days": c.age_days, "reason": res.decisions[-1].reason}
        res.summary["candidates"] = [{
            "name": x.name, "roles": ", ".join(x.roles),
            "catalogue_entry": (f"{x.entry.flux_jy:.3f} Jy at {x.entry.frequency_ghz:g} GHz on {x.entry.date}"
                                if x.entry else ""),
            "age_days": x.age_days, "flux_at_obs_jy": x.flux_jy, "sigma_eff_jy": x.sigma_eff_jy,
            "quality": round(x.metric, 2), "rejected": x.rejected, "notes": "; ".join(x.notes),
            "chosen": x.name == c.name} for x in raw["cands"]]
        res.summary["choice"] = res.choice
        res.summary["observing_frequency_ghz"] = raw["nu_ghz"]
        return res

    def qa(self, results: Results) -> list[QAScore]:
        out = []
        c = results.choice  # type: ignore[attr-defined]
        age = abs(c["age_days"] or 0)
        out.append(QAScore(1.0 if age <= 14 else (0.8 if age <= 30 else 0.6),
                           f"amplitude calibrator {c['field']}, catalogue entry {age:.0f} d old",
                           c["reason"], metric_name="catalogue_age", metric_value=age, metric_units="d",
                           topic="calibration"))
        rel = c["sigma_jy"] / c["flux_jy"] if c["flux_jy"] else 1.0
        out.append(QAScore(1.0 if rel <= 0.05 else (0.75 if rel <= 0.1 else 0.5),
                           f"flux-scale uncertainty {100 * rel:.1f}%",
                           "Effective uncertainty of the catalogue flux at the observed frequency "
                           "(measurement, age-dependent variability, spectral index).",
                           metric_name="relative_sigma_eff", metric_value=rel, topic="calibration"))
        rejected = [x for x in results.summary["candidates"] if x["rejected"]]
        if rejected:
            out.append(QAScore(0.8, f"{len(rejected)} candidate(s) without usable catalogue entry",
                               "; ".join(f"{x['name']}: {x['rejected']}" for x in rejected),
                               topic="calibration"))
        return out
