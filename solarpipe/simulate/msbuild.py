"""MeasurementSet structure with casatools ``simulator``; MAIN rows written with numpy.

How the MS is built (and why):

* a scratch *template* MS is observed with ``sm.observe`` once per sub-scan on a
  single 1-channel SPW: it gives CASA's own TIME/UVW per integration and
  baseline and a POINTING table, cheaply (no data volume);
* the real MS is created by ``sm`` with the full antenna/SPW/field/feed
  set-up but *no* observation (``sm`` cannot write autocorrelation-only SPWs,
  ALMA intents or sub-scans; rows cannot be removed from its storage managers);
  MODEL_DATA/CORRECTED_DATA are removed (``importasdm`` does not write them);
* MAIN rows are appended with ``tb.addrows``/``tb.putcol`` in per-scan,
  per-SPW blocks; SPECTRAL_WINDOW, POLARIZATION, DATA_DESCRIPTION, FIELD,
  OBSERVATION, STATE and PROCESSOR are rewritten to look like ``importasdm``
  output; POINTING rows are copied from the template.

``sm`` interprets its reference epoch as UTC but writes times shifted by TAI-UTC
(37 s in 2017); the reference is moved back by that amount so TIME is what the
plan says (and UVW, computed by ``sm`` at TIME, stay consistent).
"""
from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np

from .array import Antenna
from .config import SimConfig, SpwSpec
from .plan import ObservingPlan

LOG = logging.getLogger(__name__)


def tai_minus_utc(mjd_s: float) -> float:
    """TAI - UTC (s) at the given UTC time, from casacore's leap-second table."""
    import casatools

    me = casatools.measures()
    qa = casatools.quanta()
    e = me.epoch("UTC", qa.quantity(mjd_s, "s"))
    tai = me.measure(e, "TAI")
    return round(tai["m0"]["value"] * 86400.0 - mjd_s, 6)


def _sm_common(sm, me, qa, antennas: list[Antenna], fields) -> None:
    x = [a.local_xyz[0] for a in antennas]
    y = [a.local_xyz[1] for a in antennas]
    z = [a.local_xyz[2] for a in antennas]
    sm.setconfig(telescopename="ALMA", x=x, y=y, z=z, dishdiameter=[a.diameter_m for a in antennas],
                 mount=["ALT-AZ"] * len(antennas), antname=[a.name for a in antennas],
                 padname=[a.station for a in antennas], coordsystem="local",
                 referencelocation=me.observatory("ALMA"))
    sm.setfeed(mode="perfect X Y", pol=[""])
    for f in fields:
        sm.setfield(sourcename=f.name, sourcedirection=me.direction("J2000", qa.quantity(f.ra, "rad"),
                                                                   qa.quantity(f.dec, "rad")),
                    calcode="none")


