"""hsol_feather on the `small` simulated EB with its TP map (issue 9).

The shared `small_calimage` run (tests/sim_fixtures.py) ends with hsol_feather
(recipe hsol_solar), with the simulator's TP map found beside the raw MS. The
offset and wrong-band/date cases run hsol_feather again on the same context with
a doctored copy of the TP map.
"""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def stage_of(ctx, task):
    return next(s for s in reversed(ctx.stages) if s.task == task)


def central_means(eb, fits_path, pb_fits, pb_min=0.8):
    """Mean brightness (K) of an image and of the beam-convolved truth where PB >= pb_min."""
    from astropy.io import fits

    from solarpipe.simulate.truth import truth_on_helioprojective_image

    model, data = truth_on_helioprojective_image(eb.truth, fits_path)
    pb = np.squeeze(fits.getdata(pb_fits))
    sel = (pb >= pb_min) & np.isfinite(data)
    return float(data[sel].mean()), float(model[sel].mean())


def test_feathered_image_has_the_true_brightness_temperature(small_calimage):
    eb, ctx = small_calimage
    stage = stage_of(ctx, "hsol_feather")
    assert stage.status == "ok" and stage.params == {}
    feathered = next(i for i in ctx.images if i["kind"] == "feathered")
    sun = next(i for i in ctx.images if i["kind"] == "sun")
    mean_f, truth = central_means(eb, feathered["fits_kelvin"], sun["pb_fits"])
    mean_i, _ = central_means(eb, sun["fits_kelvin"], sun["pb_fits"])
    err_f, err_i = mean_f / truth - 1, mean_i / truth - 1
    print(f"central region (PB >= 0.8): truth {truth:.0f} K, feathered {mean_f:.0f} K ({err_f:+.1%}), "
          f"interferometer only {mean_i:.0f} K ({err_i:+.1%})")
    assert abs(err_f) <= 0.05
    assert abs(err_i) >= 0.5  # the interferometer alone misses the disc
    decided = {d["name"]: d for d in stage.results["decisions"]}
    assert {"tp_map", "tp_sun_centre_px", "tp_shift_arcsec", "tp_scale"} <= set(decided)
    assert decided["tp_scale"]["value"] == 1.0
    metrics = {q["metric_name"] for q in stage.results["qa"]}
    assert {"overlap_ratio", "tp_shift_arcsec", "tp_radius_ratio", "tp_vs_quiet_sun"} <= metrics
    pngs = " ".join(p["path"] for p in stage.results["plots"])
    assert "_tp_map.png" in pngs and "_radial.png" in pngs and "_uv_overlap.png" in pngs


def test_feathered_fits_opens_in_sunpy_in_kelvin(small_calimage):
    import warnings

    import astropy.units as u
    import sunpy.map

    _, ctx = small_calimage
    feathered = next(i for i in ctx.images if i["kind"] == "feathered")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smap = sunpy.map.Map(feathered["fits_kelvin"])
    assert smap.unit == u.K and smap.coordinate_frame.name == "helioprojective"


def doctored_tp_map(src, dst, shift_east_arcsec=0.0, freq_hz=None, days=0.0):
    """A copy of a TP FITS map with its content moved east (the header unchanged, so the
    header now misplaces the Sun), or its frequency / date changed."""
    import datetime as dt

    from astropy.io import fits
    from scipy.ndimage import shift as nd_shift

    with fits.open(src) as hdul:
        hdr = hdul[0].header.copy()
        data = np.asarray(hdul[0].data, float)
    if shift_east_arcsec:
        # FITS axis 1 is RA with a negative increment: east is towards lower x
        dx = -shift_east_arcsec / (abs(hdr["CDELT1"]) * 3600)
        data = nd_shift(data, [0] * (data.ndim - 1) + [dx], order=3, mode="constant")
    if freq_hz:
        hdr["CRVAL3"] = freq_hz
        hdr["RESTFRQ"] = freq_hz
    if days:
        t = dt.datetime.fromisoformat(hdr["DATE-OBS"]) + dt.timedelta(days=days)
        hdr["DATE-OBS"] = t.isoformat()
    fits.PrimaryHDU(data=data.astype(np.float32), header=hdr).writeto(dst, overwrite=True)
    return dst


