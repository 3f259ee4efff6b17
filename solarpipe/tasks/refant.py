"""hsol_refant: rank reference antennas (flagged fraction, closeness to the array
centre, 12m before 7m), as the ALMA pipeline's hif_refant does."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BadInputError
from ..heuristics.refant import rank_refants
from ..qa import QAScore
from ..task import Results, Task, TaskInputs


@dataclass
class RefAntInputs(TaskInputs):
    """refant: a comma-separated list to impose (None: ranked by the heuristic)."""

    refant: str | None = None


class RefAntResults(Results):
    ranked: list[str] = []

    def merge_with_context(self, context) -> None:
        context.refants = list(self.ranked)


class RefAnt(Task):
    name = "hsol_refant"
    Inputs = RefAntInputs
    topic = "calibration"

    def prepare(self) -> dict[str, Any]:
        run = self.context.observing_run
        res = self.new_results()
        summary = self.casa.task("flagdata", vis=run.vis, mode="summary",
                                 spw=",".join(map(str, run.science_spw_ids)),
                                 _note="flagged fraction per antenna, science SPWs")
        names = [a.name for a in run.antennas]
        frac = [summary["antenna"][n]["flagged"] / summary["antenna"][n]["total"]
                if summary["antenna"].get(n, {}).get("total") else 1.0 for n in names]
        ranked = rank_refants(names, np.array([a.offset_m[:2] for a in run.antennas]), frac,
                              diameters_m=[a.diameter_m for a in run.antennas])
        if self.inputs.refant:  # type: ignore[attr-defined]
            order = [x.strip() for x in self.inputs.refant.split(",")]  # type: ignore[attr-defined]
            unknown = [a for a in order if a not in names]
            if unknown:
                raise BadInputError(f"hsol_refant: refant {', '.join(unknown)} selects no antenna of {run.vis} "
                                    f"(antennas: {', '.join(names)}); give names from that list")
            res.decide("refant", order, "given", by="user")
        else:
            order = [n for n, s in ranked if np.isfinite(s)]
            res.decide("refant", order[:5], "ranked by distance to the array centre, flagged fraction, "
                       "12m preferred (first 5 shown)")
        return {"results": res, "order": order, "ranked": ranked, "frac": dict(zip(names, frac))}

    def analyse(self, raw: dict[str, Any]) -> Results:
        res = RefAntResults(**vars(raw["results"]))
        res.ranked = raw["order"]
        res.summary["ranking"] = [{"antenna": n, "score": round(s, 3), "flagged_fraction": raw["frac"][n]}
                                  for n, s in raw["ranked"]]
        return res

    def qa(self, results: Results) -> list[QAScore]:
        first = results.summary["ranking"][0]
        ok = first["flagged_fraction"] < 0.5
        return [QAScore(1.0 if ok else 0.5, f"refant {results.ranked[0]}",  # type: ignore[attr-defined]
                        f"Best reference antenna {first['antenna']} ({100 * first['flagged_fraction']:.0f}% flagged).",
                        metric_name="refant_flagged_fraction", metric_value=first["flagged_fraction"],
                        topic="calibration")]
