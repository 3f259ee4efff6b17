"""hsol_selfcal and hsol_tdimaging on a tiny EB with residual antenna phase errors and
a brightening of known light curve (issue 8).

The simulator adds fast antenna phase errors (30 deg rms, 30 s time scale) that the
phase-calibrator cycle cannot follow, and a brightening whose light curve is known.
The EB goes through hsol_calimage, then hsol_selfcal, then hsol_tdimaging at a 10 s
cadence (the default, one integration, is tested on the decision only: it would
make ~120 frames). Measured numbers are printed and quoted in README.md.
"""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def tdimaged(sim_eb_factory, tmp_path_factory):
    from solarpipe.context import Context
    from solarpipe.recipe import load_recipe
    from solarpipe.runner import new_context, run_recipe, run_stage

    eb = sim_eb_factory(size="tiny", noise=True, bad_data=False, time_variable=True, phase_noise_rms_deg=30.0,
                        n_ant_12m=10, n_ant_7m=2)
    wd = tmp_path_factory.mktemp("tdimaging")
    ctx = new_context(wd)
    run_recipe(load_recipe("hsol_calimage"), ctx, vis=str(eb.ms))
    run_stage(ctx, "hsol_selfcal", {})
    run_stage(ctx, "hsol_tdimaging", {"cadence_s": 10.0})
    return eb, Context.load(wd)


def correlation_with_truth(eb, img):
    from astropy.io import fits

    from solarpipe.simulate.truth import truth_on_helioprojective_image

    model, data = truth_on_helioprojective_image(eb.truth, img["fits_kelvin"])
    pb = np.squeeze(fits.getdata(img["pb_fits"]))
    sel = (pb >= 0.5) & np.isfinite(data)
    a, b = data[sel] - data[sel].mean(), model[sel] - model[sel].mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_selfcal_improves_the_image(tdimaged):
    eb, ctx = tdimaged
    stage = next(s for s in ctx.stages if s.task == "hsol_selfcal")
    assert stage.status == "ok"
    before = next(i for i in ctx.images if i["kind"] == "sun" and "selfcal" not in i["name"])
    after = next(i for i in ctx.images if i["kind"] == "sun" and i.get("selfcal_of") == before["name"])
    c0, c1 = correlation_with_truth(eb, before), correlation_with_truth(eb, after)
    its = stage.results["summary"]["iterations"]
    for it in its:
        print(f"step {it['step']} solint {it['solint']}: rms {it['rms_before_jy']:.4f} -> {it['rms_after_jy']:.4f} "
              f"Jy/beam, contrast {it['contrast_before']:.4f} -> {it['contrast_after']:.4f}, failed "
              f"{it['failed_fraction']:.0%}, {'kept' if it['accepted'] else 'rejected'}: {it['why']}")
    print(f"correlation with the truth {c0:.3f} -> {c1:.3f}; residual rms {before['rms_jy']:.4f} -> "
          f"{after['rms_jy']:.4f} Jy/beam ({after['rms_jy'] / before['rms_jy'] - 1:+.0%})")
    # measured (standard gridder, clean mask at PB 0.6, the 4 SPWs solved together, residual
    # rms inside the mask): all four steps (scan, 60 s, 20 s, integration) kept, correlation
    # 0.736 -> 0.765 (0.786 for the same EB without phase noise), residual rms -5.5%
    assert c1 >= c0 + 0.015
    assert after["rms_jy"] <= 0.97 * before["rms_jy"]
    assert any(it["accepted"] and it["solint"] in ("20s", "int") for it in its)  # short steps kept too
    assert its[0]["solint"] == "inf" and all(k in its[0] for k in ("contrast_after", "median_snr", "why"))
    assert any("selfcal_solutions" in p["path"] for p in stage.results["plots"])


def cube_of(ctx):
    return next(i for i in ctx.images if i["kind"] == "sun_frames")