def observe_template(path: str, cfg: SimConfig, antennas: list[Antenna], plan: ObservingPlan,
                     freq_hz: float) -> dict[str, np.ndarray]:
    """Observe every sub-scan on a 1-channel SPW; return TIME/ANTENNA1/2/UVW/sub-scan index arrays."""
    import casatools

    sm = casatools.simulator()
    me = casatools.measures()
    qa = casatools.quanta()
    tb = casatools.table()
    if Path(path).exists():
        shutil.rmtree(path)
    leap = tai_minus_utc(plan.start_mjd_s)
    sm.open(path)
    try:
        _sm_common(sm, me, qa, antennas, plan.fields)
        sm.setspwindow(spwname="TEMPLATE", freq=qa.quantity(freq_hz, "Hz"), deltafreq="2GHz",
                       freqresolution="2GHz", nchannels=1, stokes="XX YY")
        sm.setauto(autocorrwt=1.0)
        sm.setlimits(shadowlimit=1.0, elevationlimit="0deg")
        sm.settimes(integrationtime=qa.quantity(cfg.integration_s, "s"), usehourangle=False,
                    referencetime=me.epoch("UTC", qa.quantity(plan.start_mjd_s - leap, "s")))
        subs = plan.subscans
        for k, s in enumerate(subs):
            sm.observe(sourcename=plan.fields[s.field_id].name, spwname="TEMPLATE",
                       starttime=qa.quantity(s.start_s, "s"), stoptime=qa.quantity(s.end_s, "s"))
            if (k + 1) % 50 == 0:
                LOG.info("template: sub-scan %d/%d", k + 1, len(subs))
    finally:
        sm.close()
        sm.done()
    tb.open(path)
    try:
        out = {c: tb.getcol(c) for c in ("TIME", "ANTENNA1", "ANTENNA2", "UVW", "SCAN_NUMBER", "FIELD_ID")}
    finally:
        tb.close()
    out["SUBSCAN_INDEX"] = out.pop("SCAN_NUMBER") - 1
    # check the timing against the plan (first integration centre of the first sub-scan)
    first = plan.subscans[0]
    t_expect = plan.start_mjd_s + first.start_s + 0.5 * cfg.integration_s
    sel = out["SUBSCAN_INDEX"] == 0
    dt = float(out["TIME"][sel].min() - t_expect)
    if abs(dt) > 1e-3:
        LOG.warning("template times differ from the plan by %.3f s; shifting TIME (UVW kept)", dt)
        out["TIME"] = out["TIME"] - dt
    return out


def create_structure(path: str, cfg: SimConfig, antennas: list[Antenna], spws: list[SpwSpec],
                     plan: ObservingPlan) -> None:
    """An empty MS with ANTENNA/SPW/FIELD/FEED/... from ``sm`` and no MODEL/CORRECTED columns."""
    import casatools

    sm = casatools.simulator()
    me = casatools.measures()
    qa = casatools.quanta()
    tb = casatools.table()
    if Path(path).exists():
        shutil.rmtree(path)
    sm.open(path)
    try:
        _sm_common(sm, me, qa, antennas, plan.fields)
        for s in spws:
            f0 = float(s.chan_freqs_hz[0])
            df = float(s.chan_widths_hz[0])
            sm.setspwindow(spwname=s.name, freq=qa.quantity(f0, "Hz"), deltafreq=qa.quantity(df, "Hz"),
                           freqresolution=qa.quantity(abs(df), "Hz"), nchannels=s.nchan, stokes="XX YY")
        sm.setauto(autocorrwt=1.0)
    finally:
        sm.close()
        sm.done()
    tb.open(path, nomodify=False)
    try:
        drop = [c for c in ("MODEL_DATA", "CORRECTED_DATA") if c in tb.colnames()]
        if drop:
            tb.removecols(drop)
        # sm's default tiles are [.,100,100]: 128-channel rows would use two tiles (56 % waste);
        # recreate the (still empty) DATA/FLAG columns with tiles holding whole spectra
        nchan = max(s.nchan for s in spws)
        for col, group in (("DATA", "TiledDATA"), ("FLAG", "TiledFLAG")):
            desc = tb.getcoldesc(col)
            desc["dataManagerGroup"] = group
            tb.removecols([col])
            tb.addcols({col: desc}, dminfo={"TYPE": "TiledShapeStMan", "NAME": group,
                                            "SPEC": {"DEFAULTTILESHAPE": np.array([2, nchan, 128], dtype=np.int32)}})
    finally:
        tb.close()


def antenna_positions(path: str) -> np.ndarray:
    """ITRF antenna positions (n, 3) from the MS ANTENNA table."""
    import casatools

    tb = casatools.table()
    tb.open(path + "/ANTENNA")
    try:
        return tb.getcol("POSITION").T.copy()
    finally:
        tb.close()


