"""Decisions of total-power (TP) + interferometer combination (hsol_feather).

Pure numpy/scipy: where the Sun's centre is in a full-disc TP map (a circle
fitted to the half-brightness limb, so features on the disc do not pull it),
where every interferometric pixel falls in the TP map (both placed by their
offsets from the Sun centre), the quiet-Sun reference brightness, and how well
the TP and interferometric amplitudes agree on the spatial scales both measure.

Arrays are CASA-ordered ``[x, y]`` with x along RA (towards the west when the
increment is negative) and y along Dec.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Quiet-Sun brightness temperature at disc centre (K) by ALMA band, the values the
#: solar community scales TP maps to (White et al. 2017: 7300 K at 3 mm, 5900 K at 1.3 mm).
QUIET_SUN_K = {3: 7300.0, 6: 5900.0}


def quiet_sun_reference_k(band: int | None, table: dict[int, float] | None = None) -> float | None:
    """Reference quiet-Sun disc-centre brightness (K) of a band, None if unknown."""
    return (table or QUIET_SUN_K).get(band) if band is not None else None


def _disc_level(tp: np.ndarray) -> float:
    """Typical on-disc brightness: the median of the pixels above 30% of the 99.5th percentile."""
    finite = tp[np.isfinite(tp)]
    top = np.percentile(finite, 99.5)
    return float(np.median(finite[finite > 0.3 * top]))


def fit_disc(tp: np.ndarray, n_rays: int = 360) -> dict[str, float]:
    """Centre (pixels) and radius (pixels) of the solar disc in a full-disc map.

    Rays from a first guess (the centroid of the pixels above half the disc level)
    find where the brightness falls through half the disc level, with linear
    interpolation between samples; a circle is least-squares fitted to these limb
    points (algebraic fit, 3-sigma outliers rejected, twice). The limb of a
    beam-smoothed disc is symmetric, so the centre is unbiased whatever the beam.
    """
    from scipy.ndimage import map_coordinates

    t = np.nan_to_num(np.asarray(tp, float))
    if not (t > 0).any():
        raise ValueError("no solar disc found in the map (no positive pixel)")
    level = _disc_level(t)
    half = 0.5 * level
    on = t > half
    if on.sum() < 50:
        raise ValueError("no solar disc found in the map (fewer than 50 pixels above half the disc level)")
    xs, ys = np.nonzero(on)
    cx, cy = float(xs.mean()), float(ys.mean())
    r0 = math.sqrt(on.sum() / math.pi)
    for _ in range(2):
        ang = np.linspace(0.0, 2 * math.pi, n_rays, endpoint=False)
        radii = np.arange(0.5 * r0, 1.5 * r0, 0.05)
        px = cx + np.cos(ang)[:, None] * radii[None, :]
        py = cy + np.sin(ang)[:, None] * radii[None, :]
        prof = map_coordinates(t, [px.ravel(), py.ravel()], order=1, mode="constant", cval=0.0).reshape(px.shape)
        pts = []
        for k in range(n_rays):
            below = np.nonzero(prof[k] < half)[0]
            if below.size == 0 or below[0] == 0:
                continue
            i = below[0]  # first sample below half level going outwards
            a, b = prof[k, i - 1], prof[k, i]
            r = radii[i - 1] + (a - half) / (a - b) * (radii[i] - radii[i - 1])
            pts.append((cx + math.cos(ang[k]) * r, cy + math.sin(ang[k]) * r))
        if len(pts) < 20:
            raise ValueError("the solar limb was found on fewer than 20 rays: is the whole disc in the map?")
        p = np.array(pts)
        keep = np.ones(len(p), bool)
        for _ in range(2):
            x, y = p[keep, 0], p[keep, 1]
            a_mat = np.column_stack([x, y, np.ones_like(x)])
            sol, *_ = np.linalg.lstsq(a_mat, x * x + y * y, rcond=None)
            cx, cy = sol[0] / 2, sol[1] / 2
            r0 = math.sqrt(sol[2] + cx * cx + cy * cy)
            resid = np.hypot(p[:, 0] - cx, p[:, 1] - cy) - r0
            sd = float(np.std(resid[keep])) or 1e-9
            keep = np.abs(resid) < 3 * sd
    return {"cx": float(cx), "cy": float(cy), "radius_px": float(r0), "limb_rms_px": sd,
            "n_limb_points": int(keep.sum()), "disc_level": level}


def disc_centre_brightness(tp: np.ndarray, cx: float, cy: float, radius_px: float,
                           fraction: float = 0.25) -> float:
    """Median brightness within ``fraction`` of the radius from the disc centre (the quiet
    Sun there; a median so active regions near the centre hardly move it)."""
    x = np.arange(tp.shape[0])[:, None] - cx
    y = np.arange(tp.shape[1])[None, :] - cy
    sel = (np.hypot(x, y) <= fraction * radius_px) & np.isfinite(tp)
    return float(np.median(tp[sel]))


def tp_pixels_for_image(shape: tuple[int, int], refpix: np.ndarray, cdelt_arcsec: np.ndarray,
                        ref_offset_arcsec: tuple[float, float], tp_centre_px: tuple[float, float],
                        tp_cdelt_arcsec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TP-map pixel coordinates (x, y) of every pixel of the interferometric image.

    The image's reference pixel lies ``ref_offset_arcsec`` (east, north) from the Sun
    centre; the Sun centre is at ``tp_centre_px`` in the TP map. Offsets along the axes
    are the axis increments (arcsec, RA increment negative for east-left images), so
    both maps meet in the Sun's frame whatever their epochs.
    """
    i = np.arange(shape[0])[:, None]
    j = np.arange(shape[1])[None, :]
    east = ref_offset_arcsec[0] + (i - refpix[0]) * cdelt_arcsec[0]
    north = ref_offset_arcsec[1] + (j - refpix[1]) * cdelt_arcsec[1]
    tx = np.broadcast_to(tp_centre_px[0] + east / tp_cdelt_arcsec[0], shape)
    ty = np.broadcast_to(tp_centre_px[1] + north / tp_cdelt_arcsec[1], shape)
    return np.array(tx), np.array(ty)


