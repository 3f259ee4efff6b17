"""The simulated solar EB read back with casatools alone and checked against its truth."""
from __future__ import annotations

import csv
import json
import math
import re
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest

casatools = pytest.importorskip("casatools")

from solarpipe.simulate import (bad_visibility_mask, load_truth, predictor_from_truth,  # noqa: E402
                                simulate_eb, truth_corruption, truth_model_visibilities)
from solarpipe.simulate.truth import gain_model_from_truth, truth_arrays  # noqa: E402

REQUIRED_KEYS = ["schema", "name", "seed", "size", "band", "ms", "obs_start_utc", "spws", "antennas", "fields",
                 "scans", "mosaic", "n_pointings", "atm_for_science", "tsys", "tant", "loads", "p_zero", "gains",
                 "bandpass", "calibrators", "bad_data", "sky_model", "tp_map", "catalogue", "features",
                 "primary_beam", "noise_sigma", "sun_field_convention"]
NAME_RE = {
    "science": re.compile(r"^X\d+#ALMA_RB_0[36]#BB_[1-4]#SW-01#FULL_RES$"),
    "ch_avg": re.compile(r"^X\d+#ALMA_RB_0[36]#BB_[1-4]#SW-01#CH_AVG$"),
    "sqld": re.compile(r"^X\d+#ALMA_RB_0[36]#BB_[1-4]#SQLD$"),
    "sqld_zero": re.compile(r"^X\d+#ALMA_RB_0[36]#BB_[1-4]#SQLD$"),
    "wvr": re.compile(r"^WVR#NOMINAL$"),
}


# ----------------------------------------------------------------------------- helpers
def _col(ms: str, table: str, col: str):
    tb = casatools.table()
    tb.open(f"{ms}/{table}" if table else ms)
    try:
        return tb.getcol(col)
    finally:
        tb.close()


def _query(ms: str, where: str, cols: list[str]) -> dict[str, np.ndarray]:
    tb = casatools.table()
    tb.open(ms)
    try:
        q = tb.query(where)
        try:
            return {c: q.getcol(c) for c in cols} if q.nrows() else {c: np.array([]) for c in cols}
        finally:
            q.close()
    finally:
        tb.close()


def _spw_ids(truth: dict, role: str) -> list[int]:
    return [s["id"] for s in sorted(truth["spws"], key=lambda s: s["baseband"]) if s["role"] == role]


def _states(ms: str) -> tuple[np.ndarray, np.ndarray]:
    return _col(ms, "STATE", "OBS_MODE"), _col(ms, "STATE", "SUB_SCAN")


# ----------------------------------------------------------------------------- structure
def test_truth_has_required_keys(tiny_eb):
    truth = load_truth(tiny_eb.truth_json)
    missing = [k for k in REQUIRED_KEYS if k not in truth]
    assert not missing
    assert truth["schema"] == 1
    for p in (tiny_eb.ms, tiny_eb.tp_map_fits, tiny_eb.tp_map_image, tiny_eb.catalogue, tiny_eb.sky_model):
        assert Path(p).exists(), p


def test_spw_names_roles_and_default_ids(tiny_eb):
    truth = tiny_eb.truth
    names = _col(tiny_eb.ms, "SPECTRAL_WINDOW", "NAME")
    nchan = _col(tiny_eb.ms, "SPECTRAL_WINDOW", "NUM_CHAN")
    for s in truth["spws"]:
        assert NAME_RE[s["role"]].match(names[s["id"]]), names[s["id"]]
        assert nchan[s["id"]] == s["nchan"]
    assert _spw_ids(truth, "sqld") == [0, 1, 2, 3]
    assert _spw_ids(truth, "wvr") == [4]
    assert _spw_ids(truth, "science") == [5, 7, 9, 11]
    assert _spw_ids(truth, "ch_avg") == [6, 8, 10, 12]
    assert _spw_ids(truth, "sqld_zero") == [13, 14, 15, 16]
    prefix = {n.split("#")[0] for n in names[13:17]}
    assert prefix and prefix.isdisjoint({n.split("#")[0] for n in names[0:4]})
    tb = casatools.table()
    tb.open(tiny_eb.ms + "/SPECTRAL_WINDOW")
    try:
        centres = [float(np.mean(tb.getcell("CHAN_FREQ", i))) / 1e9 for i in _spw_ids(truth, "science")]
        widths = [abs(float(tb.getcell("CHAN_WIDTH", i)[0])) for i in _spw_ids(truth, "science")]
        wvr = tb.getcell("CHAN_FREQ", 4)
    finally:
        tb.close()
    assert np.allclose(centres, [93, 95, 105, 107], atol=0.05)
    assert np.allclose(np.array(widths) * np.array([s["nchan"] for s in truth["spws"] if s["role"] == "science"]),
                       2e9)
    assert len(wvr) == 4 and np.all(np.abs(wvr / 1e9 - 183.3) < 8)


def test_alt_spw_layout(sim_eb_factory):
    eb = sim_eb_factory(spw_layout="alt", noise=False, bad_data=False)
    truth = eb.truth
    assert _spw_ids(truth, "wvr") == [0]
    assert _spw_ids(truth, "science") == [1, 3, 5, 7]
    assert _spw_ids(truth, "ch_avg") == [2, 4, 6, 8]
    assert _spw_ids(truth, "sqld") == [9, 10, 11, 12]
    assert _spw_ids(truth, "sqld_zero") == [13, 14, 15, 16]
    names = _col(eb.ms, "SPECTRAL_WINDOW", "NAME")
    assert names[1].endswith("#BB_1#SW-01#FULL_RES") and names[9].endswith("#BB_1#SQLD")


def test_band6_frequencies(sim_eb_factory):
    eb = sim_eb_factory(band=6, noise=False, bad_data=False)
    tb = casatools.table()
    tb.open(eb.ms + "/SPECTRAL_WINDOW")
    try:
        names = tb.getcol("NAME")
        centres = [float(np.mean(tb.getcell("CHAN_FREQ", i))) / 1e9 for i in _spw_ids(eb.truth, "science")]
    finally:
        tb.close()
    assert all("ALMA_RB_06" in n for n in names if n != "WVR#NOMINAL")
    assert np.allclose(centres, [230, 232, 246, 248], atol=0.05)


