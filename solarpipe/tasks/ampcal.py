"""hsol_ampcal: the solar Tsys + Tant amplitude calibration.

1. Tsys table from SYSCAL (gencal caltype='tsys'), then Tsys flagging: edge
   channels, ozone-line channels, outlier spectra.
2. SQLD powers read in ONE vectorised pass (autocorrelation rows of the SQLD
   SPWs); every sub-scan's mean power per antenna/pol/baseband from one
   binning of those rows.
3. For each Sun science scan: its ATM scan chosen by time and field, load
   temperatures from the CALDEVICE rows of that ATM scan, P_off from the
   off-Sun sub-scans, P_zero from the zero-level SQLD SPWs, and
   Tant = solarpipe.heuristics.tant.tant(...) for every on-Sun sub-scan.
4. One time-resolved Tsys+Tant caltable: for each sub-scan of each Sun scan,
   the ATM Tsys (+ Tant on-Sun) at its first and last integration, so linear
   interpolation in time is exact inside every sub-scan.
5. Application: the Tsys+Tant table to the Sun fields and the plain Tsys table
   to the calibrators (one applycal each, not one per sub-scan), and both are
   registered in the cal library for the later stages. WVR is never applied.
"""
from __future__ import annotations

import csv
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..context import CalApplication
from ..errors import BadInputError
from ..heuristics import flagging as hflag
from ..heuristics import tant as htant
from ..msutil import casa_timerange, ddid_of_spw
from ..observing import ObservingRun, Scan
from ..qa import QAScore
from ..task import CalResults, Plot, Results, Task, TaskInputs

LOG = logging.getLogger(__name__)

#: weak ozone lines (GHz) flagged in Tsys spectra (solar-alma.md section 4)
OZONE_LINES_GHZ = {3: (93.84, 93.96, 103.88), 6: (231.28, 242.32, 243.45, 244.16)}
#: plausible de-tuned-mixer Tsys range per band (K)
TSYS_RANGE_K = {3: (40.0, 3000.0), 6: (60.0, 5000.0)}


@dataclass
class AmpCalInputs(TaskInputs):
    """pol_pairing: 'same' (XX Tsys + XX Tant; default) or 'swapped' (2024 legacy).
    tant_fallback: constant Tant (K) when no SQLD data (None: 7000 K B3 / 5900 K B6).
    apply: write CORRECTED_DATA now (otherwise only register the tables); on a
    multi-MS the run's workers apply it one sub-MS per job (solarpipe.parallel)."""

    pol_pairing: str = "same"
    tant_fallback: float | None = None
    use_sqld: bool = True
    tsys_edge_fraction: float = 0.0625
    flag_ozone: bool = True
    apply: bool = True


class AmpCalResults(CalResults):
    """The ampcal tables for the cal library."""


