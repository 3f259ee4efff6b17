"""The scan/sub-scan schedule of a solar EB (pure python, no CASA).

Sequence (times relative to the EB start, seconds):

1. zero-level scan (second spectral setup; only the zero-level SQLD SPWs carry
   data): ``CALIBRATE_ATMOSPHERE`` with sub-scans sky/ambient/hot on the
   bandpass calibrator; its SQLD powers read the detector zero level;
2. pointing on the bandpass calibrator;
3. ATM on the bandpass calibrator (sub-scans 1 sky ``#OFF_SOURCE``, 2
   ``#AMBIENT``, 3 ``#HOT``), then the bandpass(+flux) scan;
4. optional separate flux calibrator (ATM + ``CALIBRATE_FLUX`` scan);
5. ATM on the phase calibrator, a phase-calibrator scan;
6. per science scan: ATM on the Sun (sky sub-scan off the Sun), [optional
   extra ATM on the phase calibrator], the Sun scan (first and last sub-scans
   ``OBSERVE_TARGET#OFF_SOURCE``, the ones between ``#ON_SOURCE``; mosaics: one
   pointing per on-Sun sub-scan, cycling through all pointings), then a
   phase-calibrator scan; the EB ends with a phase-calibrator scan.

Scan numbers run 1..N in time order; sub-scan numbers restart at 1 per scan.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from .config import SimConfig

LOG = logging.getLogger(__name__)

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=timezone.utc)

ATM_MODES = (
    ("sky", "CALIBRATE_ATMOSPHERE#OFF_SOURCE,CALIBRATE_WVR#OFF_SOURCE"),
    ("amb", "CALIBRATE_ATMOSPHERE#AMBIENT,CALIBRATE_WVR#AMBIENT"),
    ("hot", "CALIBRATE_ATMOSPHERE#HOT,CALIBRATE_WVR#HOT"),
)
MODE_POINTING = "CALIBRATE_POINTING#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE"
MODE_BANDPASS_FLUX = "CALIBRATE_BANDPASS#ON_SOURCE,CALIBRATE_FLUX#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE"
MODE_BANDPASS = "CALIBRATE_BANDPASS#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE"
MODE_FLUX = "CALIBRATE_FLUX#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE"
MODE_PHASE = "CALIBRATE_PHASE#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE"
MODE_SUN_ON = "OBSERVE_TARGET#ON_SOURCE"
MODE_SUN_OFF = "OBSERVE_TARGET#OFF_SOURCE"


def utc_to_mjd_seconds(iso_utc: str) -> float:
    """ISO UTC string -> MJD seconds (the MS TIME scale)."""
    dt = datetime.fromisoformat(iso_utc.replace("Z", ""))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - MJD_EPOCH).total_seconds()


def mjd_seconds_to_utc(t: float) -> str:
    """MJD seconds -> ISO UTC string (millisecond precision)."""
    from datetime import timedelta

    return (MJD_EPOCH + timedelta(seconds=float(t))).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def intents_of(obs_mode: str) -> list[str]:
    """Intents (without the #qualifier) of an OBS_MODE string, in order."""
    out: list[str] = []
    for part in obs_mode.split(","):
        name = part.split("#")[0]
        if name not in out:
            out.append(name)
    return out


@dataclass
class FieldPlan:
    """A field: a calibrator or one Sun pointing."""

    id: int
    name: str
    role: str
    pointing: int | None = None
    hp_arcsec: tuple[float, float] | None = None  # Sun pointings: helioprojective centre
    sky_offset_arcsec: tuple[float, float] | None = None  # Sun pointings: xi/eta from the Sun centre
    ra: float = 0.0  # rad, J2000 direction used for the simulation (set later for the Sun)
    dec: float = 0.0

    @property
    def is_sun(self) -> bool:
        return self.role == "sun"


@dataclass
class SubScanPlan:
    """One sub-scan: a contiguous block of integrations on one field with one OBS_MODE."""

    index: int  # global sub-scan index (order of observation)
    number: int  # SUB_SCAN within its scan (1-based)
    kind: str  # sky/amb/hot/zero_sky/zero_amb/zero_hot/cal/on/off
    obs_mode: str
    field_id: int
    start_s: float
    end_s: float
    scan_number: int = 0
    pointing: int | None = None

    @property
    def intents(self) -> list[str]:
        return intents_of(self.obs_mode)


@dataclass
class ScanPlan:
    """One scan: sub-scans in order, with its kind and setup."""

    number: int
    kind: str  # zero/pointing/atm/bandpass/flux/phase/science
    target_role: str  # role of the field observed (bandpass/phase/flux/sun)
    setup: str  # main/zero
    subscans: list[SubScanPlan] = field(default_factory=list)
    extra: bool = False  # the optional extra ATM scan

    @property
    def start_s(self) -> float:
        return self.subscans[0].start_s

    @property
    def end_s(self) -> float:
        return self.subscans[-1].end_s

    @property
    def field_ids(self) -> list[int]:
        out: list[int] = []
        for s in self.subscans:
            if s.field_id not in out:
                out.append(s.field_id)
        return out

    @property
    def intents(self) -> list[str]:
        out: list[str] = []
        for s in self.subscans:
            for i in s.intents:
                if i not in out:
                    out.append(i)
        return out


@dataclass
class ObservingPlan:
    """Fields and scans of the EB plus derived maps (ATM scan for each scan)."""

    fields: list[FieldPlan]
    scans: list[ScanPlan]
    start_mjd_s: float
    integration_s: float

    @property
    def subscans(self) -> list[SubScanPlan]:
        return [s for sc in self.scans for s in sc.subscans]

    def field(self, role: str) -> FieldPlan | None:
        return next((f for f in self.fields if f.role == role), None)

    @property
    def sun_fields(self) -> list[FieldPlan]:
        return [f for f in self.fields if f.is_sun]

    def source_of(self, field_id: int) -> str:
        """Source key of a field: 'sun' for all Sun pointings, else the field name."""
        f = self.fields[field_id]
        return "sun" if f.is_sun else f.name

    def atm_scan_for(self, scan: ScanPlan) -> int | None:
        """ATM scan whose Tsys applies: the nearest preceding ATM scan on the same source
        (main setup), else the first following one; None for ATM/zero scans themselves."""
        if scan.kind in ("atm", "zero"):
            return scan.number
        src = self.source_of(scan.subscans[0].field_id)
        atms = [s for s in self.scans if s.kind == "atm" and self.source_of(s.subscans[0].field_id) == src]
        before = [s for s in atms if s.end_s <= scan.start_s]
        if before:
            return before[-1].number
        after = [s for s in atms if s.start_s >= scan.end_s]
        return after[0].number if after else None

    def scan(self, number: int) -> ScanPlan:
        return self.scans[number - 1]

    @property
    def duration_s(self) -> float:
        return self.scans[-1].end_s - self.scans[0].start_s


def hex_offsets(n: int, spacing: float) -> list[tuple[float, float]]:
    """First ``n`` points of a hexagonal grid (spacing ``spacing``), nearest the centre first."""
    pts = []
    rings = int(math.ceil(math.sqrt(n))) + 2
    for i in range(-rings, rings + 1):
        for j in range(-rings, rings + 1):
            x = spacing * (i + 0.5 * j)
            y = spacing * j * math.sqrt(3) / 2.0
            pts.append((x, y))
    pts.sort(key=lambda p: (round(math.hypot(*p), 6), round(math.atan2(p[1], p[0]), 6)))
    return [(round(x, 4), round(y, 4)) for x, y in pts[:n]]


def _quantise(d: float, tint: float) -> float:
    return max(tint, round(d / tint) * tint)


def build_plan(cfg: SimConfig, fwhm12_arcsec: float, p_angle_deg: float) -> ObservingPlan:
    """Fields and the time-ordered scan list for the configuration."""
    from .ephemeris import hp_to_sky, sky_to_hp

    tint = cfg.integration_s
    q = lambda d: _quantise(d, tint)  # noqa: E731
    cals = cfg.calibrators
    fields: list[FieldPlan] = []

    def add_field(name: str, role: str, **kw) -> FieldPlan:
        f = FieldPlan(len(fields), name, role, **kw)
        fields.append(f)
        return f

    bp = cals["bandpass"]
    f_bp = add_field(bp.name, "bandpass")
    f_bp.ra, f_bp.dec = math.radians(bp.ra_deg), math.radians(bp.dec_deg)
    f_flux = None
    if cfg.separate_flux_cal:
        fx = cals["flux"]
        f_flux = add_field(fx.name, "flux")
        f_flux.ra, f_flux.dec = math.radians(fx.ra_deg), math.radians(fx.dec_deg)
    ph = cals["phase"]
    f_ph = add_field(ph.name, "phase")
    f_ph.ra, f_ph.dec = math.radians(ph.ra_deg), math.radians(ph.dec_deg)

    centre_xi, centre_eta = hp_to_sky(*cfg.target_hp_arcsec, p_angle_deg)
    npt = cfg.mosaic or 1
    offs = hex_offsets(npt, cfg.mosaic_spacing_fwhm * fwhm12_arcsec) if cfg.mosaic else [(0.0, 0.0)]
    sun_fields: list[FieldPlan] = []
    for k, (dx, dy) in enumerate(offs):
        xi, eta = float(centre_xi + dx), float(centre_eta + dy)
        hx, hy = sky_to_hp(xi, eta, p_angle_deg)
        sun_fields.append(add_field(f"Sun_{10 + k}", "sun", pointing=k, hp_arcsec=(float(hx), float(hy)),
                                    sky_offset_arcsec=(xi, eta)))

    scans: list[ScanPlan] = []
    t = 0.0
    gsub = 0

    def add_scan(kind: str, role: str, parts: list[tuple[str, str, int, float, int | None]], setup: str = "main",
                 extra: bool = False) -> ScanPlan:
        nonlocal t, gsub
        sc = ScanPlan(len(scans) + 1, kind, role, setup, extra=extra)
        for k, (skind, mode, fid, dur, pointing) in enumerate(parts):
            if k > 0:
                t += cfg.subscan_gap_s
            d = q(dur)
            sc.subscans.append(SubScanPlan(gsub, k + 1, skind, mode, fid, t, t + d, sc.number, pointing))
            gsub += 1
            t += d
        scans.append(sc)
        t += cfg.scan_gap_s
        return sc

    def atm(fid: int, role: str, prefix: str = "", setup: str = "main", dur: float | None = None,
            extra: bool = False) -> ScanPlan:
        d = cfg.atm_subscan_s if dur is None else dur
        parts = [(prefix + k, m, fid, d, None) for k, m in ATM_MODES]
        return add_scan("zero" if setup == "zero" else "atm", role, parts, setup, extra)

    if cfg.with_sqld and cfg.with_zero_level:
        atm(f_bp.id, "bandpass", prefix="zero_", setup="zero", dur=cfg.zero_subscan_s)
    add_scan("pointing", "bandpass", [("cal", MODE_POINTING, f_bp.id, cfg.pointing_scan_s, None)])
    atm(f_bp.id, "bandpass")
    add_scan("bandpass", "bandpass",
             [("cal", MODE_BANDPASS if cfg.separate_flux_cal else MODE_BANDPASS_FLUX, f_bp.id, cfg.bandpass_scan_s, None)])
    if f_flux is not None:
        atm(f_flux.id, "flux")
        add_scan("flux", "flux", [("cal", MODE_FLUX, f_flux.id, cfg.flux_scan_s, None)])
    atm(f_ph.id, "phase")
    add_scan("phase", "phase", [("cal", MODE_PHASE, f_ph.id, cfg.phase_scan_s, None)])
    for k in range(cfg.n_science_scans):
        atm(sun_fields[0].id, "sun")
        if cfg.extra_atm_scan:
            atm(f_ph.id, "phase", extra=True)
        parts: list[tuple[str, str, int, float, int | None]] = [
            ("off", MODE_SUN_OFF, sun_fields[0].id, cfg.off_subscan_s, 0)]
        if cfg.mosaic:
            for _ in range(cfg.mosaic_passes):
                for f in sun_fields:
                    parts.append(("on", MODE_SUN_ON, f.id, cfg.mosaic_subscan_s, f.pointing))
        else:
            for _ in range(cfg.n_on_subscans):
                parts.append(("on", MODE_SUN_ON, sun_fields[0].id, cfg.on_subscan_s, 0))
        parts.append(("off", MODE_SUN_OFF, sun_fields[0].id, cfg.off_subscan_s, 0))
        add_scan("science", "sun", parts)
        add_scan("phase", "phase", [("cal", MODE_PHASE, f_ph.id, cfg.phase_scan_s, None)])
    start = utc_to_mjd_seconds(cfg.obs_start_utc)
    plan = ObservingPlan(fields, scans, start, tint)
    LOG.info("plan: %d scans, %d sub-scans, %d fields, %.1f min", len(scans), len(plan.subscans), len(fields),
             plan.duration_s / 60.0)
    return plan


def time_grid(sub: SubScanPlan, tint: float) -> np.ndarray:
    """Integration mid-times (relative seconds) of a sub-scan."""
    n = int(round((sub.end_s - sub.start_s) / tint))
    return sub.start_s + (np.arange(n) + 0.5) * tint