def test_offset_tp_map_is_brought_back_onto_the_sun(small_calimage, tmp_path):
    """A TP map whose Sun sits 20" east of where its header says: the fitted centre finds
    the Sun within a quarter of the interferometric beam of its true place, and the map
    on the image grid matches the one from the correct TP map."""
    from astropy.io import fits

    from solarpipe.interactive import hsol_feather

    eb, ctx = small_calimage
    feathered = next(i for i in ctx.images if i["kind"] == "feathered")
    reference = stage_of(ctx, "hsol_feather").results
    shifted = doctored_tp_map(eb.tp_map_fits, tmp_path / "tp_offset.fits", shift_east_arcsec=20.0)
    res = hsol_feather(workdir=ctx.workdir, tp_map=str(shifted))
    d0 = {d["name"]: d["value"] for d in reference["decisions"]}
    d1 = {d["name"]: d["value"] for d in res["decisions"]}
    cdelt = abs(fits.getheader(eb.tp_map_fits)["CDELT1"]) * 3600
    # the fitted Sun centre moved with the content: 20" east = 20/cdelt pixels towards lower x
    moved = np.array(d1["tp_sun_centre_px"]) - np.array(d0["tp_sun_centre_px"])
    err = float(np.hypot(moved[0] * cdelt + 20.0, moved[1] * cdelt))
    beam = float(np.sqrt(feathered["beam_arcsec"][0] * feathered["beam_arcsec"][1]))
    shift = np.array(d1["tp_shift_arcsec"]) - np.array(d0["tp_shift_arcsec"])
    print(f"reported shift {d1['tp_shift_arcsec']}\" (correct map {d0['tp_shift_arcsec']}\"); Sun centre error "
          f"after correction {err:.3f}\", beam/4 = {beam / 4:.2f}\"")
    assert err <= beam / 4
    assert shift[0] == pytest.approx(20.0, abs=beam / 4) and abs(shift[1]) <= beam / 4
    # the TP map on the interferometric grid is the same as from the correct map
    new = res["summary"]["feathered"]
    assert new["tp_regrid_fits"] != feathered["tp_regrid_fits"]
    a = np.squeeze(fits.getdata(feathered["tp_regrid_fits"]))
    b = np.squeeze(fits.getdata(new["tp_regrid_fits"]))
    assert np.nanmax(np.abs(b - a)) <= 0.01 * np.nanmax(np.abs(a))


@pytest.mark.parametrize("change,message", [({"freq_hz": 230e9}, "Band 6"), ({"days": 3.0}, "more than 12 h")])
def test_wrong_band_or_date_gives_a_clear_error(small_calimage, tmp_path, change, message):
    from solarpipe.errors import BadInputError
    from solarpipe.interactive import hsol_feather

    eb, ctx = small_calimage
    bad = doctored_tp_map(eb.tp_map_fits, tmp_path / "tp_bad.fits", **change)
    with pytest.raises(BadInputError, match=message) as exc:
        hsol_feather(workdir=ctx.workdir, tp_map=str(bad))
    assert "tp_bad.fits" in str(exc.value)
    print(exc.value)


def test_rescale_to_the_quiet_sun_reference(small_calimage, tmp_path):
    """A TP map 20% too faint, rescaled to the quiet-Sun level the simulator used (7000 K
    in Band 3), feathers to the same image as the correct map."""
    from astropy.io import fits

    from solarpipe.interactive import hsol_feather

    eb, ctx = small_calimage
    faint = tmp_path / "tp_faint.fits"
    with fits.open(eb.tp_map_fits) as hdul:
        fits.PrimaryHDU(data=(hdul[0].data * 0.8).astype(np.float32), header=hdul[0].header).writeto(faint)
    res = hsol_feather(workdir=ctx.workdir, tp_map=str(faint), rescale_quiet_sun=True, quiet_sun_k=7000.0)
    scale = next(d["value"] for d in res["decisions"] if d["name"] == "tp_scale")
    assert scale == pytest.approx(1.25, rel=0.01)
    assert any(q["metric_name"] == "tp_scale" for q in res["qa"])
