"""The Architecture view through `AppTest`: the diagrams follow the network, the heat-map metric
recolours the whole-network diagram and the layer graph (with a legend and exact values), the
layout toggle turns them left to right, latency without a measurement says how to get one, and
the deferred DOT / SVG / PNG / PDF downloads carry all of it under `export.file_name`'s names.

With Graphviz's `dot` the view shows pictures laid out on the server (their SVG is read back
here); the `no_dot` fixture makes the app fall back to browser-side `st.graphviz_chart`, whose
DOT source the tests read."""

from __future__ import annotations

import base64
import re

import pytest
from apptest_support import charts, make_app, no_exception
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from shufflenet import ShuffleNetConfig, cost_table, diagrams

HAVE_DOT = diagrams.dot_available()


def shown(at: AppTest) -> list[str]:
    """Every diagram on the page, in order: the SVG of a picture, or the DOT of a graphviz chart."""
    pictures = [img.value[0] for img in at.image]
    if pictures:
        assert not charts(at, "graphviz_chart")
        prefix = "data:image/svg+xml;base64,"
        assert all(p.startswith(prefix) for p in pictures)
        return [base64.b64decode(p[len(prefix):]).decode("utf-8") for p in pictures]
    return [c.proto.spec for c in charts(at, "graphviz_chart")]


def fills(dot: str) -> dict[str, str]:
    """Node name -> fill colour, from DOT source."""
    return dict(re.findall(r"^\s*(\w+) \[[^\]]*?fillcolor=\"(#[0-9a-f]{6})\"", dot, re.M | re.S))


def label(dot: str, node: str) -> str:
    m = re.search(rf'^\s*{node} \[label="(.*?)"', dot, re.M | re.S)
    assert m, f"no node {node!r}"
    return m.group(1)