def test_light_curve_from_the_cube_follows_the_truth(tdimaged):
    from astropy.io import fits
    from astropy.wcs import WCS

    from solarpipe.simulate.truth import light_curve_from_truth

    eb, ctx = tdimaged
    stage = ctx.stages[-1]
    assert stage.task == "hsol_tdimaging" and stage.status == "ok"
    assert "selfcal" in stage.results["summary"]["source_image"]  # the frames use the self-calibrated data
    frames = stage.results["summary"]["frames"]
    with fits.open(cube_of(ctx)["fits_kelvin"]) as hdul:
        data = hdul[0].data[:, 0, 0]  # [time, y, x]
        wcs = WCS(hdul[0].header).celestial
        times = hdul["TIMEVAR"].data[3]
    feat = next(f for f in eb.truth["features"] if f["variable"])
    px, py = wcs.world_to_pixel_values(feat["x_arcsec"] / 3600.0, feat["y_arcsec"] / 3600.0)
    ny, nx = data.shape[1:]
    yy, xx = np.mgrid[0:ny, 0:nx]
    cell = abs(wcs.wcs.cdelt[0]) * 3600
    near = np.hypot(xx - px, yy - py) * cell <= feat["size_arcsec"] / 2
    assert near.sum() > 5
    measured = np.array([np.nanmean(frame[near]) for frame in data])
    light = light_curve_from_truth(eb.truth)
    true = np.array([np.mean(light(np.linspace(f["start_mjd_s"], f["end_mjd_s"], 11))) for f in frames])
    corr = float(np.corrcoef(measured, true)[0, 1])
    print(f"{len(frames)} frames; brightening at ({feat['x_arcsec']}, {feat['y_arcsec']})\" amplitude "
          f"{feat['amplitude_K']} K: measured light curve range {measured.min():.0f}..{measured.max():.0f} K; "
          f"correlation with the truth {corr:.3f}")
    assert corr >= 0.9
    assert np.allclose(times, [(f["mid_mjd_s"] % 86400.0) for f in frames], atol=1e-3)


def test_cube_follows_the_salsa_layout(tdimaged):
    from astropy.io import fits

    _, ctx = tdimaged
    frames = ctx.stages[-1].results["summary"]["frames"]
    with fits.open(cube_of(ctx)["fits_kelvin"]) as hdul:
        h = hdul[0].header
        assert h["NAXIS"] == 5 and h["NAXIS5"] == len(frames) and h["NAXIS3"] == 1 and h["NAXIS4"] == 1
        assert (h["CTYPE1"], h["CTYPE2"], h["CTYPE3"], h["CTYPE4"], h["CTYPE5"]) == (
            "HPLN-TAN", "HPLT-TAN", "FREQ", "STOKES", "TIME")
        assert h["BUNIT"] == "K" and h["TELESCOP"] == "ALMA" and "DSUN_OBS" in h and "DATE-OBS" in h
        data = hdul[0].data
        assert data.shape == (len(frames), 1, 1, h["NAXIS2"], h["NAXIS1"])
        assert np.isnan(data[0, 0, 0, 0, 0]) and np.isfinite(data[0, 0, 0, h["NAXIS2"] // 2, h["NAXIS1"] // 2])
        tv = hdul["TIMEVAR"]
        assert tv.data.shape == (4, len(frames)) and tv.header["ROW3"].startswith("TIME")
        bmaj_arcsec = tv.data[0] * 3600
        assert np.all((bmaj_arcsec > 0.5) & (bmaj_arcsec < 30)) and np.all(tv.data[1] <= tv.data[0])
        steps = hdul["PRPARA"].data
        assert list(steps["TASK"][:2]) == ["hsol_importdata", "hsol_flagdata"] and steps["TASK"][-1] == "hsol_tdimaging"


def test_frames_ranked_and_gaps_found(tdimaged):
    _, ctx = tdimaged
    stage = ctx.stages[-1]
    s = stage.results["summary"]
    assert sorted(s["ranking"]["order"]) == list(range(len(s["frames"])))
    assert s["failed_fraction"] == 0.0
    assert len(s["gaps"]) >= 1  # the calibrator scan between the two science scans
    decided = {d["name"]: d for d in stage.results["decisions"]}
    assert decided["cadence_s"]["value"] == 10.0 and decided["gridder"]["value"] == "standard"
    assert {q["metric_name"] for q in stage.results["qa"]} >= {"failed_fraction", "rms_spread"}
    assert any("_strip.png" in p["path"] for p in stage.results["plots"])
    log = (ctx.workdir and open(f"{ctx.workdir}/casa_commands.log").read())
    assert "for k, (timerange, threshold) in enumerate(frames):" in log
