"""The calibration chain on the `small` simulated EB, against the truth (issues 5 and 6).

The EB (16 antennas, 29 minutes, 64 channels) has noise and injected bad data, so
flagging, Tsys+Tant, the flux calibrator choice, bandpass, gains and applycal all
work on realistic input. The recipe runs twice (CLI and Python): ~5 minutes.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import broken_weblog_links
from solarpipe.context import Context

ARRAY12 = {"n_ant_12m": 10, "n_ant_7m": 2}
STAGES = ["hsol_importdata", "hsol_flagdata", "hsol_ampcal", "hsol_fluxcalselect", "hsol_refant",
          "hsol_bandpass", "hsol_gaincal", "hsol_applycal"]


@pytest.fixture(scope="module")
def calibrated(sim_eb_factory, tmp_path_factory, small_calimage):
    """The recipe from the CLI (the run the tests look at) and from Python (the
    shared hsol_solar run: the same calibration stages, then imaging and feather)."""
    eb = sim_eb_factory(size="small", noise=True, bad_data=True)
    cli = tmp_path_factory.mktemp("cal_cli")
    out = subprocess.run([sys.executable, "-m", "solarpipe", "run", "hsol_calibration", "--vis", str(eb.ms),
                          "--workdir", str(cli)], capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return eb, Context.load(cli), small_calimage[1]


def corrected(ctx: Context, spw: int, rows: np.ndarray):
    from casatools import table

    tb = table()
    tb.open(ctx.observing_run.vis)
    try:
        q = tb.selectrows(rows)
        out = {c: q.getcol(c) for c in ("CORRECTED_DATA", "FLAG", "FIELD_ID", "ANTENNA1", "ANTENNA2")}
        q.close()
    finally:
        tb.close()
    return out


def test_recipe_runs_from_cli_and_python(calibrated):
    eb, cli, py = calibrated
    assert [s.task for s in cli.stages] == STAGES
    assert [s.task for s in py.stages] == STAGES + ["hsol_imaging", "hsol_feather", "hsol_exportdata"]  # hsol_solar
    for ctx in (cli, py):
        assert all(s.status == "ok" for s in ctx.stages)
        assert all(s.results["qa"] for s in ctx.stages)  # QA for every stage


def test_phase_calibrator_flux_within_2_percent(calibrated):
    from solarpipe.simulate import truth_model_visibilities

    eb, ctx, _ = calibrated
    truth = eb.truth
    phase = next(c for c in truth["calibrators"].values() if c["role"] == "phase")
    for spw in [s["id"] for s in truth["spws"] if s["role"] == "science"]:
        rows, _ = truth_model_visibilities(str(eb.ms), truth, spw)
        d = corrected(ctx, spw, rows)
        sel = (d["FIELD_ID"] == phase["field_id"]) & (d["ANTENNA1"] != d["ANTENNA2"])
        vis = np.where(d["FLAG"][:, :, sel], np.nan, d["CORRECTED_DATA"][:, :, sel])
        flux = float(np.real(np.nanmean(vis)))
        true = phase["flux_at_spw_centres_jy"][str(spw)]
        print(f"SPW {spw}: phase calibrator {flux:.4f} Jy, true {true:.4f} Jy, ratio {flux / true:.4f}")
        assert flux == pytest.approx(true, rel=0.02)


def sun_scales(ms: str, eb, snr_min: float = 20.0) -> dict[int, float]:
    """Per SPW: the mean over baselines (where the Sun is detected, SNR > snr_min) of
    |sum C V*| / sum |V|^2 between calibrated C and true V Sun visibilities (noise
    averages out; a residual phase does not matter)."""
    from casatools import table

    from solarpipe.simulate import truth_model_visibilities

    truth = eb.truth
    sun = [f["id"] for f in truth["fields"] if f["role"] == "sun"]
    out = {}
    tb = table()
    for spw in [s["id"] for s in truth["spws"] if s["role"] == "science"]:
        rows, V = truth_model_visibilities(str(eb.ms), truth, spw)
        tb.open(ms)
        q = tb.selectrows(rows)
        d = {c: q.getcol(c) for c in ("CORRECTED_DATA", "FLAG", "FIELD_ID", "ANTENNA1", "ANTENNA2")}
        q.close()
        tb.close()
        a1, a2 = d["ANTENNA1"], d["ANTENNA2"]
        on = np.isin(d["FIELD_ID"], sun) & (np.abs(V[0]).mean(axis=0) > 0)
        scales = []
        for b in np.unique((a1 * 100 + a2)[on]):
            sel = on & (a1 * 100 + a2 == b)
            ok = ~d["FLAG"][:, :, sel]
            c, v = d["CORRECTED_DATA"][:, :, sel][ok], V[:, :, sel][ok]
            if c.size < 10:
                continue
            cross = np.sum(c * np.conj(v))
            scale = abs(cross) / np.sum(np.abs(v) ** 2)
            resid = c - scale * v * cross / abs(cross)
            if np.sqrt(np.sum(np.abs(v) ** 2) / np.mean(np.abs(resid) ** 2)) * min(scale, 1) > snr_min:
                scales.append(scale)
        assert len(scales) >= 10, (spw, len(scales))
        out[spw] = float(np.mean(scales))
    return out


def test_sun_amplitudes_match_truth(calibrated):
    eb, ctx, _ = calibrated
    for spw, scale in sun_scales(ctx.observing_run.vis, eb).items():
        print(f"SPW {spw}: calibrated/true Sun amplitude, mean over baselines: {scale:.4f}")
        assert scale == pytest.approx(1.0, abs=0.02)  # issue 6 asks 3%, issue 5 2%


def test_tsys_alone_would_be_off_by_the_tant_factor(calibrated, tmp_path):
    """The same calibration with the plain Tsys table on the Sun: off by ~Tsys/(Tsys+Tant)."""
    import shutil

    from casatasks import applycal

    from solarpipe.simulate import truth_arrays

    eb, ctx, _ = calibrated
    run = ctx.observing_run
    copy = tmp_path / Path(run.vis).name
    shutil.copytree(run.vis, copy)
    args = ctx.cal_args("sun", for_applycal=True)
    tsys = next(c.gaintable for c in ctx.callibrary if c.caltype == "tsys")
    i = next(k for k, t in enumerate(args["gaintable"]) if t.endswith(".tsystant"))
    args["gaintable"][i] = str(Path(ctx.workdir) / tsys)
    args["gainfield"][i] = "nearest"
    args["gaintable"] = [str(Path(ctx.workdir) / t) if not Path(t).is_absolute() else t for t in args["gaintable"]]
    applycal(vis=str(copy), field=",".join(map(str, run.sun_field_ids)), spw=",".join(map(str, run.science_spw_ids)),
             applymode="calonly", flagbackup=False, **args)
    with_tant = sun_scales(run.vis, eb)
    alone = sun_scales(str(copy), eb, snr_min=2.0)
    arr = truth_arrays(eb.truth)
    tsys_med = float(np.median(arr["tsys"]))
    tant_med = float(np.nanmedian(arr["tant"][arr["tant"] > 0]))
    expected = tsys_med / (tsys_med + tant_med)
    for spw in with_tant:
        print(f"SPW {spw}: Sun amplitude scale with Tsys+Tant {with_tant[spw]:.4f}, with Tsys alone "
              f"{alone[spw]:.4f} (expected ~Tsys/(Tsys+Tant) = {expected:.3f})")
        assert with_tant[spw] == pytest.approx(1.0, abs=0.02)
        assert alone[spw] == pytest.approx(expected, rel=0.25)
        assert alone[spw] < 0.5


def test_recovered_gain_phases_follow_the_injected_ones(calibrated):
    """Phase changes between phase-calibrator scans, relative to the reference antenna,
    equal the injected ones within the solutions' noise."""
    from solarpipe.caltables import read_caltable
    from solarpipe.simulate import truth_arrays

    eb, ctx, _ = calibrated
    truth = eb.truth
    arr = truth_arrays(truth)
    gt, gv = arr["gain_times"], arr["gain_values"]  # (nant, pol, bb, time)
    cal = read_caltable(Path(ctx.workdir) / next(c.gaintable for c in ctx.callibrary if c.caltype == "gain_phase_scan"))
    names = [a["name"] for a in truth["antennas"]]
    ref = names.index(ctx.refants[0])
    spw_bb = {int(k): v for k, v in truth["gains"]["spw_map"].items()}
    checked = 0
    for spw in np.unique(cal["SPECTRAL_WINDOW_ID"]):
        bb = spw_bb[int(spw)]
        times = np.unique(cal["TIME"][cal["SPECTRAL_WINDOW_ID"] == spw])
        for ant in range(len(names)):
            if ant == ref or names[ant] in truth.get("dead_antennas", []):
                continue
            rec, tru, err = [], [], []
            for t in times:
                i = np.flatnonzero((cal["SPECTRAL_WINDOW_ID"] == spw) & (cal["ANTENNA1"] == ant) & (cal["TIME"] == t))
                j = np.flatnonzero((cal["SPECTRAL_WINDOW_ID"] == spw) & (cal["ANTENNA1"] == ref) & (cal["TIME"] == t))
                if not len(i) or not len(j) or cal["flag"][i[0], 0, 0] or cal["flag"][j[0], 0, 0]:
                    continue
                g = cal["param"][i[0], 0, 0] * np.conj(cal["param"][j[0], 0, 0])
                gi = np.interp(t, gt, np.unwrap(np.angle(gv[ant, 0, bb])))  # gain_times: MS TIME
                gr = np.interp(t, gt, np.unwrap(np.angle(gv[ref, 0, bb])))
                rec.append(np.angle(g))
                tru.append(gi - gr)
                err.append(1.0 / max(cal["snr"][i[0], 0, 0], 1.0))
            for k in range(1, len(rec)):
                d_rec = np.angle(np.exp(1j * (rec[k] - rec[0])))
                d_tru = np.angle(np.exp(1j * (tru[k] - tru[0])))
                sigma = np.hypot(err[k], err[0]) * np.sqrt(2)
                off = abs(np.angle(np.exp(1j * (d_rec - d_tru))))
                print(f"{names[ant]} SPW {spw} scan pair {k}: recovered {np.degrees(d_rec):7.2f} deg, "
                      f"injected {np.degrees(d_tru):7.2f} deg, sigma {np.degrees(sigma):.2f}")
                assert off < 5 * sigma + np.radians(2), (names[ant], spw)
                checked += 1
    assert checked >= 10