@pytest.fixture
def downloads(monkeypatch) -> dict:
    """file name -> the deferred download's callable, for every download button of the last run."""
    seen: dict = {}
    original = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        seen[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return seen


# --- the diagrams follow the network --------------------------------------------------------

def test_architecture_diagrams_follow_groups():
    at = make_app(view="architecture")
    no_exception(at)
    before = shown(at)
    assert len(before) == 4  # macro, stride-2 unit, stride-1 unit, layers of a stage
    assert "g = 3" in before[0] and "240" in before[0]
    at.selectbox(key="groups").set_value(8).run()
    after = shown(at)
    assert "g = 8" in after[0] and "384" in after[0]
    assert all(a != b for a, b in zip(before, after))
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("Download DOT") == 4
    from shufflenet.diagrams import dot_available

    assert labels.count("Download SVG") == (4 if dot_available() else 0)


@pytest.mark.skipif(not HAVE_DOT, reason="needs Graphviz's dot")
def test_diagrams_are_pictures_laid_out_on_the_server():
    # Laying the diagrams out in the browser took seconds per change of g: with `dot` they are pictures.
    at = make_app(view="architecture")
    no_exception(at)
    assert len(at.image) == 4 and not charts(at, "graphviz_chart")
    svg = shown(at)
    assert all(s.lstrip().startswith(("<?xml", "<svg")) for s in svg)
    assert "<script" not in " ".join(svg).lower()  # shown as <img>, which runs no script anyway
    assert next(img.proto.imgs[0].alt for img in at.image).startswith("The network's stem")


def test_diagrams_without_dot_are_laid_out_by_the_browser(no_dot):
    at = make_app(view="architecture")
    no_exception(at)
    assert len(charts(at, "graphviz_chart")) == 4 and not at.image
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download DOT"] * 4 + ["CSV", "LaTeX"]  # the diagrams', then the receptive-field table's
    assert any("`apt-get install graphviz`" in c.value for c in at.caption)


def test_svg_export_renders_the_same_diagram():
    from explorer import cache
    from shufflenet.diagrams import DiagramRenderError, dot_available

    config = ShuffleNetConfig(groups=8)
    if not dot_available():
        with pytest.raises(DiagramRenderError, match="apt-get install graphviz"):
            cache.diagram_svg(config, "macro")
        return
    svg = cache.diagram_svg(config, "micro", 3, 2)  # plain call: it runs outside a script run
    assert "<svg" in svg and "g = 8" in svg


def test_architecture_single_unit_stage_has_no_stride1_diagram():
    at = make_app(view="architecture", blocks="4,1,4")
    at.selectbox(key="arch_stage").set_value(3).run()
    no_exception(at)
    assert len(shown(at)) == 3
    assert any("single unit" in i.value for i in at.info)


def test_no_shuffle_unit_says_it_is_the_ablation(no_dot):
    at = make_app(view="architecture", groups="3", shuffle="0")
    no_exception(at)
    macro, stride2, stride1, _ = shown(at)
    for unit in (stride2, stride1):
        assert "Channel shuffle, g" not in unit and "channel shuffle off (ablation" in unit
    assert "no shuffle (ablation)" in macro


# --- heat maps ------------------------------------------------------------------------------

def test_colour_by_changes_the_node_colours_in_the_dot(no_dot):
    at = make_app(view="architecture")
    no_exception(at)
    assert at.selectbox(key="arch_metric").value == "default"
    assert at.selectbox(key="arch_metric").options == ["Default (stage and op)", "MACs", "Parameters",
                                                      "Activation memory", "Memory traffic", "Latency"]
    default = shown(at)
    assert fills(default[0])["stage3"] == diagrams.COLORS["stage3"] and "legend" not in default[0]
    at.selectbox(key="arch_metric").set_value("macs").run()
    no_exception(at)
    macs = shown(at)
    at.selectbox(key="arch_metric").set_value("params").run()
    params = shown(at)
    for i in (0, 3):  # the whole network and the layer graph change colour...
        assert fills(macs[i]) != fills(default[i]) and fills(params[i]) != fills(macs[i])
        assert "legend [label=<" in macs[i] and "legend [label=<" in params[i]
    assert fills(macs[0])["stage3"] == diagrams.VIRIDIS[-1]  # stage 3 has the most MACs
    assert macs[1:3] == default[1:3] == params[1:3]  # ...the units keep the paper's colours
    assert "Colour: MACs per stage" in macs[0] and "Colour: params per layer" in params[3]
    assert any("Heat map of params" in c.value for c in at.caption)


@pytest.mark.parametrize("metric", ["macs", "params", "activation_bytes", "traffic_bytes"])
def test_node_values_equal_the_cost_table(no_dot, metric):
    at = make_app(view="architecture", groups="8")
    at.selectbox(key="arch_metric").set_value(metric).run()
    no_exception(at)
    assert not at.warning
    macro, *_, full = shown(at)
    table = cost_table(ShuffleNetConfig(groups=8))
    column = "activations" if metric == "activation_bytes" else metric
    times = 4 if metric == "activation_bytes" else 1
    m = diagrams.METRICS[metric]
    for name in ("stage2_unit1_gconv1", "stage2_unit2_dwconv", "stage2_unit2_add"):
        value = int(table.set_index("name").loc[name, column]) * times
        assert label(full, name).split("\n")[-1] == diagrams.format_value(value, m)
    stage3 = int(table.loc[table["stage"] == "stage3", column].sum()) * times
    assert diagrams.format_value(stage3, m) in label(macro, "stage3")


@pytest.mark.skipif(not HAVE_DOT, reason="needs Graphviz's dot")
def test_heat_map_pictures_carry_the_colours():
    at = make_app(view="architecture")
    at.selectbox(key="arch_metric").set_value("macs").run()
    no_exception(at)
    macro, *_ = shown(at)
    assert f'fill="{diagrams.VIRIDIS[-1]}"' in macro and "Colour: MACs per stage" in macro
    assert "63,786,240 MACs" in macro  # stage 3, exact


def test_left_to_right_sets_rankdir(no_dot):
    at = make_app(view="architecture")
    assert all(re.search(r"\brankdir=TB\b", d) for d in shown(at))
    at.toggle(key="arch_lr").set_value(True).run()
    no_exception(at)
    macro, stride2, stride1, full = shown(at)
    assert re.search(r"\brankdir=LR\b", macro) and re.search(r"\brankdir=LR\b", full)
    assert re.search(r"\brankdir=TB\b", stride2) and re.search(r"\brankdir=TB\b", stride1)


def test_latency_without_a_measurement_says_how_to_get_one(no_dot):
    from explorer import cache

    at = make_app(view="architecture", groups="4", blocks="2,3,2")
    assert cache.layer_latency(ShuffleNetConfig(groups=4, blocks=(2, 3, 2))) is None
    at.selectbox(key="arch_metric").set_value("latency_ms").run()
    no_exception(at)
    (info,) = [i.value for i in at.info]
    assert "No per-layer latency has been measured" in info and "Measure per-layer latency" in info
    assert at.button(key="arch_measure_latency").label == "Measure per-layer latency"
    macro, *_, full = shown(at)
    assert " ms" not in macro + full and "legend" not in macro  # default colours, never made-up zeros
    assert fills(macro)["stage3"] == diagrams.COLORS["stage3"]


def test_latency_measurement_colours_the_diagrams(no_dot):
    from explorer import cache

    config = ShuffleNetConfig(groups=2, blocks=(1, 2, 1), scale=0.5, input_size=32, channels=1, num_classes=10)
    at = make_app(view="architecture", task="fashion-mnist", groups="2", blocks="1,2,1")
    at.selectbox(key="arch_metric").set_value("latency_ms").run()
    builds = cache.WORK_DONE["layer_latency"]
    at.button(key="arch_measure_latency").click().run()
    no_exception(at)
    assert cache.WORK_DONE["layer_latency"] == builds + 1
    times = dict(cache.layer_latency(config))
    assert set(times) == set(cost_table(config)["name"]) and all(t > 0 for t in times.values())
    assert not at.info and any("timed alone" in c.value for c in at.caption)
    macro, *_, full = shown(at)
    assert "Colour: latency per stage" in macro and "Colour: latency per layer" in full
    assert label(full, "stage2_unit1_gconv1").endswith(f"{times['stage2_unit1_gconv1']:,.3f} ms")
    assert at.button(key="arch_measure_latency").label == "Measure again"


def test_a_metric_the_cost_table_lacks_keeps_the_default_colours(no_dot, monkeypatch):
    # A cost table without `traffic_bytes` (an older library) must not break the view.
    monkeypatch.setattr(diagrams, "cost_table", lambda config: cost_table(config).drop(columns="traffic_bytes"))
    at = make_app(view="architecture")
    at.selectbox(key="arch_metric").set_value("traffic_bytes").run()
    no_exception(at)
    (warning,) = [w.value for w in at.warning]
    assert "default colours" in warning and "traffic_bytes" in warning
    assert "legend" not in shown(at)[0]


# --- the layer graph's units and the downloads ----------------------------------------------

def test_units_range_of_the_layer_graph(no_dot):
    at = make_app(view="architecture")
    at.selectbox(key="arch_full_stage").set_value("stage3").run()
    no_exception(at)
    assert at.slider(key="arch_units_stage3_8").value == (1, 2)
    assert shown(at)[3].count("subgraph cluster_") == 2
    at.slider(key="arch_units_stage3_8").set_value((3, 8)).run()
    full = shown(at)[3]
    assert full.count("subgraph cluster_") == 6 and "stage3_unit2_relu [label=stage3_unit2_relu shape=plaintext" in full


@pytest.mark.skipif(not HAVE_DOT, reason="needs Graphviz's dot")
def test_downloads_are_deferred_named_and_coloured(downloads):
    at = make_app(view="architecture")
    at.selectbox(key="arch_metric").set_value("macs").run()
    at.toggle(key="arch_lr").set_value(True).run()
    at.selectbox(key="arch_full_stage").set_value("stage3").run()
    downloads.clear()
    at.slider(key="arch_units_stage3_8").set_value((1, 8)).run()
    no_exception(at)
    diagram_buttons = [b for b in at.get("download_button") if b.label.startswith("Download ")]
    assert len(diagram_buttons) == 16  # four diagrams, four formats (the table's CSV is made with the page)
    assert all(b.proto.ignore_rerun and b.proto.HasField("deferred_file_id") for b in diagram_buttons)
    names = set(downloads)
    for ext in ("dot", "svg", "png", "pdf"):
        assert {f"shufflenet-1x-g3-macro-macs-lr.{ext}", f"shufflenet-1x-g3-stage3-stride2.{ext}",
                f"shufflenet-1x-g3-stage3-stride1.{ext}", f"shufflenet-1x-g3-stage3-layers-macs-lr.{ext}"} <= names
    dot = downloads["shufflenet-1x-g3-stage3-layers-macs-lr.dot"]()
    assert "rankdir=LR" in dot and "legend [label=<" in dot and diagrams.VIRIDIS[-1] in dot
    assert "stage3_unit8_relu" in dot
    assert downloads["shufflenet-1x-g3-macro-macs-lr.png"]().startswith(b"\x89PNG\r\n\x1a\n")
    assert downloads["shufflenet-1x-g3-stage3-layers-macs-lr.pdf"]().startswith(b"%PDF-")
    svg = downloads["shufflenet-1x-g3-macro-macs-lr.svg"]().decode()
    assert diagrams.VIRIDIS[-1] in svg and "Colour: MACs" in svg and "per stage" in svg  # two lines, left to right
    # Default colouring, top to bottom: no suffixes.
    at.selectbox(key="arch_metric").set_value("default").run()
    at.toggle(key="arch_lr").set_value(False).run()
    assert "shufflenet-1x-g3-stage3-layers.pdf" in downloads and "shufflenet-1x-g3-macro.svg" in downloads


# --- receptive fields -----------------------------------------------------------------------

def _rf_chart(at: AppTest) -> dict:
    import json

    from explorer.figures_receptive import WHOLE_INPUT_NAME

    specs = [json.loads(c.proto.spec) for c in charts(at, "plotly_chart")]
    (spec,) = [s for s in specs if any(t.get("name") == WHOLE_INPUT_NAME for t in s["data"])]
    return spec


def _csv_downloads(monkeypatch) -> list:
    """Every CSV the page's download buttons hold, as text, in the order they were drawn."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    saved = []
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        if mimetype == "text/csv":
            saved.append(path_or_data.decode() if isinstance(path_or_data, bytes) else path_or_data)
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return saved


def test_receptive_fields_show_per_stage_with_the_chart_and_its_marker(no_dot, monkeypatch, downloads):
    import io

    import pandas as pd

    from explorer.figures_receptive import WHOLE_INPUT_NAME
    from shufflenet import analysis

    csvs = _csv_downloads(monkeypatch)
    at = make_app(view="architecture")
    no_exception(at)
    assert any(s.value.startswith("Receptive fields") for s in at.subheader)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Input"] == "224 px" and metrics["Receptive field after stage 4"] == "527 px"
    assert metrics["First covers the whole input"] == "stage 4, unit 3"
    table = next(df.value for df in at.dataframe if "receptive_field" in df.value.columns)
    assert table["stage"].tolist() == ["stem", "stage2", "stage3", "stage4", "classifier"]
    assert table["receptive_field"].tolist() == [7, 63, 303, 527, 719]
    # The chart: one point per unit, the input's side as a line, the star on stage 4's third unit.
    spec = _rf_chart(at)
    ticks = spec["layout"]["xaxis"]["ticktext"]
    assert ticks[:3] == ["stem", "2.1", "2.2"] and ticks[-1] == "pool" and len(ticks) == 18
    (star,) = [t for t in spec["data"] if t.get("name") == WHOLE_INPUT_NAME]
    assert star["x"] == [ticks.index("4.3")] and star["y"] == [463]
    lines = {(s["type"], s.get("y0"), s.get("x0")) for s in spec["layout"]["shapes"]}
    assert ("line", 224, 0) in lines and ("line", 0, ticks.index("4.3")) in lines
    assert any("input: 224 px" in a["text"] for a in spec["layout"]["annotations"])
    # The downloads: the CSV holds the library's receptive-field columns, the LaTeX the page's labels.
    csv = pd.read_csv(io.StringIO(next(c for c in csvs if c.startswith("stage,layer,output_side"))))
    want = analysis.receptive_field_table(ShuffleNetConfig())
    assert list(csv.columns) == list(want.columns)
    assert {"receptive_field", "rf_per_input", "jump", "sees_whole_input", "first_whole_input"} <= set(csv.columns)
    assert csv["receptive_field"].tolist() == want["receptive_field"].tolist()
    assert csv["first_whole_input"].tolist() == [False, False, False, True, False]
    tex = downloads["shufflenet-1x-g3-receptive-fields.tex"]()
    assert "receptive field (px)" in tex and "RF / input" in tex and "527" in tex and "2.35" in tex


def test_every_unit_toggle_is_in_the_url(no_dot, monkeypatch):
    csvs = _csv_downloads(monkeypatch)
    at = make_app(view="architecture")
    assert at.toggle(key="arch_rf_units").value is False and "rf_units" not in at.query_params
    at.toggle(key="arch_rf_units").set_value(True).run()
    no_exception(at)
    assert at.query_params["rf_units"] == "1"
    table = next(df.value for df in at.dataframe if "receptive_field" in df.value.columns)
    assert len(table) == 18 and table.set_index("layer").loc["stage4_unit3_relu", "first_whole_input"]
    assert csvs[-1].startswith("stage,unit,layer,output_side") and len(csvs[-1].strip().splitlines()) == 1 + 18
    fresh = make_app(**dict(at.query_params))
    no_exception(fresh)
    assert fresh.toggle(key="arch_rf_units").value is True
    assert len(next(df.value for df in fresh.dataframe if "receptive_field" in df.value.columns)) == 18
    fresh.toggle(key="arch_rf_units").set_value(False).run()
    assert "rf_units" not in fresh.query_params


def test_receptive_fields_of_a_small_input_reach_it_only_at_the_global_pool(no_dot):
    at = make_app(view="architecture", size="96", blocks="1,2,1")
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Input"] == "96 px" and metrics["Receptive field after stage 4"] == "95 px"
    assert metrics["First covers the whole input"] == "the global pool"
    ticks = _rf_chart(at)["layout"]["xaxis"]["ticktext"]
    assert ticks == ["stem", "2.1", "3.1", "3.2", "4.1", "pool"]


def test_receptive_fields_in_presenter_mode(no_dot):
    at = make_app(view="architecture", present="1")
    no_exception(at)
    assert {m.label: m.value for m in at.metric}["First covers the whole input"] == "stage 4, unit 3"
    spec = _rf_chart(at)
    assert spec["layout"]["font"]["size"] >= 14 and spec["layout"]["height"] >= 400


def test_the_lesson_quotes_the_receptive_fields_the_view_shows():
    from explorer import lesson
    from explorer import lesson_file as lesson_text
    from shufflenet import analysis

    (step,) = [s for s in lesson.current().steps if s.view == "Architecture"]
    stages = analysis.receptive_field_table(step.config).set_index("stage")["receptive_field"]
    text = lesson_text.step_text(step, None)
    assert f"{stages['stage3']:,} pixels wide after stage 3 and {stages['stage4']:,} after stage 4" in text
    assert f"picture {step.config.input_size} pixels wide" in text
    assert "from stage 4, unit 3 on every position sees all of it" in text
    # For another network the same placeholders give that network's figures.
    small = ShuffleNetConfig(input_size=96, blocks=(1, 2, 1))
    assert lesson_text.fill("{stage4_rf} / {rf_whole_input}", small) == "95 / the global pool"