class AmpCal(Task):
    name = "hsol_ampcal"
    creates_corrected = True
    Inputs = AmpCalInputs
    topic = "calibration"

    def prepare(self) -> dict[str, Any]:
        inp: AmpCalInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        res = self.new_results()
        if inp.pol_pairing not in htant.POL_PAIRINGS:
            raise BadInputError(f"hsol_ampcal: pol_pairing must be one of {htant.POL_PAIRINGS}, "
                                f"not {inp.pol_pairing!r}")
        if not run.subtables.get("SYSCAL"):
            raise BadInputError(f"{run.vis}: no SYSCAL subtable (or it is empty): the Tsys table "
                                "cannot be made; re-import the ASDM with the SysCal table")
        sun_scans = [s for s in run.scans_with_intent("OBSERVE_TARGET")
                     if set(s.field_ids) & set(run.sun_field_ids)]
        if not sun_scans:
            raise BadInputError(f"{run.vis}: no OBSERVE_TARGET scan on a Sun field")
        workdir = Path(self.context.workdir)
        tsys_table = workdir / f"{run.name}.s{self.stage}.tsys"
        tsystant_table = workdir / f"{run.name}.s{self.stage}.tsystant"
        for t in (tsys_table, tsystant_table):
            if t.exists():
                shutil.rmtree(t)
        self.casa.task("gencal", vis=run.vis, caltable=str(tsys_table), caltype="tsys",
                       _note="Tsys from the SYSCAL table")
        tsys_flags = self.flag_tsys(run, tsys_table, inp, res)

        # -- powers and Tant ------------------------------------------------
        band = run.band or 3
        sqld_ok = inp.use_sqld and bool(run.spw_ids("sqld", science_setup=True))
        choices = htant.match_atm_scans(
            [htant.ScanSpan(s.number, s.start_mjd_s, s.end_mjd_s, s.field_ids) for s in sun_scans],
            [htant.ScanSpan(s.number, s.start_mjd_s, s.end_mjd_s, s.field_ids)
             for s in self._atm_scans(run)])
        res.decide("atm_for_science", {c.science_scan: c.atm_scan for c in choices},
                   "; ".join(f"scan {c.science_scan}: {c.reason}" for c in choices))
        if sqld_ok:
            with self.casa.tool("read SQLD autocorrelation powers (one vectorised pass)"):
                powers = read_sqld_powers(run)
            table = compute_tant(run, sun_scans, choices, powers, res)
        else:
            fallback = inp.tant_fallback if inp.tant_fallback is not None else htant.CONSTANT_TANT.get(band, 7000.0)
            res.decide("tant_fallback", fallback, "no SQLD data: constant Tant for every sub-scan",
                       by="user" if inp.tant_fallback is not None else "default")
            table = constant_tant(run, sun_scans, choices, fallback)
        res.decide("pol_pairing", inp.pol_pairing,
                   "XX Tsys gets XX Tant (the X detector measures the X chain)" if inp.pol_pairing == "same"
                   else "XX Tsys gets YY Tant, as the 2024 legacy code", by="user" if inp.pol_pairing != "same" else "default")

        # -- the Tsys+Tant table ---------------------------------------------------
        with self.casa.tool("write the time-resolved Tsys+Tant table (shipped with the products)"):
            n_rows = write_tsystant_table(run, tsys_table, tsystant_table, sun_scans, choices, table,
                                          inp.pol_pairing)
        self.casa.ship(tsystant_table, f"{n_rows} rows written by solarpipe: Tsys of the matched ATM scan "
                       "+ Tant per on-Sun sub-scan")
        cal_fields = sorted(set(run.field_ids("bandpass") + run.field_ids("phase") + run.field_ids("flux")))
        sun_sel = ",".join(str(f) for f in run.sun_field_ids)
        cal_sel = ",".join(str(f) for f in cal_fields)
        cals = [CalApplication(gaintable=str(tsystant_table), caltype="tsys+tant", stage=self.stage,
                               target="sun", fields=sun_sel, interp="linear", calwt=False),
                CalApplication(gaintable=str(tsys_table), caltype="tsys", stage=self.stage,
                               target="calibrators", fields=cal_sel, interp="linear", calwt=False, gainfield="nearest")]
        if inp.apply:
            spw_sel = _sel(run.science_spw_ids)
            groups = [dict(field=sun_sel, spw=spw_sel, gaintable=[str(tsystant_table)], interp=["linear"],
                           calwt=[False], flagbackup=False, applymode="calonly")]
            if cal_sel:
                groups.append(dict(field=cal_sel, spw=spw_sel, gaintable=[str(tsys_table)], gainfield=["nearest"],
                                   interp=["linear"], calwt=[False], flagbackup=False, applymode="calonly"))
            notes = ["Sun fields: Tsys+Tant, one pass",
                     "calibrators: Tsys from the nearest ATM scan on the same field"]
            jobs = self.casa.applycal(run.vis, list(zip(groups, notes)))
            res.decide("apply_parallel", {"jobs": len(jobs)},
                       "a multi-MS with several workers: one job per sub-MS (separate tables, no lock "
                       "conflict)" if jobs else "one applycal per target group on the whole MS")
            if jobs:
                res.summary["apply_jobs"] = jobs
        return {"results": res, "table": table, "tsys": tsys_table, "tsystant": tsystant_table,
                "cals": cals, "sqld": sqld_ok, "tsys_flags": tsys_flags, "run": run, "band": band,
                "choices": choices}

    @staticmethod
    def _atm_scans(run: ObservingRun) -> list[Scan]:
        """ATM scans that carry science-setup SQLD data (the zero-level setup excluded)."""
        sqld = set(run.spw_ids("sqld", science_setup=True)) or set(run.science_spw_ids)
        return [s for s in run.scans_with_intent("CALIBRATE_ATMOSPHERE") if set(s.spw_ids) & sqld]

    def flag_tsys(self, run: ObservingRun, tsys_table: Path, inp: AmpCalInputs, res: Results) -> dict:
        """Flag Tsys edge channels, ozone-line channels and outlier spectra."""
        cmds, what = [], {}
        band = run.band or 3
        for spw in run.spws:
            if spw.role != "science":
                continue
            chans = set(hflag.edge_channels(spw.nchan, inp.tsys_edge_fraction))
            ozone = set()
            if inp.flag_ozone:
                freqs = spw.ref_freq_hz + (np.arange(spw.nchan) - (spw.nchan - 1) / 2) * spw.chan_width_hz
                for line in OZONE_LINES_GHZ.get(band, ()):
                    near = np.flatnonzero(np.abs(freqs - line * 1e9) <= abs(spw.chan_width_hz))
                    ozone.update(int(c) for c in near)
            if chans | ozone:
                cmds.append(f"mode='manual' spw='{spw.id}:{hflag.channel_ranges(sorted(chans | ozone))}'")
            what[spw.id] = {"edge": sorted(chans), "ozone": sorted(ozone)}
        outliers = tsys_outlier_rows(tsys_table)
        for ant, spw_id, t in outliers:
            cmds.append(f"mode='manual' antenna='{ant}' spw='{spw_id}' timerange='{casa_timerange(t - 1, t + 1)}'")
        if cmds:
            self.casa.task("flagdata", vis=str(tsys_table), mode="list", inpfile=cmds,
                           flagbackup=False, _note="Tsys flagging: edges, ozone lines, outlier spectra")
        res.decide("tsys_flags", {str(k): v for k, v in what.items()},
                   f"edge fraction {inp.tsys_edge_fraction:g}; ozone lines of band {band}")
        return {"channels": what, "outlier_spectra": [list(map(str, o)) for o in outliers]}

    # -- analyse ---------------------------------------------------------------
    def analyse(self, raw: dict[str, Any]) -> Results:
        from ..weblog import plots

        res = AmpCalResults(**vars(raw["results"]))
        res.cal_applications = raw["cals"]
        run: ObservingRun = raw["run"]
        rows: list[dict[str, Any]] = raw["table"]
        products = Path(self.context.workdir) / "products"
        products.mkdir(exist_ok=True)
        csv_path = products / f"{run.name}.s{self.stage}.tant_powers.csv"
        write_power_csv(rows, csv_path)
        tants = np.array([r["tant"] for r in rows if r["on_sun"]], float)
        res.summary.update({
            "tsys_table": Path(raw["tsys"]).name, "tsystant_table": Path(raw["tsystant"]).name,
            "power_csv": str(csv_path.relative_to(self.context.workdir)),
            "sqld_used": raw["sqld"], "n_on_sun_subscans": len({(r["scan"], r["subscan"]) for r in rows if r["on_sun"]}),
            "tant_median_K": float(np.nanmedian(tants)) if tants.size else None,
            "tant_min_K": float(np.nanmin(tants)) if tants.size else None,
            "tant_max_K": float(np.nanmax(tants)) if tants.size else None,
            "tsys_flags": raw["tsys_flags"],
            "power_table": rows[:2000],
            "atm_choice": [vars(c) for c in raw["choices"]],
            "tsys_stats": tsys_stats(raw["tsys"]),
        })
        d = self.stage_dir
        rel = lambda p: str(Path(p).relative_to(d.parent))  # noqa: E731
        for path, cap in plots.tant_vs_subscan(rows, d):
            res.plots.append(Plot(rel(path), cap, group="tant"))
        for path, cap in plots.tsys_spectra(raw["tsys"], run, d):
            res.plots.append(Plot(rel(path), cap, group="tsys"))
        return res

    def qa(self, results: Results) -> list[QAScore]:
        return list(ampcal_qa(results.summary, self.context.observing_run, results))


