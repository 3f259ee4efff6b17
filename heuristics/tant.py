"""Solar Tsys + Tant amplitude calibration: the pure, vectorised part.

The Sun raises the system temperature of the de-tuned receivers by its
antenna temperature Tant, measured per antenna, polarisation, baseband and
on-Sun sub-scan from square-law-detector (SQLD) powers:

    Tant = (P_sun - P_off) * (T_hot - T_amb) / (P_hot - P_amb)
                           * (P_sky - P_zero) / (P_off - P_zero)

P_sky, P_amb, P_hot: the ATM scan's sky / ambient-load / hot-load sub-scans;
P_off: mean of the science scan's off-Sun sub-scans; P_sun: mean over one
on-Sun sub-scan; P_zero: the detector zero level. The first factor converts
detector units to kelvin with the two loads; the second corrects for a gain
change of the detector chain between the ATM scan and the science scan.
All functions take numpy arrays and broadcast.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

DEFAULT_T_AMB = 288.0  # K, ambient load when CALDEVICE is missing
DEFAULT_T_HOT = 356.0  # K, hot load when CALDEVICE is missing
CONSTANT_TANT = {3: 7000.0, 6: 5900.0}  # K, fallback when no SQLD data (SV 2014 used 7000 K in B3)

POL_PAIRINGS = ("same", "swapped")


def tant(p_sun, p_off, p_sky, p_amb, p_hot, p_zero, t_amb, t_hot) -> np.ndarray:
    """Tant from SQLD powers and load temperatures (any broadcastable shapes)."""
    p_sun, p_off, p_sky, p_amb, p_hot, p_zero, t_amb, t_hot = (
        np.asarray(x, float) for x in (p_sun, p_off, p_sky, p_amb, p_hot, p_zero, t_amb, t_hot))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (p_sun - p_off) * (t_hot - t_amb) / (p_hot - p_amb) * (p_sky - p_zero) / (p_off - p_zero)


def invalid_power_mask(p_off, p_amb, p_hot, p_zero, rel_tol: float = 1e-3) -> np.ndarray:
    """True where the formula is meaningless: hot <= ambient, or P_off ~ P_zero."""
    p_off, p_amb, p_hot, p_zero = (np.asarray(x, float) for x in (p_off, p_amb, p_hot, p_zero))
    scale = np.maximum(np.abs(p_off), np.abs(p_zero))
    with np.errstate(invalid="ignore"):
        return (p_hot - p_amb <= 0) | (np.abs(p_off - p_zero) <= rel_tol * np.where(scale > 0, scale, 1))


def pair_polarisations(tant_by_pol: np.ndarray, pairing: str = "same", pol_axis: int = 0) -> np.ndarray:
    """Tant to add to each polarisation's Tsys.

    'same' (default, physical: the X detector measures what the Sun adds to the
    X receiver chain, as in the 2018 legacy code) returns the array unchanged;
    'swapped' reproduces the 2024 legacy code, which gives XX Tsys the YY Tant.
    """
    if pairing not in POL_PAIRINGS:
        raise ValueError(f"pol pairing must be one of {POL_PAIRINGS}, not {pairing!r}")
    arr = np.asarray(tant_by_pol)
    return arr if pairing == "same" else np.flip(arr, axis=pol_axis)


@dataclass
class ScanSpan:
    """A scan's number, time span (MJD s) and fields, as the task reads them."""

    number: int
    start: float
    end: float
    field_ids: Sequence[int]


@dataclass
class AtmChoice:
    science_scan: int
    atm_scan: int | None
    reason: str


def match_atm_scans(science: Sequence[ScanSpan], atm: Sequence[ScanSpan]) -> list[AtmChoice]:
    """The ATM scan that belongs to each science scan, by time and field.

    Preference: the latest ATM scan ending before the science scan starts on one of
    the same fields (the Sun); else the latest preceding ATM scan on any field;
    else the nearest following one. Never "scan number minus one".
    """
    out = []
    for sci in science:
        before = [a for a in atm if a.end <= sci.start + 1e-6]
        same_field = [a for a in before if set(a.field_ids) & set(sci.field_ids)]
        if same_field:
            a = max(same_field, key=lambda s: s.end)
            out.append(AtmChoice(sci.number, a.number, "latest preceding ATM scan on the same field"))
        elif before:
            a = max(before, key=lambda s: s.end)
            out.append(AtmChoice(sci.number, a.number, "latest preceding ATM scan (other field)"))
        elif atm:
            a = min(atm, key=lambda s: abs(s.start - sci.end))
            out.append(AtmChoice(sci.number, a.number, "no preceding ATM scan: nearest following"))
        else:
            out.append(AtmChoice(sci.number, None, "no ATM scan in the EB"))
    return out


def loads_for_scan(load_times: np.ndarray, t_amb: np.ndarray, t_hot: np.ndarray,
                   scan_start: float, scan_end: float) -> tuple[float, float, str]:
    """Load temperatures that belong to an ATM scan: rows inside its time span,
    else the row nearest in time. Returns (T_amb, T_hot, how)."""
    load_times = np.asarray(load_times, float)
    if load_times.size == 0:
        return DEFAULT_T_AMB, DEFAULT_T_HOT, "default"
    inside = (load_times >= scan_start - 1.0) & (load_times <= scan_end + 1.0)
    if inside.any():
        return float(np.mean(np.asarray(t_amb)[inside])), float(np.mean(np.asarray(t_hot)[inside])), "scan"
    i = int(np.argmin(np.abs(load_times - 0.5 * (scan_start + scan_end))))
    return float(np.asarray(t_amb)[i]), float(np.asarray(t_hot)[i]), "nearest"


def group_mean(values: np.ndarray, times: np.ndarray, spans: Sequence[tuple[float, float]],
               axis: int = -1) -> np.ndarray:
    """Mean of ``values`` over the samples whose time falls in each (start, end) span.

    ``values`` has time along ``axis``; returns the spans along that axis (NaN
    where a span has no sample). One vectorised pass instead of one query per span.
    """
    values = np.moveaxis(np.asarray(values, float), axis, -1)
    times = np.asarray(times, float)
    out = np.full(values.shape[:-1] + (len(spans),), np.nan)
    for k, (t0, t1) in enumerate(spans):
        sel = (times >= t0) & (times <= t1)
        if sel.any():
            out[..., k] = np.nanmean(values[..., sel], axis=-1)
    return np.moveaxis(out, -1, axis)


def smoothness(series: np.ndarray, axis: int = -1) -> np.ndarray:
    """Robust step size relative to level along sub-scans: median |diff| / median |value|."""
    s = np.asarray(series, float)
    if s.shape[axis] < 2 or not np.isfinite(s).any():
        return np.zeros(np.delete(s.shape, axis)) if s.ndim > 1 else np.float64(0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmedian(np.abs(np.diff(s, axis=axis)), axis=axis) / np.nanmedian(np.abs(s), axis=axis)


def outlier_antennas(per_antenna: np.ndarray, names: Sequence[str], nsigma: float = 5.0,
                     min_rel: float = 0.1) -> list[str]:
    """Antennas whose (median) Tant departs from the array median by > nsigma robust
    sigmas and by more than ``min_rel`` of the median."""
    x = np.asarray(per_antenna, float)
    med = np.nanmedian(x)
    sig = 1.4826 * np.nanmedian(np.abs(x - med))
    dev = np.abs(x - med)
    bad = (dev > nsigma * max(sig, 1e-9)) & (dev > min_rel * abs(med))
    return [names[i] for i in np.flatnonzero(bad)]
