"""Context: round trip, atomic writes, snapshots, resume, re-run, clear errors."""
import json

import pytest

from solarpipe import context as ctxmod
from solarpipe.context import CalApplication, Context, StageRecord
from solarpipe.errors import ContextError, StageFailedError
from solarpipe.recipe import Recipe, Step
from solarpipe.runner import new_context, rerun_context, resume, run_recipe, run_stage
from solarpipe.tasks import registry


@pytest.fixture
def fake_registry(monkeypatch):
    monkeypatch.setitem(registry.TASKS, "hsol_count", "fake_tasks:Count")


def _recipe(n: int, fail_file: str | None = None) -> Recipe:
    steps = [Step(task="hsol_count", params={"label": f"s{i}", **({"fail_if_file": fail_file} if i == 2 and fail_file else {})},
                  line=None, index=i, is_breakpoint=False) for i in range(1, n + 1)]
    return Recipe(name="count", description="", steps=steps, path="<test>", format="yaml")


def test_round_trip(tmp_path):
    ctx = new_context(tmp_path)
    ctx.add_cal(CalApplication(gaintable="a.tsys", caltype="tsys", stage=3, intents="*TARGET*"))
    ctx.stages.append(StageRecord(number=1, task="hsol_x", params={"a": 1}, status="ok",
                                  results={"qa": [{"score": 0.5, "shortmsg": "m"}]}))
    ctx.images.append({"name": "img", "path": "x.image"})
    ctx.save()
    back = Context.load(tmp_path)
    assert back.to_dict() == ctx.to_dict()
    assert back.stages[0].representative_score == 0.5
    assert back.callibrary[0].gaintable == "a.tsys"


def test_atomic_write_keeps_previous_on_crash(tmp_path, monkeypatch):
    ctx = new_context(tmp_path)
    ctx.products.append("before")
    ctx.save()
    before = (tmp_path / "context.json").read_text()

    def crashing_dump(obj, fh, **kw):
        fh.write('{"schema": 1, "workdir": "half')  # half-written file
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(ctxmod.json, "dump", crashing_dump)
    ctx.products.append("after")
    with pytest.raises(KeyboardInterrupt):
        ctx.save()
    monkeypatch.undo()
    assert (tmp_path / "context.json").read_text() == before
    assert Context.load(tmp_path).products == ["before"]
    assert not list(tmp_path.glob(".context.json.*.tmp"))


def test_corrupted_and_newer_schema_give_clear_errors(tmp_path):
    new_context(tmp_path)
    path = tmp_path / "context.json"
    path.write_text('{"schema": 1, "workdir": ')
    with pytest.raises(ContextError, match="corrupted"):
        Context.load(tmp_path)
    path.write_text(json.dumps({"schema": 99, "workdir": str(tmp_path)}))
    with pytest.raises(ContextError, match="newer solarpipe"):
        Context.load(tmp_path)
    path.write_text("[1, 2]")
    with pytest.raises(ContextError, match="corrupted"):
        Context.load(tmp_path)
    with pytest.raises(ContextError, match="no solarpipe context"):
        Context.load(tmp_path / "elsewhere")


def test_snapshot_per_stage_and_rerun_from_snapshot(tmp_path, fake_registry):
    ctx = new_context(tmp_path)
    run_recipe(_recipe(3), ctx)
    assert Context.load(tmp_path).products == ["s1", "s2", "s3"]
    for n, expect in ((0, []), (1, ["s1"]), (2, ["s1", "s2"]), (3, ["s1", "s2", "s3"])):
        assert Context.from_snapshot(tmp_path, n).products == expect
    # re-run stage 2 from the snapshot after stage 1
    again = rerun_context(tmp_path, 2)
    assert again.products == ["s1"] and again.stage_counter == 1
    run_recipe(_recipe(3), again, start=2)
    final = Context.load(tmp_path)
    assert final.products == ["s1", "s2", "s3"]
    assert [s.number for s in final.stages] == [1, 2, 3]


def test_resume_after_failed_stage(tmp_path, fake_registry):
    flag = tmp_path / "crash"
    flag.write_text("1")
    ctx = new_context(tmp_path / "run")
    with pytest.raises(StageFailedError, match="stage 2"):
        run_recipe(_recipe(3, str(flag)), ctx)
    saved = Context.load(tmp_path / "run")
    assert saved.last_completed_stage == 1
    assert saved.stages[-1].status == "failed"
    assert saved.stages[-1].representative_score == 0.0
    flag.unlink()
    resume(tmp_path / "run")
    done = Context.load(tmp_path / "run")
    assert done.products == ["s1", "s2", "s3"]
    assert [s.status for s in done.stages] == ["ok", "ok", "ok"]


def test_resume_after_kill_mid_stage(tmp_path, fake_registry):
    """A stage left 'running' (process killed) is re-run from the snapshot before it."""
    ctx = new_context(tmp_path)
    run_recipe(_recipe(3), ctx, stop=1)
    ctx = Context.load(tmp_path)
    ctx.stages.append(StageRecord(number=2, task="hsol_count", status="running"))
    ctx.products.append("half-done")  # state a killed stage might leave in memory
    ctx.save()
    resume(tmp_path)
    assert Context.load(tmp_path).products == ["s1", "s2", "s3"]


def test_run_stage_records_qa_and_weblog(tmp_path, fake_registry):
    ctx = new_context(tmp_path)
    rec = run_stage(ctx, "hsol_count", {"label": "z"})
    assert rec.status == "ok" and rec.representative_score == 1.0
    assert (tmp_path / "weblog" / "index.html").exists()
    assert (tmp_path / "weblog" / "stage1" / "index.html").exists()
