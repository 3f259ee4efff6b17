"""Module-level job functions for the parallel tests (picklable)."""
import os


def square(x):
    return x * x


def maybe_fail(x):
    if x == 3:
        raise ValueError("bad chunk data")
    return x


def env_threads(_):
    return os.environ.get("OMP_NUM_THREADS"), os.environ.get("OMPI_COMM_WORLD_RANK"), os.getpid()
