"""Crash safety and raw-data safety (issue 12).

A run killed with SIGKILL in the middle of hsol_importdata, hsol_flagdata,
hsol_ampcal or hsol_applycal continues with `solarpipe resume` and ends with
the same regression figures as an uninterrupted run; the context and the
weblog are never left corrupt; the raw MS is bit-for-bit unchanged.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import broken_weblog_links, tree_digest
from solarpipe.context import Context
from solarpipe.regression import DEFAULT_TOLERANCES, compare, extract, tolerances_for

ARRAY12 = {"n_ant_12m": 10, "n_ant_7m": 2}


def run_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "solarpipe", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def reference(sim_eb_factory, tmp_path_factory):
    """An uninterrupted hsol_calibration run; the raw MS digest before and after it."""
    eb = sim_eb_factory(size="tiny", noise=True, bad_data=True, **ARRAY12)
    before = tree_digest(Path(eb.ms))
    wd = tmp_path_factory.mktemp("crash_ref")
    out = run_cli("run", "hsol_calibration", "--vis", str(eb.ms), "--workdir", str(wd))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return eb, Context.load(wd), before


def test_raw_data_never_touched(reference):
    eb, ctx, before = reference
    assert [s.status for s in ctx.stages] == ["ok"] * len(ctx.stages)
    after = tree_digest(Path(eb.ms))
    assert after == before, [k for k in before if before[k] != after.get(k)]


@pytest.mark.parametrize("stage", [1, 2, 3, 8])  # importdata, flagdata, ampcal, applycal
def test_kill_in_a_stage_then_resume_gives_the_same_figures(reference, tmp_path, stage):
    eb, ref, _ = reference
    task = ref.stages[stage - 1].task
    delay = 0.4 * ref.stages[stage - 1].duration_s  # well inside the stage
    wd = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "solarpipe", "run", "hsol_calibration", "--vis", str(eb.ms),
                             "--workdir", str(wd)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in proc.stdout:  # progress lines: "stage N: task ..."
            if f"stage {stage}: {task} ..." in line:
                time.sleep(delay)
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed = Context.load(wd)  # the context on disk is readable (written atomically)
    assert killed.last_completed_stage == stage - 1, "the kill came after the stage had finished"
    out = run_cli("resume", "--workdir", str(wd))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    done = Context.load(wd)
    assert [s.task for s in done.stages] == [s.task for s in ref.stages]
    assert all(s.status == "ok" for s in done.stages)
    got, want = extract(done), extract(ref)
    diffs = compare(got, want, tolerances_for(want, DEFAULT_TOLERANCES), default_tol=1e-6)
    assert not diffs, "\n".join(str(d) for d in diffs[:20])
    assert broken_weblog_links(wd / "weblog") == []
