"""Decisions of time-domain imaging (hsol_tdimaging), as pure functions.

Frames are cut inside the on-source sub-scans (never across a calibration gap),
at a cadence that defaults to what the data allow: one integration for a single
pointing, one pass over all pointings for a mosaic. Every frame is cleaned to
the same depth relative to its own expected noise. Frames are ranked by their
residual rms; a frame much noisier than the rest is called failed. Gaps in the
series (calibrator scans, missing data) are listed so a PI sees them.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def default_cadence_s(n_pointings: int, integration_s: float, subscan_s: float) -> tuple[float, str]:
    """(cadence in s, why): one integration for a single pointing, one mosaic cycle
    (all pointings once) for a mosaic."""
    if n_pointings <= 1:
        return float(integration_s), f"one integration ({integration_s:g} s): the fastest the data allow"
    return float(n_pointings * subscan_s), (f"one mosaic cycle: {n_pointings} pointings x {subscan_s:g} s "
                                            "(every frame covers the whole field)")


def frame_intervals(subscans: Sequence[tuple[float, float]], cadence_s: float,
                    min_fraction: float = 0.5) -> list[tuple[float, float]]:
    """Frames (start, end) of length ``cadence_s`` inside each on-source interval.

    A frame never spans two sub-scans; a remainder shorter than ``min_fraction`` of the
    cadence at the end of a sub-scan is dropped (its data are too few to image at the
    same depth), a longer one is kept as a shorter frame.
    """
    if cadence_s <= 0:
        raise ValueError(f"cadence must be positive, not {cadence_s}")
    frames = []
    for start, end in sorted(subscans):
        n_full = int(math.floor((end - start) / cadence_s + 1e-9))
        for k in range(n_full):
            frames.append((start + k * cadence_s, start + (k + 1) * cadence_s))
        rest = (end - start) - n_full * cadence_s
        if rest >= min_fraction * cadence_s - 1e-9 and rest > 1e-9:
            frames.append((start + n_full * cadence_s, end))
    return frames


def find_gaps(frames: Sequence[tuple[float, float]], cadence_s: float,
              min_fraction: float = 0.5) -> list[dict[str, float]]:
    """Interruptions between consecutive frames longer than ``min_fraction`` x the cadence."""
    return [{"after_s": float(e0), "before_s": float(s1), "duration_s": float(s1 - e0)}
            for (_, e0), (s1, _) in zip(frames[:-1], frames[1:]) if s1 - e0 > min_fraction * cadence_s]


def frame_threshold_jy(expected_rms_integrated_jy: float, total_on_source_s: float, frame_s: float,
                       nsigma: float = 3.0) -> float:
    """Clean threshold of one frame: ``nsigma`` x the noise expected in its integration time
    (the time-integrated image's noise scaled by sqrt(total / frame))."""
    return nsigma * expected_rms_integrated_jy * math.sqrt(max(total_on_source_s, frame_s) / frame_s)


def rank_frames(rms: Sequence[float], failed_factor: float = 3.0) -> dict[str, list]:
    """Frame quality from residual rms: the order best first, a score per frame
    (median rms / rms, capped at 1) and the frames called failed (rms above
    ``failed_factor`` x the median, or no image)."""
    r = np.array([np.nan if v is None else float(v) for v in rms])
    ok = np.isfinite(r) & (r > 0)
    med = float(np.median(r[ok])) if ok.any() else float("nan")
    score = np.where(ok, np.minimum(1.0, med / np.where(ok, r, 1.0)), 0.0)
    failed = [int(i) for i in np.nonzero(~ok | (r > failed_factor * med))[0]]
    order = [int(i) for i in np.argsort(-score, kind="stable")]
    return {"order": order, "score": [float(s) for s in score], "failed": failed, "median_rms": med}


def rms_contrast(values: np.ndarray, zero_level_k: float = 0.0) -> float:
    """The solar community's rms contrast std / mean of a brightness map (K); the
    interferometer misses the disc, so its level (e.g. from TP) is added to the mean."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    mean = float(v.mean()) + zero_level_k
    return float(v.std() / mean) if mean > 0 else float("nan")
