"""``solarpipe demo``: simulate a small solar EB and run the full recipe on it."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

LOG = logging.getLogger(__name__)

#: the most complete recipe that exists; grows as stages land
DEMO_RECIPE = "hsol_calimage_export"


def run_demo(workdir: Path, size: str = "tiny", progress: Callable[[str], None] = print) -> int:
    """Simulate an EB into ``workdir/sim``, run DEMO_RECIPE in ``workdir/run``; print the weblog."""
    from .recipe import load_recipe
    from .runner import new_context, run_recipe
    from .simulate import simulate_eb

    t0 = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    progress(f"simulating a {size} solar EB (known truth) in {workdir / 'sim'} ...")
    # 12 antennas (10 x 12m + 2 x 7m): with fewer, one dead antenna alone is > 20% of
    # the data and the flagging guard (rightly) refuses to flag it automatically
    eb = simulate_eb(workdir / "sim", size=size, **({"n_ant_12m": 10, "n_ant_7m": 2} if size == "tiny" else {}))
    progress(f"simulated {eb.ms} in {time.perf_counter() - t0:.0f} s")
    recipe = load_recipe(DEMO_RECIPE)
    ctx = new_context(workdir / "run")
    run_recipe(recipe, ctx, vis=str(eb.ms), progress=progress)
    index = workdir / "run" / "weblog" / "index.html"
    progress(f"done in {time.perf_counter() - t0:.0f} s; weblog: {index}")
    return 0
