"""Flagging heuristics: pure functions on arrays (numpy only).

The mission is to keep every good visibility: each rule finds the smallest
unit that is bad (an antenna in one SPW and scan, a few channels in one scan,
the integrations after a phase jump) and every threshold is a parameter whose
value the task records. The task reads the data, calls these, and turns the
answers into flag commands.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAD_TO_SIGMA = 1.4826


def robust_sigma(x: np.ndarray, axis=None) -> np.ndarray:
    """1.4826 x median absolute deviation (ignores NaN)."""
    med = np.nanmedian(x, axis=axis, keepdims=True)
    return MAD_TO_SIGMA * np.nanmedian(np.abs(x - med), axis=axis)


def edge_channels(nchan: int, fraction: float) -> list[int]:
    """Channels at both SPW edges to flag: round(nchan * fraction) on each side.

    TDM 128 channels with fraction 0.0625 gives 0~7 and 120~127.
    """
    n = int(round(nchan * fraction))
    if nchan <= 2 or n <= 0:
        return []
    n = min(n, (nchan - 1) // 2)
    return list(range(n)) + list(range(nchan - n, nchan))


def channel_ranges(channels: list[int] | np.ndarray) -> str:
    """CASA channel selection for a channel list: [0,1,2,7] -> '0~2;7'."""
    chans = sorted(int(c) for c in set(int(c) for c in channels))
    if not chans:
        return ""
    parts = []
    start = prev = chans[0]
    for c in chans[1:]:
        if c == prev + 1:
            prev = c
            continue
        parts.append(f"{start}~{prev}" if prev > start else f"{start}")
        start = prev = c
    parts.append(f"{start}~{prev}" if prev > start else f"{start}")
    return ";".join(parts)


def per_antenna_median(values: np.ndarray, ant1: np.ndarray, ant2: np.ndarray, nant: int) -> np.ndarray:
    """Median over the baselines of each antenna of a per-baseline value (NaN if none)."""
    out = np.full(nant, np.nan)
    for a in range(nant):
        sel = ((ant1 == a) | (ant2 == a)) & np.isfinite(values)
        if sel.any():
            out[a] = np.median(values[sel])
    return out


def amplitude_ratio_to_uv_median(amp: np.ndarray, uvdist: np.ndarray, nbins: int = 8,
                                 groups: np.ndarray | None = None, min_members: int = 3) -> np.ndarray:
    """Each baseline's amplitude over the median amplitude of baselines of similar length.

    For a point source every ratio is ~1; on the Sun (amplitude falling steeply
    with uv distance) the comparison within uv bins still leaves ~1 for good
    baselines, and ~0 for a baseline to a dead antenna. ``groups`` (e.g. the
    baseline type 12m-12m / 12m-7m / 7m-7m, whose primary beams see different
    parts of the Sun) are compared only within themselves; a bin with fewer
    than ``min_members`` baselines gives NaN (no verdict).
    """
    amp = np.asarray(amp, float)
    uvdist = np.asarray(uvdist, float)
    groups = np.zeros(amp.shape, int) if groups is None else np.asarray(groups)
    ratio = np.full(amp.shape, np.nan)
    for g in np.unique(groups):
        good = np.isfinite(amp) & np.isfinite(uvdist) & (groups == g)
        if good.sum() < min_members:
            continue
        nb = max(1, min(nbins, good.sum() // max(min_members, 1)))
        edges = np.unique(np.quantile(uvdist[good], np.linspace(0, 1, nb + 1)))
        idx = np.clip(np.searchsorted(edges, uvdist, side="right") - 1, 0, max(len(edges) - 2, 0))
        for b in np.unique(idx[good]):
            sel = good & (idx == b)
            if sel.sum() < min_members:
                continue
            med = np.median(amp[sel])
            if med > 0:
                ratio[sel] = amp[sel] / med
    return ratio


def dead_antennas(amp: np.ndarray, uvdist: np.ndarray, ant1: np.ndarray, ant2: np.ndarray,
                  nant: int, threshold: float = 0.3,
                  groups: np.ndarray | None = None) -> tuple[list[int], np.ndarray]:
    """Antennas whose baselines have amplitudes below ``threshold`` x their uv-bin median.

    ``amp`` is the averaged amplitude per baseline of one SPW and scan;
    ``groups`` the baseline types (see amplitude_ratio_to_uv_median).
    Returns (antenna ids, per-antenna median ratio).
    """
    ratio = amplitude_ratio_to_uv_median(amp, uvdist, groups=groups)
    per_ant = per_antenna_median(ratio, ant1, ant2, nant)
    return [int(a) for a in np.flatnonzero(per_ant < threshold)], per_ant


def excess_power_significance(vis: np.ndarray, sigma: np.ndarray) -> float:
    """How significantly a baseline's power exceeds the noise, robust to phase drifts.

    ``vis``: its channel-averaged visibilities over time, ``sigma`` their complex
    noise (rms of the real and imaginary parts). mean(|V|^2 / (2 sigma^2)) - 1
    is 0 for pure noise with scatter 1/sqrt(N), so (that) x sqrt(N) is a
    significance: ~N(0, 1) for a dead baseline, large for any real signal.
    """
    v = np.asarray(vis)
    s = np.asarray(sigma, float)
    ok = np.isfinite(v) & np.isfinite(s) & (s > 0)
    n = int(ok.sum())
    if n == 0:
        return float("nan")
    p = np.mean(np.abs(v[ok]) ** 2 / (2 * s[ok] ** 2)) - 1.0
    return float(p * np.sqrt(n))


def dead_antennas_by_signal(significance: np.ndarray, ant1: np.ndarray, ant2: np.ndarray, nant: int,
                            threshold: float = 5.0) -> tuple[list[int], np.ndarray]:
    """Antennas with no signal on ANY baseline: the best excess-power significance of
    their baselines stays below ``threshold`` while the array's typical antenna
    reaches twice that (a weak source at the noise everywhere flags nothing; on the
    Sun, whose long baselines may be weak, an alive antenna still has strong short ones)."""
    sig = np.asarray(significance, float)
    best = np.full(nant, np.nan)
    for a in range(nant):
        sel = ((ant1 == a) | (ant2 == a)) & np.isfinite(sig)
        if sel.any():
            best[a] = np.max(sig[sel])
    ref = np.nanmedian(best)
    if not np.isfinite(ref) or ref < 2 * threshold:
        return [], best
    return [int(a) for a in np.flatnonzero(best < threshold)], best


def baseline_noise(vis: np.ndarray) -> np.ndarray:
    """Noise per row from second differences along frequency.

    ``vis``: complex (nrows, nchan) for one polarisation. Second differences
    cancel a smooth spectrum and a linear phase slope (a residual delay), which
    first differences of a strong signal would mistake for noise; their
    variance is 6 sigma^2. Returns the robust sigma of the real/imag parts.
    """
    v = np.asarray(vis)
    if v.shape[1] < 3:
        return np.full(v.shape[0], np.nan)
    d = v[:, 2:] - 2 * v[:, 1:-1] + v[:, :-2]
    parts = np.concatenate([d.real, d.imag], axis=1)
    return robust_sigma(parts, axis=1) / np.sqrt(6.0)


def coherent_channel_average(vis: np.ndarray, pad: int = 4) -> np.ndarray:
    """Channel average of each row after removing the baseline's residual delay.

    ``vis``: complex (nrows, nchan) of one baseline (NaN = flagged). The delay is
    the peak of the zero-padded lag spectrum of the time-averaged spectrum; the
    rows are de-rotated by it and averaged over channels, so a delay of a few
    nanoseconds (phase wrapping across the SPW) does not decorrelate the average.
    """
    v = np.asarray(vis)
    nrow, nchan = v.shape
    if nchan == 0:
        return np.full(nrow, np.nan, complex)
    spec = np.nan_to_num(np.nanmean(v, axis=0))
    lag = np.fft.fft(spec, n=pad * nchan)
    k = int(np.argmax(np.abs(lag)))
    ramp = np.exp(-2j * np.pi * k * np.arange(nchan) / (pad * nchan))
    return np.nanmean(v * ramp[None, :], axis=1)


def noisy_antennas(noise: np.ndarray, ant1: np.ndarray, ant2: np.ndarray, nant: int,
                   threshold: float = 3.0) -> tuple[list[int], np.ndarray]:
    """Antennas whose baselines are ``threshold`` x noisier than the array median."""
    per_ant = per_antenna_median(noise, ant1, ant2, nant)
    ref = np.nanmedian(per_ant)
    if not np.isfinite(ref) or ref <= 0:
        return [], per_ant / np.nan
    rel = per_ant / ref
    return [int(a) for a in np.flatnonzero(rel > threshold)], rel


def outlier_channels(amp_spectra: np.ndarray, nsigma: float = 7.0, window: int = 9,
                     exclude: list[int] | None = None, iterations: int = 3,
                     min_deviation: float = 0.25) -> list[int]:
    """Channels deviating from a robust median spectrum.

    ``amp_spectra``: (nbaseline, nchan) amplitudes; each baseline is normalised by
    its median, the median over baselines is compared with a running median
    (``window`` channels, computed without the channels already found bad, so a
    band of several bad channels does not drag its neighbours), and channels
    beyond ``nsigma`` robust sigmas are returned. ``exclude`` channels (e.g.
    already-flagged edges) are ignored. A channel must also depart by more than
    ``min_deviation`` (fraction of the normalised spectrum), so smooth bandpass
    structure at the SPW edges never counts as an outlier.
    """
    a = np.asarray(amp_spectra, float)
    nchan = a.shape[1]
    if nchan < window:
        return []
    keep = np.ones(nchan, bool)
    if exclude:
        keep[[c for c in exclude if 0 <= c < nchan]] = False
    norm = a / np.nanmedian(a[:, keep], axis=1, keepdims=True)
    spec = np.nanmedian(norm, axis=0)
    bad = np.zeros(nchan, bool)
    half = window // 2
    for _ in range(iterations):
        masked = np.where(keep & ~bad, spec, np.nan)
        smooth = np.array([np.nanmedian(masked[max(0, i - half):i + half + 1])
                           if np.isfinite(masked[max(0, i - half):i + half + 1]).any() else np.nan
                           for i in range(nchan)])
        resid = spec - smooth
        ok = keep & ~bad & np.isfinite(resid)
        sigma = float(robust_sigma(resid[ok])) if ok.sum() > 3 else np.nan
        sigma = max(sigma if np.isfinite(sigma) else 0.0, 1e-3)
        new_bad = keep & np.isfinite(resid) & (np.abs(resid) > max(nsigma * sigma, min_deviation))
        if np.array_equal(new_bad, bad):
            break
        bad = new_bad
    return [int(c) for c in np.flatnonzero(bad)]


@dataclass
class PhaseJump:
    index: int  # first sample after the jump
    jump_deg: float
    scatter_deg: float


def find_phase_jump(phase_deg: np.ndarray, min_jump_deg: float = 30.0, min_snr: float = 6.0,
                    min_samples: int = 3) -> PhaseJump | None:
    """A single step in a phase time series (one antenna, one calibrator scan).

    Tries every split point, compares the circular means before and after, and
    accepts the largest step if it exceeds ``min_jump_deg`` and ``min_snr`` x its
    standard error (the scatter about the two means x sqrt(1/n_before + 1/n_after)),
    so a few noisy samples on each side can still reveal a real jump.
    """
    ph = np.asarray(phase_deg, float)
    ph = ph[np.isfinite(ph)] if np.isnan(ph).any() else ph
    n = len(ph)
    if n < 2 * min_samples:
        return None
    z = np.exp(1j * np.radians(ph))
    best = None
    for k in range(min_samples, n - min_samples + 1):
        before = np.angle(z[:k].mean(), deg=True)
        after = np.angle(z[k:].mean(), deg=True)
        step = (after - before + 180.0) % 360.0 - 180.0
        if best is None or abs(step) > abs(best[1]):
            best = (k, step, before, after)
    k, step, before, after = best
    resid = np.r_[(ph[:k] - before + 180) % 360 - 180, (ph[k:] - after + 180) % 360 - 180]
    scatter = float(robust_sigma(resid)) or 1e-3
    std_err = scatter * np.sqrt(1.0 / k + 1.0 / (n - k))
    if abs(step) >= min_jump_deg and abs(step) >= min_snr * std_err:
        return PhaseJump(index=int(k), jump_deg=float(step), scatter_deg=scatter)
    return None


def antenna_residual_phases(vis: np.ndarray, ant1: np.ndarray, ant2: np.ndarray, times: np.ndarray,
                            nant: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-antenna phase (deg) against time on a point-source calibrator scan.

    ``vis``: channel-averaged visibility per row. Each baseline's scan-mean
    phase is removed, then for every antenna the residuals of all its baselines
    (oriented so the antenna is first) are summed per integration: the
    argument is that antenna's phase change against the others, with the SNR
    of all its baselines together. Returns (unique times, (nant, ntime) degrees).
    """
    tu, ti = np.unique(times, return_inverse=True)
    bl = ant1 * nant + ant2
    resid = np.zeros(vis.shape, complex)
    for b in np.unique(bl):
        sel = bl == b
        m = np.nanmean(vis[sel])
        if np.isfinite(m) and abs(m) > 0:
            resid[sel] = vis[sel] * np.conj(m) / abs(m)
    resid = np.where(np.isfinite(resid), resid, 0)
    acc = np.zeros((nant, len(tu)), complex)
    np.add.at(acc, (ant1, ti), resid)
    np.add.at(acc, (ant2, ti), np.conj(resid))
    with np.errstate(invalid="ignore"):
        ph = np.where(np.abs(acc) > 0, np.degrees(np.angle(acc)), np.nan)
    return tu, ph


def time_outliers(amp: np.ndarray, nsigma: float = 8.0) -> np.ndarray:
    """Integrations of one baseline whose amplitude departs from the baseline's median.

    ``amp``: (ntime,) channel-averaged amplitudes; returns a boolean mask.
    """
    a = np.asarray(amp, float)
    if a.size < 5:
        return np.zeros(a.shape, bool)
    med = np.nanmedian(a)
    sigma = robust_sigma(a)
    if not np.isfinite(sigma) or sigma <= 0:
        return np.zeros(a.shape, bool)
    return np.abs(a - med) > nsigma * sigma


def exceeds_guard(newly_flagged: float, total: float, limit: float) -> bool:
    """True if flagging ``newly_flagged`` of ``total`` would pass the ``limit`` fraction."""
    return total > 0 and newly_flagged / total > limit
