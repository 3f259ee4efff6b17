"""Flux-calibrator quality metric and choice; reference-antenna ranking."""
import datetime as dt

import numpy as np
import pytest

from solarpipe.heuristics import fluxcal as h
from solarpipe.heuristics.refant import rank_refants

OBS = dt.date(2017, 4, 27)


def E(name, days, flux=1.5, err=0.05, nu=91.5, alpha=-0.6):
    return h.CatalogueEntry(name, OBS - dt.timedelta(days=days), nu, flux, err, alpha, 0.1)


def test_extrapolation_and_age_penalty():
    s, sig, age = h.extrapolate(E("A", 0), 91.5, OBS)
    assert s == pytest.approx(1.5) and sig == pytest.approx(0.05) and age == 0
    s2, sig2, _ = h.extrapolate(E("A", 30), 100.0, OBS)
    assert s2 == pytest.approx(1.5 * (100 / 91.5) ** -0.6)
    assert sig2 > 0.1 * s2  # 30 days of variability = 10%


def test_stale_flux_calibrator_loses_to_recent_bandpass():
    cat = [E("FLUX", 200, flux=2.0), E("BP", 3, flux=1.2)]
    cands = [h.evaluate("FLUX", ["flux"], cat, 100, OBS), h.evaluate("BP", ["bandpass"], cat, 100, OBS)]
    assert "200 days old" in cands[0].rejected
    chosen, why = h.choose(cands)
    assert chosen.name == "BP" and "FLUX unusable" in why and "200 days" in why
    cands.append(h.evaluate("PH", ["phase"], cat + [E("PH", 1, flux=3.0, err=0.03)], 100, OBS))
    assert cands[-1].metric > cands[1].metric
    assert h.choose(cands)[0].name == "BP"  # the bandpass calibrator is the fallback


def test_nominal_kept_when_fine_and_missing_catalogue():
    cat = [E("FLUX", 5, flux=1.0), E("BP", 2, flux=1.2)]
    cands = [h.evaluate("FLUX", ["flux"], cat, 100, OBS), h.evaluate("BP", ["bandpass"], cat, 100, OBS),
             h.evaluate("PH", ["phase"], cat, 100, OBS)]
    assert cands[2].rejected == "no catalogue entry"
    chosen, why = h.choose(cands)
    assert chosen.name == "FLUX" and "nominal" in why
    assert h.choose([cands[2]])[0] is None


def test_read_catalogue(tmp_path):
    p = tmp_path / "cat.csv"
    p.write_text("# comment\nname,date,frequency_ghz,flux_jy,flux_err_jy,spectral_index,spectral_index_err\n"
                 "J1256-0547,2017-04-20,91.5,8.1,0.2,-0.55,0.05\n")
    (e,) = h.read_catalogue(p)
    assert e.name == "J1256-0547" and e.date == dt.date(2017, 4, 20) and e.spectral_index == -0.55
    p.write_text("name,date\nX,2017-01-01\n")
    with pytest.raises(ValueError, match="lacks column"):
        h.read_catalogue(p)


def test_refant_ranking():
    names = ["A", "B", "C", "D"]
    off = np.array([[0, 0], [10, 0], [300, 0], [5, 5]])
    ranked = rank_refants(names, off, [0.0, 0.0, 0.0, 1.0], diameters_m=[12, 12, 12, 12])
    assert [n for n, _ in ranked][:3] == ["A", "B", "C"] and ranked[-1][0] == "D"
    ranked = rank_refants(names, off, [0.5, 0.0, 0.0, 0.0], diameters_m=[12, 12, 12, 7])
    assert ranked[0][0] == "B"
