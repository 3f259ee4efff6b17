"""Antenna selection from casadata's ALMA/ACA configuration files.

12 m antennas come from a compact 12 m configuration (default
``alma.cycle10.1.cfg``, the most compact C43-1-like one), 7 m antennas from an
ACA configuration (``aca.cycle10.cfg``); both are in the same local tangent
frame around the ALMA array reference. Antennas are spread over the listed pads
(every k-th pad) so that even a small subset spans the configuration. Names
follow ALMA: DA4x/DV0x/PM0x for 12 m, CM0x for 7 m.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from .config import SimConfig

LOG = logging.getLogger(__name__)


@dataclass
class Antenna:
    """One antenna of the simulated array."""

    id: int
    name: str
    station: str
    diameter_m: float
    local_xyz: tuple[float, float, float]
    position: list[float] = field(default_factory=list)  # ITRF (m), from the MS

    @property
    def is_12m(self) -> bool:
        return self.diameter_m > 9.5

    def to_truth(self) -> dict:
        return {"id": self.id, "name": self.name, "station": self.station, "diameter_m": self.diameter_m,
                "position": list(self.position), "local_xyz_m": list(self.local_xyz)}


def simmos_dir() -> str:
    """casadata's ``alma/simmos`` directory (antenna configuration files)."""
    import casadata

    return os.path.join(casadata.datapath, "alma", "simmos")


def read_cfg(name: str) -> tuple[np.ndarray, list[str]]:
    """Local positions (n, 3) and pad names of a simmos configuration file."""
    path = name if os.path.isabs(name) else os.path.join(simmos_dir(), name)
    xyz, pads = [], []
    with open(path) as fh:
        for line in fh:
            line = line.split("#")[0].strip()
            if not line:
                continue
            parts = line.split()
            xyz.append([float(parts[0]), float(parts[1]), float(parts[2])])
            pads.append(parts[4] if len(parts) > 4 else f"P{len(pads):03d}")
    return np.array(xyz), pads


def _names_12m(n: int) -> list[str]:
    da = [f"DA{k}" for k in range(41, 66)]
    dv = [f"DV{k:02d}" for k in range(1, 26)]
    pm = [f"PM{k:02d}" for k in range(1, 5)]
    out: list[str] = []
    while len(out) < n and (da or dv or pm):
        for pool in (da, dv, da, dv, pm):
            if pool and len(out) < n:
                out.append(pool.pop(0))
    return out


def _spread(n_total: int, n: int) -> list[int]:
    if n > n_total:
        raise ValueError(f"configuration has {n_total} pads, {n} antennas requested")
    return sorted({int(round(x)) for x in np.linspace(0, n_total - 1, n)})


def select_antennas(cfg: SimConfig) -> list[Antenna]:
    """The simulated antennas, in ANTENNA-table order (12 m by name, then 7 m)."""
    ants: list[Antenna] = []
    if cfg.n_ant_12m:
        xyz, pads = read_cfg(cfg.config_12m)
        idx = _spread(len(pads), cfg.n_ant_12m)
        names = _names_12m(len(idx))
        pairs = sorted(zip(names, idx))
        for name, i in pairs:
            ants.append(Antenna(-1, name, pads[i], 12.0, tuple(float(v) for v in xyz[i])))
    if cfg.n_ant_7m:
        xyz, pads = read_cfg(cfg.config_7m)
        idx = _spread(len(pads), cfg.n_ant_7m)
        for k, i in enumerate(idx):
            ants.append(Antenna(-1, f"CM{k + 1:02d}", pads[i], 7.0, tuple(float(v) for v in xyz[i])))
    for k, a in enumerate(ants):
        a.id = k
    LOG.info("array: %d x 12m + %d x 7m (%s, %s)", cfg.n_ant_12m, cfg.n_ant_7m, cfg.config_12m, cfg.config_7m)
    return ants
