"""Benchmark hsol_tdimaging, measured as ratios in one run (issue 8, must-show 4).

The `small` EB is simulated and calibrated + imaged (hsol_calimage), or an existing
working directory is used (--workdir); then the same frames are imaged serially, with
a local process pool of 2 workers, and with MPI (1 and 2 ranks, when mpi4py is
installed: pip install '.[mpi]'). Prints seconds per frame, the speed-ups, and each
worker's peak memory.

    python benchmarks/bench_tdimaging.py [--workdir DIR] [--cadence 40] [--modes serial,process2,mpi1,mpi2]

Each mode runs in a fresh process; the MPI ones under ``mpirun -n (ranks + 1) python -m
mpi4py.futures`` (rank 0 runs the stage, the others are the workers).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import solarpipe  # noqa: E402,F401  (offline CASA before casatools)

#: mode -> (backend, workers, MPI ranks to launch: 0 = no mpirun)
MODES = {"serial": ("serial", 1, 0), "process2": ("process", 2, 0), "mpi1": ("mpi", 1, 2), "mpi2": ("mpi", 2, 3)}


def prepared_workdir(workdir: str | None) -> Path:
    """A working directory whose context has a Sun image of the small EB."""
    from solarpipe.recipe import load_recipe
    from solarpipe.runner import new_context, run_recipe
    from solarpipe.simulate import simulate_eb

    if workdir:
        return Path(workdir)
    tmp = Path(tempfile.mkdtemp(prefix="bench_tdimaging_"))
    eb = simulate_eb(tmp / "sim", size="small", seed=0)
    t0 = time.perf_counter()
    run_recipe(load_recipe("hsol_calimage"), new_context(tmp / "run"), vis=str(eb.ms))
    print(f"calibration + imaging of the small EB: {time.perf_counter() - t0:.0f} s ({tmp / 'run'})")
    return tmp / "run"


def run_one(workdir: Path, mode: str, cadence: float) -> dict:
    """One hsol_tdimaging stage in this process (under mpirun for the MPI modes)."""
    from solarpipe.context import Context
    from solarpipe.runner import run_stage

    backend, workers, _ = MODES[mode]
    t0 = time.perf_counter()
    rec = run_stage(Context.load(workdir), "hsol_tdimaging",
                    {"cadence_s": cadence, "backend": backend, "workers": workers})
    seconds = time.perf_counter() - t0
    rss: dict[int, float] = {}
    for f in rec.results["summary"]["frames"]:
        rss[f["worker_pid"]] = max(rss.get(f["worker_pid"], 0.0), f["worker_peak_rss_mb"])
    return {"mode": mode, "seconds": seconds, "frames": len(rec.results["summary"]["frames"]),
            "peak_rss_mb": sorted(rss.values())}


def launch(workdir: Path, mode: str, cadence: float) -> dict:
    """Run one mode in a fresh process (``mpirun -n ranks python -m mpi4py.futures`` for MPI)."""
    ranks = MODES[mode][2]
    cmd = [sys.executable, __file__, "--inner", mode, "--workdir", str(workdir), "--cadence", str(cadence)]
    if ranks:
        mpirun = Path(sys.executable).with_name("mpirun")
        cmd = [str(mpirun), "--oversubscribe", "-n", str(ranks), sys.executable, "-m", "mpi4py.futures"] + cmd[1:]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PRTE_ALLOW_RUN_AS_ROOT="1", PRTE_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=7200)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"{mode} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(line[len("RESULT "):])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir")
    ap.add_argument("--cadence", type=float, default=40.0)
    ap.add_argument("--modes", default="serial,process2,mpi1,mpi2")
    ap.add_argument("--inner", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.inner:
        print("RESULT " + json.dumps(run_one(Path(args.workdir), args.inner, args.cadence)), flush=True)
        return 0
    modes = [m for m in args.modes.split(",") if m]
    if any(m.startswith("mpi") for m in modes):
        try:
            import mpi4py  # noqa: F401
        except ImportError:
            print("mpi4py not installed (pip install '.[mpi]'): MPI modes skipped")
            modes = [m for m in modes if not m.startswith("mpi")]
    wd = prepared_workdir(args.workdir)
    times: dict[str, float] = {}
    for mode in modes:
        r = launch(wd, mode, args.cadence)
        times[mode] = r["seconds"]
        print(f"{mode:9s}: {r['frames']} frames in {r['seconds']:.1f} s = {r['seconds'] / r['frames']:.2f} s/frame; "
              f"worker peak RSS {', '.join(f'{v:.0f}' for v in r['peak_rss_mb'])} MB", flush=True)
    if "serial" in times and "process2" in times:
        print(f"speed-up, process pool 2 workers over serial: {times['serial'] / times['process2']:.2f}")
    if "mpi1" in times and "mpi2" in times:
        print(f"speed-up, 2 MPI ranks over 1: {times['mpi1'] / times['mpi2']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
