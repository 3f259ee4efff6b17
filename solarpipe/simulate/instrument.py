"""Instrument and corruption model: gains, bandpass, Tsys, Tant, SQLD powers, bad data.

Everything is drawn from ``seed`` with one independent random stream per
component (so changing one part does not reshuffle the others).

Per antenna i, polarisation p (0 = XX, 1 = YY), science SPW / baseband s:

* gains ``g_ips(t) = A_ips (1 + a_ip sin(2 pi t/P_ip + phi_ip))
  * exp(i [phi0_ips + 2 pi nu_s tau_i(t) + r_ip t])`` with ``|A| ~ 1/sqrt(JyPerK)``
  (40 Jy/K for 12 m in Band 3, 110 Jy/K for 7 m; +-3 % scatter), ``tau_i(t)`` a
  smooth delay (a few sinusoids, tens of degrees of phase over the EB) common to
  both polarisations and ``nu_s`` the SPW centre; t in seconds from the EB start;
* bandpass ``b_ips(c)``: ripples of a few %, band-edge roll-off, phase slope and
  curvature; normalised to mean amplitude 1 and mean phase 0 over the SPW; the
  CH_AVG twin uses ``mean_c b_ips(c)``;
* Tsys per ATM scan ``Tsys = (Trx + Tsky) exp(tau/sin el)``, Trx of de-tuned mixers
  (hundreds of K; one antenna strongly de-tuned, ~800-1700 K), Tsky from a
  single-layer atmosphere at the field elevation with ozone lines;
* Tant per on-Sun sub-scan: ``eta_ant * f_pol * f_bb * drift(sub-scan) * <T_B>_beam``,
  the power-beam-weighted Sun brightness at the pointing (so mosaic pointings
  near bright/dark features or the limb differ), ``eta ~ 0.8 +- 5 %`` per
  antenna, YY/XX differing by 1-3 % per antenna;
* SQLD detector powers ``P = G_ipb(scan) (Trx_b + T_in) + P_zero_ipb`` with
  ``T_in`` = Tsky (sky / off-Sun), T_amb / T_hot (loads, CALDEVICE values),
  Tsky + Tant (on-Sun); G constant within a scan, drifting between scans; Trx_b
  and Tsky_b are the channel means of the ATM scan's spectra, identical in the
  ATM sky sub-scan and the science off-Sun sub-scans, so that
  ``Tant = (P_sun-P_off)(T_hot-T_amb)/(P_hot-P_amb) (P_sky-P_zero)/(P_off-P_zero)``
  holds exactly without noise.
"""
from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .array import Antenna
from .config import SimConfig, SpwSpec, spws_by_role
from .plan import ObservingPlan

LOG = logging.getLogger(__name__)

JY_PER_K = {3: {12: 40.0, 7: 110.0}, 6: {12: 45.0, 7: 125.0}}
OZONE_LINES_GHZ = (93.84, 93.96, 103.88, 231.28, 242.32, 243.45, 244.16, 247.98)
T_ATM = 270.0
T_CMB = 2.73
TAU_ZENITH = {3: 0.035, 6: 0.09}
ETA_SUN = 0.8
POL_NAMES = ("XX", "YY")