def _add_column(tb, name: str, value_type: str, ndim: int = 0, comment: str = "") -> None:
    if name in tb.colnames():
        return
    desc = {"valueType": value_type, "dataManagerType": "StandardStMan", "dataManagerGroup": "StandardStMan",
            "option": 0, "maxlen": 0, "comment": comment}
    if ndim:
        desc["ndim"] = ndim
    tb.addcols({name: desc})


def write_spectral_windows(path: str, spws: list[SpwSpec]) -> None:
    """SPECTRAL_WINDOW like importasdm: names, exact frequencies, BBC_NO and CH_AVG association."""
    import casatools

    tb = casatools.table()
    tb.open(path + "/SPECTRAL_WINDOW", nomodify=False)
    try:
        _add_column(tb, "BBC_NO", "int", comment="Baseband converter number")
        _add_column(tb, "ASSOC_SPW_ID", "int", ndim=-1, comment="Associated spectral windows")
        _add_column(tb, "ASSOC_NATURE", "string", ndim=-1, comment="Nature of the association")
        for s in spws:
            tb.putcell("NAME", s.id, s.name)
            tb.putcell("CHAN_FREQ", s.id, np.asarray(s.chan_freqs_hz, float))
            tb.putcell("CHAN_WIDTH", s.id, np.asarray(s.chan_widths_hz, float))
            tb.putcell("EFFECTIVE_BW", s.id, np.abs(np.asarray(s.chan_widths_hz, float)))
            tb.putcell("RESOLUTION", s.id, np.abs(np.asarray(s.chan_widths_hz, float)))
            tb.putcell("TOTAL_BANDWIDTH", s.id, s.total_bandwidth_hz)
            tb.putcell("REF_FREQUENCY", s.id, s.ref_freq_hz)
            tb.putcell("NET_SIDEBAND", s.id, s.net_sideband)
            tb.putcell("NUM_CHAN", s.id, s.nchan)
            tb.putcell("MEAS_FREQ_REF", s.id, 5)  # TOPO
            tb.putcell("BBC_NO", s.id, s.baseband)
            tb.putcell("FREQ_GROUP_NAME", s.id, "")
            assoc, nature = [], []
            if s.role in ("science", "ch_avg"):
                twin_role = "ch_avg" if s.role == "science" else "science"
                twin = [t for t in spws if t.role == twin_role and t.baseband == s.baseband]
                if twin:
                    assoc = [twin[0].id]
                    nature = ["CHANNEL_AVERAGE" if s.role == "science" else "FULL_RESOLUTION"]
            tb.putcell("ASSOC_SPW_ID", s.id, np.array(assoc, dtype=np.int32))
            tb.putcell("ASSOC_NATURE", s.id, np.array(nature, dtype=str) if nature else np.array([], dtype=str))
    finally:
        tb.close()


def write_pol_and_dd(path: str, spws: list[SpwSpec]) -> None:
    """One POLARIZATION row (XX, YY) and one DATA_DESCRIPTION row per SPW (DDID = SPW id)."""
    import casatools

    tb = casatools.table()
    tb.open(path + "/POLARIZATION", nomodify=False)
    try:
        if tb.nrows() > 1:
            tb.removerows(list(range(1, tb.nrows())))
        tb.putcell("NUM_CORR", 0, 2)
        tb.putcell("CORR_TYPE", 0, np.array([9, 12], dtype=np.int32))
        tb.putcell("CORR_PRODUCT", 0, np.array([[0, 1], [0, 1]], dtype=np.int32))
        tb.putcell("FLAG_ROW", 0, False)
    finally:
        tb.close()
    tb.open(path + "/DATA_DESCRIPTION", nomodify=False)
    try:
        if tb.nrows() < len(spws):
            tb.addrows(len(spws) - tb.nrows())
        tb.putcol("SPECTRAL_WINDOW_ID", np.array([s.id for s in spws], dtype=np.int32))
        tb.putcol("POLARIZATION_ID", np.zeros(len(spws), dtype=np.int32))
        tb.putcol("FLAG_ROW", np.zeros(len(spws), dtype=bool))
    finally:
        tb.close()


