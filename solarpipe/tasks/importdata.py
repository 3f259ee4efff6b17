"""hsol_importdata: bring an ALMA solar EB into the working directory and describe it.

Never touches the input: an MS is copied into the working directory, an ASDM
is converted with importasdm (with the subtables the solar steps need and WVR
left unapplied, as the radiometers saturate on the Sun). Then the
ObservingRun is read and checked for what later stages will need.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInputError
from ..heuristics import parallel as hpar
from ..observing import ObservingRun, check_is_ms, check_tables_readable, read_observing_run
from ..qa import QAScore
from ..task import Plot, Results, Task, TaskInputs

LOG = logging.getLogger(__name__)

#: ASDM tables importasdm must keep for solar calibration (Tsys, loads, SQLD context)
DEFAULT_ASIS = "CalDevice SysPower CalAtmosphere CalWVR Receiver"


@dataclass
class ImportDataInputs(TaskInputs):
    """vis: the raw MS or ASDM (never modified). asis: ASDM tables to keep
    (None: the solar set). createmms: 'automatic' (a multi-MS partitioned by scan
    when the run has several workers and a large MS; heuristics.parallel), 'yes', 'no'."""

    asis: str | None = None
    overwrite: bool = True
    createmms: str = "automatic"


class ImportDataResults(Results):
    observing_run: ObservingRun | None = None

    def merge_with_context(self, context) -> None:
        assert self.observing_run is not None
        context.observing_runs = [o for o in context.observing_runs
                                  if o.vis != self.observing_run.vis] + [self.observing_run]


class ImportData(Task):
    name = "hsol_importdata"
    Inputs = ImportDataInputs
    topic = "dataset"
    needs_observing_run = False

    def prepare(self) -> dict[str, Any]:
        inp: ImportDataInputs = self.inputs  # type: ignore[assignment]
        if not inp.vis:
            raise BadInputError("hsol_importdata: parameter 'vis' (the raw MS or ASDM) is required")
        src = Path(inp.vis).expanduser().resolve()
        workdir = Path(self.context.workdir)
        results = self.new_results()
        results.inputs["vis"] = str(src)
        is_asdm = src.is_dir() and (src / "ASDM.xml").exists()
        name = src.name.removesuffix(".ms") if not is_asdm else src.name
        dst = workdir / f"{name}.ms"
        if dst == src:
            raise BadInputError(f"{src}: the input MS is inside the working directory under the "
                                "name the pipeline would write; use another working directory")
        if dst.exists():
            if not inp.overwrite:
                raise BadInputError(f"{dst} exists; set overwrite=True to re-import")
            shutil.rmtree(dst)
        if is_asdm:
            asis = results.decide("asis", inp.asis or DEFAULT_ASIS,
                                  "the tables Tsys+Tant calibration needs" if inp.asis is None else "given",
                                  by="heuristic" if inp.asis is None else "user")
            self.casa.task("importasdm", asdm=str(src), vis=str(dst), asis=asis,
                           wvr_corrected_data="no", process_flags=True, applyflags=False,
                           savecmds=True, outfile=str(workdir / f"{name}.flagonline.txt"),
                           overwrite=True, with_pointing_correction=False,
                           _note="ASDM -> MS; WVR not applied (radiometers saturate on the Sun)")
            check_is_ms(dst)
        else:
            check_is_ms(src)
            with self.casa.tool("read every table of the raw MS once (truncation/corruption check)"):
                check_tables_readable(src)
            need = tree_size(src)
            free = shutil.disk_usage(workdir).free
            if free < 1.2 * need:
                raise BadInputError(f"hsol_importdata: the working directory {workdir} has {free / 1e9:.2f} GB free "
                                    f"but the copy of {src} needs {need / 1e9:.2f} GB (and calibration about 20% "
                                    "more); free space or choose another --workdir")
            _, workers = self.casa.parallel.resolved()
            try:
                mms, why = hpar.use_multi_ms(need, workers, inp.createmms)
            except ValueError as exc:
                raise BadInputError(f"hsol_importdata: {exc}") from exc
            results.decide("createmms", mms, why, by="user" if inp.createmms != "automatic" else "heuristic")
            if mms:
                nsub = results.decide("numsubms", hpar.n_sub_ms(count_scans(src), workers, need),
                                      f"a few sub-MSs per worker ({workers}), at most one per scan, "
                                      f"at least {hpar.MIN_CHUNK_BYTES / 1e9:g} GB each on average")
                self.casa.task("partition", vis=str(src), outputvis=str(dst), createmms=True,
                               separationaxis="scan", numsubms=nsub, flagbackup=False,
                               _note="work on a copy, partitioned by scan into a multi-MS (parallel "
                                     "application); the raw data are never modified")
            else:
                self.casa.python(self.casa.format_call("shutil.copytree", {"src": str(src), "dst": str(dst),
                                                                           "symlinks": True}),
                                 shutil.copytree, str(src), str(dst), symlinks=True,
                                 _note="work on a copy: the raw data are never modified")
        try:
            run = read_observing_run(dst, source_vis=src)
        except BadInputError:
            shutil.rmtree(dst, ignore_errors=True)
            raise
        listfile = self.stage_dir / "listobs.txt"
        self.casa.task("listobs", vis=str(dst), listfile=str(listfile), overwrite=True, verbose=True)
        return {"results": results, "run": run, "listfile": listfile, "asdm": is_asdm}

    def analyse(self, raw: dict[str, Any]) -> Results:
        from .. import sungeometry
        from ..weblog import plots

        run: ObservingRun = raw["run"]
        res = ImportDataResults(**vars(raw["results"]))
        res.observing_run = run
        res.summary = {
            "vis": run.vis, "source_vis": run.source_vis, "from_asdm": raw["asdm"],
            "band": run.band, "mosaic": run.mosaic, "ephemeris_target": run.ephemeris_target,
            "antennas": run.antenna_counts(), "n_scans": len(run.scans),
            "spw_roles": {s.id: s.role for s in run.spws},
            "sun_fields": [run.fields[i].name for i in run.sun_field_ids],
            "subtables": run.subtables,
            "listobs": str(Path(raw["listfile"]).relative_to(Path(self.context.workdir) / "weblog")),
        }
        with self.casa.tool("Sun elevation over the EB (measures) and the pointings on the disc"):
            track = sungeometry.sun_elevation_track(run)
            disc = sungeometry.pointings_on_disc(run.vis, run)
        res.summary["sun_elevation_deg"] = sungeometry.elevation_summary(track)
        res.summary["time_on_source_min"] = round(run.time_on_source_s() / 60.0, 2)
        if disc:
            res.summary["pointings_helioprojective_arcsec"] = {
                n: {"Tx": round(x, 1), "Ty": round(y, 1)}
                for n, x, y in zip(disc["names"], disc["tx_arcsec"], disc["ty_arcsec"])}
        overview = Path(self.context.workdir) / "weblog" / "overview"
        overview.mkdir(parents=True, exist_ok=True)
        for path, caption in plots.observation_overview_plots(run, overview, track, disc):
            res.plots.append(Plot(path=str(Path(path).relative_to(overview.parent)),
                                  caption=caption, group="overview"))
        return res

    def qa(self, results: Results) -> list[QAScore]:
        run: ObservingRun = results.observing_run  # type: ignore[attr-defined]
        return list(importdata_qa(run))


def importdata_qa(run: ObservingRun):
    """QA: what is missing, and which later stage will suffer from it."""
    checks = [
        (bool(run.field_ids("bandpass")), 0.3, "no bandpass calibrator",
         "No field has CALIBRATE_BANDPASS: hsol_bandpass cannot run and hsol_fluxcalselect "
         "loses its fallback amplitude calibrator.", "calibration"),
        (bool(run.field_ids("phase")), 0.5, "no phase calibrator",
         "No field has CALIBRATE_PHASE: hsol_gaincal cannot transfer phases to the Sun.", "calibration"),
        (bool(run.scans_with_intent("CALIBRATE_ATMOSPHERE")), 0.3, "no ATM calibration scans",
         "No CALIBRATE_ATMOSPHERE scans: hsol_ampcal has no P_sky/P_amb/P_hot and no Tsys.",
         "calibration"),
        (run.subtables.get("SYSCAL", False), 0.3, "no SYSCAL table",
         "The MS has no (or an empty) SYSCAL subtable: hsol_ampcal cannot build the Tsys table.",
         "calibration"),
        (run.subtables.get("CALDEVICE", False), 0.6, "no CALDEVICE table",
         "No CALDEVICE/ASDM_CALDEVICE: hsol_ampcal will use default load temperatures "
         "(re-import the ASDM with asis='CalDevice').", "calibration"),
        (bool(run.spw_ids("sqld", science_setup=True)), 0.5, "no SQLD SPWs",
         "No square-law detector SPWs: hsol_ampcal falls back to a constant Tant.", "calibration"),
        (run.ephemeris_target, 0.6, "Sun not an ephemeris target",
         "The Sun fields carry no ephemeris: images may be smeared by the Sun's motion.", "dataset"),
        (bool(run.science_spw_ids), 0.0, "no science SPWs",
         "No SPW named ...#FULL_RES: nothing to calibrate or image.", "dataset"),
    ]
    ok = True
    for passed, score, short, long, topic in checks:
        if not passed:
            ok = False
            yield QAScore(score, short, long, metric_name="present", metric_value=False,
                          applies_to={"vis": run.name}, topic=topic)
    if ok:
        yield QAScore(1.0, "all solar calibration inputs present",
                      "Bandpass and phase calibrators, ATM scans, SYSCAL, CALDEVICE, SQLD SPWs and "
                      "an ephemeris Sun target are present.", metric_name="present",
                      metric_value=True, applies_to={"vis": run.name})


def count_scans(vis: Path) -> int:
    """Distinct scan numbers of an MS (main table read once, one column)."""
    import numpy as np
    from casatools import table

    tb = table()
    tb.open(str(vis))
    try:
        return int(np.unique(tb.getcol("SCAN_NUMBER")).size)
    finally:
        tb.close()


def tree_size(path: Path) -> int:
    """Bytes of the files under a directory (an MS)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file() and not f.is_symlink())
