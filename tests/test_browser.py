"""The real app in a real browser: start `streamlit run explorer/app.py`, drive Debian's Chromium
through Playwright, change g and check that the diagram SVG, the Plotly chart and the MACs figure
all follow. Saves a screenshot of every view to tests/artifacts/ (git-ignored; CI keeps it).

Launch arguments and waiting rules: tests/browser_support.py.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from browser_support import VIEWPORT, ServerError, chromium, settle, start_server, stop_server, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
START_TIMEOUT_S = 90
STEP_TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.usefixtures("requires_chromium"),
]
pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


@pytest.fixture(scope="module")
def server():
    """The real server on a free port; always stopped, its log kept in tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "streamlit_server.log"
    proc, url = start_server(log)
    try:
        try:
            wait_healthy(proc, url, timeout_s=START_TIMEOUT_S)
        except ServerError as exc:
            pytest.fail(f"{exc}; see {log}")
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def page(server):
    with chromium(STEP_TIMEOUT_MS) as browser:
        pg = browser.new_page(viewport=VIEWPORT)
        pg.set_default_timeout(STEP_TIMEOUT_MS)
        yield pg


def choose_view(page, view: str) -> None:
    page.locator("[data-testid=stSidebar] [data-testid=stRadio] label").filter(has_text=view).first.click()
    settle(page)
    page.wait_for_selector(f"h1:has-text('{view}')")


def choose_groups(page, g: int) -> None:
    page.locator("[data-testid=stSidebar]").get_by_role("combobox", name="Groups g").click()
    page.get_by_role("option", name=str(g), exact=True).click()
    settle(page)


def screenshot(page, name: str) -> Path:
    """The whole view: the page scrolls inside Streamlit's main area, so grow the viewport to it."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], section.main, "
        "[data-testid=stAppViewContainer]')].map(e => e.scrollHeight), 800)"
    )
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(int(height) + 40, 6000)})
    page.wait_for_timeout(400)  # charts re-layout to the new size
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size(VIEWPORT)
    return path


def macs_figure(page) -> str:
    value = page.locator("[data-testid=stMetric]").filter(has_text="MACs without FC").locator(
        "[data-testid=stMetricValue]")
    return value.inner_text().strip()


def diagram_svg(page) -> str:
    """The first diagram's SVG: a picture laid out by Graphviz on the server (a data URI), or the
    browser-drawn chart where the server has no `dot`."""
    page.wait_for_selector("[data-testid=stImage] img, [data-testid=stGraphVizChart] svg")
    images = page.locator("[data-testid=stImage] img")
    if images.count():
        import base64

        src = images.first.get_attribute("src")
        if src.startswith("data:image/svg+xml;base64,"):
            return base64.b64decode(src.split(",", 1)[1]).decode("utf-8")
        return page.evaluate("async (u) => (await fetch(u)).text()", src)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stGraphVizChart] svg').textContent.includes('Stage 2')")
    return page.locator("[data-testid=stGraphVizChart] svg").first.inner_html()


def plotly_bars(page) -> str:
    """The drawn bars of the first Plotly chart (their SVG paths encode the values)."""
    page.wait_for_selector("[data-testid=stPlotlyChart] .js-plotly-plot .main-svg .bars path")
    return page.evaluate(
        "() => [...document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot')"
        ".querySelectorAll('.bars path')].map(p => p.getAttribute('d')).join('|')"
    )


def wait_until_changed(read, before: str, what: str, timeout_s: float = 20) -> str:
    """Charts and diagrams draw asynchronously after the rerun: poll, bounded."""
    deadline = time.monotonic() + timeout_s
    while (now := read()) == before:
        if time.monotonic() > deadline:
            pytest.fail(f"the {what} did not change within {timeout_s} s")
        time.sleep(0.25)
    return now


def test_groups_change_moves_diagram_chart_and_macs(page, server):
    page.goto(f"{server}/?view=overview")
    page.wait_for_selector("[data-testid=stMetricValue]")
    settle(page)
    assert macs_figure(page) == "136,500,672"
    screenshot(page, "overview")

    choose_view(page, "Architecture")
    svg_g3 = diagram_svg(page)
    assert "g = 3" in svg_g3
    screenshot(page, "architecture")

    if shutil.which("dot"):  # the SVG is made on click, outside a script run
        with page.expect_download(timeout=STEP_TIMEOUT_MS) as download:
            page.get_by_role("button", name="Download SVG").first.click()
        svg_file = ARTIFACTS / "macro_g3.svg"
        download.value.save_as(svg_file)
        assert "<svg" in svg_file.read_text(encoding="utf-8")

    choose_view(page, "Complexity")
    chart_g3 = plotly_bars(page)
    assert chart_g3
    screenshot(page, "complexity")

    choose_groups(page, 8)
    assert "groups=8" in page.url
    wait_until_changed(lambda: plotly_bars(page), chart_g3, "Plotly chart of MACs by stage")

    choose_view(page, "Architecture")
    svg_g8 = wait_until_changed(lambda: diagram_svg(page), svg_g3, "macro diagram SVG")
    assert "g = 8" in svg_g8 and "384" in svg_g8

    choose_view(page, "Overview")
    assert macs_figure(page) == "136,829,952"

    choose_groups(page, 3)
    assert macs_figure(page) == "136,500,672"


@pytest.mark.parametrize(("view", "name"), [("Channel shuffle", "shuffle"), ("Compare", "compare"),
                                       ("Predictions", "predictions")])
def test_other_views_render_in_the_browser(page, server, view, name):
    page.goto(f"{server}/?view=overview")
    page.wait_for_selector("[data-testid=stMetricValue]")
    settle(page)
    choose_view(page, view)
    page.wait_for_selector("[data-testid=stPlotlyChart] .js-plotly-plot .main-svg")
    assert page.locator("[data-testid=stException]").count() == 0
    if view == "Predictions":
        assert page.locator("[data-testid=stMetric]").filter(has_text="Inference time").count() == 1
    screenshot(page, name)
