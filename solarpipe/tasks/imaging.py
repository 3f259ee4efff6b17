"""hsol_imaging: time-integrated images of the Sun (and the calibrators), in kelvin,
with helioprojective coordinates.

The Sun fields' calibrated on-source data are split into an imaging MS whose
ephemeris is moved to the pointing / mosaic centre, so tclean's TRACKFIELD
images in the Sun's frame (no smearing by the Sun's motion) and centres on the
observed region, whatever FIELD convention the EB uses. Every imaging
parameter comes from solarpipe.heuristics.imaging and is recorded. Products:
CASA images, the primary-beam-corrected image, FITS in Jy/beam (RA/Dec) and in
kelvin with a helioprojective WCS.
"""
from __future__ import annotations

import inspect
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInputError
from ..heuristics import imaging as himg
from ..qa import QAScore
from ..task import ImageResults, Plot, Results, Task, TaskInputs

LOG = logging.getLogger(__name__)


@dataclass
class ImagingInputs(TaskInputs):
    """targets: 'sun', 'calibrators' or 'sun,calibrators'. None values are decided by the
    heuristics: cell (arcsec), imsize (pixels), scales (pixels), niter. pbmask: the clean
    mask of a single pointing (inside PB >= pbmask); mosaic_pbmask: each pointing's mask
    in a linear mosaic. gridder: 'auto' (heuristics.imaging.choose_gridder: 'standard'),
    or 'standard' / 'mosaic' by hand ('mosaic': one pointing of a 12m+7m array imaged with
    a primary beam per antenna pair, on a time-averaged copy; see
    benchmarks/bench_imaging_limits.py)."""

    targets: str = "sun,calibrators"
    cell: float | None = None
    imsize: int | None = None
    scales: list[int] | None = None
    niter: int | None = None
    robust: float = 0.5
    nsigma: float = 3.0
    pblimit: float = 0.2
    pbmask: float = 0.6
    mosaic_pbmask: float = 0.3
    gridder: str = "auto"


@dataclass
class SunGeometry:
    """Where the imaged region is: offset of the (mosaic) centre from the Sun centre."""

    centre_offset_rad: tuple[float, float]
    pointing_offsets_arcsec: np.ndarray  # (nfield, 2) relative to the centre
    mid_mjd_s: float
    field_names: list[str]


