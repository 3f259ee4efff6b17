"""solarpipe makes casatools work offline in a fresh, empty HOME (no ~/.casa)."""
import os
import subprocess
import sys


def test_measures_in_empty_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CASASITECONFIG",)}
    env["HOME"] = str(home)
    code = (
        "import solarpipe, casatools\n"
        "me = casatools.measures()\n"
        "me.doframe(me.observatory('ALMA'))\n"
        "me.doframe(me.epoch('utc', '2017-04-27T16:00:00'))\n"
        "sun = me.measure(me.direction('SUN'), 'J2000')\n"
        "print('SUN_RA', sun['m0']['value'])\n"
        "print('MEASURES', casatools.ctsys.measurespath())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "SUN_RA" in out.stdout
    # Sun on 2017-04-27 at RA ~ 2h23m = 0.62 rad
    ra = float(out.stdout.split("SUN_RA")[1].split()[0])
    assert 0.55 < ra % (2 * 3.141592653589793) < 0.70
    assert "casadata" in out.stdout
    assert not (home / ".casa" / "config.py").exists()
