"""hsol_gaincal: phase and amplitude gains on the calibrators, flux scale transfer.

1. setjy: the chosen amplitude calibrator's catalogue model (flux at the
   reference frequency and spectral index, from hsol_fluxcalselect);
2. phases on the calibrators (per integration, or per scan when weak) and per
   scan on the phase calibrator (transferred to the Sun);
3. flux transfer: amplitudes with all scans of a calibrator combined (highest
   SNR: with per-scan solutions of a weak phase calibrator, the noise in the
   gain ratios biases fluxscale up by several percent), fluxscale, and setjy of
   every transfer calibrator with its derived flux and spectral index;
4. amplitudes per scan against those models: the time-variable gains applied to
   the calibrators and, from the phase calibrator, to the Sun.
This is the order of the ALMA pipeline's gfluxscale -> setmodels -> timegaincal.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..caltables import solution_stats
from ..context import CalApplication
from ..errors import BadInputError
from ..msutil import require_calibrator_data
from ..qa import QAScore, score_fraction
from ..task import CalResults, Plot, Results, Task, TaskInputs
from .bandpass import refant_string


@dataclass
class GaincalInputs(TaskInputs):
    """phase_solint_sun: phase solution interval transferred to the Sun ('inf' = per scan).
    phase_solint_cal: interval of the phases that calibrate the calibrators themselves
    (None: 'int' if the weakest calibrator gives min_snr_per_integration, else 'inf')."""

    phase_solint_sun: str = "inf"
    phase_solint_cal: str | None = None
    min_snr_per_integration: float = 10.0
    minblperant: int = 4
    minsnr: float = 3.0


class GaincalResults(CalResults):
    """The gaincal tables for the cal library."""


class Gaincal(Task):
    name = "hsol_gaincal"
    Inputs = GaincalInputs
    topic = "calibration"

    def prepare(self) -> dict[str, Any]:
        inp: GaincalInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        res = self.new_results()
        fc = self.context.flux_calibrator
        if not fc:
            raise BadInputError("hsol_gaincal: no amplitude calibrator in the context; run hsol_fluxcalselect first")
        cal_ids = sorted(set(run.field_ids("bandpass") + run.field_ids("phase") + run.field_ids("flux")))
        phase_ids = run.field_ids("phase")
        if not phase_ids:
            raise BadInputError(f"{run.vis}: no CALIBRATE_PHASE field to transfer gains to the Sun")
        require_calibrator_data(run, phase_ids, "phase", self.name)
        cal_names = [run.fields[i].name for i in cal_ids]
        phase_names = [run.fields[i].name for i in phase_ids]
        spw = ",".join(map(str, run.science_spw_ids))
        wd = Path(self.context.workdir)
        tabs = {k: wd / f"{run.name}.s{self.stage}.{k}" for k in
                ("phase_int.g", "phase_scan.g", "amp_fs.g", "flux.g", "amp_scan.g")}
        for t in tabs.values():
            if t.exists():
                shutil.rmtree(t)
        refant = refant_string(self.context)
        pre = self.context.cal_args("calibrators")
        self.casa.task("setjy", vis=run.vis, field=fc["field"], spw=spw, standard="manual",
                       fluxdensity=[float(fc["flux_jy"]), 0.0, 0.0, 0.0],
                       spix=[float(fc["spectral_index"] or 0.0)], reffreq=f"{fc['reffreq_ghz']:.6f}GHz",
                       usescratch=True, _note=f"catalogue flux model of {fc['field']} ({fc['reason']})")
        common = dict(vis=run.vis, spw=spw, refant=refant, minblperant=inp.minblperant, minsnr=inp.minsnr)
        from .bandpass import expected_channel_snr

        if inp.phase_solint_cal:
            solint_cal = res.decide("phase_solint_cal", inp.phase_solint_cal, "given", by="user")
        else:
            snr_int = min(expected_channel_snr(run, i, self.context, per_integration=True) for i in cal_ids)
            solint_cal = res.decide(
                "phase_solint_cal", "int" if snr_int >= inp.min_snr_per_integration else "inf",
                f"per-integration antenna SNR of the weakest calibrator {snr_int:.1f} (need "
                f"{inp.min_snr_per_integration:g} for 'int'; weaker solutions flagged by minsnr would "
                "bias the flux scale up)")
        self.casa.task("gaincal", caltable=str(tabs["phase_int.g"]), field=",".join(cal_names),
                       solint=solint_cal, calmode="p", **common, **pre,
                       _note="phases on the calibrators (to calibrate them)")
        self.casa.task("gaincal", caltable=str(tabs["phase_scan.g"]), field=",".join(phase_names),
                       solint=inp.phase_solint_sun, calmode="p", **common, **pre,
                       _note="phase per scan on the phase calibrator (to transfer to the Sun)")
        with_phase = {"gaintable": pre["gaintable"] + [str(tabs["phase_int.g"])],
                      "gainfield": pre["gainfield"] + [""], "interp": pre["interp"] + ["linear"],
                      "spwmap": pre["spwmap"] + [[]]}
        transfer = [n for n in cal_names if n != fc["field"]]
        fluxes = None
        if transfer:
            # fluxscale needs the transfer calibrators at a 1 Jy point model; a re-run of this
            # stage would otherwise solve against the model the previous run set
            self.casa.task("setjy", vis=run.vis, field=",".join(transfer), spw=spw, standard="manual",
                           fluxdensity=[1.0, 0.0, 0.0, 0.0], usescratch=True,
                           _note="1 Jy models for the flux-transfer calibrators")
            self.casa.task("gaincal", caltable=str(tabs["amp_fs.g"]), field=",".join(cal_names),
                           solint="inf", combine="scan", calmode="a", **common, **with_phase,
                           _note="amplitudes with all scans combined, for the flux transfer only")
            fluxes = self.casa.task("fluxscale", vis=run.vis, caltable=str(tabs["amp_fs.g"]),
                                    fluxtable=str(tabs["flux.g"]), reference=[fc["field"]],
                                    transfer=transfer, incremental=False,
                                    _note="transfer the flux scale to the other calibrators")
            for name in transfer:
                fit = _fitted_flux(fluxes, name)
                if fit is None:
                    continue
                self.casa.task("setjy", vis=run.vis, field=name, spw=spw, standard="manual",
                               fluxdensity=[fit[0], 0.0, 0.0, 0.0], spix=fit[2],
                               reffreq=f"{fit[1] / 1e9:.6f}GHz", usescratch=True,
                               _note=f"{name}: flux model derived by fluxscale")
        self.casa.task("gaincal", caltable=str(tabs["amp_scan.g"]), field=",".join(cal_names),
                       solint="inf", calmode="ap", **common, **with_phase,
                       _note="amplitude (and residual phase) per scan against the calibrators' models")
        res.decide("refant", refant, "from hsol_refant")
        res.decide("amplitude_calibrator", fc["field"], fc["reason"], by="heuristic")
        phase_field = ",".join(phase_names)
        cals = [
            CalApplication(str(tabs["phase_int.g"]), "gain_phase_int", self.stage, target="calibrators",
                           gainfield="nearest", interp="linear"),
            CalApplication(str(tabs["amp_scan.g"]), "gain_amp_scan", self.stage, target="calibrators",
                           gainfield="nearest", interp="linear"),
            CalApplication(str(tabs["phase_scan.g"]), "gain_phase_scan", self.stage, target="sun",
                           gainfield=phase_field, interp="linear"),
            CalApplication(str(tabs["amp_scan.g"]), "gain_amp_scan", self.stage, target="sun",
                           gainfield=phase_field, interp="linear"),
        ]
        return {"results": res, "tabs": tabs, "fluxes": fluxes, "cals": cals, "transfer": transfer}

    def analyse(self, raw: dict[str, Any]) -> Results:
        from ..weblog import plots

        res = GaincalResults(**vars(raw["results"]))
        # the flux table is registered for two targets: keep one entry per (table, target)
        res.cal_applications = raw["cals"]
        run = self.context.observing_run
        derived = {}
        for key, val in (raw["fluxes"] or {}).items():
            if isinstance(val, dict) and "fieldName" in val:
                spws = {}
                for s in run.science_spw_ids:
                    f = val.get(str(s), {}).get("fluxd")
                    if f is not None and f[0] > 0:
                        spws[str(s)] = float(f[0])
                derived[val["fieldName"]] = {"spw_flux_jy": spws, "fitFluxd": float(val.get("fitFluxd", 0.0)),
                                             "spidx": [float(x) for x in np.atleast_1d(val.get("spidx", []))]}
        res.summary["derived_fluxes"] = derived
        res.summary["tables"] = {k: Path(v).name for k, v in raw["tabs"].items()}
        res.summary["solutions"] = {k: solution_stats(v) for k, v in raw["tabs"].items()
                                    if k not in ("flux.g", "amp_fs.g") and Path(v).exists()}
        d = self.stage_dir
        for path, cap in plots.gain_plots(raw["tabs"], run, d):
            res.plots.append(Plot(str(Path(path).relative_to(d.parent)), cap))
        return res

    def qa(self, results: Results) -> list[QAScore]:
        out = []
        for name, st in results.summary["solutions"].items():
            out.append(QAScore(score_fraction(st["failed_fraction"], 0.02, 0.5),
                               f"{name}: {100 * st['failed_fraction']:.1f}% solutions failed, median SNR {st['median_snr']:.0f}",
                               "Fraction of flagged gain solutions and median SNR.",
                               metric_name="failed_fraction", metric_value=st["failed_fraction"],
                               applies_to={"table": name}, topic="calibration"))
        fc = self.context.flux_calibrator or {}
        return out + [QAScore(1.0 if results.summary["derived_fluxes"] or not fc else 0.5,
                              f"fluxscale derived {len(results.summary['derived_fluxes'])} flux(es)",
                              "Flux densities of the transfer calibrators derived by fluxscale.",
                              topic="calibration")]


def _fitted_flux(fluxes: dict | None, field: str) -> tuple[float, float, list[float]] | None:
    """(flux at the fit reference frequency, that frequency in Hz, [spectral index]) from
    a fluxscale result, or None when the fit failed."""
    for val in (fluxes or {}).values():
        if isinstance(val, dict) and val.get("fieldName") == field:
            flux = float(val.get("fitFluxd", 0.0))
            ref = float(val.get("fitRefFreq", 0.0))
            spidx = [float(x) for x in np.atleast_1d(val.get("spidx", [0.0, 0.0]))]
            if flux > 0 and ref > 0:
                return flux, ref, spidx[1:2] or [0.0]
    return None
