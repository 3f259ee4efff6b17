"""The weblog without CASA: pages rendered from a hand-made context, the stage log
excerpt, the overall verdict and the loopback server (`solarpipe weblog --serve`)."""
from __future__ import annotations

import logging
import re
import subprocess
import sys
import urllib.request

import pytest

from solarpipe.context import Context, StageRecord
from solarpipe.observing import Antenna, Field, ObservingRun, Scan, SpectralWindow, SubScan
from solarpipe.qa import QAScore, overall_verdict
from solarpipe.stagelog import StageLog
from solarpipe.weblog.render import eb_uid, qa_by_topic, render_weblog, stage_row
from solarpipe.weblog.serve import serving

T0 = 5_000_000_000.0
ON, OFF = "OBSERVE_TARGET#ON_SOURCE", "OBSERVE_TARGET#OFF_SOURCE"


def _run() -> ObservingRun:
    subs = [SubScan(1, [ON], [0], T0 + 100, T0 + 400), SubScan(2, [OFF], [0], T0 + 402, T0 + 450),
            SubScan(3, [ON], [0], T0 + 452, T0 + 652)]
    return ObservingRun(
        vis="/x/uid___A002_X1_X2.ms", source_vis="/raw/uid___A002_X1_X2.ms", name="uid___A002_X1_X2",
        telescope="ALMA", band=3, start_mjd_s=T0, end_mjd_s=T0 + 1800,
        spws=[SpectralWindow(0, "X1#ALMA_RB_03#BB_1#SW-01#FULL_RES", "science", 64, 100e9, 31.25e6, 2e9)],
        antennas=[Antenna(i, n, d, a, [0.0] * 3, [10.0 * i, 0.0, 0.0]) for i, (n, d, a) in
                  enumerate([("DA41", 12.0, "12m"), ("DV02", 12.0, "12m"), ("CM01", 7.0, "7m")])],
        fields=[Field(0, "Sun_10", [ON, OFF], ["sun"], True, 0.0, 0.0)],
        scans=[Scan(5, [ON, OFF], [0], [0], T0 + 100, T0 + 652, subscans=subs)],
        ephemeris_target=True, project="uid://A001/X1/X2", integration_s=2.0)


def _stage(number: int, task: str, scores: list[QAScore], status: str = "ok", **results) -> StageRecord:
    return StageRecord(number=number, task=task, status=status, duration_s=1.5 * number,
                       error="RuntimeError: boom" if status == "failed" else None,
                       results={"qa": [q.to_dict() for q in scores], "decisions": [], "plots": [],
                                "inputs": {}, "summary": results.pop("summary", {}), **results})


@pytest.fixture
def context(tmp_path) -> Context:
    ctx = Context(workdir=str(tmp_path), pipeline_version="0.1.0", casa_versions={"casatools": "6.7.0"})
    ctx.observing_runs = [_run()]
    log = {"lines": [{"source": "casa", "level": "WARN", "origin": "gaincal", "message": "12 of 40 solutions flagged",
                      "count": 2, "class": "warning"}], "omitted": 0, "n_warnings": 2, "n_errors": 0, "casa_log": ""}
    ctx.stages = [
        _stage(1, "hsol_importdata", [QAScore(1.0, "all inputs present")],
               summary={"sun_elevation_deg": {"start": 49.4, "end": 51.8, "min": 49.4, "max": 51.8}}),
        _stage(2, "hsol_flagdata", [QAScore(0.8, "12% flagged", topic="flagging"),
                                    QAScore(0.5, "antenna DV02 dead", topic="flagging")]),
        _stage(3, "hsol_gaincal", [QAScore(0.95, "phases ok", topic="calibration")], log=log),
        _stage(4, "hsol_imaging", [QAScore(0.0, "stage failed", topic="imaging")], status="failed"),
    ]
    return ctx


def test_time_on_source_counts_on_sun_subscans_with_their_integration():
    assert _run().time_on_source_s() == pytest.approx((300 + 2) + (200 + 2))


def test_overall_verdict_is_the_lowest_stage_colour():
    assert overall_verdict([1.0, 0.95])[0] == "green"
    assert overall_verdict([1.0, 0.8, None])[0] == "blue"
    assert overall_verdict([0.5, 1.0])[0] == "yellow"
    assert overall_verdict([0.0, 1.0])[0] == "red"
    assert overall_verdict([])[0] == "grey"


