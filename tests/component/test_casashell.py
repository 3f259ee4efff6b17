"""Inside CASA: hsol_importdata and a one-step recipe run from a casashell session."""
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
        run_recipe(load_recipe('hsol_import'), new_context({str(tmp_path / 'recipe')!r}),
                   vis={str(tiny_eb.ms)!r})
        print('INSIDE_CASA_OK', 'casatasks' in globals() or 'listobs' in globals())
    """))
    home = tmp_path / "home"
    home.mkdir()
    out = subprocess.run([sys.executable, "-m", "solarpipe", "casa", "--nologger", "--nogui",
                          "-c", str(script)], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert "INSIDE_CASA_OK True" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    for sub in ("interactive", "recipe"):
        run = Context.load(tmp_path / sub).observing_run
        assert run.band == tiny_eb.truth["band"]
        assert [s.number for s in run.scans] == [s["number"] for s in tiny_eb.truth["scans"]]