def sun_centre_shift_arcsec(fitted_px: tuple[float, float], header_px: tuple[float, float],
                            tp_cdelt_arcsec: np.ndarray) -> tuple[float, float]:
    """(east, north) arcsec by which the TP map's header misplaced the Sun centre: the
    fitted disc centre minus where the header puts the ephemeris Sun centre."""
    return ((fitted_px[0] - header_px[0]) * tp_cdelt_arcsec[0], (fitted_px[1] - header_px[1]) * tp_cdelt_arcsec[1])


def gaussian_beam_ft(u_lambda: np.ndarray, v_lambda: np.ndarray, bmaj_arcsec: float, bmin_arcsec: float,
                     bpa_deg: float) -> np.ndarray:
    """Fourier transform (peak 1) of an elliptical Gaussian beam at (u, v) in wavelengths
    (u towards the east, v north; position angle from north through east)."""
    arcsec = math.pi / 180 / 3600
    s_maj = bmaj_arcsec * arcsec / (2 * math.sqrt(2 * math.log(2)))
    s_min = bmin_arcsec * arcsec / (2 * math.sqrt(2 * math.log(2)))
    pa = math.radians(bpa_deg)
    along = u_lambda * math.sin(pa) + v_lambda * math.cos(pa)
    across = u_lambda * math.cos(pa) - v_lambda * math.sin(pa)
    return np.exp(-2 * math.pi ** 2 * ((s_maj * along) ** 2 + (s_min * across) ** 2))


