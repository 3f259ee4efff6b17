"""Benchmark the parallel layer in one run (issue 13, must-show 2).

On the `small` EB, measured here:
  * hsol_ampcal on the EB partitioned by scan (importdata createmms='yes'), with the
    run's backend serial and a 2-worker process pool: the stage time, the time of
    its parallel part (the application, one sub-MS per job) and the speed-ups; and
    serially on the plain MS, the other baseline;
  * hsol_tdimaging (frames of --cadence s) serially and with a 2-worker pool;
  (the pool is the run's warm WorkerPool, started before the stage as a recipe run does);
  * every worker's peak memory (RSS).
Then, for the `large` EB, a MODEL ON PAPER (not a measurement): the cluster time on
1, 2, 8 and 64 MPI worker ranks, from the per-chunk costs measured above scaled by
visibilities (rows x channels) per chunk; chunks are handed out longest first, each
rank pays a worker start-up, the serial remainder is scaled the same way.

    python benchmarks/bench_parallel.py [--workdir DIR] [--cadence 20]

Every mode runs in a fresh process, one after the other; the ratios are what to read
(the machine is shared: absolute seconds vary, ratios much less).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import solarpipe  # noqa: E402,F401  (offline CASA before casatools)
from _inner import run_inner  # noqa: E402  (benchmarks/, the script's folder)

MODES = {"serial": ("serial", 1), "pool2": ("process", 2)}


# -- inner runs (each in its own process) ---------------------------------------------------
def inner_ampcal(vis: str, workdir: Path, mode: str, createmms: str = "yes") -> dict:
    from solarpipe.parallel import ParallelSettings
    from solarpipe.runner import new_context, run_stage

    from solarpipe.runner import run_worker_pool

    backend, workers = MODES[mode]
    ctx = new_context(workdir, parallel=ParallelSettings(backend, workers))
    with run_worker_pool(ctx) as pool:  # as in a recipe run: the workers outlive the stages
        run_stage(ctx, "hsol_importdata", {"vis": vis, "createmms": createmms}, pool=pool)
        if pool:
            pool.wait_warm()
        t0 = time.perf_counter()
        rec = run_stage(ctx, "hsol_ampcal", {}, pool=pool)
        stage_s = time.perf_counter() - t0
    par = rec.results.get("parallel") or {}
    applycal = [c for c in rec.results["casa_calls"] if c["code"].startswith("applycal(")]
    apply_s = par.get("wall_s") if par else sum(c.get("seconds", 0.0) for c in applycal)
    return {"stage_s": stage_s, "apply_s": apply_s, "jobs": par.get("jobs", []),
            "serial_apply_calls": [c.get("seconds", 0.0) for c in applycal] if not par else []}


def inner_tdimaging(workdir: Path, mode: str, cadence: float) -> dict:
    from solarpipe.context import Context
    from solarpipe.runner import run_stage

    from solarpipe.parallel import ParallelSettings
    from solarpipe.runner import run_worker_pool

    backend, workers = MODES[mode]
    ctx = Context.load(workdir)
    ctx.parallel = ParallelSettings(backend, workers).to_dict()
    with run_worker_pool(ctx) as pool:  # as in a recipe run: warm workers from earlier stages
        if pool:
            pool.wait_warm()
        t0 = time.perf_counter()
        rec = run_stage(ctx, "hsol_tdimaging", {"cadence_s": cadence}, pool=pool)
        stage_s = time.perf_counter() - t0
    frames = rec.results["summary"]["frames"]
    return {"stage_s": stage_s, "frames": len(frames), "jobs": rec.results["parallel"]["jobs"],
            "frame_s": [j["seconds"] for j in rec.results["parallel"]["jobs"]]}


def launch(*args: str) -> dict:
    return run_inner(__file__, *args)


# -- the paper model --------------------------------------------------------------------------
def eb_volume(size: str) -> dict:
    """Visibility units (integrations x baselines incl. autos x science channels) per scan
    of a preset EB, from the simulator's observing plan (nothing is written)."""
    from solarpipe.simulate.config import SimConfig, build_spw_layout, spws_by_role
    from solarpipe.simulate.plan import build_plan

    cfg = SimConfig.preset(size)
    n_ant = cfg.n_ant_12m + cfg.n_ant_7m
    nchan = sum(s.nchan for s in spws_by_role(build_spw_layout(cfg), "science"))
    plan = build_plan(cfg, 60.0, 0.0)
    per_scan = {sc.number: (sc.end_s - sc.start_s) / cfg.integration_s * n_ant * (n_ant + 1) / 2 * nchan
                for sc in plan.scans}
    on_sun = sum(s.end_s - s.start_s for s in plan.subscans if s.kind == "on")
    return {"per_scan": per_scan, "total": sum(per_scan.values()), "n_ant": n_ant, "nchan": nchan,
            "on_sun_s": on_sun, "integration_s": cfg.integration_s, "n_scans": len(plan.scans)}


