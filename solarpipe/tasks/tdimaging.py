"""hsol_tdimaging: time-resolved Sun images, a FITS cube in kelvin (SALSA layout).

The Sun changes in seconds; a one-hour image smears it. Frames are cut inside
the on-source sub-scans at a cadence (default: one integration for a single
pointing, one mosaic cycle for a mosaic; heuristics.tdimaging) and imaged from
the calibrated imaging copy hsol_imaging made (Sun frame, TRACKFIELD), each on
the same grid, with the same cell, mask (the primary beam) and clean depth
(3 x the frame's expected noise). Frames are independent jobs for
solarpipe.parallel (serial by default; a process pool or MPI ranks with
``backend``/``workers``); workers only write their own frame images, the
parent records the calls, builds the cube and merges the results.

The cube follows the SALSA conventions: 5-D [x, y, freq, Stokes, time] in K,
helioprojective axes, NaN outside the field; extension TIMEVAR (rows BMAJ,
BMIN in deg, BPA in deg, TIME in s since 00:00 UTC of DATE-OBS, one column per
frame, as SALAT reads it) and PRPARA (the processing steps and parameters).
"""
from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInputError
from ..heuristics import imaging as himg
from ..heuristics import tdimaging as htd
from ..msutil import casa_timerange, median_interval_s
from ..qa import QAScore
from ..task import ImageResults, Plot, Results, Task, TaskInputs

LOG = logging.getLogger(__name__)

ON_SOURCE = "OBSERVE_TARGET#ON_SOURCE"


@dataclass
class TDImagingInputs(TaskInputs):
    """cadence_s: frame length (None: one integration, or one mosaic cycle for a mosaic).
    image: the time-integrated Sun image whose grid and clean set-up the frames share
    (None: the latest). niter: clean iterations per frame. backend/workers/omp_threads:
    how frames are spread (solarpipe.parallel: serial, process, mpi, dask, auto; None:
    the run's settings, ``solarpipe run --parallel``). startmodel: start every frame
    from the time-integrated clean model (single pointing)."""

    cadence_s: float | None = None
    image: str | None = None
    niter: int = 500
    nsigma: float = 3.0
    startmodel: bool = True
    backend: str | None = None
    workers: int | None = None
    omp_threads: int | None = None


