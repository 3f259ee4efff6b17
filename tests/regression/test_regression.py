"""Whole-recipe regression on the `small` simulated EB (run with `pytest -m regression`).

The expected figures live in tests/regression/expected_small.txt; regenerate them on
purpose with `python -m solarpipe.regression --regenerate`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from solarpipe.regression import compare, parse_figures, run_small_recipe

EXPECTED = Path(__file__).with_name("expected_small.txt")


@pytest.mark.regression
def test_small_eb_calibration_figures(tmp_path):
    figures = run_small_recipe(tmp_path / "run", tmp_path / "sim")
    expected, tols = parse_figures(EXPECTED.read_text(), str(EXPECTED))
    diffs = compare(figures, expected, tols)
    assert not diffs, "regression figures changed:\n" + "\n".join(map(str, diffs))
    # the comparator notices a deliberately perturbed number
    key = next(k for k in expected if ".tant." in k)
    perturbed = dict(figures, **{key: figures[key] * 1.01})
    assert [d.key for d in compare(perturbed, expected, tols)] == [key]
