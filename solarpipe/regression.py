"""Regression figures: extract key numbers of a run, compare with a stored file.

Format (the ALMA pipeline's style), one figure per line::

    s3.hsol_ampcal.tant.DV01.BB_1.XX.scan8.sub2 = 612.3 :: 0.01

``:: tol`` is a relative tolerance (absolute for values whose expected value
is 0); lines without it use the default. ``#`` starts a comment.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .context import Context

DEFAULT_REL_TOL = 1e-3
_LINE = re.compile(r"^\s*([^=#\s]+)\s*=\s*([^:#]+?)\s*(?:::\s*([0-9.eE+-]+))?\s*(?:#.*)?$")


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def extract(context: Context) -> dict[str, float]:
    """Key figures of every completed stage, as flat ``key -> value``."""
    out: dict[str, float] = {}
    for st in context.stages:
        if st.status != "ok":
            continue
        p = f"s{st.number}.{st.task}"
        res = st.results
        for q in res.get("qa", []):
            key = re.sub(r"[^A-Za-z0-9_]+", "_", q.get("metric_name") or q["shortmsg"])[:40]
            out[f"{p}.qa.{key}"] = round(float(q["score"]), 4)
        s = res.get("summary", {})
        if st.task == "hsol_importdata":
            out[f"{p}.n_scans"] = s.get("n_scans", 0)
            out[f"{p}.band"] = s.get("band") or 0
        elif st.task == "hsol_flagdata":
            out[f"{p}.fraction_after"] = s.get("fraction_after", 0.0)
            for spw, v in s.get("by_spw", {}).items():
                out[f"{p}.flagged.spw{spw}"] = v["after"]
        elif st.task == "hsol_ampcal":
            for r in s.get("power_table", []):
                if r.get("on_sun") and _num(r.get("tant")) is not None:
                    out[f"{p}.tant.{r['antenna']}.BB_{r['baseband']}.{r['pol']}.scan{r['scan']}.sub{r['subscan']}"] = r["tant"]
        elif st.task == "hsol_gaincal":
            for field, d in s.get("derived_fluxes", {}).items():
                for spw, f in d.get("spw_flux_jy", {}).items():
                    out[f"{p}.flux.{field}.spw{spw}"] = f
        elif st.task == "hsol_feather":
            f = s.get("feathered", {})
            for key in ("tp_k", "feathered_k"):
                out[f"{p}.feather.central.{key}"] = f.get("central_mean", {}).get(key)
            out[f"{p}.feather.overlap_ratio"] = f.get("overlap", {}).get("ratio")
        for key in ("rms_jy", "peak_jy", "dynamic_range"):
            for name, img in s.get("images", {}).items() if isinstance(s.get("images"), dict) else []:
                if _num(img.get(key)) is not None:
                    out[f"{p}.image.{name}.{key}"] = img[key]
    return {k: float(v) for k, v in out.items() if _num(v) is not None}


def format_figures(figures: dict[str, float], tolerances: dict[str, float] | None = None) -> str:
    lines = []
    for k in sorted(figures):
        tol = (tolerances or {}).get(k)
        lines.append(f"{k} = {figures[k]:.10g}" + (f" :: {tol:g}" if tol is not None else ""))
    return "\n".join(lines) + "\n"


def parse_figures(text: str, source: str = "<text>") -> tuple[dict[str, float], dict[str, float]]:
    """(values, tolerances) from a figures file; raises ValueError naming the line."""
    values, tols = {}, {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if not m or _num(m.group(2)) is None:
            raise ValueError(f"{source}: line {i}: expected 'key = number [:: rel_tol]', got {line!r}")
        values[m.group(1)] = float(m.group(2))
        if m.group(3):
            tols[m.group(1)] = float(m.group(3))
    return values, tols


@dataclass
class Difference:
    key: str
    expected: float | None
    got: float | None
    tol: float

    def __str__(self) -> str:
        if self.got is None:
            return f"- {self.key}: expected {self.expected:.6g}, missing from the run"
        if self.expected is None:
            return f"+ {self.key}: {self.got:.6g} is new (not in the expected file)"
        rel = abs(self.got - self.expected) / abs(self.expected) if self.expected else abs(self.got)
        return f"! {self.key}: expected {self.expected:.6g}, got {self.got:.6g} (diff {rel:.3g} > tol {self.tol:g})"


def compare(got: dict[str, float], expected: dict[str, float], tolerances: dict[str, float],
            default_tol: float = DEFAULT_REL_TOL, allow_new: bool = True) -> list[Difference]:
    """Differences beyond tolerance (relative; absolute where the expected value is 0)."""
    diffs = []
    for k, e in expected.items():
        tol = tolerances.get(k, default_tol)
        if k not in got:
            diffs.append(Difference(k, e, None, tol))
            continue
        g = got[k]
        err = abs(g - e) / abs(e) if e else abs(g)
        if err > tol:
            diffs.append(Difference(k, e, g, tol))
    if not allow_new:
        diffs += [Difference(k, None, got[k], default_tol) for k in got if k not in expected]
    return diffs


def tolerances_for(keys: Iterable[str], rules: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Per-key tolerance from (prefix-or-regex, tolerance) rules; the last matching rule wins;
    keys no rule matches are left out (the comparison's default applies)."""
    rule_list = list(rules)
    tols = {}
    for k in keys:
        for prefix, t in rule_list:
            if k.startswith(prefix) or re.search(prefix, k):
                tols[k] = t
    return tols


