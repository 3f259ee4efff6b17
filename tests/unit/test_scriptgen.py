"""The script generator, the manifest and the QA2 report on hand-made inputs (no CASA)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from solarpipe.errors import BadInputError
from solarpipe.manifest import verify_manifest, write_manifest
from solarpipe.qa import qa2_verdict
from solarpipe.qa2report import build_report, report_html, report_xml
from solarpipe.scriptgen import (CALIBRATION_SCRIPT, IMAGING_SCRIPT, ScriptInputs, applycal_instructions,
                                 caltables_of, decided_value_used, external_inputs, find_absolute_paths,
                                 generate_scripts,
                                 parse_commands_log)

RAW = "/data/raw/uid___A002_X1_X2.ms"

LOG = f"""# solarpipe casa_commands.log: every CASA call of the run, in order.
from casatasks import *  # noqa: F401,F403
import casatools  # noqa: F401
import shutil  # noqa: F401

# --- stage 1: hsol_importdata ---
# casatools: read every table of the raw MS once (truncation/corruption check)
# work on a copy: the raw data are never modified
shutil.copytree(src='{RAW}', dst='uid___A002_X1_X2.ms', symlinks=True)
listobs(vis='uid___A002_X1_X2.ms', listfile='weblog/stage1/listobs.txt', overwrite=True, verbose=True)

# --- stage 2: hsol_ampcal ---
gencal(vis='uid___A002_X1_X2.ms', caltable='old.tsys', caltype='tsys')

# --- stage 2: hsol_ampcal ---
# Tsys from the SYSCAL table
gencal(vis='uid___A002_X1_X2.ms', caltable='uid___A002_X1_X2.s2.tsys', caltype='tsys')
# casatools: write the time-resolved Tsys+Tant table (shipped with the products)
# shipped: uid___A002_X1_X2.s2.tsystant  (960 rows written by solarpipe)
flagdata(vis='uid___A002_X1_X2.ms', mode='summary', spw='5')
applycal(vis='uid___A002_X1_X2.ms', field='2', spw='5,7', gaintable=['uid___A002_X1_X2.s2.tsystant'], interp=['linear'], calwt=[False], flagbackup=False, applymode='calonly')

# --- stage 3: hsol_gaincal ---
gaincal(vis='uid___A002_X1_X2.ms', caltable='uid___A002_X1_X2.s3.phase.g', field='J0423-0120', solint='int', refant='DA41,DV03')
fluxscale(vis='uid___A002_X1_X2.ms', caltable='uid___A002_X1_X2.s3.phase.g', fluxtable='uid___A002_X1_X2.s3.flux.g', reference=['J0423-0120'], transfer=['J0238+1636'])

# --- stage 4: hsol_imaging ---
split(vis='uid___A002_X1_X2.ms', outputvis='uid___A002_X1_X2.s4.sun.ms', field='2', datacolumn='corrected', width=8)
# re-centre the Sun ephemeris
import math
def shift(x):
    \"\"\"a helper the pipeline ran\"\"\"
    return math.cos(x)

recentred = shift(0.5)
tclean(vis='uid___A002_X1_X2.s4.sun.ms', imagename='uid___A002_X1_X2.s4.sun', cell='0.68arcsec', imsize=[270, 270], threshold='0.0446717Jy', niter=10000)
exportfits(imagename='uid___A002_X1_X2.s4.sun.image.pbcor', fitsimage='products/sun.fits', overwrite=True)

