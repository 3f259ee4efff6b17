"""Recipes: an ordered list of task steps (with optional breakpoints).

Two formats, one in-memory model (:class:`Recipe` of :class:`Step`):

* YAML (primary)::

      name: hsol_calimage
      description: import, calibrate, image
      steps:
        - hsol_importdata: {}
        - breakpoint
        - hsol_ampcal: {tant_fallback: 7000.0}

  or just the list of steps. A step is a one-key mapping ``task: {params}``
  (params may be empty or null) or the string ``breakpoint``.
* The ALMA pipeline's XML ``ProcessingProcedure`` (``<ProcessingCommand>`` with
  ``<Command>`` and ``<ParameterSet>``), so a procedure written for that world
  runs here. XML values are text and are converted with the task Inputs' type
  hints; ``h_init``/``h_save`` are skipped (solarpipe manages its context).

Everything is validated at load, before any stage runs: a bad recipe raises one
:class:`~solarpipe.errors.RecipeError` that lists every problem with file, line,
step and task. No CASA import here: checking a recipe must stay cheap.
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import logging
import os
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

import yaml

from .errors import BadInputError, RecipeError
from .task import Task
from .tasks import registry as task_registry

LOG = logging.getLogger(__name__)

BREAKPOINT = "breakpoint"
#: ALMA pipeline commands that solarpipe skips (it creates and saves its own context).
IGNORED_XML_COMMANDS = ("h_init", "h_save")
#: The package holding the recipes shipped with solarpipe (package data).
RECIPE_PACKAGE = "solarpipe.recipes"
RECIPE_SUFFIXES = (".yaml", ".yml", ".xml")
YAML_TOP_KEYS = ("name", "description", "steps")

RecipeFormat = Literal["yaml", "xml"]


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------
@dataclass
class Step:
    """One step of a recipe: a task with its (validated, typed) parameters, or a breakpoint.

    ``line`` is where the step is written in the recipe file (1-based), ``index``
    its 1-based position in :attr:`Recipe.steps`, ``stage`` its stage number
    (counting task steps only; None for a breakpoint).
    """

    task: str
    params: dict[str, Any] = field(default_factory=dict)
    line: int | None = None
    index: int = 0
    is_breakpoint: bool = False
    stage: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Step":
        return cls(task=str(data["task"]), params=dict(data.get("params") or {}),
                   line=data.get("line"), index=int(data.get("index", 0)),
                   is_breakpoint=bool(data.get("is_breakpoint", False)),
                   stage=data.get("stage"))


@dataclass
class Recipe:
    """A loaded, validated recipe. Stage and index numbers are (re)assigned on creation."""

    name: str
    description: str = ""
    steps: list[Step] = field(default_factory=list)
    path: str = ""
    format: RecipeFormat = "yaml"

    def __post_init__(self) -> None:
        self.renumber()

    def renumber(self) -> None:
        """Set each step's ``index`` and ``stage`` from its position."""
        stage = 0
        for i, step in enumerate(self.steps, start=1):
            step.index = i
            if step.is_breakpoint:
                step.stage = None
            else:
                stage += 1
                step.stage = stage

    @property
    def stages(self) -> list[Step]:
        """The task steps (breakpoints left out), in order."""
        return [s for s in self.steps if not s.is_breakpoint]

    @property
    def n_stages(self) -> int:
        return len(self.stages)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, stored in the context so a run can resume."""
        return {"name": self.name, "description": self.description, "path": self.path,
                "format": self.format, "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Recipe":
        """Inverse of :meth:`to_dict`; RecipeError if the stored form is malformed."""
        try:
            fmt = data.get("format", "yaml")
            if fmt not in ("yaml", "xml"):
                raise ValueError(f"format {fmt!r} is neither 'yaml' nor 'xml'")
            return cls(name=str(data["name"]), description=str(data.get("description") or ""),
                       steps=[Step.from_dict(s) for s in data["steps"]],
                       path=str(data.get("path", "")), format=fmt)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecipeError(f"stored recipe is malformed: {type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------------------
# parameter conversion (reused by the CLI and the interactive functions)
# ---------------------------------------------------------------------------
class _Mismatch(ValueError):
    """Internal: a value does not fit a type hint; the message says what was expected."""


def describe_hint(hint: Any) -> str:
    """A type hint in words for error messages: 'float or None', 'list of str', "one of 'a', 'b'"."""
    if hint is Any:
        return "any value"
    if hint is type(None):
        return "None"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        names = [describe_hint(a) for a in args if a is not type(None)]
        if type(None) in args:
            names.append("None")
        return " or ".join(names)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return f"tuple of {describe_hint(args[0])}"
        if origin is tuple and args:
            return "tuple (" + ", ".join(describe_hint(a) for a in args) + ")"
        return f"{origin.__name__} of {describe_hint(args[0])}" if args else origin.__name__
    if origin is dict and args:
        return f"dict of {describe_hint(args[0])} to {describe_hint(args[1])}"
    if isinstance(hint, type):
        return hint.__name__
    return str(hint)


def _describe_value(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _mismatch(value: Any, hint: Any, note: str = "") -> _Mismatch:
    msg = f"expects {describe_hint(hint)}, got {_describe_value(value)}"
    return _Mismatch(f"{msg} ({note})" if note else msg)


def _literal_eval(text: str, hint: Any) -> Any:
    """Python literal (for list/dict values written as text), or a mismatch."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise _mismatch(text, hint, "not a valid Python literal; quote strings, e.g. ['a', 'b']") \
            from None


