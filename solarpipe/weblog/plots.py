"""Weblog plots made at task time with matplotlib (Agg, no display needed)."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..observing import ObservingRun

LOG = logging.getLogger(__name__)

INTENT_COLOURS = {
    "CALIBRATE_ATMOSPHERE": "#8c8c8c", "CALIBRATE_BANDPASS": "#1f77b4",
    "CALIBRATE_FLUX": "#17becf", "CALIBRATE_PHASE": "#2ca02c", "CALIBRATE_POINTING": "#9467bd",
    "OBSERVE_TARGET": "#ff7f0e", "OTHER": "#d62728",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Lay out, write and close a figure (every weblog plot ends this way)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _main_intent(intents: list[str]) -> str:
    names = [i.split("#")[0] for i in intents]
    for key in ("OBSERVE_TARGET", "CALIBRATE_BANDPASS", "CALIBRATE_FLUX", "CALIBRATE_PHASE",
                "CALIBRATE_POINTING", "CALIBRATE_ATMOSPHERE"):
        if key in names:
            return key
    return "OTHER"


def scan_timeline(run: "ObservingRun", path: Path) -> Path:
    """Scans (bars coloured by intent) and their sub-scans against UT time."""
    plt = _pyplot()
    t0 = run.start_mjd_s
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=90)
    seen = set()
    for scan in run.scans:
        key = _main_intent(scan.intents)
        label = key if key not in seen else None
        seen.add(key)
        ax.barh(0, (scan.end_mjd_s - scan.start_mjd_s) / 60, left=(scan.start_mjd_s - t0) / 60,
                height=0.6, color=INTENT_COLOURS[key], label=label, edgecolor="k", lw=0.3)
        ax.text((scan.start_mjd_s - t0) / 60, 0.4, str(scan.number), fontsize=6)
        for sub in scan.subscans:
            on = any(i.endswith("ON_SOURCE") for i in sub.intents)
            ax.barh(-1, (sub.end_mjd_s - sub.start_mjd_s) / 60 or 0.02,
                    left=(sub.start_mjd_s - t0) / 60, height=0.6,
                    color=INTENT_COLOURS[key] if on else "white", edgecolor=INTENT_COLOURS[key], lw=0.5)
    ax.set_yticks([0, -1], ["scans", "sub-scans\n(filled: on source)"])
    ax.set_xlabel("minutes since start of EB")
    ax.set_title(f"{run.name}: scans by intent")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.28))
    _save(fig, path)
    return path


def antenna_positions(run: "ObservingRun", path: Path) -> Path:
    """Antenna positions (east/north offsets from the array centre), 12m vs 7m."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=90)
    for arr, marker, colour in (("12m", "o", "#1f77b4"), ("7m", "s", "#ff7f0e"), ("other", "^", "grey")):
        ants = [a for a in run.antennas if a.array == arr]
        if not ants:
            continue
        ax.scatter([a.offset_m[0] for a in ants], [a.offset_m[1] for a in ants], marker=marker,
                   c=colour, label=f"{arr} ({len(ants)})")
        for a in ants:
            ax.annotate(a.name, (a.offset_m[0], a.offset_m[1]), fontsize=6, xytext=(2, 2),
                        textcoords="offset points")
    ax.set_xlabel("east offset (m)")
    ax.set_ylabel("north offset (m)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=8)
    ax.set_title("antenna positions")
    _save(fig, path)
    return path


def mosaic_layout(run: "ObservingRun", path: Path) -> Path:
    """Sun pointings (field centres) as offsets from their mean, with 12m primary beams."""
    import numpy as np

    plt = _pyplot()
    sun = [run.fields[i] for i in run.sun_field_ids]
    ra = np.array([f.ra_rad for f in sun])
    dec = np.array([f.dec_rad for f in sun])
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=90)
    if np.all(np.isfinite(ra)):
        ra0, dec0 = ra.mean(), dec.mean()
        x = np.degrees((ra - ra0) * np.cos(dec0)) * 3600
        y = np.degrees(dec - dec0) * 3600
        sci = [s for s in run.spws if s.role == "science"]
        freq = np.mean([s.ref_freq_hz for s in sci]) if sci else 100e9
        fwhm = np.degrees(1.13 * 2.998e8 / freq / 12.0) * 3600
        for xi, yi, f in zip(x, y, sun):
            ax.add_patch(plt.Circle((xi, yi), fwhm / 2, fill=False, color="#ff7f0e", lw=0.8))
            ax.annotate(f.name, (xi, yi), fontsize=6, ha="center")
        lim = np.max(np.abs(np.r_[x, y])) + fwhm
        ax.set_xlim(lim, -lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(f"{len(sun)} Sun pointing(s); circles: 12m PB FWHM {fwhm:.0f}\"")
    else:
        ax.text(0.5, 0.5, "field directions unavailable", ha="center", transform=ax.transAxes)
    ax.set_xlabel("RA offset (arcsec)")
    ax.set_ylabel("Dec offset (arcsec)")
    ax.set_aspect("equal")
    _save(fig, path)
    return path


def observation_overview_plots(run: "ObservingRun", outdir: Path, sun_track: dict | None = None,
                               disc: dict | None = None) -> list[tuple[Path, str]]:
    """The observation overview plots; returns (path, caption) pairs. With the Sun's
    elevation track and its pointings on the disc (solarpipe.sungeometry), those too;
    without an ephemeris the pointings are drawn as sky offsets from their mean."""
    outdir.mkdir(parents=True, exist_ok=True)
    out = [
        (scan_timeline(run, outdir / "scan_timeline.png"),
         "Scans coloured by intent, and their sub-scans (filled = on source)."),
        (antenna_positions(run, outdir / "antenna_positions.png"),
         "Antenna positions relative to the array centre; 12m circles, 7m squares."),
    ]
    if disc:
        out.append((mosaic_on_sun_disc(disc, outdir / "mosaic_on_sun.png"),
                    "Sun pointings on the solar disc (helioprojective, at the EB mid-time) with the "
                    "12m primary-beam FWHM; right: zoom on the red box."))
    else:
        out.append((mosaic_layout(run, outdir / "mosaic_layout.png"),
                    "Sun pointings with the 12m primary-beam FWHM at the mean science frequency."))
    if sun_track:
        out.append((sun_elevation(sun_track, run, outdir / "sun_elevation.png"),
                    "Sun elevation at the array centre over the EB; Sun scans shaded."))
    return out


def flag_heatmap(summary: dict, run: "ObservingRun", path: Path) -> Path:
    """Flagged fraction per antenna x science SPW, from a flagdata summary with spw:antenna
    breakdown if present, else the per-antenna and per-SPW margins' product shape."""
    import numpy as np

    plt = _pyplot()
    ants = [a.name for a in run.antennas]
    spws = run.science_spw_ids
    grid = np.full((len(ants), len(spws)), np.nan)
    per = summary.get("spw:antenna") or {}
    for j, spw in enumerate(spws):
        for i, ant in enumerate(ants):
            cell = per.get(f"{spw}:{ant}") if per else None
            if cell and cell.get("total"):
                grid[i, j] = cell["flagged"] / cell["total"]
    if np.all(np.isnan(grid)):  # margins only: show per-antenna fraction in each SPW column
        for i, ant in enumerate(ants):
            a = summary.get("antenna", {}).get(ant, {})
            if a.get("total"):
                grid[i, :] = a["flagged"] / a["total"]
    fig, ax = plt.subplots(figsize=(4 + 0.4 * len(spws), 1.5 + 0.25 * len(ants)), dpi=90)
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(spws)), [str(s) for s in spws])
    ax.set_yticks(range(len(ants)), ants, fontsize=7)
    ax.set_xlabel("science SPW")
    ax.set_ylabel("antenna")
    fig.colorbar(im, ax=ax, label="flagged fraction")
    ax.set_title("flagged fraction after the stage")
    _save(fig, path)
    return path


