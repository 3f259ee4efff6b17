"""Imaging heuristics on hand-made numbers."""
import numpy as np
import pytest

from solarpipe.heuristics import imaging as h


def test_primary_beam_and_beam():
    assert h.primary_beam_fwhm_arcsec(100e9, 12.0) == pytest.approx(58.3, abs=0.5)
    assert h.primary_beam_fwhm_arcsec(239e9, 12.0) == pytest.approx(24.4, abs=0.3)
    beam = h.synthesized_beam_arcsec(np.full(10, 300.0), 100e9)
    assert beam == pytest.approx(2.06, abs=0.01)


def test_cell_fft_size_and_image_size():
    assert h.cell_arcsec(2.06) == pytest.approx(0.41)
    assert h.fast_fft_size(250) == 250 and h.fast_fft_size(251) == 256 and h.fast_fft_size(7) == 8
    for n in (97, 211, 333, 1001):
        m = h.fast_fft_size(n)
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        assert m >= n and k == 1 and m % 2 == 0
    single = h.image_size(0.4, 58.0)
    mosaic = h.image_size(0.4, 58.0, np.array([[0, 0], [30, 0], [-30, 0]]))
    assert single * 0.4 >= 2 * 58 and mosaic > single


def test_scales_kelvin_conversion():
    assert h.multiscale_scales(2.0, 0.4, 60.0) == [0, 5, 15, 45, 135]
    assert h.multiscale_scales(2.0, 0.4, 15.0) == [0, 5, 15]
    # 1 Jy/beam in a 2"x2" beam at 100 GHz: 13.6*9/4 = 30.6 K
    assert h.jy_per_beam_to_kelvin(100e9, 2.0, 2.0) == pytest.approx(30.6)
    # consistency: K -> Jy/pixel -> Jy/beam -> K with a Gaussian beam of area 1.1331 bmaj bmin
    cell, b = 0.2, 2.0
    jy_pix = h.kelvin_to_jy_per_pixel(100e9, cell)
    jy_beam = jy_pix * 1.1331 * b * b / cell ** 2
    assert jy_beam * h.jy_per_beam_to_kelvin(100e9, b, b) == pytest.approx(1.0, rel=0.01)


def test_channel_average_width_limits_bandwidth_smearing():
    # 64 x 31.25 MHz at 100 GHz, beam 2", edge 60": limit 0.1*2*100e9/60/31.25e6 = 10.7 channels -> 8
    assert h.channel_average_width(64, 31.25e6, 100e9, 2.0, 60.0) == 8
    assert h.channel_average_width(64, 31.25e6, 100e9, 0.2, 60.0) == 1  # tiny beam: no averaging
    assert h.channel_average_width(32, 31.25e6, 100e9, 20.0, 60.0) == 32  # divisor of nchan
    w = h.channel_average_width(48, 31.25e6, 100e9, 2.0, 60.0)
    assert 48 % w == 0 and w * 31.25e6 / 100e9 * 60.0 <= 0.1 * 2.0


def test_thermal_noise_and_threshold():
    assert h.thermal_image_noise(2.0, 40000) == pytest.approx(0.01)
    assert np.isnan(h.thermal_image_noise(2.0, 0))
    assert h.clean_threshold(0.01, 3.0) == pytest.approx(0.03)
    assert h.choose_gridder(1)[0] == "standard" and "linear" in h.choose_gridder(3)[1]


def test_standard_gridder_unless_the_heterogeneous_one_is_requested():
    gridder, why = h.choose_gridder(1, "auto", 2, 0.6)
    assert gridder == "standard" and "largest dish" in why and "requested" not in why
    assert h.choose_gridder(1, "auto", 1) == ("standard", "one pointing: standard gridder")
    gridder, why = h.choose_gridder(1, "mosaic", 2, 0.6)
    assert gridder == "mosaic" and "0.6" in why and "2 dish sizes" in why
    assert "requested" in h.choose_gridder(1, "standard", 2)[1]
    assert "linearly mosaicked" in h.choose_gridder(3, "auto", 2)[1]
    gridder, why = h.choose_gridder(3, "mosaic", 2)
    assert gridder == "standard" and "one pointing only" in why
    with pytest.raises(ValueError, match="awproject"):
        h.choose_gridder(1, "awproject")


def test_time_average_keeps_earth_rotation_smearing_below_a_tenth_of_the_beam():
    omega = 7.2921e-5
    t = h.time_average_s(2.0, 2.0, 90.0)
    assert t == 30.0  # the cap: the limit is 30.5 s
    t = h.time_average_s(2.0, 2.0, 300.0)
    assert t % 2.0 == 0 and t * omega * 300.0 <= 0.1 * 2.0 < (t + 2.0) * omega * 300.0
    assert h.time_average_s(2.0, 0.1, 300.0) == 2.0  # never below one integration


def test_linear_mosaic_recovers_a_flat_sky_and_masks_the_edge():
    shape = (101, 81)
    centres = h.pointing_pixels(np.array([[10.0, 0.0], [-10.0, 5.0]]), 50, 0.5)
    assert centres[0] == pytest.approx((30.0, 50.0)) and centres[1] == pytest.approx((70.0, 60.0))
    pbs = [h.gaussian_pb(shape, c, 40.0) for c in centres]
    sky_true = np.full(shape, 7.0)
    apparent = [sky_true * pb for pb in pbs]
    sky, response = h.linear_mosaic(apparent, pbs, pblimit=0.2)
    ok = np.isfinite(sky)
    assert ok.sum() > 1000 and np.allclose(sky[ok], 7.0)
    assert (response[~ok] < 0.2).all() and response.max() <= np.sqrt(2) + 1e-9


def test_single_pointing_scales_step_finer_and_stop_at_the_clean_mask():
    # small EB, Band 3: beam 3.4", cell 0.67", shortest baselines see 31", PB >= 0.6 radius 25"
    radius = h.mask_radius_arcsec(58.0, 0.6)
    assert radius == pytest.approx(24.9, abs=0.1)
    assert h.multiscale_scales(3.39, 0.67, min(31.5, radius), beams=h.POINTING_SCALE_BEAMS) == [0, 5, 15, 30]
    assert h.multiscale_scales(3.39, 0.67, 14.0) == [0, 5, 15]  # the standard gridder's ladder
    assert h.multiscale_scales(3.39, 0.67, 2.0) == [0]


def test_clean_failure_from_the_summary():
    assert h.clean_failure(10000, 1, 10000) is None  # the iteration cap: not a failure
    assert h.clean_failure(2500, 8, 10000) is None  # nsigma reached
    assert "0 iterations" in h.clean_failure(0, 8, 10000)
    assert "for niter" in h.clean_failure(7_000_000, 1, 10000)
    assert "stuck" in h.clean_failure(384, 4, 10000)  # measured in a CI run on the tiny EB
    assert "diverged" in h.clean_failure(3000, 6, 10000)
