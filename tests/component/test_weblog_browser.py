"""The weblog of the `small` EB's full hsol_solar run, opened in headless Chromium.

Reuses the session's `small_calimage` run (tests/sim_fixtures.py). Needs Debian's
`chromium` (`.ci/run` installs it); without it the browser tests are skipped with
a message saying how to install it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from solarpipe.qa import colour
from solarpipe.weblog.browser import HeadlessChromium, crawl_weblog, find_chromium
from solarpipe.weblog.serve import serving

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

INDEX_STAGES_JS = """Array.from(document.querySelectorAll('#stages tr[data-stage]')).map(r => {
  const b = r.querySelector('[data-qa-colour]');
  return [Number(r.dataset.stage), r.querySelector('a').textContent, b.dataset.qaColour,
          b.textContent, getComputedStyle(b).backgroundColor];
})"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("headless Chromium not found: install Debian's chromium "
                    "(apt-get install -y chromium; .ci/run does it) to run the weblog browser test")
    return path


def _expected_pages(ctx) -> set[str]:
    return ({"index.html", "bytask.html", "bytopic.html", "overview.html"}
            | {f"stage{s.number}/index.html" for s in ctx.stages})


def test_every_page_loads_cleanly_and_the_index_shows_every_stage_with_its_colour(small_calimage, chromium):
    from solarpipe.context import Context

    # the context as on disk: other tests add stages to this shared run (e.g. hsol_feather
    # with doctored TP maps, some failing on purpose), and the weblog shows them all
    ctx = Context.load(small_calimage[1].workdir)
    weblog = Path(ctx.workdir) / "weblog"
    index = (weblog / "index.html").as_uri()
    with HeadlessChromium(chromium) as browser:
        check = crawl_weblog(browser, index)
        assert check.problems == [], "\n".join(check.problems)
        visited = {url.removeprefix(weblog.as_uri() + "/") for url in check.pages}
        assert _expected_pages(ctx) <= visited
        for url, page in check.pages.items():
            if url.endswith("overview.html") or "/stage" in url:
                assert page.links, url
        browser.load(index)
        rows = browser.evaluate(INDEX_STAGES_JS)
    assert [r[0] for r in rows] == [s.number for s in ctx.stages]
    for (number, task, shown, text, background), st in zip(rows, ctx.stages):
        assert (task, shown) == (st.task, colour(st.representative_score)), number
        assert text == f"{st.representative_score:.2f}"
        assert background not in ("", "rgba(0, 0, 0, 0)", "transparent"), (number, background)
    assert len({r[4] for r in rows}) == len({r[2] for r in rows})  # one visible colour per QA colour


def test_served_weblog_loads_cleanly_over_loopback_http(small_calimage, chromium):
    _, ctx = small_calimage
    with serving(Path(ctx.workdir) / "weblog") as url, HeadlessChromium(chromium) as browser:
        assert url.startswith("http://127.0.0.1:")
        check = crawl_weblog(browser, url)
    assert check.problems == [], "\n".join(check.problems)
    assert len(check.pages) >= len(_expected_pages(ctx))


def test_observation_summary_matches_the_simulated_truth(small_calimage):
    """Pointings on the disc and the Sun elevation on the home page against the simulator."""
    from solarpipe.sungeometry import sun_elevation_track

    eb, ctx = small_calimage
    run = ctx.observing_run
    summary = ctx.stages[0].results["summary"]
    for f in eb.truth["fields"]:
        if f["hp_arcsec"]:
            pos = summary["pointings_helioprojective_arcsec"][f["name"]]
            assert np.hypot(pos["Tx"] - f["hp_arcsec"][0], pos["Ty"] - f["hp_arcsec"][1]) < 2.0, f["name"]
    track = sun_elevation_track(run)
    sun_ids = set(run.sun_field_ids)
    for scan in eb.truth["scans"]:
        if sun_ids & set(scan["field_ids"]):
            mid = 0.5 * (scan["start_mjd_s"] + scan["end_mjd_s"])
            assert np.interp(mid, track["mjd_s"], track["elevation_deg"]) == pytest.approx(
                scan["elevation_deg"], abs=0.3), scan["number"]
    home = (Path(ctx.workdir) / "weblog" / "index.html").read_text()
    assert f"{run.time_on_source_s() / 60:.1f} min" in home
    assert "Sun elevation" in home and "Overall QA" in home
