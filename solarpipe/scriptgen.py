"""The script generator: plain CASA scripts that reproduce a pipeline run.

Reads ``casa_commands.log`` (every CASA call of the run, recorded by
:mod:`solarpipe.casacalls`) and the context's stage records (the decisions and
why they were made), and writes ``scriptForCalibration.py`` and
``scriptForImaging.py`` in the QA2 layout analysts know: numbered steps with
titles, ``mysteps``/``thesteps`` to run a subset, one step per pipeline stage.

A pure text transformation (no CASA import), so it is unit-testable:

* the last recorded block of a stage wins (a resumed or re-run stage is
  recorded again), and only stages that completed are written;
* report-only calls (``listobs``, ``flagdata(mode='summary')``) are left out;
* the raw EB's absolute path becomes the variable ``raw_vis``; any other
  absolute path is an error (the scripts must run on another machine);
* parameter values are written in as they ran, with a comment naming the stage
  that decided them and why (the context's decisions);
* ``run_code`` blocks (casatools code the pipeline ran and recorded verbatim)
  are copied; tables marked ``# shipped:`` are restored from the delivered
  archives; other ``# casatools:`` comments (reads, products made with astropy)
  stay as comments.

The scripts set up CASA's offline measures data themselves (casadata, no
auto-update) and never import solarpipe.
"""
from __future__ import annotations

import ast
import datetime as _dt
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Iterable

from .casacalls import SHIPPED_MARK, STAGE_MARK, TOOL_MARK
from .errors import BadInputError
from .tasks.imaging import IMAGE_SUFFIXES

CALIBRATION_SCRIPT = "scriptForCalibration.py"
IMAGING_SCRIPT = "scriptForImaging.py"

#: calls recorded for the weblog only: they change nothing, the scripts leave them out
REPORT_ONLY = {"listobs": None, "flagdata": {"mode": "summary"}}
#: per call, the parameters naming what it writes: the parent directory is created and an
#: earlier output removed first (unless the call overwrites it itself: overwrite=True)
OUTPUT_PARAMS = {"gencal": ("caltable",), "gaincal": ("caltable",), "bandpass": ("caltable",),
                 "fluxscale": ("fluxtable",), "split": ("outputvis",), "mstransform": ("outputvis",),
                 "importasdm": ("vis",), "shutil.copytree": ("dst",), "exportfits": ("fitsimage",),
                 "imregrid": ("output",), "feather": ("imagename",), "immath": ("outfile",)}
#: decision names that set a differently named task parameter
DECISION_PARAMS = {"threshold_jy": "threshold"}
_STAGE_RE = re.compile(re.escape(STAGE_MARK) + r"(\d+): (\S+) ---\s*$")
_ABS_PATH_RE = re.compile(r"(?<![\w.~:/-])(/(?:[\w.+~-]+/)+[\w.+~-]*)")
_WIDTH = 100


class RawVis:
    """Stands for the raw EB's path in a call: rendered as the variable ``raw_vis``."""

    def __repr__(self) -> str:
        return "raw_vis"


@dataclass
class DeliveredInput:
    """Stands for an input file from outside the working directory (e.g. a total-power
    map) that the delivery carries: rendered as a path under ``delivery_dir``."""

    path: str  # relative to the delivery

    def __repr__(self) -> str:
        return f"os.path.join(delivery_dir, {self.path!r})"


@dataclass
class Statement:
    """One recorded Python statement with the comment lines written just before it."""

    code: str
    notes: list[str] = field(default_factory=list)
    func: str | None = None  # the called name of a simple keyword-only call ('gaincal', 'shutil.copytree')
    kwargs: dict[str, Any] | None = None  # its literal keyword arguments, in order


@dataclass
class Marker:
    """A ``# casatools:`` or ``# shipped:`` comment of the log."""

    kind: str  # 'tool' | 'shipped'
    text: str
    path: str = ""  # the shipped table