def _coerce_union(value: Any, hint: Any, from_string: bool) -> Any:
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None or (from_string and value.strip() in ("", "None")):
            return None
    for member in args:
        if member is type(None):
            continue
        try:
            return _coerce(value, member, from_string)
        except _Mismatch:
            continue
    raise _mismatch(value, hint)


def _coerce_literal(value: Any, hint: Any, from_string: bool) -> Any:
    choices = typing.get_args(hint)
    for choice in choices:
        if from_string:
            text = value.strip()
            if text == str(choice) or (isinstance(choice, bool) and text.lower() == str(choice).lower()):
                return choice
        elif type(value) is type(choice) and value == choice:
            return choice
    raise _mismatch(value, hint)


def _coerce_sequence(value: Any, hint: Any, from_string: bool) -> Any:
    origin = typing.get_origin(hint) or hint
    args = typing.get_args(hint)
    if from_string:
        text = value.strip()
        if text.startswith(("[", "(")):
            items = _literal_eval(text, hint)
            if not isinstance(items, (list, tuple)):
                raise _mismatch(value, hint)
            item_from_string = False
        else:
            items = [part.strip() for part in text.split(",")] if text else []
            item_from_string = True
    else:
        if not isinstance(value, (list, tuple)):
            raise _mismatch(value, hint)
        items, item_from_string = list(value), False

    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(items) != len(args):
            raise _mismatch(value, hint, f"{len(items)} items instead of {len(args)}")
        item_hints = list(args)
    else:
        item_hints = [args[0] if args else Any] * len(items)
    out = []
    for i, (item, item_hint) in enumerate(zip(items, item_hints), start=1):
        try:
            out.append(_coerce(item, item_hint, item_from_string))
        except _Mismatch as exc:
            raise _mismatch(value, hint, f"item {i} {exc}") from None
    return origin(out) if origin in (tuple, set, frozenset) else out


def _coerce_dict(value: Any, hint: Any, from_string: bool) -> Any:
    if from_string:
        value = _literal_eval(value.strip(), hint)
    if not isinstance(value, Mapping):
        raise _mismatch(value, hint)
    args = typing.get_args(hint)
    if not args:
        return dict(value)
    try:
        return {_coerce(k, args[0], False): _coerce(v, args[1], False) for k, v in value.items()}
    except _Mismatch as exc:
        raise _mismatch(value, hint, str(exc)) from None


def _coerce_scalar(value: Any, hint: type, from_string: bool) -> Any:
    if hint is bool:
        if from_string:
            text = value.strip().lower()
            if text in ("true", "false"):
                return text == "true"
        elif isinstance(value, bool):
            return value
        raise _mismatch(value, hint, "write true or false")
    if hint is int:
        if from_string:
            try:
                return int(value.strip())
            except ValueError:
                raise _mismatch(value, hint) from None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _mismatch(value, hint)
    if hint is float:
        if from_string:
            try:
                return float(value.strip())
            except ValueError:
                raise _mismatch(value, hint) from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise _mismatch(value, hint, "too large for a float") from None
        note = ""
        if isinstance(value, str):
            try:
                float(value)
                note = "YAML reads numbers like 1e5 as text; write 1.0e+5"
            except ValueError:
                pass
        raise _mismatch(value, hint, note)
    if hint is str:
        if isinstance(value, str):
            return value.strip() if from_string else value
        note = "quote it" if isinstance(value, (int, float, bool)) or value is None else ""
        raise _mismatch(value, hint, note)
    if isinstance(value, hint):
        return value
    if isinstance(value, str):
        try:
            return hint(value.strip() if from_string else value)
        except Exception:  # any user class may raise anything from its constructor
            raise _mismatch(value, hint) from None
    raise _mismatch(value, hint)


