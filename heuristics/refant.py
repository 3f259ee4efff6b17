"""Reference-antenna ranking (in the spirit of the ALMA pipeline's hif_refant).

Score = geometry score (close to the array centre is better) + flagging score
(fewer flags is better) + optional phase-stability score; each in [0, 1],
highest total first. 12m antennas are preferred over 7m for a mixed array
(more sensitive, and in every 12m-7m baseline).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def rank_refants(names: Sequence[str], offsets_m: np.ndarray, flagged_fraction: Sequence[float],
                 diameters_m: Sequence[float] | None = None,
                 phase_rms_deg: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Antennas with their total score, best first. ``offsets_m``: (nant, 2 or 3) from the centre."""
    off = np.asarray(offsets_m, float)
    dist = np.hypot(off[:, 0], off[:, 1])
    geo = 1.0 - dist / dist.max() if dist.max() > 0 else np.ones(len(names))
    flag = 1.0 - np.clip(np.asarray(flagged_fraction, float), 0, 1)
    score = geo + flag
    if phase_rms_deg is not None:
        rms = np.asarray(phase_rms_deg, float)
        score = score + (1.0 - rms / np.nanmax(rms) if np.nanmax(rms) > 0 else 1.0)
    if diameters_m is not None:
        score = score + 0.5 * (np.asarray(diameters_m, float) >= 11)
    score = np.where(np.asarray(flagged_fraction, float) >= 0.999, -np.inf, score)
    order = np.argsort(-score, kind="stable")
    return [(names[i], float(score[i])) for i in order]
