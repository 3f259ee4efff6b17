"""heuristics.feather: the Sun's centre in a TP map, placing the TP map on an image grid,
the TP/interferometer overlap ratio, quiet-Sun references (no CASA)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from solarpipe.heuristics import feather as hf


def tp_like(n=201, cx=97.3, cy=104.6, radius=70.0, beam_px=8.0, level=7000.0, features=True):
    """A beam-smoothed disc (K) with a bright plage and a dark umbra off centre."""
    x = np.arange(n)[:, None] - cx
    y = np.arange(n)[None, :] - cy
    t = np.where(np.hypot(x, y) <= radius, level, 0.0)
    if features:
        t += 3000 * np.exp(-0.5 * ((x - 30) ** 2 + (y + 20) ** 2) / 4.0 ** 2)  # plage
        t -= 2500 * np.exp(-0.5 * ((x + 50) ** 2 + (y - 30) ** 2) / 3.0 ** 2)  # umbra near the limb
    return gaussian_filter(t, beam_px / 2.3548)


@pytest.mark.parametrize("cx,cy", [(97.3, 104.6), (110.0, 90.25)])
def test_fit_disc_finds_the_centre_to_a_small_fraction_of_a_pixel(cx, cy):
    fit = hf.fit_disc(tp_like(cx=cx, cy=cy))
    assert fit["cx"] == pytest.approx(cx, abs=0.05) and fit["cy"] == pytest.approx(cy, abs=0.05)
    assert fit["radius_px"] == pytest.approx(70.0, rel=0.02)
    assert fit["disc_level"] == pytest.approx(7000.0, rel=0.02)


def test_fit_disc_refuses_a_map_without_a_disc():
    with pytest.raises(ValueError, match="disc"):
        hf.fit_disc(np.zeros((50, 50)))


def test_disc_centre_brightness_ignores_a_small_feature():
    t = tp_like(features=False)
    t2 = t + 2000 * np.exp(-0.5 * ((np.arange(201)[:, None] - 99) ** 2 + (np.arange(201)[None, :] - 104) ** 2) / 2.0 ** 2)
    assert hf.disc_centre_brightness(t2, 97.3, 104.6, 70.0) == pytest.approx(7000.0, rel=0.01)


def test_tp_pixels_place_both_maps_in_the_sun_frame():
    # image: 64 px of 0.5", reference pixel (32, 32) lies 100" east, 50" north of the Sun centre;
    # TP map: 6" pixels, Sun centre at (150.2, 140.7)
    tx, ty = hf.tp_pixels_for_image((64, 64), np.array([32.0, 32.0]), np.array([-0.5, 0.5]), (100.0, 50.0),
                                    (150.2, 140.7), np.array([-6.0, 6.0]))
    assert tx.shape == ty.shape == (64, 64)
    assert tx[32, 32] == pytest.approx(150.2 - 100 / 6) and ty[32, 32] == pytest.approx(140.7 + 50 / 6)
    # one image pixel to +x goes 0.5" west: the TP x coordinate grows by 0.5/6
    assert tx[33, 32] - tx[32, 32] == pytest.approx(0.5 / 6) and ty[32, 33] - ty[32, 32] == pytest.approx(0.5 / 6)


def test_shift_from_fitted_and_header_centres():
    assert hf.sun_centre_shift_arcsec((10.0, 20.0), (12.0, 20.5), np.array([-6.0, 6.0])) == (12.0, -3.0)


def test_overlap_ratio_is_one_for_the_same_sky_and_scales_with_flux():
    rng = np.random.default_rng(1)
    n, cell = 256, 1.0
    sky = gaussian_filter(rng.normal(size=(n, n)), 6.0) * 50 + 7000  # K-like, structure on all scales
    freq = 100e9

    def observe(beam):  # Jy/beam image of the sky with a Gaussian beam (beam area normalised)
        return gaussian_filter(sky, beam / 2.3548 / cell) * (beam / cell) ** 2

    x = np.arange(n)[:, None] - n / 2
    pb = np.exp(-4 * math.log(2) * (x * x + x.T * x.T) / 60.0 ** 2)  # both seen through one primary beam
    res = hf.overlap_amplitude_ratio(observe(3.0), observe(60.0), cell, freq, (3.0, 3.0, 0.0), (60.0, 60.0, 0.0),
                                     uv_min_m=1.0, weight=pb)
    # a coarse check: weighting by the primary beam after (TP) or before (interferometer) the beam
    # smoothing differs on these scales (the field is about one TP beam wide): 1.3 for identical skies
    assert res["n_cells"] > 10 and 0.7 < res["ratio"] < 1.5
    res2 = hf.overlap_amplitude_ratio(0.5 * observe(3.0), observe(60.0), cell, freq, (3.0, 3.0, 0.0),
                                      (60.0, 60.0, 0.0), uv_min_m=1.0, weight=pb)
    assert res2["ratio"] == pytest.approx(0.5 * res["ratio"], rel=1e-6)
    assert len(res["profile"]["uv_m"]) == 20


def test_quiet_sun_reference_and_time_window():
    assert hf.quiet_sun_reference_k(3) == 7300.0 and hf.quiet_sun_reference_k(6) == 5900.0
    assert hf.quiet_sun_reference_k(7) is None and hf.quiet_sun_reference_k(7, {7: 5500.0}) == 5500.0
    assert hf.time_offset_ok(100.0, 0.0, 3600.0, 1.0)
    assert hf.time_offset_ok(3600.0 + 3599.0, 0.0, 3600.0, 1.0)
    assert not hf.time_offset_ok(3600.0 + 3 * 3600.0, 0.0, 3600.0, 1.0)


def test_radial_profile_of_a_flat_image():
    r, m = hf.radial_profile(np.full((40, 40), 5.0), (20.0, 20.0), 1.0, 4.0)
    assert np.allclose(m[np.isfinite(m)], 5.0) and r[0] == 2.0 and math.isfinite(m[0])