def test_autocorrelation_only_spws(tiny_eb):
    truth = tiny_eb.truth
    for role in ("sqld", "sqld_zero", "wvr"):
        for spw in _spw_ids(truth, role):
            d = _query(tiny_eb.ms, f"DATA_DESC_ID=={spw}", ["ANTENNA1", "ANTENNA2"])
            assert len(d["ANTENNA1"]) > 0
            assert np.all(d["ANTENNA1"] == d["ANTENNA2"]), (role, spw)
    for spw in _spw_ids(truth, "science") + _spw_ids(truth, "ch_avg"):
        d = _query(tiny_eb.ms, f"DATA_DESC_ID=={spw}", ["ANTENNA1", "ANTENNA2"])
        assert np.any(d["ANTENNA1"] != d["ANTENNA2"])


def test_antennas(tiny_eb):
    names = list(_col(tiny_eb.ms, "ANTENNA", "NAME"))
    diam = _col(tiny_eb.ms, "ANTENNA", "DISH_DIAMETER")
    assert names == [a["name"] for a in tiny_eb.truth["antennas"]]
    for n, d in zip(names, diam):
        assert re.match(r"^(DA4\d|DA[56]\d|DV\d\d|PM0\d|CM\d\d)$", n)
        assert d == (7.0 if n.startswith("CM") else 12.0)
    assert sum(d == 7.0 for d in diam) == 2


def test_scan_sequence_intents_and_subscans(tiny_eb):
    ms, truth = tiny_eb.ms, tiny_eb.truth
    modes, subscans = _states(ms)
    msmd = casatools.msmetadata()
    msmd.open(ms)
    try:
        scans = list(msmd.scannumbers())
        assert scans == list(range(1, len(truth["scans"]) + 1))
        for sc in truth["scans"]:
            assert set(msmd.intentsforscan(sc["number"])) == {
                m for ss in sc["subscans"] for m in ss["obs_mode"].split(",")}
            assert sorted(msmd.fieldsforscan(sc["number"])) == sorted(sc["field_ids"])
        t_start = [float(np.min(msmd.timesforscan(s))) for s in scans]
        assert t_start == sorted(t_start)
    finally:
        msmd.close()
    kinds = [s["kind"] for s in truth["scans"]]
    assert kinds[0] == "zero" and kinds[1] == "pointing" and kinds[-1] == "phase"
    assert kinds[2] == "atm" and kinds[3] == "bandpass"
    # scan 1: only the zero-level SQLD SPWs
    d = _query(ms, "SCAN_NUMBER==1", ["DATA_DESC_ID"])
    assert set(d["DATA_DESC_ID"]) == set(_spw_ids(truth, "sqld_zero"))
    d = _query(ms, "SCAN_NUMBER==2", ["DATA_DESC_ID"])
    assert not set(d["DATA_DESC_ID"]) & set(_spw_ids(truth, "sqld_zero"))
    # sub-scans from STATE
    for sc in truth["scans"]:
        d = _query(ms, f"SCAN_NUMBER=={sc['number']}", ["STATE_ID", "TIME"])
        got = sorted({(int(subscans[s]), str(modes[s])) for s in d["STATE_ID"]})
        want = sorted({(ss["number"], ss["obs_mode"]) for ss in sc["subscans"]})
        assert got == want
        if sc["kind"] in ("atm", "zero"):
            assert [ss["obs_mode"].split(",")[0] for ss in sc["subscans"]] == [
                "CALIBRATE_ATMOSPHERE#OFF_SOURCE", "CALIBRATE_ATMOSPHERE#AMBIENT", "CALIBRATE_ATMOSPHERE#HOT"]
        if sc["kind"] == "science":
            m = [ss["obs_mode"] for ss in sc["subscans"]]
            assert m[0] == m[-1] == "OBSERVE_TARGET#OFF_SOURCE"
            assert all(x == "OBSERVE_TARGET#ON_SOURCE" for x in m[1:-1])
            on = [ss for ss in sc["subscans"][1:-1]]
            assert all(30 <= ss["end_mjd_s"] - ss["start_mjd_s"] <= 60 for ss in on)
    # every science scan is preceded by an ATM scan on the Sun
    for s, a in truth["atm_for_science"].items():
        atm = truth["scans"][a - 1]
        assert atm["kind"] == "atm" and truth["fields"][atm["field_ids"][0]]["role"] == "sun"
        assert a < int(s)


def test_extra_atm_scan_breaks_scan_minus_one(sim_eb_factory):
    eb = sim_eb_factory(extra_atm_scan=True, noise=False, bad_data=False)
    truth = eb.truth
    for s, a in truth["atm_for_science"].items():
        prev = truth["scans"][int(s) - 2]
        assert prev["kind"] == "atm" and prev["number"] != a
        assert truth["fields"][prev["field_ids"][0]]["role"] == "phase"
        assert truth["fields"][truth["scans"][a - 1]["field_ids"][0]]["role"] == "sun"


# ----------------------------------------------------------------------------- ephemeris
def _check_phasecentres(eb):
    truth = eb.truth
    msmd = casatools.msmetadata()
    msmd.open(eb.ms)
    try:
        for f in truth["fields"]:
            pc = msmd.phasecenter(f["id"])
            ra, dec = pc["m0"]["value"], pc["m1"]["value"]
            dra = (ra - math.radians(f["ra_deg"]) + math.pi) % (2 * math.pi) - math.pi
            sep = math.hypot(dra * math.cos(dec), dec - math.radians(f["dec_deg"])) * 206264.8
            assert sep < 1e-3, (f["name"], sep)
    finally:
        msmd.close()


def test_ephemeris_attached_and_phasecentre(tiny_eb):
    ms, truth = tiny_eb.ms, tiny_eb.truth
    eph_id = _col(ms, "FIELD", "EPHEMERIS_ID")
    names = _col(ms, "FIELD", "NAME")
    for f in truth["fields"]:
        assert (eph_id[f["id"]] >= 0) == f["is_ephemeris"]
        if f["role"] == "sun":
            assert re.match(r"^Sun_1\d$", names[f["id"]])
    assert list(Path(ms, "FIELD").glob("EPHEM*_*.tab"))
    _check_phasecentres(tiny_eb)
    # topocentric: the Sun centre differs from casacore's geocentric SUN by the parallax (a few arcsec)
    me = casatools.measures()
    qa = casatools.quanta()
    me.doframe(me.epoch("UTC", qa.quantity(truth["sun"]["t_ref_mjd_s"], "s")))
    me.doframe(me.observatory("ALMA"))
    geo = me.measure(me.direction("SUN"), "J2000")
    ra0, dec0 = math.radians(truth["sun"]["ra_deg_t_ref"]), math.radians(truth["sun"]["dec_deg_t_ref"])
    sep = math.hypot((geo["m0"]["value"] - ra0) * math.cos(dec0), geo["m1"]["value"] - dec0) * 206264.8
    assert 2.0 < sep < 9.0


