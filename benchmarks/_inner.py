"""Run a benchmark's measurement in a fresh Python process (each mode pays its own imports and
starts without the process history that changes CASA's results and timings)."""
from __future__ import annotations

import json
import os
import subprocess
import sys


def run_inner(script: str, *args: str, timeout: float = 7200) -> dict:
    """``python script --inner args...`` with OMP_NUM_THREADS=1; returns the JSON the inner
    run prints on its ``RESULT `` line, or raises with the end of its stderr."""
    cmd = [sys.executable, script, "--inner", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"{args} failed ({out.returncode}): {out.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])
