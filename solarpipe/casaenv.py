"""Make casatools usable offline before it is imported.

casatools reads its configuration once, at first import, and by default tries
to download measures data (which fails without internet). solarpipe arranges
an offline configuration itself, so that a fresh HOME, a CI machine or a user
who never wrote ``~/.casa/config.py`` can run the pipeline.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LOG = logging.getLogger(__name__)

SITE_CONFIG = Path(__file__).with_name("casa_siteconfig.py").resolve()


def configure_offline_casa() -> bool:
    """Point casaconfig at solarpipe's site config unless CASA is already configured.

    Returns True when solarpipe's configuration will be used, False when casatools
    was already imported (e.g. inside a CASA session) or the user set
    CASASITECONFIG themselves; in both cases their configuration is respected.
    """
    if "casaconfig.config" in sys.modules or "casatools" in sys.modules:
        return False
    if os.environ.get("CASASITECONFIG"):
        return False
    os.environ["CASASITECONFIG"] = str(SITE_CONFIG)
    # Threads: casatools' OpenMP default oversubscribes small machines.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return True


def casa_versions() -> dict[str, str]:
    """Versions of the CASA packages, for provenance in weblog and context."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("casatools", "casatasks", "casadata"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out