def test_mosaic_fields_and_pointing_convention(sim_eb_factory):
    eb = sim_eb_factory(mosaic=7, noise=False, bad_data=False)
    truth = eb.truth
    sun = [f for f in truth["fields"] if f["role"] == "sun"]
    assert truth["mosaic"] and truth["n_pointings"] == 7
    assert [f["name"] for f in sun] == [f"Sun_{10 + k}" for k in range(7)]
    for sc in [s for s in truth["scans"] if s["kind"] == "science"]:
        on = [ss for ss in sc["subscans"] if ss["kind"] == "on"]
        assert {ss["field_id"] for ss in on} == {f["id"] for f in sun}
        assert all(abs(ss["end_mjd_s"] - ss["start_mjd_s"] - 6.0) < 1e-6 for ss in on)
    _check_phasecentres(eb)
    offs = np.array([f["offset_arcsec"] for f in sun])
    d = np.hypot(*(offs[1:] - offs[0]).T)
    fwhm = truth["primary_beam"]["12m"]["fwhm_arcsec_at_100GHz"]
    assert np.allclose(d, d[0]) and 0.3 * fwhm < d[0] < 0.7 * fwhm
    eb2 = sim_eb_factory(mosaic=3, sun_field_convention="pointing_centre", noise=False, bad_data=False)
    assert eb2.truth["sun_field_convention"] == "pointing_centre"
    assert len(list(Path(eb2.ms, "FIELD").glob("EPHEM*_*.tab"))) == 3
    _check_phasecentres(eb2)


# ----------------------------------------------------------------------------- subtables
def test_calibration_subtables(tiny_eb):
    ms, truth = tiny_eb.ms, tiny_eb.truth
    tb = casatools.table()
    tb.open(ms)
    kws = tb.getkeywords()
    tb.close()
    for name in ("SYSCAL", "CALDEVICE", "SYSPOWER", "WEATHER"):
        assert name in kws and Path(ms, name).exists()
    arr = truth_arrays(truth)
    natm = len(truth["tsys"]["atm_scans"])
    nant = len(truth["antennas"])
    sci = _spw_ids(truth, "science")
    tb.open(ms + "/SYSCAL")
    try:
        assert tb.nrows() == natm * nant * len(sci)
        ant, spw, t = tb.getcol("ANTENNA_ID"), tb.getcol("SPECTRAL_WINDOW_ID"), tb.getcol("TIME")
        for k in range(0, tb.nrows(), 7):
            a = truth["tsys"]["atm_scans"].index(
                min(truth["tsys"]["atm_scans"],
                    key=lambda n: abs(0.5 * (truth["scans"][n - 1]["start_mjd_s"] + truth["scans"][n - 1]["end_mjd_s"]) - t[k])))
            bb = sci.index(spw[k])
            assert np.allclose(tb.getcell("TSYS_SPECTRUM", k), arr["tsys"][a, ant[k], :, bb], rtol=1e-6)
        tsys = np.stack([tb.getcell("TSYS_SPECTRUM", k) for k in range(tb.nrows())])
        assert 100 < tsys.min() and tsys.max() < 2500
    finally:
        tb.close()
    tb.open(ms + "/CALDEVICE")
    try:
        assert tb.nrows() == natm * nant * len(sci)
        names = tb.getcell("CAL_LOAD_NAMES", 0)
        assert list(names) == ["AMBIENT_LOAD", "HOT_LOAD"]
        temps = np.stack([tb.getcell("TEMPERATURE_LOAD", k) for k in range(tb.nrows())])
        ant, t = tb.getcol("ANTENNA_ID"), tb.getcol("TIME")
    finally:
        tb.close()
    assert np.all((temps[:, 0] > 280) & (temps[:, 0] < 290) & (temps[:, 1] > 350) & (temps[:, 1] < 360))
    first = truth["antennas"][0]["name"]
    loads = truth["loads"][first]
    amb = [v["amb"] for v in loads.values()]
    assert 0.3 < max(amb) - min(amb) < 3.0  # drifts by a kelvin or so over the EB
    for k in np.nonzero(ant == 0)[0]:
        n = min(truth["tsys"]["atm_scans"], key=lambda n: abs(truth["scans"][n - 1]["start_mjd_s"] - t[k]))
        assert temps[k, 0] == pytest.approx(loads[str(n)]["amb"]) and temps[k, 1] == pytest.approx(loads[str(n)]["hot"])
    tb.open(ms + "/SYSPOWER")
    try:
        assert tb.nrows() > 0 and np.all(np.stack([tb.getcell("SWITCHED_SUM", k) for k in range(10)]) > 0)
    finally:
        tb.close()


def test_split_keeps_subtables(tiny_eb, tmp_path):
    from casatasks import split

    out = str(tmp_path / "sci.ms")
    split(vis=tiny_eb.ms, outputvis=out, spw=",".join(map(str, _spw_ids(tiny_eb.truth, "science"))),
          datacolumn="data")
    tb = casatools.table()
    tb.open(out)
    kws = tb.getkeywords()
    tb.close()
    assert {"SYSCAL", "CALDEVICE", "SYSPOWER", "WEATHER"} <= set(kws)


def test_bad_input_options(sim_eb_factory):
    eb = sim_eb_factory(with_syscal=False, with_caldevice=False, with_sqld=False, noise=False, bad_data=False)
    tb = casatools.table()
    tb.open(eb.ms)
    kws = tb.getkeywords()
    tb.close()
    assert "SYSCAL" not in kws and "CALDEVICE" not in kws
    roles = [s["role"] for s in eb.truth["spws"]]
    assert "sqld" not in roles and "sqld_zero" not in roles
    assert [s["id"] for s in eb.truth["spws"]] == list(range(len(roles)))
    assert eb.truth["scans"][0]["kind"] == "pointing"


# ----------------------------------------------------------------------------- SQLD / Tant
def _sqld(ms, spw, scan):
    modes, subscans = _states(ms)
    d = _query(ms, f"DATA_DESC_ID=={spw} && SCAN_NUMBER=={scan}", ["DATA", "ANTENNA1", "STATE_ID"])
    return d["DATA"][:, 0, :].real, d["ANTENNA1"], subscans[d["STATE_ID"]]