def ampcal_qa(s: dict[str, Any], run: ObservingRun, res: Results):
    rows = s["power_table"]
    on = [r for r in rows if r["on_sun"]]
    topic = "calibration"
    if not s["sqld_used"]:
        yield QAScore(0.5, "constant Tant fallback",
                      "No SQLD data: a constant Tant was added to Tsys for every on-Sun sub-scan; "
                      "the Sun amplitude scale is uncertain by tens of percent.", topic=topic)
    elif on:
        tant = np.array([r["tant"] for r in on if not r["invalid"]], float)
        neg = float(np.mean(~(tant > 0))) if tant.size else 1.0
        yield QAScore(1.0 if neg == 0 else max(0.0, 0.6 - neg), "Tant > 0" if neg == 0 else "Tant <= 0 found",
                      f"{100 * neg:.1f}% of the on-Sun Tant values are not positive.",
                      metric_name="fraction_tant_not_positive", metric_value=neg, topic=topic)
        invalid = [r for r in on if r.get("invalid")]
        if invalid:
            frac = len(invalid) / len(on)
            ants = sorted({r["antenna"] for r in invalid})
            yield QAScore(max(0.3, 1.0 - 2.0 * frac), f"invalid SQLD powers: {', '.join(ants)}",
                          f"{len(invalid)} of {len(on)} power sets ({100 * frac:.1f}%) have P_hot <= P_amb or "
                          f"P_off ~ P_zero (a dead detector or antenna); no Tant there, those data are flagged "
                          f"by the Tsys+Tant table.", metric_name="fraction_invalid", metric_value=frac,
                          topic=topic)
        if any(r["p_zero_source"] == "none" for r in rows):
            yield QAScore(0.6, "no detector zero level",
                          "No zero-level SQLD data found: P_zero = 0 assumed.", topic=topic)
        if any(r["loads_source"] == "default" for r in rows):
            yield QAScore(0.6, "default load temperatures",
                          "No CALDEVICE rows for an ATM scan: default ambient/hot load temperatures used.",
                          topic=topic)
        # smoothness along sub-scans, per antenna/pol/baseband/scan
        series: dict[tuple, list[float]] = {}
        for r in on:
            series.setdefault((r["antenna"], r["pol"], r["baseband"], r["scan"]), []).append(r["tant"])
        rough = [htant.smoothness(np.array(v)) for v in series.values() if len(v) > 2]
        worst = float(np.nanmax(rough)) if rough else 0.0
        yield QAScore(1.0 if worst < 0.05 else (0.8 if worst < 0.15 else 0.5),
                      f"Tant smooth along sub-scans (worst step {100 * worst:.1f}%)",
                      "Median sub-scan-to-sub-scan step of Tant relative to its level, worst "
                      "antenna/pol/baseband/scan.", metric_name="worst_relative_step", metric_value=worst,
                      topic=topic)
        finite = [r for r in on if np.isfinite(r["tant"])]
        names = sorted({r["antenna"] for r in finite})
        per_ant = [np.median([r["tant"] for r in finite if r["antenna"] == n]) for n in names]
        outl = htant.outlier_antennas(np.array(per_ant), names)
        yield QAScore(1.0 if not outl else 0.6,
                      "Tant consistent between antennas" if not outl else f"Tant outliers: {', '.join(outl)}",
                      "Antenna median Tant compared with the array median (5 robust sigma and 10%).",
                      metric_name="n_outlier_antennas", metric_value=len(outl), topic=topic)
    lo, hi = TSYS_RANGE_K.get(run.band or 3, (20.0, 5000.0))
    st = s["tsys_stats"]
    ok = st["median_K"] is not None and lo <= st["median_K"] <= hi
    yield QAScore(1.0 if ok else 0.4, f"median Tsys {st['median_K']:.0f} K" if st["median_K"] else "no Tsys",
                  f"Median unflagged Tsys {st['median_K']} K (plausible for band {run.band}: {lo:.0f}-{hi:.0f} K).",
                  metric_name="median_tsys", metric_value=st["median_K"], metric_units="K", topic=topic)


