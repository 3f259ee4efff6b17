"""raw selfcal variants on a copy of the imaging MS: model from a clean with mask PB >= M,
gaincal solint S, image standard mask 0.6; correlation."""
import json, sys, shutil
from pathlib import Path
sys.path.insert(0, "/work/main/tests/component")
from solarpipe.casaenv import configure_offline_casa; configure_offline_casa()
from casatasks import tclean, gaincal, applycal, exportfits, clearcal, delmod
from solarpipe.fitsio import write_kelvin_fits
from test_tdimaging import correlation_with_truth

vis, ctxjson, sim, tag = sys.argv[1:5]
model_mask = float(sys.argv[5]); solints = sys.argv[6].split(",")
uvrange = sys.argv[7] if len(sys.argv) > 7 else ""
class EB: pass
eb = EB(); eb.truth = json.load(open(f"{sim}/truth.json"))
std = next(i for i in json.load(open(ctxjson))["images"] if i["kind"] == "sun")
p = dict(std["tclean_params"])
def rm(n):
    for s in (".image", ".image.pbcor", ".residual", ".model", ".psf", ".pb", ".sumwt", ".mask"):
        shutil.rmtree(f"{n}{s}", ignore_errors=True)
def image(name, col, mask, save):
    rm(name); q = dict(p); q["pbmask"] = mask
    tclean(vis=vis, imagename=name, datacolumn=col, savemodel="modelcolumn" if save else "none", **q)
    write_kelvin_fits(f"{name}.image.pbcor", f"{name}.K.fits", tuple(std["centre_offset_arcsec"]), std["mid_mjd_s"])
    exportfits(imagename=f"{name}.pb", fitsimage=f"{name}.pb.fits", overwrite=True)
    return correlation_with_truth(eb, dict(fits_kelvin=f"{name}.K.fits", pb_fits=f"{name}.pb.fits"))
clearcal(vis=vis); delmod(vis=vis)
print(tag, "before", image(f"{tag}_b", "data", 0.6, False), flush=True)
gt = []
for k, s in enumerate(solints):
    image(f"{tag}_m{k}", "corrected", model_mask, True)   # model -> MODEL_DATA
    t = f"{tag}_{k}.g"; shutil.rmtree(t, ignore_errors=True)
    gaincal(vis=vis, caltable=t, solint=s, calmode="p", gaintype="G", minsnr=3, minblperant=4, refant="", uvrange=uvrange, combine=("spw" if "combine" in tag else ""))
    applycal(vis=vis, gaintable=[t], calwt=False, applymode="calonly", interp="linear", spwmap=([[0]*4] if "combine" in tag else []))
    print(tag, "step", k, s, image(f"{tag}_a{k}", "corrected", 0.6, False), flush=True)
