"""Benchmark hsol_tdimaging, measured as ratios in one run (issue 8, must-show 4).

The `small` EB is simulated and calibrated + imaged (hsol_calimage), or an existing
working directory is used (--workdir); then the same frames are imaged serially, with
a local process pool of 2 workers, and with MPI (1 and 2 ranks, when mpi4py is
installed: pip install '.[mpi]'). Prints seconds per frame, the speed-ups, and each
worker's peak memory.

    python benchmarks/bench_tdimaging.py [--workdir DIR] [--cadence 40] [--modes serial,process2,mpi1,mpi2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import solarpipe  # noqa: E402,F401  (offline CASA before casatools)

MODES = {"serial": ("serial", 1), "process2": ("process", 2), "mpi1": ("mpi", 1), "mpi2": ("mpi", 2)}


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


def main(argv: list[str] | None = None) -> int:
    from solarpipe.context import Context
    from solarpipe.runner import run_stage

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir")
    ap.add_argument("--cadence", type=float, default=40.0)
    ap.add_argument("--modes", default="serial,process2,mpi1,mpi2")
    args = ap.parse_args(argv)
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
        backend, workers = MODES[mode]
        ctx = Context.load(wd)
        t0 = time.perf_counter()
        rec = run_stage(ctx, "hsol_tdimaging", {"cadence_s": args.cadence, "backend": backend, "workers": workers})
        times[mode] = time.perf_counter() - t0
        frames = rec.results["summary"]["frames"]
        rss: dict[int, float] = {}
        for f in frames:
            rss[f["worker_pid"]] = max(rss.get(f["worker_pid"], 0.0), f["worker_peak_rss_mb"])
        print(f"{mode:9s}: {len(frames)} frames in {times[mode]:.1f} s = {times[mode] / len(frames):.2f} s/frame; "
              f"worker peak RSS {', '.join(f'{v:.0f}' for v in rss.values())} MB")
    if "serial" in times and "process2" in times:
        print(f"speed-up, process pool 2 workers over serial: {times['serial'] / times['process2']:.2f}")
    if "mpi1" in times and "mpi2" in times:
        print(f"speed-up, 2 MPI ranks over 1: {times['mpi1'] / times['mpi2']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