# -- data access (casatools) ---------------------------------------------------------
@dataclass
class SqldPowers:
    """Mean SQLD power per (sub-scan span, antenna, pol, baseband)."""

    spans: list[tuple[int, int]]  # (scan, sub-scan)
    power: np.ndarray  # (nspan, nant, npol, nbb)
    basebands: list[int]
    zero: np.ndarray | None  # (nant, npol, nbb) or None


def read_sqld_powers(run: ObservingRun) -> SqldPowers:
    """One vectorised read of all SQLD autocorrelation rows, binned by sub-scan."""
    from casatools import table

    sqld = [s for s in run.spws if s.role == "sqld" and s.science_setup]
    zero = [s for s in run.spws if s.role == "sqld" and not s.science_setup]
    basebands = sorted({s.baseband for s in sqld if s.baseband})
    dd = ddid_of_spw(run.vis)
    spans, starts, ends = [], [], []
    for scan in run.scans:
        for sub in scan.subscans:
            spans.append((scan.number, sub.number))
            starts.append(sub.start_mjd_s)
            ends.append(sub.end_mjd_s)
    order = np.argsort(starts)
    spans = [spans[i] for i in order]
    starts, ends = np.array(starts)[order], np.array(ends)[order]
    nant = len(run.antennas)
    tb = table()
    tb.open(run.vis)
    try:
        def read(spws):
            ids = [dd[s.id] for s in spws if s.id in dd]
            if not ids:
                return None
            q = tb.query(f"DATA_DESC_ID IN [{','.join(map(str, ids))}] && ANTENNA1==ANTENNA2",
                         columns="TIME,ANTENNA1,DATA_DESC_ID,DATA,FLAG")
            try:
                if q.nrows() == 0:
                    return None
                return {c: q.getcol(c) for c in ("TIME", "ANTENNA1", "DATA_DESC_ID", "DATA", "FLAG")}
            finally:
                q.close()
        main = read(sqld)
        zcols = read(zero) if zero else None
    finally:
        tb.close()
    if main is None:
        raise BadInputError(f"{run.vis}: SQLD SPWs exist but hold no autocorrelation rows")
    spw_of_dd = {v: k for k, v in dd.items()}
    bb_of_spw = {s.id: s.baseband for s in run.spws}

    def binned(cols, span_index):
        data = np.where(cols["FLAG"][:, 0, :], np.nan, cols["DATA"][:, 0, :].real)  # (npol, nrow)
        npol = data.shape[0]
        bb = np.array([basebands.index(bb_of_spw[spw_of_dd[d]]) if bb_of_spw[spw_of_dd[d]] in basebands else -1
                       for d in cols["DATA_DESC_ID"]])
        nspan = int(span_index.max()) + 1 if span_index.size else 0
        sums = np.zeros((nspan, nant, npol, len(basebands)))
        cnts = np.zeros_like(sums)
        ok = (span_index >= 0) & (bb >= 0)
        for p in range(npol):
            good = ok & np.isfinite(data[p])
            np.add.at(sums[:, :, p, :], (span_index[good], cols["ANTENNA1"][good], bb[good]), data[p][good])
            np.add.at(cnts[:, :, p, :], (span_index[good], cols["ANTENNA1"][good], bb[good]), 1)
        with np.errstate(invalid="ignore"):
            return sums / cnts

    t = main["TIME"]
    idx = np.searchsorted(starts, t, side="right") - 1
    inside = (idx >= 0) & (t <= ends[np.clip(idx, 0, None)] + 1e-3)
    idx = np.where(inside, idx, -1)
    power = binned(main, idx)
    if power.shape[0] < len(spans):
        power = np.concatenate([power, np.full((len(spans) - power.shape[0],) + power.shape[1:], np.nan)])
    zero_power = None
    if zcols is not None:
        zero_power = np.nanmean(binned(zcols, np.zeros(len(zcols["TIME"]), int)), axis=0)
        zb = {s.baseband for s in zero}
        if not zb & set(basebands):
            zero_power = None
    return SqldPowers(spans=spans, power=power, basebands=basebands, zero=zero_power)


