"""Session-scoped simulated EBs (built once per test session with tmp_path_factory).

* ``sim_eb_factory(**kwargs)`` -> :class:`solarpipe.simulate.SimulatedEB`; ``size='tiny'``
  unless given; results are cached per session by the keyword arguments, so
  two tests asking for the same EB share one simulation. Treat the returned MS as
  read-only (copy it before applycal/flagdata).
* ``tiny_eb``: tiny, noise and bad data on (the default test EB).
* ``tiny_eb_clean``: tiny, noise-free and without bad data (exact checks).
"""
from __future__ import annotations

import re

import pytest


@pytest.fixture(scope="session")
def sim_eb_factory(tmp_path_factory):
    """Build (once per session and per kwargs) a simulated EB."""
    cache: dict[tuple, object] = {}

    def make(**kwargs):
        kw = {"size": "tiny"}
        kw.update(kwargs)
        key = tuple(sorted((k, repr(v)) for k, v in kw.items()))
        if key not in cache:
            from solarpipe.simulate import simulate_eb

            name = "sim_" + re.sub(r"[^A-Za-z0-9_.-]+", "", "_".join(f"{k}-{v}" for k, v in key))[:60]
            out = tmp_path_factory.mktemp(name)
            cache[key] = simulate_eb(out, **kw)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tiny_eb(sim_eb_factory):
    """Tiny EB with noise and injected bad data."""
    return sim_eb_factory(noise=True, bad_data=True)


@pytest.fixture(scope="session")
def tiny_eb_clean(sim_eb_factory):
    """Tiny EB without noise and without bad data."""
    return sim_eb_factory(noise=False, bad_data=False)


@pytest.fixture(scope="session")
def small_calimage(sim_eb_factory, tmp_path_factory):
    """The `small` EB (noise, bad data) through the hsol_solar recipe (calibration, imaging,
    feather with the simulator's TP map) from Python:
    (SimulatedEB, Context). Shared by the calibration and imaging tests."""
    from solarpipe.context import Context
    from solarpipe.recipe import load_recipe
    from solarpipe.runner import new_context, run_recipe

    eb = sim_eb_factory(size="small", noise=True, bad_data=True)
    wd = tmp_path_factory.mktemp("calimage_small")
    run_recipe(load_recipe("hsol_solar"), new_context(wd), vis=str(eb.ms))
    return eb, Context.load(wd)
