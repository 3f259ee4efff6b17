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
import warnings
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
    dead_significance: float = 4.0
    low_min_significance: float = 25.0
    noisy_threshold: float = 3.0
    channel_nsigma: float = 7.0
    channel_min_deviation: float = 0.25
    phase_jump_deg: float = 30.0
    time_nsigma: float = 10.0
    guard_fraction: float = 0.2


@dataclass
class AutoFlag:
    """One automatic flag: what, where, and why (becomes one flagdata command)."""

    rule: str
    spws: list[int]
    scan: int
    antenna: str = ""
    channels: list[int] = field(default_factory=list)
    timerange: tuple[float, float] | None = None
    reason: str = ""

    def command(self, run: ObservingRun) -> str:
        parts = ["mode='manual'", f"scan='{self.scan}'"]
        chans = ":" + hflag.channel_ranges(self.channels) if self.channels else ""
        parts.append(f"spw='{','.join(f'{s}{chans}' for s in self.spws)}'")
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
        version = self.start_flags(vis, "before hsol_flagdata (restore with flagmanager mode='restore')")
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
            reports = self.casa.task("flagdata", vis=vis, mode="list", inpfile=cmds, flagbackup=False,
                                     _note="deterministic flags (one pass), with a summary after each rule")
            after = self._summary(vis, "after_deterministic")
            det_counts = rule_counts(names, before, reports)
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
                               _note="data-driven flags found by solarpipe.heuristics.flagging")
        final = self._summary(vis, "after")
        return {"results": res, "before": before, "after_deterministic": after, "after": final,
                "det_counts": det_counts, "auto_flags": auto_flags, "guard": guard,
                "plots_data": data_for_plots, "run": run}

    def _summary(self, vis: str, name: str) -> dict[str, Any]:
        return self.casa.task("flagdata", vis=vis, mode="summary", name=name,
                              _note=f"flag summary ({name})")

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
        """Read each science scan (all science SPWs, cross-correlations) once and ask the
        heuristics what is bad; returns (flags, guard verdict, data for plots)."""
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
        sci_spws = [s for s in run.spw_ids("science") if s in dd_of_spw]
        science_scans = [s for s in run.scans
                         if any(i.split("#")[0] not in CALIBRATION_ONLY_INTENTS for i in s.intents)]
        tb.open(run.vis)
        try:
            for scan in science_scans:
                per_spw: dict[int, dict[str, np.ndarray]] = {}
                for spw in sci_spws:
                    if spw not in scan.spw_ids:
                        continue
                    sub = tb.query(f"DATA_DESC_ID=={dd_of_spw[spw]} && SCAN_NUMBER=={scan.number} "
                                   "&& ANTENNA1!=ANTENNA2")
                    try:
                        if sub.nrows():
                            per_spw[spw] = {c: sub.getcol(c) for c in ("DATA", "FLAG", "ANTENNA1", "ANTENNA2",
                                                                        "TIME", "FIELD_ID")}
                    finally:
                        sub.close()
                if not per_spw:
                    continue
                is_cal = bool(set(scan.field_ids) & cal_fields)
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore", RuntimeWarning)
                    found: list[AutoFlag] = []
                    alive_all = np.ones(nant, bool)
                    for spw, cols in per_spw.items():
                        f_spw, alive = self._spw_rules(cols, spw, scan.number, is_cal, nant, ant_names, inp)
                        found.extend(f_spw)
                        alive_all &= alive
                    if is_cal:
                        found.extend(self._phase_jumps(per_spw, alive_all, scan.number, nant, ant_names, inp))
                    for spw, cols in per_spw.items():
                        mine = [f for f in found if spw in f.spws]
                        _tally(cols, mine, spw, ant_names, total_vis, new_vis)
                        if is_cal and spw not in plots_data["timeseries"]:
                            _keep_plot_data(plots_data, cols, spw, scan.number, mine, ant_names)
                flags.extend(found)
        finally:
            tb.close()
        guard = _check_guard(total_vis, new_vis, inp.guard_fraction)
        res.decide("guard_fraction", inp.guard_fraction,
                   "if one automatic rule would remove more than this of a field, an SPW or the EB, "
                   "no automatic flag is applied", by="user" if inp.guard_fraction != 0.2 else "default")
        return flags, guard, plots_data

    def _spw_rules(self, cols: dict[str, np.ndarray], spw: int, scan: int, is_cal: bool,
                   nant: int, ant_names: list[str], inp: FlagDataInputs) -> tuple[list[AutoFlag], np.ndarray]:
        """Noisy, dead (no signal above noise), low (calibrators), outlier channels and
        amplitude outliers in time, for one SPW of one scan. Returns (flags, alive antennas)."""
        data, flag = cols["DATA"], cols["FLAG"]  # (npol, nchan, nrow)
        a1, a2, t = cols["ANTENNA1"], cols["ANTENNA2"], cols["TIME"]
        masked = np.where(flag, np.nan, data)
        out: list[AutoFlag] = []
        chan_ok = ~np.all(flag, axis=(0, 2))
        if chan_ok.sum() < 3:  # (almost) everything already flagged: nothing left to test
            return out, np.ones(nant, bool)
        nchan_ok = max(int(chan_ok.sum()), 1)
        bl = a1 * nant + a2
        ubl, inv = np.unique(bl, return_inverse=True)
        ba1, ba2 = ubl // nant, ubl % nant
        alive = np.ones(nant, bool)
        # outlier channels first (spikes on every baseline would hide a dead antenna),
        # on the time-averaged amplitude spectra, then left out of the other tests
        spec = np.stack([np.abs(np.nanmean(masked[:, :, inv == k], axis=2)).mean(axis=0)
                         for k in range(len(ubl))])
        chans = hflag.outlier_channels(spec, nsigma=inp.channel_nsigma, exclude=list(np.flatnonzero(~chan_ok)),
                                       min_deviation=inp.channel_min_deviation)
        if chans:
            out.append(AutoFlag("outlier_channels", [spw], scan, channels=chans,
                                reason=f"> {inp.channel_nsigma} sigma from the median spectrum"))
            chan_ok[chans] = False
            nchan_ok = max(int(chan_ok.sum()), 1)
        # noise per row from channel differences (each pol), median per baseline
        noise_rows = np.nanmedian(np.stack([hflag.baseline_noise(masked[p][chan_ok].T)
                                            for p in range(masked.shape[0])]), axis=0)
        bl_noise = np.array([np.nanmedian(noise_rows[inv == k]) for k in range(len(ubl))])
        noisy, _ = hflag.noisy_antennas(bl_noise, ba1, ba2, nant, inp.noisy_threshold)
        for a in noisy:
            out.append(AutoFlag("noisy_antenna", [spw], scan, ant_names[a],
                                reason=f"noise > {inp.noisy_threshold} x array median"))
            alive[a] = False
        # signal above the noise per baseline (excess power of delay-compensated channel
        # averages, both pols; robust to phase drifts in time and residual delays)
        npol = masked.shape[0]
        row_sigma = noise_rows / np.sqrt(nchan_ok)
        row_vec = np.full((npol, len(t)), np.nan, complex)
        for k in range(len(ubl)):
            sel = inv == k
            for p in range(npol):
                row_vec[p, sel] = hflag.coherent_channel_average(masked[p][chan_ok][:, sel].T)
        bl_sig = np.array([hflag.excess_power_significance(row_vec[:, inv == k],
                                                           np.broadcast_to(row_sigma[inv == k], (npol, (inv == k).sum())))
                           for k in range(len(ubl))])
        keep = alive[ba1] & alive[ba2]
        dead, _ = hflag.dead_antennas_by_signal(np.where(keep, bl_sig, np.nan), ba1, ba2, nant,
                                                inp.dead_significance)
        for a in dead:
            out.append(AutoFlag("dead_antenna", [spw], scan, ant_names[a],
                                reason="no signal above the noise on any of its baselines"))
            alive[a] = False
        if is_cal and np.nanmedian(bl_sig) > inp.low_min_significance:
            # point source with enough SNR: an antenna far below the others is bad too
            power = np.array([np.nanmean(np.abs(row_vec[:, inv == k]) ** 2 - 2 * row_sigma[inv == k] ** 2)
                              for k in range(len(ubl))])
            bl_amp = np.sqrt(np.clip(power, 0, None))
            keep = alive[ba1] & alive[ba2]
            low, _ = hflag.dead_antennas(np.where(keep, bl_amp, np.nan), np.ones(len(ubl)), ba1, ba2, nant,
                                         inp.dead_threshold)
            for a in low:
                out.append(AutoFlag("low_antenna", [spw], scan, ant_names[a],
                                    reason=f"calibrator amplitude < {inp.dead_threshold} x the array median"))
                alive[a] = False
        good_rows = alive[a1] & alive[a2]
        if is_cal and len(np.unique(t)) >= 6:
            half = 0.5 * float(np.median(np.diff(np.unique(t))))
            for b in np.unique(bl[good_rows]):
                i, j = divmod(int(b), nant)
                sel = bl == b
                mask = hflag.time_outliers(np.nanmean(np.abs(row_vec[:, sel]), axis=0), inp.time_nsigma)
                for tt in t[sel][mask]:
                    out.append(AutoFlag("time_outlier", [spw], scan, f"{ant_names[i]}&{ant_names[j]}",
                                        timerange=(tt - half, tt + half),
                                        reason=f"amplitude > {inp.time_nsigma} sigma from the baseline median"))
        return out, alive

    def _phase_jumps(self, per_spw: dict[int, dict[str, np.ndarray]], alive: np.ndarray, scan: int,
                     nant: int, ant_names: list[str], inp: FlagDataInputs) -> list[AutoFlag]:
        """Phase jumps in a calibrator scan, per antenna, from all SPWs and pols together
        (an LO or path jump affects every SPW): residual phasors are summed across SPWs."""
        acc = None
        times = None
        for cols in per_spw.values():
            masked = np.where(cols["FLAG"], np.nan, cols["DATA"])
            a1, a2, t = cols["ANTENNA1"], cols["ANTENNA2"], cols["TIME"]
            bl = a1 * nant + a2
            good = alive[a1] & alive[a2]
            for p in range(masked.shape[0]):
                vec = np.full(len(t), np.nan, complex)
                for b in np.unique(bl):
                    sel = bl == b
                    vec[sel] = hflag.coherent_channel_average(masked[p][:, sel].T)
                tu, ph = hflag.antenna_residual_phases(vec[good], a1[good], a2[good], t[good], nant)
                phasor = np.where(np.isfinite(ph), np.exp(1j * np.radians(np.nan_to_num(ph))), 0)
                if acc is None:
                    acc, times = phasor, tu
                elif len(tu) == len(times):
                    acc = acc + phasor
        if acc is None or len(times) < 6:
            return []
        half = 0.5 * float(np.median(np.diff(times)))
        spws = sorted(per_spw)
        out = []
        for a in range(nant):
            if not alive[a] or not np.any(np.abs(acc[a]) > 0):
                continue
            ok = np.abs(acc[a]) > 0
            jump = hflag.find_phase_jump(np.degrees(np.angle(acc[a][ok])), min_jump_deg=inp.phase_jump_deg)
            if jump is not None:
                tt = times[ok]
                first = max(jump.index - 1, 0)  # one integration of margin before the detected step
                out.append(AutoFlag("phase_jump", spws, scan, ant_names[a],
                                    timerange=(tt[first] - half, tt[-1] + half),
                                    reason=f"phase jump of {jump.jump_deg:.0f} deg in calibrator scan"))
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
            "flagged_after_deterministic": raw["after_deterministic"].get("flagged", 0),
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
        from ..qa import score_fraction

        auto = 0.0 if s["guard"].get("tripped") else s["guard"].get("automatic_fraction", 0.0)
        out.append(QAScore(score_fraction(auto, ok_below=0.05, red_at=0.5),
                           f"{100 * auto:.1f}% of the science data flagged as bad",
                           f"The data-driven rules flagged {100 * auto:.2f}% of the science visibilities "
                           f"(cross-correlations of science scans); deterministic flags (edges, "
                           f"calibration-only scans, autocorrelations, shadowing, online) brought the "
                           f"total to {100 * s['fraction_after']:.2f}% of all rows of the MS.",
                           metric_name="automatic_flagged_fraction", metric_value=auto, topic="flagging"))
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


