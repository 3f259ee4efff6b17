"""Interactive task calls: ``hsol_importdata(vis='x.ms')`` in Python or a CASA session.

Like the ALMA pipeline's h_init/h_save, a session context is kept in the
working directory (``context.json``, the current directory by default); each
call continues from it. The function signatures are built from the tasks'
Inputs dataclasses, so ``help(hsol_importdata)`` lists the parameters.
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable

from .context import Context
from .runner import new_context, open_or_create_context, run_stage
from .task import input_fields
from .tasks.registry import get_task, task_names


def h_init(workdir: str | os.PathLike | None = None) -> Context:
    """Start a new session context in ``workdir`` (default: the current directory)."""
    return new_context(workdir or os.getcwd())


def h_save(workdir: str | os.PathLike | None = None) -> Path:
    """The context is saved after every stage; this returns where it is."""
    return Context.load(Path(workdir or os.getcwd()) / "context.json").path


def _make(name: str) -> Callable[..., dict[str, Any]]:
    task_cls = get_task(name)

    def call(workdir: str | os.PathLike | None = None, **params: Any) -> dict[str, Any]:
        ctx = open_or_create_context(workdir or os.getcwd())
        given = {k: v for k, v in params.items() if v is not None}
        record = run_stage(ctx, name, given, progress=print)
        return record.results

    fields = input_fields(task_cls.Inputs)
    sig = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=h)
           for k, (h, d) in fields.items()]
    sig.append(inspect.Parameter("workdir", inspect.Parameter.KEYWORD_ONLY, default=None))
    call.__signature__ = inspect.Signature(sig)  # type: ignore[attr-defined]
    call.__name__ = call.__qualname__ = name
    call.__doc__ = (f"{name}: {(task_cls.__module__ and (inspect.getdoc(inspect.getmodule(task_cls)) or ''))}\n\n"
                    f"Parameters: {inspect.getdoc(task_cls.Inputs) or ''}\n"
                    "Returns the stage results (a dict); the session context in the working "
                    "directory is updated.")
    return call


def __getattr__(name: str) -> Callable[..., dict[str, Any]]:
    if name in task_names():
        return _make(name)
    raise AttributeError(name)


__all__ = ["h_init", "h_save", *task_names()]
