"""The pipeline context: everything later stages need, as versioned JSON.

Unlike the ALMA pipeline's pickle, the context is typed and written as JSON,
atomically (temporary file + fsync + rename) after every stage, with one
snapshot per completed stage in ``context_snapshots/``. So a run killed at
any moment leaves the last good context readable, ``solarpipe resume``
continues after the last completed stage, and stage N can be re-run from the
snapshot written after stage N-1.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ContextError
from .observing import ObservingRun

LOG = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CONTEXT_FILE = "context.json"
SNAPSHOT_DIR = "context_snapshots"


def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class CalApplication:
    """One entry of the cal library: a table and what it applies to, in order."""

    gaintable: str
    caltype: str  # 'tsys', 'tsys+tant', 'bandpass', 'gain', 'fluxscale', 'selfcal'...
    stage: int
    target: str = "all"  # which data it calibrates: 'sun', 'calibrators' or 'all'
    intents: str = ""  # e.g. '*OBSERVE_TARGET*' ('' = all)
    fields: str = ""
    spwmap: list[int] = field(default_factory=list)
    interp: str = "linear"
    calwt: bool = False
    gainfield: str = ""
    order: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class StageRecord:
    """What happened in one stage: parameters, status, timing, QA, results."""

    number: int
    task: str
    params: dict[str, Any] = field(default_factory=dict)  # as given by the user/recipe
    status: str = "running"  # 'running' | 'ok' | 'failed'
    started: str = ""
    finished: str = ""
    duration_s: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)  # Results.to_dict()
    error: str | None = None

    @property
    def qa(self) -> list[dict[str, Any]]:
        return list(self.results.get("qa", []))

    @property
    def representative_score(self) -> float | None:
        scores = [q["score"] for q in self.qa]
        if self.status == "failed":
            scores.append(0.0)
        return min(scores) if scores else None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Context:
    """State shared by all stages of one pipeline run in one working directory."""

    workdir: str
    name: str = "solarpipe"
    schema: int = SCHEMA_VERSION
    created: str = field(default_factory=utcnow)
    pipeline_version: str = ""
    casa_versions: dict[str, str] = field(default_factory=dict)
    observing_runs: list[ObservingRun] = field(default_factory=list)
    callibrary: list[CalApplication] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    stages: list[StageRecord] = field(default_factory=list)
    recipe: dict[str, Any] | None = None  # Recipe.to_dict(), to resume
    flux_calibrator: dict[str, Any] | None = None  # hsol_fluxcalselect's choice
    refants: list[str] = field(default_factory=list)  # hsol_refant's ranked list
    #: how the run spreads heavy jobs (solarpipe.parallel.ParallelSettings.to_dict());
    #: kept as asked ('auto' stays 'auto'), resolved where the jobs run
    parallel: dict[str, Any] = field(default_factory=dict)

    # -- convenience ------------------------------------------------------
    @property
    def path(self) -> Path:
        return Path(self.workdir) / CONTEXT_FILE

    @property
    def stage_counter(self) -> int:
        """Number of the last stage recorded (completed or failed)."""
        return self.stages[-1].number if self.stages else 0

    @property
    def last_completed_stage(self) -> int:
        done = [s.number for s in self.stages if s.status == "ok"]
        return max(done) if done else 0

    @property
    def observing_run(self) -> ObservingRun:
        """The (first) observing run; most solar EBs are processed one at a time."""
        if not self.observing_runs:
            raise ContextError(
                f"no measurement set in the context at {self.path}: run hsol_importdata first")
        return self.observing_runs[0]

    def add_cal(self, cal: CalApplication) -> None:
        """Append to the cal library (replacing an entry of the same table and target)."""
        self.callibrary = [c for c in self.callibrary
                           if (c.gaintable, c.target) != (cal.gaintable, cal.target)]
        cal.order = len(self.callibrary)
        self.callibrary.append(cal)

    def cal_args(self, target: str, exclude_types: tuple[str, ...] = (),
                 for_applycal: bool = False) -> dict[str, list]:
        """gaintable/gainfield/interp/spwmap (and calwt, for applycal) lists to pre-apply
        in a solver or to apply to ``target`` ('sun' or 'calibrators'), in cal-library order."""
        out: dict[str, list] = {"gaintable": [], "gainfield": [], "interp": [], "spwmap": [], "calwt": []}
        for cal in sorted(self.callibrary, key=lambda c: c.order):
            if cal.target not in (target, "all") or cal.caltype in exclude_types:
                continue
            out["gaintable"].append(cal.gaintable)
            out["gainfield"].append(cal.gainfield)
            out["interp"].append(cal.interp)
            out["spwmap"].append(list(cal.spwmap))
            out["calwt"].append(cal.calwt)
        if not for_applycal:
            del out["calwt"]
        return out

    # -- (de)serialisation ----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "workdir": self.workdir,
            "name": self.name,
            "created": self.created,
            "pipeline_version": self.pipeline_version,
            "casa_versions": self.casa_versions,
            "observing_runs": [o.to_dict() for o in self.observing_runs],
            "callibrary": [c.to_dict() for c in self.callibrary],
            "images": self.images,
            "products": self.products,
            "stages": [s.to_dict() for s in self.stages],
            "recipe": self.recipe,
            "flux_calibrator": self.flux_calibrator,
            "refants": self.refants,
            "parallel": self.parallel,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> "Context":
        schema = d.get("schema")
        if not isinstance(schema, int):
            raise ContextError(f"{source}: not a solarpipe context (no integer 'schema' field)")
        if schema > SCHEMA_VERSION:
            raise ContextError(
                f"{source}: context schema {schema} was written by a newer solarpipe "
                f"(this one reads up to schema {SCHEMA_VERSION}); upgrade solarpipe to resume it")
        try:
            return cls(
                workdir=d["workdir"],
                name=d.get("name", "solarpipe"),
                schema=SCHEMA_VERSION,
                created=d.get("created", ""),
                pipeline_version=d.get("pipeline_version", ""),
                casa_versions=d.get("casa_versions", {}),
                observing_runs=[ObservingRun.from_dict(o) for o in d.get("observing_runs", [])],
                callibrary=[CalApplication(**c) for c in d.get("callibrary", [])],
                images=d.get("images", []),
                products=d.get("products", []),
                stages=[StageRecord(**s) for s in d.get("stages", [])],
                recipe=d.get("recipe"),
                flux_calibrator=d.get("flux_calibrator"),
                refants=list(d.get("refants", [])),
                parallel=dict(d.get("parallel") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ContextError(f"{source}: context content is invalid ({exc!r})") from exc

    def save(self) -> Path:
        """Write context.json atomically; the previous file stays valid until the rename."""
        atomic_write_json(self.path, self.to_dict())
        return self.path

    def snapshot(self, stage: int) -> Path:
        """Write the snapshot 'state after stage N' (N=0: the initial context)."""
        path = snapshot_path(self.workdir, stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Context":
        """Read a context file (or a working directory holding context.json)."""
        p = Path(path)
        if p.is_dir():
            p = p / CONTEXT_FILE
        if not p.exists():
            raise ContextError(f"no solarpipe context at {p}: start a run first (solarpipe run ...)")
        try:
            text = p.read_text()
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ContextError(
                f"{p}: context file is corrupted ({exc}); the per-stage snapshots in "
                f"{p.parent / SNAPSHOT_DIR} can be used to restart from a known stage") from exc
        if not isinstance(data, dict):
            raise ContextError(f"{p}: context file is corrupted (top level is not an object)")
        ctx = cls.from_dict(data, source=str(p))
        ctx.workdir = str(p.parent.resolve()) if p.name == CONTEXT_FILE else ctx.workdir
        return ctx

    @classmethod
    def from_snapshot(cls, workdir: str | os.PathLike, stage: int) -> "Context":
        """The context as it was after ``stage`` completed (0 = before the first stage)."""
        path = snapshot_path(workdir, stage)
        if not path.exists():
            raise ContextError(f"no snapshot for stage {stage} in {path.parent}")
        ctx = cls.load(path)
        ctx.workdir = str(Path(workdir).resolve())
        return ctx


def snapshot_path(workdir: str | os.PathLike, stage: int) -> Path:
    return Path(workdir) / SNAPSHOT_DIR / f"after_stage{stage:03d}.json"


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON so that a crash at any point leaves either the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, default=_json_default)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _json_default(obj: Any) -> Any:
    """numpy scalars/arrays and paths inside results serialise as plain JSON."""
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
