"""MAIN-table data: model visibilities, corruptions, noise, SQLD and WVR powers.

Data model (see also :mod:`.instrument`), for antennas i, j, polarisation p,
SPW s (baseband b), channel c, time t:

    DATA_ij = g_ips(t) conj(g_jps(t)) b_ips(c) conj(b_jps(c)) V_ij(c, t) / sqrt(T_ip(c, t) T_jp(c, t)) + n

* ``V_ij`` the true sky visibility in Jy (unpolarised: XX = YY = I): the Sun
  grid through the baseline primary beam (:mod:`.predict`) on ``OBSERVE_TARGET#ON_SOURCE``
  sub-scans, ``S(nu) = S0 (nu/nu0)^alpha`` on calibrator ON_SOURCE sub-scans, and
  0 on off-Sun, ATM sky (off source) and load sub-scans;
* ``T = Tsys`` (SYSCAL spectrum of the applicable ATM scan) on calibrators and
  off-Sun sub-scans, ``T = Tsys + Tant`` on on-Sun sub-scans;
* ``n`` complex Gaussian, ``sigma = 1/sqrt(2 |dnu| dt)`` per real/imaginary part
  (correlation units, constant; SIGMA = sigma, WEIGHT = 1/sigma^2);
* CH_AVG twins: the same equation with ``b`` and ``T`` replaced by their channel
  means and ``V`` at the SPW centre frequency; noise with the CH_AVG bandwidth;
* autocorrelations of science/CH_AVG SPWs: ``|b_ips(c)|^2`` (real) + noise;
* SQLD SPWs: autocorrelation rows only, real part = detector power ``P``
  (:meth:`.instrument.Instrument.sqld_power`) + relative noise ``1/sqrt(BW dt)``;
  zero-level SQLD SPWs carry ``P_zero`` and only exist in scan 1;
* WVR: autocorrelation rows only, 4 channels of sky brightness (K).

Bad data (``bad_data=True``): dead antenna (its cross-correlations are noise
only, autocorrelations 2 % of normal, SQLD at P_zero), noisy antenna (noise x10
in one SPW), a band of bad channels (spikes ``A (0.5+U) e^{i phi}`` on all
cross-correlations of one SPW), a 75 degree phase jump of one antenna in the
second half of one phase-calibrator scan, and geometric shadowing (signal
scaled by ``sqrt((1-f_i)(1-f_j))``, f the blocked area fraction).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from .config import SimConfig, SpwSpec
from .instrument import Instrument, rng_for
from .msbuild import MainTableWriter
from .plan import ObservingPlan
from .predict import SkyPredictor, pair_types

LOG = logging.getLogger(__name__)


@dataclass
class Template:
    """Rows of the template MS (one per integration and antenna pair, autos included)."""

    time: np.ndarray
    ant1: np.ndarray
    ant2: np.ndarray
    uvw: np.ndarray  # (3, n)
    sub: np.ndarray  # global sub-scan index

    @classmethod
    def from_dict(cls, d: dict[str, np.ndarray]) -> "Template":
        order = np.lexsort((d["ANTENNA2"], d["ANTENNA1"], d["TIME"], d["SUBSCAN_INDEX"]))
        return cls(d["TIME"][order], d["ANTENNA1"][order].astype(np.int32), d["ANTENNA2"][order].astype(np.int32),
                   d["UVW"][:, order], d["SUBSCAN_INDEX"][order])

    def rows_of(self, sub_indices: list[int]) -> np.ndarray:
        return np.nonzero(np.isin(self.sub, sub_indices))[0]


def shadowing(template: Template, diam: np.ndarray) -> dict[tuple[float, int], float]:
    """Blocked area fraction per (time, antenna) from projected baseline geometry.

    For a cross row (UVW = X1 - X2 projected), if ``sqrt(u^2+v^2) < (D1+D2)/2`` the
    antenna behind (antenna 2 if w > 0) is shadowed by the overlap of the two disks.
    """
    cross = template.ant1 != template.ant2
    u, v, w = template.uvw[:, cross]
    d = np.hypot(u, v)
    a1, a2 = template.ant1[cross], template.ant2[cross]
    r1, r2 = diam[a1] / 2.0, diam[a2] / 2.0
    hit = d < (r1 + r2)
    out: dict[tuple[float, int], float] = {}
    for k in np.nonzero(hit)[0]:
        front, back = (a1[k], a2[k]) if w[k] > 0 else (a2[k], a1[k])
        rf, rb = diam[front] / 2.0, diam[back] / 2.0
        frac = _overlap(rf, rb, d[k]) / (math.pi * rb * rb)
        key = (float(template.time[cross][k]), int(back))
        out[key] = max(out.get(key, 0.0), frac)
    return out


def _overlap(r1: float, r2: float, d: float) -> float:
    """Area of the intersection of two circles of radii r1, r2 at distance d."""
    if d >= r1 + r2:
        return 0.0
    if d <= abs(r1 - r2):
        return math.pi * min(r1, r2) ** 2
    a = r1 * r1 * math.acos((d * d + r1 * r1 - r2 * r2) / (2 * d * r1))
    b = r2 * r2 * math.acos((d * d + r2 * r2 - r1 * r1) / (2 * d * r2))
    c = 0.5 * math.sqrt((-d + r1 + r2) * (d + r1 - r2) * (d - r1 + r2) * (d + r1 + r2))
    return a + b - c


class VisibilityGenerator:
    """Generates and writes all MAIN rows, scan by scan, SPW by SPW."""

    def __init__(self, cfg: SimConfig, plan: ObservingPlan, spws: list[SpwSpec], inst: Instrument,
                 template: Template, predictor: SkyPredictor, light_curve, state_ids: dict,
                 diam: np.ndarray):
        self.cfg = cfg
        self.plan = plan
        self.spws = spws
        self.inst = inst
        self.tpl = template
        self.pred = predictor
        self.light_curve = light_curve
        self.state_ids = state_ids
        self.diam = diam
        self.shadow = shadowing(template, diam) if cfg.bad_data else {}
        self._shadow_times = np.array(sorted({k[0] for k in self.shadow}))
        self.bad = {b["type"]: b for b in inst.bad}
        cal = {f.id: cfg.calibrators[f.role] for f in plan.fields if not f.is_sun}
        self.cal_spec = cal

    # -------------------------------------------------------------- per-row helpers
    def _sub_attr(self, sub_idx: np.ndarray, attr: str) -> np.ndarray:
        vals = np.array([getattr(s, attr) for s in self.plan.subscans], dtype=object)
        return vals[sub_idx]

    def model_vis(self, spw: SpwSpec, rows: np.ndarray, freqs: np.ndarray) -> np.ndarray:
        """True visibilities (Jy), shape (nchan, nrow); zero for autocorrelations."""
        tpl, plan = self.tpl, self.plan
        out = np.zeros((len(freqs), len(rows)), dtype=np.complex128)
        cross = tpl.ant1[rows] != tpl.ant2[rows]
        subs = tpl.sub[rows]
        kinds = np.array([plan.subscans[k].kind for k in range(len(plan.subscans))])[subs]
        fields = np.array([plan.subscans[k].field_id for k in range(len(plan.subscans))])[subs]
        on = cross & (kinds == "on")
        for fid in np.unique(fields[on]):
            sel = np.nonzero(on & (fields == fid))[0]
            r = rows[sel]
            pairs = pair_types(self.diam[tpl.ant1[r]], self.diam[tpl.ant2[r]])
            v = self.pred.predict(int(fid), freqs, tpl.uvw[0, r], tpl.uvw[1, r], pairs, "static")
            if self.pred.grid.t_var is not None and self.light_curve is not None:
                lc = self.light_curve(tpl.time[r])
                v += self.pred.predict(int(fid), freqs, tpl.uvw[0, r], tpl.uvw[1, r], pairs, "variable") * lc[None, :]
            out[:, sel] = v
        cal = cross & (kinds == "cal")
        for fid in np.unique(fields[cal]):
            sel = np.nonzero(cal & (fields == fid))[0]
            c = self.cal_spec[int(fid)]
            s = c.flux_jy * (np.asarray(freqs) / c.ref_freq_hz) ** c.spectral_index
            out[:, sel] = s[:, None]
        return out

    def _base_columns(self, spw: SpwSpec, rows: np.ndarray, scan_number: int) -> dict[str, np.ndarray]:
        tpl, plan = self.tpl, self.plan
        n = len(rows)
        subs = tpl.sub[rows]
        sub_objs = plan.subscans
        state = np.array([self.state_ids[(sub_objs[k].obs_mode, sub_objs[k].number)] for k in range(len(sub_objs))],
                         dtype=np.int32)[subs]
        field = np.array([s.field_id for s in sub_objs], dtype=np.int32)[subs]
        uvw = tpl.uvw[:, rows].copy()
        uvw[:, tpl.ant1[rows] == tpl.ant2[rows]] = 0.0
        tint = self.cfg.integration_s
        return {
            "TIME": tpl.time[rows], "TIME_CENTROID": tpl.time[rows], "INTERVAL": np.full(n, tint),
            "EXPOSURE": np.full(n, tint), "ANTENNA1": tpl.ant1[rows], "ANTENNA2": tpl.ant2[rows],
            "FEED1": np.zeros(n, np.int32), "FEED2": np.zeros(n, np.int32),
            "DATA_DESC_ID": np.full(n, spw.id, np.int32), "FIELD_ID": field,
            "SCAN_NUMBER": np.full(n, scan_number, np.int32), "STATE_ID": state,
            "OBSERVATION_ID": np.zeros(n, np.int32), "ARRAY_ID": np.zeros(n, np.int32),
            "PROCESSOR_ID": np.full(n, 1 if spw.role == "wvr" else 0, np.int32),
            "FLAG_ROW": np.zeros(n, bool), "UVW": uvw,
        }

    # -------------------------------------------------------------- correlator SPWs
    def correlator_block(self, spw: SpwSpec, rows: np.ndarray, scan_number: int,
                         rng: np.random.Generator) -> dict[str, np.ndarray]:
        cfg, inst, tpl = self.cfg, self.inst, self.tpl
        bb = spw.baseband - 1
        chavg = spw.role == "ch_avg"
        sci = inst.science_spws[bb]
        freqs = np.array([sci.centre_freq_hz]) if chavg else np.asarray(spw.chan_freqs_hz, float)
        nchan = len(freqs)
        n = len(rows)
        a1, a2 = tpl.ant1[rows], tpl.ant2[rows]
        t = tpl.time[rows]
        trel = t - self.plan.start_mjd_s
        subs = tpl.sub[rows]
        cross = a1 != a2
        V = self.model_vis(spw, rows, freqs)  # (nchan, n)
        ut, tix = np.unique(trel, return_inverse=True)
        G = inst.gains(ut, bb)  # (nant, 2, nut)
        g1 = G[a1, :, tix].T  # (2, n): advanced indices on axes 0 and 2 put n first
        g2 = G[a2, :, tix].T
        if chavg:
            B = inst.bandpass_chavg[:, :, bb][:, :, None]  # (nant, 2, 1)
            tsys = inst.tsys_for(scan_number)[:, :, bb, :].mean(axis=-1)[:, :, None]
        else:
            B = inst.bandpass[:, :, bb, :]
            tsys = inst.tsys_for(scan_number)[:, :, bb, :]
        tant = inst.tant[subs][:, :, :, bb]  # (n, nant, 2) -> pick antennas
        tant1 = tant[np.arange(n), a1, :].T  # (2, n)
        tant2 = tant[np.arange(n), a2, :].T
        T1 = tsys[a1].transpose(1, 2, 0) + tant1[:, None, :]  # (2, nchan, n)
        T2 = tsys[a2].transpose(1, 2, 0) + tant2[:, None, :]
        b1 = B[a1].transpose(1, 2, 0)  # (2, nchan, n)
        b2 = B[a2].transpose(1, 2, 0)
        sig = (g1 * np.conj(g2))[:, None, :] * b1 * np.conj(b2) * V[None, :, :] / np.sqrt(T1 * T2)
        # corruptions of the signal
        if cfg.bad_data:
            jump = self.bad.get("phase_jump")
            if jump and jump["scan"] == scan_number:
                t0, t1 = jump["time_range_mjd_s"]
                inwin = (t >= t0) & (t <= t1)
                ph = math.radians(jump["jump_deg"])
                ant = jump["antenna_id"]
                fac = np.ones(n, complex)
                fac[inwin & (a1 == ant)] *= np.exp(1j * ph)
                fac[inwin & (a2 == ant)] *= np.exp(-1j * ph)
                sig *= fac[None, None, :]
            if self.shadow:
                hit = np.nonzero(np.isin(t, self._shadow_times))[0]
                if len(hit):
                    f1 = np.zeros(n)
                    f2 = np.zeros(n)
                    for k in hit:
                        f1[k] = self.shadow.get((float(t[k]), int(a1[k])), 0.0)
                        f2[k] = self.shadow.get((float(t[k]), int(a2[k])), 0.0)
                    sig *= np.sqrt(np.clip((1 - f1) * (1 - f2), 0, 1))[None, None, :]
            for d in inst.dead_antennas:
                sig[:, :, (a1 == d) | (a2 == d)] = 0.0
        dnu = abs(float(spw.chan_widths_hz[0]))
        sigma = 1.0 / math.sqrt(2.0 * dnu * cfg.integration_s)
        data = np.where(cross[None, None, :], sig, 0.0).astype(np.complex128)
        auto = ~cross
        if np.any(auto):
            ba = np.abs(B[a1[auto]]) ** 2  # (na, 2, nchan)
            level = np.ones(np.count_nonzero(auto))
            for d in inst.dead_antennas:
                level[a1[auto] == d] = 0.02
            data[:, :, auto] = (ba * level[:, None, None]).transpose(1, 2, 0)
        if cfg.noise:
            noise = (rng.standard_normal((2, nchan, n)) + 1j * rng.standard_normal((2, nchan, n))) * sigma
            noise[:, :, auto] = (math.sqrt(2.0) * sigma) * rng.standard_normal((2, nchan, int(auto.sum())))
            if cfg.bad_data and "noisy_antenna" in self.bad and self.bad["noisy_antenna"]["spw_id"] == spw.id:
                ant = self.bad["noisy_antenna"]["antenna_id"]
                fac = self.bad["noisy_antenna"]["noise_factor"]
                sel = cross & ((a1 == ant) | (a2 == ant))
                noise[:, :, sel] *= fac
            data += noise
        if cfg.bad_data and "bad_channels" in self.bad and self.bad["bad_channels"]["spw_id"] == spw.id:
            bc = self.bad["bad_channels"]
            ch = np.array(bc["channels"])
            k = int(np.count_nonzero(cross))
            amp = bc["spike_amplitude"] * (0.5 + rng.uniform(size=(2, len(ch), k)))
            spikes = amp * np.exp(2j * np.pi * rng.uniform(size=(2, len(ch), k)))
            block = data[:, ch, :]
            block[:, :, cross] += spikes
            data[:, ch, :] = block
        cols = self._base_columns(spw, rows, scan_number)
        cols["DATA"] = data.astype(np.complex64)
        cols["FLAG"] = np.zeros((2, nchan, n), bool)
        cols["SIGMA"] = np.full((2, n), sigma, np.float32)
        cols["WEIGHT"] = np.full((2, n), 1.0 / sigma ** 2, np.float32)
        return cols

    # -------------------------------------------------------------- SQLD / WVR
    def sqld_block(self, spw: SpwSpec, rows: np.ndarray, scan_number: int,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
        tpl = self.tpl
        bb = spw.baseband - 1
        subs = tpl.sub[rows]
        a = tpl.ant1[rows]
        n = len(rows)
        p = np.zeros((2, n))
        for k in np.unique(subs):
            sel = subs == k
            pk = self.inst.sqld_power(int(k))  # (nant, 2, nbb)
            p[:, sel] = pk[a[sel], :, bb].T
        rel = 1.0 / math.sqrt(abs(spw.total_bandwidth_hz) * self.cfg.integration_s)
        sigma = rel * p
        if self.cfg.noise:
            p = p + sigma * rng.standard_normal(p.shape)
        cols = self._base_columns(spw, rows, scan_number)
        cols["DATA"] = p[:, None, :].astype(np.complex64)
        cols["FLAG"] = np.zeros((2, 1, n), bool)
        cols["SIGMA"] = np.maximum(sigma, 1e-9).astype(np.float32)
        cols["WEIGHT"] = (1.0 / np.maximum(sigma, 1e-9) ** 2).astype(np.float32)
        return cols

    def wvr_block(self, spw: SpwSpec, rows: np.ndarray, scan_number: int,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
        tpl = self.tpl
        subs = tpl.sub[rows]
        a = tpl.ant1[rows]
        n = len(rows)
        out = np.zeros((2, 4, n))
        for k in np.unique(subs):
            sel = subs == k
            tw = self.inst.wvr_temperature(int(k))  # (nant, 4)
            out[:, :, sel] = tw[a[sel]].T[None, :, :]
        sigma = 0.1
        if self.cfg.noise:
            out = out + sigma * rng.standard_normal(out.shape)
        cols = self._base_columns(spw, rows, scan_number)
        cols["DATA"] = out.astype(np.complex64)
        cols["FLAG"] = np.zeros((2, 4, n), bool)
        cols["SIGMA"] = np.full((2, n), sigma, np.float32)
        cols["WEIGHT"] = np.full((2, n), 1.0 / sigma ** 2, np.float32)
        return cols

    # -------------------------------------------------------------- driver
    def run(self, writer: MainTableWriter) -> int:
        """Write every scan; returns the number of rows written.

        Rows are laid out scan by scan (SPWs in id order inside a scan, times and
        baselines inside an SPW block) and reserved up front; they are then generated
        baseband by baseband so that the uv-grid cache only ever holds one baseband.
        """
        tpl, plan, cfg = self.tpl, self.plan, self.cfg
        blocks: list[tuple[int, SpwSpec, np.ndarray, int]] = []  # scan, spw, template rows, first MS row
        total = 0
        for sc in plan.scans:
            rows_all = tpl.rows_of([s.index for s in sc.subscans])
            autos = rows_all[tpl.ant1[rows_all] == tpl.ant2[rows_all]]
            corr_rows = rows_all if cfg.with_autocorr else rows_all[tpl.ant1[rows_all] != tpl.ant2[rows_all]]
            if sc.setup == "zero":
                spw_list = [s for s in self.spws if s.role == "sqld_zero"]
            else:
                spw_list = [s for s in self.spws if s.role != "sqld_zero"]
            for spw in spw_list:
                rows = corr_rows if spw.role in ("science", "ch_avg") else autos
                blocks.append((sc.number, spw, rows, total))
                total += len(rows)
        first = writer.reserve(total)
        LOG.info("MAIN: %d rows in %d blocks reserved", total, len(blocks))
        t_start = time.time()

        def order_key(b):
            spw = b[1]
            if spw.role in ("science", "ch_avg"):
                return (1, spw.baseband, 0 if spw.role == "science" else 1, b[0])
            return (0, spw.id, 0, b[0])

        nscan = len(plan.scans)
        done_rows = 0
        current = None
        last_info = time.time()
        ordered = sorted(blocks, key=order_key)
        for k_block, (scan_number, spw, rows, offset) in enumerate(ordered):
            key = spw.baseband if spw.role in ("science", "ch_avg") else None
            if key != current:
                self.pred.clear_cache()
                current = key
            rng = rng_for(cfg.seed, f"noise-{scan_number}-{spw.id}")
            if spw.role in ("science", "ch_avg"):
                step = max(2000, int(3_000_000 // max(1, spw.nchan)))
                for k in range(0, len(rows), step):
                    writer.put(first + offset + k, self.correlator_block(spw, rows[k:k + step], scan_number, rng))
            elif spw.role in ("sqld", "sqld_zero"):
                writer.put(first + offset, self.sqld_block(spw, rows, scan_number, rng))
            elif spw.role == "wvr":
                writer.put(first + offset, self.wvr_block(spw, rows, scan_number, rng))
            done_rows += len(rows)
            last_of_spw = k_block + 1 == len(ordered) or ordered[k_block + 1][1].id != spw.id
            level = logging.INFO if (last_of_spw and spw.role in ("science", "ch_avg")) or \
                time.time() - last_info > 10.0 else logging.DEBUG
            if level == logging.INFO:
                last_info = time.time()
            LOG.log(level, "spw %d (%s) scan %d/%d written: %d/%d rows, %.1f s", spw.id, spw.role, scan_number,
                    nscan, done_rows, total, time.time() - t_start)
        return total
