"""Command line: ``python -m solarpipe.simulate`` (also ``solarpipe simulate``).

    python -m solarpipe.simulate --size tiny --band 3 [--mosaic N] [--sky model.fits]
        [--seed S] [--no-noise] [--no-bad-data] --out DIR

Prints the generation time and the MS size at the end; progress is logged.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

LOG = logging.getLogger("solarpipe.simulate")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="solarpipe simulate",
                                description="Write a synthetic ALMA solar EB (MS + truth + TP map + catalogue).")
    p.add_argument("--size", choices=("tiny", "small", "large"), default="tiny")
    p.add_argument("--band", type=int, choices=(3, 6), default=3)
    p.add_argument("--mosaic", type=int, default=None, metavar="N", help="number of mosaic pointings")
    p.add_argument("--sky", default=None, help="FITS image (K or Jy/pixel) used as the Sun model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-noise", action="store_true", help="noise-free data")
    p.add_argument("--no-bad-data", action="store_true", help="no injected bad data")
    p.add_argument("--spw-layout", choices=("default", "alt"), default="default")
    p.add_argument("--extra-atm-scan", action="store_true")
    p.add_argument("--time-variable", action="store_true")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def quiet_casa_console(out_dir: str, keep_console: bool = False) -> None:
    """Send CASA's own log to ``<out_dir>/casa_simulate.log`` and (unless asked) off the console.

    Only for the command-line process: library calls leave CASA's logging alone.
    """
    from pathlib import Path

    from casatasks import casalog

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    casalog.setlogfile(str(Path(out_dir).resolve() / "casa_simulate.log"))
    if not keep_console:
        casalog.showconsole(False)


def main(argv: list[str] | None = None) -> int:
    """Run the simulator from command-line arguments; returns the exit status."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import solarpipe  # noqa: F401  (offline CASA configuration before casatools loads)
    from .core import simulate_eb

    quiet_casa_console(args.out, keep_console=args.verbose)

    t0 = time.time()
    eb = simulate_eb(args.out, size=args.size, band=args.band, mosaic=args.mosaic, sky=args.sky, seed=args.seed,
                     noise=not args.no_noise, bad_data=not args.no_bad_data, spw_layout=args.spw_layout,
                     extra_atm_scan=args.extra_atm_scan, time_variable=args.time_variable)
    dt = time.time() - t0
    print(f"MS:        {eb.ms}")
    print(f"truth:     {eb.truth_json}")
    print(f"TP map:    {eb.tp_map_fits}")
    print(f"catalogue: {eb.catalogue}")
    print(f"generation time: {dt:.1f} s")
    print(f"MS size: {eb.size_bytes / 1e6:.1f} MB ({eb.truth['generation']['main_rows']} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
