"""Pure heuristics that classify what is in an EB: SPW roles, band, antennas, fields.

No CASA import: the task reads names/frequencies/intents with msmd/tb and asks
these functions what they mean. SPW ids are never assumed; roles come from the
SPW NAME written by importasdm (``X...#ALMA_RB_03#BB_1#SW-01#FULL_RES``).
"""
from __future__ import annotations

import re
from typing import Iterable

# ALMA receiver bands: (band, low GHz, high GHz) -- sky frequency coverage.
ALMA_BANDS: tuple[tuple[int, float, float], ...] = (
    (1, 35.0, 50.0), (2, 67.0, 90.0), (3, 84.0, 116.0), (4, 125.0, 163.0),
    (5, 163.0, 211.0), (6, 211.0, 275.0), (7, 275.0, 373.0), (8, 385.0, 500.0),
    (9, 602.0, 720.0), (10, 787.0, 950.0),
)

SPW_ROLES = ("science", "ch_avg", "sqld", "wvr", "other")

_RE_BAND = re.compile(r"ALMA_RB_(\d{2})")
_RE_BB = re.compile(r"#BB_(\d)")
_RE_SPEC = re.compile(r"^(X\d+)#")


def spw_role(name: str, nchan: int | None = None) -> str:
    """Role of an SPW from its NAME: science, ch_avg, sqld, wvr or other."""
    upper = name.upper()
    if upper.startswith("WVR") or "#WVR" in upper:
        return "wvr"
    if upper.endswith("#SQLD") or "#SQLD" in upper:
        return "sqld"
    if "#CH_AVG" in upper:
        return "ch_avg"
    if "#FULL_RES" in upper:
        return "science"
    return "other"


def baseband_from_name(name: str) -> int | None:
    """Baseband number (1-4) from ``#BB_n`` in the SPW name."""
    m = _RE_BB.search(name)
    return int(m.group(1)) if m else None


def spectral_spec_from_name(name: str) -> str:
    """The spectral-spec prefix (``X1234``) that tells spectral setups apart ('' if none)."""
    m = _RE_SPEC.match(name)
    return m.group(1) if m else ""


def band_from_frequency(freq_hz: float) -> int | None:
    """ALMA band containing a sky frequency (None outside every band)."""
    ghz = freq_hz / 1e9
    for band, lo, hi in ALMA_BANDS:
        if lo <= ghz <= hi:
            return band
    return None


def band_of_spw(name: str, freq_hz: float) -> int | None:
    """Band from ``ALMA_RB_nn`` in the name, else from the frequency."""
    m = _RE_BAND.search(name)
    if m:
        return int(m.group(1))
    return band_from_frequency(freq_hz)


def array_of_antenna(diameter_m: float) -> str:
    """'12m', '7m' (ACA) or 'other' by dish diameter."""
    if 11.0 <= diameter_m <= 13.0:
        return "12m"
    if 6.0 <= diameter_m <= 8.0:
        return "7m"
    return "other"


def is_sun_name(name: str) -> bool:
    """True for solar field names (``Sun``, ``Sun_10``, ``SUN``)."""
    return re.match(r"^sun(\b|_|\d|$)", name.strip(), re.IGNORECASE) is not None


def field_roles(intents: Iterable[str], name: str) -> list[str]:
    """Roles of a field from its intents (a field may have several).

    Intents are ALMA STATE OBS_MODE entries such as ``CALIBRATE_PHASE#ON_SOURCE``.
    """
    scan_intents = {i.split("#")[0] for i in intents}
    roles = []
    if "OBSERVE_TARGET" in scan_intents:
        roles.append("sun" if is_sun_name(name) else "target")
    for intent, role in (("CALIBRATE_BANDPASS", "bandpass"), ("CALIBRATE_FLUX", "flux"),
                         ("CALIBRATE_AMPLI", "flux"), ("CALIBRATE_PHASE", "phase"),
                         ("CALIBRATE_POINTING", "pointing"), ("OBSERVE_CHECK_SOURCE", "check")):
        if intent in scan_intents and role not in roles:
            roles.append(role)
    if not roles and "CALIBRATE_ATMOSPHERE" in scan_intents:
        roles.append("atmosphere")
    return roles or ["other"]


def science_setup_spec(spws: Iterable[tuple[str, str]]) -> str:
    """Spectral spec of the science SPWs, from (name, role) pairs ('' if none)."""
    specs = [spectral_spec_from_name(n) for n, r in spws if r == "science"]
    return max(set(specs), key=specs.count) if specs else ""