def overlap_amplitude_ratio(int_jyb: np.ndarray, tp_jyb: np.ndarray, cell_arcsec: float, freq_hz: float,
                            int_beam: tuple[float, float, float], tp_beam: tuple[float, float, float],
                            uv_min_m: float, tp_ft_min: float = 0.1, weight: np.ndarray | None = None
                            ) -> dict[str, Any]:
    """TP against interferometer on the spatial scales both measure.

    Both images (Jy/beam of their own beams, same grid) are made Jy/pixel, their
    ``weight``-ed means removed (the disc, which the interferometer does not measure,
    would otherwise leak into every spatial frequency through the weighting) and
    Fourier transformed; the interferometer's transform is brought to the TP
    resolution (times TP beam / interferometer beam transforms). The ratio int/TP of
    the summed amplitudes in the annulus from the shortest spatial frequency the
    interferometer measures (``uv_min_m``) to where the TP beam's transform falls to
    ``tp_ft_min`` is about 1 when the two flux scales agree. A coarse check: a single
    field is about one TP beam wide, so the primary-beam weighting (after the TP beam,
    before the interferometer's) mixes these scales; identical skies give 1.0-1.3.
    """
    lam = 299792458.0 / freq_hz
    w = np.ones_like(int_jyb) if weight is None else weight

    def beam_pixels(beam: tuple[float, float, float]) -> float:
        return math.pi / (4 * math.log(2)) * beam[0] * beam[1] / cell_arcsec ** 2

    w = np.where(np.isfinite(int_jyb) & np.isfinite(tp_jyb), w, 0.0)
    nx, ny = 4 * int_jyb.shape[0], 4 * int_jyb.shape[1]  # zero-padded: a finer uv grid

    def weighted_ft(img: np.ndarray, beam: tuple[float, float, float]) -> np.ndarray:
        x = np.nan_to_num(img) / beam_pixels(beam)
        x = (x - (x * w).sum() / w.sum()) * w
        return np.fft.fftshift(np.fft.fft2(x, s=(nx, ny)))

    cell = cell_arcsec * math.pi / 180 / 3600
    u = np.fft.fftshift(np.fft.fftfreq(nx, cell))[:, None] * np.ones((1, ny))  # x axis: towards the west
    v = np.fft.fftshift(np.fft.fftfreq(ny, cell))[None, :] * np.ones((nx, 1))
    ft_int = gaussian_beam_ft(-u, v, *int_beam)
    ft_tp = gaussian_beam_ft(-u, v, *tp_beam)
    a = np.abs(weighted_ft(int_jyb, int_beam)) * ft_tp / np.maximum(ft_int, 1e-6)
    b = np.abs(weighted_ft(tp_jyb, tp_beam))
    q = np.hypot(u, v)
    annulus = (q >= uv_min_m / lam) & (ft_tp >= tp_ft_min)
    if annulus.sum() < 4:
        return {"ratio": float("nan"), "n_cells": int(annulus.sum()), "uv_range_m": [uv_min_m, uv_min_m]}
    # azimuthally averaged amplitudes at TP resolution (for the weblog), up to twice the annulus
    edges = np.linspace(0.0, 2 * q[annulus].max(), 21)
    idx = np.digitize(q, edges) - 1
    prof = {"interferometer": [], "tp": []}
    for k in range(len(edges) - 1):
        sel = idx == k
        prof["interferometer"].append(float(a[sel].mean()) if sel.any() else None)
        prof["tp"].append(float(b[sel].mean()) if sel.any() else None)
    return {"ratio": float(a[annulus].sum() / b[annulus].sum()), "n_cells": int(annulus.sum()),
            "uv_range_m": [float(q[annulus].min() * lam), float(q[annulus].max() * lam)],
            "profile": {"uv_m": [float(e) for e in 0.5 * (edges[:-1] + edges[1:]) * lam], **prof}}


def radial_profile(image: np.ndarray, centre_px: tuple[float, float], cell_arcsec: float,
                   step_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthal mean of an image around a pixel, in rings of ``step_arcsec``: (radius, mean)."""
    x = np.arange(image.shape[0])[:, None] - centre_px[0]
    y = np.arange(image.shape[1])[None, :] - centre_px[1]
    r = np.hypot(x, y) * cell_arcsec
    ok = np.isfinite(image)
    edges = np.arange(0.0, r[ok].max() + step_arcsec, step_arcsec) if ok.any() else np.array([0.0, step_arcsec])
    idx = np.digitize(r, edges) - 1
    means = np.array([np.mean(image[ok & (idx == k)]) if (ok & (idx == k)).any() else np.nan
                      for k in range(len(edges) - 1)])
    return 0.5 * (edges[:-1] + edges[1:]), means


def time_offset_ok(tp_mjd_s: float, eb_start_mjd_s: float, eb_end_mjd_s: float, max_hours: float) -> bool:
    """True if the TP map was taken within ``max_hours`` of the EB (before, during or after)."""
    if eb_start_mjd_s <= tp_mjd_s <= eb_end_mjd_s:
        return True
    gap = min(abs(tp_mjd_s - eb_start_mjd_s), abs(tp_mjd_s - eb_end_mjd_s))
    return gap <= max_hours * 3600.0