def test_by_topic_lists_lowest_scores_first(context):
    topics = {t["topic"]: t for t in qa_by_topic([stage_row(s) for s in context.stages])}
    assert [d["q"]["score"] for d in topics["flagging"]["scores"]] == [0.5, 0.8]
    assert topics["flagging"]["colour"] == "yellow" and topics["imaging"]["colour"] == "red"
    assert list(topics) == ["dataset", "flagging", "calibration", "imaging"]


def test_pages_show_summary_stages_topics_and_log(context):
    index = render_weblog(context)
    weblog = index.parent
    home = index.read_text()
    for text in ("uid://A002/X1/X2", "2 x 12m, 1 x 7m", "49.4 deg at start, 51.8 deg at end",
                 "8.4 min", "solarpipe 0.1.0", "casatools 6.7.0", "Needs attention"):
        assert text in home, text
    assert re.findall(r'data-stage="(\d+)"', home) == ["1", "2", "3", "4"]
    assert re.findall(r'data-qa-colour="(\w+)"', home) == ["green", "yellow", "green", "red"]
    bytask = (weblog / "bytask.html").read_text()
    assert "antenna DV02 dead" in bytask and "RuntimeError: boom" in bytask and "2 warning(s)" in bytask
    bytopic = (weblog / "bytopic.html").read_text()
    assert bytopic.index("antenna DV02 dead") < bytopic.index("12% flagged")
    stage3 = (weblog / "stage3" / "index.html").read_text()
    for section in ("QA", "Decisions", "Plots", "Results", "Parameters", "CASA commands", "Log"):
        assert f">{section}</h2>" in stage3, section
    assert 'class="log-warning"' in stage3 and "(&times;2)" in stage3
    assert "http://" not in home + bytask + bytopic + stage3 and "https://" not in home


def test_stage_log_keeps_warnings_joins_casa_continuations_and_caps(tmp_path):
    casa_log = tmp_path / "casa.log"
    casa_log.write_text("2026-01-01 00:00:00\tINFO\tx::\tbefore the stage\n")
    with StageLog(max_lines=3, casa_log=casa_log) as stage_log:
        with open(casa_log, "a") as fh:
            fh.write("2026-01-01 00:00:01\tINFO\tgaincal::::casa\t##### Begin Task: gaincal #####\n"
                     "2026-01-01 00:00:01\tINFO\tgaincal::\tsolving\n"
                     "2026-01-01 00:00:02\tSEVERE\tMeasTable::dUTC(Double) (file x.cc, line 1)\tLeap second table\n"
                     "2026-01-01 00:00:02\tSEVERE\tMeasTable::dUTC(Double) (file x.cc, line 1)+\tis out-of-date.\n")
        for _ in range(3):
            logging.getLogger("solarpipe.tasks.test").warning("antenna %s dead", "DV02")
        logging.getLogger("other").warning("not ours")
    ex = stage_log.excerpt()
    messages = [ln["message"] for ln in ex["lines"]]
    assert messages == ["antenna DV02 dead", "##### Begin Task: gaincal #####", "Leap second table is out-of-date."]
    assert ex["lines"][2]["class"] == "error" and ex["lines"][2]["origin"] == "MeasTable::dUTC(Double)"
    assert ex["lines"][0]["count"] == 3 and ex["n_warnings"] == 3 and ex["n_errors"] == 1
    with StageLog(max_lines=1, casa_log=casa_log) as capped:
        logging.getLogger("solarpipe").info("info line")
        logging.getLogger("solarpipe").error("error line")
    assert [ln["message"] for ln in capped.excerpt()["lines"]] == ["error line"]


def test_eb_uid_from_the_ms_name():
    assert eb_uid("uid___A002_Xc5b3f0_X0") == "uid://A002/Xc5b3f0/X0"
    assert eb_uid("my_eb") == "my_eb"


def test_server_serves_the_weblog_on_loopback(tmp_path):
    (tmp_path / "index.html").write_text("<html>solar weblog</html>")
    with serving(tmp_path) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and b"solar weblog" in resp.read()


def test_cli_weblog_serve_prints_the_url_and_serves(tmp_path):
    (tmp_path / "weblog").mkdir()
    (tmp_path / "weblog" / "index.html").write_text("<html>served</html>")
    proc = subprocess.Popen([sys.executable, "-m", "solarpipe", "weblog", "--workdir", str(tmp_path), "--serve"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/index\.html", line).group(0)
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert b"served" in resp.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_weblog_without_a_weblog_is_bad_input(tmp_path):
    out = subprocess.run([sys.executable, "-m", "solarpipe", "weblog", "--workdir", str(tmp_path), "--serve"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "no weblog" in out.stderr
