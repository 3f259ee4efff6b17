"""The QA2 report of a run: every stage's QA scores and metrics, machine-readable
(JSON and an XML twin, in the spirit of the ALMA pipeline's AQUA report) and a
one-page human summary (HTML) with the verdict per stage.

Built from the context's stage records (plain dicts), so it needs no CASA.
"""
from __future__ import annotations

import datetime as _dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from .qa import colour, qa2_verdict

REPORT_SCHEMA = 1


def stage_entry(stage: dict[str, Any]) -> dict[str, Any]:
    """One stage of the report: status, representative score, verdict, every score and metric."""
    scores = list(stage.get("results", {}).get("qa", []))
    failed = stage.get("status") == "failed"
    values = [q["score"] for q in scores] + ([0.0] if failed else [])
    rep = min(values) if values else None
    return {
        "number": stage["number"], "task": stage["task"], "status": stage.get("status", ""),
        "duration_s": stage.get("duration_s"), "representative_score": rep, "colour": colour(rep),
        "verdict": qa2_verdict(rep, failed),
        "scores": [{**q, "colour": colour(q["score"])} for q in sorted(scores, key=lambda q: q["score"])],
        "metrics": {q["metric_name"]: q.get("metric_value") for q in scores if q.get("metric_name")},
        "error": stage.get("error"),
    }


def build_report(context: dict[str, Any], extra_stages: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """The report of a context (``Context.to_dict()``), plus stages not yet in it (the
    export stage writing the report)."""
    runs = context.get("observing_runs") or [{}]
    run = runs[0]
    stages = [stage_entry(s) for s in [*context.get("stages", []), *extra_stages]]
    reps = [s["representative_score"] for s in stages if s["representative_score"] is not None]
    overall = min(reps) if reps else None
    return {
        "report": "solarpipe QA2 report", "schema": REPORT_SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "eb": run.get("name", ""), "pipeline_version": context.get("pipeline_version", ""),
        "casa_versions": context.get("casa_versions", {}),
        "observation": {k: run.get(k) for k in ("band", "mosaic", "ephemeris_target") if k in run},
        "overall": {"representative_score": overall, "colour": colour(overall),
                    "verdict": qa2_verdict(overall, any(s["status"] == "failed" for s in stages))},
        "stages": stages,
    }


def report_xml(report: dict[str, Any]) -> str:
    """The XML twin of the report (AQUA-like: QaSummary, then QaPerStage with every score)."""
    root = ET.Element("SolarpipeQA2Report", schema=str(report["schema"]))
    info = ET.SubElement(root, "ProjectStructure")
    for key in ("eb", "pipeline_version", "created"):
        ET.SubElement(info, key).text = str(report[key])
    for name, version in report["casa_versions"].items():
        ET.SubElement(info, "casa", package=name, version=str(version))
    ov = report["overall"]
    ET.SubElement(root, "QaSummary", Score=_num(ov["representative_score"]), Colour=ov["colour"],
                  Verdict=ov["verdict"])
    per_stage = ET.SubElement(root, "QaPerStage")
    for s in report["stages"]:
        st = ET.SubElement(per_stage, "Stage", Number=str(s["number"]), Name=s["task"], Status=s["status"],
                           Duration=_num(s["duration_s"]), Score=_num(s["representative_score"]),
                           Colour=s["colour"], Verdict=s["verdict"])
        if s["error"]:
            ET.SubElement(st, "Error").text = s["error"]
        for q in s["scores"]:
            sc = ET.SubElement(st, "Score", Value=_num(q["score"]), Colour=q["colour"], Topic=q.get("topic", ""),
                               Reason=q["shortmsg"])
            ET.SubElement(sc, "LongMessage").text = q.get("longmsg", "")
            if q.get("metric_name"):
                ET.SubElement(sc, "Metric", Name=q["metric_name"], Value=_num(q.get("metric_value")),
                              Units=q.get("metric_units", ""))
            for k, v in (q.get("applies_to") or {}).items():
                ET.SubElement(sc, "AppliesTo", Key=str(k), Value=str(v))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def report_html(report: dict[str, Any]) -> str:
    """The one-page human summary: overall verdict, then one row per stage."""
    from .weblog.render import template_environment

    env, _ = template_environment()
    return env.get_template("qa2_summary.html").render(report=report)


def write_report(report: dict[str, Any], qa_dir: Path) -> list[Path]:
    """qa2_report.json, qa2_report.xml and qa2_summary.html in ``qa_dir``."""
    qa_dir.mkdir(parents=True, exist_ok=True)
    paths = [qa_dir / "qa2_report.json", qa_dir / "qa2_report.xml", qa_dir / "qa2_summary.html"]
    paths[0].write_text(json.dumps(report, indent=1, default=str))
    paths[1].write_text(report_xml(report))
    paths[2].write_text(report_html(report))
    return paths


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