def calibrator_before_after(plots_data: dict, outdir: Path) -> list[tuple[Path, str]]:
    """Calibrator amplitude vs channel and vs time, before and with the new flags."""
    import numpy as np

    plt = _pyplot()
    out = []
    for spw, scans in sorted(plots_data.get("spectra", {}).items()):
        fig, ax = plt.subplots(figsize=(6, 3.2), dpi=90)
        for scan, d in sorted(scans.items()):
            spec = np.array(d["before"], float)
            line, = ax.plot(spec, lw=0.8, label=f"scan {scan}")
            bad = d["flagged_channels"]
            if bad:
                ax.plot(bad, spec[bad], "x", color=line.get_color(), ms=6)
        ax.set_xlabel("channel")
        ax.set_ylabel("mean |V| (raw correlation)")
        ax.set_title(f"SPW {spw}: calibrator spectra\n(x: newly flagged channels)", fontsize=10)
        ax.legend(fontsize=6, ncol=3)
        path = outdir / f"cal_amp_vs_channel_spw{spw}.png"
        _save(fig, path)
        out.append((path, f"SPW {spw}: calibrator amplitude vs channel before flagging; "
                          "crosses mark channels flagged by this stage."))
    for spw, scans in sorted(plots_data.get("timeseries", {}).items()):
        fig, ax = plt.subplots(figsize=(6, 3.2), dpi=90)
        for scan, d in sorted(scans.items()):
            t = np.array(d["time"])
            amp = np.array(d["amp"], float)
            names = d["ant_names"]
            bad_ids = {names.index(n) for n in d["bad_antennas"]}
            a1, a2 = np.array(d["ant1"]), np.array(d["ant2"])
            is_bad = np.isin(a1, list(bad_ids)) | np.isin(a2, list(bad_ids))
            t0 = t.min()
            ax.plot((t[~is_bad] - t0) / 60, amp[~is_bad], ".", ms=1.5, color="C0")
            ax.plot((t[is_bad] - t0) / 60, amp[is_bad], ".", ms=1.5, color="C3")
        ax.set_xlabel("minutes from scan start")
        ax.set_ylabel("|V| (raw correlation)")
        ax.set_title(f"SPW {spw}: calibrator amplitude vs time\n(red: newly flagged antennas)", fontsize=10)
        path = outdir / f"cal_amp_vs_time_spw{spw}.png"
        _save(fig, path)
        out.append((path, f"SPW {spw}: calibrator amplitude vs time; red points belong to "
                          "antennas this stage flagged (after), blue are kept."))
    return out


