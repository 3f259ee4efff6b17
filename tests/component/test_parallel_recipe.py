"""One parallel layer, three ways of running it (issue 13).

The calibration + imaging recipe on the `small` EB gives the regression figures
of tests/regression/expected_small.txt (within their tolerances) serially, with
the local process pool (the shared hsol_solar run: backend 'auto' on this
2-core machine) and under ``mpirun -n 3`` (rank 0 runs the pipeline, 2 worker
ranks run the jobs). A job that raises on an MPI worker rank is named, and the
other chunks' results come back.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from solarpipe.context import Context
from solarpipe.parallel import usable_cores
from solarpipe.regression import compare, extract, parse_figures

EXPECTED = Path(__file__).parents[1] / "regression" / "expected_small.txt"
HERE = Path(__file__).parent


def mpirun() -> list[str]:
    """``mpirun`` of the venv's Open MPI (the [mpi] extra), allowed as root, more ranks than cores."""
    exe = shutil.which("mpirun", path=str(Path(sys.executable).parent)) or shutil.which("mpirun")
    assert exe, "mpirun not found: install the MPI extra (pip install -e '.[test,mpi]', see README)"
    return [exe, "--oversubscribe", "-n", "3"]


def mpi_env() -> dict[str, str]:
    env = dict(os.environ)
    for k in ("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM",
              "PRTE_ALLOW_RUN_AS_ROOT", "PRTE_ALLOW_RUN_AS_ROOT_CONFIRM"):
        env.setdefault(k, "1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SOLARPIPE_PARALLEL", None)
    return env


def figures_of(workdir: Path, expected: dict[str, float]) -> dict[str, float]:
    """The run's figures; every expected figure of the stages it ran must be there."""
    got = extract(Context.load(workdir))
    stages = {k.split(".", 1)[0] for k in got}
    missing = [k for k in expected if k.split(".", 1)[0] in stages and k not in got]
    assert not missing, f"{workdir}: figures missing: {missing[:5]}"
    return got


@pytest.fixture(scope="module")
def runs(sim_eb_factory, small_calimage, tmp_path_factory):
    """(expected, tolerances, {mode: (context, figures)}) for serial, pool and MPI."""
    eb = sim_eb_factory(size="small", noise=True, bad_data=True)
    expected, tols = parse_figures(EXPECTED.read_text(), str(EXPECTED))
    out = {"pool": small_calimage[1]}
    base = tmp_path_factory.mktemp("parallel_modes")
    cmds = {
        "serial": [sys.executable, "-m", "solarpipe", "run", "hsol_calimage", "--parallel", "serial"],
        "mpi": mpirun() + [sys.executable, "-m", "mpi4py.futures", "-m", "solarpipe", "run", "hsol_calimage"],
    }
    for mode, cmd in cmds.items():
        wd = base / mode
        done = subprocess.run(cmd + ["--vis", str(eb.ms), "--workdir", str(wd)], capture_output=True, text=True,
                              timeout=1800, env=mpi_env(), cwd=base)
        assert done.returncode == 0, f"{mode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        out[mode] = Context.load(wd)
    return expected, tols, out


@pytest.mark.parametrize("mode", ["serial", "pool", "mpi"])
def test_same_regression_figures_serial_pool_and_mpirun(runs, mode):
    expected, tols, ctxs = runs
    ctx = ctxs[mode]
    got = figures_of(Path(ctx.workdir), expected)
    wanted = {k: v for k, v in expected.items() if k in got}
    assert len(wanted) > 1000  # the calibration + imaging figures (tant, flux, flags, images, QA)
    diffs = compare(got, wanted, tols)
    assert not diffs, f"{mode}: regression figures differ:\n" + "\n".join(map(str, diffs[:20]))
    # the run used the backend it says: imaging's tclean jobs went through it
    imaging = next(s for s in ctx.stages if s.task == "hsol_imaging")
    par = imaging.results["parallel"]
    backend = {"serial": "serial", "pool": "process" if usable_cores() > 1 else "serial", "mpi": "mpi"}[mode]
    assert par["backend"] == backend and all(j["ok"] for j in par["jobs"])
    assert {j["chunk"] for j in par["jobs"]} >= {"sun"}
    if mode == "mpi":
        assert par["workers"] == 2  # mpirun -n 3: rank 0 runs the pipeline, 2 worker ranks


def test_failed_chunk_on_an_mpi_worker_is_named_and_others_kept(tmp_path):
    """Under mpirun -n 3, a job that raises on a worker rank is reported by chunk name;
    the other chunks' results come back (the script prints them)."""
    script = tmp_path / "fail_one.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(HERE.parent)!r})\n"
        "from parallel_jobs import maybe_fail\n"
        "from solarpipe.parallel import Job, ParallelJobError, run_jobs\n"
        "if __name__ == '__main__':\n"
        "    try:\n"
        "        run_jobs([Job(f'scan{i}', maybe_fail, (i,)) for i in range(6)])\n"
        "    except ParallelJobError as exc:\n"
        "        print('ERROR', exc)\n"
        "        print('KEPT', sorted(r.value for r in exc.results if r.ok))\n"
        "        print('RANKS', len({r.pid for r in exc.results}))\n")
    done = subprocess.run(mpirun() + [sys.executable, "-m", "mpi4py.futures", str(script)], capture_output=True,
                          text=True, timeout=600, env=mpi_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.split(" ", 1)[0] in
                 ("ERROR", "KEPT", "RANKS"))
    assert "1 of 6 job(s) failed: chunk scan3: ValueError: bad chunk data" in lines["ERROR"]
    assert lines["KEPT"] == "[0, 1, 2, 4, 5]"
    assert int(lines["RANKS"]) == 2  # the jobs ran on the 2 worker ranks, not on rank 0
