"""hsol_imaging on simulated EBs with a known Sun (issue 7).

The `small` EB (single pointing, 12m+7m, noise, bad data) goes through
hsol_solar (the calibration chain, imaging, feather) once per session; a tiny
3-pointing mosaic EB goes through the same recipe. No imaging parameter is given
by hand. The mosaic is imaged pointing by pointing and combined linearly (the joint
mosaic gridder diverged on these data, see heuristics.imaging.choose_gridder):
correlation 0.58 measured.

The small EB's single pointing: standard gridder, clean mask inside PB >= 0.6,
scales 0, 1, 3, 6 beams. Measured: correlation of the pb-corrected image with the
truth convolved with the restoring beam (disc mean removed, inside the 50% primary
beam response) 0.95. With the mask at PB >= 0.3 (the default until session 6) it was
0.57: clean put unconstrained large-scale blobs near the mask's edge. The
heterogeneous-array gridder on request gives 0.82 (its own mask at PB 0.6; it
diverged at 0.3 and 0.5).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def sun_image(ctx):
    return next(i for i in ctx.images if i["kind"] == "sun")


def truth_vs_image(eb, img):
    from solarpipe.simulate.truth import image_truth_correlation

    return image_truth_correlation(eb.truth, img["fits_kelvin"], img["pb_fits"])


def test_imaging_stage_ran_with_decided_parameters(small_calimage):
    eb, ctx = small_calimage
    stage = next(s for s in ctx.stages if s.task == "hsol_imaging")
    assert stage.task == "hsol_imaging" and stage.status == "ok" and stage.params == {}
    decided = {d["name"]: d for d in stage.results["decisions"]}
    for name in ("width", "cell", "imsize", "scales", "gridder", "expected_rms_jy", "threshold_jy", "niter",
                 "phasecenter", "calibrator_images"):
        assert name in decided and decided[name]["reason"], name
    assert decided["gridder"]["value"] == "standard" and decided["gridder"]["by"] == "heuristic"
    assert decided["pbmask"]["value"] == 0.6 and "timebin_s" not in decided
    assert decided["scales"]["value"][-1] > 15  # a scale for the ~20" plage
    img = sun_image(ctx)
    # cell ~ beam / 5 of the restored beam's minor axis (within a factor 1.5), image covers >= 2 x PB FWHM
    assert 0.5 < img["beam_arcsec"][1] / 5 / img["cell_arcsec"] < 1.5
    assert img["imsize"] * img["cell_arcsec"] >= 2 * 58.0
    print("Sun image:", {k: img[k] for k in ("peak_jy", "rms_jy", "expected_rms_jy", "dynamic_range",
                                             "beam_arcsec", "tclean")})
    topics = {q["metric_name"] for q in stage.results["qa"]}
    assert {"stopcode", "rms_over_expected", "flux_ratio", "dynamic_range"} <= topics
    pngs = [p["path"] for p in stage.results["plots"]]
    assert any("image_pbcor" in p for p in pngs) and any("residual" in p for p in pngs) and any("_pb" in p for p in pngs)


def test_sun_image_correlates_with_the_truth(small_calimage):
    eb, ctx = small_calimage
    r = truth_vs_image(eb, sun_image(ctx))
    corr = r["corr"]
    print(f"correlation with the beam-convolved truth inside the 50% PB: {corr:.3f} "
          f"(image std {r['image_std_k']:.0f} K, truth std {r['truth_std_k']:.0f} K; issue goal 0.9, see module doc)")
    assert corr >= 0.9


def test_compact_feature_position_from_the_sunpy_map(small_calimage):
    """The umbra (the strongest compact feature) in helioprojective coordinates read
    with sunpy, against its true position: within a quarter of the beam."""
    import astropy.units as u
    import sunpy.map

    eb, ctx = small_calimage
    img = sun_image(ctx)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # opens without any warning
        smap = sunpy.map.Map(img["fits_kelvin"])
    assert smap.unit == u.K and smap.coordinate_frame.name == "helioprojective"
    assert smap.meta["telescop"] == "ALMA" and smap.meta["bunit"] == "K"
    assert smap.dsun.to_value(u.au) == pytest.approx(eb.truth["sun"]["distance_au"], rel=1e-3)
    data = np.squeeze(smap.data)
    ny, nx = data.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    world = smap.pixel_to_world(xx * u.pix, yy * u.pix)
    tx, ty = world.Tx.to_value(u.arcsec), world.Ty.to_value(u.arcsec)
    beam = float(np.sqrt(smap.meta["bmaj"] * smap.meta["bmin"])) * 3600
    umbra = next(f for f in eb.truth["features"] if f["kind"] == "umbra")
    near = (np.hypot(tx - umbra["x_arcsec"], ty - umbra["y_arcsec"]) < umbra["size_arcsec"]) & np.isfinite(data)
    k = np.argmin(np.where(near, data, np.inf))
    # sub-pixel position: brightness-weighted centroid of the darkest pixels around the minimum
    deep = near & (np.hypot(tx - tx.flat[k], ty - ty.flat[k]) < beam) & (data < 0.5 * (data.flat[k] + np.median(data[near])))
    w = np.median(data[near]) - data[deep]
    x, y = float((w * tx[deep]).sum() / w.sum()), float((w * ty[deep]).sum() / w.sum())
    err = float(np.hypot(x - umbra["x_arcsec"], y - umbra["y_arcsec"]))
    print(f"umbra at ({x:.2f}, {y:.2f})\" helioprojective, true ({umbra['x_arcsec']}, {umbra['y_arcsec']}): "
          f"error {err:.2f}\", beam/4 = {beam / 4:.2f}\"")
    assert err <= beam / 4


def test_calibrator_images_give_the_true_flux(small_calimage):
    eb, ctx = small_calimage
    cals = [i for i in ctx.images if i["kind"] == "calibrator"]
    assert cals
    for img in cals:
        c = eb.truth["calibrators"][img["field"]]
        true = c["flux_jy"] * (img["freq_hz"] / c["ref_freq_hz"]) ** c["spectral_index"]
        print(f"{img['field']} ({c['role']}): image peak {img['peak_jy']:.4f} Jy, true {true:.4f} Jy, "
              f"ratio {img['peak_jy'] / true:.4f}, dynamic range {img['dynamic_range']:.0f}")
        assert img["peak_jy"] == pytest.approx(true, rel=0.03)


def test_mosaic_images_without_parameters(sim_eb_factory, tmp_path_factory):
    from astropy.io import fits

    from solarpipe.context import Context
    from solarpipe.recipe import load_recipe
    from solarpipe.runner import new_context, run_recipe

    eb = sim_eb_factory(size="tiny", mosaic=3, noise=True, bad_data=False, n_ant_12m=10, n_ant_7m=2)
    wd = tmp_path_factory.mktemp("calimage_mosaic")
    run_recipe(load_recipe("hsol_calimage"), new_context(wd), vis=str(eb.ms))
    ctx = Context.load(wd)
    stage = ctx.stages[-1]
    assert stage.task == "hsol_imaging" and stage.status == "ok" and stage.params == {}
    decided = {d["name"]: d for d in stage.results["decisions"]}
    assert decided["gridder"]["value"] == "standard" and "linearly mosaicked" in decided["gridder"]["reason"]
    img = sun_image(ctx)
    data = np.squeeze(fits.getdata(img["fits_kelvin"]))
    pb = np.squeeze(fits.getdata(img["pb_fits"]))
    assert np.isfinite(data[pb >= 0.5]).all() and (pb >= 0.5).sum() > 1000
    corr = truth_vs_image(eb, img)["corr"]
    print(f"mosaic ({eb.truth['n_pointings']} pointings): imsize {img['imsize']} x {img['cell_arcsec']}\", "
          f"correlation with the truth {corr:.3f}")
    assert corr >= 0.5


def test_heterogeneous_gridder_on_request(small_calimage, tmp_path):
    """gridder='mosaic' (a primary beam per antenna pair for the 12m+7m array, time-averaged
    copy, the same clean mask inside PB >= 0.6) images the same calibrated small EB;
    measured 0.82 against the default standard gridder's 0.95."""
    from solarpipe.context import Context
    from solarpipe.runner import run_stage

    eb, shared = small_calimage
    ctx = Context.load(shared.workdir)
    ctx.workdir = str(tmp_path)  # a separate run reading the shared calibrated MS: the shared run is unchanged
    rec = run_stage(ctx, "hsol_imaging", {"targets": "sun", "gridder": "mosaic"})
    assert rec.status == "ok"
    decided = {d["name"]: d for d in rec.results["decisions"]}
    assert decided["gridder"]["value"] == "mosaic" and decided["gridder"]["by"] == "user"
    assert decided["timebin_s"]["value"] >= 10.0
    img = ctx.images[-1]
    assert img["kind"] == "sun" and img["gridder"] == "mosaic" and img["timebin_s"] >= 10.0
    # the full-resolution imaging MS (what selfcal and tdimaging use) is the one recorded
    assert img["tclean_params"]["pbmask"] == 0.6 and Path(img["vis"]).parent == tmp_path
    assert ".t" not in Path(img["vis"]).name and Path(img["vis"]).exists()
    corr_joint = truth_vs_image(eb, img)["corr"]
    corr_default = truth_vs_image(eb, sun_image(shared))["corr"]
    print(f"correlation with the truth: mosaic gridder {corr_joint:.3f}, standard gridder {corr_default:.3f} "
          f"(tclean {img['tclean']})")
    assert corr_joint >= 0.75 and corr_default >= corr_joint + 0.05
