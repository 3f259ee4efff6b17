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


#: set to 1 to let casatasks turn MPI ranks into casampi servers (mpicasa-style runs)
CASAMPI_ENV = "SOLARPIPE_CASAMPI"
#: where solarpipe keeps the Open MPI rank it hid from casampi
RANK_ENV = "SOLARPIPE_MPI_RANK"


def detach_from_casampi() -> int | None:
    """Hide this process's Open MPI rank from casampi; returns the rank (None: not under MPI).

    Under ``mpirun ... python -m mpi4py.futures`` every rank that imports casatasks
    with ``OMPI_COMM_WORLD_RANK`` set becomes a casampi client (rank 0) or server
    (the others): the servers never return and the client waits for servers that
    are mpi4py workers (both hung here). solarpipe runs its own jobs over mpi4py,
    so the variable is moved to ``SOLARPIPE_MPI_RANK`` before casatasks loads,
    unless ``SOLARPIPE_CASAMPI=1`` asks for casampi.
    """
    if os.environ.get(CASAMPI_ENV) == "1":
        return None
    rank = os.environ.pop("OMPI_COMM_WORLD_RANK", None)
    if rank is not None:
        os.environ[RANK_ENV] = rank
    rank = os.environ.get(RANK_ENV)
    return int(rank) if rank is not None else None


def configure_offline_casa() -> bool:
    """Point casaconfig at solarpipe's site config unless CASA is already configured.

    Returns True when solarpipe's configuration will be used, False when casatools
    was already imported (e.g. inside a CASA session) or the user set
    CASASITECONFIG themselves; in both cases their configuration is respected.
    """
    if "casatasks" not in sys.modules:
        detach_from_casampi()
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
