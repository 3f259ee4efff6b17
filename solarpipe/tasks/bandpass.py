"""hsol_bandpass: bandpass on the bandpass calibrator, after a phase-up.

Tsys (registered by hsol_ampcal) is pre-applied on the fly. The solution
interval along frequency is chosen from the expected per-channel SNR: channels
are averaged (solint 'inf,N ch') only when one channel's SNR would be < min_snr.
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


@dataclass
class BandpassInputs(TaskInputs):
    """solint: bandpass solution interval (None: 'inf' + channel averaging from SNR).
    min_snr: per-channel SNR that needs no averaging."""

    solint: str | None = None
    min_snr: float = 10.0
    minblperant: int = 4


class BandpassResults(CalResults):
    """The bandpass tables for the cal library."""


def refant_string(context) -> str:
    """The ranked reference antennas as CASA wants them ('DV01,DV02,...')."""
    return ",".join(context.refants[:5]) if context.refants else ""


class Bandpass(Task):
    name = "hsol_bandpass"
    Inputs = BandpassInputs
    topic = "calibration"

    def prepare(self) -> dict[str, Any]:
        inp: BandpassInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        res = self.new_results()
        bp_fields = run.field_ids("bandpass")
        if not bp_fields:
            raise BadInputError(f"{run.vis}: no field with intent CALIBRATE_BANDPASS (STATE table): no bandpass "
                                "calibrator, so this EB cannot be bandpass-calibrated on its own; the stages "
                                "before this one are kept (solarpipe resume after fixing the intents, or "
                                "calibrate with another EB's bandpass table)")
        require_calibrator_data(run, bp_fields[:1], "bandpass", self.name)
        field = run.fields[bp_fields[0]].name
        spw = ",".join(map(str, run.science_spw_ids))
        wd = Path(self.context.workdir)
        phase_t = wd / f"{run.name}.s{self.stage}.bpphase.g"
        bp_t = wd / f"{run.name}.s{self.stage}.bandpass.b"
        for t in (phase_t, bp_t):
            if t.exists():
                shutil.rmtree(t)
        pre = self.context.cal_args("calibrators")
        refant = refant_string(self.context)
        snr = expected_channel_snr(run, bp_fields[0], self.context)
        nchan = min(s.nchan for s in run.spws if s.role == "science")
        if inp.solint:
            solint = res.decide("solint", inp.solint, "given", by="user")
        else:
            avg = int(min(nchan // 4, max(1, np.ceil((inp.min_snr / max(snr, 1e-3)) ** 2)))) if snr < inp.min_snr else 1
            solint = res.decide("solint", "inf" if avg == 1 else f"inf,{avg}ch",
                                f"expected per-channel SNR {snr:.1f} (min {inp.min_snr:g})")
        res.decide("bandpass_field", field, "the CALIBRATE_BANDPASS field")
        res.decide("refant", refant, "from hsol_refant")
        central = ";".join(f"{s.id}:{s.nchan // 2 - max(1, s.nchan // 8)}~{s.nchan // 2 + max(1, s.nchan // 8)}"
                           for s in run.spws if s.role == "science")
        self.casa.task("gaincal", vis=run.vis, caltable=str(phase_t), field=field,
                       spw=",".join(central.split(";")), solint="int", calmode="p", refant=refant,
                       minblperant=inp.minblperant, minsnr=2.0, **pre,
                       _note="phase-up on the central channels before the bandpass")
        self.casa.task("bandpass", vis=run.vis, caltable=str(bp_t), field=field, spw=spw,
                       solint=solint, combine="scan", refant=refant, solnorm=True, bandtype="B",
                       minblperant=inp.minblperant, minsnr=3.0,
                       gaintable=pre["gaintable"] + [str(phase_t)],
                       gainfield=pre["gainfield"] + [""], interp=pre["interp"] + ["linear"],
                       spwmap=pre["spwmap"] + [[]],
                       _note="bandpass, Tsys and phase-up pre-applied")
        cal = CalApplication(gaintable=str(bp_t), caltype="bandpass", stage=self.stage, target="all",
                             interp="linear,linear", calwt=False)
        return {"results": res, "bp": bp_t, "cals": [cal], "snr": snr}

    def analyse(self, raw: dict[str, Any]) -> Results:
        from ..weblog import plots

        res = BandpassResults(**vars(raw["results"]))
        res.cal_applications = raw["cals"]
        res.summary.update(solution_stats(raw["bp"]))
        res.summary["table"] = Path(raw["bp"]).name
        res.summary["expected_channel_snr"] = raw["snr"]
        d = self.stage_dir
        for path, cap in plots.bandpass_plots(raw["bp"], self.context.observing_run, d):
            res.plots.append(Plot(str(Path(path).relative_to(d.parent)), cap))
        return res

    def qa(self, results: Results) -> list[QAScore]:
        s = results.summary
        return [QAScore(score_fraction(s["failed_fraction"], 0.02, 0.5),
                        f"{100 * s['failed_fraction']:.1f}% bandpass solutions failed",
                        "Fraction of flagged bandpass solutions (antenna x channel x pol).",
                        metric_name="failed_fraction", metric_value=s["failed_fraction"], topic="calibration"),
                QAScore(1.0 if s["median_snr"] >= 20 else (0.7 if s["median_snr"] >= 5 else 0.4),
                        f"median bandpass SNR {s['median_snr']:.0f}", "Median SNR of the bandpass solutions.",
                        metric_name="median_snr", metric_value=s["median_snr"], topic="calibration")]


def expected_channel_snr(run, field_id: int, context, per_integration: bool = False) -> float:
    """SNR of antenna-based solutions from the data themselves (one SPW, one pol):
    per channel over the whole field (bandpass, ``per_integration`` False), or over all
    channels of one integration (per-integration phases, ``per_integration`` True)."""
    from casatools import table

    from ..heuristics.flagging import baseline_noise
    from ..msutil import ddid_of_spw

    spw = run.science_spw_ids[0]
    dd = ddid_of_spw(run.vis)[spw]
    tb = table()
    tb.open(run.vis)
    try:
        q = tb.query(f"FIELD_ID=={field_id} && DATA_DESC_ID=={dd} && ANTENNA1!=ANTENNA2")
        try:
            if q.nrows() == 0:
                return 0.0
            data = q.getcol("DATA")[0]  # (nchan, nrow)
            flag = q.getcol("FLAG")[0]
            a1, a2 = q.getcol("ANTENNA1"), q.getcol("ANTENNA2")
        finally:
            q.close()
    finally:
        tb.close()
    vis = np.where(flag, np.nan, data).T  # (nrow, nchan)
    sigma = float(np.nanmedian(baseline_noise(vis)))
    if not sigma > 0:
        return float("inf")
    nant = max(len(run.antennas), 2)
    bl = a1 * nant + a2
    # per baseline first: different baselines have different (uncalibrated) phases
    per_bl = []
    for b in np.unique(bl):
        v = vis[bl == b]
        if per_integration:
            good = np.isfinite(v).any(axis=0)
            per_bl.append(np.nanmedian(np.abs(np.nanmean(v[:, good], axis=1))) * np.sqrt(good.sum()))
        else:
            per_bl.append(np.nanmedian(np.abs(np.nanmean(v, axis=0))) * np.sqrt(np.isfinite(v).any(axis=1).sum()))
    amp = float(np.nanmedian(per_bl))
    return amp / sigma * np.sqrt(nant - 1)
