"""Benchmark hsol_ampcal, measured as ratios in one run (issue 5).

(a) hsol_ampcal time / one plain casatools pass that reads DATA and writes
    CORRECTED_DATA for the same rows (the I/O floor), on the 'large' EB;
(b) the legacy pattern (benchmarks/legacy_ampcal.py) / hsol_ampcal, on a mosaic
    EB with >= 50 pointings and >= 100 on-Sun sub-scans;
(c) hsol_ampcal with 1 worker / with 2 workers, on the 'small' EB partitioned by
    scan into a multi-MS (the application fans out one sub-MS per job).

    python benchmarks/bench_ampcal.py [--part a|b|c|all] [--large-ms PATH] [--keep DIR]

Prints the EB sizes and the ratios; timings depend on the machine, ratios much less.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

import solarpipe  # noqa: E402,F401  (offline CASA before casatools)


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6


def io_floor(vis: str, field_ids: list[int], spw_ids: list[int], chunk: int = 20000) -> float:
    """Seconds to read DATA and write CORRECTED_DATA once for the rows applycal touches."""
    from casatools import table

    from solarpipe.msutil import ddid_of_spw

    dd = ddid_of_spw(vis)
    tb = table()
    tb.open(vis, nomodify=False)
    t0 = time.perf_counter()
    try:
        q = tb.query(f"FIELD_ID IN [{','.join(map(str, field_ids))}] && "
                     f"DATA_DESC_ID IN [{','.join(str(dd[s]) for s in spw_ids)}]")
        rows = q.rownumbers()
        q.close()
        # rows of one DATA_DESC_ID share a shape; read/write contiguous runs per DDID
        for d in sorted({dd[s] for s in spw_ids}):
            q = tb.query(f"FIELD_ID IN [{','.join(map(str, field_ids))}] && DATA_DESC_ID=={d}")
            n = q.nrows()
            for start in range(0, n, chunk):
                m = min(chunk, n - start)
                q.putcol("CORRECTED_DATA", q.getcol("DATA", start, m), start, m)
            q.close()
    finally:
        tb.close()
    return time.perf_counter() - t0, len(rows)


def run_ampcal(vis: str, workdir: Path) -> tuple[float, object]:
    from solarpipe.context import Context
    from solarpipe.runner import new_context, run_stage

    ctx = new_context(workdir)
    run_stage(ctx, "hsol_importdata", {"vis": vis})
    t0 = time.perf_counter()
    run_stage(ctx, "hsol_ampcal", {})
    return time.perf_counter() - t0, Context.load(workdir)


def part_a(large_ms: str | None, keep: Path) -> None:
    from solarpipe.simulate import simulate_eb

    if large_ms is None:
        t0 = time.perf_counter()
        eb = simulate_eb(keep / "large_sim", size="large")
        print(f"[a] simulated the large EB in {time.perf_counter() - t0:.0f} s")
        large_ms = str(eb.ms)
    print(f"[a] large EB: {large_ms}, {du_mb(Path(large_ms)):.0f} MB")
    t_amp, ctx = run_ampcal(large_ms, keep / "large_run")
    run = ctx.observing_run
    fields = sorted(set(run.sun_field_ids + run.field_ids("bandpass") + run.field_ids("phase") + run.field_ids("flux")))
    floor1, nrows = io_floor(run.vis, fields, run.science_spw_ids)
    floor2, _ = io_floor(run.vis, fields, run.science_spw_ids)
    floor = min(floor1, floor2)
    print(f"[a] {len(run.antennas)} antennas, {len(run.science_spw_ids)} x {run.spws[run.science_spw_ids[0]].nchan} "
          f"channels, {(run.end_mjd_s - run.start_mjd_s) / 60:.0f} min, {nrows} rows calibrated")
    print(f"[a] hsol_ampcal {t_amp:.1f} s; I/O floor (read DATA + write CORRECTED_DATA) {floor:.1f} s "
          f"(passes {floor1:.1f}, {floor2:.1f} s)")
    print(f"[a] RATIO hsol_ampcal / I/O floor = {t_amp / floor:.2f}  (goal <= 2)")


def part_b(keep: Path) -> None:
    from legacy_ampcal import legacy_ampcal

    from solarpipe.simulate import simulate_eb

    t0 = time.perf_counter()
    eb = simulate_eb(keep / "mosaic_sim", size="tiny", mosaic=50, n_science_scans=2, noise=True, bad_data=False)
    print(f"[b] simulated the mosaic EB in {time.perf_counter() - t0:.0f} s: {du_mb(Path(eb.ms)):.0f} MB")
    t_amp, ctx = run_ampcal(str(eb.ms), keep / "mosaic_run")
    run = ctx.observing_run
    n_on = sum(1 for s in run.scans for ss in s.subscans if "OBSERVE_TARGET#ON_SOURCE" in ss.intents)
    print(f"[b] {len(run.sun_field_ids)} pointings, {n_on} on-Sun sub-scans, {len(run.antennas)} antennas")
    tsys = Path(ctx.workdir) / ctx.stages[-1].results["summary"]["tsys_table"]
    t0 = time.perf_counter()
    n_apply = legacy_ampcal(run, str(tsys), keep / "mosaic_run")
    t_leg = time.perf_counter() - t0
    print(f"[b] legacy pattern {t_leg:.1f} s ({n_apply} applycal calls); hsol_ampcal {t_amp:.1f} s")
    print(f"[b] RATIO legacy / hsol_ampcal = {t_leg / t_amp:.1f}  (goal >= 20)")


def part_c(keep: Path, nsub: int = 4, medium: bool = False) -> None:
    from casatasks import partition

    from solarpipe.simulate import simulate_eb

    overrides = {"n_ant_12m": 30, "n_ant_7m": 10, "nchan": 128} if medium else {}
    eb = simulate_eb(keep / "small_sim", size="small", noise=True, bad_data=False, **overrides)
    mms = keep / "small.mms"
    if mms.exists():
        shutil.rmtree(mms)
    partition(vis=str(eb.ms), outputvis=str(mms), createmms=True, separationaxis="scan", numsubms=nsub,
              flagbackup=False)
    shutil.copy(eb.catalogue, keep)
    print(f"[c] {'medium (small preset, 40 antennas, 128 ch)' if medium else 'small'} EB "
          f"{du_mb(Path(eb.ms)):.0f} MB, partitioned by scan into {nsub} sub-MSs")
    times = {}
    for workers in (1, 2):
        from solarpipe.context import Context
        from solarpipe.runner import new_context, run_stage

        from solarpipe.parallel import ParallelSettings

        wd = keep / f"small_w{workers}"
        ctx = new_context(wd, parallel=ParallelSettings("process" if workers > 1 else "serial", workers))
        run_stage(ctx, "hsol_importdata", {"vis": str(mms)})
        t0 = time.perf_counter()
        rec = run_stage(ctx, "hsol_ampcal", {})
        times[workers] = time.perf_counter() - t0
        jobs = (rec.results.get("parallel") or {}).get("jobs", [])
        peak = max((j["peak_rss_mb"] for j in jobs), default=0)
        print(f"[c] workers={workers}: hsol_ampcal {times[workers]:.1f} s"
              + (f", {len(jobs)} jobs, peak worker memory {peak} MB" if jobs else ""))
        shutil.rmtree(wd, ignore_errors=True)
    print(f"[c] RATIO 1 worker / 2 workers = {times[1] / times[2]:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["a", "b", "c", "all"], default="all")
    ap.add_argument("--large-ms", help="reuse an existing large simulated MS for part (a)")
    ap.add_argument("--keep", help="working directory to keep (default: a temporary one)")
    ap.add_argument("--medium", action="store_true",
                    help="part (c) on a 40-antenna, 128-channel version of the small EB")
    args = ap.parse_args()
    keep = Path(args.keep or tempfile.mkdtemp(prefix="bench_ampcal_"))
    keep.mkdir(parents=True, exist_ok=True)
    try:
        if args.part in ("b", "all"):
            part_b(keep)
        if args.part in ("c", "all"):
            part_c(keep, medium=args.medium)
        if args.part in ("a", "all"):
            part_a(args.large_ms, keep)
    finally:
        if not args.keep:
            shutil.rmtree(keep, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
