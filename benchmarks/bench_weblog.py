"""Benchmark of the weblog: its size on disk and how fast Chromium renders the home page.

    python benchmarks/bench_weblog.py [--workdir RUN] [--out DIR] [--repeat N] [--screenshots docs]

Without ``--workdir`` the demo runs on the `small` EB (simulated, then
hsol_solar; several minutes); with it, the weblog of that run is measured. Prints the
weblog's size in MB (with the PNG/HTML/other split) and the time from
navigation to the load event of ``index.html`` in headless Chromium (first
load in a fresh browser, then the median of ``--repeat`` reloads), against the
issue's targets (< 20 MB, < 2 s). Nothing is asserted: the numbers are for
reading. ``--screenshots DIR`` also writes the README's screenshots of the
home page and of the hsol_ampcal page.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import solarpipe  # noqa: E402,F401  (offline CASA configuration first)

SIZE_TARGET_MB = 20.0
RENDER_TARGET_S = 2.0


def weblog_size(weblog: Path) -> dict[str, float]:
    """Size in MB of the weblog's files: all, PNG, HTML, other; and the number of files."""
    files = [f for f in weblog.rglob("*") if f.is_file()]
    mb = {"all": 0.0, "png": 0.0, "html": 0.0, "other": 0.0}
    for f in files:
        size = f.stat().st_size / 1e6
        kind = f.suffix.lstrip(".") if f.suffix in (".png", ".html") else "other"
        mb["all"] += size
        mb[kind] += size
    return {**mb, "files": float(len(files))}


def index_render_times(index: Path, repeat: int) -> tuple[float, list[float], float]:
    """(first load s, reload times s, navigation-timing loadEventEnd of the last load s)."""
    from solarpipe.weblog.browser import HeadlessChromium

    with HeadlessChromium() as browser:
        browser.load("about:blank")
        first = browser.load(index.as_uri()).load_s
        again = [browser.load(index.as_uri()).load_s for _ in range(repeat)]
        nav = browser.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1e3
    return first, again, nav


def screenshots(weblog: Path, outdir: Path) -> list[Path]:
    """PNG screenshots, 1280 px wide, of the home page (its top) and the whole ampcal page."""
    from solarpipe.context import Context
    from solarpipe.weblog.browser import HeadlessChromium

    ctx = Context.load(weblog.parent)
    ampcal = next(s.number for s in ctx.stages if s.task == "hsol_ampcal")
    outdir.mkdir(parents=True, exist_ok=True)
    with HeadlessChromium(width=1280, height=900) as browser:
        return [browser.screenshot((weblog / "index.html").as_uri(), outdir / "weblog_home.png", height=900),
                browser.screenshot((weblog / f"stage{ampcal}" / "index.html").as_uri(),
                                   outdir / "weblog_ampcal.png")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="an existing run's working directory (skips the run)")
    ap.add_argument("--out", type=Path, help="where to simulate and run (default: a temporary directory)")
    ap.add_argument("--repeat", type=int, default=5, help="reloads of the index to time")
    ap.add_argument("--screenshots", type=Path, help="also write the README screenshots to this directory")
    args = ap.parse_args(argv)
    if args.workdir is None:
        from solarpipe.demo import run_demo

        out = args.out or Path(tempfile.mkdtemp(prefix="bench_weblog_"))
        run_demo(out, size="small", progress=lambda msg: print(f"  {msg}", flush=True))
        args.workdir = out / "run"
    weblog = args.workdir.resolve() / "weblog"
    size = weblog_size(weblog)
    first, again, nav = index_render_times(weblog / "index.html", args.repeat)
    print(f"weblog {weblog}")
    print(f"  size            {size['all']:.2f} MB in {size['files']:.0f} files "
          f"(PNG {size['png']:.2f}, HTML {size['html']:.2f}, other {size['other']:.2f}); target < {SIZE_TARGET_MB:.0f} MB")
    print(f"  index load      first {first:.3f} s, reloads median {statistics.median(again):.3f} s "
          f"(max {max(again):.3f}); navigation timing loadEventEnd {nav:.3f} s; target < {RENDER_TARGET_S:.0f} s")
    if args.screenshots:
        for path in screenshots(weblog, args.screenshots):
            print(f"  screenshot      {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
