"""hsol_exportdata: the delivery package for the PI (products, scripts, QA2 report).

Writes ``<workdir>/<outdir>/`` (default ``delivery/``) in the layout of an
ALMA delivery:

    calibration/<eb>.caltables.tgz   every caltable of the run (solver outputs and
                                     the tables solarpipe wrote itself, e.g. Tsys+Tant)
    calibration/<eb>.applycal.txt    the applycal calls that wrote CORRECTED_DATA
    script/scriptForCalibration.py   plain CASA scripts that reproduce the run from
    script/scriptForImaging.py       the raw EB (solarpipe.scriptgen)
    product/                         FITS images (and cubes, feathered images when those
                                     stages ran), the power/Tant CSV
    inputs/                          inputs from outside the working directory that the
                                     scripts read (e.g. a total-power map), if any
    log/casa_commands.log, log/context.json, log/weblog.tgz
    qa/qa2_report.json, qa/qa2_report.xml, qa/qa2_summary.html
    manifest.json                    size and SHA-256 of every file, verified after writing

Nothing in the working directory is changed. The delivery is built in
``.<outdir>.partial`` and replaces an earlier delivery only once complete.
"""
from __future__ import annotations

import inspect
import logging
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..casacalls import COMMANDS_LOG
from ..errors import BadInputError
from ..manifest import MANIFEST, verify_manifest, write_manifest
from ..qa import QAScore
from ..qa2report import build_report, write_report
from ..scriptgen import (CALIBRATION_SCRIPT, IMAGING_SCRIPT, ScriptInputs, applycal_instructions, caltables_of,
                         external_inputs, generate_scripts)
from ..task import Results, Task, TaskInputs

LOG = logging.getLogger(__name__)

#: the sub-directories of a delivery
SUBDIRS = ("calibration", "script", "product", "log", "qa")
#: product files copied from the working directory's products/ (FITS images, Tant CSV)
PRODUCT_PATTERNS = ("*.fits", "*.csv")


@dataclass
class ExportDataInputs(TaskInputs):
    """outdir: the delivery directory, relative to the working directory (replaced if it
    holds an earlier delivery). weblog: include the weblog as log/weblog.tgz."""

    outdir: str = "delivery"
    weblog: bool = True


class ExportDataResults(Results):
    files: list[str] = []  # the delivery's files, relative to the working directory
    checks: list[QAScore] = []  # QA of the delivery, made before the QA2 report is written

    def merge_with_context(self, context) -> None:
        context.products = [p for p in context.products if p not in self.files] + list(self.files)