@dataclass
class StageBlock:
    """The recorded calls of one pipeline stage."""

    number: int
    task: str
    items: list[Statement | Marker] = field(default_factory=list)

    def calls(self, func: str | None = None) -> list[Statement]:
        return [i for i in self.items if isinstance(i, Statement) and i.kwargs is not None
                and (func is None or i.func == func)]

    @property
    def shipped(self) -> list[str]:
        return [i.path for i in self.items if isinstance(i, Marker) and i.kind == "shipped"]


# -- reading the log ------------------------------------------------------------------------
def parse_commands_log(text: str) -> dict[int, StageBlock]:
    """Stage number -> its recorded block; when a stage was recorded more than once
    (resume, re-run from a stage), the last block wins."""
    blocks: dict[int, StageBlock] = {}
    current: tuple[int, str] | None = None
    lines: list[str] = []

    def close() -> None:
        if current is not None:
            blocks[current[0]] = _parse_block(current[0], current[1], lines)

    for line in text.splitlines():
        m = _STAGE_RE.match(line)
        if m:
            close()
            current, lines = (int(m.group(1)), m.group(2)), []
        elif current is not None:
            lines.append(line)
    close()
    return blocks


def _parse_block(number: int, task: str, lines: list[str]) -> StageBlock:
    source = "\n".join(lines)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise BadInputError(f"casa_commands.log, stage {number} ({task}): not valid Python "
                            f"(line {exc.lineno} of the block: {exc.msg})") from exc
    block = StageBlock(number, task)
    starts = {stmt.lineno: stmt for stmt in tree.body}
    notes: list[str] = []
    last_end = 0
    i = 1
    while i <= len(lines):
        line = lines[i - 1]
        if i in starts:
            stmt = starts[i]
            code = "\n".join(lines[stmt.lineno - 1:stmt.end_lineno])
            func, kwargs = _simple_call(stmt)
            last = block.items[-1] if block.items else None
            if (kwargs is None and not notes and isinstance(last, Statement) and last.kwargs is None
                    and last.code):  # one recorded block of code: keep it whole, blank lines included
                last.code += "\n" * (stmt.lineno - last_end) + code
            else:
                block.items.append(Statement(code, notes, func, kwargs))
            last_end = stmt.end_lineno
            notes = []
            i = stmt.end_lineno + 1  # type: ignore[operator]
            continue
        stripped = line.strip()
        if stripped.startswith(TOOL_MARK.strip()):
            block.items.append(Marker("tool", stripped[len(TOOL_MARK):].strip()))
        elif stripped.startswith(SHIPPED_MARK.strip()):
            rest = stripped[len(SHIPPED_MARK):].strip()
            path, _, why = rest.partition("  ")
            block.items.append(Marker("shipped", why.strip().strip("()"), path))
        elif stripped.startswith("#"):
            notes.append(stripped.lstrip("#").strip())
        i += 1
    if notes:
        block.items.append(Statement("", notes))
    return block


