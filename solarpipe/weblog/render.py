"""Render the static weblog (index, observation overview, one page per stage).

Rendered with Jinja2 from the packaged ``weblog_templates`` after every stage;
pages use relative links only and bundled CSS, so the weblog opens offline
from the file system.
"""
from __future__ import annotations

import datetime as _dt
import logging
import shutil
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..qa import colour

if TYPE_CHECKING:  # pragma: no cover
    from ..context import Context

LOG = logging.getLogger(__name__)


def mjd_s_to_iso(mjd_s: float) -> str:
    """MJD seconds (CASA's TIME) to an ISO UTC string."""
    epoch = _dt.datetime(1858, 11, 17, tzinfo=_dt.timezone.utc)
    return (epoch + _dt.timedelta(seconds=float(mjd_s))).strftime("%Y-%m-%d %H:%M:%S")


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


def render_weblog(context: "Context") -> Path:
    """Write weblog/index.html, overview.html and every stage page; returns the index."""
    env, tdir = template_environment()
    root = Path(context.workdir) / "weblog"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(str(tdir)) / "style.css", root / "style.css")
    run = context.observing_runs[0] if context.observing_runs else None
    stages = []
    for s in context.stages:
        qa_sorted = sorted(s.qa, key=lambda q: q["score"])
        rep = s.representative_score
        stages.append({"number": s.number, "task": s.task, "status": s.status,
                       "score": rep, "colour": colour(rep), "duration": s.duration_s,
                       "messages": [q["shortmsg"] for q in qa_sorted if q["score"] <= 0.9][:3]
                       or ([qa_sorted[0]["shortmsg"]] if qa_sorted else []),
                       "href": stage_page_path(s.number), "record": s, "qa": qa_sorted})
    common = {"context": context, "run": run, "stages": stages,
              "rendered": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    _write(root / "index.html", env.get_template("index.html").render(root="", page="index", **common))
    overview_plots = [p for s in context.stages for p in s.results.get("plots", [])
                      if p.get("group") == "overview"]
    _write(root / "overview.html", env.get_template("overview.html").render(
        root="", page="overview", plots=overview_plots, **common))
    for st in stages:
        rec = st["record"]
        res = rec.results
        listobs = res.get("summary", {}).get("listobs")
        _write(root / st["href"], env.get_template("stage.html").render(
            root="../", page="stage", stage=st, results=res,
            plots=[p for p in res.get("plots", []) if p.get("group") != "overview"],
            listobs=listobs, **common))
    return root / "index.html"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)