def tant_vs_subscan(rows: list[dict], outdir: Path) -> list[tuple[Path, str]]:
    """Tant against on-Sun sub-scan, one panel per baseband, a line per antenna
    (XX solid, YY dashed): the plot analysts know from the legacy sol_tsunplot."""
    import numpy as np

    plt = _pyplot()
    on = [r for r in rows if r["on_sun"]]
    if not on:
        return []
    bbs = sorted({r["baseband"] for r in on})
    ants = sorted({r["antenna"] for r in on})
    fig, axes = plt.subplots(1, len(bbs), figsize=(3.2 * len(bbs) + 1, 3.6), dpi=90, sharey=True,
                             squeeze=False)
    keys = sorted({(r["scan"], r["subscan"]) for r in on})
    xpos = {k: i for i, k in enumerate(keys)}
    cmap = plt.get_cmap("tab20")
    for ax, bb in zip(axes[0], bbs):
        for k, ant in enumerate(ants):
            for pol, ls in (("XX", "-"), ("YY", "--")):
                pts = sorted((xpos[(r["scan"], r["subscan"])], r["tant"]) for r in on
                             if r["antenna"] == ant and r["pol"] == pol and r["baseband"] == bb)
                if pts:
                    x, y = np.array(pts).T
                    ax.plot(x, y, ls, color=cmap(k % 20), lw=0.8,
                            label=ant if (pol == "XX" and bb == bbs[0]) else None)
        ax.set_title(f"BB_{bb}")
        ax.set_xlabel("on-Sun sub-scan (EB order)")
    axes[0][0].set_ylabel("Tant (K)")
    fig.legend(fontsize=6, ncol=min(8, len(ants)), loc="lower center")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    path = outdir / "tant_vs_subscan.png"
    fig.savefig(path)
    plt.close(fig)
    return [(path, "Tant per on-Sun sub-scan, per baseband; one colour per antenna, XX solid, YY dashed.")]


def tsys_spectra(tsys_table: Path, run: "ObservingRun", outdir: Path) -> list[tuple[Path, str]]:
    """Median-in-time Tsys spectrum per antenna, one panel per science SPW (flagged channels blank)."""
    import numpy as np
    from casatools import table

    plt = _pyplot()
    tb = table()
    tb.open(str(tsys_table))
    try:
        ant = tb.getcol("ANTENNA1")
        spw = tb.getcol("SPECTRAL_WINDOW_ID")
        spectra = []  # (npol, nchan) per row: FPARAM cells are (npol, nchan)
        for i in range(tb.nrows()):
            fparam = tb.getcell("FPARAM", i)
            spectra.append(np.where(tb.getcell("FLAG", i), np.nan, fparam).reshape(fparam.shape[0], -1))
    finally:
        tb.close()
    spws = sorted(set(int(s) for s in spw))
    if not spws:
        return []
    fig, axes = plt.subplots(1, len(spws), figsize=(3.2 * len(spws) + 1, 3.4), dpi=90, squeeze=False)
    names = {a.id: a.name for a in run.antennas}
    for ax, s in zip(axes[0], spws):
        for a in sorted(set(int(x) for x in ant)):
            sel = [i for i in range(len(spectra)) if spw[i] == s and ant[i] == a]
            if not sel:
                continue
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # flagged edge channels are all-NaN
                med = np.nanmedian(np.stack([spectra[i] for i in sel]), axis=0)  # (npol, nchan)
            ax.plot(med[0], lw=0.6)
            if med.shape[0] > 1:
                ax.plot(med[1], lw=0.6, ls="--")
        ax.set_title(f"SPW {s}")
        ax.set_xlabel("channel")
    axes[0][0].set_ylabel("Tsys (K)")
    fig.suptitle(f"Tsys spectra (median in time), {len(names)} antennas; XX solid, YY dashed", fontsize=9)
    path = outdir / "tsys_spectra.png"
    _save(fig, path)
    return [(path, "Tsys spectra per antenna and science SPW (median over ATM scans); gaps are flagged "
                   "edge and ozone channels.")]