def test_weblog_pages_plots_and_qa(calibrated):
    eb, ctx, _ = calibrated
    weblog = Path(ctx.workdir) / "weblog"
    assert broken_weblog_links(weblog) == []
    expect = {"hsol_bandpass": ["bandpass_amp.png", "bandpass_phase.png"],
              "hsol_gaincal": ["gain_phase_vs_time.png", "gain_amp_vs_time.png"],
              "hsol_applycal": ["amp_vs_uvdist_calibrators.png", "amp_vs_uvdist_sun.png",
                                "amp_vs_time_calibrators.png"],
              "hsol_fluxcalselect": ["candidates"], "hsol_refant": ["ranking"]}
    index = (weblog / "index.html").read_text()
    for st in ctx.stages:
        page = (weblog / f"stage{st.number}" / "index.html").read_text()
        for item in expect.get(st.task, []):
            assert item in page, (st.task, item)
        assert st.task in index
    assert index.count("data-qa-colour") == len(STAGES)


def test_stale_flux_calibrator_loses_to_bandpass(sim_eb_factory, tmp_path):
    from solarpipe.runner import new_context, run_stage

    eb = sim_eb_factory(noise=True, bad_data=False, separate_flux_cal=True, flux_cal_catalogue_age_days=200)
    ctx = new_context(tmp_path)
    run_stage(ctx, "hsol_importdata", {"vis": str(eb.ms)})
    rec = run_stage(ctx, "hsol_fluxcalselect", {})
    ctx = Context.load(tmp_path)
    bp = next(n for n, c in eb.truth["calibrators"].items() if c["role"] == "bandpass")
    flux = next(n for n, c in eb.truth["calibrators"].items() if c["role"] == "flux")
    assert ctx.flux_calibrator["field"] == bp
    reason = ctx.flux_calibrator["reason"]
    assert flux in reason and "200 days old" in reason
    page = (tmp_path / "weblog" / "stage2" / "index.html").read_text()
    assert "200 days old" in page and bp in page
    assert min(q["score"] for q in rec.results["qa"]) < 1.0