def write_expected(path: Path, figures: dict[str, float], tolerances: Iterable[tuple[str, float]] = ()) -> None:
    """Regenerate the expected file on purpose (keeps given per-key-prefix tolerances)."""
    tols = tolerances_for(figures, tolerances)
    Path(path).write_text("# solarpipe regression figures; regenerate with "
                          "`python -m solarpipe.regression --regenerate`\n" + format_figures(figures, tols))


#: per-key tolerance rules for a newly written expected file: (regex, relative tolerance)
DEFAULT_TOLERANCES: tuple[tuple[str, float], ...] = (
    (r"\.tant\.", 1e-4),
    (r"\.qa\.", 0.05),
    (r"\.flux\.", 5e-3),
    (r"\.flagged\.|fraction_after", 0.02),
    (r"\.image\.", 0.05),
    (r"\.feather\.", 0.01),
)


def run_small_recipe(workdir: Path, sim_dir: Path, recipe: str = "hsol_solar") -> dict[str, float]:
    """Simulate the 'small' EB (seed 0) and run ``recipe`` on it; return its figures."""
    from .recipe import load_recipe
    from .runner import new_context, run_recipe
    from .simulate import simulate_eb

    eb = simulate_eb(sim_dir, size="small", seed=0)
    ctx = new_context(workdir)
    run_recipe(load_recipe(recipe), ctx, vis=str(eb.ms))
    return extract(Context.load(workdir))


def main(argv: list[str] | None = None) -> int:
    """``python -m solarpipe.regression [--regenerate] [--expected FILE]``: run the small
    EB through the hsol_solar recipe (calibration, imaging, feather) and compare (or, on purpose, rewrite) the figures."""
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(prog="python -m solarpipe.regression", description=main.__doc__)
    ap.add_argument("--expected", default=str(Path(__file__).resolve().parent.parent / "tests" / "regression"
                                              / "expected_small.txt"))
    ap.add_argument("--regenerate", action="store_true", help="write the expected file from this run")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="solarpipe_regression_") as tmp:
        figures = run_small_recipe(Path(tmp) / "run", Path(tmp) / "sim")
    if args.regenerate:
        write_expected(Path(args.expected), figures, DEFAULT_TOLERANCES)
        print(f"wrote {len(figures)} figures to {args.expected}")
        return 0
    expected, tols = parse_figures(Path(args.expected).read_text(), args.expected)
    diffs = compare(figures, expected, tols)
    for d in diffs:
        print(d)
    print(f"{len(expected) - len(diffs)} of {len(expected)} figures within tolerance")
    return 1 if diffs else 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.exit(main())
