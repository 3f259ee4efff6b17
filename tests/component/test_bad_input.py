"""Bad or incomplete input that a stage can decide about, and concurrent runs (issue 12).

Missing CALDEVICE or SQLD data do not stop the run: hsol_ampcal falls back
(default load temperatures; constant Tant) and says so in a lowered QA score
that names what is missing. Two runs on the same input in different working
directories at the same time do not interfere.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from solarpipe.context import Context
from solarpipe.regression import compare, extract
from solarpipe.runner import new_context, run_stage

ARRAY12 = {"n_ant_12m": 10, "n_ant_7m": 2}


def ampcal_qa(eb, wd):
    ctx = new_context(wd)
    run_stage(ctx, "hsol_importdata", {"vis": str(eb.ms)})
    rec = run_stage(ctx, "hsol_ampcal", {})
    assert rec.status == "ok"
    return rec.results["qa"]


def test_no_caldevice_uses_default_loads_and_says_so(sim_eb_factory, tmp_path):
    eb = sim_eb_factory(size="tiny", noise=True, bad_data=False, with_caldevice=False)
    qa = ampcal_qa(eb, tmp_path / "run")
    hit = [q for q in qa if "CALDEVICE" in q["longmsg"]]
    assert hit and all(q["score"] < 1.0 for q in hit), [q["shortmsg"] for q in qa]


def test_no_sqld_uses_a_constant_tant_and_says_so(sim_eb_factory, tmp_path):
    eb = sim_eb_factory(size="tiny", noise=True, bad_data=False, with_sqld=False)
    qa = ampcal_qa(eb, tmp_path / "run")
    hit = [q for q in qa if "No SQLD data" in q["longmsg"]]
    assert hit and all(q["score"] < 1.0 for q in hit), [q["shortmsg"] for q in qa]


def test_two_concurrent_runs_on_one_input_do_not_interfere(sim_eb_factory, tmp_path):
    eb = sim_eb_factory(size="tiny", noise=True, bad_data=True, **ARRAY12)
    dirs = [tmp_path / "a", tmp_path / "b"]
    procs = [subprocess.Popen([sys.executable, "-m", "solarpipe", "run", "hsol_calibration", "--vis", str(eb.ms),
                               "--workdir", str(d)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for d in dirs]
    for p in procs:
        out, err = p.communicate(timeout=1200)
        assert p.returncode == 0, out[-2000:] + err[-2000:]
    a, b = (extract(Context.load(d)) for d in dirs)
    assert len(a) > 100
    assert not compare(b, a, {}, default_tol=1e-6, allow_new=False)


@pytest.mark.parametrize("table_file", ["ANTENNA/table.f0", "table.f0"])
def test_truncated_table_file_is_named(tiny_eb, tmp_path, table_file):
    import shutil

    from solarpipe.errors import BadInputError

    raw = tmp_path / "raw.ms"
    shutil.copytree(tiny_eb.ms, raw)
    f = raw / table_file
    size = f.stat().st_size // 3
    with open(f, "r+b") as fh:
        fh.truncate(size)
    ctx = new_context(tmp_path / "run")
    with pytest.raises(BadInputError, match="truncated or corrupted") as err:
        run_stage(ctx, "hsol_importdata", {"vis": str(raw)})
    assert str(raw) in str(err.value)
    assert "ANTENNA" in str(err.value) if table_file.startswith("ANTENNA") else "main table" in str(err.value)
    assert f.stat().st_size == size  # the raw data were not touched
    assert not (tmp_path / "run" / "raw.ms").exists()  # nothing half-copied


def test_missing_catalogue_and_no_bandpass_calibrator_stop_with_exit_code_2(tmp_path):
    """Two EB problems found by the stage that needs the missing thing: the earlier
    stages' results are kept in the context."""
    import shutil

    from solarpipe.simulate import simulate_eb

    eb = simulate_eb(tmp_path / "sim", size="tiny", noise=True, bad_data=False, n_ant_12m=10, n_ant_7m=2)
    raw = tmp_path / "raw" / "nobp.ms"
    shutil.copytree(eb.ms, raw)
    out = subprocess.run([sys.executable, "-m", "solarpipe", "run", "hsol_calibration", "--vis", str(raw),
                          "--workdir", str(tmp_path / "run1")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 2 and "no calibrator catalogue found" in out.stderr and "catalogue=" in out.stderr
    shutil.copy(tmp_path / "sim" / "calibrator_catalogue.csv", raw.parent)
    from casatools import table

    tb = table()
    tb.open(str(raw / "STATE"), nomodify=False)
    modes = [",".join(m for m in s.split(",") if "BANDPASS" not in m) or "UNSPECIFIED" for s in tb.getcol("OBS_MODE")]
    tb.putcol("OBS_MODE", modes)
    tb.close()
    out = subprocess.run([sys.executable, "-m", "solarpipe", "run", "hsol_calibration", "--vis", str(raw),
                          "--workdir", str(tmp_path / "run2")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 2 and "CALIBRATE_BANDPASS" in out.stderr and str(raw.name) in out.stderr
    ctx = Context.load(tmp_path / "run2")
    assert [s.status for s in ctx.stages][:5] == ["ok"] * 5 and ctx.stages[-1].task == "hsol_bandpass"
