"""Shared pytest set-up: CASA offline config first, then the simulated-EB fixtures."""
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

import solarpipe  # noqa: E402,F401  (configures CASA before casatools loads)

from sim_fixtures import *  # noqa: E402,F401,F403
