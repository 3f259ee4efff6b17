"""One small layer to run independent heavy jobs: serial, local processes, MPI, dask.

A job is a module-level function and its arguments; it opens the MS read-only
or writes its own output (a caltable, an image, a sub-MS) and never the
context: the parent merges the results. Backends:

* ``serial``: in this process (the default when one worker is asked for);
* ``process``: a local pool of spawned processes (default on one machine,
  workers = usable cores);
* ``mpi``: mpi4py.futures (``mpirun -n N python -m mpi4py.futures -m solarpipe run ...``
  on a cluster, or spawned workers); Open MPI only (casatools bundles it);
* ``dask``: an existing dask.distributed cluster (``address``) or a LocalCluster.

Every worker gets a deliberate OpenMP thread count (``omp_threads``, 1 by
default: casatools' default threads oversubscribe small machines) and, under
MPI, loses its Open MPI rank variables before importing casatasks so that it
does not turn into a casampi server. A job that raises is reported with its
chunk name; the other jobs' results are kept.
"""
from __future__ import annotations

import logging
import os
import time
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
    import solarpipe  # noqa: F401  (offline CASA configuration before casatools loads)


def choose_backend(backend: str, workers: int | None) -> tuple[str, int]:
    """Resolve 'auto' and the worker count: MPI when launched under mpi4py.futures,
    else processes when more than one worker, else serial."""
    if backend not in BACKENDS:
        raise ValueError(f"parallel backend must be one of {BACKENDS}, not {backend!r}")
    n = workers or usable_cores()
    if backend == "auto":
        if os.environ.get("SOLARPIPE_PARALLEL"):
            return choose_backend(os.environ["SOLARPIPE_PARALLEL"], workers)
        if _under_mpi():
            return "mpi", n
        return ("process" if n > 1 else "serial"), n
    return backend, n


def _under_mpi() -> bool:
    return any(k.startswith("OMPI_COMM_WORLD_SIZE") for k in os.environ) and \
        int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1


def run_jobs(jobs: Sequence[Job], backend: str = "auto", workers: int | None = None,
             omp_threads: int = 1, raise_on_failure: bool = True, address: str | None = None,
             progress: Callable[[str], None] | None = None) -> list[JobResult]:
    """Run independent jobs; results come back in the order of ``jobs``.

    With ``raise_on_failure`` a ParallelJobError naming the failed chunks is
    raised after every job has finished (its ``results`` keep the good ones).
    """
    jobs = list(jobs)
    backend, n = choose_backend(backend, workers)
    n = max(1, min(n, len(jobs) or 1))
    LOG.info("running %d job(s) with backend %s, %d worker(s), OMP threads %d", len(jobs), backend, n, omp_threads)
    if backend == "serial" or n == 1 and backend != "mpi":
        results = []
        for i, job in enumerate(jobs, 1):
            results.append(execute_job(job))
            if progress:
                progress(f"job {i}/{len(jobs)} ({job.key}) done")
    elif backend == "process":
        results = _run_pool(jobs, n, omp_threads, progress)
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


def run_in_fresh_process(job: Job, omp_threads: int = 1) -> JobResult:
    """Run one job in a newly spawned process: a clean CASA state, whatever ran before
    in this one (see CasaCalls.tasks_in_fresh_process)."""
    return _run_pool([job], 1, omp_threads, None)[0]


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


def _run_pool(jobs: list[Job], n: int, omp_threads: int, progress) -> list[JobResult]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")  # no fork of a process holding casatools threads
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                             initargs=(omp_threads,)) as pool:
        futures = [pool.submit(execute_job, j) for j in jobs]
        return _collect(futures, jobs, progress)


def _run_mpi(jobs: list[Job], n: int, omp_threads: int, progress) -> list[JobResult]:
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