def project(ampcal: dict, td: dict, cadence: float) -> None:
    from heuristics.parallel import WORKER_START_S, project_cluster_time

    small, large = eb_volume("small"), eb_volume("large")
    scale = large["total"] / small["total"]
    # ampcal: application chunks = scans (a scan partition), cost per visibility unit measured
    apply_cost = ampcal["serial"]["apply_s"] / small["total"]
    apply_chunks = [v * apply_cost for v in large["per_scan"].values()]
    amp_serial_rest = (ampcal["serial"]["stage_s"] - ampcal["serial"]["apply_s"]) * scale
    # tdimaging: one frame per integration of on-Sun time (the default cadence); a frame's
    # cost taken as the measured frame's times the ratio of baselines (channels are
    # averaged before imaging), not reduced for the shorter frame: an upper bound, since
    # a frame's fixed costs (grid, FFTs, minor cycles) do not shrink with its length
    frame_s = sorted(td["serial"]["frame_s"])[len(td["serial"]["frame_s"]) // 2]
    bl = lambda v: v["n_ant"] * (v["n_ant"] - 1) / 2  # noqa: E731
    n_frames = int(large["on_sun_s"] // large["integration_s"])
    frame_large = frame_s * (bl(large) / bl(small))
    td_rest = max(0.0, td["serial"]["stage_s"] - sum(td["serial"]["frame_s"]))
    print("\nMODEL ON PAPER for the `large` EB (not measured): "
          f"{large['n_ant']} antennas, {large['nchan']} science channels, {large['n_scans']} scans, "
          f"{scale:.1f} x the small EB's visibilities; {n_frames} frames at one integration.")
    print(f"  per-chunk costs from this run: application {apply_cost * 1e9:.2f} s per 1e9 visibility units; "
          f"a {cadence:g} s frame of the small EB {frame_s:.2f} s (median) -> {frame_large:.2f} s per "
          f"large-EB frame (upper bound); worker start-up {WORKER_START_S:g} s")
    print(f"  {'ranks':>6} {'ampcal (h)':>11} {'speed-up':>9} {'tdimaging (h)':>14} {'speed-up':>9}")
    for ranks in (1, 2, 8, 64):
        a = project_cluster_time(apply_chunks, amp_serial_rest, ranks)
        t = project_cluster_time([frame_large] * n_frames, td_rest, ranks)
        print(f"  {ranks:>6} {a.parallel_s / 3600:>11.2f} {a.speedup:>9.1f} {t.parallel_s / 3600:>14.2f} "
              f"{t.speedup:>9.1f}")
    print("  ampcal stops scaling at the number of scans (one sub-MS per scan; the longest Sun scan is "
          "the critical chunk);\n  tdimaging scales to thousands of frames, each rank paying one start-up.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", help="keep the working directories here (default: a temporary one)")
    ap.add_argument("--cadence", type=float, default=20.0, help="tdimaging frame length (s)")
    ap.add_argument("--inner", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.inner:
        what = args.inner[0]
        if what == "ampcal":
            out = inner_ampcal(args.inner[1], Path(args.inner[2]), args.inner[3], args.inner[4])
        else:
            out = inner_tdimaging(Path(args.inner[1]), args.inner[2], float(args.inner[3]))
        print("RESULT " + json.dumps(out), flush=True)
        return 0

    from solarpipe.recipe import load_recipe
    from solarpipe.runner import new_context, run_recipe
    from solarpipe.simulate import simulate_eb

    base = Path(args.workdir or tempfile.mkdtemp(prefix="bench_parallel_"))
    base.mkdir(parents=True, exist_ok=True)
    sim = base / "sim"
    if not (sim / "truth.json").exists():
        simulate_eb(sim, size="small", seed=0)
    vis = str(next(sim.glob("*.ms")))
    run = base / "calimage"
    if not (run / "context.json").exists():
        t0 = time.perf_counter()
        run_recipe(load_recipe("hsol_calimage"), new_context(run), vis=vis)
        print(f"(calibration + imaging of the small EB for tdimaging: {time.perf_counter() - t0:.0f} s)")

    ampcal, td = {}, {}
    plain = launch("ampcal", vis, str(base / "ampcal_plain"), "serial", "no")
    for mode in MODES:
        ampcal[mode] = launch("ampcal", vis, str(base / f"ampcal_{mode}"), mode, "yes")
        td[mode] = launch("tdimaging", str(run), mode, str(args.cadence))
    print(f"\nsmall EB, {os.cpu_count()} cores, 1 OpenMP thread per worker")
    a_s, a_p = ampcal["serial"], ampcal["pool2"]
    print(f"hsol_ampcal (multi-MS by scan): serial {a_s['stage_s']:.1f} s (application {a_s['apply_s']:.1f} s), "
          f"pool of 2 {a_p['stage_s']:.1f} s (application {a_p['apply_s']:.1f} s, {len(a_p['jobs'])} jobs)")
    print(f"  SPEED-UP ampcal stage {a_s['stage_s'] / a_p['stage_s']:.2f}; its application "
          f"{a_s['apply_s'] / a_p['apply_s']:.2f}  (goal >= 1.6)")
    print(f"  the plain (not partitioned) MS, serial: stage {plain['stage_s']:.1f} s, application "
          f"{plain['apply_s']:.1f} s -> SPEED-UP of the pool on the multi-MS over it: stage "
          f"{plain['stage_s'] / a_p['stage_s']:.2f}, application {plain['apply_s'] / a_p['apply_s']:.2f}")
    t_s, t_p = td["serial"], td["pool2"]
    print(f"hsol_tdimaging ({t_s['frames']} frames of {args.cadence:g} s): serial {t_s['stage_s']:.1f} s, "
          f"pool of 2 {t_p['stage_s']:.1f} s")
    print(f"  SPEED-UP tdimaging stage {t_s['stage_s'] / t_p['stage_s']:.2f}  (goal >= 1.6)")
    for name, r in (("ampcal", a_p), ("tdimaging", t_p)):
        peaks = {}
        for j in r["jobs"]:
            peaks[j.get("pid", j["chunk"])] = max(peaks.get(j.get("pid", j["chunk"]), 0), j["peak_rss_mb"])
        print(f"  {name}: worker peak memory {max(peaks.values()):.0f} MB (max over {len(r['jobs'])} jobs)")
    project(ampcal, td, args.cadence)
    return 0


if __name__ == "__main__":
    sys.exit(main())
