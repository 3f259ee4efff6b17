"""The Sun model (brightness temperature in K) and its sampled grid.

The default Sun is a uniform disc (7000 K in Band 3, 5900 K in Band 6; limb at
the photospheric apparent radius on the date, a tanh edge 1 arcsec wide) plus
compact Gaussian features placed inside the observed field: a plage (brighter),
a sunspot umbra (darker than the disc) and a few bright points. Optionally one
feature is time variable: its amplitude follows a known light curve
``L(t) = exp(-0.5 ((t - t_peak)/sigma)^2)`` (recorded in the truth), so the sky
is ``T(x, t) = T_static(x) + L(t) T_var(x)``.

Instead of the default model the user may give a FITS image (``sky=path``):
2-D (degenerate axes dropped), BUNIT ``K`` (default) or ``Jy/pixel``
(converted with Rayleigh-Jeans at the band centre), with either a
helioprojective WCS (``HPLN``/``HPLT``; CRVAL in helioprojective arcsec/deg from
the Sun centre, rotated to the sky by the P angle) or an equatorial WCS
(``RA``/``DEC``; pixel offsets from CRPIX are taken as east/north offsets from
the Sun centre). Outside the image footprint the quiet-Sun disc is used.

Positions are sky-plane tangent offsets ``xi`` (east) / ``eta`` (north) in
arcsec from the Sun centre (see :mod:`.ephemeris`). The model is *defined* as
its pixel-averaged samples on the :class:`SkyGrid` (3x3 sub-samples per pixel):
the visibilities, the DFT check and the written sky-model image all use
exactly these pixels.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .ephemeris import hp_to_sky

LOG = logging.getLogger(__name__)

K_BOLTZMANN = 1.380649e-23
C_LIGHT = 299792458.0
ARCSEC = math.pi / 180.0 / 3600.0

#: Quiet-Sun disc brightness temperature (K) per band.
DISC_TEMPERATURE_K = {3: 7000.0, 6: 5900.0}
#: Feature amplitudes (K) per band.
FEATURE_AMPLITUDES_K = {
    3: {"plage": 1000.0, "umbra": -2200.0, "bright_point": 600.0, "brightening": 1500.0},
    6: {"plage": 800.0, "umbra": -1800.0, "bright_point": 500.0, "brightening": 1200.0},
}


def jy_per_k_per_pixel(freq_hz, pixel_arcsec: float):
    """Rayleigh-Jeans flux (Jy) of one pixel of brightness 1 K at ``freq_hz``."""
    freq_hz = np.asarray(freq_hz, dtype=float)
    omega = (pixel_arcsec * ARCSEC) ** 2
    return 2.0 * K_BOLTZMANN * freq_hz ** 2 / C_LIGHT ** 2 * omega * 1e26


@dataclass
class Feature:
    """A compact Gaussian feature in helioprojective coordinates."""

    kind: str
    x_arcsec: float
    y_arcsec: float
    amplitude_k: float
    size_arcsec: float
    variable: bool = False

    def to_truth(self, p_angle_deg: float) -> dict[str, Any]:
        xi, eta = hp_to_sky(self.x_arcsec, self.y_arcsec, p_angle_deg)
        return {"kind": self.kind, "x_arcsec": self.x_arcsec, "y_arcsec": self.y_arcsec,
                "amplitude_K": self.amplitude_k, "size_arcsec": self.size_arcsec,
                "size_is": "gaussian_fwhm", "variable": self.variable,
                "sky_offset_arcsec": [float(xi), float(eta)]}


@dataclass
class LightCurve:
    """Gaussian light curve of the variable feature (times in MJD seconds)."""

    t_peak_s: float
    sigma_s: float

    def __call__(self, t_s) -> np.ndarray:
        t = np.asarray(t_s, dtype=float)
        return np.exp(-0.5 * ((t - self.t_peak_s) / self.sigma_s) ** 2)


@dataclass
class SunModel:
    """Disc + Gaussian features (or a user image) as a function of sky offsets."""

    band: int
    radius_arcsec: float
    p_angle_deg: float
    disc_k: float
    features: list[Feature] = field(default_factory=list)
    light_curve: LightCurve | None = None
    user_image: "UserImage | None" = None
    limb_width_arcsec: float = 1.0

    def disc(self, xi, eta) -> np.ndarray:
        r = np.hypot(xi, eta)
        return self.disc_k * 0.5 * (1.0 - np.tanh((r - self.radius_arcsec) / self.limb_width_arcsec))

    def brightness(self, xi, eta, component: str = "static") -> np.ndarray:
        """Brightness temperature (K) at sky offsets; ``component`` static or variable."""
        xi = np.asarray(xi, dtype=float)
        eta = np.asarray(eta, dtype=float)
        out = np.zeros(np.broadcast(xi, eta).shape)
        if component == "static":
            if self.user_image is not None:
                val, inside = self.user_image.sample(xi, eta)
                out = np.where(inside, val, self.disc(xi, eta))
                return out
            out = out + self.disc(xi, eta)
        for f in self.features:
            if f.variable != (component == "variable"):
                continue
            fx, fy = hp_to_sky(f.x_arcsec, f.y_arcsec, self.p_angle_deg)
            s = f.size_arcsec / (2.0 * math.sqrt(2.0 * math.log(2.0)))
            out = out + f.amplitude_k * np.exp(-0.5 * ((xi - fx) ** 2 + (eta - fy) ** 2) / s ** 2)
        return out

    @property
    def has_variable(self) -> bool:
        return self.light_curve is not None and any(f.variable for f in self.features)

    def pixel_average(self, xi_c, eta_c, pixel_arcsec: float, component: str = "static",
                      oversample: int = 3) -> np.ndarray:
        """Mean brightness over square pixels centred at (xi_c, eta_c)."""
        acc = np.zeros(np.broadcast(np.asarray(xi_c), np.asarray(eta_c)).shape)
        offs = (np.arange(oversample) - (oversample - 1) / 2.0) / oversample * pixel_arcsec
        for dx in offs:
            for dy in offs:
                acc += self.brightness(xi_c + dx, eta_c + dy, component)
        return acc / oversample ** 2


class UserImage:
    """A user FITS sky (K) resampled by bilinear interpolation at sky offsets."""

    def __init__(self, path: str, p_angle_deg: float, freq_hz: float):
        from astropy.io import fits

        with fits.open(path) as hdul:
            hdu = next(h for h in hdul if h.data is not None)
            data = np.asarray(hdu.data, dtype=float)
            hdr = hdu.header
        while data.ndim > 2:
            data = data[0]
        self.path = str(path)
        bunit = str(hdr.get("BUNIT", "K")).strip().upper()
        ctype1 = str(hdr.get("CTYPE1", "")).upper()
        ctype2 = str(hdr.get("CTYPE2", "")).upper()

        def _scale(i: int) -> float:
            unit = str(hdr.get(f"CUNIT{i}", "deg")).strip().lower()
            return {"deg": 3600.0, "arcsec": 1.0, "arcmin": 60.0, "rad": 206264.80624709636}.get(unit, 3600.0)

        self.cdelt1 = float(hdr.get("CDELT1", -1.0 / 3600)) * _scale(1)
        self.cdelt2 = float(hdr.get("CDELT2", 1.0 / 3600)) * _scale(2)
        self.crpix1 = float(hdr.get("CRPIX1", (data.shape[1] + 1) / 2.0))
        self.crpix2 = float(hdr.get("CRPIX2", (data.shape[0] + 1) / 2.0))
        self.helioprojective = ctype1.startswith("HPLN") or ctype2.startswith("HPLT") or ctype1.startswith("SOLAR")
        self.crval1 = float(hdr.get("CRVAL1", 0.0)) * _scale(1) if self.helioprojective else 0.0
        self.crval2 = float(hdr.get("CRVAL2", 0.0)) * _scale(2) if self.helioprojective else 0.0
        if "JY/PIX" in bunit:
            pix = abs(self.cdelt1 * self.cdelt2) ** 0.5
            data = data / jy_per_k_per_pixel(freq_hz, pix)
            self.unit_in = "Jy/pixel"
        elif bunit not in ("K", ""):
            raise ValueError(f"sky FITS {path}: BUNIT {bunit!r} not supported (use K or Jy/pixel)")
        else:
            self.unit_in = "K"
        self.data = np.nan_to_num(data)
        self.p_angle_deg = p_angle_deg
        LOG.info("user sky %s: %s, %s WCS, %d x %d pixels of %.3g x %.3g arcsec", path, self.unit_in,
                 "helioprojective" if self.helioprojective else "equatorial", data.shape[1], data.shape[0],
                 self.cdelt1, self.cdelt2)

    def sample(self, xi, eta) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear samples at sky offsets and a mask of points inside the image."""
        from scipy.ndimage import map_coordinates

        from .ephemeris import sky_to_hp

        if self.helioprojective:
            # helioprojective longitude increases to solar west: (x - CRVAL1) = (pixel - CRPIX1) * CDELT1
            x, y = sky_to_hp(xi, eta, self.p_angle_deg)
            px = (x - self.crval1) / self.cdelt1 + self.crpix1 - 1.0
            py = (y - self.crval2) / self.cdelt2 + self.crpix2 - 1.0
        else:
            # equatorial: (RA offset * cos dec) = (pixel - CRPIX1) * CDELT1, east = increasing RA
            px = xi / self.cdelt1 + self.crpix1 - 1.0
            py = eta / self.cdelt2 + self.crpix2 - 1.0
        ny, nx = self.data.shape
        inside = (px >= 0) & (px <= nx - 1) & (py >= 0) & (py <= ny - 1)
        vals = map_coordinates(self.data, [np.ravel(py), np.ravel(px)], order=1, mode="nearest")
        return vals.reshape(np.shape(px)), inside


