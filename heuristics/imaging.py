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


def multiscale_scales(beam_arcsec: float, cell: float, largest_arcsec: float, max_scales: int = 6) -> list[int]:
    """0 (point), then ~1, 3, 9... beams in pixels, up to the largest scale worth cleaning."""
    scales = [0]
    s = beam_arcsec / cell
    while len(scales) < max_scales and s * cell <= largest_arcsec:
        scales.append(int(round(s)))
        s *= 3
    return sorted(set(scales))


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
