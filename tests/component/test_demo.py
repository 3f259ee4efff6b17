"""`solarpipe demo` (the README's second command) runs end to end and leaves a weblog."""
from __future__ import annotations

import subprocess
import sys

from helpers import broken_weblog_links
from solarpipe.context import Context


def test_demo_runs_and_writes_a_weblog(tmp_path):
    out = subprocess.run([sys.executable, "-m", "solarpipe", "demo", "--workdir", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    index = tmp_path / "demo" / "run" / "weblog" / "index.html"
    assert f"weblog: {index}" in out.stdout
    assert "stage 11: hsol_exportdata done" in out.stdout  # progress display of the whole recipe
    ctx = Context.load(tmp_path / "demo" / "run")
    assert [s.status for s in ctx.stages] == ["ok"] * 11
    assert (tmp_path / "demo" / "run" / "delivery" / "manifest.json").exists()
    assert any(p.name.endswith(".K.hpc.fits") for p in (tmp_path / "demo" / "run" / "products").iterdir())
    assert broken_weblog_links(index.parent) == []
