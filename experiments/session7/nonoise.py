import json, sys
sys.path.insert(0, "/work/main/tests/component")
from solarpipe.simulate import simulate_eb
from solarpipe.recipe import load_recipe
from solarpipe.runner import new_context, run_recipe
from test_tdimaging import correlation_with_truth
deg = float(sys.argv[1]); out = f"/tmp/e8/nn{deg:g}"
eb = simulate_eb(out + "_sim", size="tiny", noise=True, bad_data=False, time_variable=True, phase_noise_rms_deg=deg,
                 n_ant_12m=10, n_ant_7m=2)
ctx = new_context(out)
run_recipe(load_recipe("hsol_calimage"), ctx, vis=str(eb.ms))
img = next(i for i in ctx.images if i["kind"] == "sun")
print("phase noise", deg, "correlation", correlation_with_truth(eb, img), img["tclean_params"]["scales"])
