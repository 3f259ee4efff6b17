"""heuristics.selfcal: solution intervals, SNR, SPW combination, acceptance (no CASA)."""
from __future__ import annotations

import pytest

from solarpipe.heuristics import selfcal as hsc


def test_solint_sequence_steps_down_and_skips_repeats():
    assert hsc.solint_sequence(142.0, 2.0) == ["inf", "60s", "20s", "int"]
    assert hsc.solint_sequence(40.0, 2.0) == ["inf", "20s", "int"]  # 60 s is no shorter than a 40 s scan
    assert hsc.solint_seconds("int", 40.0, 2.0) == 2.0 and hsc.solint_seconds("20s", 40.0, 2.0) == 20.0


def test_solution_snr_and_spw_combination():
    snr = hsc.solution_snr(1.0, 1.0, 10, 4)
    assert snr == pytest.approx(6.0)
    assert hsc.combine_spws(snr, 3.0)[0] is False  # one SPW
    combine, why = hsc.combine_spws(2.0, 3.0)
    assert combine and "combined" in why
    # four band-3 SPWs (92-104 GHz): one tropospheric path, combined whatever the SNR
    combine, why = hsc.combine_spws(50.0, 3.0, 4, 0.13)
    assert combine and "sqrt(4)" in why
    # SPWs far apart in frequency: per SPW when each has the SNR
    assert hsc.combine_spws(50.0, 3.0, 4, 0.5)[0] is False and hsc.combine_spws(2.0, 3.0, 4, 0.5)[0] is True
    assert hsc.solution_snr(1.0, 0.0, 10, 4) == 0.0


@pytest.mark.parametrize("before,after,failed,ok", [
    (1.0, 0.7, 0.0, True), (1.0, 0.99, 0.0, True), (1.0, 1.0, 0.0, False), (1.0, 1.1, 0.0, False),
    (1.0, 0.5, 0.5, False),
    (float("nan"), 0.5, 0.0, False)])
def test_accept_iteration(before, after, failed, ok):
    accepted, why = hsc.accept_iteration(before, after, failed)
    assert accepted is ok and why
    assert not hsc.accept_iteration(1.0, 0.99, 0.0, min_gain=0.02)[0]  # a required drop


def test_a_step_that_flattens_the_image_is_rejected():
    ok, why = hsc.accept_iteration(0.304, 0.283, 0.08, contrast_before=0.0189, contrast_after=0.0186)
    assert not ok and "contrast fell" in why
    ok, why = hsc.accept_iteration(0.343, 0.304, 0.08, contrast_before=0.0186, contrast_after=0.0189)
    assert ok and "contrast +1.6%" in why
    assert hsc.accept_iteration(0.343, 0.304, 0.08, contrast_before=0.0186, contrast_after=0.01849)[0]
