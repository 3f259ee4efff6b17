"""Re-run hsol_selfcal on a tdimaging workdir from its stage-9 snapshot; print correlations."""
import json, sys, time
import numpy as np
sys.path.insert(0, "/work/main/tests/component")
from solarpipe.context import Context
from solarpipe.runner import run_stage
from test_tdimaging import correlation_with_truth

wd, sim = sys.argv[1], sys.argv[2]
params = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
class EB: pass
eb = EB(); eb.truth = json.load(open(f"{sim}/truth.json"))
ctx = Context.from_snapshot(wd, 9)
from pathlib import Path
from solarpipe.tasks.imaging import image_stats
for i in ctx.images:
    if i["kind"] == "sun":
        i["rms_jy"] = image_stats(Path(i["imagename"]), 0.2, rms_pb=i["tclean_params"]["pbmask"])["rms_jy"]
ctx.save()
t = time.time()
run_stage(ctx, "hsol_selfcal", params)
ctx = Context.load(wd)
stage = ctx.stages[-1]
before = next(i for i in ctx.images if i["kind"] == "sun" and "selfcal" not in i["name"])
after = next((i for i in ctx.images if i["kind"] == "sun" and i.get("selfcal_of") == before["name"]), None)
for it in stage.results["summary"]["iterations"]:
    print(f"step {it['step']} {it['solint']}: rms {it.get('rms_before_jy',0):.4f} -> {it.get('rms_after_jy',0):.4f} "
          f"contrast {it.get('contrast_before',0):.4f} -> {it.get('contrast_after',0):.4f} {it['accepted']} {it['why']}")
c0 = correlation_with_truth(eb, before)
print("before", c0, before["rms_jy"])
if after:
    print("after", correlation_with_truth(eb, after), after["rms_jy"], after["rms_jy"] / before["rms_jy"])
print("time", time.time() - t)