def rule_counts(names: list[str], before: dict, reports: dict | None) -> dict[str, float]:
    """Visibilities each deterministic rule newly flagged, from the summaries that
    follow each rule in the one list-mode flagdata call."""
    by_name = {r.get("name"): r for r in (reports or {}).values() if isinstance(r, dict)}
    out = {}
    prev = before.get("flagged", 0)
    for name in names:
        now = by_name.get(f"after_{name}", {}).get("flagged", prev)
        out[name] = float(now - prev)
        prev = now
    return out


def _tally(cols, found: list[AutoFlag], spw: int, ant_names, total_vis, new_vis) -> None:
    """Count visibilities per field/SPW/EB, and per rule those it would newly flag."""
    flag = cols["FLAG"]
    npol, nchan, nrow = flag.shape
    fields = cols["FIELD_ID"]
    a1, a2, t = cols["ANTENNA1"], cols["ANTENNA2"], cols["TIME"]
    would: dict[str, np.ndarray] = {}
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
        mask = would.setdefault(f.rule, np.zeros(flag.shape, bool))
        mask[:, chans[:, None] & rows[None, :]] = True
    for fid in np.unique(fields):
        sel = fields == fid
        for key in (("field", int(fid)), ("spw", spw), ("eb", 0)):
            total_vis[key] += flag[:, :, sel].size
            for rule, mask in would.items():
                new_vis[key][rule] += (mask[:, :, sel] & ~flag[:, :, sel]).sum()


def _check_guard(total_vis, new_vis, limit: float) -> dict[str, Any]:
    """The largest fraction of a field, SPW or the EB that one rule would newly flag."""
    worst_key, worst, worst_rule = None, 0.0, ""
    for key, tot in total_vis.items():
        for rule, n in new_vis[key].items():
            frac = n / tot if tot else 0.0
            if frac > worst:
                worst_key, worst, worst_rule = key, frac, rule
    tripped = worst > limit
    what = f"{100 * worst:.1f}% of {worst_key[0]} {worst_key[1]} (rule {worst_rule})" if worst_key else "nothing"
    eb_total = total_vis.get(("eb", 0), 0.0)
    by_rule = {rule: float(n / eb_total) if eb_total else 0.0 for rule, n in new_vis.get(("eb", 0), {}).items()}
    return {"tripped": bool(tripped), "worst": what, "worst_fraction": float(worst), "limit": limit,
            "rule": worst_rule, "automatic_fraction_by_rule": by_rule,
            "automatic_fraction": float(sum(by_rule.values()))}


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
