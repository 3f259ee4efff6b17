"""Unit tests of solarpipe.recipe: YAML/XML loading, validation messages, plans.

Uses a fake task registry (no real task module, no CASA).
"""
from __future__ import annotations

import json
import string
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional
from xml.sax.saxutils import escape

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solarpipe.errors import BadInputError, RecipeError
from solarpipe.recipe import (
    Recipe,
    Step,
    coerce_param,
    coerce_params,
    format_plan,
    load_recipe,
    packaged_recipes,
    parse_recipe,
    plan,
)
from solarpipe.task import Task, TaskInputs


# -- fake tasks --------------------------------------------------------------
@dataclass
class FakeImportInputs(TaskInputs):
    asis: list[str] = field(default_factory=list)
    nchan: int = 1
    overwrite: bool = False


class FakeImport(Task):
    name = "fake_import"
    Inputs = FakeImportInputs
    needs_observing_run = False


@dataclass
class FakeAmpcalInputs(TaskInputs):
    tant_fallback: float = 7000.0
    refant: str = ""
    solint: Optional[float] = None
    spws: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    mode: Literal["a", "b"] = "a"


class FakeAmpcal(Task):
    name = "fake_ampcal"
    Inputs = FakeAmpcalInputs


@dataclass
class FakeRequiredInputs(TaskInputs):
    threshold: float = field(default=1.0)
    label: str = field(default="x")


class FakeImage(Task):
    name = "fake_image"
    Inputs = FakeRequiredInputs


REGISTRY: dict[str, type[Task]] = {
    "fake_import": FakeImport,
    "fake_ampcal": FakeAmpcal,
    "fake_image": FakeImage,
}

# -- the same three-stage recipe in both formats --------------------------------
TWIN_YAML = """\
name: twin
description: three stages with a breakpoint
steps:
  - fake_import:
      vis: uid___A002_X1.ms
      asis: [Antenna, Station]
      nchan: 4
      overwrite: true
  - breakpoint
  - fake_ampcal:
      tant_fallback: 7000
      solint: null
      spws: [1, 3]
      weights: [0.5, 2]
      mode: b
      refant: DA41
  - fake_image: {}
"""

TWIN_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE ProcessingProcedure SYSTEM "ProcessingProcedure.dtd">
<ProcessingProcedure>
    <ProcedureTitle>twin</ProcedureTitle>
    <ProcessingCommand>
        <Command>h_init</Command>
        <ParameterSet/>
    </ProcessingCommand>
    <ProcessingCommand>
        <Command>fake_import</Command>
        <ParameterSet>
            <Parameter><Keyword>vis</Keyword><Value>uid___A002_X1.ms</Value></Parameter>
            <Parameter><Keyword>asis</Keyword><Value>Antenna,Station</Value></Parameter>
            <Parameter><Keyword>nchan</Keyword><Value>4</Value></Parameter>
            <Parameter><Keyword>overwrite</Keyword><Value>True</Value></Parameter>
        </ParameterSet>
    </ProcessingCommand>
    <ProcessingCommand>
        <Command>breakpoint</Command>
        <ParameterSet/>
    </ProcessingCommand>
    <ProcessingCommand>
        <Command>fake_ampcal</Command>
        <ParameterSet>
            <Parameter><Keyword>tant_fallback</Keyword><Value>7000</Value></Parameter>
            <Parameter><Keyword>solint</Keyword><Value>None</Value></Parameter>
            <Parameter><Keyword>spws</Keyword><Value>[1, 3]</Value></Parameter>
            <Parameter><Keyword>weights</Keyword><Value>0.5, 2</Value></Parameter>
            <Parameter><Keyword>mode</Keyword><Value>b</Value></Parameter>
            <Parameter><Keyword>refant</Keyword><Value>DA41</Value></Parameter>
        </ParameterSet>
    </ProcessingCommand>
    <ProcessingCommand>
        <Command>fake_image</Command>
        <ParameterSet/>
    </ProcessingCommand>
    <ProcessingCommand>
        <Command>h_save</Command>
        <ParameterSet/>
    </ProcessingCommand>
