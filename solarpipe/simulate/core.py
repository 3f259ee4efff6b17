"""``simulate_eb``: one synthetic ALMA solar execution block plus its complete truth.

Steps: configuration and SPW layout -> antennas -> Sun geometry (topocentric
ephemeris, P angle, radius) -> schedule -> Sun model and sky grid -> template MS
(CASA's TIME/UVW) -> MS structure and importasdm-like subtables -> instrument
model -> MAIN rows scan by scan -> SYSCAL/CALDEVICE/SYSPOWER/WEATHER ->
ephemeris attached to the Sun fields -> sky-model and TP images -> calibrator
catalogue -> ``truth.json`` + ``truth_arrays.npz``.

The data model is written out in :mod:`.visibilities` and :mod:`.instrument`
(and copied into ``truth['data_model']``).
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import ephemeris as eph
from .array import select_antennas
from .catalogue import build_catalogue, latest_band3_ratio, write_catalogue
from .config import C_LIGHT, SimConfig, build_spw_layout, spws_by_role
from .images import write_sky_model, write_tp_map
from .instrument import POL_NAMES, Instrument, rng_for
from .msbuild import (MainTableWriter, antenna_positions, copy_pointing, create_structure, du_bytes,
                      field_sun_directions, fix_source_table, observe_template, write_fields_and_observation,
                      write_pol_and_dd, write_processor, write_spectral_windows, write_state)
from .plan import build_plan, mjd_seconds_to_utc
from .predict import BEAMS, SkyPredictor
from .sky import (DISC_TEMPERATURE_K, LightCurve, SunModel, UserImage, default_features, make_sky_grid)
from .subtables import write_caldevice, write_syscal, write_syspower, write_weather
from .truth import save_truth
from .visibilities import Template, VisibilityGenerator

LOG = logging.getLogger(__name__)

DATA_MODEL = (
    "DATA_ij(p,c,t) = g_ip(t) conj(g_jp(t)) b_ip(c) conj(b_jp(c)) V_ij(c,t) / sqrt(T_ip(c,t) T_jp(c,t)) + n; "
    "V in Jy (XX=YY=I), g in sqrt(K/Jy), T = Tsys (SYSCAL of the applicable ATM scan) on calibrators and "
    "off-Sun sub-scans, T = Tsys + Tant on on-Sun sub-scans; n complex Gaussian, sigma = 1/sqrt(2 |dnu| dt) "
    "per part. SQLD: P = G_ipb(scan) (Trx_b + T_in) + P_zero_ipb, T_in = Tsky | T_amb | T_hot | Tsky + Tant. "
    "Tant = (P_sun - P_off)(T_hot - T_amb)/(P_hot - P_amb) (P_sky - P_zero)/(P_off - P_zero) exactly without noise."
)


@dataclass
class SimulatedEB:
    """Paths and truth of one simulated EB."""

    ms: str
    truth_json: str
    truth: dict[str, Any]
    tp_map_fits: str
    tp_map_image: str
    catalogue: str
    sky_model: str
    sky_model_fits: str = ""
    elapsed_s: float = 0.0
    size_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def simulate_eb(out_dir: str | Path, size: str = "tiny", band: int = 3, mosaic: int | None = None,
                sky: str | None = None, seed: int = 0, noise: bool = True, bad_data: bool = True,
                spw_layout: str = "default", extra_atm_scan: bool = False,
                flux_cal_catalogue_age_days: float | None = None, time_variable: bool = False,
                **overrides: Any) -> SimulatedEB:
    """Write a synthetic solar EB (MS + truth + TP map + sky model + catalogue) into ``out_dir``.

    ``size`` picks a preset (tiny/small/large); any :class:`SimConfig` field can be
    overridden by keyword. Deterministic for a given configuration and seed.
    """
    cfg = SimConfig.preset(size, band=band, mosaic=mosaic, sky=sky, seed=seed, noise=noise, bad_data=bad_data,
                           spw_layout=spw_layout, extra_atm_scan=extra_atm_scan,
                           flux_cal_catalogue_age_days=flux_cal_catalogue_age_days, time_variable=time_variable,
                           **overrides)
    return run_simulation(cfg, out_dir)


def uv_extent_per_pair(tpl: Template, diam: np.ndarray, fmax: float) -> dict[int, float]:
    """Largest |u| or |v| (wavelengths, at the highest frequency) per antenna-pair type."""
    from .predict import pair_types

    cross = tpl.ant1 != tpl.ant2
    pt = pair_types(diam[tpl.ant1[cross]], diam[tpl.ant2[cross]])
    m = np.maximum(np.abs(tpl.uvw[0, cross]), np.abs(tpl.uvw[1, cross])) * fmax / C_LIGHT
    return {int(k): float(m[pt == k].max() * 1.02) for k in np.unique(pt)}


def _pixel_size_arcsec(antennas, fmax: float) -> float:
    xyz = np.array([a.local_xyz for a in antennas])
    d = np.sqrt(((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1)).max()
    umax = d * fmax / C_LIGHT
    pix = 1.0 / (2.4 * umax) * 180.0 / math.pi * 3600.0
    return float(math.floor(pix * 1000.0) / 1000.0)


def run_simulation(cfg: SimConfig, out_dir: str | Path) -> SimulatedEB:
    """Run the whole simulation for a ready configuration (see module docstring)."""
    import casatools

    t_begin = time.time()
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> float:
        timings[name] = round(time.time() - t0, 3)
        return time.time()

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / "_work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    name = cfg.eb_name
    ms = str(out / f"{name}.ms")
    LOG.info("simulating %s EB %s (band %d, seed %d, mosaic %s) in %s", cfg.size, name, cfg.band, cfg.seed,
             cfg.mosaic, out)
    t = time.time()
    spws = build_spw_layout(cfg)
    sci = spws_by_role(spws, "science")
    antennas = select_antennas(cfg)
    freqs_all = np.concatenate([s.chan_freqs_hz for s in sci])
    fmean = float(np.mean(freqs_all))
    from .plan import utc_to_mjd_seconds

    start = utc_to_mjd_seconds(cfg.obs_start_utc)
    p_angle, b0 = (float(v[0]) for v in eph.solar_p_b0(np.array([start / 86400.0])))
    fwhm12 = BEAMS[12.0].fwhm_arcsec(fmean)
    plan = build_plan(cfg, fwhm12, p_angle)
    # ---- Sun geometry: reference time = middle of the Sun science scans (integer second)
    sci_scans = [s for s in plan.scans if s.kind == "science"]
    t_ref = float(round(plan.start_mjd_s + 0.5 * (sci_scans[0].start_s + sci_scans[-1].end_s)))
    step = cfg.ephemeris_step_s
    k0 = int(math.ceil((t_ref - (plan.start_mjd_s + plan.scans[0].start_s) + 1800.0) / step))
    k1 = int(math.ceil((plan.start_mjd_s + plan.scans[-1].end_s + 1800.0 - t_ref) / step))
    eph_t = t_ref + np.arange(-k0, k1 + 1) * step
    sun = eph.sun_topocentric(eph_t / 86400.0)
    iref = k0
    sun_ra, sun_dec, dist = float(sun["ra"][iref]), float(sun["dec"][iref]), float(sun["dist_au"][iref])
    p_eph, b0_eph = eph.solar_p_b0(eph_t / 86400.0)
    radius = float(eph.apparent_radius_arcsec(dist))
    field_sun_directions(plan, sun_ra, sun_dec)
    t = lap("geometry_plan", t)
    # ---- Sun model and sky grid
    rng_sky = rng_for(cfg.seed, "sky")
    disc = cfg.disc_temperature_k or DISC_TEMPERATURE_K[cfg.band]
    sun_fields = plan.sun_fields
    centres = [f.sky_offset_arcsec for f in sun_fields]
    field_radius = 0.35 * fwhm12 if not cfg.mosaic else max(
        0.35 * fwhm12, max(math.hypot(c[0] - centres[0][0], c[1] - centres[0][1]) for c in centres))
    light = None
    if cfg.sky:
        model = SunModel(cfg.band, radius, p_angle, disc, [], None,
                         UserImage(cfg.sky, p_angle, float(np.mean(freqs_all))))
    else:
        feats = default_features(cfg.band, [f.hp_arcsec for f in sun_fields], field_radius, rng_sky,
                                 cfg.time_variable)
        model = SunModel(cfg.band, radius, p_angle, disc, feats)
    if cfg.time_variable:
        if cfg.sky:
            LOG.warning("time_variable ignored with a user sky model")
        else:
            t_sci0 = plan.start_mjd_s + sci_scans[0].start_s
            t_sci1 = plan.start_mjd_s + sci_scans[-1].end_s
            light = LightCurve(0.5 * (t_sci0 + t_sci1), max(20.0, (t_sci1 - t_sci0) / 6.0))
            model.light_curve = light
    fmax = max(float(np.max(s.chan_freqs_hz)) for s in sci)
    fmin_centre = min(s.centre_freq_hz for s in sci)
    pixel = _pixel_size_arcsec(antennas, fmax)
    has7 = any(not a.is_12m for a in antennas)
    support = (BEAMS[7.0] if has7 else BEAMS[12.0]).support_arcsec(fmin_centre)
    grid = make_sky_grid(model, centres, support, pixel)
    t = lap("sky_grid", t)
    # ---- template (CASA TIME/UVW) and MS structure
    tpl_path = str(work / "template.ms")
    tpl = Template.from_dict(observe_template(tpl_path, cfg, antennas, plan, fmean))
    t = lap("template", t)
    uv_extent = uv_extent_per_pair(tpl, np.array([a.diameter_m for a in antennas]), fmax)
    predictor = SkyPredictor(grid, {f.id: f.sky_offset_arcsec for f in sun_fields}, nodes=cfg.pb_freq_nodes,
                             pad=cfg.fft_pad, uv_extent=uv_extent)
    create_structure(ms, cfg, antennas, spws, plan)
    write_spectral_windows(ms, spws)
    write_pol_and_dd(ms, spws)
    state_ids = write_state(ms, plan)
    write_processor(ms)
    field_time = {f.id: plan.start_mjd_s + next(s.start_s for s in plan.subscans if s.field_id == f.id)
                  for f in plan.fields}
    for f in sun_fields:
        field_time[f.id] = t_ref
    write_fields_and_observation(ms, plan, field_time, cfg)
    copy_pointing(tpl_path, ms)
    fix_source_table(ms, plan, spws)
    pos = antenna_positions(ms)
    for a in antennas:
        a.position = [float(v) for v in pos[a.id]]
    t = lap("structure", t)
    # ---- instrument model
    tant_base, tant_var = {}, {}
    for f in sun_fields:
        for dish in sorted({a.diameter_m for a in antennas}):
            for b, s in enumerate(sci):
                tant_base[(f.id, dish, b)] = predictor.beam_weighted_temperature(f.id, dish, s.centre_freq_hz)
                if grid.t_var is not None:
                    tant_var[(f.id, dish, b)] = predictor.beam_weighted_temperature(f.id, dish, s.centre_freq_hz,
                                                                                    "variable")
    inst = Instrument(cfg, spws, antennas, plan)
    inst.build(tant_base, light, tant_var or None)
    t = lap("instrument", t)
    # ---- MAIN rows
    diam = np.array([a.diameter_m for a in antennas])
    gen = VisibilityGenerator(cfg, plan, spws, inst, tpl, predictor, light, state_ids, diam)
    writer = MainTableWriter(ms)
    try:
        nrows = gen.run(writer)
    finally:
        writer.close()
    t = lap("visibilities", t)
    # ---- subtables
    if cfg.with_syscal:
        write_syscal(ms, inst, plan)
    if cfg.with_caldevice:
        write_caldevice(ms, inst, plan)
    if cfg.with_syspower and cfg.with_sqld:
        write_syspower(ms, inst, plan)
    if cfg.with_weather:
        write_weather(ms, plan, cfg.seed)
    t = lap("subtables", t)
    # ---- ephemeris
    eph_info = attach_ephemeris(ms, plan, cfg, eph_t, sun, p_eph, b0_eph, t_ref, iref, work)
    t = lap("ephemeris", t)
    # ---- images
    extra = {"SOLAR_P": (p_angle, "solar P angle (deg)"), "SOLAR_B0": (b0, "solar B0 (deg)"),
             "RSUN_OBS": (radius, "apparent photospheric radius (arcsec)"),
             "DSUN_OBS": (dist * eph.AU_KM * 1e3, "Sun-observer distance (m)"),
             "SUNCENRA": (math.degrees(sun_ra), "Sun centre RA at t_ref (deg, topocentric)"),
             "SUNCENDE": (math.degrees(sun_dec), "Sun centre Dec at t_ref (deg, topocentric)"),
             "SIMCONV": ("RA/Dec SIN, refpix = Sun centre", "solarpipe simulator convention")}
    sky_img, sky_fits = write_sky_model(grid, str(out / "sky_model"), sun_ra, sun_dec, fmean, t_ref, extra)
    light_level = 0.0
    if light is not None:
        ts = np.concatenate([plan.start_mjd_s + np.arange(s.start_s, s.end_s, cfg.integration_s)
                             for s in sci_scans])
        light_level = float(np.mean(light(ts)))
    band_centre = {3: 100e9, 6: 239e9}[cfg.band]
    tp_info = write_tp_map(model, str(out / "tp_map"), sun_ra, sun_dec, band_centre, t_ref, light_level, extra)
    t = lap("images", t)
    # ---- catalogue
    nominal_flux_role = "flux" if cfg.separate_flux_cal else "bandpass"
    used = {f.role: cfg.calibrators[f.role] for f in plan.fields if not f.is_sun}
    cat_rows = build_catalogue(used, cfg.obs_start_utc, cfg.seed, nominal_flux_role, cfg.flux_cal_catalogue_age_days)
    cat_path = str(out / "calibrator_catalogue.csv")
    write_catalogue(cat_path, cat_rows)
    # ---- truth
    truth, arrays = build_truth(cfg, ms, spws, antennas, plan, inst, tpl, gen, grid, model, light, predictor,
                                sky_img, sky_fits, tp_info, cat_path, cat_rows, nominal_flux_role, eph_info,
                                p_angle, b0, radius, dist, t_ref, sun_ra, sun_dec, pixel)
    shutil.rmtree(work, ignore_errors=True)
    elapsed = time.time() - t_begin
    timings["total"] = round(elapsed, 3)
    size = du_bytes(ms)
    truth["generation"] = {"elapsed_s": elapsed, "timings_s": timings, "ms_bytes": size, "main_rows": nrows,
                           "casatools": casatools.version_string()}
    truth_json = str(out / "truth.json")
    save_truth(truth, arrays, truth_json)
    LOG.info("simulated %s in %.1f s: %d rows, MS %.1f MB", ms, elapsed, nrows, size / 1e6)
    return SimulatedEB(ms=ms, truth_json=truth_json, truth=truth, tp_map_fits=tp_info["fits"],
                       tp_map_image=tp_info["image"], catalogue=cat_path, sky_model=sky_img,
                       sky_model_fits=sky_fits, elapsed_s=elapsed, size_bytes=size)


def attach_ephemeris(ms: str, plan, cfg: SimConfig, eph_t: np.ndarray, sun: dict, p_eph: np.ndarray,
                     b0_eph: np.ndarray, t_ref: float, iref: int, work: Path) -> dict[str, Any]:
    """Write the topocentric ephemeris table(s), attach them and set PHASE_DIR offsets."""
    import casatools

    msx = casatools.ms()
    tb = casatools.table()
    sun_fields = plan.sun_fields
    tables: dict[int, str] = {}
    offsets: dict[int, tuple[float, float]] = {}
    if cfg.sun_field_convention == "sun_centre":
        path = eph.write_ephemeris_table(work / "Sun_topo.tab", eph_t / 86400.0, sun["ra"], sun["dec"],
                                         sun["dist_au"], sun["radvel_au_d"], p_eph, b0_eph)
        msx.open(ms, nomodify=False)
        try:
            ok = msx.addephemeris(id=0, ephemerisname=path, comment="Sun", field=[f.id for f in sun_fields])
        finally:
            msx.close()
        if not ok:
            raise RuntimeError(f"ms.addephemeris failed for {ms}")
        for f in sun_fields:
            tables[f.id] = "EPHEM0_Sun.tab"
            offsets[f.id] = eph.casa_offset(float(sun["ra"][iref]), float(sun["dec"][iref]), f.ra, f.dec)
    else:
        for k, f in enumerate(sun_fields):
            xi, eta = f.sky_offset_arcsec
            ra = np.empty(len(eph_t))
            dec = np.empty(len(eph_t))
            for j in range(len(eph_t)):
                ra[j], dec[j] = eph.tangent_to_radec(float(sun["ra"][j]), float(sun["dec"][j]), xi, eta)
            path = eph.write_ephemeris_table(work / f"{f.name}_topo.tab", eph_t / 86400.0, ra, dec, sun["dist_au"],
                                             sun["radvel_au_d"], p_eph, b0_eph, name=f.name)
            msx.open(ms, nomodify=False)
            try:
                ok = msx.addephemeris(id=k, ephemerisname=path, comment=f.name, field=[f.id])
            finally:
                msx.close()
            if not ok:
                raise RuntimeError(f"ms.addephemeris failed for {ms} field {f.name}")
            tables[f.id] = f"EPHEM{k}_{f.name}.tab"
            offsets[f.id] = eph.casa_offset(float(ra[iref]), float(dec[iref]), f.ra, f.dec)
    tb.open(ms + "/FIELD", nomodify=False)
    try:
        for col in ("PHASE_DIR", "DELAY_DIR", "REFERENCE_DIR"):
            d = tb.getcol(col)
            for fid, (lon, lat) in offsets.items():
                d[0, 0, fid] = lon
                d[1, 0, fid] = lat
            tb.putcol(col, d)
        tb.putcol("TIME", np.array([t_ref if plan.fields[i].is_sun else tb.getcell("TIME", i)
                                    for i in range(tb.nrows())]))
    finally:
        tb.close()
    return {"convention": cfg.sun_field_convention, "tables": {str(k): v for k, v in tables.items()},
            "offsets_rad": {str(k): list(v) for k, v in offsets.items()},
            "t_ref_mjd_s": t_ref, "step_s": cfg.ephemeris_step_s,
            "mjd_range": [float(eph_t[0] / 86400.0), float(eph_t[-1] / 86400.0)],
            "frame": "ICRF/J2000 astrometric, topocentric ALMA (parallax included)"}


def build_truth(cfg, ms, spws, antennas, plan, inst: Instrument, tpl: Template, gen: VisibilityGenerator, grid,
                model: SunModel, light, predictor, sky_img, sky_fits, tp_info, cat_path, cat_rows,
                nominal_flux_role, eph_info, p_angle, b0, radius, dist, t_ref, sun_ra, sun_dec, pixel):
    """The truth dictionary and its arrays (see :mod:`.truth`)."""
    t0 = plan.start_mjd_s
    sci = inst.science_spws
    arrays: dict[str, np.ndarray] = {}
    # ---- scans and fields
    scans = []
    atm_scan_for = {}
    mids = np.array([t0 + 0.5 * (sc.start_s + sc.end_s) for sc in plan.scans]) / 86400.0
    elev = {}
    for f in plan.fields:
        elev[f.id] = eph.elevation_deg(f.ra, f.dec, mids)
    for k, sc in enumerate(plan.scans):
        el = float(elev[sc.subscans[0].field_id][k])
        if el < 20.0:
            LOG.warning("scan %d on %s at elevation %.1f deg", sc.number, plan.fields[sc.subscans[0].field_id].name, el)
        a = plan.atm_scan_for(sc)
        atm_scan_for[sc.number] = a
        scans.append({"elevation_deg": el,
            "number": sc.number, "kind": sc.kind, "setup": sc.setup, "extra": sc.extra,
            "field_ids": sc.field_ids, "intents": sc.intents,
            "start_mjd_s": t0 + sc.start_s, "end_mjd_s": t0 + sc.end_s, "atm_scan": a,
            "subscans": [{"number": s.number, "index": s.index, "kind": s.kind, "obs_mode": s.obs_mode,
                          "intents": s.intents, "field_id": s.field_id, "pointing": s.pointing,
                          "start_mjd_s": t0 + s.start_s, "end_mjd_s": t0 + s.end_s,
                          "n_integrations": int(round((s.end_s - s.start_s) / cfg.integration_s))}
                         for s in sc.subscans]})
    fields = []
    for f in plan.fields:
        intents: list[str] = []
        for s in plan.subscans:
            if s.field_id == f.id:
                for i in s.intents:
                    if i not in intents:
                        intents.append(i)
        fields.append({"id": f.id, "name": f.name, "role": f.role, "intents": intents, "is_ephemeris": f.is_sun,
                       "offset_arcsec": list(f.sky_offset_arcsec) if f.is_sun else None,
                       "hp_arcsec": list(f.hp_arcsec) if f.is_sun else None,
                       "pointing": f.pointing, "ra_deg": math.degrees(f.ra), "dec_deg": math.degrees(f.dec),
                       "ephemeris_offset_rad": eph_info["offsets_rad"].get(str(f.id)),
                       "ephemeris_table": eph_info["tables"].get(str(f.id))})
    sci_scans = [s for s in plan.scans if s.kind == "science"]
    atm_for_science = {str(s.number): atm_scan_for[s.number] for s in sci_scans}
    # ---- Tsys
    arrays["tsys"] = inst.tsys
    arrays["trx"] = inst.trx
    arrays["tsky"] = inst.tsky
    arrays["tau"] = inst.tau
    atm_index_for_scan = {str(sc.number): inst.atm_for_scan(sc.number) for sc in plan.scans if sc.setup == "main"}
    names = [a.name for a in antennas]
    tsys_truth = {
        "array": "tsys", "axes": ["atm", "antenna", "pol", "baseband", "channel"], "unit": "K",
        "atm_scans": inst.atm_scans, "atm_index_for_scan": atm_index_for_scan,
        "atm_scan_for_scan": {str(k): v for k, v in atm_scan_for.items()},
        "rule": "Tsys of the nearest preceding ATM scan on the same source (any Sun pointing counts as the Sun); "
                "first following one if none precedes",
        "elevation_deg": {str(k): v for k, v in inst.elevations.items()},
        "detuned_antenna": names[inst.detuned_antenna],
        "median_K": {names[i]: float(np.median(inst.tsys[:, i])) for i in range(len(names))},
        "model": "Tsys = (Trx + Tsky) exp(tau/sin(el)); Tsky = 270 K (1 - exp(-tau/sin el)) + 2.73 K exp(-tau/sin el)",
    }
    # ---- Tant, SQLD
    arrays["tant"] = inst.tant
    tant: dict[str, Any] = {}
    for i, nm in enumerate(names):
        tant[nm] = {}
        for p, pol in enumerate(POL_NAMES):
            tant[nm][pol] = {}
            for b in range(inst.nbb):
                d: dict[str, dict[str, float]] = {}
                for sc in sci_scans:
                    d[str(sc.number)] = {str(s.number): float(inst.tant[s.index, i, p, b])
                                         for s in sc.subscans if s.kind == "on"}
                tant[nm][pol][f"BB_{b + 1}"] = d
    sqld = np.stack([inst.sqld_power(s.index) for s in plan.subscans]) if plan.subscans else np.zeros(0)
    arrays["sqld_power"] = sqld
    arrays["sqld_det_gain"] = inst.det_gain
    arrays["p_zero"] = inst.p_zero
    loads = {nm: {str(n): {"amb": float(inst.t_amb[a, i]), "hot": float(inst.t_hot[a, i])}
                  for a, n in enumerate(inst.atm_scans)} for i, nm in enumerate(names)}
    p_zero = {nm: {pol: {f"BB_{b + 1}": float(inst.p_zero[i, p, b]) for b in range(inst.nbb)}
                   for p, pol in enumerate(POL_NAMES)} for i, nm in enumerate(names)}
    zero_scan = next((s.number for s in plan.scans if s.kind == "zero"), None)
    # ---- gains and bandpass
    for k, v in inst.gains.to_arrays().items():
        arrays[k] = v
    times = np.unique(tpl.time)
    arrays["gain_times"] = times
    arrays["gain_values"] = np.stack([inst.gains(times - t0, b) for b in range(inst.nbb)], axis=2)
    arrays["bandpass"] = inst.bandpass
    arrays["bandpass_chavg"] = inst.bandpass_chavg
    gains_truth = {
        "model": "g = A (1 + a sin(2 pi t/P + phi)) exp(i[phi0 + 2 pi nu_centre tau(t) + r t]), t = TIME - obs_start_mjd_s",
        "unit": "sqrt(K/Jy)", "arrays": ["gain_amp0", "gain_phase0", "gain_amp_a", "gain_amp_period", "gain_amp_phase",
                                         "gain_delay_a", "gain_delay_period", "gain_delay_phase", "gain_pol_rate",
                                         "gain_centre_freqs"],
        "evaluated": {"times": "gain_times", "values": "gain_values",
                      "axes": ["antenna", "pol", "baseband", "time"]},
        "jy_per_k_nominal": {nm: float(1.0 / np.mean(np.abs(inst.gains.amp0[i])) ** 2) for i, nm in enumerate(names)},
        "spw_map": {str(s.id): s.baseband - 1 for s in spws if s.role in ("science", "ch_avg")},
    }
    bp_truth = {"array": "bandpass", "axes": ["antenna", "pol", "baseband", "channel"],
                "ch_avg_array": "bandpass_chavg",
                "normalisation": "mean amplitude 1 and mean phase 0 over the SPW channels (per antenna, pol, SPW)"}
    # ---- calibrators
    cals = {}
    for f in plan.fields:
        if f.is_sun:
            continue
        c = cfg.calibrators[f.role]
        cals[c.name] = {"flux_jy": c.flux_jy, "ref_freq_hz": c.ref_freq_hz, "spectral_index": c.spectral_index,
                        "role": f.role, "field_id": f.id, "ra_deg": c.ra_deg, "dec_deg": c.dec_deg,
                        "flux_at_spw_centres_jy": {str(s.id): c.flux_jy * (s.centre_freq_hz / c.ref_freq_hz)
                                                   ** c.spectral_index for s in sci}}
    # ---- noise
    noise_sigma = {str(s.id): 1.0 / math.sqrt(2.0 * abs(float(s.chan_widths_hz[0])) * cfg.integration_s)
                   for s in spws if s.role in ("science", "ch_avg")}
    # ---- shadowing
    shadow_samples = [{"time_mjd_s": k[0], "antenna_id": k[1], "antenna": names[k[1]], "blocked_fraction": v}
                      for k, v in sorted(gen.shadow.items())]
    cross = tpl.ant1 != tpl.ant2
    dmin = float(np.min(np.hypot(tpl.uvw[0, cross], tpl.uvw[1, cross]))) if np.any(cross) else float("nan")
    shadow_truth = {"occurred": bool(shadow_samples), "samples": shadow_samples,
                    "min_projected_baseline_m": dmin,
                    "note": "blocked fraction from projected dish overlap; visibilities scaled by sqrt((1-f_i)(1-f_j))"
                    if shadow_samples else "no shadowing at this epoch/configuration (or bad_data=False)"}
    bad = list(inst.bad)
    if shadow_samples:
        by_ant: dict[int, list[float]] = {}
        for smp in shadow_samples:
            by_ant.setdefault(smp["antenna_id"], []).append(smp["time_mjd_s"])
        for a, ts in by_ant.items():
            bad.append({"type": "shadowing", "antenna": names[a], "antenna_id": a,
                        "spw_ids": [s.id for s in spws if s.role in ("science", "ch_avg")], "channels": "all",
                        "time_range_mjd_s": [min(ts) - 0.5 * cfg.integration_s, max(ts) + 0.5 * cfg.integration_s],
                        "n_samples": len(ts), "samples": "see truth['shadowing']['samples']"})
    # ---- sky
    arrays["sky_t_static"] = grid.t_static
    if grid.t_var is not None:
        arrays["sky_t_var"] = grid.t_var
    sky_truth = {"image": sky_img, "fits": sky_fits, "unit": "K",
                 "unit_note": "Rayleigh-Jeans brightness temperature; Jy/pixel = 2 k nu^2/c^2 * pixel^2 * T",
                 "source": f"user:{cfg.sky}" if cfg.sky else "default",
                 "disc_temperature_K": model.disc_k, "radius_arcsec": radius, "limb_width_arcsec": model.limb_width_arcsec,
                 "grid": {"xi0_arcsec": grid.xi0, "eta0_arcsec": grid.eta0, "pixel_arcsec": grid.pixel_arcsec,
                          "shape": list(grid.shape), "array": "sky_t_static",
                          "variable_array": "sky_t_var" if grid.t_var is not None else None,
                          "axes": "[iy (north), ix (east)]; xi = xi0 + ix*pixel east, eta = eta0 + iy*pixel north"},
                 "definition": "the model is the pixel grid (pixel-averaged analytic model), offsets from the Sun centre",
                 "ra_deg": math.degrees(sun_ra), "dec_deg": math.degrees(sun_dec)}
    lc_truth = None
    if light is not None:
        ts = np.unique(tpl.time)
        lc_truth = {"form": "exp(-0.5 ((t - t_peak)/sigma)^2)", "t_peak_mjd_s": light.t_peak_s,
                    "sigma_s": light.sigma_s, "feature": next(f.kind for f in model.features if f.variable),
                    "samples": [[float(x), float(light(x))] for x in ts[:: max(1, len(ts) // 200)]]}
    pb = {"12m": BEAMS[12.0].to_truth(), "7m": BEAMS[7.0].to_truth(),
          "baseline_beam": "product of the two voltage patterns (heterogeneous pairs)",
          "truncation": "support radius evaluated at the SPW centre frequency",
          "freq_nodes": cfg.pb_freq_nodes, "fft_pad": cfg.fft_pad,
          "uv_extent_lambda": {str(k): v for k, v in predictor.uv_extent.items()},
          "prediction": "FFT of grid x beam on a zero-padded grid, bicubic spline at (u,v) per channel; no w-term; "
                        "V = sum S_k A(r_k) exp(+2 pi i (u l + v m)) with MS UVW as stored",
          "pixel_arcsec": pixel}
    truth = {
        "schema": 1, "name": cfg.eb_name, "seed": cfg.seed, "size": cfg.size, "band": cfg.band, "ms": ms,
        "config": cfg.to_dict(),
        "obs_start_utc": mjd_seconds_to_utc(t0 + plan.scans[0].start_s), "obs_start_mjd_s": t0,
        "obs_end_utc": mjd_seconds_to_utc(t0 + plan.scans[-1].end_s), "duration_s": plan.duration_s,
        "integration_s": cfg.integration_s, "data_model": DATA_MODEL,
        "spws": [s.to_truth() for s in spws],
        "antennas": [a.to_truth() for a in antennas],
        "fields": fields, "scans": scans,
        "mosaic": bool(cfg.mosaic), "n_pointings": len(plan.sun_fields),
        "sun_field_convention": cfg.sun_field_convention,
        "sun": {"ra_deg_t_ref": math.degrees(sun_ra), "dec_deg_t_ref": math.degrees(sun_dec), "t_ref_mjd_s": t_ref,
                "t_ref_utc": mjd_seconds_to_utc(t_ref), "radius_arcsec": radius, "distance_au": dist,
                "p_angle_deg": p_angle, "b0_deg": b0, "ephemeris": eph_info,
                "tracking": "model visibilities are Sun-fixed relative to each field's phase centre; UVW are CASA's "
                            "for the fixed J2000 field direction at t_ref"},
        "atm_for_science": atm_for_science, "zero_level_scan": zero_scan,
        "tsys": tsys_truth, "tant": tant,
        "tant_model": {"array": "tant", "axes": ["subscan_index", "antenna", "pol", "baseband"], "eta": inst.eta.tolist(),
                       "pol_factor": inst.pol_factor.tolist(), "bb_factor": inst.bb_factor.tolist(),
                       "formula": "eta_i * pol_factor_ip * bb_factor_b * drift(sub-scan) * <T_B>_beam(pointing, dish)"},
        "loads": loads, "p_zero": p_zero,
        "sqld": {"array": "sqld_power", "axes": ["subscan_index", "antenna", "pol", "baseband"],
                 "detector_gain_array": "sqld_det_gain", "noise_relative": 1.0 / math.sqrt(2e9 * cfg.integration_s)
                 if cfg.noise else 0.0, "formula": "P = G (Trx_b + T_in) + P_zero"},
        "gains": gains_truth, "bandpass": bp_truth, "calibrators": cals,
        "flux_calibrator": cfg.calibrators[nominal_flux_role].name,
        "bad_data": bad, "dead_antennas": [names[d] for d in inst.dead_antennas], "shadowing": shadow_truth,
        "sky_model": sky_truth, "tp_map": tp_info,
        "catalogue": {"path": cat_path, "nominal_flux_calibrator": cfg.calibrators[nominal_flux_role].name,
                      "flux_cal_catalogue_age_days": cfg.flux_cal_catalogue_age_days,
                      "latest_vs_truth": latest_band3_ratio(cat_rows, {f.role: cfg.calibrators[f.role]
                                                                       for f in plan.fields if not f.is_sun}),
                      "rows": cat_rows},
        "features": [f.to_truth(p_angle) for f in model.features], "light_curve": lc_truth,
        "primary_beam": pb, "noise": cfg.noise, "noise_sigma": noise_sigma,
        "noise_sigma_note": "per real/imag part, correlation units, = SIGMA column",
    }
    return truth, arrays