def bandpass_plots(table: Path, run: "ObservingRun", outdir: Path) -> list[tuple[Path, str]]:
    """Bandpass amplitude and phase vs channel, a line per antenna, a panel per SPW."""
    import numpy as np

    from ..caltables import read_caltable

    plt = _pyplot()
    t = read_caltable(table)
    spws = sorted(set(int(s) for s in t["SPECTRAL_WINDOW_ID"]))
    out = []
    for kind in ("amp", "phase"):
        fig, axes = plt.subplots(1, len(spws), figsize=(3.2 * len(spws) + 1, 3.4), dpi=90, squeeze=False)
        for ax, s in zip(axes[0], spws):
            for i in np.flatnonzero(t["SPECTRAL_WINDOW_ID"] == s):
                g = np.where(t["flag"][i], np.nan, t["param"][i])
                y = np.abs(g) if kind == "amp" else np.degrees(np.angle(g))
                ax.plot(y[0], lw=0.5)
            ax.set_title(f"SPW {s}")
            ax.set_xlabel("channel")
        axes[0][0].set_ylabel("bandpass amplitude" if kind == "amp" else "bandpass phase (deg)")
        fig.suptitle(f"bandpass {kind} per antenna (XX)", fontsize=9)
        path = outdir / f"bandpass_{kind}.png"
        _save(fig, path)
        out.append((path, f"Bandpass {kind} vs channel, one line per antenna (XX), per science SPW."))
    return out


def gain_plots(tables: dict, run: "ObservingRun", outdir: Path) -> list[tuple[Path, str]]:
    """Gain phase (per integration) and amplitude (per scan, flux-scaled) vs time per antenna."""
    import numpy as np

    from ..caltables import read_caltable

    plt = _pyplot()
    out = []
    for key, kind in (("phase_int.g", "phase"), ("amp_scan.g", "amp")):
        path_t = tables.get(key)
        if path_t is None or not Path(path_t).exists():
            continue
        t = read_caltable(path_t)
        fig, ax = plt.subplots(figsize=(7, 3.4), dpi=90)
        t0 = run.start_mjd_s
        s0 = run.science_spw_ids[0]
        for a in sorted(set(int(x) for x in t["ANTENNA1"])):
            sel = (t["ANTENNA1"] == a) & (t["SPECTRAL_WINDOW_ID"] == s0)
            g = np.where(t["flag"][sel][:, 0, 0], np.nan, t["param"][sel][:, 0, 0])
            y = np.degrees(np.angle(g)) if kind == "phase" else np.abs(g)
            ax.plot((t["TIME"][sel] - t0) / 60, y, ".", ms=2)
        ax.set_xlabel("minutes since start of EB")
        ax.set_ylabel("gain phase (deg)" if kind == "phase" else "gain amplitude")
        ax.set_title(f"{key}: SPW {s0}, XX, one colour per antenna")
        path = outdir / f"gain_{kind}_vs_time.png"
        _save(fig, path)
        out.append((path, f"Gain {kind} vs time ({key}), SPW {s0}, XX, all antennas."))
    return out