class ExportData(Task):
    name = "hsol_exportdata"
    Inputs = ExportDataInputs
    topic = "dataset"

    def prepare(self) -> dict[str, Any]:
        inp: ExportDataInputs = self.inputs  # type: ignore[assignment]
        run = self.context.observing_run
        res = self.new_results()
        workdir = Path(self.context.workdir)
        log_path = workdir / COMMANDS_LOG
        if not log_path.exists():
            raise BadInputError(f"{log_path}: no recorded CASA calls; run the pipeline stages before "
                                "hsol_exportdata")
        log_text = log_path.read_text()
        final = self.delivery_dir(workdir, inp.outdir)
        out = final.with_name(f".{final.name}.partial")  # built aside, swapped in when complete
        if out.exists():
            shutil.rmtree(out)
        for sub in SUBDIRS:
            (out / sub).mkdir(parents=True)
        stages = [s.to_dict() for s in self.context.stages if s.task != self.name]
        eb = run.name

        # calibration: caltables (tarred) and the applycal instructions
        tables = caltables_of(log_text, stages)
        missing = [t for t in tables if not (workdir / t).exists()]
        if missing:
            raise BadInputError(f"{workdir}: calibration table(s) {', '.join(missing)} recorded in "
                                f"{COMMANDS_LOG} are missing; re-run the stage that wrote them")
        archive = f"calibration/{eb}.caltables.tgz"
        _tar(workdir, tables, out / archive)
        (out / f"calibration/{eb}.applycal.txt").write_text(applycal_instructions(log_text, stages, eb))

        # inputs from outside the working directory that the scripts read (e.g. a TP map)
        delivered = {}
        raw_vis = run.source_vis or run.vis
        for path in external_inputs(log_text, stages, raw_vis):
            src = Path(path)
            if not src.exists():
                raise BadInputError(f"{path}: an input the run read (recorded in {COMMANDS_LOG}) no longer "
                                    "exists; the delivery cannot carry it")
            name = src.name if f"inputs/{src.name}" not in delivered.values() else f"{len(delivered)}_{src.name}"
            delivered[path] = f"inputs/{name}"
            (out / "inputs").mkdir(exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, out / delivered[path])

        # scripts
        scripts = generate_scripts(log_text, ScriptInputs(
            eb_name=eb, raw_vis=raw_vis, stages=stages, delivered_inputs=delivered,
            script_of_task={s["task"]: script_for_task(s["task"]) for s in stages},
            titles={s["task"]: step_title(s["task"]) for s in stages}, shipped_archives=[archive],
            pipeline_version=__version__, casa_versions=self.context.casa_versions))
        for name, text in scripts.items():
            (out / "script" / name).write_text(text)

        # products, logs, weblog
        products = sorted({p for pat in PRODUCT_PATTERNS for p in (workdir / "products").glob(pat)})
        for p in products:
            shutil.copy2(p, out / "product" / p.name)
        shutil.copy2(log_path, out / "log" / COMMANDS_LOG)
        shutil.copy2(self.context.path, out / "log" / "context.json")
        if inp.weblog and (workdir / "weblog").is_dir():
            _tar(workdir, ["weblog"], out / "log" / "weblog.tgz")

        # QA (this stage's own checks go into the report too), then the manifest, verified
        scores = self.export_checks(scripts, tables, products, stages)
        this_stage = {"number": self.stage, "task": self.name, "status": "ok",
                      "results": {"qa": [q.to_dict() for q in scores]}}
        write_report(build_report(self.context.to_dict(), [this_stage]), out / "qa")
        write_manifest(out, {"eb": eb, "pipeline_version": __version__})
        if final.exists():
            shutil.rmtree(final)
        out.rename(final)
        out = final
        problems = verify_manifest(out)
        if problems:
            raise RuntimeError(f"{out / MANIFEST}: the delivery does not match its manifest: {problems[:5]}")
        res.decide("outdir", str(out.relative_to(workdir)), "given" if inp.outdir != "delivery" else
                   "the delivery directory of the working directory", by="user" if inp.outdir != "delivery"
                   else "default")
        return {"results": res, "out": out, "scores": scores, "n_tables": len(tables),
                "scripts": sorted(scripts), "n_products": len(products)}

    @staticmethod
    def delivery_dir(workdir: Path, outdir: str) -> Path:
        """Where the delivery goes: a new directory or an earlier delivery (replaced once the
        new one is complete); never the working directory or another non-empty directory."""
        out = (workdir / outdir).resolve()
        if out == workdir or workdir.is_relative_to(out):
            raise BadInputError(f"hsol_exportdata: outdir {outdir!r} would replace the working directory")
        if out.exists() and any(out.iterdir()) and not (out / MANIFEST).exists():
            raise BadInputError(f"{out} exists and is not a solarpipe delivery (no {MANIFEST}); "
                                "choose another outdir")
        return out

    def export_checks(self, scripts: dict[str, str], tables: list[str], products: list[Path],
                      stages: list[dict[str, Any]]) -> list[QAScore]:
        """QA of the delivery: scripts valid and portable, caltables and images present."""
        # the generator refuses to write a script that does not compile or holds an absolute path
        scores = [QAScore(1.0, f"{len(scripts)} scripts: valid Python, no absolute paths",
                          f"{', '.join(sorted(scripts))} compile, hold no absolute path of this machine and "
                          "never import solarpipe.", metric_name="n_scripts", metric_value=len(scripts),
                          topic="dataset")]
        scores.append(QAScore(1.0 if tables else 0.5, f"{len(tables)} calibration tables delivered",
                              "Every caltable written or shipped by the calibration stages, tarred."
                              if tables else "No calibration table was recorded: was the calibration run?",
                              metric_name="n_caltables", metric_value=len(tables), topic="calibration"))
        imaged = any(script_for_task(s["task"]) == IMAGING_SCRIPT for s in stages if s.get("status") == "ok")
        n_fits = sum(p.suffix == ".fits" for p in products)
        scores.append(QAScore(0.5 if imaged and not n_fits else 1.0, f"{n_fits} FITS products delivered",
                              "FITS images copied from products/." if n_fits or not imaged else
                              "An imaging stage ran but products/ holds no FITS image.",
                              metric_name="n_fits", metric_value=n_fits, topic="imaging"))
        return scores

    def analyse(self, raw: dict[str, Any]) -> Results:
        res = ExportDataResults(**vars(raw["results"]))
        out: Path = raw["out"]
        workdir = Path(self.context.workdir)
        res.files = [p.relative_to(workdir).as_posix() for p in sorted(out.rglob("*")) if p.is_file()]
        res.summary = {
            "delivery": str(out.relative_to(workdir)),
            "files": [{"path": p.relative_to(out).as_posix(), "bytes": p.stat().st_size}
                      for p in sorted(out.rglob("*")) if p.is_file()],
            "n_caltables": raw["n_tables"], "scripts": raw["scripts"], "n_products": raw["n_products"],
            "manifest": "verified",
        }
        res.checks = raw["scores"]
        return res

    def qa(self, results: Results) -> list[QAScore]:
        return list(results.checks)  # type: ignore[attr-defined]


def script_for_task(task: str) -> str:
    """Which generated script holds a task's steps: imaging-topic tasks the imaging script,
    the export itself none, every other stage the calibration script."""
    from .registry import get_task

    if task == ExportData.name:
        return ""
    return IMAGING_SCRIPT if get_task(task).topic == "imaging" else CALIBRATION_SCRIPT


def step_title(task: str) -> str:
    """A step title from the task module's docstring ('hsol_x: what it does.'), its first sentence."""
    from .registry import get_task

    doc = inspect.getdoc(inspect.getmodule(get_task(task))) or task
    paragraph = " ".join(doc.split("\n\n")[0].split())
    title = re.split(r"(?<=[^.])\.(?:\s|$)", paragraph.split(":", 1)[-1].strip())[0]
    return title[:1].upper() + title[1:]


def _tar(root: Path, names: list[str], dest: Path) -> None:
    """A gzipped tar of ``names`` (paths relative to ``root``), stored under those names."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        for name in names:
            tar.add(root / name, arcname=name)
