"""Tsys+Tant heuristics: the formula, validity, ATM-scan matching, loads, pol pairing."""
import numpy as np
import pytest

from solarpipe.heuristics import tant as h


def test_formula_recovers_injected_tant_with_gain_drift():
    rng = np.random.default_rng(0)
    shape = (5, 2, 4)  # antenna, pol, baseband
    g_atm = rng.uniform(0.8, 1.2, shape)
    g_sci = g_atm * rng.uniform(0.9, 1.1, shape)  # detector gain drifts between scans
    trx, tsky, t_amb, t_hot, p_zero = 60.0, 40.0, 285.3, 354.8, 0.02
    tant_true = rng.uniform(4000, 7000, shape)
    p = lambda g, t: g * (trx + t) + p_zero  # noqa: E731
    got = h.tant(p(g_sci, tsky + tant_true), p(g_sci, tsky), p(g_atm, tsky), p(g_atm, t_amb),
                 p(g_atm, t_hot), p_zero, t_amb, t_hot)
    np.testing.assert_allclose(got, tant_true, rtol=1e-12)


def test_invalid_powers():
    m = h.invalid_power_mask(p_off=[1.0, 1.0, 0.5], p_amb=[2.0, 2.0, 2.0], p_hot=[3.0, 1.9, 3.0],
                             p_zero=[0.0, 0.0, 0.5])
    assert m.tolist() == [False, True, True]


def test_pol_pairing():
    t = np.array([[100.0, 101.0], [200.0, 201.0]])  # pol x baseband
    assert h.pair_polarisations(t, "same").tolist() == t.tolist()
    assert h.pair_polarisations(t, "swapped").tolist() == t[::-1].tolist()
    with pytest.raises(ValueError):
        h.pair_polarisations(t, "xx")


def test_atm_matching_by_time_and_field_not_scan_minus_one():
    S = h.ScanSpan
    atm = [S(3, 0, 60, [0]), S(7, 500, 560, [2]), S(9, 700, 760, [0])]
    sci = [S(8, 600, 690, [2]), S(10, 800, 900, [2]), S(2, -200, -100, [2])]
    got = {c.science_scan: c for c in h.match_atm_scans(sci, atm)}
    assert got[8].atm_scan == 7  # 8-1 is 7, also the right answer here
    assert got[10].atm_scan == 7  # 10-1=9 is an ATM scan, but on another field
    assert "same field" in got[10].reason
    assert got[2].atm_scan == 3 and "following" in got[2].reason
    assert h.match_atm_scans(sci[:1], [])[0].atm_scan is None


def test_loads_for_scan_take_rows_in_time():
    times = np.array([10.0, 500.0, 1000.0])
    amb = np.array([285.0, 286.0, 287.0])
    hot = np.array([354.0, 355.5, 356.0])
    assert h.loads_for_scan(times, amb, hot, 490, 520) == (286.0, 355.5, "scan")
    assert h.loads_for_scan(times, amb, hot, 900, 950)[2] == "nearest"
    assert h.loads_for_scan(np.array([]), amb, hot, 0, 1) == (h.DEFAULT_T_AMB, h.DEFAULT_T_HOT, "default")


def test_group_mean_and_qa_helpers():
    t = np.arange(10.0)
    v = np.vstack([t, 2 * t])
    np.testing.assert_allclose(h.group_mean(v, t, [(0, 1), (5, 9), (20, 30)]),
                               [[0.5, 7, np.nan], [1, 14, np.nan]])
    assert h.smoothness(np.array([100.0, 101, 102, 103])) == pytest.approx(0.01, rel=0.02)
    assert h.outlier_antennas(np.array([5000, 5100, 4950, 5050, 9000.0]), list("ABCDE")) == ["E"]