def compute_tant(run: ObservingRun, sun_scans: list[Scan], choices, powers: SqldPowers,
                 res: Results) -> list[dict[str, Any]]:
    """Tant for every antenna, pol, baseband and on-Sun sub-scan (one row per value)."""
    loads = read_load_temperatures(run)
    span_idx = {s: i for i, s in enumerate(powers.spans)}
    atm_of = {c.science_scan: c.atm_scan for c in choices}
    scans = {s.number: s for s in run.scans}
    nant, npol, nbb = powers.power.shape[1:]
    p_zero = powers.zero if powers.zero is not None else np.zeros((nant, npol, nbb))
    zero_source = "sqld" if powers.zero is not None else "none"
    pols = ["XX", "YY"][:npol]
    rows: list[dict[str, Any]] = []
    for sci in sun_scans:
        atm = scans.get(atm_of.get(sci.number))
        if atm is None:
            continue

        def sub_power(scan: Scan, intent_suffix: str) -> np.ndarray:
            subs = [ss for ss in scan.subscans if any(i.endswith(intent_suffix) for i in ss.intents)]
            if not subs:
                raise BadInputError(f"{run.vis}: scan {scan.number} has no sub-scan with intent "
                                    f"*{intent_suffix}; cannot compute Tant")
            return np.nanmean([powers.power[span_idx[(scan.number, ss.number)]] for ss in subs], axis=0)

        p_sky = sub_power(atm, "#OFF_SOURCE")
        p_amb = sub_power(atm, "#AMBIENT")
        p_hot = sub_power(atm, "#HOT")
        off = [ss for ss in sci.subscans if any(i == "OBSERVE_TARGET#OFF_SOURCE" for i in ss.intents)]
        p_off = np.nanmean([powers.power[span_idx[(sci.number, ss.number)]] for ss in off], axis=0) if off \
            else np.full((nant, npol, nbb), np.nan)
        t_amb, t_hot, src = np.empty(nant), np.empty(nant), []
        for a in range(nant):
            la = loads.get(a)
            if la is None:
                t_amb[a], t_hot[a], how = htant.DEFAULT_T_AMB, htant.DEFAULT_T_HOT, "default"
            else:
                t_amb[a], t_hot[a], how = htant.loads_for_scan(la[0], la[1], la[2], atm.start_mjd_s, atm.end_mjd_s)
            src.append(how)
        invalid = htant.invalid_power_mask(p_off, p_amb, p_hot, p_zero)
        for ss in sci.subscans:
            on_sun = any(i == "OBSERVE_TARGET#ON_SOURCE" for i in ss.intents)
            p_sun = powers.power[span_idx[(sci.number, ss.number)]]
            tant = htant.tant(p_sun, p_off, p_sky, p_amb, p_hot, p_zero,
                              t_amb[:, None, None], t_hot[:, None, None]) if on_sun else np.zeros_like(p_sun)
            tant = np.where(invalid, np.nan, tant)
            for a, ant in enumerate(run.antennas):
                for p, pol in enumerate(pols):
                    for b, bb in enumerate(powers.basebands):
                        rows.append({
                            "scan": sci.number, "subscan": ss.number, "atm_scan": atm.number,
                            "field": ",".join(run.fields[f].name for f in ss.field_ids),
                            "start_mjd_s": ss.start_mjd_s, "end_mjd_s": ss.end_mjd_s,
                            "antenna": ant.name, "antenna_id": a, "pol": pol, "baseband": bb,
                            "on_sun": on_sun,
                            "p_sky": float(p_sky[a, p, b]), "p_amb": float(p_amb[a, p, b]),
                            "p_hot": float(p_hot[a, p, b]), "p_off": float(p_off[a, p, b]),
                            "p_sun": float(p_sun[a, p, b]), "p_zero": float(p_zero[a, p, b]),
                            "t_amb": float(t_amb[a]), "t_hot": float(t_hot[a]),
                            "tant": float(tant[a, p, b]), "invalid": bool(invalid[a, p, b]),
                            "loads_source": src[a], "p_zero_source": zero_source,
                        })
    return rows


