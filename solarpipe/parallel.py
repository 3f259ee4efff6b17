"""One small layer to run independent heavy jobs: serial, local processes, MPI, dask.

A job is a module-level function and its arguments; it opens the MS read-only
or writes its own output (a caltable, an image, a sub-MS) and never the
context: the parent merges the results. Backends:

* ``serial``: in this process (the default when one worker is asked for);
* ``process``: a local pool of spawned processes (default on one machine,
  workers = usable cores);
* ``mpi``: mpi4py.futures (``mpirun -n N python -m mpi4py.futures -m solarpipe run ...``
  on a cluster: rank 0 runs the pipeline, ranks 1..N-1 run the jobs); Open MPI
  only (casatools bundles it);
* ``dask``: an existing dask.distributed cluster (``address``) or a LocalCluster.

Every worker gets a deliberate OpenMP thread count (``omp_threads``, 1 by
default: casatools' default threads oversubscribe small machines) and, under
MPI, loses its Open MPI rank variables before importing casatasks so that it
does not turn into a casampi server. A job that raises is reported with its
chunk name; the other jobs' results are kept.

Which backend and how many workers a run uses is one :class:`ParallelSettings`
(``solarpipe run --parallel ... --workers ... --omp-threads ...``), kept in the
context so every stage (and a resumed run) sees the same choice.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import time
from multiprocessing import popen_spawn_posix
from multiprocessing import spawn as mp_spawn
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .errors import SolarpipeError

LOG = logging.getLogger(__name__)

BACKENDS = ("auto", "serial", "process", "mpi", "dask")
_MPI_ENV_PREFIXES = ("OMPI_COMM_WORLD_", "PMIX_RANK", "PMI_RANK", "OMPI_MCA_ess_base_vpid")


@dataclass
class Job:
    """One chunk of work: ``func(*args, **kwargs)`` named ``key`` for reports."""

    key: str
    func: Callable[..., Any]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobResult:
    key: str
    ok: bool
    value: Any = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    pid: int = 0


class ParallelJobError(SolarpipeError):
    """Some chunks failed; ``results`` holds every chunk's outcome (good ones kept)."""

    def __init__(self, failed: list[JobResult], results: list[JobResult]):
        self.failed = failed
        self.results = results
        names = "; ".join(f"chunk {r.key}: {r.error}" for r in failed)
        super().__init__(f"{len(failed)} of {len(results)} job(s) failed: {names}")


@dataclass
class ParallelSettings:
    """How a run spreads its jobs: backend ('auto' picks MPI under mpi4py.futures, else
    a process pool when more than one core), workers (None: usable cores, or the MPI
    worker ranks), OpenMP threads per worker (1: measured fastest on small machines)."""

    backend: str = "auto"
    workers: int | None = None
    omp_threads: int = 1

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"parallel backend must be one of {BACKENDS}, not {self.backend!r}")
        if self.workers is not None and int(self.workers) < 1:
            raise ValueError(f"parallel workers must be >= 1, not {self.workers!r}")
        if int(self.omp_threads) < 1:
            raise ValueError(f"OpenMP threads per worker must be >= 1, not {self.omp_threads!r}")

    def resolved(self) -> tuple[str, int]:
        """(backend, workers) this run uses here and now."""
        return choose_backend(self.backend, self.workers)

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "workers": self.workers, "omp_threads": self.omp_threads}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "ParallelSettings":
        d = d or {}
        return cls(backend=d.get("backend") or "auto", workers=d.get("workers"),
                   omp_threads=int(d["omp_threads"]) if d.get("omp_threads") is not None else 1)


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def prepare_worker_environment(omp_threads: int = 1) -> None:
    """Set the OpenMP threads and drop Open MPI rank variables (see module doc)."""
    os.environ["OMP_NUM_THREADS"] = str(omp_threads)
    for k in list(os.environ):
        if k.startswith(_MPI_ENV_PREFIXES):
            os.environ.pop(k, None)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def execute_job(job: Job) -> JobResult:
    """Run one job, catching its exception (runs inside the worker)."""
    t0 = time.perf_counter()
    try:
        value = job.func(*job.args, **job.kwargs)
        return JobResult(job.key, True, value, seconds=time.perf_counter() - t0,
                         peak_rss_mb=_peak_rss_mb(), pid=os.getpid())
    except Exception as exc:  # noqa: BLE001 - reported to the parent with the chunk name
        return JobResult(job.key, False, error=f"{type(exc).__name__}: {exc}",
                         traceback=traceback.format_exc(), seconds=time.perf_counter() - t0,
                         peak_rss_mb=_peak_rss_mb(), pid=os.getpid())


def _init_worker(omp_threads: int) -> None:
    prepare_worker_environment(omp_threads)
    _exit_with_parent()
    import solarpipe  # noqa: F401  (offline CASA configuration before casatools loads)