def _simple_call(stmt: ast.stmt) -> tuple[str | None, dict[str, Any] | None]:
    """(name, kwargs) of ``name(k=literal, ...)``; (None, None) for anything else."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)) or stmt.value.args:
        return None, None
    call = stmt.value
    try:
        name = ast.unparse(call.func)
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except ValueError:
        return None, None
    if len(kwargs) != len(call.keywords):
        return None, None
    return name, kwargs


# -- writing the scripts ----------------------------------------------------------------------
@dataclass
class ScriptInputs:
    """What the generator needs besides the log (plain data, from the context)."""

    eb_name: str  # e.g. uid___A002_Xc5a3f0_X0
    raw_vis: str  # the raw EB as the pipeline read it (absolute path on the pipeline machine)
    stages: list[dict[str, Any]]  # StageRecord.to_dict() of every stage
    script_of_task: dict[str, str]  # task -> CALIBRATION_SCRIPT | IMAGING_SCRIPT ('' = in neither)
    titles: dict[str, str] = field(default_factory=dict)  # task -> step title
    shipped_archives: list[str] = field(default_factory=list)  # archives (relative to the delivery)
    #: absolute input paths outside the working directory -> where the delivery carries them
    delivered_inputs: dict[str, str] = field(default_factory=dict)
    pipeline_version: str = ""
    casa_versions: dict[str, str] = field(default_factory=dict)


def generate_scripts(log_text: str, inputs: ScriptInputs) -> dict[str, str]:
    """Script file name -> its text (both scripts; a script with no stage says so)."""
    blocks = parse_commands_log(log_text)
    done = [s for s in inputs.stages if s.get("status") == "ok"]
    out = {}
    for script in (CALIBRATION_SCRIPT, IMAGING_SCRIPT):
        stages = [s for s in done if inputs.script_of_task.get(s["task"]) == script]
        out[script] = _render_script(script, stages, blocks, inputs)
    return out


def _render_script(script: str, stages: list[dict[str, Any]], blocks: dict[int, StageBlock],
                   inputs: ScriptInputs) -> str:
    body: list[str] = []
    titles: dict[int, str] = {}
    made_dirs: set[str] = set()
    for st in stages:
        n, task = int(st["number"]), st["task"]
        title = f"{inputs.titles.get(task, task)} ({task})"
        titles[n] = title
        block = blocks.get(n, StageBlock(n, task))
        body.extend(_render_step(n, title, block, st, inputs, made_dirs))
    what = "calibration" if script == CALIBRATION_SCRIPT else "imaging"
    text = _header(script, what, titles, inputs) + "\n".join(body) + "\n"
    tree = ast.parse(text, script)  # a generated script is always valid Python ...
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    if any(name.split(".")[0] == "solarpipe" for name in imported):  # ... that runs without solarpipe
        raise BadInputError(f"{script}: a recorded step imports solarpipe; the scripts must run without it")
    problems = find_absolute_paths(text)
    if problems:
        raise BadInputError(f"{script}: absolute paths of this machine would be written into the "
                            f"script: {', '.join(sorted(set(problems)))}")
    return text


def _header(script: str, what: str, titles: dict[int, str], inputs: ScriptInputs) -> str:
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    casa = ", ".join(f"{k} {v}" for k, v in sorted(inputs.casa_versions.items()))
    raw_name = PurePosixPath(inputs.raw_vis).name
    archives = ", ".join(repr(a) for a in inputs.shipped_archives)
    step_lines = "\n".join(f"    {n}: {_py_str(t)}," for n, t in titles.items())
    example = list(titles)[:2] or [1]
    where = ('Run it from a new directory in the delivery (e.g. "calibrated"),\n# with the raw EB in the '
             'delivery\'s "raw" directory (or set raw_vis)' if what == "calibration" else
             "Run it where scriptForCalibration.py ran (it reads the calibrated MS there)")
    session = ("\n# Start it in a new CASA session / Python process (after scriptForCalibration.py): tclean's\n"
               "# multiscale clean depends on what ran before in the process; the pipeline cleans in a\n"
               "# fresh process too." if what == "imaging" else "")
    return f'''# {script}: the {what} of EB {inputs.eb_name}, as the solarpipe pipeline did it.
#
# Generated by solarpipe {inputs.pipeline_version} (hsol_exportdata) on {when} from the recorded
# CASA calls of the run (casa_commands.log); CASA packages of the run: {casa or "unknown"}.
# Plain CASA, no solarpipe needed. {where}:
#   in a CASA session:  mysteps = {example}; execfile('{script}', globals())   (mysteps: the steps to run)
#   in plain Python with casatools + casatasks + casadata installed:  python {script}
# Each step is one pipeline stage. Values decided by solarpipe's heuristics are written in,
# with a comment naming the stage that decided them and why. Steps that solarpipe did in
# Python rather than with a CASA task are written as casatools code, or restore the table
# they produced from the delivered archives (see restore_shipped).
# Inputs: define raw_vis / delivery_dir before running to override the defaults below.{session}
import os
import shutil
import sys
import tarfile

if "casatools" not in sys.modules:  # outside a CASA session: offline measures data from casadata
    import casadata
    import casaconfig.config as casa_config

    casa_config.measurespath = casadata.datapath
    casa_config.measures_auto_update = False
    casa_config.data_auto_update = False

from casatasks import *  # noqa: F401,F403  (already defined inside a CASA session)
from casatasks import casalog

try:
    delivery_dir
except NameError:
    delivery_dir = ".."  # the delivered package (its calibration, script ... directories)
try:
    raw_vis
except NameError:
    raw_vis = os.path.join(delivery_dir, "raw", {raw_name!r})  # the raw EB, as delivered by the archive
shipped_archives = [os.path.join(delivery_dir, a) for a in [{archives}]]


def remove_outputs(*paths):
    """Remove earlier outputs of a step, so that it can be re-run (never the raw EB)."""
    for p in paths:
        if os.path.exists(p) and os.path.realpath(p) == os.path.realpath(raw_vis):
            raise RuntimeError("%s is the raw EB (raw_vis): run this script from another directory" % p)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)


def restore_shipped(name):
    """Extract a table that solarpipe wrote outside CASA tasks from the delivered archives."""
    remove_outputs(name)
    for archive in shipped_archives:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name == name or m.name.startswith(name + "/")]
            if members:
                tar.extractall(".", members=members, **({{"filter": "data"}} if hasattr(tarfile, "data_filter") else {{}}))
                return
    raise RuntimeError("%s not found in %s" % (name, shipped_archives))


step_title = {{
{step_lines}
}}
try:
    print("List of steps to be executed ...", mysteps)
    thesteps = mysteps
except NameError:
    thesteps = list(step_title)
    print("Executing all steps:", thesteps)

'''


def _render_step(n: int, title: str, block: StageBlock, stage: dict[str, Any], inputs: ScriptInputs,
                 made_dirs: set[str]) -> list[str]:
    ind = "    "
    out = ["", f"# {'=' * 90}", f"# step {n}: {_comment(title)}", f"mystep = {n}",
           "if mystep in thesteps:",
           f"{ind}casalog.post('Step ' + str(mystep) + ' ' + step_title[mystep], 'INFO')",
           f"{ind}print('Step', mystep, step_title[mystep])"]
    decisions = {d["name"]: d for d in stage.get("results", {}).get("decisions", [])}
    if decisions:
        out.append(f"{ind}# decided in this stage:")
        for d in decisions.values():
            out.append(f"{ind}#   {_comment(d['name'])} = {_comment(_short(d['value'], 70))}  "
                       f"[{_decided_by(d, stage['task'])}]")
    omitted = 0
    body: list[str] = []
    for item in block.items:
        if isinstance(item, Marker):
            if item.kind == "shipped":
                body.append(f"# {_comment(item.path)}: {_comment(item.text)};")
                body.append("# written by solarpipe outside CASA tasks: restored from the delivered archive")
                body.append(f"restore_shipped({item.path!r})")
            else:
                body.append(f"# solarpipe (Python, not a CASA task): {_comment(item.text)}")
            continue
        if item.kwargs is None:
            body.extend(f"# {_comment(note)}" for note in item.notes)
            if item.code:
                body.extend(_rendered_code(item.code, n, block.task))
            continue
        if _report_only(item):
            omitted += 1
            continue
        body.extend(f"# {_comment(note)}" for note in item.notes)
        kwargs = _portable_kwargs(item, n, block.task, inputs)
        body.extend(_prepare_outputs(item.func or "", kwargs, made_dirs))
        notes = {}
        for name, d in decisions.items():
            param = DECISION_PARAMS.get(name, name)
            if param in kwargs and decided_value_used(d["value"], kwargs[param]):
                notes[param] = f"{_decided_by(d, stage['task'])}: {_comment(d['reason'])}"
        body.extend(format_call(item.func or "", kwargs, notes))
    if omitted:
        body.append(f"# ({omitted} report-only call(s) of the pipeline left out: listobs, flag summaries)")
    if not any(line and not line.startswith("#") for line in body):
        body.append("pass  # no CASA call in this stage: its decisions are written into later steps")
    out.extend(ind + line if line else "" for line in body)
    return out


def _rendered_code(code: str, n: int, task: str) -> list[str]:
    problems = find_absolute_paths(code)
    if problems:
        raise BadInputError(f"casa_commands.log, stage {n} ({task}): recorded code holds absolute "
                            f"path(s) {', '.join(problems)}; record paths relative to the working directory")
    return code.splitlines()


def _report_only(stmt: Statement) -> bool:
    if stmt.func not in REPORT_ONLY:
        return False
    need = REPORT_ONLY[stmt.func]
    return need is None or all(stmt.kwargs.get(k) == v for k, v in need.items())  # type: ignore[union-attr]


def _portable_kwargs(stmt: Statement, n: int, task: str, inputs: ScriptInputs) -> dict[str, Any]:
    """The call's arguments with the raw EB's path as ``raw_vis`` and delivered inputs under
    ``delivery_dir``; any other absolute path is an error naming the stage and the parameter."""
    raw = os.path.normpath(inputs.raw_vis)
    delivered = {os.path.normpath(k): v for k, v in inputs.delivered_inputs.items()}
    out = {}
    for k, v in (stmt.kwargs or {}).items():
        if isinstance(v, str) and v.startswith("/"):
            if os.path.normpath(v) == raw:
                v = RawVis()
            elif os.path.normpath(v) in delivered:
                v = DeliveredInput(delivered[os.path.normpath(v)])
            else:
                raise BadInputError(f"casa_commands.log, stage {n} ({task}): {stmt.func}({k}={v!r}) is an "
                                    "absolute path outside the working directory that the delivery does not "
                                    "carry; the scripts cannot use it")
        out[k] = v
    return out


def external_inputs(log_text: str, stages: Iterable[dict[str, Any]], raw_vis: str) -> list[str]:
    """Absolute paths (outside the working directory) that completed stages' calls read,
    other than the raw EB: the inputs a delivery must carry (e.g. a total-power map)."""
    blocks = parse_commands_log(log_text)
    ok = {int(s["number"]) for s in stages if s.get("status") == "ok"}
    raw = os.path.normpath(raw_vis)
    out: list[str] = []
    for n in sorted(ok & set(blocks)):
        for stmt in blocks[n].calls():
            for v in (stmt.kwargs or {}).values():
                if isinstance(v, str) and v.startswith("/") and os.path.normpath(v) != raw and v not in out:
                    out.append(v)
    return out


def _prepare_outputs(func: str, kwargs: dict[str, Any], made_dirs: set[str]) -> list[str]:
    """Lines creating the output's parent directory and removing an earlier output."""
    lines = []
    outputs = [kwargs[p] for p in OUTPUT_PARAMS.get(func, ()) if isinstance(kwargs.get(p), str) and kwargs[p]]
    if func == "tclean" and kwargs.get("imagename"):
        outputs += [kwargs["imagename"] + s for s in IMAGE_SUFFIXES]  # as the pipeline removes them
    for path in outputs:
        parent = os.path.dirname(path)
        if parent and parent not in made_dirs:
            made_dirs.add(parent)
            lines.append(f"os.makedirs({parent!r}, exist_ok=True)")
    if outputs and kwargs.get("overwrite") is not True:
        lines.extend(_wrap("remove_outputs(", [repr(p) for p in outputs], ")"))
    return lines