@dataclass
class SkyGrid:
    """The Sun model sampled on a regular sky grid (the model *is* these pixels).

    ``t_static[iy, ix]`` / ``t_var[iy, ix]`` in K at ``xi = xi0 + ix*pixel``,
    ``eta = eta0 + iy*pixel`` (arcsec, east/north from the Sun centre).
    """

    xi0: float
    eta0: float
    pixel_arcsec: float
    t_static: np.ndarray
    t_var: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.t_static.shape

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        ny, nx = self.t_static.shape
        return self.xi0 + np.arange(nx) * self.pixel_arcsec, self.eta0 + np.arange(ny) * self.pixel_arcsec


def make_sky_grid(model: SunModel, centres_arcsec: list[tuple[float, float]], support_arcsec: float,
                  pixel_arcsec: float) -> SkyGrid:
    """Sample the model on a grid covering every field centre +- ``support_arcsec``."""
    cx = np.array([c[0] for c in centres_arcsec])
    cy = np.array([c[1] for c in centres_arcsec])
    margin = support_arcsec + 4 * pixel_arcsec
    ix0 = math.floor((cx.min() - margin) / pixel_arcsec)
    ix1 = math.ceil((cx.max() + margin) / pixel_arcsec)
    iy0 = math.floor((cy.min() - margin) / pixel_arcsec)
    iy1 = math.ceil((cy.max() + margin) / pixel_arcsec)
    xi = np.arange(ix0, ix1 + 1) * pixel_arcsec
    eta = np.arange(iy0, iy1 + 1) * pixel_arcsec
    xx, yy = np.meshgrid(xi, eta)
    t_static = model.pixel_average(xx, yy, pixel_arcsec, "static").astype(np.float64)
    t_var = model.pixel_average(xx, yy, pixel_arcsec, "variable") if model.has_variable else None
    LOG.info("sky grid: %d x %d pixels of %.3f arcsec", len(xi), len(eta), pixel_arcsec)
    return SkyGrid(float(xi[0]), float(eta[0]), pixel_arcsec, t_static, t_var)