def rng_for(seed: int, name: str) -> np.random.Generator:
    """Independent, reproducible random stream for one component."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))


@dataclass
class GainModel:
    """Parametric complex gains, evaluated at any time (see module docstring)."""

    amp0: np.ndarray  # (nant, 2, nbb)
    phase0: np.ndarray  # (nant, 2, nbb) rad
    amp_a: np.ndarray  # (nant, 2)
    amp_period: np.ndarray  # (nant, 2) s
    amp_phase: np.ndarray  # (nant, 2)
    delay_a: np.ndarray  # (nant, k) s
    delay_period: np.ndarray  # (nant, k) s
    delay_phase: np.ndarray  # (nant, k)
    pol_rate: np.ndarray  # (nant, 2) rad/s
    centre_freqs: np.ndarray  # (nbb,) Hz
    #: fast antenna phase errors (the residual a phase-calibrator cycle cannot follow):
    #: knot times (s from EB start) and phases (nant, nknot) in rad at the mean frequency
    noise_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    noise_phase: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __call__(self, t_rel: np.ndarray, bb_index: int) -> np.ndarray:
        """Gains (nant, 2, nt) for baseband index ``bb_index`` at times ``t_rel`` (s from EB start)."""
        t = np.atleast_1d(np.asarray(t_rel, dtype=float))
        amp = self.amp0[:, :, bb_index, None] * (
            1.0 + self.amp_a[:, :, None] * np.sin(2 * np.pi * t[None, None, :] / self.amp_period[:, :, None]
                                                  + self.amp_phase[:, :, None]))
        delay = np.sum(self.delay_a[:, :, None] * np.sin(2 * np.pi * t[None, None, :] / self.delay_period[:, :, None]
                                                         + self.delay_phase[:, :, None]), axis=1)  # (nant, nt)
        ph = (self.phase0[:, :, bb_index, None] + 2 * np.pi * self.centre_freqs[bb_index] * delay[:, None, :]
              + self.pol_rate[:, :, None] * t[None, None, :])
        if self.noise_t.size:  # tropospheric: scales with frequency, same in both polarisations
            scale = self.centre_freqs[bb_index] / float(np.mean(self.centre_freqs))
            ph = ph + scale * np.array([np.interp(t, self.noise_t, p) for p in self.noise_phase])[:, None, :]
        return amp * np.exp(1j * ph)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"gain_{k}": v for k, v in self.__dict__.items()}


@dataclass
class Instrument:
    """All instrumental quantities of one simulated EB (arrays indexed as documented)."""

    cfg: SimConfig
    spws: list[SpwSpec]
    antennas: list[Antenna]
    plan: ObservingPlan
    gains: GainModel = None  # type: ignore[assignment]
    bandpass: np.ndarray = None  # (nant, 2, nbb, nchan) complex
    bandpass_chavg: np.ndarray = None  # (nant, 2, nbb)
    atm_scans: list[int] = field(default_factory=list)
    trx: np.ndarray = None  # (natm, nant, 2, nbb, nchan)
    tsky: np.ndarray = None  # (natm, nbb, nchan)
    tau: np.ndarray = None  # (natm, nbb, nchan) slant opacity
    tsys: np.ndarray = None  # (natm, nant, 2, nbb, nchan)
    t_amb: np.ndarray = None  # (natm, nant)
    t_hot: np.ndarray = None  # (natm, nant)
    det_gain: np.ndarray = None  # (nscan, nant, 2, nbb) indexed by scan number - 1
    p_zero: np.ndarray = None  # (nant, 2, nbb)
    tant: np.ndarray = None  # (nsub, nant, 2, nbb) by global sub-scan index
    eta: np.ndarray = None  # (nant,)
    pol_factor: np.ndarray = None  # (nant, 2)
    bb_factor: np.ndarray = None  # (nbb,)
    detuned_antenna: int = -1
    elevations: dict[int, float] = field(default_factory=dict)  # ATM scan -> elevation deg
    bad: list[dict[str, Any]] = field(default_factory=list)
    dead_antennas: list[int] = field(default_factory=list)

    # ------------------------------------------------------------------ helpers
    @property
    def nant(self) -> int:
        return len(self.antennas)

    @property
    def science_spws(self) -> list[SpwSpec]:
        return spws_by_role(self.spws, "science")

    @property
    def nbb(self) -> int:
        return len(self.science_spws)

    def atm_index(self, scan_number: int) -> int:
        return self.atm_scans.index(scan_number)

    def bb_index_of_spw(self, spw_id: int) -> int:
        spw = self.spws[spw_id]
        return spw.baseband - 1

    # ------------------------------------------------------------------ build
    def build(self, tant_base: dict[tuple[int, float, int], float], light_curve=None,
              tant_var: dict[tuple[int, float, int], float] | None = None) -> None:
        """Draw every instrumental quantity. ``tant_base[(field, dish, bb)]`` = <T_B>_beam (K)."""
        cfg = self.cfg
        nant, nbb = self.nant, self.nbb
        sci = self.science_spws
        nchan = sci[0].nchan
        dur = max(self.plan.duration_s, 60.0)
        # ---- gains
        r = rng_for(cfg.seed, "gains")
        jpk = np.array([JY_PER_K[cfg.band][12 if a.is_12m else 7] for a in self.antennas])
        amp0 = (1.0 / np.sqrt(jpk))[:, None, None] * (1.0 + 0.03 * r.standard_normal((nant, 2, nbb)))
        phase0 = r.uniform(-np.pi, np.pi, (nant, 2, nbb))
        k = 3
        self.gains = GainModel(
            amp0=amp0, phase0=phase0,
            amp_a=r.uniform(0.01, 0.03, (nant, 2)), amp_period=r.uniform(1.0, 3.0, (nant, 2)) * dur,
            amp_phase=r.uniform(0, 2 * np.pi, (nant, 2)),
            delay_a=r.uniform(0.2e-12, 0.6e-12, (nant, k)) * (100e9 / np.mean([s.centre_freq_hz for s in sci])),
            delay_period=r.uniform(0.4, 2.5, (nant, k)) * dur, delay_phase=r.uniform(0, 2 * np.pi, (nant, k)),
            pol_rate=np.radians(r.uniform(-5.0, 5.0, (nant, 2))) / dur,
            centre_freqs=np.array([s.centre_freq_hz for s in sci]))
        if cfg.phase_noise_rms_deg > 0:
            # a random walk smoothed over the time scale, drawn from its own stream (other draws unchanged)
            r = rng_for(cfg.seed, "phase_noise")
            step = cfg.phase_noise_timescale_s / 4.0
            knots = np.arange(-step, self.plan.duration_s + 2 * step, step)
            walk = np.cumsum(r.standard_normal((nant, len(knots))), axis=1)
            kern = np.exp(-0.5 * (np.arange(-8, 9) / 4.0) ** 2)
            walk = np.array([np.convolve(w - w.mean(), kern / kern.sum(), mode="same") for w in walk])
            walk -= walk.mean(axis=1, keepdims=True)
            walk *= np.radians(cfg.phase_noise_rms_deg) / max(float(walk.std()), 1e-12)
            self.gains.noise_t, self.gains.noise_phase = knots, walk
        # ---- bandpass
        r = rng_for(cfg.seed, "bandpass")
        x = np.linspace(-1.0, 1.0, nchan)
        bp = np.zeros((nant, 2, nbb, nchan), dtype=np.complex128)
        for i in range(nant):
            for p in range(2):
                for s in range(nbb):
                    amp = np.ones(nchan)
                    for kk in range(1, 4):
                        amp += r.uniform(0.005, 0.02) * np.sin(np.pi * kk * x * r.uniform(1.0, 2.5) + r.uniform(0, 2 * np.pi))
                    edge = np.minimum(np.arange(nchan), np.arange(nchan)[::-1]) * (32.0 / nchan)
                    amp *= 1.0 - 0.12 * np.exp(-edge / 1.5)
                    ph = np.radians(r.normal(0, 15.0)) * x + np.radians(r.normal(0, 5.0)) * x ** 2 \
                        + np.radians(1.0) * np.sin(np.pi * 3 * x + r.uniform(0, 2 * np.pi))
                    amp /= amp.mean()
                    ph -= ph.mean()
                    bp[i, p, s] = amp * np.exp(1j * ph)
        self.bandpass = bp
        self.bandpass_chavg = bp.mean(axis=-1)
        # ---- Tsys per ATM scan
        self.atm_scans = [sc.number for sc in self.plan.scans if sc.kind == "atm"]
        natm = len(self.atm_scans)
        r = rng_for(cfg.seed, "tsys")
        trx0 = r.uniform(350.0, 750.0, (nant, 2, nbb)) * (1.25 if cfg.band == 6 else 1.0)
        self.detuned_antenna = int(r.integers(0, nant))
        trx0[self.detuned_antenna] *= 2.2
        trx_shape = 1.0 + r.normal(0, 0.04, (nant, 2, nbb))[..., None] * x + r.normal(0, 0.03, (nant, 2, nbb))[..., None] * x ** 2
        trx_drift = 1.0 + 0.005 * r.standard_normal((natm, nant))
        freqs = np.array([np.asarray(s.chan_freqs_hz) for s in sci])  # (nbb, nchan)
        tau_z = TAU_ZENITH[cfg.band] * (freqs / freqs.mean()) ** 2
        for line in OZONE_LINES_GHZ:
            tau_z = tau_z + 0.012 * np.exp(-0.5 * ((freqs - line * 1e9) / 12e6) ** 2)
        self.trx = trx_drift[:, :, None, None, None] * (trx0[..., None] * trx_shape)[None]
        self.tsky = np.zeros((natm, nbb, nchan))
        self.tau = np.zeros((natm, nbb, nchan))
        self.tsys = np.zeros((natm, nant, 2, nbb, nchan))
        from .ephemeris import elevation_deg

        for a, num in enumerate(self.atm_scans):
            sc = self.plan.scan(num)
            f = self.plan.fields[sc.subscans[0].field_id]
            tmid = self.plan.start_mjd_s + 0.5 * (sc.start_s + sc.end_s)
            el = float(elevation_deg(f.ra, f.dec, np.array([tmid / 86400.0]))[0])
            self.elevations[num] = el
            am = 1.0 / math.sin(math.radians(max(el, 5.0)))
            tau_s = tau_z * am
            self.tau[a] = tau_s
            self.tsky[a] = T_ATM * (1 - np.exp(-tau_s)) + T_CMB * np.exp(-tau_s)
            self.tsys[a] = (self.trx[a] + self.tsky[a][None, None]) * np.exp(tau_s)[None, None]
        # ---- loads
        r = rng_for(cfg.seed, "loads")
        frac = np.array([(self.plan.scan(n).start_s - self.plan.scans[0].start_s) / dur for n in self.atm_scans])
        amb_off = r.normal(0, 0.3, nant)
        hot_off = r.normal(0, 0.5, nant)
        self.t_amb = 284.6 + 1.2 * frac[:, None] + amb_off[None, :] + r.normal(0, 0.05, (natm, nant))
        self.t_hot = 354.8 + 1.8 * frac[:, None] + hot_off[None, :] + r.normal(0, 0.05, (natm, nant))
        # ---- detector gains and zero levels
        r = rng_for(cfg.seed, "sqld")
        g0 = r.uniform(0.8e-3, 1.2e-3, (nant, 2, nbb))
        per = r.uniform(0.8, 2.0, (nant, 2, nbb)) * dur
        phs = r.uniform(0, 2 * np.pi, (nant, 2, nbb))
        nscan = len(self.plan.scans)
        self.det_gain = np.zeros((nscan, nant, 2, nbb))
        for sc in self.plan.scans:
            tm = 0.5 * (sc.start_s + sc.end_s)
            self.det_gain[sc.number - 1] = g0 * (1.0 + 0.03 * np.sin(2 * np.pi * tm / per + phs)) \
                * (1.0 + 0.004 * r.standard_normal((nant, 2, nbb)))
        self.p_zero = r.uniform(0.03, 0.08, (nant, 2, nbb))
        # ---- Tant
        r = rng_for(cfg.seed, "tant")
        self.eta = ETA_SUN * (1.0 + r.uniform(-0.05, 0.05, nant))
        sign = r.choice([-1.0, 1.0], nant)
        self.pol_factor = np.stack([np.ones(nant), 1.0 + sign * r.uniform(0.01, 0.03, nant)], axis=1)
        self.bb_factor = 1.0 + r.uniform(-0.015, 0.015, nbb)
        nsub = len(self.plan.subscans)
        self.tant = np.zeros((nsub, nant, 2, nbb))
        drift_phase = r.uniform(0, 2 * np.pi)
        for sc in self.plan.scans:
            if sc.kind != "science":
                continue
            on = [s for s in sc.subscans if s.kind == "on"]
            for j, s in enumerate(on):
                drift = 1.0 + 0.02 * math.sin(2 * np.pi * (s.start_s / dur) * 1.5 + drift_phase) \
                    + 0.01 * math.sin(np.pi * j / max(1, len(on) - 1) + drift_phase)
                tmid_abs = self.plan.start_mjd_s + 0.5 * (s.start_s + s.end_s)
                lc = float(np.mean(light_curve(np.linspace(tmid_abs - 0.5 * (s.end_s - s.start_s),
                                                           tmid_abs + 0.5 * (s.end_s - s.start_s), 9)))) \
                    if light_curve is not None else 0.0
                for i, ant in enumerate(self.antennas):
                    for b in range(nbb):
                        key = (s.field_id, ant.diameter_m, b)
                        tb = tant_base[key] + (lc * tant_var[key] if tant_var else 0.0)
                        self.tant[s.index, i, :, b] = (self.eta[i] * self.pol_factor[i] * self.bb_factor[b] * drift * tb)
        # ---- bad data
        self._choose_bad_data()

    def _choose_bad_data(self) -> None:
        cfg = self.cfg
        self.bad = []
        self.dead_antennas = []
        if not cfg.bad_data:
            return
        r = rng_for(cfg.seed, "bad_data")
        nant = self.nant
        twelve = [a.id for a in self.antennas if a.is_12m and a.id != 0]
        dead = int(r.choice(twelve)) if twelve else nant - 1
        others = [a.id for a in self.antennas if a.id not in (dead, 0)]
        noisy = int(r.choice(others))
        jump_ant = int(r.choice([a for a in others if a != noisy] or others))
        sci = self.science_spws
        t_start = self.plan.start_mjd_s + self.plan.scans[0].start_s
        t_end = self.plan.start_mjd_s + self.plan.scans[-1].end_s
        all_ids = [s.id for s in self.spws if s.role in ("science", "ch_avg")]
        self.dead_antennas = [dead]
        self.bad.append({"type": "dead_antenna", "antenna": self.antennas[dead].name, "antenna_id": dead,
                         "spw_ids": all_ids, "channels": "all", "scan": "all", "correlations": "all",
                         "time_range_mjd_s": [t_start, t_end],
                         "description": "no signal: visibilities are noise only; SQLD powers read P_zero"})
        s_noisy = sci[1 % len(sci)]
        self.bad.append({"type": "noisy_antenna", "antenna": self.antennas[noisy].name, "antenna_id": noisy,
                         "spw_id": s_noisy.id, "spw_ids": [s_noisy.id], "noise_factor": 10.0, "channels": "all",
                         "scan": "all", "time_range_mjd_s": [t_start, t_end]})
        s_bad = sci[2 % len(sci)]
        width = max(2, round(3 * s_bad.nchan / 32)) if s_bad.nchan >= 16 else 2
        c0 = int(round(0.4 * s_bad.nchan))
        self.bad.append({"type": "bad_channels", "spw_id": s_bad.id, "spw_ids": [s_bad.id],
                         "channels": list(range(c0, c0 + width)), "baselines": "all cross-correlations",
                         "spike_amplitude": 0.05, "scan": "all", "time_range_mjd_s": [t_start, t_end]})
        phase_scans = [sc for sc in self.plan.scans if sc.kind == "phase"]
        jsc = phase_scans[1] if len(phase_scans) > 1 else phase_scans[0]
        sub = jsc.subscans[0]
        nint = int(round((sub.end_s - sub.start_s) / cfg.integration_s))
        t_jump = sub.start_s + (nint // 2) * cfg.integration_s
        self.bad.append({"type": "phase_jump", "antenna": self.antennas[jump_ant].name, "antenna_id": jump_ant,
                         "scan": jsc.number, "jump_deg": 75.0, "spw_ids": all_ids, "channels": "all",
                         "time_range_mjd_s": [self.plan.start_mjd_s + t_jump, self.plan.start_mjd_s + sub.end_s]})

    # ------------------------------------------------------------------ queries
    def atm_for_scan(self, scan_number: int) -> int:
        """Index (into the ATM arrays) of the ATM scan whose Tsys applies to this scan."""
        n = self.plan.atm_scan_for(self.plan.scan(scan_number))
        if n is None or n not in self.atm_scans:
            n = self.atm_scans[0]
        return self.atm_index(n)

    def sqld_power(self, sub_index: int) -> np.ndarray:
        """Noise-free SQLD power (nant, 2, nbb) during a sub-scan (main or zero-level SQLD)."""
        s = self.plan.subscans[sub_index]
        sc = self.plan.scan(s.scan_number)
        g = self.det_gain[sc.number - 1]
        pz = self.p_zero
        if sc.kind == "zero":
            p = pz.copy()
        else:
            a = self.atm_for_scan(sc.number)
            trx_b = self.trx[a].mean(axis=-1)  # (nant, 2, nbb)
            tsky_b = self.tsky[a].mean(axis=-1)[None, None, :]
            if s.kind == "amb":
                t_in = self.t_amb[a][:, None, None]
            elif s.kind == "hot":
                t_in = self.t_hot[a][:, None, None]
            elif s.kind == "on":
                t_in = tsky_b + self.tant[sub_index]
            else:
                t_in = tsky_b
            p = g * (trx_b + t_in) + pz
        for d in self.dead_antennas:
            p[d] = pz[d]
        return p

    def wvr_temperature(self, sub_index: int) -> np.ndarray:
        """WVR channel brightness temperatures (nant, 4) in K during a sub-scan."""
        s = self.plan.subscans[sub_index]
        sc = self.plan.scan(s.scan_number)
        a = self.atm_for_scan(sc.number)
        el = self.elevations.get(self.atm_scans[a], 45.0)
        am = 1.0 / math.sin(math.radians(max(el, 5.0)))
        tau = np.array([1.6, 0.7, 0.3, 0.12]) * (0.6 if self.cfg.band == 3 else 0.9)
        t = T_ATM * (1 - np.exp(-tau * am)) + T_CMB * np.exp(-tau * am)
        out = np.repeat(t[None, :], self.nant, axis=0)
        if s.kind == "on":
            out[:] = 295.0  # saturated on the Sun
        if s.kind == "amb":
            out[:] = self.t_amb[a][:, None]
        if s.kind == "hot":
            out[:] = self.t_hot[a][:, None]
        return out

    def tsys_for(self, scan_number: int) -> np.ndarray:
        """Tsys spectra (nant, 2, nbb, nchan) applicable to a scan."""
        return self.tsys[self.atm_for_scan(scan_number)]