def _coerce(value: Any, hint: Any, from_string: bool) -> Any:
    """Convert/check ``value`` against ``hint``; raise _Mismatch if it does not fit."""
    from_string = from_string and isinstance(value, str)
    if hint is Any or hint is object:
        return value
    if hint is None or hint is type(None):
        if value is None or (from_string and value.strip() in ("", "None")):
            return None
        raise _mismatch(value, type(None))
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return _coerce_union(value, hint, from_string)
    if origin is Literal:
        return _coerce_literal(value, hint, from_string)
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple, set, frozenset):
        return _coerce_sequence(value, hint, from_string)
    if origin is dict or hint is dict:
        return _coerce_dict(value, hint, from_string)
    if isinstance(hint, type):
        return _coerce_scalar(value, hint, from_string)
    return value  # a hint form we do not check (TypeVar, Callable, ...)


def coerce_param(task: str, name: str, value: Any, hint: Any, *, from_string: bool) -> Any:
    """Check ``value`` against a task parameter's type hint and return it typed.

    ``from_string`` is for text sources (XML, command line): 'True'/'false' -> bool,
    '3' -> int, 'a,b' or "['a', 'b']" -> list, '' or 'None' -> None where Optional.
    Otherwise (YAML, Python) the value must already have the right type; ints
    are accepted for floats. Raises BadInputError naming the task and parameter.
    """
    try:
        return _coerce(value, hint, from_string)
    except _Mismatch as exc:
        raise BadInputError(f"{task}: parameter {name!r} {exc}") from None
    except RecursionError:
        raise BadInputError(f"{task}: parameter {name!r}: value is nested too deeply") from None


@dataclass
class _ParamSpec:
    hint: Any
    required: bool


