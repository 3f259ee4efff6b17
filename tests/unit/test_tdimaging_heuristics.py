"""heuristics.tdimaging: cadence, frames inside sub-scans, gaps, thresholds, ranking (no CASA)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from solarpipe.heuristics import tdimaging as htd


def test_default_cadence_is_an_integration_or_a_mosaic_cycle():
    assert htd.default_cadence_s(1, 2.0, 40.0)[0] == 2.0
    c, why = htd.default_cadence_s(5, 2.0, 6.0)
    assert c == 30.0 and "mosaic cycle" in why


def test_frames_stay_inside_subscans_and_short_remainders_are_dropped():
    frames = htd.frame_intervals([(0.0, 25.0), (30.0, 44.0)], 10.0)
    assert frames == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0), (30.0, 40.0)]  # 4 s remainder < 5 s dropped
    assert all(e - s <= 10.0 for s, e in frames)
    with pytest.raises(ValueError):
        htd.frame_intervals([(0.0, 1.0)], 0.0)


def test_gaps_are_interruptions_longer_than_half_a_cadence():
    frames = [(0.0, 2.0), (2.0, 4.0), (4.5, 6.5), (20.0, 22.0)]
    gaps = htd.find_gaps(frames, 2.0)
    assert gaps == [{"after_s": 6.5, "before_s": 20.0, "duration_s": 13.5}]


def test_frame_threshold_scales_with_the_square_root_of_time():
    assert htd.frame_threshold_jy(0.01, 400.0, 4.0, 3.0) == pytest.approx(3 * 0.01 * 10)


def test_rank_frames_orders_by_rms_and_flags_outliers():
    r = htd.rank_frames([1.0, 1.1, 0.9, 5.0, None])
    assert r["failed"] == [3, 4] and r["order"][0] in (0, 2) and r["order"][-1] == 4
    assert r["median_rms"] == pytest.approx(1.05) and r["score"][4] == 0.0


def test_rms_contrast_uses_the_zero_level():
    v = np.array([-1.0, 1.0, np.nan])
    assert math.isnan(htd.rms_contrast(v))
    assert htd.rms_contrast(v, 100.0) == pytest.approx(0.01)