def write_fields_and_observation(path: str, plan: ObservingPlan, field_time: dict[int, float],
                                 cfg: SimConfig) -> None:
    """FIELD codes/times and the OBSERVATION row (telescope, time range, EB uid)."""
    import casatools

    tb = casatools.table()
    tb.open(path + "/FIELD", nomodify=False)
    try:
        for f in plan.fields:
            tb.putcell("TIME", f.id, field_time[f.id])
            tb.putcell("CODE", f.id, "none")
    finally:
        tb.close()
    t0 = plan.start_mjd_s + plan.scans[0].start_s
    t1 = plan.start_mjd_s + plan.scans[-1].end_s
    tb.open(path + "/OBSERVATION", nomodify=False)
    try:
        if tb.nrows() == 0:
            tb.addrows(1)
        tb.putcell("TELESCOPE_NAME", 0, "ALMA")
        tb.putcell("TIME_RANGE", 0, np.array([t0, t1]))
        tb.putcell("OBSERVER", 0, "solarsim")
        tb.putcell("PROJECT", 0, "uid://A001/X12a3/Xsim")
        tb.putcell("SCHEDULE_TYPE", 0, "ALMA")
        tb.putcell("SCHEDULE", 0, np.array([f"SchedulingBlock uid://A002/Xsim/X{cfg.seed:x}",
                                            f"ExecBlock uid://{cfg.eb_name.replace('uid___', '').replace('_', '/')}"]))
        tb.putcell("LOG", 0, np.array(["simulated by solarpipe.simulate"]))
        tb.putcell("RELEASE_DATE", 0, t1 + 365 * 86400.0)
        tb.putcell("FLAG_ROW", 0, False)
    finally:
        tb.close()


def write_state(path: str, plan: ObservingPlan) -> dict[tuple[str, int], int]:
    """STATE rows, one per (OBS_MODE, SUB_SCAN); returns the map to STATE_ID."""
    import casatools

    keys: list[tuple[str, int]] = []
    for s in plan.subscans:
        k = (s.obs_mode, s.number)
        if k not in keys:
            keys.append(k)
    tb = casatools.table()
    tb.open(path + "/STATE", nomodify=False)
    try:
        tb.addrows(len(keys))
        tb.putcol("OBS_MODE", np.array([k[0] for k in keys]))
        tb.putcol("SUB_SCAN", np.array([k[1] for k in keys], dtype=np.int32))
        tb.putcol("SIG", np.array(["#ON_SOURCE" in k[0] for k in keys]))
        tb.putcol("REF", np.array(["#OFF_SOURCE" in k[0] for k in keys]))
        tb.putcol("CAL", np.zeros(len(keys)))
        tb.putcol("LOAD", np.zeros(len(keys)))
        tb.putcol("FLAG_ROW", np.zeros(len(keys), dtype=bool))
    finally:
        tb.close()
    return {k: i for i, k in enumerate(keys)}


def write_processor(path: str) -> None:
    """PROCESSOR rows: 0 correlator, 1 WVR radiometer."""
    import casatools

    tb = casatools.table()
    tb.open(path + "/PROCESSOR", nomodify=False)
    try:
        tb.addrows(2)
        tb.putcol("TYPE", np.array(["CORRELATOR", "RADIOMETER"]))
        tb.putcol("SUB_TYPE", np.array(["ALMA_CORRELATOR_MODE", "ALMA_RADIOMETER"]))
        tb.putcol("TYPE_ID", np.array([-1, -1], dtype=np.int32))
        tb.putcol("MODE_ID", np.array([-1, -1], dtype=np.int32))
        tb.putcol("FLAG_ROW", np.zeros(2, dtype=bool))
    finally:
        tb.close()


