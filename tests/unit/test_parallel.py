"""The parallel layer: same answers serial and in a process pool, clear chunk errors."""
import os

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


def test_parallel_settings_resolve_and_validate(monkeypatch):
    from solarpipe.parallel import ParallelSettings

    monkeypatch.delenv("SOLARPIPE_PARALLEL", raising=False)
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE", raising=False)
    assert ParallelSettings("serial", 1).resolved() == ("serial", 1)
    assert ParallelSettings("process", 3).resolved() == ("process", 3)
    assert ParallelSettings.from_dict(ParallelSettings("process", 2, 2).to_dict()) == ParallelSettings("process", 2, 2)
    assert ParallelSettings.from_dict({}) == ParallelSettings()
    for bad in ({"backend": "threads"}, {"workers": 0}, {"omp_threads": 0}):
        with pytest.raises(ValueError):
            ParallelSettings.from_dict(bad)
    # under mpirun -n 3 (mpi4py.futures): auto -> MPI with the 2 worker ranks
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "3")
    assert ParallelSettings().resolved() == ("mpi", 2)
    assert ParallelSettings("serial").resolved()[0] == "serial"


def test_fresh_jobs_each_get_a_new_process():
    res = run_jobs([Job(str(i), env_threads, (i,)) for i in range(4)], backend="process", workers=2, fresh=True)
    assert len({r.value[2] for r in res}) == 4
    res = run_jobs([Job(str(i), env_threads, (i,)) for i in range(2)], backend="serial", fresh=True)
    assert len({r.value[2] for r in res}) == 2


def test_casampi_detach(monkeypatch):
    """Under mpirun the Open MPI rank is hidden from casampi (kept in SOLARPIPE_MPI_RANK)."""
    import os

    from solarpipe.casaenv import detach_from_casampi

    monkeypatch.delenv("SOLARPIPE_CASAMPI", raising=False)
    monkeypatch.delenv("SOLARPIPE_MPI_RANK", raising=False)
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "2")
    assert detach_from_casampi() == 2
    assert "OMPI_COMM_WORLD_RANK" not in os.environ and os.environ["SOLARPIPE_MPI_RANK"] == "2"
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    monkeypatch.setenv("SOLARPIPE_CASAMPI", "1")
    assert detach_from_casampi() is None and os.environ["OMPI_COMM_WORLD_RANK"] == "1"


def test_split_heuristics_and_cluster_model():
    from solarpipe.heuristics.parallel import (fan_out, n_sub_ms, project_cluster_time,
                                               use_multi_ms)

    assert use_multi_ms(10e9, 1)[0] is False
    assert use_multi_ms(1e9, 8)[0] is False
    assert use_multi_ms(10e9, 2)[0] is True
    assert use_multi_ms(1e6, 1, "yes") == (True, "given")
    with pytest.raises(ValueError):
        use_multi_ms(1e9, 2, "maybe")
    assert n_sub_ms(40, 2) == 8 and n_sub_ms(5, 64) == 5 and n_sub_ms(0, 2) == 1
    assert n_sub_ms(40, 2, ms_bytes=0.5e9) == 2 and n_sub_ms(40, 64, ms_bytes=10e9) == 40
    assert fan_out(8, 2) and not fan_out(1, 2) and not fan_out(8, 1)
    # 4 equal chunks on 2 ranks: half the time (+ start-up); 64 ranks cannot beat the longest chunk
    p = project_cluster_time([10.0] * 4, 0.0, 2, start_s=0.0)
    assert p.parallel_s == 20.0 and p.speedup == 2.0
    p = project_cluster_time([100.0, 1.0, 1.0], 5.0, 64, start_s=3.0)
    assert p.parallel_s == 5.0 + 103.0 and p.critical_chunk_s == 100.0
    # a shared file system with 4 streams caps the I/O part
    p = project_cluster_time([10.0] * 64, 0.0, 64, start_s=0.0, io_share=1.0, io_streams=4)
    assert p.parallel_s == 160.0


def test_worker_pool_is_reused_across_calls_and_restarted_when_broken():
    from solarpipe.parallel import WorkerPool

    with WorkerPool(2) as pool:
        first = run_jobs([Job(str(i), env_threads, (i,)) for i in range(4)], backend="process", workers=2, pool=pool)
        second = run_jobs([Job(str(i), env_threads, (i,)) for i in range(4)], backend="process", workers=2, pool=pool)
        pids = {r.value[2] for r in first} | {r.value[2] for r in second}
        assert len(pids) <= 2  # the same two warm workers served both calls
        # fresh jobs do not use it (tclean needs a new process)
        fresh = run_jobs([Job(str(i), env_threads, (i,)) for i in range(2)], backend="process", workers=2,
                         pool=pool, fresh=True)
        assert not ({r.value[2] for r in fresh} & pids)
        # a worker that dies breaks the executor; the next call gets a new one
        res = run_jobs([Job("die", os._exit, (1,))], backend="process", workers=2, pool=pool, raise_on_failure=False)
        assert not res[0].ok and "worker failure" in res[0].error
        again = run_jobs([Job("ok", square, (3,))], backend="process", workers=2, pool=pool)
        assert again[0].value == 9


def test_pool_workers_end_with_their_parent(tmp_path):
    """A killed pipeline process does not leave its warm workers behind."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        f"sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parents[1])!r})\n"
        "from parallel_jobs import env_threads\n"
        "from solarpipe.parallel import Job, WorkerPool, run_jobs\n"
        "if __name__ == '__main__':\n"
        "    pool = WorkerPool(2).start()\n"
        "    res = run_jobs([Job(str(i), env_threads, (i,)) for i in range(4)], backend='process', workers=2, pool=pool)\n"
        "    print(' '.join(str(p) for p in sorted({r.value[2] for r in res})), flush=True)\n"
        "    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert pids
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    alive = pids
    while alive and time.time() < deadline:
        time.sleep(0.5)
        alive = [p for p in pids if os.path.exists(f"/proc/{p}") and
                 "Z" not in open(f"/proc/{p}/stat").read().split()[2]]
    assert not alive, f"workers {alive} outlived their killed parent"
