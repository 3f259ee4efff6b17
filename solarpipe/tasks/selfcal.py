"""hsol_selfcal: phase self-calibration of the Sun fields.

Residual antenna phase errors (the atmosphere changes faster than the phase
calibrator cycle follows) limit solar images; the Sun itself is bright enough to
solve for them. Starting from the time-integrated image's clean model, phase-only
gaincal solutions are found on hsol_imaging's calibrated Sun-frame copy with
solution intervals stepping down (scan, 60 s, 20 s, integration;
heuristics.selfcal), SPWs combined when the SNR needs it. After each step the
image is remade with hsol_imaging's parameters (the heterogeneous-array gridder
images a time average of the self-calibrated data, as hsol_imaging did, and a
kept step's model is predicted back at full time resolution for the next
gaincal); the step is kept only if the residual rms drops without the rms
contrast falling (and few solutions failed), and its image's model seeds the
next step. The first rejected step ends the sequence. The kept solutions stay
applied to the imaging copy (CORRECTED_DATA), so hsol_tdimaging and hsol_feather
use the self-calibrated data and image. Optional final amplitude+phase step
(``amplitude=True``, off by default).
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..heuristics import selfcal as hsc
from ..heuristics.feather import quiet_sun_reference_k
from ..heuristics.tdimaging import rms_contrast
from ..qa import QAScore
from ..task import ImageResults, Plot, Results, Task, TaskInputs

LOG = logging.getLogger(__name__)


@dataclass
class SelfcalInputs(TaskInputs):
    """image: the Sun image to start from (None: the latest). solints: intervals to try,
    longest first (None: scan, 60s, 20s, integration, as the scans allow). min_snr:
    gaincal minsnr. min_gain: the fractional residual-rms drop (inside the clean mask) a
    step must exceed to be kept (0: any drop). combine_spw: solve with the SPWs combined
    (None: heuristics.selfcal.combine_spws). amplitude: add a final amplitude+phase step
    (solint: the scan)."""

    image: str | None = None
    solints: list[str] | None = None
    min_snr: float = 3.0
    min_gain: float = 0.0
    max_failed: float = 0.3
    max_contrast_loss: float = 0.01
    amplitude: bool = False
    combine_spw: bool | None = None


class Selfcal(Task):
    name = "hsol_selfcal"
    Inputs = SelfcalInputs
    topic = "imaging"

    def prepare(self) -> dict[str, Any]:
        from .imaging import find_sun_image, image_stats, remove_images, visibility_noise
        from ..msutil import median_interval_s

        inp: SelfcalInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        res = self.new_results()
        img = find_sun_image(self.context, inp.image, self.name)
        if img.get("n_pointings", 1) > 1 or not Path(f"{img['imagename']}.model").exists():
            res.decide("selfcal", "skipped", "a linear mosaic has no single clean model to self-calibrate against "
                       "(not implemented for mosaics)")
            return {"results": res, "iterations": [], "final": None, "img": img}
        vis, params = img["vis"], dict(img["tclean_params"])
        integration = median_interval_s(vis)
        on = [s for s in run.scans if "OBSERVE_TARGET" in ",".join(s.intents) and set(s.field_ids) & set(run.sun_field_ids)]
        scan_s = float(np.median([s.end_mjd_s - s.start_mjd_s for s in on])) if on else 60.0
        solints = res.decide("solints", list(inp.solints) if inp.solints else
                             hsc.solint_sequence(scan_s, integration),
                             "given" if inp.solints else
                             f"scan ({scan_s:.0f} s) -> 60 s -> 20 s -> integration ({integration:g} s), each "
                             "shorter than the one before", by="user" if inp.solints else "heuristic")
        sigma, _ = visibility_noise(vis)
        nspw = len(run.science_spw_ids)
        flux = float(img.get("peak_jy") or 0.0)
        nchan_avg = imaging_copy_nchan(vis)
        snr = hsc.solution_snr(flux, sigma, len(run.antennas), 2 * nchan_avg)
        freqs = [s.ref_freq_hz for s in run.spws if s.id in run.science_spw_ids]
        if inp.combine_spw is not None:
            combine, why = bool(inp.combine_spw), "given"
        else:
            combine, why = hsc.combine_spws(snr, inp.min_snr, len(freqs),
                                            (max(freqs) - min(freqs)) / min(freqs) if freqs else 0.0)
        res.decide("combine_spw", combine, why, by="user" if inp.combine_spw is not None else "heuristic")
        refant = ",".join(self.context.refants[:5]) if self.context.refants else ""
        res.decide("refant", refant, "from hsol_refant")
        zero = self.zero_level_k(img)
        wd = Path(self.context.workdir)
        base_name = f"{run.name}.s{self.stage}.sun.selfcal"
        predict = wd / f"{base_name}.start"
        start_params = {k: v for k, v in params.items() if k not in ("niter", "usemask", "pbmask", "pbcor")}
        timebin = img.get("timebin_s")
        res.decide("imaging_timebin_s", timebin,
                   f"as {img['name']}: gains solved on the full-resolution data, each step imaged with the "
                   f"{params.get('gridder', 'standard')} gridder " + (f"on a {timebin:g} s average of them, "
                   "its model predicted back at full resolution" if timebin else "on them"))
        self.predict(vis, predict, Path(img["imagename"]), start_params,
                     "starting model: the time-integrated image's clean components, predicted into MODEL_DATA the "
                     "way tclean images (TRACKFIELD; ft does not follow the ephemeris)")
        rms_before = float(img["rms_jy"])
        contrast_before = self.contrast(Path(img["imagename"]), zero)
        iterations, kept, best = [], [], None
        steps = [(s, "p") for s in solints] + ([("inf", "ap")] if inp.amplitude else [])
        for k, (solint, mode) in enumerate(steps):
            table = wd / f"{base_name}{k}.{mode}.g"
            image = wd / f"{base_name}{k}"
            remove_images(image)
            if table.exists():
                shutil.rmtree(table)
            self.casa.task("gaincal", vis=vis, caltable=str(table), field="", solint=solint, refant=refant,
                           calmode=mode, gaintype="G", minsnr=float(inp.min_snr), minblperant=4,
                           combine="spw" if combine else "", gaintable=[str(t) for t in kept if mode == "ap"],
                           _note=f"self-calibration step {k}: {'phase' if mode == 'p' else 'amplitude+phase'}, "
                                 f"solint {solint}")
            if not table.exists():
                iterations.append({"step": k, "solint": solint, "mode": mode, "accepted": False,
                                   "why": "gaincal wrote no table (no solution)"})
                break
            from ..caltables import solution_stats

            stats = solution_stats(table)
            tables = ([str(t) for t in kept] if mode == "ap" else []) + [str(table)]
            self.apply(vis, tables, combine, nspw)
            self.image_step(vis, image, params, timebin, k)
            st = image_stats(image, float(params.get("pblimit", 0.2)), rms_pb=params.get("pbmask"))
            contrast = self.contrast(image, zero)
            ok, why = hsc.accept_iteration(rms_before, st["rms_jy"], stats["failed_fraction"], inp.min_gain,
                                           inp.max_failed, contrast_before, contrast, inp.max_contrast_loss)
            iterations.append({"step": k, "solint": solint, "mode": mode, "table": table.name,
                               "rms_before_jy": rms_before, "rms_after_jy": st["rms_jy"],
                               "contrast_before": contrast_before, "contrast_after": contrast,
                               "failed_fraction": stats["failed_fraction"], "median_snr": stats["median_snr"],
                               "peak_jy": st["peak_jy"], "accepted": ok, "why": why})
            if not ok:
                break
            kept = ([*kept] if mode == "ap" else []) + [table]
            if timebin:
                self.predict(vis, predict, image, start_params, f"step {k}'s clean model into MODEL_DATA "
                             "(full time resolution) for the next step")
            rms_before, contrast_before, best = st["rms_jy"], contrast, (image, st)
        # the imaging copy keeps the solutions that were kept (or none)
        if kept:
            self.apply(vis, [str(t) for t in kept], combine, nspw)
        else:
            self.casa.task("clearcal", vis=vis, _note="no step kept: CORRECTED_DATA back to the calibrated data")
        final = self.products(img, best, base_name) if best else None
        res.decide("kept_steps", [it["solint"] for it in iterations if it["accepted"]],
                   "steps whose image improved (residual rms inside the clean mask down, rms contrast not down "
                   "by more than the tolerance) with few failed solutions")
        return {"results": res, "iterations": iterations, "final": final, "img": img, "kept": [str(t) for t in kept]}

    def predict(self, vis: str, predict: Path, model_of: Path, start_params: dict[str, Any], note: str) -> None:
        """MODEL_DATA of ``vis`` from the clean model of image ``model_of`` (tclean, niter 0)."""
        from .imaging import remove_images

        remove_images(predict)
        self.casa.task("tclean", vis=vis, imagename=str(predict), startmodel=f"{model_of}.model", niter=0,
                       savemodel="modelcolumn", datacolumn="data", **start_params, _note=note)

    def image_step(self, vis: str, image: Path, params: dict[str, Any], timebin: float | None, k: int) -> None:
        """Image the self-calibrated data as hsol_imaging did: on ``vis`` itself (its model
        into MODEL_DATA), or on a ``timebin`` s average of its CORRECTED_DATA (the
        heterogeneous-array gridder; the model is predicted back only for a kept step)."""
        if not timebin:
            self.casa.task("tclean", vis=vis, imagename=str(image), datacolumn="corrected", savemodel="modelcolumn",
                           **params, _note=f"image after self-calibration step {k} (its model -> MODEL_DATA)")
            return
        averaged = Path(f"{image}.t{timebin:g}s.ms")
        if averaged.exists():
            shutil.rmtree(averaged)
        self.casa.task("split", vis=vis, outputvis=str(averaged), datacolumn="corrected", timebin=f"{timebin:g}s",
                       keepflags=False, _note=f"self-calibration step {k}: time-averaged copy to image")
        try:
            self.casa.task("tclean", vis=str(averaged), imagename=str(image), datacolumn="data", **params,
                           _note=f"image after self-calibration step {k}")
        finally:
            shutil.rmtree(averaged, ignore_errors=True)

    def apply(self, vis: str, tables: list[str], combine: bool, nspw: int) -> None:
        self.casa.task("applycal", vis=vis, gaintable=tables, interp=["linear"] * len(tables),
                       calwt=[False] * len(tables), applymode="calonly",
                       spwmap=[[0] * nspw] * len(tables) if combine else [],
                       _note="self-calibration solutions onto the imaging copy")

    def zero_level_k(self, img: dict[str, Any]) -> float:
        """The disc level the interferometer misses (for the rms contrast): from hsol_feather
        when it ran on this image, else the quiet-Sun reference of the band."""
        from .feather import tp_zero_level_k

        zero = tp_zero_level_k(self.context, img["name"])
        if zero is not None:
            return zero
        return float(quiet_sun_reference_k(self.context.observing_run.band) or 0.0)

    def contrast(self, image: Path, zero_k: float) -> float:
        from ..fitsio import casa_image_plane
        from ..heuristics.imaging import jy_per_beam_to_kelvin

        p = casa_image_plane(f"{image}.image.pbcor")
        return rms_contrast(p["data"] * jy_per_beam_to_kelvin(p["freq_hz"], p["bmaj"], p["bmin"]), zero_k)

    def products(self, img: dict[str, Any], best: tuple[Path, dict[str, Any]], name: str) -> dict[str, Any]:
        """FITS of the self-calibrated image and its image entry (the new latest Sun image)."""
        from ..fitsio import write_kelvin_fits

        image, st = best
        products = Path(self.context.workdir) / "products"
        products.mkdir(exist_ok=True)
        fits_jy = products / f"{name}.image.pbcor.fits"
        self.casa.task("exportfits", imagename=f"{image}.image.pbcor", fitsimage=str(fits_jy), overwrite=True,
                       _note="self-calibrated image, Jy/beam")
        fits_k = products / f"{name}.image.pbcor.K.hpc.fits"
        with self.casa.tool("write the kelvin / helioprojective FITS (solarpipe.fitsio)"):
            write_kelvin_fits(f"{image}.image.pbcor", fits_k, tuple(img["centre_offset_arcsec"]), img["mid_mjd_s"],
                              extra={"OBJECT": "Sun", "ORIGIN": "solarpipe hsol_selfcal"})
        pb_fits = products / f"{name}.pb.fits"
        self.casa.task("exportfits", imagename=f"{image}.pb", fitsimage=str(pb_fits), overwrite=True,
                       _note="primary beam response")
        entry = {k: v for k, v in img.items() if k not in ("name", "imagename", "fits", "fits_kelvin", "pb_fits")}
        entry.update(st)
        entry.update(name=name, imagename=str(image), fits=str(fits_jy), fits_kelvin=str(fits_k),
                     pb_fits=str(pb_fits), selfcal_of=img["name"],
                     rms_over_expected=st["rms_jy"] / img["expected_rms_jy"] if img.get("expected_rms_jy") else None)
        return entry

    def analyse(self, raw: dict[str, Any]) -> Results:
        from ..weblog import plots

        res = ImageResults(**vars(raw["results"]))
        res.images = [raw["final"]] if raw["final"] else []
        its = raw["iterations"]
        res.summary.update(iterations=its, kept_tables=raw.get("kept", []),
                           improved=bool(raw["final"]), start_image=raw["img"]["name"])
        if its:
            first, last = its[0], ([i for i in its if i["accepted"]] or [its[0]])[-1]
            res.summary["rms_before_jy"] = first.get("rms_before_jy")
            res.summary["rms_after_jy"] = last.get("rms_after_jy") if raw["final"] else first.get("rms_before_jy")
        d = self.stage_dir
        made = plots.selfcal_plots(its, Path(self.context.workdir), raw["img"], raw["final"], d)
        for path, cap in made:
            res.plots.append(Plot(str(Path(path).relative_to(d.parent)), cap, group="selfcal"))
        for it in its:
            res.messages.append(f"step {it['step']} ({it['mode']}, solint {it['solint']}): "
                                f"{'kept' if it['accepted'] else 'rejected'}: {it['why']}")
        return res

    def qa(self, results: Results) -> list[QAScore]:
        s = results.summary
        if not s["iterations"]:
            return [QAScore(0.9, "self-calibration not done", "; ".join(d.reason for d in results.decisions),
                            metric_name="selfcal_gain", metric_value=None, topic="imaging")]
        before, after = s.get("rms_before_jy"), s.get("rms_after_jy")
        if before is None or after is None:  # no step produced an image (e.g. gaincal found no solution)
            return [QAScore(0.8, "self-calibration: no step kept", "; ".join(results.messages),
                            metric_name="selfcal_gain", metric_value=0.0, topic="imaging")]
        gain = 1 - after / before if before else 0.0
        return [QAScore(1.0 if gain >= 0.1 else (0.9 if s["improved"] else 0.8),
                        f"self-calibration: residual rms {before:.4g} -> {after:.4g} Jy/beam ({-gain:+.0%})",
                        "Residual rms of the Sun image before and after the kept self-calibration steps "
                        "(none kept: the calibrated image stands).", metric_name="selfcal_gain",
                        metric_value=gain, topic="imaging")]


def imaging_copy_nchan(vis: str | Path) -> int:
    """Channels per SPW of the (channel-averaged) imaging copy."""
    from casatools import table

    tb = table()
    tb.open(f"{vis}/SPECTRAL_WINDOW")
    try:
        return int(min(tb.getcol("NUM_CHAN")))
    finally:
        tb.close()