def constant_tant(run: ObservingRun, sun_scans: list[Scan], choices, value: float) -> list[dict[str, Any]]:
    """The fallback table: the same Tant for every antenna, pol, baseband and on-Sun sub-scan."""
    atm_of = {c.science_scan: c.atm_scan for c in choices}
    bbs = sorted({s.baseband for s in run.spws if s.role == "science" and s.baseband})
    rows = []
    for sci in sun_scans:
        for ss in sci.subscans:
            on = any(i == "OBSERVE_TARGET#ON_SOURCE" for i in ss.intents)
            for a, ant in enumerate(run.antennas):
                for pol in ("XX", "YY"):
                    for bb in bbs:
                        rows.append({"scan": sci.number, "subscan": ss.number, "atm_scan": atm_of.get(sci.number),
                                     "field": "", "start_mjd_s": ss.start_mjd_s, "end_mjd_s": ss.end_mjd_s,
                                     "antenna": ant.name, "antenna_id": a, "pol": pol, "baseband": bb,
                                     "on_sun": on, "p_sky": np.nan, "p_amb": np.nan, "p_hot": np.nan,
                                     "p_off": np.nan, "p_sun": np.nan, "p_zero": np.nan,
                                     "t_amb": np.nan, "t_hot": np.nan, "tant": value if on else 0.0,
                                     "invalid": False, "loads_source": "n/a", "p_zero_source": "n/a"})
    return rows


