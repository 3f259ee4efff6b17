"""SPW roles, band, antennas, field roles: pure heuristics on names and numbers."""
import pytest

from solarpipe.heuristics import observation as h


@pytest.mark.parametrize("name,role", [
    ("X875823941#ALMA_RB_03#BB_1#SW-01#FULL_RES", "science"),
    ("X875823941#ALMA_RB_03#BB_2#SW-01#CH_AVG", "ch_avg"),
    ("X875823941#ALMA_RB_03#BB_3#SQLD", "sqld"),
    ("WVR#NOMINAL", "wvr"),
    ("WVR#Antenna_Based", "wvr"),
    ("spw_7", "other"),
])
def test_spw_role(name, role):
    assert h.spw_role(name) == role


def test_baseband_band_and_spec():
    name = "X123#ALMA_RB_06#BB_4#SW-01#FULL_RES"
    assert h.baseband_from_name(name) == 4
    assert h.band_of_spw(name, 1e9) == 6  # name wins over frequency
    assert h.band_of_spw("spw_0", 93e9) == 3
    assert h.band_of_spw("spw_0", 239e9) == 6
    assert h.band_from_frequency(60e9) is None
    assert h.spectral_spec_from_name(name) == "X123"
    assert h.spectral_spec_from_name("WVR#NOMINAL") == ""
    assert h.science_setup_spec([("X1#ALMA_RB_03#BB_1#SW-01#FULL_RES", "science"),
                                 ("X2#ALMA_RB_03#BB_1#SQLD", "sqld")]) == "X1"


def test_antenna_and_field_roles():
    assert h.array_of_antenna(12.0) == "12m"
    assert h.array_of_antenna(7.0) == "7m"
    assert h.array_of_antenna(25.0) == "other"
    assert h.field_roles(["OBSERVE_TARGET#ON_SOURCE", "OBSERVE_TARGET#OFF_SOURCE"], "Sun_10") == ["sun"]
    assert h.field_roles(["OBSERVE_TARGET#ON_SOURCE"], "NGC253") == ["target"]
    assert h.field_roles(["CALIBRATE_BANDPASS#ON_SOURCE", "CALIBRATE_FLUX#ON_SOURCE"],
                         "J1256-0547") == ["bandpass", "flux"]
    assert h.field_roles(["CALIBRATE_ATMOSPHERE#HOT"], "J1") == ["atmosphere"]
    assert h.is_sun_name("SUN") and h.is_sun_name("Sun_12") and not h.is_sun_name("Sunflower")