class TDImaging(Task):
    name = "hsol_tdimaging"
    Inputs = TDImagingInputs
    topic = "imaging"

    def sun_image(self) -> dict[str, Any]:
        from .imaging import find_sun_image

        inp: TDImagingInputs = self.inputs  # type: ignore[assignment]
        img = find_sun_image(self.context, inp.image, self.name)
        if not img.get("vis") or not Path(img["vis"]).exists():
            raise BadInputError(f"hsol_tdimaging: the imaging copy of {img['name']} ({img.get('vis')}) is missing; "
                                "re-run hsol_imaging")
        return img

    def prepare(self) -> dict[str, Any]:
        from ..parallel import Job, ParallelSettings

        inp: TDImagingInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        res = self.new_results()
        img = self.sun_image()
        vis = img["vis"]
        integration = median_interval_s(vis)
        on = [ss for s in run.scans for ss in s.subscans if ON_SOURCE in ss.intents
              and set(ss.field_ids) & set(run.sun_field_ids)]
        if not on:
            raise BadInputError(f"hsol_tdimaging: {run.vis} has no {ON_SOURCE} sub-scan on a Sun field")
        intervals = [(ss.start_mjd_s - integration / 2, ss.end_mjd_s + integration / 2) for ss in on]
        n_point = len(run.sun_field_ids)
        sub_s = float(np.median([e - s for s, e in intervals]))
        if inp.cadence_s:
            cadence = res.decide("cadence_s", float(inp.cadence_s), "given", by="user")
        else:
            c, why = htd.default_cadence_s(n_point, integration, sub_s)
            cadence = res.decide("cadence_s", c, why)
        frames = htd.frame_intervals(intervals, cadence)
        if not frames:
            raise BadInputError(f"hsol_tdimaging: cadence {cadence} s gives no frame inside the on-source sub-scans "
                                f"(longest {max(e - s for s, e in intervals):.1f} s); choose a shorter cadence_s")
        total = sum(e - s for s, e in intervals)
        expected = float(img.get("expected_rms_jy") or 0.0)
        res.decide("frames", len(frames), f"{len(intervals)} on-source sub-scans cut at {cadence:g} s; a frame never "
                   "spans a calibration gap")
        res.decide("grid", {"cell_arcsec": img["cell_arcsec"], "imsize": img["imsize"]},
                   f"the grid of {img['name']} (every frame the same)")
        gridder = img.get("gridder", "standard") if n_point == 1 else "mosaic"
        pbmask = float(img.get("tclean_params", {}).get("pbmask", 0.3)) if n_point == 1 else 0.3
        res.decide("gridder", gridder, f"single pointing: the gridder of {img['name']} (its clean model is "
                   "every frame's start model)" if n_point == 1 else
                   "a frame is one mosaic cycle: all pointings imaged jointly")
        res.decide("clean", {"niter": inp.niter, "nsigma": inp.nsigma, "mask": f"pb > {pbmask:g}",
                             "deconvolver": "hogbom"},
                   "same depth for every frame: nsigma x the frame's expected noise "
                   f"(time-integrated {expected:.3g} Jy scaled by sqrt(on-source time / frame length))")
        frames_dir = Path(self.context.workdir) / f"{run.name}.s{self.stage}.frames"
        if frames_dir.exists():
            shutil.rmtree(frames_dir)
        frames_dir.mkdir()
        base = dict(vis=str(vis), field="", phasecenter="TRACKFIELD", specmode="mfs", stokes="I", gridder=gridder,
                    deconvolver="hogbom", imsize=[int(img["imsize"])] * 2, cell=f"{img['cell_arcsec']}arcsec",
                    weighting="briggs", robust=0.5, niter=int(inp.niter), usemask="pb", pbmask=pbmask, pbcor=True,
                    pblimit=0.2, interactive=False)
        model = Path(f"{img['imagename']}.model")
        has_model = inp.startmodel and n_point == 1 and model.exists()
        if has_model:
            base["startmodel"] = str(model)
            res.decide("startmodel", model.name, "every frame starts from the time-integrated clean model: the "
                       "static Sun's sidelobes, which change with each frame's uv coverage, are removed before "
                       "the frame is cleaned, so what changes is what the frame shows")
        else:
            res.decide("startmodel", None, "no start model" + ("" if inp.startmodel else " (switched off)")
                       + (" (a linear mosaic has no single clean model)" if n_point > 1 else ""))
        jobs, thresholds = [], []
        for k, (t0, t1) in enumerate(frames):
            thr = htd.frame_threshold_jy(expected, total, t1 - t0, inp.nsigma) if expected > 0 else 0.0
            thresholds.append(thr)
            kw = dict(base, imagename=str(frames_dir / f"f{k:04d}"), timerange=casa_timerange(t0, t1),
                      threshold=f"{thr:.6g}Jy")
            jobs.append(Job(key=f"frame {k} ({casa_timerange(t0, t1)})", func=image_frame, args=(kw,)))
        run_settings = self.casa.parallel
        self.casa.parallel = ParallelSettings(
            backend=inp.backend or run_settings.backend,
            workers=inp.workers if inp.workers is not None else run_settings.workers,
            omp_threads=inp.omp_threads or run_settings.omp_threads)
        (backend, workers), omp = self.casa.parallel.resolved(), self.casa.parallel.omp_threads
        res.decide("parallel", {"backend": backend, "workers": workers, "omp_threads": omp},
                   "one job per frame; given" if inp.backend else "one job per frame; the run's settings",
                   by="user" if inp.backend else "default")
        self.casa.record(
            f"import os\nos.makedirs({frames_dir.name!r}, exist_ok=True)\n"
            f"frames = {[(casa_timerange(a, b), f'{t:.6g}Jy') for (a, b), t in zip(frames, thresholds)]!r}\n"
            f"for k, (timerange, threshold) in enumerate(frames):\n"
            f"    {self.casa.format_call('tclean', {k: v for k, v in base.items()})[:-1]}, "
            f"imagename='{frames_dir.name}/f%04d' % k, timerange=timerange, threshold=threshold)",
            f"{len(frames)} frames of {cadence:g} s, same grid and clean depth (run here with backend "
            f"{backend!r}, {workers} worker(s))")
        outcomes = self.casa.run_jobs(jobs, raise_on_failure=False)
        return {"results": res, "img": img, "frames": frames, "outcomes": outcomes, "frames_dir": frames_dir,
                "cadence": cadence, "thresholds": thresholds, "integration": integration}

    def analyse(self, raw: dict[str, Any]) -> Results:
        from ..weblog import plots

        res = ImageResults(**vars(raw["results"]))
        img, frames, outcomes = raw["img"], raw["frames"], raw["outcomes"]
        cadence = raw["cadence"]
        per_frame = []
        for k, ((t0, t1), out) in enumerate(zip(frames, outcomes)):
            row = {"frame": k, "start_mjd_s": t0, "end_mjd_s": t1, "mid_mjd_s": 0.5 * (t0 + t1),
                   "ok": bool(out.ok), "seconds": round(out.seconds, 2), "worker_pid": out.pid,
                   "worker_peak_rss_mb": round(out.peak_rss_mb, 1)}
            if out.ok:
                row.update(out.value)
            else:
                row["error"] = out.error
            per_frame.append(row)
        from .feather import tp_zero_level_k

        zero = tp_zero_level_k(self.context, img["name"]) or 0.0  # the disc level from TP, if feathered
        products = Path(self.context.workdir) / "products"
        products.mkdir(exist_ok=True)
        name = f"{self.context.observing_run.name}.s{self.stage}.sun.frames"
        cube = products / f"{name}.cube.K.hpc.fits"
        with self.casa.tool(f"SALSA-layout FITS cube of the frames in K: {cube.name}"):
            stats = write_salsa_cube(raw["frames_dir"], per_frame, cube, img, zero, self.processing_steps(res))
        for row, st in zip(per_frame, stats):
            row.update(st)
        ranking = htd.rank_frames([r.get("rms_jy") if r["ok"] else None for r in per_frame])
        gaps = htd.find_gaps(frames, cadence)
        res.summary.update(frames=per_frame, ranking=ranking, gaps=gaps, cube=str(cube), cadence_s=cadence,
                           source_image=img["name"],
                           zero_level_k=zero, failed_fraction=len(ranking["failed"]) / len(per_frame))
        res.images = [{"name": name, "kind": "sun_frames", "fits_kelvin": str(cube), "source_image": img["name"],
                       "n_frames": len(per_frame), "cadence_s": cadence, "frames_dir": str(raw["frames_dir"]),
                       "freq_hz": img.get("freq_hz")}]
        d = self.stage_dir
        for path, cap in plots.frame_plots(per_frame, cube, ranking, gaps, d, name):
            res.plots.append(Plot(str(Path(path).relative_to(d.parent)), cap, group="frames"))
        res.messages.append(f"{len(per_frame)} frames of {cadence:g} s, {len(ranking['failed'])} failed, "
                            f"{len(gaps)} gaps; cube {cube.name}")
        return res

    def processing_steps(self, res: Results) -> list[tuple[str, str, str]]:
        """(stage, task, parameters) of every completed stage and this one, for the cube's PRPARA."""
        return [(str(s.number), s.task, ", ".join(f"{k}={v}" for k, v in sorted(s.params.items()))[:200])
                for s in self.context.stages if s.status == "ok"] + [
            (str(self.stage), self.name, ", ".join(f"{d.name}={d.value}" for d in res.decisions)[:200])]

    def qa(self, results: Results) -> list[QAScore]:
        s = results.summary
        frac = s["failed_fraction"]
        rms = [f.get("rms_jy") for f in s["frames"] if f.get("ok") and f.get("rms_jy")]
        spread = float(np.percentile(rms, 90) / np.median(rms)) if rms else float("nan")
        out = [QAScore(1.0 if frac == 0 else (0.8 if frac <= 0.05 else (0.5 if frac <= 0.2 else 0.2)),
                       f"{frac:.0%} of {len(s['frames'])} frames failed",
                       "A frame fails when tclean gives no image or its residual rms is above 3 x the median.",
                       metric_name="failed_fraction", metric_value=frac, topic="imaging")]
        if math.isfinite(spread):
            out.append(QAScore(1.0 if spread <= 1.5 else (0.8 if spread <= 2.5 else 0.6),
                               f"frame rms: 90th percentile {spread:.2f} x the median",
                               "Spread of the frames' residual rms: a wide one means some frames are much "
                               "worse (few antennas, bad time ranges).", metric_name="rms_spread",
                               metric_value=spread, topic="imaging"))
        return out


