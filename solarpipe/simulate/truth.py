"""The truth of a simulated EB: save/load, true visibilities, corruption factors, bad-data masks.

``truth.json`` holds the scalar/structured truth (schema 1), ``truth_arrays.npz``
the arrays (gain-model parameters, gains evaluated per integration, bandpass,
Tsys/Trx/Tsky per ATM scan, Tant and noise-free SQLD powers per sub-scan, the
sky grid). Array names are listed under ``truth['arrays']``.

Helpers for tests and pipeline validation (they read the MS with casatools):

* :func:`truth_model_visibilities` -- the noise-free, uncorrupted V_ij (Jy) of
  any rows of a science or CH_AVG SPW;
* :func:`truth_corruption` -- the factor F with DATA = F V + noise,
  ``F = g_i conj(g_j) b_i conj(b_j) / sqrt(T_i T_j)`` (bad-data effects excluded);
* :func:`bad_visibility_mask` -- per science SPW, the boolean mask of injected
  bad visibilities (for flagging recall/precision).
"""
from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

LOG = logging.getLogger(__name__)

SCHEMA = 1


class _Encoder(json.JSONEncoder):
    def default(self, o):  # noqa: D401
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o)
        if isinstance(o, np.bool_):
            return bool(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        return super().default(o)


def save_truth(truth: dict[str, Any], arrays: dict[str, np.ndarray], json_path: str) -> None:
    """Write ``truth.json`` and ``truth_arrays.npz`` next to it."""
    npz = str(Path(json_path).with_name("truth_arrays.npz"))
    np.savez(npz, **arrays)
    truth["arrays"] = {"file": npz, "names": sorted(arrays)}
    with open(json_path, "w") as fh:
        json.dump(truth, fh, cls=_Encoder, indent=1, sort_keys=False)


def load_truth(path: str) -> dict[str, Any]:
    """Read ``truth.json`` (the npz arrays load lazily via :func:`truth_arrays`)."""
    with open(path) as fh:
        truth = json.load(fh)
    truth["_path"] = str(Path(path).resolve())
    npz = Path(truth.get("arrays", {}).get("file", Path(path).with_name("truth_arrays.npz")))
    if not npz.exists():
        npz = Path(path).with_name("truth_arrays.npz")
    truth.setdefault("arrays", {})["file"] = str(npz)
    return truth


@lru_cache(maxsize=8)
def _load_npz_cached(path: str, mtime_ns: int) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _load_npz(path: str) -> dict[str, np.ndarray]:
    """Arrays of an npz file, cached per (path, modification time)."""
    return _load_npz_cached(path, Path(path).stat().st_mtime_ns)


def truth_arrays(truth: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of the truth (cached per file and modification time)."""
    return _load_npz(truth["arrays"]["file"])


# ---------------------------------------------------------------- model objects from the truth
@lru_cache(maxsize=4)
def _predictor(npz_path: str, mtime_ns: int, grid_json: str, centres_json: str, nodes: int, pad: int,
               extent_json: str):
    from .predict import SkyPredictor
    from .sky import SkyGrid

    arr = _load_npz(npz_path)
    g = json.loads(grid_json)
    grid = SkyGrid(g["xi0_arcsec"], g["eta0_arcsec"], g["pixel_arcsec"], arr["sky_t_static"],
                   arr.get("sky_t_var"))
    centres = {int(k): tuple(v) for k, v in json.loads(centres_json).items()}
    extent = {int(k): v for k, v in json.loads(extent_json).items()}
    return SkyPredictor(grid, centres, nodes=nodes, pad=pad, uv_extent=extent)


def predictor_from_truth(truth: dict[str, Any]):
    """The :class:`.predict.SkyPredictor` of the EB (same grid, beams and numerics)."""
    sm = truth["sky_model"]
    centres = {str(f["id"]): f["offset_arcsec"] for f in truth["fields"] if f["role"] == "sun"}
    npz = truth["arrays"]["file"]
    return _predictor(npz, Path(npz).stat().st_mtime_ns, json.dumps(sm["grid"]), json.dumps(centres),
                      int(truth["primary_beam"]["freq_nodes"]), int(truth["primary_beam"]["fft_pad"]),
                      json.dumps(truth["primary_beam"].get("uv_extent_lambda", {})))


def gain_model_from_truth(truth: dict[str, Any]):
    """The parametric :class:`.instrument.GainModel` of the EB."""
    from .instrument import GainModel

    arr = truth_arrays(truth)
    kw = {k[len("gain_"):]: arr[k] for k in arr if k.startswith("gain_") and k != "gain_times"
          and k != "gain_values"}
    return GainModel(**kw)


def light_curve_from_truth(truth: dict[str, Any]):
    from .sky import LightCurve

    lc = truth.get("light_curve")
    if not lc:
        return None
    return LightCurve(lc["t_peak_mjd_s"], lc["sigma_s"])


# ---------------------------------------------------------------- MS access
def _ms_rows(ms_path: str, spw: int, rows: np.ndarray | None):
    import casatools

    tb = casatools.table()
    tb.open(ms_path + "/DATA_DESCRIPTION")
    dd_spw = tb.getcol("SPECTRAL_WINDOW_ID")
    tb.close()
    ddids = [i for i, s in enumerate(dd_spw) if s == spw]
    tb.open(ms_path)
    try:
        if rows is None:
            q = tb.query(f"DATA_DESC_ID IN [{','.join(map(str, ddids))}]")
            rows = q.rownumbers()
            q.close()
        rows = np.asarray(rows, dtype=np.int64)
        cols = {}
        for c in ("TIME", "ANTENNA1", "ANTENNA2", "FIELD_ID", "STATE_ID", "SCAN_NUMBER", "DATA_DESC_ID"):
            cols[c] = _getcol_rows(tb, c, rows)
        cols["UVW"] = _getcol_rows(tb, "UVW", rows)
    finally:
        tb.close()
    tb.open(ms_path + "/STATE")
    modes = tb.getcol("OBS_MODE")
    subscan = tb.getcol("SUB_SCAN")
    tb.close()
    tb.open(ms_path + "/SPECTRAL_WINDOW")
    freqs = tb.getcell("CHAN_FREQ", spw)
    tb.close()
    return rows, cols, modes, subscan, freqs


def _getcol_rows(tb, col: str, rows: np.ndarray) -> np.ndarray:
    """Column values for arbitrary row numbers (contiguous runs read in one go)."""
    if len(rows) == 0:
        return np.array([])
    out = []
    breaks = np.nonzero(np.diff(rows) != 1)[0] + 1
    for run in np.split(rows, breaks):
        out.append(tb.getcol(col, startrow=int(run[0]), nrow=len(run)))
    return np.concatenate(out, axis=-1)


def truth_model_visibilities(ms_path: str, truth: dict[str, Any], spw: int,
                             rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """True (noise-free, uncorrupted) visibilities in Jy for rows of one science/CH_AVG SPW.

    Returns ``(rows, V)`` with ``V`` of shape (2, nchan, nrow) (XX = YY = I); zero for
    autocorrelations, OFF_SOURCE, AMBIENT and HOT sub-scans.
    """
    from .predict import pair_types

    rows, cols, modes, _, freqs = _ms_rows(ms_path, spw, rows)
    n = len(rows)
    V = np.zeros((len(freqs), n), dtype=np.complex128)
    diam = np.array([a["diameter_m"] for a in truth["antennas"]])
    a1, a2 = cols["ANTENNA1"].astype(int), cols["ANTENNA2"].astype(int)
    cross = a1 != a2
    mode = modes[cols["STATE_ID"].astype(int)]
    on = np.array(["#ON_SOURCE" in m for m in mode]) & cross
    fields = {f["id"]: f for f in truth["fields"]}
    fid = cols["FIELD_ID"].astype(int)
    pred = None
    lc = light_curve_from_truth(truth)
    for f in np.unique(fid[on]):
        sel = np.nonzero(on & (fid == f))[0]
        info = fields[int(f)]
        if info["role"] == "sun":
            if pred is None:
                pred = predictor_from_truth(truth)
            u, v = cols["UVW"][0, sel], cols["UVW"][1, sel]
            pairs = pair_types(diam[a1[sel]], diam[a2[sel]])
            val = pred.predict(int(f), freqs, u, v, pairs, "static")
            if lc is not None and pred.grid.t_var is not None:
                val = val + pred.predict(int(f), freqs, u, v, pairs, "variable") * lc(cols["TIME"][sel])[None, :]
            V[:, sel] = val
        else:
            c = truth["calibrators"][info["name"]]
            V[:, sel] = (c["flux_jy"] * (np.asarray(freqs) / c["ref_freq_hz"]) ** c["spectral_index"])[:, None]
    return rows, np.repeat(V[None], 2, axis=0)


def _subscan_index(truth: dict[str, Any]) -> dict[tuple[int, int], int]:
    return {(sc["number"], ss["number"]): ss["index"] for sc in truth["scans"] for ss in sc["subscans"]}


def truth_corruption(ms_path: str, truth: dict[str, Any], spw: int,
                     rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Factor F (2, nchan, nrow) with noise-free DATA = F * V on cross-correlations.

    ``F = g_i conj(g_j) b_i conj(b_j) / sqrt(T_i T_j)`` with the truth gains, bandpass and
    T = Tsys (+ Tant on on-Sun sub-scans); injected bad data are not included.
    """
    rows, cols, modes, subscan, freqs = _ms_rows(ms_path, spw, rows)
    arr = truth_arrays(truth)
    spwinfo = next(s for s in truth["spws"] if s["id"] == spw)
    bb = spwinfo["baseband"] - 1
    chavg = spwinfo["role"] == "ch_avg"
    gm = gain_model_from_truth(truth)
    t0 = truth["obs_start_mjd_s"]
    a1, a2 = cols["ANTENNA1"].astype(int), cols["ANTENNA2"].astype(int)
    trel = cols["TIME"] - t0
    ut, tix = np.unique(trel, return_inverse=True)
    G = gm(ut, bb)
    g1, g2 = G[a1, :, tix].T, G[a2, :, tix].T
    bp = arr["bandpass"][:, :, bb, :]
    if chavg:
        bp = arr["bandpass_chavg"][:, :, bb][:, :, None]
    tsys_all = arr["tsys"][:, :, :, bb, :]
    if chavg:
        tsys_all = tsys_all.mean(axis=-1, keepdims=True)
    atm_index = {int(k): v for k, v in truth["tsys"]["atm_index_for_scan"].items()}
    sidx = _subscan_index(truth)
    scans = cols["SCAN_NUMBER"].astype(int)
    subs = subscan[cols["STATE_ID"].astype(int)]
    gidx = np.array([sidx[(s, k)] for s, k in zip(scans, subs)])
    tant = arr["tant"][gidx][:, :, :, bb]  # (n, nant, 2)
    n = len(rows)
    T1 = np.empty((2, bp.shape[-1], n))
    T2 = np.empty((2, bp.shape[-1], n))
    ai = np.array([atm_index[s] for s in scans])
    T1[:] = tsys_all[ai, a1].transpose(1, 2, 0) + tant[np.arange(n), a1].T[:, None, :]
    T2[:] = tsys_all[ai, a2].transpose(1, 2, 0) + tant[np.arange(n), a2].T[:, None, :]
    F = (g1 * np.conj(g2))[:, None, :] * bp[a1].transpose(1, 2, 0) * np.conj(bp[a2].transpose(1, 2, 0)) \
        / np.sqrt(T1 * T2)
    return rows, F


def bad_visibility_mask(ms_path: str, truth: dict[str, Any], spw: int | None = None) -> dict[int, dict]:
    """Per science SPW: ``{'rows': row numbers, 'mask': bool (2, nchan, nrow)}`` of injected bad data.

    Dead antenna: all its rows (cross and auto); noisy antenna / phase jump / shadowing:
    cross-correlations of the antenna (phase jump and shadowing only inside their time
    ranges); bad channels: those channels of all cross-correlations.
    """
    spws = [s["id"] for s in truth["spws"] if s["role"] == "science"] if spw is None else [spw]
    out: dict[int, dict] = {}
    shadow = truth.get("shadowing", {}).get("samples", [])
    for s in spws:
        rows, cols, _, _, freqs = _ms_rows(ms_path, s, None)
        n, nchan = len(rows), len(freqs)
        mask = np.zeros((2, nchan, n), bool)
        a1, a2 = cols["ANTENNA1"].astype(int), cols["ANTENNA2"].astype(int)
        t = cols["TIME"]
        cross = a1 != a2
        for item in truth.get("bad_data", []):
            typ = item["type"]
            if s not in item.get("spw_ids", [s]):
                continue
            t0, t1 = item.get("time_range_mjd_s", [-np.inf, np.inf])
            inwin = (t >= t0 - 1e-3) & (t <= t1 + 1e-3)
            if typ == "dead_antenna":
                sel = (a1 == item["antenna_id"]) | (a2 == item["antenna_id"])
                mask[:, :, sel & inwin] = True
            elif typ in ("noisy_antenna", "phase_jump"):
                sel = cross & ((a1 == item["antenna_id"]) | (a2 == item["antenna_id"])) & inwin
                if typ == "phase_jump":
                    sel &= cols["SCAN_NUMBER"] == item["scan"]
                mask[:, :, sel] = True
            elif typ == "bad_channels":
                sel = cross & inwin
                for c in item["channels"]:
                    mask[:, c, sel] = True
        if shadow:
            keys = {(round(x["time_mjd_s"], 3), x["antenna_id"]) for x in shadow}
            tt = np.round(t, 3)
            for k in range(n):
                if cross[k] and ((tt[k], a1[k]) in keys or (tt[k], a2[k]) in keys):
                    mask[:, :, k] = True
        out[s] = {"rows": rows, "mask": mask}
    return out


def truth_tant(truth: dict[str, Any], antenna: str, pol: str, baseband: int, scan: int, subscan: int) -> float:
    """Injected Tant (K) for an antenna name, 'XX'/'YY', baseband 1..4, scan and sub-scan numbers."""
    return float(truth["tant"][antenna][pol][f"BB_{baseband}"][str(scan)][str(subscan)])


# ---------------------------------------------------------------- truth on an image grid
def truth_sky_convolved(truth: dict[str, Any], bmaj_arcsec: float, bmin_arcsec: float, bpa_deg: float,
                        component: str = "static") -> np.ndarray:
    """The truth sky grid (K, axes [north, east]) convolved with an elliptical Gaussian
    beam (FWHM arcsec; position angle from north through east), peak-normalised so a
    uniform brightness is unchanged (what an image restored with that beam shows)."""
    from scipy.signal import fftconvolve

    g = truth["sky_model"]["grid"]
    arr = truth_arrays(truth)[g["array"] if component == "static" else g["variable_array"]]
    pix = float(g["pixel_arcsec"])
    s_maj, s_min = bmaj_arcsec / 2.3548 / pix, bmin_arcsec / 2.3548 / pix
    half = int(np.ceil(4 * s_maj))
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(float)  # yy north, xx east
    pa = np.radians(bpa_deg)
    major = xx * np.sin(pa) + yy * np.cos(pa)
    minor = xx * np.cos(pa) - yy * np.sin(pa)
    kernel = np.exp(-0.5 * ((major / s_maj) ** 2 + (minor / s_min) ** 2))
    kernel /= kernel.sum()
    padded = np.pad(arr, half, mode="edge")
    return fftconvolve(padded, kernel, mode="same")[half:-half, half:-half]


def truth_on_helioprojective_image(truth: dict[str, Any], fits_path: str | Path,
                                   component: str = "static") -> tuple[np.ndarray, np.ndarray]:
    """(truth convolved with the FITS's restoring beam, the FITS data), both in K on the
    FITS pixels (numpy order [y, x]). Pixel positions come from the FITS's own
    helioprojective WCS, so a wrong WCS shows up as a mismatch."""
    from astropy.io import fits
    from astropy.wcs import WCS
    from scipy.ndimage import map_coordinates

    from .ephemeris import hp_to_sky

    with fits.open(fits_path) as hdul:
        hdr = hdul[0].header
        data = np.asarray(hdul[0].data, float)
    while data.ndim > 2:
        data = data[0]
    wcs = WCS(hdr).celestial
    ny, nx = data.shape
    py, px = np.mgrid[0:ny, 0:nx]
    tx, ty = wcs.pixel_to_world_values(px, py)
    if str(wcs.wcs.cunit[0]) == "deg":
        tx, ty = tx * 3600.0, ty * 3600.0
    tx = np.where(tx > 180 * 3600, tx - 360 * 3600, tx)
    xi, eta = hp_to_sky(tx, ty, float(hdr.get("SOLAR_P", truth["sun"]["p_angle_deg"])))
    conv = truth_sky_convolved(truth, hdr["BMAJ"] * 3600, hdr["BMIN"] * 3600, hdr["BPA"], component)
    g = truth["sky_model"]["grid"]
    ix = (np.asarray(xi) - g["xi0_arcsec"]) / g["pixel_arcsec"]
    iy = (np.asarray(eta) - g["eta0_arcsec"]) / g["pixel_arcsec"]
    model = map_coordinates(conv, [iy, ix], order=1, mode="nearest")
    return model, data


def image_truth_correlation(truth: dict[str, Any], fits_kelvin: str | Path, pb_fits: str | Path,
                            pb_level: float = 0.5) -> dict[str, float]:
    """How well a kelvin/helioprojective Sun image reproduces the truth: the Pearson
    correlation with the truth convolved with the image's restoring beam, both with
    their mean removed, over the pixels where the primary beam is >= ``pb_level``;
    also the slope of image on truth (the fraction of the features' contrast recovered)."""
    from astropy.io import fits

    model, data = truth_on_helioprojective_image(truth, fits_kelvin)
    pb = np.squeeze(fits.getdata(str(pb_fits)))
    sel = (pb >= pb_level) & np.isfinite(data)
    a = data[sel] - data[sel].mean()
    b = model[sel] - model[sel].mean()
    corr = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    return {"corr": corr, "slope": float((a * b).sum() / (b * b).sum()), "n_pixels": int(sel.sum()),
            "image_std_k": float(a.std()), "truth_std_k": float(b.std())}


def write_truth_visibilities(ms_path: str | Path, truth: dict[str, Any]) -> int:
    """Overwrite DATA of a Sun-only MS (e.g. a copy of hsol_imaging's split, channel-averaged
    imaging MS) with the true sky visibilities: no noise, no corruption, no calibration
    error, the same rows, uv coverage and weights. Fields are matched by name. Imaging
    these data separates what imaging loses from what calibration loses. Returns the
    number of rows written."""
    import casatools

    from .predict import pair_types

    ms_path = str(ms_path)
    tb = casatools.table()
    tb.open(ms_path + "/DATA_DESCRIPTION")
    dd_spw = tb.getcol("SPECTRAL_WINDOW_ID")
    tb.close()
    tb.open(ms_path + "/SPECTRAL_WINDOW")
    freqs = [np.asarray(tb.getcell("CHAN_FREQ", i)) for i in range(tb.nrows())]
    tb.close()
    tb.open(ms_path + "/FIELD")
    field_names = list(tb.getcol("NAME"))
    tb.close()
    tb.open(ms_path + "/ANTENNA")
    ant_names = list(tb.getcol("NAME"))
    tb.close()
    truth_diam = {a["name"]: a["diameter_m"] for a in truth["antennas"]}
    diam = np.array([truth_diam[n] for n in ant_names])
    truth_field = {f["name"]: f["id"] for f in truth["fields"] if f["role"] == "sun"}
    pred = predictor_from_truth(truth)
    lc = light_curve_from_truth(truth)
    tb.open(ms_path, nomodify=False)
    try:
        data = tb.getcol("DATA")
        ddid, fid = tb.getcol("DATA_DESC_ID"), tb.getcol("FIELD_ID")
        uvw, times = tb.getcol("UVW"), tb.getcol("TIME")
        a1, a2 = tb.getcol("ANTENNA1"), tb.getcol("ANTENNA2")
        data[:] = 0.0
        for dd in np.unique(ddid):
            for f in np.unique(fid[ddid == dd]):
                sel = np.nonzero((ddid == dd) & (fid == f) & (a1 != a2))[0]
                if field_names[f] not in truth_field:
                    raise ValueError(f"{ms_path}: field {field_names[f]!r} is not a Sun field of the truth")
                args = (truth_field[field_names[f]], freqs[dd_spw[dd]], uvw[0, sel], uvw[1, sel],
                        pair_types(diam[a1[sel]], diam[a2[sel]]))
                vis = pred.predict(*args, "static")
                if lc is not None and pred.grid.t_var is not None:
                    vis = vis + pred.predict(*args, "variable") * lc(times[sel])[None, :]
                for p in range(data.shape[0]):
                    data[p][:, sel] = vis
        tb.putcol("DATA", data)
    finally:
        tb.close()
    return int(len(ddid))
