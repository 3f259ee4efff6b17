"""Flagging heuristics on hand-made arrays with known bad data."""
import numpy as np
import pytest

from solarpipe.heuristics import flagging as f


def _baselines(nant):
    a1, a2 = np.triu_indices(nant, 1)
    return a1, a2


def test_edge_channels_and_ranges():
    assert f.edge_channels(128, 0.0625) == list(range(8)) + list(range(120, 128))
    assert f.edge_channels(32, 0.0625) == [0, 1, 30, 31]
    assert f.edge_channels(1, 0.0625) == []
    assert f.channel_ranges([0, 1, 2, 7, 9, 10]) == "0~2;7;9~10"
    assert f.channel_ranges([]) == ""


def test_dead_antenna_found_on_point_source_and_sun_like_data():
    rng = np.random.default_rng(1)
    nant = 10
    a1, a2 = _baselines(nant)
    uv = rng.uniform(10, 300, a1.size)
    for amp in (np.ones(a1.size), 1e3 * np.exp(-uv / 40.0)):  # point source, steep Sun-like
        amp = amp * rng.normal(1, 0.05, a1.size)
        dead = 4
        amp[(a1 == dead) | (a2 == dead)] *= 0.01
        found, ratio = f.dead_antennas(amp, uv, a1, a2, nant)
        assert found == [dead]
        assert np.nanmedian(ratio) == pytest.approx(1.0, abs=0.15)


def test_noisy_antenna():
    rng = np.random.default_rng(2)
    nant, nchan = 8, 32
    a1, a2 = _baselines(nant)
    vis = (1 + 0.1 * np.linspace(0, 1, nchan))[None, :] * np.ones((a1.size, 1), complex)
    sigma = np.full(a1.size, 0.01)
    sigma[(a1 == 3) | (a2 == 3)] *= 10
    vis = vis + sigma[:, None] * (rng.normal(size=vis.shape) + 1j * rng.normal(size=vis.shape))
    noise = f.baseline_noise(vis)
    assert np.median(noise[(a1 != 3) & (a2 != 3)]) == pytest.approx(0.01, rel=0.2)
    found, rel = f.noisy_antennas(noise, a1, a2, nant)
    assert found == [3]


def test_outlier_channels_ignore_smooth_bandpass():
    rng = np.random.default_rng(3)
    nbl, nchan = 40, 64
    shape = 1 + 0.2 * np.sin(np.linspace(0, 3, nchan))
    spectra = shape[None, :] * rng.uniform(0.5, 2, (nbl, 1)) * rng.normal(1, 0.01, (nbl, nchan))
    spectra[:, 20:23] *= 5
    assert f.outlier_channels(spectra) == [20, 21, 22]
    assert f.outlier_channels(spectra[:, :19]) == []


def test_phase_jump():
    rng = np.random.default_rng(4)
    ph = rng.normal(10, 3, 40)
    assert f.find_phase_jump(ph) is None
    ph[25:] += 75
    jump = f.find_phase_jump(ph)
    assert jump.index == 25 and jump.jump_deg == pytest.approx(75, abs=3)
    wrapped = (ph + 170 + 180) % 360 - 180  # across the +-180 wrap
    assert f.find_phase_jump(wrapped).index == 25


def test_time_outliers_and_guard():
    a = np.ones(50) + np.random.default_rng(5).normal(0, 0.01, 50)
    a[7] = 3
    assert np.flatnonzero(f.time_outliers(a)).tolist() == [7]
    assert f.exceeds_guard(30, 100, 0.2) and not f.exceeds_guard(10, 100, 0.2)


def test_dead_by_snr_and_low_snr_phase_jump():
    nant = 12
    a1, a2 = _baselines(nant)
    rng = np.random.default_rng(7)
    ntime = 30
    sig = []
    for i, j in zip(a1, a2):
        amp = 0.0 if 5 in (i, j) else (3.0 if abs(i - j) == 1 else 0.2)  # a few strong short baselines
        phase = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.5, ntime))  # drifting phase
        v = amp * np.exp(1j * phase) + rng.normal(0, 1, ntime) + 1j * rng.normal(0, 1, ntime)
        sig.append(f.excess_power_significance(v, np.ones(ntime)))
    dead, best = f.dead_antennas_by_signal(np.array(sig), a1, a2, nant)
    assert dead == [5]
    noise = [f.excess_power_significance(rng.normal(0, 1, ntime) + 1j * rng.normal(0, 1, ntime),
                                         np.ones(ntime)) for _ in a1]
    assert f.dead_antennas_by_signal(np.array(noise), a1, a2, nant)[0] == []  # nothing to judge
    found = 0
    for trial in range(20):
        ph = rng.normal(0, 15, 15)
        ph[11:] += 75
        j = f.find_phase_jump(ph)
        found += j is not None and abs(j.index - 11) <= 1
        assert f.find_phase_jump(rng.normal(0, 15, 15)) is None
    assert found >= 16  # 15-deg noise per sample, only 4 samples after the jump