def test_sqld_powers_give_injected_tant(tiny_eb_clean):
    ms, truth = tiny_eb_clean.ms, tiny_eb_clean.truth
    zero_scan = truth["zero_level_scan"]
    assert zero_scan == 1
    worst = 0.0
    n = 0
    for sc in [s for s in truth["scans"] if s["kind"] == "science"]:
        atm = truth["atm_for_science"][str(sc["number"])]
        nsub = len(sc["subscans"])
        for s in [x for x in truth["spws"] if x["role"] == "sqld"]:
            bb = s["baseband"]
            zspw = next(x["id"] for x in truth["spws"] if x["role"] == "sqld_zero" and x["baseband"] == bb)
            pa, aa, sa = _sqld(ms, s["id"], atm)
            ps, as_, ss = _sqld(ms, s["id"], sc["number"])
            pzr, az, sz = _sqld(ms, zspw, zero_scan)
            for ant in truth["antennas"]:
                i = ant["id"]
                ld = truth["loads"][ant["name"]][str(atm)]
                for p, pol in enumerate(("XX", "YY")):
                    psky = pa[p][(aa == i) & (sa == 1)].mean()
                    pamb = pa[p][(aa == i) & (sa == 2)].mean()
                    phot = pa[p][(aa == i) & (sa == 3)].mean()
                    pz = pzr[p][(az == i) & (sz == 2)].mean()
                    assert pz == pytest.approx(truth["p_zero"][ant["name"]][pol][f"BB_{bb}"], rel=1e-5)
                    poff = 0.5 * (ps[p][(as_ == i) & (ss == 1)].mean() + ps[p][(as_ == i) & (ss == nsub)].mean())
                    for k in range(2, nsub):
                        psun = ps[p][(as_ == i) & (ss == k)].mean()
                        tant = (psun - poff) * (ld["hot"] - ld["amb"]) / (phot - pamb) * (psky - pz) / (poff - pz)
                        true = truth["tant"][ant["name"]][pol][f"BB_{bb}"][str(sc["number"])][str(k)]
                        worst = max(worst, abs(tant / true - 1))
                        n += 1
    assert n > 0 and worst < 1e-3


def test_tant_properties(tiny_eb_clean):
    truth = tiny_eb_clean.truth
    vals = []
    for ant, d in truth["tant"].items():
        xx = np.array([v for bb in d["XX"].values() for s in bb.values() for v in s.values()])
        yy = np.array([v for bb in d["YY"].values() for s in bb.values() for v in s.values()])
        assert np.all(xx > 2000) and np.all(xx < 9000)
        r = np.abs(yy / xx - 1)
        assert np.all((r > 0.005) & (r < 0.035))
        vals.append(xx.mean())
    assert np.std(vals) / np.mean(vals) < 0.08
    tsys = truth_arrays(truth)["tsys"]
    assert np.mean(tsys) * 2 < np.mean(vals)  # the Sun dominates the system temperature


# ----------------------------------------------------------------------------- calibration checks
def test_gencal_tsys_applycal_phase_calibrator(tiny_eb_clean, tmp_path):
    from casatasks import applycal, gencal

    truth = tiny_eb_clean.truth
    vis = str(tmp_path / "copy.ms")
    shutil.copytree(tiny_eb_clean.ms, vis)
    tsys_tab = str(tmp_path / "tsys.tbl")
    gencal(vis=vis, caltable=tsys_tab, caltype="tsys")
    phase = next(f for f in truth["fields"] if f["role"] == "phase")
    applycal(vis=vis, field=phase["name"], spw=",".join(map(str, _spw_ids(truth, "science"))),
             gaintable=[tsys_tab], gainfield=[phase["name"]], interp=["nearest"], calwt=False, flagbackup=False)
    gm = gain_model_from_truth(truth)
    arr = truth_arrays(truth)
    cal = truth["calibrators"][phase["name"]]
    pscans = ",".join(str(s["number"]) for s in truth["scans"] if s["kind"] == "phase")
    tb = casatools.table()
    for bb, spw in enumerate(_spw_ids(truth, "science")):
        d = _query(vis, f"DATA_DESC_ID=={spw} && ANTENNA1!=ANTENNA2 && SCAN_NUMBER IN [{pscans}]",
                   ["CORRECTED_DATA", "ANTENNA1", "ANTENNA2", "TIME"])
        tb.open(vis + "/SPECTRAL_WINDOW")
        freqs = tb.getcell("CHAN_FREQ", spw)
        tb.close()
        a1, a2 = d["ANTENNA1"], d["ANTENNA2"]
        G = gm(d["TIME"] - truth["obs_start_mjd_s"], bb)
        k = np.arange(len(a1))
        g1, g2 = G[a1, :, k].T, G[a2, :, k].T
        b = arr["bandpass"][:, :, bb, :]
        fac = (g1 * np.conj(g2))[:, None, :] * b[a1].transpose(1, 2, 0) * np.conj(b[a2].transpose(1, 2, 0))
        true = cal["flux_jy"] * (freqs / cal["ref_freq_hz"]) ** cal["spectral_index"]
        ratio = d["CORRECTED_DATA"] / fac / true[None, :, None]
        assert np.allclose(ratio, 1.0, atol=1e-4), spw


@pytest.mark.parametrize("role", ["bandpass", "phase"])
def test_point_source_flux_with_truth_calibration_noiseless(tiny_eb_clean, role):
    truth = tiny_eb_clean.truth
    fld = next(f for f in truth["fields"] if f["role"] == role)
    cal = truth["calibrators"][fld["name"]]
    for spw in _spw_ids(truth, "science") + _spw_ids(truth, "ch_avg"):
        rows, V = truth_model_visibilities(tiny_eb_clean.ms, truth, spw)
        _, F = truth_corruption(tiny_eb_clean.ms, truth, spw, rows)
        d = _query(tiny_eb_clean.ms, f"DATA_DESC_ID=={spw}", ["DATA", "ANTENNA1", "ANTENNA2", "FIELD_ID", "STATE_ID"])
        modes, _ = _states(tiny_eb_clean.ms)
        sel = (d["ANTENNA1"] != d["ANTENNA2"]) & (d["FIELD_ID"] == fld["id"]) & np.array(
            ["#ON_SOURCE" in m for m in modes[d["STATE_ID"]]])
        cald = d["DATA"][:, :, sel] / F[:, :, sel]
        tb = casatools.table()
        tb.open(tiny_eb_clean.ms + "/SPECTRAL_WINDOW")
        freqs = tb.getcell("CHAN_FREQ", spw)
        tb.close()
        true = cal["flux_jy"] * (freqs / cal["ref_freq_hz"]) ** cal["spectral_index"]
        assert np.allclose(cald.real / true[None, :, None], 1.0, atol=1e-4)
        assert np.max(np.abs(cald.imag)) < 1e-3 * cal["flux_jy"]


