"""hsol_flagdata on simulated EBs with and without injected bad data (issue 4).

The flagging EBs have 12 antennas (10 x 12m + 2 x 7m): with the 8 of the default
tiny EB a single dead antenna is already 25% of the baselines, above the 20% guard.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from solarpipe.context import Context
from solarpipe.heuristics.flagging import edge_channels
from solarpipe.runner import new_context, run_stage

ARRAY12 = {"n_ant_12m": 10, "n_ant_7m": 2}
CAL_ONLY = ("CALIBRATE_ATMOSPHERE", "CALIBRATE_POINTING", "CALIBRATE_WVR")


def read_flags(ms: str | Path) -> np.ndarray:
    from casatools import table

    tb = table()
    tb.open(str(ms))
    try:
        return np.concatenate([tb.getcell("FLAG", i).ravel() for i in range(0, tb.nrows(), 997)])
    finally:
        tb.close()


def all_flags(ms: str | Path) -> list[np.ndarray]:
    from casatools import table

    tb = table()
    tb.open(str(ms))
    try:
        out = []
        for dd in np.unique(tb.getcol("DATA_DESC_ID")):
            q = tb.query(f"DATA_DESC_ID=={dd}")
            out.append(q.getcol("FLAG"))
            q.close()
        return out
    finally:
        tb.close()


def run_flagging(eb, workdir: Path, **params):
    ctx = new_context(workdir)
    run_stage(ctx, "hsol_importdata", {"vis": str(eb.ms)})
    before = all_flags(ctx.observing_run.vis)
    rec = run_stage(ctx, "hsol_flagdata", params)
    return Context.load(workdir), rec, before


def recall_and_false_flags(ms: str, eb) -> tuple[float, float]:
    """Fraction of injected bad visibilities flagged, and of good ones flagged, on the
    science data the data-driven rules judge (cross-correlations of science scans,
    non-edge channels)."""
    from casatools import table

    from solarpipe.simulate import bad_visibility_mask

    truth = eb.truth
    calonly = {s["number"] for s in truth["scans"] if all(i in CAL_ONLY for i in s["intents"])}
    tb = table()
    tb.open(ms)
    bad_n = bad_f = good_n = good_f = 0
    try:
        for spw, m in bad_visibility_mask(str(eb.ms), truth).items():
            q = tb.selectrows(m["rows"])
            flag, scan = q.getcol("FLAG"), q.getcol("SCAN_NUMBER")
            a1, a2 = q.getcol("ANTENNA1"), q.getcol("ANTENNA2")
            q.close()
            elig = np.ones(flag.shape, bool)
            elig[:, edge_channels(flag.shape[1], 0.0625), :] = False
            elig[:, :, np.isin(scan, list(calonly)) | (a1 == a2)] = False
            bad = m["mask"] & elig
            good = ~m["mask"] & elig
            bad_n += bad.sum()
            bad_f += (flag & bad).sum()
            good_n += good.sum()
            good_f += (flag & good).sum()
    finally:
        tb.close()
    return bad_f / bad_n, good_f / good_n


@pytest.fixture(scope="module")
def flagged_bad(sim_eb_factory, tmp_path_factory):
    eb = sim_eb_factory(noise=True, bad_data=True, **ARRAY12)
    ctx, rec, before = run_flagging(eb, tmp_path_factory.mktemp("flag_bad"))
    return eb, ctx, rec, before


def test_bad_data_recall_and_precision(flagged_bad):
    eb, ctx, rec, _ = flagged_bad
    recall, false = recall_and_false_flags(ctx.observing_run.vis, eb)
    print(f"recall of injected bad visibilities {recall:.4f}, good visibilities flagged {false:.5f}")
    assert recall >= 0.95
    assert false <= 0.01
    rules = rec.results["summary"]["automatic_commands_by_rule"]
    assert {"dead_antenna", "noisy_antenna", "outlier_channels", "phase_jump"} <= set(rules)
    assert not rec.results["summary"]["guard"]["tripped"]


def test_sqld_autocorrelations_kept(flagged_bad):
    from casatools import table

    eb, ctx, rec, _ = flagged_bad
    run = ctx.observing_run
    sqld = run.spw_ids("sqld")
    assert sqld
    tb = table()
    tb.open(run.vis)
    try:
        dd = {int(s): i for i, s in enumerate(table_col(run.vis + "/DATA_DESCRIPTION", "SPECTRAL_WINDOW_ID"))}
        q = tb.query(f"DATA_DESC_ID IN [{','.join(str(dd[s]) for s in sqld)}] && ANTENNA1==ANTENNA2")
        flags = q.getcol("FLAG")
        q.close()
    finally:
        tb.close()
    assert flags.size > 0 and not flags.any()
    assert any("SQLD" in m for m in rec.results["messages"])


def table_col(path: str, col: str):
    from casatools import table

    tb = table()
    tb.open(path)
    try:
        return tb.getcol(col)
    finally:
        tb.close()


def test_restoring_flag_version_gives_back_previous_flags(flagged_bad, tmp_path):
    from casatasks import flagmanager

    eb, ctx, rec, before = flagged_bad
    ms = Path(ctx.observing_run.vis)
    copy = tmp_path / ms.name
    shutil.copytree(ms, copy)
    shutil.copytree(str(ms) + ".flagversions", str(copy) + ".flagversions")
    after = all_flags(copy)
    assert any((a != b).any() for a, b in zip(after, before))
    version = rec.results["summary"]["flag_version"]
    assert version in (Path(ctx.workdir) / "weblog" / "stage2" / "index.html").read_text()
    flagmanager(vis=str(copy), mode="restore", versionname=version)
    restored = all_flags(copy)
    assert all(np.array_equal(a, b) for a, b in zip(restored, before))


def test_clean_eb_flags_almost_nothing_beyond_deterministic(sim_eb_factory, tmp_path):
    eb = sim_eb_factory(noise=True, bad_data=False, **ARRAY12)
    ctx, rec, _ = run_flagging(eb, tmp_path)
    s = rec.results["summary"]
    auto = s["guard"]["automatic_fraction"]  # of the science data the rules judge
    beyond = (s["flagged_after"] - s["flagged_after_deterministic"]) / s["total_visibilities"]  # of the MS
    print(f"clean EB: automatic flags {auto:.5f} of the science data, {beyond:.6f} of the MS")
    assert auto < 0.005
    assert beyond < 0.005
    assert min(q["score"] for q in rec.results["qa"]) > 0.9


def test_guard_half_the_antennas_dead(sim_eb_factory, tmp_path):
    from casatools import table

    eb = sim_eb_factory(noise=True, bad_data=False, **ARRAY12)
    ms = tmp_path / "half_dead.ms"
    shutil.copytree(eb.ms, ms)
    names = [a["name"] for a in eb.truth["antennas"]]
    dead = list(range(0, len(names), 2))  # every other antenna: half the array
    rng = np.random.default_rng(1)
    sigma = eb.truth["noise_sigma"]
    tb = table()
    tb.open(str(ms), nomodify=False)
    try:
        for spw in [s["id"] for s in eb.truth["spws"] if s["role"] == "science"]:
            dd = {int(s): i for i, s in enumerate(table_col(str(ms) + "/DATA_DESCRIPTION", "SPECTRAL_WINDOW_ID"))}[spw]
            q = tb.query(f"DATA_DESC_ID=={dd} && ANTENNA1!=ANTENNA2")
            rows = q.rownumbers()
            a1, a2 = q.getcol("ANTENNA1"), q.getcol("ANTENNA2")
            data = q.getcol("DATA")
            q.close()
            hit = np.isin(a1, dead) | np.isin(a2, dead)
            s = float(sigma[str(spw)])
            noise = rng.normal(0, s, data.shape) + 1j * rng.normal(0, s, data.shape)
            data[:, :, hit] = noise[:, :, hit]
            sub = tb.selectrows(rows)
            sub.putcol("DATA", data)
            sub.close()
    finally:
        tb.close()
    work = tmp_path / "w"
    ctx = new_context(work)
    run_stage(ctx, "hsol_importdata", {"vis": str(ms)})
    rec = run_stage(ctx, "hsol_flagdata", {})
    s = rec.results["summary"]
    assert s["guard"]["tripped"], s["guard"]
    assert min(q["score"] for q in rec.results["qa"]) <= 0.33
    assert s["flagged_after"] == s["flagged_after_deterministic"]  # nothing automatic applied
    assert any("guard" in q["shortmsg"] for q in rec.results["qa"])


def test_deterministic_rules_are_counted(flagged_bad):
    eb, ctx, rec, _ = flagged_bad
    counts = rec.results["summary"]["deterministic_by_rule"]
    assert set(counts) >= {"shadow", "intents", "edgespw", "autocorr"}
    assert all(v > 0 for v in counts.values())