# --- stage 5: hsol_bandpass ---
bandpass(vis='uid___A002_X1_X2.ms', caltable='failed.b')
"""


def _stage(n, task, decisions=(), status="ok", qa=()):
    return {"number": n, "task": task, "status": status, "duration_s": 1.0,
            "results": {"decisions": [dict(name=a, value=b, reason=c, by="heuristic") for a, b, c in decisions],
                        "qa": list(qa)}}


STAGES = [
    _stage(1, "hsol_importdata"),
    _stage(2, "hsol_ampcal", [("pol_pairing", "same", "the X detector measures the X chain")]),
    _stage(3, "hsol_gaincal", [("refant", ["DA41", "DV03"], "from hsol_refant"), ("solint", "inf", "SNR")]),
    _stage(4, "hsol_imaging", [("cell", 0.68, "beam / 5"), ("imsize", 270, "PB + margin"),
                               ("threshold_jy", 0.04467165667, "3 x noise"), ("width", 8, "smearing")]),
    _stage(5, "hsol_bandpass", status="failed"),
]
SCRIPT_OF = {"hsol_importdata": CALIBRATION_SCRIPT, "hsol_ampcal": CALIBRATION_SCRIPT,
             "hsol_gaincal": CALIBRATION_SCRIPT, "hsol_bandpass": CALIBRATION_SCRIPT,
             "hsol_imaging": IMAGING_SCRIPT}


def _inputs(**kw):
    return ScriptInputs(eb_name="uid___A002_X1_X2", raw_vis=RAW, stages=STAGES, script_of_task=SCRIPT_OF,
                        titles={"hsol_ampcal": "Tsys and Tant"}, shipped_archives=["calibration/x.caltables.tgz"],
                        pipeline_version="0.1.0", **kw)


def test_log_parsing_last_block_wins_and_markers():
    blocks = parse_commands_log(LOG)
    assert sorted(blocks) == [1, 2, 3, 4, 5]
    assert [c.kwargs["caltable"] for c in blocks[2].calls("gencal")] == ["uid___A002_X1_X2.s2.tsys"]
    assert blocks[2].shipped == ["uid___A002_X1_X2.s2.tsystant"]
    assert blocks[2].calls("gencal")[0].notes == ["Tsys from the SYSCAL table"]
    assert caltables_of(LOG, STAGES) == ["uid___A002_X1_X2.s2.tsys", "uid___A002_X1_X2.s2.tsystant",
                                         "uid___A002_X1_X2.s3.phase.g", "uid___A002_X1_X2.s3.flux.g"]


def test_scripts_are_portable_valid_python_in_steps():
    scripts = generate_scripts(LOG, _inputs())
    cal, img = scripts[CALIBRATION_SCRIPT], scripts[IMAGING_SCRIPT]
    for text in (cal, img):
        compile(text, "script", "exec")
        assert find_absolute_paths(text) == []
        assert "solarpipe" not in [line.split()[1] for line in text.splitlines() if line.startswith("import ")]
        assert "casa_config.measurespath = casadata.datapath" in text
        assert "thesteps = mysteps" in text
    assert "shutil.copytree(src=raw_vis, dst='uid___A002_X1_X2.ms', symlinks=True)" in cal
    assert "raw_vis = os.path.join(delivery_dir, \"raw\", 'uid___A002_X1_X2.ms')" in cal
    assert "listobs(" not in cal and "mode='summary'" not in cal  # report-only calls left out
    assert "restore_shipped('uid___A002_X1_X2.s2.tsystant')" in cal
    assert "old.tsys" not in cal and "failed.b" not in cal  # superseded block, failed stage
    assert "2: 'Tsys and Tant (hsol_ampcal)'" in cal
    assert "    3: 'hsol_gaincal (hsol_gaincal)'," in cal and "4:" not in cal.split("step_title")[1][:300]
    # decided values annotated where the call uses them (and only there)
    assert "refant='DA41,DV03',  # decided by hsol_gaincal's heuristics: from hsol_refant" in cal
    assert "solint='int',\n" in cal  # the decided solint is 'inf': not this call's
    assert "cell='0.68arcsec',  # decided by hsol_imaging's heuristics: beam / 5" in img
    assert "imsize=[270, 270],  # decided" in img and "threshold='0.0446717Jy',  # decided" in img
    # outputs removed first (never fluxscale's input table), parents created, run_code blocks verbatim
    assert "remove_outputs('uid___A002_X1_X2.s3.flux.g')" in cal
    assert "remove_outputs('uid___A002_X1_X2.s3.phase.g', " not in cal
    assert "os.makedirs('products', exist_ok=True)" in img
    assert '    def shift(x):\n        """a helper the pipeline ran"""\n        return math.cos(x)\n' in img


def test_absolute_paths_other_than_the_raw_eb_are_refused_unless_delivered():
    bad = LOG.replace("fitsimage='products/sun.fits'", "fitsimage='/home/analyst/sun.fits'")
    with pytest.raises(BadInputError, match=r"stage 4 \(hsol_imaging\).*fitsimage"):
        generate_scripts(bad, _inputs())
    tp = LOG.replace("# --- stage 5", "importfits(fitsimage='/data/tp/tp_map.fits', imagename='tp.image')\n\n# --- stage 5")
    assert external_inputs(tp, STAGES, RAW) == ["/data/tp/tp_map.fits"]
    img = generate_scripts(tp, _inputs(delivered_inputs={"/data/tp/tp_map.fits": "inputs/tp_map.fits"}))[IMAGING_SCRIPT]
    assert "importfits(fitsimage=os.path.join(delivery_dir, 'inputs/tp_map.fits'), imagename='tp.image')" in img
    with pytest.raises(BadInputError, match="imports solarpipe"):
        generate_scripts(LOG.replace("import math\n", "import math\nfrom solarpipe.heuristics import tant\n"),
                         _inputs())
    with pytest.raises(BadInputError, match="stage 2"):
        parse_commands_log(LOG.replace("# Tsys from the SYSCAL table\n", "gencal(\n"))


def test_decided_value_matching():
    assert decided_value_used(0.68, "0.68arcsec") and decided_value_used(270, [270, 270])
    assert decided_value_used(["a", "b"], "a,b") and not decided_value_used("inf", "int")
    assert not decided_value_used(0.5, "0.68arcsec") and not decided_value_used(True, "True")


def test_applycal_instructions():
    text = applycal_instructions(LOG, STAGES, "uid___A002_X1_X2")
    compile(text, "applycal", "exec")
    assert text.count("applycal(") == 1 and "s2.tsystant" in text


def test_manifest_verifies_and_catches_changes(tmp_path):
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "a.json").write_text("{}")
    (tmp_path / "b.txt").write_text("b")
    write_manifest(tmp_path, {"eb": "x"})
    assert verify_manifest(tmp_path) == []
    (tmp_path / "b.txt").write_text("c")
    (tmp_path / "extra").write_text("")
    (tmp_path / "qa" / "a.json").unlink()
    assert sorted(verify_manifest(tmp_path)) == ["b.txt: checksum differs", "extra: not in the manifest",
                                                 "qa/a.json: missing"]


def test_qa2_report_has_every_stage_with_a_verdict():
    qa = [{"score": 0.5, "shortmsg": "half", "metric_name": "m", "metric_value": 3, "topic": "calibration"},
          {"score": 1.0, "shortmsg": "ok"}]
    ctx = {"stages": [_stage(1, "hsol_importdata", qa=qa[1:]), _stage(2, "hsol_ampcal", qa=qa),
                      _stage(3, "hsol_bandpass", status="failed")],
           "observing_runs": [{"name": "uid___A002_X1_X2", "band": 3}], "pipeline_version": "0.1.0",
           "casa_versions": {"casatools": "6.7"}}
    report = build_report(ctx, [_stage(4, "hsol_exportdata", qa=qa[1:])])
    assert [(s["number"], s["verdict"]) for s in report["stages"]] == [
        (1, "pass"), (2, "semipass"), (3, "fail"), (4, "pass")]
    assert report["stages"][1]["metrics"] == {"m": 3} and report["overall"]["verdict"] == "fail"
    json.dumps(report)
    root = ET.fromstring(report_xml(report).encode())
    assert len(root.find("QaPerStage")) == 4
    html = report_html(report)
    assert html.count("<tr><td>") == 4 and "FAIL" in html


@pytest.mark.parametrize("score,failed,verdict", [(0.9, False, "pass"), (0.5, False, "semipass"),
                                                  (0.2, False, "fail"), (1.0, True, "fail"), (None, False, "n/a")])
def test_qa2_verdict(score, failed, verdict):
    assert qa2_verdict(score, failed) == verdict


def test_a_run_without_imaging_gives_an_empty_imaging_script():
    scripts = generate_scripts(LOG, ScriptInputs(eb_name="uid___A002_X1_X2", raw_vis=RAW, stages=STAGES[:3],
                                                 script_of_task=SCRIPT_OF))
    namespace: dict = {}
    body = scripts[IMAGING_SCRIPT].split("step_title = {")[1]
    exec("step_title = {" + body.replace("mysteps", "_undefined_steps"), namespace)  # no CASA needed
    assert namespace["step_title"] == {} and namespace["thesteps"] == []


def test_run_code_runs_absolute_and_records_relative(tmp_path):
    from solarpipe.casacalls import COMMANDS_LOG, CasaCalls

    def make(vis: str, factor: float) -> str:
        return f"result = ({vis!r}, {factor!r} * 2)\n"

    casa = CasaCalls(tmp_path, 3, "hsol_x")
    ns = casa.run_code(make, vis=str(tmp_path / "a.ms"), factor=0.25, _note="a python step")
    casa.ship(tmp_path / "t.tsystant", "written by solarpipe")
    assert ns["result"] == (str(tmp_path.resolve() / "a.ms"), 0.5)
    log = (tmp_path / COMMANDS_LOG).read_text()
    assert "# a python step\nresult = ('a.ms', 0.25 * 2)\n" in log and str(tmp_path) not in log
    block = parse_commands_log(log)[3]
    assert block.shipped == ["t.tsystant"] and block.items[0].code == "result = ('a.ms', 0.25 * 2)"


def test_the_scripts_never_remove_the_raw_eb(tmp_path, monkeypatch):
    """Run from the raw EB's own directory, the working copy would replace it: refused."""
    header = generate_scripts(LOG, _inputs())[CALIBRATION_SCRIPT].split("step_title = {")[0]
    helpers = header[header.index("def remove_outputs"):]
    raw = tmp_path / "uid___A002_X1_X2.ms"
    raw.mkdir()
    (tmp_path / "old.tsys").mkdir()
    monkeypatch.chdir(tmp_path)
    ns = {"os": __import__("os"), "shutil": __import__("shutil"), "tarfile": None, "raw_vis": str(raw)}
    exec(helpers, ns)
    with pytest.raises(RuntimeError, match="is the raw EB"):
        ns["remove_outputs"]("uid___A002_X1_X2.ms")
    ns["remove_outputs"]("old.tsys")
    assert raw.is_dir() and not (tmp_path / "old.tsys").exists()
