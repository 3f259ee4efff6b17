"""Simulator configuration: :class:`SimConfig`, the size presets and the SPW layout.

Every knob of the simulated execution block (EB) lives in one dataclass so that a
run is reproducible from ``(config, seed)`` alone; the presets ``tiny``, ``small``
and ``large`` fill it for component tests, regression runs and benchmarks, and any
field can be overridden by keyword (``SimConfig.preset('tiny', nchan=16)``).

The SPW layout mimics what ``importasdm`` writes for an ALMA solar EB: SPW roles
are told apart by NAME (``...#FULL_RES``, ``...#CH_AVG``, ``...#SQLD``,
``WVR#NOMINAL``), ids depend on the layout (``default``: SQLD 0-3, WVR 4,
science 5,7,9,11, CH_AVG 6,8,10,12, zero-level SQLD 13-16; ``alt``: WVR 0,
science 1,3,5,7, CH_AVG 2,4,6,8, SQLD 9-12, zero-level SQLD 13-16). Omitted
kinds (``with_sqld=False`` ...) are dropped and the remaining ids renumbered.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LOG = logging.getLogger(__name__)

C_LIGHT = 299792458.0

#: Science SPW centres (GHz) per band, baseband 1..4, and the first LO.
BAND_SETUP: dict[int, dict[str, Any]] = {
    3: {"lo1_ghz": 100.0, "centres_ghz": (93.0, 95.0, 105.0, 107.0), "receiver": "ALMA_RB_03"},
    6: {"lo1_ghz": 239.0, "centres_ghz": (230.0, 232.0, 246.0, 248.0), "receiver": "ALMA_RB_06"},
}

#: WVR channel centres (GHz) and widths (GHz): the four 183 GHz radiometer filters.
WVR_CHANNELS_GHZ = (184.19, 185.25, 186.485, 188.51)
WVR_WIDTHS_GHZ = (0.16, 0.75, 1.25, 2.5)

SPW_ROLES = ("science", "ch_avg", "sqld", "sqld_zero", "wvr")


@dataclass
class CalibratorSpec:
    """A quasar used as calibrator: position (J2000) and power-law spectrum."""

    name: str
    ra_deg: float
    dec_deg: float
    flux_jy: float
    ref_freq_hz: float
    spectral_index: float


def _hms(h: float, m: float, s: float) -> float:
    return 15.0 * (h + m / 60.0 + s / 3600.0)


def _dms(d: float, m: float, s: float, sign: int = 1) -> float:
    return sign * (abs(d) + m / 60.0 + s / 3600.0)


#: Calibrators up at ALMA on 2017-04-27 ~15-16 UT (near the Sun in RA).
DEFAULT_CALIBRATORS: dict[str, CalibratorSpec] = {
    "bandpass": CalibratorSpec("J0423-0120", _hms(4, 23, 15.800), _dms(1, 20, 33.07, -1), 2.1, 100e9, -0.55),
    "phase": CalibratorSpec("J0238+1636", _hms(2, 38, 38.930), _dms(16, 36, 59.27), 0.8, 100e9, -0.60),
    "flux": CalibratorSpec("J0510+1800", _hms(5, 10, 2.369), _dms(18, 0, 41.58), 1.3, 100e9, -0.45),
}


@dataclass
class SimConfig:
    """All knobs of one simulated solar EB (see module docstring)."""

    size: str = "tiny"
    band: int = 3
    seed: int = 0
    name: str | None = None
    # --- array
    n_ant_12m: int = 6
    n_ant_7m: int = 2
    config_12m: str = "alma.cycle10.1.cfg"
    config_7m: str = "aca.cycle10.cfg"
    # --- spectral setup
    nchan: int = 32
    spw_bandwidth_hz: float = 2.0e9
    spw_layout: str = "default"
    lsb_negative_chan_width: bool = True
    # --- timing / schedule
    obs_start_utc: str = "2017-04-27T15:20:00"
    integration_s: float = 2.0
    n_science_scans: int = 2
    n_on_subscans: int = 3
    on_subscan_s: float = 40.0
    off_subscan_s: float = 8.0
    mosaic: int | None = None
    mosaic_subscan_s: float = 6.0
    mosaic_passes: int = 1
    mosaic_spacing_fwhm: float = 0.5
    atm_subscan_s: float = 6.0
    zero_subscan_s: float = 4.0
    pointing_scan_s: float = 20.0
    bandpass_scan_s: float = 60.0
    flux_scan_s: float = 40.0
    phase_scan_s: float = 30.0
    scan_gap_s: float = 6.0
    subscan_gap_s: float = 2.0
    extra_atm_scan: bool = False
    separate_flux_cal: bool = False
    flux_cal_catalogue_age_days: float | None = None
    # --- sky
    sky: str | None = None
    target_hp_arcsec: tuple[float, float] = (-250.0, 150.0)
    time_variable: bool = False
    #: rms (deg, at the mean science frequency) and time scale (s) of fast antenna phase errors
    #: that the phase-calibrator cycle cannot follow (0: none); what self-calibration corrects
    phase_noise_rms_deg: float = 0.0
    phase_noise_timescale_s: float = 30.0
    sun_field_convention: str = "sun_centre"
    disc_temperature_k: float | None = None
    # --- instrument / corruption
    noise: bool = True
    bad_data: bool = True
    with_syscal: bool = True
    with_caldevice: bool = True
    with_syspower: bool = True
    with_weather: bool = True
    with_sqld: bool = True
    with_zero_level: bool = True
    with_wvr: bool = True
    with_autocorr: bool = True
    # --- numerics
    pb_freq_nodes: int = 3
    fft_pad: int = 3
    ephemeris_step_s: float = 300.0
    calibrators: dict[str, CalibratorSpec] = field(default_factory=lambda: dict(DEFAULT_CALIBRATORS))

    @classmethod
    def preset(cls, size: str = "tiny", **overrides: Any) -> "SimConfig":
        """A preset configuration (``tiny``/``small``/``large``) with keyword overrides."""
        if size not in PRESETS:
            raise ValueError(f"unknown simulator size {size!r}; choose from {sorted(PRESETS)}")
        values = dict(PRESETS[size])
        values["size"] = size
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown SimConfig field(s): {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items()})
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Reject inconsistent settings early with a clear message."""
        if self.band not in BAND_SETUP:
            raise ValueError(f"band must be 3 or 6, not {self.band}")
        if self.spw_layout not in ("default", "alt"):
            raise ValueError(f"spw_layout must be 'default' or 'alt', not {self.spw_layout!r}")
        if self.sun_field_convention not in ("sun_centre", "pointing_centre"):
            raise ValueError("sun_field_convention must be 'sun_centre' or 'pointing_centre'")
        if self.mosaic is not None and self.mosaic < 2:
            self.mosaic = None
        if self.n_ant_12m + self.n_ant_7m < 3:
            raise ValueError("need at least 3 antennas")
        if self.nchan < 4:
            raise ValueError("need at least 4 channels per science SPW")

    @property
    def eb_name(self) -> str:
        """ALMA-like EB name (``uid___A002_X...``), deterministic in size/band/seed."""
        if self.name:
            return self.name
        tag = {"tiny": "a", "small": "b", "large": "c"}.get(self.size, "d")
        return f"uid___A002_Xc5{tag}{self.band}f0_X{self.seed:x}"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view of the configuration (recorded in the truth)."""
        out = dataclasses.asdict(self)
        out["target_hp_arcsec"] = list(self.target_hp_arcsec)
        return out


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(n_ant_12m=6, n_ant_7m=2, nchan=32, integration_s=2.0, n_science_scans=2,
                 n_on_subscans=3, on_subscan_s=40.0, mosaic_passes=2, pb_freq_nodes=1),
    "small": dict(n_ant_12m=12, n_ant_7m=4, nchan=64, integration_s=2.0, n_science_scans=3,
                  n_on_subscans=6, on_subscan_s=60.0, off_subscan_s=10.0, mosaic_passes=3,
                  bandpass_scan_s=120.0, phase_scan_s=40.0, pointing_scan_s=30.0,
                  atm_subscan_s=6.0, scan_gap_s=10.0, pb_freq_nodes=3),
    "large": dict(n_ant_12m=34, n_ant_7m=8, nchan=128, integration_s=2.0, n_science_scans=4,
                  n_on_subscans=8, on_subscan_s=60.0, off_subscan_s=10.0, mosaic_passes=4,
                  bandpass_scan_s=180.0, phase_scan_s=40.0, pointing_scan_s=40.0,
                  atm_subscan_s=6.0, scan_gap_s=10.0, pb_freq_nodes=1),
}


@dataclass
class SpwSpec:
    """One spectral window as it will appear in the MS (id = order of creation)."""

    id: int
    name: str
    role: str
    baseband: int
    nchan: int
    chan_freqs_hz: np.ndarray
    chan_widths_hz: np.ndarray
    setup: str
    net_sideband: int

    @property
    def ref_freq_hz(self) -> float:
        return float(self.chan_freqs_hz[0])

    @property
    def centre_freq_hz(self) -> float:
        return float(np.mean(self.chan_freqs_hz))

    @property
    def total_bandwidth_hz(self) -> float:
        return float(np.sum(np.abs(self.chan_widths_hz)))

    def to_truth(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "role": self.role, "baseband": self.baseband,
            "nchan": self.nchan, "ref_freq_hz": self.ref_freq_hz,
            "centre_freq_hz": self.centre_freq_hz,
            "chan_width_hz": float(self.chan_widths_hz[0]), "setup": self.setup,
            "total_bandwidth_hz": self.total_bandwidth_hz,
        }


def _setup_prefix(seed: int, which: int) -> str:
    """Spectral-spec prefix ``X<digits>`` (two different ones for the two setups)."""
    base = 1_000_000 + (seed * 7919 + which * 104_729) % 8_000_000
    return f"X{base}"


def _science_freqs(centre_hz: float, nchan: int, bw_hz: float, lsb: bool, negative: bool):
    width = bw_hz / nchan
    offsets = (np.arange(nchan) - (nchan - 1) / 2.0) * width
    freqs = centre_hz + offsets
    widths = np.full(nchan, width)
    if lsb and negative:
        freqs = freqs[::-1].copy()
        widths = -widths
    return freqs, widths


def build_spw_layout(cfg: SimConfig) -> list[SpwSpec]:
    """The SPWs in creation (= id) order for the configured layout and omissions."""
    setup = BAND_SETUP[cfg.band]
    rb = setup["receiver"]
    pre_main = _setup_prefix(cfg.seed, 1)
    pre_zero = _setup_prefix(cfg.seed, 2)
    lo1 = setup["lo1_ghz"] * 1e9
    groups: dict[str, list[SpwSpec]] = {k: [] for k in ("sqld", "wvr", "sci", "sqld_zero")}
    for bb, cghz in enumerate(setup["centres_ghz"], start=1):
        centre = cghz * 1e9
        lsb = centre < lo1
        sideband = 2 if lsb else 1
        freqs, widths = _science_freqs(centre, cfg.nchan, cfg.spw_bandwidth_hz, lsb, cfg.lsb_negative_chan_width)
        sci = SpwSpec(-1, f"{pre_main}#{rb}#BB_{bb}#SW-01#FULL_RES", "science", bb, cfg.nchan,
                      freqs, widths, "main", sideband)
        eff_bw = cfg.spw_bandwidth_hz * (1.0 - 1.0 / 16.0)
        chavg = SpwSpec(-1, f"{pre_main}#{rb}#BB_{bb}#SW-01#CH_AVG", "ch_avg", bb, 1,
                        np.array([centre]), np.array([-eff_bw if (lsb and cfg.lsb_negative_chan_width) else eff_bw]),
                        "main", sideband)
        groups["sci"].extend([sci, chavg])
        bbw = 2.0e9
        groups["sqld"].append(SpwSpec(-1, f"{pre_main}#{rb}#BB_{bb}#SQLD", "sqld", bb, 1,
                                      np.array([centre]), np.array([bbw]), "main", sideband))
        groups["sqld_zero"].append(SpwSpec(-1, f"{pre_zero}#{rb}#BB_{bb}#SQLD", "sqld_zero", bb, 1,
                                           np.array([centre]), np.array([bbw]), "zero", sideband))
    groups["wvr"].append(SpwSpec(-1, "WVR#NOMINAL", "wvr", 0, 4, np.array(WVR_CHANNELS_GHZ) * 1e9,
                                 np.array(WVR_WIDTHS_GHZ) * 1e9, "main", 1))
    if not cfg.with_sqld:
        groups["sqld"] = []
        groups["sqld_zero"] = []
    if not cfg.with_zero_level:
        groups["sqld_zero"] = []
    if not cfg.with_wvr:
        groups["wvr"] = []
    order = ("sqld", "wvr", "sci", "sqld_zero") if cfg.spw_layout == "default" else ("wvr", "sci", "sqld", "sqld_zero")
    spws: list[SpwSpec] = []
    for key in order:
        spws.extend(groups[key])
    for i, s in enumerate(spws):
        s.id = i
    return spws


def spws_by_role(spws: list[SpwSpec], role: str) -> list[SpwSpec]:
    """SPWs of one role, in baseband order."""
    return sorted([s for s in spws if s.role == role], key=lambda s: s.baseband)
