"""The explicit list of tasks: name -> "module:Class".

Nothing registers itself on import; adding a task means adding a line here.
Classes are imported on first use so listing tasks stays cheap.
"""
from __future__ import annotations

import importlib

from ..errors import BadInputError
from ..task import Task

TASKS: dict[str, str] = {
    "hsol_importdata": "solarpipe.tasks.importdata:ImportData",
    "hsol_flagdata": "solarpipe.tasks.flagdata:FlagData",
    "hsol_ampcal": "solarpipe.tasks.ampcal:AmpCal",
    "hsol_fluxcalselect": "solarpipe.tasks.fluxcalselect:FluxCalSelect",
    "hsol_refant": "solarpipe.tasks.refant:RefAnt",
    "hsol_bandpass": "solarpipe.tasks.bandpass:Bandpass",
    "hsol_gaincal": "solarpipe.tasks.gaincal:Gaincal",
    "hsol_applycal": "solarpipe.tasks.applycal:Applycal",
    "hsol_imaging": "solarpipe.tasks.imaging:Imaging",
    "hsol_selfcal": "solarpipe.tasks.selfcal:Selfcal",
    "hsol_feather": "solarpipe.tasks.feather:Feather",
    "hsol_tdimaging": "solarpipe.tasks.tdimaging:TDImaging",
}


def task_names() -> list[str]:
    return list(TASKS)


def get_task(name: str) -> type[Task]:
    """The Task class registered as ``name``; BadInputError for an unknown name."""
    try:
        target = TASKS[name]
    except KeyError:
        raise BadInputError(
            f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)
