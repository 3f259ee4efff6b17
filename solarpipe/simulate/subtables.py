"""ALMA calibration subtables written with ``tb.create``: SYSCAL, CALDEVICE, SYSPOWER, WEATHER.

They are registered as MS table keywords (``Table: <ms>/<name>``) so that
``split``/``mstransform`` carry them like ``importasdm`` output.

* SYSCAL: one row per antenna x science SPW x ATM scan (TIME = ATM scan mid
  time, INTERVAL = its duration): TSYS/TRX/TSKY/TCAL/TANT/TANT_TSYS spectra
  [npol, nchan] (float, K; TANT and TANT_TSYS are 0, no source in the ATM
  sky sub-scan) and their flags; ``gencal(caltype='tsys')`` reads TSYS_SPECTRUM.
* CALDEVICE: one row per antenna x science SPW x ATM scan; loads
  ``AMBIENT_LOAD`` and ``HOT_LOAD`` with TEMPERATURE_LOAD [2] (K; the same for
  all SPWs of an antenna and scan), NOISE_CAL, CAL_EFF [npol, 2].
* SYSPOWER: one row per antenna x science SPW x sub-scan (mid time), switched
  power sum/difference proportional to the SQLD power of that baseband and a
  constant requantizer gain.
* WEATHER: one row per minute for the central weather station (ANTENNA_ID 0).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from .instrument import Instrument
from .msbuild import add_subtable_keyword
from .plan import ObservingPlan

LOG = logging.getLogger(__name__)


def _col(vtype: str, ndim: int = 0, comment: str = "") -> dict:
    d = {"valueType": vtype, "dataManagerType": "StandardStMan", "dataManagerGroup": "StandardStMan",
         "option": 0, "maxlen": 0, "comment": comment}
    if ndim:
        d["ndim"] = ndim
    return d


def _create(ms: str, name: str, desc: dict, nrow: int) -> "object":
    import casatools

    path = str(Path(ms).resolve() / name)
    tb = casatools.table()
    tb.create(path, desc, nrow=nrow)
    if "TIME" in desc:
        tb.putcolkeyword("TIME", "QuantumUnits", np.array(["s"]))
        tb.putcolkeyword("TIME", "MEASINFO", {"type": "epoch", "Ref": "UTC"})
    if "INTERVAL" in desc:
        tb.putcolkeyword("INTERVAL", "QuantumUnits", np.array(["s"]))
    return tb


def _atm_rows(inst: Instrument, plan: ObservingPlan):
    """(atm index, scan, antenna, science spw) for every SYSCAL/CALDEVICE row."""
    for a, num in enumerate(inst.atm_scans):
        sc = plan.scan(num)
        for ant in inst.antennas:
            for b, spw in enumerate(inst.science_spws):
                yield a, sc, ant.id, b, spw


def write_syscal(ms: str, inst: Instrument, plan: ObservingPlan) -> None:
    rows = list(_atm_rows(inst, plan))
    desc = {"ANTENNA_ID": _col("int"), "FEED_ID": _col("int"), "SPECTRAL_WINDOW_ID": _col("int"),
            "TIME": _col("double"), "INTERVAL": _col("double")}
    for c in ("TCAL", "TRX", "TSKY", "TSYS", "TANT", "TANT_TSYS"):
        desc[f"{c}_SPECTRUM"] = _col("float", 2)
        desc[f"{c}_FLAG"] = _col("boolean")
    tb = _create(ms, "SYSCAL", desc, len(rows))
    try:
        ant = np.array([r[2] for r in rows], np.int32)
        tb.putcol("ANTENNA_ID", ant)
        tb.putcol("FEED_ID", np.zeros(len(rows), np.int32))
        tb.putcol("SPECTRAL_WINDOW_ID", np.array([r[4].id for r in rows], np.int32))
        tb.putcol("TIME", np.array([plan.start_mjd_s + 0.5 * (r[1].start_s + r[1].end_s) for r in rows]))
        tb.putcol("INTERVAL", np.array([r[1].end_s - r[1].start_s for r in rows]))
        for c in ("TCAL", "TRX", "TSKY", "TSYS", "TANT", "TANT_TSYS"):
            tb.putcol(f"{c}_FLAG", np.zeros(len(rows), bool))
            for k in ("K",):
                tb.putcolkeyword(f"{c}_SPECTRUM", "QuantumUnits", np.array([k]))
        for k, (a, sc, i, b, spw) in enumerate(rows):
            tsys = inst.tsys[a, i, :, b, :].astype(np.float32)
            trx = inst.trx[a, i, :, b, :].astype(np.float32)
            tsky = np.repeat(inst.tsky[a, b][None, :], 2, axis=0).astype(np.float32)
            tcal = np.full_like(tsys, float(inst.t_amb[a, i]))
            zero = np.zeros_like(tsys)
            tb.putcell("TSYS_SPECTRUM", k, tsys)
            tb.putcell("TRX_SPECTRUM", k, trx)
            tb.putcell("TSKY_SPECTRUM", k, tsky)
            tb.putcell("TCAL_SPECTRUM", k, tcal)
            tb.putcell("TANT_SPECTRUM", k, zero)
            tb.putcell("TANT_TSYS_SPECTRUM", k, zero)
    finally:
        tb.close()
    add_subtable_keyword(ms, "SYSCAL")


def write_caldevice(ms: str, inst: Instrument, plan: ObservingPlan) -> None:
    rows = list(_atm_rows(inst, plan))
    desc = {"ANTENNA_ID": _col("int"), "FEED_ID": _col("int"), "SPECTRAL_WINDOW_ID": _col("int"),
            "TIME": _col("double"), "INTERVAL": _col("double"), "NUM_CAL_LOAD": _col("int"),
            "CAL_LOAD_NAMES": _col("string", 1), "NUM_RECEPTOR": _col("int"), "NOISE_CAL": _col("double", 1),
            "CAL_EFF": _col("float", 2), "TEMPERATURE_LOAD": _col("double", 1)}
    tb = _create(ms, "CALDEVICE", desc, len(rows))
    try:
        tb.putcol("ANTENNA_ID", np.array([r[2] for r in rows], np.int32))
        tb.putcol("FEED_ID", np.zeros(len(rows), np.int32))
        tb.putcol("SPECTRAL_WINDOW_ID", np.array([r[4].id for r in rows], np.int32))
        tb.putcol("TIME", np.array([plan.start_mjd_s + 0.5 * (r[1].start_s + r[1].end_s) for r in rows]))
        tb.putcol("INTERVAL", np.array([r[1].end_s - r[1].start_s for r in rows]))
        tb.putcol("NUM_CAL_LOAD", np.full(len(rows), 2, np.int32))
        tb.putcol("NUM_RECEPTOR", np.full(len(rows), 2, np.int32))
        tb.putcolkeyword("TEMPERATURE_LOAD", "QuantumUnits", np.array(["K"]))
        for k, (a, sc, i, b, spw) in enumerate(rows):
            tb.putcell("CAL_LOAD_NAMES", k, np.array(["AMBIENT_LOAD", "HOT_LOAD"]))
            tb.putcell("NOISE_CAL", k, np.array([0.0, 0.0]))
            tb.putcell("CAL_EFF", k, np.full((2, 2), 0.99, np.float32))
            tb.putcell("TEMPERATURE_LOAD", k, np.array([float(inst.t_amb[a, i]), float(inst.t_hot[a, i])]))
    finally:
        tb.close()
    add_subtable_keyword(ms, "CALDEVICE")


def write_syspower(ms: str, inst: Instrument, plan: ObservingPlan) -> None:
    subs = [s for s in plan.subscans if plan.scan(s.scan_number).setup == "main"]
    rows = [(s, ant.id, b, spw) for s in subs for ant in inst.antennas for b, spw in enumerate(inst.science_spws)]
    desc = {"ANTENNA_ID": _col("int"), "FEED_ID": _col("int"), "SPECTRAL_WINDOW_ID": _col("int"),
            "TIME": _col("double"), "INTERVAL": _col("double"), "SWITCHED_DIFF": _col("float", 1),
            "SWITCHED_SUM": _col("float", 1), "REQUANTIZER_GAIN": _col("float", 1)}
    tb = _create(ms, "SYSPOWER", desc, len(rows))
    try:
        tb.putcol("ANTENNA_ID", np.array([r[1] for r in rows], np.int32))
        tb.putcol("FEED_ID", np.zeros(len(rows), np.int32))
        tb.putcol("SPECTRAL_WINDOW_ID", np.array([r[3].id for r in rows], np.int32))
        tb.putcol("TIME", np.array([plan.start_mjd_s + 0.5 * (r[0].start_s + r[0].end_s) for r in rows]))
        tb.putcol("INTERVAL", np.array([r[0].end_s - r[0].start_s for r in rows]))
        cache: dict[int, np.ndarray] = {}
        for k, (s, i, b, spw) in enumerate(rows):
            if s.index not in cache:
                cache[s.index] = inst.sqld_power(s.index)
            p = cache[s.index][i, :, b].astype(np.float32)
            tb.putcell("SWITCHED_SUM", k, p)
            tb.putcell("SWITCHED_DIFF", k, (2e-3 * p).astype(np.float32))
            tb.putcell("REQUANTIZER_GAIN", k, np.array([1.0, 1.0], np.float32))
    finally:
        tb.close()
    add_subtable_keyword(ms, "SYSPOWER")


def write_weather(ms: str, plan: ObservingPlan, seed: int) -> None:
    from .instrument import rng_for

    r = rng_for(seed, "weather")
    t0 = plan.start_mjd_s + plan.scans[0].start_s
    t1 = plan.start_mjd_s + plan.scans[-1].end_s
    times = np.arange(t0, t1 + 60.0, 60.0)
    n = len(times)
    desc = {"ANTENNA_ID": _col("int"), "TIME": _col("double"), "INTERVAL": _col("double"),
            "PRESSURE": _col("float"), "PRESSURE_FLAG": _col("boolean"), "REL_HUMIDITY": _col("float"),
            "REL_HUMIDITY_FLAG": _col("boolean"), "TEMPERATURE": _col("float"), "TEMPERATURE_FLAG": _col("boolean"),
            "WIND_DIRECTION": _col("float"), "WIND_DIRECTION_FLAG": _col("boolean"), "WIND_SPEED": _col("float"),
            "WIND_SPEED_FLAG": _col("boolean"), "DEW_POINT": _col("float"), "DEW_POINT_FLAG": _col("boolean")}
    tb = _create(ms, "WEATHER", desc, n)
    try:
        tb.putcol("ANTENNA_ID", np.zeros(n, np.int32))
        tb.putcol("TIME", times)
        tb.putcol("INTERVAL", np.full(n, 60.0))
        tb.putcol("PRESSURE", (556.0 + 0.3 * r.standard_normal(n)).astype(np.float32))
        tb.putcol("REL_HUMIDITY", (12.0 + 1.0 * r.standard_normal(n)).astype(np.float32))
        temp = 271.0 + np.linspace(0, 1.5, n) + 0.2 * r.standard_normal(n)
        tb.putcol("TEMPERATURE", temp.astype(np.float32))
        tb.putcol("WIND_DIRECTION", np.mod(math.radians(300) + 0.2 * r.standard_normal(n), 2 * np.pi).astype(np.float32))
        tb.putcol("WIND_SPEED", np.abs(5.0 + 1.0 * r.standard_normal(n)).astype(np.float32))
        tb.putcol("DEW_POINT", (temp - 25.0).astype(np.float32))
        for c in ("PRESSURE", "REL_HUMIDITY", "TEMPERATURE", "WIND_DIRECTION", "WIND_SPEED", "DEW_POINT"):
            tb.putcol(f"{c}_FLAG", np.zeros(n, bool))
        for c, u in (("PRESSURE", "hPa"), ("REL_HUMIDITY", "%"), ("TEMPERATURE", "K"), ("WIND_DIRECTION", "rad"),
                     ("WIND_SPEED", "m/s"), ("DEW_POINT", "K")):
            tb.putcolkeyword(c, "QuantumUnits", np.array([u]))
    finally:
        tb.close()
    add_subtable_keyword(ms, "WEATHER")
