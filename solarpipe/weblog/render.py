"""Render the static weblog: home, by task, by topic, observation, one page per stage.

Rendered with Jinja2 from the packaged ``weblog_templates`` after every stage;
pages use relative links only and bundled CSS (no JavaScript, nothing from the
network), so the weblog opens offline from the file system or through
``solarpipe weblog --serve``. The pages follow the ALMA pipeline's weblog, which
ARC analysts know: a home page with the observation summary and the overall
verdict, the stages with QA colours by task and by topic, and per-stage pages
with one layout (QA, decisions, plots, results, parameters, CASA commands, log).
"""
from __future__ import annotations

import datetime as _dt
import logging
import shutil
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..casacalls import COMMANDS_LOG
from ..qa import TOPICS, colour, overall_verdict

if TYPE_CHECKING:  # pragma: no cover
    from ..context import Context, StageRecord

LOG = logging.getLogger(__name__)

#: Pages besides the stage pages: (file, template, title in the navigation bar)
PAGES = (("index.html", "index.html", "Home"), ("bytask.html", "bytask.html", "By task"),
         ("bytopic.html", "bytopic.html", "By topic"), ("overview.html", "overview.html", "Observation"))
TOPIC_TITLES = {"dataset": "Data set", "flagging": "Flagging", "calibration": "Calibration",
                "imaging": "Imaging"}


def mjd_s_to_iso(mjd_s: float) -> str:
    """MJD seconds (CASA's TIME) to an ISO UTC string."""
    epoch = _dt.datetime(1858, 11, 17, tzinfo=_dt.timezone.utc)
    return (epoch + _dt.timedelta(seconds=float(mjd_s))).strftime("%Y-%m-%d %H:%M:%S")


def eb_uid(name: str) -> str:
    """The EB's archive UID from its MS name (``uid___A002_X1_X2`` -> ``uid://A002/X1/X2``)."""
    return "uid://" + name[6:].replace("_", "/") if name.startswith("uid___") else name


