"""hsol_feather: total power (TP) + interferometer, absolute brightness temperatures.

The interferometer misses the largest scales (the disc itself): its image has
no zero level. The full-disc TP map supplies them. Steps (each recorded):

1. the TP map (FITS or CASA image, K or Jy/beam, with its beam) is checked
   against the EB: same ALMA band, taken within ``max_time_offset_h`` hours;
2. the Sun's centre is found in the TP map by fitting its limb
   (heuristics.feather.fit_disc), and the map is placed so that centre sits at
   the Sun centre of the interferometric image (both in the Sun's frame: the
   TP header's own pointing error, e.g. an offset of tens of arcsec, drops out);
   the shift from where the header and the ephemeris put the Sun is reported;
3. optionally rescaled so the quiet Sun at disc centre has the reference
   brightness (7300 K at 3 mm, 5900 K at 1.3 mm, configurable);
4. K -> Jy/beam with the TP beam at the interferometric frequency, regridded
   onto the interferometric grid, multiplied by the interferometric primary
   beam, feathered with the image before primary-beam correction, then
   primary-beam corrected and written in K (interferometric beam) with a
   helioprojective WCS.
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
from ..heuristics import feather as hfeather
from ..heuristics import imaging as himg
from ..heuristics.observation import band_from_frequency
from ..qa import QAScore
from ..task import ImageResults, Plot, Results, Task, TaskInputs

LOG = logging.getLogger(__name__)

#: file names looked for beside the raw MS when no TP map is given
TP_MAP_PATTERNS = ("tp_map.fits", "tp_map.image", "*TP*.fits", "*tp*.fits", "*TP*.image")


@dataclass
class FeatherInputs(TaskInputs):
    """tp_map: the TP full-disc map (FITS or CASA image; None: a TP map beside the raw MS,
    see TP_MAP_PATTERNS). image: the Sun image to combine (None: the latest).
    rescale_quiet_sun: scale the TP map so the quiet Sun at disc centre has quiet_sun_k
    (None: the band's reference value). max_time_offset_h: largest TP/EB time gap."""

    tp_map: str | None = None
    image: str | None = None
    sdfactor: float = 1.0
    rescale_quiet_sun: bool = False
    quiet_sun_k: float | None = None
    max_time_offset_h: float = 12.0
    pblimit: float = 0.2


class Feather(Task):
    name = "hsol_feather"
    Inputs = FeatherInputs
    topic = "imaging"

    # -- gather -----------------------------------------------------------------
    def find_tp_map(self) -> Path:
        inp: FeatherInputs = self.inputs  # type: ignore[assignment]
        if inp.tp_map:
            p = Path(inp.tp_map)
            if not p.exists():
                raise BadInputError(f"hsol_feather: TP map {p} does not exist; give tp_map='file.fits' "
                                    "(FITS or CASA image, in K with its beam)")
            return p
        raw_dir = Path(self.context.observing_run.source_vis).parent
        for pattern in TP_MAP_PATTERNS:
            found = sorted(raw_dir.glob(pattern))
            if found:
                return found[0]
        raise BadInputError(f"hsol_feather: no TP map given and none found beside the raw MS in {raw_dir} "
                            f"(looked for {', '.join(TP_MAP_PATTERNS)}); give tp_map='file.fits'")

    def read_tp(self, path: Path, name: str) -> tuple[Path, dict[str, Any]]:
        """The TP map as a CASA image (FITS imported into the working directory) and its plane."""
        from ..fitsio import casa_image_plane

        if path.is_dir():
            image = path
        else:
            image = Path(self.context.workdir) / f"{name}.tp.image"
            if image.exists():
                shutil.rmtree(image)
            try:
                self.casa.task("importfits", fitsimage=str(path), imagename=str(image), overwrite=True,
                               _note="the TP map as a CASA image")
            except Exception as exc:  # noqa: BLE001 - re-raised with the file named
                raise BadInputError(f"hsol_feather: TP map {path} could not be read as FITS ({exc})") from exc
        try:
            plane = casa_image_plane(image)
        except Exception as exc:  # noqa: BLE001
            raise BadInputError(f"hsol_feather: TP map {path} is not a readable image ({exc})") from exc
        if not (plane["bmaj"] > 0 and plane["bmin"] > 0):
            raise BadInputError(f"hsol_feather: TP map {path} has no beam (BMAJ/BMIN); set the TP beam in "
                                "its header")
        unit = plane["unit"].strip()
        if unit == "Jy/beam":
            plane["data"] = plane["data"] * himg.jy_per_beam_to_kelvin(plane["freq_hz"], plane["bmaj"], plane["bmin"])
        elif unit != "K":
            raise BadInputError(f"hsol_feather: TP map {path} is in {unit!r}; expected K or Jy/beam")
        return image, plane

    def check_tp(self, path: Path, plane: dict[str, Any]) -> None:
        """Band and date of the TP map against the EB (clear errors, nothing written)."""
        inp: FeatherInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        band = band_from_frequency(plane["freq_hz"])
        if band != run.band:
            raise BadInputError(f"hsol_feather: TP map {path} is at {plane['freq_hz'] / 1e9:.1f} GHz (Band {band}) "
                                f"but the EB {run.name} is Band {run.band}; give the TP map of the same band")
        if plane.get("mjd_s") is None:
            raise BadInputError(f"hsol_feather: TP map {path} has no observation date (DATE-OBS)")
        if not hfeather.time_offset_ok(plane["mjd_s"], run.start_mjd_s, run.end_mjd_s, inp.max_time_offset_h):
            from ..weblog.render import mjd_s_to_iso

            raise BadInputError(
                f"hsol_feather: TP map {path} was observed {mjd_s_to_iso(plane['mjd_s'])}, more than "
                f"{inp.max_time_offset_h:g} h from the EB {run.name} ({mjd_s_to_iso(run.start_mjd_s)} to "
                f"{mjd_s_to_iso(run.end_mjd_s)}); give the TP map of the same day or raise max_time_offset_h")

    def header_sun_pixel(self, tp_image: Path, mjd_s: float) -> tuple[float, float] | None:
        """Where the TP header puts the ephemeris Sun centre at the interferometric time."""
        from casatools import image

        from ..ephemeris import ephemeris_fields, position_at

        fields = ephemeris_fields(self.context.observing_run.vis)
        if not fields:
            return None
        ra, dec = position_at(fields[0].table, mjd_s)
        ia = image()
        ia.open(str(tp_image))
        try:
            cs = ia.coordsys()
            world = cs.referencevalue(format="n")["numeric"]
            axes = cs.findcoordinate("direction")["world"]
            units = cs.units()
            scale = {"rad": 1.0, "deg": 180 / math.pi, "arcsec": 180 / math.pi * 3600}
            world[axes[0]] = ra * scale[units[axes[0]]]
            world[axes[1]] = dec * scale[units[axes[1]]]
            pix = cs.topixel(world)["numeric"]
            cs.done()
        finally:
            ia.close()
        return float(pix[0]), float(pix[1])

    # -- act -----------------------------------------------------------------------
    def prepare(self) -> dict[str, Any]:
        from ..fitsio import casa_image_plane, write_kelvin_fits

        inp: FeatherInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        res = self.new_results()
        from .imaging import find_sun_image

        img = find_sun_image(self.context, inp.image, self.name)
        path = self.find_tp_map()
        res.decide("tp_map", str(path), "given" if inp.tp_map else "found beside the raw MS",
                   by="user" if inp.tp_map else "heuristic")
        base = Path(img["imagename"])
        name = f"{run.name}.s{self.stage}.sun.feather"
        out = Path(self.context.workdir) / name
        tp_image, tp = self.read_tp(path, name)
        self.check_tp(path, tp)

        # 2. the Sun in the TP map
        try:
            disc = hfeather.fit_disc(tp["data"])
        except ValueError as exc:
            raise BadInputError(f"hsol_feather: TP map {path}: {exc}") from exc
        tp_cdelt = tp["cdelt_arcsec"]
        from ..heuristics import solar_coords as hsun

        r_sun = hsun.solar_orientation(hsun.mjd_seconds_to_jd(img["mid_mjd_s"]))["radius_arcsec"]
        radius_ratio = float(disc["radius_px"] * abs(tp_cdelt[0]) / r_sun)
        res.decide("tp_sun_centre_px", [round(disc["cx"], 3), round(disc["cy"], 3)],
                   f"circle fitted to the half-brightness limb ({disc['n_limb_points']} points, rms "
                   f"{disc['limb_rms_px'] * abs(tp_cdelt[0]):.2f}\"); disc radius {radius_ratio:.3f} x the "
                   "optical radius")
        header_px = self.header_sun_pixel(tp_image, img["mid_mjd_s"])
        shift = tuple(float(v) for v in (hfeather.sun_centre_shift_arcsec((disc["cx"], disc["cy"]), header_px,
                                                                          tp_cdelt)
                                         if header_px else (float("nan"), float("nan"))))
        res.decide("tp_shift_arcsec", [round(shift[0], 2), round(shift[1], 2)],
                   "(east, north) shift of the TP map: fitted Sun centre minus the ephemeris Sun centre at the "
                   "interferometric mid-time placed by the TP header")

        # 3. quiet-Sun level
        centre_k = hfeather.disc_centre_brightness(tp["data"], disc["cx"], disc["cy"], disc["radius_px"])
        ref_k = inp.quiet_sun_k or hfeather.quiet_sun_reference_k(run.band)
        scale = 1.0
        if inp.rescale_quiet_sun:
            if not ref_k:
                raise BadInputError(f"hsol_feather: no quiet-Sun reference for Band {run.band}; give quiet_sun_k")
            scale = ref_k / centre_k
        res.decide("tp_scale", scale, (f"rescaled: quiet Sun at disc centre {centre_k:.0f} K -> {ref_k:.0f} K"
                                        if inp.rescale_quiet_sun else
                                        f"TP calibration kept (disc centre {centre_k:.0f} K)"),
                   by="user" if inp.rescale_quiet_sun else "default")

        # 4. regrid onto the interferometric grid (Sun frame), K -> Jy/beam of the TP beam
        intimg = casa_image_plane(f"{base}.image.pbcor")
        freq = intimg["freq_hz"]
        k_per_jyb_tp = himg.jy_per_beam_to_kelvin(freq, tp["bmaj"], tp["bmin"])
        tx, ty = hfeather.tp_pixels_for_image(intimg["data"].shape, intimg["refpix"], intimg["cdelt_arcsec"],
                                              tuple(img["centre_offset_arcsec"]), (disc["cx"], disc["cy"]),
                                              tp_cdelt)
        from scipy.ndimage import map_coordinates

        tp_k = map_coordinates(np.nan_to_num(tp["data"]) * scale, [tx, ty], order=3, mode="constant",
                               cval=np.nan)
        regrid, apparent, highres = Path(f"{out}.tp.regrid"), Path(f"{out}.tp.apparent"), Path(f"{base}.image")
        for p in (regrid, apparent, Path(f"{out}.image"), Path(f"{out}.image.pbcor")):
            if p.exists():
                shutil.rmtree(p)
        with self.casa.tool(f"TP map placed on {base.name}'s grid with its Sun centre on the image's Sun "
                            f"centre, x {scale:.4g}, K -> Jy/beam (TP beam): {regrid.name}"):
            write_like(f"{base}.image.pbcor", regrid, tp_k / k_per_jyb_tp, (tp["bmaj"], tp["bmin"], tp["bpa"]))
        self.casa.ship(regrid, "the TP map on the image grid, placed on the Sun centre by solarpipe")
        pb = f"{base}.pb"
        self.casa.task("immath", imagename=[str(regrid), pb], expr="IM0*IM1", outfile=str(apparent),
                       imagemd=str(regrid), _note="TP map x the interferometric primary beam (as the interferometer sees it)")
        if not highres.exists():  # a linear mosaic has no flat-noise image: make it from pbcor x response
            self.casa.task("immath", imagename=[f"{base}.image.pbcor", pb], expr="IM0*IM1", outfile=str(highres),
                           imagemd=f"{base}.image.pbcor", _note="mosaic image before primary-beam correction")
        self.casa.task("feather", imagename=f"{out}.image", highres=str(highres), lowres=str(apparent),
                       sdfactor=float(inp.sdfactor), _note="TP + interferometer in the uv-plane")
        self.casa.task("impbcor", imagename=f"{out}.image", pbimage=pb, outfile=f"{out}.image.pbcor",
                       cutoff=float(inp.pblimit), _note="primary-beam correction of the feathered image")
        products = Path(self.context.workdir) / "products"
        products.mkdir(exist_ok=True)
        fits_k = products / f"{name}.image.pbcor.K.hpc.fits"
        with self.casa.tool("write the kelvin / helioprojective FITS (solarpipe.fitsio)"):
            write_kelvin_fits(f"{out}.image.pbcor", fits_k, tuple(img["centre_offset_arcsec"]), img["mid_mjd_s"],
                              extra={"OBJECT": "Sun", "ORIGIN": "solarpipe hsol_feather",
                                     "TPMAP": Path(path).name[:68]})
        tp_fits = products / f"{name}.tp_regrid.fits"
        self.casa.task("exportfits", imagename=str(regrid), fitsimage=str(tp_fits), overwrite=True,
                       _note="the TP map on the interferometric grid (Jy/beam, TP beam)")
        # metrics: central brightness (K) of TP, interferometer only, feathered; overlap of scales
        feathered = casa_image_plane(f"{out}.image.pbcor")
        response = casa_image_plane(pb)["data"]
        k_int = himg.jy_per_beam_to_kelvin(freq, intimg["bmaj"], intimg["bmin"])
        central = (response >= 0.8) & np.isfinite(intimg["data"]) & np.isfinite(feathered["data"])
        means = {"tp_k": float(np.nanmean(tp_k[central])),
                 "interferometer_k": float(np.mean(intimg["data"][central]) * k_int),
                 "feathered_k": float(np.mean(feathered["data"][central]) * k_int)}
        uv_min = self.shortest_spacing_m()
        overlap = hfeather.overlap_amplitude_ratio(
            intimg["data"], tp_k / k_per_jyb_tp, abs(intimg["cdelt_arcsec"][0]), freq,
            (intimg["bmaj"], intimg["bmin"], intimg["bpa"]), (tp["bmaj"], tp["bmin"], tp["bpa"]), uv_min,
            weight=np.nan_to_num(response))
        entry = {"name": name, "kind": "feathered", "imagename": str(out), "fits_kelvin": str(fits_k),
                 "tp_regrid_fits": str(tp_fits), "pb_fits": img.get("pb_fits"), "source_image": img["name"],
                 "freq_hz": freq, "beam_arcsec": [intimg["bmaj"], intimg["bmin"], intimg["bpa"]],
                 "cell_arcsec": abs(intimg["cdelt_arcsec"][0]), "centre_offset_arcsec": img["centre_offset_arcsec"],
                 "mid_mjd_s": img["mid_mjd_s"], "tp_map": str(path),
                 "tp_beam_arcsec": [tp["bmaj"], tp["bmin"], tp["bpa"]], "tp_shift_arcsec": list(shift),
                 "tp_scale": scale, "tp_disc_centre_k": centre_k, "quiet_sun_reference_k": ref_k,
                 "tp_radius_ratio": radius_ratio, "central_mean": means, "overlap": overlap}
        return {"results": res, "image": entry,
                "profiles": {"interferometer": intimg["data"] * k_int, "feathered": feathered["data"] * k_int,
                             "tp": tp_k, "cell": abs(intimg["cdelt_arcsec"][0]),
                             "centre": (float(intimg["refpix"][0]), float(intimg["refpix"][1]))},
                "tp_plane": tp, "disc": disc}

    def shortest_spacing_m(self) -> float:
        """Shortest spatial frequency (m) with any interferometric response: the 2% shortest
        baseline less the largest dish diameter."""
        from .imaging import uv_lengths

        run = self.context.observing_run
        uv = uv_lengths(run.vis, field_id=run.sun_field_ids[0])
        dish = max(a.diameter_m for a in run.antennas)
        return max(1.0, float(np.percentile(uv, 2)) - dish) if uv.size else dish

    # -- results ---------------------------------------------------------------------
    def analyse(self, raw: dict[str, Any]) -> Results:
        from ..weblog import plots

        res = ImageResults(**vars(raw["results"]))
        res.images = [raw["image"]]
        img = raw["image"]
        res.summary["feathered"] = {k: v for k, v in img.items() if k != "imagename"}
        d = self.stage_dir
        made = plots.feather_plots(img, raw["tp_plane"], raw["disc"], raw["profiles"], d)
        made += plots.image_thumbnails(img, d)
        for path, cap in made:
            res.plots.append(Plot(str(Path(path).relative_to(d.parent)), cap, group=img["name"]))
        m = img["central_mean"]
        res.messages.append(f"central region (PB >= 0.8): TP {m['tp_k']:.0f} K, interferometer only "
                            f"{m['interferometer_k']:.0f} K, feathered {m['feathered_k']:.0f} K")
        return res

    def qa(self, results: Results) -> list[QAScore]:
        img = results.images[0]  # type: ignore[attr-defined]
        out = []
        ratio = img["overlap"]["ratio"]
        if not math.isfinite(ratio):
            out.append(QAScore(0.8, "TP and interferometer have no spatial scales in common",
                               f"The interferometer's shortest spacing ({img['overlap']['uv_range_m'][0]:.1f} m) is "
                               "beyond what the TP beam measures: the combination relies on the TP beam model; "
                               "7m (ACA) data close the gap.", metric_name="overlap_ratio", metric_value=None,
                               topic="imaging"))
        else:
            out.append(QAScore(1.0 if 0.4 <= ratio <= 1.6 else (0.7 if 0.25 <= ratio <= 2.5 else 0.4),
                               f"TP vs interferometer on common scales: ratio {ratio:.2f}",
                               "Sum of sky amplitudes (each image divided by its beam's transform) in the "
                               f"uv annulus {img['overlap']['uv_range_m'][0]:.1f}-{img['overlap']['uv_range_m'][1]:.1f} m "
                               "where both measure; about 1 when the flux scales agree. A coarse check (a single "
                               "field is about one TP beam wide, and the interferometer's response at its "
                               "shortest spacings is weak): 0.4-1.6 is accepted.",
                               metric_name="overlap_ratio", metric_value=ratio, topic="imaging"))
        shift = float(np.hypot(*img["tp_shift_arcsec"]))
        if math.isfinite(shift):
            tp_beam = img["tp_beam_arcsec"][0]
            out.append(QAScore(1.0 if shift <= tp_beam / 4 else 0.8,
                               f"TP map shifted by {shift:.1f}\" onto the Sun centre",
                               "Offset between the Sun centre fitted in the TP map and where its header puts the "
                               "ephemeris Sun at the interferometric time; corrected, but a large one points to a "
                               "TP pointing or header problem.", metric_name="tp_shift_arcsec", metric_value=shift,
                               topic="imaging"))
        rr = img["tp_radius_ratio"]
        out.append(QAScore(1.0 if abs(rr - 1.0) <= 0.05 else 0.4,
                           f"TP disc radius {rr:.3f} x the optical radius",
                           "The mm Sun is 1-2% larger than the optical one; far off means a wrong pixel scale "
                           "or not a full-disc map.", metric_name="tp_radius_ratio", metric_value=rr, topic="imaging"))
        ref = img["quiet_sun_reference_k"]
        if img["tp_scale"] != 1.0:
            out.append(QAScore(0.9, f"TP map rescaled by {img['tp_scale']:.3f} to the quiet-Sun reference {ref:.0f} K",
                               "The absolute scale comes from the reference brightness, not the TP calibration.",
                               metric_name="tp_scale", metric_value=img["tp_scale"], topic="imaging"))
        elif ref:
            dev = img["tp_disc_centre_k"] / ref - 1
            out.append(QAScore(1.0 if abs(dev) <= 0.1 else 0.6,
                               f"TP disc centre {img['tp_disc_centre_k']:.0f} K vs quiet-Sun reference {ref:.0f} K",
                               "More than 10% off: check the TP calibration, or rerun with rescale_quiet_sun=True.",
                               metric_name="tp_vs_quiet_sun", metric_value=dev, topic="imaging"))
        return out


def tp_zero_level_k(context, image_name: str) -> float | None:
    """The disc level (K) the interferometer misses in the Sun image ``image_name``, from the
    latest hsol_feather run on it (feathered minus interferometer-only central mean); None
    if it was not feathered."""
    f = next((i for i in reversed(context.images) if i.get("kind") == "feathered"
              and i.get("source_image") == image_name), None)
    if f is None:
        return None
    return float(f["central_mean"]["feathered_k"] - f["central_mean"]["interferometer_k"])


def write_like(template: str, out: Path, data_xy: np.ndarray, beam: tuple[float, float, float]) -> None:
    """A CASA image on ``template``'s grid holding ``data_xy`` (Jy/beam) with the given beam."""
    from casatools import image, quanta

    qa = quanta()
    ia = image()
    ia.fromimage(outfile=str(out), infile=template, overwrite=True)
    ia.close()
    ia.open(str(out))
    try:
        ia.maskhandler("delete", ia.maskhandler("get"))
        ia.putchunk(np.nan_to_num(data_xy)[:, :, None, None].astype(np.float32))
        ia.setbrightnessunit("Jy/beam")
        ia.setrestoringbeam(major=qa.quantity(beam[0], "arcsec"), minor=qa.quantity(beam[1], "arcsec"),
                            pa=qa.quantity(beam[2], "deg"))
    finally:
        ia.close()