def copy_pointing(template: str, path: str) -> None:
    """Copy the POINTING rows of the template MS (same antennas and times)."""
    import casatools

    tb = casatools.table()
    out = casatools.table()
    tb.open(template + "/POINTING")
    out.open(path + "/POINTING", nomodify=False)
    try:
        if tb.nrows():
            tb.copyrows(outtable=path + "/POINTING", startrowin=0, startrowout=-1, nrow=-1)
    finally:
        out.close()
        tb.close()


def fix_source_table(path: str, plan: ObservingPlan, spws: list[SpwSpec]) -> None:
    """SOURCE rows valid for the EB (time, interval)."""
    import casatools

    tb = casatools.table()
    tb.open(path + "/SOURCE", nomodify=False)
    try:
        n = tb.nrows()
        mid = plan.start_mjd_s + 0.5 * (plan.scans[0].start_s + plan.scans[-1].end_s)
        tb.putcol("TIME", np.full(n, mid))
        tb.putcol("INTERVAL", np.full(n, plan.duration_s + 3600.0))
        tb.putcol("SPECTRAL_WINDOW_ID", np.full(n, -1, dtype=np.int32))
    finally:
        tb.close()


class MainTableWriter:
    """Append MAIN rows in blocks (all rows of a block share the data shape)."""

    SCALARS = ("TIME", "TIME_CENTROID", "INTERVAL", "EXPOSURE", "ANTENNA1", "ANTENNA2", "FEED1", "FEED2",
               "DATA_DESC_ID", "FIELD_ID", "SCAN_NUMBER", "STATE_ID", "OBSERVATION_ID", "ARRAY_ID",
               "PROCESSOR_ID", "FLAG_ROW")

    def __init__(self, path: str):
        import casatools

        self.tb = casatools.table()
        self.tb.open(path, nomodify=False)
        self.nrows = self.tb.nrows()

    def append(self, cols: dict[str, np.ndarray]) -> None:
        n = len(cols["TIME"])
        if n == 0:
            return
        start = self.nrows
        self.tb.addrows(n)
        for name, arr in cols.items():
            self.tb.putcol(name, arr, startrow=start, nrow=n)
        self.nrows += n

    def reserve(self, n: int) -> int:
        """Add ``n`` empty rows (filled later with :meth:`put`); returns the first new row."""
        start = self.nrows
        if n:
            self.tb.addrows(n)
            self.nrows += n
        return start

    def put(self, start: int, cols: dict[str, np.ndarray]) -> None:
        """Fill reserved rows ``start .. start+n-1`` (n from the TIME column)."""
        n = len(cols["TIME"])
        for name, arr in cols.items():
            self.tb.putcol(name, arr, startrow=start, nrow=n)

    def close(self) -> None:
        self.tb.flush()
        self.tb.close()


def add_subtable_keyword(path: str, name: str) -> None:
    """Register ``path/name`` as an MS subtable keyword (so ``split`` etc. carry it)."""
    import casatools

    tb = casatools.table()
    tb.open(path, nomodify=False)
    try:
        tb.putkeyword(name, f"Table: {Path(path).resolve()}/{name}")
    finally:
        tb.close()


def du_bytes(path: str) -> int:
    """Size on disk of a directory tree (bytes)."""
    total = 0
    for p in Path(path).rglob("*"):
        if p.is_file():
            total += p.stat().st_size
    return total


def field_sun_directions(plan: ObservingPlan, sun_ra: float, sun_dec: float) -> None:
    """Set the fixed J2000 directions of the Sun pointings: Sun centre at t_ref + sky offset."""
    from .ephemeris import tangent_to_radec

    for f in plan.sun_fields:
        xi, eta = f.sky_offset_arcsec
        ra, dec = tangent_to_radec(sun_ra, sun_dec, xi, eta)
        f.ra, f.dec = float(ra), float(dec)
    LOG.debug("Sun fields at %s", [(round(math.degrees(f.ra), 5), round(math.degrees(f.dec), 5))
                                    for f in plan.sun_fields])
