"""The Compare view through `AppTest`: B is "A with these changes" and follows the sidebar
elsewhere; and the table and chart helpers it brought (explorer/tables.py, explorer/charts.py)
on every view that uses them: names for people, no "None", CSV / LaTeX / SVG / PNG downloads
under `export.file_name`'s names. One real-browser test at 150 % zoom."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import apptest_support
import numpy as np
import pytest
from apptest_support import no_exception, table_with
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from explorer import charts, figures, tables
from shufflenet import ShuffleNetConfig, analysis
from shufflenet.export import file_name

MACS = "MACs without FC (Table 1)"
make_app = functools.partial(apptest_support.make_app, timeout_s=120)
plotly_charts = functools.partial(apptest_support.charts, kind="plotly_chart")


def totals(at: AppTest):
    return table_with(at, "figure").set_index("figure")


def said(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown if "B = " in m.value)


@pytest.fixture
def downloads(monkeypatch) -> dict:
    """file name -> data (eager) or the callable that makes it (deferred), for the last runs."""
    seen: dict = {}
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def record(self, path_or_data, mimetype, coordinates, file_name=None, *args, **kw):
        seen[file_name] = path_or_data
        return add(self, path_or_data, mimetype, coordinates, file_name, *args, **kw)

    def record_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        seen[file_name] = data_callable
        return add_deferred(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add", record)
    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    return seen


# --- B = A with these changes ----------------------------------------------------------------

def test_compare_view_deltas_and_sweep():
    at = make_app(view="compare")
    no_exception(at)
    assert at.selectbox(key="cmp_groups").value == 3  # B starts as A: no changes yet
    assert (totals(at)["Δ (B - A)"] == 0).all() and "B changes nothing yet" in said(at)
    at.selectbox(key="cmp_groups").set_value(1).run()  # B without groups
    t = totals(at)
    assert t.loc[MACS, "A"] == 136_500_672
    assert t.loc[MACS, "B"] == 142_502_976
    stages = table_with(at, "Δ MACs").set_index("stage")
    assert stages.loc["total", "Δ MACs"] == 143_078_976 - 137_460_672
    sweep = table_with(at, "conv_macs")
    assert sweep["groups"].tolist() == [1, 2, 3, 4, 8]
    assert sweep["conv_macs"].tolist() == [142_502_976, 140_036_512, 136_500_672, 133_251_776, 136_829_952]
    assert len(plotly_charts(at)) == 5
    at.slider(key="cmp_scale").set_value(0.5).run()
    assert totals(at).loc[MACS, "B"] < 50_000_000


def test_b_follows_the_sidebar_in_every_field_it_does_not_change():
    at = make_app(view="compare")
    at.selectbox(key="cmp_groups").set_value(8).run()
    at.slider(key="scale").set_value(0.5).run()  # the sidebar: B's width follows, its g stays
    assert at.slider(key="cmp_scale").value == 0.5 and at.selectbox(key="cmp_groups").value == 8
    b = ShuffleNetConfig(groups=8, scale=0.5)
    assert totals(at).loc[MACS, "B"] == analysis.key_figures(b)["conv_macs"]
    assert said(at).startswith("**B = A with g = 8 (A: g = 3)**")
    at.slider(key="cmp_scale").set_value(1.5).run()  # now B's width is B's own
    at.slider(key="scale").set_value(1.0).run()
    at.slider(key="blocks_stage3").set_value(4).run()
    assert at.slider(key="cmp_scale").value == 1.5 and at.slider(key="cmp_blocks_stage3").value == 4
    assert "width 1.5x (A: width 1x)" in said(at)
    assert at.query_params["b_groups"] == "8" and at.query_params["b_scale"] == "1.5"
    assert "b_blocks" not in at.query_params  # B's units follow the sidebar's
    at.slider(key="cmp_scale").set_value(1.0).run()  # back to A's value: no longer a change
    assert "b_scale" not in at.query_params and "width" not in said(at)


def test_a_shared_link_restores_b():
    at = make_app(view="compare", groups="4", b_groups="8", b_blocks="2,4,2")
    no_exception(at)
    assert at.selectbox(key="cmp_groups").value == 8  # it came back as g = 3 before
    assert [at.slider(key=f"cmp_blocks_stage{s}").value for s in (2, 3, 4)] == [2, 4, 2]
    b = ShuffleNetConfig(groups=8, blocks=(2, 4, 2))
    assert totals(at).loc[MACS, "B"] == analysis.key_figures(b)["conv_macs"]
    assert at.query_params["b_groups"] == "8" and at.query_params["b_blocks"] == "2,4,2"


def test_paper_and_reset_buttons():
    at = make_app(view="compare", groups="8", scale="0.5")
    assert at.button(key="cmp_to_a").disabled  # nothing to reset
    at.button(key="cmp_to_paper").click().run()
    no_exception(at)
    paper = analysis.key_figures(ShuffleNetConfig())
    assert totals(at).loc[MACS, "B"] == paper["conv_macs"]
    assert {k: at.query_params[k] for k in ("b_groups", "b_blocks", "b_reduction", "b_scale")} == {
        "b_groups": "3", "b_blocks": "4,8,4", "b_reduction": "0.25", "b_scale": "1.0"}
    at.slider(key="reduction").set_value(0.25).run()
    at.selectbox(key="groups").set_value(3).run()  # A reaches the paper's g: B stays the paper's network
    at.slider(key="scale").set_value(2.0).run()
    assert totals(at).loc[MACS, "B"] == paper["conv_macs"]
    assert "g = 3 (as A now, kept when the sidebar changes)" in said(at)
    at.button(key="cmp_to_a").click().run()
    assert (totals(at)["Δ (B - A)"] == 0).all() and not any(k.startswith("b_") for k in at.query_params)
    assert at.slider(key="cmp_scale").value == 2.0  # following the sidebar again


# --- tables: names for people, no None, CSV and LaTeX -----------------------------------------

#: View -> how many tables it shows (all through explorer.tables.show).
TABLES = {"compare": 5, "complexity": 2, "shuffle": 3}  # compare: 3 + the other-family section's 2


@pytest.mark.parametrize("view", list(TABLES))
def test_tables_have_names_for_people_and_no_none(view):
    at = make_app(view=view, b_groups="8", groups="8")
    no_exception(at)
    shown = list(at.dataframe)
    assert len(shown) == TABLES[view] and len(at.get("download_button")) == 2 * TABLES[view]  # CSV and LaTeX
    for df in shown:
        assert df.proto.placeholder == tables.MISSING
        labels = {name: c.get("label") or name for name, c in json.loads(df.proto.columns).items()}
        for column in df.value.columns:
            assert "_" not in labels.get(column, column), (column, labels.get(column))
    if view == "compare":
        stages = next(df for df in shown if "Δ MACs" in df.value.columns)
        assert stages.value["channels A"].isna().sum() == 1  # the total row: shown as an en dash
        assert list(stages.proto.column_order)[:9] == ["stage", "channels A", "channels B", "units A", "units B",
                                                       "MACs A", "MACs B", "Δ MACs", "MACs B/A"]
    if view == "complexity":
        layers = table_with(at, "input_shape")
        assert layers["unit"].isna().any() and layers.loc[0, "output_shape"] == "226×226×3"


def test_tables_download_as_csv_and_latex(downloads):
    at = make_app(view="compare", b_groups="8")
    no_exception(at)
    a = ShuffleNetConfig()
    csv = downloads[file_name(a, "vs g8 totals", "csv")]
    assert csv.decode().splitlines()[0] == "figure,A,B,Δ (B - A),B/A"  # a program's CSV: the library's names
    tex = downloads[file_name(a, "vs g8 stages", "tex")]()
    assert "\\toprule" in tex and "MACs B/A" in tex and "--" in tex  # the total's channels: no value
    sweep = downloads[file_name(a, "sweep", "tex")]()
    assert "MACs without FC" in sweep and "conv\\_macs" not in sweep and "136,500,672" in sweep
    assert {b.label for b in at.get("download_button")} == {"CSV", "LaTeX"}


def test_the_mixing_tables_show_every_group_at_g8():
    at = make_app(view="shuffle", groups="8")
    no_exception(at)
    without, with_shuffle = [df.value for df in at.dataframe if "from 0" in df.value.columns]
    assert without.shape == with_shuffle.shape == (8, 8)  # width 64 = g²: every group reads every group
    assert (without.to_numpy() == 8 * np.eye(8, dtype=int)).all()
    assert (with_shuffle.to_numpy() == 1).all()
    assert list(without.columns) == [f"from {i}" for i in range(8)]
    assert list(without.index) == [str(j) for j in range(8)]


# --- charts: SVG or PNG from the toolbar, under export.file_name ------------------------------

def _toolbar(chart) -> dict:
    return json.loads(chart.proto.config)["toImageButtonOptions"]


def test_every_chart_saves_as_svg_or_png_under_its_file_name():
    at = make_app(view="compare", b_groups="8")
    no_exception(at)
    a = ShuffleNetConfig()
    names = {chart.proto.id.rsplit("-", 1)[-1]: _toolbar(chart) for chart in plotly_charts(at)}
    assert names["cmp_stages_chart"] == {"format": "svg", "filename": "shufflenet-1x-g3-vs-g8-stage-macs"}
    assert names["sweep_macs"]["filename"] == file_name(a, "sweep macs", "svg").removesuffix(".svg")
    assert all(o["format"] == "svg" for o in names.values())
    (choice,) = at.sidebar.get("button_group")
    assert choice.label == "Chart downloads"
    choice.set_value("png").run()
    assert all(_toolbar(c) == {**names[c.proto.id.rsplit("-", 1)[-1]], "format": "png", "scale": charts.PNG_SCALE}
               for c in plotly_charts(at))
    at.radio(key="view").set_value("Overview").run()  # a page without the helper's charts
    at.radio(key="view").set_value("Complexity").run()
    assert {_toolbar(c)["format"] for c in plotly_charts(at)} == {"png"}  # the choice is kept for the session
    assert len(plotly_charts(at)) == 8 and len(at.sidebar.get("button_group")) == 1  # drawn once per page


def test_toolbar_config_refuses_other_formats():
    with pytest.raises(ValueError, match="`image` must be one of svg, png"):
        charts.toolbar_config(ShuffleNetConfig(), "sweep", "jpeg")


def test_legends_sit_below_the_plot_and_titles_above_it():
    figs = figures.sweep(analysis.sweep_groups(ShuffleNetConfig(groups=8)), 8)
    for fig in (*figs.values(), figures.shuffle_wiring(analysis.shuffle_edges(64, 8), 8)):
        legend, title = fig.layout.legend, fig.layout.title
        assert (legend.yref, legend.y, legend.yanchor) == ("container", 0, "bottom")  # under the x axis
        assert (title.yref, title.y, title.yanchor) == ("container", 1, "top")  # at the top: never on the legend


# --- the real page at 150 % zoom ---------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.usefixtures("requires_chromium")
def test_at_150_percent_zoom_the_totals_show_every_column_and_the_svg_downloads(tmp_path):
    import browser_support as support
    proc, url = support.start_server(tmp_path / "server.log")
    try:
        support.wait_healthy(proc, url, 180)
        with support.chromium() as browser:
            # 1280x720 at 150 %: the page lays out in 853x480 CSS pixels.
            page = browser.new_page(viewport={"width": 853, "height": 480}, device_scale_factor=1.5,
                                    accept_downloads=True)
            page.goto(f"{url}/?view=compare&b_groups=8&b_scale=0.5", timeout=120_000)
            page.wait_for_selector("[data-testid=stDataFrame]", timeout=120_000)
            support.settle(page)
            grids = page.evaluate("""() => Array.from(document.querySelectorAll('.dvn-scroller')).map(
                s => ({clipped: s.scrollWidth > s.clientWidth + 1, colour: getComputedStyle(s).scrollbarColor}))""")
            assert not grids[0]["clipped"], grids  # the totals: figure, A, B, Δ and B/A all in sight
            # The per-stage table scrolls, with a scrollbar in sight (Streamlit's own is transparent).
            assert grids[1]["clipped"] and not grids[1]["colour"].startswith("rgba(0, 0, 0, 0)"), grids
            page.screenshot(path=str(tmp_path / "compare-150.png"))
            chart = page.locator("[data-testid=stPlotlyChart]").first
            chart.scroll_into_view_if_needed()
            chart.hover()
            with page.expect_download(timeout=60_000) as download:
                chart.locator(".modebar-btn[data-title='Download plot']").click()
            assert download.value.suggested_filename == "shufflenet-1x-g3-vs-g8-0-5x-stage-macs.svg"
            assert Path(download.value.path()).read_text().lstrip().startswith("<svg")
    finally:
        support.stop_server(proc)
