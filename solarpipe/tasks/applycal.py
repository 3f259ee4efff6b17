"""hsol_applycal: apply the cal library, in order, to calibrators and Sun fields.

Calibrators get Tsys, bandpass, per-integration phase and flux-scaled
amplitudes from their own scans; the Sun fields get Tsys+Tant, bandpass and
the phase calibrator's per-scan phases and amplitudes interpolated in time.
One applycal per target group. Data that could not be calibrated (no
solution) are flagged by applycal and reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInputError
from ..qa import QAScore, score_fraction
from ..task import Plot, Results, Task, TaskInputs


@dataclass
class ApplycalInputs(TaskInputs):
    """applymode: 'calflag' flags what cannot be calibrated (CASA's default)."""

    applymode: str = "calflag"


class Applycal(Task):
    name = "hsol_applycal"
    creates_corrected = True
    Inputs = ApplycalInputs
    topic = "calibration"

    def prepare(self) -> dict[str, Any]:
        run = self.context.observing_run
        res = self.new_results()
        if not self.context.callibrary:
            raise BadInputError("hsol_applycal: the cal library is empty; run the calibration stages first")
        spw = ",".join(map(str, run.science_spw_ids))
        cal_ids = sorted(set(run.field_ids("bandpass") + run.field_ids("phase") + run.field_ids("flux")))
        groups = {"calibrators": ",".join(str(i) for i in cal_ids),
                  "sun": ",".join(str(i) for i in run.sun_field_ids)}
        self.start_flags(run.vis, "flags before applycal")
        before = self.casa.task("flagdata", vis=run.vis, mode="summary", spw=spw, _note="flags before applycal")
        applied, calls = {}, []
        for target, fields in groups.items():
            if not fields:
                continue
            args = self.context.cal_args(target, for_applycal=True)
            applied[target] = [Path(t).name for t in args["gaintable"]]
            calls.append((dict(field=fields, spw=spw, applymode=self.inputs.applymode,  # type: ignore[attr-defined]
                               flagbackup=False, **args), f"apply the cal library to the {target}"))
        jobs = self.casa.applycal(run.vis, calls)  # one job per sub-MS of a multi-MS with several workers
        if jobs:
            res.summary["apply_jobs"] = jobs
        after = self.casa.task("flagdata", vis=run.vis, mode="summary", spw=spw, _note="flags after applycal")
        res.decide("tables_applied", applied, "cal library order, per target group")
        return {"results": res, "before": before, "after": after}

    def analyse(self, raw: dict[str, Any]) -> Results:
        from ..weblog import plots

        res = raw["results"]
        b, a = raw["before"], raw["after"]
        new = (a["flagged"] - b["flagged"]) / a["total"] if a["total"] else 0.0
        res.summary["newly_flagged_fraction"] = new
        res.summary["flagged_fraction"] = a["flagged"] / a["total"] if a["total"] else 0.0
        run = self.context.observing_run
        d = self.stage_dir
        for path, cap in plots.calibrated_plots(run, d):
            res.plots.append(Plot(str(Path(path).relative_to(d.parent)), cap))
        return res

    def qa(self, results: Results) -> list[QAScore]:
        new = results.summary["newly_flagged_fraction"]
        return [QAScore(score_fraction(new, 0.01, 0.3), f"{100 * new:.2f}% flagged by applycal",
                        "Visibilities that could not be calibrated (no valid solution) and were flagged.",
                        metric_name="newly_flagged_fraction", metric_value=new, topic="calibration")]
