"""How to split the heavy work of a run, as pure functions (no CASA).

The unit of parallel work is a job that reads an MS and writes only its own
output (a sub-MS, a caltable, an image). Visibility-writing steps (applycal)
need the data split first: two writers on one MS deadlock on its table lock,
so a run with several workers and a large EB works on a multi-MS partitioned by
scan, and the application runs one sub-MS per job. Small EBs are not split:
the copy is as fast as a partition and a worker's start-up (~3 s importing
casatools) would cost more than it saves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

#: MS size above which a run with several workers is partitioned into a multi-MS
MULTI_MS_MIN_BYTES = 2e9
#: smallest average sub-MS worth a job of its own
MIN_CHUNK_BYTES = 0.25e9
#: seconds to start a worker process that imports casatools/casatasks (measured here: 2.3-3.1 s)
WORKER_START_S = 3.0


def use_multi_ms(ms_bytes: float, workers: int, requested: str = "automatic",
                 min_bytes: float = MULTI_MS_MIN_BYTES) -> tuple[bool, str]:
    """(partition into a multi-MS?, why). ``requested``: 'automatic', 'yes' or 'no'."""
    if requested not in ("automatic", "yes", "no"):
        raise ValueError(f"createmms must be 'automatic', 'yes' or 'no', not {requested!r}")
    if requested != "automatic":
        return requested == "yes", "given"
    if workers < 2:
        return False, "one worker: nothing to gain from splitting the MS"
    if ms_bytes < min_bytes:
        return False, (f"MS of {ms_bytes / 1e9:.2f} GB < {min_bytes / 1e9:.1f} GB: worker start-up would cost "
                       "more than a split application saves")
    return True, (f"MS of {ms_bytes / 1e9:.1f} GB and {workers} workers: partitioned by scan so that "
                  "applycal runs one sub-MS per job")


def n_sub_ms(n_scans: int, workers: int, ms_bytes: float | None = None,
             min_chunk_bytes: float = MIN_CHUNK_BYTES) -> int:
    """Sub-MSs of a scan partition: a few per worker (balances scans of unequal length),
    never more than the scans, and none smaller than ``min_chunk_bytes`` on average
    (each job pays ~1 s of applycal set-up per target group)."""
    n = min(n_scans, 4 * max(1, workers))
    if ms_bytes is not None:
        n = min(n, max(workers, int(ms_bytes // min_chunk_bytes)))
    return max(1, n)


def fan_out(n_chunks: int, workers: int) -> bool:
    """Run chunks as parallel jobs only when there are several chunks and several workers."""
    return n_chunks > 1 and workers > 1


@dataclass
class ClusterProjection:
    """A paper model of a run on ``ranks`` MPI worker ranks (not a measurement)."""

    ranks: int
    serial_s: float
    parallel_s: float
    speedup: float
    efficiency: float
    critical_chunk_s: float


def project_cluster_time(chunk_seconds: Sequence[float], serial_s: float, ranks: int,
                         start_s: float = WORKER_START_S, io_share: float = 0.0,
                         io_streams: int | None = None) -> ClusterProjection:
    """Wall time of independent chunks on ``ranks`` workers plus the serial part.

    Chunks are handed out longest first to the least-loaded rank (the greedy bound
    mpi4py.futures approaches); each rank pays ``start_s`` once. ``io_share`` of each
    chunk is I/O that only ``io_streams`` ranks can do at full speed at once (a shared
    file system); None means I/O scales with the ranks.
    """
    ranks = max(1, int(ranks))
    loads = [start_s] * ranks
    for c in sorted(chunk_seconds, reverse=True):
        k = loads.index(min(loads))
        loads[k] += c
    compute = max(loads) if chunk_seconds else 0.0
    total_chunks = float(sum(chunk_seconds))
    if io_streams is not None and io_share > 0:
        # the I/O part cannot go faster than io_streams ranks at once
        compute = max(compute, io_share * total_chunks / max(1, io_streams))
    parallel = serial_s + compute
    baseline = serial_s + total_chunks
    speedup = baseline / parallel if parallel > 0 else math.nan
    return ClusterProjection(ranks, baseline, parallel, speedup, speedup / ranks,
                             max(chunk_seconds) if chunk_seconds else 0.0)
