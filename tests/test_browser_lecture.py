"""A lecture in a real browser: the whole lesson walked from its first link, every view in presenter
mode on a 1280x720 projector at 150 % zoom, every view under the dark theme, and the downloads a
slide needs (a chart as SVG, a table as LaTeX, a left-to-right diagram). Screenshots go to
tests/artifacts/ (git-ignored; CI keeps them) for a person to look at.
"""

from __future__ import annotations

import base64
import contextlib
import re
from pathlib import Path

import pytest
from browser_support import ROOT, chromium, settle, start_server, stop_server, wait_healthy

from explorer import lesson
from explorer import state as ui_state

ARTIFACTS = ROOT / "tests" / "artifacts"
STEP_TIMEOUT_MS = 90_000
#: A 1280x720 projector at 150 % browser zoom: the page lays out in 853x480 CSS pixels.
PROJECTOR = {"viewport": {"width": 853, "height": 480}, "device_scale_factor": 1.5}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.usefixtures("requires_chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
PlaywrightTimeout = sync_api.TimeoutError


def _serve(name: str, *args: str):
    proc, url = start_server(ARTIFACTS / f"{name}_server.log", args=args)
    try:
        wait_healthy(proc, url)
    except Exception:
        stop_server(proc)
        raise
    return proc, url


@pytest.fixture(scope="module")
def server():
    proc, url = _serve("lecture")
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    with chromium(STEP_TIMEOUT_MS) as b:
        yield b


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("h1:has-text('ShuffleNet Explorer')")
    settle(page)


def _no_exception(page, where: str) -> None:
    errors = page.locator("[data-testid=stException]")
    assert errors.count() == 0, f"{where}: {errors.first.inner_text()[:500]}"


def _full_screenshot(page, name: str) -> None:
    """The whole page: grow the viewport to the main area's height, then shoot."""
    settle(page)
    size = page.viewport_size
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stAppViewContainer]')].map(e => e.scrollHeight), 400)")
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 8000)})
    page.wait_for_timeout(500)  # charts re-layout to the new size
    with contextlib.suppress(PlaywrightTimeout):  # charts and tables draw after the run: give them a moment
        page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')]"
                               ".every(e => e.querySelector('.main-svg')) && !document.querySelector("
                               "'[data-testid=stSkeleton]')", timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size(size)


def test_the_whole_lesson_runs_from_its_first_link(browser, server):
    steps = lesson.current()
    assert steps.count >= 8 and not steps.problems, steps.problems
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(STEP_TIMEOUT_MS)
    _open(page, f"{server}/?lesson=1")
    for step in steps.steps:
        panel = page.locator(".st-key-lesson_panel")
        panel.wait_for()
        assert f"step {step.number} of {steps.count}" in panel.inner_text()
        page.wait_for_selector(f"h1:has-text('{step.view}')")
        assert f"lesson={step.number}" in page.url  # the address bar opens this step
        _no_exception(page, f"step {step.number}")
        _full_screenshot(page, f"lesson_step{step.number}")
        following = panel.get_by_role("button", name="Next")
        if step is steps.steps[-1]:
            assert following.is_disabled()
        else:
            following.click()
            settle(page)
    page.close()


@pytest.mark.parametrize("view", list(ui_state.VIEWS))
def test_presenter_mode_keeps_every_view_legible_on_a_projector(browser, server, view):
    page = browser.new_page(**PROJECTOR)
    page.set_default_timeout(STEP_TIMEOUT_MS)
    _open(page, f"{server}/?view={ui_state.VIEWS[view]}&present=1")
    page.wait_for_selector(f"h1:has-text('{view}')")
    _no_exception(page, view)
    assert page.locator("[data-testid=stSidebar]").get_attribute("data-collapsed") == "true"  # controls collapsed
    with contextlib.suppress(PlaywrightTimeout):  # the style sheet arrives with the run's first elements
        page.wait_for_function("() => parseFloat(getComputedStyle(document.documentElement).fontSize) > 16",
                               timeout=30_000)
    assert page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)") > 16  # larger type
    cut = page.evaluate("() => [...document.querySelectorAll('[data-testid=stMetricValue]')]"
                        ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)")
    assert cut == [], f"headline figures cut off: {cut}"
    wider = page.evaluate("() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')]"
                          ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).length")
    assert wider == 0  # no chart runs off the page
    _full_screenshot(page, f"present_{ui_state.VIEWS[view]}")
    page.close()


def test_every_view_stays_readable_under_the_dark_theme(browser):
    proc, url = _serve("dark", "--theme.base", "dark")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(STEP_TIMEOUT_MS)
        for view, slug in ui_state.VIEWS.items():
            _open(page, f"{url}/?view={slug}")
            page.wait_for_selector(f"h1:has-text('{view}')")
            _no_exception(page, view)
            background = page.evaluate("() => getComputedStyle(document.querySelector('[data-testid=stApp]'))"
                                       ".backgroundColor")
            rgb = [int(v) for v in re.findall(r"\d+", background)[:3]]
            assert sum(rgb) < 150, f"{view}: the page is not dark ({background})"
            title = page.evaluate("() => getComputedStyle(document.querySelector('h1')).color")
            assert sum(int(v) for v in re.findall(r"\d+", title)[:3]) > 500  # light text on it
            if slug == "architecture":  # the diagrams are pictures on a white card of their own
                src = page.locator("[data-testid=stImage] img").first.get_attribute("src")
                svg = base64.b64decode(src.split(",", 1)[1]).decode()
                assert re.search(r'<polygon fill="white"', svg), "the diagram has no white background"
            _full_screenshot(page, f"dark_{slug}")
        page.close()
    finally:
        stop_server(proc)


def test_slide_downloads_chart_svg_latex_table_left_to_right_diagram(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(STEP_TIMEOUT_MS)

    # A chart as SVG, from its own toolbar: made in the browser by Plotly.
    _open(page, f"{server}/?view=complexity&groups=3")
    chart = page.locator("[data-testid=stPlotlyChart]").first
    chart.hover()
    with page.expect_download() as got:
        chart.locator(".modebar-btn[data-title^='Download plot']").click()
    download = got.value
    assert download.suggested_filename.startswith("shufflenet-1x-g3-") and download.suggested_filename.endswith(
        ".svg")
    assert "<svg" in Path(download.path()).read_text(encoding="utf-8")[:2000]

    # A table as LaTeX.
    with page.expect_download() as got:
        page.get_by_role("button", name="LaTeX").first.click()
    latex = Path(got.value.path()).read_text(encoding="utf-8")
    assert got.value.suggested_filename.endswith(".tex") and "\\begin{tabular}" in latex and "\\end{tabular}" in latex

    # A diagram laid out left to right, as SVG made by Graphviz on the server.
    _open(page, f"{server}/?view=architecture&groups=3")
    page.get_by_text("Left to right").first.click()
    settle(page)
    with page.expect_download() as got:
        page.get_by_role("button", name="Download SVG").first.click()
    name, svg = got.value.suggested_filename, Path(got.value.path()).read_text(encoding="utf-8")
    assert name.endswith(".svg") and "lr" in name, name
    width, height = (float(v) for v in re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    assert width > height  # laid out left to right: wider than tall
    page.close()
