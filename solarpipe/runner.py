"""Drive stages: build a task from its inputs, run it, merge, save, render.

One code path for the three ways in (interactive call, recipe, CLI). After
every stage the context is saved atomically with a snapshot and the weblog is
re-rendered, so a partial run already has a weblog and can be resumed.
"""
from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .casacalls import CasaCalls
from .casaenv import casa_versions
from .context import Context, StageRecord, utcnow
from .errors import BadInputError, StageFailedError
from .parallel import ParallelSettings, WorkerPool
from .qa import QAScore
from .stagelog import StageLog
from .task import Task, input_fields
from .tasks.registry import get_task

LOG = logging.getLogger(__name__)

ProgressFn = Callable[[str], None]

#: what to do when the working directory's disk is (about to be) full
DISK_FULL_ADVICE = ("Free space (or copy the working directory to a bigger disk), then 'solarpipe resume'. "
                    "The raw data were not touched and the stages before this one are kept")


def new_context(workdir: str | Path, name: str = "solarpipe",
                parallel: ParallelSettings | None = None) -> Context:
    """A fresh context in ``workdir`` (created if needed), saved with snapshot 0;
    ``parallel``: how its stages spread heavy jobs (default: 'auto')."""
    wd = Path(workdir).expanduser().resolve()
    try:
        wd.mkdir(parents=True, exist_ok=True)
        probe = wd / ".solarpipe_write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise BadInputError(f"working directory {wd} is not writable ({exc.strerror}); "
                            "choose another with --workdir") from exc
    ctx = Context(workdir=str(wd), name=name, pipeline_version=__version__,
                  casa_versions=casa_versions(), parallel=(parallel or ParallelSettings()).to_dict())
    ctx.save()
    ctx.snapshot(0)
    return ctx


def open_or_create_context(workdir: str | Path) -> Context:
    path = Path(workdir) / "context.json"
    return Context.load(path) if path.exists() else new_context(workdir)


def build_inputs(task_cls: type[Task], params: dict[str, Any], *, from_string: bool = False):
    """Validate and convert parameters into the task's Inputs dataclass."""
    from .recipe import coerce_param

    fields = input_fields(task_cls.Inputs)
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise BadInputError(f"{task_cls.name}: unknown parameter(s) {', '.join(unknown)}; "
                            f"valid: {', '.join(fields)}")
    values = {k: coerce_param(task_cls.name, k, v, fields[k][0], from_string=from_string)
              for k, v in params.items()}
    return task_cls.Inputs(**values)


def run_stage(context: Context, task_name: str, params: dict[str, Any] | None = None,
              progress: ProgressFn | None = None, pool: WorkerPool | None = None) -> StageRecord:
    """Run one stage on ``context`` and save it; returns the stage record.

    Bad input (unknown task/parameter, unreadable MS...) raises BadInputError
    before anything is recorded. A failure inside the task is recorded as a
    failed stage with a red QA score, the context is saved (the state before the
    stage stays in the previous snapshot) and StageFailedError is raised.
    """
    params = dict(params or {})
    task_cls = get_task(task_name)
    inputs = build_inputs(task_cls, params)
    if task_cls.needs_observing_run and not context.observing_runs:
        raise BadInputError(f"{task_name}: no MS in the context at {context.workdir}; "
                            "run hsol_importdata first")
    if task_cls.needs_observing_run:
        check_disk_space(context, task_name, task_cls.creates_corrected)
    number = context.stage_counter + 1
    record = StageRecord(number=number, task=task_name, params=params, started=utcnow())
    casa = CasaCalls(context.workdir, number, task_name, parallel=ParallelSettings.from_dict(context.parallel),
                     pool=pool)
    task = task_cls(context, inputs, casa, number)
    say = progress or (lambda msg: None)
    say(f"stage {number}: {task_name} ...")
    LOG.info("stage %d: %s %s", number, task_name, params)
    _casalog_post(f"solarpipe stage {number}: {task_name} started")
    t0 = time.perf_counter()
    stage_log = StageLog()
    try:
        with stage_log:
            results = task.execute()
    except BadInputError as exc:
        record.status = "failed"
        record.error = str(exc)
        record.results = _failed_results(task_name, number, str(exc))
        _finish(context, record, t0, casa, stage_log)
        say(f"stage {number}: {task_name} FAILED (bad input): {exc}")
        raise
    except Exception as exc:  # noqa: BLE001 - any task failure is a failed stage
        full = workdir_full(exc)
        record.status = "failed"
        record.error = (f"{task_name}: the working directory {context.workdir} is full ({full}) while this "
                        f"stage was writing. {DISK_FULL_ADVICE}" if full else f"{type(exc).__name__}: {exc}")
        record.results = _failed_results(task_name, number, record.error, traceback.format_exc())
        try:
            _finish(context, record, t0, casa, stage_log)
        except OSError as exc2:  # the disk is full: the context file keeps its previous content
            if not workdir_full(exc2):
                raise
        say(f"stage {number}: {task_name} FAILED: {record.error}")
        if full:
            raise BadInputError(record.error) from exc
        raise StageFailedError(f"stage {number} ({task_name}) failed: {record.error}") from exc
    results.merge_with_context(context)
    record.status = "ok"
    record.results = results.to_dict()
    _finish(context, record, t0, casa, stage_log)
    rep = min((q.score for q in results.qa), default=None)
    say(f"stage {number}: {task_name} done in {record.duration_s:.1f} s"
        + (f", QA {rep:.2f}" if rep is not None else ""))
    return record