def calibrated_plots(run: "ObservingRun", outdir: Path, max_rows: int = 200000) -> list[tuple[Path, str]]:
    """Calibrated amplitude vs uv-distance (calibrators and Sun) and vs time (calibrators)."""
    import numpy as np
    from casatools import table

    from ..msutil import ddid_of_spw

    plt = _pyplot()
    dd = ddid_of_spw(run.vis)[run.science_spw_ids[0]]
    tb = table()
    tb.open(run.vis)
    try:
        q = tb.query(f"DATA_DESC_ID=={dd} && ANTENNA1!=ANTENNA2", columns="CORRECTED_DATA,FLAG,UVW,TIME,FIELD_ID")
        try:
            n = min(q.nrows(), max_rows)
            data = q.getcol("CORRECTED_DATA", 0, n)
            flag = q.getcol("FLAG", 0, n)
            uvw = q.getcol("UVW", 0, n)
            time = q.getcol("TIME", 0, n)
            fid = q.getcol("FIELD_ID", 0, n)
        finally:
            q.close()
    finally:
        tb.close()
    with np.errstate(invalid="ignore"):
        amp = np.abs(np.nanmean(np.where(flag, np.nan, data), axis=(0, 1)))
    uvd = np.hypot(uvw[0], uvw[1])
    cal = np.isin(fid, run.field_ids("bandpass") + run.field_ids("phase") + run.field_ids("flux"))
    sun = np.isin(fid, run.sun_field_ids)
    out = []
    for name, sel in (("calibrators", cal), ("sun", sun)):
        if not sel.any():
            continue
        fig, ax = plt.subplots(figsize=(6, 3.4), dpi=90)
        ax.plot(uvd[sel], amp[sel], ".", ms=1)
        ax.set_xlabel("uv distance (m)")
        ax.set_ylabel("calibrated amplitude (Jy)")
        if name == "sun":
            ax.set_yscale("log")
        ax.set_title(f"{name}: SPW {run.science_spw_ids[0]}, channel- and pol-averaged")
        path = outdir / f"amp_vs_uvdist_{name}.png"
        _save(fig, path)
        out.append((path, f"Calibrated amplitude vs uv distance, {name}."))
    if cal.any():
        fig, ax = plt.subplots(figsize=(6, 3.4), dpi=90)
        ax.plot((time[cal] - run.start_mjd_s) / 60, amp[cal], ".", ms=1)
        ax.set_xlabel("minutes since start of EB")
        ax.set_ylabel("calibrated amplitude (Jy)")
        ax.set_title("calibrators vs time")
        path = outdir / "amp_vs_time_calibrators.png"
        _save(fig, path)
        out.append((path, "Calibrated calibrator amplitude vs time."))
    return out


def image_thumbnails(img: dict, outdir: Path) -> list[tuple[Path, str]]:
    """Image (K for the Sun, Jy/beam for calibrators) with beam and colour bar, the residual,
    and the primary beam."""
    import numpy as np
    from matplotlib.patches import Ellipse

    from ..fitsio import casa_image_plane
    from ..heuristics.imaging import jy_per_beam_to_kelvin

    plt = _pyplot()
    out = []
    base = img["imagename"]
    for suffix, label in ((".image.pbcor", "image"), (".residual", "residual"), (".pb", "primary beam")):
        if not Path(base + suffix).exists():
            continue
        try:
            plane = casa_image_plane(base + suffix)
        except Exception:  # noqa: BLE001 - a missing product is shown as missing
            continue
        data = plane["data"].T
        cell = abs(plane["cdelt_arcsec"][0])
        unit = "Jy/beam"
        if img["kind"] == "sun" and suffix != ".pb":
            data = data * jy_per_beam_to_kelvin(img["freq_hz"], img["beam_arcsec"][0], img["beam_arcsec"][1])
            unit = "K (RJ)"
        if suffix == ".pb":
            unit = "response"
        n = data.shape[0]
        ext = [n / 2 * cell, -n / 2 * cell, -n / 2 * cell, n / 2 * cell]
        fig, ax = plt.subplots(figsize=(4.6, 4.0), dpi=90)
        finite = data[np.isfinite(data)]
        vmin, vmax = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0, 1))
        im = ax.imshow(data, origin="lower", extent=ext, cmap="inferno" if suffix != ".residual" else "RdBu_r",
                       vmin=vmin, vmax=vmax)
        fig.colorbar(im, ax=ax, label=unit)
        if suffix != ".pb":
            bmaj, bmin, bpa = img["beam_arcsec"]
            ax.add_patch(Ellipse((ext[0] * 0.85, ext[2] * 0.85), bmin, bmaj, angle=-bpa, fill=False, color="cyan"))
        ax.set_xlabel("RA offset (arcsec)")
        ax.set_ylabel("Dec offset (arcsec)")
        ax.set_title(f"{img.get('field', 'Sun')}: {label}", fontsize=9)
        path = outdir / f"{img['name']}{suffix.replace('.', '_')}.png"
        _save(fig, path)
        caption = f"{img['name']}: {label}" + (f" (beam {img['beam_arcsec'][0]:.2f}\" x {img['beam_arcsec'][1]:.2f}\")"
                                               if suffix != ".pb" else "")
        out.append((path, caption))
    return out


