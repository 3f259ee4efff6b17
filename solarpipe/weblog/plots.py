"""Weblog plots made at task time with matplotlib (Agg, no display needed)."""
from __future__ import annotations

import logging
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
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
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
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
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
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def observation_overview_plots(run: "ObservingRun", outdir: Path) -> list[tuple[Path, str]]:
    """The observation overview plots; returns (path, caption) pairs."""
    outdir.mkdir(parents=True, exist_ok=True)
    return [
        (scan_timeline(run, outdir / "scan_timeline.png"),
         "Scans coloured by intent, and their sub-scans (filled = on source)."),
        (antenna_positions(run, outdir / "antenna_positions.png"),
         "Antenna positions relative to the array centre; 12m circles, 7m squares."),
        (mosaic_layout(run, outdir / "mosaic_layout.png"),
         "Sun pointings with the 12m primary-beam FWHM at the mean science frequency."),
    ]
