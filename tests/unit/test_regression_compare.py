"""The regression comparator: parse, compare with tolerances, readable differences."""
import pytest

from solarpipe.regression import compare, format_figures, parse_figures


def test_round_trip_and_tolerances():
    figs = {"s3.hsol_ampcal.tant.DV01.BB_1.XX.scan8.sub2": 612.3, "s2.hsol_flagdata.fraction_after": 0.0}
    text = format_figures(figs, {"s2.hsol_flagdata.fraction_after": 0.01})
    vals, tols = parse_figures(text)
    assert vals == figs and tols == {"s2.hsol_flagdata.fraction_after": 0.01}
    assert compare(vals, vals, tols) == []


def test_perturbed_number_fails_readably():
    exp = {"a.b": 100.0, "c": 0.0, "gone": 1.0}
    got = {"a.b": 100.05, "c": 0.002, "new": 3.0}
    diffs = compare(got, exp, {"a.b": 1e-3, "c": 0.01})
    assert [d.key for d in diffs] == ["gone"]
    diffs = compare({**got, "a.b": 101.0, "gone": 1.0}, exp, {"a.b": 1e-3, "c": 0.01}, allow_new=False)
    text = "\n".join(map(str, diffs))
    assert "! a.b: expected 100, got 101" in text and "+ new" in text


def test_parse_errors_name_the_line():
    with pytest.raises(ValueError, match="line 2"):
        parse_figures("a = 1\nb = x\n", "exp.txt")