def format_call(func: str, kwargs: dict[str, Any], notes: dict[str, str] | None = None) -> list[str]:
    """A call as readable lines: one line if short and unannotated, else one argument per line
    (long lists one element per line) with the annotations as trailing comments."""
    notes = notes or {}
    one = f"{func}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    if len(one) <= _WIDTH and not notes:
        return [one]
    lines = [f"{func}("]
    for k, v in kwargs.items():
        value = repr(v)
        note = f"  # {notes[k]}" if k in notes else ""
        if isinstance(v, list) and len(value) > _WIDTH - 8 and v:
            lines.append(f"    {k}=[{note}")
            lines.extend(f"        {e!r}," for e in v)
            lines.append("    ],")
        else:
            lines.append(f"    {k}={value},{note}")
    lines.append(")")
    return lines


def decided_value_used(decided: Any, used: Any) -> bool:
    """Whether a call's parameter value is the decided one (a decision names a value in its
    own units: cell 0.68 -> '0.68arcsec', imsize 270 -> [270, 270], refant list -> 'a,b')."""
    if decided == used:
        return True
    if isinstance(decided, (list, tuple)) and isinstance(used, str):
        return ",".join(map(str, decided)) == used
    if isinstance(decided, (int, float)) and not isinstance(decided, bool):
        if isinstance(used, str):
            m = re.match(r"[-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?", used)
            return bool(m) and math.isclose(float(m.group()), decided, rel_tol=1e-5)
        if isinstance(used, list) and used:
            return all(u == decided for u in used)
    return False