# -- worker and products (module level: run in worker processes) ------------------------
def image_frame(kwargs: dict[str, Any]) -> dict[str, Any]:
    """tclean one frame; returns its beam, peak and residual rms (Jy/beam)."""
    import casatasks

    from .imaging import image_stats

    summary = casatasks.tclean(**kwargs)
    stats = image_stats(Path(kwargs["imagename"]), float(kwargs.get("pblimit", 0.2)), rms_pb=kwargs.get("pbmask"))
    stats["stopcode"] = summary.get("stopcode") if isinstance(summary, dict) else None
    return stats


def write_salsa_cube(frames_dir: Path, per_frame: list[dict[str, Any]], out: Path, img: dict[str, Any],
                     zero_level_k: float, steps: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Frames -> a 5-D FITS cube in K (SALSA layout, see module doc); returns per-frame
    brightness statistics (mean, std, rms contrast with the TP zero level)."""
    import datetime as dt

    from astropy.io import fits

    from ..fitsio import casa_image_plane, helioprojective_header

    planes, stats, beams, times = [], [], [], []
    first = None
    for row in per_frame:
        path = frames_dir / f"f{row['frame']:04d}.image.pbcor"
        if row["ok"] and path.exists():
            p = casa_image_plane(path)
            k = himg.jy_per_beam_to_kelvin(p["freq_hz"], p["bmaj"], p["bmin"])
            data = p["data"] * k
            first = first or p
            beams.append((p["bmaj"], p["bmin"], p["bpa"]))
            stats.append({"mean_k": float(np.nanmean(data)), "std_k": float(np.nanstd(data)),
                          "contrast": htd.rms_contrast(data, zero_level_k)})
        else:
            data = None
            beams.append((np.nan, np.nan, np.nan))
            stats.append({"mean_k": None, "std_k": None, "contrast": None})
        planes.append(data)
        times.append(row["mid_mjd_s"])
    if first is None:
        raise RuntimeError("no frame produced an image")
    shape = first["data"].shape
    cube = np.full((len(planes), 1, 1, shape[1], shape[0]), np.nan, np.float32)
    for t, data in enumerate(planes):
        if data is not None:
            cube[t, 0, 0] = data.T
    hdr = fits.Header()
    hp = helioprojective_header(shape, first["refpix"], first["cdelt_arcsec"], tuple(img["centre_offset_arcsec"]),
                                times[0], first["freq_hz"])
    day0 = math.floor(times[0] / 86400.0) * 86400.0
    cadence = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    for key, val in hp.items():
        hdr[key] = val
    hdr.update({"CTYPE3": "FREQ", "CUNIT3": "Hz", "CRPIX3": 1.0, "CRVAL3": first["freq_hz"], "CDELT3": 1.0,
                "CTYPE4": "STOKES", "CRPIX4": 1.0, "CRVAL4": 1.0, "CDELT4": 1.0,
                "CTYPE5": "TIME", "CUNIT5": "s", "CRPIX5": 1.0, "CRVAL5": times[0] - day0, "CDELT5": cadence})
    hdr["BUNIT"] = "K"
    hdr["BTYPE"] = "Brightness temperature (Rayleigh-Jeans)"
    hdr["BMAJ"], hdr["BMIN"], hdr["BPA"] = (float(np.nanmedian([b[0] for b in beams])) / 3600,
                                            float(np.nanmedian([b[1] for b in beams])) / 3600,
                                            float(np.nanmedian([b[2] for b in beams])))
    hdr["DATE-END"] = (dt.datetime(1858, 11, 17) + dt.timedelta(seconds=per_frame[-1]["end_mjd_s"])).isoformat(
        timespec="milliseconds")
    hdr["OBJECT"] = "Sun"
    hdr["ORIGIN"] = "solarpipe hsol_tdimaging"
    hdr["COMMENT"] = "SALSA layout: axes [x, y, freq, Stokes, time]; per-frame beam and time in TIMEVAR"
    timevar = np.array([[b[0] / 3600 for b in beams], [b[1] / 3600 for b in beams], [b[2] for b in beams],
                        [t - day0 for t in times]], dtype=np.float64)
    tv = fits.ImageHDU(timevar, name="TIMEVAR")
    for i, label in enumerate(("BMAJ [deg]", "BMIN [deg]", "BPA [deg]", "TIME [s since 00:00 UTC of DATE-OBS]")):
        tv.header[f"ROW{i}"] = label
    pr = fits.BinTableHDU.from_columns(
        [fits.Column(name="STAGE", format="8A", array=[s[0] for s in steps]),
         fits.Column(name="TASK", format="24A", array=[s[1] for s in steps]),
         fits.Column(name="PARAMETERS", format="200A", array=[s[2] for s in steps])], name="PRPARA")
    fits.HDUList([fits.PrimaryHDU(cube, hdr), tv, pr]).writeto(out, overwrite=True)
    return stats