def test_point_source_flux_with_truth_calibration_noisy(tiny_eb):
    """With noise and bad data: calibrate with the truth, drop injected bad data; the weighted mean flux
    agrees within 4 sigma of the thermal noise (0.5-1 % for a tiny EB) and residuals are N(0, sigma)."""
    truth = tiny_eb.truth
    modes, _ = _states(tiny_eb.ms)
    masks = bad_visibility_mask(tiny_eb.ms, truth)
    for role in ("bandpass", "phase"):
        fld = next(f for f in truth["fields"] if f["role"] == role)
        for spw in _spw_ids(truth, "science"):
            rows, V = truth_model_visibilities(tiny_eb.ms, truth, spw)
            _, F = truth_corruption(tiny_eb.ms, truth, spw, rows)
            d = _query(tiny_eb.ms, f"DATA_DESC_ID=={spw}", ["DATA", "ANTENNA1", "ANTENNA2", "FIELD_ID", "STATE_ID"])
            assert np.array_equal(masks[spw]["rows"], rows)
            sel = (d["ANTENNA1"] != d["ANTENNA2"]) & (d["FIELD_ID"] == fld["id"]) & np.array(
                ["#ON_SOURCE" in m for m in modes[d["STATE_ID"]]])
            good = ~masks[spw]["mask"][:, :, sel]
            f = F[:, :, sel][good]
            # inverse-variance weighted mean of DATA/F (noise is constant in correlation units)
            est = np.sum(np.conj(f) * d["DATA"][:, :, sel][good]) / np.sum(np.abs(f) ** 2)
            true = np.sum(np.abs(f) ** 2 * V[:, :, sel][good].real) / np.sum(np.abs(f) ** 2)
            sigma = truth["noise_sigma"][str(spw)] / np.sqrt(np.sum(np.abs(f) ** 2)) / true
            assert abs(est.real / true - 1) < max(0.01, 4 * sigma), (role, spw)
            resid = (d["DATA"][:, :, sel][good] - f * V[:, :, sel][good]) / truth["noise_sigma"][str(spw)]
            assert abs(np.std(resid.real) - 1) < 0.03 and abs(np.mean(resid.real)) < 0.03


def test_sun_visibilities_match_truth(tiny_eb_clean):
    truth = tiny_eb_clean.truth
    modes, _ = _states(tiny_eb_clean.ms)
    for spw in _spw_ids(truth, "science")[:2] + _spw_ids(truth, "ch_avg")[:1]:
        rows, V = truth_model_visibilities(tiny_eb_clean.ms, truth, spw)
        _, F = truth_corruption(tiny_eb_clean.ms, truth, spw, rows)
        d = _query(tiny_eb_clean.ms, f"DATA_DESC_ID=={spw}", ["DATA", "ANTENNA1", "ANTENNA2", "STATE_ID"])
        on_sun = (d["ANTENNA1"] != d["ANTENNA2"]) & (modes[d["STATE_ID"]] == "OBSERVE_TARGET#ON_SOURCE")
        off_sun = (d["ANTENNA1"] != d["ANTENNA2"]) & (modes[d["STATE_ID"]] == "OBSERVE_TARGET#OFF_SOURCE")
        assert np.any(on_sun) and np.any(off_sun)
        model = F[:, :, on_sun] * V[:, :, on_sun]
        assert np.allclose(d["DATA"][:, :, on_sun], model, rtol=1e-5, atol=1e-9 * np.abs(model).max())
        assert np.abs(V[:, :, on_sun]).max() > 100.0  # Jy: the Sun is bright
        assert np.all(d["DATA"][:, :, off_sun] == 0)
        # Tsys alone is wrong on the Sun by sqrt((1+Tant_i/Tsys_i)(1+Tant_j/Tsys_j)) (several)
        arr = truth_arrays(truth)
        assert np.median(arr["tant"][arr["tant"] > 0]) / np.median(arr["tsys"]) > 3