def check_disk_space(context: Context, task_name: str, creates_corrected: bool) -> None:
    """BadInputError before a stage starts when the working directory has less free
    space than the stage may write: as much as the MS for a task that makes
    CORRECTED_DATA when there is none yet, else a quarter of it (flag versions,
    caltables, images). A disk that fills inside CASA can abort the process (casacore
    throws from C++), so check first."""
    import shutil as _shutil

    from .tasks.importdata import tree_size

    vis = Path(context.observing_run.vis)
    if not vis.exists():
        return
    ms = tree_size(vis)
    need = ms * (1.0 if creates_corrected and not _has_column(vis, "CORRECTED_DATA") else 0.25)
    free = _shutil.disk_usage(context.workdir).free
    if free < need:
        raise BadInputError(
            f"{task_name}: the working directory {context.workdir} has {free / 1e9:.2f} GB free, and this stage may "
            f"write about {need / 1e9:.2f} GB (the MS is {ms / 1e9:.2f} GB). {DISK_FULL_ADVICE}")


def _has_column(vis: Path, column: str) -> bool:
    from casatools import table

    tb = table()
    try:
        tb.open(str(vis))
    except Exception:  # noqa: BLE001 - an unreadable MS is reported by the stage itself
        return True
    try:
        return column in tb.colnames()
    finally:
        tb.close()


def workdir_full(exc: BaseException) -> str:
    """The reason text if ``exc`` says a disk is full (an OSError, or CASA's RuntimeError
    carrying the system message), else ''."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return exc.strerror or "No space left on device"
    text = str(exc)
    for msg in ("No space left on device", "Disk quota exceeded"):
        if msg in text:
            return msg
    return ""


def _failed_results(task: str, number: int, error: str, tb: str = "") -> dict[str, Any]:
    score = QAScore(0.0, "stage failed", error, topic="dataset")
    return {"task": task, "stage": number, "qa": [score.to_dict()], "decisions": [],
            "plots": [], "summary": {"traceback": tb}, "messages": [error], "inputs": {}}


def _finish(context: Context, record: StageRecord, t0: float, casa: CasaCalls,
            stage_log: StageLog) -> None:
    """Record the stage (with its CASA calls and log excerpt), save context + snapshot
    atomically, re-render the weblog."""
    record.results["casa_calls"] = casa.calls
    if casa.jobs:
        backend, workers = casa.parallel.resolved()
        record.results["parallel"] = {"backend": backend, "workers": workers,
                                      "omp_threads": casa.parallel.omp_threads, "jobs": casa.jobs,
                                      "wall_s": round(casa.jobs_wall_s, 2)}
    record.results["log"] = stage_log.excerpt()
    record.finished = utcnow()
    record.duration_s = round(time.perf_counter() - t0, 3)
    context.stages = [s for s in context.stages if s.number != record.number] + [record]
    context.save()
    if record.status == "ok":
        context.snapshot(record.number)
    _casalog_post(f"solarpipe stage {record.number}: {record.task} {record.status}")
    try:
        from .weblog.render import render_weblog

        render_weblog(context)
    except Exception:  # noqa: BLE001 - a weblog problem must not lose the stage
        LOG.exception("weblog rendering failed after stage %d", record.number)


def _casalog_post(message: str) -> None:
    """Also post to CASA's log (analysts read casa-*.log); silent if CASA is absent."""
    try:
        from casatools import logsink

        logsink().post(message, "INFO", "solarpipe")
    except Exception:  # noqa: BLE001
        pass


