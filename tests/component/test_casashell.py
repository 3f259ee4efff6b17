"""Inside CASA: hsol_importdata and the calibration + imaging recipe run from a casashell
session (imaging's tclean jobs run in spawned worker processes: they must not re-run
casashell's main module, which re-ran the whole session and its script)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from solarpipe.context import Context


@pytest.mark.casashell
def test_importdata_and_recipe_inside_casashell(tiny_eb, tmp_path):
    script = tmp_path / "inside_casa.py"
    script.write_text(textwrap.dedent(f"""
        import os, casatools
        assert casatools.ctsys.measurespath()
        from solarpipe import hsol_importdata
        from solarpipe.recipe import load_recipe
        from solarpipe.runner import new_context, run_recipe
        os.makedirs({str(tmp_path / 'interactive')!r}, exist_ok=True)
        os.chdir({str(tmp_path / 'interactive')!r})
        hsol_importdata(vis={str(tiny_eb.ms)!r})
        run_recipe(load_recipe('hsol_calimage'), new_context({str(tmp_path / 'recipe')!r}),
                   vis={str(tiny_eb.ms)!r})
        print('INSIDE_CASA_OK', 'casatasks' in globals() or 'listobs' in globals())
    """))
    home = tmp_path / "home"
    home.mkdir()
    out = subprocess.run([sys.executable, "-m", "solarpipe", "casa", "--nologger", "--nogui",
                          "-c", str(script)], capture_output=True, text=True, timeout=1200,
                         cwd=tmp_path, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert "INSIDE_CASA_OK True" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    for sub in ("interactive", "recipe"):
        run = Context.load(tmp_path / sub).observing_run
        assert run.band == tiny_eb.truth["band"]
        assert [s.number for s in run.scans] == [s["number"] for s in tiny_eb.truth["scans"]]
    stages = Context.load(tmp_path / "recipe").stages
    assert [s.status for s in stages] == ["ok"] * len(stages) and stages[-1].task == "hsol_imaging"
    jobs = stages[-1].results["parallel"]["jobs"]
    assert {j["chunk"] for j in jobs} >= {"sun"} and all(j["ok"] for j in jobs)
