"""Synthetic ALMA solar execution blocks with known truth (tests, regression, demos).

``simulate_eb(out_dir, size='tiny', ...)`` writes an MS that mimics ``importasdm``
output for a solar EB (SPW roles by name, SQLD/WVR autocorrelations, ALMA intents
and sub-scans, Sun ephemeris fields, SYSCAL/CALDEVICE/SYSPOWER/WEATHER), plus
``truth.json``/``truth_arrays.npz``, a sky model, a total-power map and an offline
calibrator catalogue. See :mod:`.core` for the steps and :mod:`.visibilities`
for the data model.
"""
from __future__ import annotations

from .config import PRESETS, SimConfig, build_spw_layout
from .core import SimulatedEB, run_simulation, simulate_eb
from .truth import (bad_visibility_mask, load_truth, predictor_from_truth, truth_arrays, truth_corruption,
                    truth_model_visibilities, truth_tant)

__all__ = [
    "PRESETS", "SimConfig", "SimulatedEB", "bad_visibility_mask", "build_spw_layout", "load_truth",
    "predictor_from_truth", "run_simulation", "simulate_eb", "truth_arrays", "truth_corruption",
    "truth_model_visibilities", "truth_tant",
]
