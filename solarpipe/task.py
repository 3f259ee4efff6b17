"""The task contract every hsol_* task follows.

    Inputs  (dataclass; None = "let the heuristic decide")
      -> Task.prepare()   gathers data, decides by calling heuristics, acts
                          only through CasaCalls (every CASA call recorded)
      -> Task.analyse()   turns raw outcomes into Results
      -> Task.qa()        QA scores in [0, 1]
      -> Results.merge_with_context()  the only place the context changes

Tasks never write the context themselves and never call casatasks behind
the recorder's back; the runner (solarpipe.runner) drives them.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .qa import QAScore

if TYPE_CHECKING:  # pragma: no cover
    from .casacalls import CasaCalls
    from .context import Context


@dataclass
class Decision:
    """A value decided by a heuristic (or given by the user), and why."""

    name: str
    value: Any
    reason: str
    by: str = "heuristic"  # 'heuristic' | 'user' | 'default'

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Plot:
    """A plot made at task time (the MS changes later), referenced by path."""

    path: str  # relative to the weblog directory
    caption: str
    group: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Results:
    """Plain data a task returns: decisions, QA, plots, task-specific summary."""

    task: str
    stage: int
    inputs: dict[str, Any] = field(default_factory=dict)  # resolved values
    decisions: list[Decision] = field(default_factory=list)
    qa: list[QAScore] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)  # task-specific, JSON-able
    messages: list[str] = field(default_factory=list)

    def decide(self, name: str, value: Any, reason: str, by: str = "heuristic") -> Any:
        """Record a decision and return its value (so code reads `x = r.decide(...)`)."""
        self.decisions.append(Decision(name, value, reason, by))
        self.inputs[name] = value
        return value

    def merge_with_context(self, context: "Context") -> None:
        """Register products in the context; tasks override. Default: nothing."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "stage": self.stage,
            "inputs": self.inputs,
            "decisions": [d.to_dict() for d in self.decisions],
            "qa": [q.to_dict() for q in self.qa],
            "plots": [p.to_dict() for p in self.plots],
            "summary": self.summary,
            "messages": self.messages,
        }


class CalResults(Results):
    """Results of a calibration task: the tables it adds to the cal library, in order."""

    cal_applications: list = []  # list[CalApplication], set per instance

    def merge_with_context(self, context: "Context") -> None:
        for cal in self.cal_applications:
            context.add_cal(cal)


class ImageResults(Results):
    """Results of an imaging task: the images it adds to the context's image list
    (an image of the same name replaces the earlier one)."""

    images: list = []  # list[dict], set per instance

    def merge_with_context(self, context: "Context") -> None:
        names = {i["name"] for i in self.images}
        context.images = [i for i in context.images if i.get("name") not in names] + list(self.images)


@dataclass
class TaskInputs:
    """Base of every task's Inputs. ``vis`` None means: the context's MS."""

    vis: str | None = None


class Task:
    """Base class: subclasses set ``name``, ``Inputs``, ``topic`` and implement
    ``prepare`` and ``analyse`` (and usually ``qa``)."""

    name: ClassVar[str] = ""
    Inputs: ClassVar[type[TaskInputs]] = TaskInputs
    topic: ClassVar[str] = "dataset"  # weblog by-topic grouping
    #: True if the task needs an MS already in the context (all but importdata)
    needs_observing_run: ClassVar[bool] = True
    #: True if the task makes CORRECTED_DATA when the MS has none (its disk need is then
    #: about the MS size; see runner.check_disk_space)
    creates_corrected: ClassVar[bool] = False

    def __init__(self, context: "Context", inputs: TaskInputs, casa: "CasaCalls", stage: int):
        self.context = context
        self.inputs = inputs
        self.casa = casa
        self.stage = stage

    # -- the contract ---------------------------------------------------
    def prepare(self) -> Any:
        raise NotImplementedError

    def analyse(self, raw: Any) -> Results:
        raise NotImplementedError

    def qa(self, results: Results) -> list[QAScore]:
        return []

    # -- helpers for subclasses ----------------------------------------
    @property
    def stage_dir(self) -> Path:
        """Weblog directory of this stage (plots go here)."""
        d = Path(self.context.workdir) / "weblog" / f"stage{self.stage}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def start_flags(self, vis: str, comment: str) -> str:
        """Save the flags before this stage flags anything; on a re-run of the stage (e.g.
        a resume after a kill mid-stage) restore that version instead, so it starts from
        the same flags. Returns the version name."""
        version = f"{self.name}_stage{self.stage}_before"
        if Path(f"{vis}.flagversions", f"flags.{version}").exists():
            self.casa.task("flagmanager", vis=vis, mode="restore", versionname=version,
                           _note="re-run of this stage: restore the flags saved by its first attempt")
        else:
            self.casa.task("flagmanager", vis=vis, mode="save", versionname=version, comment=comment,
                           merge="replace", _note="save the flags first: every flagging step can be undone")
        return version

    def new_results(self) -> Results:
        return Results(task=self.name, stage=self.stage,
                       inputs={k: v for k, v in dataclasses.asdict(self.inputs).items()})

    def execute(self) -> Results:
        """prepare -> analyse -> qa; the runner wraps this with logging and saving."""
        raw = self.prepare()
        results = self.analyse(raw)
        results.qa.extend(self.qa(results))
        return results


def input_fields(inputs_cls: type[TaskInputs]) -> dict[str, tuple[Any, Any]]:
    """Parameter name -> (type hint, default) of an Inputs dataclass."""
    hints = typing.get_type_hints(inputs_cls)
    out = {}
    for f in dataclasses.fields(inputs_cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        out[f.name] = (hints.get(f.name, Any), default)
    return out