def feather_plots(img: dict, tp_plane: dict, disc: dict, profiles: dict, outdir: Path) -> list[tuple[Path, str]]:
    """hsol_feather: the TP map with its fitted limb and the interferometric field, radial
    profiles (TP, interferometer only, feathered) and the sky amplitudes of both in the uv-plane."""
    import numpy as np
    from matplotlib.patches import Circle

    from ..heuristics.feather import radial_profile

    plt = _pyplot()
    out = []
    # TP map, offsets from the fitted Sun centre
    data = tp_plane["data"].T
    cdx, cdy = tp_plane["cdelt_arcsec"][:2]
    ny, nx = data.shape
    ext = [(-0.5 - disc["cx"]) * cdx, (nx - 0.5 - disc["cx"]) * cdx,
           (-0.5 - disc["cy"]) * cdy, (ny - 0.5 - disc["cy"]) * cdy]
    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=90)
    im = ax.imshow(data, origin="lower", extent=ext, cmap="inferno")
    fig.colorbar(im, ax=ax, label="K (TP calibration)")
    ax.add_patch(Circle((0, 0), disc["radius_px"] * abs(cdx), fill=False, color="cyan", lw=0.8))
    e, n = img["centre_offset_arcsec"]
    ax.add_patch(Circle((e, n), 0.5 * img["cell_arcsec"] * len(profiles["feathered"]), fill=False,
                        color="white", lw=1.0))
    ax.set_xlabel("East offset from the Sun centre (arcsec)")
    ax.set_ylabel("North offset (arcsec)")
    ax.set_title(f"TP map, fitted limb (cyan), imaged field (white); shift "
                 f"{img['tp_shift_arcsec'][0]:.1f}\", {img['tp_shift_arcsec'][1]:.1f}\"", fontsize=8)
    path = outdir / f"{img['name']}_tp_map.png"
    _save(fig, path)
    out.append((path, f"TP map {Path(img['tp_map']).name}: fitted limb and the interferometric field"))
    # radial profiles around the image centre
    fig, ax = plt.subplots(figsize=(5.0, 3.4), dpi=90)
    step = max(profiles["cell"] * 4, img["beam_arcsec"][0])
    for key, colour in (("tp", "tab:green"), ("interferometer", "tab:blue"), ("feathered", "tab:red")):
        r, m = radial_profile(np.asarray(profiles[key], float), profiles["centre"], profiles["cell"], step)
        ax.plot(r, m, color=colour, label=key.replace("tp", "TP (regridded)"))
    ax.set_xlabel("Distance from the image centre (arcsec)")
    ax.set_ylabel("Mean brightness (K, RJ)")
    ax.legend(fontsize=8)
    path = outdir / f"{img['name']}_radial.png"
    _save(fig, path)
    out.append((path, "Azimuthally averaged brightness: TP, interferometer only, feathered"))
    # uv-plane amplitudes
    prof = img["overlap"].get("profile")
    if prof:
        fig, ax = plt.subplots(figsize=(5.0, 3.4), dpi=90)
        uv = np.asarray(prof["uv_m"], float)
        for key, colour in (("tp", "tab:green"), ("interferometer", "tab:blue")):
            y = np.array([np.nan if v is None else v for v in prof[key]], float)
            ax.semilogy(uv, y, color=colour, label="TP" if key == "tp" else key)
        lo, hi = img["overlap"]["uv_range_m"]
        ax.axvspan(lo, hi, color="grey", alpha=0.2, label="overlap")
        ax.set_xlabel("uv distance (m)")
        ax.set_ylabel("Sky amplitude (Jy, PB-weighted)")
        ax.set_title(f"overlap ratio interferometer/TP {img['overlap']['ratio']:.2f}", fontsize=9)
        ax.legend(fontsize=8)
        path = outdir / f"{img['name']}_uv_overlap.png"
        _save(fig, path)
        out.append((path, "Sky amplitudes of TP and interferometer vs uv distance; grey: the overlap used for QA"))
    return out


