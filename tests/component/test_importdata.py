"""hsol_importdata on a tiny simulated EB, against the simulator's truth.

The same ObservingRun must come out whether the task is called interactively,
from a recipe, or from the CLI; the raw MS must be byte-for-byte unchanged;
the weblog must be complete and self-contained; casa_commands.log valid Python.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import broken_weblog_links, tree_digest
from solarpipe.context import Context
from solarpipe.errors import BadInputError

TRUTH_ROLE = {"science": ("science", True), "ch_avg": ("ch_avg", True), "sqld": ("sqld", True),
              "sqld_zero": ("sqld", False), "wvr": ("wvr", True)}


def _run_summary(run) -> dict:
    """What must be identical between the three ways in (paths excluded)."""
    d = run.to_dict()
    for key in ("vis", "source_vis"):
        d.pop(key)
    return d


def check_against_truth(run, truth: dict) -> None:
    assert run.band == truth["band"]
    assert run.mosaic == truth["mosaic"]
    # SPWs: role from name, baseband, channel count
    for t in truth["spws"]:
        spw = run.spws[t["id"]]
        assert spw.name == t["name"]
        role, sci_setup = TRUTH_ROLE[t["role"]]
        assert spw.role == role, (spw.name, spw.role, t["role"])
        if role == "sqld":
            assert spw.science_setup == sci_setup, spw.name
        assert spw.nchan == t["nchan"]
        if t.get("baseband"):
            assert spw.baseband == t["baseband"]
    # antennas
    assert [a.name for a in run.antennas] == [a["name"] for a in truth["antennas"]]
    for a, t in zip(run.antennas, truth["antennas"]):
        assert a.array == ("12m" if t["diameter_m"] > 10 else "7m")
    # fields and roles
    assert [f.name for f in run.fields] == [f["name"] for f in truth["fields"]]
    for f, t in zip(run.fields, truth["fields"]):
        assert t["role"] in f.roles, (f.name, f.roles, t["role"])
        if t["role"] == "sun":
            assert f.is_ephemeris == t.get("is_ephemeris", True)
    assert run.ephemeris_target
    # scans, intents, sub-scans
    assert [s.number for s in run.scans] == [s["number"] for s in truth["scans"]]
    for s, t in zip(run.scans, truth["scans"]):
        modes = {i for tss in t["subscans"] for i in tss["obs_mode"].split(",")}
        assert set(s.intents) == modes, s.number
        assert {i.split("#")[0] for i in s.intents} == set(t["intents"]), s.number
        assert sorted(s.field_ids) == sorted(t["field_ids"]), s.number
        assert [ss.number for ss in s.subscans] == [ss["number"] for ss in t["subscans"]], s.number
        for ss, tss in zip(s.subscans, t["subscans"]):
            assert set(ss.intents) == set(tss["obs_mode"].split(",")), (s.number, ss.number)
            assert ss.field_ids == [tss["field_id"]], (s.number, ss.number)
            # ObservingRun times are integration centres; truth gives sub-scan edges
            half = truth["integration_s"] / 2
            assert abs(ss.start_mjd_s - (tss["start_mjd_s"] + half)) < 1e-3, (s.number, ss.number)
            assert abs(ss.end_mjd_s - (tss["end_mjd_s"] - half)) < 1e-3, (s.number, ss.number)
    assert run.subtables["SYSCAL"] and run.subtables["CALDEVICE"] and run.subtables["SYSPOWER"]


@pytest.fixture(scope="module")
def three_ways(tiny_eb, tmp_path_factory):
    """Run importdata interactively, from a recipe (Python) and from the CLI."""
    from solarpipe import hsol_importdata
    from solarpipe.recipe import load_recipe
    from solarpipe.runner import new_context, run_recipe

    raw = Path(tiny_eb.ms)
    before = tree_digest(raw)
    base = tmp_path_factory.mktemp("importdata")
    inter = base / "interactive"
    inter.mkdir()
    hsol_importdata(vis=str(raw), workdir=str(inter))
    rec = base / "recipe"
    run_recipe(load_recipe("hsol_import"), new_context(rec), vis=str(raw))
    cli = base / "cli"
    out = subprocess.run([sys.executable, "-m", "solarpipe", "run", "hsol_import", "--vis", str(raw),
                          "--workdir", str(cli)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr + out.stdout
    after = tree_digest(raw)
    return {"interactive": inter, "recipe": rec, "cli": cli, "before": before, "after": after,
            "truth": tiny_eb.truth}


def test_observing_run_matches_truth(three_ways):
    run = Context.load(three_ways["interactive"]).observing_run
    check_against_truth(run, three_ways["truth"])


def test_same_result_three_ways(three_ways):
    runs = {k: _run_summary(Context.load(three_ways[k]).observing_run)
            for k in ("interactive", "recipe", "cli")}
    assert runs["interactive"] == runs["recipe"] == runs["cli"]
    qa = {k: Context.load(three_ways[k]).stages[0].results["qa"] for k in runs}
    assert qa["interactive"] == qa["recipe"] == qa["cli"]


def test_raw_ms_unchanged(three_ways):
    assert three_ways["before"] == three_ways["after"]


def test_weblog_complete_and_links_resolve(three_ways):
    for way in ("interactive", "recipe", "cli"):
        weblog = three_ways[way] / "weblog"
        assert (weblog / "index.html").exists()
        assert (weblog / "overview.html").exists()
        page = (weblog / "stage1" / "index.html").read_text()
        assert "hsol_importdata" in page
        assert "listobs" in page
        overview = (weblog / "overview.html").read_text()
        assert "Spectral windows" in overview and "FULL_RES" in overview and "sqld" in overview
        assert overview.count("<img") >= 3
        assert broken_weblog_links(weblog) == []


def test_casa_commands_log_is_valid_python(three_ways):
    for way in ("interactive", "recipe", "cli"):
        text = (three_ways[way] / "casa_commands.log").read_text()
        tree = ast.parse(text)
        calls = [n.value.func for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
        names = [getattr(c, "id", getattr(c, "attr", "")) for c in calls]
        assert "listobs" in names and "copytree" in names
        assert str(three_ways[way]) not in text  # paths inside the workdir are relative


def test_importdata_qa_all_present(three_ways):
    qa = Context.load(three_ways["recipe"]).stages[0].results["qa"]
    assert min(q["score"] for q in qa) > 0.9


def test_not_an_ms_and_missing_path(tmp_path):
    from solarpipe.runner import new_context, run_stage

    ctx = new_context(tmp_path / "w")
    with pytest.raises(BadInputError, match="no such file"):
        run_stage(ctx, "hsol_importdata", {"vis": str(tmp_path / "nothing.ms")})
    (tmp_path / "empty.ms").mkdir()
    with pytest.raises(BadInputError, match="not a MeasurementSet"):
        run_stage(ctx, "hsol_importdata", {"vis": str(tmp_path / "empty.ms")})


def test_no_syscal_lowers_qa(sim_eb_factory, tmp_path):
    from solarpipe.runner import new_context, run_stage

    eb = sim_eb_factory(with_syscal=False, with_caldevice=False)
    rec = run_stage(new_context(tmp_path), "hsol_importdata", {"vis": str(eb.ms)})
    msgs = {q["shortmsg"]: q["score"] for q in rec.results["qa"]}
    assert msgs["no SYSCAL table"] <= 0.33
    assert msgs["no CALDEVICE table"] <= 0.66
    assert "hsol_ampcal" in json.dumps(rec.results["qa"])


def _edited_copy(src: Path, dst: Path, subtable: str, column: str, value) -> Path:
    import shutil

    from casatools import table

    shutil.copytree(src, dst)
    tb = table()
    tb.open(str(dst / subtable), nomodify=False)
    tb.putcol(column, [value] * tb.nrows())
    tb.close()
    return dst


def test_non_alma_and_no_sun_give_clear_errors(tiny_eb, tmp_path):
    from solarpipe.runner import new_context, run_stage

    vla = _edited_copy(Path(tiny_eb.ms), tmp_path / "vla.ms", "OBSERVATION", "TELESCOPE_NAME", "VLA")
    ctx = new_context(tmp_path / "w1")
    with pytest.raises(BadInputError, match="not ALMA"):
        run_stage(ctx, "hsol_importdata", {"vis": str(vla)})
    assert not (tmp_path / "w1" / "vla.ms").exists()  # the failed copy is removed
    nosun = _edited_copy(Path(tiny_eb.ms), tmp_path / "nosun.ms", "FIELD", "NAME", "NGC253")
    with pytest.raises(BadInputError, match="no solar target"):
        run_stage(new_context(tmp_path / "w2"), "hsol_importdata", {"vis": str(nosun)})


def test_cli_exit_codes(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "solarpipe", *args], capture_output=True,
                              text=True, timeout=300)

    out = cli("run", "hsol_import", "--vis", str(tmp_path / "missing.ms"), "--workdir", str(tmp_path / "w"))
    assert out.returncode == 2 and "missing.ms" in out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - hsol_nosuchtask: {}\n")
    out = cli("run", str(bad), "--workdir", str(tmp_path / "w"))
    assert out.returncode == 2 and "hsol_nosuchtask" in out.stderr
    assert cli("--help").returncode == 0
    assert cli("run", "--help").returncode == 0
    out = cli("tasks")
    assert out.returncode == 0 and "hsol_importdata" in out.stdout and "vis" in out.stdout
    out = cli("run", "hsol_import", "--dry-run")
    assert out.returncode == 0 and "hsol_importdata" in out.stdout


def test_mosaic_eb(sim_eb_factory, tmp_path):
    from solarpipe.runner import new_context, run_stage

    eb = sim_eb_factory(mosaic=7, bad_data=False)
    run_stage(new_context(tmp_path), "hsol_importdata", {"vis": str(eb.ms)})
    run = Context.load(tmp_path).observing_run
    check_against_truth(run, eb.truth)
    assert run.mosaic and len(run.sun_field_ids) == eb.truth["n_pointings"] == 7
    assert all(run.fields[i].name.startswith("Sun_") for i in run.sun_field_ids)