def test_predict_matches_direct_dft(tiny_eb):
    """The FFT+spline prediction agrees with a direct DFT of the same model within 1 %."""
    truth = tiny_eb.truth
    pred = predictor_from_truth(truth)
    sun = next(f for f in truth["fields"] if f["role"] == "sun")
    spw = _spw_ids(truth, "science")[0]
    rows, V = truth_model_visibilities(tiny_eb.ms, truth, spw)
    d = _query(tiny_eb.ms, f"DATA_DESC_ID=={spw}", ["UVW", "ANTENNA1", "ANTENNA2", "FIELD_ID", "STATE_ID"])
    modes, _ = _states(tiny_eb.ms)
    tb = casatools.table()
    tb.open(tiny_eb.ms + "/SPECTRAL_WINDOW")
    freqs = tb.getcell("CHAN_FREQ", spw)
    tb.close()
    diam = np.array([a["diameter_m"] for a in truth["antennas"]])
    from solarpipe.simulate.predict import pair_types

    on = np.nonzero((d["ANTENNA1"] != d["ANTENNA2"]) & (d["FIELD_ID"] == sun["id"])
                    & (modes[d["STATE_ID"]] == "OBSERVE_TARGET#ON_SOURCE"))[0]
    pairs = pair_types(diam[d["ANTENNA1"][on]], diam[d["ANTENNA2"][on]])
    checked = 0
    for pair in (0, 1, 2):
        idx = on[pairs == pair][::97][:4]
        for ch in (0, len(freqs) // 2, len(freqs) - 1):
            dft = pred.direct_dft(sun["id"], freqs[ch], d["UVW"][0, idx], d["UVW"][1, idx], pair, float(np.mean(freqs)))
            fft = V[0, ch, idx]
            scale = np.maximum(np.abs(dft), np.sqrt(np.mean(np.abs(V[0, ch, on]) ** 2)))
            assert np.all(np.abs(fft - dft) / scale < 0.01), (pair, ch)
            checked += len(idx)
    assert checked >= 12


# ----------------------------------------------------------------------------- bad data
def test_bad_data_effects_and_mask(sim_eb_factory):
    eb = sim_eb_factory(noise=False, bad_data=True)
    truth = eb.truth
    types = {b["type"] for b in truth["bad_data"]}
    assert {"dead_antenna", "noisy_antenna", "bad_channels", "phase_jump"} <= types
    assert "occurred" in truth["shadowing"]
    masks = bad_visibility_mask(eb.ms, truth)
    assert set(masks) == set(_spw_ids(truth, "science"))
    jump = next(b for b in truth["bad_data"] if b["type"] == "phase_jump")
    dead = next(b for b in truth["bad_data"] if b["type"] == "dead_antenna")["antenna_id"]
    chans = next(b for b in truth["bad_data"] if b["type"] == "bad_channels")
    for spw in _spw_ids(truth, "science"):
        rows, V = truth_model_visibilities(eb.ms, truth, spw)
        _, F = truth_corruption(eb.ms, truth, spw, rows)
        d = _query(eb.ms, f"DATA_DESC_ID=={spw}", ["DATA", "ANTENNA1", "ANTENNA2", "TIME", "SCAN_NUMBER"])
        a1, a2 = d["ANTENNA1"], d["ANTENNA2"]
        mask = masks[spw]["mask"]
        model = F * V
        cross = a1 != a2
        good = ~mask & cross[None, None, :]
        assert np.allclose(d["DATA"][good], model[good], rtol=1e-5, atol=1e-12)
        ok_ch = [c for c in range(d["DATA"].shape[1]) if spw != chans["spw_id"] or c not in chans["channels"]]
        dead_rows = cross & ((a1 == dead) | (a2 == dead))
        assert np.all(d["DATA"][:, ok_ch, :][:, :, dead_rows] == 0)  # noise-free: nothing left
        if spw == chans["spw_id"]:
            spikes = np.abs((d["DATA"] - model)[:, chans["channels"], :][:, :, cross & ~dead_rows])
            assert spikes.min() >= 0.5 * chans["spike_amplitude"] * 0.999
        sel = cross & (d["SCAN_NUMBER"] == jump["scan"]) & ((a1 == jump["antenna_id"]) | (a2 == jump["antenna_id"])) \
            & (a1 != dead) & (a2 != dead)
        after = sel & (d["TIME"] >= jump["time_range_mjd_s"][0])
        before = sel & (d["TIME"] < jump["time_range_mjd_s"][0])
        assert np.any(after) and np.any(before)
        r = d["DATA"] / np.where(model == 0, 1, model)
        sign = np.where(a1 == jump["antenna_id"], 1.0, -1.0)
        ph_after = np.degrees(np.angle(r[:, ok_ch, :][:, :, after])) * sign[after]
        ph_before = np.degrees(np.angle(r[:, ok_ch, :][:, :, before]))
        assert np.allclose(ph_after, jump["jump_deg"], atol=0.01)
        assert np.allclose(ph_before, 0.0, atol=0.01)


def test_noisy_and_dead_antenna_with_noise(tiny_eb):
    truth = tiny_eb.truth
    noisy = next(b for b in truth["bad_data"] if b["type"] == "noisy_antenna")
    dead = next(b for b in truth["bad_data"] if b["type"] == "dead_antenna")["antenna_id"]
    sigma = truth["noise_sigma"][str(noisy["spw_id"])]
    modes, _ = _states(tiny_eb.ms)
    d = _query(tiny_eb.ms, f"DATA_DESC_ID=={noisy['spw_id']}", ["DATA", "ANTENNA1", "ANTENNA2", "STATE_ID"])
    off = np.array(["#OFF_SOURCE" in m or "#AMBIENT" in m or "#HOT" in m for m in modes[d["STATE_ID"]]])
    a1, a2 = d["ANTENNA1"], d["ANTENNA2"]
    n_ant = off & (a1 != a2) & ((a1 == noisy["antenna_id"]) | (a2 == noisy["antenna_id"])) & (a1 != dead) & (a2 != dead)
    n_ok = off & (a1 != a2) & (a1 != noisy["antenna_id"]) & (a2 != noisy["antenna_id"])
    assert np.std(d["DATA"][:, :, n_ok].real) == pytest.approx(sigma, rel=0.05)
    assert np.std(d["DATA"][:, :, n_ant].real) == pytest.approx(10 * sigma, rel=0.1)
    sig = _query(tiny_eb.ms, f"DATA_DESC_ID=={noisy['spw_id']}", ["SIGMA", "WEIGHT"])
    assert np.allclose(sig["SIGMA"], sigma, rtol=1e-6) and np.allclose(sig["WEIGHT"], 1 / sigma ** 2, rtol=1e-5)


# ----------------------------------------------------------------------------- products
def test_tp_map_fits_and_image(tiny_eb):
    from astropy.io import fits

    truth = tiny_eb.truth
    h = fits.getheader(tiny_eb.tp_map_fits)
    data = fits.getdata(tiny_eb.tp_map_fits).squeeze()
    assert h["BUNIT"] == "K"
    assert h["BMAJ"] * 3600 == pytest.approx(truth["tp_map"]["beam_fwhm_arcsec"], rel=1e-6)
    assert 50 < h["BMAJ"] * 3600 < 70  # ~1.2 lambda/12m at 100 GHz
    assert h["DATE-OBS"].startswith("2017-04-27")
    assert h["CTYPE3"] == "FREQ" and h["CRVAL3"] == pytest.approx(100e9)
    assert h["CRVAL1"] == pytest.approx(truth["sun"]["ra_deg_t_ref"]) and h["CRVAL2"] == pytest.approx(truth["sun"]["dec_deg_t_ref"])
    n = data.shape[0]
    assert data[n // 2, n // 2] == pytest.approx(7000.0, rel=0.1)
    assert data[0, 0] < 1.0 and data[0, n // 2] < 50.0  # the whole disc is inside the map
    extent = (n // 2) * abs(h["CDELT1"]) * 3600
    assert extent > truth["sun"]["radius_arcsec"] + 2 * truth["tp_map"]["beam_fwhm_arcsec"]
    assert Path(tiny_eb.tp_map_image).is_dir()
    ia = casatools.image()
    ia.open(tiny_eb.sky_model)
    try:
        assert ia.brightnessunit() == "K"
        sky = ia.getchunk().squeeze()
    finally:
        ia.close()
    assert np.isclose(np.median(sky), 7000.0, rtol=0.05)


def test_catalogue_and_flux_cal_age(sim_eb_factory, tiny_eb):
    rows = list(csv.DictReader(open(tiny_eb.catalogue)))
    assert list(rows[0]) == ["name", "date", "frequency_ghz", "flux_jy", "flux_err_jy", "spectral_index",
                             "spectral_index_err"]
    names = {r["name"] for r in rows}
    assert names == set(tiny_eb.truth["calibrators"])
    assert {float(r["frequency_ghz"]) for r in rows} >= {91.5, 343.5}
    eb = sim_eb_factory(separate_flux_cal=True, flux_cal_catalogue_age_days=200, noise=False, bad_data=False)
    truth = eb.truth
    flux = next(f for f in truth["fields"] if f["role"] == "flux")
    assert "CALIBRATE_FLUX" in flux["intents"] and "CALIBRATE_BANDPASS" not in flux["intents"]
    bp = next(f for f in truth["fields"] if f["role"] == "bandpass")
    assert "CALIBRATE_FLUX" not in bp["intents"]
    rows = list(csv.DictReader(open(eb.catalogue)))
    obs = date.fromisoformat(truth["obs_start_utc"][:10])

    def age(name):
        return min((obs - date.fromisoformat(r["date"])).days for r in rows if r["name"] == name)

    assert 199 <= age(flux["name"]) <= 201
    assert age(bp["name"]) <= 7


def test_time_variable_sky(sim_eb_factory):
    eb = sim_eb_factory(time_variable=True, noise=False, bad_data=False)
    truth = eb.truth
    lc = truth["light_curve"]
    assert lc and lc["sigma_s"] > 0 and any(f["variable"] for f in truth["features"])
    spw = _spw_ids(truth, "science")[0]
    rows, V = truth_model_visibilities(eb.ms, truth, spw)
    _, F = truth_corruption(eb.ms, truth, spw, rows)
    d = _query(eb.ms, f"DATA_DESC_ID=={spw}", ["DATA", "ANTENNA1", "ANTENNA2"])
    cross = d["ANTENNA1"] != d["ANTENNA2"]
    assert np.allclose(d["DATA"][:, :, cross], (F * V)[:, :, cross], rtol=1e-5, atol=1e-12)
    assert Path(eb.sky_model.replace(".image", "_variable.image")).exists()


def test_user_fits_sky(sim_eb_factory, tmp_path_factory):
    from astropy.io import fits

    path = tmp_path_factory.mktemp("usersky") / "sun.fits"
    n, pix = 201, 2.0
    y, x = np.mgrid[:n, :n]
    cx, cy = -250.0, 150.0  # helioprojective centre of the image (= default target)
    img = 7000.0 + 3000.0 * np.exp(-0.5 * ((x - 120) ** 2 + (y - 100) ** 2) / 4.0 ** 2)
    h = fits.Header()
    h.update(CTYPE1="HPLN-TAN", CTYPE2="HPLT-TAN", CUNIT1="arcsec", CUNIT2="arcsec", CDELT1=pix, CDELT2=pix,
             CRPIX1=(n + 1) / 2, CRPIX2=(n + 1) / 2, CRVAL1=cx, CRVAL2=cy, BUNIT="K")
    fits.writeto(path, img.astype(np.float32), h)
    eb = sim_eb_factory(sky=str(path), noise=False, bad_data=False)
    truth = eb.truth
    assert truth["sky_model"]["source"].startswith("user:")
    arr = truth_arrays(truth)
    sky = arr["sky_t_static"]
    assert sky.max() == pytest.approx(10000.0, rel=0.05)
    from solarpipe.simulate.ephemeris import hp_to_sky

    g = truth["sky_model"]["grid"]
    iy, ix = np.unravel_index(np.argmax(sky), sky.shape)
    xi, eta = g["xi0_arcsec"] + ix * g["pixel_arcsec"], g["eta0_arcsec"] + iy * g["pixel_arcsec"]
    exi, eeta = hp_to_sky(cx + (120 - 100) * pix, cy, truth["sun"]["p_angle_deg"])
    assert math.hypot(xi - exi, eta - eeta) < 2 * g["pixel_arcsec"]


# ----------------------------------------------------------------------------- determinism, CLI
def _first_data(ms, spw):
    return _query(ms, f"DATA_DESC_ID=={spw}", ["DATA"])["DATA"]


def test_deterministic_for_a_seed(tiny_eb, tmp_path):
    again = simulate_eb(tmp_path / "again", size="tiny", noise=True, bad_data=True, seed=0)
    for spw in (0, 5, 12):
        assert np.array_equal(_first_data(tiny_eb.ms, spw), _first_data(again.ms, spw))
    t1 = json.load(open(tiny_eb.truth_json))
    t2 = json.load(open(again.truth_json))
    for k in ("tant", "loads", "p_zero", "bad_data", "features", "atm_for_science", "calibrators"):
        assert json.dumps(t1[k], sort_keys=True) == json.dumps(t2[k], sort_keys=True), k
    a1, a2 = truth_arrays(load_truth(tiny_eb.truth_json)), truth_arrays(load_truth(again.truth_json))
    for k in ("gain_values", "bandpass", "tsys", "tant", "sky_t_static"):
        assert np.array_equal(a1[k], a2[k]), k


def test_other_seed_differs(sim_eb_factory, tiny_eb):
    other = sim_eb_factory(noise=True, bad_data=True, seed=1)
    assert not np.array_equal(_first_data(tiny_eb.ms, 5), _first_data(other.ms, 5))


def test_cli_main(tmp_path, capsys):
    from solarpipe.simulate.__main__ import main

    rc = main(["--size", "tiny", "--no-noise", "--no-bad-data", "--out", str(tmp_path / "cli")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "generation time" in out and "MS size" in out
    assert list((tmp_path / "cli").glob("*.ms"))


def test_tiny_budget(tiny_eb):
    assert tiny_eb.elapsed_s < 30.0
    assert tiny_eb.size_bytes < 50e6


# ----------------------------------------------------------------------------- geometry, presets
def test_solar_angles_match_jpl_table():
    """P angle and B0 from the simulator agree with casadata's JPL Sun table (daily samples)."""
    import glob

    import casadata

    from solarpipe.simulate.ephemeris import apparent_radius_arcsec, solar_p_b0, sun_topocentric

    path = sorted(glob.glob(casadata.datapath + "/ephemerides/JPL-Horizons/Sun_*J2000.tab"))
    if not path:
        pytest.skip("no JPL Sun table in casadata")
    tb = casatools.table()
    tb.open(path[0])
    try:
        mjd, npang, blat = tb.getcol("MJD"), tb.getcol("NP_ang"), tb.getcol("DiskLat")
    finally:
        tb.close()
    t = 57870.0  # 2017-04-27
    k = int(np.searchsorted(mjd, t))
    p, b0 = solar_p_b0(np.array([mjd[k]]))
    assert ((p[0] - npang[k] + 180) % 360 - 180) == pytest.approx(0.0, abs=0.05)
    assert b0[0] == pytest.approx(blat[k], abs=0.05)
    sun = sun_topocentric(np.array([t + 0.65]))
    assert apparent_radius_arcsec(sun["dist_au"][0]) == pytest.approx(952.9, abs=1.0)


def test_presets():
    from solarpipe.simulate import SimConfig

    tiny, small, large = (SimConfig.preset(s) for s in ("tiny", "small", "large"))
    assert tiny.n_ant_7m == 2 and tiny.nchan == 32
    assert 12 <= small.n_ant_12m + small.n_ant_7m <= 16 and small.nchan == 64
    assert large.n_ant_12m + large.n_ant_7m >= 40 and large.nchan == 128
    assert SimConfig.preset("tiny", nchan=16).nchan == 16
    with pytest.raises(TypeError):
        SimConfig.preset("tiny", not_a_knob=1)


def test_compact_source_images_at_truth_offset(sim_eb_factory, tmp_path_factory):
    """End-to-end conventions (UVW sign, east/north, P angle, ephemeris tracking): a compact source
    of a user sky, calibrated with the truth and imaged by tclean, peaks at its truth offset."""
    from astropy.io import fits
    from casatasks import tclean

    from solarpipe.simulate.ephemeris import hp_to_sky

    path = tmp_path_factory.mktemp("pointsky") / "point.fits"
    n, pix = 401, 2.0
    y, x = np.mgrid[:n, :n]
    img = 20000.0 * np.exp(-0.5 * ((x - 220) ** 2 + (y - 210) ** 2) / 1.3 ** 2)  # HP offset (+40, +20) arcsec
    h = fits.Header()
    h.update(CTYPE1="HPLN-TAN", CTYPE2="HPLT-TAN", CUNIT1="arcsec", CUNIT2="arcsec", CDELT1=pix, CDELT2=pix,
             CRPIX1=201, CRPIX2=201, CRVAL1=-250.0, CRVAL2=150.0, BUNIT="K")
    fits.writeto(path, img.astype(np.float32), h)
    eb = sim_eb_factory(sky=str(path), noise=False, bad_data=False, sun_field_convention="pointing_centre",
                        n_ant_12m=20, n_ant_7m=0)
    truth = eb.truth
    work = tmp_path_factory.mktemp("pointimg")
    vis = str(work / "cal.ms")
    shutil.copytree(eb.ms, vis)
    tb = casatools.table()
    tb.open(vis, nomodify=False)
    try:
        desc = tb.getcoldesc("DATA")
        tb.addcols({"CORRECTED_DATA": desc})
        for spw in _spw_ids(truth, "science"):
            rows, F = truth_corruption(vis, truth, spw)
            q = tb.selectrows(rows)
            D = q.getcol("DATA")
            cross = (q.getcol("ANTENNA1") != q.getcol("ANTENNA2"))[None, None, :]
            q.putcol("CORRECTED_DATA", np.where(cross, D / np.where(F == 0, 1, F), 0).astype(np.complex64))
            q.close()
    finally:
        tb.close()
    sun = next(f for f in truth["fields"] if f["role"] == "sun")
    tclean(vis=vis, imagename=str(work / "dirty"), field=sun["name"], intent="OBSERVE_TARGET#ON_SOURCE",
           datacolumn="corrected", imsize=256, cell="0.5arcsec", gridder="standard", niter=0, specmode="mfs",
           phasecenter="TRACKFIELD")
    ia = casatools.image()
    ia.open(str(work / "dirty.image"))
    try:
        dirty = ia.getchunk().squeeze()
    finally:
        ia.close()
    xi, eta = hp_to_sky(40.0, 20.0, truth["sun"]["p_angle_deg"])  # offset from the pointing centre
    want = (128 - xi / 0.5, 128 + eta / 0.5)  # RA increases to the left
    got = np.unravel_index(np.argmax(dirty), dirty.shape)
    assert math.hypot(got[0] - want[0], got[1] - want[1]) * 0.5 < 1.5, (got, want)


def test_truth_visibilities_on_a_split_sun_ms(tiny_eb_clean, tmp_path):
    """write_truth_visibilities (bench_imaging_limits' true-data copy) puts, on a split
    Sun-only MS with renumbered fields and SPWs, exactly the truth visibilities of the
    same rows of the raw EB."""
    import casatools
    from casatasks import split

    from solarpipe.simulate.truth import truth_model_visibilities, write_truth_visibilities

    ms, truth = tiny_eb_clean.ms, tiny_eb_clean.truth
    sun = next(f for f in truth["fields"] if f["role"] == "sun")
    spw = next(s for s in truth["spws"] if s["role"] == "science")
    out = str(tmp_path / "sun.ms")
    split(vis=ms, outputvis=out, field=sun["name"], spw=str(spw["id"]), intent="OBSERVE_TARGET#ON_SOURCE",
          datacolumn="data")
    n = write_truth_visibilities(out, truth)
    tb = casatools.table()
    tb.open(out)
    got = tb.getcol("DATA")
    key_out = list(zip(tb.getcol("TIME").round(3), tb.getcol("ANTENNA1"), tb.getcol("ANTENNA2")))
    tb.close()
    tb.open(ms)
    q = tb.query(f"FIELD_ID=={sun['id']} && DATA_DESC_ID IN "
                 f"[select from ::DATA_DESCRIPTION where SPECTRAL_WINDOW_ID=={spw['id']} giving [rowid()]]")
    rows = q.rownumbers()
    key_raw = dict(zip(zip(q.getcol("TIME").round(3), q.getcol("ANTENNA1"), q.getcol("ANTENNA2")), range(len(rows))))
    q.close()
    tb.close()
    _, want = truth_model_visibilities(ms, truth, spw["id"], np.asarray(rows))
    idx = np.array([key_raw[k] for k in key_out])
    cross = np.array([a != b for _, a, b in key_out])
    assert n == len(key_out) and cross.sum() > 100
    assert np.abs(want[:, :, idx][:, :, cross]).max() > 1.0
    np.testing.assert_allclose(got[:, :, cross], want[:, :, idx][:, :, cross], rtol=1e-6, atol=1e-6)