def template_environment():
    """The Jinja2 environment of the packaged templates (weblog, QA2 summary) and their folder."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    tdir = resources.files("solarpipe.weblog_templates")
    env = Environment(loader=FileSystemLoader(str(tdir)), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["colour"] = colour
    env.filters["iso"] = mjd_s_to_iso
    env.filters["fmt"] = _fmt
    return env, tdir


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def stage_page_path(number: int) -> str:
    return f"stage{number}/index.html"


def stage_row(rec: "StageRecord") -> dict[str, Any]:
    """What the index, by-task and stage pages show of one stage; the most important
    messages are the lowest QA messages below green, then the error of a failed stage."""
    qa_sorted = sorted(rec.qa, key=lambda q: q["score"])
    rep = rec.representative_score
    messages = [q["shortmsg"] for q in qa_sorted if q["score"] <= 0.9][:3]
    if rec.error and rec.error not in messages:
        messages.insert(0, rec.error)
    if not messages and qa_sorted:
        messages = [qa_sorted[0]["shortmsg"]]
    log = rec.results.get("log") or {}
    return {"number": rec.number, "task": rec.task, "status": rec.status, "score": rep,
            "colour": colour(rep), "duration": rec.duration_s, "messages": messages,
            "log_warnings": log.get("n_warnings", 0), "log_errors": log.get("n_errors", 0),
            "href": stage_page_path(rec.number), "record": rec, "qa": qa_sorted}


def qa_by_topic(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """QA scores of every stage grouped by topic (data set, flagging, calibration,
    imaging), lowest first within a topic, each topic with its lowest score."""
    out = []
    for topic in TOPICS:
        items = sorted(({"stage": st, "q": q} for st in stages for q in st["qa"]
                        if q.get("topic", "dataset") == topic), key=lambda d: d["q"]["score"])
        low = items[0]["q"]["score"] if items else None
        out.append({"topic": topic, "title": TOPIC_TITLES.get(topic, topic), "scores": items,
                    "score": low, "colour": colour(low)})
    return out


def home_summary(context: "Context", stages: list[dict[str, Any]]) -> dict[str, Any]:
    """The home page's observation summary (label -> text) and the overall verdict."""
    run = context.observing_runs[0] if context.observing_runs else None
    verdict_colour, verdict = overall_verdict(st["score"] for st in stages)
    lowest = min((st for st in stages if st["score"] is not None), key=lambda st: st["score"], default=None)
    rows: list[tuple[str, str]] = []
    if run is not None:
        imported = next((st["record"].results.get("summary", {}) for st in stages
                         if st["task"] == "hsol_importdata" and st["status"] == "ok"), {})
        sci = [s.ref_freq_hz / 1e9 for s in run.spws if s.role == "science"]
        start, end = mjd_s_to_iso(run.start_mjd_s), mjd_s_to_iso(run.end_mjd_s)
        n_sun = len(run.sun_field_ids)
        target = f"Sun, {n_sun}-pointing mosaic" if run.mosaic else "Sun, single pointing"
        disc = list((imported.get("pointings_helioprojective_arcsec") or {}).values())
        if disc:
            target += (" centred" if len(disc) > 1 else "") + (
                f" at Tx {sum(p['Tx'] for p in disc) / len(disc):.0f}\", "
                f"Ty {sum(p['Ty'] for p in disc) / len(disc):.0f}\"")
        rows += [
            ("Project", run.project or "unknown"),
            ("EB", f"{eb_uid(run.name)} ({run.name}.ms)"),
            ("Observation date", start[:10]),
            ("Time range (UTC)", f"{start[11:]} - {end[11:]} ({(run.end_mjd_s - run.start_mjd_s) / 60:.1f} min)"),
            ("Band", f"{run.band}" + (f" ({min(sci):.1f}-{max(sci):.1f} GHz science SPWs)" if sci else "")),
            ("Array", ", ".join(f"{v} x {k}" for k, v in sorted(run.antenna_counts().items()))),
            ("Target", target + (" (ephemeris)" if run.ephemeris_target else "")),
        ]
        el = imported.get("sun_elevation_deg")
        if el:
            rows.append(("Sun elevation", f"{el['start']:.1f} deg at start, {el['end']:.1f} deg at end "
                                          f"(range {el['min']:.1f}-{el['max']:.1f} deg)"))
        rows.append(("Time on source (Sun)", f"{run.time_on_source_s() / 60:.1f} min"))
    recipe = (context.recipe or {}).get("name")
    rows.append(("Pipeline", f"solarpipe {context.pipeline_version}" + (f", recipe {recipe}" if recipe else "")))
    rows.append(("CASA", ", ".join(f"{k} {v}" for k, v in context.casa_versions.items()) or "unknown"))
    return {"rows": rows, "verdict": verdict, "verdict_colour": verdict_colour, "lowest": lowest,
            "failed": [st for st in stages if st["status"] == "failed"]}


def render_weblog(context: "Context") -> Path:
    """Write the home page, by-task, by-topic and observation pages and every stage page;
    returns the home page (index.html)."""
    env, tdir = template_environment()
    root = Path(context.workdir) / "weblog"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(str(tdir)) / "style.css", root / "style.css")
    commands = Path(context.workdir) / COMMANDS_LOG
    if commands.exists():
        shutil.copyfile(commands, root / COMMANDS_LOG)
    run = context.observing_runs[0] if context.observing_runs else None
    stages = [stage_row(s) for s in context.stages]
    common = {"context": context, "run": run, "stages": stages, "nav": PAGES,
              "commands_log": COMMANDS_LOG if commands.exists() else None,
              "rendered": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    overview_plots = [p for s in context.stages for p in s.results.get("plots", [])
                      if p.get("group") == "overview"]
    extra = {"index.html": {"home": home_summary(context, stages)},
             "bytopic.html": {"topics": qa_by_topic(stages)},
             "overview.html": {"plots": overview_plots}}
    for filename, template, _ in PAGES:
        _write(root / filename, env.get_template(template).render(
            root="", page=filename, **extra.get(filename, {}), **common))
    for i, st in enumerate(stages):
        res = st["record"].results
        _write(root / st["href"], env.get_template("stage.html").render(
            root="../", page="stage", stage=st, results=res,
            prev=stages[i - 1] if i > 0 else None, next=stages[i + 1] if i + 1 < len(stages) else None,
            plots=[p for p in res.get("plots", []) if p.get("group") != "overview"],
            listobs=res.get("summary", {}).get("listobs"), **common))
    return root / "index.html"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