def inputs_doc(task_cls: type[Task]) -> list[tuple[str, str, Any]]:
    """(name, type, default) of a task's parameters, for `solarpipe tasks` and help()."""
    out = []
    for name, (hint, default) in input_fields(task_cls.Inputs).items():
        tname = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
        out.append((name, tname, default))
    return out


class RecipeRunOutcome:
    """What a recipe run did: the stages run, and whether it stopped at a breakpoint."""

    def __init__(self) -> None:
        self.stages: list[StageRecord] = []
        self.stopped_at_breakpoint = False


def run_recipe(recipe, context: Context, vis: str | None = None, start: int = 1,
               stop: int | None = None, progress: ProgressFn | None = None) -> RecipeRunOutcome:
    """Run the stages start..stop of a validated recipe (1-based).

    A breakpoint stops the run once a stage has run in this call; resuming
    starts after it. ``vis`` fills hsol_importdata's vis when the recipe
    does not give it.
    """
    from .recipe import plan

    outcome = RecipeRunOutcome()
    context.recipe = {**recipe.to_dict(), "vis": vis}
    context.save()
    with run_worker_pool(context) as pool:
        _run_steps(plan(recipe, start=1, stop=None), context, vis, start, stop, progress, outcome, pool)
    return outcome


def run_worker_pool(context: Context):
    """The run's warm WorkerPool when its backend is a local process pool of several
    workers (started now, warmed while the first stages run), else a no-op context."""
    import contextlib

    settings = ParallelSettings.from_dict(context.parallel)
    backend, workers = settings.resolved()
    if backend == "process" and workers > 1:
        return WorkerPool(workers, settings.omp_threads)
    return contextlib.nullcontext(None)


def _run_steps(steps, context: Context, vis: str | None, start: int, stop: int | None,
               progress: ProgressFn | None, outcome: RecipeRunOutcome, pool: WorkerPool | None) -> None:
    number = 0
    for step in steps:
        if step.is_breakpoint:
            if outcome.stages:
                outcome.stopped_at_breakpoint = True
                if progress:
                    progress(f"breakpoint after stage {number}: run 'solarpipe resume' to continue")
                break
            continue
        number += 1
        if number < start:
            continue
        if stop is not None and number > stop:
            break
        params = dict(step.params)
        if step.task == "hsol_importdata" and "vis" not in params and vis:
            params["vis"] = vis
        outcome.stages.append(run_stage(context, step.task, params, progress, pool=pool))


def resume(workdir: str | Path, progress: ProgressFn | None = None) -> RecipeRunOutcome:
    """Continue the recipe of ``workdir`` after its last completed stage.

    A stage that was running or failed when the run stopped is re-run from the
    snapshot written after the stage before it.
    """
    from .recipe import Recipe

    ctx = Context.load(Path(workdir) / "context.json")
    if not ctx.recipe:
        raise BadInputError(f"{ctx.path}: no recipe recorded in this context; nothing to resume")
    last = ctx.last_completed_stage
    if ctx.stage_counter > last:
        ctx = rerun_context(workdir, last + 1)
    recipe = Recipe.from_dict(ctx.recipe)  # type: ignore[arg-type]
    return run_recipe(recipe, ctx, vis=ctx.recipe.get("vis"), start=last + 1, progress=progress)


def rerun_context(workdir: str | Path, stage: int) -> Context:
    """The context to re-run ``stage`` from: the snapshot after stage-1, saved as current."""
    recipe = Context.load(Path(workdir) / "context.json").recipe
    ctx = Context.from_snapshot(workdir, stage - 1)
    ctx.recipe = ctx.recipe or recipe
    ctx.save()
    return ctx
