"""Imaging heuristics (pure): beam, cell, image size, scales, thresholds, kelvin.

All in SI / arcsec; the imaging task gathers uv extents, frequencies, dish
sizes and mosaic offsets, asks these functions, and records every answer.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

C = 299792458.0
ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
PB_FACTOR = 1.13  # FWHM = 1.13 lambda / D (ALMA 12m); 7m ~ 1.71 x the 12m beam


def primary_beam_fwhm_arcsec(freq_hz: float, dish_m: float) -> float:
    """Primary-beam FWHM of a dish at a frequency."""
    return PB_FACTOR * C / freq_hz / dish_m * ARCSEC_PER_RAD


def synthesized_beam_arcsec(uv_lengths_m: Sequence[float], freq_hz: float, quantile: float = 0.9) -> float:
    """Rough synthesized-beam FWHM from the uv coverage (natural-ish weighting):
    lambda / (a high quantile of the projected baseline lengths)."""
    uv = np.asarray(uv_lengths_m, float)
    uv = uv[uv > 0]
    if uv.size == 0:
        raise ValueError("no baselines to predict a beam from")
    b = float(np.quantile(uv, quantile))
    return C / freq_hz / b * ARCSEC_PER_RAD


def cell_arcsec(beam_arcsec: float, pixels_per_beam: float = 5.0) -> float:
    """Cell of beam/5, rounded down to 2 significant digits (a readable value)."""
    raw = beam_arcsec / pixels_per_beam
    digits = -int(math.floor(math.log10(raw))) + 1
    return math.floor(raw * 10 ** digits) / 10 ** digits


def fast_fft_size(n: int) -> int:
    """Smallest integer >= n of the form 2^a 3^b 5^c, even (what tclean likes)."""
    n = max(int(math.ceil(n)), 2)
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1 and m % 2 == 0:
            return m
        m += 1


def image_size(cell: float, pb_fwhm_arcsec: float, offsets_arcsec: np.ndarray | None = None,
               pb_extent: float = 1.5) -> int:
    """Pixels on a side to cover the mosaic extent plus ``pb_extent`` x PB FWHM
    (pb_extent 1.5 reaches roughly the 0.2 primary-beam level on each side)."""
    half = pb_extent * pb_fwhm_arcsec / 2 * 2  # out to ~ the 0.2 level of an outer pointing
    if offsets_arcsec is not None and len(offsets_arcsec):
        off = np.asarray(offsets_arcsec, float)
        half += float(np.max(np.abs(off - off.mean(axis=0))))
    return fast_fft_size(2 * half / cell)


def multiscale_scales(beam_arcsec: float, cell: float, largest_arcsec: float, max_scales: int = 6,
                      beams: Sequence[float] = (1, 3, 9, 27, 81)) -> list[int]:
    """0 (point), then ``beams`` x the beam in pixels (by default ~1, 3, 9... beams), up to
    the largest scale worth cleaning."""
    scales = [0]
    for b in beams:
        s = b * beam_arcsec / cell
        if len(scales) >= max_scales or s * cell > largest_arcsec:
            break
        scales.append(int(round(s)))
    return sorted(set(scales))


#: scale ladder (beams) for one pointing: finer steps between the beam and the clean
#: mask, so a ~20" plage has a scale of its own
POINTING_SCALE_BEAMS = (1, 3, 6, 12, 24)


def mask_radius_arcsec(pb_fwhm_arcsec: float, pb_level: float) -> float:
    """Radius where a Gaussian primary beam falls to ``pb_level``."""
    return pb_fwhm_arcsec / 2 * math.sqrt(math.log(1 / pb_level) / math.log(2))


def largest_angular_scale_arcsec(uv_lengths_m: Sequence[float], freq_hz: float, quantile: float = 0.05) -> float:
    """Largest angular scale the interferometer sees: lambda / (a short baseline)."""
    uv = np.asarray(uv_lengths_m, float)
    uv = uv[uv > 0]
    return 0.6 * C / freq_hz / float(np.quantile(uv, quantile)) * ARCSEC_PER_RAD


def jy_per_beam_to_kelvin(freq_hz: float, bmaj_arcsec: float, bmin_arcsec: float) -> float:
    """Rayleigh-Jeans factor: T[K] = S[Jy/beam] * 13.6 * (300/nu_GHz)^2 / (bmaj" * bmin")."""
    nu_ghz = freq_hz / 1e9
    return 13.6 * (300.0 / nu_ghz) ** 2 / (bmaj_arcsec * bmin_arcsec)


def kelvin_to_jy_per_pixel(freq_hz: float, cell_arcsec_: float) -> float:
    """Rayleigh-Jeans: S per pixel [Jy] for T = 1 K: 2 k nu^2 / c^2 * Omega_pixel / 1e-26."""
    k = 1.380649e-23
    omega = (cell_arcsec_ / ARCSEC_PER_RAD) ** 2
    return 2 * k * freq_hz ** 2 / C ** 2 * omega / 1e-26


def clean_threshold(expected_rms: float, nsigma: float = 3.0) -> float:
    """Stop cleaning at nsigma x the expected noise."""
    return nsigma * expected_rms


GRIDDERS = ("auto", "standard", "mosaic")


def choose_gridder(n_pointings: int, requested: str = "auto", dish_sizes: int = 1,
                   joint_pbmask: float = 0.6) -> tuple[str, str]:
    """The Sun image's gridder. 'auto': 'standard' for one pointing (clean mask inside
    PB >= 0.6, see ImagingInputs.pbmask); a mosaic is imaged pointing by pointing with
    the standard gridder and combined linearly (see :func:`linear_mosaic`). 'mosaic' (a
    primary beam per antenna pair for a 12m+7m array) on request, for one pointing.

    Measured on the simulated small EB (one pointing, 12m+7m; correlation with the
    beam-convolved truth inside PB >= 0.5): the standard gridder with the clean mask
    inside PB >= 0.6 and scales up to 6 beams 0.95, with the mask at PB 0.3 0.57 (clean
    puts unconstrained large-scale blobs at the edge); the 'mosaic' gridder 0.82 with
    its mask at PB 0.6, and its multiscale clean diverged with the mask at PB 0.3 or 0.5
    (single pointing and 3-pointing mosaic alike): see benchmarks/bench_imaging_limits.py."""
    if requested not in GRIDDERS:
        raise ValueError(f"gridder must be one of {', '.join(GRIDDERS)}, not {requested!r}")
    if n_pointings <= 1:
        if requested == "mosaic":
            return "mosaic", (f"requested: a primary beam per antenna pair ({dish_sizes} dish sizes), clean mask "
                              f"inside PB >= {joint_pbmask:g} (multiscale diverged with the mask at PB 0.3)")
        why = "one pointing: standard gridder" + (" (requested)" if requested == "standard" else "")
        if dish_sizes > 1:
            why += ("; it gives every baseline the largest dish's primary beam, which the tight clean mask "
                    "makes harmless: closer to the truth than gridder='mosaic' on the simulated 12m+7m EBs")
        return "standard", why
    note = "; the requested mosaic gridder is for one pointing only" if requested == "mosaic" else ""
    return "standard", (f"{n_pointings} pointings imaged one by one with the standard gridder, then "
                        f"linearly mosaicked (the joint mosaic gridder diverged on the beam-filling Sun){note}")


#: longest averaging of an imaging copy (s): the Sun's features evolve
MAX_TIME_AVERAGE_S = 30.0


def time_average_s(integration_s: float, beam_arcsec: float, radius_arcsec: float,
                   max_smear_beams: float = 0.1, cap_s: float = MAX_TIME_AVERAGE_S) -> float:
    """Averaging time for an imaging copy (a multiple of the integration): the Earth's
    rotation moves a point at ``radius_arcsec`` from the phase centre by
    omega_earth * t * radius in the uv-plane's image, kept below ``max_smear_beams`` of
    the beam; capped at ``cap_s`` (the Sun's features evolve). Averaging makes the
    heterogeneous-array gridder ~8x faster without changing the time-integrated image."""
    omega = 7.2921e-5  # rad/s
    limit = max_smear_beams * beam_arcsec / (omega * max(radius_arcsec, 1e-6))
    n = max(1, int(math.floor(min(limit, cap_s) / integration_s)))
    return n * integration_s


def gaussian_pb(shape: tuple[int, int], centre_px: tuple[float, float], fwhm_px: float) -> np.ndarray:
    """Gaussian primary-beam response (peak 1) on a pixel grid [x, y] centred at ``centre_px``."""
    x = np.arange(shape[0])[:, None] - centre_px[0]
    y = np.arange(shape[1])[None, :] - centre_px[1]
    return np.exp(-4.0 * math.log(2.0) * (x * x + y * y) / fwhm_px ** 2)


def linear_mosaic(apparent: Sequence[np.ndarray], pbs: Sequence[np.ndarray],
                  pblimit: float) -> tuple[np.ndarray, np.ndarray]:
    """Sky = sum_i PB_i A_i / sum_i PB_i^2 from apparent (not PB-corrected) pointing
    images A_i; returns (sky, response sqrt(sum PB_i^2)); NaN where the response is
    below ``pblimit``. Noise-optimal for equal-noise pointings."""
    num = np.zeros_like(np.asarray(apparent[0], float))
    den = np.zeros_like(num)
    for a, pb in zip(apparent, pbs):
        num += np.nan_to_num(np.asarray(a, float)) * pb
        den += pb * pb
    response = np.sqrt(den)
    with np.errstate(invalid="ignore", divide="ignore"):
        sky = np.where(response >= pblimit, num / np.where(den > 0, den, 1.0), np.nan)
    return sky, response


def pointing_pixels(offsets_arcsec: np.ndarray, centre_px: float, cell: float) -> list[tuple[float, float]]:
    """Pixel positions [x, y] of pointings given (east, north) offsets from the image
    centre; x runs towards the west (RA decreasing), as in CASA images."""
    return [(centre_px - float(e) / cell, centre_px + float(n) / cell) for e, n in np.asarray(offsets_arcsec)]


def channel_average_width(nchan: int, chan_width_hz: float, freq_hz: float, beam_arcsec: float,
                          radius_arcsec: float, max_smear_beams: float = 0.1) -> int:
    """Channels to average before imaging (a divisor of ``nchan``) such that the
    bandwidth smearing at ``radius_arcsec`` from the phase centre, (dnu/nu) * r,
    stays below ``max_smear_beams`` of the beam. Averaging makes tclean faster
    without changing the continuum image."""
    limit = max_smear_beams * beam_arcsec * freq_hz / max(radius_arcsec, 1e-6) / abs(chan_width_hz)
    best = 1
    for w in range(1, nchan + 1):
        if nchan % w == 0 and w <= limit:
            best = w
    return best


def thermal_image_noise(sigma_vis_jy: float, n_vis: int) -> float:
    """Natural-weighting Stokes I image noise (Jy/beam) from the per-visibility,
    per-correlation noise and the number of unflagged visibilities (rows x
    channels x the two parallel hands): sigma / sqrt(n)."""
    if n_vis <= 0 or not math.isfinite(sigma_vis_jy):
        return float("nan")
    return sigma_vis_jy / math.sqrt(n_vis)


def clean_niter(n_pointings: int, per_pointing: int = 10000, cap: int = 50000) -> int:
    """Iteration cap: enough for multiscale clean of a field full of emission
    (the threshold usually stops it first)."""
    return int(min(cap, per_pointing * max(1, n_pointings)))


#: a clean that stops before this many iterations did not run
MIN_CLEAN_ITERATIONS = 10
#: tclean stop codes of a clean that got stuck or diverged (4: no change of the peak
#: residual over two major cycles; 5, 6: the peak residual grew 3x)
FAILED_STOPCODES = {4: "stuck: the peak residual did not change over two major cycles",
                    5: "diverged: the peak residual grew 3x in a major cycle",
                    6: "diverged: the peak residual grew 3x from its minimum"}


def clean_failure(iterdone: int | None, stopcode: int | None, niter: int) -> str | None:
    """Why a multiscale clean failed, or None. Measured on a tiny 12m+7m EB (one 7m-7m
    baseline) with a 30-pixel scale, from run to run: 0-1 iterations ("PSF peak
    negative"), absurd counts beyond niter (7e6, 1e9), or a stop after 384 iterations
    with stop code 4 and a residual rms of 15 Jy/beam."""
    if iterdone is not None and iterdone < MIN_CLEAN_ITERATIONS:
        return f"{iterdone} iterations"
    if iterdone is not None and iterdone > niter:
        return f"{iterdone} iterations for niter {niter}"
    if stopcode in FAILED_STOPCODES:
        return f"stop code {stopcode}, {FAILED_STOPCODES[stopcode]}"
    return None
