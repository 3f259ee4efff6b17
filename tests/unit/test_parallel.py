"""The parallel layer: same answers serial and in a process pool, clear chunk errors."""
import pytest

from parallel_jobs import env_threads, maybe_fail, square
from solarpipe.parallel import Job, ParallelJobError, chunked, choose_backend, run_jobs


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_same_results(backend):
    res = run_jobs([Job(f"c{i}", square, (i,)) for i in range(6)], backend=backend, workers=2)
    assert [r.value for r in res] == [i * i for i in range(6)]
    assert all(r.ok and r.peak_rss_mb > 0 for r in res)


def test_failed_chunk_named_and_others_kept():
    jobs = [Job(f"scan{i}", maybe_fail, (i,)) for i in range(5)]
    with pytest.raises(ParallelJobError, match="chunk scan3: ValueError: bad chunk data") as err:
        run_jobs(jobs, backend="process", workers=2)
    good = [r.value for r in err.value.results if r.ok]
    assert good == [0, 1, 2, 4]
    res = run_jobs(jobs, backend="serial", raise_on_failure=False)
    assert [r.ok for r in res] == [True, True, True, False, True]


def test_worker_environment(monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    res = run_jobs([Job(str(i), env_threads, (i,)) for i in range(2)], backend="process", workers=2, omp_threads=1)
    for r in res:
        threads, rank, pid = r.value
        assert threads == "1" and rank is None


def test_choose_backend_and_chunks(monkeypatch):
    monkeypatch.delenv("SOLARPIPE_PARALLEL", raising=False)
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE", raising=False)
    assert choose_backend("auto", 1) == ("serial", 1)
    assert choose_backend("auto", 2) == ("process", 2)
    with pytest.raises(ValueError):
        choose_backend("threads", 2)
    assert chunked(range(7), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert chunked([1], 4) == [[1]]