def read_load_temperatures(run: ObservingRun) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per antenna id: (times, T_amb, T_hot) from CALDEVICE (or ASDM_CALDEVICE)."""
    from casatools import table

    out: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    tb = table()
    for name in ("CALDEVICE", "ASDM_CALDEVICE"):
        path = Path(run.vis) / name
        if not path.exists():
            continue
        tb.open(str(path))
        try:
            if tb.nrows() == 0:
                continue
            asdm = name.startswith("ASDM")
            temps = tb.getcol("temperatureLoad" if asdm else "TEMPERATURE_LOAD")  # (nload, nrow)
            times = tb.getcol("timeInterval" if asdm else "TIME")
            ants = tb.getcol("antennaId" if asdm else "ANTENNA_ID")
            names = tb.getcol("calLoadNames" if asdm else "CAL_LOAD_NAMES")  # (nload, nrow)
        finally:
            tb.close()
        if asdm:
            ants = np.array([int(str(a).split("_")[-1]) for a in ants])
            times = np.asarray(times).reshape(-1, 2)[:, 0] if np.ndim(times) > 1 else times
        amb = np.array([temps[list(names[:, i]).index("AMBIENT_LOAD"), i] for i in range(len(ants))])
        hot = np.array([temps[list(names[:, i]).index("HOT_LOAD"), i] for i in range(len(ants))])
        for a in np.unique(ants):
            sel = ants == a
            out[int(a)] = (np.asarray(times)[sel], amb[sel], hot[sel])
        break
    return out


def write_tsystant_table(run: ObservingRun, tsys_table: Path, out: Path, sun_scans: list[Scan], choices,
                         rows: list[dict[str, Any]], pairing: str) -> int:
    """Copy the Tsys table's layout and fill it with Tsys(+Tant) rows for every Sun sub-scan."""
    from casatools import table

    tb = table()
    tb.open(str(tsys_table))
    try:
        cols = {c: tb.getcol(c) for c in ("TIME", "ANTENNA1", "SPECTRAL_WINDOW_ID", "SCAN_NUMBER",
                                          "FIELD_ID")}
        fparam = [tb.getcell("FPARAM", i) for i in range(tb.nrows())]
        flag = [tb.getcell("FLAG", i) for i in range(tb.nrows())]
    finally:
        tb.close()
    # a full copy keeps the caltable's subtables (SPECTRAL_WINDOW, ANTENNA, FIELD) intact;
    # its rows are then replaced by the Sun sub-scan rows
    shutil.copytree(tsys_table, out)
    atm_of = {c.science_scan: c.atm_scan for c in choices}
    bb_of_spw = {s.id: s.baseband for s in run.spws}
    tant_of: dict[tuple, float] = {(r["scan"], r["subscan"], r["antenna_id"], r["pol"], r["baseband"]): r["tant"]
                                   for r in rows}
    new: dict[str, list] = {k: [] for k in ("TIME", "INTERVAL", "ANTENNA1", "ANTENNA2", "SPECTRAL_WINDOW_ID",
                                            "SCAN_NUMBER", "FIELD_ID", "OBSERVATION_ID", "FPARAM",
                                            "PARAMERR", "FLAG", "SNR", "WEIGHT")}
    for sci in sun_scans:
        atm = atm_of.get(sci.number)
        sel = np.flatnonzero(cols["SCAN_NUMBER"] == atm) if atm is not None else np.array([], int)
        for i in sel:
            ant, spw = int(cols["ANTENNA1"][i]), int(cols["SPECTRAL_WINDOW_ID"][i])
            tsys = np.asarray(fparam[i], float)  # (npol, nchan)
            npol = tsys.shape[0]
            for ss in sci.subscans:
                add = np.array([tant_of.get((sci.number, ss.number, ant, pol, bb_of_spw.get(spw)), np.nan)
                                for pol in ("XX", "YY")[:npol]])
                add = htant.pair_polarisations(add, pairing)
                bad = ~np.isfinite(add)
                value = tsys + np.where(bad, 0.0, add)[:, None]
                fl = np.asarray(flag[i]) | bad[:, None]
                fid = ss.field_ids[0] if ss.field_ids else int(cols["FIELD_ID"][i])
                for t in (ss.start_mjd_s, ss.end_mjd_s):
                    new["TIME"].append(t)
                    new["INTERVAL"].append(0.0)
                    new["ANTENNA1"].append(ant)
                    new["ANTENNA2"].append(-1)
                    new["SPECTRAL_WINDOW_ID"].append(spw)
                    new["SCAN_NUMBER"].append(sci.number)
                    new["FIELD_ID"].append(fid)
                    new["OBSERVATION_ID"].append(0)
                    new["FPARAM"].append(value)
                    new["PARAMERR"].append(np.zeros_like(value))
                    new["FLAG"].append(fl)
                    new["SNR"].append(np.ones_like(value))
                    new["WEIGHT"].append(np.ones_like(value))
    n = len(new["TIME"])
    tb.open(str(out), nomodify=False)
    try:
        tb.removerows(list(range(tb.nrows())))
        if n:
            tb.addrows(n)
            order = np.lexsort((np.array(new["ANTENNA1"]), np.array(new["SPECTRAL_WINDOW_ID"]), np.array(new["TIME"])))
            for c, vals in new.items():
                if c in ("FPARAM", "PARAMERR", "FLAG", "SNR", "WEIGHT"):
                    if c not in tb.colnames():
                        continue
                    arr = np.stack([vals[i] for i in order], axis=-1)  # (npol, nchan, nrow)
                    tb.putcol(c, arr)
                else:
                    tb.putcol(c, np.asarray(vals)[order])
    finally:
        tb.close()
    return n