def _wrap(start: str, items: list[str], end: str) -> list[str]:
    one = start + ", ".join(items) + end
    if len(one) <= _WIDTH:
        return [one]
    return [start] + [f"    {i}," for i in items] + [end]


def _decided_by(d: dict[str, Any], task: str) -> str:
    by = d.get("by", "heuristic")
    return {"heuristic": f"decided by {task}'s heuristics", "user": "given by the user",
            "default": f"{task} default"}.get(by, f"{by} ({task})")


def _short(value: Any, n: int) -> str:
    text = str(value)
    return text if len(text) <= n else text[:n - 3] + "..."


def _comment(text: Any) -> str:
    """Text safe in a one-line comment, without this machine's absolute paths (base names kept)."""
    flat = " ".join(str(text).split())
    return _ABS_PATH_RE.sub(lambda m: PurePosixPath(m.group(1)).name or m.group(1), flat)


def _py_str(text: str) -> str:
    return repr(_comment(text))


def find_absolute_paths(text: str) -> list[str]:
    """Absolute file-system paths (two or more components) in a text, e.g. a script."""
    return _ABS_PATH_RE.findall(text)


# -- the applycal instructions ------------------------------------------------------------------
def applycal_instructions(log_text: str, stages: Iterable[dict[str, Any]], eb_name: str) -> str:
    """The applycal calls that wrote CORRECTED_DATA (the cal library as applied), as a plain
    CASA snippet to run from the directory holding the MS and the untarred caltables."""
    blocks = parse_commands_log(log_text)
    ok = {int(s["number"]) for s in stages if s.get("status") == "ok"}
    lines = [f"# applycal instructions for {eb_name}.ms: the calibration tables (untar "
             f"{eb_name}.caltables.tgz here) applied by the solarpipe run, in order.",
             "from casatasks import applycal", ""]
    for n in sorted(ok & set(blocks)):
        for stmt in blocks[n].calls("applycal"):
            lines.append(f"# stage {n} ({blocks[n].task}): " + _comment("; ".join(stmt.notes)))
            lines.extend(format_call("applycal", stmt.kwargs or {}))
            lines.append("")
    text = "\n".join(lines)
    compile(text, "applycal instructions", "exec")
    return text


def caltables_of(log_text: str, stages: Iterable[dict[str, Any]]) -> list[str]:
    """Every calibration table the completed stages wrote or shipped (relative paths, in order)."""
    blocks = parse_commands_log(log_text)
    ok = {int(s["number"]) for s in stages if s.get("status") == "ok"}
    out: list[str] = []
    for n in sorted(ok & set(blocks)):
        for stmt in blocks[n].calls():
            for p in ("caltable", "fluxtable"):
                if isinstance((stmt.kwargs or {}).get(p), str) and stmt.kwargs[p] not in out:  # type: ignore[index]
                    out.append(stmt.kwargs[p])  # type: ignore[index]
        for path in blocks[n].shipped:
            if path not in out:
                out.append(path)
    return out
