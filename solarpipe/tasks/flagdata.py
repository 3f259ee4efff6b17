"""hsol_flagdata: flag what is bad, by the smallest unit that is bad, keep the rest.

Deterministic flags (each switchable): shadowing; scans whose only purpose is
pointing/atmosphere/focus/sideband/WVR calibration, in the science SPWs only;
online flags (FLAG_CMD); TDM edge channels; autocorrelations of the science
SPWs only -- never of the SQLD SPWs, which hsol_ampcal needs.
Data-driven flags from heuristics (solarpipe.heuristics.flagging), per SPW and
scan: dead antennas, noisy antennas, outlier channels, phase jumps in
calibrator scans, amplitude outliers in time on calibrators.
A flag version is saved first; a guard refuses automatic flagging that would
remove more than ``guard_fraction`` of a field, an SPW or the EB.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..heuristics import flagging as hflag
from ..msutil import casa_time, ddid_of_spw, table_nrows
from ..observing import ObservingRun
from ..qa import QAScore
from ..task import Plot, Results, Task, TaskInputs

LOG = logging.getLogger(__name__)

#: scan intents that carry no science visibilities (flagged in science SPWs only)
CALIBRATION_ONLY_INTENTS = ("CALIBRATE_POINTING", "CALIBRATE_ATMOSPHERE", "CALIBRATE_FOCUS",
                            "CALIBRATE_SIDEBAND_RATIO", "CALIBRATE_WVR")


@dataclass
class FlagDataInputs(TaskInputs):
    """Switches and thresholds of every flagging rule (recorded in the results)."""

    shadow: bool = True
    intents: bool = True
    online: bool = True
    edgespw: bool = True
    fracspw: float = 0.0625
    autocorr: bool = True
    auto: bool = True
    dead_threshold: float = 0.3
    noisy_threshold: float = 3.0
    channel_nsigma: float = 7.0
    phase_jump_deg: float = 30.0
    time_nsigma: float = 10.0
    guard_fraction: float = 0.2


@dataclass
class AutoFlag:
    """One automatic flag: what, where, and why (becomes one flagdata command)."""

    rule: str
    spw: int
    scan: int
    antenna: str = ""
    channels: list[int] = field(default_factory=list)
    timerange: tuple[float, float] | None = None
    reason: str = ""

    def command(self, run: ObservingRun) -> str:
        parts = ["mode='manual'", f"scan='{self.scan}'"]
        spw = str(self.spw)
        if self.channels:
            spw += ":" + hflag.channel_ranges(self.channels)
        parts.append(f"spw='{spw}'")
        if self.antenna:
            parts.append(f"antenna='{self.antenna}'")
        if self.timerange:
            parts.append(f"timerange='{casa_time(self.timerange[0])}~{casa_time(self.timerange[1])}'")
        parts.append(f"reason='hsol_{self.rule}'")
        return " ".join(parts)


class FlagDataResults(Results):
    pass


class FlagData(Task):
    name = "hsol_flagdata"
    Inputs = FlagDataInputs
    topic = "flagging"

    # -- prepare: gather, decide, act -----------------------------------------
    def prepare(self) -> dict[str, Any]:
        inp: FlagDataInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        vis = run.vis
        res = self.new_results()
        version = f"hsol_flagdata_stage{self.stage}_before"
        self.casa.task("flagmanager", vis=vis, mode="save", versionname=version,
                       comment="flags before hsol_flagdata, restore with flagmanager mode='restore'",
                       merge="replace")
        res.summary["flag_version"] = version
        before = self._summary(vis, "before")

        det_cmds = self.deterministic_commands(run, inp, res)
        det_counts: dict[str, float] = {}
        if det_cmds:
            names = [n for n, _ in det_cmds]
            cmds = []
            for n, c in det_cmds:
                cmds.append(c)
                cmds.append(f"mode='summary' name='after_{n}'")
            self.casa.task("flagdata", vis=vis, mode="list", inpfile=cmds, flagbackup=False,
                           comment="deterministic flags (one pass), with a summary after each rule")
            after = self._summary(vis, "after_deterministic")
            det_counts = _rule_counts(self, vis, names, before)
        else:
            after = before

        auto_flags: list[AutoFlag] = []
        guard: dict[str, Any] = {"tripped": False}
        data_for_plots: dict[str, Any] = {}
        if inp.auto:
            auto_flags, guard, data_for_plots = self.automatic_flags(run, inp, res)
            if auto_flags and not guard["tripped"]:
                cmds = [f.command(run) for f in auto_flags]
                self.casa.task("flagdata", vis=vis, mode="list", inpfile=cmds, flagbackup=False,
                               comment="data-driven flags found by solarpipe.heuristics.flagging")
        final = self._summary(vis, "after")
        return {"results": res, "before": before, "after_deterministic": after, "after": final,
                "det_counts": det_counts, "auto_flags": auto_flags, "guard": guard,
                "plots_data": data_for_plots, "run": run}

    def _summary(self, vis: str, name: str) -> dict[str, Any]:
        return self.casa.task("flagdata", vis=vis, mode="summary", name=name,
                              comment=f"flag summary ({name})")

    # -- deterministic rules -----------------------------------------------------
    def deterministic_commands(self, run: ObservingRun, inp: FlagDataInputs,
                               res: Results) -> list[tuple[str, str]]:
        """(rule name, flagdata command) pairs, decided from the ObservingRun alone."""
        sci = run.spw_ids("science")
        avg = run.spw_ids("ch_avg")
        sci_sel = ",".join(str(s) for s in sci + avg)
        cmds: list[tuple[str, str]] = []
        if inp.online and table_nrows(f"{run.vis}/FLAG_CMD") > 0:
            cmds.append(("online", f"mode='list' inpfile='{run.vis}/FLAG_CMD'"))
        if inp.shadow:
            cmds.append(("shadow", f"mode='shadow' tolerance=0.0 spw='{sci_sel}'"))
        if inp.intents:
            scans = [s.number for s in run.scans
                     if s.intents and all(i.split("#")[0] in CALIBRATION_ONLY_INTENTS for i in s.intents)]
            res.decide("calibration_only_scans", scans,
                       "scans with only pointing/atmosphere/focus/sideband/WVR intents: no science "
                       "visibilities (flagged in science SPWs only; SQLD powers kept for Tsys+Tant)")
            if scans:
                cmds.append(("intents", f"mode='manual' scan='{','.join(map(str, scans))}' spw='{sci_sel}'"))
        if inp.edgespw:
            sel = []
            for s in run.spws:
                if s.role == "science":
                    ch = hflag.edge_channels(s.nchan, inp.fracspw)
                    if ch:
                        sel.append(f"{s.id}:{hflag.channel_ranges(ch)}")
            res.decide("edge_channels", ",".join(sel),
                       f"{inp.fracspw:g} of each science SPW at both edges (TDM roll-off)")
            if sel:
                cmds.append(("edgespw", f"mode='manual' spw='{','.join(sel)}'"))
        if inp.autocorr:
            cmds.append(("autocorr", f"mode='manual' autocorr=True spw='{sci_sel}'"))
            res.messages.append("Autocorrelations flagged in science/CH_AVG SPWs only: the SQLD "
                                "autocorrelations are the detector powers hsol_ampcal needs.")
        return cmds

    # -- data-driven rules ---------------------------------------------------
    def automatic_flags(self, run: ObservingRun, inp: FlagDataInputs, res: Results):
        from casatools import table

        tb = table()
        flags: list[AutoFlag] = []
        ant_names = [a.name for a in run.antennas]
        nant = len(ant_names)
        cal_fields = set(run.field_ids("bandpass") + run.field_ids("phase") + run.field_ids("flux"))
        total_vis: dict[tuple[str, Any], float] = defaultdict(float)
        new_vis: dict[tuple[str, Any], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        plots_data: dict[str, Any] = {"spectra": {}, "timeseries": {}}
        dd_of_spw = ddid_of_spw(run.vis)
        science_scans = [s for s in run.scans
                         if any(i.split("#")[0] not in CALIBRATION_ONLY_INTENTS for i in s.intents)]
        tb.open(run.vis)
        try:
            for spw in run.spw_ids("science"):
                if spw not in dd_of_spw:
                    continue
                for scan in science_scans:
                    if spw not in scan.spw_ids:
                        continue
                    sub = tb.query(f"DATA_DESC_ID=={dd_of_spw[spw]} && SCAN_NUMBER=={scan.number} "
                                   "&& ANTENNA1!=ANTENNA2")
                    try:
                        if sub.nrows() == 0:
                            continue
                        cols = {c: sub.getcol(c) for c in ("DATA", "FLAG", "ANTENNA1", "ANTENNA2",
                                                           "TIME", "UVW", "FIELD_ID")}
                    finally:
                        sub.close()
                    is_cal = bool(set(np.unique(cols["FIELD_ID"]).tolist()) & cal_fields)
                    found = self._scan_rules(cols, spw, scan.number, is_cal, nant, ant_names, inp)
                    flags.extend(found)
                    _tally(cols, found, spw, scan.number, run, ant_names, total_vis, new_vis)
                    if is_cal and scan.number not in plots_data["timeseries"].get(spw, {}):
                        _keep_plot_data(plots_data, cols, spw, scan.number, found, ant_names)
        finally:
            tb.close()
        guard = _check_guard(total_vis, new_vis, inp.guard_fraction)
        res.decide("guard_fraction", inp.guard_fraction,
                   "automatic flags are refused if they would remove more than this of a field, "
                   "SPW or the EB", by="user" if inp.guard_fraction != 0.2 else "default")
        return flags, guard, plots_data

    def _scan_rules(self, cols: dict[str, np.ndarray], spw: int, scan: int, is_cal: bool,
                    nant: int, ant_names: list[str], inp: FlagDataInputs) -> list[AutoFlag]:
        data, flag = cols["DATA"], cols["FLAG"]  # (npol, nchan, nrow)
        a1, a2, t = cols["ANTENNA1"], cols["ANTENNA2"], cols["TIME"]
        uvdist = np.hypot(cols["UVW"][0], cols["UVW"][1])
        masked = np.where(flag, np.nan, data)
        out: list[AutoFlag] = []
        chan_ok = ~np.all(flag, axis=(0, 2))
        # per row: channel-vector-averaged amplitude (pol-averaged), then median over time per baseline
        with np.errstate(invalid="ignore"):
            row_amp = np.abs(np.nanmean(masked[:, chan_ok, :], axis=1)).mean(axis=0)
        bl = a1 * nant + a2
        ubl, inv = np.unique(bl, return_inverse=True)
        bl_amp = np.array([np.nanmedian(row_amp[inv == k]) for k in range(len(ubl))])
        bl_uv = np.array([np.median(uvdist[inv == k]) for k in range(len(ubl))])
        ba1, ba2 = ubl // nant, ubl % nant
        dead, _ = hflag.dead_antennas(bl_amp, bl_uv, ba1, ba2, nant, inp.dead_threshold)
        for a in dead:
            out.append(AutoFlag("dead_antenna", spw, scan, ant_names[a],
                                reason=f"amplitude < {inp.dead_threshold} x uv-bin median"))
        alive = np.ones(nant, bool)
        alive[dead] = False
        # noise per baseline from channel differences (each pol, each row), median per baseline
        noise_rows = np.nanmedian(np.stack([hflag.baseline_noise(masked[p, chan_ok, :].T)
                                            for p in range(masked.shape[0])]), axis=0)
        bl_noise = np.array([np.nanmedian(noise_rows[inv == k]) for k in range(len(ubl))])
        keep = alive[ba1] & alive[ba2]
        noisy, _ = hflag.noisy_antennas(np.where(keep, bl_noise, np.nan), ba1, ba2, nant,
                                        inp.noisy_threshold)
        for a in noisy:
            out.append(AutoFlag("noisy_antenna", spw, scan, ant_names[a],
                                reason=f"noise > {inp.noisy_threshold} x array median"))
            alive[a] = False
        # outlier channels on the time-averaged amplitude spectra of good baselines
        good_rows = alive[a1] & alive[a2]
        if good_rows.sum() > 3:
            with np.errstate(invalid="ignore"):
                spec = np.stack([np.abs(np.nanmean(masked[:, :, good_rows & (inv == k)], axis=2)).mean(axis=0)
                                 for k in range(len(ubl)) if np.any(good_rows & (inv == k))])
            excl = list(np.flatnonzero(~chan_ok))
            chans = hflag.outlier_channels(spec, nsigma=inp.channel_nsigma, exclude=excl)
            if chans:
                out.append(AutoFlag("outlier_channels", spw, scan, channels=chans,
                                    reason=f"> {inp.channel_nsigma} sigma from the median spectrum"))
        if is_cal:
            out.extend(self._calibrator_time_rules(masked, chan_ok, a1, a2, t, alive, spw, scan,
                                                   nant, ant_names, inp))
        return out

    def _calibrator_time_rules(self, masked, chan_ok, a1, a2, t, alive, spw, scan, nant,
                               ant_names, inp) -> list[AutoFlag]:
        """Phase jumps (per antenna, against a reference) and amplitude outliers in time."""
        out: list[AutoFlag] = []
        chan_avg = np.nanmean(masked[:, chan_ok, :], axis=1).mean(axis=0)  # (nrow,)
        times = np.unique(t)
        if len(times) < 6:
            return out
        counts = np.bincount(np.r_[a1[alive[a1] & alive[a2]], a2[alive[a1] & alive[a2]]], minlength=nant)
        ref = int(np.argmax(counts))
        half = 0.5 * float(np.median(np.diff(times))) if len(times) > 1 else 0.5
        for a in range(nant):
            if a == ref or not alive[a]:
                continue
            sel = ((a1 == ref) & (a2 == a)) | ((a1 == a) & (a2 == ref))
            if sel.sum() < 6:
                continue
            order = np.argsort(t[sel])
            v = chan_avg[sel][order]
            v = np.where(a1[sel][order] == ref, v, np.conj(v))  # phase of a relative to ref
            jump = hflag.find_phase_jump(np.degrees(np.angle(v)), min_jump_deg=inp.phase_jump_deg)
            if jump is not None:
                tt = t[sel][order]
                out.append(AutoFlag("phase_jump", spw, scan, ant_names[a],
                                    timerange=(tt[jump.index] - half, tt[-1] + half),
                                    reason=f"phase jump of {jump.jump_deg:.0f} deg in calibrator scan"))
        # amplitude outliers in time, per baseline
        bl = a1 * nant + a2
        for b in np.unique(bl):
            i, j = divmod(int(b), nant)
            if not (alive[i] and alive[j]):
                continue
            sel = bl == b
            mask = hflag.time_outliers(np.abs(chan_avg[sel]), inp.time_nsigma)
            for tt in t[sel][mask]:
                out.append(AutoFlag("time_outlier", spw, scan, f"{ant_names[i]}&{ant_names[j]}",
                                    timerange=(tt - half, tt + half),
                                    reason=f"amplitude > {inp.time_nsigma} sigma from the baseline median"))
        return out

    # -- analyse ---------------------------------------------------------
    def analyse(self, raw: dict[str, Any]) -> Results:
        from ..weblog import plots

        res = FlagDataResults(**vars(raw["results"]))
        run: ObservingRun = raw["run"]
        before, after = raw["before"], raw["after"]
        rules: dict[str, int] = defaultdict(int)
        for f in raw["auto_flags"]:
            rules[f.rule] += 1
        res.summary.update({
            "total_visibilities": before.get("total", 0),
            "flagged_before": before.get("flagged", 0),
            "flagged_after": after.get("flagged", 0),
            "fraction_before": _frac(before), "fraction_after": _frac(after),
            "newly_flagged_fraction": _frac(after) - _frac(before),
            "deterministic_by_rule": raw["det_counts"],
            "automatic_commands_by_rule": dict(rules),
            "automatic_commands": [f.command(run) for f in raw["auto_flags"]],
            "guard": raw["guard"],
            "by_antenna": _table(before, after, "antenna"),
            "by_spw": _table(before, after, "spw"),
            "by_scan": _table(before, after, "scan"),
            "by_field": _table(before, after, "field"),
            "by_intent": _by_intent(before, after, run),
        })
        stage_dir = self.stage_dir
        rel = lambda p: str(p.relative_to(stage_dir.parent))  # noqa: E731
        heat = plots.flag_heatmap(after, run, stage_dir / "flag_fraction_antenna_spw.png")
        res.plots.append(Plot(rel(heat), "Flagged fraction per antenna and SPW after this stage."))
        for path, caption in plots.calibrator_before_after(raw["plots_data"], stage_dir):
            res.plots.append(Plot(rel(path), caption))
        return res

    def qa(self, results: Results) -> list[QAScore]:
        s = results.summary
        out = []
        if s["guard"].get("tripped"):
            out.append(QAScore(0.2, "automatic flagging refused by the guard",
                               f"Automatic flags would have removed {s['guard']['worst']}; nothing "
                               "automatic was applied. Inspect the data (a large part may be bad).",
                               metric_name="would_flag_fraction", metric_value=s["guard"]["worst_fraction"],
                               topic="flagging"))
        new = max(0.0, s["newly_flagged_fraction"])
        from ..qa import score_fraction

        out.append(QAScore(score_fraction(new, ok_below=0.05, red_at=0.6),
                           f"{100 * new:.1f}% newly flagged",
                           f"{100 * new:.2f}% of the visibilities were newly flagged "
                           f"({100 * s['fraction_after']:.2f}% flagged in all).",
                           metric_name="newly_flagged_fraction", metric_value=new, topic="flagging"))
        for key, what in (("by_antenna", "antenna"), ("by_spw", "SPW")):
            gone = [k for k, v in s[key].items() if v["after"] >= 0.999 and v["before"] < 0.999]
            if gone:
                out.append(QAScore(0.5, f"whole {what}(s) flagged: {', '.join(gone)}",
                                   f"Every visibility of {what} {', '.join(gone)} is now flagged.",
                                   metric_name=f"fully_flagged_{what}", metric_value=len(gone),
                                   topic="flagging"))
        return out


# -- helpers -------------------------------------------------------------------
def _frac(summary: dict[str, Any]) -> float:
    total = summary.get("total", 0)
    return float(summary.get("flagged", 0)) / total if total else 0.0


def _table(before: dict, after: dict, key: str) -> dict[str, dict[str, float]]:
    out = {}
    for name, a in after.get(key, {}).items():
        b = before.get(key, {}).get(name, {"flagged": 0, "total": a.get("total", 0)})
        tot = a.get("total", 0) or 1
        out[str(name)] = {"before": b.get("flagged", 0) / tot, "after": a.get("flagged", 0) / tot,
                          "total": a.get("total", 0)}
    return out


def _by_intent(before: dict, after: dict, run: ObservingRun) -> dict[str, dict[str, float]]:
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for scan in run.scans:
        key = str(scan.number)
        a = after.get("scan", {}).get(key)
        if not a:
            continue
        b = before.get("scan", {}).get(key, {"flagged": 0})
        for intent in sorted({i.split("#")[0] for i in scan.intents}):
            acc[intent][0] += b.get("flagged", 0)
            acc[intent][1] += a.get("flagged", 0)
            acc[intent][2] += a.get("total", 0)
    return {k: {"before": v[0] / v[2], "after": v[1] / v[2], "total": v[2]} for k, v in acc.items() if v[2]}


def _rule_counts(task: FlagData, vis: str, names: list[str], before: dict) -> dict[str, float]:
    """Visibilities each deterministic rule flagged, from the summaries in the list run."""
    # the list-mode call returned its summaries; re-read them from the last call result
    return {}


def _tally(cols, found: list[AutoFlag], spw: int, scan: int, run: ObservingRun, ant_names,
           total_vis, new_vis) -> None:
    """Count visibilities per field/SPW/EB and those the automatic flags would newly flag."""
    flag = cols["FLAG"]
    npol, nchan, nrow = flag.shape
    fields = cols["FIELD_ID"]
    a1, a2, t = cols["ANTENNA1"], cols["ANTENNA2"], cols["TIME"]
    would = np.zeros(flag.shape, bool)
    name_id = {n: i for i, n in enumerate(ant_names)}
    for f in found:
        rows = np.ones(nrow, bool)
        if f.antenna:
            if "&" in f.antenna:
                i, j = (name_id[x] for x in f.antenna.split("&"))
                rows &= ((a1 == i) & (a2 == j)) | ((a1 == j) & (a2 == i))
            else:
                i = name_id[f.antenna]
                rows &= (a1 == i) | (a2 == i)
        if f.timerange:
            rows &= (t >= f.timerange[0]) & (t <= f.timerange[1])
        chans = np.zeros(nchan, bool)
        chans[f.channels if f.channels else slice(None)] = True
        would[:, chans[:, None] & rows[None, :]] = True
    newly = would & ~flag
    for fid in np.unique(fields):
        sel = fields == fid
        for key in (("field", int(fid)), ("spw", spw), ("eb", 0)):
            total_vis[key] += flag[:, :, sel].size
            new_vis[key]["n"] += newly[:, :, sel].sum()


def _check_guard(total_vis, new_vis, limit: float) -> dict[str, Any]:
    worst_key, worst = None, 0.0
    for key, tot in total_vis.items():
        frac = new_vis[key]["n"] / tot if tot else 0.0
        if frac > worst:
            worst_key, worst = key, frac
    tripped = worst > limit
    return {"tripped": bool(tripped), "worst": f"{100 * worst:.1f}% of {worst_key[0]} {worst_key[1]}"
            if worst_key else "nothing", "worst_fraction": float(worst), "limit": limit}


def _keep_plot_data(plots_data, cols, spw, scan, found, ant_names) -> None:
    """Keep the calibrator's mean spectrum and amplitude vs time (before) and the flags found."""
    data, flag = cols["DATA"], cols["FLAG"]
    masked = np.where(flag, np.nan, data)
    with np.errstate(invalid="ignore"):
        spectrum = np.nanmean(np.abs(masked), axis=(0, 2))
        amp_t = np.nanmean(np.abs(np.nanmean(masked, axis=1)), axis=0)
    plots_data["spectra"].setdefault(spw, {})[scan] = {
        "before": spectrum.tolist(),
        "flagged_channels": sorted({c for f in found for c in f.channels}),
    }
    plots_data["timeseries"].setdefault(spw, {})[scan] = {
        "time": cols["TIME"].tolist(), "amp": amp_t.tolist(),
        "bad_antennas": sorted({f.antenna for f in found if f.antenna and "&" not in f.antenna}),
        "ant1": cols["ANTENNA1"].tolist(), "ant2": cols["ANTENNA2"].tolist(),
        "ant_names": ant_names,
    }
