"""td workdir: joint-gridder image + selfcal (main's path), then the kept gains applied and
the standard image remade; correlations."""
import json, sys, time, shutil
from pathlib import Path
sys.path.insert(0, "/work/main/tests/component")
from solarpipe.context import Context
from solarpipe.runner import run_stage
from test_tdimaging import correlation_with_truth

wd, sim = sys.argv[1], sys.argv[2]
class EB: pass
eb = EB(); eb.truth = json.load(open(f"{sim}/truth.json"))
ctx = Context.from_snapshot(wd, 9)
ctx.save()
std = next(i for i in ctx.images if i["kind"] == "sun")
t = time.time()
run_stage(ctx, "hsol_imaging", {"targets": "sun", "gridder": "mosaic"})
ctx = Context.load(wd)
joint = ctx.images[-1]
print("joint image", joint["name"], correlation_with_truth(eb, joint), time.time() - t)
run_stage(ctx, "hsol_selfcal", {"image": joint["name"]})
ctx = Context.load(wd)
st = ctx.stages[-1]
for it in st.results["summary"]["iterations"]:
    print(f"step {it['step']} {it['solint']}: rms {it.get('rms_before_jy',0):.4f} -> {it.get('rms_after_jy',0):.4f} "
          f"contrast {it.get('contrast_before',0):.4f} -> {it.get('contrast_after',0):.4f} {it['accepted']} {it['why']}")
after = next((i for i in ctx.images if i.get("selfcal_of") == joint["name"]), None)
if after:
    print("joint after selfcal", correlation_with_truth(eb, after))
# standard image of the self-calibrated data
from casatasks import tclean, exportfits
from solarpipe.fitsio import write_kelvin_fits
p = dict(std["tclean_params"]); out = Path(wd) / "std_after"
for s in (".image", ".image.pbcor", ".residual", ".model", ".psf", ".pb", ".sumwt", ".mask"):
    shutil.rmtree(f"{out}{s}", ignore_errors=True)
tclean(vis=joint["vis"], imagename=str(out), datacolumn="corrected", **p)
write_kelvin_fits(f"{out}.image.pbcor", Path(wd) / "std_after.K.fits", tuple(std["centre_offset_arcsec"]), std["mid_mjd_s"])
exportfits(imagename=f"{out}.pb", fitsimage=str(Path(wd) / "std_after.pb.fits"), overwrite=True)
img = dict(fits_kelvin=str(Path(wd) / "std_after.K.fits"), pb_fits=str(Path(wd) / "std_after.pb.fits"))
print("standard before", correlation_with_truth(eb, std), "after joint gains", correlation_with_truth(eb, img))
print("time", time.time() - t)