def frame_plots(frames: list[dict], cube: Path, ranking: dict, gaps: list[dict], outdir: Path,
                name: str) -> list[tuple[Path, str]]:
    """hsol_tdimaging: a strip of frames (K) spread over the series, and per-frame residual
    rms, rms contrast and beam against time with the gaps shaded."""
    import numpy as np
    from astropy.io import fits

    plt = _pyplot()
    out = []
    with fits.open(cube) as hdul:
        data = hdul[0].data  # [time, stokes, freq, y, x]
        n = data.shape[0]
        pick = sorted(set(np.linspace(0, n - 1, min(8, n)).round().astype(int)))
        planes = [data[k, 0, 0] for k in pick]
    finite = np.concatenate([p[np.isfinite(p)] for p in planes]) if planes else np.array([0.0])
    vmin, vmax = np.percentile(finite, [1, 99]) if finite.size else (0, 1)
    fig, axes = plt.subplots(1, len(pick), figsize=(1.9 * len(pick), 2.3), dpi=90, squeeze=False)
    t0 = frames[0]["mid_mjd_s"]
    for ax, k, plane in zip(axes[0], pick, planes):
        ax.imshow(plane, origin="lower", cmap="inferno", vmin=vmin, vmax=vmax)
        ax.set_title(f"#{k} t={frames[k]['mid_mjd_s'] - t0:.0f} s", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"frames (K, common scale {vmin:.0f} to {vmax:.0f})", fontsize=8)
    path = outdir / f"{name}_strip.png"
    _save(fig, path)
    out.append((path, f"{len(pick)} of {n} frames spread over the series (same colour scale)"))
    t = np.array([f["mid_mjd_s"] - t0 for f in frames])

    def col(key):
        return np.array([np.nan if f.get(key) is None else f[key] for f in frames], float)

    fig, axes = plt.subplots(3, 1, figsize=(6.0, 5.4), dpi=90, sharex=True)
    axes[0].plot(t, col("rms_jy") * 1e3, ".", ms=3)
    bad = ranking["failed"]
    if bad:
        axes[0].plot(t[bad], col("rms_jy")[bad] * 1e3, "rx", label="failed")
        axes[0].legend(fontsize=7)
    axes[0].set_ylabel("residual rms (mJy/beam)")
    axes[1].plot(t, col("contrast"), ".", ms=3)
    axes[1].set_ylabel("rms contrast")
    beam = np.array([f.get("beam_arcsec", [np.nan] * 3)[:2] for f in frames], float)
    axes[2].plot(t, beam[:, 0], ".", ms=3, label="major")
    axes[2].plot(t, beam[:, 1], ".", ms=3, label="minor")
    axes[2].set_ylabel("beam (arcsec)")
    axes[2].legend(fontsize=7)
    axes[2].set_xlabel("time from the first frame (s)")
    for ax in axes:
        for g in gaps:
            ax.axvspan(g["after_s"] - t0, g["before_s"] - t0, color="grey", alpha=0.2)
    path = outdir / f"{name}_quality.png"
    _save(fig, path)
    out.append((path, "Per frame: residual rms, rms contrast (std/mean with the TP level when feathered), beam; "
                      "grey: gaps"))
    return out


