"""Every CASA call a task makes goes through here and is recorded.

Each call is appended to ``casa_commands.log`` in the working directory as a
line of runnable Python (paths inside the working directory written relative
to it), preceded by a comment with the stage number and task. The log is
valid Python: run it from the working directory in a CASA session, or in
plain Python after ``from casatasks import *``. The script generator
(hsol_exportdata) builds the calibration and imaging scripts from it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .parallel import Job, JobResult, ParallelSettings, WorkerPool

LOG = logging.getLogger(__name__)

COMMANDS_LOG = "casa_commands.log"
#: comment prefixes the script generator (solarpipe.scriptgen) reads back from the log
STAGE_MARK = "# --- stage "
TOOL_MARK = "# casatools: "
SHIPPED_MARK = "# shipped: "
_HEADER = (
    "# solarpipe casa_commands.log: every CASA call of the run, in order.\n"
    "# Run from the working directory. Inside a CASA session the tasks are\n"
    "# already defined; in plain Python the imports below provide them.\n"
    "from casatasks import *  # noqa: F401,F403\n"
    "import casatools  # noqa: F401\n"
    "import shutil  # noqa: F401\n"
)


class CasaCalls:
    """Run casatasks calls (and record tool/python steps) for one stage."""

    def __init__(self, workdir: str | os.PathLike, stage: int, task: str, parallel: "ParallelSettings | None" = None,
                 pool: "WorkerPool | None" = None):
        from .parallel import ParallelSettings

        self.workdir = Path(workdir).resolve()
        self.parallel = parallel or ParallelSettings()  # how this run spreads independent jobs
        self.pool = pool  # the run's warm local workers (runner.run_worker_pool), if any
        self.jobs: list[dict[str, Any]] = []  # this stage's parallel jobs, for the weblog
        self.jobs_wall_s = 0.0  # wall time spent waiting for them
        self.stage = stage
        self.task_name = task
        self.log_path = self.workdir / COMMANDS_LOG
        self.calls: list[dict[str, Any]] = []  # this stage's calls, for the weblog
        self._comment_written = False

    # -- recording -------------------------------------------------------
    def _relative(self, value: Any) -> Any:
        """Absolute paths inside the working directory become relative ones."""
        if isinstance(value, str) and os.path.isabs(value):
            try:
                rel = Path(value).resolve().relative_to(self.workdir)
                return str(rel) if str(rel) != "." else "."
            except ValueError:
                return value
        if isinstance(value, (list, tuple)):
            return type(value)(self._relative(v) for v in value)
        if isinstance(value, dict):
            return {k: self._relative(v) for k, v in value.items()}
        return value

    def _write(self, text: str) -> None:
        new = not self.log_path.exists()
        with open(self.log_path, "a") as fh:
            if new:
                fh.write(_HEADER)
            if not self._comment_written:
                fh.write(f"\n{STAGE_MARK}{self.stage}: {self.task_name} ---\n")
                self._comment_written = True
            fh.write(text.rstrip("\n") + "\n")

    def format_call(self, name: str, kwargs: dict[str, Any]) -> str:
        args = ", ".join(f"{k}={self._relative(v)!r}" for k, v in kwargs.items())
        return f"{name}({args})"

    def record(self, code: str, comment: str = "") -> None:
        """Record a line (or block) of Python that reproduces a non-task step."""
        compile(code, "<casacalls>", "exec")  # the log must stay valid Python
        if comment:
            self._write(f"# {comment}")
        self._write(code)
        self.calls.append({"code": code, "comment": comment})

    # -- running ---------------------------------------------------------------
    def task(self, casa_task: str, /, *, _note: str = "", **kwargs: Any) -> Any:
        """Run ``casatasks.<casa_task>(**kwargs)`` and record it (``_note``: a comment line)."""
        import casatasks

        func: Callable[..., Any] = getattr(casatasks, casa_task)
        line = self._log_call(casa_task, kwargs, _note)
        t0 = time.perf_counter()
        try:
            result = func(**kwargs)
        finally:
            self.calls.append({"code": line, "comment": _note,
                               "seconds": round(time.perf_counter() - t0, 3)})
        return result

    def _log_call(self, casa_task: str, kwargs: dict[str, Any], note: str, where: str = "") -> str:
        """Write a call (and its note) to the log; returns its line."""
        line = self.format_call(casa_task, kwargs)
        if note:
            self._write(f"# {note}")
        self._write(line)
        LOG.info("stage %d %s%s: %s", self.stage, self.task_name, where, line)
        return line

    def tasks_in_parallel(self, groups: Sequence[tuple[str, Sequence[tuple[str, dict[str, Any], str]]]], *,
                          fresh: bool = False, raise_on_failure: bool = True,
                          skip_unselected: bool = False) -> "list[JobResult]":
        """Run groups of casatasks calls ``(task, kwargs, note)`` as independent jobs of
        solarpipe.parallel with the run's ParallelSettings; one group's calls run in
        order in one worker. Groups must not write the same table (two writers of one
        MS deadlock on its lock). Every call is recorded, group after group, so the
        log replays them serially. Returns one JobResult per group (``value``: the
        tasks' results); a failed group is named by its key.

        ``fresh``: each group in a new process where the backend allows it (serial
        and process pool). For tclean's multiscale clean of the Sun: its result depends
        on what ran before in the same process (measured: ~1e-3 of the peak after the
        calibration chain, bit-identical between fresh processes), so the pipeline
        cleans in a fresh process, as the imaging script does in a new session.
        ``skip_unselected``: see :func:`run_casa_tasks`.
        """
        from .parallel import Job

        lines = []
        for key, calls in groups:
            lines.append([self._log_call(t, kw, note, f" (job {key})") for t, kw, note in calls])
        results = self.run_jobs([Job(key, run_casa_tasks, ([(t, kw) for t, kw, _ in calls], skip_unselected))
                                 for key, calls in groups], fresh=fresh, raise_on_failure=raise_on_failure)
        for (key, calls), group_lines, r in zip(groups, lines, results):
            each = round(r.seconds / max(1, len(calls)), 3)
            self.calls.extend({"code": line, "comment": note, "seconds": each, "job": key}
                              for line, (_, _, note) in zip(group_lines, calls))
        return results

    def run_jobs(self, jobs: "Sequence[Job]", *, fresh: bool = False,
                 raise_on_failure: bool = True) -> "list[JobResult]":
        """Run jobs through solarpipe.parallel with this run's settings and warm pool, and
        record every job's outcome (chunk, seconds, memory, error) for the stage's weblog
        page, also when some fail (then ParallelJobError if ``raise_on_failure``)."""
        from .parallel import ParallelJobError, run_jobs

        backend, workers = self.parallel.resolved()
        t0 = time.perf_counter()
        results = run_jobs(jobs, backend=backend, workers=workers, omp_threads=self.parallel.omp_threads,
                           raise_on_failure=False, fresh=fresh, pool=self.pool,
                           progress=lambda msg: LOG.info("stage %d %s: %s", self.stage, self.task_name, msg))
        wall = time.perf_counter() - t0
        self.jobs.extend({"chunk": r.key, "ok": r.ok, "seconds": round(r.seconds, 2),
                          "peak_rss_mb": round(r.peak_rss_mb), "pid": r.pid, "error": r.error} for r in results)
        self.jobs_wall_s += wall
        LOG.info("stage %d %s: %d job(s), backend %s, %d worker(s), %.1f s wall", self.stage, self.task_name,
                 len(results), backend, workers, wall)
        failed = [r for r in results if not r.ok]
        if failed and raise_on_failure:
            raise ParallelJobError(failed, results)
        return results

    def applycal(self, vis: str, groups: Sequence[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
        """applycal for each ``(kwargs, note)`` group on ``vis``, in order. On a multi-MS
        with several workers, one job per sub-MS runs every group on it (separate tables:
        no lock conflict); else one pass per group. Returns, per job, which groups it
        applied ([] when serial; timings and memory are in the stage's job records)."""
        from .heuristics.parallel import fan_out
        from .msutil import sub_measurement_sets

        subs = sub_measurement_sets(vis)
        _, workers = self.parallel.resolved()
        if not fan_out(len(subs), workers):
            for kwargs, note in groups:
                self.task("applycal", vis=vis, _note=note, **kwargs)
            return []
        results = self.tasks_in_parallel(
            [(sub.name, [("applycal", {"vis": str(sub), **kwargs}, f"{note} (sub-MS {sub.name})")
                         for kwargs, note in groups]) for sub in subs], skip_unselected=True)
        return [{"chunk": r.key, "applied": [v != "skipped" for v in r.value]} for r in results]

    def python(self, code_repr: str, func: Callable[..., Any], /, *args: Any,
               _note: str = "", **kwargs: Any) -> Any:
        """Run a Python callable and record ``code_repr`` as its reproducible form."""
        self.record(code_repr, _note)
        return func(*args, **kwargs)

    def run_code(self, make_code: Callable[..., str], /, *, _note: str = "", **params: Any) -> dict[str, Any]:
        """Run the Python block ``make_code(**params)`` and record the same block with the
        paths in ``params`` made relative to the working directory.

        For steps done with casatools rather than a task (e.g. a table edit): the log,
        and so the generated scripts, hold exactly the code that ran. The block must be
        self-contained (its own imports; casatools/numpy only, never solarpipe).
        Returns the block's namespace.
        """
        self.record(make_code(**self._relative(params)), _note)
        namespace: dict[str, Any] = {"__name__": f"solarpipe_block_{make_code.__name__}"}
        exec(compile(make_code(**params), f"<{make_code.__name__}>", "exec"), namespace)  # noqa: S102
        return namespace

    def ship(self, path: str | os.PathLike, description: str) -> None:
        """Record that ``path`` (a table written by solarpipe outside any CASA task) is
        delivered with the products: the script generator restores it from there."""
        self._write(f"{SHIPPED_MARK}{self._relative(str(Path(path).resolve()))}  ({description})")

    @contextlib.contextmanager
    def tool(self, description: str) -> Iterator[None]:
        """Mark a block of casatools reads (not replayable) in the log as a comment."""
        self._write(f"{TOOL_MARK}{description}")
        yield


def run_casa_tasks(calls: Sequence[tuple[str, dict[str, Any]]], skip_unselected: bool = False) -> list[Any]:
    """Run casatasks calls in order (a worker job of CasaCalls.tasks_in_parallel). ``skip_unselected``: a call whose ``field`` ids have no rows in its
    ``vis`` (a sub-MS of a scan partition) is skipped, its result ``"skipped"``."""
    import casatasks

    out = []
    for name, kwargs in calls:
        if skip_unselected and not has_rows_of_fields(kwargs.get("vis", ""), kwargs.get("field", "")):
            out.append("skipped")
            continue
        out.append(getattr(casatasks, name)(**kwargs))
    return out


def has_rows_of_fields(vis: str, field: str) -> bool:
    """True if ``vis`` has main-table rows of the comma-separated field ids (True when the
    selection is not plain ids: CASA will judge it)."""
    ids = [f.strip() for f in str(field).split(",") if f.strip()]
    if not vis or not ids or not all(f.isdigit() for f in ids):
        return True
    from casatools import table

    tb = table()
    tb.open(str(vis))
    try:
        q = tb.query(f"FIELD_ID IN [{','.join(ids)}]", columns="FIELD_ID")
        n = q.nrows()
        q.close()
    finally:
        tb.close()
    return n > 0