def task_parameters(task_cls: type[Task]) -> dict[str, _ParamSpec]:
    """Parameter name -> (type hint, required) of a task's Inputs dataclass.

    Raises TypeError/NameError if the Inputs are not a dataclass or the hints do
    not resolve (a programming error in the task, reported by the caller).
    """
    inputs_cls = getattr(task_cls, "Inputs", None)
    if inputs_cls is None or not dataclasses.is_dataclass(inputs_cls):
        raise TypeError(f"{getattr(task_cls, '__name__', task_cls)}.Inputs is not a dataclass")
    hints = typing.get_type_hints(inputs_cls)
    return {f.name: _ParamSpec(hints.get(f.name, Any),
                               f.default is dataclasses.MISSING
                               and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(inputs_cls) if f.init}


def _check_params(task: str, specs: Mapping[str, _ParamSpec],
                  items: list[tuple[str, Any, int | None]], from_string: bool
                  ) -> tuple[dict[str, Any], list[tuple[int | None, str]]]:
    """Validate (name, value, line) items against ``specs``: typed params and problems."""
    params: dict[str, Any] = {}
    problems: list[tuple[int | None, str]] = []
    valid = ", ".join(specs) or "(none)"
    for name, value, line in items:
        if name in params:
            problems.append((line, f"parameter {name!r} is given twice"))
            continue
        if name not in specs:
            close = difflib.get_close_matches(name, list(specs), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append((line, f"unknown parameter {name!r} for {task}; {hint}"
                                   f"valid parameters: {valid}"))
            continue
        try:
            params[name] = _coerce(value, specs[name].hint, from_string)
        except _Mismatch as exc:
            problems.append((line, f"parameter {name!r} {exc}"))
        except RecursionError:
            problems.append((line, f"parameter {name!r}: value is nested too deeply"))
    missing = [n for n, s in specs.items() if s.required and n not in params
               and n not in {i[0] for i in items}]
    if missing:
        problems.append((None, f"missing required parameter(s): {', '.join(missing)}"))
    return params, problems


def coerce_params(task_cls: type[Task], params: Mapping[str, Any], *,
                  from_string: bool) -> dict[str, Any]:
    """Validate and type a whole parameter set for ``task_cls`` (CLI, interactive calls).

    Raises BadInputError listing every unknown, mistyped or missing parameter.
    """
    name = getattr(task_cls, "name", "") or task_cls.__name__
    typed, problems = _check_params(name, task_parameters(task_cls),
                                    [(k, v, None) for k, v in params.items()], from_string)
    if problems:
        raise BadInputError(f"{name}: " + "; ".join(msg for _, msg in problems))
    return typed


# ---------------------------------------------------------------------------
# problem collection and the default registry
# ---------------------------------------------------------------------------
class _Problems:
    """Problems found while loading one recipe, turned into one RecipeError."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, message: str, line: int | None = None, step: str | None = None,
            task: str | None = None) -> None:
        where = ", ".join(p for p in (f"line {line}" if line is not None else "", step or "") if p)
        if task:
            where = f"{where} ({task})" if where else task
        self.items.append(f"{where}: {message}" if where else message)

    def __bool__(self) -> bool:
        return bool(self.items)

    def error(self) -> RecipeError:
        if len(self.items) == 1:
            msg = f"recipe {self.path}: {self.items[0]}"
        else:
            msg = (f"recipe {self.path}: {len(self.items)} problems:\n"
                   + "\n".join(f"  - {item}" for item in self.items))
        err = RecipeError(msg)
        err.problems = list(self.items)  # type: ignore[attr-defined]
        return err

    def raise_if_any(self) -> None:
        if self.items:
            raise self.error()


class _RegisteredTasks(Mapping):
    """The solarpipe task registry seen as a Mapping; classes are imported on lookup."""

    def __getitem__(self, name: str) -> type[Task]:
        if name not in task_registry.TASKS:
            raise KeyError(name)
        return task_registry.get_task(name)

    def __iter__(self) -> Iterator[str]:
        return iter(task_registry.task_names())

    def __len__(self) -> int:
        return len(task_registry.TASKS)

    def __contains__(self, name: object) -> bool:
        return name in task_registry.TASKS


def default_registry() -> Mapping[str, type[Task]]:
    """The registered solarpipe tasks (solarpipe.tasks.registry), imported lazily."""
    return _RegisteredTasks()


class _StepChecker:
    """Validates steps of one recipe against a registry, caching task parameters."""

    def __init__(self, registry: Mapping[str, type[Task]], problems: _Problems) -> None:
        self.registry = registry
        self.problems = problems
        self._specs: dict[str, dict[str, _ParamSpec] | None] = {}

    def specs(self, task: str, line: int | None, where: str) -> dict[str, _ParamSpec] | None:
        if task in self._specs:
            return self._specs[task]
        spec = None
        if task not in self.registry:
            close = difflib.get_close_matches(task, list(self.registry), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.problems.add(f"unknown task {task!r}; {hint}known tasks: "
                              f"{', '.join(self.registry) or '(none)'}", line, where)
            self._specs[task] = None
            return None
        try:
            spec = task_parameters(self.registry[task])
        except Exception as exc:  # a broken task module must not crash the loader
            self.problems.add(f"task {task!r} could not be loaded: {type(exc).__name__}: {exc}",
                              line, where)
        self._specs[task] = spec
        return spec

    def step(self, task: str, items: list[tuple[str, Any, int | None]], line: int | None,
             where: str, from_string: bool) -> Step | None:
        """A validated Step, or None after recording the problems."""
        if task == BREAKPOINT:
            if items:
                self.problems.add("a breakpoint takes no parameters", line, where)
                return None
            return Step(task=BREAKPOINT, params={}, line=line, is_breakpoint=True)
        specs = self.specs(task, line, where)
        if specs is None:
            return None
        params, problems = _check_params(task, specs, items, from_string)
        for pline, msg in problems:
            self.problems.add(msg, pline if pline is not None else line, where, task)
        return None if problems else Step(task=task, params=params, line=line)


# ---------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------
_YAML_STR = "tag:yaml.org,2002:str"
_YAML_NULL = "tag:yaml.org,2002:null"


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _yaml_error(path: str, exc: yaml.YAMLError) -> RecipeError:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        text = exc.problem or "syntax error"
        if exc.context:
            text += f" ({exc.context}"
            if exc.context_mark is not None:
                text += f" at line {exc.context_mark.line + 1}"
            text += ")"
        return RecipeError(f"recipe {path}: line {mark.line + 1}, column {mark.column + 1}: "
                           f"malformed YAML: {text}")
    one_line = " ".join(str(exc).split())
    return RecipeError(f"recipe {path}: malformed YAML: {one_line}")


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the value {node.value!r}"


class _YamlReader:
    """Turns a composed YAML document (nodes keep line numbers) into a Recipe."""

    def __init__(self, loader: yaml.SafeLoader, path: str, checker: _StepChecker,
                 problems: _Problems) -> None:
        self.loader = loader
        self.path = path
        self.checker = checker
        self.problems = problems

    def value(self, node: yaml.Node) -> Any:
        """Python value of a node (SafeLoader rules)."""
        return self.loader.construct_document(node)

    def mapping_items(self, node: yaml.MappingNode, what: str, step: str | None = None,
                      task: str | None = None) -> list[tuple[str, yaml.Node, int]] | None:
        """(key, value node, line) of a mapping with text keys, or None after a problem."""
        items, ok = [], True
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _YAML_STR:
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else _node_kind(key_node)
                self.problems.add(f"{what} names must be text, got {shown!r}",
                                  _line(key_node), step, task)
                ok = False
                continue
            items.append((key_node.value, value_node, _line(key_node)))
        return items if ok else None

    def read(self, root: yaml.Node | None) -> tuple[str, str, list[Step]]:
        name, description = Path(self.path).stem, ""
        if root is None:
            self.problems.add("the recipe is empty (no steps)")
            return name, description, []
        if isinstance(root, yaml.MappingNode):
            items = self.mapping_items(root, "top-level key")
            if items is None:
                return name, description, []
            seen: dict[str, yaml.Node] = {}
            for key, value_node, line in items:
                if key not in YAML_TOP_KEYS:
                    self.problems.add(f"unknown top-level key {key!r}; valid keys: "
                                      f"{', '.join(YAML_TOP_KEYS)}", line)
                elif key in seen:
                    self.problems.add(f"top-level key {key!r} is given twice", line)
                else:
                    seen[key] = value_node
            name = self.text_field(seen.get("name"), "name", name)
            description = self.text_field(seen.get("description"), "description", "")
            steps_node = seen.get("steps")
            if steps_node is None:
                self.problems.add("no 'steps' list (a recipe mapping needs "
                                  "name, description and steps)", _line(root))
                return name, description, []
            if isinstance(steps_node, yaml.ScalarNode) and steps_node.tag == _YAML_NULL:
                self.problems.add("the recipe is empty: 'steps' has no steps", _line(steps_node))
                return name, description, []
            if not isinstance(steps_node, yaml.SequenceNode):
                self.problems.add(f"'steps' must be a list of steps, got {_node_kind(steps_node)}",
                                  _line(steps_node))
                return name, description, []
            return name, description, self.steps(steps_node)
        if isinstance(root, yaml.SequenceNode):
            return name, description, self.steps(root)
        self.problems.add("a recipe is a mapping (name, description, steps) or a list of "
                          f"steps, got {_node_kind(root)}", _line(root))
        return name, description, []

    def text_field(self, node: yaml.Node | None, key: str, default: str) -> str:
        if node is None:
            return default
        value = self.value(node)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problems.add(f"{key!r} must be text, got {_describe_value(value)}", _line(node))
            return default
        return value

    def steps(self, seq: yaml.SequenceNode) -> list[Step]:
        if not seq.value:
            self.problems.add("the recipe is empty (no steps)", _line(seq))
            return []
        steps = []
        for number, node in enumerate(seq.value, start=1):
            step = self.step(node, f"step {number}")
            if step is not None:
                steps.append(step)
        return steps

    def step(self, node: yaml.Node, where: str) -> Step | None:
        line = _line(node)
        form = "a step is `- task_name: {param: value, ...}` or `- breakpoint`"
        if isinstance(node, yaml.ScalarNode):
            if node.value == BREAKPOINT and node.tag == _YAML_STR:
                return Step(task=BREAKPOINT, params={}, line=line, is_breakpoint=True)
            hint = f" (write `- {node.value}: {{}}` for a task without parameters)" \
                if node.value in self.checker.registry else ""
            self.problems.add(f"{form}; got {_node_kind(node)}{hint}", line, where)
            return None
        if not isinstance(node, yaml.MappingNode):
            self.problems.add(f"{form}; got {_node_kind(node)}", line, where)
            return None
        items = self.mapping_items(node, "task", where)
        if items is None:
            return None
        if len(items) != 1:
            keys = ", ".join(k for k, _, _ in items)
            extra = (" (are the parameters indented under the task name?)"
                     if len(items) > 1 else "")
            self.problems.add(f"{form}; got a mapping with {len(items)} keys: {keys}{extra}",
                              line, where)
            return None
        task, params_node, _ = items[0]
        if isinstance(params_node, yaml.ScalarNode) and params_node.tag == _YAML_NULL:
            param_items: list[tuple[str, Any, int | None]] = []
        elif isinstance(params_node, yaml.MappingNode):
            named = self.mapping_items(params_node, "parameter", where, task)
            if named is None:
                return None
            param_items = []
            for pname, value_node, pline in named:
                try:
                    value = self.value(value_node)
                except yaml.YAMLError as exc:
                    mark = getattr(exc, "problem_mark", None)
                    detail = getattr(exc, "problem", None) or str(exc)
                    self.problems.add(f"parameter {pname!r}: {detail}",
                                      mark.line + 1 if mark else pline, where, task)
                    continue
                param_items.append((pname, value, pline))
        else:
            self.problems.add(f"the parameters of {task} must be a mapping "
                              f"(param: value), got {_node_kind(params_node)}",
                              _line(params_node), where, task)
            return None
        return self.checker.step(task, param_items, line, where, from_string=False)


def _read_yaml(data: str | bytes, path: str, checker: _StepChecker,
               problems: _Problems) -> tuple[str, str, list[Step]]:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RecipeError(f"recipe {path}: not UTF-8 text "
                              f"(bad byte at offset {exc.start})") from None
    try:
        loader = yaml.SafeLoader(data)
    except yaml.reader.ReaderError as exc:  # a control character; pyyaml checks at once
        before = data[:exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise RecipeError(f"recipe {path}: line {line}, column {column}: malformed YAML: "
                          f"character #x{exc.character:04x} is not allowed") from None
    try:
        root = loader.get_single_node()
        return _YamlReader(loader, path, checker, problems).read(root)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    except RecursionError:
        raise RecipeError(f"recipe {path}: malformed YAML: nested too deeply") from None
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------
# XML (ALMA pipeline ProcessingProcedure)
# ---------------------------------------------------------------------------
def _parse_xml(data: bytes, path: str) -> tuple[Element, dict[int, int]]:
    """Parse XML with expat, keeping each element's start line (keyed by id(element))."""
    builder = TreeBuilder()
    lines: dict[int, int] = {}
    parser = expat.ParserCreate()
    parser.buffer_text = True

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[id(builder.start(tag, attrs))] = parser.CurrentLineNumber

    def entity(name: str, *_: Any) -> None:
        # procedures never need entities; refusing them avoids expansion bombs and file reads
        raise RecipeError(f"recipe {path}: line {parser.CurrentLineNumber}: malformed XML: "
                          f"entity declarations (<!ENTITY {name} ...>) are not supported")

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = entity
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise RecipeError(f"recipe {path}: line {exc.lineno}, column {exc.offset + 1}: "
                          f"malformed XML: {expat.ErrorString(exc.code)}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an unsupported encoding
        raise RecipeError(f"recipe {path}: malformed XML: {exc}") from None
    return builder.close(), lines


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def _children(elem: Element, tag: str) -> list[Element]:
    return [c for c in elem if _local(c.tag) == tag]


def _text(elem: Element) -> str:
    return (elem.text or "").strip()


def _read_xml(data: str | bytes, path: str, checker: _StepChecker,
              problems: _Problems) -> tuple[str, str, list[Step]]:
    if isinstance(data, str):
        data = data.encode("utf-8")
    root, lines = _parse_xml(data, path)
    name = Path(path).stem
    if _local(root.tag) == "ProcessingProcedure":
        proc = root
    else:  # a full PPR: the procedure sits inside a ProcessingRequest
        found = [e for e in root.iter() if _local(e.tag) == "ProcessingProcedure"]
        if len(found) != 1:
            problems.add(f"root element is <{root.tag}>, expected <ProcessingProcedure>"
                         + (f" (found {len(found)} ProcessingProcedure elements)" if found else ""),
                         lines.get(id(root)))
            return name, "", []
        proc = found[0]
    for child in proc:
        if _local(child.tag) not in ("ProcedureTitle", "ProcessingCommand"):
            problems.add(f"unexpected element <{child.tag}> in <ProcessingProcedure>; valid: "
                         "<ProcedureTitle>, <ProcessingCommand>", lines.get(id(child)))
    titles = _children(proc, "ProcedureTitle")
    if titles and _text(titles[0]):
        name = _text(titles[0])
    commands = _children(proc, "ProcessingCommand")
    if not commands:
        problems.add("the recipe is empty (no <ProcessingCommand>)", lines.get(id(proc)))
        return name, "", []
    steps = []
    for number, cmd in enumerate(commands, start=1):
        step = _xml_step(cmd, lines, f"command {number}", checker, problems)
        if step is not None:
            steps.append(step)
    return name, "", steps


def _xml_step(cmd: Element, lines: dict[int, int], where: str, checker: _StepChecker,
              problems: _Problems) -> Step | None:
    line = lines.get(id(cmd))
    names = _children(cmd, "Command")
    if len(names) != 1 or not _text(names[0]):
        problems.add("a <ProcessingCommand> needs exactly one non-empty <Command>", line, where)
        return None
    task = _text(names[0])
    for child in cmd:
        if _local(child.tag) not in ("Command", "ParameterSet"):
            problems.add(f"unexpected element <{child.tag}> in <ProcessingCommand>; valid: "
                         "<Command>, <ParameterSet>", lines.get(id(child)), where, task)
            return None
    if task in IGNORED_XML_COMMANDS:
        LOG.info("recipe: skipping %s (line %s): solarpipe creates and saves its own context",
                 task, line)
        return None
    items: list[tuple[str, Any, int | None]] = []
    ok = True
    for pset in _children(cmd, "ParameterSet"):
        for param in pset:
            pline = lines.get(id(param))
            keys, values = _children(param, "Keyword"), _children(param, "Value")
            if _local(param.tag) != "Parameter" or len(keys) != 1 or len(values) != 1 \
                    or not _text(keys[0]) or len(values[0]):
                problems.add(f"<{param.tag}> in <ParameterSet> must be a <Parameter> with one "
                             "<Keyword> and one text <Value>", pline, where, task)
                ok = False
                continue
            items.append((_text(keys[0]), _text(values[0]), pline))
    if not ok:
        return None
    return checker.step(task, items, line, where, from_string=True)


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------
def packaged_recipes() -> list[str]:
    """Names of the recipes shipped in solarpipe.recipes (e.g. 'hsol_import')."""
    try:
        root = resources.files(RECIPE_PACKAGE)
    except ModuleNotFoundError:
        return []
    return sorted({Path(r.name).stem for r in root.iterdir()
                   if r.is_file() and r.name.endswith(RECIPE_SUFFIXES)})


def _find_packaged(name: str) -> tuple[str, bytes] | None:
    try:
        root = resources.files(RECIPE_PACKAGE)
    except ModuleNotFoundError:
        return None
    candidates = [name] if name.endswith(RECIPE_SUFFIXES) else \
        [name + suffix for suffix in RECIPE_SUFFIXES]
    for candidate in candidates:
        res = root / candidate
        if res.is_file():
            return str(res), res.read_bytes()
    return None


def _locate(path_or_name: str | os.PathLike[str]) -> tuple[str, bytes]:
    """(path, content) of a recipe file, or of a packaged recipe given by name."""
    text = os.fspath(path_or_name)
    path = Path(text)
    if path.is_dir():
        raise RecipeError(f"recipe {text}: is a directory, not a recipe file")
    if path.is_file():
        try:
            return text, path.read_bytes()
        except OSError as exc:
            raise RecipeError(f"recipe {text}: cannot be read: {exc.strerror or exc}") from None
    if text and "/" not in text and os.sep not in text:
        found = _find_packaged(text)
        if found is not None:
            return found
    known = ", ".join(packaged_recipes()) or "(none)"
    raise RecipeError(f"recipe {text}: file not found (and no packaged recipe of that name; "
                      f"packaged recipes: {known})")


def _detect_format(path: str, data: bytes) -> RecipeFormat:
    suffix = Path(path).suffix.lower()
    if suffix == ".xml":
        return "xml"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    return "xml" if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") else "yaml"


def parse_recipe(data: str | bytes, fmt: RecipeFormat, *, path: str = "<string>",
                 registry: Mapping[str, type[Task]] | None = None) -> Recipe:
    """Parse and validate recipe text (``fmt`` 'yaml' or 'xml'); RecipeError if bad.

    ``path`` is only used in messages and stored in the Recipe.
    """
    if fmt not in ("yaml", "xml"):
        raise RecipeError(f"recipe {path}: unknown format {fmt!r}; use 'yaml' or 'xml'")
    registry = default_registry() if registry is None else registry
    problems = _Problems(path)
    checker = _StepChecker(registry, problems)
    reader = _read_yaml if fmt == "yaml" else _read_xml
    name, description, steps = reader(data, path, checker, problems)
    if not problems and not any(not s.is_breakpoint for s in steps):
        problems.add("the recipe has no task steps (only breakpoints or skipped commands)")
    problems.raise_if_any()
    recipe = Recipe(name=name, description=description, steps=steps, path=path, format=fmt)
    LOG.debug("recipe %s: %d stages loaded from %s", recipe.name, recipe.n_stages, path)
    return recipe


def load_recipe(path_or_name: str | os.PathLike[str],
                registry: Mapping[str, type[Task]] | None = None) -> Recipe:
    """Load and fully validate a recipe file, or a packaged recipe by name.

    ``path_or_name`` is a .yaml/.yml/.xml file, or a name such as 'hsol_import'
    looked up in the solarpipe.recipes package. ``registry`` maps task names to
    Task classes (default: the solarpipe task registry). Every problem (unknown
    task or parameter, wrong type, malformed file, empty recipe) is reported in
    one RecipeError before any stage runs.
    """
    path, data = _locate(path_or_name)
    return parse_recipe(data, _detect_format(path, data), path=path, registry=registry)


# ---------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------
def _stage_range(recipe: Recipe, start: int, stop: int | None) -> tuple[int, int]:
    n = recipe.n_stages
    where = f"recipe {recipe.path or recipe.name}"
    if n == 0:
        raise RecipeError(f"{where}: the recipe has no task steps")
    last = n if stop is None else stop
    for label, value in (("start", start), ("stop", last)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise RecipeError(f"{where}: {label} stage must be a whole number, got {value!r}")
    if not 1 <= start <= n:
        raise RecipeError(f"{where}: start stage {start} is out of range; "
                          f"the recipe has stages 1-{n}")
    if not start <= last <= n:
        raise RecipeError(f"{where}: stop stage {last} is out of range; it must be between "
                          f"the start stage ({start}) and the last stage ({n})")
    return start, last


def plan(recipe: Recipe, start: int = 1, stop: int | None = None) -> list[Step]:
    """The steps to run for stages ``start``..``stop`` (1-based, inclusive, tasks only).

    Breakpoints lying between two selected stages are kept in place; those before
    the start stage or after the stop stage are dropped, so resuming at the stage
    after a breakpoint does not stop at it again. RecipeError if out of range.
    """
    first, last = _stage_range(recipe, start, stop)
    selected: list[Step] = []
    pending: list[Step] = []
    for step in recipe.steps:
        if step.is_breakpoint:
            if selected:
                pending.append(step)
            continue
        stage = step.stage or 0
        if stage > last:
            break
        if stage >= first:
            selected.extend(pending)
            pending.clear()
            selected.append(step)
    return selected


def format_params(params: Mapping[str, Any]) -> str:
    """``name=value`` pairs with Python reprs (as they would be typed in a call)."""
    return " ".join(f"{k}={v!r}" for k, v in params.items())


def format_plan(recipe: Recipe, start: int = 1, stop: int | None = None) -> str:
    """A dry-run plan: a header, then one line per stage or breakpoint, e.g.

    ``   3  hsol_ampcal  tant_fallback=7000.0`` and ``  --  breakpoint``.
    """
    steps = plan(recipe, start, stop)
    first, last = _stage_range(recipe, start, stop)
    width = max(2, len(str(recipe.n_stages)))
    task_width = max(len(s.task) for s in steps)
    lines = [f"recipe {recipe.name} ({recipe.path or recipe.format}): "
             f"stages {first}-{last} of {recipe.n_stages}"]
    for step in steps:
        label = "--" if step.is_breakpoint else str(step.stage)
        lines.append(f"  {label:>{width}}  {step.task:<{task_width}}  "
                     f"{format_params(step.params)}".rstrip())
    return "\n".join(lines)