def _exit_with_parent(poll_s: float = 2.0) -> None:
    """A pool worker ends when the pipeline process that started it dies (a killed run
    would otherwise leave its warm workers waiting for jobs forever)."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="solarpipe-parent-watch", daemon=True).start()


def choose_backend(backend: str, workers: int | None) -> tuple[str, int]:
    """Resolve 'auto' and the worker count: MPI when launched under mpi4py.futures,
    else processes when more than one worker, else serial."""
    if backend not in BACKENDS:
        raise ValueError(f"parallel backend must be one of {BACKENDS}, not {backend!r}")
    if backend == "auto" and os.environ.get("SOLARPIPE_PARALLEL"):
        return choose_backend(os.environ["SOLARPIPE_PARALLEL"], workers)
    if backend in ("auto", "mpi") and _under_mpi():
        return "mpi", workers or mpi_worker_ranks()
    n = workers or usable_cores()
    if backend == "auto":
        return ("process" if n > 1 else "serial"), n
    return backend, n


def mpi_worker_ranks() -> int:
    """Worker ranks of an ``mpirun -n N python -m mpi4py.futures`` launch (N - 1)."""
    return max(1, int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) - 1)


def _under_mpi() -> bool:
    return int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1


class _NoMainPopen(popen_spawn_posix.Popen):
    """Spawn's Popen without the parent's ``__main__`` in the preparation data."""

    def _launch(self, process_obj):
        original = mp_spawn.get_preparation_data

        def without_main(name):
            data = original(name)
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
            return data

        mp_spawn.get_preparation_data = without_main
        try:
            super()._launch(process_obj)
        finally:
            mp_spawn.get_preparation_data = original


class _NoMainProcess(multiprocessing.get_context("spawn").Process):  # type: ignore[misc]
    @staticmethod
    def _Popen(process_obj):
        return _NoMainPopen(process_obj)


class _NoMainSpawnContext(type(multiprocessing.get_context("spawn"))):  # type: ignore[misc]
    Process = _NoMainProcess


def spawn_context() -> Any:
    """A 'spawn' multiprocessing context whose workers do not re-run the parent's main
    module. Spawn normally re-imports ``__main__`` in every child: inside a CASA session
    (``casashell -c script.py``) or a user's script without a ``__main__`` guard that
    re-runs the whole script (seen: the child restarted casashell and the script). Jobs
    are functions of importable modules, so the children never need ``__main__``."""
    return _NoMainSpawnContext()


def _warm_worker() -> int:
    """Import casatools and casatasks in a pool worker ahead of its first job."""
    import casatasks  # noqa: F401
    import casatools  # noqa: F401

    return os.getpid()


class WorkerPool:
    """Local worker processes kept for a whole run (backend 'process').

    Started once, at the start of a recipe, and warmed in the background (each
    worker imports casatools and casatasks, ~2-3 s, while the first stages run),
    then reused by every stage's jobs that do not need a fresh process: a stage's
    jobs no longer pay the start-up. ``with WorkerPool(2) as pool: run_jobs(...,
    pool=pool)``. A pool whose worker died is restarted for the next call.
    """

    def __init__(self, workers: int, omp_threads: int = 1):
        self.workers = max(1, int(workers))
        self.omp_threads = omp_threads
        self.executor = None
        self._warming: list = []  # the warm-up futures of the current executor

    def start(self) -> "WorkerPool":
        from concurrent.futures import ProcessPoolExecutor

        self.executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=spawn_context(),
                                            initializer=_init_worker, initargs=(self.omp_threads,))
        self._warming = [self.executor.submit(_warm_worker) for _ in range(self.workers)]
        return self

    def wait_warm(self) -> None:
        """Block until the workers have imported CASA (benchmarks time stages after this)."""
        for f in self._warming:
            f.result()

    def usable(self) -> "Any":
        """The executor, restarted if a worker died (a broken pool refuses new jobs)."""
        if self.executor is None or getattr(self.executor, "_broken", False):
            self.close()
            self.start()
        return self.executor

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None

    def __enter__(self) -> "WorkerPool":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def run_jobs(jobs: Sequence[Job], backend: str = "auto", workers: int | None = None,
             omp_threads: int = 1, raise_on_failure: bool = True, address: str | None = None,
             progress: Callable[[str], None] | None = None, fresh: bool = False,
             pool: WorkerPool | None = None) -> list[JobResult]:
    """Run independent jobs; results come back in the order of ``jobs``.

    With ``raise_on_failure`` a ParallelJobError naming the failed chunks is
    raised after every job has finished (its ``results`` keep the good ones).
    ``fresh``: every job in a newly spawned process (serial: one after the other;
    process pool: one job per worker process), for CASA steps whose result depends
    on what ran before in the process (tclean); MPI and dask workers are long-lived.
    ``pool``: the run's warm WorkerPool, used by the process backend for jobs that
    need no fresh process when its worker count is the one asked for.
    """
    jobs = list(jobs)
    backend, n = choose_backend(backend, workers)
    warm = backend == "process" and pool is not None and not fresh and pool.workers == n \
        and pool.omp_threads == omp_threads
    n = max(1, min(n, len(jobs) or 1))
    LOG.info("running %d job(s) with backend %s, %d worker(s), OMP threads %d%s", len(jobs), backend, n,
             omp_threads, ", one process per job" if fresh else "")
    if warm:  # the run's warm workers, whatever the number of jobs
        futures = [pool.usable().submit(execute_job, j) for j in jobs]  # type: ignore[union-attr]
        results = _collect(futures, jobs, progress)
    elif fresh and (backend == "serial" or n == 1 and backend == "process"):
        results = []
        for i, job in enumerate(jobs, 1):
            results.extend(_run_pool([job], 1, omp_threads, None, fresh=True))
            if progress:
                progress(f"job {i}/{len(jobs)} ({job.key}) done")
    elif backend == "serial" or n == 1 and backend == "process":
        results = []
        for i, job in enumerate(jobs, 1):
            results.append(execute_job(job))
            if progress:
                progress(f"job {i}/{len(jobs)} ({job.key}) done")
    elif backend == "process":
        results = _run_pool(jobs, n, omp_threads, progress, fresh=fresh)
    elif backend == "mpi":
        results = _run_mpi(jobs, n, omp_threads, progress)
    else:
        results = _run_dask(jobs, n, omp_threads, address, progress)
    failed = [r for r in results if not r.ok]
    for r in failed:
        LOG.error("chunk %s failed: %s", r.key, r.error)
    if failed and raise_on_failure:
        raise ParallelJobError(failed, results)
    return results


def _collect(futures, jobs, progress) -> list[JobResult]:
    out = []
    for i, (fut, job) in enumerate(zip(futures, jobs), 1):
        try:
            out.append(fut.result())
        except Exception as exc:  # noqa: BLE001 - a worker died (not the job raising)
            out.append(JobResult(job.key, False, error=f"worker failure: {type(exc).__name__}: {exc}"))
        if progress:
            progress(f"job {i}/{len(jobs)} ({job.key}) done")
    return out


def _run_pool(jobs: list[Job], n: int, omp_threads: int, progress, fresh: bool = False) -> list[JobResult]:
    from concurrent.futures import ProcessPoolExecutor

    ctx = spawn_context()  # no fork of a process holding casatools threads; no re-run of __main__
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                             initargs=(omp_threads,), max_tasks_per_child=1 if fresh else None) as pool:
        futures = [pool.submit(execute_job, j) for j in jobs]
        return _collect(futures, jobs, progress)


def _run_mpi(jobs: list[Job], n: int, omp_threads: int, progress) -> list[JobResult]:
    """Jobs on the worker ranks of an mpi4py.futures launch (or spawned ones elsewhere)."""
    try:
        from mpi4py.futures import MPIPoolExecutor
    except ImportError as exc:  # pragma: no cover - depends on the [mpi] extra
        raise SolarpipeError("backend 'mpi' needs mpi4py: pip install 'solarpipe[mpi]'") from exc
    for k in ("PRTE_ALLOW_RUN_AS_ROOT", "PRTE_ALLOW_RUN_AS_ROOT_CONFIRM",
              "OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"):
        os.environ.setdefault(k, "1")
    with MPIPoolExecutor(max_workers=None if _under_mpi() else n,
                         env={"OMP_NUM_THREADS": str(omp_threads)}) as pool:
        futures = [pool.submit(_mpi_job, j, omp_threads) for j in jobs]
        return _collect(futures, jobs, progress)


def _mpi_job(job: Job, omp_threads: int) -> JobResult:
    prepare_worker_environment(omp_threads)
    import solarpipe  # noqa: F401

    return execute_job(job)


def _run_dask(jobs: list[Job], n: int, omp_threads: int, address: str | None, progress) -> list[JobResult]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover
        raise SolarpipeError("backend 'dask' needs dask.distributed: pip install 'dask[distributed]'") from exc
    cluster = None
    if address:
        client = Client(address)
    else:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               env={"OMP_NUM_THREADS": str(omp_threads)})
        client = Client(cluster)
    try:
        futures = [client.submit(_mpi_job, j, omp_threads, pure=False) for j in jobs]
        return _collect(futures, jobs, progress)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def chunked(items: Iterable[Any], n: int) -> list[list[Any]]:
    """Split items into n nearly equal consecutive chunks (no empty chunk)."""
    items = list(items)
    n = max(1, min(n, len(items)))
    k, r = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + k + (1 if i < r else 0)
        out.append(items[start:end])
        start = end
    return out