def selfcal_plots(iterations: list[dict], workdir: Path, start: dict, final: dict | None,
                  outdir: Path) -> list[tuple[Path, str]]:
    """hsol_selfcal: phase solutions against time per step (one line per antenna) and the
    Sun image before and after self-calibration on one colour scale (K)."""
    import numpy as np

    from ..caltables import read_caltable
    from ..fitsio import casa_image_plane
    from ..heuristics.imaging import jy_per_beam_to_kelvin

    plt = _pyplot()
    out = []
    steps = [it for it in iterations if it.get("table") and (Path(workdir) / it["table"]).exists()]
    if steps:
        fig, axes = plt.subplots(len(steps), 1, figsize=(6.0, 2.0 * len(steps) + 0.6), dpi=90, squeeze=False)
        for ax, it in zip(axes[:, 0], steps):
            t = read_caltable(Path(workdir) / it["table"])
            if len(t["TIME"]):
                t0 = t["TIME"].min()
                ph = np.degrees(np.angle(t["param"][:, 0, 0]))
                ok = ~t["flag"][:, 0, 0]
                for ant in np.unique(t["ANTENNA1"]):
                    sel = (t["ANTENNA1"] == ant) & ok
                    ax.plot(t["TIME"][sel] - t0, ph[sel], ".", ms=2)
            ax.set_ylabel("phase (deg)")
            ax.set_title(f"step {it['step']}: solint {it['solint']}, {'kept' if it['accepted'] else 'rejected'}",
                         fontsize=8)
        axes[-1, 0].set_xlabel("time (s)")
        path = outdir / "selfcal_solutions.png"
        _save(fig, path)
        out.append((path, "Self-calibration solutions (first polarisation and SPW) per step, one colour per antenna"))
    if final:
        planes = []
        for img in (start, final):
            p = casa_image_plane(f"{img['imagename']}.image.pbcor")
            planes.append((img["name"], p["data"].T * jy_per_beam_to_kelvin(p["freq_hz"], p["bmaj"], p["bmin"])))
        finite = np.concatenate([d[np.isfinite(d)] for _, d in planes])
        vmin, vmax = np.percentile(finite, [0.5, 99.5])
        fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.8), dpi=90)
        for ax, (label, data) in zip(axes, planes):
            im = ax.imshow(data, origin="lower", cmap="inferno", vmin=vmin, vmax=vmax)
            ax.set_title(label, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(im, ax=axes, label="K (RJ), interferometer only")
        path = outdir / "selfcal_before_after.png"
        fig.savefig(path)
        plt.close(fig)
        out.append((path, "The Sun image before (left) and after (right) self-calibration, same colour scale"))
    return out


def sun_elevation(track: dict, run: "ObservingRun", path: Path) -> Path:
    """Sun elevation at the array against UT over the EB, the Sun scans shaded."""
    import matplotlib.dates as mdates
    import numpy as np

    plt = _pyplot()
    epoch = np.datetime64("1858-11-17T00:00:00")

    def to_dt(mjd_s):
        return epoch + (np.asarray(mjd_s, float) * 1e3).astype("timedelta64[ms]")

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    for i, scan in enumerate(run.scans_with_intent("OBSERVE_TARGET")):
        ax.axvspan(to_dt(scan.start_mjd_s), to_dt(scan.end_mjd_s), color=INTENT_COLOURS["OBSERVE_TARGET"],
                   alpha=0.25, lw=0, label="Sun scans" if i == 0 else None)
    ax.plot(to_dt(track["mjd_s"]), track["elevation_deg"], color="k", lw=1.5, label="Sun elevation")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_xlabel(f"UT on {str(to_dt(run.start_mjd_s))[:10]} (hh:mm)")
    ax.set_ylabel("elevation (deg)")
    ax.set_title("Sun elevation at the array centre")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _save(fig, path)
    return path


def mosaic_on_sun_disc(disc: dict, path: Path) -> Path:
    """Sun pointings (12m PB FWHM circles) on a sketch of the solar disc, helioprojective
    arcsec (solar west right, solar north up): the whole disc and a zoom on the pointings."""
    import numpy as np

    plt = _pyplot()
    tx, ty = np.asarray(disc["tx_arcsec"]), np.asarray(disc["ty_arcsec"])
    r_sun, pb = disc["radius_arcsec"], disc["pb_fwhm_arcsec"]
    fig, (full, zoom) = plt.subplots(1, 2, figsize=(9, 4.6), dpi=90)
    phi = np.linspace(0, 2 * np.pi, 361)
    for ax in (full, zoom):
        ax.fill(r_sun * np.cos(phi), r_sun * np.sin(phi), color="#fdd37a", zorder=0)
        ax.plot(r_sun * np.cos(phi), r_sun * np.sin(phi), color="#c47f00", lw=1)
        for x, y in zip(tx, ty):
            ax.add_patch(plt.Circle((x, y), pb / 2, fill=False, color="#1f4e9c", lw=0.9))
        ax.set_aspect("equal")
        ax.set_xlabel("Tx (arcsec, solar west)")
        ax.set_ylabel("Ty (arcsec, solar north)")
    lim = 1.15 * r_sun
    full.set_xlim(-lim, lim)
    full.set_ylim(-lim, lim)
    half = max(np.ptp(tx), np.ptp(ty)) / 2 + pb
    cx, cy = (tx.max() + tx.min()) / 2, (ty.max() + ty.min()) / 2
    full.add_patch(plt.Rectangle((cx - half, cy - half), 2 * half, 2 * half, fill=False, color="#d62728", lw=1))
    full.set_title(f"solar disc (R = {r_sun:.0f}\"), P = {disc['p_angle_deg']:.1f} deg")
    zoom.set_xlim(cx - half, cx + half)
    zoom.set_ylim(cy - half, cy + half)
    for name, x, y in zip(disc["names"], tx, ty):
        zoom.annotate(name, (x, y), fontsize=7, ha="center", va="center")
    zoom.set_title(f"{len(tx)} pointing(s)\ncircles: 12m PB FWHM {pb:.0f}\" at {disc['freq_ghz']:.0f} GHz",
                   fontsize=10)
    _save(fig, path)
    return path