def default_features(band: int, centres_hp: list[tuple[float, float]], field_radius_arcsec: float,
                     rng: np.random.Generator, time_variable: bool) -> list[Feature]:
    """Plage, umbra, bright points (and a variable brightening) inside the observed field."""
    amps = FEATURE_AMPLITUDES_K[band]
    cx = float(np.mean([c[0] for c in centres_hp]))
    cy = float(np.mean([c[1] for c in centres_hp]))
    r = field_radius_arcsec

    def _pos(frac: float) -> tuple[float, float]:
        ang = rng.uniform(0, 2 * np.pi)
        rad = r * frac * math.sqrt(rng.uniform(0.2, 1.0))
        return cx + rad * math.cos(ang), cy + rad * math.sin(ang)

    specs = [("plage", 0.5, amps["plage"], round(0.5 * r + 10.0, 2), False),
             ("umbra", 0.45, amps["umbra"], round(0.25 * r + 6.0, 2), False)]
    for _ in range(3):
        specs.append(("bright_point", 0.8, round(amps["bright_point"] * rng.uniform(0.7, 1.3), 1),
                      round(rng.uniform(3.0, 6.0), 2), False))
    if time_variable:
        specs.append(("brightening", 0.4, amps["brightening"], 8.0, True))
    feats: list[Feature] = []
    for kind, frac, amp, size, variable in specs:
        # keep features apart (centres >= 1.2 x mean FWHM + 3 arcsec) so each is measurable
        for _attempt in range(200):
            x, y = _pos(frac if _attempt < 100 else 1.0)
            if all(math.hypot(x - f.x_arcsec, y - f.y_arcsec) >= 0.6 * (size + f.size_arcsec) + 3.0 for f in feats):
                break
        feats.append(Feature(kind, round(x, 2), round(y, 2), amp, size, variable=variable))
    return feats