def tsys_outlier_rows(tsys_table: Path, factor: float = 3.0) -> list[tuple[int, int, float]]:
    """(antenna id, spw, time) of Tsys spectra whose median is > factor x (or < 1/factor of)
    the median of the other antennas' spectra at that time and SPW."""
    from casatools import table

    tb = table()
    tb.open(str(tsys_table))
    try:
        t, a, s = tb.getcol("TIME"), tb.getcol("ANTENNA1"), tb.getcol("SPECTRAL_WINDOW_ID")
        med = np.array([np.nanmedian(np.where(tb.getcell("FLAG", i), np.nan, tb.getcell("FPARAM", i)))
                        for i in range(tb.nrows())])
    finally:
        tb.close()
    out = []
    for key in {(round(float(ti), 1), int(si)) for ti, si in zip(t, s)}:
        sel = (np.round(t, 1) == key[0]) & (s == key[1])
        ref = np.nanmedian(med[sel])
        for i in np.flatnonzero(sel):
            if ref > 0 and (med[i] > factor * ref or med[i] < ref / factor):
                out.append((int(a[i]), int(s[i]), float(t[i])))
    return out


def tsys_stats(tsys_table: Path) -> dict[str, float | None]:
    from casatools import table

    tb = table()
    tb.open(str(tsys_table))
    try:
        vals = np.concatenate([np.where(tb.getcell("FLAG", i), np.nan, tb.getcell("FPARAM", i)).ravel()
                               for i in range(tb.nrows())]) if tb.nrows() else np.array([np.nan])
    finally:
        tb.close()
    finite = vals[np.isfinite(vals)]
    if not finite.size:
        return {"median_K": None, "min_K": None, "max_K": None}
    return {"median_K": float(np.median(finite)), "min_K": float(finite.min()), "max_K": float(finite.max())}


def write_power_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """All powers and Tant, one row per antenna/pol/baseband/sub-scan (a product)."""
    if not rows:
        path.write_text("")
        return
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _sel(ids: list[int]) -> str:
    return ",".join(str(i) for i in ids)