</ProcessingProcedure>
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, name: str, text: str) -> Recipe:
    return load_recipe(write(tmp_path, name, text), registry=REGISTRY)


def error_of(tmp_path: Path, name: str, text: str) -> str:
    with pytest.raises(RecipeError) as info:
        load_text(tmp_path, name, text)
    return str(info.value)


def typed(params: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Params with the type of each value (and of list items), to compare strictly."""
    return {k: (type(v), [type(i) for i in v] if isinstance(v, list) else None, v)
            for k, v in params.items()}


# -- twins and plans ---------------------------------------------------------
def test_yaml_and_xml_twins_give_the_same_plan(tmp_path):
    ry = load_text(tmp_path, "twin.yaml", TWIN_YAML)
    rx = load_text(tmp_path, "twin.xml", TWIN_XML)
    assert (ry.format, rx.format) == ("yaml", "xml")
    assert ry.name == rx.name == "twin"
    py, px = plan(ry), plan(rx)
    assert [s.task for s in py] == [s.task for s in px] == [
        "fake_import", "breakpoint", "fake_ampcal", "fake_image"]
    assert [s.is_breakpoint for s in py] == [s.is_breakpoint for s in px] == [
        False, True, False, False]
    assert [s.stage for s in py] == [s.stage for s in px] == [1, None, 2, 3]
    for sy, sx in zip(py, px):
        assert typed(sy.params) == typed(sx.params)
    assert py[2].params == {"tant_fallback": 7000.0, "solint": None, "spws": [1, 3],
                            "weights": [0.5, 2.0], "mode": "b", "refant": "DA41"}
    assert type(py[2].params["tant_fallback"]) is float
    assert py[0].params["overwrite"] is True
    assert format_plan(ry).splitlines()[1:] == format_plan(rx).splitlines()[1:]


def test_step_lines_and_indices(tmp_path):
    ry = load_text(tmp_path, "twin.yaml", TWIN_YAML)
    rx = load_text(tmp_path, "twin.xml", TWIN_XML)
    assert [s.line for s in ry.steps] == [4, 9, 10, 17]
    assert [s.line for s in rx.steps] == [9, 18, 22, 33]  # the <ProcessingCommand> lines
    assert [s.index for s in rx.steps] == [1, 2, 3, 4]


def test_format_plan_content(tmp_path):
    recipe = load_text(tmp_path, "twin.yaml", TWIN_YAML)
    lines = format_plan(recipe).splitlines()
    assert "twin" in lines[0] and "stages 1-3 of 3" in lines[0]
    assert lines[1].split() == ["1", "fake_import", "vis='uid___A002_X1.ms'",
                                "asis=['Antenna',", "'Station']", "nchan=4", "overwrite=True"]
    assert lines[2] == "  --  breakpoint"
    assert lines[3].startswith("   2  fake_ampcal  tant_fallback=7000.0 solint=None spws=[1, 3]")
    assert lines[4] == "   3  fake_image"
    assert len(lines) == 5


def test_plan_start_stop_selection(tmp_path):
    recipe = load_text(tmp_path, "twin.yaml", TWIN_YAML)
    # resuming after the breakpoint does not stop at it again
    assert [s.task for s in plan(recipe, start=2)] == ["fake_ampcal", "fake_image"]
    assert [s.task for s in plan(recipe, start=1, stop=1)] == ["fake_import"]
    assert [s.task for s in plan(recipe, 1, 2)] == ["fake_import", "breakpoint", "fake_ampcal"]
    assert [s.stage for s in plan(recipe, 3, 3)] == [3]
    text = format_plan(recipe, 2, 3)
    assert "stages 2-3 of 3" in text and "breakpoint" not in text and "fake_import" not in text


@pytest.mark.parametrize("start, stop, words", [
    (0, None, ["start stage 0", "1-3"]),
    (4, None, ["start stage 4", "1-3"]),
    (1, 4, ["stop stage 4", "(3)"]),
    (3, 2, ["stop stage 2", "start stage (3)"]),
])
def test_plan_out_of_range(tmp_path, start, stop, words):
    recipe = load_text(tmp_path, "twin.yaml", TWIN_YAML)
    for fn in (plan, format_plan):
        with pytest.raises(RecipeError) as info:
            fn(recipe, start, stop)
        msg = str(info.value)
        assert "twin.yaml" in msg and "out of range" in msg
        for word in words:
            assert word in msg


def test_recipe_numbers_stages_and_plan_drops_outer_breakpoints():
    bp = dict(task="breakpoint", is_breakpoint=True)
    recipe = Recipe("r", steps=[Step(**bp), Step("fake_import"), Step(**bp), Step(**bp),
                                Step("fake_image"), Step(**bp)])
    assert [(s.index, s.stage) for s in recipe.steps] == [
        (1, None), (2, 1), (3, None), (4, None), (5, 2), (6, None)]
    assert [s.index for s in plan(recipe)] == [2, 3, 4, 5]
    assert [s.index for s in plan(recipe, 2)] == [5]


def test_bare_list_recipe_and_null_params(tmp_path):
    recipe = load_text(tmp_path, "bare.yaml", "- fake_import:\n- breakpoint\n- fake_image: {}\n")
    assert recipe.name == "bare" and recipe.n_stages == 2
    assert recipe.steps[0].params == {}


def test_to_dict_round_trip_through_json(tmp_path):
    recipe = load_text(tmp_path, "twin.xml", TWIN_XML)
    stored = json.loads(json.dumps(recipe.to_dict()))
    back = Recipe.from_dict({**stored, "vis": "extra keys are ignored"})
    assert back == recipe
    with pytest.raises(RecipeError, match="stored recipe is malformed"):
        Recipe.from_dict({"steps": []})


def test_packaged_recipe_by_name_and_its_xml_twin():
    registry = {"hsol_importdata": FakeImport}
    assert "hsol_import" in packaged_recipes()
    ry = load_recipe("hsol_import", registry=registry)
    assert ry.format == "yaml" and ry.path.endswith("hsol_import.yaml")
    rx = load_recipe("hsol_import.xml", registry=registry)
    assert rx.format == "xml"
    for r in (ry, rx):
        assert r.name == "hsol_import"
        assert [(s.task, s.params) for s in r.steps] == [("hsol_importdata", {})]


def test_recipe_module_does_not_import_casa():
    code = ("import sys, solarpipe.recipe; "
            "bad = {'casatools', 'casatasks'} & set(sys.modules); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# -- parameter conversion ----------------------------------------------------
@pytest.mark.parametrize("hint, text, expected", [
    (int, " 42 ", 42),
    (float, "7000", 7000.0),
    (bool, "True", True),
    (bool, "false", False),
    (str, "DA41", "DA41"),
    (Optional[float], "None", None),
    (Optional[float], "", None),
    (Optional[float], "1.5", 1.5),
    (float | None, "2", 2.0),
    (list[str], "a, b,c", ["a", "b", "c"]),
    (list[str], "['a', 'b']", ["a", "b"]),
    (list[int], "1,2", [1, 2]),
    (list[float], "[1, 2.5]", [1.0, 2.5]),
    (list[str], "", []),
    (Literal["a", "b"], "b", "b"),
])
def test_coerce_param_from_string(hint, text, expected):
    value = coerce_param("t", "p", text, hint, from_string=True)
    assert value == expected and type(value) is type(expected)
    if isinstance(expected, list):
        assert [type(v) for v in value] == [type(v) for v in expected]


@pytest.mark.parametrize("hint, value, from_string", [
    (int, "4.5", True), (int, True, False), (int, 2.0, False), (float, "abc", True),
    (float, True, False), (float, None, False), (bool, "yes", True), (bool, 1, False),
    (str, 3, False), (list[int], "1,x", True), (list[str], "[a, b]", True),
    (list[str], "abc", False), (Literal["a", "b"], "c", True), (Literal["a", "b"], "c", False),
])
def test_coerce_param_rejects(hint, value, from_string):
    with pytest.raises(BadInputError) as info:
        coerce_param("fake_ampcal", "p", value, hint, from_string=from_string)
    assert str(info.value).startswith("fake_ampcal: parameter 'p' expects ")


def test_coerce_param_yaml_values():
    assert coerce_param("t", "p", 3, float, from_string=False) == 3.0
    assert coerce_param("t", "p", None, Optional[float], from_string=False) is None
    assert coerce_param("t", "p", [1, 2], list[float], from_string=False) == [1.0, 2.0]
    with pytest.raises(BadInputError, match="YAML reads"):
        coerce_param("t", "p", "1e5", float, from_string=False)


def test_coerce_params_reports_unknown_names():
    assert coerce_params(FakeAmpcal, {"spws": "1,2"}, from_string=True) == {"spws": [1, 2]}
    with pytest.raises(BadInputError, match="unknown parameter 'tant'.*tant_fallback"):
        coerce_params(FakeAmpcal, {"tant": 1}, from_string=False)


# -- malformed recipes: one clear message ------------------------------------
def test_unknown_task(tmp_path):
    msg = error_of(tmp_path, "r.yaml", "steps:\n  - fake_import: {}\n  - fake_ampcall: {}\n")
    assert "r.yaml" in msg and "line 3" in msg and "step 2" in msg
    assert "unknown task 'fake_ampcall'" in msg and "did you mean 'fake_ampcal'" in msg
    assert "fake_import, fake_ampcal, fake_image" in msg


def test_unknown_task_xml(tmp_path):
    text = TWIN_XML.replace("<Command>fake_image</Command>", "<Command>hifa_tclean</Command>")
    msg = error_of(tmp_path, "r.xml", text)
    assert "r.xml" in msg and "line 33" in msg and "command 5" in msg
    assert "unknown task 'hifa_tclean'" in msg


def test_unknown_parameter(tmp_path):
    msg = error_of(tmp_path, "r.yaml", "- fake_import: {}\n- fake_ampcal:\n    tant: 5000\n")
    assert "r.yaml" in msg and "line 3" in msg and "step 2 (fake_ampcal)" in msg
    assert "unknown parameter 'tant'" in msg
    assert "valid parameters: vis, tant_fallback, refant, solint, spws, weights, mode" in msg


def test_unknown_parameter_xml(tmp_path):
    text = TWIN_XML.replace("<Keyword>nchan</Keyword>", "<Keyword>nchans</Keyword>")
    msg = error_of(tmp_path, "r.xml", text)
    assert "line 14" in msg and "command 2 (fake_import)" in msg
    assert "unknown parameter 'nchans'" in msg and "did you mean 'nchan'" in msg


@pytest.mark.parametrize("param, value, expects", [
    ("tant_fallback", "warm", "expects float, got str 'warm'"),
    ("tant_fallback", "true", "expects float, got bool True"),
    ("solint", "[1]", "expects float or None, got list [1]"),
    ("spws", "[1, x]", "expects list of int"),
    ("mode", "c", "expects one of 'a', 'b', got str 'c'"),
    ("refant", "41", "expects str, got int 41 (quote it)"),
])
def test_wrong_type_yaml(tmp_path, param, value, expects):
    msg = error_of(tmp_path, "r.yaml", f"- fake_import:\n- fake_ampcal:\n    {param}: {value}\n")
    assert "r.yaml" in msg and "line 3" in msg and "step 2 (fake_ampcal)" in msg
    assert f"parameter '{param}' {expects}" in msg


@pytest.mark.parametrize("param, value, expects", [
    ("tant_fallback", "warm", "expects float, got str 'warm'"),
    ("nchan", "4.5", "expects int, got str '4.5'"),
    ("overwrite", "yes", "expects bool, got str 'yes'"),
    ("asis", "['a', b]", "expects list of str"),
])
def test_wrong_type_xml(tmp_path, param, value, expects):
    task = "fake_ampcal" if param == "tant_fallback" else "fake_import"
    text = (f"<ProcessingProcedure><ProcedureTitle>t</ProcedureTitle>\n"
            f"<ProcessingCommand><Command>{task}</Command><ParameterSet>\n"
            f"<Parameter><Keyword>{param}</Keyword><Value>{escape(value)}</Value></Parameter>\n"
            f"</ParameterSet></ProcessingCommand></ProcessingProcedure>\n")
    msg = error_of(tmp_path, "r.xml", text)
    assert "r.xml" in msg and "line 3" in msg and f"command 1 ({task})" in msg
    assert f"parameter '{param}' {expects}" in msg


def test_all_problems_reported_together(tmp_path):
    text = ("steps:\n  - fake_nope: {}\n  - fake_ampcal: {tant_fallback: hot, mode: z}\n"
            "  - fake_image: {label: 3}\n")
    with pytest.raises(RecipeError) as info:
        load_text(tmp_path, "many.yaml", text)
    msg = str(info.value)
    assert msg.startswith("recipe ") and "many.yaml: 4 problems:" in msg
    assert len(info.value.problems) == 4
    for part in ("line 2, step 1", "line 3, step 2 (fake_ampcal): parameter 'tant_fallback'",
                 "parameter 'mode'", "line 4, step 3 (fake_image): parameter 'label'"):
        assert part in msg


def test_malformed_yaml_reports_line_and_column(tmp_path):
    msg = error_of(tmp_path, "bad.yaml", "steps:\n  - breakpoint\n  - fake_import: vis: a.ms\n")
    assert "bad.yaml: line 3, column 21: malformed YAML: mapping values are not allowed" in msg
    msg = error_of(tmp_path, "bad.yaml", "steps:\n  - fake_import: {nchan: 4\n  - breakpoint\n")
    assert "line 4, column 1: malformed YAML: expected ',' or '}'" in msg
    assert "while parsing a flow mapping at line 2" in msg
    msg = error_of(tmp_path, "bad.yaml", "- fake_import:\n    vis: a\x07.ms\n")
    assert "bad.yaml: line 2, column 11: malformed YAML: character #x0007" in msg


def test_malformed_yaml_tab_indent(tmp_path):
    msg = error_of(tmp_path, "tab.yaml", "steps:\n\t- fake_import: {}\n")
    assert "tab.yaml" in msg and "line 2, column 1" in msg and "malformed YAML" in msg


def test_malformed_xml_reports_position(tmp_path):
    text = TWIN_XML.replace("</Command>\n        <ParameterSet/>", "</Comand>\n<ParameterSet/>", 1)
    msg = error_of(tmp_path, "bad.xml", text)
    assert "bad.xml" in msg and "malformed XML" in msg and "line 6, column" in msg
    assert "mismatched tag" in msg


@pytest.mark.parametrize("text, problem", [
    ("- fake_import\n", "a step is `- task_name: {param: value, ...}` or `- breakpoint`"),
    ("- [fake_import]\n", "got a list"),
    ("- fake_import:\n  nchan: 4\n", "are the parameters indented"),
    ("- fake_import: [nchan, 4]\n", "parameters of fake_import must be a mapping"),
    ("- breakpoint: {x: 1}\n", "a breakpoint takes no parameters"),
])
def test_non_mapping_step(tmp_path, text, problem):
    msg = error_of(tmp_path, "step.yaml", text)
    assert "step.yaml" in msg and "line 1" in msg and "step 1" in msg and problem in msg


@pytest.mark.parametrize("name, text", [
    ("empty.yaml", ""),
    ("empty.yaml", "# nothing here\n"),
    ("empty.yaml", "name: x\nsteps: []\n"),
    ("empty.yaml", "name: x\nsteps:\n"),
    ("empty.yaml", "[]\n"),
    ("empty.xml", "<ProcessingProcedure><ProcedureTitle>x</ProcedureTitle>"
                  "</ProcessingProcedure>"),
])
def test_empty_recipe(tmp_path, name, text):
    msg = error_of(tmp_path, name, text)
    assert name in msg and "empty" in msg


def test_only_breakpoints_or_ignored_commands(tmp_path):
    assert "no task steps" in error_of(tmp_path, "bp.yaml", "- breakpoint\n")
    xml = ("<ProcessingProcedure><ProcessingCommand><Command>h_init</Command><ParameterSet/>"
           "</ProcessingCommand></ProcessingProcedure>")
    assert "no task steps" in error_of(tmp_path, "init.xml", xml)


def test_missing_file(tmp_path):
    with pytest.raises(RecipeError) as info:
        load_recipe(tmp_path / "nowhere.yaml", registry=REGISTRY)
    assert "nowhere.yaml" in str(info.value) and "not found" in str(info.value)
    with pytest.raises(RecipeError, match="packaged recipes: .*hsol_import"):
        load_recipe("no_such_recipe", registry=REGISTRY)


def test_bad_top_level(tmp_path):
    msg = error_of(tmp_path, "top.yaml", "name: t\nsteps: [fake_image: {}]\nstages: 3\n")
    assert "unknown top-level key 'stages'" in msg and "line 3" in msg
    msg = error_of(tmp_path, "top.yaml", "just text\n")
    assert "a recipe is a mapping" in msg


def test_xml_structure_errors(tmp_path):
    msg = error_of(tmp_path, "x.xml", "<Procedure/>")
    assert "expected <ProcessingProcedure>" in msg
    text = ("<ProcessingProcedure>\n<ProcessingCommand><Command>fake_image</Command>\n"
            "<ParameterSet><Parameter><Keyword>label</Keyword></Parameter></ParameterSet>\n"
            "</ProcessingCommand></ProcessingProcedure>")
    msg = error_of(tmp_path, "x.xml", text)
    assert "line 3" in msg and "one <Keyword> and one text <Value>" in msg


def test_xml_entities_are_refused(tmp_path):
    text = ('<?xml version="1.0"?>\n<!DOCTYPE p [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
            "<ProcessingProcedure><ProcessingCommand><Command>fake_image</Command>"
            "<ParameterSet><Parameter><Keyword>label</Keyword><Value>&e;</Value></Parameter>"
            "</ParameterSet></ProcessingCommand></ProcessingProcedure>")
    msg = error_of(tmp_path, "ent.xml", text)
    assert "ent.xml: line 2: malformed XML: entity declarations" in msg


def test_full_ppr_with_nested_procedure(tmp_path):
    text = ("<SciPipeRequest><ProcessingRequests><ProcessingRequest><ProcessingProcedure>"
            "<ProcessingCommand><Command>fake_image</Command><ParameterSet/></ProcessingCommand>"
            "</ProcessingProcedure></ProcessingRequest></ProcessingRequests></SciPipeRequest>")
    assert [s.task for s in load_text(tmp_path, "ppr.xml", text).steps] == ["fake_image"]


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"- fake_import: {vis: caf\xe9.ms}\n")
    with pytest.raises(RecipeError, match="latin.yaml: not UTF-8"):
        load_recipe(path, registry=REGISTRY)


# -- property tests: only RecipeError, never anything else ------------------------
def try_parse(data: str | bytes, fmt: str) -> Recipe | None:
    try:
        return parse_recipe(data, fmt, path="prop." + fmt, registry=REGISTRY)
    except RecipeError as exc:
        assert "prop." + fmt in str(exc)
        return None


YAML_CHARS = st.text(alphabet=string.printable + "é\u00a0\ufeff", max_size=200)
XML_CHARS = st.text(alphabet="<>/=\"' \n!?-abcdefgtsPCVKmnorkTlepS&;[]", max_size=200)


@settings(max_examples=300, deadline=None)
@given(text=YAML_CHARS)
def test_random_text_yaml(text):
    try_parse(text, "yaml")


@settings(max_examples=300, deadline=None)
@given(text=XML_CHARS | st.binary(max_size=100))
def test_random_text_xml(text):
    try_parse(text, "xml")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200), suffix=st.sampled_from([".yaml", ".xml", ".txt"]))
def test_random_files(tmp_path, data, suffix):
    path = tmp_path / ("junk" + suffix)
    path.write_bytes(data)
    try:
        load_recipe(path, registry=REGISTRY)
    except RecipeError as exc:
        assert "junk" in str(exc)


SCALARS = (st.none() | st.booleans() | st.integers(-10**30, 10**30)
           | st.floats(allow_nan=False) | st.text(max_size=10))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
PARAM_NAMES = st.sampled_from(["vis", "asis", "nchan", "overwrite", "tant_fallback", "refant",
                               "solint", "spws", "weights", "mode", "threshold", "label", "bogus"])
TASK_NAMES = st.sampled_from(list(REGISTRY) + ["breakpoint", "unknown_task"])
STEPS = st.one_of(
    st.just("breakpoint"),
    st.builds(lambda t, p: {t: p}, TASK_NAMES,
              st.none() | st.dictionaries(PARAM_NAMES, VALUES, max_size=4)),
    VALUES,
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(STEPS, max_size=5), wrapped=st.booleans())
def test_random_step_structures_yaml(steps, wrapped):
    doc = {"name": "p", "steps": steps} if wrapped else steps
    recipe = try_parse(yaml.safe_dump(doc), "yaml")
    if recipe is not None:
        check_typed(recipe)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(st.tuples(TASK_NAMES, st.dictionaries(PARAM_NAMES, SCALARS, max_size=4)),
                      max_size=5))
def test_random_step_structures_xml(steps):
    commands = []
    for task, params in steps:
        ps = "".join(f"<Parameter><Keyword>{k}</Keyword><Value>{escape(str(v))}</Value></Parameter>"
                     for k, v in params.items())
        commands.append(f"<ProcessingCommand><Command>{task}</Command>"
                        f"<ParameterSet>{ps}</ParameterSet></ProcessingCommand>")
    text = f"<ProcessingProcedure>{''.join(commands)}</ProcessingProcedure>"
    recipe = try_parse(text, "xml")
    if recipe is not None:
        check_typed(recipe)


@settings(max_examples=300, deadline=None)
@given(param=PARAM_NAMES.filter(lambda p: p not in ("bogus", "threshold", "label")),
       value=VALUES, as_text=st.booleans())
def test_random_param_values(param, value, as_text):
    task = "fake_import" if param in ("vis", "asis", "nchan", "overwrite") else "fake_ampcal"
    if as_text:
        text = (f"<ProcessingProcedure><ProcessingCommand><Command>{task}</Command><ParameterSet>"
                f"<Parameter><Keyword>{param}</Keyword><Value>{escape(str(value))}</Value>"
                f"</Parameter></ParameterSet></ProcessingCommand></ProcessingProcedure>")
        recipe = try_parse(text, "xml")
    else:
        recipe = try_parse(yaml.safe_dump([{task: {param: value}}]), "yaml")
    if recipe is not None:
        check_typed(recipe)


EXPECTED_TYPES = {
    "vis": (str, type(None)), "asis": (list,), "nchan": (int,), "overwrite": (bool,),
    "tant_fallback": (float,), "refant": (str,), "solint": (float, type(None)),
    "spws": (list,), "weights": (list,), "mode": (str,), "threshold": (float,), "label": (str,),
}


def check_typed(recipe: Recipe) -> None:
    """Loaded params have exactly the hinted Python types, and the recipe is JSON-able."""
    for step in recipe.steps:
        for name, value in step.params.items():
            assert type(value) in EXPECTED_TYPES[name], (name, value)
            if name == "nchan":
                assert not isinstance(value, bool)
            if name in ("spws",):
                assert all(type(v) is int for v in value)
            if name in ("weights",):
                assert all(type(v) is float for v in value)
            if name == "asis":
                assert all(type(v) is str for v in value)
            if name == "mode":
                assert value in ("a", "b")
    json.dumps(recipe.to_dict())
