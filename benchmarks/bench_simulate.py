"""Benchmark of the solar EB simulator: generation time and on-disk size per preset.

    python benchmarks/bench_simulate.py [--large] [--mosaic N] [--out DIR] [--keep]

Runs ``tiny`` and ``small`` (and ``large`` with ``--large``; it takes many minutes
and ~10 GB of disk) and prints, per preset: wall time, MS size, MAIN rows, the
time spent writing visibilities, and the ratios s per million rows and MB written
per second. Nothing is asserted: the numbers are for reading.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import solarpipe  # noqa: E402,F401  (offline CASA configuration first)

LOG = logging.getLogger("bench_simulate")


def run_one(size: str, out: Path, mosaic: int | None) -> dict:
    """Simulate one preset and return its figures."""
    from solarpipe.simulate import simulate_eb

    target = out / (size if mosaic is None else f"{size}_mosaic{mosaic}")
    if target.exists():
        shutil.rmtree(target)
    t0 = time.time()
    eb = simulate_eb(target, size=size, mosaic=mosaic)
    wall = time.time() - t0
    gen = eb.truth["generation"]
    rows = gen["main_rows"]
    vis_s = gen["timings_s"].get("visibilities", float("nan"))
    return {"size": size, "mosaic": mosaic, "wall_s": wall, "ms_mb": eb.size_bytes / 1e6, "rows": rows,
            "vis_s": vis_s, "s_per_mrow": wall / max(rows, 1) * 1e6, "mb_per_s": eb.size_bytes / 1e6 / wall,
            "antennas": len(eb.truth["antennas"]), "duration_min": eb.truth["duration_s"] / 60.0,
            "path": str(target)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints one line per preset."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--large", action="store_true", help="also run the large preset (slow, ~10 GB)")
    p.add_argument("--mosaic", type=int, default=None, help="mosaic pointings for every preset")
    p.add_argument("--out", default=None, help="output directory (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the generated EBs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_simulate_"))
    out.mkdir(parents=True, exist_ok=True)
    from solarpipe.simulate.__main__ import quiet_casa_console

    quiet_casa_console(str(out))
    sizes = ["tiny", "small"] + (["large"] if args.large else [])
    print(f"{'preset':<16}{'ants':>5}{'min':>7}{'rows':>11}{'MS MB':>10}{'wall s':>9}{'vis s':>8}"
          f"{'s/Mrow':>9}{'MB/s':>8}")
    try:
        for size in sizes:
            r = run_one(size, out, args.mosaic)
            name = size if args.mosaic is None else f"{size}+mos{args.mosaic}"
            print(f"{name:<16}{r['antennas']:>5}{r['duration_min']:>7.1f}{r['rows']:>11}{r['ms_mb']:>10.1f}"
                  f"{r['wall_s']:>9.1f}{r['vis_s']:>8.1f}{r['s_per_mrow']:>9.2f}{r['mb_per_s']:>8.1f}", flush=True)
    finally:
        if not args.keep and not args.out:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
