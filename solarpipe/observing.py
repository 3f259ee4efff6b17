"""ObservingRun: what an EB contains, read once with msmd/tb and kept in the context.

Everything later stages need to find their data by meaning rather than by id:
SPW roles (from NAME), band, fields and their roles (from intents), scans and
sub-scans with intents and times, antennas (12m/7m), mosaic or not, ephemeris
target, and which calibration subtables exist.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BadInputError

LOG = logging.getLogger(__name__)


@dataclass
class SpectralWindow:
    id: int
    name: str
    role: str  # science | ch_avg | sqld | wvr | other
    nchan: int
    ref_freq_hz: float
    chan_width_hz: float
    total_bw_hz: float
    baseband: int | None = None
    band: int | None = None
    spectral_spec: str = ""
    science_setup: bool = True  # same spectral setup as the science SPWs


@dataclass
class Antenna:
    id: int
    name: str
    diameter_m: float
    array: str  # '12m' | '7m' | 'other'
    position_m: list[float] = field(default_factory=list)  # ITRF
    offset_m: list[float] = field(default_factory=list)  # from the array centre (E, N, U)


@dataclass
class Field:
    id: int
    name: str
    intents: list[str]
    roles: list[str]
    is_ephemeris: bool
    ra_rad: float
    dec_rad: float


@dataclass
class SubScan:
    """A sub-scan; start/end are the centres of its first and last integrations."""

    number: int
    intents: list[str]
    field_ids: list[int]
    start_mjd_s: float
    end_mjd_s: float


@dataclass
class Scan:
    number: int
    intents: list[str]
    field_ids: list[int]
    spw_ids: list[int]
    start_mjd_s: float
    end_mjd_s: float
    subscans: list[SubScan] = field(default_factory=list)


@dataclass
class ObservingRun:
    """One EB as the pipeline sees it (its working copy ``vis``)."""

    vis: str
    source_vis: str
    name: str
    telescope: str
    band: int | None
    start_mjd_s: float
    end_mjd_s: float
    spws: list[SpectralWindow] = field(default_factory=list)
    antennas: list[Antenna] = field(default_factory=list)
    fields: list[Field] = field(default_factory=list)
    scans: list[Scan] = field(default_factory=list)
    mosaic: bool = False
    ephemeris_target: bool = False
    subtables: dict[str, bool] = field(default_factory=dict)
    project: str = ""
    observer: str = ""
    integration_s: float = 0.0  # typical integration (dump) time, from the TIME steps

    # -- selections by meaning -------------------------------------------
    def spw_ids(self, role: str, science_setup: bool | None = None) -> list[int]:
        return [s.id for s in self.spws if s.role == role
                and (science_setup is None or s.science_setup == science_setup)]

    @property
    def science_spw_ids(self) -> list[int]:
        return self.spw_ids("science")

    def field_ids(self, role: str) -> list[int]:
        return [f.id for f in self.fields if role in f.roles]

    @property
    def sun_field_ids(self) -> list[int]:
        return self.field_ids("sun")

    def scans_with_intent(self, intent: str) -> list[Scan]:
        """Scans having an intent (prefix match: 'CALIBRATE_ATMOSPHERE' matches '#HOT')."""
        return [s for s in self.scans if any(i.startswith(intent) for i in s.intents)]

    def time_on_source_s(self) -> float:
        """Time on the Sun: the on-source sub-scans of the Sun fields (each from the start
        of its first to the end of its last integration), as the ALMA weblog reports it."""
        sun = set(self.sun_field_ids)
        total = 0.0
        for scan in self.scans_with_intent("OBSERVE_TARGET"):
            for sub in scan.subscans:
                on = any(i.startswith("OBSERVE_TARGET") and not i.endswith("OFF_SOURCE")
                         for i in sub.intents)
                if on and sun.intersection(sub.field_ids):
                    total += sub.end_mjd_s - sub.start_mjd_s + self.integration_s
        return total

    def antenna_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.antennas:
            out[a.array] = out.get(a.array, 0) + 1
        return out

    # -- serialisation ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ObservingRun":
        d = dict(d)
        d["spws"] = [SpectralWindow(**s) for s in d.get("spws", [])]
        d["antennas"] = [Antenna(**a) for a in d.get("antennas", [])]
        d["fields"] = [Field(**f) for f in d.get("fields", [])]
        d["scans"] = [Scan(**{**s, "subscans": [SubScan(**ss) for ss in s.get("subscans", [])]})
                      for s in d.get("scans", [])]
        return cls(**d)


def check_is_ms(path: str | Path) -> Path:
    """Check, without opening any table, that ``path`` is a MeasurementSet directory."""
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"{p}: no such file or directory; give the path of an ALMA "
                            "MeasurementSet (.ms) or ASDM directory")
    if not p.is_dir():
        raise BadInputError(f"{p}: is a file, not a MeasurementSet directory")
    info = p / "table.info"
    if not (p / "table.dat").exists() or not info.exists():
        raise BadInputError(f"{p}: not a MeasurementSet (no table.dat/table.info); "
                            "for an ASDM give the directory holding ASDM.xml")
    try:
        kind = info.read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        kind = ""
    if "Measurement Set" not in kind:
        raise BadInputError(f"{p}: a CASA table but not a MeasurementSet ({kind.strip()!r})")
    return p


def check_tables_readable(vis: str | Path) -> None:
    """Open the MS and every subtable read-only and read the first and last cell of
    every column: a truncated or corrupted table file fails here, with a message
    naming the table, before anything is copied or written."""
    from casatools import table

    tb = table()
    names = [("main table", str(vis))]
    try:
        tb.open(str(vis))
        try:
            kw = tb.getkeywords()
        finally:
            tb.close()
    except RuntimeError as exc:
        raise BadInputError(f"{vis}: the MeasurementSet cannot be opened ({str(exc).splitlines()[0]}); it is "
                            "corrupted or incomplete: copy it again from the archive") from exc
    names += [(k, str(v).removeprefix("Table: ")) for k, v in kw.items()
              if isinstance(v, str) and v.startswith("Table: ")]
    for label, path in names:
        try:
            tb.open(path)
            try:
                n = tb.nrows()
                for col in tb.colnames() if n else []:
                    for row in {0, n - 1}:
                        if tb.iscelldefined(col, row):
                            tb.getcell(col, row)
            finally:
                tb.close()
        except RuntimeError as exc:
            raise BadInputError(f"{vis}: table {label} ({path}) cannot be read: {str(exc).splitlines()[0]}. "
                                "The file is truncated or corrupted; copy the MS again from the archive "
                                "(or re-run importasdm).") from exc


def read_observing_run(vis: str | Path, source_vis: str | Path | None = None) -> ObservingRun:
    """Build the ObservingRun of an MS with vectorised msmd/tb reads.

    Raises BadInputError naming the MS and table for non-ALMA data, data with
    no solar target, or tables that cannot be read.
    """
    import numpy as np
    from casatools import msmetadata, table

    from solarpipe.heuristics import observation as hobs

    vis = str(vis)
    tb = table()
    msmd = msmetadata()

    def _open(sub: str = "") -> None:
        path = f"{vis}/{sub}" if sub else vis
        try:
            tb.open(path)
        except Exception as exc:  # casatools raises RuntimeError with C++ text
            raise BadInputError(f"{path}: cannot open table ({exc}); the MS may be "
                                "truncated or corrupted") from exc

    # Telescope and project
    _open("OBSERVATION")
    try:
        telescopes = list(tb.getcol("TELESCOPE_NAME"))
        project = str(tb.getcol("PROJECT")[0]) if tb.nrows() else ""
        observer = str(tb.getcol("OBSERVER")[0]) if tb.nrows() else ""
    finally:
        tb.close()
    if not telescopes or not all("ALMA" in t.upper() for t in telescopes):
        raise BadInputError(f"{vis}/OBSERVATION: telescope is {telescopes!r}, not ALMA; "
                            "solarpipe processes ALMA solar data only")

    # SPWs
    _open("SPECTRAL_WINDOW")
    try:
        names = list(tb.getcol("NAME"))
        nchan = tb.getcol("NUM_CHAN")
        bw = tb.getcol("TOTAL_BANDWIDTH")
        widths = [float(np.mean(tb.getcell("CHAN_WIDTH", i))) for i in range(tb.nrows())]
        centres = [float(np.mean(tb.getcell("CHAN_FREQ", i))) for i in range(tb.nrows())]
    finally:
        tb.close()
    roles = [hobs.spw_role(n, int(c)) for n, c in zip(names, nchan)]
    sci_spec = hobs.science_setup_spec(zip(names, roles))
    spws = []
    for i, name in enumerate(names):
        spec = hobs.spectral_spec_from_name(name)
        spws.append(SpectralWindow(
            id=i, name=str(name), role=roles[i], nchan=int(nchan[i]),
            ref_freq_hz=float(centres[i]), chan_width_hz=float(widths[i]),
            total_bw_hz=float(bw[i]), baseband=hobs.baseband_from_name(name),
            band=hobs.band_of_spw(name, centres[i]) if roles[i] != "wvr" else None,
            spectral_spec=spec, science_setup=(not sci_spec or not spec or spec == sci_spec)))
    sci_bands = [s.band for s in spws if s.role == "science" and s.band]
    band = max(set(sci_bands), key=sci_bands.count) if sci_bands else None

    # Antennas
    _open("ANTENNA")
    try:
        ant_names = list(tb.getcol("NAME"))
        diam = tb.getcol("DISH_DIAMETER")
        pos = tb.getcol("POSITION")  # (3, nant)
    finally:
        tb.close()
    centre = pos.mean(axis=1)
    enu = _itrf_to_enu(pos - centre[:, None], centre)
    antennas = [Antenna(id=i, name=str(n), diameter_m=float(diam[i]),
                        array=hobs.array_of_antenna(float(diam[i])),
                        position_m=[float(x) for x in pos[:, i]],
                        offset_m=[float(x) for x in enu[:, i]])
                for i, n in enumerate(ant_names)]

    # States: intents and sub-scan numbers
    _open("STATE")
    try:
        obs_modes = [str(m).split(",") for m in tb.getcol("OBS_MODE")] if tb.nrows() else []
        state_subscan = tb.getcol("SUB_SCAN") if tb.nrows() else np.zeros(0, int)
    finally:
        tb.close()

    # Fields
    _open("FIELD")
    try:
        field_names = [str(n) for n in tb.getcol("NAME")]
        has_ephem = "EPHEMERIS_ID" in tb.colnames()
        ephem_ids = tb.getcol("EPHEMERIS_ID") if has_ephem else np.full(len(field_names), -1)
    finally:
        tb.close()

    # Main table: one vectorised read of the columns that define scans/sub-scans
    _open()
    try:
        if tb.nrows() == 0:
            raise BadInputError(f"{vis}: the MAIN table has no rows")
        keywords = tb.getkeywords()
        time_ = tb.getcol("TIME")
        scan_no = tb.getcol("SCAN_NUMBER")
        state_id = tb.getcol("STATE_ID")
        field_id = tb.getcol("FIELD_ID")
        ddid = tb.getcol("DATA_DESC_ID")
    finally:
        tb.close()
    _open("DATA_DESCRIPTION")
    try:
        dd_spw = tb.getcol("SPECTRAL_WINDOW_ID")
    finally:
        tb.close()
    row_spw = dd_spw[ddid]

    msmd.open(vis)
    try:
        phase_dirs = [msmd.phasecenter(i) for i in range(len(field_names))]
    except Exception:  # noqa: BLE001  (ephemeris fields far from the epoch)
        phase_dirs = [None] * len(field_names)
    finally:
        msmd.close()

    scans = []
    field_intents: dict[int, set[str]] = {i: set() for i in range(len(field_names))}
    order = np.lexsort((time_, scan_no))
    time_s, scan_s, state_s, field_s, spw_s = (a[order] for a in (time_, scan_no, state_id, field_id, row_spw))
    bounds = np.flatnonzero(np.diff(scan_s)) + 1
    sci_t = np.isin(spw_s, [s.id for s in spws if s.role == "science"])
    sci_t = sci_t if sci_t.any() else np.ones_like(sci_t)
    steps = np.diff(time_s[sci_t])
    steps = steps[(steps > 1e-3) & (np.diff(scan_s[sci_t]) == 0)]
    integration = float(np.median(steps)) if steps.size else 0.0
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(scan_s)]):
        t, st, fl, sp = time_s[lo:hi], state_s[lo:hi], field_s[lo:hi], spw_s[lo:hi]
        subs = []
        ss_of_row = state_subscan[st] if len(state_subscan) else np.ones(len(st), int)
        for ss in np.unique(ss_of_row):
            m = ss_of_row == ss
            intents = sorted({i for s in np.unique(st[m]) for i in obs_modes[int(s)]}) if obs_modes else []
            subs.append(SubScan(number=int(ss), intents=intents,
                                field_ids=[int(x) for x in np.unique(fl[m])],
                                start_mjd_s=float(t[m].min()), end_mjd_s=float(t[m].max())))
        subs.sort(key=lambda s: s.start_mjd_s)
        intents = sorted({i for s in subs for i in s.intents})
        fids = [int(x) for x in np.unique(fl)]
        for f in fids:
            field_intents[f].update(intents)
        scans.append(Scan(number=int(scan_s[lo]), intents=intents, field_ids=fids,
                          spw_ids=[int(x) for x in np.unique(sp)],
                          start_mjd_s=float(t.min()), end_mjd_s=float(t.max()), subscans=subs))

    fields = []
    for i, name in enumerate(field_names):
        d = phase_dirs[i]
        ra = float(d["m0"]["value"]) if d else float("nan")
        dec = float(d["m1"]["value"]) if d else float("nan")
        fields.append(Field(id=i, name=name, intents=sorted(field_intents[i]),
                            roles=hobs.field_roles(field_intents[i], name),
                            is_ephemeris=bool(has_ephem and int(ephem_ids[i]) >= 0),
                            ra_rad=ra, dec_rad=dec))
    sun_fields = [f for f in fields if "sun" in f.roles]
    if not sun_fields:
        targets = [f.name for f in fields if "target" in f.roles]
        raise BadInputError(
            f"{vis}: no solar target: no field named 'Sun...' observed with OBSERVE_TARGET "
            f"(targets found: {targets or 'none'}); solarpipe needs an ALMA solar EB")

    subtables = {name: _has_rows(vis, keywords, name) for name in ("SYSCAL", "CALDEVICE", "SYSPOWER", "WEATHER")}
    if not subtables["CALDEVICE"]:
        subtables["CALDEVICE"] = _has_rows(vis, keywords, "ASDM_CALDEVICE")

    return ObservingRun(
        vis=str(Path(vis).resolve()), source_vis=str(Path(source_vis or vis).resolve()),
        name=Path(vis).name.removesuffix(".ms"), telescope=telescopes[0], band=band,
        start_mjd_s=float(time_.min()), end_mjd_s=float(time_.max()),
        spws=spws, antennas=antennas, fields=fields, scans=scans,
        mosaic=len(sun_fields) > 1, ephemeris_target=any(f.is_ephemeris for f in sun_fields),
        subtables=subtables, project=project, observer=observer, integration_s=integration)


def _has_rows(vis: str, keywords: dict, name: str) -> bool:
    """True if the MS has the subtable ``name`` (as keyword or directory) with rows."""
    from .msutil import table_nrows

    path = Path(vis) / name
    if name not in keywords and not path.exists():
        return False
    return table_nrows(path) > 0


def _itrf_to_enu(dxyz, centre):
    """Rotate ITRF offsets to local east/north/up at ``centre`` (for plots, refant)."""
    import numpy as np

    x, y, z = centre
    lon = np.arctan2(y, x)
    lat = np.arctan2(z, np.hypot(x, y))
    rot = np.array([
        [-np.sin(lon), np.cos(lon), 0.0],
        [-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)],
        [np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)],
    ])
    return rot @ dxyz