class Imaging(Task):
    name = "hsol_imaging"
    Inputs = ImagingInputs
    topic = "imaging"

    def prepare(self) -> dict[str, Any]:
        inp: ImagingInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        res = self.new_results()
        wanted = {t.strip() for t in inp.targets.split(",") if t.strip()}
        if not wanted <= {"sun", "calibrators"}:
            raise BadInputError(f"hsol_imaging: targets must be 'sun' and/or 'calibrators', not {inp.targets!r}")
        plans = []  # (group key, tclean calls, finish(job values) -> image dict)
        if "sun" in wanted:
            plans.extend(self.plan_sun(run, inp, res))
        if "calibrators" in wanted:
            plans.extend(self.plan_calibrators(run, inp, res))
        # every tclean is an independent job (own image, the MS only read): Sun, mosaic
        # pointings and calibrators run side by side on the run's workers, each in a
        # fresh process where the backend allows (tclean depends on process history)
        outcomes = self.casa.tasks_in_parallel([(key, calls) for key, calls, _ in plans], fresh=True,
                                               raise_on_failure=False)
        for k, (key, _, finish) in enumerate(plans):  # a job may ask to be re-run (see plan_sun)
            retry = getattr(finish, "retry", None)
            while retry is not None and outcomes[k].ok:
                again = retry(outcomes[k].value)
                if not again:
                    break
                outcomes[k] = self.casa.tasks_in_parallel([(key, again)], fresh=True, raise_on_failure=False)[0]
        sun_failed = [o for o, (key, _, _) in zip(outcomes, plans) if not o.ok and not key.startswith("calibrator ")]
        if sun_failed:
            raise RuntimeError("; ".join(f"tclean job {o.key} failed: {o.error}" for o in sun_failed))
        images, failed = [], []
        finishers: dict[Any, list] = {}
        for (key, _, finish), o in zip(plans, outcomes):
            if not o.ok:
                failed.append({"chunk": key, "error": o.error})
                res.messages.append(f"{key}: tclean failed ({o.error}); image left out")
                continue
            finishers.setdefault(finish, []).extend(o.value)
        for finish, values in finishers.items():
            images.append(finish(values))
        res.summary["failed_jobs"] = failed
        return {"results": res, "images": images}

    # -- the Sun -------------------------------------------------------------
    def sun_imaging_ms(self, run, width: int) -> tuple[Path, SunGeometry]:
        """Split the calibrated on-Sun data (channel-averaged by ``width``) and re-centre
        their ephemeris (see module doc)."""
        from ..ephemeris import ephemeris_fields, recentre_ephemeris_code

        wd = Path(self.context.workdir)
        out = wd / f"{run.name}.s{self.stage}.sun.ms"
        if out.exists():
            shutil.rmtree(out)
        sun = ",".join(str(i) for i in run.sun_field_ids)
        self.casa.task("split", vis=run.vis, outputvis=str(out), field=sun, intent="OBSERVE_TARGET#ON_SOURCE",
                       spw=",".join(map(str, run.science_spw_ids)), datacolumn="corrected", keepflags=False,
                       width=int(width), _note="calibrated on-Sun data for imaging (channel-averaged)")
        fields = ephemeris_fields(out)
        times = [ss for s in run.scans for ss in s.subscans if "OBSERVE_TARGET#ON_SOURCE" in ss.intents]
        mid = 0.5 * (min(s.start_mjd_s for s in times) + max(s.end_mjd_s for s in times))
        if fields:
            offs = np.array([f.offset_rad for f in fields])
            centre = (float(offs[:, 0].mean()), float(offs[:, 1].mean()))
            self.casa.run_code(recentre_ephemeris_code, vis=str(out), centre_offset=centre,
                               _note="re-centre the Sun ephemeris on the observed region (imaging copy only)")
            rel = np.degrees(offs - np.array(centre)) * 3600
            names = [f.name for f in fields]
        else:
            centre, rel, names = (0.0, 0.0), np.zeros((1, 2)), [""]
        return out, SunGeometry(centre, rel, mid, names)

    def joint_imaging_copy(self, vis: Path, beam: float, radius_arcsec: float,
                           res: Results) -> tuple[Path, float | None]:
        """A time-averaged copy of the imaging MS for the heterogeneous-array gridder (its
        major cycles cost ~10x the standard gridder's per visibility); the full-resolution
        MS stays the one selfcal and tdimaging use. Returns the copy and its averaging time
        (the MS itself and None when one integration is already enough)."""
        from ..msutil import median_interval_s

        integration = median_interval_s(vis)
        timebin = res.decide("timebin_s", himg.time_average_s(integration, beam, radius_arcsec),
                             f"{integration:g} s integrations averaged: Earth-rotation smearing < 0.1 beam at "
                             f"{radius_arcsec:.0f}\" from the centre, at most {himg.MAX_TIME_AVERAGE_S:g} s")
        if timebin <= integration:
            return vis, None
        out = vis.with_name(vis.name.replace(".ms", f".t{timebin:g}s.ms"))
        if out.exists():
            shutil.rmtree(out)
        self.casa.task("split", vis=str(vis), outputvis=str(out), datacolumn="data", timebin=f"{timebin:g}s",
                       keepflags=False, _note="time-averaged copy for the heterogeneous-array gridder")
        return out, timebin

    def plan_sun(self, run, inp: ImagingInputs, res: Results) -> list[tuple[str, list, Any]]:
        """Decide the Sun image's parameters; returns its tclean job(s) and the step that
        makes the products once they have run (one finisher shared by a mosaic's pointings)."""
        sci = [s for s in run.spws if s.role == "science"]
        freq = float(np.mean([s.ref_freq_hz for s in sci]))
        fmax = float(max(s.ref_freq_hz + s.total_bw_hz / 2 for s in sci))
        uv = uv_lengths(run.vis, field_id=run.sun_field_ids[0])
        beam = himg.synthesized_beam_arcsec(uv, fmax)
        dish = min(a.diameter_m for a in run.antennas)
        big_dish = max(a.diameter_m for a in run.antennas)
        pb = himg.primary_beam_fwhm_arcsec(freq, big_dish)
        n_point = len(run.sun_field_ids)
        chan = min(sci, key=lambda s: s.nchan)
        width = res.decide("width", himg.channel_average_width(
            chan.nchan, chan.total_bw_hz / chan.nchan, freq, beam, pb * (1.0 + 0.5 * (n_point > 1))),
            "channels averaged before imaging: bandwidth smearing < 0.1 beam at the image edge")
        vis, geo = self.sun_imaging_ms(run, width)
        cell = inp.cell or res.decide("cell", himg.cell_arcsec(beam),
                                      f"predicted beam {beam:.2f}\" (90% uv length at {fmax / 1e9:.1f} GHz) / 5")
        imsize = inp.imsize or res.decide(
            "imsize", himg.image_size(cell, pb, geo.pointing_offsets_arcsec),
            f"{len(geo.pointing_offsets_arcsec)} pointing(s) + 1.5 x PB FWHM {pb:.0f}\" (12m), FFT-friendly")
        try:
            gridder, why = himg.choose_gridder(len(geo.pointing_offsets_arcsec), inp.gridder,
                                               len({a.diameter_m for a in run.antennas}), inp.pbmask)
        except ValueError as exc:
            raise BadInputError(f"hsol_imaging: {exc}") from exc
        res.decide("gridder", gridder, why, by="user" if inp.gridder != "auto" else "heuristic")
        single = len(geo.pointing_offsets_arcsec) == 1
        pbmask = res.decide("pbmask", inp.pbmask if single else inp.mosaic_pbmask,
                            f"clean mask inside PB >= {inp.pbmask:g} for one pointing: wider masks let clean put "
                            "unconstrained large-scale blobs near the edge (small EB: correlation with the truth "
                            "0.95 at PB 0.6 against 0.57 at PB 0.3)" if single else
                            "each pointing cleaned inside its own PB >= this level", by="default")
        if inp.scales:
            scales = res.decide("scales", list(inp.scales), "given", by="user")
        elif single:  # up to what the shortest baselines see, inside the clean mask
            las = himg.largest_angular_scale_arcsec(uv, freq, quantile=0.005)
            radius = himg.mask_radius_arcsec(pb, pbmask)
            scales = res.decide("scales", himg.multiscale_scales(beam, cell, min(las, radius),
                                                                 beams=himg.POINTING_SCALE_BEAMS),
                                f"point + 1, 3, 6, 12 ... beams up to the largest scale {min(las, radius):.0f}\" "
                                f"(the shortest baselines see {las:.0f}\", the clean mask's radius is "
                                f"{radius:.0f}\")")
        else:
            las = himg.largest_angular_scale_arcsec(uv, freq)
            scales = res.decide("scales", himg.multiscale_scales(beam, cell, min(las, pb)),
                                f"point + 1, 3, 9 ... beams up to the largest scale {min(las, pb):.0f}\"")
        clean_vis, timebin = (self.joint_imaging_copy(vis, beam, imsize * cell / 2, res) if gridder == "mosaic"
                              else (vis, None))
        sigma, nvis = visibility_noise(vis)
        expected = himg.thermal_image_noise(sigma, nvis)
        res.decide("expected_rms_jy", expected, f"per-visibility noise {sigma:.3g} Jy (second differences in "
                   f"frequency) over {nvis} unflagged visibilities (natural weighting)")
        threshold = res.decide("threshold_jy", himg.clean_threshold(expected, inp.nsigma),
                               f"{inp.nsigma} x the expected noise")
        niter = inp.niter or res.decide("niter", himg.clean_niter(n_point),
                                        "cap; the threshold or the dynamic range usually stops clean first")
        res.decide("phasecenter", "TRACKFIELD", "image in the Sun's frame (ephemeris re-centred on the field)")
        if dish < big_dish:
            res.decide("primary_beam_7m", himg.primary_beam_fwhm_arcsec(freq, dish), "7m antennas present")
        name = f"{run.name}.s{self.stage}.sun"
        imagename = Path(self.context.workdir) / name
        remove_images(imagename)
        clean = dict(vis=str(clean_vis), phasecenter="TRACKFIELD", specmode="mfs", stokes="I", gridder=gridder,
                     deconvolver="multiscale", scales=list(scales), imsize=[int(imsize), int(imsize)],
                     cell=f"{cell}arcsec", weighting="briggs", robust=inp.robust, threshold=f"{threshold:.6g}Jy",
                     pblimit=inp.pblimit, interactive=False)
        def sun_calls() -> list:
            return [("tclean", dict(imagename=str(imagename), field="", niter=int(niter), usemask="pb",
                                    pbmask=pbmask, pbcor=True, **clean), "time-integrated Sun image, multiscale clean")]

        if single:
            jobs = [("sun", sun_calls())]
        else:
            jobs, mosaic = self.plan_linear_mosaic(imagename, geo, clean, niter, cell, imsize, pb, inp)

        def finish(summaries: list[Any]) -> dict[str, Any]:
            summary = summaries[0] if single else mosaic(summaries)
            return self.finish_sun(name, imagename, clean, niter, inp, geo, vis, expected, cell, imsize,
                                   clean["scales"], gridder, summary, pbmask, timebin)

        def retry(summaries: list[Any]) -> list | None:
            """When multiscale clean failed (heuristics.imaging.clean_failure: e.g. a tiny
            12m+7m EB, whose PSF smoothed by the largest scale has a negative peak), drop
            that scale and re-image."""
            summary = summaries[0] if summaries else None
            if not isinstance(summary, dict) or len(clean["scales"]) <= 2 or inp.scales:
                return None
            failure = himg.clean_failure(summary.get("iterdone"), summary.get("stopcode"), int(niter))
            if failure is None:
                return None
            dropped = clean["scales"][-1]
            clean["scales"] = res.decide("scales", clean["scales"][:-1],
                                         f"clean failed with the {dropped}-pixel scale ({failure}; too few short "
                                         "spacings for it); re-imaged without it")
            remove_images(imagename)
            return sun_calls()

        if single:
            finish.retry = retry  # type: ignore[attr-defined]
        return [(key, calls, finish) for key, calls in jobs]

    def finish_sun(self, name: str, imagename: Path, clean: dict[str, Any], niter: int, inp: ImagingInputs,
                   geo: SunGeometry, vis: Path, expected: float, cell: float, imsize: int, scales: list[int],
                   gridder: str, summary: Any, pbmask: float, timebin_s: float | None) -> dict[str, Any]:
        """Products of the cleaned Sun image: FITS (Jy/beam and kelvin HPC), PB, statistics.
        ``vis`` is the imaging MS at full time resolution (what selfcal and tdimaging use);
        ``timebin_s`` the averaging of the copy tclean imaged (None: ``vis`` itself)."""
        products = Path(self.context.workdir) / "products"
        products.mkdir(exist_ok=True)
        fits_jy = products / f"{name}.image.pbcor.fits"
        self.casa.task("exportfits", imagename=f"{imagename}.image.pbcor", fitsimage=str(fits_jy), overwrite=True,
                       _note="primary-beam-corrected image, Jy/beam, RA/Dec")
        from ..fitsio import write_kelvin_fits

        centre_arcsec = tuple(np.degrees(np.array(geo.centre_offset_rad)) * 3600)
        fits_k = products / f"{name}.image.pbcor.K.hpc.fits"
        with self.casa.tool("write the kelvin / helioprojective FITS (solarpipe.fitsio)"):
            write_kelvin_fits(f"{imagename}.image.pbcor", fits_k, centre_arcsec, geo.mid_mjd_s,
                              extra={"OBJECT": "Sun", "ORIGIN": "solarpipe hsol_imaging"})
        stats = image_stats(imagename, inp.pblimit,
                            rms_pb=pbmask if len(geo.pointing_offsets_arcsec) == 1 else None)
        stats["expected_rms_jy"] = expected
        stats["rms_over_expected"] = stats["rms_jy"] / expected if expected > 0 else float("nan")
        pb_fits = products / f"{name}.pb.fits"
        self.casa.task("exportfits", imagename=f"{imagename}.pb", fitsimage=str(pb_fits), overwrite=True,
                       _note="primary beam response")
        params = {k: v for k, v in clean.items() if k != "vis"}
        params.update(niter=int(niter), field="")
        if len(geo.pointing_offsets_arcsec) == 1:
            params.update(usemask="pb", pbmask=pbmask, pbcor=True)
        return {"name": name, "kind": "sun", "gridder": gridder, "pb_fits": str(pb_fits), "vis": str(vis),
                "timebin_s": timebin_s,
                "tclean_params": params, "n_pointings": len(geo.pointing_offsets_arcsec),
                "imagename": str(imagename), "fits": str(fits_jy),
                "fits_kelvin": str(fits_k), "cell_arcsec": cell, "imsize": int(imsize), "scales": list(scales),
                "centre_offset_arcsec": list(centre_arcsec), "mid_mjd_s": geo.mid_mjd_s,
                "tclean": _tclean_summary(summary), **stats}

    def plan_linear_mosaic(self, imagename: Path, geo: SunGeometry, clean: dict[str, Any], niter: int,
                           cell: float, imsize: int, pb_fwhm: float, inp: ImagingInputs):
        """Image every pointing on the common Sun-fixed grid (TRACKFIELD), masked to its
        primary beam (one job each), and combine them: sum PB_i A_i / sum PB_i^2
        (heuristics.imaging). Returns the jobs and the combining step."""
        centre = int(imsize) // 2
        pix = himg.pointing_pixels(geo.pointing_offsets_arcsec, centre, cell)
        radius = himg.mask_radius_arcsec(pb_fwhm, inp.mosaic_pbmask) / cell
        per_niter = max(1000, int(niter) // len(pix))
        calls, pointings = [], []
        for k, (name, (px, py)) in enumerate(zip(geo.field_names, pix)):
            sub = Path(f"{imagename}.p{k}")
            remove_images(sub)
            pointings.append(str(sub))
            calls.append(("tclean", dict(imagename=str(sub), field=name, niter=per_niter, usemask="user",
                                         mask=f"circle[[{px:.1f}pix,{py:.1f}pix],{radius:.1f}pix]", pbcor=False,
                                         **clean),
                          f"pointing {name}: multiscale clean, masked to its primary beam"))

        def combine(summaries: list[Any]) -> dict[str, Any]:
            self.casa.run_code(linear_mosaic_code, imagename=str(imagename), pointings=pointings,
                               centres_px=[(float(x), float(y)) for x, y in pix], fwhm_px=pb_fwhm / cell,
                               pblimit=inp.pblimit,
                               _note="linear mosaic of the pointing images: sum PB_i A_i / sum PB_i^2")
            done = [s for s in summaries if isinstance(s, dict)]
            return {"stopcode": max((s.get("stopcode") for s in done), default=None),
                    "iterdone": sum(int(s.get("iterdone", 0)) for s in done),
                    "nmajordone": max((int(s.get("nmajordone", 0)) for s in done), default=0)}

        return [(f"sun pointing {k}", [c]) for k, c in enumerate(calls)], combine

    # -- calibrators -------------------------------------------------------------
    def plan_calibrators(self, run, inp: ImagingInputs, res: Results) -> list[tuple[str, list, Any]]:
        """One tclean job per flux/bandpass/phase calibrator, and its statistics step."""
        out = []
        freq = float(np.mean([s.ref_freq_hz for s in run.spws if s.role == "science"]))
        cal_ids = sorted(set(run.field_ids("bandpass") + run.field_ids("phase") + run.field_ids("flux")))
        for fid in cal_ids:
            field = run.fields[fid]
            uv = uv_lengths(run.vis, field_id=fid)
            if uv.size == 0:
                continue
            beam = himg.synthesized_beam_arcsec(uv, freq)
            cell = himg.cell_arcsec(beam)
            imsize = himg.fast_fft_size(int(1.2 * himg.primary_beam_fwhm_arcsec(freq, 12.0) / cell))
            name = f"{run.name}.s{self.stage}.{field.name}"
            imagename = Path(self.context.workdir) / name
            remove_images(imagename)
            radius = max(3, int(2 * beam / cell))
            kwargs = dict(vis=run.vis, imagename=str(imagename), field=field.name, intent="CALIBRATE_*",
                          spw=",".join(map(str, run.science_spw_ids)), datacolumn="corrected", specmode="mfs",
                          stokes="I", gridder="standard", deconvolver="hogbom", imsize=[imsize, imsize],
                          cell=f"{cell}arcsec", weighting="briggs", robust=inp.robust, niter=2000,
                          nsigma=inp.nsigma, mask=f"circle[[{imsize // 2}pix,{imsize // 2}pix],{radius}pix]",
                          pbcor=True, interactive=False)

            def finish(summaries: list[Any], name=name, field=field, imagename=imagename, cell=cell,
                       imsize=imsize, radius=radius) -> dict[str, Any]:
                stats = image_stats(imagename, inp.pblimit, centre_radius_pix=radius)
                return {"name": name, "kind": "calibrator", "field": field.name, "roles": field.roles,
                        "imagename": str(imagename), "cell_arcsec": cell, "imsize": imsize,
                        "tclean": _tclean_summary(summaries[0]), **stats}

            out.append((f"calibrator {field.name}",
                        [("tclean", kwargs, f"calibrator {field.name}: flux and dynamic-range check")], finish))
        res.decide("calibrator_images", [key.split(" ", 1)[1] for key, _, _ in out],
                   "every flux/bandpass/phase calibrator")
        return out

    # -- analyse / QA ---------------------------------------------------------------
    def analyse(self, raw: dict[str, Any]) -> Results:
        from ..weblog import plots

        res = ImageResults(**vars(raw["results"]))
        res.images = raw["images"]
        fc = self.context.flux_calibrator or {}
        gain_stage = next((s for s in reversed(self.context.stages) if s.task == "hsol_gaincal"), None)
        derived = gain_stage.results["summary"].get("derived_fluxes", {}) if gain_stage else {}
        for img in res.images:
            if img["kind"] == "calibrator":
                expect = None
                if img["field"] == fc.get("field"):
                    expect = fc["flux_jy"] * (img["freq_hz"] / 1e9 / fc["reffreq_ghz"]) ** (fc["spectral_index"] or 0)
                elif img["field"] in derived:
                    expect = derived[img["field"]]["fitFluxd"]
                img["expected_flux_jy"] = expect
        res.summary["images"] = {i["name"]: {k: v for k, v in i.items() if k not in ("imagename",)}
                                 for i in res.images}
        d = self.stage_dir
        for img in res.images:
            for path, cap in plots.image_thumbnails(img, d):
                res.plots.append(Plot(str(Path(path).relative_to(d.parent)), cap, group=img["name"]))
        return res

    def qa(self, results: Results) -> list[QAScore]:
        out = []
        for img in results.images:  # type: ignore[attr-defined]
            conv = img["tclean"].get("stopcode")
            out.append(QAScore(1.0 if conv in (2, 8, None) else 0.7,
                               f"{img['name']}: clean stop code {conv}",
                               "tclean stop codes: 2 = threshold (nsigma) reached, 8 = nsigma, 1 = niter hit.",
                               metric_name="stopcode", metric_value=conv, topic="imaging",
                               applies_to={"image": img["name"]}))
            ratio_rms = img.get("rms_over_expected")
            if ratio_rms is not None and math.isfinite(ratio_rms):
                out.append(QAScore(1.0 if ratio_rms <= 2 else (0.8 if ratio_rms <= 5 else 0.6),
                                   f"{img['name']}: residual rms {img['rms_jy']:.3g} Jy/beam = {ratio_rms:.1f} x "
                                   "the expected noise",
                                   "Residual rms (robust, inside the PB limit) over the thermal noise predicted "
                                   "from the visibilities. The Sun is dynamic-range limited: a few times the "
                                   "thermal noise is normal.", metric_name="rms_over_expected",
                                   metric_value=ratio_rms, topic="imaging", applies_to={"image": img["name"]}))
            if img["kind"] == "calibrator" and img.get("expected_flux_jy"):
                ratio = img["peak_jy"] / img["expected_flux_jy"]
                out.append(QAScore(1.0 if abs(ratio - 1) <= 0.03 else (0.7 if abs(ratio - 1) <= 0.1 else 0.3),
                                   f"{img['field']}: peak {img['peak_jy']:.3f} Jy = {ratio:.3f} x expected",
                                   "Calibrator peak flux against the catalogue model (amplitude calibrator) or "
                                   "the fluxscale result.", metric_name="flux_ratio", metric_value=ratio,
                                   topic="imaging", applies_to={"image": img["name"]}))
                dr = img["dynamic_range"]
                out.append(QAScore(1.0 if dr >= 100 else (0.7 if dr >= 20 else 0.4),
                                   f"{img['field']}: dynamic range {dr:.0f}", "Peak / residual rms.",
                                   metric_name="dynamic_range", metric_value=dr, topic="imaging",
                                   applies_to={"image": img["name"]}))
        for job in results.summary.get("failed_jobs", []):
            out.append(QAScore(0.5, f"{job['chunk']}: tclean failed, image left out",
                               f"The job's error: {job['error']}. The other images are kept.",
                               metric_name="failed_job", metric_value=job["chunk"], topic="imaging"))
        return out


def find_sun_image(context, name: str | None, task: str) -> dict[str, Any]:
    """The latest time-integrated Sun image of the context (or the one called ``name``)."""
    suns = [i for i in context.images if i.get("kind") == "sun" and (not name or i["name"] == name)]
    if not suns:
        known = ", ".join(i["name"] for i in context.images if i.get("kind") == "sun") or "none"
        raise BadInputError(f"{task}: no Sun image {name or ''} in the context (Sun images: {known}); run "
                            "hsol_imaging first or give image='name'")
    return suns[-1]


def linear_mosaic_code(imagename: str, pointings: list[str], centres_px: list[tuple[float, float]],
                       fwhm_px: float, pblimit: float) -> str:
    """The self-contained casatools/numpy block that combines the pointing images into
    ``imagename``.pb/.image.pbcor/.residual (heuristics.imaging's gaussian_pb and
    linear_mosaic, their source written in); the pipeline runs it and records it
    verbatim, so the imaging script repeats it without solarpipe."""
    return f'''import math
from typing import Sequence

import numpy as np
from casatools import image as casa_image

{inspect.getsource(himg.gaussian_pb)}

{inspect.getsource(himg.linear_mosaic)}

def combine_pointings(imagename, pointings, centres_px, fwhm_px, pblimit):
    """Apparent pointing images (Gaussian PBs at their centres) -> the linear mosaic."""
    ia = casa_image()
    apparent, residuals, pbs = [], [], []
    for sub, centre in zip(pointings, centres_px):
        for suffix, dest in (('.image', apparent), ('.residual', residuals)):
            ia.open(sub + suffix)
            dest.append(ia.getchunk()[:, :, 0, 0].astype(float))
            ia.close()
        pbs.append(gaussian_pb(apparent[-1].shape, centre, fwhm_px))
    sky, response = linear_mosaic(apparent, pbs, pblimit)
    resid, _ = linear_mosaic(residuals, pbs, pblimit)
    for suffix, data in (('.pb', response), ('.image.pbcor', sky), ('.residual', resid)):
        ia.fromimage(outfile=imagename + suffix, infile=pointings[0] + '.image', overwrite=True)
        ia.close()
        ia.open(imagename + suffix)
        ia.putchunk(np.nan_to_num(data)[:, :, None, None])
        if suffix != '.pb':
            ia.calcmask("'%s.pb' >= %s" % (imagename, pblimit), name='mask0')
        ia.close()


combine_pointings({imagename!r}, {pointings!r}, {centres_px!r}, {fwhm_px!r}, {pblimit!r})
'''


def uv_lengths(vis: str | Path, field_id: int | None = None, max_rows: int = 200000) -> np.ndarray:
    """Projected baseline lengths (m) of the cross-correlations (a sample of rows)."""
    from casatools import table

    tb = table()
    tb.open(str(vis))
    try:
        q = tb.query("ANTENNA1!=ANTENNA2" + (f" && FIELD_ID=={field_id}" if field_id is not None else ""),
                     columns="UVW")
        try:
            n = q.nrows()
            uvw = q.getcol("UVW", 0, min(n, max_rows)) if n else np.zeros((3, 0))
        finally:
            q.close()
    finally:
        tb.close()
    return np.hypot(uvw[0], uvw[1])


def visibility_noise(vis: str | Path, max_rows: int = 20000) -> tuple[float, int]:
    """Per-visibility noise (Jy, one correlation, one channel) from second differences in
    frequency of a sample of cross-correlation rows, and the number of unflagged
    visibilities (rows x channels x parallel hands) in the whole MS."""
    from casatools import table

    from ..heuristics.flagging import baseline_noise

    tb = table()
    tb.open(str(vis))
    try:
        q = tb.query("ANTENNA1!=ANTENNA2", columns="DATA,FLAG")
        try:
            n = q.nrows()
            step = max(1, n // max_rows)
            nvis = 0
            sig = []
            for start in range(0, n, 5000):
                nrow = min(5000, n - start)
                flag = q.getcol("FLAG", start, nrow)
                npar = min(2, flag.shape[0])
                nvis += int((~flag[:npar]).sum())
                if (start // 5000) % step == 0:
                    data = np.where(flag, np.nan, q.getcol("DATA", start, nrow))
                    for p in range(npar):
                        sig.append(baseline_noise(data[p].T))
        finally:
            q.close()
    finally:
        tb.close()
    s = np.concatenate(sig) if sig else np.array([np.nan])
    return float(np.nanmedian(s)), nvis


def image_stats(imagename: Path, pblimit: float, centre_radius_pix: int | None = None,
                rms_pb: float | None = None) -> dict[str, Any]:
    """Peak, residual rms (robust), dynamic range, beam, frequency of an image set.
    rms_pb: the residual rms is taken inside PB >= rms_pb (the clean mask of a single
    pointing: outside it the residual is uncleaned solar emission, not noise)."""
    from casatools import image

    ia = image()
    stats: dict[str, Any] = {}
    ia.open(f"{imagename}.image.pbcor")
    try:
        img = ia.getchunk()[:, :, 0, 0]
        mask = ia.getchunk(getmask=True)[:, :, 0, 0]
        beam = ia.restoringbeam()
        freq = float(ia.coordsys().referencevalue(format="n", type="spectral")["numeric"][0])
    finally:
        ia.close()
    ia.open(f"{imagename}.residual")
    try:
        resid = ia.getchunk()[:, :, 0, 0]
    finally:
        ia.close()
    valid = mask.astype(bool)
    inside = valid
    if rms_pb is not None and Path(f"{imagename}.pb").exists():
        ia.open(f"{imagename}.pb")
        try:
            inside = valid & (ia.getchunk()[:, :, 0, 0] >= float(rms_pb))
        finally:
            ia.close()
    r = resid[inside]
    rms = float(1.4826 * np.median(np.abs(r - np.median(r)))) if r.size else float("nan")
    if centre_radius_pix:
        c = np.array(img.shape) // 2
        win = img[c[0] - centre_radius_pix:c[0] + centre_radius_pix + 1, c[1] - centre_radius_pix:c[1] + centre_radius_pix + 1]
        peak = float(np.max(win))
    else:
        peak = float(np.max(img[valid])) if valid.any() else float("nan")
    stats.update(peak_jy=peak, rms_jy=rms, dynamic_range=peak / rms if rms > 0 else float("inf"),
                 min_jy=float(np.min(img[valid])) if valid.any() else float("nan"), freq_hz=freq,
                 beam_arcsec=[float(beam["major"]["value"]), float(beam["minor"]["value"]),
                              float(beam["positionangle"]["value"])])
    return stats


def _tclean_summary(summary: Any) -> dict[str, Any]:
    if not isinstance(summary, dict):
        return {}
    return {"stopcode": summary.get("stopcode"), "iterdone": summary.get("iterdone"),
            "nmajordone": summary.get("nmajordone")}


IMAGE_SUFFIXES = (".image", ".image.pbcor", ".residual", ".model", ".psf", ".pb", ".sumwt", ".mask",
                  ".weight")


def remove_images(imagename: Path) -> None:
    """Remove a previous tclean product set of this name (a re-run starts clean)."""
    for suffix in IMAGE_SUFFIXES:
        p = Path(str(imagename) + suffix)
        if p.exists():
            shutil.rmtree(p)
